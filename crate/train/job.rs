//! Jobs: one session, or the paper's 12-view synthesis experiment as a session per training
//! view, driven to their end by the core for the CLI and the page alike. A job hands what it does
//! to a [`JobSink`]: progress (where a page pauses or cancels), each session's run as it ends
//! (the CLI writes a run folder, the page its IndexedDB store), and the experiment's table after
//! each row.

use std::collections::BTreeMap;
use std::rc::Rc;

use async_trait::async_trait;

use super::backend::{Choice, DeviceChoice};
use super::experiment::SynthesisTable;
use super::session::{Mode, Snapshot, StepReport, TrainConfig};
use super::Session;
use crate::codecs::hex;
use crate::data::tiles::TileSet;
use crate::gpu::Gpu;
use crate::isp::static_pipeline::View;
use crate::model::{Loaded, WeightsFile};
use crate::{Error, Result};

/// Milliseconds since the Unix epoch (a run's start and end).
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a run knows of a session beyond the session itself.
#[derive(Debug, Clone)]
pub struct RunSource {
    /// The user's label; the mode, model and view when empty.
    pub name: String,
    pub started_ms: u64,
    /// Whether the session ran to its end.
    pub finished: bool,
}

/// What a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Experiment {
    /// One session of the configured mode.
    Session,
    /// A synthesis session per training view, each tested on all 12 views and the intensity
    /// levels: every row of the 12 x 12 table, or one (a task of a job array).
    Synthesis { train_view: Option<View> },
}

pub struct Job {
    pub experiment: Experiment,
    pub config: TrainConfig,
    pub data: TileSet,
    /// The model's starting weights (fine-tuning), or seeded random ones.
    pub weights: Option<WeightsFile>,
    pub device: DeviceChoice,
    /// The GPU the caller found (natively, or the page's WebGPU device).
    pub adapter: Option<Rc<Gpu>>,
    /// The runs' label in the lab log (the mode, model and view where empty).
    pub name: String,
}

/// What a job reports as it goes. `index` of `count` sessions; `label` the session's (its
/// training view in the synthesis experiment, else its mode).
pub enum Progress<'a> {
    /// A session begins: its steps, where it trains, and what its weights were.
    Session {
        index: usize,
        count: usize,
        label: &'a str,
        total_steps: usize,
        choice: &'a Choice,
        loaded: Option<&'a Loaded>,
    },
    /// A step of it, with the gradient snapshots it took.
    Step {
        index: usize,
        count: usize,
        label: &'a str,
        report: &'a StepReport,
        snapshots: &'a [Snapshot],
    },
}

/// What the sink wants after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Go,
    /// End the job now: the current session is kept as a cancelled run.
    Stop,
}

#[async_trait(?Send)]
pub trait JobSink {
    /// Progress; a sink that pauses waits before it answers.
    async fn progress(&mut self, progress: Progress<'_>) -> Result<Control>;
    /// A session that ended (finished or cancelled), to keep as a run; `folder` names it within
    /// the job (the training view, or the mode).
    async fn keep(&mut self, session: &Session, ended: &RunSource, folder: &str) -> Result<()>;
    /// The synthesis table after each of its rows.
    async fn table(&mut self, table: &SynthesisTable) -> Result<()>;
}

/// How a job ended: whether it finished, its last session (its results, weights and
/// snapshots), and the synthesis table.
pub struct Outcome {
    pub finished: bool,
    pub last: Option<Session>,
    pub table: Option<SynthesisTable>,
}

/// What every row of a synthesis table must share: rows trained otherwise are not one
/// experiment (`SynthesisTable::gather` refuses them). The same for the CLI's rows and the
/// page's, so either gathers with the other.
pub fn row_settings(
    config: &TrainConfig,
    data: &TileSet,
    weights: Option<&WeightsFile>,
) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let camera = serde_json::to_vec(&data.camera).unwrap_or_default();
    // a camera twin's column belongs to the rows tested on that twin (named where there is one,
    // so that tables from before twins gather as they did)
    let twin = config
        .camera_twin
        .as_ref()
        .map(|t| ("camera_twin".to_string(), t.name().to_string()));
    let mut settings = BTreeMap::from([
        ("task".into(), data.task.name().to_string()),
        ("model".into(), config.model.name().to_string()),
        ("data".into(), data.label.clone()),
        (
            "camera".into(),
            hex(&Sha256::digest(&camera))[..12].to_string(),
        ),
        ("steps".into(), config.steps.to_string()),
        ("batch".into(), config.batch.to_string()),
        ("lr".into(), config.lr.to_string()),
        ("weight_decay".into(), config.weight_decay.to_string()),
        ("seed".into(), config.seed.to_string()),
        (
            "init".into(),
            weights.map_or("random (seeded)".into(), |w| w.source.sha256.clone()),
        ),
        ("freeze_backbone".into(), config.freeze_backbone.label()),
        (
            "backbone_lr".into(),
            config.backbone_lr.unwrap_or(config.lr).to_string(),
        ),
    ]);
    settings.extend(twin);
    settings
}

