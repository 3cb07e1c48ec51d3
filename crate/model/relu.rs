//! ReLU's fused forms on the CPU. A residual block ends in relu(a + b): as candle ops that is an
//! add and a ReLU forward, and a backward of five whole-tensor passes (a zeroed tensor, a
//! comparison, a cast, a product, the sum into the add's gradient) before the add's own. As one
//! op it is one pass each way, with PyTorch's gradient (none where the output is 0).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_slices::f32_slice;
use crate::Result;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// What [`pointwise`] computes of a pair of values.
#[derive(Clone, Copy)]
enum Pass {
    /// relu(a + b).
    SumRelu,
    /// a where b > 0, else 0: ReLU's gradient a through the output b.
    Gate,
}

/// `pass` over two slices of one length, in parallel chunks (one loop for both passes keeps the
/// page's module small).
fn pointwise((a, b): (&[f32], &[f32]), pass: Pass) -> Vec<f32> {
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, o)| {
        let pairs = o.iter_mut().zip(&a[i * CHUNK..]).zip(&b[i * CHUNK..]);
        match pass {
            Pass::SumRelu => pairs.for_each(|((o, &a), &b)| *o = (a + b).max(0.0)),
            Pass::Gate => pairs.for_each(|((o, &g), &y)| *o = if y > 0.0 { g } else { 0.0 }),
        }
    });
    out
}

/// relu(a + b) for two tensors of one shape.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(a.apply_op2(b, AddRelu)?)
}

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "add_relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "a residual sum of a {:?} and a {:?} tensor",
                l1.shape(),
                l2.shape()
            );
        }
        let out = pointwise((f32_slice(s1, l1)?, f32_slice(s2, l2)?), Pass::SumRelu);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let passed = grad.contiguous()?.apply_op2_no_bwd(res, &ReluGrad)?;
        Ok((Some(passed.clone()), Some(passed)))
    }
}

/// (grad, output) -> grad where the output is positive, else 0.
pub(super) struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "relu_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "relu_grad: a {:?} gradient for a {:?} output",
                l1.shape(),
                l2.shape()
            );
        }
        let out = pointwise((f32_slice(s1, l1)?, f32_slice(s2, l2)?), Pass::Gate);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    /// Values and both inputs' gradients as candle's add and ReLU give them (random inputs: no
    /// sum is exactly 0, where candle's ReLU passes the gradient and PyTorch's does not), with
    /// the inputs read again after the sum, so the gradients add to other readers' shares.
    #[test]
    fn matches_candle_add_then_relu() -> Result<()> {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 70, 90), &dev)?)?;
        let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 70, 90), &dev)?)?;
        let weights = Tensor::randn(0f32, 1.0, (2, 3, 70, 90), &dev)?;
        let objective = |y: Tensor| -> Result<Tensor> {
            let reread = (a.as_tensor() * 0.5)?.sum_all()?;
            Ok(((y * &weights)?.sum_all()? + reread)?)
        };
        let fused = add_relu(&a, &b)?;
        let reference = (a.as_tensor() + b.as_tensor())?.relu()?;
        let values = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1()?) };
        assert_eq!(values(&fused)?, values(&reference)?);
        let ours = objective(fused)?.backward()?;
        let theirs = objective(reference)?.backward()?;
        for v in [&a, &b] {
            let grad = |g: &candle_core::backprop::GradStore| -> Result<Vec<f32>> {
                values(g.get(v.as_tensor()).expect("a gradient"))
            };
            assert_eq!(grad(&ours)?, grad(&theirs)?);
        }
        let mismatched = Tensor::zeros((2, 3, 70, 89), candle_core::DType::F32, &dev)?;
        assert!(add_relu(&a, &mismatched).is_err());
        Ok(())
    }
}
