//! Drives `isp.wgsl`: the parametrized ISP's forward and backward on the GPU, the twin of
//! `isp::param` (candle), which stays the reference.

use super::program::{Binding, Program};
use super::Gpu;
use crate::isp::colour::{yuv_to_rgb, RGB_TO_YUV};
use crate::isp::engine::{IspGradients, IspRun};
use crate::isp::param::PACKED_LEN as PARAM_LEN;
use crate::{Error, Result};

/// The @compute functions of isp.wgsl.
const ENTRIES: [&str; 17] = [
    "debayer",
    "colour",
    "sharpen",
    "blur_gamma",
    "bn_apply",
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
];

/// Offsets of each parameter inside the packed vector (IspParams::packed), as isp.wgsl lays them out.
const OFFSETS: [(u32, u32); 7] = [
    (0, 4),
    (4, 3),
    (7, 9),
    (16, 1),
    (17, 81),
    (98, 9),
    (107, 25),
];
const STATS: u32 = 132;
const PARTIAL_CHUNKS: u32 = 64;

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

/// Reduction kinds of isp.wgsl with (outputs, where they land).
#[derive(Clone, Copy)]
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

/// The compiled kernels; build once per device and reuse.
pub struct GpuIsp {
    program: Program,
}

fn groups(n: usize, size: usize) -> u32 {
    n.div_ceil(size) as u32
}

impl GpuIsp {
    pub async fn new(gpu: &Gpu) -> Result<Self> {
        use Binding::{Storage, Uniform};
        let program = Program::new(
            gpu,
            "parametrized ISP",
            include_str!("isp.wgsl"),
            &[
                Uniform, Uniform, Storage, Storage, Storage, Storage, Storage,
            ],
            &ENTRIES,
        )
        .await?;
        Ok(Self { program })
    }

