//! Convolution and max pooling for the task models as candle ops with fast backward passes.
//! candle's conv2d computes its input gradient with a direct conv_transpose2d that is 10-20x
//! slower than the forward on the CPU, and its max pool has no backward for a 3x3/2 window. Here
//! a convolution is im2col (a custom op whose adjoint is col2im) followed by candle's matmul,
//! whose backward is two more matmuls: every heavy step is a GEMM.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::storage::f32_slice;
use crate::Result;

/// Geometry of a convolution or pooling window over (B, C, H, W).
#[derive(Debug, Clone, Copy)]
struct Window {
    k: usize,
    stride: usize,
    pad: usize,
}

impl Window {
    fn out(&self, n: usize) -> usize {
        (n + 2 * self.pad - self.k) / self.stride + 1
    }
}

/// (B, C, H, W) -> (B, C*k*k, Ho*Wo), zero padding.
struct Im2Col(Window);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let (b, c, h, w) = l.shape().dims4()?;
        let Window { k, stride, pad } = self.0;
        let (ho, wo) = (self.0.out(h), self.0.out(w));
        let rows = c * k * k;
        let mut cols = vec![0f32; b * rows * ho * wo];
        cols.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(r, dst)| {
                let (bi, row) = (r / rows, r % rows);
                let (ci, ky, kx) = (row / (k * k), (row / k) % k, row % k);
                let plane = &x[(bi * c + ci) * h * w..(bi * c + ci + 1) * h * w];
                for oy in 0..ho {
                    let iy = (oy * stride + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    let src = &plane[iy as usize * w..(iy as usize + 1) * w];
                    for ox in 0..wo {
                        let ix = (ox * stride + kx) as isize - pad as isize;
                        if ix >= 0 && ix < w as isize {
                            dst[oy * wo + ox] = src[ix as usize];
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(cols), Shape::from((b, rows, ho * wo))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let (b, c, h, w) = x.dims4()?;
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Col2Im {
            window: self.0,
            shape: (b, c, h, w),
        })?))
    }
}

/// The adjoint of Im2Col: columns summed back into the image.
struct Col2Im {
    window: Window,
    shape: (usize, usize, usize, usize),
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let cols = f32_slice(s, l)?;
        let (b, c, h, w) = self.shape;
        let Window { k, stride, pad } = self.window;
        let (ho, wo) = (self.window.out(h), self.window.out(w));
        let mut x = vec![0f32; b * c * h * w];
        // one (batch, channel) plane per task: its k*k column rows add into it
        x.par_chunks_mut(h * w).enumerate().for_each(|(p, plane)| {
            let (bi, ci) = (p / c, p % c);
            for ky in 0..k {
                for kx in 0..k {
                    let row = (ci * k + ky) * k + kx;
                    let src = &cols
                        [(bi * c * k * k + row) * ho * wo..(bi * c * k * k + row + 1) * ho * wo];
                    for oy in 0..ho {
                        let iy = (oy * stride + ky) as isize - pad as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * w..(iy as usize + 1) * w];
                        for ox in 0..wo {
                            let ix = (ox * stride + kx) as isize - pad as isize;
                            if ix >= 0 && ix < w as isize {
                                dst[ix as usize] += src[oy * wo + ox];
                            }
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(x), Shape::from(self.shape)))
    }
}

/// Convolution of (B, Cin, H, W) with (Cout, Cin, k, k), stride and zero padding: im2col then a
/// batched matmul. f32.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let (b, _, h, w) = x.dims4()?;
    let (cout, cin, k, _) = weight.dims4()?;
    let window = Window { k, stride, pad };
    let (ho, wo) = (window.out(h), window.out(w));
    let cols = if k == 1 && stride == 1 && pad == 0 {
        x.reshape((b, cin, h * w))?
    } else {
        x.contiguous()?.apply_op1(Im2Col(window))?
    };
    let w2 = weight.reshape((cout, cin * k * k))?;
    Ok(w2
        .broadcast_left(b)?
        .matmul(&cols)?
        .reshape((b, cout, ho, wo))?)
}

/// Max pooling k x k with stride and padding (padding never wins), as torch's max_pool2d.
pub fn max_pool2d(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op1(MaxPool(Window { k, stride, pad }))?)
}

/// For each output, the flat input index of its window's first maximum.
fn argmax_pool(
    x: &[f32],
    (b, c, h, w): (usize, usize, usize, usize),
    win: Window,
) -> Vec<(usize, f32)> {
    let (ho, wo) = (win.out(h), win.out(w));
    (0..b * c * ho * wo)
        .into_par_iter()
        .map(|o| {
            let (plane, oy, ox) = (o / (ho * wo), (o / wo) % ho, o % wo);
            let mut best = (usize::MAX, f32::NEG_INFINITY);
            for ky in 0..win.k {
                for kx in 0..win.k {
                    let iy = (oy * win.stride + ky) as isize - win.pad as isize;
                    let ix = (ox * win.stride + kx) as isize - win.pad as isize;
                    if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                        let i = plane * h * w + iy as usize * w + ix as usize;
                        if x[i] > best.1 {
                            best = (i, x[i]);
                        }
                    }
                }
            }
            best
        })
        .collect()
}

struct MaxPool(Window);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let best = argmax_pool(f32_slice(s, l)?, (b, c, h, w), self.0);
        let out = best.into_iter().map(|(_, v)| v).collect();
        Ok((
            CpuStorage::F32(out),
            Shape::from((b, c, self.0.out(h), self.0.out(w))),
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
        let dims = l1.shape().dims4()?;
        let best = argmax_pool(f32_slice(s1, l1)?, dims, self.0);
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
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest absolute difference, for comparing against a reference.
    pub(crate) fn diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Against candle's own conv2d: values and both gradients, strided and padded.
    #[test]
    fn conv_matches_candle_with_gradients() {
        let dev = Device::Cpu;
        for (k, stride, pad) in [(3, 1, 1), (3, 2, 1), (7, 2, 3), (1, 2, 0), (1, 1, 0)] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 9, 9), &dev).unwrap()).unwrap();
            let w =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev).unwrap()).unwrap();
            let ours = conv2d(x.as_tensor(), w.as_tensor(), stride, pad).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(w.as_tensor(), pad, stride, 1, 1)
                .unwrap();
            assert!(diff(&ours, &theirs) < 1e-4, "k{k} s{stride}");
            let g = Tensor::randn(0f32, 1.0, ours.shape(), &dev).unwrap();
            let ga = ours.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
            let gb = theirs
                .mul(&g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &w] {
                assert!(
                    diff(
                        ga.get(v.as_tensor()).unwrap(),
                        gb.get(v.as_tensor()).unwrap()
                    ) < 1e-3,
                    "k{k} s{stride}"
                );
            }
        }
    }

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
