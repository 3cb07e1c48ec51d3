//! A session's settings: the experiment (mode), the model, the optimiser and each mode's own
//! settings, checked against the lab's limits whoever set them.

use serde::Serialize;

use crate::isp::param::TwinView;
use crate::isp::static_pipeline::View;
use crate::raw::intensity::LEVELS;
use crate::spec::isp::{ALL_GROUPS, GROUPS};
use crate::spec::models::ModelKind;
use crate::spec::settings::{
    DEFAULT_ATTACK_LR, DEFAULT_ATTACK_STEPS, DEFAULT_BATCH, DEFAULT_LAMBDA, DEFAULT_LR,
    DEFAULT_SEED, DEFAULT_STEPS, DEFAULT_WEIGHT_DECAY,
};
use crate::train::corruption::Corruption;
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

/// Fine-tuning: how long the backbone stays frozen (its parameters unchanged, its batch norms
/// in evaluation mode) in each training phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Freeze {
    #[default]
    Never,
    /// The phase's first steps.
    Steps(usize),
    /// The whole session.
    Always,
}

impl Freeze {
    /// "none" (or "0"), a number of steps, or "all".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" | "0" | "" => Ok(Freeze::Never),
            "all" => Ok(Freeze::Always),
            n => match n.parse::<u64>() {
                Ok(steps) => Ok(Freeze::Steps(
                    crate::spec::limits::STEPS.check(steps)? as usize
                )),
                Err(_) => Err(Error::invalid(format!(
                    "freeze the backbone for '{s}'? use none, a number of steps or all"
                ))),
            },
        }
    }

    /// Whether the backbone is frozen at `step` (from 0) of a training phase.
    pub fn at(self, step: usize) -> bool {
        match self {
            Freeze::Never => false,
            Freeze::Steps(n) => step < n,
            Freeze::Always => true,
        }
    }

    /// As [`Freeze::parse`] reads it.
    pub fn label(self) -> String {
        match self {
            Freeze::Never => "none".into(),
            Freeze::Steps(n) => n.to_string(),
            Freeze::Always => "all".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub mode: Mode,
    pub model: ModelKind,
    /// Steps of each training phase.
    pub steps: usize,
    pub lr: f64,
    /// Fine-tuning: the backbone's own learning rate (the model's where None).
    pub backbone_lr: Option<f64>,
    /// Fine-tuning: how long the backbone stays frozen in each training phase.
    pub freeze_backbone: Freeze,
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
    /// Synthesis: a camera twin (`fit-camera`) tested beside the 12 static views, a 13th column
    /// of the drift table.
    pub camera_twin: Option<TwinView>,
}

impl TrainConfig {
    pub fn new(mode: Mode, model: ModelKind) -> Self {
        Self {
            mode,
            model,
            steps: DEFAULT_STEPS,
            lr: DEFAULT_LR,
            backbone_lr: None,
            freeze_backbone: Freeze::Never,
            weight_decay: DEFAULT_WEIGHT_DECAY,
            batch: DEFAULT_BATCH,
            seed: DEFAULT_SEED,
            view: View::paper_views()[2],
            penalty: Penalty::L2,
            lambda: DEFAULT_LAMBDA,
            // each group on its own, then all at once (the paper's headline attack)
            groups: GROUPS
                .iter()
                .chain(&[ALL_GROUPS])
                .map(|g| g.to_string())
                .collect(),
            forensic_steps: DEFAULT_ATTACK_STEPS,
            forensic_lr: DEFAULT_ATTACK_LR,
            snapshot_every: 10,
            intensities: LEVELS.to_vec(),
            corruption_severity: None,
            camera_twin: None,
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
        if let Some(lr) = self.backbone_lr {
            check_real("the backbone's learning rate", lr, limits::LEARNING_RATE)?;
        }
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
