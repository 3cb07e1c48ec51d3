//! Minimal DNG files written with the `tiff` crate: one IFD holding the CFA mosaic and the DNG
//! tags a raw decoder needs, so that tests need no camera's file.

use std::io::Cursor;

use tiff::encoder::colortype::Gray16;
use tiff::encoder::{Rational, SRational, TiffEncoder};
use tiff::tags::Tag;

/// Rationals over 10000: the tests' numbers have at most four decimals.
const DENOMINATOR: f64 = 10_000.0;

/// A 16-bit uncompressed DNG 1.4. `cfa`: the 2x2 pattern row by row (0 red, 1 green, 2 blue),
/// `[0, 1, 1, 2]` is RGGB; `colour_matrix`: ColorMatrix1 (XYZ -> camera, row-major), for D65.
#[allow(clippy::too_many_arguments)]
pub fn small_dng(
    width: u32,
    height: u32,
    cfa: [u8; 4],
    black: u16,
    white: u16,
    as_shot_neutral: [f64; 3],
    colour_matrix: [f64; 9],
    data: &[u16],
) -> Vec<u8> {
    write(
        width,
        height,
        cfa,
        black,
        white,
        as_shot_neutral,
        colour_matrix,
        data,
        None,
    )
}

/// A 2x2 DNG whose raw IFD claims `width` x `height` pixels: a file over a size limit, cheaply.
pub fn dng_claiming(width: u32, height: u32) -> Vec<u8> {
    let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let data = [0u16; 4];
    let claim = Some((width, height));
    write(
        2,
        2,
        [0, 1, 1, 2],
        0,
        4095,
        [1.0; 3],
        identity,
        &data,
        claim,
    )
}

#[allow(clippy::too_many_arguments)]
fn write(
    width: u32,
    height: u32,
    cfa: [u8; 4],
    black: u16,
    white: u16,
    as_shot_neutral: [f64; 3],
    colour_matrix: [f64; 9],
    data: &[u16],
    claim: Option<(u32, u32)>,
) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut tiff = TiffEncoder::new(&mut out).unwrap();
    let mut image = tiff.new_image::<Gray16>(width, height).unwrap();
    let ifd = image.encoder();
    let tag = |code: u16| Tag::Unknown(code);
    ifd.write_tag(Tag::NewSubfileType, 0u32).unwrap();
    // the image encoder wrote BlackIsZero; a raw mosaic is a colour filter array
    ifd.write_tag(Tag::PhotometricInterpretation, 32803u16)
        .unwrap();
    ifd.write_tag(Tag::Make, "Lens2Logit").unwrap();
    ifd.write_tag(Tag::Model, "Test Sensor").unwrap();
    ifd.write_tag(tag(33421), [2u16, 2]).unwrap(); // CFARepeatPatternDim
    ifd.write_tag(tag(33422), cfa).unwrap(); // CFAPattern
    ifd.write_tag(tag(50706), [1u8, 4, 0, 0]).unwrap(); // DNGVersion
    ifd.write_tag(tag(50707), [1u8, 1, 0, 0]).unwrap(); // DNGBackwardVersion
    ifd.write_tag(tag(50708), "Lens2Logit Test Sensor").unwrap(); // UniqueCameraModel
    ifd.write_tag(tag(50714), black).unwrap(); // BlackLevel
    ifd.write_tag(tag(50717), white).unwrap(); // WhiteLevel
    let neutral = as_shot_neutral.map(|v| Rational {
        n: (v * DENOMINATOR).round() as u32,
        d: DENOMINATOR as u32,
    });
    ifd.write_tag(tag(50728), &neutral[..]).unwrap(); // AsShotNeutral
    let matrix = colour_matrix.map(|v| SRational {
        n: (v * DENOMINATOR).round() as i32,
        d: DENOMINATOR as i32,
    });
    ifd.write_tag(tag(50721), &matrix[..]).unwrap(); // ColorMatrix1
    ifd.write_tag(tag(50778), 21u16).unwrap(); // CalibrationIlluminant1: D65
    if let Some((w, h)) = claim {
        ifd.write_tag(Tag::ImageWidth, w).unwrap();
        ifd.write_tag(Tag::ImageLength, h).unwrap();
    }
    image.write_data(data).unwrap();
    out.into_inner()
}
