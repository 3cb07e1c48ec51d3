//! Labelled synthetic raw data, deterministic from (seed, index), made the way a camera makes raw:
//! a scene in display RGB becomes the light on the sensor (the inverse ISP, Brooks et al. 2019),
//! the optics blur it, the Bayer mosaic samples it, and the sensor records it with shot and read
//! noise at the requested intensity ([`crate::raw::sensor`]).
//!
//! Classification scenes are blood-smear-like leukocytes of four kinds. As in a real smear, the
//! kinds overlap in size and nuclear shape; what tells them apart most reliably is fine: the
//! cytoplasm's granules (fine and lilac, coarse and orange, none) and its texture, at the scale
//! demosaicing, sharpening and denoising change. Segmentation scenes are aerial ground with small
//! cars and exact masks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::Task;
use crate::isp::static_pipeline::filters::gaussian_filter;
use crate::isp::unprocess::{mosaic, sensor_rgb};
use crate::raw::sensor::Sensor;
use crate::raw::{CameraParams, RawTile};
use crate::Result;

/// The classification classes, in label order (sorted, as a tile set sorts class names).
pub const CELL_CLASSES: [&str; 4] = ["eosinophil", "lymphocyte", "monocyte", "neutrophil"];

/// The synthetic camera's photon statistics: at full light a mid-grey collects ~1500 electrons
/// (signal-to-noise ~40); at the datasets' 1 % level, ~15 (~3).
pub const SENSOR: Sensor = Sensor {
    full_well: 5000.0,
    read_noise: 3.0,
    bits: 16,
};

/// The optics' point spread, a Gaussian of this standard deviation in pixels.
const OPTICS_SIGMA: f64 = 0.6;

/// The dimmest tile's light relative to the brightest's, at one nominal intensity.
const ILLUMINATION: f64 = 0.8;

/// One labelled scene as the sensor sees it, before noise: it can be recorded at any intensity.
#[derive(Debug, Clone)]
pub struct Scene {
    /// The mosaic at full light without noise (raw values with the black level).
    pub clean: RawTile,
    /// The class index (classification).
    pub label: Option<usize>,
    /// 1 where a car is, row-major (segmentation).
    pub mask: Option<Vec<u8>>,
    /// Seeds the sensor noise of this scene's recordings.
    pub noise_seed: u64,
}

impl Scene {
    /// The scene recorded with `percent` of the light.
    pub fn record(&self, percent: f64) -> Result<RawTile> {
        SENSOR.record(&self.clean, &camera(), percent, self.noise_seed)
    }
}

/// One labelled raw tile.
#[derive(Debug, Clone)]
pub struct Sample {
    pub raw: RawTile,
    pub label: Option<usize>,
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

/// Scene `index` of the dataset `(task, seed)` at `size`x`size` pixels. Classes are balanced:
/// scene i has class i mod 4.
pub fn scene(task: Task, seed: u64, index: usize, size: usize) -> Result<Scene> {
    let mut rng = rng_for(seed, index);
    let noise_seed = rng.random();
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
    // the illumination varies from tile to tile (a lamp's field, a slide's thickness, the sun
    // through haze), so that a tile set at one nominal intensity is not all equally bright
    let illumination = rng.random_range(ILLUMINATION..1.0);
    let camera = camera();
    let light = sensor_rgb(&rgb, size, size, &camera)?
        .map(|plane| gaussian_filter(&plane, [OPTICS_SIGMA; 2]).map(|v| v * illumination));
    Ok(Scene {
        clean: mosaic(&light, &camera)?,
        label,
        mask,
        noise_seed,
    })
}

/// Sample `index` of the dataset `(task, seed)` at `size`x`size` pixels and `intensity` percent.
pub fn sample(task: Task, seed: u64, index: usize, size: usize, intensity: f64) -> Result<Sample> {
    let scene = scene(task, seed, index, size)?;
    Ok(Sample {
        raw: scene.record(intensity)?,
        label: scene.label,
        mask: scene.mask,
    })
}

type Rgb = [f32; 3];

fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t)
}

