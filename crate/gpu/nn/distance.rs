//! Drives `distance.wgsl`: the gradient that forensics' ISP receives, of
//! `lambda * D(out, reference) - task_loss` with respect to the ISP's output, where D (L2 or
//! SSIM) keeps the output near the default processing; twin of `train::session`'s attack step.

use super::super::wgsl::{constants, uniform, Constant, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, record, shape_error, u32_of, Dispatch, GpuTensor, Kernels, GRID,
};
use crate::spec::forensics::{SSIM_C1, SSIM_C2, SSIM_WINDOW};
use crate::Result;

pub(super) fn source() -> Source {
    let shared = (SSIM_WINDOW as u32).declare("SSIM_WINDOW") + &constants![SSIM_C1, SSIM_C2];
    Source::new(
        &[Objective::WGSL, &shared],
        &[GRID, include_str!("distance.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "distance",
        &source().text(),
        &[Uniform, Storage, Storage, Storage, Storage, Storage],
        &["l2_grad", "ssim_windows", "ssim_grad"],
    )
    .await
}

/// How far the attacked output may drift from the default processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distance {
    /// Mean squared difference.
    L2,
    /// 1 - mean SSIM over 7x7 box windows (stride 1, no padding).
    Ssim,
}

uniform! {
    /// The forensic objective's sizes and weight.
    struct Objective {
        /// elements of out
        count: u32,
        /// SSIM windows: planes * out_h * out_w
        windows: u32,
        height: u32,
        width: u32,
        /// window positions per row and column: height - 6, width - 6
        out_h: u32,
        out_w: u32,
        lambda: f32,
        _pad0: u32,
    }
}

/// Writes `upstream = lambda * dD/d(out) - task_grad`: the gradient of forensics' objective
/// `lambda * D(out, reference) - task_loss` with respect to `out`, given the task loss's
/// gradient `task_grad`. The SSIM keeps per-window coefficients in a scratch buffer made here.
pub struct ForensicObjective {
    dispatches: Vec<Dispatch>,
}

impl ForensicObjective {
    /// `out`, `reference`, `task_grad` and `upstream` are (B, 3, H, W) images of one shape; the
    /// SSIM needs H and W of at least 7.
    // the four images are the op's interface; a struct of them would only rename the arguments
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        distance: Distance,
        lambda: f32,
        out: &GpuTensor,
        reference: &GpuTensor,
        task_grad: &GpuTensor,
        upstream: &GpuTensor,
    ) -> Result<Self> {
        let op = "forensic objective";
        let (b, c, h, w) = out.dims4(op, "out")?;
        expect_shape(op, "reference", reference, out.shape())?;
        expect_shape(op, "task_grad", task_grad, out.shape())?;
        expect_shape(op, "upstream", upstream, out.shape())?;
        if distance == Distance::Ssim && (h < SSIM_WINDOW || w < SSIM_WINDOW) {
            return Err(shape_error(
                op,
                format!("SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window does not fit a {h}x{w} tile"),
            ));
        }
        // SSIM window positions down and across (unused by L2, which takes smaller tiles)
        let (out_h, out_w) = (
            h.saturating_sub(SSIM_WINDOW - 1),
            w.saturating_sub(SSIM_WINDOW - 1),
        );
        let windows = b * c * out_h * out_w;
        let what = "a forensic objective";
        let uniform = gpu.uniform_buffer(
            "distance",
            &Objective {
                count: u32_of(out.element_count(), what)?,
                windows: u32_of(windows, what)?,
                height: u32_of(h, what)?,
                width: u32_of(w, what)?,
                out_h: u32_of(out_h, what)?,
                out_w: u32_of(out_w, what)?,
                lambda,
                _pad0: 0,
            },
        );
        let program = &kernels.distance;
        let bind = |coefficients: &wgpu::Buffer| {
            program.bind(
                gpu,
                &[
                    &uniform,
                    out.buffer(),
                    reference.buffer(),
                    task_grad.buffer(),
                    upstream.buffer(),
                    coefficients,
                ],
            )
        };
        let per_element = flat_grid(out.element_count());
        let dispatches = match distance {
            Distance::L2 => vec![Dispatch::new(
                program,
                "l2_grad",
                &bind(&kernels.spare(gpu)),
                per_element,
            )],
            Distance::Ssim => {
                // a tensor rather than a bare buffer, for its per-binding size check
                let coefficients = GpuTensor::zeros(gpu, "ssim coefficients", &[3, windows])?;
                let group = bind(coefficients.buffer());
                vec![
                    Dispatch::new(program, "ssim_windows", &group, flat_grid(windows)),
                    Dispatch::new(program, "ssim_grad", &group, per_element),
                ]
            }
        };
        Ok(Self { dispatches })
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        record(&self.dispatches, pass);
    }
}
