//! Every bound on what enters the lab, in one table: page controls and URL state, CLI flags,
//! dropped files and archive entries all pass through these checks, and each refusal names the
//! limit it hit. The bounds keep a session within what a browser tab can hold (4 GB of wasm
//! memory) and every size product far from overflow on wasm32.

use crate::{Error, Result};

/// An inclusive range of whole numbers, with the name the messages use.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub name: &'static str,
    pub min: u64,
    pub max: u64,
}

impl Bound {
    /// `value` if it lies within the bound, else an error naming the bound.
    pub fn check(&self, value: u64) -> Result<u64> {
        if (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(Error::invalid(format!(
            "{} {value} is outside the lab's limits ({} to {})",
            self.name, self.min, self.max
        )))
    }

    /// As [`Bound::check`], for a `usize`.
    pub fn check_usize(&self, value: usize) -> Result<usize> {
        self.check(value as u64).map(|v| v as usize)
    }
}

/// Side of any image the lab decodes (width and height).
pub const IMAGE_SIDE: Bound = Bound {
    name: "an image side (px)",
    min: 1,
    max: 8192,
};
/// Pixels of a camera raw (DNG) the lab decodes, checked before its pixels are: 64 Mi, room for
/// today's sensors (the drone's is 20 MP) while the u16 and f32 copies stay within a tab.
pub const DNG_PIXELS: Bound = Bound {
    name: "a camera raw's pixels",
    min: 1,
    max: 1 << 26,
};
/// Side of a tile the lab loads (a file, an archive entry): the processing's filters reach 2 px
/// around each pixel, and the demosaicing's 2x2 cells must repeat.
pub const TILE_SIDE: Bound = Bound {
    name: "a tile side (px)",
    min: 8,
    max: 8192,
};
/// Side of the tiles a session trains on: every model's downsampling needs 16 px, and a batch of
/// 1024 px tiles already fills a page's memory.
pub const TRAIN_SIDE: Bound = Bound {
    name: "the training tile side (px)",
    min: 16,
    max: 1024,
};
/// Side of synthetic tiles.
pub const SYNTHETIC_SIDE: Bound = Bound {
    name: "the synthetic tile side (px)",
    min: 16,
    max: 1024,
};
/// Tiles of a synthetic set (the datasets hold 548 and 940).
pub const SYNTHETIC_TILES: Bound = Bound {
    name: "the number of synthetic tiles",
    min: 4,
    max: 4096,
};
/// Tiles streamed from Zenodo in one go.
pub const FETCH_TILES: Bound = Bound {
    name: "the number of tiles to fetch",
    min: 1,
    max: 10_000,
};
pub const BATCH: Bound = Bound {
    name: "the batch",
    min: 1,
    max: 1024,
};
/// Pixels of one batch (batch x tile area): what the memory of a step scales with.
pub const BATCH_PIXELS: Bound = Bound {
    name: "the batch's pixels (batch x tile area)",
    min: 1,
    max: 1 << 26,
};
/// Steps of a training phase, or of an attack.
pub const STEPS: Bound = Bound {
    name: "the steps",
    min: 1,
    max: 1_000_000,
};
/// Seeds: whole numbers a JavaScript number holds exactly (up to Number.MAX_SAFE_INTEGER).
pub const SEED: Bound = Bound {
    name: "the seed",
    min: 0,
    max: (1 << 53) - 1,
};
/// Snapshot interval (0: none).
pub const SNAPSHOT_EVERY: Bound = Bound {
    name: "the snapshot interval",
    min: 0,
    max: 1_000_000,
};
/// The intensity levels (percent) of the paper's datasets, folder `raw_scaleNNN`.
pub const INTENSITY_LEVELS: [u32; 7] = [1, 5, 10, 25, 50, 75, 100];
/// The intensity a stream or a fetch takes where none is given: the full light.
pub const FULL_INTENSITY: u32 = 100;
/// ImageNet-C's corruption severities.
pub const CORRUPTION_SEVERITY: Bound = Bound {
    name: "the corruption severity",
    min: 1,
    max: 5,
};
/// Intensity levels, in percent of the full signal.
pub const INTENSITY: Bound = Bound {
    name: "an intensity (%)",
    min: 1,
    max: 100,
};
/// Bytes of one archive entry or one dropped file (an 8192 px square of 16-bit samples, with
/// room); larger entries of an archive are skipped unread, which also bounds a zip bomb.
pub const ENTRY_BYTES: Bound = Bound {
    name: "a file's size (bytes)",
    min: 1,
    max: 160 << 20,
};
/// Bytes of a weights file a session starts from (torchvision's and smp's ResNet models are
/// 45 to 105 MB).
pub const WEIGHTS_BYTES: Bound = Bound {
    name: "a weights file's bytes",
    min: 1,
    max: 512 << 20,
};
/// Values of one array the lab reads or writes (.npy, safetensors).
pub const ARRAY_VALUES: Bound = Bound {
    name: "an array's values",
    min: 1,
    max: 1 << 26,
};

/// A real-valued setting: finite and within `[min, max]`.
pub fn check_real(name: &str, value: f64, (min, max): (f64, f64)) -> Result<f64> {
    if value.is_finite() && (min..=max).contains(&value) {
        return Ok(value);
    }
    Err(Error::invalid(format!(
        "{name} {value} is outside the lab's limits ({min} to {max})"
    )))
}

/// Learning rates (model and processing).
pub const LEARNING_RATE: (f64, f64) = (1e-8, 10.0);
/// AdamW's weight decay.
pub const WEIGHT_DECAY: (f64, f64) = (0.0, 1.0);
/// Forensics' weight of the distance to the default processing.
pub const LAMBDA: (f64, f64) = (0.0, 1e6);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_limit() {
        assert_eq!(BATCH.check(8).unwrap(), 8);
        let err = BATCH.check(0).unwrap_err().to_string();
        assert!(
            err.contains("the batch 0") && err.contains("1 to 1024"),
            "{err}"
        );
        let err = check_real("the learning rate", f64::NAN, LEARNING_RATE)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NaN"), "{err}");
        assert!(check_real("lambda", -1.0, LAMBDA).is_err());
        assert_eq!(check_real("lambda", 0.5, LAMBDA).unwrap(), 0.5);
    }

    /// The largest batch and image the bounds allow count their bytes within wasm32's usize
    /// (larger products, such as the ISP's arenas, are computed in u64).
    #[test]
    fn the_largest_batch_and_image_stay_within_wasm32_sizes() {
        assert!(BATCH_PIXELS.max * 3 * 4 < u32::MAX as u64);
        assert!(IMAGE_SIDE.max * IMAGE_SIDE.max * 8 < u32::MAX as u64);
        assert!(ARRAY_VALUES.max * 8 < u32::MAX as u64);
        assert!(DNG_PIXELS.max * (2 + 4) < u32::MAX as u64);
    }
}
