//! Which device a session trains on, decided in one place for the CLI and the page. `auto`
//! measures instead of assuming: where a GPU adapter exists, it times a warm training step of the
//! session's model, batch and tile size on each backend and keeps the faster.

use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;
use web_time::Instant;

use super::{start_model_alone, BackendSpec, Batch, CpuBackend, GpuBackend, Input, StepBackend};
use crate::gpu::Gpu;
use crate::model::{seed_weights, TaskModel};
use crate::train::augment::Augment;
use crate::{Error, Result};

/// Which device a session trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The faster of the GPU (where there is an adapter) and the CPU, measured.
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "gpu" => Ok(Self::Gpu),
            _ => Err(Error::invalid(format!(
                "unknown backend '{s}': use auto, cpu or gpu"
            ))),
        }
    }
}

impl DeviceChoice {
    /// The GPU adapter this choice may use, found natively or through the browser's WebGPU (none
    /// is looked for where the CPU is asked for).
    pub async fn adapter(self) -> Result<Option<Rc<Gpu>>> {
        match self {
            DeviceChoice::Cpu => Ok(None),
            _ => Ok(Gpu::request().await?.map(Rc::new)),
        }
    }
}

impl Choice {
    /// "CPU (native)", with what auto measured: "CPU (native) (GPU: 41 ms/step, CPU: 9 ms/step)".
    pub fn describe(&self) -> String {
        match &self.measured {
            Some(m) => format!("{} ({m})", self.device),
            None => self.device.clone(),
        }
    }
}

/// What the CPU backend is called: "CPU (wasm SIMD)" in the page, "CPU (native)" elsewhere.
pub fn cpu_label() -> String {
    match cfg!(target_arch = "wasm32") {
        true => "CPU (wasm SIMD)".into(),
        false => "CPU (native)".into(),
    }
}

pub(super) fn gpu_label(gpu: &Gpu) -> String {
    gpu.label()
}

/// What [`choose`] decided: the device, whether it is the GPU, and what it measured (auto with
/// an adapter): "GPU: 41 ms/step, CPU: 390 ms/step".
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub device: String,
    pub gpu: bool,
    pub measured: Option<String>,
}

/// The backend for `spec`: the CPU; the GPU `adapter` (an error where there is none); or, with
/// [`DeviceChoice::Auto`], the faster of the two on a warm step (the CPU where there is no
/// adapter).
pub async fn choose(
    choice: DeviceChoice,
    adapter: Option<Rc<Gpu>>,
    spec: &BackendSpec,
) -> Result<(Box<dyn StepBackend>, Choice)> {
    let decided = |backend: Box<dyn StepBackend>, gpu: bool, measured: Option<String>| {
        let device = backend.label();
        Ok((
            backend,
            Choice {
                device,
                gpu,
                measured,
            },
        ))
    };
    match (choice, adapter) {
        (DeviceChoice::Cpu, _) | (DeviceChoice::Auto, None) => {
            decided(Box::new(CpuBackend::new(spec)?), false, None)
        }
        (DeviceChoice::Gpu, None) => Err(Error::Gpu(
            "the GPU backend was asked for, but no GPU adapter was found (natively: install a \
             Vulkan, Metal or DX12 driver, or Mesa's lavapipe; in the browser: a WebGPU-enabled \
             browser, with the lab switched to WebGPU); use the CPU instead"
                .into(),
        )),
        (DeviceChoice::Gpu, Some(gpu)) => {
            decided(Box::new(GpuBackend::new(gpu, spec).await?), true, None)
        }
        (DeviceChoice::Auto, Some(gpu)) => {
            let mut on_gpu: Box<dyn StepBackend> = Box::new(GpuBackend::new(gpu, spec).await?);
            let gpu_ms = warm_step_ms(on_gpu.as_mut(), spec).await?;
            let mut on_cpu: Box<dyn StepBackend> = Box::new(CpuBackend::new(spec)?);
            let cpu_ms = warm_step_ms(on_cpu.as_mut(), spec).await?;
            let measured = format!("GPU: {gpu_ms:.0} ms/step, CPU: {cpu_ms:.0} ms/step");
            match gpu_ms < cpu_ms {
                true => decided(on_gpu, true, Some(measured)),
                false => decided(on_cpu, false, Some(measured)),
            }
        }
    }
}

/// The time of a training step of `spec`'s model on a batch of zeros, after one to warm up,
/// with weights of its own (the session's first phase imports the session's and starts the
/// optimiser over).
async fn warm_step_ms(backend: &mut dyn StepBackend, spec: &BackendSpec) -> Result<f64> {
    let device = Device::Cpu;
    let vars = VarMap::new();
    TaskModel::new(spec.model, spec.classes, &vars, &device)?;
    seed_weights(&vars, 0)?;
    let (b, h, w) = (spec.batch, spec.height, spec.width);
    let batch = Batch {
        input: Input::Processed(Tensor::zeros((b, 3, h, w), DType::F32, &device)?),
        targets: match spec.model.is_segmenter() {
            true => Tensor::zeros((b, 1, h, w), DType::F32, &device)?,
            false => Tensor::zeros(b, DType::U32, &device)?,
        },
    };
    start_model_alone(backend, &vars).await?;
    backend.train(&batch, Augment::IDENTITY, false).await?;
    let started = Instant::now();
    backend.train(&batch, Augment::IDENTITY, false).await?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}
