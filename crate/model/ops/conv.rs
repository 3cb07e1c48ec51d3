//! 2-D convolution (NCHW, weights (Cout, Cin, k, k), zero padding) with its input and weight
//! gradients, each a sequence of GEMMs over bands of output rows. A band's columns (im2col) are
//! gathered into a scratch buffer of at most `BAND_FLOATS`, used and dropped: the backward pass
//! gathers them again instead of keeping the forward's, which bounds a 256 px U-Net step's memory
//! by its activations.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::gemm::{gemm, View};
use super::{dims4, Window};
use crate::cpu_slices::f32_slice;
use crate::Result;

/// Gathered column values per band (4 MiB): large enough for efficient GEMMs, small enough that
/// the scratch of every item in flight stays far below the activations.
const BAND_FLOATS: usize = 1 << 20;

/// Output rows per band of an (ho x wo) output whose columns have `rows` gathered values each.
fn band_rows(band_floats: usize, rows: usize, (ho, wo): (usize, usize)) -> usize {
    (band_floats / (rows * wo).max(1)).clamp(1, ho)
}

/// Output pixels in a full band of `conv2d`, whose columns have `rows` gathered values each: the
/// width of the products it hands the GEMM (the matrix-product benchmark's shapes).
pub fn band_pixels(rows: usize, (ho, wo): (usize, usize)) -> usize {
    wo * band_rows(BAND_FLOATS, rows, (ho, wo))
}

/// Convolution of (B, Cin, H, W) with (Cout, Cin, k, k), stride and zero padding. f32.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let op = Conv2d {
        stride,
        pad,
        band_floats: BAND_FLOATS,
    };
    Ok(x.contiguous()?.apply_op2(&weight.contiguous()?, op)?)
}

#[derive(Debug, Clone, Copy)]
struct Conv2d {
    stride: usize,
    pad: usize,
    band_floats: usize,
}

/// Everything about one convolution's shapes, checked once.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    ho: usize,
    wo: usize,
    win: Window,
    /// Output rows per band.
    band_rows: usize,
}

impl Geometry {
    fn new(op: &Conv2d, x: &Shape, weight: &Shape) -> candle_core::Result<Self> {
        let (batch, cin, h, w) = dims4(x)?;
        let (cout, wcin, k, k2) = dims4(weight)?;
        if wcin != cin || k != k2 {
            candle_core::bail!(
                "a {cout}x{wcin}x{k}x{k2} convolution kernel does not fit {cin} input channels"
            );
        }
        let win = Window {
            k,
            stride: op.stride,
            pad: op.pad,
        };
        let (ho, wo) = (win.out(h)?, win.out(w)?);
        let rows = cin * k * k;
        let band_rows = band_rows(op.band_floats, rows, (ho, wo));
        Ok(Self {
            batch,
            cin,
            h,
            w,
            cout,
            ho,
            wo,
            win,
            band_rows,
        })
    }

    /// Rows of the column matrix: Cin * k * k.
    fn k_rows(&self) -> usize {
        self.cin * self.win.k * self.win.k
    }

    /// A 1x1 kernel with stride 1 and no padding reads its input as the column matrix itself.
    fn direct(&self) -> bool {
        self.win.k == 1 && self.win.stride == 1 && self.win.pad == 0
    }

    fn bands(&self) -> impl Iterator<Item = (usize, usize)> {
        let (rows, ho) = (self.band_rows, self.ho);
        (0..ho).step_by(rows).map(move |r| (r, (r + rows).min(ho)))
    }

    fn in_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    fn out_len(&self) -> usize {
        self.cout * self.ho * self.wo
    }

    /// The weights (Cout, Cin*k*k).
    fn weight_view(&self) -> View {
        View::dense(0, self.cout, self.k_rows(), self.k_rows())
    }

    /// Output rows `band` of one item: (Cout, band pixels).
    fn out_view(&self, (oy0, oy1): (usize, usize)) -> View {
        View::dense(
            oy0 * self.wo,
            self.cout,
            (oy1 - oy0) * self.wo,
            self.ho * self.wo,
        )
    }

