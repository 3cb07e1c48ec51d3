//! The task models the lab offers, each one layer graph written against [`Net`]: the paper's
//! (torchvision's ResNet-18, segmentation_models_pytorch's U-Net and U-Net++ on ResNet encoders,
//! under those libraries' state-dict names, so their weights load as they are) and small models
//! sized to train in a browser tab (the fast default).

mod net;
mod resnet;
mod shapes;
mod unet;
mod unet_plus_plus;

pub use net::{Conv, Net, NormMode, Pool};
pub use shapes::{ParamRole, ParamSpec, Shapes};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// torchvision's ResNet-18, `fc` to the task's classes.
    ResNet18,
    /// A three-stage ResNet (16, 32, 64 channels) that trains in the browser.
    ResNetSmall,
    /// A two-level U-Net (16, 32, 64 channels) that trains in the browser.
    UNetSmall,
    /// U-Net++ with three levels (16, 32, 64 channels): the paper's segmenter at browser size.
    UNetPlusPlus,
    /// smp's `Unet` on a ResNet-18 encoder.
    UnetResNet18,
    /// smp's `UnetPlusPlus` on a ResNet-18 encoder (the paper's segmenter).
    UnetPlusPlusResNet18,
    /// smp's `Unet` on a ResNet-34 encoder.
    UnetResNet34,
    /// smp's `UnetPlusPlus` on a ResNet-34 encoder.
    UnetPlusPlusResNet34,
}

impl ModelKind {
    pub const ALL: [ModelKind; 8] = [
        ModelKind::ResNet18,
        ModelKind::ResNetSmall,
        ModelKind::UNetSmall,
        ModelKind::UNetPlusPlus,
        ModelKind::UnetResNet18,
        ModelKind::UnetPlusPlusResNet18,
        ModelKind::UnetResNet34,
        ModelKind::UnetPlusPlusResNet34,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            ModelKind::ResNet18 => "resnet18",
            ModelKind::ResNetSmall => "resnet_small",
            ModelKind::UNetSmall => "unet_small",
            ModelKind::UNetPlusPlus => "unet_plus_plus",
            ModelKind::UnetResNet18 => "unet_resnet18",
            ModelKind::UnetPlusPlusResNet18 => "unetpp_resnet18",
            ModelKind::UnetResNet34 => "unet_resnet34",
            ModelKind::UnetPlusPlusResNet34 => "unetpp_resnet34",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                Error::invalid(format!(
                    "unknown model '{name}': use one of {}",
                    names.join(", ")
                ))
            })
    }

    pub fn is_segmenter(self) -> bool {
        !matches!(self, ModelKind::ResNet18 | ModelKind::ResNetSmall)
    }

    /// What a tile's sides must divide by.
    pub fn side_multiple(self) -> usize {
        match self {
            ModelKind::ResNet18 | ModelKind::ResNetSmall => 1,
            ModelKind::UNetSmall | ModelKind::UNetPlusPlus => 4,
            _ => unet::OUTPUT_STRIDE,
        }
    }

    /// The task head's prefix: the layer sized by the task (re-initialised where a weights file
    /// was made for other classes).
    pub fn task_head(self) -> &'static str {
        match self {
            ModelKind::ResNet18 | ModelKind::ResNetSmall => "fc.",
            ModelKind::UNetSmall | ModelKind::UNetPlusPlus => "head.",
            _ => "segmentation_head.",
        }
    }

    /// Whether parameter `name` belongs to the backbone (the classifiers' trunk, the U-Nets'
    /// encoder), which fine-tuning may freeze or train at its own rate; the rest is the head.
    pub fn is_backbone(self, name: &str) -> bool {
        match self {
            ModelKind::ResNet18 | ModelKind::ResNetSmall => !name.starts_with("fc."),
            ModelKind::UNetSmall => ["enc1.", "enc2.", "bottleneck."]
                .iter()
                .any(|p| name.starts_with(p)),
            // the encoder column X(i, 0)
            ModelKind::UNetPlusPlus => name
                .split('.')
                .next()
                .is_some_and(|node| node.starts_with('x') && node.ends_with("_0")),
            _ => name.starts_with("encoder."),
        }
    }

    /// The graph on input `x`: logits (B, classes) for the classifiers, (B, 1, H, W) for the
    /// segmenters.
    pub fn build<N: Net>(self, net: &mut N, x: &N::Value, classes: usize) -> Result<N::Value> {
        match self {
            ModelKind::ResNet18 => resnet::classifier(net, &resnet::RESNET18, x, classes),
            ModelKind::ResNetSmall => resnet::classifier(net, &resnet::SMALL, x, classes),
            ModelKind::UNetSmall => unet::small(net, x),
            ModelKind::UNetPlusPlus => unet_plus_plus::small(net, x),
            ModelKind::UnetResNet18 => unet::smp(net, &resnet::RESNET18, x),
            ModelKind::UnetPlusPlusResNet18 => unet_plus_plus::smp(net, &resnet::RESNET18, x),
            ModelKind::UnetResNet34 => unet::smp(net, &resnet::RESNET34, x),
            ModelKind::UnetPlusPlusResNet34 => unet_plus_plus::smp(net, &resnet::RESNET34, x),
        }
    }

    /// Every parameter and buffer of the model for `classes` (what a weights file must hold),
    /// followed on an input of `side` pixels.
    pub fn parameters(self, classes: usize, side: usize) -> Result<Vec<ParamSpec>> {
        let mut shapes = Shapes::default();
        let x = vec![1, 3, side, side];
        self.build(&mut shapes, &x, classes)?;
        Ok(shapes.params)
    }
}
