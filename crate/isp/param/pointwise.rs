//! The ISP's last steps as fused candle custom ops with hand-written adjoints: clip + gamma, and
//! batch norm. As chains of generic candle ops they take ~20 passes over the image forward and
//! backward; fused they take two or three.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_slices::contiguous;
use crate::spec::isp::{BN_EPS, CLIP_MAX, CLIP_MIN};
use crate::Result;

/// exp(log(clip(x, CLIP_MIN, CLIP_MAX)) / gamma), the gradient passing only where
/// CLIP_MIN <= x <= CLIP_MAX (torch.clip's rule, bounds included). `gamma` has one element.
pub fn clip_gamma(x: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op2(&gamma.contiguous()?, ClipGamma)?)
}

/// `x.clamp(lo, hi)` as candle computes it (maximum, then minimum: NaN stays NaN) and its gradient
/// as candle's backward of that chain gives it: 1 inside, 1/2 at a bound (a tie with the bound,
/// whose share goes nowhere), 0 outside. One op, not candle's two broadcast binary ops, whose
/// code alone took 79 KB of the page module.
pub fn clamp(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1(Clamp { lo, hi })?)
}

/// BatchNorm2d(C, affine=False) in training mode on (B, C, H, W): batch statistics, biased
/// variance, eps BN_EPS.
pub fn batch_norm(x: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1(BatchNorm)?)
}

/// f64 values of a CPU storage (the ops compute in f64 and store back in the input's dtype).
fn values(s: &CpuStorage, l: &Layout) -> candle_core::Result<Vec<f64>> {
    match s {
        CpuStorage::F32(v) => Ok(contiguous(v, l)?.iter().map(|&x| x as f64).collect()),
        CpuStorage::F64(v) => Ok(contiguous(v, l)?.to_vec()),
        _ => candle_core::bail!("expected f32 or f64"),
    }
}

fn storage_like(s: &CpuStorage, v: Vec<f64>) -> CpuStorage {
    match s {
        CpuStorage::F32(_) => CpuStorage::F32(v.into_iter().map(|x| x as f32).collect()),
        _ => CpuStorage::F64(v),
    }
}

#[derive(Clone, Copy)]
struct Clamp {
    lo: f64,
    hi: f64,
}

impl Clamp {
    /// The bounds in the storage's dtype, as candle converts its scalars.
    fn bounds(&self, s: &CpuStorage) -> (f64, f64) {
        match s {
            CpuStorage::F32(_) => (self.lo as f32 as f64, self.hi as f32 as f64),
            _ => (self.lo, self.hi),
        }
    }
}

impl CustomOp1 for Clamp {
    fn name(&self) -> &'static str {
        "clamp"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (lo, hi) = self.bounds(s);
        let out = values(s, l)?
            .into_iter()
            .map(|x| {
                let x = if x < lo { lo } else { x };
                if x > hi {
                    hi
                } else {
                    x
                }
            })
            .collect();
        Ok((storage_like(s, out), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let share = x.apply_op1_no_bwd(&ClampShare(*self))?;
        Ok(Some(grad.mul(&share)?))
    }
}

/// The share of the gradient `Clamp` passes at each value.
struct ClampShare(Clamp);

impl CustomOp1 for ClampShare {
    fn name(&self) -> &'static str {
        "clamp_share"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (lo, hi) = self.0.bounds(s);
        let share = values(s, l)?
            .into_iter()
            .map(|x| match x {
                x if x == lo || x == hi => 0.5,
                x if lo < x && x < hi => 1.0,
                _ => 0.0,
            })
            .collect();
        Ok((storage_like(s, share), l.shape().clone()))
    }
}

struct ClipGamma;

impl CustomOp2 for ClipGamma {
    fn name(&self) -> &'static str {
        "clip_gamma"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let inv_gamma = 1.0 / values(s2, l2)?[0];
        let out = match s1 {
            CpuStorage::F32(v) => {
                let inv = inv_gamma as f32;
                let (lo, hi) = (CLIP_MIN as f32, CLIP_MAX as f32);
                CpuStorage::F32(
                    contiguous(v, l1)?
                        .par_iter()
                        .map(|&x| (x.clamp(lo, hi).ln() * inv).exp())
                        .collect(),
                )
            }
            CpuStorage::F64(v) => CpuStorage::F64(
                contiguous(v, l1)?
                    .par_iter()
                    .map(|&x| (x.clamp(CLIP_MIN, CLIP_MAX).ln() * inv_gamma).exp())
                    .collect(),
            ),
            _ => candle_core::bail!("clip_gamma takes f32 or f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g_x = x.apply_op2_no_bwd(
            &Tensor::stack(&[out, &grad.contiguous()?], 0)?,
            &ClipGammaInputGrad {
                gamma: gamma
                    .to_dtype(candle_core::DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?[0],
            },
        )?;
        // d/dgamma exp(log(c) / gamma) = -out log(c) / gamma^2, summed against the gradient over
        // every pixel of the batch: in f64, as the ISP's other parameter gradients
        let wide = |t: &Tensor| t.to_dtype(candle_core::DType::F64);
        let c = wide(x)?.apply_op1_no_bwd(&Clamp {
            lo: CLIP_MIN,
            hi: CLIP_MAX,
        })?;
        let g_gamma = (wide(grad)?.mul(&wide(out)?)?.mul(&c.log()?)?.sum_all()? * -1.0)?
            .to_dtype(gamma.dtype())?
            .broadcast_div(&gamma.sqr()?)?;
        Ok((Some(g_x), Some(g_gamma.reshape(gamma.shape())?)))
    }
}

/// dL/dx of clip_gamma from x and the stacked (out, dL/dout).
struct ClipGammaInputGrad {
    gamma: f64,
}

impl CustomOp2 for ClipGammaInputGrad {
    fn name(&self) -> &'static str {
        "clip_gamma_input_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = values(s1, l1)?;
        let stacked = values(s2, l2)?;
        let (out, grad) = stacked.split_at(x.len());
        let g: Vec<f64> = x
            .par_iter()
            .zip(out.par_iter().zip(grad))
            .map(|(&x, (&o, &g))| {
                if (CLIP_MIN..=CLIP_MAX).contains(&x) {
                    g * o / (self.gamma * x)
                } else {
                    0.0
                }
            })
            .collect();
        Ok((storage_like(s1, g), l1.shape().clone()))
    }
}

