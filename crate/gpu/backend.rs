//! Which engine computes: a GPU through wgpu when an adapter exists, else the CPU through candle.

use std::rc::Rc;

use super::Gpu;

/// The active compute backend. The CPU path is always available and is the reference.
#[derive(Clone)]
pub enum ComputeBackend {
    Gpu(Rc<Gpu>),
    Cpu,
}

impl ComputeBackend {
    /// The GPU when an adapter can be had, the CPU otherwise (`prefer_gpu = false` forces the CPU).
    pub async fn select(prefer_gpu: bool) -> crate::Result<Self> {
        if !prefer_gpu {
            return Ok(Self::Cpu);
        }
        Ok(Self::from_adapter(Gpu::request().await?))
    }

    /// The backend for what adapter discovery found: `None` falls back to the CPU.
    pub fn from_adapter(gpu: Option<Gpu>) -> Self {
        match gpu {
            Some(gpu) => Self::Gpu(Rc::new(gpu)),
            None => Self::Cpu,
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Self::Gpu(_))
    }

    /// What the page shows: "WebGPU (SwiftShader Device)" or "CPU (wasm SIMD)".
    pub fn label(&self) -> String {
        match self {
            Self::Gpu(gpu) => {
                let name = gpu.adapter_name();
                if name.is_empty() {
                    gpu.api_name().to_string()
                } else {
                    format!("{} ({name})", gpu.api_name())
                }
            }
            Self::Cpu if cfg!(target_arch = "wasm32") => "CPU (wasm SIMD)".to_string(),
            Self::Cpu => "CPU (native)".to_string(),
        }
    }
}
