//! `lens2logit experiment`: the paper's experiments as single actions. `synthesis` trains a model
//! on each of the 12 static views in turn and tests each on all 12 and the intensity levels (the
//! 12 x 12 table and the intensity table, as CSV and heatmaps, and a run folder per training);
//! with `--train-view` it trains one row (one job of a job array) and `gather` joins the rows.
//! `forensics` and `optimisation` run their mode once and write its table. Each writes its folder
//! whole or not at all. The tables are built in `lens2logit::train::experiment`; this file holds
//! the arguments, progress and files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};

use lens2logit::isp::static_pipeline::View;
use lens2logit::raw::intensity::LEVELS;
use lens2logit::runs::{Run, META, METRICS};
use lens2logit::train::experiment::{
    forensics_csv, forensics_image, forensics_ranking, optimisation_csv, SynthesisTable,
};
use lens2logit::train::job::{Experiment, Outcome};
use lens2logit::train::{TrainConfig, TrainOptions};
use lens2logit::viz::Rgba;

use crate::common::{holds_only, name_of, read_file, write_file, write_folder, Replaceable};
use crate::train::{run_job, AttackArgs, CliSink, RunsAt, SessionArgs};

/// What a synthesis experiment writes, row job or whole: the table with every intensity (what
/// `gather` reads), its two CSVs and their heatmaps.
const TABLE: &str = "synthesis.json";
const MATRIX: &str = "synthesis_12x12";
const BY_INTENSITY: &str = "synthesis_intensity";

/// An experiment's folder as the experiments and `gather` write it, replaced whole by the next.
const EXPERIMENT_FOLDER: Replaceable = Replaceable {
    what: "an experiment's folder (its tables, heatmaps and runs/)",
    holds: |dir| {
        holds_only(dir, |path| {
            let name = name_of(path);
            let tables = [MATRIX, BY_INTENSITY, "forensics", "optimisation", "curves"];
            name == "runs"
                || name == TABLE
                || tables.iter().any(|t| {
                    [".csv", ".png"]
                        .iter()
                        .any(|e| name.strip_suffix(e) == Some(t))
                })
        })
    },
};

#[derive(Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    command: ExperimentCommand,
}

#[derive(Subcommand)]
enum ExperimentCommand {
    /// Train on each of the 12 static views in turn; test each model on all 12 and the
    /// intensities (synthesis_12x12.csv/.png, synthesis_intensity.csv/.png, runs/<view>/).
    Synthesis(SynthesisArgs),
    /// Join the folders that `synthesis --train-view` jobs wrote into one table.
    Gather(GatherArgs),
    /// Train on the default processing, then attack each ISP parameter group in turn
    /// (forensics.csv/.png, runs/forensics/).
    Forensics(ForensicsArgs),
    /// Train with the processing frozen, then from the same start jointly with it
    /// (optimisation.csv, curves.csv, runs/optimisation/).
    Optimisation(OptimisationArgs),
    /// The 12 static views in the tables' order, one per line (line i is job i of an array).
    Views,
}

/// What the trainings of every experiment take.
#[derive(Args)]
struct Common {
    #[command(flatten)]
    session: SessionArgs,
    /// A gradient snapshot every this many steps, kept in each run; 0 (the default) for none.
    #[arg(long, default_value_t = 0)]
    snapshot_every: usize,
    /// The runs' label in `runs list` and MLflow (default: `experiment <kind>`).
    #[arg(long)]
    name: Option<String>,
    /// Also log each run to this MLflow tracking server, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    mlflow: Option<String>,
    /// The MLflow experiment to log into (created where missing).
    #[arg(long, default_value = "lens2logit")]
    experiment: String,
    /// The experiment's folder: its tables and heatmaps, and a run folder per training under
    /// runs/ (`lens2logit runs list --dir OUT/runs`).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct SynthesisArgs {
    #[command(flatten)]
    common: Common,
    /// Intensity levels (%) every model is tested at; 100 (the 12 x 12 table's) among them.
    #[arg(long, value_delimiter = ',', default_values_t = LEVELS.to_vec())]
    intensities: Vec<u32>,
    /// Train only on this view: one row of the table (one job of a job array; see `gather`).
    #[arg(long)]
    train_view: Option<View>,
    /// Also test every model on a camera twin (a folder `fit-camera` wrote, or its
    /// twin.safetensors): a 13th column, `twin:NAME`.
    #[arg(long)]
    extra_view: Option<PathBuf>,
}

