//! The raw tile: a one-channel f32 mosaic in [0, 1] with an RGGB colour filter array.

use crate::{Error, Result};

/// Largest side we accept ([`crate::spec::limits::IMAGE_SIDE`]): the datasets' tiles are 256 px;
/// anything far above that is a mistake (or a hostile file) and would exhaust memory in the browser.
pub const MAX_SIDE: usize = crate::spec::limits::IMAGE_SIDE.max as usize;

/// One site of the 2x2 RGGB pattern. The index is the position in a camera's per-site black level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BayerSite {
    /// (0, 0)
    Red,
    /// (0, 1): green on a red row.
    GreenRed,
    /// (1, 0): green on a blue row.
    GreenBlue,
    /// (1, 1)
    Blue,
}

impl BayerSite {
    pub const ALL: [BayerSite; 4] = [
        BayerSite::Red,
        BayerSite::GreenRed,
        BayerSite::GreenBlue,
        BayerSite::Blue,
    ];

    /// The site at row `y`, column `x`.
    #[inline]
    pub fn at(y: usize, x: usize) -> BayerSite {
        Self::ALL[(y & 1) * 2 + (x & 1)]
    }

    /// Index into per-site arrays (R, G on R rows, G on B rows, B).
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The RGB channel this site samples.
    #[inline]
    pub fn channel(self) -> usize {
        match self {
            BayerSite::Red => 0,
            BayerSite::GreenRed | BayerSite::GreenBlue => 1,
            BayerSite::Blue => 2,
        }
    }
}

/// A raw mosaic tile, row-major, values nominally in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct RawTile {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl RawTile {
    /// Wraps mosaic samples; the sides must be even (whole 2x2 Bayer cells), non-zero and sane, and
    /// every sample finite.
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        check_size(width, height)?;
        if data.len() != width * height {
            return Err(Error::invalid(format!(
                "a {width}x{height} tile needs {} samples, got {}",
                width * height,
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "raw sample at row {}, column {} is not a finite number",
                i / width,
                i % width
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// The mosaic at 1/`factor` of its size, still RGGB: each 2x2 cell of the result averages the
    /// `factor` x `factor` samples of each colour in a (2 factor) x (2 factor) block (what a
    /// camera's binned or downscaled output sees); a partial block at the edges is left out.
    pub fn binned(&self, factor: usize) -> Result<Self> {
        if factor <= 1 {
            return Ok(self.clone());
        }
        let block = 2 * factor;
        let (width, height) = (self.width / block * 2, self.height / block * 2);
        let mut data = vec![0.0f32; width * height];
        for (y, row) in data.chunks_exact_mut(width.max(1)).enumerate() {
            for (x, out) in row.iter_mut().enumerate() {
                // the site's first sample in its block, then every other row and column
                let (y0, x0) = (y / 2 * block + y % 2, x / 2 * block + x % 2);
                let sum: f32 = (0..factor)
                    .flat_map(|i| (0..factor).map(move |j| (y0 + 2 * i, x0 + 2 * j)))
                    .map(|(yy, xx)| self.data[yy * self.width + xx])
                    .sum();
                *out = sum / (factor * factor) as f32;
            }
        }
        Self::new(width, height, data)
    }

    /// The samples of the window of `width` x `height` at (`x`, `y`), row-major; an error where it
    /// leaves the mosaic.
    pub fn window(&self, x: usize, y: usize, width: usize, height: usize) -> Result<Vec<f32>> {
        if x + width > self.width || y + height > self.height {
            return Err(Error::invalid(format!(
                "a {width}x{height} window at ({x}, {y}) leaves the {}x{} mosaic",
                self.width, self.height
            )));
        }
        Ok((y..y + height)
            .flat_map(|r| &self.data[r * self.width + x..r * self.width + x + width])
            .copied()
            .collect())
    }

    /// The mosaic coloured by its filter (each sample shown in its site's colour), as RGBA8 for
    /// display: what a sensor "sees" before any processing.
    pub fn mosaic_rgba(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.width * self.height * 4];
        for (i, (&v, px)) in self.data.iter().zip(out.chunks_exact_mut(4)).enumerate() {
            let site = BayerSite::at(i / self.width, i % self.width);
            px[site.channel()] = crate::codecs::to_byte(v);
            px[3] = 255;
        }
        out
    }
}

/// Checks the sides of a mosaic: non-zero, even, and below [`MAX_SIDE`].
pub fn check_size(width: usize, height: usize) -> Result<()> {
    check_bounds(width, height)?;
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(Error::invalid(format!(
            "a {width}x{height} mosaic does not hold whole 2x2 RGGB cells: width and height must be even"
        )));
    }
    Ok(())
}

/// Checks the sides of any image the lab reads: non-zero and below [`MAX_SIDE`].
pub fn check_bounds(width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::invalid("an image cannot be empty"));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::invalid(format!(
            "a {width}x{height} image is larger than the {MAX_SIDE}x{MAX_SIDE} the lab accepts; crop it first"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_follow_rggb() {
        assert_eq!(BayerSite::at(0, 0), BayerSite::Red);
        assert_eq!(BayerSite::at(0, 1), BayerSite::GreenRed);
        assert_eq!(BayerSite::at(1, 0), BayerSite::GreenBlue);
        assert_eq!(BayerSite::at(3, 3), BayerSite::Blue);
        assert_eq!(BayerSite::at(2, 5).channel(), 1);
    }

    #[test]
    fn rejects_odd_empty_and_huge_tiles() {
        assert!(RawTile::new(3, 2, vec![0.0; 6]).is_err());
        assert!(RawTile::new(0, 0, vec![]).is_err());
        assert!(RawTile::new(2, 2, vec![0.0; 3]).is_err());
        assert!(RawTile::new(2, 2, vec![0.0, f32::NAN, 0.0, 0.0]).is_err());
        assert!(check_size(MAX_SIDE + 2, 2).is_err());
    }

    #[test]
    fn binning_averages_each_colour_and_keeps_rggb() {
        // 4x4: each sample is 10 * its site's channel index + its block position
        let data: Vec<f32> = (0..16)
            .map(|i| {
                let (y, x) = (i / 4, i % 4);
                (BayerSite::at(y, x).index() * 10 + (y / 2) * 2 + x / 2) as f32
            })
            .collect();
        let tile = RawTile::new(4, 4, data).unwrap();
        let binned = tile.binned(2).unwrap();
        assert_eq!((binned.width(), binned.height()), (2, 2));
        // each site averages positions 0, 1, 2, 3 of its colour: 1.5 above 10 * site
        assert_eq!(binned.data(), &[1.5, 11.5, 21.5, 31.5]);
        assert_eq!(tile.binned(1).unwrap(), tile);
        assert_eq!(
            tile.window(1, 2, 2, 2).unwrap(),
            [
                tile.data()[9],
                tile.data()[10],
                tile.data()[13],
                tile.data()[14]
            ]
        );
        assert!(tile.window(3, 0, 2, 2).is_err());
    }

    #[test]
    fn mosaic_rgba_tints_each_site() {
        let tile = RawTile::new(2, 2, vec![1.0, 0.5, 0.5, 0.0]).unwrap();
        let rgba = tile.mosaic_rgba();
        assert_eq!(&rgba[0..4], &[255, 0, 0, 255]);
        assert_eq!(&rgba[4..8], &[0, 128, 0, 255]);
        assert_eq!(&rgba[12..16], &[0, 0, 0, 255]);
    }
}
