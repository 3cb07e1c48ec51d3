//! Compute backends natively: candle autograd, and wgpu on whatever adapter exists (lavapipe here).

use lens2logit::gpu::{ComputeBackend, Gpu};

use crate::shared::{conv_grad, scatter};

#[test]
fn conv2d_weight_gradient_matches_finite_differences() {
    let err = conv_grad::conv2d_weight_gradient_error().unwrap();
    assert!(err < 1e-6, "relative error {err}");
}

/// With `LENS2LOGIT_REQUIRE_GPU=1` (the test script sets it; the README installs lavapipe), a
/// missing adapter fails the test instead of skipping the GPU check.
#[test]
fn gpu_scatter_matches_cpu() {
    let Some(gpu) = pollster::block_on(Gpu::request()).unwrap() else {
        assert!(
            std::env::var("LENS2LOGIT_REQUIRE_GPU").is_err(),
            "no GPU adapter (install mesa-vulkan-drivers for lavapipe)"
        );
        eprintln!("no GPU adapter: GPU check skipped");
        return;
    };
    let err = pollster::block_on(scatter::gpu_scatter_max_error(&gpu));
    assert!(err <= 1e-7, "max abs error {err} on {}", gpu.adapter_name());
}

#[test]
fn cpu_fallback_reports_cpu() {
    let backend = ComputeBackend::from_adapter(None);
    assert!(!backend.is_gpu());
    assert_eq!(backend.label(), "CPU (native)");
    let out = scatter::cpu_scatter(&[0.5; 4], (1, 2, 2), [0.0; 4]);
    assert_eq!(out.iter().sum::<f32>(), 2.0);
}
