//! A bounds-checked front to the `gemm` crate (the GEMM candle's CPU matmul uses), for strided
//! views into larger buffers: the convolutions multiply bands of rows in place.

use ::gemm::Parallelism;

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

/// dst (m x n) = [dst +] a (m x k) * b (k x n). Every view is checked against its buffer, which
/// is what makes the raw-pointer call below sound. `threads` > 1 lets the GEMM split its blocks
/// over the rayon pool.
pub(super) fn gemm(
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
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    let stride = |s: usize| s as isize;
    // SAFETY: the three views were checked above to lie inside their slices, `dst` is borrowed
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
    Ok(())
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
}
