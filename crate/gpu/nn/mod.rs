//! The task models' layers on the GPU, for a training session that stays on the device: each op
//! is built once for its shapes (uniforms, scratch buffers and bind groups made then) and a step
//! only records dispatches into a compute pass, so no buffer is created while training.
//!
//! Every kernel has a CPU twin (candle or the `model` module) it is checked against; layouts are
//! PyTorch's (NCHW activations, (Cout, Cin, k, k) weights, (out, in) linear weights).
//! Limits are WebGPU's defaults: 256 invocations and 16 KB of workgroup memory per workgroup,
//! 65535 workgroups per dimension (long 1-D work wraps into a second dimension, see grid.wgsl),
//! at most 8 storage buffers per kernel.

pub mod adamw;
pub mod batch_norm;
pub mod conv;
pub mod distance;
pub mod elementwise;
mod gemm;
pub mod linear;
pub mod loss;
pub mod pool;
pub mod resample;
pub mod tensor;

use std::rc::Rc;

use super::wgsl::{constants, WORKGROUP};
use super::{Gpu, Program};
use crate::{Error, Result};

pub use adamw::DeviceAdamW;
pub use batch_norm::{BatchNorm2d, NormGrads};
pub use conv::{Conv2d, ConvGrads, ConvTensors};
pub use distance::{Distance, ForensicObjective};
pub use elementwise::{Add, FlipTurn, Relu};
pub use linear::{Linear, LinearGrads};
pub use loss::{CrossEntropy, DiceLoss};
pub use pool::{GlobalAvgPool, MaxPool2d};
pub use resample::{Concat, ConcatGrads, Upsample};
pub use tensor::GpuTensor;

/// WebGPU's default maximum of workgroups along one dimension of a dispatch.
const MAX_GROUPS: usize = 65535;
/// Values each thread of a first-level reduction sums (batch norm's statistics, the Dice sums).
const PER_THREAD: u32 = 16;
/// Values one first-level workgroup of those reductions sums.
const CHUNK: usize = (PER_THREAD * WORKGROUP) as usize;
/// Rows and columns of the output tile of one workgroup in tile.wgsl.
const TILE: u32 = 64;
/// Depth of the slices of K that tile.wgsl stages in workgroup memory.
const DEPTH: u32 = 16;
const _: () = assert!(
    TILE == 64 && DEPTH == 16 && WORKGROUP == 256,
    "tile.wgsl's thread layout is written for 64x64 tiles, 16-deep slices and 256 threads"
);

/// Prepended to the kernels that run one thread per element: their flat index.
const GRID: &str = include_str!("grid.wgsl");
/// Prepended to the matrix-product kernels: the shared micro-kernel.
const TILE_KERNEL: &str = include_str!("tile.wgsl");

/// The tile sizes tile.wgsl is written for, as WGSL.
fn tile_constants() -> String {
    constants![TILE, DEPTH]
}

/// Every program of the layer library, compiled once per device and shared by the ops built from
/// it.
pub struct Kernels {
    adamw: Rc<Program>,
    batch_norm: Rc<Program>,
    conv: Rc<Program>,
    distance: Rc<Program>,
    elementwise: Rc<Program>,
    gemm: Rc<Program>,
    loss: Rc<Program>,
    pool: Rc<Program>,
    resample: Rc<Program>,
}

impl Kernels {
    pub async fn new(gpu: &Gpu) -> Result<Self> {
        Ok(Self {
            adamw: Rc::new(adamw::program(gpu).await?),
            batch_norm: Rc::new(batch_norm::program(gpu).await?),
            conv: Rc::new(conv::program(gpu).await?),
            distance: Rc::new(distance::program(gpu).await?),
            elementwise: Rc::new(elementwise::program(gpu).await?),
            gemm: Rc::new(gemm::program(gpu).await?),
            loss: Rc::new(loss::program(gpu).await?),
            pool: Rc::new(pool::program(gpu).await?),
            resample: Rc::new(resample::program(gpu).await?),
        })
    }
}

