//! The task models' heavy ops as candle custom ops with fast, memory-bounded backward passes.
//!
//! candle's conv2d keeps a full im2col buffer and computes its input gradient with a direct
//! conv_transpose2d that is 10-20x slower than the forward on the CPU; its max pool has no
//! backward for a 3x3/2 window. Here a convolution is a sequence of GEMMs over bands of output
//! rows whose columns are gathered (and for the backward pass gathered again) into a small scratch
//! buffer, so nothing of size B*C*k*k*H*W stays alive between the passes.

mod conv;
mod gemm;
mod max_pool;
mod packed_gemm;
mod upsample;

pub use conv::{band_pixels, conv2d};
pub use gemm::{matmul, Kernel};
pub use max_pool::max_pool2d;
pub use upsample::upsample_nearest;

/// Geometry of a convolution or pooling window over (B, C, H, W).
#[derive(Debug, Clone, Copy)]
struct Window {
    k: usize,
    stride: usize,
    pad: usize,
}

impl Window {
    /// Output length along an axis of length `n`; an error where the window does not fit (a tile
    /// smaller than the kernel, a zero stride) instead of an underflow.
    fn out(&self, n: usize) -> candle_core::Result<usize> {
        let padded = n + 2 * self.pad;
        if self.k == 0 || self.stride == 0 || padded < self.k {
            candle_core::bail!(
                "a {k}x{k} window (stride {s}, padding {p}) does not fit an input of {n} pixels: \
                 use larger tiles",
                k = self.k,
                s = self.stride,
                p = self.pad
            );
        }
        Ok((padded - self.k) / self.stride + 1)
    }

    /// The input coordinate an output coordinate and a kernel offset read, if inside the input.
    #[inline]
    fn source(&self, o: usize, kk: usize, n: usize) -> Option<usize> {
        (o * self.stride + kk)
            .checked_sub(self.pad)
            .filter(|&i| i < n)
    }

    /// The output coordinates (of `out`) whose input for kernel offset `kk` lies inside an axis
    /// of length `n`: [`Self::source`] is `o * stride + kk - pad` for these and None for the
    /// rest, so a row's loop needs no test per element.
    fn inside(&self, kk: usize, n: usize, out: usize) -> std::ops::Range<usize> {
        let first = self.pad.saturating_sub(kk).div_ceil(self.stride).min(out);
        let last = (n + self.pad).saturating_sub(kk).div_ceil(self.stride);
        first..last.clamp(first, out)
    }
}

/// (B, C, H, W) as usizes, with the element count checked so products cannot wrap on wasm32.
fn dims4(shape: &candle_core::Shape) -> candle_core::Result<(usize, usize, usize, usize)> {
    let (b, c, h, w) = shape.dims4()?;
    match b
        .checked_mul(c)
        .and_then(|n| n.checked_mul(h))
        .and_then(|n| n.checked_mul(w))
    {
        Some(_) => Ok((b, c, h, w)),
        None => candle_core::bail!("a tensor of {b}x{c}x{h}x{w} values is too large"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use candle_core::Tensor;

    use super::Window;

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

    /// `inside` is exactly the outputs for which `source` finds an input, for every geometry of
    /// small windows, including inputs smaller than the padding.
    #[test]
    fn inside_is_where_source_finds_an_input() {
        for (k, stride, pad) in
            (1..=7).flat_map(|k| (1..=3).flat_map(move |s| (0..=3).map(move |p| (k, s, p))))
        {
            let win = Window { k, stride, pad };
            for n in 1..12 {
                let Ok(out) = win.out(n) else { continue };
                for kk in 0..k {
                    let expected: Vec<usize> = (0..out)
                        .filter(|&o| win.source(o, kk, n).is_some())
                        .collect();
                    let inside: Vec<usize> = win.inside(kk, n, out).collect();
                    assert_eq!(
                        inside, expected,
                        "k {k} stride {stride} pad {pad} n {n} kk {kk}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_window_larger_than_the_input_is_an_error() {
        let w = Window {
            k: 7,
            stride: 2,
            pad: 1,
        };
        assert!(w.out(2).unwrap_err().to_string().contains("does not fit"));
        assert_eq!(w.out(5).unwrap(), 1);
        let zero = Window {
            k: 1,
            stride: 0,
            pad: 0,
        };
        assert!(zero.out(4).is_err());
    }
}
