//! A training session: the paper's experiments as sequences of phases, advanced one optimisation
//! step at a time. The session decides what each step is (its phase, its tiles, its
//! augmentation) and keeps what the steps found; a backend ([`crate::train::backend`]) runs them.
//!
//! - Synthesis: train the task model on one static view; then evaluate on all 12 views and the
//!   intensity levels (the drift table).
//! - Forensics: train on the default parametrized processing; then, model frozen, optimise one
//!   parameter group at a time to *raise* the task loss, penalised by the distance to the default
//!   output; report the metric drop per group and the adversarial views.
//! - Optimisation: train with the processing frozen (baseline), then from the same start with the
//!   processing trained jointly; compare the two learning curves.

mod batches;
mod config;
mod evaluate;
mod phases;
mod report;

use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ParamsAdamW, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use web_time::Instant;

pub use config::{Freeze, Mode, Penalty, TrainConfig};
pub use report::{Snapshot, StepReport, Summary};

use super::backend::{choose, BackendSpec, Choice, DeviceChoice, StepBackend};
use super::corruption::Corruption;
use super::render_cache::{RenderCache, RENDER_BUDGET};
use crate::data::tiles::TileSet;
use crate::data::Task;
use crate::gpu::models::StepStats;
use crate::gpu::Gpu;
use crate::isp::param::{IspParams, RunningStats};
use crate::isp::static_pipeline::View;
use crate::model::{
    load_strict, seed_weights, Loaded, Normalisation, TaskModel, WeightsFile, WeightsSource,
};
use crate::{Error, Result};

/// How a phase processes raw tiles before the model.
#[derive(Clone)]
enum Front {
    /// A static view, frozen (rendered once per tile).
    Static(View),
    /// A static view with a post-hoc corruption at a severity.
    Corrupted(View, Corruption, u8),
    /// The parametrized ISP; `train` optimises it with the model.
    Param { train: bool },
    /// The session's camera twin (`TrainConfig::camera_twin`), frozen.
    Twin,
}

#[derive(Clone)]
enum Phase {
    Train {
        name: String,
        front: Front,
        fresh_model: bool,
    },
    Attack {
        group: String,
    },
    Evaluate,
}

pub struct Session {
    config: TrainConfig,
    data: TileSet,
    rng: ChaCha8Rng,
    /// The model's weights as of the last phase boundary (the CPU backend trains them in place).
    vars: VarMap,
    /// The default processing (the camera's), packed, and the processing as the last phase left
    /// it, with its batch norm's running statistics.
    isp_default: Vec<f32>,
    isp: IspParams,
    isp_running: RunningStats,
    norm: Normalisation,
    /// Static view renders of the training view at full intensity per tile index, within a
    /// budget (the drift table's other views and levels are rendered once each and not kept: at
    /// 256 px they would hold 66 MB per validation tile).
    rendered: RenderCache,
    phases: Vec<Phase>,
    phase: usize,
    phase_step: usize,
    global_step: usize,
    pub snapshots: Vec<Snapshot>,
    pub summary: Summary,
    /// Forensics: the adversarial processing of the first validation tile per group.
    pub adversarial: Vec<(String, Tensor)>,
    /// The weights the model started from, where a file gave them.
    init: Option<Init>,
    /// Whether a phase has handed the backend the model and the processing.
    started: bool,
    /// Where the steps run, chosen before the first ([`Session::choose_device`]; the CPU where
    /// nothing was chosen).
    backend: Option<(Box<dyn StepBackend>, Choice)>,
    /// The steps' times so far, for the time left.
    timing: Timing,
}

/// The time steps of each kind took so far: training and attack steps, and evaluation cells.
#[derive(Debug, Default)]
struct Timing {
    train: Mean,
    eval: Mean,
}

#[derive(Debug, Default)]
struct Mean {
    total_ms: f64,
    steps: usize,
}

impl Mean {
    fn mean(&self) -> f64 {
        self.total_ms / self.steps.max(1) as f64
    }
}

impl Timing {
    fn add(&mut self, evaluating: bool, ms: f64) {
        let kind = if evaluating {
            &mut self.eval
        } else {
            &mut self.train
        };
        kind.total_ms += ms;
        kind.steps += 1;
    }
}

