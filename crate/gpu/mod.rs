//! GPU compute through wgpu: WebGPU in the browser, Vulkan/Metal/DX12 natively. Each WGSL program
//! lives beside the Rust that drives it; every kernel is checked against the CPU (candle) path,
//! which stays the reference and the fallback.

mod context;
pub mod isp;
pub mod models;
pub mod nn;
mod program;

pub use context::{Gpu, Tally, Traffic};
pub use program::{Binding, Program};
