//! Drives `gemm.wgsl`: a tiled matrix product over strided operands, the building block of the
//! linear layer (forward, both gradients and the bias gradient are each one product).

use super::super::{Binding, Gpu, Program};
use super::{groups, u32_of, Dispatch, Kernels, TILE};
use crate::Result;

const SOURCE: &str = concat!(include_str!("tile.wgsl"), include_str!("gemm.wgsl"));

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "gemm",
        SOURCE,
        &[Uniform, Storage, Storage, Storage, Storage],
        &["gemm"],
    )
    .await
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    k: u32,
    bias: u32,
    a_row: u32,
    a_col: u32,
    b_row: u32,
    b_col: u32,
    c_row: u32,
    _pad: [u32; 3],
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
    let params = Params {
        m: u32_of(m, what)?,
        n: u32_of(n, what)?,
        k: u32_of(k, what)?,
        bias: bias.is_some() as u32,
        a_row: u32_of(a.row, what)?,
        a_col: u32_of(a.col, what)?,
        b_row: u32_of(b.row, what)?,
        b_col: u32_of(b.col, what)?,
        c_row: u32_of(c_row, what)?,
        _pad: [0; 3],
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
        groups(n.div_ceil(TILE), what)?,
        groups(m.div_ceil(TILE), what)?,
        1,
    );
    Ok(Dispatch::new(&kernels.gemm, "gemm", &group, workgroups))
}
