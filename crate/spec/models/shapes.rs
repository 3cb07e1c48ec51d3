//! A [`Net`] that computes nothing: it follows the shapes through a model and lists its
//! parameters and buffers, as a state dict names them. What a weights file is checked against,
//! and what memory estimates count.

use super::net::{Conv, Net, Pool};
use crate::{Error, Result};

/// What a state-dict entry is to its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRole {
    Weight,
    Bias,
    NormWeight,
    NormBias,
    RunningMean,
    RunningVar,
}

impl ParamRole {
    /// Whether an optimiser trains it (batch norm's running statistics are buffers).
    pub fn is_trained(self) -> bool {
        !matches!(self, ParamRole::RunningMean | ParamRole::RunningVar)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub role: ParamRole,
}

/// Shapes of the activations; the parameters in the order the layers declare them.
#[derive(Default)]
pub struct Shapes {
    pub params: Vec<ParamSpec>,
}

impl Shapes {
    fn add(&mut self, name: String, shape: Vec<usize>, role: ParamRole) {
        self.params.push(ParamSpec { name, shape, role });
    }
}

fn outside(what: &str, x: &[usize]) -> Error {
    Error::invalid(format!("{what} does not fit an input of shape {x:?}"))
}

impl Net for Shapes {
    type Value = Vec<usize>;

    fn dims4(&self, x: &Self::Value) -> Result<(usize, usize, usize, usize)> {
        match x[..] {
            [b, c, h, w] => Ok((b, c, h, w)),
            _ => Err(Error::invalid(format!(
                "expected a (B, C, H, W) feature map, not {x:?}"
            ))),
        }
    }

    fn conv(&mut self, name: &str, x: &Self::Value, conv: Conv) -> Result<Self::Value> {
        let (b, cin, h, w) = self.dims4(x)?;
        let (Some(oh), Some(ow)) = (conv.output(h), conv.output(w)) else {
            return Err(outside(&format!("convolution {name}"), x));
        };
        self.add(
            format!("{name}.weight"),
            vec![conv.out, cin, conv.k, conv.k],
            ParamRole::Weight,
        );
        if conv.bias {
            self.add(format!("{name}.bias"), vec![conv.out], ParamRole::Bias);
        }
        Ok(vec![b, conv.out, oh, ow])
    }

    fn batch_norm(&mut self, name: &str, x: &Self::Value, _relu: bool) -> Result<Self::Value> {
        let (_, c, _, _) = self.dims4(x)?;
        for (part, role) in [
            ("weight", ParamRole::NormWeight),
            ("bias", ParamRole::NormBias),
            ("running_mean", ParamRole::RunningMean),
            ("running_var", ParamRole::RunningVar),
        ] {
            self.add(format!("{name}.{part}"), vec![c], role);
        }
        Ok(x.clone())
    }

    fn relu(&mut self, x: &Self::Value) -> Result<Self::Value> {
        Ok(x.clone())
    }

    fn add(&mut self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value> {
        match a == b {
            true => Ok(a.clone()),
            false => Err(Error::invalid(format!("cannot add {a:?} and {b:?}"))),
        }
    }

    fn max_pool(&mut self, x: &Self::Value, pool: Pool) -> Result<Self::Value> {
        let (b, c, h, w) = self.dims4(x)?;
        match (pool.output(h), pool.output(w)) {
            (Some(oh), Some(ow)) => Ok(vec![b, c, oh, ow]),
            _ => Err(outside("a max pool", x)),
        }
    }

    fn mean_pool(&mut self, x: &Self::Value) -> Result<Self::Value> {
        let (b, c, _, _) = self.dims4(x)?;
        Ok(vec![b, c])
    }

    fn linear(&mut self, name: &str, x: &Self::Value, outputs: usize) -> Result<Self::Value> {
        let [b, inputs] = x[..] else {
            return Err(outside(&format!("linear layer {name}"), x));
        };
        self.add(
            format!("{name}.weight"),
            vec![outputs, inputs],
            ParamRole::Weight,
        );
        self.add(format!("{name}.bias"), vec![outputs], ParamRole::Bias);
        Ok(vec![b, outputs])
    }

    fn upsample(&mut self, x: &Self::Value, (h, w): (usize, usize)) -> Result<Self::Value> {
        let (b, c, _, _) = self.dims4(x)?;
        Ok(vec![b, c, h, w])
    }

    fn concat(&mut self, parts: &[Self::Value]) -> Result<Self::Value> {
        let first = parts
            .first()
            .ok_or_else(|| Error::invalid("concat: no parts"))?;
        let (b, _, h, w) = self.dims4(first)?;
        let mut channels = 0;
        for p in parts {
            let (pb, c, ph, pw) = self.dims4(p)?;
            if (pb, ph, pw) != (b, h, w) {
                return Err(Error::invalid(format!(
                    "concat: {p:?} does not fit {first:?}"
                )));
            }
            channels += c;
        }
        Ok(vec![b, channels, h, w])
    }
}

#[cfg(test)]
mod tests {
    use super::super::ModelKind;

    fn count(kind: ModelKind, classes: usize) -> usize {
        kind.parameters(classes, 64)
            .unwrap()
            .iter()
            .filter(|p| p.role.is_trained())
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }

    /// The libraries' own parameter counts (torchvision's resnet18 with 1000 classes, smp's
    /// models with one class).
    #[test]
    fn parameter_counts_match_the_libraries() {
        assert_eq!(count(ModelKind::ResNet18, 1000), 11_689_512);
        assert_eq!(count(ModelKind::UnetResNet18, 1), 14_328_209);
        assert_eq!(count(ModelKind::UnetResNet34, 1), 24_436_369);
    }

    #[test]
    fn names_are_the_libraries() {
        let names = |k: ModelKind| -> Vec<String> {
            k.parameters(4, 64)
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect()
        };
        let resnet = names(ModelKind::ResNet18);
        assert!(resnet.contains(&"layer4.0.downsample.1.running_var".to_string()));
        let unetpp = names(ModelKind::UnetPlusPlusResNet18);
        for key in [
            "encoder.layer1.0.conv1.weight",
            "decoder.blocks.x_0_0.conv1.0.weight",
            "decoder.blocks.x_3_3.conv2.1.running_mean",
            "decoder.blocks.x_0_4.conv2.0.weight",
            "segmentation_head.0.bias",
        ] {
            assert!(unetpp.contains(&key.to_string()), "{key}");
        }
    }
}
