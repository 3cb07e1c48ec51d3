//! A fully connected layer y = x W^T + b (W as (out, in), PyTorch's layout) and its gradients,
//! each one strided product of gemm.wgsl.

use super::super::Gpu;
use super::gemm::{product, Operand};
use super::{expect_shape, shape_error, GpuTensor, Kernels, Passes};
use crate::Result;

/// Where the backward pass reads the upstream gradient and writes the others; `dx` is `None`
/// where nothing upstream needs it.
pub struct LinearGrads<'a> {
    pub dy: &'a GpuTensor,
    pub dx: Option<&'a GpuTensor>,
    pub dweight: &'a GpuTensor,
    pub dbias: &'a GpuTensor,
}

pub struct Linear(Passes);

impl Linear {
    /// Builds the layer for x (B, in), weight (out, in), bias (out) and y (B, out).
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        weight: &GpuTensor,
        bias: &GpuTensor,
        y: &GpuTensor,
        grads: Option<LinearGrads>,
    ) -> Result<Self> {
        let op = "linear";
        let (batch, inputs) = match *x.shape() {
            [b, i] => (b, i),
            _ => {
                return Err(shape_error(
                    op,
                    format!("x must be (B, in), not {:?}", x.shape()),
                ))
            }
        };
        let outputs = weight.shape().first().copied().unwrap_or(0);
        expect_shape(op, "weight", weight, &[outputs, inputs])?;
        expect_shape(op, "bias", bias, &[outputs])?;
        expect_shape(op, "y", y, &[batch, outputs])?;
        let forward = vec![product(
            gpu,
            kernels,
            (batch, outputs, inputs),
            Operand {
                buffer: x.buffer(),
                row: inputs,
                col: 1,
            },
            Operand {
                buffer: weight.buffer(),
                row: 1,
                col: inputs,
            },
            (y.buffer(), outputs),
            Some(bias.buffer()),
        )?];
        let backward = match grads {
            None => None,
            Some(g) => {
                expect_shape(op, "dy", g.dy, &[batch, outputs])?;
                expect_shape(op, "dweight", g.dweight, &[outputs, inputs])?;
                expect_shape(op, "dbias", g.dbias, &[outputs])?;
                let dy = || Operand {
                    buffer: g.dy.buffer(),
                    row: outputs,
                    col: 1,
                };
                let mut steps = vec![
                    // dW = dy^T x
                    product(
                        gpu,
                        kernels,
                        (outputs, inputs, batch),
                        Operand {
                            buffer: g.dy.buffer(),
                            row: 1,
                            col: outputs,
                        },
                        Operand {
                            buffer: x.buffer(),
                            row: inputs,
                            col: 1,
                        },
                        (g.dweight.buffer(), inputs),
                        None,
                    )?,
                ];
                // db = 1^T dy: a stride-0 operand reads one 1.0 for every element
                let one = gpu.storage_buffer("one", &[1.0]);
                steps.push(product(
                    gpu,
                    kernels,
                    (1, outputs, batch),
                    Operand {
                        buffer: &one,
                        row: 0,
                        col: 0,
                    },
                    dy(),
                    (g.dbias.buffer(), outputs),
                    None,
                )?);
                if let Some(dx) = g.dx {
                    expect_shape(op, "dx", dx, &[batch, inputs])?;
                    // dx = dy W
                    steps.push(product(
                        gpu,
                        kernels,
                        (batch, inputs, outputs),
                        dy(),
                        Operand {
                            buffer: weight.buffer(),
                            row: inputs,
                            col: 1,
                        },
                        (dx.buffer(), inputs),
                        None,
                    )?);
                }
                Some(steps)
            }
        };
        Ok(Self(Passes::new(op, forward, backward)))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    /// Records dW, db (and dx); an error where the layer was built without gradients.
    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}
