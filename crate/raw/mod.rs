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
    decode_camera_jpeg, decode_dng, dng_error, install_camera_codecs, is_dng_name, orient_rgb,
    CameraCodecs, CameraJpeg, DngColour, DngDecoder, DngImage, DngMeta, JpegDecoder, JpegMeta,
    RgbOrienter,
};
pub use tile::{BayerSite, RawTile};
