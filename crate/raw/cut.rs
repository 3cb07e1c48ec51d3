//! Full images (and their masks) cut into tiles as the paper's code cuts Raw-Drone
//! (raw2logit `dataset.py`, `create_tiles_dataset` and `create_tiles_dataset_binary`, with
//! `utils/dataset_utils.py` `split_img`):
//!
//! - the images are numbered from 0 in the order of their sorted file names (`list_images_in_dir`);
//! - each image is cut into side x side tiles at multiples of the side, row by row (scikit-image's
//!   `view_as_windows` with the step equal to the window, flattened); the right and bottom
//!   remainders that do not fill a tile are dropped;
//! - a tile is named `{image:02}_{tile:05}`;
//! - a tile's car share is the mean of its mask after `mask > 0`.
//!
//! Segmentation (`create_tiles_dataset`) keeps the tiles with any car pixel and numbers them
//! anew from 0 ([`keep_car_tiles`]). Classification (`create_tiles_dataset_binary`, with
//! `binary_class_detection`) labels a tile "car" when its share exceeds [`CAR_SHARE`] and "no car"
//! when it has no car pixel, leaves the tiles in between out ([`classification_label`]), then
//! balances the two classes per image ([`classification_tiles`]).

use super::tile::RawTile;
use crate::{Error, Result};

/// The share of car pixels above which a tile is a "car" tile (`thr = 0.01` in
/// `DroneDatasetClassificationTiled`).
pub const CAR_SHARE: f64 = 0.01;

/// One tile of a full image, with its mask and car share when the image has a mask.
#[derive(Debug, Clone, PartialEq)]
pub struct CutTile {
    /// `{image:02}_{tile:05}`, the tile counted row by row over the image.
    pub name: String,
    pub raw: RawTile,
    /// {0, 1}, row-major.
    pub mask: Option<Vec<u8>>,
    /// The tile's mean of `mask > 0`.
    pub car_share: Option<f64>,
}

/// The classes of Raw-Drone classification, as the paper names them (`classification_label`'s
/// indices).
pub const CLASSES: [&str; 2] = ["car", "no car"];

/// A mask's share of car pixels (`mask > 0`, then the mean).
pub fn car_share(mask: &[u8]) -> f64 {
    mask.iter().filter(|&&m| m > 0).count() as f64 / mask.len().max(1) as f64
}

/// Whether a tile is a "car" tile: a share strictly above [`CAR_SHARE`] (`m > thr` in
/// `binary_class_detection`).
pub fn has_car(share: f64) -> bool {
    share > CAR_SHARE
}

/// The paper's classification label (classes `['car', 'no car']`): 0 above [`CAR_SHARE`], 1 for
/// no car pixel at all, none in between (those tiles are left out).
pub fn classification_label(share: f64) -> Option<usize> {
    if has_car(share) {
        Some(0)
    } else if share == 0.0 {
        Some(1)
    } else {
        None
    }
}

/// A tile's name in the paper's files.
pub fn tile_name(image_index: usize, tile_index: usize) -> String {
    format!("{image_index:02}_{tile_index:05}")
}

/// Every side x side tile of `image` (and of its full-size `mask`, car where > 0), row by row.
/// `image_index` is the image's place (from 0) among the data set's sorted file names. The side
/// must be even so that every tile starts on a red site.
pub fn cut_tiles(
    image: &RawTile,
    mask: Option<&[u8]>,
    image_index: usize,
    side: usize,
) -> Result<Vec<CutTile>> {
    let (width, height) = (image.width(), image.height());
    if side == 0 || !side.is_multiple_of(2) {
        return Err(Error::invalid(format!(
            "tiles of {side} px cannot keep the RGGB pattern: the side must be even and positive"
        )));
    }
    if let Some(mask) = mask {
        if mask.len() != width * height {
            return Err(Error::invalid(format!(
                "the mask holds {} pixels, the {width}x{height} image {}: they must be the same \
                 size",
                mask.len(),
                width * height
            )));
        }
    }
    let (rows, cols) = (height / side, width / side);
    let mut tiles = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let window = |y: usize| {
                (r * side + y) * width + c * side..(r * side + y) * width + (c + 1) * side
            };
            let raw: Vec<f32> = (0..side)
                .flat_map(|y| &image.data()[window(y)])
                .copied()
                .collect();
            let mask: Option<Vec<u8>> = mask.map(|m| {
                (0..side)
                    .flat_map(|y| &m[window(y)])
                    .map(|&v| u8::from(v > 0))
                    .collect()
            });
            tiles.push(CutTile {
                name: tile_name(image_index, r * cols + c),
                raw: RawTile::new(side, side, raw)?,
                car_share: mask.as_deref().map(car_share),
                mask,
            });
        }
    }
    Ok(tiles)
}

