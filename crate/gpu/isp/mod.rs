//! Drives `isp.wgsl`: the parametrized ISP's forward and backward on the GPU, the twin of
//! `isp::param` (candle), which stays the reference.
//!
//! [`GpuIsp`] is the compiled program; [`IspPass`] holds every buffer of one batch shape, built
//! once, so a training session records the ISP into its steps without creating buffers.

use std::rc::Rc;

use super::nn::GpuTensor;
use super::program::{Binding, Program};
use super::Gpu;
use crate::isp::param::RunningStats;
use crate::spec::colour::{yuv_to_rgb, RGB_TO_YUV};
use crate::spec::isp::{packed_span, IspGradients, IspRun, NAMES, PACKED_LEN};
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

const PARTIAL_CHUNKS: u32 = 64;
/// Floats of batch norm's statistics (isp.wgsl's S_MEAN .. S_GY), then the running mean and
/// variance (S_RUN_MEAN, S_RUN_VAR).
const STATS_LEN: usize = 18;
const STATS: [u32; 4] = [0, 3, 6, 9];
const S_RUNNING: usize = 12;

/// Which statistics the processing's batch norm normalises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The batch's own, folded into the running ones (training).
    Batch,
    /// The running ones (evaluation).
    Running,
}

// Arena slots (units of B*H*W floats), as in isp.wgsl.
const F_SLOTS: usize = 21;
const B_SLOTS: usize = 26;
const F_STAGES: [usize; 5] = [1, 4, 8, 12, 15];
const F_OUTPUT: usize = 18;
const B_STAGES: [usize; 5] = [19, 16, 11, 6, 3];
const B_RAW: usize = 25;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    batch: u32,
    height: u32,
    width: u32,
    flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Reduce {
    kind: u32,
    count: u32,
    chunks: u32,
    destination: u32,
    scale: f32,
    _pad: [u32; 3],
}

/// Reduction kinds of isp.wgsl.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    BnMean = 0,
    BnVar = 1,
    BnG = 2,
    BnGy = 3,
    Gamma = 4,
    Blur = 5,
    Sharp = 6,
    Cc = 7,
    Wb = 8,
    Debayer = 9,
    Black = 10,
}

/// Each parameter (its name in [`NAMES`]) with the reduction that yields its gradient and the
/// isp.wgsl constant of its first packed value.
const PARAMS: [(Kind, &str, &str); 7] = [
    (Kind::Black, "BL", "black_level"),
    (Kind::Wb, "WB", "white_balance"),
    (Kind::Cc, "CC", "colour_correction"),
    (Kind::Gamma, "GAMMA", "gamma_correct"),
    (Kind::Debayer, "WD", "debayer"),
    (Kind::Sharp, "WS", "sharpening_filter"),
    (Kind::Blur, "WBLUR", "gaussian_blur"),
];

/// The compiled kernels; build once per device and reuse.
pub struct GpuIsp {
    program: Rc<Program>,
}

fn groups(n: usize, size: usize) -> u32 {
    n.div_ceil(size) as u32
}

/// The constants the kernels share with `isp::param` and `isp::colour`, as WGSL (defined once,
/// in Rust).
fn constants() -> Result<String> {
    let mut wgsl = String::new();
    for (_, constant, name) in PARAMS {
        let (first, _) = packed_span(name)
            .ok_or_else(|| Error::Gpu(format!("no ISP parameter named {name}")))?;
        wgsl += &format!("const {constant}: u32 = {first}u;\n");
    }
    let inverse = yuv_to_rgb();
    let vec3 = |v: [f64; 3]| {
        format!(
            "vec3<f32>({:?}, {:?}, {:?})",
            v[0] as f32, v[1] as f32, v[2] as f32
        )
    };
    wgsl += &format!(
        "const Y_FROM_RGB: vec3<f32> = {};\nconst RGB_FROM_Y: vec3<f32> = {};\n",
        vec3(RGB_TO_YUV[0]),
        vec3([inverse[0][0], inverse[1][0], inverse[2][0]])
    );
    Ok(wgsl)
}

