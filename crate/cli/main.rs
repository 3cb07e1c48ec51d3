//! `lens2logit`: the lab's native command line, on the same core as the page.

#[cfg(not(target_arch = "wasm32"))]
mod app;
#[cfg(not(target_arch = "wasm32"))]
mod serve;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    app::main()
}

/// Cargo builds every binary beside the integration tests, the browser suite included; in the
/// browser the page is the entry point, so the wasm build of the CLI has nothing to do.
#[cfg(target_arch = "wasm32")]
fn main() {}