/// A session's starting weights: their source and the values set (kept for phases that start
/// the model afresh).
pub struct Init {
    pub source: WeightsSource,
    weights: Vec<(String, Tensor)>,
    /// What the user was told where the task head started afresh.
    pub head_reinitialised: Option<String>,
}

fn phase_len(config: &TrainConfig, phase: &Phase) -> usize {
    match phase {
        Phase::Train { .. } => config.steps,
        Phase::Attack { .. } => config.forensic_steps,
        Phase::Evaluate => evaluate::evaluation_cells(config).len(),
    }
}

/// The phases of `config`'s experiment.
fn phases(config: &TrainConfig) -> Vec<Phase> {
    let train = |name: &str, front, fresh_model| Phase::Train {
        name: name.to_string(),
        front,
        fresh_model,
    };
    let param = |train| Front::Param { train };
    match config.mode {
        Mode::Synthesis => vec![
            train(
                &format!("train on {}", config.view),
                Front::Static(config.view),
                false,
            ),
            Phase::Evaluate,
        ],
        Mode::Forensics => {
            std::iter::once(train("train on default processing", param(false), false))
                .chain(
                    config
                        .groups
                        .iter()
                        .map(|g| Phase::Attack { group: g.clone() }),
                )
                .collect()
        }
        Mode::Optimisation => vec![
            train("frozen processing", param(false), false),
            train("joint processing", param(true), true),
        ],
    }
}

