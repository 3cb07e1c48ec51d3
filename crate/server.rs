//! The web server layer (native only): the lab's static page with the headers it needs. The
//! CLI's `serve` runs it; tests compose it with other routes (a Zenodo-like mirror).

use std::path::Path;

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

fn header_layer(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// `www/` at `/` and the wasm-bindgen output at `/pkg`. ServeDir gives correct MIME types
/// (application/wasm), HTTP Range and conditional requests, and the build's precompressed
/// `.br`/`.gz` files to clients that accept them; COOP/COEP make the page cross-origin isolated
/// (which the threaded module needs); every response carries the page's Content-Security-Policy
/// (`www/csp.txt`: the one policy that the page's meta tag, the static site's service worker and
/// its `_headers` carry too), so the workers and modules run under it as well. `extra` routes are
/// served beside the page, under the same headers.
pub fn lab_router(www: &Path, pkg: &Path, extra: Router) -> Router {
    let router = extra
        .nest_service(
            "/pkg",
            ServeDir::new(pkg).precompressed_br().precompressed_gzip(),
        )
        .fallback_service(ServeDir::new(www))
        .layer(header_layer("cross-origin-opener-policy", "same-origin"))
        .layer(header_layer("cross-origin-embedder-policy", "require-corp"))
        // the page is rebuilt often while working on it: always revalidate (ETag / Last-Modified)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ));
    let csp = std::fs::read_to_string(www.join("csp.txt"))
        .ok()
        .and_then(|policy| HeaderValue::from_str(policy.trim()).ok());
    match csp {
        Some(policy) => router.layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            policy,
        )),
        None => router,
    }
}
