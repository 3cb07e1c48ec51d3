//! Building blocks shared by the models: convolution + batch norm, named as torchvision names them.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::batch_norm::BatchNorm2d;
use super::ops::conv2d;
use crate::Result;

/// A convolution with "same" padding (k / 2) and an optional bias; weights initialised as
/// candle-nn does (Kaiming normal).
pub struct Conv {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
}

impl Conv {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        let y = conv2d(x, &self.weight, self.stride, k / 2)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)?,
            None => y,
        })
    }
}

fn conv_with(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    bias: bool,
    vb: VarBuilder,
) -> Result<Conv> {
    let weight = vb.get_with_hints(
        (cout, cin, k, k),
        "weight",
        candle_nn::init::DEFAULT_KAIMING_NORMAL,
    )?;
    let bias = if bias {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        Some(vb.get_with_hints(
            cout,
            "bias",
            candle_nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?)
    } else {
        None
    };
    Ok(Conv {
        weight,
        bias,
        stride,
    })
}

/// A bias-free convolution (torchvision's ResNet and our U-Net put batch norm after each).
pub fn conv(cin: usize, cout: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv> {
    conv_with(cin, cout, k, stride, false, vb)
}

/// A convolution with bias (the U-Net's head).
pub fn conv_biased(cin: usize, cout: usize, k: usize, vb: VarBuilder) -> Result<Conv> {
    conv_with(cin, cout, k, 1, true, vb)
}

pub fn bn(c: usize, vb: VarBuilder) -> Result<BatchNorm2d> {
    BatchNorm2d::new(c, vb)
}

/// conv -> batch norm (-> relu).
pub fn conv_bn(
    x: &Tensor,
    conv: &Conv,
    bn: &BatchNorm2d,
    train: bool,
    relu: bool,
) -> Result<Tensor> {
    bn.forward(&conv.forward(x)?, train, relu)
}