    /// The column matrix of a band: the input itself where `direct`, else the scratch.
    fn cols_view(&self, (oy0, oy1): (usize, usize)) -> View {
        let n = (oy1 - oy0) * self.wo;
        if self.direct() {
            View::dense(oy0 * self.w, self.k_rows(), n, self.h * self.w)
        } else {
            View::dense(0, self.k_rows(), n, n)
        }
    }

    /// im2col of one item's output rows `band` into `cols` (Cin*k*k, band pixels).
    fn gather(&self, x: &[f32], (oy0, oy1): (usize, usize), cols: &mut Vec<f32>) {
        let (k, h, w, wo, win) = (self.win.k, self.h, self.w, self.wo, self.win);
        let n = (oy1 - oy0) * wo;
        cols.resize(self.k_rows() * n, 0.0);
        cols.par_chunks_mut(n).enumerate().for_each(|(r, dst)| {
            let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
            let plane = &x[ci * h * w..(ci + 1) * h * w];
            let inside = win.inside(kx, w, wo);
            let at = |ox: usize| ox * win.stride + kx - win.pad;
            for (oy, row) in (oy0..oy1).zip(dst.chunks_mut(wo)) {
                let Some(iy) = win.source(oy, ky, h) else {
                    row.fill(0.0);
                    continue;
                };
                let src = &plane[iy * w..(iy + 1) * w];
                row[..inside.start].fill(0.0);
                row[inside.end..].fill(0.0);
                if inside.is_empty() {
                    continue;
                }
                if win.stride == 1 {
                    // one contiguous copy between the zero borders
                    row[inside.clone()].copy_from_slice(&src[at(inside.start)..at(inside.end)]);
                } else {
                    for (ox, v) in inside.clone().zip(&mut row[inside.clone()]) {
                        *v = src[at(ox)];
                    }
                }
            }
        });
    }

    /// col2im: adds a band's column gradients into one item's input gradient.
    fn scatter(&self, cols: &[f32], (oy0, oy1): (usize, usize), dx: &mut [f32]) {
        let (k, h, w, wo, win) = (self.win.k, self.h, self.w, self.wo, self.win);
        let n = (oy1 - oy0) * wo;
        dx.par_chunks_mut(h * w)
            .enumerate()
            .for_each(|(ci, plane)| {
                for ky in 0..k {
                    for kx in 0..k {
                        let r = (ci * k + ky) * k + kx;
                        let inside = win.inside(kx, w, wo);
                        let at = |ox: usize| ox * win.stride + kx - win.pad;
                        if inside.is_empty() {
                            continue;
                        }
                        for (oy, src) in (oy0..oy1).zip(cols[r * n..(r + 1) * n].chunks(wo)) {
                            let Some(iy) = win.source(oy, ky, h) else {
                                continue;
                            };
                            let dst = &mut plane[iy * w..(iy + 1) * w];
                            if win.stride == 1 {
                                // contiguous: a loop that vectorises
                                let dst = &mut dst[at(inside.start)..at(inside.end)];
                                dst.iter_mut()
                                    .zip(&src[inside.clone()])
                                    .for_each(|(d, &g)| *d += g);
                            } else {
                                for (ox, &g) in inside.clone().zip(&src[inside.clone()]) {
                                    dst[at(ox)] += g;
                                }
                            }
                        }
                    }
                }
            });
    }

    /// y = W * cols, band by band, for one item.
    fn forward_item(&self, x: &[f32], weight: &[f32], y: &mut [f32]) -> candle_core::Result<()> {
        let threads = rayon::current_num_threads();
        let mut cols = Vec::new();
        for band in self.bands() {
            let (src, cv) = if self.direct() {
                (x, self.cols_view(band))
            } else {
                self.gather(x, band, &mut cols);
                (cols.as_slice(), self.cols_view(band))
            };
            let (d, wv) = (self.out_view(band), self.weight_view());
            gemm((y, d), false, (weight, wv), (src, cv), threads)?;
        }
        Ok(())
    }

