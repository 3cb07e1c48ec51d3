//! The page's DNG module: camera raws decoded by rawler (with the JPEG XL and lossless-JPEG
//! decoders and the camera database it carries, a third of what the main module would otherwise
//! hold), and a camera's JPEG with its EXIF orientation, loaded by the worker the first time the
//! page meets a DNG. The main module's facade installs [`decode_dng`], [`decode_jpeg`] and
//! [`orient_rgb8`] as the core's camera codecs (`crate/web/dng.rs`). It holds the decoders
//! (`lens2logit-dng`) and not the lab, so its build compiles no candle, wgpu or core.
#![cfg(target_arch = "wasm32")]

use js_sys::{Float32Array, Object, Reflect, Uint8Array};
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
    answer(&[
        ("meta", serde_wasm_bindgen::to_value(&meta)?),
        ("samples", Float32Array::from(samples.as_slice()).into()),
    ])
}

/// An object of `fields`, as the main module reads the answers.
fn answer(fields: &[(&str, JsValue)]) -> Result<Object, JsError> {
    let out = Object::new();
    for (key, value) in fields {
        Reflect::set(&out, &JsValue::from_str(key), value)
            .map_err(|_| JsError::new("the DNG module could not build its answer"))?;
    }
    Ok(out)
}

/// A camera's JPEG as stored: `{meta, rgb}`, `meta` the decoder's `JpegMeta` (size, EXIF
/// orientation) and `rgb` its pixels (RGB, 8 bits); a JPEG over `max_pixels` is refused.
#[wasm_bindgen(js_name = decodeJpeg)]
pub fn decode_jpeg(bytes: &[u8], max_pixels: f64) -> Result<Object, JsError> {
    let (meta, rgb) =
        lens2logit_dng::decode_jpeg(bytes, max_pixels as u64).map_err(|e| JsError::new(&e))?;
    answer(&[
        ("meta", serde_wasm_bindgen::to_value(&meta)?),
        ("rgb", Uint8Array::from(rgb.as_slice()).into()),
    ])
}

/// An RGB image (8 bits) turned as one with the EXIF `orientation` is shown, or back where
/// `undo`: `{width, height, rgb}`.
#[wasm_bindgen(js_name = orientRgb8)]
pub fn orient_rgb8(
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    orientation: u16,
    undo: bool,
) -> Result<Object, JsError> {
    let (w, h, turned) = lens2logit_dng::orient_rgb8(width, height, rgb, orientation, undo)
        .map_err(|e| JsError::new(&e))?;
    answer(&[
        ("width", JsValue::from_f64(w as f64)),
        ("height", JsValue::from_f64(h as f64)),
        ("rgb", Uint8Array::from(turned.as_slice()).into()),
    ])
}