impl Session {
    pub fn new(config: TrainConfig, mut data: TileSet) -> Result<Self> {
        data.make_names_unique();
        config.validate()?;
        data.split(config.seed);
        data.check_sizes(config.batch)?;
        if config.model.is_segmenter() != (data.task == Task::Segmentation) {
            return Err(Error::invalid(format!(
                "model {} does not fit a {} task",
                config.model.name(),
                data.task.name()
            )));
        }
        let vars = VarMap::new();
        TaskModel::new(config.model, data.classes.len(), &vars, &Device::Cpu)?;
        seed_weights(&vars, config.seed)?;
        let isp = IspParams::initial(&data.camera, DType::F32, &Device::Cpu)?;
        let norm = match data.task {
            Task::Classification => Normalisation::MICROSCOPY,
            Task::Segmentation => Normalisation::DRONE,
        };
        let summary = Summary {
            mode: format!("{:?}", config.mode).to_lowercase(),
            task: data.task.name().into(),
            model: config.model.name().into(),
            metric: match data.task {
                Task::Classification => "accuracy".into(),
                Task::Segmentation => "iou".into(),
            },
            ..Default::default()
        };
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            phases: phases(&config),
            config,
            data,
            vars,
            isp_default: isp.packed()?,
            isp,
            isp_running: RunningStats::default(),
            norm,
            rendered: RenderCache::new(RENDER_BUDGET),
            phase: 0,
            phase_step: 0,
            global_step: 0,
            snapshots: Vec::new(),
            summary,
            adversarial: Vec::new(),
            init: None,
            started: false,
            backend: None,
            timing: Timing::default(),
        })
    }

    /// What a backend for this session is built for.
    fn backend_spec(&self) -> Result<BackendSpec> {
        let first = self
            .data
            .items
            .first()
            .ok_or_else(|| Error::invalid("the session has no tiles"))?;
        Ok(BackendSpec {
            model: self.config.model,
            classes: self.data.classes.len(),
            batch: self.config.batch,
            height: first.raw.height(),
            width: first.raw.width(),
            tiles: self.data.items.len(),
            optimiser: adam_params(&self.config),
            backbone_lr: self.config.backbone_lr.unwrap_or(self.config.lr),
            forensics: (self.config.mode == Mode::Forensics)
                .then_some((self.config.penalty, self.config.lambda)),
        })
    }

    /// Chooses the device the steps run on (before the first step): see
    /// [`crate::train::backend::choose`]; `adapter` is the GPU the caller found, if any.
    pub async fn choose_device(
        &mut self,
        choice: DeviceChoice,
        adapter: Option<Rc<Gpu>>,
    ) -> Result<Choice> {
        if self.global_step > 0 || self.phase_step > 0 {
            return Err(Error::invalid(
                "a session chooses its device before its first step",
            ));
        }
        let (backend, choice) = choose(choice, adapter, &self.backend_spec()?).await?;
        self.backend = Some((backend, choice.clone()));
        Ok(choice)
    }

    /// The backend, the CPU where none was chosen.
    async fn backend(&mut self) -> Result<&mut dyn StepBackend> {
        if self.backend.is_none() {
            self.choose_device(DeviceChoice::Cpu, None).await?;
        }
        match &mut self.backend {
            Some((backend, _)) => Ok(backend.as_mut()),
            None => Err(Error::invalid("the session has no backend")),
        }
    }

    /// The device the steps run on, as the page and the CLI name it ("" before it is chosen).
    pub fn device_label(&self) -> String {
        self.backend
            .as_ref()
            .map(|(_, c)| c.device.clone())
            .unwrap_or_default()
    }

    /// The GPU's submissions and readbacks so far, where the session runs there.
    pub fn gpu_traffic(&self) -> Option<crate::gpu::Traffic> {
        self.backend.as_ref().and_then(|(b, _)| b.traffic())
    }

    pub fn total_steps(&self) -> usize {
        self.phases.iter().map(|p| phase_len(&self.config, p)).sum()
    }

    pub fn is_done(&self) -> bool {
        self.phase >= self.phases.len()
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    pub fn model_vars(&self) -> &VarMap {
        &self.vars
    }

    /// The processing as the last phase left it.
    pub fn isp(&self) -> &IspParams {
        &self.isp
    }

    /// The processing's batch-norm running statistics.
    pub fn isp_running(&self) -> &RunningStats {
        &self.isp_running
    }

    pub fn data(&self) -> &TileSet {
        &self.data
    }

    /// Starts the model from `file`'s weights (before the first step; strict names, the task
    /// head re-initialised where the file was made for other classes). A phase that starts the
    /// model afresh (optimisation's joint phase) starts from them too.
    pub fn start_from(&mut self, file: &WeightsFile) -> Result<Loaded> {
        if self.global_step > 0 || self.phase_step > 0 {
            return Err(Error::invalid(
                "a session takes its starting weights before its first step",
            ));
        }
        let loaded = load_strict(&self.vars, self.config.model, self.data.classes.len(), file)?;
        let weights = self
            .vars
            .data()
            .lock()
            .map_err(|_| Error::invalid("the model's weights are poisoned"))?
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
            .collect::<Result<Vec<_>>>()?;
        self.init = Some(Init {
            source: file.source.clone(),
            weights,
            head_reinitialised: loaded.head_reinitialised.clone(),
        });
        Ok(loaded)
    }

    /// Where the model started from, where it was not from seeded random weights.
    pub fn init(&self) -> Option<&Init> {
        self.init.as_ref()
    }

    /// A fresh model for a phase: seeded, then the starting weights where there are some.
    fn fresh_weights(&self) -> Result<VarMap> {
        let vars = VarMap::new();
        TaskModel::new(
            self.config.model,
            self.data.classes.len(),
            &vars,
            &Device::Cpu,
        )?;
        seed_weights(&vars, self.config.seed)?;
        if let Some(init) = &self.init {
            let data = vars
                .data()
                .lock()
                .map_err(|_| Error::invalid("the model's weights are poisoned"))?;
            for (name, tensor) in &init.weights {
                if let Some(var) = data.get(name) {
                    var.set(tensor)?;
                }
            }
        }
        Ok(vars)
    }

    /// Runs one step: an optimisation step, or one cell of the evaluation after training; None
    /// when the session is done.
    pub async fn step(&mut self) -> Result<Option<StepReport>> {
        let Some(phase) = self.phases.get(self.phase).cloned() else {
            return Ok(None);
        };
        // the evaluation takes the model as training left it; a model that did not train (a
        // run's checkpoint) is handed to the backend first
        if self.phase_step == 0 && (!matches!(phase, Phase::Evaluate) || !self.started) {
            self.start_phase(&phase).await?;
        }
        let started = Instant::now();
        let (stats, evaluating) = match &phase {
            Phase::Train { front, .. } => (self.train_step(front).await?, None),
            Phase::Attack { .. } => (self.attack_step().await?, None),
            Phase::Evaluate => {
                let (metric, cell) = self.evaluation_step(self.phase_step).await?;
                let loss = f32::NAN;
                (StepStats { loss, metric }, Some(cell))
            }
        };
        self.phase_step += 1;
        self.global_step += 1;
        let steps = phase_len(&self.config, &phase);
        let name = self.phase_name(&phase);
        if evaluating.is_none() {
            if !self.summary.curves.contains_key(&name) {
                self.summary.phase_order.push(name.clone());
            }
            self.summary.curves.entry(name.clone()).or_default().push((
                self.phase_step,
                stats.loss,
                stats.metric,
            ));
            if self.config.snapshot_every > 0
                && self.global_step.is_multiple_of(self.config.snapshot_every)
            {
                self.snapshot(&name).await?;
            }
        }
        let step_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.timing.add(evaluating.is_some(), step_ms);
        let samples = match evaluating {
            Some(_) => self.data.val_items().len(),
            None => self.config.batch,
        };
        let step = self.phase_step;
        if self.phase_step >= steps {
            if evaluating.is_none() {
                self.finish_phase(&phase).await?;
            }
            self.phase += 1;
            self.phase_step = 0;
        }
        Ok(Some(StepReport {
            phase: name,
            step,
            steps,
            global_step: self.global_step,
            total_steps: self.total_steps(),
            loss: stats.loss,
            metric: stats.metric,
            step_ms,
            samples_per_s: samples as f64 / (step_ms / 1000.0).max(1e-9),
            evaluating,
            left_ms: self.left_ms(),
        }))
    }

    /// The time the steps still to come will take, from the steps so far: training and attack
    /// steps at their mean, the evaluation's cells at theirs (before the first, at half a training
    /// step per validation batch: a forward pass without the backward).
    fn left_ms(&self) -> f64 {
        let (mut train, mut eval) = (0, 0);
        for (i, phase) in self.phases.iter().enumerate().skip(self.phase) {
            let done = if i == self.phase { self.phase_step } else { 0 };
            let left = phase_len(&self.config, phase).saturating_sub(done);
            match phase {
                Phase::Evaluate => eval += left,
                _ => train += left,
            }
        }
        let train_ms = self.timing.train.mean();
        let eval_ms = match self.timing.eval.steps {
            0 => train_ms * self.val_batches().len() as f64 / 2.0,
            _ => self.timing.eval.mean(),
        };
        train as f64 * train_ms + eval as f64 * eval_ms
    }

    fn phase_name(&self, phase: &Phase) -> String {
        match phase {
            Phase::Train { name, .. } => name.clone(),
            Phase::Attack { group } => format!("attack {group}"),
            Phase::Evaluate => "evaluate views".into(),
        }
    }
}

