//! The page's DNG module: camera raws decoded by rawler (with the JPEG XL and lossless-JPEG
//! decoders and the camera database it carries, a third of what the main module would otherwise
//! hold), loaded by the worker the first time the page meets a DNG. The main module's facade
//! installs [`decode_dng`] as the core's DNG decoder (`crate/web/dng.rs`).
#![cfg(target_arch = "wasm32")]

use js_sys::{Float32Array, Object, Reflect};
use lens2logit::raw::DngImage;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A DNG's mosaic and camera: `{meta, samples}`, `meta` the core's `DngMeta` and `samples` the
/// mosaic's as a Float32Array. An error names the file and what is wrong with it.
#[wasm_bindgen(js_name = decodeDng)]
pub fn decode_dng(bytes: &[u8], name: &str) -> Result<Object, JsError> {
    let image =
        lens2logit::raw::decode_dng(bytes, name).map_err(|e| JsError::new(&e.to_string()))?;
    let (meta, samples) = DngImage::into_parts(image);
    let out = Object::new();
    let set = |key: &str, value: &JsValue| {
        Reflect::set(&out, &JsValue::from_str(key), value)
            .map_err(|_| JsError::new("the DNG module could not build its answer"))
    };
    set("meta", &serde_wasm_bindgen::to_value(&meta)?)?;
    set("samples", &Float32Array::from(samples.as_slice()).into())?;
    Ok(out)
}
