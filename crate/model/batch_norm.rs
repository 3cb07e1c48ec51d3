//! BatchNorm2d (affine, running statistics) as one fused candle op with a hand-written adjoint:
//! candle-nn's version is a chain of ~12 whole-tensor ops each way, which dominates a small
//! network's step on the CPU. Names and semantics are PyTorch's (momentum 0.1, eps 1e-5, running
//! variance unbiased, normalisation with the biased batch variance).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, Var};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::relu::ReluGrad;
use crate::cpu_slices::f32_slice;
use crate::spec::isp::{BN_EPS as EPS, BN_MOMENTUM as MOMENTUM};
use crate::Result;

pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
}

/// Per channel of (B, C, HW): mean and biased variance, in f64.
fn stats(x: &[f32], (b, c, hw): (usize, usize, usize)) -> Vec<(f64, f64)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let plane = |bi: usize| &x[(bi * c + ch) * hw..(bi * c + ch + 1) * hw];
            let n = (b * hw) as f64;
            let mean = (0..b)
                .map(|bi| plane(bi).iter().map(|&v| v as f64).sum::<f64>())
                .sum::<f64>()
                / n;
            let var = (0..b)
                .map(|bi| {
                    plane(bi)
                        .iter()
                        .map(|&v| (v as f64 - mean).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / n;
            (mean, var)
        })
        .collect()
}

fn bchw(l: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok((b, c, h * w))
}

/// Training-mode forward, optionally followed by ReLU in the same pass (so the pre-activation is
/// never stored: a U-Net step at 256 px keeps a third fewer activations); the batch statistics
/// are left in `stats` for the running averages.
struct Train {
    stats: Arc<Mutex<Vec<(f64, f64)>>>,
    relu: bool,
}

impl CustomOp3 for Train {
    fn name(&self) -> &'static str {
        "batch_norm_train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, gamma, beta) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let dims @ (_, c, hw) = bchw(l1)?;
        let st = stats(x, dims);
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(hw)
            .zip(x.par_chunks(hw))
            .enumerate()
            .for_each(|(p, (o, xs))| {
                let ch = p % c;
                let (mean, var) = st[ch];
                let scale = gamma[ch] as f64 / (var + EPS).sqrt();
                let shift = beta[ch] as f64 - mean * scale;
                let floor = if self.relu { 0.0 } else { f32::NEG_INFINITY };
                for (o, &v) in o.iter_mut().zip(xs) {
                    *o = ((v as f64 * scale + shift) as f32).max(floor);
                }
            });
        *self
            .stats
            .lock()
            .map_err(|_| candle_core::Error::Msg("batch norm statistics poisoned".into()))? = st;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = x.elem_count();
        let c = x.dim(1)?;
        let grad = if self.relu {
            // the gradient passes where the output is positive (where ReLU let it through)
            grad.contiguous()?.apply_op2_no_bwd(res, &ReluGrad)?
        } else {
            grad.contiguous()?
        };
        let flat = x.apply_op3_no_bwd(gamma, &grad, &Backward)?;
        let g_x = flat.narrow(0, 0, n)?.reshape(x.shape())?;
        Ok((
            Some(g_x),
            Some(flat.narrow(0, n, c)?),
            Some(flat.narrow(0, n + c, c)?),
        ))
    }
}

