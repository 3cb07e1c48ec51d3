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
    /// Fine-tuning's frozen backbone: only the head trains.
    pub frozen_backbone: bool,
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
/// `gpu` where given, else on the CPU; with `frozen_backbone`, fine-tuning's steps that train
/// the head alone.
pub async fn train_step(
    model: ModelKind,
    (batch, size, steps): (usize, usize, usize),
    frozen_backbone: bool,
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
    if frozen_backbone {
        config.freeze_backbone = super::Freeze::Always;
    }
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
        frozen_backbone,
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

/// One matrix product of the convolutions, timed by both kernels.
#[derive(Debug, Clone, Serialize)]
pub struct ProductTiming {
    /// "layer1 forward", "layer3 weight gradient", ...
    pub product: String,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Median ms of the packed kernel (SIMD128 in the page) and of the `gemm` crate.
    pub packed_ms: f64,
    pub gemm_crate_ms: f64,
    pub threads: usize,
}

/// The packed kernel against the `gemm` crate on the products of ResNet-18's 3x3 convolutions at
/// 256 px (one band of one tile, as `ops::conv2d` cuts them): each
/// layer's forward (W * columns), input gradient (W^T * dy) and weight gradient (dy * columns^T),
/// the two kernels taking turns, median of `repeats` runs after one unmeasured.
pub fn matrix_products(repeats: usize) -> Result<Vec<ProductTiming>> {
    use crate::model::ops::{band_pixels, matmul, Kernel};
    let threads = rayon::current_num_threads();
    let mut rows = Vec::new();
    for (layer, channels, side) in [
        ("layer1", 64, 64),
        ("layer2", 128, 32),
        ("layer3", 256, 16),
        ("layer4", 512, 8),
    ] {
        let k_rows = 9 * channels;
        let band = band_pixels(k_rows, (side, side));
        for (pass, (m, n, k), a_t, b_t) in [
            ("forward", (channels, band, k_rows), false, false),
            ("input gradient", (k_rows, band, channels), true, false),
            ("weight gradient", (channels, k_rows, band), false, true),
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 999) as f32 / 499.0 - 1.0)
                .collect();
            let mut dst = vec![0f32; m * n];
            let mut time = |kernel| -> Result<f64> {
                let start = web_time::Instant::now();
                matmul(
                    kernel,
                    (m, n, k),
                    &mut dst,
                    false,
                    (&a, a_t),
                    (&b, b_t),
                    threads,
                )?;
                Ok(start.elapsed().as_secs_f64() * 1000.0)
            };
            let (mut packed, mut crate_times) = (Vec::new(), Vec::new());
            for run in 0..=repeats.max(1) {
                let (p, g) = (time(Kernel::Packed)?, time(Kernel::GemmCrate)?);
                if run > 0 {
                    packed.push(p);
                    crate_times.push(g);
                }
            }
            rows.push(ProductTiming {
                product: format!("{layer} {pass}"),
                m,
                n,
                k,
                packed_ms: median(packed),
                gemm_crate_ms: median(crate_times),
                threads,
            });
        }
    }
    Ok(rows)
}