/// A colour drawn around `c`: stains vary from smear to smear.
fn jitter(rng: &mut ChaCha8Rng, c: Rgb, amount: f32) -> Rgb {
    c.map(|v| (v + rng.random_range(-amount..amount)).clamp(0.0, 1.0))
}

/// Soft round spots (granules, chromatin clumps) splatted into a coverage map in [0, 1].
struct Spots {
    size: usize,
    cover: Vec<f32>,
}

impl Spots {
    fn new(size: usize) -> Self {
        Self {
            size,
            cover: vec![0.0; size * size],
        }
    }

    /// A Gaussian spot of standard deviation `sigma` px and peak `strength` at (x, y).
    fn add(&mut self, x: f32, y: f32, sigma: f32, strength: f32) {
        let reach = (3.0 * sigma).ceil() as isize;
        let (cx, cy) = (x.floor() as isize, y.floor() as isize);
        for py in (cy - reach).max(0)..=(cy + reach).min(self.size as isize - 1) {
            for px in (cx - reach).max(0)..=(cx + reach).min(self.size as isize - 1) {
                let (dx, dy) = (px as f32 + 0.5 - x, py as f32 + 0.5 - y);
                let w = strength * (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
                let c = &mut self.cover[py as usize * self.size + px as usize];
                *c = (*c + w).min(1.0);
            }
        }
    }

    fn at(&self, x: usize, y: usize) -> f32 {
        self.cover[y * self.size + x]
    }
}

/// A nucleus: lobes (discs joined by thin chromatin strands) or a disc with a bite (kidney).
struct Nucleus {
    lobes: Vec<(f32, f32, f32)>,
    /// A disc cut out of the nucleus (the monocyte's indentation), centre and radius.
    bite: Option<(f32, f32, f32)>,
    strand: f32,
}

impl Nucleus {
    fn contains(&self, x: f32, y: f32) -> bool {
        let in_disc = |&(cx, cy, r): &(f32, f32, f32)| (x - cx).powi(2) + (y - cy).powi(2) < r * r;
        if self.bite.as_ref().is_some_and(in_disc) {
            return false;
        }
        self.lobes.iter().any(in_disc)
            || self
                .lobes
                .windows(2)
                .any(|w| segment_distance((x, y), (w[0].0, w[0].1), (w[1].0, w[1].1)) < self.strand)
    }

    /// The nucleus of a leukocyte of `class` in the cell at (cx, cy) of radius `cell_r`, its
    /// lobes or indentation turned by `angle`.
    fn of_class(
        rng: &mut ChaCha8Rng,
        class: usize,
        (cx, cy): (f32, f32),
        cell_r: f32,
        angle: f32,
    ) -> Self {
        match class {
            1 => {
                let r = cell_r * rng.random_range(0.72..0.86);
                let (ox, oy) = (
                    cell_r * rng.random_range(-0.08..0.08),
                    cell_r * rng.random_range(-0.08..0.08),
                );
                let bite = r * rng.random_range(0.0..0.4);
                Nucleus {
                    lobes: vec![(cx + ox, cy + oy, r)],
                    bite: Some((
                        cx + ox + 1.1 * r * angle.cos(),
                        cy + oy + 1.1 * r * angle.sin(),
                        bite,
                    )),
                    strand: 0.0,
                }
            }
            2 => {
                let r = cell_r * rng.random_range(0.52..0.64);
                let bite = r * rng.random_range(0.3..0.7);
                Nucleus {
                    lobes: vec![(cx, cy, r)],
                    bite: Some((
                        cx + 1.05 * r * angle.cos(),
                        cy + 1.05 * r * angle.sin(),
                        bite,
                    )),
                    strand: 0.0,
                }
            }
            _ => {
                let count = if class == 0 {
                    rng.random_range(2..=3)
                } else {
                    rng.random_range(2..=5)
                };
                let lobe_r = cell_r * rng.random_range(0.22..0.30);
                let arc = cell_r * rng.random_range(0.35..0.5);
                let spread = rng.random_range(1.6..3.0f32);
                Nucleus {
                    lobes: (0..count)
                        .map(|k| {
                            let a = angle - spread / 2.0 + spread * k as f32 / (count - 1) as f32;
                            (cx + arc * a.cos(), cy + arc * a.sin(), lobe_r)
                        })
                        .collect(),
                    bite: None,
                    strand: cell_r * 0.06,
                }
            }
        }
    }
}

fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let len2 = (abx * abx + aby * aby).max(1e-6);
    let t = (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / len2).clamp(0.0, 1.0);
    ((p.0 - a.0 - t * abx).powi(2) + (p.1 - a.1 - t * aby).powi(2)).sqrt()
}

