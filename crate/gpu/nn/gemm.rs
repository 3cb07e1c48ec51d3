//! Drives `gemm.wgsl`: a tiled matrix product over strided operands, the building block of the
//! linear layer (forward, both gradients and the bias gradient are each one product).

use super::super::wgsl::{uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{groups, tile_constants, u32_of, Dispatch, Kernels, TILE, TILE_KERNEL};
use crate::Result;

pub(super) fn source() -> Source {
    Source::new(
        &[Gemm::WGSL, &tile_constants()],
        &[TILE_KERNEL, include_str!("gemm.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "gemm",
        &source().text(),
        &[Uniform, Storage, Storage, Storage, Storage],
        &["gemm"],
    )
    .await
}

uniform! {
    struct Gemm {
        m: u32,
        n: u32,
        k: u32,
        /// 1: add bias[j]
        bias: u32,
        a_row: u32,
        a_col: u32,
        b_row: u32,
        b_col: u32,
        c_row: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// A matrix operand: its buffer and the strides of its rows and columns (in elements).
pub(super) struct Operand<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub row: usize,
    pub col: usize,
}

/// The dispatch computing C (m x n, rows `c_row` apart) = A (m x k) B (k x n) (+ bias[j]).
pub(super) fn product(
    gpu: &Gpu,
    kernels: &Kernels,
    (m, n, k): (usize, usize, usize),
    a: Operand,
    b: Operand,
    (c, c_row): (&wgpu::Buffer, usize),
    bias: Option<&wgpu::Buffer>,
) -> Result<Dispatch> {
    let what = "a matrix product";
    let params = Gemm {
        m: u32_of(m, what)?,
        n: u32_of(n, what)?,
        k: u32_of(k, what)?,
        bias: bias.is_some() as u32,
        a_row: u32_of(a.row, what)?,
        a_col: u32_of(a.col, what)?,
        b_row: u32_of(b.row, what)?,
        b_col: u32_of(b.col, what)?,
        c_row: u32_of(c_row, what)?,
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    let uniform = gpu.uniform_buffer("gemm", &params);
    let group = kernels.gemm.bind(
        gpu,
        &[
            &uniform,
            a.buffer,
            b.buffer,
            c,
            bias.unwrap_or(&kernels.spare(gpu)),
        ],
    );
    let workgroups = (
        groups(n.div_ceil(TILE as usize), what)?,
        groups(m.div_ceil(TILE as usize), what)?,
        1,
    );
    Ok(Dispatch::new(&kernels.gemm, "gemm", &group, workgroups))
}
