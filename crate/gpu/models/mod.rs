//! The task models as device-resident training graphs built from `gpu::nn` ops, with the topology
//! and parameter names of the `model` module (torchvision's for the ResNets), so the CPU and GPU
//! backends exchange weights through a candle `VarMap` and can be compared.
//!
//! A graph is built once for (model, batch, height, width): every activation, gradient, parameter
//! and optimiser buffer is allocated then. A training step uploads the batch, records forward,
//! loss, backward and AdamW into one compute pass and reads back a few floats.

mod builder;

use std::rc::Rc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ParamsAdamW, VarMap};

use super::nn::{CrossEntropy, DeviceAdamW, DiceLoss, GpuTensor, Kernels};
use super::Gpu;
use crate::spec::models::{ModelKind, NormMode};
use crate::{Error, Result};
use builder::{Builder, Layer, Norm, Param, Step, Value};

/// What a graph is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphSpec {
    pub model: ModelKind,
    /// Outputs of a classifier; the segmenters give one logit per pixel whatever this says.
    pub classes: usize,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    /// Whether a training step also writes dL/dx of the input batch (to train an ISP in front of
    /// the model); costs the first convolution's input gradient.
    pub input_grad: bool,
}

/// A batch's loss and metric: accuracy for the classifiers, IoU for the segmenters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    pub loss: f32,
    pub metric: f32,
}

enum Loss {
    /// Stats: [loss, correct rows].
    CrossEntropy(CrossEntropy),
    /// Stats: [loss, intersection, union, ...].
    Dice(DiceLoss),
}

/// One task model's training graph on the device.
pub struct TaskGraph {
    spec: GraphSpec,
    input: Value,
    logits: Rc<GpuTensor>,
    targets: GpuTensor,
    stats: GpuTensor,
    loss: Loss,
    layers: Vec<Layer>,
    /// In the order they are recorded (the reverse of the forward pass).
    backward: Vec<Step>,
    params: Vec<Param>,
    norms: Vec<Norm>,
    /// The backbone's parameters and the head's, each with its own learning rate (fine-tuning
    /// may freeze the backbone).
    backbone: DeviceAdamW,
    head: DeviceAdamW,
}

impl TaskGraph {
    /// Builds the graph and its optimiser (`candle_nn::AdamW` semantics over every trained
    /// parameter). Parameters start at zero (batch norm at weight 1, running statistics 0 and 1):
    /// [`TaskGraph::import`] gives them the CPU model's weights.
    pub fn new(
        gpu: &Gpu,
        kernels: &Kernels,
        spec: GraphSpec,
        optimiser: ParamsAdamW,
    ) -> Result<Self> {
        let GraphSpec {
            model,
            classes,
            batch,
            height,
            width,
            input_grad,
        } = spec;
        if batch == 0 || height == 0 || width == 0 || (!model.is_segmenter() && classes == 0) {
            return Err(Error::invalid(format!(
                "a {} graph needs a batch, a tile and classes, not {spec:?}",
                model.name()
            )));
        }
        let mut b = Builder::new(gpu, kernels);
        let input = b.input(&[batch, 3, height, width], input_grad)?;
        let logits = model.build(&mut b, &input, classes)?;
        let dlogits = b
            .read(&logits)?
            .ok_or_else(|| Error::Gpu("model graph: the logits lack their gradient".into()))?;
        let (targets, stats, loss) = if model.is_segmenter() {
            let targets = GpuTensor::zeros(gpu, "mask", &[batch, 1, height, width])?;
            let stats = GpuTensor::zeros(gpu, "loss stats", &[6])?;
            let loss = DiceLoss::new(gpu, kernels, &logits.x, &targets, &dlogits, &stats)?;
            (targets, stats, Loss::Dice(loss))
        } else {
            let targets = GpuTensor::zeros(gpu, "classes", &[batch])?;
            let stats = GpuTensor::zeros(gpu, "loss stats", &[2])?;
            let loss = CrossEntropy::new(gpu, kernels, &logits.x, &targets, &dlogits, &stats)?;
            (targets, stats, Loss::CrossEntropy(loss))
        };
        let group = |backbone: bool| -> Vec<(&GpuTensor, &GpuTensor)> {
            b.params
                .iter()
                .filter(|p| model.is_backbone(&p.name) == backbone)
                .map(|p| (&*p.value, &*p.grad))
                .collect()
        };
        let backbone = DeviceAdamW::new(gpu, kernels, &group(true), optimiser.clone())?;
        let head = DeviceAdamW::new(gpu, kernels, &group(false), optimiser)?;
        let Builder {
            layers,
            mut backward,
            params,
            norms,
            ..
        } = b;
        backward.reverse();
        Ok(Self {
            spec,
            input,
            logits: logits.x.clone(),
            targets,
            stats,
            loss,
            layers,
            backward,
            params,
            norms,
            backbone,
            head,
        })
    }

