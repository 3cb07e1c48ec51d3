//! The CPU backend: the model and the parametrized ISP on candle, the reference every other
//! backend is checked against. The model's weights are the session's `VarMap` itself, so a phase
//! hands them over without a copy.

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{ParamsAdamW, VarMap};

use super::{BackendSpec, Batch, Input, PhaseStart, StageMaps, StepBackend};
use crate::gpu::models::StepStats;
use crate::isp::param::{forward, IspParams, RunningStats};
use crate::model::losses::{accuracy, cross_entropy, dice_loss, iou, ssim_distance};
use crate::model::{trainable, AdamW, TaskModel};
use crate::spec::models::NormMode;
use crate::train::augment::Augment;
use crate::train::session::Penalty;
use crate::{Error, Result};

/// The model over the session's weights, with an optimiser for its backbone and one for its
/// head (fine-tuning may freeze the backbone or train it at its own rate).
struct Model {
    vars: VarMap,
    net: TaskModel,
    backbone: AdamW,
    head: AdamW,
}

/// The processing of a phase.
struct Processing {
    params: IspParams,
    /// The default processing, forensics' reference.
    default: IspParams,
    /// Where the phase trains or attacks the processing.
    optimiser: Option<AdamW>,
    /// The final batch norm's running statistics (training steps track, evaluation uses).
    running: RunningStats,
}

impl Processing {
    /// `raw` through `params` in evaluation mode (running statistics).
    fn eval(&self, raw: &Tensor, params: &IspParams) -> Result<Tensor> {
        self.running
            .normalise(&forward(raw, params, false, false)?.output)
    }
}

/// Both set when a phase starts.
pub struct CpuBackend {
    spec: BackendSpec,
    device: Device,
    model: Option<Model>,
    processing: Option<Processing>,
}

fn no_phase() -> Error {
    Error::invalid("the CPU backend was asked for a step before its phase started")
}

impl CpuBackend {
    /// A backend for `spec`, refused where the page's worker could not hold it (it would die of
    /// the failed allocation; native memory is the machine's).
    pub fn new(spec: &BackendSpec) -> Result<Self> {
        #[cfg(target_arch = "wasm32")]
        {
            use crate::train::memory::{Estimate, PAGE, WASM_BUDGET};
            let tile = (spec.height, spec.width);
            Estimate::of(spec.model, spec.classes, tile, spec.tiles)?.check(
                spec.model,
                tile,
                spec.batch,
                (WASM_BUDGET, PAGE, false),
            )?;
        }
        Ok(Self {
            spec: spec.clone(),
            device: Device::Cpu,
            model: None,
            processing: None,
        })
    }

    fn model(&self) -> Result<&Model> {
        self.model.as_ref().ok_or_else(no_phase)
    }

    fn processing(&self) -> Result<&Processing> {
        self.processing.as_ref().ok_or_else(no_phase)
    }

    /// Loss and metric of the model on a processed batch.
    fn loss_metric(&self, x: &Tensor, targets: &Tensor, mode: NormMode) -> Result<(Tensor, f32)> {
        let out = self.model()?.net.forward(x, mode)?;
        Ok(match self.spec.model.is_segmenter() {
            false => (cross_entropy(&out, targets)?, accuracy(&out, targets)?),
            true => (dice_loss(&out, targets)?, iou(&out, targets)?),
        })
    }

    /// The model's input for an evaluation: a processed batch as it is, a raw one through the
    /// current processing.
    fn eval_input(&self, input: &Input) -> Result<Tensor> {
        match input {
            Input::Processed(x) => Ok(x.clone()),
            Input::Raw(raw) => {
                let p = self.processing()?;
                p.eval(raw, &p.params)
            }
        }
    }

    fn raw<'a>(&self, batch: &'a Batch) -> Result<&'a Tensor> {
        match &batch.input {
            Input::Raw(raw) => Ok(raw),
            Input::Processed(_) => Err(Error::invalid(
                "this step needs the raw batch, not a processed one",
            )),
        }
    }
}

fn stats(loss: &Tensor, metric: f32) -> Result<StepStats> {
    Ok(StepStats {
        loss: loss.to_dtype(DType::F32)?.to_scalar::<f32>()?,
        metric,
    })
}

#[async_trait(?Send)]
impl StepBackend for CpuBackend {
    fn label(&self) -> String {
        super::choice::cpu_label()
    }

    fn traffic(&self) -> Option<crate::gpu::Traffic> {
        None
    }

    async fn start_phase(&mut self, vars: &VarMap, phase: PhaseStart<'_>) -> Result<()> {
        let same = self
            .model
            .as_ref()
            .is_some_and(|m| std::ptr::eq(m.vars.data(), vars.data()));
        if phase.fresh_model || !same {
            let kind = self.spec.model;
            let net = TaskModel::new(kind, self.spec.classes, vars, &self.device)?;
            let (backbone, head): (Vec<_>, Vec<_>) = trainable(vars)
                .into_iter()
                .partition(|(name, _)| kind.is_backbone(name));
            let vars_of = |group: Vec<(String, Var)>| group.into_iter().map(|(_, v)| v).collect();
            let backbone_settings = ParamsAdamW {
                lr: self.spec.backbone_lr,
                ..self.spec.optimiser.clone()
            };
            self.model = Some(Model {
                vars: vars.clone(),
                net,
                backbone: AdamW::new(vars_of(backbone), backbone_settings)?,
                head: AdamW::new(vars_of(head), self.spec.optimiser.clone())?,
            });
        }
        let params = IspParams::from_packed(phase.isp, DType::F32, &self.device)?;
        let optimiser = match phase.isp_training {
            None => None,
            Some((names, settings)) => {
                let targets: Vec<Var> = params
                    .named()
                    .filter(|(n, _)| names.contains(n))
                    .map(|(_, v)| v.clone())
                    .collect();
                Some(AdamW::new(targets, settings)?)
            }
        };
        self.processing = Some(Processing {
            params,
            default: IspParams::from_packed(phase.isp_default, DType::F32, &self.device)?,
            optimiser,
            running: phase.running,
        });
        Ok(())
    }

