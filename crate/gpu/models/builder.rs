//! Assembles a graph from `gpu::nn` ops: each layer is built with its output and gradient buffers
//! and its backward step is noted in forward order (reversed once the graph is complete). Where an
//! activation feeds several ops, all but one consumer write their gradient into buffers of their
//! own, added to the activation's just before its producer's backward step (every nn backward
//! kernel overwrites its dx).

use std::rc::Rc;

use super::super::nn::conv::output_size;
use super::super::nn::{
    Add, BatchNorm2d, Concat, ConcatGrads, Conv2d, ConvGrads, ConvTensors, GlobalAvgPool,
    GpuTensor, Kernels, Linear, LinearGrads, MaxPool2d, NormGrads, Relu, Upsample,
};
use super::super::Gpu;
use crate::{Error, Result};

/// An activation and the buffer its gradient goes to; `None` only for a graph's input when no
/// input gradient was asked for.
#[derive(Clone)]
pub(super) struct Value {
    pub x: Rc<GpuTensor>,
    pub dx: Option<Rc<GpuTensor>>,
}

impl Value {
    /// The gradient buffer, which every activation but a graph's input has.
    pub fn grad(&self) -> Result<&GpuTensor> {
        self.dx.as_deref().ok_or_else(no_gradient)
    }

    /// The gradient buffer itself, for a consumer that reads or writes it in place of its own.
    pub fn shared_grad(&self) -> Result<Rc<GpuTensor>> {
        self.dx.clone().ok_or_else(no_gradient)
    }

    /// (B, C, H, W).
    pub fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        match *self.x.shape() {
            [b, c, h, w] => Ok((b, c, h, w)),
            ref other => Err(Error::Gpu(format!(
                "model graph: expected a (B, C, H, W) activation, not {other:?}"
            ))),
        }
    }
}

fn no_gradient() -> Error {
    Error::Gpu("model graph: an activation lacks its gradient".into())
}

/// One op of the forward pass.
pub(super) enum Layer {
    Conv(Conv2d),
    Norm(Rc<BatchNorm2d>),
    Relu(Relu),
    /// A residual sum; its backward hands dy to both inputs, which share the sum's gradient
    /// buffer, so it records nothing.
    Add(Add),
    MaxPool(MaxPool2d),
    AvgPool(GlobalAvgPool),
    Linear(Linear),
    Upsample(Upsample),
    Concat(Concat),
}

impl Layer {
    pub fn forward(&self, pass: &mut wgpu::ComputePass, train: bool) {
        match self {
            Layer::Conv(op) => op.forward(pass),
            Layer::Norm(op) => op.forward(pass, train),
            Layer::Relu(op) => op.forward(pass),
            Layer::Add(op) => op.record(pass),
            Layer::MaxPool(op) => op.forward(pass),
            Layer::AvgPool(op) => op.forward(pass),
            Layer::Linear(op) => op.forward(pass),
            Layer::Upsample(op) => op.forward(pass),
            Layer::Concat(op) => op.forward(pass),
        }
    }

    /// `train`: the mode the forward pass ran in (batch norm's gradient differs).
    fn backward(&self, pass: &mut wgpu::ComputePass, train: bool) -> Result<()> {
        match self {
            Layer::Conv(op) => op.backward(pass),
            Layer::Norm(op) => op.backward(pass, train),
            Layer::Relu(op) => op.backward(pass),
            Layer::Add(_) => Ok(()),
            Layer::MaxPool(op) => op.backward(pass),
            Layer::AvgPool(op) => op.backward(pass),
            Layer::Linear(op) => op.backward(pass),
            Layer::Upsample(op) => op.backward(pass),
            Layer::Concat(op) => op.backward(pass),
        }
    }
}

/// One step of the backward pass: a layer's gradients, or gradients meeting.
pub(super) enum Step {
    Layer(usize),
    Sum(Add),
}

