//! Browser tests: `cargo test --release --target wasm32-unknown-unknown --test browser`, run by
//! wasm-bindgen-test-runner in headless Chromium (flags in webdriver.json), inside a dedicated
//! worker as the page's compute runs.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

#[path = "../shared/mod.rs"]
mod shared;

mod backend;
mod gpu_layers;
mod param_isp;
mod static_views;
mod train;
