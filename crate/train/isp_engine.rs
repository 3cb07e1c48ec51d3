//! The parametrized ISP on the active backend: the WGSL kernels when a GPU is there, candle on
//! the CPU otherwise. What the page and the CLI call; both paths return the same plain f32 data.

use candle_core::{Device, Tensor};

use crate::codecs::f32_values;
use crate::isp::param::{forward, gradients, IspParams};
use std::rc::Rc;

use crate::gpu::isp::GpuIsp;
use crate::gpu::Gpu;
use crate::spec::isp::{IspGradients, IspRun};
use crate::{Error, Result};

/// The ISP on a GPU (its kernels compiled once) where one is given, else on the CPU.
pub struct IspEngine {
    gpu: Option<(Rc<Gpu>, GpuIsp)>,
}

impl IspEngine {
    pub async fn new(gpu: Option<Rc<Gpu>>) -> Result<Self> {
        let gpu = match gpu {
            Some(gpu) => {
                let isp = GpuIsp::new(&gpu).await?;
                Some((gpu, isp))
            }
            None => None,
        };
        Ok(Self { gpu })
    }

    /// The GPU the engine runs on, if any.
    pub fn gpu(&self) -> Option<&Rc<Gpu>> {
        self.gpu.as_ref().map(|(gpu, _)| gpu)
    }

    /// "WebGPU (SwiftShader Device)", "CPU (native)".
    pub fn label(&self) -> String {
        match self.gpu() {
            Some(gpu) => gpu.label(),
            None => crate::train::backend::cpu_label(),
        }
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
        if let Some((gpu, isp)) = &self.gpu {
            return isp
                .run(gpu, raw, dims, &params.packed()?, upstream, batch_norm)
                .await;
        }
        let raw = Tensor::from_vec(raw.to_vec(), dims, &Device::Cpu)?.to_dtype(params.dtype())?;
        let Some(upstream) = upstream else {
            let fwd = forward(&raw, params, batch_norm, false)?;
            return Ok(IspRun {
                output: f32_values(&fwd.output)?,
                stages: fwd.stages.iter().map(f32_values).collect::<Result<_>>()?,
                gradients: None,
            });
        };
        let upstream = Tensor::from_vec(upstream.to_vec(), (b, 3, h, w), &Device::Cpu)?;
        let g = gradients(&raw, params, &upstream, batch_norm)?;
        Ok(IspRun {
            output: f32_values(&g.output)?,
            stages: g
                .stages
                .iter()
                .map(|(_, v, _)| f32_values(v))
                .collect::<Result<_>>()?,
            gradients: Some(IspGradients {
                stages: g
                    .stages
                    .iter()
                    .map(|(_, _, d)| f32_values(d))
                    .collect::<Result<_>>()?,
                raw: f32_values(&g.raw)?,
                params: g
                    .params
                    .iter()
                    .map(|(_, t)| f32_values(t))
                    .collect::<Result<Vec<_>>>()?
                    .concat(),
            }),
        })
    }
}

/// The parametrized ISP on one tile, and with `toward` the gradients of the mean squared distance
/// between its output (without batch norm: the gamma stage) and that static view: how the
/// processing would have to change to look like it.
pub async fn param_isp(
    engine: &IspEngine,
    tile: &crate::raw::RawTile,
    camera: &crate::raw::CameraParams,
    params: &IspParams,
    toward: Option<crate::isp::static_pipeline::View>,
) -> Result<IspRun> {
    let (h, w) = (tile.height(), tile.width());
    let upstream = match toward {
        Some(view) => {
            let image = crate::isp::static_pipeline::render(tile, camera, view)?;
            let target = crate::viz::inspect::hwc_to_chw(&image.data, image.height, image.width);
            let out = engine
                .run(tile.data(), (1, h, w), params, None, false)
                .await?
                .output;
            let n = out.len() as f32;
            Some(
                out.iter()
                    .zip(&target)
                    .map(|(o, t)| 2.0 * (o - t) / n)
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    engine
        .run(tile.data(), (1, h, w), params, upstream.as_deref(), false)
        .await
}