impl Step {
    pub fn record(
        &self,
        layers: &[Layer],
        pass: &mut wgpu::ComputePass,
        train: bool,
    ) -> Result<()> {
        match self {
            Step::Layer(i) => layers
                .get(*i)
                .ok_or_else(|| Error::Gpu("model graph: a step names no layer".into()))?
                .backward(pass, train),
            Step::Sum(add) => {
                add.record(pass);
                Ok(())
            }
        }
    }
}

/// A trained tensor under its CPU model's name, with its gradient.
pub(super) struct Param {
    pub name: String,
    pub value: Rc<GpuTensor>,
    pub grad: Rc<GpuTensor>,
}

/// A batch-norm layer under its CPU model's name prefix (`.running_mean`, `.running_var`).
pub(super) struct Norm {
    pub name: String,
    pub channels: usize,
    pub layer: Rc<BatchNorm2d>,
}

pub(super) struct Builder<'a> {
    gpu: &'a Gpu,
    kernels: &'a Kernels,
    pub layers: Vec<Layer>,
    /// Backward steps in forward order.
    pub backward: Vec<Step>,
    pub params: Vec<Param>,
    /// Batch-norm layers with their name prefix and channel count.
    pub norms: Vec<Norm>,
}

impl<'a> Builder<'a> {
    pub fn new(gpu: &'a Gpu, kernels: &'a Kernels) -> Self {
        Self {
            gpu,
            kernels,
            layers: Vec::new(),
            backward: Vec::new(),
            params: Vec::new(),
            norms: Vec::new(),
        }
    }

    pub fn tensor(&self, label: &str, shape: &[usize]) -> Result<Rc<GpuTensor>> {
        Ok(Rc::new(GpuTensor::zeros(self.gpu, label, shape)?))
    }

    /// A new activation with its gradient buffer (`grad`, or a fresh one).
    fn value(&self, label: &str, shape: &[usize], grad: Option<Rc<GpuTensor>>) -> Result<Value> {
        let dx = match grad {
            Some(g) => g,
            None => self.tensor(&format!("d {label}"), shape)?,
        };
        Ok(Value {
            x: self.tensor(label, shape)?,
            dx: Some(dx),
        })
    }

    fn param(&mut self, name: String, shape: &[usize]) -> Result<(Rc<GpuTensor>, Rc<GpuTensor>)> {
        let value = self.tensor(&name, shape)?;
        let grad = self.tensor(&format!("d {name}"), shape)?;
        self.params.push(Param {
            name,
            value: value.clone(),
            grad: grad.clone(),
        });
        Ok((value, grad))
    }

    fn push(&mut self, layer: Layer) {
        if !matches!(layer, Layer::Add(_)) {
            self.backward.push(Step::Layer(self.layers.len()));
        }
        self.layers.push(layer);
    }

    /// Hands `v` to `n` consumers: the first writes its gradient into `v`'s own buffer, each
    /// other into a buffer of its own that is added to it after every consumer's backward step.
    /// Call it right after `v` is made, before any consumer is built.
    pub fn fork(&mut self, v: &Value, n: usize) -> Result<Vec<Value>> {
        let mut branches = vec![v.clone(); n.min(1)];
        for _ in 1..n {
            let part = self.tensor("gradient part", v.x.shape())?;
            let add = Add::accumulate(self.gpu, self.kernels, &part, v.grad()?)?;
            self.backward.push(Step::Sum(add));
            branches.push(Value {
                x: v.x.clone(),
                dx: Some(part),
            });
        }
        Ok(branches)
    }

    /// Two branches of a value that feeds two ops (see [`Builder::fork`]).
    pub fn fork2(&mut self, v: &Value) -> Result<(Value, Value)> {
        let mut parts = self.fork(v, 2)?.into_iter();
        match (parts.next(), parts.next()) {
            (Some(first), Some(second)) => Ok((first, second)),
            _ => Err(Error::Gpu("model graph: a fork lost a branch".into())),
        }
    }

