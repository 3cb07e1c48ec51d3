//! The GPU layer library (`gpu::nn`) on WebGPU (SwiftShader) against candle on the CPU, in wasm:
//! the same checks as natively (see `shared::gpu_layers`).

use lens2logit::gpu::nn::Kernels;
use lens2logit::gpu::Gpu;
use wasm_bindgen_test::*;

use crate::shared::gpu_layers;

/// The runner starts Chromium with --enable-unsafe-webgpu: an adapter must exist.
async fn webgpu() -> (Gpu, Kernels) {
    let gpu = Gpu::request()
        .await
        .unwrap()
        .expect("WebGPU adapter (is --enable-unsafe-webgpu set?)");
    web_sys::console::log_1(
        &format!("browser: {} on {}", gpu.api_name(), gpu.adapter_name()).into(),
    );
    let kernels = Kernels::new(&gpu).await.expect("layer kernels compile");
    (gpu, kernels)
}

#[wasm_bindgen_test]
async fn conv2d_forward_and_gradients_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::conv2d(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn misfits_are_errors_not_panics() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::misfits(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn linear_forward_and_gradients_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::linear(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn batch_norm_train_and_eval_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::batch_norm_train_and_eval(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn batch_norm_reduction_is_accurate_when_ill_conditioned() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::batch_norm_ill_conditioned(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn relu_add_and_accumulate_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::relu_add_and_accumulate(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn augmentation_and_its_adjoint_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::augmentation_and_adjoint(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn pooling_matches_the_cpu_ops() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::pooling(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn upsampling_and_concatenation_match_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::upsampling_and_concatenation(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn losses_and_metrics_match_the_cpu() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::losses_and_metrics(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn adamw_steps_match_candle_nn() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::adamw_steps(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
async fn forensic_objective_gradient_matches_candle() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::forensic_objective_gradient(&gpu, &kernels).await;
}

#[wasm_bindgen_test]
fn forensic_reference_pool_is_the_sessions() {
    gpu_layers::forensic_reference_pool_is_the_sessions();
}

#[wasm_bindgen_test]
async fn forensic_objective_rejects_misfits() {
    let (gpu, kernels) = webgpu().await;
    gpu_layers::forensic_objective_misfits(&gpu, &kernels).await;
}
