//! BatchNorm2d (affine, running statistics) as one fused candle op with a hand-written adjoint:
//! candle-nn's version is a chain of ~12 whole-tensor ops each way, which dominates a small
//! network's step on the CPU. Names and semantics are PyTorch's (momentum 0.1, eps 1e-5, running
//! variance unbiased, normalisation with the biased batch variance).

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor, Var};
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

/// Sums of `f` over the pairs of `a` and `b` in f64, in eight interleaved partial sums: the adds
/// of one running sum each wait on the last, so a single sum runs at the add's latency; eight
/// overlap (and vectorise). The grouping depends on the length alone: the same bits at any
/// thread count.
fn lane_sums<const K: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f64; K]) -> [f64; K] {
    const LANES: usize = 8;
    let len = a.len().min(b.len());
    let whole = len / LANES * LANES;
    let mut acc = [[0f64; K]; LANES];
    for (ca, cb) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for ((acc, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            let v = f(x, y);
            (0..K).for_each(|k| acc[k] += v[k]);
        }
    }
    let mut total = [0f64; K];
    for (&x, &y) in a[whole..len].iter().zip(&b[whole..len]) {
        let v = f(x, y);
        (0..K).for_each(|k| total[k] += v[k]);
    }
    for lane in acc {
        (0..K).for_each(|k| total[k] += lane[k]);
    }
    total
}

