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

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use web_time::Instant;

use super::augment::Augment;
use super::corruption::Corruption;
use super::data::{Item, TileSet};
use crate::data::synthetic::Task;
use crate::isp::param::{forward, IspParams, Stage};
use crate::isp::static_pipeline::{render_all, View};
use crate::model::losses::{accuracy, cross_entropy, dice_loss, iou};
use crate::model::{seed_weights, trainable, ModelKind, Normalisation, TaskModel};
use crate::raw::intensity::LEVELS;
use crate::{Error, Result};

/// The parameter groups forensics can target (the paper's names).
pub const GROUPS: [&str; 7] = [
    "black_level",
    "white_balance",
    "colour_correction",
    "gamma_correct",
    "sharpening_filter",
    "gaussian_blur",
    "debayer",
];

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
            lambda: 1.0,
            groups: GROUPS.iter().map(|g| g.to_string()).collect(),
            forensic_steps: 30,
            forensic_lr: 0.05,
            snapshot_every: 10,
            intensities: LEVELS.to_vec(),
            corruption_severity: None,
        }
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

/// |dL/d stage| for each ISP stage at one step: per pixel, averaged over channels and the fixed
/// tiles, (H, W) row-major.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub phase: String,
    pub step: usize,
    pub height: usize,
    pub width: usize,
    pub stages: Vec<(String, Vec<f32>)>,
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
    /// Loss and metric per step of each phase.
    pub curves: BTreeMap<String, Vec<(usize, f32, f32)>>,
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
    norm: Normalisation,
    /// Static view renders of the training view at full intensity per tile index: every step
    /// and every validation reuses them (the drift table's other views and levels are rendered
    /// once each and not kept: at 256 px they would hold 66 MB per validation tile).
    rendered: BTreeMap<usize, Tensor>,
    phases: Vec<Phase>,
    phase: usize,
    phase_step: usize,
    global_step: usize,
    pub snapshots: Vec<Snapshot>,
    pub summary: Summary,
    /// Forensics: the adversarial processing of the first validation tile per group.
    pub adversarial: Vec<(String, Tensor)>,
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
        if config.batch == 0 || config.steps == 0 {
            return Err(Error::invalid("steps and batch must be at least 1"));
        }
        if let Some(severity) = config.corruption_severity {
            Corruption::check_severity(severity)?;
        }
        if config.model.is_segmenter() != (data.task == Task::Segmentation) {
            return Err(Error::invalid(format!(
                "model {} does not fit a {} task",
                config.model.name(),
                data.task.name()
            )));
        }
        for g in &config.groups {
            if g != "all" && !GROUPS.contains(&g.as_str()) {
                return Err(Error::invalid(format!(
                    "unknown parameter group '{g}': use one of {} or all",
                    GROUPS.join(", ")
                )));
            }
        }
        // the page's worker dies of a failed allocation: refuse what would not fit first
        #[cfg(target_arch = "wasm32")]
        if let Some(first) = data.items.first() {
            let tile = (first.raw.height(), first.raw.width());
            super::memory::Estimate::of(config.model, data.classes.len(), tile, data.items.len())?
                .check(config.model, tile, config.batch, super::memory::WASM_BUDGET)?;
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
            norm,
            rendered: BTreeMap::new(),
            phases,
            phase: 0,
            phase_step: 0,
            global_step: 0,
            snapshots: Vec::new(),
            summary,
            adversarial: Vec::new(),
        })
    }

    pub fn total_steps(&self) -> usize {
        self.phases.iter().map(|p| phase_len(&self.config, p)).sum()
    }

    pub fn is_done(&self) -> bool {
        self.phase >= self.phases.len()
    }

    pub fn model_vars(&self) -> &VarMap {
        &self.vars
    }

    pub fn isp(&self) -> &IspParams {
        &self.isp
    }

    pub fn data(&self) -> &TileSet {
        &self.data
    }

    /// Runs one optimisation step (or a whole evaluation phase); None when the session is done.
    pub fn step(&mut self) -> Result<Option<StepReport>> {
        let Some(phase) = self.phases.get(self.phase).cloned() else {
            return Ok(None);
        };
        if self.phase_step == 0 {
            self.start_phase(&phase)?;
        }
        let started = Instant::now();
        let (loss, metric) = match &phase {
            Phase::Train { front, .. } => self.train_step(front)?,
            Phase::Attack { group } => self.attack_step(group)?,
            Phase::Evaluate => {
                self.evaluate_views()?;
                self.phase += 1;
                self.phase_step = 0;
                return self.step();
            }
        };
        self.phase_step += 1;
        self.global_step += 1;
        let steps = phase_len(&self.config, &phase);
        let name = self.phase_name(&phase);
        self.summary
            .curves
            .entry(name.clone())
            .or_default()
            .push((self.phase_step, loss, metric));
        if self.config.snapshot_every > 0 && self.global_step % self.config.snapshot_every == 0 {
            self.snapshot(&name)?;
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
            self.finish_phase(&phase)?;
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

    fn start_phase(&mut self, phase: &Phase) -> Result<()> {
        match phase {
            Phase::Train {
                front, fresh_model, ..
            } => {
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
                }
                self.isp = self.isp_default_copy()?;
                self.isp_opt = match front {
                    Front::Param { train: true } => {
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
                    .filter(|(n, _)| group == "all" || n.split('.').next() == Some(group.as_str()))
                    .map(|(_, v)| v.clone())
                    .collect();
                let params = ParamsAdamW {
                    lr: self.config.forensic_lr,
                    weight_decay: 0.0,
                    ..Default::default()
                };
                self.isp_opt = Some(AdamW::new(targets, params)?);
                let before = self.validate(&Front::Param { train: false })?;
                self.summary
                    .forensics
                    .insert(group.clone(), (before, before, 0.0));
            }
            Phase::Evaluate => {}
        }
        Ok(())
    }

    fn finish_phase(&mut self, phase: &Phase) -> Result<()> {
        match phase {
            Phase::Train { front, .. } => {
                let metric = self.validate(front)?;
                self.summary
                    .final_metric
                    .insert(self.phase_name(phase), metric);
            }
            Phase::Attack { group } => {
                let after = self.validate(&Front::Param { train: false })?;
                if let Some(entry) = self.summary.forensics.get_mut(group) {
                    *entry = (entry.0, after, entry.0 - after);
                }
                let first = self.data.val_items()[..1].to_vec();
                let view = self
                    .processed(&first, &Front::Param { train: false }, 100)?
                    .0;
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
    fn processed(
        &mut self,
        items: &[Item],
        front: &Front,
        intensity: u32,
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
                forward(&self.raw_batch(items, intensity)?, &self.isp, true, false)?.output
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
            let plane = match self.rendered.get(&index) {
                Some(plane) if keep => plane.clone(),
                _ => {
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
        let out = self.model.forward(x, train)?;
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

    fn train_step(&mut self, front: &Front) -> Result<(f32, f32)> {
        let items = self.batch();
        let (x, targets) = self.processed(&items, front, 100)?;
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

    fn attack_step(&mut self, _group: &str) -> Result<(f32, f32)> {
        let items = self.batch();
        let raw = self.raw_batch(&items, 100)?;
        let out = forward(&raw, &self.isp, true, false)?.output;
        let reference = forward(&raw, &self.isp_default, true, false)?
            .output
            .detach();
        let targets = self.targets(&items)?;
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

    /// The model's metric on the validation tiles (eval mode, batches of the training size).
    fn validate(&mut self, front: &Front) -> Result<f32> {
        self.metric_on(front, 100)
    }

    fn metric_on(&mut self, front: &Front, intensity: u32) -> Result<f32> {
        let val: Vec<Item> = self.data.val_items().to_vec();
        let (mut total, mut n) = (0.0f32, 0usize);
        for chunk in val.chunks(self.config.batch.max(2)) {
            let (x, targets) = self.processed(chunk, front, intensity)?;
            let (_, metric) = self.loss_metric(&x.detach(), &targets, false)?;
            total += metric * chunk.len() as f32;
            n += chunk.len();
        }
        Ok(total / n.max(1) as f32)
    }

    /// The model on every static view and intensity level: view -> intensity -> metric.
    pub fn view_table(
        &mut self,
        intensities: &[u32],
    ) -> Result<BTreeMap<String, BTreeMap<u32, f32>>> {
        let mut table = BTreeMap::new();
        for view in View::paper_views() {
            let mut row = BTreeMap::new();
            for &intensity in intensities {
                row.insert(intensity, self.metric_on(&Front::Static(view), intensity)?);
            }
            table.insert(view.to_string(), row);
        }
        Ok(table)
    }

    /// Synthesis: the drift table and the drops relative to the training view.
    fn evaluate_views(&mut self) -> Result<()> {
        let intensities = self.config.intensities.clone();
        self.summary.views = self.view_table(&intensities)?;
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
                let metric = self.metric_on(&front, 100)?;
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

    /// |dL/d stage| on the first validation tiles through the current processing and model.
    fn snapshot(&mut self, phase: &str) -> Result<()> {
        let fixed: Vec<Item> = self.data.val_items().iter().take(2).cloned().collect();
        let raw = self.raw_batch(&fixed, 100)?;
        let fwd = forward(&raw, &self.isp, true, true)?;
        let (loss, _) = self.loss_metric(&fwd.output, &self.targets(&fixed)?, false)?;
        let grads = loss.backward()?;
        let (_, _, h, w) = fwd.output.dims4()?;
        let mut stages = Vec::new();
        for (stage, tap) in Stage::ALL.iter().zip(&fwd.taps) {
            let map = match grads.get(tap.as_tensor()) {
                Some(g) => g.abs()?.mean(1)?.mean(0)?.flatten_all()?.to_vec1::<f32>()?,
                None => vec![0.0; h * w],
            };
            stages.push((stage.name().to_string(), map));
        }
        self.snapshots.push(Snapshot {
            phase: phase.into(),
            step: self.global_step,
            height: h,
            width: w,
            stages,
        });
        Ok(())
    }
}

fn adam(config: &TrainConfig, vars: Vec<Var>) -> Result<AdamW> {
    Ok(AdamW::new(
        vars,
        ParamsAdamW {
            lr: config.lr,
            weight_decay: config.weight_decay,
            ..Default::default()
        },
    )?)
}

/// 1 - SSIM with a 7x7 box window (differentiable; averaged over channels and positions).
fn ssim_distance(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let pool = |t: &Tensor| -> Result<Tensor> { Ok(t.avg_pool2d_with_stride(7, 1)?) };
    let (mx, my) = (pool(x)?, pool(y)?);
    let sxx = (pool(&x.sqr()?)? - mx.sqr()?)?;
    let syy = (pool(&y.sqr()?)? - my.sqr()?)?;
    let sxy = (pool(&x.mul(y)?)? - mx.mul(&my)?)?;
    let num = ((mx.mul(&my)? * 2.0)? + c1)?.mul(&((sxy * 2.0)? + c2)?)?;
    let den = ((mx.sqr()? + my.sqr()?)? + c1)?.mul(&((sxx + syy)? + c2)?)?;
    Ok(num.div(&den)?.mean_all()?.affine(-1.0, 1.0)?)
}
