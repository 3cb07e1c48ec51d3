//! "Fit my camera" in the worker: a DNG and its camera's JPEG fitted into a twin
//! (`train::camera_fit`), a step at a time, the worker taking the page's messages (Cancel) between
//! steps; and the twin's files and images for the page.

use wasm_bindgen::prelude::*;

use super::dng::load_dng_decoder;
use super::{js_error, to_js, Lab, RgbaImage, TrainControl};
use lens2logit::raw::{decode_camera_jpeg, decode_dng};
use lens2logit::runs::Run;
use lens2logit::train::camera_fit::{
    align, dng_and_jpeg, CameraFit, CameraTwin, CropChoice, FitOptions,
};

/// A fitted camera twin: its summary, files and images, and its run for the lab log.
#[wasm_bindgen]
pub struct FittedTwin {
    twin: CameraTwin,
    run: Run,
}

/// An RGB image (8 bits) as the page shows it.
fn rgba((width, height, rgb): &(usize, usize, Vec<u8>)) -> RgbaImage {
    let rgba = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    RgbaImage::new(*width, *height, rgba)
}

#[wasm_bindgen]
impl FittedTwin {
    /// twin.json: the summary (alignment, stages, held-out PSNR and SSIM).
    #[wasm_bindgen(js_name = summaryJson)]
    pub fn summary_json(&self) -> String {
        self.twin.summary_json()
    }

    /// twin.safetensors: what a session tests on as its 13th view.
    pub fn safetensors(&self) -> Result<Vec<u8>, JsError> {
        self.twin.to_safetensors().map_err(js_error)
    }

    /// rendered.png: the fitted area as the JPEG is shown.
    #[wasm_bindgen(js_name = renderedPng)]
    pub fn rendered_png(&self) -> Result<Vec<u8>, JsError> {
        self.twin.rendered_png().map_err(js_error)
    }

    #[wasm_bindgen(js_name = renderedImage)]
    pub fn rendered_image(&self) -> RgbaImage {
        rgba(&self.twin.rendered)
    }

    /// The fit's run in the lab log: its description (run.json).
    #[wasm_bindgen(js_name = runMeta)]
    pub fn run_meta(&self) -> Result<JsValue, JsError> {
        to_js(self.run.meta())
    }

    /// The fit's run as a zip, as the lab log keeps it.
    #[wasm_bindgen(js_name = runZip)]
    pub fn run_zip(&self) -> Result<Vec<u8>, JsError> {
        self.run.to_zip().map_err(js_error)
    }

    /// The camera's JPEG as shown.
    #[wasm_bindgen(js_name = jpegImage)]
    pub fn jpeg_image(&self) -> RgbaImage {
        rgba(&self.twin.jpeg)
    }

    /// |twin - JPEG|, four times brighter.
    #[wasm_bindgen(js_name = differenceImage)]
    pub fn difference_image(&self) -> RgbaImage {
        rgba(&self.twin.difference)
    }
}

#[wasm_bindgen]
impl Lab {
    /// Fits a twin of the camera that rendered a JPEG from a DNG in `steps` (the other settings
    /// at `fit-camera`'s defaults): `files`, the two as `[{name, bytes}]` in any order (told
    /// apart by their names, which label the errors). `progress` gets the alignment (`{kind: 'alignment', ...}`),
    /// then `{kind: 'step', step, steps, loss, heldOutPsnr}` after every step; Cancel on
    /// `control` ends the fit with an error saying so.
    #[wasm_bindgen(js_name = fitCamera)]
    pub async fn fit_camera(
        &self,
        files: js_sys::Array,
        steps: usize,
        control: &TrainControl,
        progress: js_sys::Function,
    ) -> Result<FittedTwin, JsError> {
        let options = FitOptions {
            steps,
            ..FitOptions::default()
        };
        options.validate().map_err(js_error)?;
        let field = |file: &JsValue, key: &str| {
            js_sys::Reflect::get(file, &key.into())
                .map_err(|_| JsError::new(&format!("a dropped file has no {key}")))
        };
        let mut named = Vec::new();
        for file in files.iter() {
            let name = field(&file, "name")?.as_string().unwrap_or_default();
            let bytes = js_sys::Uint8Array::new(&field(&file, "bytes")?).to_vec();
            named.push((name, bytes));
        }
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let (d, j) = dng_and_jpeg(&names).map_err(js_error)?;
        let ((dng_name, dng), (jpeg_name, jpeg)) = (&named[d], &named[j]);
        load_dng_decoder().await?;
        let dng = decode_dng(dng, dng_name).map_err(js_error)?;
        let jpeg = decode_camera_jpeg(jpeg, jpeg_name).map_err(js_error)?;
        let pair = align(&dng, &jpeg, CropChoice::Auto)
            .map_err(|e| JsError::new(&format!("{jpeg_name} does not match {dng_name}: {e}")))?;
        let emit = |event: serde_json::Value| -> Result<(), JsError> {
            progress
                .call1(&JsValue::NULL, &to_js(&event)?)
                .map(|_| ())
                .map_err(|_| JsError::new("the page's progress handler failed"))
        };
        emit(serde_json::json!({
            "kind": "alignment",
            "text": format!("{}. Alignment: {}.", dng.summary, pair.alignment.describe()),
        }))?;
        let name = dng_name
            .rsplit_once('.')
            .map_or(dng_name.as_str(), |(stem, _)| stem);
        let mut fit = CameraFit::new(name, &dng, pair, options).map_err(js_error)?;
        while !fit.finished() {
            // the worker takes the page's messages (cancel) between steps
            gloo::timers::future::sleep(std::time::Duration::ZERO).await;
            if control.cancelled() {
                return Err(JsError::new("the camera fit was cancelled"));
            }
            let step = fit.step().map_err(js_error)?;
            emit(serde_json::json!({
                "kind": "step", "step": step.step, "steps": step.steps, "loss": step.loss,
                "heldOutPsnr": step.held_out_psnr,
            }))?;
        }
        let twin = fit.finish().map_err(js_error)?;
        let run = Run::from_camera_twin(&twin, dng_name, "CPU (page)").map_err(js_error)?;
        Ok(FittedTwin { twin, run })
    }
}
