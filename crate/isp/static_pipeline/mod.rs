//! The paper's static ISP (processing/pipeline_numpy.py): black level per site -> demosaic ->
//! white balance -> colour matrix -> sharpening on Y -> denoising on Y -> clip to [0, 1] ->
//! x^(1/gamma). Twelve combinations of its choices are the paper's "views" of a raw tile.
//!
//! Faithful to the libraries the paper used (colour-demosaicing, scipy.ndimage, scipy.signal,
//! scikit-image 0.18's YUV and unsharp mask), checked against them in `tests/native/static_views.rs`.

pub mod demosaic;
pub mod filters;
mod gamma;
mod plane;
mod view;

pub use gamma::GammaEncoder;
pub use plane::{Border, Plane};
pub use view::{Debayer, Denoising, Sharpening, View};

use rayon::prelude::*;

use crate::raw::{BayerSite, CameraParams, RawTile};
use crate::spec::colour::{mat3, yuv_to_rgb, RGB_TO_YUV};
use crate::Result;

/// Three planes: R, G, B (or Y, U, V).
pub type Planes = [Plane; 3];

/// A processed image: f32, interleaved (H, W, 3), the layout of the CLI's .npy files.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl RgbImage {
    /// Interleaves three planes (values as they are, no clipping).
    pub fn from_planes([r, g, b]: &Planes) -> Self {
        let data = r
            .data
            .iter()
            .zip(&g.data)
            .zip(&b.data)
            .flat_map(|((&r, &g), &b)| [r as f32, g as f32, b as f32])
            .collect();
        Self {
            width: r.width,
            height: r.height,
            data,
        }
    }

    /// RGBA8 for display, values clipped to [0, 1].
    pub fn to_rgba8(&self) -> Vec<u8> {
        self.data
            .chunks_exact(3)
            .flat_map(|px| {
                let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                [q(px[0]), q(px[1]), q(px[2]), 255]
            })
            .collect()
    }
}

/// Every intermediate of one view, for stepping through the pipeline stage by stage.
pub struct Stages {
    /// The mosaic minus the black level of each site.
    pub black_level: Plane,
    pub demosaic: Planes,
    pub white_balance: Planes,
    pub colour_correction: Planes,
    pub sharpening: Planes,
    pub denoising: Planes,
    /// The final view: clipped to [0, 1], gamma-encoded.
    pub gamma: RgbImage,
}

/// The mosaic as f64 minus the per-site black level.
pub fn subtract_black_level(tile: &RawTile, camera: &CameraParams) -> Plane {
    let w = tile.width();
    Plane {
        width: w,
        height: tile.height(),
        data: tile
            .data()
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f64 - camera.black_level[BayerSite::at(i / w, i % w).index()])
            .collect(),
    }
}

pub fn demosaic(cfa: &Plane, debayer: Debayer) -> Planes {
    match debayer {
        Debayer::Bilinear => demosaic::bilinear(cfa),
        Debayer::Malvar2004 => demosaic::malvar2004(cfa),
        Debayer::Menon2007 => demosaic::menon2007(cfa),
    }
}

/// Per-channel gains.
pub fn white_balance(rgb: &Planes, gains: &[f64; 3]) -> Planes {
    std::array::from_fn(|c| rgb[c].map(|v| v * gains[c]))
}

/// A 3x3 matrix applied to every pixel: out_l = sum_k m[l][k] in_k (numpy's order of sums).
fn transform([a, b, c]: [&Plane; 3], m: &[[f64; 3]; 3]) -> Planes {
    std::array::from_fn(|l| {
        let data = a
            .data
            .iter()
            .zip(&b.data)
            .zip(&c.data)
            .map(|((&a, &b), &c)| m[l][0] * a + m[l][1] * b + m[l][2] * c)
            .collect();
        a.like(data)
    })
}

pub fn colour_correction(rgb: &Planes, colour_matrix: &[f64; 9]) -> Planes {
    transform([&rgb[0], &rgb[1], &rgb[2]], &mat3(colour_matrix))
}

