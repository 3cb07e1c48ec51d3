//! Raw-Drone's classification set as the paper's code builds it from full images
//! (`binary_class_detection` in raw2logit's `utils/dataset.py`): per image, as many "no car" tiles
//! as "car" tiles, or every classified tile where asked.

use super::sample::sort_seeded;
use crate::raw::cut::{classification_label, renumbered, CutTile};
use crate::{Error, Result};

/// Which of an image's classified tiles Raw-Drone's classification set keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DroneBalance {
    /// The paper's rule: per image, as many "no car" tiles as "car" tiles, min(N, M) of each.
    #[default]
    Balanced,
    /// Every tile with a class, under its place in the image.
    All,
}

impl DroneBalance {
    /// `balanced` or `all`, as the CLI and the page name them.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "balanced" => Ok(Self::Balanced),
            "all" => Ok(Self::All),
            _ => Err(Error::invalid(format!(
                "the drone classification tiles are `balanced` (per image, as the paper) or `all`, \
                 not `{name}`"
            ))),
        }
    }

    /// The rule's name, as [`DroneBalance::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Balanced => "balanced",
            Self::All => "all",
        }
    }

    /// The rule in words, for the fetch's report and the dataset's label.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Balanced => "balanced per image (paper)",
            Self::All => "all tiles",
        }
    }
}

/// The seed of the balanced draw: the paper's `random_state = 72`.
pub const BALANCE_SEED: u64 = 72;

/// The classification set's tiles of image `image_index`, cut by [`cut_tiles`] with its mask: the
/// tiles with a class ([`classification_label`]; no mask, no class), then by `balance`.
/// [`DroneBalance::Balanced`] is `binary_class_detection`: of N "car" and M "no car" tiles it keeps
/// k = min(N, M) of each, drawn in the lab's seeded order ([`sort_seeded`] with [`BALANCE_SEED`]
/// over the tiles' places; numpy's `RandomState(72)` is not reproduced bit for bit), car tiles
/// first, each class in its order in the image, numbered anew `{image:02}_{i:05}`.
/// [`DroneBalance::All`] keeps every one under its place in the image.
pub fn classification_tiles(
    tiles: Vec<CutTile>,
    image_index: usize,
    balance: DroneBalance,
) -> Vec<CutTile> {
    let mut classes: [Vec<CutTile>; 2] = [Vec::new(), Vec::new()];
    for tile in tiles {
        if let Some(class) = tile.car_share.and_then(classification_label) {
            classes[class].push(tile);
        }
    }
    if balance == DroneBalance::All {
        let mut kept: Vec<CutTile> = classes.into_iter().flatten().collect();
        kept.sort_by(|a, b| a.name.cmp(&b.name));
        return kept;
    }
    let k = classes[0].len().min(classes[1].len());
    let kept = classes.into_iter().flat_map(|mut class| {
        sort_seeded(BALANCE_SEED, &mut class, |t| t.name.clone());
        class.truncate(k);
        // the names are the places in the image, zero-padded
        class.sort_by(|a, b| a.name.cmp(&b.name));
        class
    });
    renumbered(kept, image_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::cut::cut_tiles;
    use crate::raw::cut::tests::image;

    fn classified_image() -> Vec<CutTile> {
        let img = image(44, 4);
        let mut mask = vec![0u8; 176];
        for tile in [0, 4, 7] {
            mask[44 + tile * 4 + 1] = 1;
        }
        let mut tiles = cut_tiles(&img, Some(&mask), 0, 4).unwrap();
        tiles[2].car_share = Some(1.0 / 1600.0);
        tiles
    }

    #[test]
    fn the_balanced_set_keeps_as_many_empty_tiles_as_car_tiles_car_first() {
        let tiles = classified_image();
        let names = |kept: &[CutTile]| kept.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        let kept = classification_tiles(tiles.clone(), 0, DroneBalance::Balanced);
        assert_eq!(
            names(&kept),
            ["00_00000", "00_00001", "00_00002", "00_00003", "00_00004", "00_00005"]
        );
        let labels: Vec<_> = kept
            .iter()
            .map(|t| classification_label(t.car_share.unwrap()))
            .collect();
        assert_eq!(
            labels,
            [Some(0), Some(0), Some(0), Some(1), Some(1), Some(1)]
        );
        // the car tiles in their order in the image; three of the seven empty ones, drawn
        let car: Vec<f32> = [0, 4, 7].map(|i| tiles[i].raw.data()[0]).to_vec();
        let first: Vec<f32> = kept.iter().map(|t| t.raw.data()[0]).collect();
        assert_eq!(first[..3], car[..]);
        let empty: Vec<f32> = [1, 3, 5, 6, 8, 9, 10]
            .map(|i| tiles[i].raw.data()[0])
            .to_vec();
        assert!(first[3..].iter().all(|v| empty.contains(v)), "{first:?}");
        assert!(first[3..].windows(2).all(|w| w[0] < w[1]), "{first:?}");
        // the ambiguous tile never; the same draw every time
        assert!(!first.contains(&tiles[2].raw.data()[0]));
        assert_eq!(
            kept,
            classification_tiles(tiles.clone(), 0, DroneBalance::Balanced)
        );

        let all = classification_tiles(tiles.clone(), 0, DroneBalance::All);
        let all_names = names(&all);
        assert_eq!(all.len(), 10);
        assert!(!all_names.contains(&"00_00002".to_string()));
        assert_eq!(all_names[..3], ["00_00000", "00_00001", "00_00003"]);

        // no class without a mask; an image without empty tiles gives none
        let unmasked = cut_tiles(&image(44, 4), None, 0, 4).unwrap();
        assert!(classification_tiles(unmasked, 0, DroneBalance::All).is_empty());
        let full = cut_tiles(&image(8, 4), Some(&[1; 32]), 3, 4).unwrap();
        assert!(classification_tiles(full, 3, DroneBalance::Balanced).is_empty());
    }

    #[test]
    fn balance_rules_parse_and_describe_themselves() {
        for balance in [DroneBalance::Balanced, DroneBalance::All] {
            assert_eq!(DroneBalance::parse(balance.name()).unwrap(), balance);
        }
        assert_eq!(DroneBalance::default(), DroneBalance::Balanced);
        assert_eq!(
            DroneBalance::Balanced.describe(),
            "balanced per image (paper)"
        );
        let e = DroneBalance::parse("paper").unwrap_err().to_string();
        assert!(e.contains("`paper`") && e.contains("`all`"), "{e}");
    }
}
