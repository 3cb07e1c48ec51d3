//! Raw sensor tiles: the one-channel RGGB mosaic, the camera parameters that describe how to process
//! it, and the ways tiles come into the lab.

mod camera;
mod tile;

pub use camera::CameraParams;
pub use tile::{BayerSite, RawTile};