/// The side x side tile at the centre of `image` (smaller sides when the image is smaller), at
/// even offsets so that it starts on a red site: a quick look at a full image.
pub fn centre_tile(image: &RawTile, side: usize) -> Result<RawTile> {
    let (width, height) = (image.width(), image.height());
    let (w, h) = (side.min(width) & !1, side.min(height) & !1);
    let (x0, y0) = (((width - w) / 2) & !1, ((height - h) / 2) & !1);
    let data = (y0..y0 + h)
        .flat_map(|y| &image.data()[y * width + x0..y * width + x0 + w])
        .copied()
        .collect();
    RawTile::new(w, h, data)
}

/// The segmentation set's tiles of one image: those with any car pixel, numbered anew from 0 in
/// their order (`class_detection`, then `enumerate` in `create_tiles_dataset`).
pub fn keep_car_tiles(tiles: Vec<CutTile>, image_index: usize) -> Vec<CutTile> {
    renumbered(
        tiles
            .into_iter()
            .filter(|t| t.car_share.is_some_and(|s| s > 0.0)),
        image_index,
    )
}

/// `tiles` numbered anew in order, `{image:02}_{i:05}`.
pub fn renumbered(tiles: impl IntoIterator<Item = CutTile>, image_index: usize) -> Vec<CutTile> {
    tiles
        .into_iter()
        .enumerate()
        .map(|(i, t)| CutTile {
            name: tile_name(image_index, i),
            ..t
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test image whose samples are their places (in millionths).
    pub(crate) fn image(width: usize, height: usize) -> RawTile {
        RawTile::new(
            width,
            height,
            (0..width * height).map(|i| i as f32 / 1e6).collect(),
        )
        .unwrap()
    }

    #[test]
    fn tiles_go_row_by_row_and_drop_the_remainders() {
        let img = image(10, 10);
        let tiles = cut_tiles(&img, None, 3, 4).unwrap();
        let names: Vec<_> = tiles.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["03_00000", "03_00001", "03_00002", "03_00003"]);
        // tile 1 is row 0, columns 4..8; tile 2 is rows 4..8, columns 0..4
        assert_eq!(tiles[1].raw.data()[0], img.data()[4]);
        assert_eq!(tiles[2].raw.data()[0], img.data()[4 * 10]);
        assert_eq!(tiles[3].raw.data()[5], img.data()[5 * 10 + 5]);
        assert!(tiles
            .iter()
            .all(|t| t.mask.is_none() && t.car_share.is_none()));
    }

    #[test]
    fn car_shares_labels_and_the_segmentation_set() {
        let img = image(8, 4);
        let mut mask = vec![0u8; 32];
        mask[0] = 255; // one car pixel of 16 in tile 0
        for y in 0..4 {
            mask[y * 8 + 4] = 1; // a column of tile 1
        }
        let tiles = cut_tiles(&img, Some(&mask), 0, 4).unwrap();
        assert_eq!(tiles[0].car_share, Some(1.0 / 16.0));
        assert_eq!(tiles[1].car_share, Some(4.0 / 16.0));
        assert_eq!(tiles[0].mask.as_ref().unwrap()[0], 1);
        let kept = keep_car_tiles(tiles, 0);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].name, "00_00001");

        assert!(has_car(0.0101) && !has_car(CAR_SHARE) && !has_car(0.0));
        assert_eq!(classification_label(0.5), Some(0));
        assert_eq!(classification_label(0.0), Some(1));
        assert_eq!(classification_label(0.005), None);
        assert_eq!(classification_label(CAR_SHARE), None);
    }

    /// A 44x4 image of eleven 4x4 tiles: 0, 4 and 7 with a car, 2 with a car share of 1/1600
    /// (0 < share <= 1%, set by hand: a 4 px tile cannot hold it), the seven others empty.
    #[test]
    fn the_centre_tile_starts_on_a_red_site() {
        let img = image(14, 10);
        let tile = centre_tile(&img, 4).unwrap();
        // (14 - 4) / 2 = 5 and (10 - 4) / 2 = 3, both moved down to even offsets
        assert_eq!((tile.width(), tile.height()), (4, 4));
        assert_eq!(tile.data()[0], img.data()[2 * 14 + 4]);
        let small = centre_tile(&img, 256).unwrap();
        assert_eq!(small, img);
        assert!(centre_tile(&img, 1).is_err());
    }

    #[test]
    fn odd_sides_and_mismatched_masks_are_refused() {
        let img = image(8, 8);
        assert!(cut_tiles(&img, None, 0, 3).is_err());
        assert!(cut_tiles(&img, None, 0, 0).is_err());
        let e = cut_tiles(&img, Some(&[0; 10]), 0, 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("same size"), "{e}");
        assert!(cut_tiles(&img, None, 0, 16).unwrap().is_empty());
    }
}