    /// dx = col2im(W^T * dy), band by band, for one item.
    fn input_grad_item(
        &self,
        dy: &[f32],
        weight: &[f32],
        dx: &mut [f32],
    ) -> candle_core::Result<()> {
        let threads = rayon::current_num_threads();
        let mut cols = Vec::new();
        for band in self.bands() {
            let (wt, dv, cv) = (
                self.weight_view().t(),
                self.out_view(band),
                self.cols_view(band),
            );
            if self.direct() {
                gemm((dx, cv), false, (weight, wt), (dy, dv), threads)?;
            } else {
                cols.resize(cv.rows * cv.cols, 0.0);
                gemm((&mut cols, cv), false, (weight, wt), (dy, dv), threads)?;
                self.scatter(&cols, band, dx);
            }
        }
        Ok(())
    }

    /// dW += dy * cols^T, band by band, for one item (the columns gathered again).
    fn weight_grad_item(&self, x: &[f32], dy: &[f32], dw: &mut [f32]) -> candle_core::Result<()> {
        let threads = rayon::current_num_threads();
        let mut cols = Vec::new();
        for band in self.bands() {
            let src = if self.direct() {
                x
            } else {
                self.gather(x, band, &mut cols);
                cols.as_slice()
            };
            let (d, dv, cv) = (
                self.weight_view(),
                self.out_view(band),
                self.cols_view(band),
            );
            gemm((dw, d), true, (dy, dv), (src, cv.t()), threads)?;
        }
        Ok(())
    }
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(self, l1.shape(), l2.shape())?;
        let (x, weight) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let mut y = vec![0f32; g.batch * g.out_len()];
        y.par_chunks_mut(g.out_len())
            .zip(x.par_chunks(g.in_len()))
            .try_for_each(|(y, x)| g.forward_item(x, weight, y))?;
        Ok((
            CpuStorage::F32(y),
            Shape::from((g.batch, g.cout, g.ho, g.wo)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // only the gradients something upstream takes: none for a batch that no parameter made
        // (the first convolution of a static view's batch), none for a frozen weight
        let grad = grad.contiguous()?;
        let dx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(
                weight,
                &InputGrad {
                    conv: *self,
                    x: x.shape().clone(),
                },
            )?),
            false => None,
        };
        let dw = match weight.track_op() {
            true => Some(x.apply_op2_no_bwd(
                &grad,
                &WeightGrad {
                    conv: *self,
                    weight: weight.shape().clone(),
                },
            )?),
            false => None,
        };
        Ok((dx, dw))
    }
}

/// (dy, W) -> dx.
struct InputGrad {
    conv: Conv2d,
    x: Shape,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(&self.conv, &self.x, l2.shape())?;
        if l1.shape().dims() != [g.batch, g.cout, g.ho, g.wo] {
            candle_core::bail!("conv2d: the output gradient has the wrong shape");
        }
        let (dy, weight) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let mut dx = vec![0f32; g.batch * g.in_len()];
        dx.par_chunks_mut(g.in_len())
            .zip(dy.par_chunks(g.out_len()))
            .try_for_each(|(dx, dy)| g.input_grad_item(dy, weight, dx))?;
        Ok((CpuStorage::F32(dx), self.x.clone()))
    }
}

