//! The task models on the CPU (candle, the reference the GPU is checked against): the graphs of
//! `spec::models` executed by [`CandleNet`], their weights in a candle `VarMap` under the
//! libraries' state-dict names (torchvision's, smp's), so weights move to and from PyTorch as
//! safetensors; losses and metrics beside them.

mod adamw;
mod batch_norm;
pub mod losses;
mod net;
pub mod ops;
mod relu;
mod weights;

use std::sync::PoisonError;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

pub use adamw::AdamW;
pub use net::CandleNet;
pub use weights::{load_strict, Loaded, WeightsFile, WeightsSource};

use crate::spec::models::{ModelKind, NormMode, ParamRole};
use crate::{Error, Result};

/// Side of the input the parameters are declared on (every model's downsampling divides it).
const DECLARE_SIDE: usize = 64;

/// A task model: its kind, its classes and its weights. Logits (B, classes) for classifiers,
/// (B, 1, H, W) for the segmenters.
pub struct TaskModel {
    kind: ModelKind,
    classes: usize,
    vars: VarMap,
}

impl TaskModel {
    /// Declares every parameter and buffer of `kind` in `vars` (the layers' default
    /// initialisation; [`seed_weights`] or a weights file sets them).
    pub fn new(kind: ModelKind, classes: usize, vars: &VarMap, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(vars, DType::F32, device);
        let params = kind.parameters(classes, DECLARE_SIDE)?;
        let fan_in = |name: &str| -> usize {
            let stem = name.strip_suffix("bias").unwrap_or(name);
            params
                .iter()
                .find(|p| p.name == format!("{stem}weight"))
                .map_or(1, |p| p.shape[1..].iter().product::<usize>().max(1))
        };
        for p in &params {
            let init = match p.role {
                ParamRole::Weight => candle_nn::init::DEFAULT_KAIMING_NORMAL,
                ParamRole::Bias => {
                    let bound = 1.0 / (fan_in(&p.name) as f64).sqrt();
                    candle_nn::Init::Uniform {
                        lo: -bound,
                        up: bound,
                    }
                }
                ParamRole::NormWeight | ParamRole::RunningVar => candle_nn::Init::Const(1.0),
                ParamRole::NormBias | ParamRole::RunningMean => candle_nn::Init::Const(0.0),
            };
            vb.get_with_hints(p.shape.as_slice(), &p.name, init)?;
        }
        Ok(Self {
            kind,
            classes,
            vars: vars.clone(),
        })
    }

    pub fn kind(&self) -> ModelKind {
        self.kind
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The graph on `x`. Weights that do not train in `mode` (all of them in evaluation, the
    /// backbone's with a frozen backbone) are read detached, so that candle's backward computes
    /// no gradient for them: in forensics' attacks and the gradient snapshots the convolutions
    /// skip their weight gradients, and a frozen backbone fed a processed batch records no graph
    /// at all (the head's backward is the whole backward).
    pub fn forward(&self, x: &Tensor, mode: NormMode) -> Result<Tensor> {
        let vb = if mode.train && !mode.frozen_backbone {
            VarBuilder::from_varmap(&self.vars, DType::F32, x.device())
        } else {
            // a panic elsewhere left the weights as they were: read them
            let vars = self
                .vars
                .data()
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let frozen = |name: &str| !mode.train || self.kind.is_backbone(name);
            let tensors = vars
                .iter()
                .map(|(name, var)| {
                    let weight = var.as_tensor();
                    let weight = match frozen(name) {
                        true => weight.detach(),
                        false => weight.clone(),
                    };
                    (name.clone(), weight)
                })
                .collect();
            VarBuilder::from_tensors(tensors, DType::F32, x.device())
        };
        let mut net = CandleNet {
            kind: self.kind,
            vb,
            mode,
        };
        self.kind.build(&mut net, x, self.classes)
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

/// Trainable variables of a model by name, sorted: everything but batch norm's running
/// statistics.
pub fn trainable(vars: &VarMap) -> Vec<(String, candle_core::Var)> {
    let data = vars.data().lock().expect("var map lock");
    let mut named: Vec<(String, candle_core::Var)> = data
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};
    use candle_nn::VarMap;

    use super::*;

    /// The forward reads frozen weights detached: the same outputs, the same gradients for what
    /// trains (the head, the input), none for what does not (a frozen backbone; every weight in
    /// evaluation), against the forward on the variables themselves.
    #[test]
    fn frozen_weights_get_no_gradient_and_the_rest_the_same() {
        let vars = VarMap::new();
        let model = TaskModel::new(ModelKind::ResNetSmall, 4, &vars, &Device::Cpu).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap())
            .unwrap();
        let frozen_backbone = NormMode {
            train: true,
            frozen_backbone: true,
        };
        for mode in [frozen_backbone, NormMode::EVAL] {
            let on_variables = {
                let mut net = CandleNet {
                    kind: model.kind,
                    vb: VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu),
                    mode,
                };
                model.kind.build(&mut net, x.as_tensor(), 4).unwrap()
            };
            let detached = model.forward(x.as_tensor(), mode).unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(&on_variables), bits(&detached));
            let gradients = |y: &Tensor| y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            let (before, now) = (gradients(&on_variables), gradients(&detached));
            let input = |g: &candle_core::backprop::GradStore| bits(g.get(x.as_tensor()).unwrap());
            assert_eq!(
                input(&before),
                input(&now),
                "{mode:?}: the input's gradient"
            );
            for (name, var) in vars.data().lock().unwrap().iter() {
                let trains = mode.train && !model.kind.is_backbone(name);
                let (b, n) = (before.get(var.as_tensor()), now.get(var.as_tensor()));
                match trains {
                    true => assert_eq!(bits(b.unwrap()), bits(n.unwrap()), "{mode:?}: {name}"),
                    false => assert!(n.is_none(), "{mode:?}: {name} got a gradient"),
                }
            }
        }
    }
}
