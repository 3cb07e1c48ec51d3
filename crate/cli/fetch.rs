//! `lens2logit fetch`: a dataset from Zenodo (or a mirror) into a directory, read by random access
//! where the server allows it, else streamed: tiles under their own names, labels.csv
//! (classification: microscopy, or drone car / no car from the masks) and masks/ (drone), the
//! layout `synth` writes too, whole or not at all. `--list` shows what the record holds instead.

use std::collections::HashMap;
use std::fmt::Display;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use lens2logit::data::cancel::CancelToken;
use lens2logit::data::discovery::DatasetKind;
use lens2logit::data::drone_balance::DroneBalance;
use lens2logit::data::fetch::{fetch, FetchEvent, FetchRequest};
use lens2logit::data::inspect::inspect_record;
use lens2logit::data::tiles::{labels_csv, LABELS_CSV};
use lens2logit::data::zenodo::{ZenodoClient, DEFAULT_BASE, DEFAULT_RECORD};
use lens2logit::data::Task;
use lens2logit::raw::intensity::LEVELS;

use crate::common::{write_file, write_folder, DATASET};

#[derive(Clone, Copy, ValueEnum)]
pub enum DatasetArg {
    Microscopy,
    Drone,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    Classification,
    Segmentation,
}

/// Which of a full drone image's classified tiles `--task classification` keeps.
#[derive(Clone, Copy, ValueEnum)]
pub enum DroneBalanceArg {
    /// As many "no car" tiles as "car" tiles per image, drawn with seed 72 (the paper's set).
    Balanced,
    /// Every tile with a class.
    All,
}

#[derive(Args)]
pub struct FetchArgs {
    #[arg(long, value_enum)]
    dataset: DatasetArg,
    /// The task the tiles are for: microscopy classifies; drone segments by default, or
    /// classifies tiles as car or no car from their masks (the paper's threshold of 1%).
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// Drone classification from full images: the paper's balanced set per image (default), or
    /// all tiles with a class.
    #[arg(long, value_enum)]
    drone_balance: Option<DroneBalanceArg>,
    /// Intensity level in percent: 1, 5, 10, 25, 50, 75 or 100.
    #[arg(long, default_value_t = lens2logit::spec::limits::FULL_INTENSITY)]
    intensity: u32,
    /// Take a seeded sample of this many tiles, balanced by class for classification.
    #[arg(long)]
    limit: Option<usize>,
    /// Seeds the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Show the record's files and what each archive holds (grouped as the lab reads them),
    /// reading as little as the server allows, and write nothing.
    #[arg(long)]
    list: bool,
    /// Zenodo or a mirror with the same API.
    #[arg(long, default_value = DEFAULT_BASE)]
    zenodo: String,
    #[arg(long, default_value = DEFAULT_RECORD)]
    record: String,
    /// Download every archive whole as a stream (and check its MD5), even where the server
    /// offers byte ranges; by default only the entries needed are read, by random access.
    #[arg(long)]
    stream: bool,
    /// Where to write the tiles (not needed with --list).
    #[arg(long, required_unless_present = "list")]
    out: Option<PathBuf>,
}

pub fn run(args: FetchArgs) -> Result<(), String> {
    let request = fetch_request(&args)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    // Ctrl-C stops the command (and removes the folder being written: `write_folder`)
    let cancel = CancelToken::default();
    let client = ZenodoClient::new(&args.zenodo, &args.record);
    if args.list {
        let report = runtime
            .block_on(inspect_record(
                &client,
                !args.stream,
                &cancel,
                &mut |what| eprintln!("{what}"),
            ))
            .map_err(|e| e.to_string())?;
        print!("{report}");
        return Ok(());
    }
    let out = args
        .out
        .as_deref()
        .expect("clap requires --out without --list");
    let tiles = write_folder(out, &DATASET, |partial| {
        let bar = ProgressBar::new(0).with_style(
            ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} tiles: {prefix}",
            )
            .expect("valid template"),
        );
        let mut received = Received::new(partial.to_path_buf());
        let result = runtime.block_on(fetch(&client, &request, &cancel, &mut |event| {
            received.take(event, &bar)
        }));
        bar.finish_and_clear();
        result.map_err(|e| e.to_string())?;
        let dataset = request.dataset;
        received.write_labels_and_masks(request.task, dataset)?;
        if received.tiles.is_empty() {
            return Err(format!(
                "no {} tiles at intensity {} in record {} at {}",
                dataset.name(),
                args.intensity,
                args.record,
                args.zenodo
            ));
        }
        Ok(received.tiles.len())
    })?;
    eprintln!(
        "wrote {tiles} tiles ({}) to {}",
        request.describe(),
        out.display()
    );
    Ok(())
}

/// A line of the fetch's report above the progress bar, printed where stderr is no terminal too
/// (a log, a pipe), where the bar's own `println` prints nothing.
fn say(bar: &ProgressBar, line: impl Display) {
    bar.suspend(|| eprintln!("{line}"));
}