/// A point uniformly inside the disc (cx, cy, r).
fn in_disc(rng: &mut ChaCha8Rng, cx: f32, cy: f32, r: f32) -> (f32, f32) {
    let (a, d) = (
        rng.random_range(0.0..std::f32::consts::TAU),
        r * rng.random_range(0.0f32..1.0).sqrt(),
    );
    (cx + d * a.cos(), cy + d * a.sin())
}

/// A leukocyte among red cells on a pale smear background:
/// - eosinophil: two (sometimes three) lobes, cytoplasm packed with coarse orange granules;
/// - lymphocyte: a round dense nucleus (at most shallowly indented) filling most of a small cell,
///   a clear bluish rim;
/// - monocyte: a large cell, an indented nucleus, grey-blue cytoplasm with a fine ground-glass
///   texture and a few vacuoles;
/// - neutrophil: two to five lobes, pale cytoplasm with fine lilac granules.
fn cell_scene(rng: &mut ChaCha8Rng, size: usize, class: usize) -> Vec<f32> {
    let s = size as f32;
    let background = jitter(rng, [0.92, 0.87, 0.90], 0.02);
    let red_cell = jitter(rng, [0.90, 0.62, 0.64], 0.04);
    // red cells: discs with a paler centre, partly under the leukocyte
    let red_cells: Vec<(f32, f32, f32)> = (0..rng.random_range(3..8))
        .map(|_| {
            (
                rng.random_range(0.0..s),
                rng.random_range(0.0..s),
                s * rng.random_range(0.09..0.13),
            )
        })
        .collect();
    let (cx, cy) = (
        s * rng.random_range(0.44..0.56),
        s * rng.random_range(0.44..0.56),
    );
    let cell_r = s * match class {
        1 => rng.random_range(0.21..0.29),
        2 => rng.random_range(0.27..0.37),
        _ => rng.random_range(0.24..0.33),
    };
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let nucleus = Nucleus::of_class(rng, class, (cx, cy), cell_r, angle);
    let cytoplasm = match class {
        0 => jitter(rng, [0.88, 0.76, 0.80], 0.04),
        1 => jitter(rng, [0.78, 0.78, 0.90], 0.04),
        2 => jitter(rng, [0.80, 0.78, 0.88], 0.04),
        _ => jitter(rng, [0.86, 0.78, 0.86], 0.04),
    };
    let nucleus_colour = jitter(rng, [0.38, 0.22, 0.52], 0.05);
    // granules and vacuoles: fine (about a pixel at 64 px) or coarse, by class
    let mut granules = Spots::new(size);
    let unit = s / 64.0;
    let (count, sigma, strength) = match class {
        0 => (160.0, 0.75 * unit, 0.55),
        3 => (260.0, 0.4 * unit, 0.45),
        _ => (0.0, 1.0, 0.0),
    };
    let granule_colour = match class {
        0 => jitter(rng, [0.84, 0.50, 0.42], 0.04),
        _ => jitter(rng, [0.58, 0.40, 0.62], 0.04),
    };
    let area = (cell_r / (0.3 * s)).powi(2);
    for _ in 0..(count * area) as usize {
        let (x, y) = in_disc(rng, cx, cy, 0.95 * cell_r);
        granules.add(x, y, sigma.max(0.45), strength);
    }
    let mut pale = Spots::new(size);
    if class == 2 {
        for _ in 0..rng.random_range(1..5) {
            let (x, y) = in_disc(rng, cx, cy, 0.85 * cell_r);
            pale.add(x, y, 1.2 * unit, 0.8);
        }
    }
    // chromatin: darker clumps across the nucleus (coarse in lymphocytes)
    let mut chromatin = Spots::new(size);
    let clump = if class == 1 { 1.6 } else { 1.0 } * unit;
    for _ in 0..(60.0 * area) as usize {
        let (x, y) = in_disc(rng, cx, cy, cell_r);
        chromatin.add(x, y, clump, 0.6);
    }
    // the monocyte's ground glass: a fixed fine texture of the cytoplasm
    let glass: Vec<f32> = (0..size * size)
        .map(|_| {
            if class == 2 {
                rng.random_range(-0.06..0.06)
            } else {
                0.0
            }
        })
        .collect();
    Smear {
        background,
        red_cell,
        red_cells,
        centre: (cx, cy),
        cell_r,
        unit,
        cytoplasm,
        glass,
        granules,
        granule_colour,
        granules_over_nucleus: class == 0 || class == 3,
        pale,
        nucleus,
        nucleus_colour,
        chromatin,
    }
    .paint(size)
}

