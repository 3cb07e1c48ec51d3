//! A session's settings as the page (its controls and URL) and the CLI (its flags) give them: one
//! conversion into a [`TrainConfig`], checked against the lab's limits, for both. Numbers arrive
//! as JavaScript numbers (f64): NaN, negative or fractional counts are refused by name.

use serde::Deserialize;

use super::job::Experiment;
use super::session::{Freeze, Mode, Penalty, TrainConfig};
use crate::data::Task;
use crate::spec::limits::{self, Bound};
use crate::spec::models::ModelKind;
use crate::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainOptions {
    /// synthesis, forensics or optimisation.
    pub mode: String,
    /// What the job runs: "session" (one, the default) or "synthesis" (the 12-view experiment).
    pub experiment: Option<String>,
    /// The synthesis experiment: one training view (one row of the table) instead of all 12.
    pub train_view: Option<String>,
    /// The model's name; the task's browser-sized model when absent.
    pub model: Option<String>,
    pub steps: f64,
    pub lr: f64,
    pub weight_decay: Option<f64>,
    pub batch: f64,
    pub seed: f64,
    /// Synthesis: the static view to train on (DEBAYER-SHARPENING-DENOISING).
    pub view: Option<String>,
    pub lambda: Option<f64>,
    /// l2 or ssim.
    pub penalty: Option<String>,
    /// Forensics: a group, "all" at once, or "each" (or none) for every group in turn.
    pub group: Option<String>,
    pub forensic_steps: Option<f64>,
    /// Fine-tuning: the backbone frozen for "none", a number of steps or "all".
    pub freeze_backbone: Option<String>,
    /// Fine-tuning: the backbone's own learning rate.
    pub backbone_lr: Option<f64>,
    /// A gradient snapshot every this many steps (0: none); about 8 per phase in a session, none
    /// in the synthesis experiment's, where not given.
    pub snapshot_every: Option<f64>,
    pub intensities: Option<Vec<f64>>,
    pub corruption_severity: Option<f64>,
}

/// A count from a JavaScript number: whole, not negative, within `bound`.
pub fn whole(bound: &Bound, value: f64) -> Result<u64> {
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 || value > u64::MAX as f64 {
        return Err(Error::invalid(format!(
            "{} {value} is not a whole number (limits {} to {})",
            bound.name, bound.min, bound.max
        )));
    }
    bound.check(value as u64)
}

impl TrainOptions {
    /// The job these settings ask for on `task`'s tiles: the experiment and the configuration
    /// its sessions start from.
    pub fn job(&self, task: Task) -> Result<(Experiment, TrainConfig)> {
        let mut config = self.config(task)?;
        let experiment = match self.experiment.as_deref() {
            None | Some("session") => Experiment::Session,
            Some("synthesis") => {
                if self.snapshot_every.is_none() {
                    config.snapshot_every = 0;
                }
                let train_view = match self.train_view.as_deref().filter(|v| !v.is_empty()) {
                    Some(view) => Some(view.parse()?),
                    None => None,
                };
                Experiment::Synthesis { train_view }
            }
            Some(other) => {
                return Err(Error::invalid(format!(
                    "unknown experiment '{other}': use session or synthesis"
                )))
            }
        };
        Ok((experiment, config))
    }

    /// The checked configuration for a session on `task`'s tiles.
    pub fn config(&self, task: Task) -> Result<TrainConfig> {
        let model = match self.model.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => ModelKind::parse(m)?,
            None if task == Task::Segmentation => ModelKind::UNetSmall,
            None => ModelKind::ResNetSmall,
        };
        let mut c = TrainConfig::new(Mode::parse(&self.mode)?, model);
        c.steps = whole(&limits::STEPS, self.steps)? as usize;
        c.batch = whole(&limits::BATCH, self.batch)? as usize;
        c.seed = whole(&limits::SEED, self.seed)?;
        c.lr = self.lr;
        if let Some(wd) = self.weight_decay {
            c.weight_decay = wd;
        }
        if let Some(view) = &self.view {
            c.view = view.parse()?;
        }
        if let Some(lambda) = self.lambda {
            c.lambda = lambda;
        }
        c.penalty = match self.penalty.as_deref() {
            None | Some("l2") => Penalty::L2,
            Some("ssim") => Penalty::Ssim,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "unknown penalty '{other}': use l2 or ssim"
                )))
            }
        };
        if let Some(group) = self
            .group
            .as_deref()
            .filter(|g| !g.is_empty() && *g != "each")
        {
            c.groups = vec![group.to_string()];
        }
        if let Some(steps) = self.forensic_steps {
            c.forensic_steps = whole(&limits::STEPS, steps)? as usize;
        }
        if let Some(freeze) = &self.freeze_backbone {
            c.freeze_backbone = Freeze::parse(freeze)?;
        }
        c.backbone_lr = self.backbone_lr;
        c.snapshot_every = match self.snapshot_every {
            Some(every) => whole(&limits::SNAPSHOT_EVERY, every)? as usize,
            None => (c.steps / 8).max(1),
        };
        if let Some(levels) = &self.intensities {
            c.intensities = levels
                .iter()
                .map(|&i| whole(&limits::INTENSITY, i).map(|i| i as u32))
                .collect::<Result<_>>()?;
        }
        c.corruption_severity = self
            .corruption_severity
            .map(|s| whole(&limits::CORRUPTION_SEVERITY, s).map(|s| s as u8))
            .transpose()?;
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> TrainOptions {
        TrainOptions {
            mode: "forensics".into(),
            steps: 10.0,
            lr: 1e-3,
            batch: 4.0,
            ..Default::default()
        }
    }

    #[test]
    fn hostile_numbers_are_refused_by_name() {
        assert!(options().config(Task::Classification).is_ok());
        for (patch, expect) in [
            (
                TrainOptions {
                    steps: f64::NAN,
                    ..options()
                },
                "the steps NaN",
            ),
            (
                TrainOptions {
                    batch: -3.0,
                    ..options()
                },
                "the batch -3",
            ),
            (
                TrainOptions {
                    batch: 0.0,
                    ..options()
                },
                "the batch 0",
            ),
            (
                TrainOptions {
                    batch: 2.5,
                    ..options()
                },
                "the batch 2.5",
            ),
            (
                TrainOptions {
                    steps: 1e12,
                    ..options()
                },
                "the steps 1000000000000",
            ),
            (
                TrainOptions {
                    lr: f64::INFINITY,
                    ..options()
                },
                "the learning rate inf",
            ),
            (
                TrainOptions {
                    lambda: Some(-1.0),
                    ..options()
                },
                "lambda -1",
            ),
            (
                TrainOptions {
                    penalty: Some("l1".into()),
                    ..options()
                },
                "unknown penalty 'l1'",
            ),
            (
                TrainOptions {
                    intensities: Some(vec![0.0]),
                    ..options()
                },
                "an intensity (%) 0",
            ),
            (
                TrainOptions {
                    group: Some("exposure".into()),
                    ..options()
                },
                "unknown parameter group 'exposure'",
            ),
        ] {
            let err = patch.config(Task::Classification).unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
        }
    }
}
