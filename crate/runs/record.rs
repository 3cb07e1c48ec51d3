//! A finished (or cancelled) session written down as a run: its description (`run.json`), its
//! results and its weights.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::tables::{corruptions_csv, curves_csv, drift_csv, metrics_csv};
use super::{
    Run, ISP, META, METRICS, MODEL, SNAPSHOTS, SUMMARY, TWIN, TWIN_RENDERED, TWIN_SUMMARY,
};
use crate::model::save_weights;
use crate::train::camera_fit::CameraTwin;
use crate::train::experiment::{forensics_csv, forensics_ranking};
use crate::train::job::{now_ms, RunSource};
use crate::train::{Session, Snapshot, Summary};
use crate::{Error, Result};

/// The version of the run format this lab writes (and the newest it reads).
const FORMAT: u32 = 1;

/// What the runs table lists and filters by; MLflow gets `params` as its params and `metrics` as
/// the run's final metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub format: u32,
    /// Unique among a user's runs: the start time and a random suffix.
    pub id: String,
    /// The label the user sees (editable; the id stays).
    pub name: String,
    /// Start and end, milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub finished_ms: u64,
    /// `finished`, or `cancelled` (a cancelled session keeps what it reached).
    pub status: String,
    pub mode: String,
    pub task: String,
    pub model: String,
    /// The static view synthesis trained on (empty for the other modes).
    pub view: String,
    /// Where the tiles came from, as the user named them (a record, a folder, `synthetic`).
    pub dataset: String,
    /// The device that trained (a GPU adapter, or the CPU).
    pub device: String,
    /// `accuracy` (classification) or `iou` (segmentation).
    pub metric: String,
    /// Optimisation steps taken, all phases together.
    pub steps: usize,
    /// Every setting of the session, as text.
    pub params: BTreeMap<String, String>,
    /// Final validation metrics by name (see [`RunMeta::headline`]).
    pub metrics: BTreeMap<String, f64>,
    /// Forensics: the attacked groups in attack order; each has `adversarial/<group>.png`.
    #[serde(default)]
    pub adversarial: Vec<String>,
}

impl RunMeta {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let meta: Self =
            serde_json::from_slice(bytes).map_err(|e| Error::decode(super::META, e))?;
        if meta.format > FORMAT {
            return Err(Error::invalid(format!(
                "run {} was written by a newer lab (run format {}; this lab reads up to {FORMAT}): update the lab",
                meta.id, meta.format
            )));
        }
        if meta.id.is_empty()
            || meta.id.len() > 128
            || !meta
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(format!(
                "{META}: the run id {:?} is not letters, digits, '-' and '_'",
                meta.id
            )));
        }
        Ok(meta)
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::invalid(format!("{META}: {e}")))
    }

    /// The run's headline: the validation metric at the end of its last training phase.
    pub fn headline(&self) -> Option<f64> {
        self.metrics.get(&format!("val_{}", self.metric)).copied()
    }

    #[cfg(test)]
    pub fn example() -> Self {
        Self {
            format: FORMAT,
            id: "20261202-101500-ab12".into(),
            name: "example".into(),
            started_ms: 1_796_206_500_000,
            finished_ms: 1_796_206_560_000,
            status: "finished".into(),
            mode: "synthesis".into(),
            task: "classification".into(),
            model: "resnet_small".into(),
            view: "bilinear-none-none".into(),
            dataset: "synthetic".into(),
            device: "CPU".into(),
            metric: "accuracy".into(),
            steps: 10,
            params: BTreeMap::from([("lr".into(), "0.001".into())]),
            metrics: BTreeMap::from([("val_accuracy".into(), 0.5)]),
            adversarial: vec![],
        }
    }
}

/// A run id: the start time (UTC, to the second) and a random suffix, so that ids sort by time
/// and two sessions started in the same second still differ.
pub fn new_id(started_ms: u64) -> String {
    let secs = started_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let suffix: u32 = rand::random();
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{:08x}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        suffix
    )
}

/// The calendar date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

pub fn adversarial_path(group: &str) -> String {
    let slug: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("adversarial/{slug}.png")
}

