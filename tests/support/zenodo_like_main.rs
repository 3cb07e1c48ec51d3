//! The Zenodo-like test server as a program, for the page tests:
//! `target/release/examples/zenodo_like [--www www --pkg pkg]` prints its base URL.

// the fixtures' DNG writer; what only the native tests use of it is dead here
#[allow(dead_code)]
#[path = "dng.rs"]
mod dng;
#[path = "fixtures.rs"]
mod fixtures;
#[path = "zenodo_like.rs"]
mod zenodo_like;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let url = zenodo_like::start(arg("--www", "www").as_ref(), arg("--pkg", "pkg").as_ref()).await;
    println!("Zenodo-like server at {url}/");
    tokio::signal::ctrl_c().await.ok();
}
