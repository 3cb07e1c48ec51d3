//! Task models on candle-nn: ResNet classifiers (torchvision's ResNet-18 and a small ResNet sized
//! to train in the browser) and small U-Net and U-Net++ segmenters, with torchvision's parameter names so
//! weights move to and from PyTorch as safetensors; losses and metrics beside them.

mod batch_norm;
mod blocks;
pub mod losses;
pub mod ops;
mod resnet;
mod unet;
mod unet_plus_plus;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

pub use resnet::ResNet;
pub use unet::UNet;
pub use unet_plus_plus::UNetPlusPlus;

use crate::{Error, Result};

/// The task models the lab offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// torchvision's ResNet-18 topology, final Linear to the number of classes.
    ResNet18,
    /// A three-stage ResNet (16, 32, 64 channels) that trains in the browser.
    ResNetSmall,
    /// A two-level U-Net (16, 32, 64 channels) that trains in the browser.
    UNetSmall,
    /// U-Net++ with three levels (16, 32, 64 channels), the paper's segmenter at browser size.
    UNetPlusPlus,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::ResNet18,
        ModelKind::ResNetSmall,
        ModelKind::UNetSmall,
        ModelKind::UNetPlusPlus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::ResNet18 => "resnet18",
            ModelKind::ResNetSmall => "resnet_small",
            ModelKind::UNetSmall => "unet_small",
            ModelKind::UNetPlusPlus => "unet_plus_plus",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown model '{name}': use resnet18, resnet_small, unet_small or unet_plus_plus"
                ))
            })
    }

    pub fn is_segmenter(self) -> bool {
        matches!(self, ModelKind::UNetSmall | ModelKind::UNetPlusPlus)
    }
}

/// A task model: logits (B, classes) for classifiers, (B, 1, H, W) for the segmenter.
pub enum TaskModel {
    Classifier(ResNet),
    Segmenter(Box<UNet>),
    NestedSegmenter(Box<UNetPlusPlus>),
}

impl TaskModel {
    /// Builds `kind` with fresh weights in `vars` (seeded through candle's device RNG by the caller).
    pub fn new(kind: ModelKind, classes: usize, vars: &VarMap, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(vars, DType::F32, device);
        Ok(match kind {
            ModelKind::ResNet18 => TaskModel::Classifier(ResNet::resnet18(classes, vb)?),
            ModelKind::ResNetSmall => TaskModel::Classifier(ResNet::small(classes, vb)?),
            ModelKind::UNetSmall => TaskModel::Segmenter(Box::new(UNet::small(vb)?)),
            ModelKind::UNetPlusPlus => {
                TaskModel::NestedSegmenter(Box::new(UNetPlusPlus::small(vb)?))
            }
        })
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            TaskModel::Classifier(m) => m.forward(x, train),
            TaskModel::Segmenter(m) => m.forward(x, train),
            TaskModel::NestedSegmenter(m) => m.forward(x, train),
        }
    }
}

/// Per-channel input normalisation with a dataset's statistics.
#[derive(Debug, Clone, Copy)]
pub struct Normalisation {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    /// Raw-Microscopy's processed images.
    pub const MICROSCOPY: Self = Self {
        mean: [0.91, 0.84, 0.94],
        std: [0.08, 0.12, 0.05],
    };
    /// Raw-Drone's processed images.
    pub const DRONE: Self = Self {
        mean: [0.35, 0.36, 0.35],
        std: [0.12, 0.11, 0.12],
    };

    /// (x - mean) / std per channel of (B, 3, H, W).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let device = x.device();
        let mean = Tensor::new(&self.mean, device)?.reshape((1, 3, 1, 1))?;
        let std = Tensor::new(&self.std, device)?.reshape((1, 3, 1, 1))?;
        Ok(x.broadcast_sub(&mean)?.broadcast_div(&std)?)
    }
}

/// Sets every weight from a seeded generator, so runs repeat exactly (candle's CPU generator
/// cannot be seeded): convolution and linear weights Kaiming-normal (std sqrt(2 / fan_in)), their
/// biases uniform in +-1/sqrt(fan_in), batch norm's constants left as they are.
pub fn seed_weights(vars: &VarMap, seed: u64) -> Result<()> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal, Uniform};
    let data = vars.data().lock().expect("var map lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let fan_in = |name: &str| -> Option<usize> {
        let w = data.get(name)?;
        (w.rank() >= 2).then(|| w.dims()[1..].iter().product())
    };
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if var.rank() >= 2 {
            let std = (2.0 / fan_in(name).unwrap_or(1) as f64).sqrt();
            let normal = Normal::new(0.0, std).expect("a valid normal");
            (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
        } else if let Some(fan) = name
            .strip_suffix("bias")
            .and_then(|stem| fan_in(&format!("{stem}weight")))
        {
            let bound = 1.0 / (fan as f64).sqrt();
            let uniform = Uniform::new(-bound, bound).expect("a valid range");
            (0..n).map(|_| uniform.sample(&mut rng) as f32).collect()
        } else {
            continue;
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// The model's weights as safetensors (torchvision's names for the ResNets).
pub fn save_weights(vars: &VarMap) -> Result<Vec<u8>> {
    let data = vars.data().lock().expect("var map lock");
    let mut named: Vec<(String, Tensor)> = data
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    safetensors::serialize(named, None)
        .map_err(|e| Error::invalid(format!("writing safetensors: {e}")))
}

/// Loads weights saved by `save_weights` (or PyTorch, with the same names and shapes).
pub fn load_weights(vars: &VarMap, bytes: &[u8]) -> Result<()> {
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| Error::decode("model weights (safetensors)", e))?;
    let data = vars.data().lock().expect("var map lock");
    for (name, var) in data.iter() {
        let t = tensors
            .get(name)
            .ok_or_else(|| Error::invalid(format!("the weights lack '{name}'")))?;
        if t.dims() != var.dims() {
            return Err(Error::invalid(format!(
                "weight '{name}' has shape {:?}, the model {:?}",
                t.dims(),
                var.dims()
            )));
        }
        var.set(&t.to_dtype(DType::F32)?)?;
    }
    Ok(())
}

/// Trainable variables of a model: everything but batch norm's running statistics.
pub fn trainable(vars: &VarMap) -> Vec<candle_core::Var> {
    let data = vars.data().lock().expect("var map lock");
    let mut named: Vec<(&String, &candle_core::Var)> = data
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, v)| v.clone()).collect()
}
