//! `lens2logit train` and `lens2logit evaluate`: the paper's experiments on the same engine the
//! page runs, with a progress bar and files a notebook can read.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use lens2logit::data::Task;
use lens2logit::isp::static_pipeline::View;
use lens2logit::model::WeightsFile;
use lens2logit::raw::intensity::LEVELS;
use lens2logit::raw::CameraParams;
use lens2logit::runs::{drift_csv, Run};
use lens2logit::spec::models::ModelKind;
use lens2logit::spec::settings::{
    DEFAULT_ATTACK_STEPS, DEFAULT_BATCH, DEFAULT_FREEZE, DEFAULT_LAMBDA, DEFAULT_LR, DEFAULT_SEED,
    DEFAULT_SIDE, DEFAULT_STEPS, DEFAULT_TILES, DEFAULT_WEIGHT_DECAY,
};
use lens2logit::train::experiment::{forensics_ranking, SynthesisTable};
use lens2logit::train::job::{
    Control, Experiment, Job as JobSpec, JobSink, Outcome, Progress, RunSource,
};
use lens2logit::train::timeline::timeline_gif;
use lens2logit::train::{DeviceChoice, Mode, Session, TileSet, TrainConfig, TrainOptions};

use crate::common::{load_camera, may_replace, read_file, write_file};
use crate::runs::RUN_FOLDER;
use crate::synth::TaskArg;

/// What every training session of the CLI takes (`train` and each of `experiment`'s): the data,
/// the model and its optimiser, the device.
#[derive(Args)]
pub(crate) struct SessionArgs {
    /// A directory in the layout of `fetch`/`synth`, or `synthetic`.
    #[arg(long)]
    pub data: String,
    #[arg(long, value_enum)]
    pub task: TaskArg,
    /// Steps of each training phase.
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// resnet_small (default for classification), unet_small (default for segmentation),
    /// unet_plus_plus (segmentation) or resnet18.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value_t = DEFAULT_LR)]
    pub lr: f64,
    #[arg(long, default_value_t = DEFAULT_WEIGHT_DECAY)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Synthetic data: number of tiles and their side.
    #[arg(long, default_value_t = DEFAULT_TILES)]
    pub n: usize,
    #[arg(long, default_value_t = DEFAULT_SIDE)]
    pub size: usize,
    /// The camera of a data directory (default: the first camera raw's own, else microscopy for
    /// classification, drone for segmentation).
    #[arg(long)]
    pub camera: Option<String>,
    /// The device that trains: auto (times a step on the GPU, where there is an adapter, and
    /// on the CPU, and takes the faster), cpu, or gpu (fails where there is no GPU adapter).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Start the model from these weights (fine-tuning): a file or an http(s) URL, safetensors
    /// or a PyTorch checkpoint (.pth/.pt: a state_dict, or {"state_dict": ...}) under the
    /// library's names (torchvision's resnet18, smp's Unet/UnetPlusPlus). A task head made for
    /// other classes starts afresh.
    #[arg(long)]
    pub init: Option<String>,
    /// Fine-tuning: keep the backbone (the classifier's trunk, the U-Nets' encoder) frozen, its
    /// batch norms in evaluation mode, for this many steps of each training phase, or `all`.
    #[arg(long, default_value = DEFAULT_FREEZE)]
    pub freeze_backbone: String,
    /// Fine-tuning: the backbone's learning rate (default: --lr).
    #[arg(long)]
    pub backbone_lr: Option<f64>,
}

impl SessionArgs {
    /// The session settings these flags give; the mode's own settings at their defaults.
    pub fn options(&self, mode: &str) -> TrainOptions {
        TrainOptions {
            mode: mode.into(),
            model: self.model.clone(),
            steps: self.steps as f64,
            lr: self.lr,
            weight_decay: Some(self.weight_decay),
            batch: self.batch as f64,
            seed: self.seed as f64,
            freeze_backbone: Some(self.freeze_backbone.clone()),
            backbone_lr: self.backbone_lr,
            ..TrainOptions::default()
        }
    }

    /// The weights of `--init`, read or fetched.
    pub fn weights(&self) -> Result<Option<WeightsFile>, String> {
        self.init.as_deref().map(read_weights).transpose()
    }

