//! DNG decoding from the DNG module (`crate/raw/dng/web`, `pkg/dng/`): rawler and what it pulls in
//! are a third of a module that holds them, and only a user of DNGs (Raw-Drone's full images, a
//! dropped camera raw) needs them. Before such work the facade has the worker load the module once
//! and installs it as the core's DNG decoder.

use std::cell::RefCell;

use js_sys::{Float32Array, Function, Promise, Reflect, Uint8Array};
use lens2logit::raw::{dng_error, install_dng_decoder, DngImage, DngMeta};
use lens2logit::spec::limits::DNG_PIXELS;
use lens2logit::Result;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    /// worker.js: imports and starts the DNG module (once) and resolves to its `decodeDng`.
    #[wasm_bindgen(js_namespace = globalThis, js_name = lens2logitDngModule, catch)]
    fn dng_module() -> std::result::Result<Promise, JsValue>;
}

thread_local! {
    /// The DNG module's `decodeDng`, once loaded: a JS function lives on the worker's thread only.
    static DECODE: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Loads the DNG module where it is not loaded yet and installs its decoder in the core.
pub(crate) async fn load_dng_decoder() -> std::result::Result<(), JsError> {
    if DECODE.with_borrow(Option::is_some) {
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
    let decode = JsFuture::from(dng_module().map_err(failed)?)
        .await
        .map_err(failed)?;
    DECODE.with_borrow_mut(|slot| *slot = Some(decode.unchecked_into()));
    install_dng_decoder(decode_in_module);
    Ok(())
}

/// The core's DNG decoder in the page: the DNG module's answer turned back into a [`DngImage`].
fn decode_in_module(bytes: &[u8], name: &str) -> Result<DngImage> {
    let decode = DECODE
        .with_borrow(Clone::clone)
        .ok_or_else(|| dng_error(name, "the DNG module is not loaded on this thread"))?;
    let answer = decode
        .call2(
            &JsValue::NULL,
            &Uint8Array::from(bytes),
            &JsValue::from_f64(DNG_PIXELS.max as f64),
        )
        .map_err(|e| dng_error(name, message(&e)))?;
    let field = |key: &str| {
        Reflect::get(&answer, &JsValue::from_str(key))
            .map_err(|_| dng_error(name, format!("the DNG module's answer lacks its {key}")))
    };
    let meta: DngMeta = serde_wasm_bindgen::from_value(field("meta")?)
        .map_err(|e| dng_error(name, format!("the DNG module's answer: {e}")))?;
    let samples = field("samples")?.unchecked_into::<Float32Array>().to_vec();
    DngImage::from_parts(meta, samples, name)
}

/// What a thrown JS value says: an Error's message, a thrown string, or the value itself.
fn message(thrown: &JsValue) -> String {
    thrown
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| format!("{thrown:?}"))
}