impl Run {
    /// The session as a run: its settings, results, snapshots, adversarial images and weights.
    pub fn from_session(session: &Session, source: &RunSource) -> Result<Self> {
        let config = session.config();
        let summary = &session.summary;
        let view = match config.mode {
            crate::train::Mode::Synthesis => config.view.to_string(),
            _ => String::new(),
        };
        let adversarial: Vec<String> = session.adversarial.iter().map(|(g, _)| g.clone()).collect();
        let started_ms = source.started_ms;
        let meta = RunMeta {
            format: FORMAT,
            id: new_id(started_ms),
            name: if source.name.trim().is_empty() {
                [summary.mode.as_str(), config.model.name(), view.as_str()]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                source.name.trim().to_string()
            },
            started_ms,
            finished_ms: now_ms(),
            status: if source.finished {
                "finished"
            } else {
                "cancelled"
            }
            .into(),
            mode: summary.mode.clone(),
            task: summary.task.clone(),
            model: config.model.name().into(),
            view,
            dataset: session.data().label.clone(),
            device: session.device_label(),
            metric: summary.metric.clone(),
            steps: summary.curves.values().map(Vec::len).sum(),
            params: session_params(session),
            metrics: summary_metrics(summary),
            adversarial: adversarial.clone(),
        };

        let mut files = BTreeMap::from([(META.to_string(), meta.to_json()?)]);
        files.extend(session_files(session, &adversarial)?);
        Run::from_files(files)
    }
}
impl Run {
    /// A camera fit as a run (mode `camera fit`, metric the held-out PSNR): its settings, the
    /// held-out scores, the curve of the probe's PSNR, and the twin's files. `dataset` names the
    /// shot (the DNG), `device` what fitted it.
    pub fn from_camera_twin(twin: &CameraTwin, dataset: &str, device: &str) -> Result<Self> {
        let s = &twin.summary;
        let a = &s.alignment;
        let params = BTreeMap::from([
            ("steps".into(), s.steps.to_string()),
            ("batch".into(), s.batch.to_string()),
            ("lr".into(), s.learning_rate.to_string()),
            ("seed".into(), s.seed.to_string()),
            ("stages".into(), s.stages.join(", ")),
            ("crop".into(), format!("{:?}", a.crop)),
            ("binning".into(), a.binning.to_string()),
            (
                "fit_size".into(),
                format!("{}x{}", a.fit_size[0], a.fit_size[1]),
            ),
        ]);
        let metrics = BTreeMap::from([
            ("val_psnr".into(), s.held_out_psnr),
            ("val_ssim".into(), s.held_out_ssim),
            ("initial_psnr".into(), s.initial_held_out_psnr),
        ]);
        let meta = RunMeta {
            format: FORMAT,
            id: new_id(twin.started_ms),
            name: s.name.clone(),
            started_ms: twin.started_ms,
            finished_ms: twin.finished_ms,
            status: "finished".into(),
            mode: "camera fit".into(),
            task: String::new(),
            model: "camera twin".into(),
            view: String::new(),
            dataset: dataset.to_string(),
            device: device.to_string(),
            metric: "psnr".into(),
            steps: s.steps,
            params,
            metrics,
            adversarial: vec![],
        };
        let curve = twin.curve.iter().map(|point| ("camera fit", *point));
        Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json()?),
            (METRICS.to_string(), curves_csv(curve).into_bytes()),
            (TWIN.to_string(), twin.to_safetensors()?),
            (TWIN_SUMMARY.to_string(), twin.summary_json().into_bytes()),
            (TWIN_RENDERED.to_string(), twin.rendered_png()?),
        ]))
    }
}

