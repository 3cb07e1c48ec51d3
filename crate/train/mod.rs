//! The training engine, one for the browser's worker and the CLI: Adam, batching, the paper's
//! weak augmentation, deterministic seeds, step-by-step control (the caller pauses, resumes or
//! cancels between steps) and per-step events; and the paper's three experiments as modes.

mod augment;
pub mod backend;
pub mod bench;
pub mod camera_fit;
pub mod corruption;
pub mod experiment;
pub mod isp_engine;
pub mod job;
pub mod memory;
pub mod options;
pub mod predict;
mod render_cache;
mod session;
pub mod timeline;

pub use crate::data::tiles::{Item, TileSet};
pub use backend::DeviceChoice;
pub use options::TrainOptions;
pub use session::{Freeze, Mode, Penalty, Session, Snapshot, StepReport, Summary, TrainConfig};
