//! Camera raws (DNG): the mosaic of the active area as an RGGB [`RawTile`], the camera parameters
//! the file's metadata gives, and which decoder reads them.
//!
//! The decoder, rawler, with the formats it pulls in (JPEG XL, lossless JPEG, its camera
//! database), is a third of the page's module: the page loads it as a module of its own the first
//! time it meets a DNG and installs it here ([`install_dng_decoder`]); native builds have it built
//! in (feature `dng`).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::camera::CameraParams;
use super::tile::RawTile;
use crate::Result;

#[cfg(feature = "dng")]
mod rawler_decoder;
#[cfg(feature = "dng")]
use rawler_decoder::decode as built_in;

/// A build without rawler: the page's main module, before its DNG module is installed.
#[cfg(not(feature = "dng"))]
fn built_in(_bytes: &[u8], name: &str) -> Result<DngImage> {
    Err(crate::Error::decode(
        name,
        "DNG: this build has no DNG decoder (the page loads its DNG module before reading a DNG; \
         natively, build with the feature `dng`)",
    ))
}

/// A camera raw, ready for the lab: the RGGB mosaic of its active area (raw / white level, the
/// black level kept in the data as in the datasets), its camera, and a one-line description.
#[derive(Debug, Clone, PartialEq)]
pub struct DngImage {
    pub mosaic: RawTile,
    pub camera: CameraParams,
    /// Make and model, sizes, CFA, black and white level and where the colour came from.
    pub summary: String,
}

/// A [`DngImage`] but its samples, as it passes between the page's modules (the samples go as a
/// typed array beside it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DngMeta {
    pub width: usize,
    pub height: usize,
    pub camera: CameraParams,
    pub summary: String,
}

impl DngImage {
    /// The image as its description and its mosaic's samples.
    pub fn into_parts(self) -> (DngMeta, Vec<f32>) {
        let meta = DngMeta {
            width: self.mosaic.width(),
            height: self.mosaic.height(),
            camera: self.camera,
            summary: self.summary,
        };
        (meta, self.mosaic.into_data())
    }

    /// The image from [`DngImage::into_parts`]'s halves, checked as any mosaic is.
    pub fn from_parts(meta: DngMeta, samples: Vec<f32>) -> Result<Self> {
        meta.camera.validate()?;
        Ok(Self {
            mosaic: RawTile::new(meta.width, meta.height, samples)?,
            camera: meta.camera,
            summary: meta.summary,
        })
    }
}

/// A DNG decoder: the file's bytes and its name (which labels the errors).
pub type DngDecoder = fn(&[u8], &str) -> Result<DngImage>;

static INSTALLED: OnceLock<DngDecoder> = OnceLock::new();

/// Makes `decoder` the lab's DNG decoder from now on (the first one installed stays).
pub fn install_dng_decoder(decoder: DngDecoder) {
    // a second install is the same module's decoder again
    let _ = INSTALLED.set(decoder);
}

/// Whether a file is a camera raw the lab reads as a DNG, by its name.
pub fn is_dng_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".dng")
}

/// Decodes a DNG with the installed decoder, or the built-in one; `name` (a file name) labels the
/// errors.
pub fn decode_dng(bytes: &[u8], name: &str) -> Result<DngImage> {
    match INSTALLED.get() {
        Some(decoder) => decoder(bytes, name),
        None => built_in(bytes, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_survives_its_parts_and_a_bad_half_is_refused() {
        let image = DngImage {
            mosaic: RawTile::new(4, 2, (0..8).map(|i| i as f32 / 8.0).collect()).unwrap(),
            camera: CameraParams::drone(),
            summary: "a camera, 4x2".into(),
        };
        let (meta, samples) = image.clone().into_parts();
        let json = serde_json::to_string(&meta).unwrap();
        let back = DngImage::from_parts(serde_json::from_str(&json).unwrap(), samples).unwrap();
        assert_eq!(back, image);
        let (meta, _) = image.into_parts();
        assert!(DngImage::from_parts(meta, vec![0.5; 6]).is_err());
    }

    #[test]
    fn dng_names_are_known_by_their_extension() {
        assert!(is_dng_name("a/B.DNG") && is_dng_name("x.dng"));
        assert!(!is_dng_name("x.dng.zip") && !is_dng_name("dng.tif"));
    }
}