impl GpuIsp {
    pub async fn new(gpu: &Gpu) -> Result<Self> {
        use Binding::{Storage, Uniform};
        let source = constants()? + include_str!("isp.wgsl");
        let program = Program::new(
            gpu,
            "parametrized ISP",
            &source,
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
            vec![(&pass.fwd, F_OUTPUT * n, 3 * n)];
        regions.extend(F_STAGES.iter().map(|&s| (&pass.fwd, s * n, 3 * n)));
        if upstream.is_some() {
            regions.extend(B_STAGES.iter().map(|&s| (&pass.bwd, s * n, 3 * n)));
            regions.push((&pass.bwd, B_RAW * n, n));
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
    /// Each reduction with its output count.
    reductions: Vec<(Kind, u32, wgpu::BindGroup)>,
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
        let n = pixels as usize;
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
        let fwd = gpu.empty_storage_buffer("ISP forward arena", F_SLOTS * n);
        let bwd = gpu.empty_storage_buffer("ISP backward arena", B_SLOTS * n);
        let params = GpuTensor::zeros(gpu, "ISP parameters", &[PACKED_LEN])?;
        let grads = GpuTensor::zeros(gpu, "ISP parameter gradients", &[PACKED_LEN])?;
        let maps = GpuTensor::zeros(gpu, "ISP stage maps", &[5, height, width])?;
        let partials = gpu.empty_storage_buffer("partial sums", 81 * PARTIAL_CHUNKS as usize);
        let stats = gpu.empty_storage_buffer("ISP batch statistics", STATS_LEN);
        gpu.queue.write_buffer(
            &stats,
            (S_RUNNING * 4) as u64,
            bytemuck::cast_slice(&RunningStats::default().packed()),
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
        let inv_n = 1.0 / n as f32;
        let mut reductions = Vec::new();
        let stat_kinds = [Kind::BnMean, Kind::BnVar, Kind::BnG, Kind::BnGy];
        for (kind, destination) in stat_kinds.into_iter().zip(STATS) {
            reductions.push((kind, 3, destination, inv_n));
        }
        for (kind, _, name) in PARAMS {
            let (first, len) = packed_span(name)
                .ok_or_else(|| Error::Gpu(format!("no ISP parameter named {name}")))?;
            reductions.push((kind, len as u32, first as u32, 1.0));
        }
        let reductions = reductions
            .into_iter()
            .map(|(kind, count, destination, scale)| {
                let (group, red) = bind(
                    &Reduce {
                        kind: kind as u32,
                        count,
                        chunks: PARTIAL_CHUNKS,
                        destination,
                        scale,
                        _pad: [0; 3],
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
            (F_OUTPUT * n * 4) as u64,
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
            .dispatch(pass, entry, group, (groups(self.pixels(), 256), 1, 1));
    }

    fn reduce(&self, pass: &mut wgpu::ComputePass, kind: Kind) {
        if let Some((_, count, group)) = self.reductions.iter().find(|(k, ..)| *k == kind) {
            let count = *count;
            self.program
                .dispatch(pass, "reduce", group, (count, PARTIAL_CHUNKS, 1));
            self.program
                .dispatch(pass, "finalize", group, (groups(count as usize, 64), 1, 1));
        }
    }

    /// Queues batch norm's running statistics (a session's, at the start of a phase).
    pub fn write_running(&self, gpu: &Gpu, stats: &RunningStats) {
        gpu.queue.write_buffer(
            &self.stats,
            (S_RUNNING * 4) as u64,
            bytemuck::cast_slice(&stats.packed()),
        );
    }

    /// Batch norm's running statistics: where to read them back from.
    pub fn running_region(&self) -> (&wgpu::Buffer, usize, usize) {
        (&self.stats, S_RUNNING, 6)
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
                    self.reduce(pass, Kind::BnMean);
                    self.reduce(pass, Kind::BnVar);
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
        let wanted = |kind: Kind| {
            PARAMS.iter().any(|&(k, _, name)| {
                k == kind
                    && targets
                        .iter()
                        .any(|t| *t == name || t.split('.').next() == Some(name))
            })
        };
        let reduce = |pass: &mut wgpu::ComputePass, kind: Kind| {
            if wanted(kind) {
                self.reduce(pass, kind);
            }
        };
        let plain = &self.plain;
        if self.batch_norm && norm == Norm::Batch {
            self.reduce(pass, Kind::BnG);
            self.reduce(pass, Kind::BnGy);
        }
        self.run(pass, "bn_backward", plain);
        self.run(pass, "gamma_backward", plain);
        reduce(pass, Kind::Gamma);
        for entry in ["denoise_backward", "blur_adjoint", "yuv2_backward"] {
            self.run(pass, entry, plain);
        }
        reduce(pass, Kind::Blur);
        for entry in ["sharpen_backward", "sharpen_adjoint", "yuv_backward"] {
            self.run(pass, entry, plain);
        }
        reduce(pass, Kind::Sharp);
        self.run(pass, "colour_backward", plain);
        reduce(pass, Kind::Cc);
        reduce(pass, Kind::Wb);
        self.run(pass, "debayer_adjoint", plain);
        reduce(pass, Kind::Debayer);
        reduce(pass, Kind::Black);
    }

    /// Records |dL/d stage| averaged over the batch and channels into [`IspPass::maps`] (after a
    /// backward pass).
    /// Where the five tracked stages' outputs of the first tile lie, (3, H, W) each, for a
    /// readback.
    pub fn first_tile_stages(&self) -> Vec<(&wgpu::Buffer, usize, usize)> {
        let (_, h, w) = self.dims;
        let n = self.pixels();
        F_STAGES
            .iter()
            .map(|&s| (&self.fwd, s * n, 3 * h * w))
            .collect()
    }

    pub fn record_stage_maps(&self, pass: &mut wgpu::ComputePass) {
        let (_, h, w) = self.dims;
        self.program
            .dispatch(pass, "stage_maps", &self.plain, (groups(h * w, 256), 1, 1));
    }
}

impl Reduce {
    fn zeroed() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}
