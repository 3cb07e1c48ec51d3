//! Drives `isp.wgsl`: the parametrized ISP's forward and backward on the GPU, the twin of
//! `isp::param` (candle), which stays the reference.
//!
//! [`GpuIsp`] is the compiled program; [`IspPass`] holds every buffer of one batch shape, built
//! once, so a training session records the ISP into its steps without creating buffers.

use std::rc::Rc;

use super::nn::GpuTensor;
use super::program::{Binding, Program};
use super::wgsl::{constants, uniform, Constant, Source, Uniform, WORKGROUP};
use super::Gpu;
use crate::spec::colour::{yuv_to_rgb, RGB_TO_YUV};
use crate::spec::isp::{
    packed_span, IspGradients, IspRun, BN_EPS, BN_INITIAL_MEAN, BN_INITIAL_VAR, BN_MOMENTUM,
    CLIP_MAX, CLIP_MIN, NAMES, PACKED_LEN, PARAMETERS,
};
use crate::{Error, Result};

/// The @compute functions of isp.wgsl.
const ENTRIES: [&str; 20] = [
    "debayer",
    "colour",
    "sharpen",
    "blur_gamma",
    "bn_apply",
    "bn_track",
    "bn_recall",
    "bn_backward",
    "gamma_backward",
    "denoise_backward",
    "blur_adjoint",
    "yuv2_backward",
    "sharpen_backward",
    "sharpen_adjoint",
    "yuv_backward",
    "colour_backward",
    "debayer_adjoint",
    "reduce",
    "finalize",
    "stage_maps",
];

/// Threads per workgroup of the kernels with few threads (one per channel or per reduced value).
const NARROW_WORKGROUP: u32 = 64;
/// Workgroups each reduction splits the pixels among; `finalize` sums their partial sums.
const PARTIAL_CHUNKS: u32 = 64;

// Offsets in the statistics buffer: batch norm's mean, variance, mean g and mean g*y_hat (3 each),
// then its running mean and variance.
const S_MEAN: u32 = 0;
const S_VAR: u32 = 3;
const S_G: u32 = 6;
const S_GY: u32 = 9;
const S_RUN_MEAN: u32 = 12;
const S_RUN_VAR: u32 = 15;
const STATS_LEN: u32 = S_RUN_VAR + 3;

// Forward arena slots, in units of B*H*W floats (3-channel tensors take 3, planes 1).
const F_RAW: u32 = 0;
const F_DEMOSAIC: u32 = 1;
const F_CORRECTED: u32 = 4;
const F_Y: u32 = 7;
const F_SHARPENED: u32 = 8;
const F_Y2: u32 = 11;
const F_DENOISED: u32 = 12;
const F_GAMMA: u32 = 15;
const F_OUTPUT: u32 = 18;
const F_SLOTS: u32 = F_OUTPUT + 3;
// Backward arena slots (the gradients of the forward tensors).
const B_OUTPUT: u32 = 0;
const B_GAMMA: u32 = 3;
const B_DENOISED: u32 = 6;
const B_YB: u32 = 9;
const B_Y2: u32 = 10;
const B_SHARPENED: u32 = 11;
const B_YS: u32 = 14;
const B_Y: u32 = 15;
const B_CORRECTED: u32 = 16;
const B_DEMOSAIC: u32 = 19;
const B_MOSAIC: u32 = 22;
const B_RAW: u32 = 25;
const B_SLOTS: u32 = B_RAW + 1;
// The tracked stages (`spec::isp::Stage::ALL`) and their gradients.
const F_STAGES: [u32; 5] = [F_DEMOSAIC, F_CORRECTED, F_SHARPENED, F_DENOISED, F_GAMMA];
const B_STAGES: [u32; 5] = [B_DEMOSAIC, B_CORRECTED, B_SHARPENED, B_DENOISED, B_GAMMA];

// Reduction kinds of `reduce`: batch norm's statistics (written to the statistics buffer) up to
// K_BN_GY, then the parameter groups' gradients.
const K_BN_MEAN: u32 = 0;
const K_BN_VAR: u32 = 1;
const K_BN_G: u32 = 2;
const K_BN_GY: u32 = 3;
const K_GAMMA: u32 = 4;
const K_BLUR: u32 = 5;
const K_SHARP: u32 = 6;
const K_CC: u32 = 7;
const K_WB: u32 = 8;
const K_DEBAYER: u32 = 9;
const K_BLACK: u32 = 10;