/// The run's params: the session's settings, its data, its device and where the model started.
fn session_params(session: &Session) -> BTreeMap<String, String> {
    let (config, summary) = (session.config(), &session.summary);
    let init = session.init().map(|i| &i.source);
    BTreeMap::from([
        ("mode".into(), summary.mode.clone()),
        ("task".into(), summary.task.clone()),
        ("model".into(), config.model.name().to_string()),
        ("steps".into(), config.steps.to_string()),
        ("lr".into(), config.lr.to_string()),
        ("weight_decay".into(), config.weight_decay.to_string()),
        ("batch".into(), config.batch.to_string()),
        ("seed".into(), config.seed.to_string()),
        ("view".into(), config.view.to_string()),
        (
            "penalty".into(),
            format!("{:?}", config.penalty).to_lowercase(),
        ),
        ("lambda".into(), config.lambda.to_string()),
        ("groups".into(), config.groups.join(",")),
        ("forensic_steps".into(), config.forensic_steps.to_string()),
        ("snapshot_every".into(), config.snapshot_every.to_string()),
        (
            "intensities".into(),
            config
                .intensities
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "corruption_severity".into(),
            config
                .corruption_severity
                .map_or("none".into(), |s| s.to_string()),
        ),
        ("dataset".into(), session.data().label.clone()),
        ("tiles".into(), session.data().items.len().to_string()),
        ("train_tiles".into(), session.data().train.to_string()),
        ("classes".into(), session.data().classes.join(",")),
        ("device".into(), session.device_label()),
        // where the model started: seeded random weights, or a file (fine-tuning)
        (
            "init".into(),
            init.map_or("random (seeded)".into(), |i| i.name.clone()),
        ),
        (
            "init_url".into(),
            init.and_then(|i| i.url.clone()).unwrap_or_default(),
        ),
        (
            "init_sha256".into(),
            init.map(|i| i.sha256.clone()).unwrap_or_default(),
        ),
        ("freeze_backbone".into(), config.freeze_backbone.label()),
        (
            "backbone_lr".into(),
            config.backbone_lr.unwrap_or(config.lr).to_string(),
        ),
    ])
}

/// The run's final metrics: each phase's validation metric, the headline, the forensics and the
/// views' drops.
fn summary_metrics(summary: &Summary) -> BTreeMap<String, f64> {
    let metric = &summary.metric;
    let mut metrics = BTreeMap::new();
    for (phase, value) in &summary.final_metric {
        metrics.insert(format!("val_{metric}/{phase}"), f64::from(*value));
    }
    // the headline: the last training phase's, in the order the phases ran
    if let Some(last) = summary
        .phase_order
        .iter()
        .rev()
        .find(|p| summary.final_metric.contains_key(*p))
    {
        metrics.insert(
            format!("val_{metric}"),
            f64::from(summary.final_metric[last]),
        );
    }
    for (group, (before, after, drop)) in &summary.forensics {
        metrics.insert(format!("forensics_before/{group}"), f64::from(*before));
        metrics.insert(format!("forensics_after/{group}"), f64::from(*after));
        metrics.insert(format!("forensics_drop/{group}"), f64::from(*drop));
    }
    for (view, drop) in &summary.view_drops {
        metrics.insert(format!("view_drop/{view}"), f64::from(*drop));
    }
    metrics
}

/// The run's files besides its description: results, tables, snapshots, adversarial images and
/// weights.
fn session_files(session: &Session, adversarial: &[String]) -> Result<BTreeMap<String, Vec<u8>>> {
    let (config, summary) = (session.config(), &session.summary);
    let mut files = BTreeMap::new();
    let json = serde_json::to_vec_pretty(summary)
        .map_err(|e| Error::invalid(format!("{SUMMARY}: {e}")))?;
    files.insert(SUMMARY.into(), json);
    files.insert(METRICS.into(), metrics_csv(summary).into_bytes());
    if !summary.views.is_empty() {
        files.insert(
            "tables/drift.csv".into(),
            drift_csv(
                &summary.views,
                &config.intensities,
                &config.view.to_string(),
            )
            .into_bytes(),
        );
    }
    if !summary.forensics.is_empty() {
        files.insert(
            "tables/forensics.csv".into(),
            forensics_csv(&forensics_ranking(summary)).into_bytes(),
        );
    }
    if !summary.corruptions.is_empty() {
        files.insert(
            "tables/corruptions.csv".into(),
            corruptions_csv(summary).into_bytes(),
        );
    }
    if !session.snapshots.is_empty() {
        files.insert(SNAPSHOTS.into(), write_snapshots(&session.snapshots)?);
    }
    for (i, group) in adversarial.iter().enumerate() {
        let image = session.adversarial_image(i)?;
        let png = crate::codecs::png8(image.width, image.height, 4, &image.data)?;
        files.insert(adversarial_path(group), png);
    }
    files.insert(MODEL.into(), save_weights(session.model_vars())?);
    files.insert(
        ISP.into(),
        session.isp().to_safetensors(Some(session.isp_running()))?,
    );
    Ok(files)
}

