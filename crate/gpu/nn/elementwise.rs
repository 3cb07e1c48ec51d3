//! Drives `elementwise.wgsl`: ReLU, sums and the weak augmentation, forward and backward.

use super::super::wgsl::{uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, shape_error, u32_of, Dispatch, GpuTensor, Kernels, Passes, GRID,
};
use crate::Result;

pub(super) fn source() -> Source {
    Source::new(
        &[Elementwise::WGSL],
        &[GRID, include_str!("elementwise.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "elementwise",
        &source().text(),
        &[Uniform, Storage, Storage, Storage],
        &[
            "relu",
            "relu_backward",
            "add",
            "accumulate",
            "copy",
            "augment",
            "augment_backward",
        ],
    )
    .await
}

uniform! {
    struct Elementwise {
        count: u32,
        height: u32,
        width: u32,
        /// bit 0: flip left-right, bit 1: flip up-down, bits 2-3: quarter turns counter-clockwise
        flags: u32,
    }
}

/// The uniform of an elementwise op over `t` (its last two dimensions as the plane).
fn params(t: &GpuTensor) -> Result<Elementwise> {
    let dims = t.shape();
    let plane = |i: usize| dims.len().checked_sub(i).map_or(1, |at| dims[at]);
    let what = "an elementwise op";
    Ok(Elementwise {
        count: u32_of(t.element_count(), what)?,
        height: u32_of(plane(2), what)?,
        width: u32_of(plane(1), what)?,
        flags: 0,
    })
}

/// One dispatch of `entry` over every element of `like`, binding (a, b, out).
fn elementwise(
    gpu: &Gpu,
    kernels: &Kernels,
    entry: &'static str,
    like: &GpuTensor,
    uniform: &wgpu::Buffer,
    [a, b, out]: [&wgpu::Buffer; 3],
) -> Dispatch {
    let group = kernels.elementwise.bind(gpu, &[uniform, a, b, out]);
    Dispatch::new(
        &kernels.elementwise,
        entry,
        &group,
        flat_grid(like.element_count()),
    )
}

/// y = max(x, 0); dx = dy where x >= 0 (candle's convention at 0).
pub struct Relu(Passes);

impl Relu {
    /// `grads` is (dy, dx) where the backward pass is wanted.
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        y: &GpuTensor,
        grads: Option<(&GpuTensor, &GpuTensor)>,
    ) -> Result<Self> {
        expect_shape("relu", "y", y, x.shape())?;
        let uniform = gpu.uniform_buffer("relu", &params(x)?);
        let forward = elementwise(
            gpu,
            kernels,
            "relu",
            x,
            &uniform,
            [x.buffer(), &kernels.spare(gpu), y.buffer()],
        );
        let backward = match grads {
            None => None,
            Some((dy, dx)) => {
                expect_shape("relu", "dy", dy, x.shape())?;
                expect_shape("relu", "dx", dx, x.shape())?;
                Some(elementwise(
                    gpu,
                    kernels,
                    "relu_backward",
                    x,
                    &uniform,
                    [x.buffer(), dy.buffer(), dx.buffer()],
                ))
            }
        };
        Ok(Self(Passes::single("relu", forward, backward)))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}

/// out = a + b (a residual connection; its backward hands dy to both inputs unchanged), or
/// out += a (gradients meeting where a tensor fed several ops).
pub struct Add {
    dispatch: Dispatch,
}

impl Add {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        a: &GpuTensor,
        b: &GpuTensor,
        out: &GpuTensor,
    ) -> Result<Self> {
        expect_shape("add", "b", b, a.shape())?;
        expect_shape("add", "out", out, a.shape())?;
        let uniform = gpu.uniform_buffer("add", &params(a)?);
        Ok(Self {
            dispatch: elementwise(
                gpu,
                kernels,
                "add",
                a,
                &uniform,
                [a.buffer(), b.buffer(), out.buffer()],
            ),
        })
    }

    /// out += a.
    pub fn accumulate(
        gpu: &Gpu,
        kernels: &Kernels,
        a: &GpuTensor,
        out: &GpuTensor,
    ) -> Result<Self> {
        Self::unary(gpu, kernels, "accumulate", a, out)
    }

    /// out = a (a residual's gradient handed to its second input).
    pub fn copy(gpu: &Gpu, kernels: &Kernels, a: &GpuTensor, out: &GpuTensor) -> Result<Self> {
        Self::unary(gpu, kernels, "copy", a, out)
    }

    fn unary(
        gpu: &Gpu,
        kernels: &Kernels,
        entry: &'static str,
        a: &GpuTensor,
        out: &GpuTensor,
    ) -> Result<Self> {
        expect_shape(entry, "out", out, a.shape())?;
        let uniform = gpu.uniform_buffer(entry, &params(a)?);
        Ok(Self {
            dispatch: elementwise(
                gpu,
                kernels,
                entry,
                a,
                &uniform,
                [a.buffer(), &kernels.spare(gpu), out.buffer()],
            ),
        })
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.dispatch.record(pass);
    }
}

/// The paper's weak augmentation on a (B, C, H, W) batch, as `train::augment::Augment`: flips
/// left-right and up-down, then quarter turns counter-clockwise (odd turns need H == W). The
/// choice is a uniform set before each step ([`FlipTurn::set`]); the op is built once.
pub struct FlipTurn {
    uniform: wgpu::Buffer,
    base: Elementwise,
    passes: Passes,
}

impl FlipTurn {
    /// `grads` is (dy, dx) where the gradient must flow back through the augmentation (into a
    /// trained ISP).
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        y: &GpuTensor,
        grads: Option<(&GpuTensor, &GpuTensor)>,
    ) -> Result<Self> {
        let op = "augment";
        x.dims4(op, "x")?;
        expect_shape(op, "y", y, x.shape())?;
        let base = params(x)?;
        let uniform = gpu.uniform_buffer("augment", &base);
        let forward = elementwise(
            gpu,
            kernels,
            "augment",
            x,
            &uniform,
            [x.buffer(), &kernels.spare(gpu), y.buffer()],
        );
        let backward = match grads {
            None => None,
            Some((dy, dx)) => {
                expect_shape(op, "dy", dy, x.shape())?;
                expect_shape(op, "dx", dx, x.shape())?;
                Some(elementwise(
                    gpu,
                    kernels,
                    "augment_backward",
                    x,
                    &uniform,
                    [dy.buffer(), &kernels.spare(gpu), dx.buffer()],
                ))
            }
        };
        Ok(Self {
            uniform,
            base,
            passes: Passes::single(op, forward, backward),
        })
    }

    /// Chooses this step's flips and quarter turns; takes effect at the next submission.
    pub fn set(&self, gpu: &Gpu, flip_h: bool, flip_v: bool, quarter_turns: u8) -> Result<()> {
        if quarter_turns % 2 == 1 && self.base.height != self.base.width {
            return Err(shape_error(
                "augment",
                "a quarter turn needs square tiles".into(),
            ));
        }
        let flags = flip_h as u32 | (flip_v as u32) << 1 | u32::from(quarter_turns % 4) << 2;
        gpu.queue.write_buffer(
            &self.uniform,
            0,
            bytemuck::bytes_of(&Elementwise { flags, ..self.base }),
        );
        Ok(())
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.passes.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.passes.backward(pass)
    }
}
