//! A session's evaluations: the validation metric of a phase, and synthesis' drift table (every
//! static view at every intensity level) with the post-hoc corruption baseline beside it. The
//! drift table is a phase of steps, a cell each, so that it reports progress and stops on Cancel
//! as training does (12 views x 7 levels take minutes at 256 px).

use std::collections::BTreeMap;

use super::{Front, Phase, Session};
use crate::isp::static_pipeline::View;
use crate::train::corruption::Corruption;
use crate::train::TrainConfig;
use crate::Result;

/// One cell of the evaluation after training: a static view at an intensity level (percent), or
/// a corruption of the training view at full light.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cell {
    View(View, u32),
    /// The session's camera twin at an intensity level.
    Twin(u32),
    Corrupted(Corruption),
}

impl Cell {
    /// The cell, as the progress line names it.
    fn label(self) -> String {
        match self {
            Cell::View(view, intensity) => format!("{view} at {intensity} %"),
            Cell::Twin(intensity) => format!("the camera twin at {intensity} %"),
            Cell::Corrupted(corruption) => format!("{} corruption", corruption.name()),
        }
    }
}

/// The cells `config`'s evaluation computes, in order: the views row by row (the camera twin's
/// last, where the session has one), then the corruptions.
pub(super) fn evaluation_cells(config: &TrainConfig) -> Vec<Cell> {
    let views = View::paper_views()
        .into_iter()
        .flat_map(|view| config.intensities.iter().map(move |&i| Cell::View(view, i)));
    let twin = config
        .camera_twin
        .iter()
        .flat_map(|_| config.intensities.iter().map(|&i| Cell::Twin(i)));
    let views = views.chain(twin);
    let corruptions = config
        .corruption_severity
        .map(|_| Corruption::ALL.map(Cell::Corrupted))
        .into_iter()
        .flatten();
    views.chain(corruptions).collect()
}

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

    /// The model on every static view (and the camera twin, where the session has one) and
    /// intensity level: view -> intensity -> metric.
    pub async fn view_table(
        &mut self,
        intensities: &[u32],
    ) -> Result<BTreeMap<String, BTreeMap<u32, f32>>> {
        if !self.started {
            // a model evaluated without training (a run's checkpoint): its backend takes it now
            self.start_phase(&Phase::Evaluate).await?;
        }
        let mut table: BTreeMap<String, BTreeMap<u32, f32>> = BTreeMap::new();
        for view in View::paper_views() {
            for &intensity in intensities {
                let metric = self.metric_on(&Front::Static(view), intensity).await?;
                table
                    .entry(view.to_string())
                    .or_default()
                    .insert(intensity, metric);
            }
        }
        if let Some(twin) = self.config.camera_twin.clone() {
            for &intensity in intensities {
                let metric = self.metric_on(&Front::Twin, intensity).await?;
                table
                    .entry(twin.name().to_string())
                    .or_default()
                    .insert(intensity, metric);
            }
        }
        Ok(table)
    }

    /// Evaluates cell `k` of the evaluation into the summary (the drops once the last is in):
    /// its metric and its name.
    pub(super) async fn evaluation_step(&mut self, k: usize) -> Result<(f32, String)> {
        let cells = evaluation_cells(&self.config);
        let cell = cells[k];
        let metric = match cell {
            Cell::View(view, intensity) => {
                let metric = self.metric_on(&Front::Static(view), intensity).await?;
                self.summary
                    .views
                    .entry(view.to_string())
                    .or_default()
                    .insert(intensity, metric);
                metric
            }
            Cell::Twin(intensity) => {
                let metric = self.metric_on(&Front::Twin, intensity).await?;
                let name = self
                    .config
                    .camera_twin
                    .as_ref()
                    .map_or_else(String::new, |t| t.name().to_string());
                self.summary
                    .views
                    .entry(name)
                    .or_default()
                    .insert(intensity, metric);
                metric
            }
            Cell::Corrupted(corruption) => {
                let severity = self.config.corruption_severity.unwrap_or_default();
                let front = Front::Corrupted(self.config.view, corruption, severity);
                let metric = self.metric_on(&front, 100).await?;
                self.summary
                    .corruptions
                    .insert(corruption.name().to_string(), (metric, 0.0));
                metric
            }
        };
        if k + 1 == cells.len() {
            self.evaluation_drops();
        }
        Ok((metric, cell.label()))
    }

    /// The drops of every view and corruption relative to the training view at full light.
    fn evaluation_drops(&mut self) {
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
        for (metric, drop) in self.summary.corruptions.values_mut() {
            *drop = base - *metric;
        }
    }
}
