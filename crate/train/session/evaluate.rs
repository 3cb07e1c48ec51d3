//! A session's evaluations: the validation metric of a phase, and synthesis' drift table (every
//! static view at every intensity level) with the post-hoc corruption baseline beside it.

use std::collections::BTreeMap;

use super::{Front, Phase, Session};
use crate::isp::static_pipeline::View;
use crate::train::corruption::Corruption;
use crate::Result;

impl Session {
    /// The model's metric on the validation tiles (eval mode).
    pub(super) async fn validate(&mut self, front: &Front) -> Result<f32> {
        self.metric_on(front, 100).await
    }

    /// The mean metric over [`Session::val_batches`].
    pub(super) async fn metric_on(&mut self, front: &Front, intensity: u32) -> Result<f32> {
        let batches = self.val_batches();
        let mut total = 0.0f32;
        for chunk in &batches {
            let batch = self.batch(chunk, front, intensity)?;
            total += self.backend().await?.evaluate(&batch).await?.metric;
        }
        Ok(total / batches.len().max(1) as f32)
    }

    /// The model on every static view and intensity level: view -> intensity -> metric.
    pub async fn view_table(
        &mut self,
        intensities: &[u32],
    ) -> Result<BTreeMap<String, BTreeMap<u32, f32>>> {
        if !self.started {
            // a model evaluated without training (a run's checkpoint): its backend takes it now
            self.start_phase(&Phase::Evaluate).await?;
        }
        let mut table = BTreeMap::new();
        for view in View::paper_views() {
            let mut row = BTreeMap::new();
            for &intensity in intensities {
                row.insert(
                    intensity,
                    self.metric_on(&Front::Static(view), intensity).await?,
                );
            }
            table.insert(view.to_string(), row);
        }
        Ok(table)
    }

    /// Synthesis: the drift table and the drops relative to the training view.
    pub(super) async fn evaluate_views(&mut self) -> Result<()> {
        let intensities = self.config.intensities.clone();
        self.summary.views = self.view_table(&intensities).await?;
        let trained = self.config.view.to_string();
        let base = self
            .summary
            .views
            .get(&trained)
            .and_then(|r| r.get(&100))
            .copied()
            .unwrap_or(0.0);
        for (view, row) in &self.summary.views {
            if let Some(m) = row.get(&100) {
                self.summary.view_drops.insert(view.clone(), base - m);
            }
        }
        if let Some(severity) = self.config.corruption_severity {
            for corruption in Corruption::ALL {
                let front = Front::Corrupted(self.config.view, corruption, severity);
                let metric = self.metric_on(&front, 100).await?;
                self.summary
                    .corruptions
                    .insert(corruption.name().to_string(), (metric, base - metric));
            }
        }
        Ok(())
    }
}
