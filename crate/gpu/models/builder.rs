//! Records a model graph (`spec::models`) as device ops: [`Builder`] is a [`Net`] whose layers
//! are built once with their output and gradient buffers, each backward step noted in forward
//! order (reversed once the graph is complete). Every nn backward kernel overwrites its dx, so
//! where an activation feeds several layers, its first reader writes into the activation's own
//! gradient buffer and each later one into a part of its own, added to the activation's just
//! before its producer's backward step.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::super::nn::{
    Add, BatchNorm2d, Concat, ConcatGrads, Conv2d, ConvGrads, ConvTensors, GlobalAvgPool,
    GpuTensor, Kernels, Linear, LinearGrads, MaxPool2d, NormGrads, Relu, Upsample,
};
use super::super::Gpu;
use crate::spec::models::{Conv, ModelKind, Net, NormMode, Pool};
use crate::{Error, Result};

/// The gradient buffer of an activation and what its readers owe it.
struct Gradient {
    dx: Rc<GpuTensor>,
    readers: Cell<usize>,
    /// The later readers' parts, added to `dx` (a step of the backward pass).
    parts: Rc<RefCell<Vec<Add>>>,
}

/// An activation and its gradient; `grad` is `None` only for a graph's input when no input
/// gradient was asked for.
#[derive(Clone)]
pub(super) struct Value {
    pub x: Rc<GpuTensor>,
    grad: Option<Rc<Gradient>>,
}

impl Value {
    /// The activation's own gradient buffer (its producer's dy).
    pub fn grad(&self) -> Result<&GpuTensor> {
        self.grad.as_deref().map(|g| &*g.dx).ok_or_else(no_gradient)
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
    /// A batch norm and its state-dict name (a frozen backbone's stay in evaluation mode).
    Norm(Rc<BatchNorm2d>, String),
    Relu(Relu),
    /// A residual sum; its output shares its first input's gradient buffer, and its backward
    /// copies that gradient to the second input.
    Add {
        sum: Add,
        handback: Add,
    },
    MaxPool(MaxPool2d),
    AvgPool(GlobalAvgPool),
    Linear(Linear),
    Upsample(Upsample),
    Concat(Concat),
}

impl Layer {
    /// Batch norm with the batch's statistics where `mode` trains it in a `kind` model.
    pub fn forward(&self, pass: &mut wgpu::ComputePass, (mode, kind): (NormMode, ModelKind)) {
        match self {
            Layer::Conv(op) => op.forward(pass),
            Layer::Norm(op, name) => op.forward(pass, mode.trains(kind, name)),
            Layer::Relu(op) => op.forward(pass),
            Layer::Add { sum, .. } => sum.record(pass),
            Layer::MaxPool(op) => op.forward(pass),
            Layer::AvgPool(op) => op.forward(pass),
            Layer::Linear(op) => op.forward(pass),
            Layer::Upsample(op) => op.forward(pass),
            Layer::Concat(op) => op.forward(pass),
        }
    }

    /// `mode`: the one the forward pass ran in (batch norm's gradient differs).
    fn backward(
        &self,
        pass: &mut wgpu::ComputePass,
        (mode, kind): (NormMode, ModelKind),
    ) -> Result<()> {
        match self {
            Layer::Conv(op) => op.backward(pass),
            Layer::Norm(op, name) => op.backward(pass, mode.trains(kind, name)),
            Layer::Relu(op) => op.backward(pass),
            Layer::Add { handback, .. } => {
                handback.record(pass);
                Ok(())
            }
            Layer::MaxPool(op) => op.backward(pass),
            Layer::AvgPool(op) => op.backward(pass),
            Layer::Linear(op) => op.backward(pass),
            Layer::Upsample(op) => op.backward(pass),
            Layer::Concat(op) => op.backward(pass),
        }
    }
}

/// One step of the backward pass: a layer's gradients, or an activation's parts meeting.
pub(super) enum Step {
    Layer(usize),
    Parts(Rc<RefCell<Vec<Add>>>),
}

impl Step {
    pub fn record(
        &self,
        layers: &[Layer],
        pass: &mut wgpu::ComputePass,
        mode: (NormMode, ModelKind),
    ) -> Result<()> {
        match self {
            Step::Layer(i) => layers
                .get(*i)
                .ok_or_else(|| Error::Gpu("model graph: a step names no layer".into()))?
                .backward(pass, mode),
            Step::Parts(parts) => {
                for add in parts.borrow().iter() {
                    add.record(pass);
                }
                Ok(())
            }
        }
    }
}

/// A trained tensor under its state-dict name, with its gradient.
pub(super) struct Param {
    pub name: String,
    pub value: Rc<GpuTensor>,
    pub grad: Rc<GpuTensor>,
}

/// A batch-norm layer under its state-dict name prefix (`.running_mean`, `.running_var`).
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

