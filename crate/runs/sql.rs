//! A run's rows in the lab log's SQL tables (`lens2logit-labdb`, which holds SQLite): its
//! description, its parameters and tags under MLflow's keys, every logged step of its curves, and
//! its result tables cell by cell.

use lens2logit_labdb::{DriftRow, ForensicsRow, MetricRow, RunRow, RunRows};

use super::Run;
use crate::train::Summary;
use crate::{Error, Result};

/// The files of a run the database reads (the weights and images stay unread).
pub const RUN_FILES: [&str; 3] = [super::META, super::SUMMARY, super::METRICS];

impl Run {
    /// The run's rows in the lab log's tables.
    pub fn sql_rows(&self) -> Result<RunRows> {
        let m = self.meta();
        let summary: Summary = match self.file(super::SUMMARY) {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| Error::decode(format!("{} of run {}", super::SUMMARY, m.id), e))?,
            None => Summary::default(),
        };
        let metrics = self
            .metric_history()?
            .into_iter()
            .map(|p| MetricRow {
                key: p.key,
                value: p.value,
                step: p.step as i64,
                timestamp: p.timestamp_ms as i64,
            })
            .collect();
        let drift = summary
            .views
            .iter()
            .flat_map(|(test_view, row)| {
                row.iter().map(|(&intensity, &metric)| DriftRow {
                    test_view: test_view.clone(),
                    intensity: i64::from(intensity),
                    metric: f64::from(metric),
                })
            })
            .collect();
        let forensics = summary
            .forensics
            .iter()
            .map(|(group, &(before, after, drop))| ForensicsRow {
                grp: group.clone(),
                before: f64::from(before),
                after: f64::from(after),
                drop: f64::from(drop),
            })
            .collect();
        Ok(RunRows {
            run: RunRow {
                run_id: m.id.clone(),
                name: m.name.clone(),
                mode: m.mode.clone(),
                task: m.task.clone(),
                model: m.model.clone(),
                view: (!m.view.is_empty()).then(|| m.view.clone()),
                dataset: m.dataset.clone(),
                device: m.device.clone(),
                status: m.status.clone(),
                start_time: m.started_ms as i64,
                end_time: m.finished_ms as i64,
            },
            params: m
                .params
                .iter()
                .map(|(k, v)| (super::tracking::key(k), v.clone()))
                .collect(),
            tags: self
                .tags()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            metrics,
            drift,
            forensics,
        })
    }
}