    /// The tiles of `--data` (with `--camera`), or the synthetic set.
    pub fn tiles(&self) -> Result<TileSet, String> {
        let camera = self.camera.as_deref().map(load_camera).transpose()?;
        tiles(
            &self.data,
            self.task.into(),
            camera,
            self.n,
            self.size,
            self.seed,
        )
    }
}

/// Forensics' attack: how far from the default processing it may go, and how long it runs.
#[derive(Args)]
pub struct AttackArgs {
    /// Forensics: weight of the distance to the default processing (L2 or SSIM of the
    /// normalised outputs) against the task loss; at 100 the attacks stay near enough to the
    /// default for the groups to rank apart, at 1 most groups reach chance.
    #[arg(long, default_value_t = DEFAULT_LAMBDA)]
    pub lambda: f64,
    #[arg(long, default_value = "l2")]
    pub penalty: String,
    /// Forensics: steps of each group's attack.
    #[arg(long, default_value_t = DEFAULT_ATTACK_STEPS)]
    pub forensic_steps: usize,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// synthesis, forensics or optimisation.
    #[arg(long)]
    mode: String,
    /// The static view synthesis trains on, DEBAYER-SHARPENING-DENOISING.
    #[arg(long, default_value = "bilinear-unsharp_masking-gaussian_denoising")]
    view: View,
    #[command(flatten)]
    attack: AttackArgs,
    /// Forensics: one parameter group, `all` (all at once), or every group in turn and then all
    /// at once when absent.
    #[arg(long)]
    group: Option<String>,
    /// A gradient snapshot (per-stage |dL/d stage|, kept in the run) every this many steps; 0 for
    /// none (default: about 8 per phase).
    #[arg(long)]
    snapshot_every: Option<usize>,
    /// Synthesis: intensity levels of the drift table (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = LEVELS.to_vec())]
    intensities: Vec<u32>,
    /// Synthesis: also evaluate the training view under the post-hoc corruption baseline
    /// (Gaussian noise, Gaussian blur, contrast) at this ImageNet-C severity, 1 to 5.
    #[arg(long)]
    corruption_severity: Option<u8>,
    /// Synthesis: also test on a camera twin (a folder `fit-camera` wrote, or its
    /// twin.safetensors): a 13th view of the drift table, `twin:NAME`.
    #[arg(long)]
    extra_view: Option<PathBuf>,
    /// The run folder to write (replaced if it is a run folder already).
    #[arg(long)]
    out: PathBuf,
    /// The run's label in `runs list`, the page's runs table and MLflow.
    #[arg(long, default_value = "")]
    name: String,
    /// Also log the run to this MLflow tracking server (REST API), e.g. http://127.0.0.1:5000.
    #[arg(long)]
    mlflow: Option<String>,
    /// The MLflow experiment to log into (created where missing).
    #[arg(long, default_value = "lens2logit")]
    experiment: String,
    /// Also write the gradient timeline (per-stage |gradient| above the stage outputs, a frame
    /// per snapshot) as an animated GIF.
    #[arg(long)]
    timeline_out: Option<PathBuf>,
}

/// What `evaluate` needs to rebuild a run's model and data.
#[derive(Serialize, Deserialize)]
struct RunConfig {
    task: String,
    model: String,
    view: String,
    classes: Vec<String>,
    size: usize,
    n: usize,
    seed: u64,
    camera: CameraParams,
    batch: usize,
}

