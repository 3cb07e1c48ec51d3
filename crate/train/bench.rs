//! The train-step benchmark behind `lens2logit bench train-step` and the page's benchmark: a
//! synthesis session on synthetic tiles of the model's task (each tile's static view rendered
//! once, as a real session does), timed step by step after a warm-up that has seen every
//! training tile.

use std::rc::Rc;

use serde::Serialize;

use super::{Mode, Session, TileSet, TrainConfig};
use crate::data::Task;
use crate::gpu::Gpu;
use crate::spec::models::ModelKind;
use crate::Result;

/// One benchmark's figures, printed as a JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct TrainStepTiming {
    pub model: String,
    pub backend: String,
    pub batch: usize,
    pub size: usize,
    /// Median over the timed steps.
    pub ms_per_step: f64,
    /// The compute threads the CPU backend used.
    pub threads: usize,
    /// The device that trained ("cpu (native)", "Vulkan (llvmpipe ...)").
    pub device: String,
    /// GPU only: command buffers submitted and readbacks per timed step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submissions_per_step: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readbacks_per_step: Option<f64>,
}

/// Median time of `steps` train steps of `model` with batches of `batch` tiles of `size` px, on
/// `gpu` where given, else on the CPU.
pub async fn train_step(
    model: ModelKind,
    batch: usize,
    size: usize,
    steps: usize,
    gpu: Option<Rc<Gpu>>,
) -> Result<TrainStepTiming> {
    let task = if model.is_segmenter() {
        Task::Segmentation
    } else {
        Task::Classification
    };
    // 3/4 train: three batches of training tiles, each rendered during the warm-up
    let data = TileSet::synthetic(task, (4 * batch).max(4), size, 0)?;
    let warm_up = data.train.div_ceil(batch.max(1)) + 1;
    let mut config = TrainConfig::new(Mode::Synthesis, model);
    config.batch = batch;
    config.snapshot_every = 0;
    // one step more than timed, so the phase never ends (and validates) inside the benchmark
    config.steps = warm_up + steps.max(1) + 1;
    let mut session = Session::new(config, data)?;
    let backend = if gpu.is_some() { "gpu" } else { "cpu" };
    if let Some(gpu) = gpu {
        session
            .choose_device(crate::train::DeviceChoice::Gpu, Some(gpu))
            .await?;
    }
    let mut times = Vec::with_capacity(steps);
    let mut traffic = None;
    for i in 0..warm_up + steps.max(1) {
        if i == warm_up {
            traffic = session.gpu_traffic();
        }
        let report = session
            .step()
            .await?
            .ok_or_else(|| crate::Error::invalid("the benchmark session ended early"))?;
        if i >= warm_up {
            times.push(report.step_ms);
        }
    }
    let per_step = |count: fn(&crate::gpu::Traffic) -> u64| {
        let (before, after) = (traffic?, session.gpu_traffic()?);
        Some((count(&after) - count(&before)) as f64 / times.len() as f64)
    };
    Ok(TrainStepTiming {
        model: model.name().into(),
        backend: backend.into(),
        batch,
        size,
        submissions_per_step: per_step(|t| t.submissions),
        readbacks_per_step: per_step(|t| t.readbacks),
        ms_per_step: median(times),
        threads: rayon::current_num_threads(),
        device: session.device_label(),
    })
}

/// The middle of timed runs (at least one).
pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
