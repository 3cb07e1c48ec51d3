//! `lens2logit train` and `lens2logit evaluate`: the paper's experiments on the same engine the
//! page runs, with a progress bar and files a notebook can read.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use lens2logit::data::Task;
use lens2logit::isp::static_pipeline::View;
use lens2logit::model::{save_weights, ModelKind};
use lens2logit::raw::intensity::LEVELS;
use lens2logit::raw::CameraParams;
use lens2logit::train::{DeviceChoice, Mode, Session, TileSet, TrainConfig, TrainOptions};

use crate::common::{load_camera, read_file, write_file};
use crate::synth::TaskArg;

#[derive(Args)]
pub struct TrainArgs {
    /// A directory in the layout of `fetch`/`synth`, or `synthetic`.
    #[arg(long)]
    data: String,
    #[arg(long, value_enum)]
    task: TaskArg,
    /// synthesis, forensics or optimisation.
    #[arg(long)]
    mode: String,
    /// Steps of each training phase.
    #[arg(long)]
    steps: usize,
    /// resnet_small (default for classification), unet_small (default for segmentation),
    /// unet_plus_plus (segmentation) or resnet18.
    #[arg(long)]
    model: Option<String>,
    /// The static view synthesis trains on, DEBAYER-SHARPENING-DENOISING.
    #[arg(long, default_value = "bilinear-unsharp_masking-gaussian_denoising")]
    view: View,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic data: number of tiles and their side.
    #[arg(long, default_value_t = 128)]
    n: usize,
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// The camera of a data directory (default: microscopy for classification, drone for
    /// segmentation).
    #[arg(long)]
    camera: Option<String>,
    /// Forensics: weight of the distance to the default processing, and l2 or ssim.
    #[arg(long, default_value_t = 1.0)]
    lambda: f64,
    #[arg(long, default_value = "l2")]
    penalty: String,
    /// Forensics: one parameter group, `all` (all at once), or every group in turn when absent.
    #[arg(long)]
    group: Option<String>,
    #[arg(long, default_value_t = 30)]
    forensic_steps: usize,
    /// Synthesis: intensity levels of the drift table (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = LEVELS.to_vec())]
    intensities: Vec<u32>,
    /// Synthesis: also evaluate the training view under the post-hoc corruption baseline
    /// (Gaussian noise, Gaussian blur, contrast) at this ImageNet-C severity, 1 to 5.
    #[arg(long)]
    corruption_severity: Option<u8>,
    /// The device that trains: auto (a hardware GPU where there is one, else the CPU), cpu, or
    /// gpu (fails where there is no GPU adapter).
    #[arg(long, default_value = "auto")]
    backend: String,
    #[arg(long)]
    out: PathBuf,
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
fn tiles(
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
    let camera = camera.unwrap_or_else(|| match task {
        Task::Classification => CameraParams::microscopy(),
        Task::Segmentation => CameraParams::drone(),
    });
    let files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {data}: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let read = |name: &str| read_file(&dir.join(name)).map_err(lens2logit::Error::invalid);
    TileSet::from_files(task, camera, &files, &read).map_err(|e| e.to_string())
}

fn csv(rows: &[(usize, f32, f32)]) -> String {
    let mut out = String::from("step,loss,metric\n");
    for (step, loss, metric) in rows {
        out.push_str(&format!("{step},{loss},{metric}\n"));
    }
    out
}

pub fn train(args: TrainArgs) -> Result<(), String> {
    let task: Task = args.task.into();
    let options = TrainOptions {
        mode: args.mode.clone(),
        model: args.model.clone(),
        steps: args.steps as f64,
        lr: args.lr,
        weight_decay: Some(args.weight_decay),
        batch: args.batch as f64,
        seed: args.seed as f64,
        view: Some(args.view.to_string()),
        lambda: Some(args.lambda),
        penalty: Some(args.penalty.clone()),
        group: args.group.clone(),
        forensic_steps: Some(args.forensic_steps as f64),
        snapshot_every: None,
        intensities: Some(args.intensities.iter().map(|&i| i as f64).collect()),
        corruption_severity: args.corruption_severity.map(f64::from),
    };
    let config = options.config(task).map_err(|e| e.to_string())?;
    let model = config.model;
    let camera = args.camera.as_deref().map(load_camera).transpose()?;
    let data = tiles(&args.data, task, camera, args.n, args.size, args.seed)?;
    let run = RunConfig {
        task: task.name().into(),
        model: model.name().into(),
        view: args.view.to_string(),
        classes: data.classes.clone(),
        size: args.size,
        n: args.n,
        seed: args.seed,
        camera: data.camera.clone(),
        batch: args.batch,
    };
    let mut session = Session::new(config, data).map_err(|e| e.to_string())?;
    let choice = DeviceChoice::parse(&args.backend).map_err(|e| e.to_string())?;
    if let Some(gpu) = pollster::block_on(choice.resolve()).map_err(|e| e.to_string())? {
        pollster::block_on(session.use_gpu(gpu)).map_err(|e| e.to_string())?;
    }
    eprintln!("training on {}", session.device_label());
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;

    let bar = ProgressBar::new(session.total_steps() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]")
            .expect("valid template"),
    );
    let mut all = Vec::new();
    while let Some(report) = pollster::block_on(session.step()).map_err(|e| e.to_string())? {
        bar.set_position(report.global_step as u64);
        bar.set_message(format!(
            "{}: loss {:.3} {} {:.3} ({:.0} tiles/s)",
            report.phase, report.loss, session.summary.metric, report.metric, report.samples_per_s
        ));
        all.push((report.global_step, report.loss, report.metric));
    }
    bar.finish_and_clear();

