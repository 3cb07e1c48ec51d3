//! Test bodies shared by the native suite and the browser suite, so the same checks run in both.

pub mod compare;
pub mod conv_grad;
pub mod gemm;
pub mod golden;
pub mod gpu_layers;
pub mod isp_forward;
pub mod param_isp;
pub mod static_views;
pub mod train;
pub mod train_gpu;
