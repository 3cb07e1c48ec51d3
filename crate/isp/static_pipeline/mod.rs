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

use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::raw::{BayerSite, CameraParams, RawTile};
use crate::spec::colour::{mat3, matmul3, yuv_to_rgb, RGB_TO_YUV};
use crate::{Error, Result};

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
                let q = crate::codecs::to_byte;
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
            .chunks_exact(w)
            .enumerate()
            .flat_map(|(y, row)| {
                row.iter()
                    .enumerate()
                    .map(move |(x, &v)| v as f64 - camera.black_level[BayerSite::at(y, x).index()])
            })
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

/// White balance, colour correction and the change to YUV as one matrix, in one pass over the
/// pixels: all that rendering needs of those three stages (the stage stepper keeps each of them).
fn to_yuv_corrected(rgb: &Planes, camera: &CameraParams) -> Planes {
    let corrected = mat3(&camera.colour_matrix);
    let balanced_then_corrected: [[f64; 3]; 3] =
        std::array::from_fn(|r| std::array::from_fn(|c| corrected[r][c] * camera.white_balance[c]));
    transform(
        [&rgb[0], &rgb[1], &rgb[2]],
        &matmul3(&RGB_TO_YUV, &balanced_then_corrected),
    )
}

/// RGB from a filtered Y and the untouched U and V.
fn with_y(y: &Plane, yuv: &Planes) -> Planes {
    transform([y, &yuv[1], &yuv[2]], &yuv_to_rgb())
}

/// The last steps in one pass: RGB from Y (filtered), U and V, clipped to [0, 1] and encoded with
/// x^(1/gamma), interleaved into the output image.
#[cfg_attr(
    not(target_arch = "wasm32"),
    multiversion::multiversion(targets("x86_64+avx+avx2"))
)]
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

/// Several views of one tile, in the order asked.
pub fn render_all(tile: &RawTile, camera: &CameraParams, views: &[View]) -> Result<Vec<RgbImage>> {
    let slots: Vec<Mutex<Option<RgbImage>>> = views.iter().map(|_| Mutex::new(None)).collect();
    render_each(tile, camera, views, |i, image| {
        *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(image);
        Ok::<_, Error>(())
    })?;
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::invalid("a view was asked for but not rendered"))
}

/// Several views of one tile, each handed to `emit` with its position in `views` as soon as it is
/// rendered, so that a caller writing them out holds one image per worker rather than all of
/// them. What views share (the demosaicing with colour correction, the sharpening) is computed
/// once; the rest runs as nested parallel tasks natively, so the cheap demosaicings' views
/// proceed while Menon2007 is still working (in wasm, rayon runs everything on the calling
/// thread). The first error stops the rest.
pub fn render_each<E: From<Error> + Send>(
    tile: &RawTile,
    camera: &CameraParams,
    views: &[View],
    emit: impl Fn(usize, RgbImage) -> std::result::Result<(), E> + Sync,
) -> std::result::Result<(), E> {
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

    group(&indexed, &|v| v.debayer.name())
        .into_par_iter()
        .try_for_each(|same_debayer| {
            let yuv = to_yuv_corrected(&demosaic(&cfa, same_debayer[0].1.debayer), camera);
            group(&same_debayer, &|v| v.sharpening.name())
                .into_par_iter()
                .try_for_each(|same_sharpening| {
                    let y_sharp = sharpen(&yuv[0], same_sharpening[0].1.sharpening);
                    same_sharpening.into_par_iter().try_for_each(|(i, view)| {
                        emit(
                            i,
                            finish(&denoise(&y_sharp, view.denoising), &yuv, &encoder),
                        )
                    })
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_each_hands_over_every_view_once_and_stops_at_an_error() {
        let tile =
            RawTile::new(8, 6, (0..48).map(|i| (i * 7 % 13) as f32 / 13.0).collect()).unwrap();
        let camera = CameraParams::preset("microscopy").unwrap();
        let views = View::paper_views();
        let seen = Mutex::new(vec![0; views.len()]);
        render_each(&tile, &camera, &views, |i, image| {
            assert_eq!((image.width, image.height, image.data.len()), (8, 6, 144));
            seen.lock().unwrap()[i] += 1;
            Ok::<_, Error>(())
        })
        .unwrap();
        assert_eq!(seen.into_inner().unwrap(), vec![1; views.len()]);

        let failed = render_each(&tile, &camera, &views, |i, _| match i {
            5 => Err(Error::invalid("disk full")),
            _ => Ok(()),
        });
        assert_eq!(
            failed.unwrap_err().to_string(),
            Error::invalid("disk full").to_string()
        );
    }
}
