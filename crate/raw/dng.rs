//! Camera raws (DNG): the mosaic of the active area as an RGGB [`RawTile`], the camera parameters
//! the file's metadata gives, and which decoder reads them.
//!
//! The decoder, rawler, with the formats it pulls in (JPEG XL, lossless JPEG, its camera
//! database), is a package of its own (`lens2logit-dng`, `crate/raw/dng/`) and would be a third
//! of the page's module: the page loads it as a module of its own the first time it meets a DNG
//! (or a camera's JPEG, which the same module decodes) and installs its codecs here
//! ([`install_camera_codecs`]); native builds have them built in (feature `dng`).

use std::sync::OnceLock;

pub use lens2logit_dng::{DngColour, DngMeta, JpegMeta};

use super::camera::CameraParams;
use super::tile::RawTile;
use crate::{Error, Result};

/// A DNG decoder: the file's bytes and its name (which labels the errors).
pub type DngDecoder = fn(&[u8], &str) -> Result<DngImage>;
/// A JPEG decoder: the file's bytes and the most pixels it may hold; its size, EXIF orientation
/// and stored RGB pixels, or what is wrong.
pub type JpegDecoder = fn(&[u8], u64) -> std::result::Result<(JpegMeta, Vec<u8>), String>;
/// An RGB image (8 bits) turned by an EXIF orientation, or back (`undo`).
pub type RgbOrienter =
    fn(usize, usize, Vec<u8>, u16, bool) -> std::result::Result<(usize, usize, Vec<u8>), String>;

/// The codecs of a camera's files (package `lens2logit-dng`): built in natively, installed by the
/// page from its DNG module.
#[derive(Clone, Copy)]
pub struct CameraCodecs {
    pub dng: DngDecoder,
    pub jpeg: JpegDecoder,
    pub orient: RgbOrienter,
}

/// rawler and the JPEG decoder built in (package `lens2logit-dng`).
#[cfg(feature = "dng")]
fn built_in() -> Result<CameraCodecs> {
    fn dng(bytes: &[u8], name: &str) -> Result<DngImage> {
        let (meta, samples) = lens2logit_dng::decode(bytes, crate::spec::limits::DNG_PIXELS.max)
            .map_err(|reason| dng_error(name, reason))?;
        DngImage::from_parts(meta, samples, name)
    }
    Ok(CameraCodecs {
        dng,
        jpeg: lens2logit_dng::decode_jpeg,
        orient: lens2logit_dng::orient_rgb8,
    })
}

/// A build without rawler: the page's main module, before its DNG module is installed.
#[cfg(not(feature = "dng"))]
fn built_in() -> Result<CameraCodecs> {
    Err(Error::invalid(
        "this build has no decoder for camera files (the page loads its DNG module before \
         reading a DNG or a camera's JPEG; natively, build with the feature `dng`)",
    ))
}

static INSTALLED: OnceLock<CameraCodecs> = OnceLock::new();

/// Makes `codecs` the lab's camera codecs from now on (the first ones installed stay).
pub fn install_camera_codecs(codecs: CameraCodecs) {
    // a second install is the same module's codecs again
    let _ = INSTALLED.set(codecs);
}

/// The installed codecs, or the built-in ones.
fn codecs() -> Result<CameraCodecs> {
    match INSTALLED.get() {
        Some(codecs) => Ok(*codecs),
        None => built_in(),
    }
}

/// A DNG decoder's failure, naming the file.
pub fn dng_error(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::decode(name, format!("DNG: {reason}"))
}

/// A camera raw, ready for the lab: the RGGB mosaic of its active area (raw / white level, the
/// black level kept in the data as in the datasets), its camera, and a one-line description.
#[derive(Debug, Clone, PartialEq)]
pub struct DngImage {
    pub mosaic: RawTile,
    pub camera: CameraParams,
    /// Make and model, sizes, CFA, black and white level and where the colour came from.
    pub summary: String,
    /// The camera's default crop in the mosaic's pixels (x, y, width, height), where the file
    /// gives one: the area its JPEG covers.
    pub default_crop: Option<[usize; 4]>,
    /// How the image is shown (EXIF's orientation numbers, 1 upright).
    pub orientation: u16,
}

