//! A training session: the paper's experiments as sequences of phases, advanced one optimisation
//! step at a time.
//!
//! - Synthesis: train the task model on one static view; then evaluate on all 12 views and the
//!   intensity levels (the drift table).
//! - Forensics: train on the default parametrized processing; then, model frozen, optimise one
//!   parameter group at a time to *raise* the task loss, penalised by the distance to the default
//!   output; report the metric drop per group and the adversarial views.
//! - Optimisation: train with the processing frozen (baseline), then from the same start with the
//!   processing trained jointly; compare the two learning curves.

use std::collections::BTreeMap;
use std::rc::Rc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use web_time::Instant;

use super::augment::Augment;
use super::corruption::Corruption;
use super::experiment::forensics_ranking;
use super::gpu::{GpuBackend, Input, Shape};
use super::render_cache::{RenderCache, RENDER_BUDGET};
use crate::codecs::f32_values;
use crate::data::tiles::{Item, TileSet};
use crate::data::Task;
use crate::gpu::nn::Distance;
use crate::gpu::Gpu;
use crate::isp::param::{forward, IspParams, RunningStats};
use crate::isp::static_pipeline::{render_all, View};
use crate::model::losses::{accuracy, cross_entropy, dice_loss, iou};
use crate::model::{seed_weights, trainable, NormMode, Normalisation, TaskModel};
use crate::raw::intensity::LEVELS;
use crate::spec::forensics::{SSIM_C1, SSIM_C2, SSIM_WINDOW};
use crate::spec::isp::{attacked, Stage, ALL_GROUPS, GROUPS};
use crate::spec::models::ModelKind;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Synthesis,
    Forensics,
    Optimisation,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "synthesis" => Ok(Mode::Synthesis),
            "forensics" => Ok(Mode::Forensics),
            "optimisation" | "optimization" => Ok(Mode::Optimisation),
            _ => Err(Error::invalid(format!(
                "unknown mode '{s}': use synthesis, forensics or optimisation"
            ))),
        }
    }
}

/// The distance forensics keeps the adversarial processing close to the default with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Penalty {
    L2,
    Ssim,
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub mode: Mode,
    pub model: ModelKind,
    /// Steps of each training phase.
    pub steps: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub batch: usize,
    pub seed: u64,
    /// The static view synthesis trains on.
    pub view: View,
    /// Forensics: the penalty and its weight.
    pub penalty: Penalty,
    pub lambda: f64,
    /// Forensics: the targeted groups (each attacked on its own), "all" for all at once.
    pub groups: Vec<String>,
    /// Forensics: steps per attacked group and their Adam step size (the processing's parameters
    /// are of order one, so attacks move faster than weights train).
    pub forensic_steps: usize,
    pub forensic_lr: f64,
    /// A gradient snapshot every this many steps (0: none).
    pub snapshot_every: usize,
    /// Synthesis: the intensity levels of the drift table.
    pub intensities: Vec<u32>,
    /// Synthesis: the severity (1 ..= 5) of the post-hoc corruption baseline, None for none.
    pub corruption_severity: Option<u8>,
}

impl TrainConfig {
    pub fn new(mode: Mode, model: ModelKind) -> Self {
        Self {
            mode,
            model,
            steps: 100,
            lr: 1e-3,
            weight_decay: 1e-4,
            batch: 8,
            seed: 0,
            view: View::paper_views()[2],
            penalty: Penalty::L2,
            lambda: 100.0,
            // each group on its own, then all at once (the paper's headline attack)
            groups: GROUPS
                .iter()
                .chain(&[ALL_GROUPS])
                .map(|g| g.to_string())
                .collect(),
            forensic_steps: 30,
            forensic_lr: 0.05,
            snapshot_every: 10,
            intensities: LEVELS.to_vec(),
            corruption_severity: None,
        }
    }
}

