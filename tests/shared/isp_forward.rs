//! The GPU forward pass against the candle CPU path, on a random batch (no golden file needed).

use candle_core::{DType, Device, Tensor};
use lens2logit::gpu::isp::GpuIsp;
use lens2logit::gpu::Gpu;
use lens2logit::isp::param::{forward, IspParams};
use lens2logit::raw::CameraParams;

use super::conv_grad::noise;

const SHAPE: (usize, usize, usize) = (2, 12, 16);

fn batch() -> Vec<f32> {
    let (b, h, w) = SHAPE;
    noise(b * h * w, 7)
        .iter()
        .map(|v| (v * 0.3 + 0.4) as f32)
        .collect()
}

/// The CPU (candle) output for the random batch, drone camera, batch norm on.
pub fn cpu_forward() -> Vec<f32> {
    let params = IspParams::initial(&CameraParams::drone(), DType::F32, &Device::Cpu).unwrap();
    let raw = Tensor::from_vec(batch(), SHAPE, &Device::Cpu).unwrap();
    let out = forward(&raw, &params, true, false).unwrap().output;
    out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Largest absolute difference between the GPU's forward pass and the CPU's.
pub async fn gpu_forward_max_error(gpu: &Gpu) -> f32 {
    let params = IspParams::initial(&CameraParams::drone(), DType::F32, &Device::Cpu).unwrap();
    let packed = params.packed().unwrap();
    let isp = GpuIsp::new(gpu).await.expect("GPU ISP kernels compile");
    let run = isp
        .run(gpu, &batch(), SHAPE, &packed, None, true)
        .await
        .expect("GPU forward");
    run.output
        .iter()
        .zip(cpu_forward())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
