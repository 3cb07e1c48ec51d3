//! Native integration tests: `cargo test --release --test native`.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../shared/mod.rs"]
mod shared;

mod backend;
mod cli_views;
mod serve;
mod static_views;
