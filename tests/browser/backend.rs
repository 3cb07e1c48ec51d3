//! The compute backends where users run them: candle autograd in wasm, WebGPU through wgpu, and the
//! CPU fallback.

use lens2logit::gpu::Gpu;
use lens2logit::train::backend::{choose, DeviceChoice};
use lens2logit::train::isp_engine::IspEngine;
use wasm_bindgen_test::*;

use crate::shared::{conv_grad, isp_forward};

#[wasm_bindgen_test]
fn candle_conv2d_weight_gradient_matches_finite_differences() {
    let err = conv_grad::conv2d_weight_gradient_error().unwrap();
    assert!(err < 1e-6, "relative error {err}");
}

/// The runner starts Chromium with --enable-unsafe-webgpu: an adapter must exist.
#[wasm_bindgen_test]
async fn webgpu_isp_forward_matches_cpu() {
    let gpu = Gpu::request()
        .await
        .unwrap()
        .expect("WebGPU adapter (is --enable-unsafe-webgpu set?)");
    assert_eq!(gpu.api_name(), "WebGPU");
    let err = isp_forward::gpu_forward_max_error(&gpu).await;
    assert!(err <= 2e-4, "max abs error {err} on {}", gpu.adapter_name());
    assert!(gpu.label().starts_with("WebGPU"), "{}", gpu.label());
}

#[wasm_bindgen_test]
async fn without_an_adapter_the_cpu_path_reports_cpu_and_works() {
    let engine = IspEngine::new(None).await.unwrap();
    assert_eq!(engine.label(), "CPU (wasm SIMD)");
    let (_, forced) = choose(DeviceChoice::Cpu, None, &crate::shared::train::small_spec())
        .await
        .unwrap();
    assert!(!forced.gpu);
    assert_eq!(forced.device, "CPU (wasm SIMD)");
    let out = isp_forward::cpu_forward();
    assert!(out.iter().all(|v| v.is_finite()) && out.len() == 2 * 3 * 12 * 16);
}

/// The page's SIMD128 matrix product, and the `gemm` crate's wasm kernel beside it, sum within
/// the rounding bound of any summation order.
#[wasm_bindgen_test]
fn matrix_product_kernels_sum_within_the_rounding_bound() {
    use lens2logit::model::ops::Kernel;
    for kernel in [Kernel::Packed, Kernel::GemmCrate] {
        let worst = crate::shared::gemm::worst_error_in_bounds(kernel, 1);
        assert!(worst <= 1.0, "{kernel:?}: {worst} bounds");
    }
}
