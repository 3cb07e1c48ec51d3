//! Labelled synthetic raw data, deterministic from (seed, index): cell-like blobs of four classes
//! for classification, car-like rectangles on textured ground with exact masks for segmentation.
//! Scenes are drawn in display RGB and turned into raw by the inverse ISP, then scaled to an
//! intensity level and given shot and read noise, as a sensor would record them (Brooks et al.
//! 2019), and quantised to 16 bits like the datasets' TIFFs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::data::Task;
use crate::isp::unprocess::unprocess;
use crate::raw::intensity::scale_intensity;
use crate::raw::{CameraParams, RawTile};
use crate::Result;

/// The classification classes, in label order.
pub const CELL_CLASSES: [&str; 4] = ["round", "lobed", "ring", "granular"];

/// One labelled raw tile.
#[derive(Debug, Clone)]
pub struct Sample {
    pub raw: RawTile,
    /// The class index (classification).
    pub label: Option<usize>,
    /// 1 where a car is, row-major (segmentation).
    pub mask: Option<Vec<u8>>,
}

/// The camera synthetic tiles are unprocessed with: Raw-Drone's, whose white balance and colour
/// matrix are well conditioned (Raw-Microscopy's negative red gain would clip the scenes' red).
pub fn camera() -> CameraParams {
    CameraParams::drone()
}

fn rng_for(seed: u64, index: usize) -> ChaCha8Rng {
    // distinct, reproducible streams per sample, so samples can be made lazily and in any order
    ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64)
}

/// Sample `index` of the dataset `(task, seed)` at `size`x`size` pixels and `intensity` percent.
/// Classes are balanced: sample i has class i mod 4.
pub fn sample(task: Task, seed: u64, index: usize, size: usize, intensity: f64) -> Result<Sample> {
    let mut rng = rng_for(seed, index);
    let (rgb, label, mask) = match task {
        Task::Classification => {
            let class = index % CELL_CLASSES.len();
            (cell_scene(&mut rng, size, class), Some(class), None)
        }
        Task::Segmentation => {
            let (rgb, mask) = car_scene(&mut rng, size);
            (rgb, None, Some(mask))
        }
    };
    let camera = camera();
    let clean = unprocess(&rgb, size, size, &camera)?;
    let dimmed = scale_intensity(&clean, intensity, &camera)?;
    Ok(Sample {
        raw: add_noise(&dimmed, &mut rng)?,
        label,
        mask,
    })
}

/// Shot noise (variance proportional to the signal) and read noise (constant variance), with
/// levels drawn log-uniformly per tile as in Brooks et al.; clipped and quantised to 16 bits.
fn add_noise(tile: &RawTile, rng: &mut ChaCha8Rng) -> Result<RawTile> {
    let shot = (rng.random_range((1e-4f64).ln()..(1.2e-3f64).ln())).exp();
    let read = (rng.random_range((1e-6f64).ln()..(1e-5f64).ln())).exp();
    let unit = Normal::new(0.0, 1.0).expect("a unit normal");
    let data = tile
        .data()
        .iter()
        .map(|&v| {
            let v = v as f64;
            let noisy = v + (shot * v.max(0.0) + read).sqrt() * unit.sample(rng);
            ((noisy.clamp(0.0, 1.0) * 65535.0).round() / 65535.0) as f32
        })
        .collect();
    RawTile::new(tile.width(), tile.height(), data)
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t)
}

/// A blood-smear-like cell: pale background, pink cytoplasm, a purple nucleus whose shape is the
/// class (one round body; three lobes; a ring; a round body under dark granules).
fn cell_scene(rng: &mut ChaCha8Rng, size: usize, class: usize) -> Vec<f32> {
    let s = size as f32;
    let background = [0.93, 0.86, 0.93];
    let cytoplasm = lerp([0.86, 0.66, 0.78], [0.80, 0.60, 0.76], rng.random());
    let nucleus = lerp([0.42, 0.22, 0.55], [0.32, 0.16, 0.48], rng.random());
    let (cx, cy) = (
        s * rng.random_range(0.42..0.58),
        s * rng.random_range(0.42..0.58),
    );
    let cell_r = s * rng.random_range(0.30..0.38);
    let nucleus_r = cell_r * rng.random_range(0.42..0.55);
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let granules: Vec<(f32, f32)> = (0..40)
        .map(|_| {
            let (a, r) = (
                rng.random_range(0.0..std::f32::consts::TAU),
                cell_r * rng.random_range(0.0f32..0.9).sqrt(),
            );
            (cx + r * a.cos(), cy + r * a.sin())
        })
        .collect();
    let granule_r = s * 0.025;
    let mut rgb = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let (dx, dy) = (px - cx, py - cy);
            let d = (dx * dx + dy * dy).sqrt();
            let in_nucleus = match class {
                0 => d < nucleus_r,
                1 => (0..3).any(|k| {
                    let a = angle + k as f32 * std::f32::consts::TAU / 3.0;
                    let (lx, ly) = (
                        cx + 0.55 * nucleus_r * a.cos(),
                        cy + 0.55 * nucleus_r * a.sin(),
                    );
                    ((px - lx).powi(2) + (py - ly).powi(2)).sqrt() < 0.55 * nucleus_r
                }),
                2 => d < nucleus_r && d > 0.6 * nucleus_r,
                _ => d < 0.8 * nucleus_r,
            };
            let granule = class == 3
                && granules
                    .iter()
                    .any(|&(gx, gy)| (px - gx).powi(2) + (py - gy).powi(2) < granule_r * granule_r);
            // soft cell edge
            let edge = ((cell_r - d) / 2.0).clamp(0.0, 1.0);
            let mut colour = lerp(background, cytoplasm, edge);
            if in_nucleus {
                colour = nucleus;
            }
            if granule && d < cell_r {
                colour = lerp(colour, [0.35, 0.10, 0.30], 0.8);
            }
            rgb.extend_from_slice(&colour);
        }
    }
    rgb
}

