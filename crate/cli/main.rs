//! `lens2logit`: the lab's native command line, on the same core as the page.

#[cfg(not(target_arch = "wasm32"))]
mod app;
#[cfg(not(target_arch = "wasm32"))]
mod common;
#[cfg(not(target_arch = "wasm32"))]
mod fetch;
#[cfg(not(target_arch = "wasm32"))]
mod isp;
#[cfg(not(target_arch = "wasm32"))]
mod serve;
#[cfg(not(target_arch = "wasm32"))]
mod synth;
#[cfg(not(target_arch = "wasm32"))]
mod train;
#[cfg(not(target_arch = "wasm32"))]
mod views;

/// Whole-plane allocations dominate the ISP's time under glibc's malloc (fresh mmap'd pages each
/// time); mimalloc reuses them.
#[cfg(not(target_arch = "wasm32"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    app::main()
}

/// Cargo builds every binary beside the integration tests, the browser suite included; in the
/// browser the page is the entry point, so the wasm build of the CLI has nothing to do.
#[cfg(target_arch = "wasm32")]
fn main() {}
