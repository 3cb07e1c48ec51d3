//! ResNet classifiers with torchvision's structure and parameter names (conv1, bn1, layer1.0.conv1,
//! layerN.0.downsample.0/1, fc), so a torchvision ResNet-18 state dict loads as it is.

use candle_core::{Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::batch_norm::BatchNorm2d;
use super::blocks::{bn, conv, conv_bn, Conv};
use super::ops::max_pool2d;
use crate::Result;

struct BasicBlock {
    conv1: Conv,
    bn1: BatchNorm2d,
    conv2: Conv,
    bn2: BatchNorm2d,
    downsample: Option<(Conv, BatchNorm2d)>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        let downsample = if stride != 1 || cin != cout {
            Some((
                conv(cin, cout, 1, stride, vb.pp("downsample.0"))?,
                bn(cout, vb.pp("downsample.1"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            conv1: conv(cin, cout, 3, stride, vb.pp("conv1"))?,
            bn1: bn(cout, vb.pp("bn1"))?,
            conv2: conv(cout, cout, 3, 1, vb.pp("conv2"))?,
            bn2: bn(cout, vb.pp("bn2"))?,
            downsample,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = conv_bn(x, &self.conv1, &self.bn1, train, true)?;
        let y = conv_bn(&y, &self.conv2, &self.bn2, train, false)?;
        let shortcut = match &self.downsample {
            Some((c, b)) => conv_bn(x, c, b, train, false)?,
            None => x.clone(),
        };
        Ok((y + shortcut)?.relu()?)
    }
}

pub struct ResNet {
    conv1: Conv,
    bn1: BatchNorm2d,
    /// torchvision's stem max-pools after conv1; the small variant keeps the resolution.
    max_pool: bool,
    layers: Vec<Vec<BasicBlock>>,
    fc: Linear,
}

impl ResNet {
    /// torchvision's resnet18: conv 7x7/2, max pool, [2, 2, 2, 2] blocks of 64..512 channels.
    pub fn resnet18(classes: usize, vb: VarBuilder) -> Result<Self> {
        Self::build(classes, 7, 2, true, &[64, 128, 256, 512], 2, vb)
    }

    /// Three stages of one block (16, 32, 64 channels), conv 3x3 stem: trains in the browser.
    pub fn small(classes: usize, vb: VarBuilder) -> Result<Self> {
        Self::build(classes, 3, 1, false, &[16, 32, 64], 1, vb)
    }

    fn build(
        classes: usize,
        stem_k: usize,
        stem_stride: usize,
        max_pool: bool,
        widths: &[usize],
        blocks: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        let mut cin = widths[0];
        for (i, &w) in widths.iter().enumerate() {
            let layer_vb = vb.pp(format!("layer{}", i + 1));
            let layer = (0..blocks)
                .map(|j| {
                    let stride = if i > 0 && j == 0 { 2 } else { 1 };
                    let block = BasicBlock::new(cin, w, stride, layer_vb.pp(j.to_string()));
                    cin = w;
                    block
                })
                .collect::<Result<Vec<_>>>()?;
            layers.push(layer);
        }
        Ok(Self {
            conv1: conv(3, widths[0], stem_k, stem_stride, vb.pp("conv1"))?,
            bn1: bn(widths[0], vb.pp("bn1"))?,
            max_pool,
            layers,
            fc: candle_nn::linear(cin, classes, vb.pp("fc"))?,
        })
    }

    /// (B, 3, H, W) -> logits (B, classes).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut y = conv_bn(x, &self.conv1, &self.bn1, train, true)?;
        if self.max_pool {
            y = max_pool2d(&y, 3, 2, 1)?;
        }
        for layer in &self.layers {
            for block in layer {
                y = block.forward(&y, train)?;
            }
        }
        let pooled = y.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(self.fc.forward(&pooled)?)
    }
}