// the tables as the runs fill them: natively, where the tests have SQLite
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeMap;

    use lens2logit_labdb::{LabDb, EXAMPLES};

    use super::*;
    use crate::runs::{RunMeta, META, METRICS, SUMMARY};

    /// A synthesis run trained on `view` with `seed`: its own view at `own` (100 %) and `own_10`
    /// (10 %), every other view lower.
    fn synthesis(id: &str, view: &str, seed: u64, own: f32, own_10: f32) -> Run {
        let mut meta = RunMeta::example();
        meta.id = id.into();
        meta.view = view.into();
        meta.params.insert("seed".into(), seed.to_string());
        meta.metrics = BTreeMap::from([("val_accuracy".into(), f64::from(own))]);
        let mut summary = Summary {
            phase_order: vec!["frozen, static".into()],
            ..Summary::default()
        };
        summary
            .curves
            .insert("frozen, static".into(), vec![(1, 1.5, 0.25), (2, 1.0, own)]);
        summary
            .views
            .insert(view.into(), BTreeMap::from([(100, own), (10, own_10)]));
        summary
            .views
            .insert("other".into(), BTreeMap::from([(100, 0.3), (10, 0.2)]));
        let csv = "phase,step,loss,metric\n\"frozen, static\",1,1.5,0.25\n";
        Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json().unwrap()),
            (SUMMARY.to_string(), serde_json::to_vec(&summary).unwrap()),
            (
                METRICS.to_string(),
                format!("{csv}\"frozen, static\",2,1.0,{own}\n").into_bytes(),
            ),
        ]))
        .unwrap()
    }

    fn forensics(id: &str, model: &str, drops: &[(&str, f32)]) -> Run {
        let mut meta = RunMeta::example();
        meta.id = id.into();
        meta.mode = "forensics".into();
        meta.model = model.into();
        meta.view = String::new();
        let mut summary = Summary::default();
        for &(group, drop) in drops {
            summary
                .forensics
                .insert(group.into(), (0.9, 0.9 - drop, drop));
        }
        Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json().unwrap()),
            (SUMMARY.to_string(), serde_json::to_vec(&summary).unwrap()),
        ]))
        .unwrap()
    }

    fn lab() -> LabDb {
        let runs = [
            synthesis("a1", "bilinear-none-none", 1, 0.9, 0.5),
            synthesis("a2", "bilinear-none-none", 2, 0.8, 0.6),
            synthesis("b1", "malvar2004-sharpening_filter-none", 1, 0.85, 0.75),
            forensics(
                "f1",
                "resnet_small",
                &[("debayer", 0.5), ("gamma_correct", 0.1), ("all", 0.7)],
            ),
            forensics(
                "f2",
                "resnet18",
                &[("debayer", 0.1), ("gamma_correct", 0.3)],
            ),
        ];
        let rows: Vec<RunRows> = runs.iter().map(|r| r.sql_rows().unwrap()).collect();
        LabDb::from_rows(&rows).unwrap()
    }

    #[test]
    fn the_example_questions_get_the_numbers_the_runs_hold() {
        let mut db = lab();
        let [(_, views), (_, groups), (_, best)] = EXAMPLES;
        let answer = db.query(views).unwrap();
        assert_eq!(answer.columns, ["train_view", "drop_at_10", "runs"]);
        // b: 0.85 - 0.75; a: the mean of 0.4 and 0.2 over its two seeds
        let rows: Vec<(String, f64, i64)> = answer
            .rows
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().into(),
                    r[1].as_f64().unwrap(),
                    r[2].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows[0].0, "malvar2004-sharpening_filter-none");
        assert!((rows[0].1 - 0.1).abs() < 1e-6, "{rows:?}");
        assert_eq!((rows[1].0.as_str(), rows[1].2), ("bilinear-none-none", 2));
        assert!((rows[1].1 - 0.3).abs() < 1e-6, "{rows:?}");

        let answer = db.query(groups).unwrap();
        let firsts: Vec<(&str, &str)> = answer
            .rows
            .iter()
            .map(|r| (r[0].as_str().unwrap(), r[1].as_str().unwrap()))
            .collect();
        assert_eq!(
            firsts,
            [("resnet18", "gamma_correct"), ("resnet_small", "debayer")]
        );

        let answer = db.query(best).unwrap();
        // the forensics runs keep the example's final 0.5
        assert_eq!(answer.rows.len(), 3, "{answer:?}");
        assert_eq!(
            answer.rows[0][..3],
            ["resnet_small", "synthesis", "val_accuracy"]
        );
        assert!((answer.rows[0][3].as_f64().unwrap() - 0.9).abs() < 1e-6);
        assert_eq!(answer.rows[0][4], 3);
    }

    #[test]
    fn the_metrics_are_every_logged_step_under_mlflows_keys() {
        let mut db = lab();
        let answer = db
            .query("SELECT key, value, step FROM metrics WHERE run_id = 'a1' ORDER BY step, key")
            .unwrap();
        let keys: Vec<&str> = answer.rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "frozen_ static/accuracy",
                "frozen_ static/loss",
                "frozen_ static/accuracy",
                "frozen_ static/loss",
                "val_accuracy"
            ]
        );
        let latest = db
            .query("SELECT value, step FROM latest_metrics WHERE run_id = 'a1' AND key = 'frozen_ static/loss'")
            .unwrap();
        assert_eq!(
            latest.rows,
            [[serde_json::json!(1.0), serde_json::json!(2)]]
        );
        let tag = db
            .query("SELECT value FROM tags WHERE run_id = 'b1' AND key = 'lens2logit.view'")
            .unwrap();
        assert_eq!(tag.rows[0][0], "malvar2004-sharpening_filter-none");
    }

    #[test]
    fn a_run_zip_gives_the_tables_without_its_weights() {
        let run = synthesis("a1", "bilinear-none-none", 1, 0.9, 0.5);
        let mut files: BTreeMap<String, Vec<u8>> =
            run.files().map(|(k, v)| (k.into(), v.to_vec())).collect();
        files.insert(crate::runs::MODEL.into(), vec![1; 1000]);
        let zip = Run::from_files(files).unwrap().to_zip().unwrap();
        let tables = Run::from_zip_files(&zip, &RUN_FILES).unwrap();
        assert_eq!(tables, run);
    }
}