/// The tiles of `data` (a directory or `synthetic`).
pub(crate) fn tiles(
    data: &str,
    task: Task,
    camera: Option<CameraParams>,
    n: usize,
    size: usize,
    seed: u64,
) -> Result<TileSet, String> {
    if data == "synthetic" {
        return TileSet::synthetic(task, n, size, seed).map_err(|e| e.to_string());
    }
    let dir = Path::new(data);
    if !dir.is_dir() {
        return Err(format!(
            "--data {data} is neither a directory nor `synthetic`"
        ));
    }
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {data}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    let read = |name: &str| read_file(&dir.join(name)).map_err(lens2logit::Error::invalid);
    // camera raws carry their camera: the first one's, unless --camera says otherwise
    let first_dng = files.iter().find(|f| lens2logit::raw::is_dng_name(f));
    let camera = match (camera, first_dng) {
        (Some(camera), _) => camera,
        (None, Some(file)) => {
            let dng = lens2logit::raw::decode_dng(&read(file).map_err(|e| e.to_string())?, file)
                .map_err(|e| e.to_string())?;
            eprintln!("camera from {file}: {}", dng.summary);
            dng.camera
        }
        (None, None) => match task {
            Task::Classification => CameraParams::microscopy(),
            Task::Segmentation => CameraParams::drone(),
        },
    };
    let mut set = TileSet::from_files(task, camera, &files, &read).map_err(|e| e.to_string())?;
    set.label = data.to_string();
    Ok(set)
}

pub fn train(args: TrainArgs) -> Result<(), String> {
    let task: Task = args.session.task.into();
    let options = TrainOptions {
        view: Some(args.view.to_string()),
        lambda: Some(args.attack.lambda),
        penalty: Some(args.attack.penalty.clone()),
        group: args.group.clone(),
        forensic_steps: Some(args.attack.forensic_steps as f64),
        snapshot_every: args.snapshot_every.map(|every| every as f64),
        intensities: Some(args.intensities.iter().map(|&i| i as f64).collect()),
        corruption_severity: args.corruption_severity.map(f64::from),
        ..args.session.options(&args.mode)
    };
    let mut config = options.config(task).map_err(|e| e.to_string())?;
    if let Some(path) = &args.extra_view {
        if config.mode != Mode::Synthesis {
            return Err(
                "--extra-view adds a camera twin to synthesis' drift table: use it with --mode \
                 synthesis"
                    .into(),
            );
        }
        config.camera_twin = Some(crate::fit_camera::load_twin(path)?);
    }
    let job = args
        .session
        .job(Experiment::Session, config, args.name.clone())?;
    let mlflow = args
        .mlflow
        .as_deref()
        .map(|url| (url, args.experiment.as_str()));
    // refused before training, not after
    may_replace(&args.out, &RUN_FOLDER)?;
    let mut sink = CliSink::new(RunsAt::Folder(&args.out), &args.session, mlflow);
    let outcome = run_job(job, &mut sink)?;
    let session = outcome
        .last
        .ok_or_else(|| "the job ran no session".to_string())?;
    for (phase, metric) in &session.summary.final_metric {
        eprintln!("{phase}: validation {} {metric:.3}", session.summary.metric);
    }
    for (corruption, (metric, drop)) in &session.summary.corruptions {
        eprintln!("post-hoc {corruption}: {metric:.3} (drop {drop:.3})");
    }
    for (group, before, after, drop) in forensics_ranking(&session.summary) {
        eprintln!("forensics {group}: {before:.3} -> {after:.3} (drop {drop:.3})");
    }
    if let Some(path) = &args.timeline_out {
        let gif = timeline_gif(&session.snapshots).map_err(|e| e.to_string())?;
        write_file(path, &gif)?;
        eprintln!(
            "wrote the timeline ({} frames) to {}",
            session.snapshots.len(),
            path.display()
        );
    }
    sink.logged()
}

/// Where a job's runs go: `--out` itself (`train`), or a folder per session under `runs/` of the
/// experiment's folder, with the synthesis tables beside them: `writing` while the experiment
/// runs ([`crate::common::write_folder`]'s sibling), `out` once it ended.
pub(crate) enum RunsAt<'a> {
    Folder(&'a Path),
    Experiment { writing: &'a Path, out: &'a Path },
}

/// The CLI's end of a job: a progress bar per session, each run written as a folder (with
/// `config.json`, which `evaluate` reads) and logged to MLflow where asked, the synthesis tables
/// rewritten after every row.
pub(crate) struct CliSink<'a> {
    pub runs: RunsAt<'a>,
    pub session: &'a SessionArgs,
    /// MLflow's URL and experiment.
    pub mlflow: Option<(&'a str, &'a str)>,
    bar: Option<ProgressBar>,
    /// Why runs were not logged to MLflow, each with how to log it later: the runs are kept all
    /// the same, and the command says so once they stand where it wrote them ([`Self::logged`]).
    unlogged: Vec<String>,
}

