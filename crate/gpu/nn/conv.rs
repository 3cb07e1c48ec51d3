//! Drives `conv.wgsl`: 2-D convolution (any square kernel, stride, zero padding; the models use
//! 1, 3 and 7) forward and backward as implicit GEMMs, the twin of `model::ops::conv2d`.

use super::super::wgsl::{uniform, Source, Uniform};
use super::super::{Binding, Gpu, Program};
use super::{
    expect_shape, flat_grid, groups, shape_error, tile_constants, u32_of, Dispatch, GpuTensor,
    Kernels, Passes, GRID, MAX_GROUPS, TILE, TILE_KERNEL,
};
use crate::Result;

/// K terms per split of the weight gradient's reduction: each split sums this many in f32, the
/// splits are then summed in a second pass, so long reductions (batch x pixels) stay accurate.
const SPLIT_TERMS: usize = 1024;
/// Most partial-sum floats a layer keeps for its weight gradient (16 MB).
const PARTIALS_BUDGET: usize = 4 << 20;

pub(super) fn source() -> Source {
    Source::new(
        &[Conv::WGSL, &tile_constants()],
        &[GRID, TILE_KERNEL, include_str!("conv.wgsl")],
    )
}

pub(super) async fn program(gpu: &Gpu) -> Result<Program> {
    use Binding::{Storage, Uniform};
    Program::new(
        gpu,
        "convolution",
        &source().text(),
        &[
            Uniform, Storage, Storage, Storage, Storage, Storage, Storage, Storage, Storage,
        ],
        &["forward", "input_grad", "weight_grad", "weight_reduce"],
    )
    .await
}

uniform! {
    struct Conv {
        batch: u32,
        cin: u32,
        height: u32,
        width: u32,
        cout: u32,
        k: u32,
        stride: u32,
        pad: u32,
        out_h: u32,
        out_w: u32,
        has_bias: u32,
        splits: u32,
        chunk: u32,
        /// weight-gradient columns: cin k k, plus one for the bias
        cols: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// The tensors a convolution reads and writes in the forward pass: x (B, Cin, H, W), weight
/// (Cout, Cin, k, k), an optional bias (Cout) and y (B, Cout, Ho, Wo).
pub struct ConvTensors<'a> {
    pub x: &'a GpuTensor,
    pub weight: &'a GpuTensor,
    pub bias: Option<&'a GpuTensor>,
    pub y: &'a GpuTensor,
}

/// Where the backward pass reads dy and writes the gradients; `dx` is `None` for a first layer,
/// `dbias` must be given exactly when the layer has a bias.
pub struct ConvGrads<'a> {
    pub dy: &'a GpuTensor,
    pub dx: Option<&'a GpuTensor>,
    pub dweight: &'a GpuTensor,
    pub dbias: Option<&'a GpuTensor>,
}

pub struct Conv2d(Passes);

/// The operation, as shape errors name it.
const OP: &str = "conv2d";
/// What is too large, as size errors name it.
const WHAT: &str = "a convolution";

/// Output length of a window of `k` with `stride` and `pad` over `n` pixels, if it fits.
pub fn output_size(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n + 2 * pad;
    (k > 0 && stride > 0 && padded >= k).then(|| (padded - k) / stride + 1)
}

/// Workgroups for an output of `rows` x `columns` in 64 x 64 tiles: column tiles along x, wrapping
/// into z past WebGPU's 65535 (conv.wgsl rebuilds the tile index), row tiles along y.
fn wrapped_tiles(columns: usize, rows: usize, what: &str) -> Result<(u32, u32, u32)> {
    let tiles = columns.div_ceil(TILE as usize).max(1);
    let x = tiles.min(MAX_GROUPS);
    Ok((
        x as u32,
        groups(rows.div_ceil(TILE as usize), what)?,
        groups(tiles.div_ceil(x), what)?,
    ))
}

