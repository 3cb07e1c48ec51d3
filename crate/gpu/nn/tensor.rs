//! A device-resident f32 tensor: one storage buffer and its shape, with upload and asynchronous
//! readback (never blocking the browser).

use super::super::Gpu;
use crate::{Error, Result};

pub struct GpuTensor {
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
}

impl GpuTensor {
    /// A zeroed tensor; fails where it would not fit one storage binding of this device.
    pub fn zeros(gpu: &Gpu, label: &str, shape: &[usize]) -> Result<Self> {
        let len: usize = shape.iter().product();
        let limit = gpu.device.limits().max_storage_buffer_binding_size;
        if (len as u64) * 4 > limit {
            return Err(Error::Gpu(format!(
                "{label} {shape:?} needs {} MB, more than this GPU's {} MB per buffer: use a \
                 smaller batch or tile",
                (len * 4) >> 20,
                limit >> 20
            )));
        }
        Ok(Self {
            buffer: gpu.empty_storage_buffer(label, len),
            shape: shape.to_vec(),
        })
    }

    /// A tensor holding `data` (row-major in `shape`).
    pub fn from_slice(gpu: &Gpu, label: &str, shape: &[usize], data: &[f32]) -> Result<Self> {
        let tensor = Self::zeros(gpu, label, shape)?;
        tensor.write(gpu, data)?;
        Ok(tensor)
    }

    /// Replaces the contents (queued: it lands before the next submitted command buffer).
    pub fn write(&self, gpu: &Gpu, data: &[f32]) -> Result<()> {
        if data.len() != self.element_count() {
            return Err(Error::Gpu(format!(
                "writing {} values into a tensor of shape {:?}",
                data.len(),
                self.shape
            )));
        }
        gpu.queue
            .write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Copies the contents back to the CPU.
    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read_f32(&self.buffer, self.element_count()).await
    }

    /// Copies several tensors back with one staging buffer and one mapping.
    pub async fn read_all(gpu: &Gpu, tensors: &[&GpuTensor]) -> Result<Vec<Vec<f32>>> {
        let regions: Vec<(&wgpu::Buffer, usize, usize)> = tensors
            .iter()
            .map(|t| (&t.buffer, 0, t.element_count()))
            .collect();
        gpu.read_regions(&regions).await
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn element_count(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// (B, C, H, W) of a 4-D tensor, or an error naming the op that needed it.
    pub(super) fn dims4(&self, op: &str, name: &str) -> Result<(usize, usize, usize, usize)> {
        match *self.shape.as_slice() {
            [b, c, h, w] => Ok((b, c, h, w)),
            _ => Err(Error::Gpu(format!(
                "{op}: {name} must be (B, C, H, W), not {:?}",
                self.shape
            ))),
        }
    }
}
