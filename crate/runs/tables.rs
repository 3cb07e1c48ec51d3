//! A run's tables as CSV, the form a notebook or a spreadsheet reads.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::codecs::{csv_records, csv_text};
use crate::isp::static_pipeline::View;
use crate::train::Summary;
use crate::{Error, Result};

/// One phase's loss and metric per step (steps from 1 within the phase).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub phase: String,
    pub steps: Vec<(usize, f32, f32)>,
}

/// Every step of the session, phases in the order they ran: `phase,step,loss,metric`.
pub fn metrics_csv(summary: &Summary) -> String {
    let rows = summary.phase_order.iter().flat_map(|phase| {
        let steps = summary.curves.get(phase).into_iter().flatten();
        steps.map(move |point| (phase.as_str(), *point))
    });
    curves_csv(rows)
}

/// `metrics.csv` of (phase, (step, loss, metric)) rows.
pub fn curves_csv<'a>(rows: impl IntoIterator<Item = (&'a str, (usize, f32, f32))>) -> String {
    let rows = rows.into_iter().map(|(phase, (step, loss, metric))| {
        [
            phase.to_string(),
            step.to_string(),
            loss.to_string(),
            metric.to_string(),
        ]
    });
    csv_text(["phase", "step", "loss", "metric"], rows)
}

/// The curves of `metrics.csv`, phases in the order they ran.
pub fn parse_curves(bytes: &[u8]) -> Result<Vec<Curve>> {
    let bad = |line: u64, why: &str| {
        Error::decode(
            super::METRICS,
            format!("line {line}: {why} (expected phase,step,loss,metric)"),
        )
    };
    let mut curves: Vec<Curve> = Vec::new();
    for (line, record) in csv_records(bytes, super::METRICS)? {
        let &[phase, step, loss, metric] = record.iter().collect::<Vec<_>>().as_slice() else {
            return Err(bad(line, "not four fields"));
        };
        let phase = phase.to_string();
        let step: usize = step
            .parse()
            .map_err(|_| bad(line, "the step is no count"))?;
        let loss: f32 = loss
            .parse()
            .map_err(|_| bad(line, "the loss is no number"))?;
        let metric: f32 = metric
            .parse()
            .map_err(|_| bad(line, "the metric is no number"))?;
        match curves.last_mut() {
            Some(c) if c.phase == phase => c.steps.push((step, loss, metric)),
            _ => curves.push(Curve {
                phase,
                steps: vec![(step, loss, metric)],
            }),
        }
    }
    Ok(curves)
}

/// The drift table: a row per intensity, a column per paper view (and one per other view the
/// table holds, a camera twin's), then the drop of each view at 100 % against the training view
/// (where 100 % was measured).
pub fn drift_csv(
    table: &BTreeMap<String, BTreeMap<u32, f32>>,
    intensities: &[u32],
    train_view: &str,
) -> String {
    let mut views: Vec<String> = View::paper_views().iter().map(View::to_string).collect();
    let others: Vec<String> = table
        .keys()
        .filter(|k| !views.contains(k))
        .cloned()
        .collect();
    views.extend(others);
    let cell = |view: &str, intensity: u32| {
        table
            .get(view)
            .and_then(|row| row.get(&intensity))
            .map_or(String::new(), |m| format!("{m:.4}"))
    };
    let mut rows: Vec<Vec<String>> = intensities
        .iter()
        .map(|&intensity| {
            let cells = views.iter().map(|v| cell(v, intensity));
            std::iter::once(intensity.to_string())
                .chain(cells)
                .collect()
        })
        .collect();
    if let Some(base) = table.get(train_view).and_then(|row| row.get(&100)) {
        let drops = views.iter().map(|v| {
            table
                .get(v)
                .and_then(|row| row.get(&100))
                .map_or(String::new(), |m| format!("{:.4}", base - m))
        });
        rows.push(std::iter::once("drop_at_100".into()).chain(drops).collect());
    }
    let header = std::iter::once("intensity".to_string()).chain(views.iter().cloned());
    csv_text(header, rows)
}

/// Every table of a session in one CSV, as the page exports it: the curves, then the drift table
/// and the corruption baseline where the session has them, each after a blank line.
pub fn results_csv(summary: &Summary, intensities: &[u32], train_view: &str) -> String {
    let mut out = metrics_csv(summary);
    if !summary.views.is_empty() {
        out += "\n";
        out += &drift_csv(&summary.views, intensities, train_view);
    }
    if !summary.corruptions.is_empty() {
        out += "\n";
        out += &corruptions_csv(summary);
    }
    out
}

pub fn corruptions_csv(summary: &Summary) -> String {
    let rows = summary
        .corruptions
        .iter()
        .map(|(corruption, (metric, drop))| {
            [
                corruption.clone(),
                format!("{metric:.4}"),
                format!("{drop:.4}"),
            ]
        });
    csv_text(["corruption", "metric", "drop"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_come_back_from_metrics_csv_in_session_order() {
        let mut summary = Summary {
            phase_order: vec!["frozen, static".into(), "joint".into()],
            ..Summary::default()
        };
        summary
            .curves
            .insert("joint".into(), vec![(1, 0.5, 0.25), (2, 0.25, 0.5)]);
        summary
            .curves
            .insert("frozen, static".into(), vec![(1, 1.5, 0.125)]);
        let curves = parse_curves(metrics_csv(&summary).as_bytes()).unwrap();
        assert_eq!(curves.len(), 2);
        assert_eq!(curves[0].phase, "frozen, static");
        assert_eq!(curves[0].steps, vec![(1, 1.5, 0.125)]);
        assert_eq!(curves[1].steps, vec![(1, 0.5, 0.25), (2, 0.25, 0.5)]);
        let e = parse_curves(b"phase,step,loss,metric\nx,1,nan?,0\n").unwrap_err();
        assert!(
            e.to_string().contains("line 2: the loss is no number"),
            "{e}"
        );
    }

    #[test]
    fn the_drift_table_has_a_row_per_intensity_and_the_drops() {
        let views: Vec<String> = View::paper_views().iter().map(View::to_string).collect();
        let mut table = BTreeMap::new();
        for (i, v) in views.iter().enumerate() {
            table.insert(
                v.clone(),
                BTreeMap::from([(100, 0.5 + i as f32 / 100.0), (10, 0.25)]),
            );
        }
        let csv = drift_csv(&table, &[100, 10], &views[0]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].starts_with("100,0.5000,0.5100,"));
        assert!(lines[3].starts_with("drop_at_100,0.0000,-0.0100,"));
        // a camera twin's column comes after the paper's 12
        table.insert("twin:mine".into(), BTreeMap::from([(100, 0.4), (10, 0.2)]));
        let csv = drift_csv(&table, &[100, 10], &views[0]);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].ends_with(",twin:mine"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(",0.4000") && lines[3].ends_with(",0.1000"),
            "{csv}"
        );
    }
}
