//! Native integration tests: `cargo test --release --test native`.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../shared/mod.rs"]
mod shared;

#[path = "../support/dng.rs"]
mod dng;
#[path = "../support/fixtures.rs"]
mod fixtures;
#[path = "../support/zenodo_like.rs"]
mod zenodo_like;

mod adapter;
mod backend;
mod cli;
mod cli_experiment;
mod cli_isp;
mod cli_runs;
mod cli_train;
mod cli_views;
mod dng_files;
mod findings;
mod gpu_layers;
mod gpu_models;
mod mlflow;
mod param_isp;
mod pretrained;
mod serve;
mod settings;
mod static_views;
mod train;
mod train_gpu;
mod zenodo;
