//! The lab's web server (native only): the static page with the headers it needs. A package of
//! its own, so that serving the page compiles a server and nothing else (no wgpu, candle or
//! HTTP client): `lens2logit-serve` (what `scripts/serve.sh` runs) and the CLI's `lens2logit
//! serve` take the same arguments; tests compose `lab_router` with other routes (a Zenodo-like
//! mirror).
#![cfg(not(target_arch = "wasm32"))]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
            let url = url::Url::parse(&value).ok()?;
            (matches!(url.scheme(), "http" | "https") && url.host().is_some())
                .then(|| url.origin().ascii_serialization())
        })
        .take(4)
        .collect()
}

/// Where the server listens and what it serves.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The page's static files.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// The wasm-bindgen output, served under /pkg.
    #[arg(long, default_value = "pkg")]
    pkg: PathBuf,
}

/// Serves the lab until Ctrl-C, saying where.
pub fn run(args: ServeArgs) -> Result<(), String> {
    if !args.www.join("index.html").is_file() {
        return Err(format!(
            "no page at {}: run from the repository root or pass --www",
            args.www.join("index.html").display()
        ));
    }
    // the page this server isolates runs the threaded module (scripts/serve.sh builds the
    // one-thread module only for --host)
    let module = args.pkg.join("threads").join("lens2logit_bg.wasm");
    if !module.is_file() {
        return Err(format!(
            "no wasm module at {}: build it with scripts/serve.sh (or pass --pkg)",
            module.display()
        ));
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let app = lab_router(&args.www, &args.pkg, Router::new());
    let address = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&address).await.map_err(|e| {
        format!("cannot listen on {address}: {e} (is another server on that port? try --port)")
    })?;
    let bound: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("Lens2Logit Lab at http://{bound}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("the server stopped: {e}"))
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
