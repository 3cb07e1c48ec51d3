//! The datasets' intensity levels: Raw-Microscopy and Raw-Drone hold every tile at 1, 5, 10, 25,
//! 50, 75 and 100 % of the light. Here that is a raw-domain scaling of the signal above the black
//! level, which is what less light does to a linear sensor (the black level, an electronic offset,
//! stays where it is).

use super::{BayerSite, CameraParams, RawTile};
use crate::{Error, Result};

pub use crate::spec::limits::INTENSITY_LEVELS as LEVELS;

/// The tile as it would have been recorded with `percent` of the light.
pub fn scale_intensity(tile: &RawTile, percent: f64, camera: &CameraParams) -> Result<RawTile> {
    check_percent(percent)?;
    let factor = percent / 100.0;
    map_signal(tile, camera, |signal, black| black + signal * factor)
}

/// An intensity is a percentage in (0, 100].
pub fn check_percent(percent: f64) -> Result<()> {
    if !(percent.is_finite() && percent > 0.0 && percent <= 100.0) {
        return Err(Error::invalid(format!(
            "an intensity is a percentage in (0, 100], got {percent}"
        )));
    }
    Ok(())
}

/// The tile with each site's value replaced by `f(signal above the black level, black level)`,
/// in pixel order.
pub fn map_signal(
    tile: &RawTile,
    camera: &CameraParams,
    mut f: impl FnMut(f64, f64) -> f64,
) -> Result<RawTile> {
    let w = tile.width();
    let data = tile
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let black = camera.black_level[BayerSite::at(i / w, i % w).index()];
            f(v as f64 - black, black) as f32
        })
        .collect();
    RawTile::new(w, tile.height(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_signal_above_black_level() {
        let camera = CameraParams::drone();
        let tile = RawTile::new(2, 2, vec![0.5625, 0.0626, 0.0625, 1.0]).unwrap();
        let half = scale_intensity(&tile, 50.0, &camera).unwrap();
        assert!((half.data()[0] - 0.3125).abs() < 1e-7);
        assert!((half.data()[1] - 0.0626).abs() < 1e-7, "black stays black");
        assert_eq!(scale_intensity(&tile, 100.0, &camera).unwrap(), tile);
        assert!(scale_intensity(&tile, 0.0, &camera).is_err());
        assert!(scale_intensity(&tile, 150.0, &camera).is_err());
    }
}
