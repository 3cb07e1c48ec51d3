//! The training engine, one for the browser's worker and the CLI: Adam, batching, the paper's
//! weak augmentation, deterministic seeds, step-by-step control (the caller pauses, resumes or
//! cancels between steps) and per-step events; and the paper's three experiments as modes.

mod augment;
pub mod bench;
pub mod corruption;
pub mod data;
pub mod memory;
mod session;

pub use data::{Item, TileSet};
pub use session::{Mode, Penalty, Session, Snapshot, StepReport, Summary, TrainConfig, GROUPS};
