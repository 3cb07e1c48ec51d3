//! Parity of the parametrized ISP with PyTorch autograd (tests/reference/param_isp.py, float64):
//! outputs, stages, and the vector-Jacobian products for a fixed upstream gradient.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use lens2logit::isp::param::IspParams;
use lens2logit::spec::isp::{Stage, NAMES};

/// Bounds: forward max abs error, gradient relative error (norm of difference / norm of reference).
pub struct Tolerance {
    pub forward: f64,
    pub gradient: f64,
}

pub const F64: Tolerance = Tolerance {
    forward: 1e-7,
    gradient: 1e-6,
};
pub const F32: Tolerance = Tolerance {
    forward: 2e-4,
    gradient: 2e-3,
};

pub fn golden(bytes: &[u8]) -> HashMap<String, Tensor> {
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

pub fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    flat(a)
        .iter()
        .zip(flat(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

pub fn relative(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let (a, b) = (flat(a), flat(b));
    let diff: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}

/// What the comparison found: (name, error) pairs, all within bounds.
pub type Report = Vec<(String, f64)>;

/// The four configurations of the golden file: (camera, batch norm, key prefix).
pub fn configs() -> Vec<(&'static str, bool, String)> {
    let mut out = Vec::new();
    for camera in ["microscopy", "drone"] {
        for bn in [true, false] {
            out.push((
                camera,
                bn,
                format!("{camera}/{}", if bn { "bn" } else { "no_bn" }),
            ));
        }
    }
    out
}

/// The golden file's inputs for one camera (tiles of its own dataset): raw (B, H, W), upstream
/// (B, 3, H, W) and the camera's initial parameters.
pub fn inputs(
    golden: &HashMap<String, Tensor>,
    camera: &str,
    dtype: DType,
) -> (Tensor, Tensor, IspParams) {
    let tensors: HashMap<String, Tensor> = NAMES
        .iter()
        .map(|n| {
            (
                n.to_string(),
                golden[&format!("{camera}/param.{n}")].clone(),
            )
        })
        .collect();
    (
        golden[&format!("{camera}/raw")].to_dtype(dtype).unwrap(),
        golden[&format!("{camera}/upstream")]
            .to_dtype(dtype)
            .unwrap(),
        IspParams::from_tensors(&tensors, dtype, &Device::Cpu).unwrap(),
    )
}

/// Checks our results (by configuration prefix: `output`, `stage.<s>`, `grad.stage.<s>`,
/// `grad.raw`, `grad.<param>`) against the golden file.
pub fn check(
    golden: &HashMap<String, Tensor>,
    ours: &HashMap<String, HashMap<String, Tensor>>,
    tol: &Tolerance,
) -> Report {
    let mut report = Vec::new();
    for (_, _, prefix) in configs() {
        let ours = &ours[&prefix];
        let mut forward_keys = vec!["output".to_string()];
        let mut grad_keys = vec!["grad.raw".to_string()];
        for s in Stage::ALL {
            forward_keys.push(format!("stage.{}", s.name()));
            grad_keys.push(format!("grad.stage.{}", s.name()));
        }
        grad_keys.extend(NAMES.iter().map(|n| format!("grad.{n}")));
        for key in forward_keys {
            let err = max_abs(&ours[&key], &golden[&format!("{prefix}/{key}")]);
            assert!(
                err <= tol.forward,
                "{prefix}/{key}: max abs error {err:e} > {:e}",
                tol.forward
            );
            report.push((format!("{prefix}/{key}"), err));
        }
        for key in grad_keys {
            let err = relative(&ours[&key], &golden[&format!("{prefix}/{key}")]);
            assert!(
                err <= tol.gradient,
                "{prefix}/{key}: relative error {err:e} > {:e}",
                tol.gradient
            );
            report.push((format!("{prefix}/{key}"), err));
        }
    }
    report
}

/// Runs the CPU path on every configuration and checks it.
pub fn check_cpu(golden: &HashMap<String, Tensor>, dtype: DType, tol: &Tolerance) -> Report {
    let ours = configs()
        .into_iter()
        .map(|(camera, bn, prefix)| {
            let (raw, upstream, params) = inputs(golden, camera, dtype);
            (prefix, cpu(&raw, &params, &upstream, bn))
        })
        .collect();
    check(golden, &ours, tol)
}

/// Runs the GPU path on every configuration (f32) and checks it.
pub async fn check_gpu(gpu: &lens2logit::gpu::Gpu, golden: &HashMap<String, Tensor>) -> Report {
    let isp = lens2logit::gpu::isp::GpuIsp::new(gpu).await.unwrap();
    let mut ours = HashMap::new();
    for (camera, bn, prefix) in configs() {
        let (raw, upstream, params) = inputs(golden, camera, DType::F32);
        let (b, h, w) = raw.dims3().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let packed: Vec<f32> = params
            .named()
            .flat_map(|(_, v)| flat(v.as_tensor()))
            .collect();
        let run = isp
            .run(
                gpu,
                &flat(&raw),
                (b, h, w),
                &packed,
                Some(&flat(&upstream)),
                bn,
            )
            .await
            .unwrap();
        let grads = run.gradients.unwrap();
        let image = |v: Vec<f32>| Tensor::from_vec(v, (b, 3, h, w), &Device::Cpu).unwrap();
        let mut named = HashMap::new();
        named.insert("output".to_string(), image(run.output));
        for ((s, value), grad) in Stage::ALL.iter().zip(run.stages).zip(grads.stages) {
            named.insert(format!("stage.{}", s.name()), image(value));
            named.insert(format!("grad.stage.{}", s.name()), image(grad));
        }
        named.insert(
            "grad.raw".to_string(),
            Tensor::from_vec(grads.raw, (b, h, w), &Device::Cpu).unwrap(),
        );
        let mut at = 0;
        for (n, v) in params.named() {
            let len = v.as_tensor().elem_count();
            let g = Tensor::from_vec(
                grads.params[at..at + len].to_vec(),
                v.as_tensor().shape(),
                &Device::Cpu,
            )
            .unwrap();
            named.insert(format!("grad.{n}"), g);
            at += len;
        }
        ours.insert(prefix, named);
    }
    check(golden, &ours, &F32)
}

/// The CPU (candle) path's named results.
pub fn cpu(
    raw: &Tensor,
    params: &IspParams,
    upstream: &Tensor,
    bn: bool,
) -> HashMap<String, Tensor> {
    let g = lens2logit::isp::param::gradients(raw, params, upstream, bn).unwrap();
    let mut out = HashMap::new();
    out.insert("output".to_string(), g.output);
    for (s, value, grad) in g.stages {
        out.insert(format!("stage.{}", s.name()), value);
        out.insert(format!("grad.stage.{}", s.name()), grad);
    }
    out.insert("grad.raw".to_string(), g.raw);
    for (n, grad) in g.params {
        out.insert(format!("grad.{n}"), grad);
    }
    out
}