/// The snapshots as safetensors: tensor `NNNN/<stage>` is snapshot NNNN's |gradient| map at
/// `stage` (H, W), `NNNN/output/<stage>` the stage's output for the first fixed tile (3, H, W); the
/// metadata key `snapshots` lists each snapshot's phase, step, size and stages in order.
fn write_snapshots(snapshots: &[Snapshot]) -> Result<Vec<u8>> {
    use safetensors::tensor::{Dtype, TensorView};
    let index: Vec<serde_json::Value> = snapshots
        .iter()
        .map(|s| {
            serde_json::json!({
                "phase": s.phase, "step": s.step, "height": s.height, "width": s.width,
                "stages": s.stages.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut tensors: Vec<(String, &[f32], Vec<usize>)> = Vec::new();
    for (i, s) in snapshots.iter().enumerate() {
        for (k, (stage, map)) in s.stages.iter().enumerate() {
            tensors.push((format!("{i:04}/{stage}"), map, vec![s.height, s.width]));
            if let Some(output) = s.outputs.get(k) {
                let shape = vec![3, s.height, s.width];
                tensors.push((format!("{i:04}/output/{stage}"), output, shape));
            }
        }
    }
    let views = tensors
        .iter()
        .map(|(name, values, shape)| {
            TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values))
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid(format!("snapshot {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([(
        "snapshots".to_string(),
        serde_json::to_string(&index).map_err(|e| Error::invalid(e.to_string()))?,
    )]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::invalid(format!("writing {SNAPSHOTS}: {e}")))
}

pub fn read_snapshots(bytes: &[u8]) -> Result<Vec<Snapshot>> {
    #[derive(Deserialize)]
    struct Entry {
        phase: String,
        step: usize,
        height: usize,
        width: usize,
        stages: Vec<String>,
    }
    let bad = |e: &dyn std::fmt::Display| Error::decode(SNAPSHOTS, e);
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(&e))?;
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(&e))?;
    let index = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("snapshots"))
        .ok_or_else(|| bad(&"no `snapshots` index in its metadata"))?;
    let index: Vec<Entry> = serde_json::from_str(index).map_err(|e| bad(&e))?;
    // a float32 tensor of exactly `shape`, by name
    let values = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let t = tensors
            .tensor(name)
            .map_err(|err| bad(&format!("{name}: {err}")))?;
        if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape {
            return Err(bad(&format!("{name} is not a {shape:?} float32 tensor")));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let names = tensors.names();
    index
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let (h, w) = (e.height, e.width);
            let stages = e
                .stages
                .iter()
                .map(|stage| Ok((stage.clone(), values(&format!("{i:04}/{stage}"), &[h, w])?)))
                .collect::<Result<Vec<_>>>()?;
            // outputs: all stages' or none (a run from before the lab kept them)
            let outputs = match names
                .iter()
                .any(|n| n.starts_with(&format!("{i:04}/output/")))
            {
                true => e
                    .stages
                    .iter()
                    .map(|stage| values(&format!("{i:04}/output/{stage}"), &[3, h, w]))
                    .collect::<Result<Vec<_>>>()?,
                false => Vec::new(),
            };
            Ok(Snapshot {
                phase: e.phase,
                step: e.step,
                height: h,
                width: w,
                stages,
                outputs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_utc_start() {
        // 2026-12-02 10:15:00 UTC
        let id = new_id(1_796_206_500_000);
        assert!(id.starts_with("20261202-101500-"), "{id}");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    }

    #[test]
    fn snapshots_round_trip() {
        let s = vec![
            Snapshot {
                phase: "train".into(),
                step: 10,
                height: 2,
                width: 3,
                stages: vec![("demosaic".into(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5])],
                outputs: vec![(0..18).map(|v| v as f32 / 18.0).collect()],
            },
            Snapshot {
                phase: "joint".into(),
                step: 20,
                height: 1,
                width: 1,
                stages: vec![
                    ("gamma".into(), vec![0.25]),
                    ("sharpening".into(), vec![-1.0]),
                ],
                outputs: vec![],
            },
        ];
        let back = read_snapshots(&write_snapshots(&s).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{s:?}"));
    }
}
