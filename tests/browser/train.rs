//! The training engine in the browser: the same learning check as natively, and the GPU backend
//! on WebGPU (SwiftShader) against the CPU backend.

use std::rc::Rc;

use lens2logit::gpu::Gpu;
use wasm_bindgen_test::*;

use crate::shared::train_gpu;

#[wasm_bindgen_test]
async fn classification_loss_falls_and_accuracy_beats_chance() {
    let (first, last, accuracy) = crate::shared::train::classification_learns().await;
    web_sys::console::log_1(
        &format!("browser: loss {first:.3} -> {last:.3}, accuracy {accuracy:.3}").into(),
    );
}

async fn webgpu() -> Rc<Gpu> {
    Rc::new(
        Gpu::request()
            .await
            .unwrap()
            .expect("WebGPU adapter (is --enable-unsafe-webgpu set?)"),
    )
}

#[wasm_bindgen_test]
async fn every_mode_trains_on_webgpu_as_on_the_cpu() {
    for line in train_gpu::every_mode_matches(webgpu().await).await {
        web_sys::console::log_1(&format!("browser: {line}").into());
    }
}

#[wasm_bindgen_test]
async fn a_twenty_step_webgpu_run_follows_the_cpu_curve() {
    let line = train_gpu::twenty_steps_follow(webgpu().await).await;
    web_sys::console::log_1(&format!("browser: {line}").into());
}
