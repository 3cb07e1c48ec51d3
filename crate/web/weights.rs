//! Weights a session starts from, fetched by URL: kept in the browser's Cache Storage, so a
//! second session (or a reload) reads them without the network. Nothing is fetched that the
//! user did not name.

use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;

use super::{cache, js_error, to_js, Lab};
use lens2logit::codecs::hex;
use lens2logit::data::cancel::CancelToken;
use lens2logit::data::http::fetch_bytes;
use lens2logit::spec::limits::WEIGHTS_BYTES;

/// The cache key of the weights at `url`.
fn key(url: &str) -> String {
    format!("weights-{}", hex(&Sha256::digest(url.as_bytes())))
}

#[wasm_bindgen]
impl Lab {
    /// The weights at `url`, from the cache or fetched (and then cached): `{bytes, name, url,
    /// cached}`.
    #[wasm_bindgen(js_name = fetchWeights)]
    pub async fn fetch_weights(&self, url: String) -> Result<JsValue, JsError> {
        let key = key(&url);
        let (bytes, cached, not_kept) = match cache::get(&key).await.map_err(js_error)? {
            Some(bytes) => (bytes, true, None),
            None => {
                let bytes = fetch_bytes(&url, WEIGHTS_BYTES.max, &CancelToken::default())
                    .await
                    .map_err(js_error)?;
                // a full storage keeps the weights for this session only, and says so
                let not_kept = cache::put(&key, &bytes).await.err().map(|e| e.to_string());
                (bytes, false, not_kept)
            }
        };
        let name = url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(&url);
        let described = serde_json::json!({
            "name": name, "url": url, "cached": cached, "notKept": not_kept,
        });
        let value = to_js(&described)?;
        js_sys::Reflect::set(
            &value,
            &"bytes".into(),
            &js_sys::Uint8Array::from(bytes.as_slice()),
        )
        .map_err(|_| JsError::new("could not hand the weights to the page"))?;
        Ok(value)
    }
}
