//! How a session's phases start, step and end on its backend: the weights and processing each
//! phase starts from, what it trains, and what it leaves in the summary.

use candle_core::{DType, Device, Tensor};
use candle_nn::ParamsAdamW;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{adam_params, Front, Phase, Session, Snapshot};
use crate::gpu::models::StepStats;
use crate::isp::param::{IspParams, RunningStats};
use crate::spec::isp::{attacked, Stage, ALL_GROUPS};
use crate::train::augment::Augment;
use crate::train::backend::{Batch, Input, PhaseStart};
use crate::train::experiment::forensics_ranking;
use crate::{Error, Result};

impl Session {
    pub(super) async fn start_phase(&mut self, phase: &Phase) -> Result<()> {
        let mut fresh_model = false;
        let isp_training = match phase {
            Phase::Train {
                front,
                fresh_model: fresh,
                ..
            } => {
                if *fresh {
                    // the same start as the previous phase: reseed and rebuild
                    fresh_model = true;
                    self.rng = ChaCha8Rng::seed_from_u64(self.config.seed);
                    self.vars = self.fresh_weights()?;
                    self.isp_running = RunningStats::default();
                }
                match front {
                    Front::Param { train: true } => {
                        Some((attacked(ALL_GROUPS), adam_params(&self.config)))
                    }
                    _ => None,
                }
            }
            Phase::Attack { group } => Some((
                attacked(group),
                ParamsAdamW {
                    lr: self.config.forensic_lr,
                    weight_decay: 0.0,
                    ..Default::default()
                },
            )),
            Phase::Evaluate => None,
        };
        // every phase starts from the default processing
        let default = self.isp_default.clone();
        let (vars, running) = (self.vars.clone(), self.isp_running);
        self.backend()
            .await?
            .start_phase(
                &vars,
                PhaseStart {
                    fresh_model,
                    isp: &default,
                    running,
                    isp_default: &default,
                    isp_training,
                },
            )
            .await?;
        self.started = true;
        if let Phase::Attack { group } = phase {
            let before = self.validate(&Front::Param { train: false }).await?;
            self.summary
                .forensics
                .insert(group.clone(), (before, before, 0.0));
        }
        Ok(())
    }

    pub(super) async fn finish_phase(&mut self, phase: &Phase) -> Result<()> {
        // the backend's weights and processing back into the session's copy, once per phase
        let vars = self.vars.clone();
        let (packed, running) = self.backend().await?.finish_phase(&vars).await?;
        self.isp = IspParams::from_packed(&packed, DType::F32, &Device::Cpu)?;
        self.isp_running = running;
        match phase {
            Phase::Train { front, .. } => {
                let metric = self.validate(front).await?;
                self.summary
                    .final_metric
                    .insert(self.phase_name(phase), metric);
            }
            Phase::Attack { group } => {
                let after = self.validate(&Front::Param { train: false }).await?;
                if let Some(entry) = self.summary.forensics.get_mut(group) {
                    *entry = (entry.0, after, entry.0 - after);
                }
                self.summary.forensics_ranking = forensics_ranking(&self.summary)
                    .into_iter()
                    .map(|(group, ..)| group)
                    .collect();
                let first = self.data.val_items()[..1].to_vec();
                let (h, w) = (first[0].raw.height(), first[0].raw.width());
                let raw = self.raw_batch(&first, 100)?;
                let rgb = self.backend().await?.processed(&raw).await?;
                let view = Tensor::from_vec(rgb, (1, 3, h, w), &Device::Cpu)?;
                self.adversarial.push((group.clone(), view));
            }
            Phase::Evaluate => {}
        }
        Ok(())
    }

    pub(super) async fn train_step(&mut self, front: &Front) -> Result<StepStats> {
        let items = self.draw();
        let augment = Augment::random(&mut self.rng);
        let batch = self.batch(&items, front, 100)?;
        let frozen = self.config.freeze_backbone.at(self.phase_step);
        self.backend().await?.train(&batch, augment, frozen).await
    }

    pub(super) async fn attack_step(&mut self) -> Result<StepStats> {
        let items = self.draw();
        let batch = self.batch(&items, &Front::Param { train: false }, 100)?;
        self.backend().await?.attack(&batch).await
    }

    /// |dL/d stage| of the first validation tile (its own loss) through the current processing
    /// and model: the gradient row of the timeline is the tile its output row shows, and the
    /// snapshot costs a tile's backward pass, not a batch's (on the CPU a snapshot of 8 tiles
    /// took 1.4 training steps at 256 px).
    pub(super) async fn snapshot(&mut self, phase: &str) -> Result<()> {
        let fixed = (self.data.val_items().first().cloned())
            .ok_or_else(|| Error::invalid("no validation tile for the gradient snapshot"))?;
        let (h, w) = (fixed.raw.height(), fixed.raw.width());
        let fixed = [fixed];
        let batch = Batch {
            input: Input::Raw(self.raw_batch(&fixed, 100)?),
            targets: self.targets(&fixed)?,
        };
        let (maps, outputs) = self.backend().await?.stage_maps(&batch).await?;
        let stages = Stage::ALL
            .iter()
            .zip(maps)
            .map(|(stage, map)| (stage.name().to_string(), map))
            .collect();
        self.snapshots.push(Snapshot {
            phase: phase.into(),
            step: self.global_step,
            height: h,
            width: w,
            stages,
            outputs,
        });
        Ok(())
    }

    /// Forensics' adversarial processing of group `i` (attack order) as an image.
    pub fn adversarial_image(&self, i: usize) -> Result<crate::viz::Rgba> {
        let (group, t) = self
            .adversarial
            .get(i)
            .ok_or_else(|| Error::invalid(format!("no adversarial image {i}")))?;
        // the first tile, from the model's normalised range back to [0, 1] for the eye
        let t = t.get(0)?.affine(0.15, 0.5)?;
        let (c, h, w) = t.dims3()?;
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        if c < 3 {
            return Err(Error::invalid(format!(
                "the adversarial image of {group} has {c} channels, not 3"
            )));
        }
        let mut data = Vec::with_capacity(h * w * 4);
        for p in 0..h * w {
            for ch in 0..3 {
                data.push((v[ch * h * w + p].clamp(0.0, 1.0) * 255.0) as u8);
            }
            data.push(255);
        }
        Ok(crate::viz::Rgba {
            width: w,
            height: h,
            data,
        })
    }
}
