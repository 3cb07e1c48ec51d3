//! The CPU's execution of a model graph (`spec::models`): each layer runs on candle as the
//! definition calls it, with the parameters of a `VarMap` under their state-dict names, so
//! candle's autograd gives every gradient.

use candle_core::{Tensor, D};
use candle_nn::{Module, VarBuilder};

use super::batch_norm::BatchNorm2d;
use super::ops::{conv2d, max_pool2d, upsample_nearest};
use super::relu::add_relu;
use crate::spec::models::{Conv, ModelKind, Net, NormMode, Pool};
use crate::{Error, Result};

pub struct CandleNet<'a> {
    pub kind: ModelKind,
    pub vb: VarBuilder<'a>,
    pub mode: NormMode,
}

fn conv_weight_init() -> candle_nn::Init {
    candle_nn::init::DEFAULT_KAIMING_NORMAL
}

/// PyTorch's default bias initialisation: uniform in +-1/sqrt(fan_in).
fn bias_init(fan_in: usize) -> candle_nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    candle_nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

impl Net for CandleNet<'_> {
    type Value = Tensor;

    fn dims4(&self, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
        Ok(x.dims4()?)
    }

    fn conv(&mut self, name: &str, x: &Tensor, conv: Conv) -> Result<Tensor> {
        let cin = x.dim(1)?;
        let vb = self.vb.pp(name);
        let weight = vb.get_with_hints(
            (conv.out, cin, conv.k, conv.k),
            "weight",
            conv_weight_init(),
        )?;
        let y = conv2d(x, &weight, conv.stride, conv.pad)?;
        if !conv.bias {
            return Ok(y);
        }
        let bias = vb.get_with_hints(conv.out, "bias", bias_init(cin * conv.k * conv.k))?;
        Ok(y.broadcast_add(&bias.reshape((1, conv.out, 1, 1))?)?)
    }

    fn batch_norm(&mut self, name: &str, x: &Tensor, relu: bool) -> Result<Tensor> {
        let norm = BatchNorm2d::new(x.dim(1)?, self.vb.pp(name))?;
        norm.forward(x, self.mode.trains(self.kind, name), relu)
    }

    fn relu(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(x.relu()?)
    }

    fn add(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        Ok((a + b)?)
    }

    fn add_relu(&mut self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        add_relu(a, b)
    }

    fn max_pool(&mut self, x: &Tensor, pool: Pool) -> Result<Tensor> {
        max_pool2d(x, pool.k, pool.stride, pool.pad)
    }

    fn mean_pool(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
    }

    fn linear(&mut self, name: &str, x: &Tensor, outputs: usize) -> Result<Tensor> {
        let inputs = x.dim(1)?;
        let vb = self.vb.pp(name);
        let weight = vb.get_with_hints((outputs, inputs), "weight", conv_weight_init())?;
        let bias = vb.get_with_hints(outputs, "bias", bias_init(inputs))?;
        Ok(candle_nn::Linear::new(weight, Some(bias)).forward(x)?)
    }

    fn upsample(&mut self, x: &Tensor, (h, w): (usize, usize)) -> Result<Tensor> {
        upsample_nearest(x, h, w)
    }

    fn concat(&mut self, parts: &[Tensor]) -> Result<Tensor> {
        if parts.is_empty() {
            return Err(Error::invalid("concat: no parts"));
        }
        Ok(Tensor::cat(parts, 1)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarMap;

    use super::super::TaskModel;
    use super::*;

    #[test]
    fn every_unet_plus_plus_node_shapes_the_output_and_receives_gradient() {
        let vars = VarMap::new();
        let net = TaskModel::new(ModelKind::UNetPlusPlus, 1, &vars, &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu).unwrap();
        let y = net.forward(&x, NormMode::TRAIN).unwrap();
        assert_eq!(y.dims(), [2, 1, 16, 16]);
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let data = vars.data().lock().unwrap();
        // six nodes (three encoder, three nested), each with two convolutions
        let convs: Vec<&String> = data
            .keys()
            .filter(|n| n.contains("conv") && n.ends_with("weight"))
            .collect();
        assert_eq!(convs.len(), 12, "{convs:?}");
        for name in convs {
            let g = grads.get(data[name].as_tensor()).unwrap();
            let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
            assert!(norm > 0.0, "{name} receives no gradient");
        }
        assert_eq!(data[&"x0_0.conv1.weight".to_string()].dtype(), DType::F32);
    }
}
