//! A camera's JPEG: its pixels, size and EXIF orientation (the `image` crate, zune-jpeg inside),
//! and the eight orientations applied to an RGB image, to bring the JPEG and the raw into one
//! frame.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};

use super::JpegMeta;

type Result<T> = std::result::Result<T, String>;

/// Decodes a JPEG of at most `max_pixels` pixels: its size and EXIF orientation, and its stored
/// pixels (RGB, 8 bits, row-major; greyscale JPEGs come as RGB too). The size is checked before
/// any pixel is decoded.
pub fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<(JpegMeta, Vec<u8>)> {
    // the decoder fills a cut-off scan with grey instead of failing: a file whose last scan (SOS)
    // has no end-of-image marker (EOI) after it is refused (inside a scan 0xFF is always
    // followed by 0x00, so neither marker can be scan data)
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    if !matches!((last(0xDA), last(0xD9)), (Some(sos), Some(eoi)) if eoi > sos) {
        return Err(
            "the JPEG ends before its end-of-image marker: the file is truncated or damaged".into(),
        );
    }
    let mut decoder =
        JpegDecoder::new(Cursor::new(bytes)).map_err(|e| format!("not a readable JPEG ({e})"))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(format!(
            "a {width}x{height} JPEG has {pixels} pixels, more than the lab decodes ({max_pixels})"
        ));
    }
    // a damaged EXIF block leaves the image upright, as viewers show it
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("the JPEG's pixels could not be decoded ({e})"))?;
    let meta = JpegMeta {
        width: width as usize,
        height: height as usize,
        exif_orientation: exif_number(orientation),
    };
    Ok((meta, image.into_rgb8().into_raw()))
}

/// An RGB image (8 bits, row-major) turned as a viewer shows an image with the EXIF `orientation`
/// (1 to 8), or back to its stored frame where `undo`: its new width, height and pixels.
pub fn orient_rgb8(
    width: usize,
    height: usize,
    rgb: Vec<u8>,
    orientation: u16,
    undo: bool,
) -> Result<(usize, usize, Vec<u8>)> {
    let turn = u8::try_from(orientation)
        .ok()
        .and_then(Orientation::from_exif)
        .ok_or_else(|| format!("orientation {orientation} is not one of EXIF's 1 to 8"))?;
    // the quarter turns undo each other; the other six are their own inverse
    let turn = match (undo, turn) {
        (true, Orientation::Rotate90) => Orientation::Rotate270,
        (true, Orientation::Rotate270) => Orientation::Rotate90,
        (_, turn) => turn,
    };
    let size = |n: usize| u32::try_from(n).map_err(|_| format!("an image {n} pixels wide"));
    let image = RgbImage::from_raw(size(width)?, size(height)?, rgb).ok_or_else(|| {
        format!(
            "an RGB image of {width}x{height} pixels needs {} bytes",
            width * height * 3
        )
    })?;
    let mut image = DynamicImage::ImageRgb8(image);
    image.apply_orientation(turn);
    let image = image.into_rgb8();
    Ok((
        image.width() as usize,
        image.height() as usize,
        image.into_raw(),
    ))
}

fn exif_number(orientation: Orientation) -> u16 {
    match orientation {
        Orientation::NoTransforms => 1,
        Orientation::FlipHorizontal => 2,
        Orientation::Rotate180 => 3,
        Orientation::FlipVertical => 4,
        Orientation::Rotate90FlipH => 5,
        Orientation::Rotate90 => 6,
        Orientation::Rotate270FlipH => 7,
        Orientation::Rotate270 => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixels are their own indices.
    fn numbered() -> Vec<u8> {
        (0..6).flat_map(|i| [i, i, i]).collect()
    }

    #[test]
    fn each_orientation_is_undone_by_its_inverse() {
        for o in 1..=8 {
            let (w, h, turned) = orient_rgb8(3, 2, numbered(), o, false).unwrap();
            assert_eq!(
                (w, h),
                if o >= 5 { (2, 3) } else { (3, 2) },
                "orientation {o}"
            );
            let (w, h, back) = orient_rgb8(w, h, turned, o, true).unwrap();
            assert_eq!((w, h, back), (3, 2, numbered()), "orientation {o}");
        }
    }

    #[test]
    fn orientation_6_turns_a_quarter_clockwise() {
        // stored 0 1 2 / 3 4 5, shown turned clockwise: 3 0 / 4 1 / 5 2
        let (_, _, shown) = orient_rgb8(3, 2, numbered(), 6, false).unwrap();
        let firsts: Vec<u8> = shown.chunks(3).map(|p| p[0]).collect();
        assert_eq!(firsts, [3, 0, 4, 1, 5, 2]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(orient_rgb8(3, 2, numbered(), 9, false).is_err());
        assert!(orient_rgb8(3, 3, numbered(), 1, false).is_err());
        let e = decode_jpeg(b"not a jpeg", 100).unwrap_err();
        assert!(e.contains("JPEG"), "{e}");
    }

    #[test]
    fn a_truncated_jpeg_is_refused_and_a_whole_one_decodes() {
        let pixels: Vec<u8> = (0..32 * 24 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode(&pixels, 32, 24, image::ExtendedColorType::Rgb8)
            .unwrap();
        let (meta, rgb) = decode_jpeg(&jpeg, 1 << 20).unwrap();
        assert_eq!(
            (meta.width, meta.height, meta.exif_orientation),
            (32, 24, 1)
        );
        assert_eq!(rgb.len(), 32 * 24 * 3);
        let e = decode_jpeg(&jpeg[..jpeg.len() * 2 / 3], 1 << 20).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }
}
