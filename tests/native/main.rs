//! The CLI's native integration tests (the command, its server, the Zenodo-like mirror, MLflow):
//! `cargo test --release -p lens2logit-cli --test native`. The core's own are `tests/core/`.
#![cfg(not(target_arch = "wasm32"))]

/// The parametrized ISP's PyTorch goldens (the core's and the browser's suites check the same);
/// the CLI's `grad` uses only part of them.
#[allow(dead_code)]
#[path = "../shared/param_isp.rs"]
mod param_isp;

/// Whether the GPU checks run (the CLI's tests only ask that; the adapter is the core suite's).
#[allow(dead_code)]
#[path = "../core/adapter.rs"]
mod adapter;
#[path = "../support/dng.rs"]
mod dng;
#[path = "../support/fixtures.rs"]
mod fixtures;
#[path = "../support/pretrained.rs"]
mod pretrained_fixtures;
#[path = "../support/zenodo_like.rs"]
mod zenodo_like;

mod cli;
mod cli_experiment;
mod cli_isp;
mod cli_runs;
mod cli_sql;
mod cli_synth;
mod cli_train;
mod cli_views;
mod dng_files;
mod fit_camera;
mod mlflow;
mod pretrained;
mod serve;
mod settings;
mod zenodo;
