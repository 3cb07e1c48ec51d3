//! The GPU backend of the training engine: one session's model graph, parametrized ISP, optimisers
//! and forensics objective, all resident on the device (built once when the session picks the
//! GPU). The session keeps the experiment (phases, batches, augmentation choices, results) and
//! hands each step here as plain data; a step submits one command buffer and reads back its loss
//! and metric.

use std::rc::Rc;

use async_trait::async_trait;
use candle_core::Tensor;
use candle_nn::{ParamsAdamW, VarMap};

use super::{BackendSpec, Batch, PhaseStart, StageMaps, StepBackend};
use crate::codecs::f32_values;
use crate::gpu::isp::{GpuIsp, IspPass, Norm};
use crate::gpu::models::{GraphSpec, StepStats, TaskGraph};
use crate::gpu::nn::{DeviceAdamW, Distance, FlipTurn, ForensicObjective, GpuTensor, Kernels};
use crate::gpu::Gpu;
use crate::isp::param::RunningStats;
use crate::spec::isp::PACKED_LEN;
use crate::train::augment::Augment as Choice;
use crate::train::memory::Estimate;
use crate::train::session::Penalty;
use crate::Result;

/// What the device takes in a step: a batch processed on the CPU (a static view, normalised) or
/// a raw batch the device's ISP processes.
enum Input {
    Processed(Vec<f32>),
    Raw(Vec<f32>),
}

pub struct GpuBackend {
    gpu: Rc<Gpu>,
    kernels: Rc<Kernels>,
    graph: TaskGraph,
    isp: IspPass,
    /// The default processing (forensics' reference).
    default_params: GpuTensor,
    /// The ISP's output before augmentation, and the gradient flowing back into the ISP.
    processed: GpuTensor,
    processed_grad: GpuTensor,
    augment: FlipTurn,
    /// Forensics: the default processing's output and the objective's gradient.
    reference: GpuTensor,
    objective: Option<ForensicObjective>,
    /// The ISP's optimiser and the parameters it trains, where the phase trains them.
    isp_opt: Option<(DeviceAdamW, Vec<&'static str>)>,
}

/// The device memory the browser lets one page hold, about (WebGPU does not say; Chromium's
/// limits are of this order). Natively the adapter's own limits apply.
const WEB_GPU_BUDGET: u64 = 4 << 30;
/// Side of the probing builds (every model's downsampling divides it).
const PROBE: usize = 64;

impl GpuBackend {
    /// Builds the session's device state, after checking that it fits: the graph is built at a
    /// small size twice (batch 1 and 2) and its buffers counted, which scales to the session's
    /// tiles and batch; a session that would not fit is refused with the largest batch that does.
    pub async fn new(gpu: Rc<Gpu>, shape: &BackendSpec) -> Result<Self> {
        let optimiser = shape.optimiser.clone();
        let kernels = Rc::new(Kernels::new(&gpu).await?);
        let program = GpuIsp::new(&gpu).await?;
        let probe = |batch| -> Result<crate::gpu::Tally> {
            gpu.take_tally();
            let small = BackendSpec {
                batch,
                height: PROBE,
                width: PROBE,
                ..shape.clone()
            };
            drop(Self::build(
                &gpu,
                &kernels,
                &program,
                &small,
                optimiser.clone(),
            )?);
            Ok(gpu.take_tally())
        };
        let (one, two) = (probe(1)?, probe(2)?);
        let area = (shape.height * shape.width) as f64 / (PROBE * PROBE) as f64;
        let per_tile = |a: u64, b: u64| (b.saturating_sub(a) as f64 * area) as u64;
        let total = Estimate::new(
            one.bytes
                .saturating_sub(two.bytes.saturating_sub(one.bytes)),
            per_tile(one.bytes, two.bytes),
        );
        let largest = Estimate::new(0, per_tile(one.largest, two.largest));
        let tile = (shape.height, shape.width);
        let limit = gpu.device.limits().max_storage_buffer_binding_size;
        largest.check(
            shape.model,
            tile,
            shape.batch,
            (limit, "this GPU allows in one buffer", true),
        )?;
        if cfg!(target_arch = "wasm32") {
            let place = "a page may hold on the GPU";
            total.check(
                shape.model,
                tile,
                shape.batch,
                (WEB_GPU_BUDGET, place, false),
            )?;
        }
        Self::build(&gpu, &kernels, &program, shape, optimiser)
    }

