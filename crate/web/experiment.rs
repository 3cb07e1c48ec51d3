//! The paper's synthesis experiment in the page: the worker trains on each of the 12 views in turn
//! (one `Trainer` each) and hands every finished session to this table, which the core fills,
//! writes as CSV and draws as heatmaps, as `lens2logit experiment synthesis` does.

use std::collections::BTreeMap;

use wasm_bindgen::prelude::*;

use super::train::Trainer;
use super::{js_error, RgbaImage};
use lens2logit::raw::intensity::LEVELS;
use lens2logit::train::experiment::SynthesisTable;

#[wasm_bindgen]
pub struct SynthesisExperiment {
    table: SynthesisTable,
}

#[wasm_bindgen]
impl SynthesisExperiment {
    /// An empty table of `metric` (accuracy or iou) at `intensities` (100 among them; the
    /// datasets' 7 levels where not given); `settings` ({name: value}) is what every row shares,
    /// as the CLI's table records it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        metric: &str,
        intensities: Option<Vec<u32>>,
        settings: JsValue,
    ) -> Result<SynthesisExperiment, JsError> {
        let settings: BTreeMap<String, String> = serde_wasm_bindgen::from_value(settings)
            .map_err(|e| JsError::new(&format!("experiment settings: {e}")))?;
        let intensities = intensities.unwrap_or_else(|| LEVELS.to_vec());
        let table = SynthesisTable::new(metric, &intensities, settings).map_err(js_error)?;
        Ok(Self { table })
    }

    /// The row of a finished synthesis session: its training view tested on all 12.
    #[wasm_bindgen(js_name = addSession)]
    pub fn add_session(&mut self, trainer: &Trainer) -> Result<(), JsError> {
        let (view, summary) = trainer.view_and_summary()?;
        self.table.add_row(view, &summary).map_err(js_error)
    }

    /// `synthesis_12x12.csv`: rows training views, columns test views, the metric at 100 %.
    #[wasm_bindgen(js_name = matrixCsv)]
    pub fn matrix_csv(&self) -> String {
        self.table.matrix_csv()
    }

    /// `synthesis_intensity.csv`: each view's model on its own view, by intensity.
    #[wasm_bindgen(js_name = intensityCsv)]
    pub fn intensity_csv(&self) -> String {
        self.table.intensity_csv()
    }

    #[wasm_bindgen(js_name = matrixImage)]
    pub fn matrix_image(&self) -> RgbaImage {
        self.table.matrix_image().into()
    }

    #[wasm_bindgen(js_name = intensityImage)]
    pub fn intensity_image(&self) -> RgbaImage {
        self.table.intensity_image().into()
    }
}
