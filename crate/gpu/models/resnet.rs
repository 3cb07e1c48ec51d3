//! The ResNet classifiers of `model::resnet` (torchvision's topology and names): stem conv + batch
//! norm + ReLU (+ 3x3/2 max pool for resnet18), stages of BasicBlocks, global average pool, fc.

use super::builder::{Builder, Value};
use crate::Result;

/// Stem kernel and stride, whether the stem max-pools, stage widths and blocks per stage.
pub(super) struct Shape {
    pub stem: (usize, usize),
    pub max_pool: bool,
    pub widths: &'static [usize],
    pub blocks: usize,
}

pub(super) const RESNET18: Shape = Shape {
    stem: (7, 2),
    max_pool: true,
    widths: &[64, 128, 256, 512],
    blocks: 2,
};

pub(super) const SMALL: Shape = Shape {
    stem: (3, 1),
    max_pool: false,
    widths: &[16, 32, 64],
    blocks: 1,
};

/// Builds the network on `x` and returns its logits (B, classes).
pub(super) fn build(b: &mut Builder, shape: &Shape, x: &Value, classes: usize) -> Result<Value> {
    let (k, stride) = shape.stem;
    let mut y = b.conv_bn(
        ("conv1", "bn1"),
        x,
        (shape.widths[0], k, stride),
        true,
        None,
    )?;
    if shape.max_pool {
        y = b.max_pool(&y, (3, 2, 1))?;
    }
    for (i, &width) in shape.widths.iter().enumerate() {
        for j in 0..shape.blocks {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            y = basic_block(b, &format!("layer{}.{j}", i + 1), &y, width, stride)?;
        }
    }
    let pooled = b.avg_pool(&y)?;
    b.linear("fc", &pooled, classes)
}

/// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1 conv + batch norm
/// where the shape changes. The sum's gradient buffer is shared by bn2 and the shortcut (the
/// identity's part of dx, or the downsampling batch norm's dy).
fn basic_block(
    b: &mut Builder,
    prefix: &str,
    x: &Value,
    cout: usize,
    stride: usize,
) -> Result<Value> {
    let (_, cin, _, _) = x.dims4()?;
    let (main, short) = b.fork2(x)?;
    let name = |part: &str| format!("{prefix}.{part}");
    let y = b.conv_bn(
        (&name("conv1"), &name("bn1")),
        &main,
        (cout, 3, stride),
        true,
        None,
    )?;
    let (shortcut, grad) = if stride != 1 || cin != cout {
        let grad = b.tensor("d residual", y.x.shape())?;
        let s = b.conv_bn(
            (&name("downsample.0"), &name("downsample.1")),
            &short,
            (cout, 1, stride),
            false,
            Some(grad.clone()),
        )?;
        (s.x, grad)
    } else {
        (short.x.clone(), short.shared_grad()?)
    };
    let y = b.conv_bn(
        (&name("conv2"), &name("bn2")),
        &y,
        (cout, 3, 1),
        false,
        Some(grad.clone()),
    )?;
    let sum = b.add(&y.x, &shortcut, grad)?;
    b.relu(&sum, None)
}