    fn build(
        gpu: &Rc<Gpu>,
        kernels: &Rc<Kernels>,
        program: &GpuIsp,
        shape: &BackendSpec,
        optimiser: ParamsAdamW,
    ) -> Result<Self> {
        let (b, h, w) = (shape.batch, shape.height, shape.width);
        let (gpu, kernels) = (gpu.clone(), kernels.clone());
        let spec = GraphSpec {
            model: shape.model,
            classes: shape.classes,
            batch: b,
            height: h,
            width: w,
            input_grad: true,
        };
        let mut graph = TaskGraph::new(&gpu, &kernels, spec, optimiser)?;
        graph.set_backbone_learning_rate(shape.backbone_lr);
        let default_params = GpuTensor::zeros(&gpu, "default ISP parameters", &[PACKED_LEN])?;
        let isp = IspPass::new(&gpu, program, (b, h, w), true, Some(&default_params))?;
        let rgb = [b, 3, h, w];
        let processed = GpuTensor::zeros(&gpu, "processed batch", &rgb)?;
        let processed_grad = GpuTensor::zeros(&gpu, "processed batch gradient", &rgb)?;
        let input_grad = graph.input_grad()?;
        let augment = FlipTurn::new(
            &gpu,
            &kernels,
            &processed,
            graph.input(),
            Some((input_grad, &processed_grad)),
        )?;
        let reference = GpuTensor::zeros(&gpu, "default processing", &rgb)?;
        let objective = match shape.forensics {
            Some((penalty, lambda)) => Some(ForensicObjective::new(
                &gpu,
                &kernels,
                match penalty {
                    Penalty::L2 => Distance::L2,
                    Penalty::Ssim => Distance::Ssim,
                },
                lambda as f32,
                graph.input(),
                &reference,
                input_grad,
                &processed_grad,
            )?),
            None => None,
        };
        gpu.take_errors()?;
        Ok(Self {
            gpu,
            kernels,
            graph,
            isp,
            default_params,
            processed,
            processed_grad,
            augment,
            reference,
            objective,
            isp_opt: None,
        })
    }

    pub fn gpu(&self) -> &Rc<Gpu> {
        &self.gpu
    }

    /// Sets the model's weights (and, with `fresh`, zeroes its optimiser), the processing's
    /// parameters and its default; `train_isp` chooses which ISP parameters this phase trains
    /// (none: the processing is frozen) and with which optimiser settings.
    fn set_phase(
        &mut self,
        vars: &VarMap,
        fresh: bool,
        (isp, stats): (&[f32], &RunningStats),
        isp_default: &[f32],
        train_isp: Option<(Vec<&'static str>, ParamsAdamW)>,
    ) -> Result<()> {
        let gpu = &self.gpu;
        self.graph.import(gpu, vars)?;
        self.isp.params().write(gpu, isp)?;
        self.isp.write_running(gpu, &stats.packed());
        self.default_params.write(gpu, isp_default)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        if fresh {
            self.graph.reset_optimiser(&mut encoder);
        }
        // gradients of parameters a phase does not reduce must not move them
        encoder.clear_buffer(self.isp.grads().buffer(), 0, None);
        gpu.submit(encoder);
        self.isp_opt = match train_isp {
            None => None,
            Some((targets, params)) => {
                let pairs = [(self.isp.params(), self.isp.grads())];
                Some((
                    DeviceAdamW::new(gpu, &self.kernels, &pairs, params)?,
                    targets,
                ))
            }
        };
        Ok(())
    }

    /// One training step: the model (and the processing, where the phase trains it) on a batch
    /// with this step's augmentation. `targets` are already augmented on the CPU.
    async fn train_on(
        &mut self,
        input: &Input,
        targets: &[f32],
        augment: Choice,
        frozen_backbone: bool,
    ) -> Result<StepStats> {
        let gpu = self.gpu.clone();
        self.graph.upload_targets(&gpu, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        match input {
            Input::Processed(x) => {
                // augmented on the CPU with the targets: no gradient flows past the model
                self.graph.input().write(&gpu, x)?;
                let mut pass = encoder.begin_compute_pass(&Default::default());
                self.graph.record_train(&gpu, &mut pass, frozen_backbone)?;
            }
            Input::Raw(raw) => {
                self.isp.write_raw(&gpu, raw)?;
                let (flip_h, flip_v, turns) = augment.choice();
                self.augment.set(&gpu, flip_h, flip_v, turns)?;
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    self.isp.record_forward(&mut pass, false, Norm::Batch);
                }
                self.isp.copy_output(&mut encoder, &self.processed)?;
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    self.augment.forward(&mut pass);
                    self.graph.record_train(&gpu, &mut pass, frozen_backbone)?;
                    if self.isp_opt.is_some() {
                        self.augment.backward(&mut pass)?;
                    }
                }
                if let Some((opt, targets)) = &mut self.isp_opt {
                    self.isp.copy_upstream(&mut encoder, &self.processed_grad)?;
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    self.isp.record_backward(&mut pass, targets, Norm::Batch);
                    opt.step(&gpu, &mut pass);
                }
            }
        }
        gpu.submit(encoder);
        self.graph.read_stats(&gpu).await
    }

