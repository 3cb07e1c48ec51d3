//! The page's DNG module: camera raws decoded by rawler (with the JPEG XL and lossless-JPEG
//! decoders and the camera database it carries, a third of what the main module would otherwise
//! hold), loaded by the worker the first time the page meets a DNG. The main module's facade
//! installs [`decode_dng`] as the core's DNG decoder (`crate/web/dng.rs`). It holds the decoder
//! (`lens2logit-dng`) and not the lab, so its build compiles no candle, wgpu or core.
#![cfg(target_arch = "wasm32")]

use js_sys::{Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A DNG's mosaic and colour: `{meta, samples}`, `meta` the decoder's `DngMeta` and `samples` the
/// mosaic's as a Float32Array; a DNG over `max_pixels` is refused. An error says what is wrong
/// with the file (the main module names it).
#[wasm_bindgen(js_name = decodeDng)]
pub fn decode_dng(bytes: &[u8], max_pixels: f64) -> Result<Object, JsError> {
    let (meta, samples) =
        lens2logit_dng::decode(bytes, max_pixels as u64).map_err(|e| JsError::new(&e))?;
    let out = Object::new();
    let set = |key: &str, value: &JsValue| {
        Reflect::set(&out, &JsValue::from_str(key), value)
            .map_err(|_| JsError::new("the DNG module could not build its answer"))
    };
    set("meta", &serde_wasm_bindgen::to_value(&meta)?)?;
    set("samples", &Float32Array::from(samples.as_slice()).into())?;
    Ok(out)
}