/// A leukocyte's scene as drawn, to be painted pixel by pixel.
struct Smear {
    background: Rgb,
    red_cell: Rgb,
    /// Red cells' discs (x, y, r).
    red_cells: Vec<(f32, f32, f32)>,
    centre: (f32, f32),
    cell_r: f32,
    /// One pixel at 64 px.
    unit: f32,
    cytoplasm: Rgb,
    /// The cytoplasm's fine texture, per pixel.
    glass: Vec<f32>,
    granules: Spots,
    granule_colour: Rgb,
    granules_over_nucleus: bool,
    /// Vacuoles.
    pale: Spots,
    nucleus: Nucleus,
    nucleus_colour: Rgb,
    chromatin: Spots,
}

impl Smear {
    /// Its RGB pixels, row by row.
    fn paint(&self, size: usize) -> Vec<f32> {
        let (cx, cy) = self.centre;
        let mut rgb = Vec::with_capacity(size * size * 3);
        for y in 0..size {
            for x in 0..size {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let mut colour = self.background;
                for &(rx, ry, r) in &self.red_cells {
                    let d = ((px - rx).powi(2) + (py - ry).powi(2)).sqrt();
                    if d < r {
                        colour = lerp(self.red_cell, self.background, 0.5 * (1.0 - d / r).powi(2));
                    }
                }
                let d = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
                // soft cell edge
                let edge = ((self.cell_r - d) / (1.5 * self.unit)).clamp(0.0, 1.0);
                if edge > 0.0 {
                    let g = self.glass[y * size + x];
                    let cyto = lerp(self.cytoplasm, self.granule_colour, self.granules.at(x, y))
                        .map(|v| (v + g).clamp(0.0, 1.0));
                    let cyto = lerp(cyto, self.background, self.pale.at(x, y));
                    colour = lerp(colour, cyto, edge);
                }
                if self.nucleus.contains(px, py) {
                    colour = lerp(
                        self.nucleus_colour,
                        self.nucleus_colour.map(|v| v * 0.6),
                        self.chromatin.at(x, y),
                    );
                    if self.granules_over_nucleus {
                        // granules lie over the nucleus too
                        colour = lerp(colour, self.granule_colour, 0.5 * self.granules.at(x, y));
                    }
                }
                rgb.extend_from_slice(&colour);
            }
        }
        rgb
    }
}