impl DngImage {
    /// The image from a decoder's answer (its description and its mosaic's samples), checked as
    /// any mosaic and camera are; `name` (the file's) labels the errors.
    pub fn from_parts(meta: DngMeta, samples: Vec<f32>, name: &str) -> Result<Self> {
        let DngMeta {
            width,
            height,
            colour:
                DngColour {
                    black_level,
                    white_balance,
                    colour_matrix,
                },
            summary,
            default_crop,
            orientation,
        } = meta;
        let camera = CameraParams {
            black_level,
            white_balance,
            colour_matrix,
            gamma: 2.2,
        };
        camera.validate().map_err(|e| dng_error(name, e))?;
        let mosaic = RawTile::new(width, height, samples).map_err(|e| dng_error(name, e))?;
        Ok(Self {
            mosaic,
            camera,
            summary,
            default_crop,
            orientation,
        })
    }
}

/// A camera's own JPEG of a shot, turned as it is shown (its EXIF orientation applied): RGB in
/// [0, 1], row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraJpeg {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<f32>,
    /// The stored image's size and orientation.
    pub stored: JpegMeta,
}

/// Decodes a camera's JPEG and turns it as it is shown; `name` labels the errors.
pub fn decode_camera_jpeg(bytes: &[u8], name: &str) -> Result<CameraJpeg> {
    let failed = |reason: String| Error::decode(name, format!("JPEG: {reason}"));
    let codecs = codecs()?;
    let (stored, pixels) =
        (codecs.jpeg)(bytes, crate::spec::limits::DNG_PIXELS.max).map_err(failed)?;
    let (width, height, shown) = (codecs.orient)(
        stored.width,
        stored.height,
        pixels,
        stored.exif_orientation,
        false,
    )
    .map_err(failed)?;
    Ok(CameraJpeg {
        width,
        height,
        rgb: shown.iter().map(|&v| f32::from(v) / 255.0).collect(),
        stored,
    })
}

/// An RGB image in [0, 1] (row-major) turned as one with the EXIF `orientation` is shown, or
/// back where `undo`: its width, height and values (rounded to 8 bits where it turns).
pub fn orient_rgb(
    width: usize,
    height: usize,
    rgb: &[f32],
    orientation: u16,
    undo: bool,
) -> Result<(usize, usize, Vec<f32>)> {
    if orientation == 1 {
        return Ok((width, height, rgb.to_vec()));
    }
    let bytes = rgb.iter().map(|&v| crate::codecs::to_byte(v)).collect();
    let (w, h, turned) =
        (codecs()?.orient)(width, height, bytes, orientation, undo).map_err(Error::invalid)?;
    Ok((w, h, turned.iter().map(|&v| f32::from(v) / 255.0).collect()))
}

/// Whether a file is a camera raw the lab reads as a DNG, by its name.
pub fn is_dng_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".dng")
}

/// Decodes a DNG with the installed decoder, or the built-in one; `name` (a file name) labels the
/// errors.
pub fn decode_dng(bytes: &[u8], name: &str) -> Result<DngImage> {
    let codecs = codecs().map_err(|e| dng_error(name, e))?;
    (codecs.dng)(bytes, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoders_answer_becomes_the_labs_image_and_a_bad_half_is_refused() {
        let camera = CameraParams::drone();
        let meta = DngMeta {
            width: 4,
            height: 2,
            colour: DngColour {
                black_level: camera.black_level,
                white_balance: camera.white_balance,
                colour_matrix: camera.colour_matrix,
            },
            summary: "a camera, 4x2".into(),
            default_crop: Some([0, 0, 4, 2]),
            orientation: 6,
        };
        let samples: Vec<f32> = (0..8).map(|i| i as f32 / 8.0).collect();
        // as it crosses between the page's modules
        let meta: DngMeta = serde_json::from_str(&serde_json::to_string(&meta).unwrap()).unwrap();
        let image = DngImage::from_parts(meta.clone(), samples.clone(), "a.dng").unwrap();
        assert_eq!(image.mosaic, RawTile::new(4, 2, samples).unwrap());
        assert_eq!(
            image.camera,
            CameraParams {
                gamma: 2.2,
                ..camera
            }
        );
        let e = DngImage::from_parts(meta.clone(), vec![0.5; 6], "a.dng").unwrap_err();
        assert!(e.to_string().contains("a.dng"), "{e}");
        let mut broken = meta;
        broken.colour.white_balance[0] = f64::NAN;
        assert!(DngImage::from_parts(broken, vec![0.5; 8], "b.dng").is_err());
    }

    #[test]
    fn dng_names_are_known_by_their_extension() {
        assert!(is_dng_name("a/B.DNG") && is_dng_name("x.dng"));
        assert!(!is_dng_name("x.dng.zip") && !is_dng_name("dng.tif"));
    }
}
