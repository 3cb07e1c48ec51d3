//! `lens2logit bench train-step`: the engine's train step on this machine, as one JSON line
//! (model, backend, batch, size, ms_per_step: the median after a warm-up), plus the threads used
//! and the process's peak resident memory.

use clap::{Args, Subcommand, ValueEnum};

use lens2logit::spec::models::ModelKind;
use lens2logit::train::{bench, DeviceChoice};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the train step of a task model (synthesis on synthetic tiles of its task).
    TrainStep(TrainStepArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Cpu,
    Gpu,
}

#[derive(Args)]
struct TrainStepArgs {
    /// resnet18, resnet_small, unet_small or unet_plus_plus.
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Tile side in pixels (the datasets' tiles are 256).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// The compute backend: the CPU (candle and the crate's GEMM convolutions) or the GPU
    /// (wgpu; any adapter, software ones included).
    #[arg(long, value_enum, default_value = "cpu")]
    backend: BackendArg,
    /// Timed steps after the warm-up.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Fine-tuning with the backbone frozen: steps that train the head alone.
    #[arg(long)]
    freeze_backbone: bool,
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    let BenchCommand::TrainStep(a) = args.what;
    let choice = match a.backend {
        BackendArg::Cpu => DeviceChoice::Cpu,
        BackendArg::Gpu => DeviceChoice::Gpu,
    };
    let model = ModelKind::parse(&a.model).map_err(|e| e.to_string())?;
    let timing = pollster::block_on(async {
        let gpu = match choice.adapter().await? {
            None if choice == DeviceChoice::Gpu => {
                return Err(lens2logit::Error::Gpu("no GPU adapter found".into()))
            }
            gpu => gpu,
        };
        bench::train_step(model, (a.batch, a.size, a.steps), a.freeze_backbone, gpu).await
    })
    .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_value(&timing).map_err(|e| e.to_string())?;
    if let Some(mb) = peak_rss_mb() {
        line["peak_rss_mb"] = serde_json::json!(mb);
    }
    println!("{line}");
    Ok(())
}

/// The process's peak resident set (VmHWM) in MB, where the OS reports it (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kb / 1024.0).round())
}
