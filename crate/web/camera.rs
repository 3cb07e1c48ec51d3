//! The camera the lab renders with and where it came from: a tile is only as right as the camera
//! its mosaic is developed with, so the page shows the source and asks for one when it is unknown.

use std::fmt;

use wasm_bindgen::prelude::*;

use super::{js_error, to_js, Lab};
use lens2logit::raw::CameraParams;

/// Where the lab's camera parameters came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CameraSource {
    /// A dataset's preset by name (microscopy, drone).
    Preset(String),
    Synthetic,
    /// A DNG's own metadata, with the file's name.
    Dng(String),
    Uploaded,
    Edited,
    /// Tiles that carry no camera metadata: the parameters are left over and the page must ask.
    None,
}

impl fmt::Display for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Preset(name) => write!(f, "preset {name}"),
            Self::Synthetic => f.write_str("synthetic"),
            Self::Dng(file) => write!(f, "DNG metadata ({file})"),
            Self::Uploaded => f.write_str("uploaded JSON"),
            Self::Edited => f.write_str("edited"),
            Self::None => f.write_str("none"),
        }
    }
}

/// What `cameraInfo` answers.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CameraInfo<'a> {
    source: String,
    /// The preset's name when the source is one (the page's picker shows it).
    preset: Option<&'a str>,
    needs_choice: bool,
    params: &'a CameraParams,
    json: String,
}

/// The fields a camera JSON holds, as a person names them.
const FIELDS: [(&str, &str); 4] = [
    ("black_level", "black level"),
    ("white_balance", "white balance"),
    ("colour_matrix", "colour matrix"),
    ("gamma", "gamma"),
];

/// The first value in a camera JSON that is not a number, named: the page sends an empty or
/// unreadable field as null, which serde reports only by line and column.
fn not_a_number(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    FIELDS
        .iter()
        .find_map(|(key, label)| match value.get(key)? {
            serde_json::Value::Array(items) => items
                .iter()
                .position(|v| !v.is_number())
                .map(|i| format!("{label} value {} is empty or not a number", i + 1)),
            v if !v.is_number() => Some(format!("{label} is empty or not a number")),
            _ => None,
        })
}

#[wasm_bindgen]
impl Lab {
    /// The camera and where it came from, so the rest of the facade never sets one silently;
    /// resets the ISP parameters to it (they start from the camera's).
    pub(crate) fn set_camera_from(
        &self,
        params: CameraParams,
        source: CameraSource,
    ) -> Result<(), JsError> {
        params.validate().map_err(js_error)?;
        *self.camera.borrow_mut() = params;
        *self.camera_source.borrow_mut() = source;
        self.reset_params()
    }

    /// Tiles without camera metadata arrived: the camera is left as it was until the user
    /// chooses one, and `cameraInfo` says one is needed.
    pub(crate) fn ask_for_camera(&self) {
        *self.camera_source.borrow_mut() = CameraSource::None;
    }

    /// {source, preset, needsChoice, params {black_level, white_balance, colour_matrix, gamma}, json}:
    /// `json` is the file the CLI's `--camera` reads.
    #[wasm_bindgen(js_name = cameraInfo)]
    pub fn camera_info(&self) -> Result<JsValue, JsError> {
        let source = self.camera_source.borrow();
        let camera = self.camera.borrow();
        to_js(&CameraInfo {
            source: source.to_string(),
            preset: match &*source {
                CameraSource::Preset(name) => Some(name),
                _ => None,
            },
            needs_choice: *source == CameraSource::None,
            params: &camera,
            json: camera.to_json(),
        })
    }

    /// A dataset's camera preset (microscopy, drone).
    #[wasm_bindgen(js_name = setCameraPreset)]
    pub fn set_camera_preset(&self, name: &str) -> Result<(), JsError> {
        let params = CameraParams::preset(name).map_err(js_error)?;
        self.set_camera_from(params, CameraSource::Preset(name.into()))
    }

    /// A camera JSON; `source` is `upload` (a file) or `edited` (the page's fields). Nothing
    /// changes when it is invalid.
    #[wasm_bindgen(js_name = setCameraJson)]
    pub fn set_camera_json(&self, text: &str, source: &str) -> Result<(), JsError> {
        let source = match source {
            "upload" => CameraSource::Uploaded,
            "edited" => CameraSource::Edited,
            other => {
                return Err(JsError::new(&format!(
                    "unknown camera source '{other}': use upload or edited"
                )))
            }
        };
        let params = CameraParams::from_json(text).map_err(|e| match not_a_number(text) {
            Some(field) => JsError::new(&format!("camera: {field}")),
            None => js_error(e),
        })?;
        self.set_camera_from(params, source)
    }
}
