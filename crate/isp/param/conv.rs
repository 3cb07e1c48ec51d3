//! The ISP's same-size 2-D convolutions (PyTorch's nn.Conv2d with padding K/2 and a padding
//! mode) as candle custom ops with hand-written adjoints. candle's generic conv2d and its
//! backward (conv_transpose2d) are slow on the CPU for these few-channel filters over whole
//! images; direct row-wise loops vectorise and run ~10x faster. The PyTorch parity tests check
//! these adjoints like every other gradient.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu_slices::contiguous;
use crate::Result;

/// How the border is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// PyTorch 'reflect': d c b | a b c d | c b a.
    Reflect,
    /// PyTorch 'zeros'.
    Zeros,
}

/// `x` (B, Cin, H, W) cross-correlated with `w` (Cout, Cin, K, K), K odd, padded by K/2 per
/// `padding`: output (B, Cout, H, W). Differentiable in both inputs.
pub fn conv2d_same(x: &Tensor, w: &Tensor, padding: Padding) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op2(&w.contiguous()?, Conv { padding })?)
}

/// Arithmetic the kernels need, for f32 and f64.
trait Float:
    Copy
    + Default
    + Send
    + Sync
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + PartialEq
    + Into<f64>
{
    fn from_f64(x: f64) -> Self;
}
impl Float for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}
impl Float for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
}

fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let j = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    j as usize
}

/// One plane grown by `p` on every side.
fn pad_plane<T: Float>(src: &[T], h: usize, w: usize, p: usize, padding: Padding) -> Vec<T> {
    let pw = w + 2 * p;
    let mut out = vec![T::default(); (h + 2 * p) * pw];
    for (py, row) in out.chunks_exact_mut(pw).enumerate() {
        let y = py as isize - p as isize;
        let sy = match padding {
            Padding::Zeros if y < 0 || y >= h as isize => continue,
            Padding::Zeros => y as usize,
            Padding::Reflect => reflect(y, h),
        };
        let src_row = &src[sy * w..(sy + 1) * w];
        row[p..p + w].copy_from_slice(src_row);
        if padding == Padding::Reflect {
            for px in (0..p).chain(p + w..pw) {
                row[px] = src_row[reflect(px as isize - p as isize, w)];
            }
        }
    }
    out
}

/// The adjoint of `pad_plane`: every padded position's value added back where it came from.
fn fold_plane<T: Float>(padded: &[T], h: usize, w: usize, p: usize, padding: Padding) -> Vec<T> {
    let pw = w + 2 * p;
    let mut out = vec![T::default(); h * w];
    for (py, row) in padded.chunks_exact(pw).enumerate() {
        let y = py as isize - p as isize;
        let ty = match padding {
            Padding::Zeros if y < 0 || y >= h as isize => continue,
            Padding::Zeros => y as usize,
            Padding::Reflect => reflect(y, h),
        };
        let dst = &mut out[ty * w..(ty + 1) * w];
        for (d, &s) in dst.iter_mut().zip(&row[p..p + w]) {
            *d += s;
        }
        if padding == Padding::Reflect {
            for px in (0..p).chain(p + w..pw) {
                dst[reflect(px as isize - p as isize, w)] += row[px];
            }
        }
    }
    out
}

#[inline]
fn axpy<T: Float>(dst: &mut [T], a: T, src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// A dot product in eight interleaved sums: the compiler keeps them in one SIMD register (a single
/// running sum must be added in order and stays scalar).
#[inline]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::default(); 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_rest, b_rest) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let mut acc = T::default();
    for (&x, &y) in a_rest.iter().zip(b_rest) {
        acc += x * y;
    }
    for lane in lanes {
        acc += lane;
    }
    acc
}

/// Sizes of one convolution: batch, in and out channels, height, width, kernel side.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl Dims {
    fn weight(&self, ko: usize, c: usize, ty: usize, tx: usize) -> usize {
        ((ko * self.cin + c) * self.k + ty) * self.k + tx
    }
}

