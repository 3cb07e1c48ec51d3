//! A sensor's photon statistics. The light reaching each photosite becomes a Poisson number of
//! electrons (shot noise), the read-out adds Gaussian read noise, and the charge is scaled to the
//! raw range with a fixed gain and quantised. Recording the same scene with less light, as the
//! datasets' intensity levels do, keeps the gain: the tile gets darker and its noise relatively
//! larger (signal-to-noise falls as the square root of the light), which is what makes low
//! intensities hard for a model trained on bright tiles.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

use super::intensity::{check_percent, map_signal};
use super::{CameraParams, RawTile};
use crate::{Error, Result};

/// The photon statistics of one camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensor {
    /// Electrons at full scale (raw value 1 above the black level) at 100 % light.
    pub full_well: f64,
    /// Read noise, electrons (standard deviation).
    pub read_noise: f64,
    /// Bits of the raw values (the datasets' TIFFs hold 16).
    pub bits: u32,
}

impl Sensor {
    /// The noise-free mosaic `clean` (raw values with the camera's black level, as recorded with
    /// all the light) recorded with `percent` of the light. `seed` makes the noise reproducible:
    /// a tile at one level is the same every time it is asked for.
    pub fn record(
        &self,
        clean: &RawTile,
        camera: &CameraParams,
        percent: f64,
        seed: u64,
    ) -> Result<RawTile> {
        check_percent(percent)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ percent.to_bits());
        let electrons_per_unit = self.full_well * percent / 100.0;
        let read = Normal::new(0.0, self.read_noise).map_err(|e| Error::invalid(e.to_string()))?;
        let levels = ((1u64 << self.bits) - 1) as f64;
        map_signal(clean, camera, |signal, black| {
            let mean = signal.max(0.0) * electrons_per_unit;
            let electrons = match Poisson::new(mean) {
                Ok(p) => p.sample(&mut rng),
                // a mean of zero (black) collects no photons
                Err(_) => 0.0,
            };
            let value = black + (electrons + read.sample(&mut rng)) / self.full_well;
            // the sensor's range and its bits
            (value.clamp(0.0, 1.0) * levels).round() / levels
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::BayerSite;

    fn stats(tile: &RawTile) -> (f64, f64) {
        let d = tile.data();
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
        let var = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d.len() as f64;
        (mean, var)
    }

    #[test]
    fn less_light_is_darker_and_relatively_noisier() {
        let camera = CameraParams::drone();
        let sensor = Sensor {
            full_well: 4000.0,
            read_noise: 3.0,
            bits: 16,
        };
        // a flat grey field 0.4 above the black level on every site
        let flat: Vec<f32> = (0..64 * 64)
            .map(|i| (camera.black_level[BayerSite::at(i / 64, i % 64).index()] + 0.4) as f32)
            .collect();
        let clean = RawTile::new(64, 64, flat).unwrap();
        let signal = |t: &RawTile| {
            let (mean, var) = stats(t);
            (mean - 0.0625, var.sqrt())
        };
        let (bright, bright_sd) = signal(&sensor.record(&clean, &camera, 100.0, 1).unwrap());
        let (dim, dim_sd) = signal(&sensor.record(&clean, &camera, 10.0, 1).unwrap());
        // shot noise: 1600 electrons give sd 40 e (0.01); 160 give ~12.6 e (0.0032) plus read noise
        assert!((bright - 0.4).abs() < 2e-3, "{bright}");
        assert!((dim - 0.04).abs() < 1e-3, "{dim}");
        assert!((bright_sd - 0.01).abs() < 1e-3, "{bright_sd}");
        let expected_dim = (160.0f64 + 9.0).sqrt() / 4000.0;
        assert!(
            (dim_sd - expected_dim).abs() < 4e-4,
            "{dim_sd} vs {expected_dim}"
        );
        assert!(dim / dim_sd < 0.5 * bright / bright_sd);
        // reproducible per seed and level
        assert_eq!(
            sensor.record(&clean, &camera, 10.0, 1).unwrap(),
            sensor.record(&clean, &camera, 10.0, 1).unwrap()
        );
        assert!(sensor.record(&clean, &camera, 0.0, 1).is_err());
    }
}
