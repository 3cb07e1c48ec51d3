//! The engine's backend seam: what a session asks of the device its steps run on. A session
//! ([`super::Session`]) sequences phases, batches, snapshots and results; a [`StepBackend`] holds
//! the model, the processing and their optimisers and runs the steps. [`CpuBackend`] computes
//! with candle (the reference), [`GpuBackend`] with the WGSL kernels, everything resident on the
//! device; [`choose`] picks one, measuring where it has to.

mod choice;
mod cpu;
mod gpu;

use async_trait::async_trait;
use candle_core::Tensor;
use candle_nn::{ParamsAdamW, VarMap};

pub use choice::{choose, cpu_label, Choice, DeviceChoice};
pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

/// A training step without flips or turns (a check against a reference, a timing).
pub const NO_AUGMENTATION: Augment = Augment::IDENTITY;

use super::augment::Augment;
use super::session::Penalty;
use crate::gpu::models::StepStats;
use crate::isp::param::RunningStats;
use crate::spec::models::ModelKind;
use crate::Result;

/// What a backend is built for: the model and its shapes, the optimiser, and forensics'
/// objective where the session attacks.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    pub model: ModelKind,
    pub classes: usize,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// Tiles the session holds (their memory counts against a page's budget).
    pub tiles: usize,
    /// The head's optimiser settings (the whole model's, unless fine-tuning gives the backbone
    /// its own rate).
    pub optimiser: ParamsAdamW,
    /// The backbone's learning rate.
    pub backbone_lr: f64,
    /// Forensics: the distance to the default processing and its weight.
    pub forensics: Option<(Penalty, f64)>,
}

/// What the model sees in a step.
pub enum Input {
    /// A static view, processed and normalised on the CPU: (B, 3, H, W).
    Processed(Tensor),
    /// Raw mosaics the backend's parametrized ISP processes: (B, H, W).
    Raw(Tensor),
}

/// A batch: the input and the targets (class indices (B) as u32, or {0, 1} masks (B, 1, H, W)).
pub struct Batch {
    pub input: Input,
    pub targets: Tensor,
}

/// How a phase starts: the processing's parameters (packed) and running statistics, the
/// default processing forensics stays near, and which processing parameters the phase trains
/// (none: frozen) with which optimiser settings.
pub struct PhaseStart<'a> {
    /// A fresh model: the optimiser's state starts over.
    pub fresh_model: bool,
    pub isp: &'a [f32],
    pub running: RunningStats,
    pub isp_default: &'a [f32],
    pub isp_training: Option<(Vec<&'static str>, ParamsAdamW)>,
}

/// Stage maps (|dL/d stage| per pixel, five stages) and the stages' outputs for the first tile.
pub type StageMaps = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Starts a phase with the model alone: `vars`' weights, a fresh optimiser, no processing to
/// speak of (timing a step, predicting, checking a model against its library).
pub async fn start_model_alone(backend: &mut dyn StepBackend, vars: &VarMap) -> Result<()> {
    let none = vec![0.0; crate::spec::isp::PACKED_LEN];
    backend
        .start_phase(
            vars,
            PhaseStart {
                fresh_model: true,
                isp: &none,
                running: RunningStats::default(),
                isp_default: &none,
                isp_training: None,
            },
        )
        .await
}

#[async_trait(?Send)]
pub trait StepBackend {
    /// What the page and the CLI call the device: "WebGPU (SwiftShader Device)", "CPU (native)".
    fn label(&self) -> String;

    /// The GPU's submissions and readbacks so far (None on the CPU).
    fn traffic(&self) -> Option<crate::gpu::Traffic>;

    /// Takes the model's weights from `vars` and sets up the processing for a phase.
    async fn start_phase(&mut self, vars: &VarMap, phase: PhaseStart<'_>) -> Result<()>;

    /// Writes the model's weights into `vars` and returns the processing's packed parameters
    /// and running statistics, as the phase left them.
    async fn finish_phase(&mut self, vars: &VarMap) -> Result<(Vec<f32>, RunningStats)>;

    /// One training step: the model (and the processing, where the phase trains it) on a batch
    /// with this step's augmentation (of the processed image, and of a segmentation mask). With
    /// `frozen_backbone` (fine-tuning), the backbone's parameters stay as they are and its batch
    /// norms in evaluation mode.
    async fn train(
        &mut self,
        batch: &Batch,
        augment: Augment,
        frozen_backbone: bool,
    ) -> Result<StepStats>;

    /// One forensics step on a raw batch: the frozen model's loss through the current
    /// processing, and an update of the attacked parameters that raises it while staying near
    /// the default processing.
    async fn attack(&mut self, batch: &Batch) -> Result<StepStats>;

    /// Loss and metric of the model in evaluation mode (running statistics) on a batch.
    async fn evaluate(&mut self, batch: &Batch) -> Result<StepStats>;

    /// |dL/d stage| per pixel of the five tracked stages for a batch of one tile (its own loss),
    /// averaged over the channels, through the current processing and the frozen model, with
    /// the tile's stages.
    async fn stage_maps(&mut self, batch: &Batch) -> Result<StageMaps>;

    /// The current processing of one raw tile (1, H, W) in evaluation mode: (3, H, W).
    async fn processed(&mut self, raw: &Tensor) -> Result<Vec<f32>>;

    /// The model's logits in evaluation mode on a batch (B, 3, H, W) used as it is: (B,
    /// classes) or (B, 1, H, W), flattened.
    async fn predict(&mut self, x: &Tensor) -> Result<Vec<f32>>;
}