impl<'a> CliSink<'a> {
    pub fn new(
        runs: RunsAt<'a>,
        session: &'a SessionArgs,
        mlflow: Option<(&'a str, &'a str)>,
    ) -> Self {
        Self {
            runs,
            session,
            mlflow,
            bar: None,
            unlogged: Vec::new(),
        }
    }

    /// Where the run `name` is written, and where it stays once the command ended.
    fn folder(&self, name: &str) -> (PathBuf, PathBuf) {
        match self.runs {
            RunsAt::Folder(out) => (out.to_path_buf(), out.to_path_buf()),
            RunsAt::Experiment { writing, out } => {
                (writing.join("runs").join(name), out.join("runs").join(name))
            }
        }
    }

    /// Whether every run reached MLflow (where asked); else why not and how to log them later.
    pub fn logged(&self) -> Result<(), String> {
        match self.unlogged.is_empty() {
            true => Ok(()),
            false => Err(self.unlogged.join("\n")),
        }
    }
}

#[async_trait(?Send)]
impl JobSink for CliSink<'_> {
    async fn progress(&mut self, progress: Progress<'_>) -> lens2logit::Result<Control> {
        match progress {
            Progress::Session {
                index,
                count,
                label,
                total_steps,
                choice,
                loaded,
            } => {
                if count > 1 {
                    eprintln!("training {}/{count}: {label}", index + 1);
                }
                if let (Some(loaded), Some(file)) = (loaded, &self.session.init) {
                    eprintln!("starting from {file} ({} tensors)", loaded.set);
                    if let Some(told) = &loaded.head_reinitialised {
                        eprintln!("{told}");
                    }
                }
                eprintln!("training on {}", choice.describe());
                self.bar = Some(
                    ProgressBar::new(total_steps as u64).with_style(
                        ProgressStyle::with_template(
                            "{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]",
                        )
                        .expect("valid template"),
                    ),
                );
            }
            Progress::Step { report, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(report.global_step as u64);
                    bar.set_message(match &report.evaluating {
                        Some(cell) => format!(
                            "{}: {cell}, metric {:.3} ({:.0} tiles/s)",
                            report.phase, report.metric, report.samples_per_s
                        ),
                        None => format!(
                            "{}: loss {:.3} metric {:.3} ({:.0} tiles/s)",
                            report.phase, report.loss, report.metric, report.samples_per_s
                        ),
                    });
                }
            }
        }
        Ok(Control::Go)
    }

    async fn keep(
        &mut self,
        session: &Session,
        ended: &RunSource,
        folder: &str,
    ) -> lens2logit::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let (config, data) = (session.config(), session.data());
        let run_config = RunConfig {
            task: data.task.name().into(),
            model: config.model.name().into(),
            view: config.view.to_string(),
            classes: data.classes.clone(),
            size: self.session.size,
            n: self.session.n,
            seed: config.seed,
            camera: data.camera.clone(),
            batch: config.batch,
        };
        let mut run = Run::from_session(session, ended)?;
        let bytes = serde_json::to_vec_pretty(&run_config)
            .map_err(|e| lens2logit::Error::invalid(e.to_string()))?;
        run.insert("config.json", bytes)?;
        let (writing, out) = self.folder(folder);
        crate::runs::write_dir(&run, &writing).map_err(lens2logit::Error::invalid)?;
        match self.runs {
            RunsAt::Folder(_) => eprintln!("wrote run {} to {}", run.meta().id, out.display()),
            RunsAt::Experiment { .. } => eprintln!(
                "run {} done: in {} once the experiment ends",
                run.meta().id,
                out.display()
            ),
        }
        if let Some((url, experiment)) = self.mlflow {
            if let Err(e) = log_run(&run, &out, url, experiment) {
                self.unlogged.push(e);
            }
        }
        Ok(())
    }

    async fn table(&mut self, table: &SynthesisTable) -> lens2logit::Result<()> {
        if let RunsAt::Experiment { writing, .. } = self.runs {
            crate::experiment::write_synthesis(table, writing)
                .map_err(lens2logit::Error::invalid)?;
        }
        Ok(())
    }
}