/// The sessions of `experiment`: (label, training view).
fn plan(experiment: Experiment, config: &TrainConfig) -> Vec<(String, Option<View>)> {
    match experiment {
        Experiment::Session => vec![(format!("{:?}", config.mode).to_lowercase(), None)],
        Experiment::Synthesis { train_view } => {
            let views = match train_view {
                Some(view) => vec![view],
                None => View::paper_views(),
            };
            views
                .into_iter()
                .map(|v| (v.to_string(), Some(v)))
                .collect()
        }
    }
}

/// Runs `job` to its end (or until the sink stops it).
pub async fn run(job: Job, sink: &mut dyn JobSink) -> Result<Outcome> {
    let sessions = plan(job.experiment, &job.config);
    let count = sessions.len();
    let mut table = match job.experiment {
        Experiment::Session => None,
        Experiment::Synthesis { .. } => Some(SynthesisTable::new(
            match job.data.task {
                crate::data::Task::Classification => "accuracy",
                crate::data::Task::Segmentation => "iou",
            },
            &job.config.intensities,
            row_settings(&job.config, &job.data, job.weights.as_ref()),
        )?),
    };
    // the first session's measured choice holds for the rest
    let mut device = job.device;
    let mut last = None;
    for (index, (label, view)) in sessions.iter().enumerate() {
        let mut config = job.config.clone();
        if let Some(view) = view {
            config.mode = Mode::Synthesis;
            config.view = *view;
        }
        let mut session = Session::new(config, job.data.clone())?;
        let loaded = match &job.weights {
            Some(file) => Some(session.start_from(file)?),
            None => None,
        };
        let choice = session.choose_device(device, job.adapter.clone()).await?;
        device = match choice.gpu {
            true => DeviceChoice::Gpu,
            false => DeviceChoice::Cpu,
        };
        sink.progress(Progress::Session {
            index,
            count,
            label,
            total_steps: session.total_steps(),
            choice: &choice,
            loaded: loaded.as_ref(),
        })
        .await?;
        let started_ms = now_ms();
        let finished = steps(&mut session, sink, (index, count, label)).await?;
        let run_name = match (job.name.trim(), view) {
            ("", _) => String::new(),
            (name, Some(view)) if count > 1 => format!("{name}: {view}"),
            (name, _) => name.to_string(),
        };
        let ended = RunSource {
            name: run_name,
            started_ms,
            finished,
        };
        sink.keep(&session, &ended, label).await?;
        if let (Some(table), Some(view), true) = (&mut table, view, finished) {
            table.add_row(*view, &session.summary)?;
            sink.table(table).await?;
        }
        last = Some(session);
        if !finished {
            return Ok(Outcome {
                finished,
                last,
                table,
            });
        }
    }
    Ok(Outcome {
        finished: true,
        last,
        table,
    })
}

/// Steps `session` to its end, reporting each step; false where the sink stopped it.
async fn steps(
    session: &mut Session,
    sink: &mut dyn JobSink,
    (index, count, label): (usize, usize, &str),
) -> Result<bool> {
    let mut sent = 0;
    while let Some(report) = session.step().await? {
        let snapshots = session.snapshots.get(sent..).unwrap_or_default();
        sent = session.snapshots.len();
        let control = sink
            .progress(Progress::Step {
                index,
                count,
                label,
                report: &report,
                snapshots,
            })
            .await?;
        if control == Control::Stop {
            return Ok(false);
        }
    }
    if !session.is_done() {
        return Err(Error::invalid("a session stopped before its end"));
    }
    Ok(true)
}