/// Per-channel mean and 1/sqrt(var + eps) of (B, C, H, W) values.
fn channel_stats(v: &[f64], (b, c, hw): (usize, usize, usize)) -> Vec<(f64, f64)> {
    let n = (b * hw) as f64;
    (0..c)
        .map(|ch| {
            let planes =
                || (0..b).flat_map(move |bi| v[(bi * c + ch) * hw..(bi * c + ch + 1) * hw].iter());
            let mean = planes().sum::<f64>() / n;
            let var = planes().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
            (mean, 1.0 / (var + BN_EPS).sqrt())
        })
        .collect()
}

fn bchw(l: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok((b, c, h * w))
}

struct BatchNorm;

impl CustomOp1 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, hw) = bchw(l)?;
        let v = values(s, l)?;
        let stats = channel_stats(&v, (b, c, hw));
        let out = v.iter().enumerate().map(|(i, &x)| {
            let (mean, inv_std) = stats[(i / hw) % c];
            (x - mean) * inv_std
        });
        Ok((storage_like(s, out.collect()), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, out: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let stacked = Tensor::stack(&[out, &grad.contiguous()?], 0)?;
        Ok(Some(x.apply_op2_no_bwd(&stacked, &BatchNormInputGrad)?))
    }
}

/// dL/dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps), per channel, from x and (y, g).
struct BatchNormInputGrad;

impl CustomOp2 for BatchNormInputGrad {
    fn name(&self) -> &'static str {
        "batch_norm_input_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, hw) = bchw(l1)?;
        let x = values(s1, l1)?;
        let stacked = values(s2, l2)?;
        let (y, g) = stacked.split_at(x.len());
        let stats = channel_stats(&x, (b, c, hw));
        let n = (b * hw) as f64;
        let means: Vec<(f64, f64)> = (0..c)
            .map(|ch| {
                let idx = || (0..b).flat_map(move |bi| (bi * c + ch) * hw..(bi * c + ch + 1) * hw);
                (
                    idx().map(|i| g[i]).sum::<f64>() / n,
                    idx().map(|i| g[i] * y[i]).sum::<f64>() / n,
                )
            })
            .collect();
        let out = (0..x.len()).map(|i| {
            let ch = (i / hw) % c;
            let (mean_g, mean_gy) = means[ch];
            (g[i] - mean_g - y[i] * mean_gy) * stats[ch].1
        });
        Ok((storage_like(s1, out.collect()), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};

    /// Values and gradients bit for bit those of candle's clamp (maximum, then minimum), in f32
    /// and f64, at the bounds, between, beyond and at NaN.
    #[test]
    fn clamp_is_candles_clamp_with_its_gradient() {
        let values = [-2.0, 0.0, 0.25, 0.5, 1.0, 1.5, f64::NAN, 1e-9, 1.0 - 1e-9];
        for dtype in [DType::F32, DType::F64] {
            let x = Var::from_tensor(
                &Tensor::new(&values, &Device::Cpu)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let weights = Tensor::new(
                &[3.0, -1.0, 2.0, 0.5, -4.0, 1.0, 2.0, -3.0, 5.0],
                &Device::Cpu,
            )
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
            let run = |ours: bool| {
                let y = match ours {
                    true => super::clamp(&x, 0.0, 1.0).unwrap(),
                    false => x.clamp(0.0, 1.0).unwrap(),
                };
                let grads = (y.mul(&weights).unwrap())
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                let bits = |t: &Tensor| -> Vec<u64> {
                    let t = t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                    t.iter().map(|v| v.to_bits()).collect()
                };
                (bits(&y), bits(grads.get(x.as_tensor()).unwrap()))
            };
            assert_eq!(run(true), run(false), "{dtype:?}");
        }
    }
}