    /// An activation with `dx` as its gradient buffer (None: no gradient); its readers' parts
    /// meet at this point of the backward pass, so call it right after its producer's layer.
    fn with_gradient(&mut self, x: Rc<GpuTensor>, dx: Option<Rc<GpuTensor>>) -> Value {
        let grad = dx.map(|dx| {
            let parts = Rc::new(RefCell::new(Vec::new()));
            self.backward.push(Step::Parts(parts.clone()));
            Rc::new(Gradient {
                dx,
                readers: Cell::new(0),
                parts,
            })
        });
        Value { x, grad }
    }

    /// The graph's input, with a gradient buffer where `grad`.
    pub fn input(&mut self, shape: &[usize], grad: bool) -> Result<Value> {
        let x = self.tensor("input", shape)?;
        let dx = match grad {
            true => Some(self.tensor("input gradient", shape)?),
            false => None,
        };
        Ok(self.with_gradient(x, dx))
    }

    /// Where the next reader of `v` writes its gradient: `v`'s own buffer for the first, a part
    /// added to it for each later one.
    pub fn read(&mut self, v: &Value) -> Result<Option<Rc<GpuTensor>>> {
        let Some(g) = &v.grad else {
            return Ok(None);
        };
        let n = g.readers.get();
        g.readers.set(n + 1);
        if n == 0 {
            return Ok(Some(g.dx.clone()));
        }
        let part = self.tensor("gradient part", v.x.shape())?;
        g.parts
            .borrow_mut()
            .push(Add::accumulate(self.gpu, self.kernels, &part, &g.dx)?);
        Ok(Some(part))
    }

    /// [`Builder::read`] for a reader that needs the gradient.
    fn read_grad(&mut self, v: &Value) -> Result<Rc<GpuTensor>> {
        self.read(v)?.ok_or_else(no_gradient)
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

    /// An output buffer and its gradient buffer, made before the op that writes them.
    fn output(&self, label: &str, shape: &[usize]) -> Result<(Rc<GpuTensor>, Rc<GpuTensor>)> {
        Ok((
            self.tensor(label, shape)?,
            self.tensor(&format!("d {label}"), shape)?,
        ))
    }

    /// Adds `layer` whose output and gradient buffers were made by [`Builder::output`].
    fn push_made(&mut self, layer: Layer, (x, dx): (Rc<GpuTensor>, Rc<GpuTensor>)) -> Value {
        self.backward.push(Step::Layer(self.layers.len()));
        self.layers.push(layer);
        self.with_gradient(x, Some(dx))
    }
}

impl Net for Builder<'_> {
    type Value = Value;

    fn dims4(&self, x: &Value) -> Result<(usize, usize, usize, usize)> {
        x.dims4()
    }

    fn conv(&mut self, name: &str, input: &Value, conv: Conv) -> Result<Value> {
        let (b, cin, h, w) = input.dims4()?;
        let (Some(out_h), Some(out_w)) = (conv.output(h), conv.output(w)) else {
            return Err(Error::Gpu(format!(
                "{name}: a {k}x{k} convolution does not fit {h}x{w} pixels",
                k = conv.k
            )));
        };
        let (weight, dweight) =
            self.param(format!("{name}.weight"), &[conv.out, cin, conv.k, conv.k])?;
        let bias = match conv.bias {
            true => Some(self.param(format!("{name}.bias"), &[conv.out])?),
            false => None,
        };
        let out = self.output(name, &[b, conv.out, out_h, out_w])?;
        let dx = self.read(input)?;
        let op = Conv2d::new(
            self.gpu,
            self.kernels,
            &ConvTensors {
                x: &input.x,
                weight: &weight,
                bias: bias.as_ref().map(|(v, _)| &**v),
                y: &out.0,
            },
            conv.stride,
            conv.pad,
            Some(ConvGrads {
                dy: &out.1,
                dx: dx.as_deref(),
                dweight: &dweight,
                dbias: bias.as_ref().map(|(_, g)| &**g),
            }),
        )?;
        Ok(self.push_made(Layer::Conv(op), out))
    }

    /// Weight 1, bias 0, running statistics 0 and 1 until imported.
    fn batch_norm(&mut self, name: &str, input: &Value, relu: bool) -> Result<Value> {
        let (_, c, _, _) = input.dims4()?;
        let (gamma, dgamma) = self.param(format!("{name}.weight"), &[c])?;
        gamma.write(self.gpu, &vec![1.0; c])?;
        let (beta, dbeta) = self.param(format!("{name}.bias"), &[c])?;
        let out = self.output(name, input.x.shape())?;
        let dx = self.read_grad(input)?;
        let op = Rc::new(BatchNorm2d::new(
            self.gpu,
            self.kernels,
            &input.x,
            &gamma,
            &beta,
            &out.0,
            Some(NormGrads {
                dy: &out.1,
                dx: &dx,
                dgamma: &dgamma,
                dbeta: &dbeta,
            }),
        )?);
        self.norms.push(Norm {
            name: name.to_string(),
            channels: c,
            layer: op.clone(),
        });
        let y = self.push_made(Layer::Norm(op, name.to_string()), out);
        match relu {
            true => self.relu(&y),
            false => Ok(y),
        }
    }