pub fn sharpen(y: &Plane, sharpening: Sharpening) -> Plane {
    let unsharp = |blurred: Plane| y.zip_map(&blurred, |v, b| v + (v - b));
    match sharpening {
        Sharpening::SharpeningFilter => {
            filters::convolve2d_same(y, [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
        }
        Sharpening::UnsharpMasking => unsharp(filters::gaussian_filter(y, [1.0, 0.0])),
        Sharpening::UnsharpMaskingIsotropic => unsharp(filters::gaussian_filter(y, [1.0, 1.0])),
    }
}

pub fn denoise(y: &Plane, denoising: Denoising) -> Plane {
    match denoising {
        Denoising::GaussianDenoising => filters::gaussian_filter(y, [0.5, 0.5]),
        Denoising::MedianDenoising => filters::median3x3(y),
    }
}

fn to_yuv(rgb: &Planes) -> Planes {
    transform([&rgb[0], &rgb[1], &rgb[2]], &RGB_TO_YUV)
}

/// RGB from a filtered Y and the untouched U and V.
fn with_y(y: &Plane, yuv: &Planes) -> Planes {
    transform([y, &yuv[1], &yuv[2]], &yuv_to_rgb())
}

/// The last steps in one pass: RGB from Y (filtered), U and V, clipped to [0, 1] and encoded with
/// x^(1/gamma), interleaved into the output image.
fn finish(y: &Plane, yuv: &Planes, encoder: &GammaEncoder) -> RgbImage {
    let m = yuv_to_rgb();
    let mut data = vec![0f32; y.data.len() * 3];
    let pixels = y.data.iter().zip(&yuv[1].data).zip(&yuv[2].data);
    for (out, ((&y, &u), &v)) in data.chunks_exact_mut(3).zip(pixels) {
        for (o, row) in out.iter_mut().zip(&m) {
            *o = encoder.encode(row[0] * y + row[1] * u + row[2] * v);
        }
    }
    RgbImage {
        width: y.width,
        height: y.height,
        data,
    }
}

/// Every stage of one view.
pub fn stages(tile: &RawTile, camera: &CameraParams, view: View) -> Result<Stages> {
    camera.validate()?;
    let black_level = subtract_black_level(tile, camera);
    let demosaiced = demosaic(&black_level, view.debayer);
    let balanced = white_balance(&demosaiced, &camera.white_balance);
    let corrected = colour_correction(&balanced, &camera.colour_matrix);
    let yuv = to_yuv(&corrected);
    let y_sharp = sharpen(&yuv[0], view.sharpening);
    let y_clean = denoise(&y_sharp, view.denoising);
    Ok(Stages {
        black_level,
        demosaic: demosaiced,
        white_balance: balanced,
        colour_correction: corrected,
        sharpening: with_y(&y_sharp, &yuv),
        denoising: with_y(&y_clean, &yuv),
        gamma: finish(&y_clean, &yuv, &GammaEncoder::new(camera.gamma)),
    })
}

/// One view of a tile.
pub fn render(tile: &RawTile, camera: &CameraParams, view: View) -> Result<RgbImage> {
    Ok(render_all(tile, camera, &[view])?.remove(0))
}

/// Several views of one tile, in the order asked. What views share (the demosaicing with colour
/// correction, the sharpening) is computed once; the rest runs as nested parallel tasks natively,
/// so the cheap demosaicings' views proceed while Menon2007 is still working (in wasm, rayon runs
/// everything on the calling thread).
pub fn render_all(tile: &RawTile, camera: &CameraParams, views: &[View]) -> Result<Vec<RgbImage>> {
    camera.validate()?;
    let cfa = subtract_black_level(tile, camera);
    let encoder = GammaEncoder::new(camera.gamma);
    // (position in `views`, view), grouped by what they share
    let indexed: Vec<(usize, View)> = views.iter().copied().enumerate().collect();
    let group = |items: &[(usize, View)], key: &dyn Fn(&View) -> &'static str| {
        let mut keys: Vec<&'static str> = items.iter().map(|(_, v)| key(v)).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                items
                    .iter()
                    .filter(|(_, v)| key(v) == k)
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };

    let mut rendered: Vec<(usize, RgbImage)> = group(&indexed, &|v| v.debayer.name())
        .into_par_iter()
        .flat_map(|same_debayer| {
            let debayer = same_debayer[0].1.debayer;
            let balanced = white_balance(&demosaic(&cfa, debayer), &camera.white_balance);
            let yuv = to_yuv(&colour_correction(&balanced, &camera.colour_matrix));
            group(&same_debayer, &|v| v.sharpening.name())
                .into_par_iter()
                .flat_map(|same_sharpening| {
                    let y_sharp = sharpen(&yuv[0], same_sharpening[0].1.sharpening);
                    same_sharpening
                        .into_par_iter()
                        .map(|(i, view)| {
                            (
                                i,
                                finish(&denoise(&y_sharp, view.denoising), &yuv, &encoder),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    rendered.sort_by_key(|(i, _)| *i);
    Ok(rendered.into_iter().map(|(_, image)| image).collect())
}
