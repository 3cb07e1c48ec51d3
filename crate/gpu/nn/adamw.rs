//! Drives `adamw.wgsl`: candle_nn::AdamW's update on device-resident parameters, with the moments
//! kept beside them on the device (created once, zero, when the optimiser is built).

use candle_nn::ParamsAdamW;

use super::super::wgsl::{uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{expect_shape, flat_grid, u32_of, Dispatch, GpuTensor, Kernels, GRID};
use crate::Result;

pub(super) fn source() -> Source {
    Source::new(&[AdamWStep::WGSL], &[GRID, include_str!("adamw.wgsl")])
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "adamw",
        &source().text(),
        &[Uniform, Storage, Storage, Storage, Storage],
        &["step"],
    )
    .await
}

uniform! {
    /// One step's constants, for one parameter tensor (`count` values).
    struct AdamWStep {
        count: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
        lr: f32,
        beta1: f32,
        one_minus_beta1: f32,
        beta2: f32,
        one_minus_beta2: f32,
        eps: f32,
        /// 1 - lr weight_decay
        decay: f32,
        scale_m: f32,
        scale_v: f32,
        _pad3: f32,
        _pad4: f32,
        _pad5: f32,
    }
}

/// AdamW over a list of (parameter, gradient) tensors, one step counter for all of them, as
/// `candle_nn::AdamW` (decoupled weight decay theta (1 - lr wd), bias-corrected moments).
pub struct DeviceAdamW {
    config: ParamsAdamW,
    step: i32,
    /// Per parameter: its uniform (the counts differ) and its dispatch.
    parts: Vec<(wgpu::Buffer, u32, Dispatch)>,
    /// The first and second moments, per parameter.
    moments: Vec<[wgpu::Buffer; 2]>,
}

impl DeviceAdamW {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        vars: &[(&GpuTensor, &GpuTensor)],
        config: ParamsAdamW,
    ) -> Result<Self> {
        let mut parts = Vec::with_capacity(vars.len());
        let mut moments = Vec::with_capacity(vars.len());
        for (theta, grad) in vars {
            expect_shape("adamw", "a gradient", grad, theta.shape())?;
            let count = u32_of(theta.element_count(), "an optimised parameter")?;
            let m = gpu.empty_storage_buffer("adamw m", theta.element_count());
            let v = gpu.empty_storage_buffer("adamw v", theta.element_count());
            let uniform = gpu.uniform_buffer("adamw", &AdamWStep::zeroed());
            let group = kernels
                .adamw
                .bind(gpu, &[&uniform, theta.buffer(), grad.buffer(), &m, &v]);
            let dispatch = Dispatch::new(
                &kernels.adamw,
                "step",
                &group,
                flat_grid(theta.element_count()),
            );
            parts.push((uniform, count, dispatch));
            moments.push([m, v]);
        }
        Ok(Self {
            config,
            step: 0,
            parts,
            moments,
        })
    }

    /// Starts over: step 0 and zero moments (a fresh model from the same start).
    pub fn reset(&mut self, encoder: &mut wgpu::CommandEncoder) {
        self.step = 0;
        for buffer in self.moments.iter().flatten() {
            encoder.clear_buffer(buffer, 0, None);
        }
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Advances the step counter, uploads this step's constants and records the update of every
    /// parameter. The constants land at the next submission: record one step per submission.
    pub fn step(&mut self, gpu: &Gpu, pass: &mut wgpu::ComputePass) {
        self.step += 1;
        let c = &self.config;
        let base = AdamWStep {
            count: 0,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
            lr: c.lr as f32,
            beta1: c.beta1 as f32,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            beta2: c.beta2 as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            eps: c.eps as f32,
            decay: (1.0 - c.lr * c.weight_decay) as f32,
            scale_m: (1.0 / (1.0 - c.beta1.powi(self.step))) as f32,
            scale_v: (1.0 / (1.0 - c.beta2.powi(self.step))) as f32,
            _pad3: 0.0,
            _pad4: 0.0,
            _pad5: 0.0,
        };
        for (uniform, count, dispatch) in &self.parts {
            let params = AdamWStep {
                count: *count,
                ..base
            };
            gpu.queue
                .write_buffer(uniform, 0, bytemuck::bytes_of(&params));
            dispatch.record(pass);
        }
    }
}

impl AdamWStep {
    fn zeroed() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}