/// The model's optimiser (and the processing's where it trains with the model).
fn adam_params(config: &TrainConfig) -> ParamsAdamW {
    ParamsAdamW {
        lr: config.lr,
        weight_decay: config.weight_decay,
        ..Default::default()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::spec::models::ModelKind;

    /// With running statistics, the processing's batch norm gives a tile the same result in any
    /// batch: the validation metric does not move when the tiles are batched differently (with
    /// batch statistics it did, issue 14's 4c).
    #[test]
    fn evaluation_does_not_depend_on_batching() {
        let mut config = TrainConfig::new(Mode::Optimisation, ModelKind::ResNetSmall);
        config.steps = 12;
        config.snapshot_every = 0;
        let data = TileSet::synthetic(Task::Classification, 48, 32, 5).unwrap();
        let mut session = Session::new(config, data).unwrap();
        while pollster::block_on(session.step()).unwrap().is_some() {}
        assert_ne!(
            session.isp_running,
            RunningStats::default(),
            "training tracked statistics"
        );
        // saved beside the parameters, as PyTorch's state_dict keeps a batch norm's buffers
        let bytes = session
            .isp()
            .to_safetensors(Some(session.isp_running()))
            .unwrap();
        let saved = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
        let var = saved["batch_norm.running_var"].to_vec1::<f32>().unwrap();
        assert_eq!(var, session.isp_running.var.map(|v| v as f32));
        let front = Front::Param { train: false };
        // 12 validation tiles: batches of 4 and of 6 divide them without repeats
        let mut metrics = Vec::new();
        for batch in [4, 6, 12] {
            session.config.batch = batch;
            metrics.push(pollster::block_on(session.metric_on(&front, 100)).unwrap());
        }
        assert!(
            metrics.windows(2).all(|w| (w[0] - w[1]).abs() < 1e-6),
            "{metrics:?}"
        );
    }
}
