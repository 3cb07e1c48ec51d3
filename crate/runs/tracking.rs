//! A run as a tracking server keeps it: its tags, its params and the history of its metrics under
//! MLflow's keys. MLflow gets these (`runs::mlflow`), and the lab log's SQL tables hold the same
//! rows (`runs::sql`), so a query written against one carries over to the other.

use super::Run;
use crate::Result;

/// The longest metric or param key MLflow accepts (mlflow/utils/validation.py).
pub const MAX_KEY: usize = 250;

/// One logged value of a metric: the step counts across phases, the time lies between the run's
/// start and end in proportion to the step.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub value: f64,
    pub step: usize,
    pub timestamp_ms: u64,
}

impl Run {
    /// The run's tags: the lab's description of it, as MLflow's tags hold it.
    pub fn tags(&self) -> Vec<(&'static str, &str)> {
        let meta = self.meta();
        let mut tags = vec![
            ("lens2logit.run_id", meta.id.as_str()),
            ("lens2logit.mode", meta.mode.as_str()),
            ("lens2logit.task", meta.task.as_str()),
            ("lens2logit.model", meta.model.as_str()),
            ("lens2logit.dataset", meta.dataset.as_str()),
            ("lens2logit.device", meta.device.as_str()),
            ("mlflow.source.name", "Lens2Logit Lab"),
        ];
        if !meta.view.is_empty() {
            tags.push(("lens2logit.view", meta.view.as_str()));
        }
        tags
    }

    /// Every logged value: `{phase}/loss` and `{phase}/{metric}` at each step of each phase (the
    /// steps counted over the whole session), then the final metrics at the last step.
    pub fn metric_history(&self) -> Result<Vec<MetricPoint>> {
        let meta = self.meta();
        let curves = self.curves()?;
        let steps: usize = curves.iter().map(|c| c.steps.len()).sum();
        let span = meta.finished_ms.saturating_sub(meta.started_ms);
        let mut points = Vec::with_capacity(2 * steps + meta.metrics.len());
        let mut step = 0;
        for curve in &curves {
            for &(_, loss, value) in &curve.steps {
                step += 1;
                let timestamp_ms = meta.started_ms + span * step as u64 / steps as u64;
                let names = [("loss", loss), (meta.metric.as_str(), value)];
                points.extend(names.map(|(name, value)| MetricPoint {
                    key: key(&format!("{}/{name}", curve.phase)),
                    value: value.into(),
                    step,
                    timestamp_ms,
                }));
            }
        }
        points.extend(meta.metrics.iter().map(|(name, &value)| MetricPoint {
            key: key(name),
            value,
            step,
            timestamp_ms: meta.finished_ms,
        }));
        Ok(points)
    }
}

/// A metric or param key MLflow accepts: letters, digits, `_-. :/` (anything else becomes `_`),
/// no empty, `.` or `..` path parts (MLflow refuses keys that normalise to another path), at most
/// 250 characters.
pub fn key(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-. :/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let joined = mapped
        .split('/')
        .filter(|part| !part.is_empty() && *part != "." && *part != "..")
        .collect::<Vec<_>>()
        .join("/");
    match joined.is_empty() {
        true => "_".into(),
        false => joined.chars().take(MAX_KEY).collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runs::{RunMeta, META, METRICS};

    #[test]
    fn keys_are_what_mlflow_accepts() {
        assert_eq!(key("frozen, static/loss"), "frozen_ static/loss");
        assert_eq!(
            key("val_accuracy/attack colour_correction"),
            "val_accuracy/attack colour_correction"
        );
        assert_eq!(key("/a//b/./../c/"), "a/b/c");
        assert_eq!(key("ünïcode→x"), "_n_code_x");
        assert_eq!(key("//"), "_");
        assert_eq!(key(&"x".repeat(300)).len(), MAX_KEY);
    }

    #[test]
    fn the_history_counts_steps_across_phases_and_ends_with_the_final_metrics() {
        let meta = RunMeta::example();
        let csv = "phase,step,loss,metric\n\"frozen, static\",1,2.0,0.25\njoint,1,1.0,0.5\n";
        let run = Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json().unwrap()),
            (METRICS.to_string(), csv.as_bytes().to_vec()),
        ]))
        .unwrap();
        let points = run.metric_history().unwrap();
        let seen: Vec<(&str, f64, usize)> = points
            .iter()
            .map(|p| (p.key.as_str(), p.value, p.step))
            .collect();
        assert_eq!(
            seen,
            [
                ("frozen_ static/loss", 2.0, 1),
                ("frozen_ static/accuracy", 0.25, 1),
                ("joint/loss", 1.0, 2),
                ("joint/accuracy", 0.5, 2),
                ("val_accuracy", 0.5, 2),
            ]
        );
        assert_eq!(points[0].timestamp_ms, meta.started_ms + 30_000);
        assert_eq!(points[4].timestamp_ms, meta.finished_ms);
    }
}