    pub fn spec(&self) -> GraphSpec {
        self.spec
    }

    /// The input batch (B, 3, H, W), normalised: [`TaskGraph::upload`] writes it, or an ISP on
    /// the device before the step is recorded.
    pub fn input(&self) -> &GpuTensor {
        &self.input.x
    }

    /// dL/dx of the last training step's input; an error where the graph was built without
    /// `input_grad`.
    pub fn input_grad(&self) -> Result<&GpuTensor> {
        self.input.grad().map_err(|_| {
            Error::Gpu("the model graph was built without the input's gradient".into())
        })
    }

    /// Zeroes the optimisers' moments and step counts (a fresh model from the same start).
    pub fn reset_optimiser(&mut self, encoder: &mut wgpu::CommandEncoder) {
        self.backbone.reset(encoder);
        self.head.reset(encoder);
    }

    /// The backbone's learning rate, where fine-tuning gives it its own.
    pub fn set_backbone_learning_rate(&mut self, lr: f64) {
        self.backbone.set_learning_rate(lr);
    }

    /// Queues a batch: `x` (B, 3, H, W) normalised, `targets` the class index of each row
    /// (classifiers) or a {0, 1} mask (B, 1, H, W) (segmenters).
    pub fn upload(&self, gpu: &Gpu, x: &[f32], targets: &[f32]) -> Result<()> {
        self.input.x.write(gpu, x)?;
        self.upload_targets(gpu, targets)
    }

    /// Queues the targets alone (the input comes from an ISP on the device).
    pub fn upload_targets(&self, gpu: &Gpu, targets: &[f32]) -> Result<()> {
        if let Loss::CrossEntropy(_) = self.loss {
            let classes = self.spec.classes as f32;
            if let Some(bad) = targets
                .iter()
                .find(|&&t| !(t >= 0.0 && t < classes && t.fract() == 0.0))
            {
                return Err(Error::invalid(format!(
                    "class index {bad} is not one of the model's {classes} classes"
                )));
            }
        }
        self.targets.write(gpu, targets)
    }

    /// Records forward (batch statistics), loss, backward and the AdamW update of every
    /// parameter; with `frozen_backbone`, the backbone's batch norms stay in evaluation mode and
    /// its parameters unchanged. AdamW's constants land at the next submission: one step per
    /// submission.
    pub fn record_train(
        &mut self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass,
        frozen_backbone: bool,
    ) -> Result<()> {
        let mode = NormMode {
            train: true,
            frozen_backbone,
        };
        self.record_forward(pass, mode);
        for step in &self.backward {
            step.record(&self.layers, pass, (mode, self.spec.model))?;
        }
        self.head.step(gpu, pass);
        if !frozen_backbone {
            self.backbone.step(gpu, pass);
        }
        Ok(())
    }

    /// Records the forward pass with the running statistics, the loss and the backward pass to
    /// the input, updating nothing: dL/dx of a frozen model (forensics, gradient snapshots).
    /// Needs a graph built with `input_grad`.
    pub fn record_input_gradient(&self, pass: &mut wgpu::ComputePass) -> Result<()> {
        self.input_grad()?;
        self.record_forward(pass, NormMode::EVAL);
        for step in &self.backward {
            step.record(&self.layers, pass, (NormMode::EVAL, self.spec.model))?;
        }
        Ok(())
    }

    /// Records the forward pass with the running statistics, and the loss.
    pub fn record_eval(&self, pass: &mut wgpu::ComputePass) {
        self.record_forward(pass, NormMode::EVAL);
    }

    fn record_forward(&self, pass: &mut wgpu::ComputePass, mode: NormMode) {
        for layer in &self.layers {
            layer.forward(pass, (mode, self.spec.model));
        }
        match &self.loss {
            Loss::CrossEntropy(op) => op.record(pass),
            Loss::Dice(op) => op.record(pass),
        }
    }

    /// Loss and metric of the last recorded step (reads back two or three floats).
    pub async fn read_stats(&self, gpu: &Gpu) -> Result<StepStats> {
        let count = match self.loss {
            Loss::CrossEntropy(_) => 2,
            Loss::Dice(_) => 3,
        };
        let stats = gpu
            .read_regions(&[(self.stats.buffer(), 0, count)])
            .await?
            .concat();
        let [loss, counted, union] = [0, 1, 2].map(|i| stats.get(i).copied().unwrap_or(0.0));
        let metric = match self.loss {
            Loss::CrossEntropy(_) => counted / self.spec.batch as f32,
            Loss::Dice(_) if union > 0.0 => counted / union,
            Loss::Dice(_) => 1.0,
        };
        Ok(StepStats { loss, metric })
    }

