//! The GPU scatter kernel against the candle CPU path, on a random batch.

use candle_core::{Device, Tensor};
use lens2logit::gpu::{isp, Gpu};
use lens2logit::isp::param::scatter_mosaic;

use super::conv_grad::noise;

/// Largest absolute difference between the GPU kernel and candle on a 2x12x16 batch.
pub async fn gpu_scatter_max_error(gpu: &Gpu) -> f32 {
    let (b, h, w) = (2, 12, 16);
    let raw: Vec<f32> = noise(b * h * w, 7)
        .iter()
        .map(|v| (v * 0.5 + 0.5) as f32)
        .collect();
    let black = [0.0625f32, 0.0626, 0.0625, 0.0626];
    let gpu_out = isp::scatter_mosaic(gpu, &raw, (b, h, w), black)
        .await
        .expect("GPU scatter");
    let cpu_out = cpu_scatter(&raw, (b, h, w), black);
    gpu_out
        .iter()
        .zip(&cpu_out)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// The CPU (candle) result for the same inputs.
pub fn cpu_scatter(raw: &[f32], (b, h, w): (usize, usize, usize), black: [f32; 4]) -> Vec<f32> {
    let dev = Device::Cpu;
    let raw = Tensor::from_vec(raw.to_vec(), (b, h, w), &dev).unwrap();
    let black = Tensor::new(&black, &dev).unwrap();
    scatter_mosaic(&raw, &black)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}