    async fn finish_phase(&mut self, _vars: &VarMap) -> Result<(Vec<f32>, RunningStats)> {
        // the weights are the session's own variables: nothing to copy
        let p = self.processing()?;
        Ok((p.params.packed()?, p.running))
    }

    async fn train(
        &mut self,
        batch: &Batch,
        augment: Augment,
        frozen_backbone: bool,
    ) -> Result<StepStats> {
        let x = match &batch.input {
            Input::Processed(x) => x.clone(),
            Input::Raw(raw) => {
                // the processing's batch norm uses and tracks the batch's statistics
                let p = self.processing.as_mut().ok_or_else(no_phase)?;
                let fwd = forward(raw, &p.params, true, false)?;
                p.running.track(&fwd.stages[4].detach())?;
                fwd.output
            }
        };
        let x = augment.apply(&x)?;
        let targets = match self.spec.model.is_segmenter() {
            true => augment.apply(&batch.targets)?,
            false => batch.targets.clone(),
        };
        let mode = NormMode {
            train: true,
            frozen_backbone,
        };
        let (loss, metric) = self.loss_metric(&x, &targets, mode)?;
        let grads = loss.backward()?;
        let model = self.model.as_mut().ok_or_else(no_phase)?;
        model.head.step(&grads)?;
        if !frozen_backbone {
            model.backbone.step(&grads)?;
        }
        if let Some(opt) = self.processing.as_mut().and_then(|p| p.optimiser.as_mut()) {
            opt.step(&grads)?;
        }
        stats(&loss, metric)
    }

    async fn attack(&mut self, batch: &Batch) -> Result<StepStats> {
        let raw = self.raw(batch)?;
        let Some((penalty, lambda)) = self.spec.forensics else {
            return Err(Error::invalid("the backend was not set up for forensics"));
        };
        // the model and the processing's batch norm in evaluation mode, as they are tested
        let p = self.processing()?;
        let out = p.eval(raw, &p.params)?;
        let reference = p.eval(raw, &p.default)?.detach();
        let (task_loss, metric) = self.loss_metric(&out, &batch.targets, NormMode::EVAL)?;
        let distance = match penalty {
            Penalty::L2 => out.sub(&reference)?.sqr()?.mean_all()?,
            Penalty::Ssim => ssim_distance(&out, &reference)?,
        };
        // gradient ascent on the task loss, kept near the default processing
        let objective = ((distance * lambda)? - &task_loss)?;
        let grads = objective.backward()?;
        if let Some(opt) = self.processing.as_mut().and_then(|p| p.optimiser.as_mut()) {
            opt.step(&grads)?;
        }
        stats(&task_loss, metric)
    }

    async fn evaluate(&mut self, batch: &Batch) -> Result<StepStats> {
        let x = self.eval_input(&batch.input)?.detach();
        let (loss, metric) = self.loss_metric(&x, &batch.targets, NormMode::EVAL)?;
        stats(&loss, metric)
    }

    async fn stage_maps(&mut self, batch: &Batch) -> Result<StageMaps> {
        let raw = self.raw(batch)?;
        let (_, h, w) = raw.dims3()?;
        // evaluation mode, as the GPU backend takes it
        let p = self.processing()?;
        let fwd = forward(raw, &p.params, false, true)?;
        let output = p.running.normalise(&fwd.output)?;
        let (loss, _) = self.loss_metric(&output, &batch.targets, NormMode::EVAL)?;
        let grads = loss.backward()?;
        let maps = fwd
            .taps
            .iter()
            .map(|tap| match grads.get(tap.as_tensor()) {
                Some(g) => Ok(g.abs()?.mean(1)?.mean(0)?.flatten_all()?.to_vec1::<f32>()?),
                None => Ok(vec![0.0; h * w]),
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = fwd
            .stages
            .iter()
            .map(|stage| Ok(stage.get(0)?.flatten_all()?.to_vec1::<f32>()?))
            .collect::<Result<Vec<_>>>()?;
        Ok((maps, outputs))
    }

    async fn predict(&mut self, x: &Tensor) -> Result<Vec<f32>> {
        let logits = self.model()?.net.forward(x, NormMode::EVAL)?;
        Ok(logits.flatten_all()?.to_vec1::<f32>()?)
    }

    async fn processed(&mut self, raw: &Tensor) -> Result<Vec<f32>> {
        let p = self.processing()?;
        let x = p.eval(raw, &p.params)?;
        Ok(x.get(0)?.flatten_all()?.to_vec1::<f32>()?)
    }
}
