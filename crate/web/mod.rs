//! The wasm-bindgen facade the page's worker calls. Thin: it converts JS values, calls the core and
//! turns errors into exceptions with a readable message. No logic of its own.

use wasm_bindgen::prelude::*;

use crate::data::synthetic;
use crate::gpu::ComputeBackend;
use crate::raw::CameraParams;

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

/// The lab's session in the worker: the compute backend and, later, data and models.
#[wasm_bindgen]
pub struct Lab {
    backend: ComputeBackend,
}

#[wasm_bindgen]
impl Lab {
    /// Starts on WebGPU when the browser offers an adapter (and `prefer_gpu`), else on the CPU.
    pub async fn create(prefer_gpu: bool) -> Result<Lab, JsError> {
        let backend = ComputeBackend::select(prefer_gpu).await.map_err(js_error)?;
        Ok(Lab { backend })
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

    /// The colour chart as `camera` (microscopy, drone) records it, shown as its coloured mosaic.
    #[wasm_bindgen(js_name = chartMosaic)]
    pub fn chart_mosaic(&self, camera: &str, size: usize) -> Result<RgbaImage, JsError> {
        let camera = CameraParams::preset(camera).map_err(js_error)?;
        let tile = synthetic::colour_chart(size, &camera).map_err(js_error)?;
        Ok(RgbaImage {
            width: tile.width(),
            height: tile.height(),
            rgba: tile.mosaic_rgba(),
        })
    }
}
