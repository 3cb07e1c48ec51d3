//! A small U-Net: two downsamplings (16, 32, 64 channels), nearest upsampling, skip connections,
//! a 1x1 head giving one logit per pixel (car / no car).

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::batch_norm::BatchNorm2d;
use super::blocks::{bn, conv, conv_biased, conv_bn, Conv};
use super::ops::{max_pool2d, upsample_nearest};
use crate::Result;

/// Two 3x3 convolutions, each with batch norm and ReLU: a U-Net node.
pub(super) struct DoubleConv {
    c1: Conv,
    b1: BatchNorm2d,
    c2: Conv,
    b2: BatchNorm2d,
}

impl DoubleConv {
    pub(super) fn new(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            c1: conv(cin, cout, 3, 1, vb.pp("conv1"))?,
            b1: bn(cout, vb.pp("bn1"))?,
            c2: conv(cout, cout, 3, 1, vb.pp("conv2"))?,
            b2: bn(cout, vb.pp("bn2"))?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_bn(x, &self.c1, &self.b1, train, true)?;
        conv_bn(&y, &self.c2, &self.b2, train, true)
    }
}

pub struct UNet {
    enc1: DoubleConv,
    enc2: DoubleConv,
    bottleneck: DoubleConv,
    dec2: DoubleConv,
    dec1: DoubleConv,
    head: Conv,
}

impl UNet {
    pub fn small(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            enc1: DoubleConv::new(3, 16, vb.pp("enc1"))?,
            enc2: DoubleConv::new(16, 32, vb.pp("enc2"))?,
            bottleneck: DoubleConv::new(32, 64, vb.pp("bottleneck"))?,
            dec2: DoubleConv::new(64 + 32, 32, vb.pp("dec2"))?,
            dec1: DoubleConv::new(32 + 16, 16, vb.pp("dec1"))?,
            head: conv_biased(16, 1, 1, vb.pp("head"))?,
        })
    }

    /// (B, 3, H, W), H and W divisible by 4 -> logits (B, 1, H, W).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let e1 = self.enc1.forward(x, train)?;
        let e2 = self.enc2.forward(&max_pool2d(&e1, 2, 2, 0)?, train)?;
        let b = self.bottleneck.forward(&max_pool2d(&e2, 2, 2, 0)?, train)?;
        let up2 = upsample_nearest(&b, e2.dim(2)?, e2.dim(3)?)?;
        let d2 = self.dec2.forward(&Tensor::cat(&[&up2, &e2], 1)?, train)?;
        let up1 = upsample_nearest(&d2, e1.dim(2)?, e1.dim(3)?)?;
        let d1 = self.dec1.forward(&Tensor::cat(&[&up1, &e1], 1)?, train)?;
        self.head.forward(&d1)
    }
}
