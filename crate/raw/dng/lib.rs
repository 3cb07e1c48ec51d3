//! The lab's DNG decoder (package `lens2logit-dng`), natively and in the page's DNG module: the
//! maintained decoder, rawler, giving the mosaic of the active area (RGGB from its origin, scaled
//! by the white level) and the camera's colour as the file's metadata gives it. The core turns
//! the answer into its raw tile and camera (`crate/raw/dng.rs`) and names the file in errors; a
//! crate of its own so that the page's DNG module compiles rawler and not the lab.
//!
//! It reads the camera's own JPEG of a shot too (the camera fit's target), with its EXIF
//! orientation, through the `image` crate that rawler already brings.
//!
//! rawler panics on some malformed files (an unknown photometric interpretation, a CFA pattern of
//! an odd length, a black level table shorter than its repeat pattern, ...). Natively a panic in
//! its decoder becomes an error; in the browser (panic = abort) it would stop the worker, so every
//! tag rawler relies on is checked here first, before any pixel is decoded.

use serde::{Deserialize, Serialize};

/// A decoded DNG but its samples: the mosaic's size, its colour and a one-line description. It
/// passes between the page's modules as it is (the samples go as a typed array beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DngMeta {
    pub width: usize,
    pub height: usize,
    pub colour: DngColour,
    /// Make and model, sizes, CFA, black and white level and where the colour came from.
    pub summary: String,
    /// The camera's default crop (DefaultCropOrigin and DefaultCropSize), in the mosaic's pixels:
    /// x, y, width, height; none where the file gives none. A camera's JPEG covers this area.
    #[serde(default)]
    pub default_crop: Option<[usize; 4]>,
    /// How the image is shown: the TIFF Orientation tag (1 to 8, as EXIF numbers them); 1 where
    /// the file says nothing.
    #[serde(default = "upright")]
    pub orientation: u16,
}

fn upright() -> u16 {
    1
}

/// A camera's JPEG as stored: its size and the EXIF orientation a viewer shows it with (1 to 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JpegMeta {
    pub width: usize,
    pub height: usize,
    pub exif_orientation: u16,
}

/// The camera's colour as the file gives it, in the lab's terms: the RGGB black levels (over the
/// white level), the white balance gains (green 1) and the camera -> linear sRGB matrix
/// (row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DngColour {
    pub black_level: [f64; 4],
    pub white_balance: [f64; 3],
    pub colour_matrix: [f64; 9],
}

#[cfg(feature = "decode")]
mod decoder;
#[cfg(feature = "decode")]
pub use decoder::decode;
#[cfg(feature = "decode")]
mod jpeg;
#[cfg(feature = "decode")]
pub use jpeg::{decode_jpeg, orient_rgb8};
