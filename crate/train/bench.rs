//! The train-step benchmark behind `lens2logit bench train-step` and the page's benchmark: a
//! synthesis session on synthetic tiles of the model's task (each tile's static view rendered
//! once, as a real session does), timed step by step after a warm-up that has seen every
//! training tile.

use serde::Serialize;

use super::{Mode, Session, TileSet, TrainConfig};
use crate::data::synthetic::Task;
use crate::model::ModelKind;
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
}

/// Median time of `steps` train steps of `model` with batches of `batch` tiles of `size` px.
pub fn train_step(
    model: ModelKind,
    batch: usize,
    size: usize,
    steps: usize,
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
    let mut times = Vec::with_capacity(steps);
    for i in 0..warm_up + steps.max(1) {
        let report = session
            .step()?
            .ok_or_else(|| crate::Error::invalid("the benchmark session ended early"))?;
        if i >= warm_up {
            times.push(report.step_ms);
        }
    }
    Ok(TrainStepTiming {
        model: model.name().into(),
        backend: "cpu".into(),
        batch,
        size,
        ms_per_step: median(times),
        threads: rayon::current_num_threads(),
    })
}

/// The middle of timed runs (at least one).
pub fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
