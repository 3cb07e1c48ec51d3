//! Raw tiles from files, with the well-kept decoders (tiff, png, npyz); never hand-parsed.
//!
//! Accepted: 8- and 16-bit grayscale TIFF and PNG (value / (2^bits - 1)), float32 TIFF, RGB/RGBA
//! PNG whose colour planes are identical (the paper's demo tiles are stored that way), and 2-D
//! float32/float64 .npy. Everything else is refused with the reason. The same PNG and TIFF
//! decoding gives the paper's own processed views, in colour, for display.

use std::io::Cursor;

use super::tile::{check_bounds, check_size, RawTile, MAX_SIDE};
use crate::{Error, Result};

/// Decodes a raw tile; `name` (a file name or URL) only labels errors.
/// A tile the lab loads from a file or an archive: [`decode_tile`], refusing sides outside
/// [`crate::spec::limits::TILE_SIDE`] with the file's name.
pub fn decode_lab_tile(bytes: &[u8], name: &str) -> Result<RawTile> {
    let tile = decode_tile(bytes, name)?;
    let (w, h) = (tile.width(), tile.height());
    let bound = crate::spec::limits::TILE_SIDE;
    if [w, h]
        .iter()
        .any(|&s| !(bound.min..=bound.max).contains(&(s as u64)))
    {
        return Err(Error::invalid(format!(
            "{name}: a {w}x{h} tile is outside the {0}x{0} to {1}x{1} px the lab loads (the \
             processing's filters need {0} px)",
            bound.min, bound.max
        )));
    }
    Ok(tile)
}

/// A segmentation mask (a PNG, TIFF or .npy, car where > 0) as {0, 1}, row-major. Besides what
/// [`decode_tile`] reads, 1-, 2- and 4-bit grayscale PNGs (the paper's code saves its masks as
/// 1-bit PNGs) and odd sides (a full image's mask) up to [`MAX_SIDE`].
pub fn decode_mask(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let plane = if bytes.starts_with(PNG_MAGIC) {
        one_plane(png_samples(bytes, name, true)?, name)?
    } else if bytes.starts_with(b"\x93NUMPY") {
        decode_npy(bytes, name)?.into_data()
    } else {
        one_plane(decode_samples(bytes, name)?, name)?
    };
    Ok(plane.iter().map(|&v| u8::from(v > 0.0)).collect())
}

pub fn decode_tile(bytes: &[u8], name: &str) -> Result<RawTile> {
    if bytes.starts_with(b"\x93NUMPY") {
        return decode_npy(bytes, name);
    }
    let samples = decode_samples(bytes, name)?;
    let (width, height) = (samples.width, samples.height);
    check_size(width, height)
        .map_err(|e| Error::decode(name, format!("{}: {e}", samples.format)))?;
    RawTile::new(width, height, one_plane(samples, name)?)
}

/// The one plane of a mosaic (or a mask): gray, or RGB(A) whose colour planes are identical.
fn one_plane(samples: Samples, name: &str) -> Result<Vec<f32>> {
    let format = samples.format;
    let err = |reason: String| Error::decode(name, format!("{format}: {reason}"));
    let Samples {
        width,
        channels,
        data,
        ..
    } = samples;
    if format == "TIFF" && channels != 1 {
        return Err(err(format!(
            "{channels}-channel images are not raw mosaics (use one grayscale channel)"
        )));
    }
    let mut plane = Vec::with_capacity(data.len() / channels);
    for (i, px) in data.chunks_exact(channels).enumerate() {
        // RGB(A): the mosaic is stored in every colour plane; differing planes mean a processed
        // colour image, not raw data
        if channels >= 3 && (px[1] != px[0] || px[2] != px[0]) {
            return Err(err(format!(
                "the colour planes differ at row {}, column {} ({}, {}, {}): a raw mosaic stores the same value in R, G and B",
                i / width,
                i % width,
                px[0],
                px[1],
                px[2]
            )));
        }
        plane.push(px[0]);
    }
    Ok(plane)
}

/// An image's samples scaled to [0, 1] (integers by their full scale, floats as they are),
/// interleaved by channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    pub width: usize,
    pub height: usize,
    /// 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    pub data: Vec<f32>,
    /// "PNG" or "TIFF", for messages.
    pub format: &'static str,
}

impl Samples {
    /// RGBA8 for display: gray spread to R, G and B, values clipped to [0, 1], alpha kept.
    pub fn to_rgba8(&self) -> Vec<u8> {
        let q = crate::codecs::to_byte;
        self.data
            .chunks_exact(self.channels)
            .flat_map(|px| match px {
                [g] => [q(*g), q(*g), q(*g), 255],
                [g, a] => [q(*g), q(*g), q(*g), q(*a)],
                [r, g, b] => [q(*r), q(*g), q(*b), 255],
                [r, g, b, a, ..] => [q(*r), q(*g), q(*b), q(*a)],
                [] => [0, 0, 0, 255],
            })
            .collect()
    }
}

