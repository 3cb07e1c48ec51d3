//! Where raw tiles come from: Zenodo (streamed archives), local files, and the synthetic generator
//! (the offline default).

pub mod archive;
pub mod discovery;
pub mod fetch;
pub mod http;
pub mod ranged;
pub mod synthetic;
mod task;
pub mod zenodo;

pub use task::Task;
