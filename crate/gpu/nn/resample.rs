//! Drives `resample.wgsl`: nearest upsampling by an integer factor and channel concatenation,
//! forward and backward (the U-Net and U-Net++ decoders).

use super::super::wgsl::{uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, shape_error, u32_of, Dispatch, GpuTensor, Kernels, Passes, GRID,
};
use crate::Result;

pub(super) fn source() -> Source {
    Source::new(&[Resample::WGSL], &[GRID, include_str!("resample.wgsl")])
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "resampling",
        &source().text(),
        &[Uniform, Storage, Storage],
        &["upsample", "upsample_backward", "concat", "concat_backward"],
    )
    .await
}

uniform! {
    struct Resample {
        batch: u32,
        /// of the small tensor
        channels: u32,
        height: u32,
        width: u32,
        factor: u32,
        /// of the large tensor (concatenation), and where the part's channels start in it
        large_channels: u32,
        offset: u32,
        /// 1: the concatenation's backward adds into the part's gradient instead of overwriting it
        accumulate: u32,
    }
}

/// Nearest upsampling (B, C, H, W) -> (B, C, f H, f W), as candle's `upsample_nearest2d` for
/// integer factors (the only ones candle differentiates).
pub struct Upsample(Passes);

impl Upsample {
    /// `grads` is (dy, dx) where the backward pass is wanted.
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        x: &GpuTensor,
        y: &GpuTensor,
        grads: Option<(&GpuTensor, &GpuTensor)>,
    ) -> Result<Self> {
        let op = "upsample";
        let (b, c, h, w) = x.dims4(op, "x")?;
        let (_, _, big_h, big_w) = y.dims4(op, "y")?;
        let factor = big_h.checked_div(h).unwrap_or(0);
        if factor == 0 || big_h != h * factor || big_w != w * factor {
            return Err(shape_error(
                op,
                format!(
                    "{:?} -> {:?} is not one integer factor along both axes",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        expect_shape(op, "y", y, &[b, c, big_h, big_w])?;
        let what = "an upsampling";
        let uniform = gpu.uniform_buffer(
            "upsample",
            &Resample {
                batch: u32_of(b, what)?,
                channels: u32_of(c, what)?,
                height: u32_of(h, what)?,
                width: u32_of(w, what)?,
                factor: u32_of(factor, what)?,
                large_channels: u32_of(c, what)?,
                offset: 0,
                accumulate: 0,
            },
        );
        let program = &kernels.resample;
        let group = program.bind(gpu, &[&uniform, x.buffer(), y.buffer()]);
        let forward = Dispatch::new(program, "upsample", &group, flat_grid(y.element_count()));
        let backward = match grads {
            None => None,
            Some((dy, dx)) => {
                expect_shape(op, "dy", dy, y.shape())?;
                expect_shape(op, "dx", dx, x.shape())?;
                let group = program.bind(gpu, &[&uniform, dx.buffer(), dy.buffer()]);
                Some(Dispatch::new(
                    program,
                    "upsample_backward",
                    &group,
                    flat_grid(x.element_count()),
                ))
            }
        };
        Ok(Self(Passes::single(op, forward, backward)))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}

/// Where the concatenation's backward reads dy and writes each part's gradient; with
/// `accumulate` it adds into them (a part that also feeds other ops, as in U-Net++).
pub struct ConcatGrads<'a> {
    pub dy: &'a GpuTensor,
    pub dxs: Vec<&'a GpuTensor>,
    pub accumulate: bool,
}

/// Concatenation of (B, C_i, H, W) parts along the channels into (B, sum C_i, H, W).
pub struct Concat(Passes);

impl Concat {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        parts: &[&GpuTensor],
        y: &GpuTensor,
        grads: Option<ConcatGrads>,
    ) -> Result<Self> {
        let op = "concat";
        let (b, large_channels, h, w) = y.dims4(op, "y")?;
        if let Some(g) = &grads {
            expect_shape(op, "dy", g.dy, y.shape())?;
            if g.dxs.len() != parts.len() {
                return Err(shape_error(
                    op,
                    format!("{} gradients for {} parts", g.dxs.len(), parts.len()),
                ));
            }
        }
        let program = &kernels.resample;
        let what = "a concatenation";
        let mut offset = 0;
        let mut forward = Vec::new();
        let mut backward = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let (_, c, _, _) = part.dims4(op, "a part")?;
            expect_shape(op, "a part", part, &[b, c, h, w])?;
            let uniform = gpu.uniform_buffer(
                "concat",
                &Resample {
                    batch: u32_of(b, what)?,
                    channels: u32_of(c, what)?,
                    height: u32_of(h, what)?,
                    width: u32_of(w, what)?,
                    factor: 1,
                    large_channels: u32_of(large_channels, what)?,
                    offset: u32_of(offset, what)?,
                    accumulate: grads.as_ref().is_some_and(|g| g.accumulate) as u32,
                },
            );
            let threads = flat_grid(part.element_count());
            let group = program.bind(gpu, &[&uniform, part.buffer(), y.buffer()]);
            forward.push(Dispatch::new(program, "concat", &group, threads));
            if let Some(g) = &grads {
                let dx = g.dxs[i];
                expect_shape(op, "a part's gradient", dx, part.shape())?;
                let group = program.bind(gpu, &[&uniform, dx.buffer(), g.dy.buffer()]);
                backward.push(Dispatch::new(program, "concat_backward", &group, threads));
            }
            offset += c;
        }
        if offset != large_channels {
            return Err(shape_error(
                op,
                format!("parts of {offset} channels into {large_channels}"),
            ));
        }
        Ok(Self(Passes::new(op, forward, grads.map(|_| backward))))
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}
