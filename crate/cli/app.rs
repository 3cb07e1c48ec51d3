//! The clap application behind `lens2logit`.

use crate::{
    bench, experiment, fetch, fit_camera, isp, predict, runs, settings, synth, train, views,
};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lens2logit",
    version,
    about = "Lens2Logit Lab: raw data, ISP and task models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the lab's page (www/ and the wasm in pkg/) with cross-origin isolation.
    Serve(lens2logit_serve::ServeArgs),
    /// Render the paper's static views (3 demosaicings x 2 sharpenings x 2 denoisings) of raw tiles.
    Views(views::ViewsArgs),
    /// Write the parametrized ISP's initial parameters for a camera (safetensors).
    Params(isp::ParamsArgs),
    /// Run the parametrized ISP forward and backward: outputs, stages and gradients (safetensors).
    Grad(isp::GradArgs),
    /// Write the offline synthetic dataset (raw TIFFs with labels.csv or masks/).
    Synth(synth::SynthArgs),
    /// Stream Raw-Microscopy or Raw-Drone tiles from Zenodo (or a mirror) into a directory.
    Fetch(fetch::FetchArgs),
    /// Run one of the paper's experiments (synthesis, forensics, optimisation).
    Train(Box<train::TrainArgs>),
    /// Evaluate a trained run on the 12 static views and the intensity levels.
    Evaluate(train::EvaluateArgs),
    /// The paper's experiments as single actions: the 12 x 12 table, forensics, optimisation.
    Experiment(Box<experiment::ExperimentArgs>),
    /// A digital twin of a camera's own processing, fitted to its JPEG of a shot from the raw
    /// (DNG): a drift view of the user's camera.
    FitCamera(fit_camera::FitCameraArgs),
    /// A model's eval-mode logits from a weights file on a (B, 3, H, W) batch (.npy in and out).
    Predict(predict::PredictArgs),
    /// Benchmarks on this machine (one JSON line each).
    Bench(bench::BenchArgs),
    /// The lab log: list, show, export and import runs (folders, zips, MLflow).
    Runs(runs::RunsArgs),
    /// Every setting's default and range (the README's table; `--json` for the page's).
    Settings(settings::SettingsArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => lens2logit_serve::run(args),
        Command::Views(args) => views::run(args),
        Command::Params(args) => isp::params(args),
        Command::Grad(args) => isp::grad(args),
        Command::Synth(args) => synth::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Train(args) => train::train(*args),
        Command::Evaluate(args) => train::evaluate(args),
        Command::Experiment(args) => experiment::run(*args),
        Command::FitCamera(args) => fit_camera::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Settings(args) => settings::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