/// (x, dy) -> dW. Each half of the batch is summed item by item on a buffer of its own, the two
/// halves in parallel (each product also on the pool), then added: the same sums at any thread
/// count (a rayon fold would group the items as the threads happen to split them), and two
/// buffers as large as the weights where a fold zeroes one per split.
struct WeightGrad {
    conv: Conv2d,
    weight: Shape,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = Geometry::new(&self.conv, l1.shape(), &self.weight)?;
        if l2.shape().dims() != [g.batch, g.cout, g.ho, g.wo] {
            candle_core::bail!("conv2d: the output gradient has the wrong shape");
        }
        let (x, dy) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let len = g.cout * g.k_rows();
        let run = |items: std::ops::Range<usize>| -> candle_core::Result<Vec<f32>> {
            let mut dw = vec![0f32; len];
            for i in items {
                let (x, dy) = (
                    &x[i * g.in_len()..][..g.in_len()],
                    &dy[i * g.out_len()..][..g.out_len()],
                );
                g.weight_grad_item(x, dy, &mut dw)?;
            }
            Ok(dw)
        };
        let half = g.batch.div_ceil(2);
        let (first, second) = rayon::join(|| run(0..half), || run(half..g.batch));
        let (mut dw, second) = (first?, second?);
        dw.iter_mut().zip(&second).for_each(|(a, b)| *a += b);
        Ok((CpuStorage::F32(dw), self.weight.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ops::tests::diff;
    use candle_core::{Device, Var};

    /// Values and both gradients against candle's own conv2d, with `band_floats` small enough to
    /// split every image into several bands (and large enough for one band).
    #[test]
    fn conv_matches_candle_with_gradients_in_any_band_size() {
        let dev = Device::Cpu;
        for (k, stride, pad) in [(3, 1, 1), (3, 2, 1), (7, 2, 3), (1, 2, 0), (1, 1, 0)] {
            for band_floats in [1, 200, BAND_FLOATS] {
                let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 3, 11, 9), &dev).unwrap())
                    .unwrap();
                let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev).unwrap())
                    .unwrap();
                let op = Conv2d {
                    stride,
                    pad,
                    band_floats,
                };
                let ours = x.as_tensor().apply_op2(w.as_tensor(), op).unwrap();
                let theirs = x
                    .as_tensor()
                    .conv2d(w.as_tensor(), pad, stride, 1, 1)
                    .unwrap();
                let case = format!("k{k} s{stride} p{pad} band {band_floats}");
                assert!(diff(&ours, &theirs) < 1e-4, "{case}");
                let g = Tensor::randn(0f32, 1.0, ours.shape(), &dev).unwrap();
                let ga = ours.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
                let gb = (theirs.mul(&g).unwrap().sum_all().unwrap())
                    .backward()
                    .unwrap();
                for v in [&x, &w] {
                    let (a, b) = (
                        ga.get(v.as_tensor()).unwrap(),
                        gb.get(v.as_tensor()).unwrap(),
                    );
                    assert!(diff(a, b) < 1e-3, "{case}");
                }
            }
        }
    }

    /// The output and both gradients are the same bits on one thread and on three (five items:
    /// runs of unequal length), at stride 1 and 2.
    #[test]
    fn the_same_bits_at_any_thread_count() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 8, 23, 19), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (16, 8, 3, 3), &dev).unwrap()).unwrap();
        for stride in [1, 2] {
            let run = || -> Vec<Vec<u32>> {
                let y = conv2d(x.as_tensor(), w.as_tensor(), stride, 1).unwrap();
                let g = y.sin().unwrap();
                let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
                [&y, grads.get(&x).unwrap(), grads.get(&w).unwrap()]
                    .iter()
                    .map(|t| {
                        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                        v.iter().map(|f| f.to_bits()).collect()
                    })
                    .collect()
            };
            let pool = |n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
            };
            let (one, three) = (pool(1).install(run).concat(), pool(3).install(run).concat());
            let differing = one.iter().zip(&three).filter(|(a, b)| a != b).count();
            assert!(
                one.len() == three.len() && differing == 0,
                "stride {stride}: {differing} of {} values differ between 1 and 3 threads",
                one.len()
            );
        }
    }

    #[test]
    fn a_tile_smaller_than_the_kernel_is_refused() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 3, 2, 2), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((8, 3, 7, 7), candle_core::DType::F32, &dev).unwrap();
        let err = conv2d(&x, &w, 2, 0).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
    }
}
