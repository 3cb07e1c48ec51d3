//! Max pooling k x k with stride and padding, as torch's max_pool2d, with the backward pass candle
//! lacks for overlapping windows: the gradient flows to each window's first maximum.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::{dims4, Window};
use crate::cpu_slices::f32_slice;
use crate::Result;

/// Max pooling k x k with stride and padding (padding never wins).
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op1(MaxPool(Window { k, stride, pad }))?)
}

/// For each output, the flat input index of its window's first maximum.
fn argmax_pool(
    x: &[f32],
    (b, c, h, w): (usize, usize, usize, usize),
    win: Window,
) -> candle_core::Result<Vec<(usize, f32)>> {
    let (ho, wo) = (win.out(h)?, win.out(w)?);
    Ok((0..b * c * ho * wo)
        .into_par_iter()
        .map(|o| {
            let (plane, oy, ox) = (o / (ho * wo), (o / wo) % ho, o % wo);
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for ky in 0..win.k {
                let Some(iy) = win.source(oy, ky, h) else {
                    continue;
                };
                for kx in 0..win.k {
                    if let Some(ix) = win.source(ox, kx, w) {
                        let i = plane * h * w + iy * w + ix;
                        if x[i] > best.1 {
                            best = (i, x[i]);
                        }
                    }
                }
            }
            best
        })
        .collect())
}

struct MaxPool(Window);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = dims4(l.shape())?;
        let best = argmax_pool(f32_slice(s, l)?, (b, c, h, w), self.0)?;
        let out = best.into_iter().map(|(_, v)| v).collect();
        Ok((
            CpuStorage::F32(out),
            Shape::from((b, c, self.0.out(h)?, self.0.out(w)?)),
        ))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op3_no_bwd(
            res,
            &grad.contiguous()?,
            &MaxPoolGrad(self.0),
        )?))
    }
}

/// The gradient flows to each window's maximum.
struct MaxPoolGrad(Window);

impl CustomOp3 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max_pool2d_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = dims4(l1.shape())?;
        let best = argmax_pool(f32_slice(s1, l1)?, dims, self.0)?;
        let grad = f32_slice(s3, l3)?;
        let mut out = vec![0f32; l1.shape().elem_count()];
        for ((i, _), g) in best.into_iter().zip(grad) {
            if i != usize::MAX {
                out[i] += g;
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn max_pool_values_and_gradient_go_to_the_maximum() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 16.0, &dev)
                .unwrap()
                .reshape((1, 1, 4, 4))
                .unwrap(),
        )
        .unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5.0, 7.0, 13.0, 15.0]
        );
        let g = y.sum_all().unwrap().backward().unwrap();
        let gx = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(gx.iter().sum::<f32>(), 4.0);
        assert_eq!(gx[5], 1.0);
        assert_eq!(gx[15], 1.0);
    }
}
