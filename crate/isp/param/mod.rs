//! The parametrized, differentiable ISP on candle: parameters carry gradients from a task loss
//! back to the raw data.

mod mosaic;

pub use mosaic::scatter_mosaic;
