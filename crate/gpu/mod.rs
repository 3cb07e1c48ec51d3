//! GPU compute through wgpu: WebGPU in the browser, Vulkan/Metal/DX12 natively. Each WGSL kernel
//! lives beside the Rust that drives it; every kernel is checked against the CPU (candle) path,
//! which stays the reference and the fallback.

mod backend;
mod context;
pub mod isp;
mod kernel;

pub use backend::ComputeBackend;
pub use context::Gpu;
pub use kernel::Kernel;
