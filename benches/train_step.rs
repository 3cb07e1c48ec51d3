//! Train steps of the task models (batch 8: small ResNet and small U-Net at 64 px, ResNet-18 at
//! 128 px) through the session engine, and the 3-16-32-64 CNN forward + backward with candle's
//! conv2d against ours (im2col + GEMM): medians as JSON. tests/bench/run.mjs compares them with
//! PyTorch measured in the same run.

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use lens2logit::model::ops::conv2d;
use lens2logit::model::ModelKind;
use lens2logit::train::bench;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median step time (s) of a synthesis session (lens2logit::train::bench, as the CLI's `bench`).
fn session_step(model: ModelKind, size: usize, repeats: usize) -> f64 {
    bench::train_step(model, 8, size, repeats)
        .unwrap()
        .ms_per_step
        / 1000.0
}

fn cnn(repeats: usize, ours: bool) -> f64 {
    let dev = Device::Cpu;
    let img = Tensor::rand(0f32, 1.0, (1, 3, 256, 256), &dev).unwrap();
    let weights: Vec<Var> = [(3, 16), (16, 32), (32, 64)]
        .iter()
        .map(|&(a, b)| {
            Var::from_tensor(&(Tensor::randn(0f32, 0.2, (b, a, 3, 3), &dev).unwrap())).unwrap()
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..repeats + 2 {
        let start = Instant::now();
        let mut h = img.clone();
        for w in &weights {
            h = if ours {
                conv2d(&h, w.as_tensor(), 1, 1).unwrap()
            } else {
                h.conv2d(w.as_tensor(), 1, 1, 1, 1).unwrap()
            };
            h = h.relu().unwrap();
        }
        std::hint::black_box(h.mean_all().unwrap().backward().unwrap());
        times.push(start.elapsed().as_secs_f64());
    }
    median(times[2..].to_vec())
}

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let fields = [
        format!("\"threads\": {}", rayon::current_num_threads()),
        format!(
            "\"resnet_small_b8_64_s\": {}",
            session_step(ModelKind::ResNetSmall, 64, repeats)
        ),
        format!(
            "\"unet_small_b8_64_s\": {}",
            session_step(ModelKind::UNetSmall, 64, repeats)
        ),
        format!(
            "\"resnet18_b8_128_s\": {}",
            session_step(ModelKind::ResNet18, 128, repeats.min(5))
        ),
        format!("\"cnn_candle_conv_s\": {}", cnn(repeats, false)),
        format!("\"cnn_ours_s\": {}", cnn(repeats, true)),
    ];
    println!("{{{}}}", fields.join(", "));
}
