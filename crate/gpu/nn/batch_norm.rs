//! Drives `batch_norm.wgsl`: BatchNorm2d in training and evaluation mode, forward and backward,
//! the twin of `model::batch_norm` (PyTorch's momentum 0.1, eps 1e-5, unbiased running variance).

use super::super::wgsl::{constants, uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, groups, record, u32_of, Dispatch, GpuTensor, Kernels, CHUNK, GRID,
    PER_THREAD,
};
use crate::spec::isp::{BN_EPS, BN_INITIAL_MEAN, BN_INITIAL_VAR, BN_MOMENTUM};
use crate::{Error, Result};

/// Floats of per-channel state before the partial sums (see batch_norm.wgsl).
const STATE_PER_CHANNEL: usize = 6;

// The reductions of `partial_sums`: the sum of x, of (x - m) and (x - m)^2, and the gradient's
// two sums with the batch's or the running statistics.
const K_SUM: u32 = 0;
const K_CENTERED: u32 = 1;
const K_GRAD: u32 = 2;
const K_GRAD_EVAL: u32 = 3;

pub(super) fn source() -> Source {
    let shared = constants![PER_THREAD, K_SUM, K_CENTERED, K_GRAD, K_GRAD_EVAL];
    Source::new(
        &[Norm::WGSL, &shared],
        &[GRID, include_str!("batch_norm.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "batch norm",
        &source().text(),
        &[
            Uniform, Storage, Storage, Storage, Storage, Storage, Storage, Storage, Storage,
        ],
        &[
            "sum_x",
            "mean",
            "sum_centered",
            "statistics",
            "normalize",
            "normalize_eval",
            "sum_grad",
            "sum_grad_eval",
            "param_grads",
            "input_grad",
            "input_grad_eval",
        ],
    )
    .await
}

uniform! {
    struct Norm {
        batch: u32,
        channels: u32,
        plane: u32,
        /// batch * plane: values per channel
        count: u32,
        chunks: u32,
        momentum: f32,
        eps: f32,
        _pad0: u32,
    }
}

/// Where the backward pass reads dy and writes dx, dgamma and dbeta.
pub struct NormGrads<'a> {
    pub dy: &'a GpuTensor,
    pub dx: &'a GpuTensor,
    pub dgamma: &'a GpuTensor,
    pub dbeta: &'a GpuTensor,
}

/// One batch-norm layer bound to its tensors. The running statistics live on the device in the
/// layer's own state buffer (mean 0, variance 1 at first).
pub struct BatchNorm2d {
    channels: usize,
    state: GpuTensor,
    train_forward: Vec<Dispatch>,
    eval_forward: Vec<Dispatch>,
    backward: Option<[Vec<Dispatch>; 2]>,
}

impl BatchNorm2d {
    /// Builds the layer for x and y (B, C, H, W) with gamma and beta (C).
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        gamma: &GpuTensor,
        beta: &GpuTensor,
        y: &GpuTensor,
        grads: Option<NormGrads>,
    ) -> Result<Self> {
        let op = "batch norm";
        let (batch, channels, h, w) = x.dims4(op, "x")?;
        expect_shape(op, "gamma", gamma, &[channels])?;
        expect_shape(op, "beta", beta, &[channels])?;
        expect_shape(op, "y", y, x.shape())?;
        let count = batch * h * w;
        let chunks = count.div_ceil(CHUNK).max(1);
        let what = "a batch norm";
        let uniform = gpu.uniform_buffer(
            "batch norm",
            &Norm {
                batch: u32_of(batch, what)?,
                channels: u32_of(channels, what)?,
                plane: u32_of(h * w, what)?,
                count: u32_of(count, what)?,
                chunks: u32_of(chunks, what)?,
                momentum: BN_MOMENTUM as f32,
                eps: BN_EPS as f32,
                _pad0: 0,
            },
        );
        let state = GpuTensor::zeros(
            gpu,
            "batch norm state",
            &[channels * STATE_PER_CHANNEL + 2 * channels * chunks],
        )?;
        let program = &kernels.batch_norm;
        let forward_group = program.bind(
            gpu,
            &[
                &uniform,
                x.buffer(),
                y.buffer(),
                &kernels.spare(gpu),
                gamma.buffer(),
                beta.buffer(),
                &kernels.spare(gpu),
                &kernels.spare(gpu),
                state.buffer(),
            ],
        );
        let per_chunk = (groups(chunks, what)?, groups(channels, what)?, 1);
        let per_channel = (groups(channels, what)?, 1, 1);
        let elements = flat_grid(count * channels);
        let step = |entry, group, size| Dispatch::new(program, entry, group, size);
        let train_forward = vec![
            step("sum_x", &forward_group, per_chunk),
            step("mean", &forward_group, per_channel),
            step("sum_centered", &forward_group, per_chunk),
            step("statistics", &forward_group, per_channel),
            step("normalize", &forward_group, elements),
        ];
        let eval_forward = vec![step("normalize_eval", &forward_group, elements)];
        let backward = match grads {
            None => None,
            Some(g) => {
                expect_shape(op, "dy", g.dy, x.shape())?;
                expect_shape(op, "dx", g.dx, x.shape())?;
                expect_shape(op, "dgamma", g.dgamma, &[channels])?;
                expect_shape(op, "dbeta", g.dbeta, &[channels])?;
                let group = program.bind(
                    gpu,
                    &[
                        &uniform,
                        x.buffer(),
                        g.dy.buffer(),
                        g.dx.buffer(),
                        gamma.buffer(),
                        beta.buffer(),
                        g.dgamma.buffer(),
                        g.dbeta.buffer(),
                        state.buffer(),
                    ],
                );
                let steps = |sums, input| {
                    vec![
                        step(sums, &group, per_chunk),
                        step("param_grads", &group, per_channel),
                        step(input, &group, elements),
                    ]
                };
                Some([
                    steps("sum_grad", "input_grad"),
                    steps("sum_grad_eval", "input_grad_eval"),
                ])
            }
        };
        let layer = Self {
            channels,
            state,
            train_forward,
            eval_forward,
            backward,
        };
        layer.set_running(
            gpu,
            &vec![BN_INITIAL_MEAN as f32; channels],
            &vec![BN_INITIAL_VAR as f32; channels],
        )?;
        Ok(layer)
    }

    /// Records the forward pass: with batch statistics (and a running-statistics update) when
    /// `train`, with the running statistics otherwise.
    pub fn forward(&self, pass: &mut wgpu::ComputePass, train: bool) {
        record(
            if train {
                &self.train_forward
            } else {
                &self.eval_forward
            },
            pass,
        );
    }

    /// Records dx, dgamma and dbeta for the mode the forward pass ran in (a training backward
    /// needs this step's training forward recorded before it).
    pub fn backward(&self, pass: &mut wgpu::ComputePass, train: bool) -> Result<()> {
        let [train_steps, eval_steps] = self
            .backward
            .as_ref()
            .ok_or_else(|| Error::Gpu("batch norm: built without gradient tensors".into()))?;
        record(if train { train_steps } else { eval_steps }, pass);
        Ok(())
    }

    /// Replaces the running statistics (e.g. from a checkpoint).
    pub fn set_running(&self, gpu: &Gpu, mean: &[f32], var: &[f32]) -> Result<()> {
        if mean.len() != self.channels || var.len() != self.channels {
            return Err(Error::Gpu(format!(
                "batch norm: running statistics of {} and {} values for {} channels",
                mean.len(),
                var.len(),
                self.channels
            )));
        }
        let both: Vec<f32> = mean.iter().chain(var).copied().collect();
        gpu.queue
            .write_buffer(self.state.buffer(), 0, bytemuck::cast_slice(&both));
        Ok(())
    }

    /// The running mean and (unbiased) variance.
    pub async fn read_running(&self, gpu: &Gpu) -> Result<(Vec<f32>, Vec<f32>)> {
        let buffer = self.state.buffer();
        let mut parts = gpu
            .read_regions(&[
                (buffer, 0, self.channels),
                (buffer, self.channels, self.channels),
            ])
            .await?
            .into_iter();
        match (parts.next(), parts.next()) {
            (Some(mean), Some(var)) => Ok((mean, var)),
            _ => Err(Error::Gpu(
                "batch norm: running statistics not read back".into(),
            )),
        }
    }
}
