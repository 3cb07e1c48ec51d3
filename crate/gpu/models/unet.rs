//! The segmenters of `model::unet` and `model::unet_plus_plus`: the same nodes (two 3x3 conv +
//! batch norm + ReLU), pools, nearest upsampling, concatenations [upsampled, skip] and the 1x1
//! biased head, under the same names.

use super::builder::{Builder, Value};
use crate::{Error, Result};

/// conv1/bn1/ReLU, conv2/bn2/ReLU under `prefix`, as `model::unet::DoubleConv`.
fn double_conv(b: &mut Builder, prefix: &str, x: &Value, cout: usize) -> Result<Value> {
    let name = |part: &str| format!("{prefix}.{part}");
    let y = b.conv_bn((&name("conv1"), &name("bn1")), x, (cout, 3, 1), true, None)?;
    b.conv_bn((&name("conv2"), &name("bn2")), &y, (cout, 3, 1), true, None)
}

/// The 1x1 biased head: one logit per pixel.
fn head(b: &mut Builder, x: &Value) -> Result<Value> {
    b.conv("head", x, (1, 1, 1), true)
}

/// (H, W) of the input, which both pools must halve exactly.
fn plane(x: &Value) -> Result<(usize, usize)> {
    let (_, _, h, w) = x.dims4()?;
    if h % 4 != 0 || w % 4 != 0 || h == 0 || w == 0 {
        return Err(Error::invalid(format!(
            "the U-Nets need tiles whose sides divide by 4, not {h}x{w}"
        )));
    }
    Ok((h, w))
}

/// The small U-Net on `x`; returns the logits (B, 1, H, W).
pub(super) fn small(b: &mut Builder, x: &Value) -> Result<Value> {
    let (h, w) = plane(x)?;
    let e1 = double_conv(b, "enc1", x, 16)?;
    let (e1_down, e1_skip) = b.fork2(&e1)?;
    let p1 = b.max_pool(&e1_down, (2, 2, 0))?;
    let e2 = double_conv(b, "enc2", &p1, 32)?;
    let (e2_down, e2_skip) = b.fork2(&e2)?;
    let p2 = b.max_pool(&e2_down, (2, 2, 0))?;
    let bottom = double_conv(b, "bottleneck", &p2, 64)?;
    let up2 = b.upsample(&bottom, (h / 2, w / 2))?;
    let cat2 = b.concat(&[up2, e2_skip])?;
    let d2 = double_conv(b, "dec2", &cat2, 32)?;
    let up1 = b.upsample(&d2, (h, w))?;
    let cat1 = b.concat(&[up1, e1_skip])?;
    let d1 = double_conv(b, "dec1", &cat1, 16)?;
    head(b, &d1)
}

const WIDTHS: [usize; 3] = [16, 32, 64];

/// How many ops read node X(i, j) of U-Net++ with `levels` levels: the later nodes of its row,
/// the pool below it (column 0), the node up and to the right, the head (X(0, last)).
fn readers(levels: usize, i: usize, j: usize) -> usize {
    (levels - 1 - i - j)
        + usize::from(j == 0 && i + 1 < levels)
        + usize::from(i > 0)
        + usize::from(i == 0 && j + 1 == levels)
}

/// One not yet handed out branch of a node.
fn take(branches: &mut [Vec<Value>], j: usize) -> Result<Value> {
    branches
        .get_mut(j)
        .and_then(Vec::pop)
        .ok_or_else(|| Error::Gpu("model graph: a U-Net++ node has no branch left".into()))
}

/// U-Net++ (three levels, no deep supervision) on `x`, as `model::UNetPlusPlus`; returns the
/// logits (B, 1, H, W).
pub(super) fn nested(b: &mut Builder, x: &Value) -> Result<Value> {
    plane(x)?;
    let levels = WIDTHS.len();
    // branches[i][j]: the forks of X(i, j) its readers have not taken yet
    let mut branches: Vec<Vec<Vec<Value>>> = Vec::with_capacity(levels);
    let mut planes = Vec::with_capacity(levels);
    for (i, &width) in WIDTHS.iter().enumerate() {
        let input = match branches.last_mut() {
            None => x.clone(),
            Some(above) => {
                let above = take(above, 0)?;
                b.max_pool(&above, (2, 2, 0))?
            }
        };
        let node = double_conv(b, &format!("x{i}_0"), &input, width)?;
        let (_, _, h, w) = node.dims4()?;
        planes.push((h, w));
        branches.push(vec![b.fork(&node, readers(levels, i, 0))?]);
    }
    for j in 1..levels {
        for i in 0..levels - j {
            let below = take(&mut branches[i + 1], j - 1)?;
            let up = b.upsample(&below, planes[i])?;
            let mut parts = (0..j)
                .map(|earlier| take(&mut branches[i], earlier))
                .collect::<Result<Vec<_>>>()?;
            parts.push(up);
            let cat = b.concat(&parts)?;
            let node = double_conv(b, &format!("x{i}_{j}"), &cat, WIDTHS[i])?;
            let forks = b.fork(&node, readers(levels, i, j))?;
            branches[i].push(forks);
        }
    }
    let last = take(&mut branches[0], levels - 1)?;
    head(b, &last)
}
