//! A bounds-checked front to the matrix-product kernels, for strided views into larger buffers:
//! the convolutions multiply bands of rows in place. Natively the `gemm` crate's (the GEMM
//! candle's CPU matmul uses, with AVX/FMA kernels); in the page the packed SIMD128 one.

use ::gemm::Parallelism;

use super::packed_gemm;

/// A matrix-product kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The `gemm` crate.
    GemmCrate,
    /// `packed_gemm`: 4-lane register tiles (SIMD128 in the page).
    Packed,
}

impl Kernel {
    /// The kernel the convolutions use on this target.
    pub const OF_THIS_TARGET: Kernel = if cfg!(target_arch = "wasm32") {
        Kernel::Packed
    } else {
        Kernel::GemmCrate
    };
}

/// A matrix view: `rows x cols` elements of `data` at `offset + r * row_stride + c * col_stride`.
#[derive(Clone, Copy)]
pub(super) struct View {
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl View {
    /// A dense row-major block.
    pub fn dense(offset: usize, rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            offset,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The same elements read as the transposed matrix.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether distinct (row, column) pairs are distinct elements: a destination must be, for its
    /// blocks to be written by separate threads. Called once `end` has found no overflow.
    fn is_one_to_one(&self) -> bool {
        self.rows <= 1 && (self.cols <= 1 || self.col_stride > 0)
            || self.cols <= 1 && self.row_stride > 0
            || self.col_stride > 0 && self.row_stride > self.col_stride * (self.cols - 1)
            || self.row_stride > 0 && self.col_stride > self.row_stride * (self.rows - 1)
    }

    /// One past the last element the view touches, or an error where that overflows.
    fn end(&self) -> candle_core::Result<usize> {
        if self.rows == 0 || self.cols == 0 {
            return Ok(self.offset);
        }
        (self.rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|r| r.checked_add((self.cols - 1).checked_mul(self.col_stride)?))
            .and_then(|last| last.checked_add(self.offset + 1))
            .ok_or_else(|| candle_core::Error::Msg("a matrix view overflows".into()))
    }
}

/// dst (m x n) = [dst +] a (m x k) * b (k x n), by this target's kernel. Every view is checked
/// against its buffer, which is what makes the kernels' raw-pointer writes sound. `threads` > 1
/// lets the kernel split its blocks over the rayon pool.
pub(super) fn gemm(
    dst: (&mut [f32], View),
    accumulate: bool,
    a: (&[f32], View),
    b: (&[f32], View),
    threads: usize,
) -> candle_core::Result<()> {
    gemm_by(Kernel::OF_THIS_TARGET, dst, accumulate, a, b, threads)
}

/// [`gemm`] by a kernel of the caller's choice.
fn gemm_by(
    kernel: Kernel,
    (dst, d): (&mut [f32], View),
    accumulate: bool,
    (a, av): (&[f32], View),
    (b, bv): (&[f32], View),
    threads: usize,
) -> candle_core::Result<()> {
    if av.rows != d.rows || bv.cols != d.cols || av.cols != bv.rows {
        candle_core::bail!(
            "gemm shapes disagree: {}x{} * {}x{} -> {}x{}",
            av.rows,
            av.cols,
            bv.rows,
            bv.cols,
            d.rows,
            d.cols
        );
    }
    if d.end()? > dst.len() || av.end()? > a.len() || bv.end()? > b.len() {
        candle_core::bail!("gemm view outside its buffer");
    }
    if d.rows == 0 || d.cols == 0 {
        return Ok(());
    }
    if !d.is_one_to_one() {
        candle_core::bail!("gemm destination view writes some elements twice");
    }
    match kernel {
        Kernel::Packed => packed_gemm::gemm((dst, d), accumulate, (a, av), (b, bv), threads),
        Kernel::GemmCrate => gemm_crate((dst, d), accumulate, (a, av), (b, bv), threads),
    }
    Ok(())
}

/// The `gemm` crate on checked views.
fn gemm_crate(
    (dst, d): (&mut [f32], View),
    accumulate: bool,
    (a, av): (&[f32], View),
    (b, bv): (&[f32], View),
    threads: usize,
) {
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let stride = |s: usize| s as isize;
    // SAFETY: the three views were checked to lie inside their slices, `dst` is borrowed
    // mutably and so aliases neither input.
    unsafe {
        ::gemm::gemm(
            d.rows,
            d.cols,
            av.cols,
            dst.as_mut_ptr().add(d.offset),
            stride(d.col_stride),
            stride(d.row_stride),
            accumulate,
            a.as_ptr().add(av.offset),
            stride(av.col_stride),
            stride(av.row_stride),
            b.as_ptr().add(bv.offset),
            stride(bv.col_stride),
            stride(bv.row_stride),
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A dense, row-major m x n = (m x k) * (k x n) product by `kernel`, each operand stored as
/// given or transposed (the three products a convolution's passes make): the parity tests' and
/// the benchmark's entry to the kernels.
pub fn matmul(
    kernel: Kernel,
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    (a, a_transposed): (&[f32], bool),
    (b, b_transposed): (&[f32], bool),
    threads: usize,
) -> candle_core::Result<()> {
    let stored = |rows, cols, transposed| {
        if transposed {
            View::dense(0, cols, rows, rows).t()
        } else {
            View::dense(0, rows, cols, cols)
        }
    };
    gemm_by(
        kernel,
        (dst, View::dense(0, m, n, n)),
        accumulate,
        (a, stored(m, k, a_transposed)),
        (b, stored(k, n, b_transposed)),
        threads,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_multiply_and_accumulate() {
        // a = [[1, 2], [3, 4]] stored transposed; b = [[5], [6]]
        let a = [1.0, 3.0, 2.0, 4.0];
        let b = [5.0, 6.0];
        let mut dst = [1.0, 100.0, 1.0];
        let d = View {
            offset: 0,
            rows: 2,
            cols: 1,
            row_stride: 2,
            col_stride: 1,
        };
        let av = View::dense(0, 2, 2, 2).t();
        gemm(
            (&mut dst, d),
            true,
            (&a, av),
            (&b, View::dense(0, 2, 1, 1)),
            1,
        )
        .unwrap();
        assert_eq!(dst, [18.0, 100.0, 40.0]);
        let too_far = View::dense(2, 2, 1, 2);
        let column = (&b[..], View::dense(0, 2, 1, 1));
        assert!(gemm((&mut dst, too_far), false, (&a, av), column, 1).is_err());
    }

    /// The packed kernel's blocks are the same at any thread count, and so is every sum.
    #[test]
    fn the_packed_kernel_gives_the_same_bits_at_any_thread_count() {
        let (m, n, k) = (100, 300, 600);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let run = |threads| {
            let mut dst = vec![0.5; m * n];
            let operands = ((&a[..], false), (&b[..], true));
            matmul(
                Kernel::Packed,
                (m, n, k),
                &mut dst,
                true,
                operands.0,
                operands.1,
                threads,
            )
            .unwrap();
            dst
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let threaded = pool.install(|| run(3));
        assert!(run(1)
            .iter()
            .zip(&threaded)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn a_destination_that_writes_an_element_twice_is_refused() {
        let (a, b) = ([1.0f32; 4], [1.0f32; 4]);
        let mut dst = [0.0f32; 4];
        let overlapping = View::dense(0, 2, 2, 1);
        let operand = View::dense(0, 2, 2, 2);
        let err = gemm_by(
            Kernel::Packed,
            (&mut dst, overlapping),
            false,
            (&a, operand),
            (&b, operand),
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
