//! Parity of the static pipeline with the paper's libraries, on a golden fixture.

use lens2logit::isp::static_pipeline::{render_all, Debayer, Sharpening, View};
use lens2logit::raw::{CameraParams, RawTile};

use super::golden::{max_abs_diff, psnr, Array};
use std::collections::HashMap;

/// The bound each view must meet on a fixture.
pub enum Bound {
    MaxAbs(f32),
    /// Menon2007 on quantized tiles: see the static ISP issue (ties in the direction test).
    Psnr(f64),
}

/// The paper's 12 views plus the isotropic unsharp mask, named as in the golden files.
pub fn golden_views() -> Vec<View> {
    let mut views = View::paper_views();
    views.push(View {
        debayer: Debayer::Bilinear,
        sharpening: Sharpening::UnsharpMaskingIsotropic,
        denoising: lens2logit::isp::static_pipeline::Denoising::GaussianDenoising,
    });
    views
}

/// The raw tile stored in a fixture.
pub fn fixture_tile(golden: &HashMap<String, Array>) -> RawTile {
    let raw = &golden["raw"];
    RawTile::new(raw.shape[1], raw.shape[0], raw.data.clone()).unwrap()
}

/// Renders `views` of `tile` and checks each against the fixture; returns one report line each.
pub fn check(
    golden: &HashMap<String, Array>,
    tile: &RawTile,
    views: &[View],
    quantized: bool,
) -> Vec<String> {
    let mut report = Vec::new();
    for camera_name in ["microscopy", "drone"] {
        let camera = CameraParams::preset(camera_name).unwrap();
        let rendered = render_all(tile, &camera, views).unwrap();
        for (view, image) in views.iter().zip(&rendered) {
            let key = format!("{camera_name}/{view}");
            let expected = &golden
                .get(&key)
                .unwrap_or_else(|| panic!("{key} missing"))
                .data;
            let err = max_abs_diff(&image.data, expected);
            let bound = match view.debayer {
                Debayer::Menon2007 if quantized => Bound::Psnr(45.0),
                _ => Bound::MaxAbs(1e-5),
            };
            let line = match bound {
                Bound::MaxAbs(limit) => {
                    assert!(err <= limit, "{key}: max abs error {err:e} > {limit:e}");
                    format!("{key}: max abs {err:.1e}")
                }
                Bound::Psnr(limit) => {
                    let db = psnr(&image.data, expected);
                    assert!(db >= limit, "{key}: PSNR {db:.1} dB < {limit} dB");
                    format!("{key}: PSNR {db:.1} dB (max abs {err:.1e})")
                }
            };
            report.push(line);
        }
    }
    report
}
