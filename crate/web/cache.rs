//! The browser's Cache Storage as the lab's offline store: a dataset's verified tiles and its
//! metadata, so a reload is instant and works offline. Entries are written only for archives
//! whose checksum matched; nothing half-written is kept.

use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Response};

use lens2logit::{Error, Result};

const STORE: &str = "lens2logit-tiles-v1";

fn js(e: JsValue) -> Error {
    let text = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"));
    if text.contains("Quota") || text.contains("quota") {
        Error::invalid(
            "the browser's storage is full: tiles are shown but not kept for offline use",
        )
    } else {
        Error::invalid(format!("the tile cache failed: {text}"))
    }
}

fn caches() -> Result<CacheStorage> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    global.caches().map_err(js)
}

async fn open() -> Result<Cache> {
    Ok(JsFuture::from(caches()?.open(STORE))
        .await
        .map_err(js)?
        .unchecked_into())
}

/// A cache key under the page's origin (never fetched over the network).
fn url(key: &str) -> String {
    format!("/__lens2logit_cache__/{key}")
}

pub async fn put(key: &str, bytes: &[u8]) -> Result<()> {
    let body = Uint8Array::from(bytes);
    let response = Response::new_with_opt_buffer_source(Some(&body)).map_err(js)?;
    JsFuture::from(open().await?.put_with_str(&url(key), &response))
        .await
        .map_err(js)?;
    Ok(())
}

/// Stores (key, bytes) pairs in order (a dataset's index last: see `CacheKeys`).
pub async fn put_all(writes: &[(String, Vec<u8>)]) -> Result<()> {
    for (key, bytes) in writes {
        put(key, bytes).await?;
    }
    Ok(())
}

pub async fn get(key: &str) -> Result<Option<Vec<u8>>> {
    let found = JsFuture::from(open().await?.match_with_str(&url(key)))
        .await
        .map_err(js)?;
    if found.is_undefined() {
        return Ok(None);
    }
    let response: Response = found.unchecked_into();
    let buffer = JsFuture::from(response.array_buffer().map_err(js)?)
        .await
        .map_err(js)?;
    Ok(Some(Uint8Array::new(&buffer).to_vec()))
}

pub async fn clear() -> Result<()> {
    JsFuture::from(caches()?.delete(STORE)).await.map_err(js)?;
    Ok(())
}
