//! The core's native integration tests, which build no server and no command line:
//! `cargo test --release -p lens2logit --test core`.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../shared/mod.rs"]
mod shared;

#[path = "../support/pretrained.rs"]
mod pretrained_fixtures;

mod adapter;
mod backend;
mod findings;
mod gpu_layers;
mod gpu_models;
mod param_isp;
mod pretrained;
mod static_views;
mod train;
mod train_gpu;
