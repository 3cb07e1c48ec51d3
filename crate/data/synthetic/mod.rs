//! Raw data the lab makes itself, deterministic and offline: scenes rendered in display RGB and
//! turned into raw mosaics by the inverse ISP.

mod chart;
mod scenes;

pub use chart::colour_chart;
pub use scenes::{camera, sample, scene, Sample, Scene, CELL_CLASSES, SENSOR};
