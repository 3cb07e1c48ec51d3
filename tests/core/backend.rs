//! Compute backends natively: candle autograd, and wgpu on whatever adapter exists (lavapipe here).

use lens2logit::train::backend::DeviceChoice;
use lens2logit::train::isp_engine::IspEngine;

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
    let engine = pollster::block_on(IspEngine::new(None)).unwrap();
    assert!(engine.gpu().is_none());
    assert_eq!(engine.label(), "CPU (native)");
    let (backend, choice) = pollster::block_on(lens2logit::train::backend::choose(
        DeviceChoice::Auto,
        None,
        &crate::shared::train::small_spec(),
    ))
    .unwrap();
    assert!(!choice.gpu && choice.measured.is_none());
    assert_eq!(backend.label(), "CPU (native)");
    let out = isp_forward::cpu_forward();
    assert!(out.iter().all(|v| v.is_finite()) && out.len() == 2 * 3 * 12 * 16);
}

/// Both matrix-product kernels sum within the rounding bound of any summation order, on one
/// thread and on the pool.
#[test]
fn matrix_product_kernels_sum_within_the_rounding_bound() {
    use lens2logit::model::ops::Kernel;
    for kernel in [Kernel::Packed, Kernel::GemmCrate] {
        for threads in [1, rayon::current_num_threads().max(2)] {
            let worst = crate::shared::gemm::worst_error_in_bounds(kernel, threads);
            assert!(
                worst <= 1.0,
                "{kernel:?} on {threads} threads: {worst} bounds"
            );
        }
    }
}
