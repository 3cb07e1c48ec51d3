//! `lens2logit runs`: the lab log on the command line. Run folders (what `train --out` writes)
//! are listed, shown, queried with SQL, exported as the page's run zip and imported from a zip or
//! an MLflow server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use lens2logit_labdb::{LabDb, EXAMPLES};

use lens2logit::runs::mlflow::Tracking;
use lens2logit::runs::sql::RUN_FILES;
use lens2logit::runs::{select, Run, RunMeta, Selection, META};

use crate::common::{read_file, write_file, write_folder, Replaceable};

#[derive(Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Subcommand)]
enum RunsCommand {
    /// The runs in a folder of run folders, newest first.
    List(ListArgs),
    /// One run: its settings, final metrics and files.
    Show(ShowArgs),
    /// A run folder as one zip (the page imports it).
    Export(ExportArgs),
    /// A run zip (from the page or `export`), or a run logged to MLflow, as a run folder.
    Import(ImportArgs),
    /// Log a run to an MLflow tracking server (what `train --mlflow` does after training).
    Log(LogArgs),
    /// Answer an SQL query over the runs (tables: see the README, or `--examples`).
    Sql(SqlArgs),
    /// Write the runs' SQL database as a file that any SQLite tool opens.
    Db(DbArgs),
}

#[derive(Args)]
struct SqlArgs {
    /// One query (SELECT or WITH); the lab log refuses changes.
    #[arg(required_unless_present = "examples")]
    query: Option<String>,
    /// Print the example queries instead.
    #[arg(long)]
    examples: bool,
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Args)]
struct DbArgs {
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    /// The database file to write (replaced whole).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct LogArgs {
    /// A run folder, a run zip, or a run id in --dir.
    run: String,
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    /// The tracking server, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    mlflow: String,
    #[arg(long, default_value = "lens2logit")]
    experiment: String,
}

#[derive(Args)]
struct ListArgs {
    /// The folder holding run folders.
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    /// Keep only runs whose name, mode, model, view, dataset or status contain this text.
    #[arg(long)]
    filter: Option<String>,
    /// started (newest first), metric (best first), name, mode or model.
    #[arg(long, default_value = "started")]
    sort: String,
    /// One JSON object per line (run.json) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ShowArgs {
    /// A run folder, a run zip, or a run id in --dir.
    run: String,
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
}

#[derive(Args)]
struct ExportArgs {
    /// A run folder, or a run id in --dir.
    run: String,
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
    /// The zip to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct ImportArgs {
    /// A run zip (omit with --mlflow).
    zip: Option<PathBuf>,
    /// An MLflow tracking server to import --run from.
    #[arg(long, requires = "run")]
    mlflow: Option<String>,
    /// The MLflow run id.
    #[arg(long)]
    run: Option<String>,
    /// The folder to put the run folder in (named by the run's id).
    #[arg(long, default_value = "runs")]
    dir: PathBuf,
}

pub fn run(args: RunsArgs) -> Result<(), String> {
    match args.command {
        RunsCommand::List(a) => list(a),
        RunsCommand::Show(a) => show(a),
        RunsCommand::Export(a) => {
            let run = open(&a.run, &a.dir)?;
            write_file(&a.out, &run.to_zip().map_err(|e| e.to_string())?)?;
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
        RunsCommand::Import(a) => import(a),
        RunsCommand::Log(a) => log_to_mlflow(&open(&a.run, &a.dir)?, &a.mlflow, &a.experiment),
        RunsCommand::Sql(a) => sql(a),
        RunsCommand::Db(a) => {
            let db = lab_db(&a.dir)?;
            db.save(&a.out).map_err(|e| e.to_string())?;
            eprintln!(
                "wrote {} (tables as in the README's lab log section)",
                a.out.display()
            );
            Ok(())
        }
    }
}

fn sql(args: SqlArgs) -> Result<(), String> {
    let Some(query) = args.query.filter(|_| !args.examples) else {
        for (title, query) in EXAMPLES {
            println!("-- {title}\n{query};\n");
        }
        return Ok(());
    };
    let answer = lab_db(&args.dir)?
        .query(&query)
        .map_err(|e| e.to_string())?;
    match args.format {
        Format::Table => print!("{}", answer.to_table()),
        Format::Csv => print!("{}", answer.to_csv()),
        Format::Json => println!("{}", answer.to_json()),
    }
    let shown = answer.rows.len();
    match answer.truncated {
        true => eprintln!("the first {shown} rows (the query has more: narrow it or add a LIMIT)"),
        false => eprintln!("{shown} {}", if shown == 1 { "row" } else { "rows" }),
    }
    Ok(())
}

/// The SQL database of the run folders in `dir`, from each run's description, summary and curves
/// (the weights and images stay unread); a run that fails to read is skipped, saying why.
fn lab_db(dir: &Path) -> Result<LabDb, String> {
    let mut db = LabDb::new().map_err(|e| e.to_string())?;
    for folder in run_folders(dir)? {
        let mut files = BTreeMap::new();
        for name in RUN_FILES {
            if folder.join(name).is_file() {
                files.insert(name.to_string(), read_file(&folder.join(name))?);
            }
        }
        let added = Run::from_files(files)
            .and_then(|run| run.sql_rows())
            .map_err(|e| e.to_string())
            .and_then(|rows| db.add(&rows).map_err(|e| e.to_string()));
        if let Err(e) = added {
            eprintln!("skipping {}: {e}", folder.display());
        }
    }
    Ok(db)
}

/// Logs `run` to the tracking server at `url`, with progress over its artifacts.
pub fn log_to_mlflow(run: &Run, url: &str, experiment: &str) -> Result<(), String> {
    let tracking = Tracking::new(url).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let bar = indicatif::ProgressBar::new(0);
    let id = runtime
        .block_on(tracking.log_run(experiment, run, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }))
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    eprintln!(
        "logged run {} to {url} as MLflow run {id} (experiment {experiment})",
        run.meta().id
    );
    Ok(())
}