impl Conv2d {
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        t: &ConvTensors,
        stride: usize,
        pad: usize,
        grads: Option<ConvGrads>,
    ) -> Result<Self> {
        let params = Self::params(t, stride, pad)?;
        let uniform = gpu.uniform_buffer("conv2d", &params);
        let program = &kernels.conv;
        let group = program.bind(
            gpu,
            &[
                &uniform,
                t.x.buffer(),
                t.weight.buffer(),
                t.bias.map_or(&kernels.spare(gpu), |b| b.buffer()),
                t.y.buffer(),
                &kernels.spare(gpu),
                &kernels.spare(gpu),
                &kernels.spare(gpu),
                &kernels.spare(gpu),
            ],
        );
        let [batch, cout, out_h, out_w] =
            [params.batch, params.cout, params.out_h, params.out_w].map(|v| v as usize);
        let forward = vec![Dispatch::new(
            program,
            "forward",
            &group,
            wrapped_tiles(batch * out_h * out_w, cout, WHAT)?,
        )];
        let backward = match grads {
            None => None,
            Some(g) => Some(Self::backward_steps(
                gpu, kernels, t, &g, &params, &uniform,
            )?),
        };
        Ok(Self(Passes::new(OP, forward, backward)))
    }

    /// The shader's parameters for x and weight (checked against each other and y), with the
    /// weight gradient's reduction split.
    fn params(t: &ConvTensors, stride: usize, pad: usize) -> Result<Conv> {
        let (batch, cin, height, width) = t.x.dims4(OP, "x")?;
        let (cout, wcin, k, k2) = t.weight.dims4(OP, "weight")?;
        if wcin != cin || k2 != k {
            return Err(shape_error(
                OP,
                format!(
                    "weight {:?} does not fit x {:?}",
                    t.weight.shape(),
                    t.x.shape()
                ),
            ));
        }
        let (Some(out_h), Some(out_w)) = (
            output_size(height, k, stride, pad),
            output_size(width, k, stride, pad),
        ) else {
            return Err(shape_error(
                OP,
                format!(
                    "a {k}x{k} window (stride {stride}, pad {pad}) does not fit {height}x{width}"
                ),
            ));
        };
        expect_shape(OP, "y", t.y, &[batch, cout, out_h, out_w])?;
        if let Some(bias) = t.bias {
            expect_shape(OP, "bias", bias, &[cout])?;
        }
        let has_bias = t.bias.is_some();
        let taps = cin * k * k;
        let cols = taps + has_bias as usize;
        let depth = batch * out_h * out_w;
        // split the weight gradient's K so each split sums ~SPLIT_TERMS terms, within the budget
        let wanted = depth.div_ceil(SPLIT_TERMS).max(1);
        let splits = wanted.min((PARTIALS_BUDGET / (cout * cols).max(1)).max(1));
        let chunk = depth.div_ceil(splits).next_multiple_of(16);
        let splits = depth.div_ceil(chunk).max(1);
        Ok(Conv {
            batch: u32_of(batch, WHAT)?,
            cin: u32_of(cin, WHAT)?,
            height: u32_of(height, WHAT)?,
            width: u32_of(width, WHAT)?,
            cout: u32_of(cout, WHAT)?,
            k: u32_of(k, WHAT)?,
            stride: u32_of(stride, WHAT)?,
            pad: u32_of(pad, WHAT)?,
            out_h: u32_of(out_h, WHAT)?,
            out_w: u32_of(out_w, WHAT)?,
            has_bias: has_bias as u32,
            splits: u32_of(splits, WHAT)?,
            chunk: u32_of(chunk, WHAT)?,
            cols: u32_of(cols, WHAT)?,
            _pad0: 0,
            _pad1: 0,
        })
    }

    /// The backward pass's dispatches into `g` (its shapes checked): dW (and db) in splits summed
    /// by a second pass, then dx where wanted.
    fn backward_steps(
        gpu: &Gpu,
        kernels: &Kernels,
        t: &ConvTensors,
        g: &ConvGrads,
        params: &Conv,
        uniform: &wgpu::Buffer,
    ) -> Result<Vec<Dispatch>> {
        let [batch, cin, height, width, cout, cols, splits] = [
            params.batch,
            params.cin,
            params.height,
            params.width,
            params.cout,
            params.cols,
            params.splits,
        ]
        .map(|v| v as usize);
        expect_shape(OP, "dy", g.dy, t.y.shape())?;
        expect_shape(OP, "dweight", g.dweight, t.weight.shape())?;
        match (g.dbias, t.bias.is_some()) {
            (Some(db), true) => expect_shape(OP, "dbias", db, &[cout])?,
            (None, false) => {}
            _ => {
                return Err(shape_error(
                    OP,
                    "dbias must be given exactly when the layer has a bias".into(),
                ))
            }
        }
        if let Some(dx) = g.dx {
            expect_shape(OP, "dx", dx, t.x.shape())?;
        }
        let partials = GpuTensor::zeros(gpu, "conv2d partials", &[splits, cout, cols])?;
        let program = &kernels.conv;
        let group = program.bind(
            gpu,
            &[
                uniform,
                t.x.buffer(),
                t.weight.buffer(),
                &kernels.spare(gpu),
                g.dy.buffer(),
                g.dx.map_or(&kernels.spare(gpu), |d| d.buffer()),
                g.dweight.buffer(),
                g.dbias.map_or(&kernels.spare(gpu), |d| d.buffer()),
                partials.buffer(),
            ],
        );
        let mut steps = vec![
            Dispatch::new(
                program,
                "weight_grad",
                &group,
                (
                    groups(cols.div_ceil(TILE as usize), WHAT)?,
                    groups(cout.div_ceil(TILE as usize), WHAT)?,
                    groups(splits, WHAT)?,
                ),
            ),
            Dispatch::new(program, "weight_reduce", &group, flat_grid(cout * cols)),
        ];
        if g.dx.is_some() {
            steps.push(Dispatch::new(
                program,
                "input_grad",
                &group,
                wrapped_tiles(batch * height * width, cin, WHAT)?,
            ));
        }
        Ok(steps)
    }

    pub fn forward(&self, pass: &mut wgpu::ComputePass) {
        self.0.forward(pass);
    }

    /// Records dW (and db, dx); an error where the layer was built without gradients.
    pub fn backward(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.0.backward(pass)
    }
}
