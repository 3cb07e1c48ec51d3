//! ResNets with torchvision's structure and state-dict names (conv1, bn1, layerN.M.conv1/bn1/
//! conv2/bn2, layerN.0.downsample.0/1, fc): the classifiers, and the encoder of smp's U-Nets
//! (the same trunk under `encoder.`).

use super::net::{Conv, Net, Pool};
use crate::Result;

/// Stem kernel and stride, whether the stem max-pools, stage widths and blocks per stage.
pub(super) struct Trunk {
    pub stem: (usize, usize),
    pub max_pool: bool,
    pub widths: &'static [usize],
    pub blocks: &'static [usize],
}

/// torchvision's resnet18: conv 7x7/2, max pool 3x3/2, [2, 2, 2, 2] blocks of 64 .. 512 channels.
pub(super) const RESNET18: Trunk = Trunk {
    stem: (7, 2),
    max_pool: true,
    widths: &[64, 128, 256, 512],
    blocks: &[2, 2, 2, 2],
};

/// torchvision's resnet34: resnet18's stages with [3, 4, 6, 3] blocks.
pub(super) const RESNET34: Trunk = Trunk {
    blocks: &[3, 4, 6, 3],
    ..RESNET18
};

/// Three stages of one block (16, 32, 64 channels) after a 3x3 stem: trains in the browser.
pub(super) const SMALL: Trunk = Trunk {
    stem: (3, 1),
    max_pool: false,
    widths: &[16, 32, 64],
    blocks: &[1, 1, 1],
};

/// The stem and the stages under `prefix` ("" for the classifiers, "encoder." for smp's):
/// the stem's output (after its ReLU, before the max pool), then every stage's.
pub(super) fn features<N: Net>(
    net: &mut N,
    prefix: &str,
    trunk: &Trunk,
    x: &N::Value,
) -> Result<Vec<N::Value>> {
    let (k, stride) = trunk.stem;
    let stem = net.conv_bn(
        (&format!("{prefix}conv1"), &format!("{prefix}bn1")),
        x,
        Conv::same(trunk.widths[0], k, stride),
        true,
    )?;
    let mut y = match trunk.max_pool {
        true => net.max_pool(
            &stem,
            Pool {
                k: 3,
                stride: 2,
                pad: 1,
            },
        )?,
        false => stem.clone(),
    };
    let mut out = vec![stem];
    for (i, (&width, &blocks)) in trunk.widths.iter().zip(trunk.blocks).enumerate() {
        for j in 0..blocks {
            let stride = if i > 0 && j == 0 { 2 } else { 1 };
            y = basic_block(
                net,
                &format!("{prefix}layer{}.{j}", i + 1),
                &y,
                width,
                stride,
            )?;
        }
        out.push(y.clone());
    }
    Ok(out)
}

/// The classifier: the trunk, global average pooling, `fc` to `classes` logits.
pub(super) fn classifier<N: Net>(
    net: &mut N,
    trunk: &Trunk,
    x: &N::Value,
    classes: usize,
) -> Result<N::Value> {
    let features = features(net, "", trunk, x)?;
    let last = features.last().expect("a trunk has stages");
    let pooled = net.mean_pool(last)?;
    net.linear("fc", &pooled, classes)
}

/// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut a 1x1 convolution with
/// batch norm where the shape changes.
fn basic_block<N: Net>(
    net: &mut N,
    prefix: &str,
    x: &N::Value,
    cout: usize,
    stride: usize,
) -> Result<N::Value> {
    let (_, cin, _, _) = net.dims4(x)?;
    let name = |part: &str| format!("{prefix}.{part}");
    let y = net.conv_bn(
        (&name("conv1"), &name("bn1")),
        x,
        Conv::same(cout, 3, stride),
        true,
    )?;
    let y = net.conv_bn(
        (&name("conv2"), &name("bn2")),
        &y,
        Conv::same(cout, 3, 1),
        false,
    )?;
    let shortcut = match stride != 1 || cin != cout {
        true => net.conv_bn(
            (&name("downsample.0"), &name("downsample.1")),
            x,
            Conv::same(cout, 1, stride),
            false,
        )?,
        false => x.clone(),
    };
    net.add_relu(&y, &shortcut)
}
