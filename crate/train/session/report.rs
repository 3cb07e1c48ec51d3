//! What a session reports: each step, the gradient snapshots of the parametrized ISP, and the
//! summary of what it found.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    /// Tiles per second: the batch's while training, the validation tiles' while evaluating.
    pub samples_per_s: f64,
    /// The evaluation's cell this step computed (a view at a level, a corruption); none while
    /// training. Such a step has no loss and is no point of a curve.
    pub evaluating: Option<String>,
    /// The time the rest of the session will take, estimated from its steps so far.
    pub left_ms: f64,
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

/// What a session found, written to summary.json (and read back by the lab log's database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
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
