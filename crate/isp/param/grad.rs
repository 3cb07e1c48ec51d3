//! Gradients of a scalar loss through the ISP: for an upstream gradient G = dL/d(output), the
//! vector-Jacobian products with respect to the raw input, every stage and every parameter.

use candle_core::{Tensor, Var};

use super::forward::forward;
use super::IspParams;
use crate::spec::isp::Stage;
use crate::{Error, Result};

/// Outputs and gradients of one forward/backward pass.
pub struct Gradients {
    pub output: Tensor,
    /// (stage, its value, dL/d stage), in pipeline order.
    pub stages: Vec<(Stage, Tensor, Tensor)>,
    /// dL/d raw, (B, H, W).
    pub raw: Tensor,
    /// (parameter name, dL/d parameter), in the paper's order.
    pub params: Vec<(&'static str, Tensor)>,
}

/// Runs the ISP on `raw` and backpropagates `upstream` (same shape as the output).
pub fn gradients(
    raw: &Tensor,
    params: &IspParams,
    upstream: &Tensor,
    batch_norm: bool,
) -> Result<Gradients> {
    let raw_var = Var::from_tensor(raw)?;
    let fwd = forward(raw_var.as_tensor(), params, batch_norm, true)?;
    if fwd.output.dims() != upstream.dims() {
        return Err(Error::invalid(format!(
            "the upstream gradient has shape {:?}, the ISP output {:?}",
            upstream.dims(),
            fwd.output.dims()
        )));
    }
    let loss = fwd
        .output
        .mul(&upstream.to_dtype(fwd.output.dtype())?)?
        .sum_all()?;
    let grads = loss.backward()?;
    let grad_of = |t: &Tensor| -> Result<Tensor> {
        Ok(match grads.get(t) {
            Some(g) => g.clone(),
            // a tensor the loss does not depend on (e.g. a stage cut off by clipping everywhere)
            None => t.zeros_like()?,
        })
    };
    let stages = Stage::ALL
        .iter()
        .zip(&fwd.stages)
        .zip(&fwd.taps)
        .map(|((s, t), tap)| Ok((*s, t.detach(), grad_of(tap.as_tensor())?)))
        .collect::<Result<_>>()?;
    Ok(Gradients {
        raw: grad_of(raw_var.as_tensor())?,
        params: params
            .named()
            .map(|(n, v)| Ok((n, grad_of(v.as_tensor())?)))
            .collect::<Result<_>>()?,
        stages,
        output: fwd.output.detach(),
    })
}