/// Aerial ground (grass and asphalt with texture) with one to four cars; the mask marks car pixels.
fn car_scene(rng: &mut ChaCha8Rng, size: usize) -> (Vec<f32>, Vec<u8>) {
    let s = size as f32;
    let grass = [0.30, 0.42, 0.22];
    let asphalt = [0.36, 0.36, 0.38];
    let road_from = rng.random_range(0.2..0.5) * s;
    let road_to = road_from + rng.random_range(0.3..0.45) * s;
    let phase: f32 = rng.random_range(0.0..10.0);
    let mut cars = Vec::new();
    for _ in 0..rng.random_range(1..=4) {
        let (w, h) = if rng.random_bool(0.5) {
            (0.10 * s, 0.20 * s)
        } else {
            (0.20 * s, 0.10 * s)
        };
        let (x0, y0) = (
            rng.random_range(0.0..s - w),
            rng.random_range(road_from..(road_to - h).max(road_from + 1.0)),
        );
        let colour = match rng.random_range(0..4) {
            0 => [0.85, 0.85, 0.86],
            1 => [0.55, 0.08, 0.08],
            2 => [0.10, 0.14, 0.35],
            _ => [0.12, 0.12, 0.13],
        };
        cars.push((x0, y0, w, h, colour));
    }
    let mut rgb = Vec::with_capacity(size * size * 3);
    let mut mask = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let texture = 0.04 * ((px * 0.37 + phase).sin() * (py * 0.29 - phase).cos());
            let base = if py >= road_from && py < road_to {
                asphalt
            } else {
                grass
            };
            let mut colour = base.map(|c| (c + texture).clamp(0.0, 1.0));
            let mut car = 0u8;
            for &(x0, y0, w, h, c) in &cars {
                if px >= x0 && px < x0 + w && py >= y0 && py < y0 + h {
                    // a darker windscreen band across the car's length
                    let along = if w < h { (py - y0) / h } else { (px - x0) / w };
                    colour = if (0.25..0.4).contains(&along) {
                        c.map(|v| v * 0.35)
                    } else {
                        c
                    };
                    car = 1;
                }
            }
            rgb.extend_from_slice(&colour);
            mask.push(car);
        }
    }
    (rgb, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_deterministic_labelled_and_in_range() {
        let a = sample(Task::Classification, 7, 5, 32, 100.0).unwrap();
        let b = sample(Task::Classification, 7, 5, 32, 100.0).unwrap();
        assert_eq!(a.raw, b.raw);
        assert_eq!(a.label, Some(1));
        assert!(a.raw.data().iter().all(|v| (0.0..=1.0).contains(v)));
        let other = sample(Task::Classification, 8, 5, 32, 100.0).unwrap();
        assert_ne!(a.raw, other.raw);
    }

    #[test]
    fn segmentation_masks_mark_cars() {
        let s = sample(Task::Segmentation, 1, 0, 64, 100.0).unwrap();
        let mask = s.mask.unwrap();
        let cars = mask.iter().filter(|&&m| m == 1).count();
        assert!(cars > 64 && cars < 64 * 64 / 2, "{cars} car pixels");
    }

    #[test]
    fn less_light_means_a_darker_mosaic() {
        let bright = sample(Task::Segmentation, 3, 2, 32, 100.0).unwrap().raw;
        let dim = sample(Task::Segmentation, 3, 2, 32, 10.0).unwrap().raw;
        let mean = |t: &RawTile| t.data().iter().sum::<f32>() / t.data().len() as f32;
        assert!(mean(&dim) < 0.5 * mean(&bright));
    }
}