/// Aerial ground (grass and asphalt with texture) with one to four small cars and their shadows;
/// the mask marks car pixels.
fn car_scene(rng: &mut ChaCha8Rng, size: usize) -> (Vec<f32>, Vec<u8>) {
    let s = size as f32;
    let grass = jitter(rng, [0.30, 0.42, 0.22], 0.03);
    let asphalt = jitter(rng, [0.36, 0.36, 0.38], 0.03);
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
    // pixel-scale grain of the ground (gravel, grass blades)
    let grain: Vec<f32> = (0..size * size)
        .map(|_| rng.random_range(-0.03..0.03))
        .collect();
    let shadow = 0.04 * s;
    let mut rgb = Vec::with_capacity(size * size * 3);
    let mut mask = Vec::with_capacity(size * size);
    for y in 0..size {
        for x in 0..size {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let texture = 0.04 * ((px * 0.37 + phase).sin() * (py * 0.29 - phase).cos())
                + grain[y * size + x];
            let base = if py >= road_from && py < road_to {
                asphalt
            } else {
                grass
            };
            let mut colour = base.map(|c| (c + texture).clamp(0.0, 1.0));
            let mut car = 0u8;
            for &(x0, y0, w, h, c) in &cars {
                let inside = |ox: f32| {
                    px >= x0 + ox && px < x0 + w + ox && py >= y0 + ox && py < y0 + h + ox
                };
                if car == 0 && inside(shadow) && !inside(0.0) {
                    colour = colour.map(|v| v * 0.55);
                }
                if inside(0.0) {
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

    /// The sensor's signal-to-noise: mean over standard deviation of the difference between a
    /// recording and the noise-free mosaic, above the black level.
    fn snr(scene: &Scene, percent: f64) -> f64 {
        let tile = scene.record(percent).unwrap();
        let black = camera().black_level[0];
        let (mut signal, mut noise) = (0.0, 0.0);
        for (&v, &c) in tile.data().iter().zip(scene.clean.data()) {
            let expected = (c as f64 - black) * percent / 100.0;
            signal += expected;
            noise += (v as f64 - black - expected).powi(2);
        }
        let n = tile.data().len() as f64;
        (signal / n) / (noise / n).sqrt()
    }

    #[test]
    fn less_light_means_a_darker_and_noisier_mosaic() {
        let scene = scene(Task::Segmentation, 3, 2, 32).unwrap();
        let black = camera().black_level[0] as f32;
        let mean =
            |t: &RawTile| t.data().iter().map(|v| v - black).sum::<f32>() / t.data().len() as f32;
        let bright = scene.record(100.0).unwrap();
        let dim = scene.record(10.0).unwrap();
        assert!(mean(&dim) < 0.5 * mean(&bright));
        let (full, tenth, hundredth) = (snr(&scene, 100.0), snr(&scene, 10.0), snr(&scene, 1.0));
        // shot noise: a tenth of the light, about a third of the signal-to-noise
        assert!(
            full > 15.0 && tenth < full / 2.5 && hundredth < tenth / 2.5,
            "{full} {tenth} {hundredth}"
        );
    }

    #[test]
    fn classes_differ_in_their_fine_granules() {
        // the eosinophil's coarse orange granules make its cytoplasm redder than the lymphocyte's
        // clear blue one; the neutrophil's fine granules add pixel-scale contrast
        let scene = |class: usize, i: usize| {
            let mut rng = rng_for(11, i);
            cell_scene(&mut rng, 64, class)
        };
        let red_minus_blue = |rgb: &[f32]| {
            rgb.chunks_exact(3).map(|p| p[0] - p[2]).sum::<f32>() / (rgb.len() / 3) as f32
        };
        let eos: f32 = (0..8).map(|i| red_minus_blue(&scene(0, i))).sum();
        let lym: f32 = (0..8).map(|i| red_minus_blue(&scene(1, i))).sum();
        assert!(eos > lym + 0.2, "{eos} {lym}");
    }
}
