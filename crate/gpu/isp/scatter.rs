//! Drives `scatter.wgsl`: raw (B, H, W) and a per-site black level -> (B, 3, H, W).

use crate::gpu::kernel::groups;
use crate::gpu::{Gpu, Kernel};
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Dims {
    batch: u32,
    height: u32,
    width: u32,
    _pad: u32,
}

/// Runs the scatter kernel on a batch of mosaics and reads the planes back.
pub async fn scatter_mosaic(
    gpu: &Gpu,
    raw: &[f32],
    (batch, height, width): (usize, usize, usize),
    black_level: [f32; 4],
) -> Result<Vec<f32>> {
    if raw.len() != batch * height * width {
        return Err(Error::invalid(format!(
            "a batch of {batch} mosaics of {height}x{width} needs {} values, got {}",
            batch * height * width,
            raw.len()
        )));
    }
    let kernel = Kernel::new(gpu, "scatter", include_str!("scatter.wgsl"), "scatter");
    let dims = gpu.uniform_buffer(
        "dims",
        &Dims {
            batch: batch as u32,
            height: height as u32,
            width: width as u32,
            _pad: 0,
        },
    );
    let raw_buffer = gpu.storage_buffer("raw", raw);
    let black = gpu.storage_buffer("black_level", &black_level);
    let out_len = batch * 3 * height * width;
    let out = gpu.empty_storage_buffer("rgb", out_len);
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    kernel.dispatch(
        gpu,
        &mut encoder,
        &[&dims, &raw_buffer, &black, &out],
        (groups(width, 16), groups(height, 16), batch as u32),
    );
    gpu.queue.submit([encoder.finish()]);
    gpu.read_f32(&out, out_len).await
}