    /// A convolution with "same" padding (k / 2) named `name` (`name.weight`, `name.bias`), as
    /// `model::blocks::Conv`.
    pub fn conv(
        &mut self,
        name: &str,
        input: &Value,
        (cout, k, stride): (usize, usize, usize),
        bias: bool,
    ) -> Result<Value> {
        let (b, cin, h, w) = input.dims4()?;
        let pad = k / 2;
        let (Some(out_h), Some(out_w)) = (
            output_size(h, k, stride, pad),
            output_size(w, k, stride, pad),
        ) else {
            return Err(Error::Gpu(format!(
                "{name}: a {k}x{k} convolution does not fit {h}x{w} pixels"
            )));
        };
        let (weight, dweight) = self.param(format!("{name}.weight"), &[cout, cin, k, k])?;
        let bias = match bias {
            true => Some(self.param(format!("{name}.bias"), &[cout])?),
            false => None,
        };
        let out = self.value(name, &[b, cout, out_h, out_w], None)?;
        let op = Conv2d::new(
            self.gpu,
            self.kernels,
            &ConvTensors {
                x: &input.x,
                weight: &weight,
                bias: bias.as_ref().map(|(v, _)| &**v),
                y: &out.x,
            },
            stride,
            pad,
            Some(ConvGrads {
                dy: out.grad()?,
                dx: input.dx.as_deref(),
                dweight: &dweight,
                dbias: bias.as_ref().map(|(_, g)| &**g),
            }),
        )?;
        self.push(Layer::Conv(op));
        Ok(out)
    }

    /// BatchNorm2d named `name` (weight 1, bias 0, running statistics 0 and 1 at first).
    fn norm(&mut self, name: &str, input: &Value, grad: Option<Rc<GpuTensor>>) -> Result<Value> {
        let (_, c, _, _) = input.dims4()?;
        let (gamma, dgamma) = self.param(format!("{name}.weight"), &[c])?;
        gamma.write(self.gpu, &vec![1.0; c])?;
        let (beta, dbeta) = self.param(format!("{name}.bias"), &[c])?;
        let out = self.value(name, input.x.shape(), grad)?;
        let op = BatchNorm2d::new(
            self.gpu,
            self.kernels,
            &input.x,
            &gamma,
            &beta,
            &out.x,
            Some(NormGrads {
                dy: out.grad()?,
                dx: input.grad()?,
                dgamma: &dgamma,
                dbeta: &dbeta,
            }),
        )?;
        let op = Rc::new(op);
        self.norms.push(Norm {
            name: name.to_string(),
            channels: c,
            layer: op.clone(),
        });
        self.push(Layer::Norm(op));
        Ok(out)
    }

