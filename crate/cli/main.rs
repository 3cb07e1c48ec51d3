//! `lens2logit`: the lab's native command line, on the same core as the page.

#[cfg(not(target_arch = "wasm32"))]
mod app;
#[cfg(not(target_arch = "wasm32"))]
mod bench;
#[cfg(not(target_arch = "wasm32"))]
mod common;
#[cfg(not(target_arch = "wasm32"))]
mod experiment;
#[cfg(not(target_arch = "wasm32"))]
mod fetch;
#[cfg(not(target_arch = "wasm32"))]
mod fit_camera;
#[cfg(not(target_arch = "wasm32"))]
mod isp;
#[cfg(not(target_arch = "wasm32"))]
mod predict;
#[cfg(not(target_arch = "wasm32"))]
mod runs;
#[cfg(not(target_arch = "wasm32"))]
mod settings;
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

/// mimalloc's `purge_delay` (mi_option_t in mimalloc.h, v2). By default freed memory goes back to
/// the OS after 10 ms; a train step frees and reallocates hundreds of MB of activations, and the
/// kernel then zeroes every fresh page again (13 % of a 256 px ResNet-18 step, 6 % without
/// purging). The CLI keeps what it freed for reuse: its resident memory stays at its peak.
#[cfg(not(target_arch = "wasm32"))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    // SAFETY: sets a plain integer option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    app::main()
}

/// Cargo builds every binary beside the integration tests, the browser suite included; in the
/// browser the page is the entry point, so the wasm build of the CLI has nothing to do.
#[cfg(target_arch = "wasm32")]
fn main() {}
