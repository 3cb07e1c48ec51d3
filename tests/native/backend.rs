//! Compute backends natively: candle autograd, and wgpu on whatever adapter exists (lavapipe here).

use lens2logit::gpu::ComputeBackend;

use crate::shared::{conv_grad, isp_forward};

#[test]
fn conv2d_weight_gradient_matches_finite_differences() {
    let err = conv_grad::conv2d_weight_gradient_error().unwrap();
    assert!(err < 1e-6, "relative error {err}");
}

#[test]
fn gpu_isp_forward_matches_cpu() {
    let Some(gpu) = crate::adapter::gpu() else {
        return;
    };
    let err = pollster::block_on(isp_forward::gpu_forward_max_error(&gpu));
    assert!(err <= 2e-4, "max abs error {err} on {}", gpu.adapter_name());
}

#[test]
fn cpu_fallback_reports_cpu() {
    let backend = ComputeBackend::from_adapter(None);
    assert!(!backend.is_gpu());
    assert_eq!(backend.label(), "CPU (native)");
    let out = isp_forward::cpu_forward();
    assert!(out.iter().all(|v| v.is_finite()) && out.len() == 2 * 3 * 12 * 16);
}