#[derive(Args)]
struct GatherArgs {
    /// Folders written by `experiment synthesis` (one row each, or more).
    #[arg(required = true)]
    rows: Vec<PathBuf>,
    /// Write the rows there are even when some of the 12 are missing (named on stderr).
    #[arg(long)]
    partial: bool,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ForensicsArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    attack: AttackArgs,
}

#[derive(Args)]
struct OptimisationArgs {
    #[command(flatten)]
    common: Common,
}

pub fn run(args: ExperimentArgs) -> Result<(), String> {
    match args.command {
        ExperimentCommand::Synthesis(a) => synthesis(a),
        ExperimentCommand::Gather(a) => gather(a),
        ExperimentCommand::Forensics(a) => forensics(a),
        ExperimentCommand::Optimisation(a) => optimisation(a),
        ExperimentCommand::Views => {
            let mut out = std::io::stdout().lock();
            for view in View::paper_views() {
                // a reader that stops early (`| head -n 3`) ends the list, not a panic
                if writeln!(out, "{view}").is_err() {
                    break;
                }
            }
            Ok(())
        }
    }
}

impl Common {
    fn options(&self, mode: &str) -> TrainOptions {
        TrainOptions {
            snapshot_every: Some(self.snapshot_every as f64),
            ..self.session.options(mode)
        }
    }

    /// Runs `experiment` of `config`, then `finish` (what the experiment writes of its outcome,
    /// into the folder it gets), into the experiment's folder whole or not at all; runs that
    /// MLflow did not take are named once the folder stands.
    fn run<T>(
        &self,
        experiment: Experiment,
        config: TrainConfig,
        kind: &str,
        finish: impl FnOnce(Outcome, &Path) -> Result<T, String>,
    ) -> Result<T, String> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("experiment {kind}"));
        let mlflow = self
            .mlflow
            .as_deref()
            .map(|url| (url, self.experiment.as_str()));
        let (value, logged) = write_folder(&self.out, &EXPERIMENT_FOLDER, |writing| {
            let job = self.session.job(experiment, config, name)?;
            let runs = RunsAt::Experiment {
                writing,
                out: &self.out,
            };
            let mut sink = CliSink::new(runs, &self.session, mlflow);
            let outcome = run_job(job, &mut sink)?;
            Ok((finish(outcome, writing)?, sink.logged()))
        })?;
        logged.map(|()| value)
    }
}

fn write_png(path: &Path, image: &Rgba) -> Result<(), String> {
    let png = lens2logit::codecs::png8(image.width, image.height, 4, &image.data)
        .map_err(|e| e.to_string())?;
    write_file(path, &png)
}

/// The table, its CSVs and heatmaps into `dir` (rewritten after every row).
pub(crate) fn write_synthesis(table: &SynthesisTable, dir: &Path) -> Result<(), String> {
    write_file(
        &dir.join(TABLE),
        &table.to_json().map_err(|e| e.to_string())?,
    )?;
    write_file(
        &dir.join(format!("{MATRIX}.csv")),
        table.matrix_csv().as_bytes(),
    )?;
    write_file(
        &dir.join(format!("{BY_INTENSITY}.csv")),
        table.intensity_csv().as_bytes(),
    )?;
    write_png(&dir.join(format!("{MATRIX}.png")), &table.matrix_image())?;
    write_png(
        &dir.join(format!("{BY_INTENSITY}.png")),
        &table.intensity_image(),
    )
}

fn synthesis(args: SynthesisArgs) -> Result<(), String> {
    let c = &args.common;
    SynthesisTable::check_intensities(&args.intensities).map_err(|e| e.to_string())?;
    let mut options = c.options("synthesis");
    options.intensities = Some(args.intensities.iter().map(|&i| f64::from(i)).collect());
    let mut config = options
        .config(c.session.task.into())
        .map_err(|e| e.to_string())?;
    config.camera_twin = args
        .extra_view
        .as_deref()
        .map(crate::fit_camera::load_twin)
        .transpose()?;
    let started = Instant::now();
    let experiment = Experiment::Synthesis {
        train_view: args.train_view,
    };
    let rows = c.run(experiment, config, "synthesis", |outcome, _| {
        Ok(outcome.table.map_or(0, |t| t.rows.len()))
    })?;
    eprintln!(
        "{rows} training(s) in {:.1} s; wrote {MATRIX}.csv, {BY_INTENSITY}.csv and their heatmaps to {}",
        started.elapsed().as_secs_f64(),
        c.out.display()
    );
    Ok(())
}