    /// One forensics step on a raw batch: the frozen model's loss through the current processing,
    /// and an update of the attacked parameters that raises it while staying near the default.
    async fn attack_on(&mut self, raw: &[f32], targets: &[f32]) -> Result<StepStats> {
        let gpu = self.gpu.clone();
        let (Some(objective), Some((opt, attacked))) = (&self.objective, &mut self.isp_opt) else {
            return Err(crate::Error::Gpu(
                "the session was not set up for forensics on the GPU".into(),
            ));
        };
        self.isp.write_raw(&gpu, raw)?;
        self.graph.upload_targets(&gpu, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            // the model and the processing's batch norm in evaluation mode, as they are tested
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.isp.record_forward(&mut pass, true, Norm::Running);
        }
        self.isp.copy_output(&mut encoder, &self.reference)?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.isp.record_forward(&mut pass, false, Norm::Running);
        }
        self.isp.copy_output(&mut encoder, self.graph.input())?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.graph.record_input_gradient(&mut pass)?;
            objective.record(&mut pass);
        }
        self.isp.copy_upstream(&mut encoder, &self.processed_grad)?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.isp.record_backward(&mut pass, attacked, Norm::Running);
            opt.step(&gpu, &mut pass);
        }
        gpu.submit(encoder);
        self.graph.read_stats(&gpu).await
    }

    /// Loss and metric of the model in evaluation mode on a batch.
    async fn evaluate_on(&mut self, input: &Input, targets: &[f32]) -> Result<StepStats> {
        let gpu = self.gpu.clone();
        self.graph.upload_targets(&gpu, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        match input {
            Input::Raw(raw) => self.process(&mut encoder, raw, Norm::Running)?,
            Input::Processed(x) => self.graph.input().write(&gpu, x)?,
        }
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.graph.record_eval(&mut pass);
        }
        gpu.submit(encoder);
        self.graph.read_stats(&gpu).await
    }

    /// Records the current processing of `raw` into the model's input.
    fn process(&self, encoder: &mut wgpu::CommandEncoder, raw: &[f32], norm: Norm) -> Result<()> {
        self.isp.write_raw(&self.gpu, raw)?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.isp.record_forward(&mut pass, false, norm);
        }
        self.isp.copy_output(encoder, self.graph.input())
    }

    /// |dL/d stage| per pixel of the five tracked stages, averaged over the batch and channels,
    /// through the current processing and the frozen model: (5, H*W) read back, nothing else.
    async fn maps_of(
        &mut self,
        raw: &[f32],
        targets: &[f32],
    ) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
        let gpu = self.gpu.clone();
        self.graph.upload_targets(&gpu, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.process(&mut encoder, raw, Norm::Running)?;
        let input_grad = self.graph.input_grad()?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.graph.record_input_gradient(&mut pass)?;
        }
        self.isp.copy_upstream(&mut encoder, input_grad)?;
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.isp.record_backward(&mut pass, &[], Norm::Running);
            self.isp.record_stage_maps(&mut pass);
        }
        gpu.submit(encoder);
        // one readback: the five maps, then the five stage outputs of the first tile
        let maps = self.isp.maps();
        let mut regions = vec![(maps.buffer(), 0, maps.element_count())];
        regions.extend(self.isp.first_tile_stages());
        let mut parts = gpu.read_regions(&regions).await?;
        let outputs = parts.split_off(1);
        let maps = parts.remove(0);
        let per_stage = maps.len() / 5;
        let maps = maps.chunks(per_stage.max(1)).map(<[f32]>::to_vec).collect();
        Ok((maps, outputs))
    }

    /// The current processing's output for the first tile of `raw`, (3, H, W).
    async fn processed_first(&mut self, raw: &[f32]) -> Result<Vec<f32>> {
        let gpu = self.gpu.clone();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        self.process(&mut encoder, raw, Norm::Running)?;
        gpu.submit(encoder);
        let tile = self.processed.element_count() / self.processed.shape()[0].max(1);
        Ok(gpu
            .read_regions(&[(self.graph.input().buffer(), 0, tile)])
            .await?
            .remove(0))
    }

    /// Copies the model's weights into `vars` and returns the processing's packed parameters
    /// and batch-norm running statistics (once per phase: the session's CPU copy then answers
    /// saves and summaries).
    async fn export(&self, vars: &VarMap) -> Result<(Vec<f32>, RunningStats)> {
        self.graph.export(&self.gpu, vars).await?;
        let params = self.isp.params();
        let regions = [
            (params.buffer(), 0, params.element_count()),
            self.isp.running_region(),
        ];
        let mut parts = self.gpu.read_regions(&regions).await?;
        let stats = RunningStats::from_packed(&parts.remove(1))?;
        Ok((parts.remove(0), stats))
    }
}

