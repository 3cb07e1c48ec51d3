//! Lens2Logit Lab: raw sensor data, the paper's image signal processing (static and parametrized)
//! and task models, built once for the browser (wasm + WebGPU) and for the native CLI.
//!
//! The module map follows the paper's boxes: [`raw`] tiles go through the [`isp`] into task models,
//! with [`gpu`] kernels beside the maths they accelerate. The page's facade (`crate/web/`, package
//! `lens2logit-web`) and the command line (`crate/cli/`, `lens2logit-cli`) are packages over this core.

pub mod codecs;
mod cpu_slices;
pub mod data;
pub mod error;
pub mod gpu;
pub mod isp;
pub mod model;
pub mod raw;
pub mod runs;
pub mod spec;
pub mod train;
pub mod viz;

pub use error::{Error, Result};

#[cfg(all(test, not(target_arch = "wasm32")))]
mod module_graph;