fn forward<T: Float>(x: &[T], wt: &[T], d: Dims, padding: Padding) -> Vec<T> {
    let (p, hw) = (d.k / 2, d.h * d.w);
    let pw = d.w + 2 * p;
    let padded: Vec<Vec<T>> = x
        .chunks_exact(hw)
        .map(|plane| pad_plane(plane, d.h, d.w, p, padding))
        .collect();
    let mut out = vec![T::default(); d.b * d.cout * hw];
    out.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| {
        let (bi, ko) = (i / d.cout, i % d.cout);
        for c in 0..d.cin {
            let src = &padded[bi * d.cin + c];
            for ty in 0..d.k {
                for tx in 0..d.k {
                    let a = wt[d.weight(ko, c, ty, tx)];
                    if a == T::default() {
                        continue;
                    }
                    for (y, dst) in plane.chunks_exact_mut(d.w).enumerate() {
                        axpy(dst, a, &src[(y + ty) * pw + tx..(y + ty) * pw + tx + d.w]);
                    }
                }
            }
        }
    });
    out
}

fn input_grad<T: Float>(g: &[T], wt: &[T], d: Dims, padding: Padding) -> Vec<T> {
    let (p, hw) = (d.k / 2, d.h * d.w);
    let pw = d.w + 2 * p;
    let mut out = vec![T::default(); d.b * d.cin * hw];
    out.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| {
        let (bi, c) = (i / d.cin, i % d.cin);
        // the gradient of the padded input: each output row scattered back through its taps
        let mut grad_padded = vec![T::default(); (d.h + 2 * p) * pw];
        for ko in 0..d.cout {
            let g_plane = &g[(bi * d.cout + ko) * hw..(bi * d.cout + ko + 1) * hw];
            for ty in 0..d.k {
                for tx in 0..d.k {
                    let a = wt[d.weight(ko, c, ty, tx)];
                    if a == T::default() {
                        continue;
                    }
                    for (y, g_row) in g_plane.chunks_exact(d.w).enumerate() {
                        let at = (y + ty) * pw + tx;
                        axpy(&mut grad_padded[at..at + d.w], a, g_row);
                    }
                }
            }
        }
        plane.copy_from_slice(&fold_plane(&grad_padded, d.h, d.w, p, padding));
    });
    out
}

fn weight_grad<T: Float>(g: &[T], x: &[T], d: Dims, padding: Padding) -> Vec<T> {
    let (p, hw) = (d.k / 2, d.h * d.w);
    let pw = d.w + 2 * p;
    let padded: Vec<Vec<T>> = x
        .chunks_exact(hw)
        .map(|plane| pad_plane(plane, d.h, d.w, p, padding))
        .collect();
    (0..d.cout * d.cin * d.k * d.k)
        .into_par_iter()
        .map(|j| {
            let (ko, c, ty, tx) = (
                j / (d.cin * d.k * d.k),
                (j / (d.k * d.k)) % d.cin,
                (j / d.k) % d.k,
                j % d.k,
            );
            // a sum over every pixel of the batch: the rows' dot products add up in f64, since a
            // long f32 running sum loses digits where batch norm makes its terms cancel
            let mut acc = 0f64;
            for bi in 0..d.b {
                let g_plane = &g[(bi * d.cout + ko) * hw..(bi * d.cout + ko + 1) * hw];
                let src = &padded[bi * d.cin + c];
                for (y, g_row) in g_plane.chunks_exact(d.w).enumerate() {
                    acc += dot(g_row, &src[(y + ty) * pw + tx..(y + ty) * pw + tx + d.w]).into();
                }
            }
            T::from_f64(acc)
        })
        .collect()
}

/// Runs `f32` or `f64` versions of a kernel on two same-dtype inputs.
macro_rules! dispatch {
    ($s1:expr, $l1:expr, $s2:expr, $l2:expr, $name:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($s1, $s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let ($a, $b) = (contiguous(a, $l1)?, contiguous(b, $l2)?);
                CpuStorage::F32($body)
            }
            (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                let ($a, $b) = (contiguous(a, $l1)?, contiguous(b, $l2)?);
                CpuStorage::F64($body)
            }
            _ => candle_core::bail!("{} takes two f32 or two f64 tensors", $name),
        }
    };
}

