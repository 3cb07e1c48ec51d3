//! U-Net++ (Zhou et al. 2018), the nested U-Net the paper segments cars with: dense skip paths,
//! node X(i, j) (level i, column j) convolving X(i, 0) .. X(i, j-1) together with X(i+1, j-1)
//! upsampled. The lab's small one (three levels of 16, 32 and 64 channels, no deep supervision)
//! and smp's `UnetPlusPlus` on a ResNet encoder, under smp's names.

use super::net::Net;
use super::resnet::Trunk;
use super::unet::{
    double_conv, plane, small_head, small_names, smp_block, smp_features, smp_head, DECODER, HALVE,
};
use crate::Result;

const WIDTHS: [usize; 3] = [16, 32, 64];

/// The small U-Net++ on `x`; the logits (B, 1, H, W).
pub(super) fn small<N: Net>(net: &mut N, x: &N::Value) -> Result<N::Value> {
    plane(net, x, 4)?;
    let levels = WIDTHS.len();
    // nodes[i][j] = X(i, j); the encoder column first, then column by column
    let mut nodes: Vec<Vec<N::Value>> = Vec::with_capacity(levels);
    for (i, &width) in WIDTHS.iter().enumerate() {
        let input = match nodes.last() {
            None => x.clone(),
            Some(above) => net.max_pool(&above[0], HALVE)?,
        };
        nodes.push(vec![double_conv(
            net,
            small_names(&format!("x{i}_0")),
            &input,
            width,
        )?]);
    }
    for j in 1..levels {
        for i in 0..levels - j {
            let (_, _, h, w) = net.dims4(&nodes[i][0])?;
            let below = net.upsample(&nodes[i + 1][j - 1], (h, w))?;
            let mut parts = nodes[i].clone();
            parts.push(below);
            let input = net.concat(&parts)?;
            let node = double_conv(net, small_names(&format!("x{i}_{j}")), &input, WIDTHS[i])?;
            nodes[i].push(node);
        }
    }
    small_head(net, &nodes[0][levels - 1])
}

/// smp's `UnetPlusPlus` with a ResNet encoder. Its decoder's block `x_{d}_{l}` (d <= l) meets the
/// features of depth d + 1 .. l's dense nodes and the encoder feature l + 1 (features deepest
/// first); the last block, `x_0_{depth}`, upsamples to the input's size with no skip.
pub(super) fn smp<N: Net>(net: &mut N, trunk: &Trunk, x: &N::Value) -> Result<N::Value> {
    let features = smp_features(net, trunk, x)?;
    let depth = DECODER.len() - 1;
    // smp's skip_channels: the encoder's widths deepest first, without the deepest, then none
    let mut skip_widths = Vec::with_capacity(depth + 1);
    for f in &features[1..] {
        skip_widths.push(net.dims4(f)?.1);
    }
    skip_widths.push(0);
    let width = |d: usize, l: usize| match d {
        0 => DECODER[l],
        _ => skip_widths[l],
    };
    // dense[(d, l)] = x_{d}_{l}
    let mut dense: std::collections::BTreeMap<(usize, usize), N::Value> =
        std::collections::BTreeMap::new();
    for layer in 0..depth {
        for d in 0..depth - layer {
            let l = d + layer;
            let (input, mut skips) = match layer {
                0 => (features[d].clone(), vec![]),
                _ => (
                    dense[&(d, l - 1)].clone(),
                    (d + 1..=l).map(|k| dense[&(k, l)].clone()).collect(),
                ),
            };
            skips.push(features[l + 1].clone());
            let node = smp_block(
                net,
                &format!("decoder.blocks.x_{d}_{l}"),
                &input,
                &skips,
                width(d, l),
            )?;
            dense.insert((d, l), node);
        }
    }
    let last = smp_block(
        net,
        &format!("decoder.blocks.x_0_{depth}"),
        &dense[&(0, depth - 1)],
        &[],
        DECODER[depth],
    )?;
    smp_head(net, &last)
}