    fn relu(&mut self, input: &Value) -> Result<Value> {
        let out = self.output("relu", input.x.shape())?;
        let dx = self.read_grad(input)?;
        let op = Relu::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.0,
            Some((&out.1, &dx)),
        )?;
        Ok(self.push_made(Layer::Relu(op), out))
    }

    fn add(&mut self, a: &Value, b: &Value) -> Result<Value> {
        let sum_x = self.tensor("residual", a.x.shape())?;
        let da = self.read_grad(a)?;
        let db = self.read_grad(b)?;
        let sum = Add::new(self.gpu, self.kernels, &a.x, &b.x, &sum_x)?;
        let handback = Add::copy(self.gpu, self.kernels, &da, &db)?;
        self.backward.push(Step::Layer(self.layers.len()));
        self.layers.push(Layer::Add { sum, handback });
        // dL/d sum is dL/da: the sum's readers write into a's gradient
        Ok(self.with_gradient(sum_x, Some(da)))
    }

    fn max_pool(&mut self, input: &Value, pool: Pool) -> Result<Value> {
        let (b, c, h, w) = input.dims4()?;
        let (Some(out_h), Some(out_w)) = (pool.output(h), pool.output(w)) else {
            return Err(Error::Gpu(format!(
                "a {k}x{k} max pool does not fit {h}x{w} pixels",
                k = pool.k
            )));
        };
        let out = self.output("max pool", &[b, c, out_h, out_w])?;
        let dx = self.read_grad(input)?;
        let op = MaxPool2d::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.0,
            (pool.k, pool.stride, pool.pad),
            Some((&out.1, &dx)),
        )?;
        Ok(self.push_made(Layer::MaxPool(op), out))
    }

    fn mean_pool(&mut self, input: &Value) -> Result<Value> {
        let (b, c, _, _) = input.dims4()?;
        let out = self.output("average pool", &[b, c])?;
        let dx = self.read_grad(input)?;
        let op = GlobalAvgPool::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.0,
            Some((&out.1, &dx)),
        )?;
        Ok(self.push_made(Layer::AvgPool(op), out))
    }

    fn linear(&mut self, name: &str, input: &Value, outputs: usize) -> Result<Value> {
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
        let out = self.output(name, &[batch, outputs])?;
        let dx = self.read_grad(input)?;
        let op = Linear::new(
            self.gpu,
            self.kernels,
            &input.x,
            &weight,
            &bias,
            &out.0,
            Some(LinearGrads {
                dy: &out.1,
                dx: Some(&dx),
                dweight: &dweight,
                dbias: &dbias,
            }),
        )?;
        Ok(self.push_made(Layer::Linear(op), out))
    }

    fn upsample(&mut self, input: &Value, (height, width): (usize, usize)) -> Result<Value> {
        let (b, c, _, _) = input.dims4()?;
        let out = self.output("upsample", &[b, c, height, width])?;
        let dx = self.read_grad(input)?;
        let op = Upsample::new(
            self.gpu,
            self.kernels,
            &input.x,
            &out.0,
            Some((&out.1, &dx)),
        )?;
        Ok(self.push_made(Layer::Upsample(op), out))
    }

    fn concat(&mut self, parts: &[Value]) -> Result<Value> {
        let first = parts
            .first()
            .ok_or_else(|| Error::Gpu("concat: no parts".into()))?;
        let (b, _, h, w) = first.dims4()?;
        let mut channels = 0;
        for part in parts {
            channels += part.dims4()?.1;
        }
        let out = self.output("concat", &[b, channels, h, w])?;
        let xs: Vec<&GpuTensor> = parts.iter().map(|p| &*p.x).collect();
        let dxs = parts
            .iter()
            .map(|p| self.read_grad(p))
            .collect::<Result<Vec<_>>>()?;
        let dx_refs: Vec<&GpuTensor> = dxs.iter().map(|d| &**d).collect();
        let op = Concat::new(
            self.gpu,
            self.kernels,
            &xs,
            &out.0,
            Some(ConcatGrads {
                dy: &out.1,
                dxs: dx_refs,
                accumulate: false,
            }),
        )?;
        Ok(self.push_made(Layer::Concat(op), out))
    }
}