fn gather(args: GatherArgs) -> Result<(), String> {
    let mut parts = Vec::new();
    for dir in &args.rows {
        let path = dir.join(TABLE);
        let bytes = read_file(&path)
            .map_err(|e| format!("{e} (is {} a synthesis output folder?)", dir.display()))?;
        let table = SynthesisTable::from_json(&bytes, &path.display().to_string())
            .map_err(|e| e.to_string())?;
        parts.push((dir.display().to_string(), table));
    }
    let table = SynthesisTable::gather(&parts).map_err(|e| e.to_string())?;
    let missing: Vec<String> = table.missing().iter().map(View::to_string).collect();
    if !missing.is_empty() {
        let what = format!(
            "{} of the 12 rows are missing: {}",
            missing.len(),
            missing.join(", ")
        );
        if !args.partial {
            return Err(format!(
                "{what}\nrun their jobs (experiment synthesis --train-view VIEW), or pass --partial to write the rows there are"
            ));
        }
        eprintln!("warning: {what}");
    }
    let copied = write_folder(&args.out, &EXPERIMENT_FOLDER, |out| {
        let mut copied = 0;
        for dir in &args.rows {
            copied += copy_runs(&dir.join("runs"), &out.join("runs"))?;
        }
        write_synthesis(&table, out)?;
        Ok(copied)
    })?;
    eprintln!(
        "gathered {} rows from {} folders ({copied} run folders) into {}",
        table.rows.len(),
        args.rows.len(),
        args.out.display()
    );
    Ok(())
}

/// Copies the run folders in `from` into `to` (the same name).
fn copy_runs(from: &Path, to: &Path) -> Result<usize, String> {
    if !from.is_dir() {
        return Ok(0);
    }
    let mut copied = 0;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot list {}: {e}", from.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join(META).is_file() {
            let run: Run = crate::runs::read_dir(&path)?;
            crate::runs::write_dir(&run, &to.join(entry.file_name()))?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn forensics(args: ForensicsArgs) -> Result<(), String> {
    let c = &args.common;
    let mut options = c.options("forensics");
    options.lambda = Some(args.attack.lambda);
    options.penalty = Some(args.attack.penalty.clone());
    options.forensic_steps = Some(args.attack.forensic_steps as f64);
    let config = options
        .config(c.session.task.into())
        .map_err(|e| e.to_string())?;
    let ranking = c.run(Experiment::Session, config, "forensics", |outcome, out| {
        let session = outcome.last.ok_or("the experiment ran no session")?;
        let ranking = forensics_ranking(&session.summary);
        write_file(
            &out.join("forensics.csv"),
            forensics_csv(&ranking).as_bytes(),
        )?;
        write_png(
            &out.join("forensics.png"),
            &forensics_image(&session.summary.metric, &ranking),
        )?;
        Ok(ranking)
    })?;
    for (group, before, after, drop) in &ranking {
        eprintln!("{group}: {before:.3} -> {after:.3} (drop {drop:.3})");
    }
    eprintln!(
        "wrote forensics.csv and forensics.png to {}",
        c.out.display()
    );
    Ok(())
}

fn optimisation(args: OptimisationArgs) -> Result<(), String> {
    let c = &args.common;
    let config = c
        .options("optimisation")
        .config(c.session.task.into())
        .map_err(|e| e.to_string())?;
    let summary = c.run(
        Experiment::Session,
        config,
        "optimisation",
        |outcome, out| {
            let session = outcome.last.ok_or("the experiment ran no session")?;
            let run = crate::runs::read_dir(&out.join("runs").join("optimisation"))?;
            write_file(
                &out.join("optimisation.csv"),
                optimisation_csv(&session.summary).as_bytes(),
            )?;
            // the run's own curves, every step of both phases
            let curves = run
                .file(METRICS)
                .ok_or_else(|| format!("the optimisation run has no {METRICS}"))?;
            write_file(&out.join("curves.csv"), curves)?;
            Ok(session.summary)
        },
    )?;
    for (phase, metric) in &summary.final_metric {
        eprintln!("{phase}: validation {} {metric:.3}", summary.metric);
    }
    eprintln!(
        "wrote optimisation.csv and curves.csv to {}",
        c.out.display()
    );
    Ok(())
}
