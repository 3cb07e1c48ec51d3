//! The parametrized ISP on the active backend: the WGSL kernels when a GPU is there, candle on
//! the CPU otherwise. What the page and the CLI call; both paths return the same plain f32 data.

use candle_core::{DType, Device, Tensor};

use super::param::{forward, gradients, IspParams};
use crate::gpu::isp::GpuIsp;
use crate::gpu::ComputeBackend;
use crate::{Error, Result};

/// Outputs of one pass, each flattened in (B, C, H, W) order.
pub struct IspRun {
    /// (B, 3, H, W).
    pub output: Vec<f32>,
    /// The five tracked stages (demosaic, colour_correction, sharpening, denoising, gamma).
    pub stages: Vec<Vec<f32>>,
    /// Present when an upstream gradient was given.
    pub gradients: Option<IspGradients>,
}

pub struct IspGradients {
    /// dL/d stage for the five stages.
    pub stages: Vec<Vec<f32>>,
    /// dL/d raw, (B, H, W).
    pub raw: Vec<f32>,
    /// dL/d parameters, packed as [`IspParams::packed`].
    pub params: Vec<f32>,
}

/// The ISP bound to a backend; GPU kernels are compiled once.
pub struct IspEngine {
    backend: ComputeBackend,
    gpu_isp: Option<GpuIsp>,
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

impl IspEngine {
    pub async fn new(backend: ComputeBackend) -> Result<Self> {
        let gpu_isp = match &backend {
            ComputeBackend::Gpu(gpu) => Some(GpuIsp::new(gpu).await?),
            ComputeBackend::Cpu => None,
        };
        Ok(Self { backend, gpu_isp })
    }

    pub fn backend(&self) -> &ComputeBackend {
        &self.backend
    }

    /// Runs `raw` (B, H, W) through the ISP with `params`; with `upstream` (B, 3, H, W), the
    /// gradients of the loss sum(output * upstream) too.
    pub async fn run(
        &self,
        raw: &[f32],
        dims: (usize, usize, usize),
        params: &IspParams,
        upstream: Option<&[f32]>,
        batch_norm: bool,
    ) -> Result<IspRun> {
        let (b, h, w) = dims;
        if raw.len() != b * h * w || upstream.is_some_and(|g| g.len() != 3 * b * h * w) {
            return Err(Error::invalid(format!(
                "ISP inputs do not fit a ({b}, {h}, {w}) batch"
            )));
        }
        if let (ComputeBackend::Gpu(gpu), Some(isp)) = (&self.backend, &self.gpu_isp) {
            return isp
                .run(gpu, raw, dims, &params.packed()?, upstream, batch_norm)
                .await;
        }
        let raw = Tensor::from_vec(raw.to_vec(), dims, &Device::Cpu)?.to_dtype(params.dtype())?;
        let Some(upstream) = upstream else {
            let fwd = forward(&raw, params, batch_norm, false)?;
            return Ok(IspRun {
                output: flat(&fwd.output)?,
                stages: fwd.stages.iter().map(flat).collect::<Result<_>>()?,
                gradients: None,
            });
        };
        let upstream = Tensor::from_vec(upstream.to_vec(), (b, 3, h, w), &Device::Cpu)?;
        let g = gradients(&raw, params, &upstream, batch_norm)?;
        Ok(IspRun {
            output: flat(&g.output)?,
            stages: g
                .stages
                .iter()
                .map(|(_, v, _)| flat(v))
                .collect::<Result<_>>()?,
            gradients: Some(IspGradients {
                stages: g
                    .stages
                    .iter()
                    .map(|(_, _, d)| flat(d))
                    .collect::<Result<_>>()?,
                raw: flat(&g.raw)?,
                params: g
                    .params
                    .iter()
                    .map(|(_, t)| flat(t))
                    .collect::<Result<Vec<_>>>()?
                    .concat(),
            }),
        })
    }
}
