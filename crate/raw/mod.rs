//! Raw sensor tiles: the one-channel RGGB mosaic, the camera parameters that describe how to process
//! it, and the ways tiles come into the lab (tile files, camera raws, full images cut into tiles).

mod camera;
pub mod cut;
mod decode;
mod dng;
pub mod intensity;
pub mod sensor;
mod tile;

pub use camera::CameraParams;
pub use decode::{decode_lab_tile, decode_mask, decode_samples, decode_tile, Samples};
#[cfg(feature = "dng")]
pub use dng::{decode_camera_jpeg, orient_rgb};
pub use dng::{
    decode_dng, dng_error, install_dng_decoder, is_dng_name, CameraJpeg, DngColour, DngDecoder,
    DngImage, DngMeta, JpegMeta,
};
pub use tile::{BayerSite, RawTile};
