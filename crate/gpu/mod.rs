//! GPU compute through wgpu: WebGPU in the browser, Vulkan/Metal/DX12 natively. Each WGSL program
//! lives beside the Rust that drives it, which declares the uniforms and constants both share
//! (`wgsl`); every kernel is checked against the CPU (candle) path, which stays the reference and
//! the fallback. The kernels see the maths' contracts through `spec` only.

mod context;
pub mod isp;
pub mod models;
pub mod nn;
mod program;
mod wgsl;

pub use context::{Gpu, Tally, Traffic};
pub use program::{Binding, Program};
