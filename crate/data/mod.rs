//! Where raw tiles come from: Zenodo (streamed archives), local files, and the synthetic generator
//! (the offline default).

pub mod archive;
pub mod census;
pub mod discovery;
pub mod drone_balance;
pub mod fetch;
pub mod http;
pub mod inspect;
pub mod ranged;
pub mod sample;
pub mod synthetic;
mod task;
pub mod tile_store;
pub mod tiles;
pub mod zenodo;

pub use task::Task;
