//! The wasm-bindgen facade the page's worker calls. Thin: it converts JS values, calls the core and
//! turns errors into exceptions with a readable message. No logic of its own.

use wasm_bindgen::prelude::*;

use crate::data::synthetic;
use crate::gpu::ComputeBackend;
use crate::isp::static_pipeline::{self, RgbImage, View};
use crate::raw::{decode_tile, CameraParams, RawTile};

/// Installed once when the module loads: a Rust panic then reaches the console with its message
/// (and the worker reports it to the page) instead of an opaque "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// An RGBA8 image ready for `ImageData`.
#[wasm_bindgen]
pub struct RgbaImage {
    width: usize,
    height: usize,
    rgba: Vec<u8>,
}

impl From<&RgbImage> for RgbaImage {
    fn from(image: &RgbImage) -> Self {
        Self {
            width: image.width,
            height: image.height,
            rgba: image.to_rgba8(),
        }
    }
}

#[wasm_bindgen]
impl RgbaImage {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, moved out to JS (the image is consumed).
    #[wasm_bindgen(js_name = takeRgba)]
    pub fn take_rgba(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rgba)
    }
}

/// The lab's session in the worker: the compute backend, the camera and the current raw tile.
#[wasm_bindgen]
pub struct Lab {
    backend: ComputeBackend,
    camera: CameraParams,
    tile: Option<RawTile>,
}

#[wasm_bindgen]
impl Lab {
    /// Starts on WebGPU when the browser offers an adapter (and `prefer_gpu`), else on the CPU.
    pub async fn create(prefer_gpu: bool) -> Result<Lab, JsError> {
        let backend = ComputeBackend::select(prefer_gpu).await.map_err(js_error)?;
        Ok(Lab {
            backend,
            camera: CameraParams::drone(),
            tile: None,
        })
    }

    /// "WebGPU (adapter description)" or "CPU (wasm SIMD)".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.label()
    }

    #[wasm_bindgen(getter, js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        self.backend.is_gpu()
    }

    /// A preset name (microscopy, drone) or camera JSON.
    #[wasm_bindgen(js_name = setCamera)]
    pub fn set_camera(&mut self, preset_or_json: &str) -> Result<(), JsError> {
        self.camera = match CameraParams::preset(preset_or_json) {
            Ok(preset) => preset,
            Err(_) => CameraParams::from_json(preset_or_json).map_err(js_error)?,
        };
        Ok(())
    }

    /// Decodes a raw tile file (PNG, TIFF, .npy) and makes it the current tile.
    #[wasm_bindgen(js_name = loadTile)]
    pub fn load_tile(&mut self, bytes: &[u8], name: &str) -> Result<(), JsError> {
        self.tile = Some(decode_tile(bytes, name).map_err(js_error)?);
        Ok(())
    }

    /// The colour chart, as the current camera records it, becomes the current tile.
    #[wasm_bindgen(js_name = loadChart)]
    pub fn load_chart(&mut self, size: usize) -> Result<(), JsError> {
        self.tile = Some(synthetic::colour_chart(size, &self.camera).map_err(js_error)?);
        Ok(())
    }

    fn tile(&self) -> Result<&RawTile, JsError> {
        self.tile
            .as_ref()
            .ok_or_else(|| JsError::new("no raw tile loaded yet: load a file or the chart first"))
    }

    /// The current tile's mosaic, each sample shown in its filter's colour.
    pub fn mosaic(&self) -> Result<RgbaImage, JsError> {
        let tile = self.tile()?;
        Ok(RgbaImage {
            width: tile.width(),
            height: tile.height(),
            rgba: tile.mosaic_rgba(),
        })
    }

    /// The names of the paper's 12 views, in the order `renderViews` returns them.
    #[wasm_bindgen(js_name = viewNames)]
    pub fn view_names() -> Vec<String> {
        View::paper_views().iter().map(View::to_string).collect()
    }

    /// One view (`DEBAYER-SHARPENING-DENOISING`) of the current tile.
    #[wasm_bindgen(js_name = renderView)]
    pub fn render_view(&self, view: &str) -> Result<RgbaImage, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let image = static_pipeline::render(self.tile()?, &self.camera, view).map_err(js_error)?;
        Ok((&image).into())
    }

    /// The paper's 12 views of the current tile.
    #[wasm_bindgen(js_name = renderViews)]
    pub fn render_views(&self) -> Result<Vec<RgbaImage>, JsError> {
        let images = static_pipeline::render_all(self.tile()?, &self.camera, &View::paper_views())
            .map_err(js_error)?;
        Ok(images.iter().map(RgbaImage::from).collect())
    }
}