/// Most files read from one run folder (a run has about a dozen).
const MAX_FOLDER_FILES: usize = 4096;

/// A run folder's files, by '/'-separated relative path.
pub fn read_dir(dir: &Path) -> Result<Run, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| format!("cannot list {}: {e}", folder.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", folder.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .map_err(|e| e.to_string())?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(relative, read_file(&path)?);
            if files.len() > MAX_FOLDER_FILES {
                return Err(format!(
                    "{} holds more than {MAX_FOLDER_FILES} files: not a run folder",
                    dir.display()
                ));
            }
        }
    }
    Run::from_files(files).map_err(|e| format!("{}: {e}", dir.display()))
}

/// A run folder: what `train --out`, `runs import` and the experiments write (one per run).
pub const RUN_FOLDER: Replaceable = Replaceable {
    what: "a run folder",
    holds: |dir| dir.join(META).is_file(),
};

/// Writes the run as folder `dir`, whole or not at all ([`write_folder`]); an existing `dir` is
/// replaced only if it is empty or a run folder.
pub fn write_dir(run: &Run, dir: &Path) -> Result<(), String> {
    write_folder(dir, &RUN_FOLDER, |partial| {
        for (file, bytes) in run.files() {
            let path = partial.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            write_file(&path, bytes)?;
        }
        Ok(())
    })
}

/// A run folder, a run zip, or the id of a run folder in `dir`.
fn open(run: &str, dir: &Path) -> Result<Run, String> {
    let path = Path::new(run);
    if path.is_dir() {
        return read_dir(path);
    }
    if path.is_file() {
        return Run::from_zip(&read_file(path)?).map_err(|e| format!("{run}: {e}"));
    }
    let by_id = dir.join(run);
    if by_id.is_dir() {
        return read_dir(&by_id);
    }
    Err(format!(
        "no run {run}: give a run folder, a run zip, or the id of a run in {} (see `lens2logit runs list`)",
        dir.display()
    ))
}

/// The run folders in `dir` (folders holding run.json).
fn run_folders(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot list {}: {e} (runs live in run folders there; `train --out {}/NAME` writes one)",
            dir.display(),
            dir.display()
        )
    })?;
    let folders = entries.flatten().map(|entry| entry.path());
    Ok(folders.filter(|path| path.join(META).is_file()).collect())
}

/// The runs of the run folders in `dir`; those that fail to read are skipped, saying why.
fn runs_in(dir: &Path) -> Result<Vec<RunMeta>, String> {
    let mut runs = Vec::new();
    for folder in run_folders(dir)? {
        match read_file(&folder.join(META))
            .and_then(|b| RunMeta::parse(&b).map_err(|e| e.to_string()))
        {
            Ok(meta) => runs.push(meta),
            Err(e) => eprintln!("skipping {}: {e}", folder.display()),
        }
    }
    Ok(runs)
}

fn list(args: ListArgs) -> Result<(), String> {
    let runs = runs_in(&args.dir)?;
    let selection = Selection {
        text: args.filter.clone(),
        sort: Some(args.sort.clone()),
        ..Selection::default()
    };
    let runs = select(runs, &selection).map_err(|e| e.to_string())?;
    if args.json {
        for meta in &runs {
            println!(
                "{}",
                serde_json::to_string(meta).map_err(|e| e.to_string())?
            );
        }
        return Ok(());
    }
    println!(
        "{:<27} {:<12} {:<14} {:<42} {:<10} {:>8}  name",
        "id", "mode", "model", "view", "status", "metric"
    );
    for m in &runs {
        let headline = m.headline().map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<27} {:<12} {:<14} {:<42} {:<10} {:>8}  {}",
            m.id,
            m.mode,
            m.model,
            if m.view.is_empty() { "-" } else { &m.view },
            m.status,
            headline,
            m.name
        );
    }
    eprintln!("{} runs in {}", runs.len(), args.dir.display());
    Ok(())
}

fn show(args: ShowArgs) -> Result<(), String> {
    let run = open(&args.run, &args.dir)?;
    let m = run.meta();
    println!("run {} ({})", m.id, m.name);
    println!(
        "{} {} on {} ({}), {} steps on {}, {}",
        m.mode, m.model, m.dataset, m.task, m.steps, m.device, m.status
    );
    println!("settings:");
    for (k, v) in &m.params {
        println!("  {k} = {v}");
    }
    println!("final metrics:");
    for (k, v) in &m.metrics {
        println!("  {k} = {v:.4}");
    }
    println!("files:");
    for (name, bytes) in run.files() {
        println!("  {name} ({} bytes)", bytes.len());
    }
    Ok(())
}

fn import(args: ImportArgs) -> Result<(), String> {
    let run = match (&args.zip, &args.mlflow, &args.run) {
        (Some(zip), None, _) => {
            Run::from_zip(&read_file(zip)?).map_err(|e| format!("{}: {e}", zip.display()))?
        }
        (None, Some(url), Some(id)) => {
            let tracking = Tracking::new(url).map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime
                .block_on(tracking.fetch_run(id))
                .map_err(|e| e.to_string())?
        }
        _ => return Err("give a run zip, or --mlflow URL --run ID (not both)".to_string()),
    };
    let target = args.dir.join(&run.meta().id);
    write_dir(&run, &target)?;
    eprintln!("imported run {} into {}", run.meta().id, target.display());
    Ok(())
}