impl TrainConfig {
    /// Checks every setting against the lab's limits (`crate::spec::limits`), whoever set it (the
    /// page's URL, the CLI): the message names the setting and its limit.
    pub fn validate(&self) -> Result<()> {
        use crate::spec::limits::{self, check_real};
        limits::STEPS.check_usize(self.steps)?;
        limits::STEPS.check_usize(self.forensic_steps)?;
        limits::BATCH.check_usize(self.batch)?;
        limits::SNAPSHOT_EVERY.check_usize(self.snapshot_every)?;
        check_real("the learning rate", self.lr, limits::LEARNING_RATE)?;
        check_real(
            "forensics' learning rate",
            self.forensic_lr,
            limits::LEARNING_RATE,
        )?;
        check_real("the weight decay", self.weight_decay, limits::WEIGHT_DECAY)?;
        check_real("lambda", self.lambda, limits::LAMBDA)?;
        if self.intensities.is_empty() {
            return Err(Error::invalid(
                "the drift table needs at least one intensity",
            ));
        }
        for &i in &self.intensities {
            limits::INTENSITY.check(i as u64)?;
        }
        if let Some(severity) = self.corruption_severity {
            Corruption::check_severity(severity)?;
        }
        for g in &self.groups {
            if g != ALL_GROUPS && !GROUPS.contains(&g.as_str()) {
                return Err(Error::invalid(format!(
                    "unknown parameter group '{g}': use one of {} or all",
                    GROUPS.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// One optimisation step, as reported to the page and the progress bar.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub phase: String,
    /// Step within the phase (from 1) and the phase's length.
    pub step: usize,
    pub steps: usize,
    /// Steps of the whole session so far and in all.
    pub global_step: usize,
    pub total_steps: usize,
    pub loss: f32,
    /// Accuracy or IoU of the batch.
    pub metric: f32,
    pub step_ms: f64,
    pub samples_per_s: f64,
}

/// The parametrized ISP at one step, stage by stage, as the paper's gradient timeline shows it:
/// |dL/d stage| per pixel, averaged over channels and the fixed tiles, (H, W) row-major; and the
/// stage's output for the first fixed tile, (3, H, W) (the generated view as training changes it).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub phase: String,
    pub step: usize,
    pub height: usize,
    pub width: usize,
    pub stages: Vec<(String, Vec<f32>)>,
    /// One (3, H, W) output per stage, in `stages` order (empty in runs from before the lab kept
    /// them).
    #[serde(skip)]
    pub outputs: Vec<Vec<f32>>,
}

impl Snapshot {
    /// What a timeline lists of snapshot `index` (the maps and outputs come as images on
    /// request): phase, step, stage names, each map's display scale, and whether it kept outputs.
    pub fn describe(&self, index: usize) -> serde_json::Value {
        serde_json::json!({
            "index": index, "phase": self.phase, "step": self.step,
            "stages": self.stages.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            "maxima": self.stages.iter().map(|(_, v)| crate::viz::robust_max(v)).collect::<Vec<_>>(),
            "outputs": !self.outputs.is_empty(),
        })
    }

    /// Stage `stage`'s output for the first fixed tile, scaled for display.
    pub fn output_image(&self, stage: usize) -> Result<crate::viz::Rgba> {
        let values = self.outputs.get(stage).ok_or_else(|| {
            Error::invalid(format!(
                "snapshot at step {} kept no output of stage {stage}",
                self.step
            ))
        })?;
        Ok(crate::viz::inspect::planar_rgba(
            values,
            self.height,
            self.width,
        ))
    }

    /// Stage `stage`'s |gradient| as a heatmap scaled by `max`.
    pub fn image(&self, stage: usize, max: f32) -> Result<crate::viz::Rgba> {
        let (_, values) = self.stages.get(stage).ok_or_else(|| {
            Error::invalid(format!(
                "snapshot at step {} has no stage {stage}",
                self.step
            ))
        })?;
        Ok(crate::viz::heatmap(values, self.width, self.height, max))
    }
}

/// What a session found, written to summary.json.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub mode: String,
    pub task: String,
    pub model: String,
    pub metric: String,
    /// Validation metric at the end of each training phase.
    pub final_metric: BTreeMap<String, f32>,
    /// Synthesis: view -> intensity -> metric.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<String, BTreeMap<u32, f32>>,
    /// Synthesis: view -> metric drop at 100 % relative to the training view.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub view_drops: BTreeMap<String, f32>,
    /// Synthesis: corruption of the training view -> (metric, drop relative to the training view),
    /// the post-hoc baseline beside the drift table.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub corruptions: BTreeMap<String, (f32, f32)>,
    /// Forensics: group -> (metric before, after, drop).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub forensics: BTreeMap<String, (f32, f32, f32)>,
    /// Forensics: the groups, the largest drop first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forensics_ranking: Vec<String>,
    /// Loss and metric per step of each phase.
    pub curves: BTreeMap<String, Vec<(usize, f32, f32)>>,
    /// The phases in the order they ran (`curves` is keyed by name).
    pub phase_order: Vec<String>,
}

/// How a phase processes raw tiles before the model.
#[derive(Clone)]
enum Front {
    /// A static view, frozen (rendered once per tile).
    Static(View),
    /// A static view with a post-hoc corruption at a severity.
    Corrupted(View, Corruption, u8),
    /// The parametrized ISP; `train` optimises it with the model.
    Param { train: bool },
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
    device: Device,
    rng: ChaCha8Rng,
    vars: VarMap,
    model: TaskModel,
    model_opt: AdamW,
    /// The default processing (camera preset) and the current one.
    isp_default: IspParams,
    isp: IspParams,
    isp_opt: Option<AdamW>,
    /// The processing's batch-norm running statistics (training steps track, evaluation uses).
    isp_stats: RunningStats,
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
    /// Where the steps run when not on the CPU (see [`Session::use_gpu`]).
    gpu: Option<GpuBackend>,
}

fn phase_len(config: &TrainConfig, phase: &Phase) -> usize {
    match phase {
        Phase::Train { .. } => config.steps,
        Phase::Attack { .. } => config.forensic_steps,
        Phase::Evaluate => 0,
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
        let device = Device::Cpu;
        let vars = VarMap::new();
        let model = TaskModel::new(config.model, data.classes.len(), &vars, &device)?;
        seed_weights(&vars, config.seed)?;
        let model_opt = adam(&config, trainable(&vars))?;
        let isp_default = IspParams::initial(&data.camera, DType::F32, &device)?;
        let isp = IspParams::from_packed(&isp_default.packed()?, DType::F32, &device)?;
        let param = |train| Front::Param { train };
        let phases = match config.mode {
            Mode::Synthesis => vec![
                Phase::Train {
                    name: format!("train on {}", config.view),
                    front: Front::Static(config.view),
                    fresh_model: false,
                },
                Phase::Evaluate,
            ],
            Mode::Forensics => {
                let mut p = vec![Phase::Train {
                    name: "train on default processing".into(),
                    front: param(false),
                    fresh_model: false,
                }];
                p.extend(
                    config
                        .groups
                        .iter()
                        .map(|g| Phase::Attack { group: g.clone() }),
                );
                p
            }
            Mode::Optimisation => vec![
                Phase::Train {
                    name: "frozen processing".into(),
                    front: param(false),
                    fresh_model: false,
                },
                Phase::Train {
                    name: "joint processing".into(),
                    front: param(true),
                    fresh_model: true,
                },
            ],
        };
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
            config,
            data,
            device,
            vars,
            model,
            model_opt,
            isp_default,
            isp,
            isp_opt: None,
            isp_stats: RunningStats::default(),
            norm,
            rendered: RenderCache::new(RENDER_BUDGET),
            phases,
            phase: 0,
            phase_step: 0,
            global_step: 0,
            snapshots: Vec::new(),
            summary,
            adversarial: Vec::new(),
            gpu: None,
        })
    }

    /// Moves the session's steps onto `gpu` (before the first step): the model, the processing,
    /// the optimisers and the forensics objective are built there once; the session reads back
    /// a step's loss and metric, and the weights at the end of each phase.
    pub async fn use_gpu(&mut self, gpu: Rc<Gpu>) -> Result<()> {
        if self.global_step > 0 || self.phase_step > 0 {
            return Err(Error::invalid(
                "a session chooses its device before its first step",
            ));
        }
        let first = self
            .data
            .items
            .first()
            .ok_or_else(|| Error::invalid("the session has no tiles"))?;
        let forensics = (self.config.mode == Mode::Forensics).then(|| {
            let distance = match self.config.penalty {
                Penalty::L2 => Distance::L2,
                Penalty::Ssim => Distance::Ssim,
            };
            (distance, self.config.lambda as f32)
        });
        let shape = Shape {
            model: self.config.model,
            classes: self.data.classes.len(),
            batch: self.config.batch,
            height: first.raw.height(),
            width: first.raw.width(),
            forensics,
        };
        let optimiser = ParamsAdamW {
            lr: self.config.lr,
            weight_decay: self.config.weight_decay,
            ..Default::default()
        };
        self.gpu = Some(GpuBackend::new(gpu, &shape, optimiser).await?);
        Ok(())
    }

    /// Refuses, before the first step, a CPU session the page's worker could not hold (it would
    /// die of the failed allocation); native memory is the machine's.
    fn check_cpu_memory(&self) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        if let Some(first) = self.data.items.first() {
            use super::memory::{Estimate, PAGE, WASM_BUDGET};
            let tile = (first.raw.height(), first.raw.width());
            Estimate::of(
                self.config.model,
                self.data.classes.len(),
                tile,
                self.data.items.len(),
            )?
            .check(
                self.config.model,
                tile,
                self.config.batch,
                (WASM_BUDGET, PAGE, false),
            )?;
        }
        Ok(())
    }

    /// The device the steps run on, as the page and the CLI name it.
    pub fn device_label(&self) -> String {
        match &self.gpu {
            Some(backend) => crate::gpu::ComputeBackend::Gpu(backend.gpu().clone()).label(),
            None => crate::gpu::ComputeBackend::Cpu.label(),
        }
    }

    /// The GPU's submissions and readbacks so far, where the session runs there.
    pub fn gpu_traffic(&self) -> Option<crate::gpu::Traffic> {
        self.gpu.as_ref().map(|g| g.gpu().traffic())
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

    /// Forensics' adversarial processing of group `i` (attack order) as an image.
    pub fn adversarial_image(&self, i: usize) -> Result<crate::viz::Rgba> {
        let (group, t) = self
            .adversarial
            .get(i)
            .ok_or_else(|| Error::invalid(format!("no adversarial image {i}")))?;
        // the first tile, from the model's normalised range back to [0, 1] for the eye
        let t = t.get(0)?.affine(0.15, 0.5)?;
        let (c, h, w) = t.dims3()?;
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        if c < 3 {
            return Err(Error::invalid(format!(
                "the adversarial image of {group} has {c} channels, not 3"
            )));
        }
        let mut data = Vec::with_capacity(h * w * 4);
        for p in 0..h * w {
            for ch in 0..3 {
                data.push((v[ch * h * w + p].clamp(0.0, 1.0) * 255.0) as u8);
            }
            data.push(255);
        }
        Ok(crate::viz::Rgba {
            width: w,
            height: h,
            data,
        })
    }

    pub fn model_vars(&self) -> &VarMap {
        &self.vars
    }

    pub fn isp(&self) -> &IspParams {
        &self.isp
    }

    /// The processing's batch-norm running statistics.
    pub fn isp_running(&self) -> &RunningStats {
        &self.isp_stats
    }

    pub fn data(&self) -> &TileSet {
        &self.data
    }

    /// Runs one optimisation step (after a whole evaluation phase where one comes first); None
    /// when the session is done.
    pub async fn step(&mut self) -> Result<Option<StepReport>> {
        let phase = loop {
            let Some(phase) = self.phases.get(self.phase).cloned() else {
                return Ok(None);
            };
            if !matches!(phase, Phase::Evaluate) {
                break phase;
            }
            self.evaluate_views().await?;
            self.phase += 1;
            self.phase_step = 0;
        };
        if self.global_step == 0 && self.phase_step == 0 && self.gpu.is_none() {
            self.check_cpu_memory()?;
        }
        if self.phase_step == 0 {
            self.start_phase(&phase).await?;
        }
        let started = Instant::now();
        let (loss, metric) = match &phase {
            Phase::Train { front, .. } => self.train_step(front).await?,
            Phase::Attack { .. } => self.attack_step().await?,
            Phase::Evaluate => return Err(Error::invalid("an evaluation phase has no steps")),
        };
        self.phase_step += 1;
        self.global_step += 1;
        let steps = phase_len(&self.config, &phase);
        let name = self.phase_name(&phase);
        if !self.summary.curves.contains_key(&name) {
            self.summary.phase_order.push(name.clone());
        }
        self.summary
            .curves
            .entry(name.clone())
            .or_default()
            .push((self.phase_step, loss, metric));
        if self.config.snapshot_every > 0
            && self.global_step.is_multiple_of(self.config.snapshot_every)
        {
            self.snapshot(&name).await?;
        }
        let step_ms = started.elapsed().as_secs_f64() * 1000.0;
        let report = StepReport {
            phase: name,
            step: self.phase_step,
            steps,
            global_step: self.global_step,
            total_steps: self.total_steps(),
            loss,
            metric,
            step_ms,
            samples_per_s: self.config.batch as f64 / (step_ms / 1000.0).max(1e-9),
        };
        if self.phase_step >= steps {
            self.finish_phase(&phase).await?;
            self.phase += 1;
            self.phase_step = 0;
        }
        Ok(Some(report))
    }

    fn phase_name(&self, phase: &Phase) -> String {
        match phase {
            Phase::Train { name, .. } => name.clone(),
            Phase::Attack { group } => format!("attack {group}"),
            Phase::Evaluate => "evaluate views".into(),
        }
    }

    async fn start_phase(&mut self, phase: &Phase) -> Result<()> {
        let mut isp_training = None;
        let mut fresh = false;
        match phase {
            Phase::Train {
                front, fresh_model, ..
            } => {
                fresh = *fresh_model;
                if *fresh_model {
                    // the same start as the previous phase: reseed and rebuild
                    self.rng = ChaCha8Rng::seed_from_u64(self.config.seed);
                    self.vars = VarMap::new();
                    self.model = TaskModel::new(
                        self.config.model,
                        self.data.classes.len(),
                        &self.vars,
                        &self.device,
                    )?;
                    seed_weights(&self.vars, self.config.seed)?;
                    self.model_opt = adam(&self.config, trainable(&self.vars))?;
                    self.isp_stats = RunningStats::default();
                }
                self.isp = self.isp_default_copy()?;
                self.isp_opt = match front {
                    Front::Param { train: true } => {
                        isp_training = Some((attacked(ALL_GROUPS), adam_params(&self.config)));
                        Some(adam(&self.config, self.isp.vars().to_vec())?)
                    }
                    _ => None,
                };
            }
            Phase::Attack { group } => {
                self.isp = self.isp_default_copy()?;
                let targets: Vec<Var> = self
                    .isp
                    .named()
                    .filter(|(n, _)| attacked(group).contains(n))
                    .map(|(_, v)| v.clone())
                    .collect();
                let params = ParamsAdamW {
                    lr: self.config.forensic_lr,
                    weight_decay: 0.0,
                    ..Default::default()
                };
                isp_training = Some((attacked(group), params.clone()));
                self.isp_opt = Some(AdamW::new(targets, params)?);
            }
            Phase::Evaluate => {}
        }
        if let Some(gpu) = &mut self.gpu {
            let isp = self.isp.packed()?;
            let default = self.isp_default.packed()?;
            gpu.start_phase(
                &self.vars,
                fresh,
                (&isp, &self.isp_stats),
                &default,
                isp_training,
            )?;
        }
        if let Phase::Attack { group } = phase {
            let before = self.validate(&Front::Param { train: false }).await?;
            self.summary
                .forensics
                .insert(group.clone(), (before, before, 0.0));
        }
        Ok(())
    }

    async fn finish_phase(&mut self, phase: &Phase) -> Result<()> {
        // the device's weights and processing back into the session's copy, once per phase
        if let Some(gpu) = &self.gpu {
            let (packed, stats) = gpu.export(&self.vars).await?;
            self.isp = IspParams::from_packed(&packed, DType::F32, &self.device)?;
            self.isp_stats = stats;
        }
        match phase {
            Phase::Train { front, .. } => {
                let metric = self.validate(front).await?;
                self.summary
                    .final_metric
                    .insert(self.phase_name(phase), metric);
            }
            Phase::Attack { group } => {
                let after = self.validate(&Front::Param { train: false }).await?;
                if let Some(entry) = self.summary.forensics.get_mut(group) {
                    *entry = (entry.0, after, entry.0 - after);
                }
                self.summary.forensics_ranking = forensics_ranking(&self.summary)
                    .into_iter()
                    .map(|(group, ..)| group)
                    .collect();
                let first = self.data.val_items()[..1].to_vec();
                let view = match &mut self.gpu {
                    // the GPU's graph has one batch size: a batch of copies
                    Some(_) => {
                        let copies = vec![first[0].clone(); self.config.batch];
                        let raw = f32_values(&self.raw_batch(&copies, 100)?)?;
                        let (h, w) = (first[0].raw.height(), first[0].raw.width());
                        let gpu = self.gpu.as_mut().ok_or_else(no_gpu)?;
                        let rgb = gpu.processed_first(&raw).await?;
                        Tensor::from_vec(rgb, (1, 3, h, w), &self.device)?
                    }
                    None => {
                        self.processed(&first, &Front::Param { train: false }, 100, false)?
                            .0
                    }
                };
                self.adversarial.push((group.clone(), view.detach()));
            }
            Phase::Evaluate => {}
        }
        Ok(())
    }

    fn isp_default_copy(&self) -> Result<IspParams> {
        IspParams::from_packed(&self.isp_default.packed()?, DType::F32, &self.device)
    }

    /// Raw tiles of `items` at `intensity` as a (B, H, W) tensor.
    fn raw_batch(&self, items: &[Item], intensity: u32) -> Result<Tensor> {
        let (h, w) = (items[0].raw.height(), items[0].raw.width());
        let mut data = Vec::with_capacity(items.len() * h * w);
        for item in items {
            data.extend_from_slice(self.data.at_intensity(item, intensity as f64)?.data());
        }
        Ok(Tensor::from_vec(data, (items.len(), h, w), &self.device)?)
    }

    /// The model's input for `items`: processed (B, 3, H, W), normalised; and the targets.
    /// `train`: a training step's (the processing's batch norm uses and tracks the batch's
    /// statistics), else evaluation's (it uses the running ones).
    fn processed(
        &mut self,
        items: &[Item],
        front: &Front,
        intensity: u32,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let x = match front {
            Front::Static(view) => {
                let clean = self.static_batch(items, *view, intensity)?;
                self.norm.apply(&clean)?
            }
            Front::Corrupted(view, corruption, severity) => {
                let clean = self.static_batch(items, *view, intensity)?;
                // the same noise for the same tiles, whatever the batching
                let first = self.index_of(&items[0]) as u64;
                let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed ^ (first << 32));
                self.norm
                    .apply(&corruption.apply(&clean, *severity, &mut rng)?)?
            }
            // the parametrized ISP ends in batch norm: already normalised
            Front::Param { .. } => {
                let raw = self.raw_batch(items, intensity)?;
                if train {
                    let fwd = forward(&raw, &self.isp, true, false)?;
                    self.isp_stats.track(&fwd.stages[4].detach())?;
                    fwd.output
                } else {
                    self.isp_stats
                        .normalise(&forward(&raw, &self.isp, false, false)?.output)?
                }
            }
        };
        Ok((x, self.targets(items)?))
    }

    /// The position of a session's tile (names are unique: `TileSet::make_names_unique`).
    fn index_of(&self, item: &Item) -> usize {
        self.data
            .items
            .iter()
            .position(|i| i.name == item.name)
            .unwrap_or(self.data.items.len())
    }

    /// `items` through a static view, (B, 3, H, W) in [0, 1]; the training view's renders at
    /// full intensity are kept.
    fn static_batch(&mut self, items: &[Item], view: View, intensity: u32) -> Result<Tensor> {
        let keep = view == self.config.view && intensity == 100;
        let mut planes = Vec::with_capacity(items.len());
        for item in items {
            let index = self.index_of(item);
            let plane = match keep.then(|| self.rendered.get(index)).flatten() {
                Some(plane) => plane,
                None => {
                    let raw = self.data.at_intensity(item, intensity as f64)?;
                    let image = render_all(&raw, &self.data.camera, &[view])?.remove(0);
                    let hwc =
                        Tensor::from_vec(image.data, (image.height, image.width, 3), &self.device)?;
                    let plane = hwc.permute((2, 0, 1))?.contiguous()?;
                    if keep {
                        self.rendered.insert(index, plane.clone());
                    }
                    plane
                }
            };
            planes.push(plane);
        }
        Ok(Tensor::stack(&planes, 0)?)
    }

    fn targets(&self, items: &[Item]) -> Result<Tensor> {
        Ok(match self.data.task {
            Task::Classification => {
                let labels: Vec<u32> = items.iter().map(|i| i.label.unwrap_or(0) as u32).collect();
                Tensor::new(labels.as_slice(), &self.device)?
            }
            Task::Segmentation => {
                let (h, w) = (items[0].raw.height(), items[0].raw.width());
                let mut m = Vec::with_capacity(items.len() * h * w);
                for item in items {
                    m.extend(
                        item.mask
                            .as_deref()
                            .unwrap_or(&[])
                            .iter()
                            .map(|&v| v as f32),
                    );
                }
                Tensor::from_vec(m, (items.len(), 1, h, w), &self.device)?
            }
        })
    }

    /// Loss and metric of the model on a processed batch.
    fn loss_metric(&self, x: &Tensor, targets: &Tensor, train: bool) -> Result<(Tensor, f32)> {
        let mode = if train {
            NormMode::TRAIN
        } else {
            NormMode::EVAL
        };
        let out = self.model.forward(x, mode)?;
        Ok(match self.data.task {
            Task::Classification => (cross_entropy(&out, targets)?, accuracy(&out, targets)?),
            Task::Segmentation => (dice_loss(&out, targets)?, iou(&out, targets)?),
        })
    }

    fn batch(&mut self) -> Vec<Item> {
        let train = self.data.train_items();
        (0..self.config.batch)
            .map(|_| train[self.rng.random_range(0..train.len())].clone())
            .collect()
    }

    async fn train_step(&mut self, front: &Front) -> Result<(f32, f32)> {
        let items = self.batch();
        if self.gpu.is_some() {
            let aug = Augment::random(&mut self.rng);
            let targets = self.targets(&items)?;
            let targets = match self.data.task {
                Task::Segmentation => aug.apply(&targets)?,
                Task::Classification => targets,
            };
            let targets = f32_values(&targets)?;
            let input = self.gpu_input(&items, front, 100, Some(aug))?;
            let gpu = self.gpu.as_mut().ok_or_else(no_gpu)?;
            let stats = gpu.train(&input, &targets, aug).await?;
            return Ok((stats.loss, stats.metric));
        }
        let (x, targets) = self.processed(&items, front, 100, true)?;
        let aug = Augment::random(&mut self.rng);
        let x = aug.apply(&x)?;
        let targets = if self.data.task == Task::Segmentation {
            aug.apply(&targets)?
        } else {
            targets
        };
        let (loss, metric) = self.loss_metric(&x, &targets, true)?;
        let grads = loss.backward()?;
        self.model_opt.step(&grads)?;
        if let Some(opt) = &mut self.isp_opt {
            opt.step(&grads)?;
        }
        Ok((loss.to_scalar::<f32>()?, metric))
    }

    /// What the GPU backend takes for `items`: the raw batch where the device's ISP processes it,
    /// else the static view processed here (augmented where training augments it).
    fn gpu_input(
        &mut self,
        items: &[Item],
        front: &Front,
        intensity: u32,
        augment: Option<Augment>,
    ) -> Result<Input> {
        if let Front::Param { .. } = front {
            return Ok(Input::Raw(f32_values(&self.raw_batch(items, intensity)?)?));
        }
        let x = self
            .processed(items, front, intensity, augment.is_some())?
            .0;
        let x = match augment {
            Some(aug) => aug.apply(&x)?,
            None => x,
        };
        Ok(Input::Processed(f32_values(&x)?))
    }

    async fn attack_step(&mut self) -> Result<(f32, f32)> {
        let items = self.batch();
        let raw = self.raw_batch(&items, 100)?;
        let targets = self.targets(&items)?;
        if let Some(gpu) = &mut self.gpu {
            let stats = gpu
                .attack(&f32_values(&raw)?, &f32_values(&targets)?)
                .await?;
            return Ok((stats.loss, stats.metric));
        }
        // the model and the processing's batch norm in evaluation mode, as they are tested
        let out = self
            .isp_stats
            .normalise(&forward(&raw, &self.isp, false, false)?.output)?;
        let reference = self
            .isp_stats
            .normalise(&forward(&raw, &self.isp_default, false, false)?.output)?
            .detach();
        let (task_loss, metric) = self.loss_metric(&out, &targets, false)?;
        let distance = match self.config.penalty {
            Penalty::L2 => out.sub(&reference)?.sqr()?.mean_all()?,
            Penalty::Ssim => ssim_distance(&out, &reference)?,
        };
        // gradient ascent on the task loss, kept near the default processing
        let objective = ((distance * self.config.lambda)? - &task_loss)?;
        let grads = objective.backward()?;
        if let Some(opt) = &mut self.isp_opt {
            opt.step(&grads)?;
        }
        Ok((task_loss.to_scalar::<f32>()?, metric))
    }

    /// The model's metric on the validation tiles (eval mode).
    async fn validate(&mut self, front: &Front) -> Result<f32> {
        self.metric_on(front, 100).await
    }

    /// The validation tiles in full batches of the training size, the last one completed from
    /// the start of the list (the GPU's graph has one batch size; both backends batch the same
    /// way).
    fn val_batches(&self) -> Vec<Vec<Item>> {
        let val = self.data.val_items();
        let b = self.config.batch;
        (0..val.len().div_ceil(b))
            .map(|k| {
                (0..b)
                    .map(|j| val[(k * b + j) % val.len()].clone())
                    .collect()
            })
            .collect()
    }

    /// The mean metric over [`Session::val_batches`].
    async fn metric_on(&mut self, front: &Front, intensity: u32) -> Result<f32> {
        let batches = self.val_batches();
        let mut total = 0.0f32;
        for chunk in &batches {
            total += match self.gpu.is_some() {
                true => {
                    let targets = f32_values(&self.targets(chunk)?)?;
                    let input = self.gpu_input(chunk, front, intensity, None)?;
                    let gpu = self.gpu.as_mut().ok_or_else(no_gpu)?;
                    gpu.evaluate(&input, &targets).await?.metric
                }
                false => {
                    let (x, targets) = self.processed(chunk, front, intensity, false)?;
                    self.loss_metric(&x.detach(), &targets, false)?.1
                }
            };
        }
        Ok(total / batches.len().max(1) as f32)
    }

    /// The model on every static view and intensity level: view -> intensity -> metric.
    pub async fn view_table(
        &mut self,
        intensities: &[u32],
    ) -> Result<BTreeMap<String, BTreeMap<u32, f32>>> {
        let mut table = BTreeMap::new();
        for view in View::paper_views() {
            let mut row = BTreeMap::new();
            for &intensity in intensities {
                row.insert(
                    intensity,
                    self.metric_on(&Front::Static(view), intensity).await?,
                );
            }
            table.insert(view.to_string(), row);
        }
        Ok(table)
    }

    /// Synthesis: the drift table and the drops relative to the training view.
    async fn evaluate_views(&mut self) -> Result<()> {
        let intensities = self.config.intensities.clone();
        self.summary.views = self.view_table(&intensities).await?;
        let trained = self.config.view.to_string();
        let base = self
            .summary
            .views
            .get(&trained)
            .and_then(|r| r.get(&100))
            .copied()
            .unwrap_or(0.0);
        for (view, row) in &self.summary.views {
            if let Some(m) = row.get(&100) {
                self.summary.view_drops.insert(view.clone(), base - m);
            }
        }
        if let Some(severity) = self.config.corruption_severity {
            for corruption in Corruption::ALL {
                let front = Front::Corrupted(self.config.view, corruption, severity);
                let metric = self.metric_on(&front, 100).await?;
                self.summary
                    .corruptions
                    .insert(corruption.name().to_string(), (metric, base - metric));
            }
        }
        Ok(())
    }

    /// Replaces the model's weights (a checkpoint of an earlier run).
    pub fn load_model(&mut self, bytes: &[u8]) -> Result<()> {
        crate::model::load_weights(&self.vars, bytes)
    }

    /// |dL/d stage| on the first validation tiles (a training batch's worth) through the current
    /// processing and model.
    async fn snapshot(&mut self, phase: &str) -> Result<()> {
        let fixed = self.val_batches().swap_remove(0);
        let raw = self.raw_batch(&fixed, 100)?;
        let targets = self.targets(&fixed)?;
        let (h, w) = (fixed[0].raw.height(), fixed[0].raw.width());
        let (maps, outputs) = match &mut self.gpu {
            Some(gpu) => {
                gpu.stage_maps(&f32_values(&raw)?, &f32_values(&targets)?)
                    .await?
            }
            None => {
                // evaluation mode, as the GPU backend takes it
                let fwd = forward(&raw, &self.isp, false, true)?;
                let output = self.isp_stats.normalise(&fwd.output)?;
                let (loss, _) = self.loss_metric(&output, &targets, false)?;
                let grads = loss.backward()?;
                let maps = fwd
                    .taps
                    .iter()
                    .map(|tap| match grads.get(tap.as_tensor()) {
                        Some(g) => {
                            Ok(g.abs()?.mean(1)?.mean(0)?.flatten_all()?.to_vec1::<f32>()?)
                        }
                        None => Ok(vec![0.0; h * w]),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let outputs = fwd
                    .stages
                    .iter()
                    .map(|stage| Ok(stage.get(0)?.flatten_all()?.to_vec1::<f32>()?))
                    .collect::<Result<Vec<_>>>()?;
                (maps, outputs)
            }
        };
        let stages = Stage::ALL
            .iter()
            .zip(maps)
            .map(|(stage, map)| (stage.name().to_string(), map))
            .collect();
        self.snapshots.push(Snapshot {
            phase: phase.into(),
            step: self.global_step,
            height: h,
            width: w,
            stages,
            outputs,
        });
        Ok(())
    }
}

fn adam_params(config: &TrainConfig) -> ParamsAdamW {
    ParamsAdamW {
        lr: config.lr,
        weight_decay: config.weight_decay,
        ..Default::default()
    }
}

fn adam(config: &TrainConfig, vars: Vec<Var>) -> Result<AdamW> {
    Ok(AdamW::new(vars, adam_params(config))?)
}

fn no_gpu() -> Error {
    Error::Gpu("the session's GPU backend is gone".into())
}

/// 1 - SSIM with a 7x7 box window (differentiable; averaged over channels and positions).
fn ssim_distance(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (c1, c2) = (SSIM_C1, SSIM_C2);
    let pool = box_mean_7x7;
    let (mx, my) = (pool(x)?, pool(y)?);
    let sxx = (pool(&x.sqr()?)? - mx.sqr()?)?;
    let syy = (pool(&y.sqr()?)? - my.sqr()?)?;
    let sxy = (pool(&x.mul(y)?)? - mx.mul(&my)?)?;
    let num = ((mx.mul(&my)? * 2.0)? + c1)?.mul(&((sxy * 2.0)? + c2)?)?;
    let den = ((mx.sqr()? + my.sqr()?)? + c1)?.mul(&((sxx + syy)? + c2)?)?;
    Ok(num.div(&den)?.mean_all()?.affine(-1.0, 1.0)?)
}

/// The mean of every 7x7 window (stride 1, no padding) of (B, C, H, W), as sums of shifted
/// views: candle's avg_pool2d has no backward for a stride below its size.
fn box_mean_7x7(x: &Tensor) -> Result<Tensor> {
    const K: usize = SSIM_WINDOW;
    let (_, _, h, w) = x.dims4()?;
    if h < K || w < K {
        return Err(Error::invalid(format!(
            "SSIM's 7x7 window does not fit a {h}x{w} tile: use the l2 penalty"
        )));
    }
    let mut rows = x.narrow(2, 0, h - K + 1)?;
    for dy in 1..K {
        rows = (rows + x.narrow(2, dy, h - K + 1)?)?;
    }
    let mut sum = rows.narrow(3, 0, w - K + 1)?;
    for dx in 1..K {
        sum = (sum + rows.narrow(3, dx, w - K + 1)?)?;
    }
    Ok((sum / (K * K) as f64)?)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::data::Task;

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
            session.isp_stats,
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
        assert_eq!(var, session.isp_stats.var.map(|v| v as f32));
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
