//! Forward + backward of the parametrized ISP on 256x256 tiles, B = 1 and B = 8, on the CPU
//! (candle, f32) and on the GPU when an adapter exists: medians as JSON.
//! `cargo bench --bench param_isp -- [REPEATS]`; tests/bench/run.mjs compares with PyTorch.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use lens2logit::gpu::isp::GpuIsp;
use lens2logit::gpu::Gpu;
use lens2logit::isp::param::{gradients, IspParams};
use lens2logit::raw::CameraParams;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let params = IspParams::initial(&CameraParams::drone(), DType::F32, &Device::Cpu).unwrap();
    let gpu = pollster::block_on(Gpu::request()).unwrap();
    let gpu_isp = gpu
        .as_ref()
        .map(|g| pollster::block_on(GpuIsp::new(g)).unwrap());
    let packed = params.packed().unwrap();
    let mut fields = vec![format!("\"threads\": {}", rayon::current_num_threads())];
    for b in [1usize, 8] {
        let raw = Tensor::rand(0f32, 1.0, (b, 256, 256), &Device::Cpu).unwrap();
        let upstream = Tensor::randn(0f32, 1.0, (b, 3, 256, 256), &Device::Cpu).unwrap();
        let cpu = median(
            (0..repeats + 1)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(gradients(&raw, &params, &upstream, true).unwrap());
                    start.elapsed().as_secs_f64()
                })
                .skip(1)
                .collect(),
        );
        fields.push(format!("\"cpu_b{b}_s\": {cpu}"));
        if let (Some(gpu), Some(isp)) = (&gpu, &gpu_isp) {
            let raw = raw.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let up = upstream.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let t = median(
                (0..repeats + 1)
                    .map(|_| {
                        let start = Instant::now();
                        pollster::block_on(isp.run(
                            gpu,
                            &raw,
                            (b, 256, 256),
                            &packed,
                            Some(&up),
                            true,
                        ))
                        .unwrap();
                        start.elapsed().as_secs_f64()
                    })
                    .skip(1)
                    .collect(),
            );
            fields.push(format!("\"gpu_b{b}_s\": {t}"));
        }
    }
    if let Some(gpu) = &gpu {
        fields.push(format!("\"gpu\": \"{}\"", gpu.adapter_name()));
    }
    println!("{{{}}}", fields.join(", "));
}
