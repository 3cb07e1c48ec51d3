//! The parametrized ISP against PyTorch autograd, in f64 and f32.

use candle_core::DType;

use crate::shared::param_isp::{check_cpu, check_gpu, golden, F32, F64};

fn golden_file() -> std::collections::HashMap<String, candle_core::Tensor> {
    golden(include_bytes!("../golden/param_isp.safetensors"))
}

fn worst(report: &[(String, f64)], prefix: &str) -> f64 {
    report
        .iter()
        .filter(|(k, _)| k.contains(prefix))
        .map(|(_, e)| *e)
        .fold(0.0, f64::max)
}

#[test]
fn cpu_f64_matches_pytorch() {
    let report = check_cpu(&golden_file(), DType::F64, &F64);
    println!(
        "f64: forward {:.1e}, gradients {:.1e}",
        worst(&report, "/stage.").max(worst(&report, "/output")),
        worst(&report, "/grad.")
    );
}

#[test]
fn cpu_f32_matches_pytorch() {
    let report = check_cpu(&golden_file(), DType::F32, &F32);
    println!(
        "f32: forward {:.1e}, gradients {:.1e}",
        worst(&report, "/stage.").max(worst(&report, "/output")),
        worst(&report, "/grad.")
    );
}

#[test]
fn gpu_matches_pytorch_in_f32() {
    let Some(gpu) = crate::adapter::gpu() else {
        return;
    };
    let report = pollster::block_on(check_gpu(&gpu, &golden_file()));
    println!(
        "gpu ({}): forward {:.1e}, gradients {:.1e}",
        gpu.adapter_name(),
        worst(&report, "/stage.").max(worst(&report, "/output")),
        worst(&report, "/grad.")
    );
}