    write_file(&args.out.join("metrics.csv"), csv(&all).as_bytes())?;
    for (phase, rows) in &session.summary.curves {
        let slug: String = phase
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        write_file(
            &args.out.join(format!("metrics_{slug}.csv")),
            csv(rows).as_bytes(),
        )?;
    }
    let summary = serde_json::to_string_pretty(&session.summary).map_err(|e| e.to_string())?;
    write_file(&args.out.join("summary.json"), summary.as_bytes())?;
    write_file(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&run)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )?;
    write_file(
        &args.out.join("model.safetensors"),
        &save_weights(session.model_vars()).map_err(|e| e.to_string())?,
    )?;
    write_file(
        &args.out.join("isp.safetensors"),
        &session.isp().to_safetensors().map_err(|e| e.to_string())?,
    )?;
    for (phase, metric) in &session.summary.final_metric {
        eprintln!("{phase}: validation {} {metric:.3}", session.summary.metric);
    }
    for (corruption, (metric, drop)) in &session.summary.corruptions {
        eprintln!("post-hoc {corruption}: {metric:.3} (drop {drop:.3})");
    }
    for (group, (before, after, drop)) in &session.summary.forensics {
        eprintln!("forensics {group}: {before:.3} -> {after:.3} (drop {drop:.3})");
    }
    eprintln!("wrote {}", args.out.display());
    Ok(())
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
        .load_model(&read_file(&args.run.join("model.safetensors"))?)
        .map_err(|e| format!("{}: {e}", args.run.join("model.safetensors").display()))?;
    let table =
        pollster::block_on(session.view_table(&args.intensities)).map_err(|e| e.to_string())?;
    let views: Vec<String> = View::paper_views().iter().map(View::to_string).collect();
    let mut out = format!("intensity,{}\n", views.join(","));
    for &intensity in &args.intensities {
        let row: Vec<String> = views
            .iter()
            .map(|v| format!("{:.4}", table[v][&intensity]))
            .collect();
        out.push_str(&format!("{intensity},{}\n", row.join(",")));
    }
    if args.intensities.contains(&100) {
        let base = table[&run.view][&100];
        let drops: Vec<String> = views
            .iter()
            .map(|v| format!("{:.4}", base - table[v][&100]))
            .collect();
        out.push_str(&format!("drop_at_100,{}\n", drops.join(",")));
    }
    write_file(&args.out, out.as_bytes())?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
