//! A compute program: one WGSL module with many entry points sharing one explicit bind-group
//! layout, so one bind group serves every kernel of a pipeline (auto layouts would differ per
//! entry point).

use std::collections::HashMap;

use super::Gpu;
use crate::{Error, Result};

/// What sits at each binding of group 0, in order.
#[derive(Clone, Copy)]
pub enum Binding {
    Uniform,
    Storage,
}

pub struct Program {
    layout: wgpu::BindGroupLayout,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
}

impl Program {
    /// Compiles `entries` of `source`; a WGSL or validation error comes back as an error value.
    pub async fn new(
        gpu: &Gpu,
        label: &str,
        source: &str,
        bindings: &[Binding],
        entries: &[&'static str],
    ) -> Result<Self> {
        let scope = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = gpu
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let layout_entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b {
                        Binding::Uniform => wgpu::BufferBindingType::Uniform,
                        Binding::Storage => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = gpu
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(label),
                entries: &layout_entries,
            });
        let pipeline_layout = gpu
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipelines = entries
            .iter()
            .map(|&entry| {
                let pipeline =
                    gpu.device
                        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                            label: Some(entry),
                            layout: Some(&pipeline_layout),
                            module: &module,
                            entry_point: Some(entry),
                            compilation_options: Default::default(),
                            cache: None,
                        });
                (entry, pipeline)
            })
            .collect();
        if let Some(error) = scope.pop().await {
            return Err(Error::Gpu(format!(
                "compiling the {label} kernels failed: {error}"
            )));
        }
        Ok(Self { layout, pipelines })
    }

    /// A bind group holding `buffers` at bindings 0, 1, 2, ...
    pub fn bind(&self, gpu: &Gpu, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records a dispatch of `entry`; dispatches in one pass run in order.
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        entry: &str,
        bind_group: &wgpu::BindGroup,
        workgroups: (u32, u32, u32),
    ) {
        pass.set_pipeline(&self.pipelines[entry]);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(workgroups.0, workgroups.1, workgroups.2);
    }
}
