//! WGSL kernels of the parametrized ISP, one stage per file, each beside its shader.

mod scatter;

pub use scatter::scatter_mosaic;