impl SessionArgs {
    /// A job of these flags on their tiles.
    pub fn job(
        &self,
        experiment: Experiment,
        config: TrainConfig,
        name: String,
    ) -> Result<JobSpec, String> {
        let device = DeviceChoice::parse(&self.backend).map_err(|e| e.to_string())?;
        let adapter = pollster::block_on(device.adapter()).map_err(|e| e.to_string())?;
        Ok(JobSpec {
            experiment,
            config,
            data: self.tiles()?,
            weights: self.weights()?,
            device,
            adapter,
            name,
        })
    }
}

/// Runs a job to its end through `sink`.
pub(crate) fn run_job(job: JobSpec, sink: &mut CliSink) -> Result<Outcome, String> {
    pollster::block_on(lens2logit::train::job::run(job, sink)).map_err(|e| e.to_string())
}

/// A weights file from a path or an http(s) URL, checked as it is read.
pub(crate) fn read_weights(source: &str) -> Result<WeightsFile, String> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let cancel = lens2logit::data::cancel::CancelToken::default();
        let bytes = runtime
            .block_on(lens2logit::data::http::fetch_bytes(
                source,
                lens2logit::spec::limits::WEIGHTS_BYTES.max,
                &cancel,
            ))
            .map_err(|e| e.to_string())?;
        let name = source
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(source);
        return WeightsFile::read(&bytes, name, Some(source)).map_err(|e| e.to_string());
    }
    let path = Path::new(source);
    let name = path
        .file_name()
        .map_or(source.into(), |n| n.to_string_lossy());
    WeightsFile::read(&read_file(path)?, &name, None).map_err(|e| e.to_string())
}

/// Logs a run written to `out` to MLflow; on failure, says how to log it later.
pub(crate) fn log_run(run: &Run, out: &Path, url: &str, experiment: &str) -> Result<(), String> {
    crate::runs::log_to_mlflow(run, url, experiment).map_err(|e| {
        format!(
            "{e}\nThe run is kept in {}; log it later with `lens2logit runs log {} --mlflow URL`",
            out.display(),
            out.display()
        )
    })
}

#[derive(Args)]
pub struct EvaluateArgs {
    /// A directory written by `lens2logit train`.
    #[arg(long)]
    run: PathBuf,
    /// A directory in the layout of `fetch`/`synth`, or `synthetic`.
    #[arg(long)]
    data: String,
    #[arg(long, value_delimiter = ',', default_values_t = LEVELS.to_vec())]
    intensities: Vec<u32>,
    #[arg(long)]
    out: PathBuf,
}

pub fn evaluate(args: EvaluateArgs) -> Result<(), String> {
    let text =
        String::from_utf8(read_file(&args.run.join("config.json"))?).map_err(|e| e.to_string())?;
    let run: RunConfig = serde_json::from_str(&text)
        .map_err(|e| format!("{}: {e}", args.run.join("config.json").display()))?;
    let task = Task::parse(&run.task).map_err(|e| e.to_string())?;
    let model = ModelKind::parse(&run.model).map_err(|e| e.to_string())?;
    let view: View = run
        .view
        .parse()
        .map_err(|e: lens2logit::Error| e.to_string())?;
    let data = tiles(
        &args.data,
        task,
        Some(run.camera.clone()),
        run.n,
        run.size,
        run.seed,
    )?;
    if data.classes != run.classes {
        return Err(format!(
            "the data's classes {:?} differ from the run's {:?}",
            data.classes, run.classes
        ));
    }
    let mut config = TrainConfig::new(Mode::Synthesis, model);
    config.batch = run.batch;
    config.view = view;
    let mut session = Session::new(config, data).map_err(|e| e.to_string())?;
    session
        .start_from(
            &WeightsFile::read(
                &read_file(&args.run.join("model.safetensors"))?,
                "model.safetensors",
                None,
            )
            .map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{}: {e}", args.run.join("model.safetensors").display()))?;
    let table =
        pollster::block_on(session.view_table(&args.intensities)).map_err(|e| e.to_string())?;
    let out = drift_csv(&table, &args.intensities, &run.view);
    write_file(&args.out, out.as_bytes())?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
