//! `lens2logit params` and `lens2logit grad`: the parametrized ISP's parameters, outputs and
//! gradients as safetensors, on the CPU (candle, f32 or f64) or the GPU (wgpu, f32).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use clap::{Args, ValueEnum};

use lens2logit::codecs::f32_values;
use lens2logit::codecs::read_npy;
use lens2logit::gpu::Gpu;
use lens2logit::isp::param::{gradients, IspParams};
use lens2logit::spec::isp::{shape_of, Stage, NAMES};
use lens2logit::train::isp_engine::IspEngine;

use crate::common::{load_camera, read_file, write_file};

#[derive(Args)]
pub struct ParamsArgs {
    /// microscopy, drone, or a camera JSON file.
    #[arg(long)]
    camera: String,
    #[arg(long)]
    out: PathBuf,
}

pub fn params(args: ParamsArgs) -> Result<(), String> {
    let camera = load_camera(&args.camera)?;
    let params =
        IspParams::initial(&camera, DType::F32, &Device::Cpu).map_err(|e| e.to_string())?;
    write_file(
        &args.out,
        &params.to_safetensors(None).map_err(|e| e.to_string())?,
    )
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Cpu,
    Gpu,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    F32,
    F64,
}

#[derive(Args)]
pub struct GradArgs {
    /// Raw batch, float32 .npy of shape (B, H, W).
    input: PathBuf,
    /// ISP parameters (safetensors with the paper's PyTorch names).
    #[arg(long)]
    params: PathBuf,
    /// dL/d(output), float32 .npy of shape (B, 3, H, W).
    #[arg(long)]
    upstream: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Leave out the output batch norm.
    #[arg(long)]
    no_batch_norm: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    backend: Backend,
    /// f64 runs on the CPU backend only.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Precision,
}

fn npy_tensor(path: &Path, rank: usize, what: &str) -> Result<Tensor, String> {
    let name = path.display().to_string();
    let (shape, data) = read_npy(&read_file(path)?, &name).map_err(|e| e.to_string())?;
    if shape.len() != rank {
        return Err(format!(
            "{name}: {what} must have {rank} dimensions, got shape {shape:?}"
        ));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(format!("{name}: {what} holds NaN or infinite values"));
    }
    Tensor::from_vec(data, shape, &Device::Cpu).map_err(|e| e.to_string())
}

pub fn grad(args: GradArgs) -> Result<(), String> {
    if args.backend == Backend::Gpu && args.dtype == Precision::F64 {
        return Err("--dtype f64 runs on the CPU backend only (use --backend cpu)".into());
    }
    let raw = npy_tensor(&args.input, 3, "the raw batch")?;
    let upstream = npy_tensor(&args.upstream, 4, "the upstream gradient")?;
    let (b, h, w) = raw.dims3().map_err(|e| e.to_string())?;
    if upstream.dims() != [b, 3, h, w] {
        return Err(format!(
            "the upstream gradient has shape {:?}, the output is ({b}, 3, {h}, {w})",
            upstream.dims()
        ));
    }
    if h % 2 != 0 || w % 2 != 0 || h < 4 || w < 4 {
        return Err(format!(
            "raw tiles of {h}x{w}: the sides must be even and at least 4"
        ));
    }
    let dtype = match args.dtype {
        Precision::F32 => DType::F32,
        Precision::F64 => DType::F64,
    };
    let params = IspParams::from_safetensors(&read_file(&args.params)?, dtype, &Device::Cpu)
        .map_err(|e| format!("{}: {e}", args.params.display()))?;
    let batch_norm = !args.no_batch_norm;
    let tensors = if dtype == DType::F64 {
        candle_f64(&raw, &params, &upstream, batch_norm).map_err(|e| e.to_string())?
    } else {
        pollster::block_on(on_backend(
            args.backend,
            &raw,
            &params,
            &upstream,
            batch_norm,
        ))
        .map_err(|e| e.to_string())?
    };
    let bytes =
        safetensors::serialize(tensors, None).map_err(|e| format!("writing safetensors: {e}"))?;
    write_file(&args.out, &bytes)
}

type Named = Vec<(String, Tensor)>;

/// The f64 path: candle on the CPU.
fn candle_f64(
    raw: &Tensor,
    params: &IspParams,
    upstream: &Tensor,
    bn: bool,
) -> lens2logit::Result<Named> {
    let g = gradients(&raw.to_dtype(DType::F64)?, params, upstream, bn)?;
    let mut out = vec![("output".to_string(), g.output)];
    for (stage, value, grad) in g.stages {
        out.push((format!("stage.{}", stage.name()), value));
        out.push((format!("grad.stage.{}", stage.name()), grad));
    }
    out.push(("grad.raw".to_string(), g.raw));
    out.extend(g.params.into_iter().map(|(n, t)| (format!("grad.{n}"), t)));
    Ok(out)
}

/// The f32 path on the chosen backend, through the same engine the page uses.
async fn on_backend(
    backend: Backend,
    raw: &Tensor,
    params: &IspParams,
    upstream: &Tensor,
    bn: bool,
) -> lens2logit::Result<Named> {
    let gpu = match backend {
        Backend::Cpu => None,
        Backend::Gpu => Some(std::rc::Rc::new(Gpu::request().await?.ok_or_else(|| {
            lens2logit::Error::Gpu("no GPU adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers, or use --backend cpu)".into())
        })?)),
    };
    let engine = IspEngine::new(gpu).await?;
    let (b, h, w) = raw.dims3()?;
    let run = engine
        .run(
            &f32_values(raw)?,
            (b, h, w),
            params,
            Some(&f32_values(upstream)?),
            bn,
        )
        .await?;
    let grads = run.gradients.expect("an upstream gradient was given");
    let image = |v: Vec<f32>| Tensor::from_vec(v, (b, 3, h, w), &Device::Cpu);
    let mut out = vec![("output".to_string(), image(run.output)?)];
    for ((stage, value), grad) in Stage::ALL.iter().zip(run.stages).zip(grads.stages) {
        out.push((format!("stage.{}", stage.name()), image(value)?));
        out.push((format!("grad.stage.{}", stage.name()), image(grad)?));
    }
    out.push((
        "grad.raw".to_string(),
        Tensor::from_vec(grads.raw, (b, h, w), &Device::Cpu)?,
    ));
    let mut at = 0;
    for name in NAMES {
        let shape = shape_of(name);
        let len: usize = shape.iter().product();
        out.push((
            format!("grad.{name}"),
            Tensor::from_vec(grads.params[at..at + len].to_vec(), shape, &Device::Cpu)?,
        ));
        at += len;
    }
    Ok(out)
}
