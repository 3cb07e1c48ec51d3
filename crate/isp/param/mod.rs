//! The parametrized, differentiable ISP on candle: parameters carry gradients from a task loss
//! back to the raw data. The CPU path and the reference for the GPU kernels.

mod conv;
mod forward;
mod grad;
mod mosaic;
mod pad;
mod params;
mod pointwise;
mod rendering;
mod running;
mod twin;

pub use conv::{conv2d_same, Padding};
pub use forward::{forward, forward_clipping, Forward};
pub use grad::{gradients, Gradients};
pub use mosaic::scatter_mosaic;
pub use pad::reflect_pad2d;
pub use params::IspParams;
pub use pointwise::{batch_norm, clip_gamma};
pub use rendering::{CameraRendering, RenderingKnots, RenderingStages, SEGMENTS};
pub use running::RunningStats;
pub use twin::{twin_safetensors, TwinView};
