//! `lens2logit serve`: the page on axum + tower-http (see `lens2logit_cli::server`).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use clap::Args;
use lens2logit_cli::page_router::lab_router;

#[derive(Args)]
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

pub fn run(args: ServeArgs) -> Result<(), String> {
    if !args.www.join("index.html").is_file() {
        return Err(format!(
            "no page at {}: run from the repository root or pass --www",
            args.www.join("index.html").display()
        ));
    }
    if !args.pkg.join("lens2logit_bg.wasm").is_file() {
        return Err(format!(
            "no wasm module at {}: build it with scripts/serve.sh (or pass --pkg)",
            args.pkg.join("lens2logit_bg.wasm").display()
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