/// A PNG or TIFF image's samples; `name` only labels errors.
pub fn decode_samples(bytes: &[u8], name: &str) -> Result<Samples> {
    if bytes.starts_with(PNG_MAGIC) {
        png_samples(bytes, name, false)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        tiff_samples(bytes, name)
    } else {
        Err(Error::decode(
            name,
            "not a PNG, TIFF or .npy file (unrecognised first bytes)",
        ))
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Bytes a decoder may allocate: a MAX_SIDE square of 4 samples of 16 bits, and some slack.
const BYTE_LIMIT: usize = MAX_SIDE * MAX_SIDE * 8 + (1 << 20);

/// `packed_gray`: also 1-, 2- and 4-bit grayscale (masks), unpacked and scaled like the rest.
fn png_samples(bytes: &[u8], name: &str, packed_gray: bool) -> Result<Samples> {
    let err = |e: &dyn std::fmt::Display| Error::decode(name, format!("PNG: {e}"));
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: BYTE_LIMIT });
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(|e| err(&e))?;
    let (width, height) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    check_bounds(width, height).map_err(|e| err(&e))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err(&"image too large"))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| err(&e))?;
    let gray = frame.color_type == png::ColorType::Grayscale;
    let bits: usize = match frame.bit_depth {
        png::BitDepth::Eight => 8,
        png::BitDepth::Sixteen => 16,
        png::BitDepth::One if packed_gray && gray => 1,
        png::BitDepth::Two if packed_gray && gray => 2,
        png::BitDepth::Four if packed_gray && gray => 4,
        other => {
            return Err(err(&format!(
                "{other:?}-bit samples are not supported (use 8 or 16 bits)"
            )))
        }
    };
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(err(
                &"palette images are not supported (use grayscale or RGB)",
            ))
        }
    };
    let full_scale = ((1u32 << bits) - 1) as f64;
    let mut data = Vec::with_capacity(width * height * channels);
    for row in buf.chunks_exact(frame.line_size).take(height) {
        let scaled = |v: u16| (v as f64 / full_scale) as f32;
        match bits {
            8 => data.extend(row[..width * channels].iter().map(|&b| scaled(b as u16))),
            16 => data.extend(
                row[..width * channels * 2]
                    .chunks_exact(2)
                    .map(|s| scaled(u16::from_be_bytes([s[0], s[1]]))),
            ),
            // packed from the most significant bit, 8 / bits samples per byte
            _ => data.extend((0..width).map(|x| {
                let bit = x * bits;
                let shift = 8 - bits - bit % 8;
                scaled(((row[bit / 8] >> shift) & ((1 << bits) - 1) as u8) as u16)
            })),
        }
    }
    Ok(Samples {
        width,
        height,
        channels,
        data,
        format: "PNG",
    })
}

fn tiff_samples(bytes: &[u8], name: &str) -> Result<Samples> {
    let err = |e: &dyn std::fmt::Display| Error::decode(name, format!("TIFF: {e}"));
    let mut limits = tiff::decoder::Limits::default();
    limits.decoding_buffer_size = BYTE_LIMIT;
    limits.intermediate_buffer_size = BYTE_LIMIT;
    let mut decoder = tiff::decoder::Decoder::new(Cursor::new(bytes))
        .map_err(|e| err(&e))?
        .with_limits(limits);
    let (width, height) = decoder.dimensions().map_err(|e| err(&e))?;
    let (width, height) = (width as usize, height as usize);
    check_bounds(width, height).map_err(|e| err(&e))?;
    let colour = decoder.colortype().map_err(|e| err(&e))?;
    let channels = match colour {
        tiff::ColorType::Gray(_) => 1,
        tiff::ColorType::GrayA(_) => 2,
        tiff::ColorType::RGB(_) => 3,
        tiff::ColorType::RGBA(_) => 4,
        other => {
            return Err(err(&format!(
                "{other:?} images are not supported (use grayscale or RGB)"
            )))
        }
    };
    let data: Vec<f32> = match decoder.read_image().map_err(|e| err(&e))? {
        tiff::decoder::DecodingResult::U8(v) => {
            v.iter().map(|&s| (s as f64 / 255.0) as f32).collect()
        }
        tiff::decoder::DecodingResult::U16(v) => {
            v.iter().map(|&s| (s as f64 / 65535.0) as f32).collect()
        }
        tiff::decoder::DecodingResult::F32(v) => v,
        _ => {
            return Err(err(&format!(
                "{colour:?} samples are not supported (use 8- or 16-bit integers or 32-bit floats)"
            )))
        }
    };
    if data.len() != width * height * channels {
        return Err(err(&format!(
            "expected {} samples, the file holds {}",
            width * height * channels,
            data.len()
        )));
    }
    Ok(Samples {
        width,
        height,
        channels,
        data,
        format: "TIFF",
    })
}