impl GpuBackend {
    /// `values` of a tensor on the CPU, as the device takes them.
    fn targets(&self, targets: &Tensor) -> Result<Vec<f32>> {
        f32_values(targets)
    }

    fn input(input: &super::Input) -> Result<Input> {
        Ok(match input {
            super::Input::Processed(x) => Input::Processed(f32_values(x)?),
            super::Input::Raw(raw) => Input::Raw(f32_values(raw)?),
        })
    }

    fn raw(batch: &Batch) -> Result<Vec<f32>> {
        match &batch.input {
            super::Input::Raw(raw) => f32_values(raw),
            super::Input::Processed(_) => Err(crate::Error::invalid(
                "this step needs the raw batch, not a processed one",
            )),
        }
    }
}

#[async_trait(?Send)]
impl StepBackend for GpuBackend {
    fn label(&self) -> String {
        super::choice::gpu_label(&self.gpu)
    }

    fn traffic(&self) -> Option<crate::gpu::Traffic> {
        Some(self.gpu.traffic())
    }

    async fn start_phase(&mut self, vars: &VarMap, phase: PhaseStart<'_>) -> Result<()> {
        self.set_phase(
            vars,
            phase.fresh_model,
            (phase.isp, &phase.running),
            phase.isp_default,
            phase.isp_training,
        )
    }

    async fn finish_phase(&mut self, vars: &VarMap) -> Result<(Vec<f32>, RunningStats)> {
        self.export(vars).await
    }

    async fn train(
        &mut self,
        batch: &Batch,
        augment: Choice,
        frozen_backbone: bool,
    ) -> Result<StepStats> {
        // the targets are augmented here; a processed batch too (no gradient flows past the
        // model), a raw one on the device after its processing
        let targets = match self.graph.spec().model.is_segmenter() {
            true => augment.apply(&batch.targets)?,
            false => batch.targets.clone(),
        };
        let input = match &batch.input {
            super::Input::Processed(x) => Input::Processed(f32_values(&augment.apply(x)?)?),
            super::Input::Raw(raw) => Input::Raw(f32_values(raw)?),
        };
        let targets = self.targets(&targets)?;
        self.train_on(&input, &targets, augment, frozen_backbone)
            .await
    }

    async fn attack(&mut self, batch: &Batch) -> Result<StepStats> {
        let (raw, targets) = (Self::raw(batch)?, self.targets(&batch.targets)?);
        self.attack_on(&raw, &targets).await
    }

    async fn evaluate(&mut self, batch: &Batch) -> Result<StepStats> {
        let (input, targets) = (Self::input(&batch.input)?, self.targets(&batch.targets)?);
        self.evaluate_on(&input, &targets).await
    }

    async fn stage_maps(&mut self, batch: &Batch) -> Result<StageMaps> {
        // the graph has one batch size: copies of the tile, each carrying 1/copies of its
        // gradient (the loss is the batch's mean), so the batch's mean map times the copies (for
        // segmentation within Dice's +1 smoothing: 2e-3 from the CPU's single tile at 32 px)
        let copies = self.graph.spec().batch;
        let (raw, targets) = (Self::raw(batch)?, self.targets(&batch.targets)?);
        let (mut maps, outputs) = self
            .maps_of(&raw.repeat(copies), &targets.repeat(copies))
            .await?;
        maps.iter_mut().flatten().for_each(|v| *v *= copies as f32);
        Ok((maps, outputs))
    }

    async fn predict(&mut self, x: &Tensor) -> Result<Vec<f32>> {
        self.graph.predict(&self.gpu, &f32_values(x)?).await
    }

    async fn processed(&mut self, raw: &Tensor) -> Result<Vec<f32>> {
        // the graph has one batch size: a batch of copies
        let tile = f32_values(raw)?;
        let copies = tile.repeat(self.graph.spec().batch);
        self.processed_first(&copies).await
    }
}
