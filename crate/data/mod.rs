//! Where raw tiles come from: Zenodo (streamed archives), local files, and the synthetic generator
//! (the offline default).

pub mod archive;
pub mod cancel;
pub mod census;
pub mod discovery;
pub mod drone_balance;
pub mod sample;
pub mod synthetic;
mod task;
pub mod tiles;

// The network: Zenodo, byte ranges, the page's tile store over a stream, MLflow. Always in the
// page's module; natively behind the `net` feature (the CLI's), so that the core's own tests
// build no HTTP stack.
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod fetch;
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod http;
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod inspect;
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod ranged;
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod tile_store;
#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod zenodo;

pub use task::Task;