fn dims(data: &Layout, weight: &Layout, name: &str) -> candle_core::Result<Dims> {
    let (b, _, h, w) = data.shape().dims4()?;
    let (cout, cin, k, k2) = weight.shape().dims4()?;
    if k != k2 || k % 2 == 0 || (k / 2 >= h || k / 2 >= w) {
        candle_core::bail!(
            "{name}: kernel {k}x{k2} does not fit a same-size convolution of {h}x{w}"
        );
    }
    Ok(Dims {
        b,
        cin,
        cout,
        h,
        w,
        k,
    })
}

struct Conv {
    padding: Padding,
}

impl CustomOp2 for Conv {
    fn name(&self) -> &'static str {
        "conv2d_same"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = dims(l1, l2, self.name())?;
        if l1.shape().dims()[1] != d.cin {
            candle_core::bail!(
                "conv2d_same: input has {} channels, the kernel {}",
                l1.shape().dims()[1],
                d.cin
            );
        }
        let out = dispatch!(s1, l1, s2, l2, self.name(), |x, w| forward(
            x,
            w,
            d,
            self.padding
        ));
        Ok((out, Shape::from((d.b, d.cout, d.h, d.w))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let g_x = grad.apply_op2_no_bwd(
            w,
            &InputGrad {
                padding: self.padding,
            },
        )?;
        let g_w = grad.apply_op2_no_bwd(
            x,
            &WeightGrad {
                padding: self.padding,
                k: w.dim(2)?,
            },
        )?;
        Ok((Some(g_x), Some(g_w)))
    }
}

/// dL/dx from dL/d output (B, Cout, H, W) and the kernel.
struct InputGrad {
    padding: Padding,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv2d_same_input_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = dims(l1, l2, self.name())?;
        let out = dispatch!(s1, l1, s2, l2, self.name(), |g, w| input_grad(
            g,
            w,
            d,
            self.padding
        ));
        Ok((out, Shape::from((d.b, d.cin, d.h, d.w))))
    }
}

/// dL/dw from dL/d output (B, Cout, H, W) and the input (B, Cin, H, W).
struct WeightGrad {
    padding: Padding,
    k: usize,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_same_weight_grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, cout, h, w) = l1.shape().dims4()?;
        let cin = l2.shape().dims4()?.1;
        let d = Dims {
            b,
            cin,
            cout,
            h,
            w,
            k: self.k,
        };
        let out = dispatch!(s1, l1, s2, l2, self.name(), |g, x| weight_grad(
            g,
            x,
            d,
            self.padding
        ));
        Ok((out, Shape::from((cout, cin, self.k, self.k))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Against candle's own conv2d (with explicit padding) in f64, values and both gradients.
    #[test]
    fn matches_candle_conv2d_and_its_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, 7, 9), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (2, 3, 5, 5), &dev)?)?;
        let g = Tensor::randn(0f64, 1.0, (2, 2, 7, 9), &dev)?;
        for padding in [Padding::Reflect, Padding::Zeros] {
            let ours = conv2d_same(x.as_tensor(), w.as_tensor(), padding)?;
            let padded = match padding {
                Padding::Reflect => super::super::reflect_pad2d(x.as_tensor(), 2)?,
                Padding::Zeros => x
                    .as_tensor()
                    .pad_with_zeros(2, 2, 2)?
                    .pad_with_zeros(3, 2, 2)?,
            };
            let theirs = padded.conv2d(w.as_tensor(), 0, 1, 1, 1)?;
            let diff = |a: &Tensor, b: &Tensor| -> Result<f64> {
                Ok((a - b)?.abs()?.max_all()?.to_scalar::<f64>()?)
            };
            assert!(diff(&ours, &theirs)? < 1e-12);
            let ga = ours.mul(&g)?.sum_all()?.backward()?;
            let gb = theirs.mul(&g)?.sum_all()?.backward()?;
            for v in [&x, &w] {
                assert!(
                    diff(
                        ga.get(v.as_tensor()).unwrap(),
                        gb.get(v.as_tensor()).unwrap()
                    )? < 1e-10,
                    "{padding:?}"
                );
            }
        }
        Ok(())
    }
}
