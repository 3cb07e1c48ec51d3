//! The lab log in the page: a stored run (its zip, as `lens2logit runs export` writes it) opened
//! for display, the runs table's filter, and its rows for the SQL module. The worker keeps the
//! zips in IndexedDB.

use lens2logit_labdb::EXAMPLES;
use wasm_bindgen::prelude::*;

use super::{js_error, to_js, RgbaImage};
use lens2logit::runs::mlflow::Tracking;
use lens2logit::runs::sql::RUN_FILES;
use lens2logit::runs::{facets, select, Run, RunMeta, Selection};
use lens2logit::train::timeline::timeline_gif;
use lens2logit::train::Snapshot;
use lens2logit::viz::Rgba;

/// A run opened from its zip: its description, results, snapshots and images.
#[wasm_bindgen]
pub struct RunView {
    run: Run,
    snapshots: Vec<Snapshot>,
}

#[wasm_bindgen]
impl RunView {
    /// Checks the zip (names, sizes, CRCs, run.json) and reads its snapshots.
    #[wasm_bindgen(constructor)]
    pub fn new(zip: &[u8]) -> Result<RunView, JsError> {
        let run = Run::from_zip(zip).map_err(js_error)?;
        let snapshots = run.snapshots().map_err(js_error)?;
        Ok(RunView { run, snapshots })
    }

    /// run.json: id, name, mode, model, view, dataset, params, final metrics.
    pub fn meta(&self) -> Result<JsValue, JsError> {
        to_js(self.run.meta())
    }

    pub fn summary(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.summary().map_err(js_error)?)
    }

    /// The loss and metric curves: [{phase, steps: [[step, loss, metric], ..]}].
    pub fn curves(&self) -> Result<JsValue, JsError> {
        to_js(&self.run.curves().map_err(js_error)?)
    }

    /// The gradient timeline: [{index, phase, step, stages, maxima}].
    pub fn snapshots(&self) -> Result<JsValue, JsError> {
        let list: Vec<_> = self
            .snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| s.describe(i))
            .collect();
        to_js(&list)
    }

    #[wasm_bindgen(js_name = snapshotImage)]
    pub fn snapshot_image(
        &self,
        index: usize,
        stage: usize,
        max: f32,
    ) -> Result<RgbaImage, JsError> {
        snapshot_image(&self.snapshots, index, stage, max)
    }

    /// Stage `stage`'s output in snapshot `index` (the timeline's second row).
    #[wasm_bindgen(js_name = snapshotOutput)]
    pub fn snapshot_output(&self, index: usize, stage: usize) -> Result<RgbaImage, JsError> {
        snapshot_output(&self.snapshots, index, stage)
    }

    /// The gradient timeline as an animated GIF.
    #[wasm_bindgen(js_name = timelineGif)]
    pub fn timeline_gif(&self) -> Result<Vec<u8>, JsError> {
        timeline_gif(&self.snapshots).map_err(js_error)
    }

    /// The forensics groups with an adversarial image, in attack order.
    #[wasm_bindgen(js_name = adversarialGroups)]
    pub fn adversarial_groups(&self) -> Vec<String> {
        self.run.adversarial().into_iter().map(|(g, _)| g).collect()
    }

    #[wasm_bindgen(js_name = adversarialImage)]
    pub fn adversarial_image(&self, i: usize) -> Result<RgbaImage, JsError> {
        let all = self.run.adversarial();
        let (group, png) = all
            .get(i)
            .ok_or_else(|| JsError::new("no such adversarial image"))?;
        Ok(
            Rgba::from_png(png, &format!("the adversarial image of {group}"))
                .map_err(js_error)?
                .into(),
        )
    }
}

/// Snapshot `index`'s |dL/d stage `stage`| as a heatmap scaled by `max` (a live session's or a
/// stored run's timeline).
pub(crate) fn snapshot_image(
    snapshots: &[Snapshot],
    index: usize,
    stage: usize,
    max: f32,
) -> Result<RgbaImage, JsError> {
    let s = snapshots
        .get(index)
        .ok_or_else(|| JsError::new("no such snapshot"))?;
    Ok(s.image(stage, max).map_err(js_error)?.into())
}

/// Stage `stage`'s output in snapshot `index`, scaled for display.
pub(crate) fn snapshot_output(
    snapshots: &[Snapshot],
    index: usize,
    stage: usize,
) -> Result<RgbaImage, JsError> {
    let s = snapshots
        .get(index)
        .ok_or_else(|| JsError::new("no such snapshot"))?;
    Ok(s.output_image(stage).map_err(js_error)?.into())
}

/// The runs table: `metas` (run.json of each stored run) filtered and sorted by `selection`
/// ({mode, model, view, dataset, text, sort}): `{rows, facets}`, the facets the values each
/// filter offers.
#[wasm_bindgen(js_name = selectRuns)]
pub fn select_runs(metas: JsValue, selection: JsValue) -> Result<JsValue, JsError> {
    let metas: Vec<RunMeta> = serde_wasm_bindgen::from_value(metas)
        .map_err(|e| JsError::new(&format!("stored runs: {e}")))?;
    let selection: Selection = serde_wasm_bindgen::from_value(selection)
        .map_err(|e| JsError::new(&format!("runs filter: {e}")))?;
    let facets = facets(&metas);
    let rows = select(metas.clone(), &selection).map_err(js_error)?;
    to_js(&serde_json::json!({ "rows": rows, "facets": facets }))
}

/// Logs a stored run (its zip) to the MLflow tracking server at `url`, in `experiment`;
/// `progress(done, total)` follows the artifacts' upload. Resolves to the MLflow run id.
#[wasm_bindgen(js_name = logRunToMlflow)]
pub async fn log_run_to_mlflow(
    url: String,
    experiment: String,
    zip: Vec<u8>,
    progress: js_sys::Function,
) -> Result<String, JsError> {
    let run = Run::from_zip(&zip).map_err(js_error)?;
    let tracking = Tracking::new(&url).map_err(js_error)?;
    let mut on_progress = |done: usize, total: usize| {
        let _ = progress.call2(&JsValue::NULL, &done.into(), &total.into());
    };
    tracking
        .log_run(&experiment, &run, &mut on_progress)
        .await
        .map_err(js_error)
}

/// A stored run's rows in the lab log's SQL tables, as JSON, from its zip (its description,
/// summary and curves only): what the SQL module (`lens2logit-labdb-web`) adds.
#[wasm_bindgen(js_name = sqlRows)]
pub fn sql_rows(zip: &[u8]) -> Result<String, JsError> {
    let rows = Run::from_zip_files(zip, &RUN_FILES)
        .and_then(|run| run.sql_rows())
        .map_err(js_error)?;
    serde_json::to_string(&rows).map_err(|e| JsError::new(&e.to_string()))
}

/// The lab log's example questions, [{title, sql}], shown before the SQL module is loaded.
#[wasm_bindgen(js_name = sqlExamples)]
pub fn sql_examples() -> Result<JsValue, JsError> {
    let list: Vec<_> = EXAMPLES
        .iter()
        .map(|(title, sql)| serde_json::json!({"title": title, "sql": sql}))
        .collect();
    to_js(&list)
}
