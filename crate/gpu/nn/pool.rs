//! Drives `pool.wgsl`: max pooling (the ResNet stem's 3x3/2 with padding 1, the U-Nets' 2x2/2)
//! and global average pooling, forward and backward; twins of `model::ops::max_pool2d` and the
//! ResNet head's mean over H and W.

use super::super::wgsl::{constants, uniform, Source, Uniform, WORKGROUP};
use super::super::{Binding, Gpu, Program};
use super::conv::output_size;
use super::{
    expect_shape, flat_grid, shape_error, u32_of, Dispatch, GpuTensor, Kernels, Passes, GRID,
};
use crate::Result;

/// The argmax of a window that lies wholly in the padding.
const NONE: u32 = u32::MAX;

pub(super) fn source() -> Source {
    Source::new(
        &[Pool::WGSL, &constants![NONE]],
        &[GRID, include_str!("pool.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "pooling",
        &source().text(),
        &[Uniform, Storage, Storage, Storage, Storage, Storage],
        &[
            "max_pool",
            "max_pool_backward",
            "avg_pool",
            "avg_pool_backward",
        ],
    )
    .await
}

uniform! {
    struct Pool {
        /// batch * channels
        planes: u32,
        height: u32,
        width: u32,
        out_h: u32,
        out_w: u32,
        k: u32,
        stride: u32,
        pad: u32,
    }
}

/// Binds (x, y, argmax, dy, dx) for both directions of a pooling op.
fn build(
    gpu: &Gpu,
    kernels: &Kernels,
    params: &Pool,
    (x, y, argmax): (&GpuTensor, &GpuTensor, &wgpu::Buffer),
    grads: Option<(&GpuTensor, &GpuTensor)>,
    entries: [&'static str; 2],
    forward_threads: usize,
) -> Result<Passes> {
    let uniform = gpu.uniform_buffer("pooling", params);
    let program = &kernels.pool;
    let bind = |dy: &wgpu::Buffer, dx: &wgpu::Buffer| {
        program.bind(gpu, &[&uniform, x.buffer(), y.buffer(), argmax, dy, dx])
    };
    let forward = Dispatch::new(
        program,
        entries[0],
        &bind(&kernels.spare(gpu), &kernels.spare(gpu)),
        flat_grid(forward_threads),
    );
    let backward = match grads {
        None => None,
        Some((dy, dx)) => {
            expect_shape(entries[1], "dy", dy, y.shape())?;
            expect_shape(entries[1], "dx", dx, x.shape())?;
            Some(Dispatch::new(
                program,
                entries[1],
                &bind(dy.buffer(), dx.buffer()),
                flat_grid(x.element_count()),
            ))
        }
    };
    Ok(Passes::single(entries[0], forward, backward))
}

/// Max pooling k x k with stride and zero padding (padding never wins).
pub struct MaxPool2d(Passes);

impl MaxPool2d {
    /// `window` is (k, stride, pad); `grads` is (dy, dx) where the backward pass is wanted.
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        y: &GpuTensor,
        (k, stride, pad): (usize, usize, usize),
        grads: Option<(&GpuTensor, &GpuTensor)>,
    ) -> Result<Self> {
        let op = "max pool";
        let (b, c, h, w) = x.dims4(op, "x")?;
        let (Some(out_h), Some(out_w)) = (
            output_size(h, k, stride, pad),
            output_size(w, k, stride, pad),
        ) else {
            return Err(shape_error(
                op,
                format!("a {k}x{k} window (stride {stride}, pad {pad}) does not fit {h}x{w}"),
            ));
        };
        expect_shape(op, "y", y, &[b, c, out_h, out_w])?;
        let what = "a max pool";
        let params = Pool {
            planes: u32_of(b * c, what)?,
            height: u32_of(h, what)?,
            width: u32_of(w, what)?,
            out_h: u32_of(out_h, what)?,
            out_w: u32_of(out_w, what)?,
            k: u32_of(k, what)?,
            stride: u32_of(stride, what)?,
            pad: u32_of(pad, what)?,
        };
        let argmax = gpu.empty_storage_buffer("max pool argmax", y.element_count());
        Ok(Self(build(
            gpu,
            kernels,
            &params,
            (x, y, &argmax),
            grads,
            ["max_pool", "max_pool_backward"],
            y.element_count(),
        )?))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}

/// The mean over H and W: (B, C, H, W) -> (B, C).
pub struct GlobalAvgPool(Passes);

impl GlobalAvgPool {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        y: &GpuTensor,
        grads: Option<(&GpuTensor, &GpuTensor)>,
    ) -> Result<Self> {
        let op = "global average pool";
        let (b, c, h, w) = x.dims4(op, "x")?;
        expect_shape(op, "y", y, &[b, c])?;
        let what = "a global average pool";
        let params = Pool {
            planes: u32_of(b * c, what)?,
            height: u32_of(h, what)?,
            width: u32_of(w, what)?,
            out_h: 1,
            out_w: 1,
            k: 0,
            stride: 1,
            pad: 0,
        };
        // one workgroup per plane
        Ok(Self(build(
            gpu,
            kernels,
            &params,
            (x, y, &kernels.spare(gpu)),
            grads,
            ["avg_pool", "avg_pool_backward"],
            (b * c) * WORKGROUP as usize,
        )?))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}
