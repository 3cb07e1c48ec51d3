//! The GPU layer library (`gpu::nn`) on lavapipe against candle on the CPU (see
//! `shared::gpu_layers`; the browser runs the same checks on SwiftShader).

use crate::adapter;
use crate::shared::gpu_layers;

#[test]
fn conv2d_forward_and_gradients_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::conv2d(&gpu, &kernels));
}

#[test]
fn misfits_are_errors_not_panics() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::misfits(&gpu, &kernels));
}

#[test]
fn linear_forward_and_gradients_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::linear(&gpu, &kernels));
}

#[test]
fn batch_norm_train_and_eval_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::batch_norm_train_and_eval(&gpu, &kernels));
}

#[test]
fn batch_norm_reduction_is_accurate_when_ill_conditioned() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::batch_norm_ill_conditioned(&gpu, &kernels));
}

#[test]
fn relu_add_and_accumulate_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::relu_add_and_accumulate(&gpu, &kernels));
}

#[test]
fn augmentation_and_its_adjoint_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::augmentation_and_adjoint(&gpu, &kernels));
}

#[test]
fn pooling_matches_the_cpu_ops() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::pooling(&gpu, &kernels));
}

#[test]
fn upsampling_and_concatenation_match_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::upsampling_and_concatenation(&gpu, &kernels));
}

#[test]
fn losses_and_metrics_match_the_cpu() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::losses_and_metrics(&gpu, &kernels));
}

#[test]
fn adamw_steps_match_candle_nn() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::adamw_steps(&gpu, &kernels));
}

#[test]
fn forensic_objective_gradient_matches_candle() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::forensic_objective_gradient(&gpu, &kernels));
}

#[test]
fn forensic_reference_pool_is_the_sessions() {
    gpu_layers::forensic_reference_pool_is_the_sessions();
}

#[test]
fn forensic_objective_rejects_misfits() {
    let Some((gpu, kernels)) = adapter::gpu_with_kernels() else {
        return;
    };
    pollster::block_on(gpu_layers::forensic_objective_misfits(&gpu, &kernels));
}
