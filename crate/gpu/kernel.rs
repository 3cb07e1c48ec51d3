//! A compute kernel: one WGSL entry point with its storage and uniform buffers bound in order.

use super::Gpu;

/// A compiled compute pipeline whose bind group 0 holds its buffers at bindings 0, 1, 2, ...
pub struct Kernel {
    pipeline: wgpu::ComputePipeline,
    label: &'static str,
}

impl Kernel {
    /// Compiles `entry` of the WGSL `source`; the layout is derived from the shader.
    pub fn new(gpu: &Gpu, label: &'static str, source: &str, entry: &str) -> Self {
        let module = gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = gpu
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        Self { pipeline, label }
    }

    /// Records one dispatch of `workgroups` with `buffers` bound at 0, 1, 2, ... of group 0.
    pub fn dispatch(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        buffers: &[&wgpu::Buffer],
        workgroups: (u32, u32, u32),
    ) {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.label),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(self.label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups.0, workgroups.1, workgroups.2);
    }
}

/// Workgroups needed to cover `n` items with groups of `size`.
pub fn groups(n: usize, size: u32) -> u32 {
    (n as u32).div_ceil(size)
}
