//! Drives `loss.wgsl`: each task's loss, its gradient with respect to the logits and its metric
//! counts, in one recorded step; the few stats floats are what a training step reads back.

use super::super::wgsl::{constants, uniform, Source, Uniform, WORKGROUP};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, record, shape_error, u32_of, Dispatch, GpuTensor, Kernels, CHUNK,
    GRID, PER_THREAD,
};
use crate::Result;

pub(super) fn source() -> Source {
    Source::new(
        &[Loss::WGSL, &constants![PER_THREAD]],
        &[GRID, include_str!("loss.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "loss",
        &source().text(),
        &[Uniform, Storage, Storage, Storage, Storage, Storage],
        &["cross_entropy", "dice_partial", "dice_total", "dice_grad"],
    )
    .await
}

uniform! {
    struct Loss {
        rows: u32,
        classes: u32,
        /// dice: elements, and first-level chunks of CHUNK
        count: u32,
        chunks: u32,
    }
}

/// Mean softmax cross-entropy of logits (B, classes) against class indices (B, stored as f32),
/// as `candle_nn::loss::cross_entropy`. Writes dL/dlogits into `grad` and [loss, correct rows]
/// into `stats` (2); rows whose target is out of range add nothing to either.
pub struct CrossEntropy {
    dispatch: Dispatch,
}

impl CrossEntropy {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        logits: &GpuTensor,
        targets: &GpuTensor,
        grad: &GpuTensor,
        stats: &GpuTensor,
    ) -> Result<Self> {
        let op = "cross-entropy";
        let (rows, classes) = match *logits.shape() {
            [r, c] if c > 0 => (r, c),
            _ => {
                return Err(shape_error(
                    op,
                    format!("logits must be (B, classes), not {:?}", logits.shape()),
                ))
            }
        };
        expect_shape(op, "targets", targets, &[rows])?;
        expect_shape(op, "grad", grad, logits.shape())?;
        expect_shape(op, "stats", stats, &[2])?;
        let what = "a cross-entropy";
        let uniform = gpu.uniform_buffer(
            "cross-entropy",
            &Loss {
                rows: u32_of(rows, what)?,
                classes: u32_of(classes, what)?,
                count: 0,
                chunks: 0,
            },
        );
        let group = kernels.loss.bind(
            gpu,
            &[
                &uniform,
                logits.buffer(),
                targets.buffer(),
                grad.buffer(),
                stats.buffer(),
                &kernels.spare(gpu),
            ],
        );
        Ok(Self {
            dispatch: Dispatch::new(&kernels.loss, "cross_entropy", &group, (1, 1, 1)),
        })
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        self.dispatch.record(pass);
    }
}

/// Binary Dice loss from logits (B, 1, H, W) against a {0, 1} mask of the same shape, as
/// `model::losses::dice_loss`, with IoU counts. Writes dL/dlogits into `grad` and [loss,
/// intersection, union, ...] into `stats` (6); IoU is intersection / union (1 where the union is
/// empty, as `model::losses::iou`).
pub struct DiceLoss {
    dispatches: Vec<Dispatch>,
}

impl DiceLoss {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        logits: &GpuTensor,
        mask: &GpuTensor,
        grad: &GpuTensor,
        stats: &GpuTensor,
    ) -> Result<Self> {
        let op = "dice";
        let (b, c, h, w) = logits.dims4(op, "logits")?;
        if c != 1 {
            return Err(shape_error(op, format!("logits have {c} channels, not 1")));
        }
        expect_shape(op, "mask", mask, &[b, c, h, w])?;
        expect_shape(op, "grad", grad, logits.shape())?;
        expect_shape(op, "stats", stats, &[6])?;
        let count = logits.element_count();
        let chunks = count.div_ceil(CHUNK).max(1);
        let what = "a Dice loss";
        let uniform = gpu.uniform_buffer(
            "dice",
            &Loss {
                rows: u32_of(b, what)?,
                classes: 1,
                count: u32_of(count, what)?,
                chunks: u32_of(chunks, what)?,
            },
        );
        let partials = gpu.empty_storage_buffer("dice partials", 5 * chunks);
        let program = &kernels.loss;
        let group = program.bind(
            gpu,
            &[
                &uniform,
                logits.buffer(),
                mask.buffer(),
                grad.buffer(),
                stats.buffer(),
                &partials,
            ],
        );
        Ok(Self {
            dispatches: vec![
                Dispatch::new(
                    program,
                    "dice_partial",
                    &group,
                    flat_grid(chunks * WORKGROUP as usize),
                ),
                Dispatch::new(program, "dice_total", &group, (1, 1, 1)),
                Dispatch::new(program, "dice_grad", &group, flat_grid(count)),
            ],
        })
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass) {
        record(&self.dispatches, pass);
    }
}
