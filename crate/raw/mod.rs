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
pub use dng::{
    decode_dng, dng_error, install_dng_decoder, is_dng_name, DngColour, DngDecoder, DngImage,
    DngMeta,
};
pub use tile::{BayerSite, RawTile};
