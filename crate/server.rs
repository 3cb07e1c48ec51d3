//! The web server layer (native only): the lab's static page with the headers it needs. The
//! CLI's `serve` runs it; tests compose it with other routes (a Zenodo-like mirror).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
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
    match std::fs::read_to_string(www.join("csp.txt")) {
        Ok(policy) => router.layer(middleware::from_fn_with_state(
            Arc::new(policy.trim().to_string()),
            content_security_policy,
        )),
        Err(_) => router,
    }
}

/// The page's policy on every response. A worker script asked for with `?connect=ORIGIN` (the
/// page names the Zenodo mirror its user set) may also connect to that origin: its streaming
/// happens in the worker.
async fn content_security_policy(
    State(policy): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    let mirror = request.uri().query().and_then(mirror_origin);
    let mut response = next.run(request).await;
    let policy = match mirror {
        Some(origin) => policy.replacen("connect-src", &format!("connect-src {origin}"), 1),
        None => policy.to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The origin (scheme, host, port) of a `connect` query parameter that is an http(s) URL.
fn mirror_origin(query: &str) -> Option<String> {
    let (_, value) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "connect")?;
    let url = reqwest::Url::parse(&value).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::mirror_origin;

    #[test]
    fn only_an_http_origin_joins_the_policy() {
        let origin = |q: &str| mirror_origin(q);
        assert_eq!(
            origin("connect=https%3A%2F%2Fmirror.example%3A8443%2Fapi%3Bx"),
            Some("https://mirror.example:8443".into())
        );
        assert_eq!(origin("connect=javascript:alert(1)"), None);
        assert_eq!(origin("connect=*%3B%20script-src%20*"), None);
        assert_eq!(origin("other=1"), None);
    }
}
