//! `lens2logit synth`: the offline synthetic dataset, written in the layout `fetch` uses, whole or
//! not at all.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use lens2logit::codecs::{png8, tiff_gray16};
use lens2logit::data::synthetic::{sample, CELL_CLASSES};
use lens2logit::data::tiles::{labels_csv, LABELS_CSV};
use lens2logit::data::Task;

use crate::common::{write_file, write_folder, DATASET};

#[derive(Clone, Copy, ValueEnum)]
pub enum TaskArg {
    Classification,
    Segmentation,
}

impl From<TaskArg> for Task {
    fn from(t: TaskArg) -> Task {
        match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Segmentation => Task::Segmentation,
        }
    }
}

#[derive(Args)]
pub struct SynthArgs {
    #[arg(long, value_enum)]
    task: TaskArg,
    /// Number of tiles.
    #[arg(long)]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Light level in percent (the datasets hold 1, 5, 10, 25, 50, 75, 100).
    #[arg(long, default_value_t = 100.0)]
    intensity: f64,
    /// Tile side in pixels (even).
    #[arg(long, default_value_t = 256)]
    size: usize,
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: SynthArgs) -> Result<(), String> {
    if args.n == 0 {
        return Err("--n must be at least 1".into());
    }
    let task: Task = args.task.into();
    write_folder(&args.out, &DATASET, |out| write_tiles(&args, task, out))?;
    eprintln!(
        "wrote {} synthetic {} tiles to {}",
        args.n,
        task.name(),
        args.out.display()
    );
    Ok(())
}

/// The tiles, their masks (segmentation) or labels.csv (classification) into `out`.
fn write_tiles(args: &SynthArgs, task: Task, out: &Path) -> Result<(), String> {
    let masks = out.join("masks");
    if task == Task::Segmentation {
        std::fs::create_dir(&masks)
            .map_err(|e| format!("cannot create {}: {e}", masks.display()))?;
    }
    let bar = ProgressBar::new(args.n as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tiles {elapsed}")
            .expect("valid template"),
    );
    let labels: Vec<Option<(String, &str)>> = (0..args.n)
        .into_par_iter()
        .map(|i| -> Result<Option<(String, &str)>, String> {
            let s =
                sample(task, args.seed, i, args.size, args.intensity).map_err(|e| e.to_string())?;
            let name = format!("synthetic_{i:05}");
            let tiff = tiff_gray16(s.raw.width(), s.raw.height(), s.raw.data())
                .map_err(|e| e.to_string())?;
            write_file(&out.join(format!("{name}.tif")), &tiff)?;
            if let Some(mask) = &s.mask {
                let png = png8(
                    args.size,
                    args.size,
                    1,
                    &mask.iter().map(|&m| m * 255).collect::<Vec<_>>(),
                )
                .map_err(|e| e.to_string())?;
                write_file(&masks.join(format!("{name}.png")), &png)?;
            }
            bar.inc(1);
            Ok(s.label.map(|l| (format!("{name}.tif"), CELL_CLASSES[l])))
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    if task == Task::Classification {
        let csv = labels_csv(labels.iter().flatten().map(|(f, c)| (f.as_str(), *c)));
        write_file(&out.join(LABELS_CSV), csv.as_bytes())?;
    }
    Ok(())
}