/// The reduction that yields each parameter group's gradient (groups of
/// `spec::isp::PARAMETERS`).
const GROUP_REDUCTIONS: [(&str, u32); 7] = [
    ("black_level", K_BLACK),
    ("white_balance", K_WB),
    ("colour_correction", K_CC),
    ("gamma_correct", K_GAMMA),
    ("sharpening_filter", K_SHARP),
    ("gaussian_blur", K_BLUR),
    ("debayer", K_DEBAYER),
];

/// Which statistics the processing's batch norm normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The batch's own, folded into the running ones (training).
    Batch,
    /// The running ones (evaluation).
    Running,
}

uniform! {
    struct Dims {
        batch: u32,
        height: u32,
        width: u32,
        /// bit 0: batch norm on the output
        flags: u32,
    }
}

uniform! {
    struct Reduce {
        kind: u32,
        count: u32,
        chunks: u32,
        destination: u32,
        scale: f32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

/// The compiled kernels; build once per device and reuse.
pub struct GpuIsp {
    program: Rc<Program>,
}

fn groups(n: usize, size: u32) -> u32 {
    n.div_ceil(size as usize) as u32
}

/// Index of the first float of arena `slot` for `n` pixels.
fn at(slot: u32, n: usize) -> usize {
    slot as usize * n
}

/// isp.wgsl with its preamble: the uniforms, the layouts of the arenas and the statistics, the
/// reduction kinds, where each parameter group starts in the packed parameters (a constant per
/// group, its name in upper case: `DEBAYER`), the contracts' clip bounds and batch norm's
/// constants, and `Y_FROM_RGB` and `RGB_FROM_Y` (the luma row of `spec::colour::RGB_TO_YUV` and
/// the luma column of its inverse).
pub(super) fn source() -> Source {
    let mut shared = [Dims::WGSL, Reduce::WGSL].concat();
    shared += &constants![
        NARROW_WORKGROUP,
        S_MEAN,
        S_VAR,
        S_G,
        S_GY,
        S_RUN_MEAN,
        S_RUN_VAR,
        F_RAW,
        F_DEMOSAIC,
        F_CORRECTED,
        F_Y,
        F_SHARPENED,
        F_Y2,
        F_DENOISED,
        F_GAMMA,
        F_OUTPUT,
        B_OUTPUT,
        B_GAMMA,
        B_DENOISED,
        B_YB,
        B_Y2,
        B_SHARPENED,
        B_YS,
        B_Y,
        B_CORRECTED,
        B_DEMOSAIC,
        B_MOSAIC,
        B_RAW,
        B_STAGES,
        K_BN_MEAN,
        K_BN_VAR,
        K_BN_G,
        K_BN_GY,
        K_GAMMA,
        K_BLUR,
        K_SHARP,
        K_CC,
        K_WB,
        K_DEBAYER,
        K_BLACK,
        CLIP_MIN,
        CLIP_MAX,
        BN_EPS,
        BN_MOMENTUM,
    ];
    let mut first = 0;
    for p in &PARAMETERS {
        shared += &(first as u32).declare(&p.group.to_uppercase());
        first += p.len();
    }
    let inverse = yuv_to_rgb();
    let vec3 = |v: [f64; 3]| {
        format!(
            "vec3<f32>({:?}, {:?}, {:?})",
            v[0] as f32, v[1] as f32, v[2] as f32
        )
    };
    shared += &format!(
        "const Y_FROM_RGB: vec3<f32> = {};\nconst RGB_FROM_Y: vec3<f32> = {};\n",
        vec3(RGB_TO_YUV[0]),
        vec3([inverse[0][0], inverse[1][0], inverse[2][0]])
    );
    Source::new(&[&shared], &[include_str!("isp.wgsl")])
}

impl GpuIsp {
    pub async fn new(gpu: &Gpu) -> Result<Self> {
        use Binding::{Storage, Uniform};
        let program = Program::new(
            gpu,
            "parametrized ISP",
            &source().text(),
            &[
                Uniform, Uniform, Storage, Storage, Storage, Storage, Storage, Storage, Storage,
            ],
            &ENTRIES,
        )
        .await?;
        Ok(Self {
            program: Rc::new(program),
        })
    }

    /// Runs the ISP on `raw` (B, H, W) with packed parameters; with `upstream` (B, 3, H, W) also
    /// the backward pass. Reads back every stage: for inspection, not for training.
    pub async fn run(
        &self,
        gpu: &Gpu,
        raw: &[f32],
        dims: (usize, usize, usize),
        params: &[f32],
        upstream: Option<&[f32]>,
        batch_norm: bool,
    ) -> Result<IspRun> {
        let pass = IspPass::new(gpu, self, dims, batch_norm, None)?;
        pass.write_raw(gpu, raw)?;
        pass.params().write(gpu, params)?;
        let n = pass.pixels();
        if let Some(g) = upstream {
            if g.len() != 3 * n {
                return Err(Error::invalid(format!(
                    "GPU ISP upstream gradient does not fit a {dims:?} batch"
                )));
            }
            gpu.queue
                .write_buffer(&pass.bwd, 0, bytemuck::cast_slice(g));
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut compute = encoder.begin_compute_pass(&Default::default());
            pass.record_forward(&mut compute, false, Norm::Batch);
            if upstream.is_some() {
                pass.record_backward(&mut compute, &NAMES, Norm::Batch);
            }
        }
        gpu.submit(encoder);

        let mut regions: Vec<(&wgpu::Buffer, usize, usize)> =
            vec![(&pass.fwd, at(F_OUTPUT, n), 3 * n)];
        regions.extend(F_STAGES.iter().map(|&s| (&pass.fwd, at(s, n), 3 * n)));
        if upstream.is_some() {
            regions.extend(B_STAGES.iter().map(|&s| (&pass.bwd, at(s, n), 3 * n)));
            regions.push((&pass.bwd, at(B_RAW, n), n));
            regions.push((pass.grads.buffer(), 0, PACKED_LEN));
        }
        let mut parts = gpu.read_regions(&regions).await?.into_iter();
        let mut next = || {
            parts
                .next()
                .ok_or_else(|| Error::Gpu("a readback came back short".into()))
        };
        let output = next()?;
        let stages = (0..5).map(|_| next()).collect::<Result<Vec<_>>>()?;
        let gradients = match upstream {
            None => None,
            Some(_) => Some(IspGradients {
                stages: (0..5).map(|_| next()).collect::<Result<Vec<_>>>()?,
                raw: next()?,
                params: next()?,
            }),
        };
        Ok(IspRun {
            output,
            stages,
            gradients,
        })
    }
}

/// The ISP's buffers for one batch shape: forward and backward arenas, the packed parameters and
/// their gradients, batch statistics and the snapshot maps. Built once; steps record into it.
pub struct IspPass {
    program: Rc<Program>,
    dims: (usize, usize, usize),
    batch_norm: bool,
    fwd: wgpu::Buffer,
    bwd: wgpu::Buffer,
    params: GpuTensor,
    grads: GpuTensor,
    maps: GpuTensor,
    stats: wgpu::Buffer,
    /// Every kernel's bind group over `params`, and over the alternative parameters if any.
    plain: wgpu::BindGroup,
    alternative: Option<wgpu::BindGroup>,
    /// Each reduction (its kind) with its output count.
    reductions: Vec<(u32, u32, wgpu::BindGroup)>,
    // kept alive for the bind groups
    _buffers: Vec<wgpu::Buffer>,
}

impl IspPass {
    /// Buffers for a (B, H, W) raw batch. `alternative`: a second packed parameter tensor the
    /// forward pass can run with (forensics' default processing) without touching `params`.
    pub fn new(
        gpu: &Gpu,
        isp: &GpuIsp,
        (batch, height, width): (usize, usize, usize),
        batch_norm: bool,
        alternative: Option<&GpuTensor>,
    ) -> Result<Self> {
        let n = Self::pixels_that_fit(gpu, (batch, height, width))?;
        if alternative.is_some_and(|a| a.element_count() != PACKED_LEN) {
            return Err(Error::invalid(
                "the alternative ISP parameters are not packed",
            ));
        }
        let dims = gpu.uniform_buffer(
            "dims",
            &Dims {
                batch: batch as u32,
                height: height as u32,
                width: width as u32,
                flags: batch_norm as u32,
            },
        );
        let fwd = gpu.empty_storage_buffer("ISP forward arena", at(F_SLOTS, n));
        let bwd = gpu.empty_storage_buffer("ISP backward arena", at(B_SLOTS, n));
        let params = GpuTensor::zeros(gpu, "ISP parameters", &[PACKED_LEN])?;
        let grads = GpuTensor::zeros(gpu, "ISP parameter gradients", &[PACKED_LEN])?;
        let maps = GpuTensor::zeros(gpu, "ISP stage maps", &[5, height, width])?;
        let partials = gpu.empty_storage_buffer("partial sums", 81 * PARTIAL_CHUNKS as usize);
        let stats = gpu.empty_storage_buffer("ISP batch statistics", STATS_LEN as usize);
        let [mean, var] = [BN_INITIAL_MEAN, BN_INITIAL_VAR].map(|v| v as f32);
        gpu.queue.write_buffer(
            &stats,
            (S_RUN_MEAN * 4) as u64,
            bytemuck::cast_slice(&[mean, mean, mean, var, var, var]),
        );
        let bind = |reduce: &Reduce, prm: &wgpu::Buffer| {
            let red = gpu.uniform_buffer("reduce", reduce);
            let group = isp.program.bind(
                gpu,
                &[
                    &dims,
                    &red,
                    &fwd,
                    &bwd,
                    prm,
                    grads.buffer(),
                    &partials,
                    &stats,
                    maps.buffer(),
                ],
            );
            (group, red)
        };
        let mut kept = Vec::new();
        let (plain, red) = bind(&Reduce::zeroed(), params.buffer());
        kept.push(red);
        let alternative = alternative.map(|a| {
            let (group, red) = bind(&Reduce::zeroed(), a.buffer());
            kept.push(red);
            group
        });
        let reductions = Self::reductions(n)?
            .into_iter()
            .map(|(kind, count, destination, scale)| {
                let (group, red) = bind(
                    &Reduce {
                        kind,
                        count,
                        chunks: PARTIAL_CHUNKS,
                        destination,
                        scale,
                        _pad0: 0,
                        _pad1: 0,
                        _pad2: 0,
                    },
                    params.buffer(),
                );
                kept.push(red);
                (kind, count, group)
            })
            .collect();
        kept.extend([dims, partials]);
        Ok(Self {
            program: isp.program.clone(),
            dims: (batch, height, width),
            batch_norm,
            fwd,
            bwd,
            params,
            grads,
            maps,
            stats,
            plain,
            alternative,
            reductions,
            _buffers: kept,
        })
    }

    /// The pixels of a (B, H, W) batch, or why its arenas do not fit this GPU's buffers.
    fn pixels_that_fit(gpu: &Gpu, (batch, height, width): (usize, usize, usize)) -> Result<usize> {
        if height < 3 || width < 3 {
            return Err(Error::invalid(
                "the ISP's reflect padding needs tiles of at least 3x3",
            ));
        }
        // in u64: on wasm32 the arena's bytes can pass usize's end before the check
        let pixels = (batch as u64) * (height as u64) * (width as u64);
        let arena = B_SLOTS as u64 * pixels * 4;
        let limit = gpu.device.limits().max_storage_buffer_binding_size;
        if arena > limit {
            let fits = limit / (B_SLOTS as u64 * (height * width) as u64 * 4);
            return Err(Error::Gpu(format!(
                "a batch of {batch} tiles of {height}x{width} needs {} MB per buffer, more than \
                 this GPU's {} MB: use a batch of at most {fits}, smaller tiles or the CPU backend",
                arena >> 20,
                limit >> 20
            )));
        }
        Ok(pixels as usize)
    }

    /// The reductions over `n` pixels, as (kind, outputs, destination, scale): the batch
    /// statistics' means, then each parameter group's gradient sums.
    fn reductions(n: usize) -> Result<Vec<(u32, u32, u32, f32)>> {
        let inv_n = 1.0 / n as f32;
        let mut reductions = Vec::new();
        let statistics = [
            (K_BN_MEAN, S_MEAN),
            (K_BN_VAR, S_VAR),
            (K_BN_G, S_G),
            (K_BN_GY, S_GY),
        ];
        for (kind, destination) in statistics {
            reductions.push((kind, 3, destination, inv_n));
        }
        for (group, kind) in GROUP_REDUCTIONS {
            let (first, len) = packed_span(group)
                .ok_or_else(|| Error::Gpu(format!("no ISP parameter group named {group}")))?;
            reductions.push((kind, len as u32, first as u32, 1.0));
        }
        Ok(reductions)
    }

    fn pixels(&self) -> usize {
        self.dims.0 * self.dims.1 * self.dims.2
    }

    /// The packed parameters the passes run with (AdamW trains them in place).
    pub fn params(&self) -> &GpuTensor {
        &self.params
    }

    /// dL/d parameters of the last backward pass (groups it was not asked for stay as they were).
    pub fn grads(&self) -> &GpuTensor {
        &self.grads
    }

    /// |dL/d stage| per pixel after [`IspPass::record_stage_maps`]: (5, H, W).
    pub fn maps(&self) -> &GpuTensor {
        &self.maps
    }

    /// Queues a raw batch (B, H, W).
    pub fn write_raw(&self, gpu: &Gpu, raw: &[f32]) -> Result<()> {
        if raw.len() != self.pixels() {
            return Err(Error::invalid(format!(
                "GPU ISP: {} raw values do not fit a {:?} batch",
                raw.len(),
                self.dims
            )));
        }
        gpu.queue
            .write_buffer(&self.fwd, 0, bytemuck::cast_slice(raw));
        Ok(())
    }

    /// Copies the output (B, 3, H, W) into `to` (between compute passes).
    pub fn copy_output(&self, encoder: &mut wgpu::CommandEncoder, to: &GpuTensor) -> Result<()> {
        let n = self.pixels();
        self.check_rgb(to)?;
        encoder.copy_buffer_to_buffer(
            &self.fwd,
            (at(F_OUTPUT, n) * 4) as u64,
            to.buffer(),
            0,
            (3 * n * 4) as u64,
        );
        Ok(())
    }

    /// Copies dL/d output (B, 3, H, W) from `from` into the backward arena.
    pub fn copy_upstream(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        from: &GpuTensor,
    ) -> Result<()> {
        self.check_rgb(from)?;
        encoder.copy_buffer_to_buffer(
            from.buffer(),
            0,
            &self.bwd,
            0,
            (3 * self.pixels() * 4) as u64,
        );
        Ok(())
    }

    fn check_rgb(&self, t: &GpuTensor) -> Result<()> {
        let (b, h, w) = self.dims;
        if t.shape() != [b, 3, h, w] {
            return Err(Error::Gpu(format!(
                "GPU ISP: a tensor of shape {:?} is not the output's ({b}, 3, {h}, {w})",
                t.shape()
            )));
        }
        Ok(())
    }

    fn run(&self, pass: &mut wgpu::ComputePass, entry: &str, group: &wgpu::BindGroup) {
        self.program
            .dispatch(pass, entry, group, (groups(self.pixels(), WORKGROUP), 1, 1));
    }

    fn reduce(&self, pass: &mut wgpu::ComputePass, kind: u32) {
        if let Some((_, count, group)) = self.reductions.iter().find(|(k, ..)| *k == kind) {
            let count = *count;
            self.program
                .dispatch(pass, "reduce", group, (count, PARTIAL_CHUNKS, 1));
            self.program.dispatch(
                pass,
                "finalize",
                group,
                (groups(count as usize, NARROW_WORKGROUP), 1, 1),
            );
        }
    }

    /// Queues batch norm's running statistics (a session's, at the start of a phase), packed:
    /// the mean of each channel, then the variance.
    pub fn write_running(&self, gpu: &Gpu, packed: &[f32; 6]) {
        gpu.queue.write_buffer(
            &self.stats,
            (S_RUN_MEAN * 4) as u64,
            bytemuck::cast_slice(packed),
        );
    }

    /// Batch norm's running statistics, packed as [`IspPass::write_running`] takes them: where
    /// to read them back from.
    pub fn running_region(&self) -> (&wgpu::Buffer, usize, usize) {
        (&self.stats, S_RUN_MEAN as usize, 6)
    }

    /// Records the forward pass into the forward arena; `alternative` runs it with the
    /// alternative parameters given at build time; `norm` chooses batch norm's statistics.
    pub fn record_forward(&self, pass: &mut wgpu::ComputePass, alternative: bool, norm: Norm) {
        let group = match (&self.alternative, alternative) {
            (Some(group), true) => group,
            _ => &self.plain,
        };
        for entry in ["debayer", "colour", "sharpen", "blur_gamma"] {
            self.run(pass, entry, group);
        }
        if self.batch_norm {
            let channels = |pass: &mut wgpu::ComputePass, entry| {
                self.program.dispatch(pass, entry, group, (1, 1, 1))
            };
            match norm {
                Norm::Batch => {
                    self.reduce(pass, K_BN_MEAN);
                    self.reduce(pass, K_BN_VAR);
                    channels(pass, "bn_track");
                }
                Norm::Running => channels(pass, "bn_recall"),
            }
            self.run(pass, "bn_apply", group);
        }
    }

    /// Records the backward pass from the upstream gradient in the backward arena (after a
    /// forward pass with `params` and batch norm's statistics `norm`), reducing the gradients of
    /// the parameters in `targets` (names or groups of [`NAMES`]) only: the others' gradients
    /// stay as they were.
    pub fn record_backward(&self, pass: &mut wgpu::ComputePass, targets: &[&str], norm: Norm) {
        let wanted = |kind: u32| {
            GROUP_REDUCTIONS.iter().any(|&(group, k)| {
                k == kind
                    && targets
                        .iter()
                        .any(|t| *t == group || t.split('.').next() == Some(group))
            })
        };
        let reduce = |pass: &mut wgpu::ComputePass, kind: u32| {
            if wanted(kind) {
                self.reduce(pass, kind);
            }
        };
        let plain = &self.plain;
        if self.batch_norm && norm == Norm::Batch {
            self.reduce(pass, K_BN_G);
            self.reduce(pass, K_BN_GY);
        }
        self.run(pass, "bn_backward", plain);
        self.run(pass, "gamma_backward", plain);
        reduce(pass, K_GAMMA);
        for entry in ["denoise_backward", "blur_adjoint", "yuv2_backward"] {
            self.run(pass, entry, plain);
        }
        reduce(pass, K_BLUR);
        for entry in ["sharpen_backward", "sharpen_adjoint", "yuv_backward"] {
            self.run(pass, entry, plain);
        }
        reduce(pass, K_SHARP);
        self.run(pass, "colour_backward", plain);
        reduce(pass, K_CC);
        reduce(pass, K_WB);
        self.run(pass, "debayer_adjoint", plain);
        reduce(pass, K_DEBAYER);
        reduce(pass, K_BLACK);
    }

    /// Where the five tracked stages' outputs of the first tile lie, (3, H, W) each, for a
    /// readback.
    pub fn first_tile_stages(&self) -> Vec<(&wgpu::Buffer, usize, usize)> {
        let (_, h, w) = self.dims;
        let n = self.pixels();
        F_STAGES
            .iter()
            .map(|&s| (&self.fwd, at(s, n), 3 * h * w))
            .collect()
    }

    /// Records |dL/d stage| averaged over the batch and channels into [`IspPass::maps`] (after a
    /// backward pass).
    pub fn record_stage_maps(&self, pass: &mut wgpu::ComputePass) {
        let (_, h, w) = self.dims;
        self.program.dispatch(
            pass,
            "stage_maps",
            &self.plain,
            (groups(h * w, WORKGROUP), 1, 1),
        );
    }
}

impl Reduce {
    fn zeroed() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::isp::GROUPS;

    /// Every parameter group's gradient has its reduction, and no reduction serves two groups.
    #[test]
    fn each_parameter_group_has_one_reduction() {
        let mapped: Vec<&str> = GROUP_REDUCTIONS.iter().map(|(group, _)| *group).collect();
        assert_eq!(mapped, GROUPS);
        let mut kinds: Vec<u32> = GROUP_REDUCTIONS.iter().map(|(_, kind)| *kind).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), GROUPS.len());
        assert!(kinds.iter().all(|k| *k > K_BN_GY));
    }
}