    /// One training step on a batch (see [`TaskGraph::upload`]): one submission, one small
    /// readback.
    pub async fn train_step(&mut self, gpu: &Gpu, x: &[f32], targets: &[f32]) -> Result<StepStats> {
        self.upload(gpu, x, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_train(gpu, &mut pass, false)?;
        }
        gpu.submit(encoder);
        self.read_stats(gpu).await
    }

    /// The model's logits in evaluation mode on `x` (B, 3, H, W), as it is: (B, classes) or
    /// (B, 1, H, W), flattened.
    pub async fn predict(&self, gpu: &Gpu, x: &[f32]) -> Result<Vec<f32>> {
        self.input.x.write(gpu, x)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for layer in &self.layers {
                layer.forward(&mut pass, (NormMode::EVAL, self.spec.model));
            }
        }
        gpu.submit(encoder);
        let logits = &self.logits;
        Ok(gpu
            .read_regions(&[(logits.buffer(), 0, logits.element_count())])
            .await?
            .concat())
    }

    /// Loss and metric of the model in evaluation mode (running statistics) on a batch.
    pub async fn evaluate(&self, gpu: &Gpu, x: &[f32], targets: &[f32]) -> Result<StepStats> {
        self.upload(gpu, x, targets)?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_eval(&mut pass);
        }
        gpu.submit(encoder);
        self.read_stats(gpu).await
    }

    /// Sets every parameter and running statistic from `vars` (the CPU model's names and
    /// shapes). The optimiser's moments are kept: import before training.
    pub fn import(&self, gpu: &Gpu, vars: &VarMap) -> Result<()> {
        let data = vars
            .data()
            .lock()
            .map_err(|_| Error::Gpu("the weights' lock is poisoned".into()))?;
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let var = data
                .get(name)
                .ok_or_else(|| Error::invalid(format!("the weights lack '{name}'")))?;
            if var.dims() != shape {
                return Err(Error::invalid(format!(
                    "weight '{name}' has shape {:?}, the graph {shape:?}",
                    var.dims()
                )));
            }
            Ok(var
                .as_tensor()
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?)
        };
        for p in &self.params {
            p.value.write(gpu, &get(&p.name, p.value.shape())?)?;
        }
        for norm in &self.norms {
            let stat = |what: &str| get(&format!("{}.{what}", norm.name), &[norm.channels]);
            norm.layer
                .set_running(gpu, &stat("running_mean")?, &stat("running_var")?)?;
        }
        Ok(())
    }

    /// The gradient of every trained parameter from the last training step, by name (to inspect
    /// or compare a step; training itself never reads them back).
    pub async fn gradients(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<f32>)>> {
        let regions: Vec<(&wgpu::Buffer, usize, usize)> = self
            .params
            .iter()
            .map(|p| (p.grad.buffer(), 0, p.grad.element_count()))
            .collect();
        let values = gpu.read_regions(&regions).await?;
        Ok(self
            .params
            .iter()
            .map(|p| p.name.clone())
            .zip(values)
            .collect())
    }

    /// Writes every parameter and running statistic into `vars` under the CPU model's names
    /// (setting the variables there, adding those missing).
    pub async fn export(&self, gpu: &Gpu, vars: &VarMap) -> Result<()> {
        let regions: Vec<(&wgpu::Buffer, usize, usize)> = self
            .params
            .iter()
            .map(|p| (p.value.buffer(), 0, p.value.element_count()))
            .collect();
        let values = gpu.read_regions(&regions).await?;
        let mut named: Vec<(String, Vec<usize>, Vec<f32>)> = self
            .params
            .iter()
            .zip(values)
            .map(|(p, v)| (p.name.clone(), p.value.shape().to_vec(), v))
            .collect();
        for norm in &self.norms {
            let (mean, var) = norm.layer.read_running(gpu).await?;
            named.push((
                format!("{}.running_mean", norm.name),
                vec![norm.channels],
                mean,
            ));
            named.push((
                format!("{}.running_var", norm.name),
                vec![norm.channels],
                var,
            ));
        }
        let mut data = vars
            .data()
            .lock()
            .map_err(|_| Error::Gpu("the weights' lock is poisoned".into()))?;
        for (name, shape, values) in named {
            match data.get(&name) {
                Some(var) => var.set(&Tensor::from_vec(values, shape, var.device())?)?,
                None => {
                    let tensor = Tensor::from_vec(values, shape, &Device::Cpu)?;
                    data.insert(name, Var::from_tensor(&tensor)?);
                }
            }
        }
        Ok(())
    }
}
