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
/// page names the Zenodo mirror and the MLflow tracking server its user set, each in a `connect`
/// parameter) may also connect to those origins: its streaming and logging happen in the worker.
async fn content_security_policy(
    State(policy): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    let origins = request
        .uri()
        .query()
        .map(connect_origins)
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let policy = if origins.is_empty() {
        policy.to_string()
    } else {
        policy.replacen(
            "connect-src",
            &format!("connect-src {}", origins.join(" ")),
            1,
        )
    };
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The origins (scheme, host, port) of the `connect` query parameters that are http(s) URLs.
fn connect_origins(query: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "connect")
        .filter_map(|(_, value)| {
            let url = reqwest::Url::parse(&value).ok()?;
            (matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .then(|| url.origin().ascii_serialization())
        })
        .take(4)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::connect_origins;

    #[test]
    fn only_http_origins_join_the_policy() {
        assert_eq!(
            connect_origins(
                "connect=https%3A%2F%2Fmirror.example%3A8443%2Fapi%3Bx&connect=http%3A%2F%2F127.0.0.1%3A5000"
            ),
            ["https://mirror.example:8443", "http://127.0.0.1:5000"]
        );
        assert!(connect_origins("connect=javascript:alert(1)").is_empty());
        assert!(connect_origins("connect=*%3B%20script-src%20*").is_empty());
        assert!(connect_origins("other=1").is_empty());
    }
}
