//! Raw access to candle's CPU storage for the crate's custom ops (convolutions, batch norm,
//! pooling): contiguous slices, with an error instead of a panic otherwise.

use candle_core::{CpuStorage, Layout};

/// The slice a contiguous layout covers.
pub(crate) fn contiguous<'a, T>(data: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("a custom op expected a contiguous tensor"),
    }
}

/// An f32 storage's contiguous slice.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match s {
        CpuStorage::F32(v) => contiguous(v, l),
        _ => candle_core::bail!("a custom op expected an f32 tensor"),
    }
}
