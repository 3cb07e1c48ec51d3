//! The parametrized ISP in the browser against PyTorch autograd: the candle CPU path in f32 and
//! the WebGPU kernels on SwiftShader.

use candle_core::DType;
use lens2logit::gpu::Gpu;
use wasm_bindgen_test::*;

use crate::shared::param_isp::{check_cpu, check_gpu, golden, F32, F64};

fn golden_file() -> std::collections::HashMap<String, candle_core::Tensor> {
    golden(include_bytes!("../golden/param_isp.safetensors"))
}

#[wasm_bindgen_test]
fn cpu_f64_matches_pytorch() {
    let report = check_cpu(&golden_file(), DType::F64, &F64);
    assert_eq!(report.len(), 4 * 19);
}

#[wasm_bindgen_test]
fn cpu_f32_matches_pytorch() {
    let report = check_cpu(&golden_file(), DType::F32, &F32);
    assert_eq!(report.len(), 4 * 19);
}

#[wasm_bindgen_test]
async fn webgpu_matches_pytorch_in_f32() {
    let gpu = Gpu::request().await.unwrap().expect("WebGPU adapter");
    let report = check_gpu(&gpu, &golden_file()).await;
    assert_eq!(report.len(), 4 * 19);
}
