//! U-Nets: the lab's small U-Net (two downsamplings, 16, 32, 64 channels), and smp's `Unet` on a
//! ResNet encoder (segmentation_models_pytorch's decoder and head, under its state-dict names).

use super::net::{Conv, Net, Pool};
use super::resnet::{features, Trunk};
use crate::{Error, Result};

/// Two 3x3 convolutions, each with batch norm and ReLU, under `prefix`: `conv1`/`bn1`,
/// `conv2`/`bn2` for the small models, `conv1.0`/`conv1.1`, `conv2.0`/`conv2.1` for smp's
/// (`Conv2dReLU` is a Sequential of conv, norm and ReLU).
pub(super) fn double_conv<N: Net>(
    net: &mut N,
    names: [String; 4],
    x: &N::Value,
    cout: usize,
) -> Result<N::Value> {
    let [c1, b1, c2, b2] = names;
    let y = net.conv_bn((&c1, &b1), x, Conv::same(cout, 3, 1), true)?;
    net.conv_bn((&c2, &b2), &y, Conv::same(cout, 3, 1), true)
}

/// The small models' names of a double convolution under `prefix`.
pub(super) fn small_names(prefix: &str) -> [String; 4] {
    ["conv1", "bn1", "conv2", "bn2"].map(|part| format!("{prefix}.{part}"))
}

/// smp's names of a decoder block's two `Conv2dReLU`s under `prefix`.
fn smp_names(prefix: &str) -> [String; 4] {
    ["conv1.0", "conv1.1", "conv2.0", "conv2.1"].map(|part| format!("{prefix}.{part}"))
}

pub(super) const HALVE: Pool = Pool {
    k: 2,
    stride: 2,
    pad: 0,
};

/// (H, W) of the input, which the model's `factor` downsamplings must divide exactly.
pub(super) fn plane<N: Net>(net: &N, x: &N::Value, factor: usize) -> Result<(usize, usize)> {
    let (_, _, h, w) = net.dims4(x)?;
    if h % factor != 0 || w % factor != 0 || h == 0 || w == 0 {
        return Err(Error::invalid(format!(
            "this model needs tiles whose sides divide by {factor}, not {h}x{w}"
        )));
    }
    Ok((h, w))
}

/// The 1x1 biased head of the small models: one logit per pixel.
pub(super) fn small_head<N: Net>(net: &mut N, x: &N::Value) -> Result<N::Value> {
    net.conv("head", x, Conv::same(1, 1, 1).with_bias())
}

/// The small U-Net on `x`; the logits (B, 1, H, W).
pub(super) fn small<N: Net>(net: &mut N, x: &N::Value) -> Result<N::Value> {
    let (h, w) = plane(net, x, 4)?;
    let e1 = double_conv(net, small_names("enc1"), x, 16)?;
    let p1 = net.max_pool(&e1, HALVE)?;
    let e2 = double_conv(net, small_names("enc2"), &p1, 32)?;
    let p2 = net.max_pool(&e2, HALVE)?;
    let bottom = double_conv(net, small_names("bottleneck"), &p2, 64)?;
    let up2 = net.upsample(&bottom, (h / 2, w / 2))?;
    let cat2 = net.concat(&[up2, e2])?;
    let d2 = double_conv(net, small_names("dec2"), &cat2, 32)?;
    let up1 = net.upsample(&d2, (h, w))?;
    let cat1 = net.concat(&[up1, e1])?;
    let d1 = double_conv(net, small_names("dec1"), &cat1, 16)?;
    small_head(net, &d1)
}

/// smp's decoder widths (`decoder_channels`' default).
pub(super) const DECODER: [usize; 5] = [256, 128, 64, 32, 16];
/// smp's ResNet encoders downsample five times.
pub(super) const OUTPUT_STRIDE: usize = 32;

/// smp's decoder block `prefix`: `x` upsampled twice (nearest), concatenated with the skip
/// features in order, then two `Conv2dReLU`s to `cout` channels.
pub(super) fn smp_block<N: Net>(
    net: &mut N,
    prefix: &str,
    x: &N::Value,
    skips: &[N::Value],
    cout: usize,
) -> Result<N::Value> {
    let (_, _, h, w) = net.dims4(x)?;
    let up = net.upsample(x, (2 * h, 2 * w))?;
    let input = match skips.is_empty() {
        true => up,
        false => {
            let mut parts = vec![up];
            parts.extend_from_slice(skips);
            net.concat(&parts)?
        }
    };
    double_conv(net, smp_names(prefix), &input, cout)
}

/// smp's `SegmentationHead`: a 3x3 convolution with bias to one logit per pixel.
pub(super) fn smp_head<N: Net>(net: &mut N, x: &N::Value) -> Result<N::Value> {
    net.conv("segmentation_head.0", x, Conv::same(1, 3, 1).with_bias())
}

/// The encoder's features as smp's decoders take them: the stem's and every stage's, deepest
/// first (smp drops the identity feature of the input).
pub(super) fn smp_features<N: Net>(
    net: &mut N,
    trunk: &Trunk,
    x: &N::Value,
) -> Result<Vec<N::Value>> {
    plane(net, x, OUTPUT_STRIDE)?;
    let mut features = features(net, "encoder.", trunk, x)?;
    features.reverse();
    Ok(features)
}

/// smp's `Unet` with a ResNet encoder: each decoder block upsamples and meets the next shallower
/// feature; the last has none.
pub(super) fn smp<N: Net>(net: &mut N, trunk: &Trunk, x: &N::Value) -> Result<N::Value> {
    let features = smp_features(net, trunk, x)?;
    let mut y = features[0].clone();
    for (i, &width) in DECODER.iter().enumerate() {
        let skip: Vec<N::Value> = features.get(i + 1).cloned().into_iter().collect();
        y = smp_block(net, &format!("decoder.blocks.{i}"), &y, &skip, width)?;
    }
    smp_head(net, &y)
}
