//! What a task model's layer graph is written against. A model is one function over [`Net`]:
//! the CPU executes each call as it comes (candle, `model::CandleNet`), the GPU records it once
//! into a device-resident graph (`gpu::models`), and [`super::Shapes`] only follows the shapes
//! (the parameter list a weights file must match). Names are the PyTorch state-dict names.

use super::ModelKind;
use crate::Result;

/// A convolution's geometry, as `torch.nn.Conv2d` takes it (square kernel, equal padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv {
    pub out: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub bias: bool,
}

impl Conv {
    /// A bias-free convolution padded by k / 2 (every convolution of the lab's models before a
    /// batch norm).
    pub const fn same(out: usize, k: usize, stride: usize) -> Self {
        Self {
            out,
            k,
            stride,
            pad: k / 2,
            bias: false,
        }
    }

    /// The same convolution with a bias (the segmentation heads).
    pub const fn with_bias(self) -> Self {
        Self { bias: true, ..self }
    }

    /// Output length along an axis of length `n`, None where the window does not fit.
    pub fn output(&self, n: usize) -> Option<usize> {
        window_output(n, self.k, self.stride, self.pad)
    }
}

/// How batch norm normalises in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormMode {
    /// Training: the batch's statistics, folded into the running ones. Else the running ones.
    pub train: bool,
    /// Fine-tuning with a frozen backbone: its batch norms stay in evaluation mode.
    pub frozen_backbone: bool,
}

impl NormMode {
    pub const TRAIN: Self = Self {
        train: true,
        frozen_backbone: false,
    };
    pub const EVAL: Self = Self {
        train: false,
        frozen_backbone: false,
    };

    /// Whether batch norm `name` of `kind` uses the batch's statistics.
    pub fn trains(self, kind: ModelKind, name: &str) -> bool {
        self.train && !(self.frozen_backbone && kind.is_backbone(name))
    }
}

/// A max-pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Pool {
    pub fn output(&self, n: usize) -> Option<usize> {
        window_output(n, self.k, self.stride, self.pad)
    }
}

fn window_output(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n + 2 * pad;
    (k > 0 && stride > 0 && padded >= k).then(|| (padded - k) / stride + 1)
}

/// The layer vocabulary of the lab's models. A value may be read by any number of later layers:
/// each backend accumulates the gradients of every reader.
pub trait Net {
    type Value: Clone;

    /// (B, C, H, W) of a feature map.
    fn dims4(&self, x: &Self::Value) -> Result<(usize, usize, usize, usize)>;
    /// `name.weight` (out, in, k, k), and `name.bias` (out) with a bias.
    fn conv(&mut self, name: &str, x: &Self::Value, conv: Conv) -> Result<Self::Value>;
    /// BatchNorm2d `name` (weight, bias, running_mean, running_var), optionally followed by ReLU.
    fn batch_norm(&mut self, name: &str, x: &Self::Value, relu: bool) -> Result<Self::Value>;
    fn relu(&mut self, x: &Self::Value) -> Result<Self::Value>;
    /// a + b (a residual connection).
    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value>;
    fn max_pool(&mut self, x: &Self::Value, pool: Pool) -> Result<Self::Value>;
    /// (B, C, H, W) -> (B, C), the mean over the plane.
    fn mean_pool(&mut self, x: &Self::Value) -> Result<Self::Value>;
    /// `name.weight` (outputs, in) and `name.bias`: (B, in) -> (B, outputs).
    fn linear(&mut self, name: &str, x: &Self::Value, outputs: usize) -> Result<Self::Value>;
    /// Nearest upsampling to (height, width) (`F.interpolate(mode="nearest")`).
    fn upsample(&mut self, x: &Self::Value, size: (usize, usize)) -> Result<Self::Value>;
    /// The parts side by side along the channels, in order.
    fn concat(&mut self, parts: &[Self::Value]) -> Result<Self::Value>;

    /// relu(a + b), where a residual block ends (a backend may fuse the two).
    fn add_relu(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value> {
        let sum = self.add(a, b)?;
        self.relu(&sum)
    }

    /// conv (no bias) -> batch norm (-> ReLU), under the two names.
    fn conv_bn(
        &mut self,
        (conv, norm): (&str, &str),
        x: &Self::Value,
        shape: Conv,
        relu: bool,
    ) -> Result<Self::Value> {
        let y = self.conv(conv, x, shape)?;
        self.batch_norm(norm, &y, relu)
    }
}