/// dL/dx, dL/dgamma and dL/dbeta, concatenated flat: x_hat = (x - mean) / sigma,
/// dx = gamma / sigma (g - mean(g) - x_hat mean(g x_hat)), dgamma = sum(g x_hat), dbeta = sum(g).
struct Backward;

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "batch_norm_backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, gamma, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let dims @ (b, c, hw) = bchw(l1)?;
        let st = stats(x, dims);
        let n = (b * hw) as f64;
        // per channel: sum(g), sum(g x_hat)
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, var) = st[ch];
                let inv = 1.0 / (var + EPS).sqrt();
                let (mut sg, mut sgx) = (0.0, 0.0);
                for bi in 0..b {
                    let at = (bi * c + ch) * hw;
                    for (&gv, &xv) in g[at..at + hw].iter().zip(&x[at..at + hw]) {
                        sg += gv as f64;
                        sgx += gv as f64 * (xv as f64 - mean) * inv;
                    }
                }
                (sg, sgx)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * c];
        out[..x.len()]
            .par_chunks_mut(hw)
            .enumerate()
            .for_each(|(p, o)| {
                let ch = p % c;
                let (mean, var) = st[ch];
                let inv = 1.0 / (var + EPS).sqrt();
                let (sg, sgx) = sums[ch];
                let k = gamma[ch] as f64 * inv;
                let at = p * hw;
                for ((o, &gv), &xv) in o.iter_mut().zip(&g[at..at + hw]).zip(&x[at..at + hw]) {
                    let x_hat = (xv as f64 - mean) * inv;
                    *o = (k * (gv as f64 - sg / n - x_hat * sgx / n)) as f32;
                }
            });
        for ch in 0..c {
            out[x.len() + ch] = sums[ch].1 as f32;
            out[x.len() + c + ch] = sums[ch].0 as f32;
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

impl BatchNorm2d {
    pub fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        let var = |name: &str, init: f64| -> Result<Var> {
            let t = vb.get_with_hints(c, name, candle_nn::Init::Const(init))?;
            Ok(Var::from_tensor(&t)?)
        };
        Ok(Self {
            weight: vb.get_with_hints(c, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(c, "bias", candle_nn::Init::Const(0.0))?,
            running_mean: var("running_mean", 0.0)?,
            running_var: var("running_var", 1.0)?,
        })
    }

    /// Batch norm of (B, C, H, W), then ReLU where `relu`.
    pub fn forward(&self, x: &Tensor, train: bool, relu: bool) -> Result<Tensor> {
        if !train {
            let c = x.dim(1)?;
            let shape = (1, c, 1, 1);
            let inv = (self.running_var.as_tensor() + EPS)?.sqrt()?.recip()?;
            let scale = (&self.weight * inv)?;
            let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?;
            let y = x
                .broadcast_mul(&scale.reshape(shape)?)?
                .broadcast_add(&shift.reshape(shape)?)?;
            return Ok(if relu { y.relu()? } else { y });
        }
        let stats = Arc::new(Mutex::new(Vec::new()));
        let y = x.contiguous()?.apply_op3(
            &self.weight,
            &self.bias,
            Train {
                stats: stats.clone(),
                relu,
            },
        )?;
        let st = stats
            .lock()
            .map_err(|_| crate::Error::invalid("batch norm statistics poisoned"))?
            .clone();
        let n = (x.elem_count() / x.dim(1)?) as f64;
        let update = |running: &Var, values: Vec<f32>| -> Result<()> {
            let batch = Tensor::from_vec(values, running.shape(), running.device())?;
            running.set(&((running.as_tensor() * (1.0 - MOMENTUM))? + (batch * MOMENTUM)?)?)?;
            Ok(())
        };
        update(&self.running_mean, st.iter().map(|s| s.0 as f32).collect())?;
        // PyTorch keeps the unbiased variance as the running estimate
        update(
            &self.running_var,
            st.iter()
                .map(|s| (s.1 * n / (n - 1.0).max(1.0)) as f32)
                .collect(),
        )?;
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::tests::diff;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// Against candle-nn's BatchNorm: outputs, gradients and running statistics.
    #[test]
    fn matches_candle_nn() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0.5f32, 2.0, (3, 4, 5, 6), &dev).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (3, 4, 5, 6), &dev).unwrap();
        let (ours_map, theirs_map) = (VarMap::new(), VarMap::new());
        let ours =
            BatchNorm2d::new(4, VarBuilder::from_varmap(&ours_map, DType::F32, &dev)).unwrap();
        let theirs = candle_nn::batch_norm(
            4,
            candle_nn::BatchNormConfig::default(),
            VarBuilder::from_varmap(&theirs_map, DType::F32, &dev),
        )
        .unwrap();
        let a = ours.forward(x.as_tensor(), true, false).unwrap();
        let b = candle_nn::ModuleT::forward_t(&theirs, x.as_tensor(), true).unwrap();
        assert!(diff(&a, &b) < 1e-4);
        let ga = a.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = b.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(
            diff(
                ga.get(x.as_tensor()).unwrap(),
                gb.get(x.as_tensor()).unwrap()
            ) < 1e-3
        );
        let get = |m: &VarMap, n: &str| m.data().lock().unwrap()[n].as_tensor().clone();
        for name in ["weight", "bias"] {
            assert!(
                diff(
                    ga.get(&get(&ours_map, name)).unwrap(),
                    gb.get(&get(&theirs_map, name)).unwrap()
                ) < 1e-3,
                "{name}"
            );
        }
        // both keep PyTorch's unbiased running variance
        for name in ["running_mean", "running_var"] {
            assert!(
                diff(&get(&ours_map, name), &get(&theirs_map, name)) < 1e-5,
                "{name}"
            );
        }
    }

    /// The fused ReLU: values and gradients as batch norm followed by candle's relu.
    #[test]
    fn fused_relu_matches_batch_norm_then_relu() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0.5f32, 2.0, (2, 3, 4, 5), &dev).unwrap()).unwrap();
        let g = Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap();
        let map = VarMap::new();
        let bn = BatchNorm2d::new(3, VarBuilder::from_varmap(&map, DType::F32, &dev)).unwrap();
        let fused = bn.forward(x.as_tensor(), true, true).unwrap();
        let split = bn
            .forward(x.as_tensor(), true, false)
            .unwrap()
            .relu()
            .unwrap();
        assert!(diff(&fused, &split) < 1e-6);
        let ga = fused
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = split
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (a, b) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        assert!(diff(a, b) < 1e-5);
        assert!(fused.min_all().unwrap().to_scalar::<f32>().unwrap() >= 0.0);
    }
}
