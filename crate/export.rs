//! Encoders for what the lab hands out: float32 .npy arrays and 8-bit PNGs, as bytes (the caller
//! decides where they go: a file natively, a download in the page).

use crate::{Error, Result};

/// A C-order float32 .npy of the given shape.
pub fn npy_f32(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    use npyz::WriterBuilder;
    let expected: usize = shape.iter().product();
    if expected != data.len() {
        return Err(Error::invalid(format!(
            "shape {shape:?} needs {expected} values, got {}",
            data.len()
        )));
    }
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut out = Vec::with_capacity(data.len() * 4 + 128);
    let io = |e: std::io::Error| Error::io("writing .npy", e);
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut out)
        .begin_nd()
        .map_err(io)?;
    writer.extend(data.iter().copied()).map_err(io)?;
    writer.finish().map_err(io)?;
    Ok(out)
}

/// An 8-bit PNG of interleaved pixels with `channels` per pixel (3: RGB, 4: RGBA).
pub fn png8(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    let colour = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        n => {
            return Err(Error::invalid(format!(
                "cannot write a PNG with {n} channels"
            )))
        }
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| Error::invalid(format!("writing PNG: {e}"));
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(pixels).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::decode_tile;

    #[test]
    fn npy_round_trips_through_the_decoder() {
        let bytes = npy_f32(&[2, 2], &[0.1, 0.2, 0.3, 0.4]).unwrap();
        assert_eq!(
            decode_tile(&bytes, "t").unwrap().data(),
            &[0.1, 0.2, 0.3, 0.4]
        );
        assert!(npy_f32(&[3], &[0.0; 2]).is_err());
    }

    #[test]
    fn png_gray_round_trips() {
        let bytes = png8(2, 2, 1, &[0, 51, 102, 255]).unwrap();
        let tile = decode_tile(&bytes, "t").unwrap();
        assert_eq!(tile.data()[3], 1.0);
    }
}