    pub fn relu(&mut self, input: &Value, grad: Option<Rc<GpuTensor>>) -> Result<Value> {
        let out = self.value("relu", input.x.shape(), grad)?;
        let op = Relu::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.x,
            Some((out.grad()?, input.grad()?)),
        )?;
        self.push(Layer::Relu(op));
        Ok(out)
    }

    /// conv (no bias) -> batch norm (-> relu), as `model::blocks::conv_bn`; `grad` is the buffer
    /// the result's gradient is to be read from (a fresh one where `None`).
    pub fn conv_bn(
        &mut self,
        (conv, norm): (&str, &str),
        input: &Value,
        shape: (usize, usize, usize),
        relu: bool,
        grad: Option<Rc<GpuTensor>>,
    ) -> Result<Value> {
        let y = self.conv(conv, input, shape, false)?;
        if relu {
            let y = self.norm(norm, &y, None)?;
            self.relu(&y, grad)
        } else {
            self.norm(norm, &y, grad)
        }
    }

    /// out = a + b with `grad` as the gradient of out, a and b alike (their producers read it).
    pub fn add(&mut self, a: &GpuTensor, b: &GpuTensor, grad: Rc<GpuTensor>) -> Result<Value> {
        let out = self.value("residual", a.shape(), Some(grad))?;
        let op = Add::new(self.gpu, self.kernels, a, b, &out.x)?;
        self.push(Layer::Add(op));
        Ok(out)
    }

    /// Max pooling with a (k, stride, pad) window.
    pub fn max_pool(&mut self, input: &Value, window: (usize, usize, usize)) -> Result<Value> {
        let (b, c, h, w) = input.dims4()?;
        let (k, stride, pad) = window;
        let (Some(out_h), Some(out_w)) = (
            output_size(h, k, stride, pad),
            output_size(w, k, stride, pad),
        ) else {
            return Err(Error::Gpu(format!(
                "a {k}x{k} max pool does not fit {h}x{w} pixels"
            )));
        };
        let out = self.value("max pool", &[b, c, out_h, out_w], None)?;
        let op = MaxPool2d::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.x,
            window,
            Some((out.grad()?, input.grad()?)),
        )?;
        self.push(Layer::MaxPool(op));
        Ok(out)
    }

    /// (B, C, H, W) -> (B, C), the mean over the plane.
    pub fn avg_pool(&mut self, input: &Value) -> Result<Value> {
        let (b, c, _, _) = input.dims4()?;
        let out = self.value("average pool", &[b, c], None)?;
        let op = GlobalAvgPool::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.x,
            Some((out.grad()?, input.grad()?)),
        )?;
        self.push(Layer::AvgPool(op));
        Ok(out)
    }

    /// A fully connected layer named `name` from (B, in) to (B, outputs).
    pub fn linear(&mut self, name: &str, input: &Value, outputs: usize) -> Result<Value> {
        let (batch, inputs) = match *input.x.shape() {
            [b, i] => (b, i),
            ref other => {
                return Err(Error::Gpu(format!(
                    "{name}: expected (B, features), not {other:?}"
                )))
            }
        };
        let (weight, dweight) = self.param(format!("{name}.weight"), &[outputs, inputs])?;
        let (bias, dbias) = self.param(format!("{name}.bias"), &[outputs])?;
        let out = self.value(name, &[batch, outputs], None)?;
        let op = Linear::new(
            self.gpu,
            self.kernels,
            &input.x,
            &weight,
            &bias,
            &out.x,
            Some(LinearGrads {
                dy: out.grad()?,
                dx: Some(input.grad()?),
                dweight: &dweight,
                dbias: &dbias,
            }),
        )?;
        self.push(Layer::Linear(op));
        Ok(out)
    }

    /// Nearest upsampling of `input` to `(height, width)`.
    pub fn upsample(&mut self, input: &Value, (height, width): (usize, usize)) -> Result<Value> {
        let (b, c, _, _) = input.dims4()?;
        let out = self.value("upsample", &[b, c, height, width], None)?;
        let op = Upsample::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.x,
            Some((out.grad()?, input.grad()?)),
        )?;
        self.push(Layer::Upsample(op));
        Ok(out)
    }

    /// The parts side by side along the channels.
    pub fn concat(&mut self, parts: &[Value]) -> Result<Value> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Gpu("concat: no parts".into()))?;
        let (b, _, h, w) = first.dims4()?;
        let mut channels = 0;
        for part in parts {
            channels += part.dims4()?.1;
        }
        let out = self.value("concat", &[b, channels, h, w], None)?;
        let xs: Vec<&GpuTensor> = parts.iter().map(|p| &*p.x).collect();
        let dxs = parts.iter().map(Value::grad).collect::<Result<Vec<_>>>()?;
        let op = Concat::new(
            self.gpu,
            self.kernels,
            &xs,
            &out.x,
            Some(ConcatGrads {
                dy: out.grad()?,
                dxs,
                accumulate: false,
            }),
        )?;
        self.push(Layer::Concat(op));
        Ok(out)
    }
}
