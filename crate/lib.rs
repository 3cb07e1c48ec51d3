//! Lens2Logit Lab: raw sensor data, the paper's image signal processing (static and parametrized)
//! and task models, built once for the browser (wasm + WebGPU) and for the native CLI.
//!
//! The module map follows the paper's boxes: [`raw`] tiles go through the [`isp`] into task models,
//! with [`gpu`] kernels beside the maths they accelerate, and [`web`] as the thin facade the page's
//! worker talks to.

pub mod arrays;
pub mod data;
pub mod error;
pub mod gpu;
pub mod isp;
pub mod limits;
pub mod model;
pub mod raw;
pub mod runs;
mod storage;
pub mod train;
pub mod viz;

#[cfg(not(target_arch = "wasm32"))]
pub mod server;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