/// The request the arguments ask for, or why they contradict each other.
fn fetch_request(args: &FetchArgs) -> Result<FetchRequest, String> {
    if !LEVELS.contains(&args.intensity) {
        return Err(format!(
            "--intensity {} is not one of the datasets' levels {LEVELS:?}",
            args.intensity
        ));
    }
    let dataset = match args.dataset {
        DatasetArg::Microscopy => DatasetKind::Microscopy,
        DatasetArg::Drone => DatasetKind::Drone,
    };
    let mut request = FetchRequest::new(dataset);
    request.task = match args.task {
        Some(TaskArg::Classification) => Task::Classification,
        Some(TaskArg::Segmentation) if dataset == DatasetKind::Microscopy => {
            return Err("Raw-Microscopy has no masks to segment: use --task classification".into())
        }
        Some(TaskArg::Segmentation) => Task::Segmentation,
        None => request.task,
    };
    request.drone_balance = match args.drone_balance {
        None => DroneBalance::default(),
        Some(_) if dataset != DatasetKind::Drone || request.task != Task::Classification => {
            return Err(
                "--drone-balance chooses drone classification tiles: use it with --dataset drone \
                 --task classification"
                    .into(),
            )
        }
        Some(DroneBalanceArg::Balanced) => DroneBalance::Balanced,
        Some(DroneBalanceArg::All) => DroneBalance::All,
    };
    request.intensity = args.intensity;
    request.limit = args.limit;
    request.seed = args.seed;
    request.random_access = !args.stream;
    Ok(request)
}

/// What the fetch has written under `out` so far, and what it still has to write at the end.
struct Received {
    out: PathBuf,
    /// archive key -> its files written, removed again if the archive is discarded
    written: HashMap<String, Vec<PathBuf>>,
    /// (file, stem)
    tiles: Vec<(String, String)>,
    masks: HashMap<String, Vec<u8>>,
    labels: HashMap<String, String>,
    archive: String,
}

impl Received {
    fn new(out: PathBuf) -> Self {
        Self {
            out,
            written: HashMap::new(),
            tiles: Vec::new(),
            masks: HashMap::new(),
            labels: HashMap::new(),
            archive: String::new(),
        }
    }

    fn take(&mut self, event: FetchEvent, bar: &ProgressBar) -> lens2logit::Result<()> {
        match event {
            FetchEvent::Archive {
                key,
                size,
                random_access,
            } => {
                let how = if random_access {
                    "random access"
                } else {
                    "stream"
                };
                bar.set_message(format!("{key} ({how})"));
                bar.set_length(size);
                bar.set_position(0);
                self.archive = key;
            }
            FetchEvent::Progress { read, total, .. } => {
                // by random access, the bytes to read are far fewer than the archive's size
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(read)
            }
            FetchEvent::Tile {
                file,
                stem,
                bytes,
                label,
            } => {
                let path = self.out.join(&file);
                write_file(&path, &bytes).map_err(lens2logit::Error::invalid)?;
                self.written
                    .entry(self.archive.clone())
                    .or_default()
                    .push(path);
                if let Some(class) = label {
                    self.labels.insert(file.clone(), class);
                }
                self.tiles.push((file, stem));
                bar.set_prefix(self.tiles.len().to_string());
            }
            FetchEvent::Labels(l) => self.labels.extend(l),
            FetchEvent::Layout { key, lines } => {
                say(bar, format!("{key}:"));
                for line in lines {
                    say(bar, line);
                }
            }
            FetchEvent::Sample(how) => say(bar, format!("sample: {how}")),
            FetchEvent::Mask { stem, bytes } => {
                self.masks.insert(stem, bytes);
            }
            FetchEvent::Discard { key, reason } => {
                for path in self.written.remove(&key).unwrap_or_default() {
                    let _ = std::fs::remove_file(&path);
                    self.tiles.retain(|(f, _)| self.out.join(f) != path);
                }
                say(bar, format!("warning: {reason}"));
            }
            FetchEvent::Warning(w) => say(bar, format!("warning: {w}")),
            FetchEvent::Listing(_)
            | FetchEvent::Verified { .. }
            | FetchEvent::ProcessedView { .. } => {}
        }
        Ok(())
    }

    /// labels.csv for classification (keeping only the labelled tiles), masks/ for the drone.
    fn write_labels_and_masks(&mut self, task: Task, dataset: DatasetKind) -> Result<(), String> {
        let out = &self.out;
        if task == Task::Classification {
            // the dataset's labelled tiles (microscopy's labels drop rare classes and one tile)
            if !self.labels.is_empty() {
                for (file, _) in self
                    .tiles
                    .iter()
                    .filter(|(f, _)| !self.labels.contains_key(f))
                {
                    let _ = std::fs::remove_file(out.join(file));
                }
                self.tiles.retain(|(f, _)| self.labels.contains_key(f));
            }
            let labelled = self.tiles.iter().filter_map(|(file, _)| {
                let class = self.labels.get(file)?;
                Some((file.as_str(), class.as_str()))
            });
            write_file(&out.join(LABELS_CSV), labels_csv(labelled).as_bytes())?;
        }
        if dataset == DatasetKind::Drone {
            let masks = out.join("masks");
            std::fs::create_dir_all(&masks)
                .map_err(|e| format!("cannot create {}: {e}", masks.display()))?;
            for (_, stem) in &self.tiles {
                if let Some(png) = self.masks.get(stem) {
                    write_file(&masks.join(format!("{stem}.png")), png)?;
                }
            }
        }
        Ok(())
    }
}