fn decode_npy(bytes: &[u8], name: &str) -> Result<RawTile> {
    let (shape, data) = crate::codecs::read_npy(bytes, name)?;
    let [height, width] = shape[..] else {
        return Err(Error::decode(
            name,
            format!(".npy: a raw tile is a 2-D array, this one has shape {shape:?}"),
        ));
    };
    check_size(width, height).map_err(|e| Error::decode(name, format!(".npy: {e}")))?;
    RawTile::new(width, height, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_round_trips_through_the_decoder() {
        let bytes = crate::codecs::npy_f32(&[2, 2], &[0.1, 0.2, 0.3, 0.4]).unwrap();
        assert_eq!(
            decode_tile(&bytes, "t").unwrap().data(),
            &[0.1, 0.2, 0.3, 0.4]
        );
        assert!(crate::codecs::npy_f32(&[3], &[0.0; 2]).is_err());
    }

    #[test]
    fn tiff16_round_trips_through_the_decoder() {
        let values = [0.0, 0.25, 0.5, 1.0];
        let tile = decode_tile(&crate::codecs::tiff_gray16(2, 2, &values).unwrap(), "t").unwrap();
        for (a, b) in tile.data().iter().zip(values) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn png_gray_round_trips() {
        let bytes = crate::codecs::png8(2, 2, 1, &[0, 51, 102, 255]).unwrap();
        let tile = decode_tile(&bytes, "t").unwrap();
        assert_eq!(tile.data()[3], 1.0);
    }

    use super::*;

    fn png_bytes(
        width: u32,
        height: u32,
        colour: png::ColorType,
        depth: png::BitDepth,
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(colour);
        encoder.set_depth(depth);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(data)
            .unwrap();
        out
    }

    #[test]
    fn png_gray_8_and_16_bit_scale_to_unit_range() {
        let tile = decode_tile(
            &png_bytes(
                2,
                2,
                png::ColorType::Grayscale,
                png::BitDepth::Eight,
                &[0, 255, 51, 102],
            ),
            "t",
        )
        .unwrap();
        assert_eq!(tile.data(), &[0.0, 1.0, 0.2, 0.4].map(|v: f64| v as f32));
        let sixteen = [0xff, 0xff, 0, 0, 0x80, 0x00, 0, 1];
        let tile = decode_tile(
            &png_bytes(
                2,
                2,
                png::ColorType::Grayscale,
                png::BitDepth::Sixteen,
                &sixteen,
            ),
            "t",
        )
        .unwrap();
        assert_eq!(tile.data()[0], 1.0);
        assert!((tile.data()[2] - 32768.0 / 65535.0).abs() < 1e-7);
    }

    #[test]
    fn png_rgb_needs_identical_planes() {
        let same = [7u8, 7, 7, 255, 9, 9, 9, 255, 1, 1, 1, 255, 2, 2, 2, 255];
        let tile = decode_tile(
            &png_bytes(2, 2, png::ColorType::Rgba, png::BitDepth::Eight, &same),
            "t",
        )
        .unwrap();
        assert_eq!(tile.data()[1], 9.0 / 255.0);
        let mut differ = same;
        differ[5] = 8;
        let e = decode_tile(
            &png_bytes(2, 2, png::ColorType::Rgba, png::BitDepth::Eight, &differ),
            "t.png",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("colour planes differ at row 0, column 1"),
            "{e}"
        );
    }

    #[test]
    fn odd_truncated_and_unknown_files_are_refused() {
        let odd = png_bytes(
            3,
            2,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[0; 6],
        );
        assert!(decode_tile(&odd, "odd.png")
            .unwrap_err()
            .to_string()
            .contains("even"));
        let good = png_bytes(
            2,
            2,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[1, 2, 3, 4],
        );
        assert!(decode_tile(&good[..good.len() - 20], "cut.png").is_err());
        let e = decode_tile(b"hello", "x.bin").unwrap_err().to_string();
        assert!(e.contains("x.bin") && e.contains("not a PNG"), "{e}");
    }

    fn tiff_bytes<C: tiff::encoder::colortype::ColorType>(
        data: &[C::Inner],
        w: u32,
        h: u32,
    ) -> Vec<u8>
    where
        [C::Inner]: tiff::encoder::TiffValue,
    {
        let mut out = Cursor::new(Vec::new());
        tiff::encoder::TiffEncoder::new(&mut out)
            .unwrap()
            .write_image::<C>(w, h, data)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn tiff_16_bit_and_float() {
        use tiff::encoder::colortype::{Gray16, Gray32Float, RGB8};
        let t = decode_tile(&tiff_bytes::<Gray16>(&[0, 65535, 13107, 0], 2, 2), "t.tif").unwrap();
        assert_eq!(t.data(), &[0.0, 1.0, 0.2, 0.0]);
        let f = decode_tile(
            &tiff_bytes::<Gray32Float>(&[0.25, 0.5, 0.75, 1.0], 2, 2),
            "f.tif",
        )
        .unwrap();
        assert_eq!(f.data(), &[0.25, 0.5, 0.75, 1.0]);
        let rgb = tiff_bytes::<RGB8>(&[0; 12], 2, 2);
        assert!(decode_tile(&rgb, "rgb.tif")
            .unwrap_err()
            .to_string()
            .contains("not raw mosaics"));
    }

    #[test]
    fn colour_images_decode_for_display() {
        use tiff::encoder::colortype::RGB16;
        let png = png_bytes(
            2,
            1,
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            &[255, 0, 51, 0, 128, 255],
        );
        let s = decode_samples(&png, "v.png").unwrap();
        assert_eq!((s.width, s.height, s.channels), (2, 1, 3));
        assert_eq!(s.to_rgba8(), [255, 0, 51, 255, 0, 128, 255, 255]);
        let tif = tiff_bytes::<RGB16>(&[65535, 0, 0, 0, 0, 65535], 2, 1);
        assert_eq!(
            decode_samples(&tif, "v.tif").unwrap().to_rgba8(),
            [255, 0, 0, 255, 0, 0, 255, 255]
        );
        let gray = png_bytes(1, 1, png::ColorType::Grayscale, png::BitDepth::Eight, &[51]);
        assert_eq!(
            decode_samples(&gray, "g.png").unwrap().to_rgba8(),
            [51, 51, 51, 255]
        );
    }

    #[test]
    fn masks_read_packed_png_and_odd_full_sizes() {
        // 1 bit (the paper's masks), 9 px wide: two bytes a row, the last padded
        let one_bit = png_bytes(
            9,
            3,
            png::ColorType::Grayscale,
            png::BitDepth::One,
            &[0b1000_0001, 0b1000_0000, 0, 0, 0b0100_0000, 0],
        );
        let mask = decode_mask(&one_bit, "m.png").unwrap();
        let expected: Vec<u8> = [
            [1, 0, 0, 0, 0, 0, 0, 1, 1],
            [0; 9],
            [0, 1, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(mask, expected);
        let four_bit = png_bytes(
            2,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Four,
            &[0x0f],
        );
        assert_eq!(decode_mask(&four_bit, "m4.png").unwrap(), [0, 1]);
        // raw tiles keep refusing packed samples
        let e = decode_tile(&one_bit, "t.png").unwrap_err().to_string();
        assert!(e.contains("One-bit") || e.contains("not supported"), "{e}");
        let odd = png_bytes(
            3,
            1,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[0, 9, 0],
        );
        assert_eq!(decode_mask(&odd, "odd.png").unwrap(), [0, 1, 0]);
    }

    fn npy_bytes<T: npyz::AutoSerialize + Copy>(shape: &[u64], data: &[T]) -> Vec<u8> {
        use npyz::WriterBuilder;
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        out
    }

    #[test]
    fn npy_float32_float64_and_refusals() {
        let t = decode_tile(&npy_bytes::<f32>(&[2, 2], &[0.1, 0.2, 0.3, 0.4]), "a.npy").unwrap();
        assert_eq!(t.data(), &[0.1, 0.2, 0.3, 0.4]);
        let d = decode_tile(&npy_bytes::<f64>(&[2, 4], &[0.5; 8]), "b.npy").unwrap();
        assert_eq!((d.width(), d.height()), (4, 2));
        assert!(decode_tile(&npy_bytes::<f32>(&[8], &[0.0; 8]), "c.npy")
            .unwrap_err()
            .to_string()
            .contains("2-D"));
        assert!(decode_tile(&npy_bytes::<i32>(&[2, 2], &[1; 4]), "d.npy")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        let full = npy_bytes::<f32>(&[2, 2], &[0.1; 4]);
        assert!(decode_tile(&full[..full.len() - 3], "e.npy").is_err());
    }
}