/// Per channel of (B, C, HW): mean and biased variance, in f64.
fn stats(x: &[f32], (b, c, hw): (usize, usize, usize)) -> Vec<(f64, f64)> {
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let plane = |bi: usize| &x[(bi * c + ch) * hw..(bi * c + ch + 1) * hw];
            let n = (b * hw) as f64;
            let mean = (0..b)
                .map(|bi| lane_sums(plane(bi), plane(bi), |v, _| [v as f64])[0])
                .sum::<f64>()
                / n;
            let var = (0..b)
                .map(|bi| lane_sums(plane(bi), plane(bi), |v, _| [(v as f64 - mean).powi(2)])[0])
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

/// y = x * scale + shift per channel of (B, C, HW), then ReLU where `relu`: the one pass over
/// the activation that training (the batch's statistics) and evaluation (the running ones) share.
fn normalise(
    x: &[f32],
    (c, hw): (usize, usize),
    coefficients: &[(f64, f64)],
    relu: bool,
) -> Vec<f32> {
    let floor = if relu { 0.0 } else { f32::NEG_INFINITY };
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(hw)
        .zip(x.par_chunks(hw))
        .enumerate()
        .for_each(|(p, (o, xs))| {
            let (scale, shift) = coefficients[p % c];
            for (o, &v) in o.iter_mut().zip(xs) {
                *o = ((v as f64 * scale + shift) as f32).max(floor);
            }
        });
    out
}

/// The output's gradient where a fused ReLU let the output through (positive), else as it is.
fn through_relu(relu: bool, grad: &Tensor, output: &Tensor) -> candle_core::Result<Tensor> {
    let grad = grad.contiguous()?;
    match relu {
        true => grad.apply_op2_no_bwd(output, &ReluGrad),
        false => Ok(grad),
    }
}

/// Evaluation-mode forward (the running statistics), optionally followed by ReLU, as one pass
/// instead of candle's broadcast product, sum and ReLU. Its backward is the input's alone: the
/// lab reads the weights of every layer in evaluation mode detached (`TaskModel::forward`).
struct Eval {
    /// Per channel: scale and shift.
    coefficients: Vec<(f64, f64)>,
    relu: bool,
}

impl CustomOp1 for Eval {
    fn name(&self) -> &'static str {
        "batch_norm_eval"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, c, hw) = bchw(l)?;
        if c != self.coefficients.len() {
            candle_core::bail!(
                "batch norm of {} channels given {c}",
                self.coefficients.len()
            );
        }
        let out = normalise(f32_slice(s, l)?, (c, hw), &self.coefficients, self.relu);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let grad = through_relu(self.relu, grad, res)?;
        let scale: Vec<f32> = self.coefficients.iter().map(|&(s, _)| s as f32).collect();
        let shape = (1, scale.len(), 1, 1);
        let scale = Tensor::from_vec(scale, shape, grad.device())?;
        Ok(Some(grad.broadcast_mul(&scale)?))
    }
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
        let coefficients: Vec<(f64, f64)> = st
            .iter()
            .zip(gamma.iter().zip(beta))
            .map(|(&(mean, var), (&g, &b))| {
                let scale = g as f64 / (var + EPS).sqrt();
                (scale, b as f64 - mean * scale)
            })
            .collect();
        let out = normalise(x, (c, hw), &coefficients, self.relu);
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
        let grad = through_relu(self.relu, grad, res)?;
        // the forward's batch statistics, not computed again
        let stats = self
            .stats
            .lock()
            .map_err(|_| candle_core::Error::Msg("batch norm statistics poisoned".into()))?
            .clone();
        let flat = x.apply_op3_no_bwd(gamma, &grad, &Backward { stats })?;
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
struct Backward {
    /// The forward's per-channel mean and biased variance.
    stats: Vec<(f64, f64)>,
}

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
        let (b, c, hw) = bchw(l1)?;
        let st = &self.stats;
        if st.len() != c {
            candle_core::bail!(
                "batch norm: {} channels' statistics for {c} channels",
                st.len()
            );
        }
        let n = (b * hw) as f64;
        // per channel: sum(g), sum(g x_hat)
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, var) = st[ch];
                let inv = 1.0 / (var + EPS).sqrt();
                (0..b)
                    .map(|bi| {
                        let at = (bi * c + ch) * hw;
                        let (g, x) = (&g[at..at + hw], &x[at..at + hw]);
                        lane_sums(g, x, |gv, xv| {
                            [gv as f64, gv as f64 * (xv as f64 - mean) * inv]
                        })
                    })
                    .fold((0.0, 0.0), |(sg, sgx), [a, b]| (sg + a, sgx + b))
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
            let values = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.to_vec1::<f32>()?) };
            let (mean, var) = (values(&self.running_mean)?, values(&self.running_var)?);
            let (weight, bias) = (values(&self.weight)?, values(&self.bias)?);
            let coefficients = (0..mean.len())
                .map(|ch| {
                    let scale = weight[ch] as f64 / (var[ch] as f64 + EPS).sqrt();
                    (scale, bias[ch] as f64 - mean[ch] as f64 * scale)
                })
                .collect();
            let op = Eval { coefficients, relu };
            return Ok(x.contiguous()?.apply_op1(op)?);
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

    /// Our batch norm and candle-nn's over 4 channels, each with its variables, an input and an
    /// output gradient.
    struct Pair {
        x: Var,
        g: Tensor,
        ours: BatchNorm2d,
        ours_map: VarMap,
        theirs: candle_nn::BatchNorm,
        theirs_map: VarMap,
    }

    impl Pair {
        fn new() -> Self {
            let dev = Device::Cpu;
            let randn = |mean| Tensor::randn(mean, 2.0f32, (3, 4, 5, 6), &dev).unwrap();
            let (ours_map, theirs_map) = (VarMap::new(), VarMap::new());
            let vb = |map| VarBuilder::from_varmap(map, DType::F32, &dev);
            let config = candle_nn::BatchNormConfig::default();
            Self {
                x: Var::from_tensor(&randn(0.5)).unwrap(),
                g: randn(0.0),
                ours: BatchNorm2d::new(4, vb(&ours_map)).unwrap(),
                theirs: candle_nn::batch_norm(4, config, vb(&theirs_map)).unwrap(),
                ours_map,
                theirs_map,
            }
        }
    }

    /// Against candle-nn's BatchNorm: outputs, gradients and running statistics.
    #[test]
    fn matches_candle_nn() {
        let p = Pair::new();
        let a = p.ours.forward(p.x.as_tensor(), true, false).unwrap();
        let b = candle_nn::ModuleT::forward_t(&p.theirs, p.x.as_tensor(), true).unwrap();
        assert!(diff(&a, &b) < 1e-4);
        let ga = a.mul(&p.g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = b.mul(&p.g).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(
            diff(
                ga.get(p.x.as_tensor()).unwrap(),
                gb.get(p.x.as_tensor()).unwrap()
            ) < 1e-3
        );
        let get = |m: &VarMap, n: &str| m.data().lock().unwrap()[n].as_tensor().clone();
        for name in ["weight", "bias"] {
            assert!(
                diff(
                    ga.get(&get(&p.ours_map, name)).unwrap(),
                    gb.get(&get(&p.theirs_map, name)).unwrap()
                ) < 1e-3,
                "{name}"
            );
        }
        // both keep PyTorch's unbiased running variance
        for name in ["running_mean", "running_var"] {
            assert!(
                diff(&get(&p.ours_map, name), &get(&p.theirs_map, name)) < 1e-5,
                "{name}"
            );
        }
    }

    /// Evaluation mode (the running statistics after a training step) against candle-nn's, with
    /// and without the fused ReLU: values and the input's gradient.
    #[test]
    fn evaluation_matches_candle_nn() {
        let p = Pair::new();
        let dev = Device::Cpu;
        // running statistics away from (0, 1), and weights away from (1, 0)
        let shifted = (p.x.as_tensor() * 3.0).unwrap();
        p.ours.forward(&shifted, true, false).unwrap();
        candle_nn::ModuleT::forward_t(&p.theirs, &shifted, true).unwrap();
        for map in [&p.ours_map, &p.theirs_map] {
            let data = map.data().lock().unwrap();
            data["weight"]
                .set(&Tensor::new(&[0.5f32, 2.0, -1.0, 1.5], &dev).unwrap())
                .unwrap();
            data["bias"]
                .set(&Tensor::new(&[0.1f32, -0.3, 0.0, 2.0], &dev).unwrap())
                .unwrap();
        }
        for relu in [false, true] {
            let a = p.ours.forward(p.x.as_tensor(), false, relu).unwrap();
            let b = candle_nn::ModuleT::forward_t(&p.theirs, p.x.as_tensor(), false).unwrap();
            let b = if relu { b.relu().unwrap() } else { b };
            assert!(diff(&a, &b) < 1e-5, "relu {relu}");
            let ga = a.mul(&p.g).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = b.mul(&p.g).unwrap().sum_all().unwrap().backward().unwrap();
            let (ga, gb) = (
                ga.get(p.x.as_tensor()).unwrap(),
                gb.get(p.x.as_tensor()).unwrap(),
            );
            assert!(diff(ga, gb) < 1e-5, "relu {relu}");
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