    /// Runs the ISP on `raw` (B, H, W) with packed parameters; with `upstream` (B, 3, H, W) also
    /// the backward pass.
    pub async fn run(
        &self,
        gpu: &Gpu,
        raw: &[f32],
        (batch, height, width): (usize, usize, usize),
        params: &[f32],
        upstream: Option<&[f32]>,
        batch_norm: bool,
    ) -> Result<IspRun> {
        let n = batch * height * width;
        if raw.len() != n || params.len() != PARAM_LEN || upstream.is_some_and(|g| g.len() != 3 * n)
        {
            return Err(Error::invalid(format!(
                "GPU ISP inputs do not fit a ({batch}, {height}, {width}) batch"
            )));
        }
        if height < 3 || width < 3 {
            return Err(Error::invalid(
                "the ISP's reflect padding needs tiles of at least 3x3",
            ));
        }
        let limit = gpu.device.limits().max_storage_buffer_binding_size as usize;
        if B_SLOTS * n * 4 > limit {
            return Err(Error::Gpu(format!(
                "a batch of {batch} tiles of {height}x{width} needs {} MB per buffer, more than this GPU's {} MB: use a smaller batch or the CPU backend",
                (B_SLOTS * n * 4) >> 20,
                limit >> 20
            )));
        }

        let mut prm = params.to_vec();
        prm.extend(RGB_TO_YUV.iter().flatten().map(|&v| v as f32));
        prm.extend(yuv_to_rgb().iter().flatten().map(|&v| v as f32));
        let dims = gpu.uniform_buffer(
            "dims",
            &Dims {
                batch: batch as u32,
                height: height as u32,
                width: width as u32,
                flags: batch_norm as u32,
            },
        );
        let fwd = gpu.empty_storage_buffer("forward arena", F_SLOTS * n);
        gpu.queue.write_buffer(&fwd, 0, bytemuck::cast_slice(raw));
        let bwd = gpu.empty_storage_buffer("backward arena", B_SLOTS * n);
        if let Some(g) = upstream {
            gpu.queue.write_buffer(&bwd, 0, bytemuck::cast_slice(g));
        }
        let prm = gpu.storage_buffer("parameters", &prm);
        let grads = gpu.empty_storage_buffer("parameter gradients", PARAM_LEN + 12);
        let partials = gpu.empty_storage_buffer("partial sums", 81 * PARTIAL_CHUNKS as usize);

        // one uniform per reduction (they differ), the same arenas everywhere
        let bind = |reduce: &Reduce| {
            let red = gpu.uniform_buffer("reduce", reduce);
            self.program
                .bind(gpu, &[&dims, &red, &fwd, &bwd, &prm, &grads, &partials])
        };
        let plain = bind(&Reduce::zeroed());
        let pixels = (groups(n, 256), 1, 1);
        let inv_n = 1.0 / n as f32;

        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            let reduce = |pass: &mut wgpu::ComputePass,
                          kind: Kind,
                          target: u32,
                          count: u32,
                          scale: f32| {
                let group = bind(&Reduce {
                    kind: kind as u32,
                    count,
                    chunks: PARTIAL_CHUNKS,
                    destination: target,
                    scale,
                    _pad: [0; 3],
                });
                self.program
                    .dispatch(pass, "reduce", &group, (count, PARTIAL_CHUNKS, 1));
                self.program
                    .dispatch(pass, "finalize", &group, (groups(count as usize, 64), 1, 1));
            };
            let run = |pass: &mut wgpu::ComputePass, entry: &str| {
                self.program.dispatch(pass, entry, &plain, pixels)
            };

            for entry in ["debayer", "colour", "sharpen", "blur_gamma"] {
                run(&mut pass, entry);
            }
            if batch_norm {
                reduce(&mut pass, Kind::BnMean, STATS, 3, inv_n);
                reduce(&mut pass, Kind::BnVar, STATS + 3, 3, inv_n);
                run(&mut pass, "bn_apply");
            }
            if upstream.is_some() {
                if batch_norm {
                    reduce(&mut pass, Kind::BnG, STATS + 6, 3, inv_n);
                    reduce(&mut pass, Kind::BnGy, STATS + 9, 3, inv_n);
                }
                run(&mut pass, "bn_backward");
                run(&mut pass, "gamma_backward");
                let [black, wb, cc, gamma, debayer, sharp, blur] = OFFSETS;
                reduce(&mut pass, Kind::Gamma, gamma.0, gamma.1, 1.0);
                for entry in ["denoise_backward", "blur_adjoint", "yuv2_backward"] {
                    run(&mut pass, entry);
                }
                reduce(&mut pass, Kind::Blur, blur.0, blur.1, 1.0);
                for entry in ["sharpen_backward", "sharpen_adjoint", "yuv_backward"] {
                    run(&mut pass, entry);
                }
                reduce(&mut pass, Kind::Sharp, sharp.0, sharp.1, 1.0);
                run(&mut pass, "colour_backward");
                reduce(&mut pass, Kind::Cc, cc.0, cc.1, 1.0);
                reduce(&mut pass, Kind::Wb, wb.0, wb.1, 1.0);
                run(&mut pass, "debayer_adjoint");
                reduce(&mut pass, Kind::Debayer, debayer.0, debayer.1, 1.0);
                reduce(&mut pass, Kind::Black, black.0, black.1, 1.0);
            }
        }
        gpu.queue.submit([encoder.finish()]);

        let mut regions: Vec<(&wgpu::Buffer, usize, usize)> = vec![(&fwd, F_OUTPUT * n, 3 * n)];
        regions.extend(F_STAGES.iter().map(|&s| (&fwd, s * n, 3 * n)));
        if upstream.is_some() {
            regions.extend(B_STAGES.iter().map(|&s| (&bwd, s * n, 3 * n)));
            regions.push((&bwd, B_RAW * n, n));
            regions.push((&grads, 0, PARAM_LEN));
        }
        let mut parts = gpu.read_regions(&regions).await?.into_iter();
        let output = parts.next().expect("output read back");
        let stages: Vec<Vec<f32>> = parts.by_ref().take(5).collect();
        let gradients = upstream.map(|_| IspGradients {
            stages: parts.by_ref().take(5).collect(),
            raw: parts.next().expect("raw gradient read back"),
            params: parts.next().expect("parameter gradients read back"),
        });
        Ok(IspRun {
            output,
            stages,
            gradients,
        })
    }
}

impl Reduce {
    fn zeroed() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}