/// Every program's source, for the checks that need no device.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(super) fn sources() -> Vec<super::wgsl::Source> {
    vec![
        adamw::source(),
        batch_norm::source(),
        conv::source(),
        distance::source(),
        elementwise::source(),
        gemm::source(),
        loss::source(),
        pool::source(),
        resample::source(),
    ]
}

impl Kernels {
    /// A buffer to bind where a kernel's layout has a slot this op does not use (wgpu wants every
    /// binding filled; never read or written). A fresh one per slot: WebGPU refuses one writable
    /// buffer bound twice in a group.
    fn spare(&self, gpu: &Gpu) -> wgpu::Buffer {
        gpu.empty_storage_buffer("unused binding", 1)
    }
}

/// One recorded kernel launch of an op: built with the op, replayed every step.
struct Dispatch {
    program: Rc<Program>,
    entry: &'static str,
    group: wgpu::BindGroup,
    workgroups: (u32, u32, u32),
}

impl Dispatch {
    fn new(
        program: &Rc<Program>,
        entry: &'static str,
        group: &wgpu::BindGroup,
        workgroups: (u32, u32, u32),
    ) -> Self {
        Self {
            program: program.clone(),
            entry,
            group: group.clone(),
            workgroups,
        }
    }

    fn record(&self, pass: &mut wgpu::ComputePass) {
        self.program
            .dispatch(pass, self.entry, &self.group, self.workgroups);
    }
}

/// Records a list of dispatches in order.
fn record(dispatches: &[Dispatch], pass: &mut wgpu::ComputePass) {
    for d in dispatches {
        d.record(pass);
    }
}

/// What an op records: its forward dispatches and, where it was built with gradient tensors,
/// its backward ones (asking for a backward it has not is an error, not a panic).
struct Passes {
    op: &'static str,
    forward: Vec<Dispatch>,
    backward: Option<Vec<Dispatch>>,
}

impl Passes {
    fn new(op: &'static str, forward: Vec<Dispatch>, backward: Option<Vec<Dispatch>>) -> Self {
        Self {
            op,
            forward,
            backward,
        }
    }

    /// One dispatch each way.
    fn single(op: &'static str, forward: Dispatch, backward: Option<Dispatch>) -> Self {
        Self::new(op, vec![forward], backward.map(|b| vec![b]))
    }

    fn forward(&self, pass: &mut wgpu::ComputePass) {
        record(&self.forward, pass);
    }

    fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        let steps = self
            .backward
            .as_ref()
            .ok_or_else(|| Error::Gpu(format!("{}: built without gradient tensors", self.op)))?;
        record(steps, pass);
        Ok(())
    }
}

/// Workgroups for `threads` independent threads of a WORKGROUP-wide kernel, wrapped into (x, y) so
/// neither exceeds 65535 (the kernel rebuilds the flat index with grid.wgsl's `flat_index`).
fn flat_grid(threads: usize) -> (u32, u32, u32) {
    let groups = threads.div_ceil(WORKGROUP as usize).max(1);
    let x = groups.min(MAX_GROUPS);
    (x as u32, groups.div_ceil(x) as u32, 1)
}

/// A count of workgroups along one dispatch dimension, or an error naming what is too large.
fn groups(count: usize, what: &str) -> Result<u32> {
    if count > MAX_GROUPS {
        return Err(Error::Gpu(format!(
            "{what} needs {count} workgroups along one dimension, more than WebGPU's {MAX_GROUPS}: \
             use a smaller batch or tile"
        )));
    }
    Ok(count.max(1) as u32)
}

/// An error for tensors whose shapes do not fit an op.
fn shape_error(op: &str, detail: String) -> Error {
    Error::Gpu(format!("{op}: {detail}"))
}

/// Checks that `tensor` has exactly `shape`.
fn expect_shape(op: &str, name: &str, tensor: &GpuTensor, shape: &[usize]) -> Result<()> {
    if tensor.shape() != shape {
        return Err(shape_error(
            op,
            format!("{name} has shape {:?}, expected {shape:?}", tensor.shape()),
        ));
    }
    Ok(())
}

/// u32 as the kernels' uniforms hold sizes, or an error for sizes beyond 32 bits.
fn u32_of(value: usize, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| Error::Gpu(format!("{what} ({value}) exceeds 32 bits")))
}
