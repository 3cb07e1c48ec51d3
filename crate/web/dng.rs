//! Camera files from the DNG module (`crate/raw/dng/web`, `pkg/dng/`): rawler and what it pulls in
//! are a third of a module that holds them, and only a user of DNGs (Raw-Drone's full images, a
//! dropped camera raw, a camera fit with its JPEG) needs them. Before such work the facade has the
//! worker load the module once and installs its decoders as the core's camera codecs.

use std::cell::RefCell;

use js_sys::{Float32Array, Function, Object, Promise, Reflect, Uint8Array};
use lens2logit::raw::{
    dng_error, install_camera_codecs, CameraCodecs, DngImage, DngMeta, JpegMeta,
};
use lens2logit::spec::limits::DNG_PIXELS;
use lens2logit::Result;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// worker.js: imports and starts the DNG module (once) and resolves to the module.
    #[wasm_bindgen(js_namespace = globalThis, js_name = lens2logitDngModule, catch)]
    fn dng_module() -> std::result::Result<Promise, JsValue>;
}

thread_local! {
    /// The DNG module, once loaded: JS values live on the worker's thread only.
    static MODULE: RefCell<Option<Object>> = const { RefCell::new(None) };
}

/// Loads the DNG module where it is not loaded yet and installs its codecs in the core.
pub(crate) async fn load_dng_decoder() -> std::result::Result<(), JsError> {
    if MODULE.with_borrow(Option::is_some) {
        return Ok(());
    }
    let failed = |e: JsValue| {
        JsError::new(&format!(
            "the DNG decoder (pkg/dng/) could not be loaded: {}; scripts/serve.sh builds it in \
             the minutes after it starts serving the page, so try again then; elsewhere, check \
             that the server serves pkg/dng/",
            message(&e)
        ))
    };
    let module = JsFuture::from(dng_module().map_err(failed)?)
        .await
        .map_err(failed)?;
    MODULE.with_borrow_mut(|slot| *slot = Some(module.unchecked_into()));
    install_camera_codecs(CameraCodecs {
        dng: decode_in_module,
        jpeg: jpeg_in_module,
        orient: orient_in_module,
    });
    Ok(())
}

/// Calls the DNG module's `function` with `args`: its answer, or what went wrong.
fn call(function: &str, args: &[JsValue]) -> std::result::Result<JsValue, String> {
    let module = MODULE
        .with_borrow(Clone::clone)
        .ok_or("the DNG module is not loaded on this thread")?;
    let f: Function = Reflect::get(&module, &JsValue::from_str(function))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("the DNG module has no {function}"))?;
    let args: js_sys::Array = args.iter().collect();
    f.apply(&JsValue::NULL, &args).map_err(|e| message(&e))
}

/// A field of the DNG module's answer.
fn field(answer: &JsValue, key: &str) -> std::result::Result<JsValue, String> {
    Reflect::get(answer, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined())
        .ok_or_else(|| format!("the DNG module's answer lacks its {key}"))
}

/// The core's DNG decoder in the page: the DNG module's answer turned back into a [`DngImage`].
fn decode_in_module(bytes: &[u8], name: &str) -> Result<DngImage> {
    let answer = call(
        "decodeDng",
        &[
            Uint8Array::from(bytes).into(),
            JsValue::from_f64(DNG_PIXELS.max as f64),
        ],
    )
    .map_err(|e| dng_error(name, e))?;
    let meta: DngMeta =
        serde_wasm_bindgen::from_value(field(&answer, "meta").map_err(|e| dng_error(name, e))?)
            .map_err(|e| dng_error(name, format!("the DNG module's answer: {e}")))?;
    let samples = field(&answer, "samples")
        .map_err(|e| dng_error(name, e))?
        .unchecked_into::<Float32Array>()
        .to_vec();
    DngImage::from_parts(meta, samples, name)
}

/// The core's JPEG decoder in the page.
fn jpeg_in_module(
    bytes: &[u8],
    max_pixels: u64,
) -> std::result::Result<(JpegMeta, Vec<u8>), String> {
    let answer = call(
        "decodeJpeg",
        &[
            Uint8Array::from(bytes).into(),
            JsValue::from_f64(max_pixels as f64),
        ],
    )?;
    let meta: JpegMeta = serde_wasm_bindgen::from_value(field(&answer, "meta")?)
        .map_err(|e| format!("the DNG module's answer: {e}"))?;
    let rgb = field(&answer, "rgb")?
        .unchecked_into::<Uint8Array>()
        .to_vec();
    Ok((meta, rgb))
}

/// The core's orientation of RGB images in the page.
fn orient_in_module(
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    orientation: u16,
    undo: bool,
) -> std::result::Result<(usize, usize, Vec<u8>), String> {
    let answer = call(
        "orientRgb8",
        &[
            JsValue::from_f64(width as f64),
            JsValue::from_f64(height as f64),
            Uint8Array::from(rgb.as_slice()).into(),
            JsValue::from_f64(f64::from(orientation)),
            JsValue::from_bool(undo),
        ],
    )?;
    let side = |key: &str| -> std::result::Result<usize, String> {
        field(&answer, key)?
            .as_f64()
            .map(|v| v as usize)
            .ok_or_else(|| format!("the DNG module's {key} is no number"))
    };
    let rgb = field(&answer, "rgb")?
        .unchecked_into::<Uint8Array>()
        .to_vec();
    Ok((side("width")?, side("height")?, rgb))
}

/// What a thrown JS value says: an Error's message, a thrown string, or the value itself.
fn message(thrown: &JsValue) -> String {
    thrown
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| format!("{thrown:?}"))
}
