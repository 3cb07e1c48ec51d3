//! `lens2logit fit-camera` on shots made by independent tools (tests/reference/camera_pair.py): a
//! DNG written by PiDNG from a real raw tile, its "camera JPEG" rendered by LibRaw (rawpy) with
//! its own demosaicing, white balance, colour matrix and sRGB gamma, saved at quality 95.
//!
//! The held-out PSNR bounds below sit 1.2-1.3 dB under what the fit reached when they were set
//! (33.3 dB at full size, 31.3 dB at half size, 33.2 dB turned; at the fit's start, the DNG's
//! camera through the paper's ISP with the highlight clip, they scored 29.7, 25.2 and 29.7 dB).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cli::{lens2logit, lens2logit_ok};
use lens2logit::raw::{decode_camera_jpeg, decode_samples};

/// The demo tiles beside the checkout ($LENS2LOGIT_DEMO_DATA, as scripts/test.sh finds them).
fn demo_tile(name: &str) -> PathBuf {
    let dir = std::env::var_os("LENS2LOGIT_DEMO_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/raw2logit-demo")
        });
    let tile = dir.join(name);
    assert!(
        tile.is_file(),
        "{} not found (set LENS2LOGIT_DEMO_DATA)",
        tile.display()
    );
    tile
}

/// shot.dng and shot.jpg in `dir`, from the independent tools.
fn camera_pair(dir: &Path, scale: u32, exif_orientation: u32) {
    let python = std::env::var("LENS2LOGIT_PYTHON").expect(
        "LENS2LOGIT_PYTHON is not set: it names the Python with pidng and rawpy that writes the \
         camera pairs (scripts/test.sh sets it)",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference/camera_pair.py");
    let out = Command::new(python)
        .arg(script)
        .arg("--tile")
        .arg(demo_tile("car.png"))
        .arg("--out")
        .arg(dir)
        .args(["--scale", &scale.to_string()])
        .args(["--exif-orientation", &exif_orientation.to_string()])
        .output()
        .expect("run camera_pair.py");
    assert!(
        out.status.success(),
        "camera_pair.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fit-camera` on the pair in a folder, into its `twin`, with `extra` arguments.
fn fit_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "fit-camera",
        "--dng",
        "shot.dng",
        "--jpeg",
        "shot.jpg",
        "--out",
        "twin",
    ];
    args.extend(extra);
    args
}

/// Fits the pair in `dir` into `dir/twin` and returns its summary.
fn fit(dir: &Path) -> Value {
    lens2logit_ok(&fit_args(&[]), dir);
    serde_json::from_slice(&std::fs::read(dir.join("twin/twin.json")).unwrap()).unwrap()
}

fn number(summary: &Value, key: &str) -> f64 {
    summary[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {summary}"))
}

fn sizes(summary: &Value, key: &str) -> Vec<u64> {
    summary["alignment"][key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The held-out PSNR recomputed from rendered.png and the JPEG as shown, over the summary's
/// held-out rectangle: what anyone can check.
fn recomputed_psnr(dir: &Path, summary: &Value) -> f64 {
    let jpeg =
        decode_camera_jpeg(&std::fs::read(dir.join("shot.jpg")).unwrap(), "shot.jpg").unwrap();
    let png = decode_samples(
        &std::fs::read(dir.join("twin/rendered.png")).unwrap(),
        "png",
    )
    .unwrap();
    assert_eq!(
        (png.width, png.height, png.channels),
        (jpeg.width, jpeg.height, 3)
    );
    let rect: Vec<usize> = summary["held_out_shown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in rect[1]..rect[1] + rect[3] {
        for x in rect[0]..rect[0] + rect[2] {
            for c in 0..3 {
                let i = (y * jpeg.width + x) * 3 + c;
                sum += (f64::from(png.data[i]) - f64::from(jpeg.rgb[i])).powi(2);
                n += 1;
            }
        }
    }
    -10.0 * (sum / n as f64).log10()
}

/// The fit reached `bound` dB on the held-out region, 3 dB or more above the DNG's camera, with
/// a PSNR anyone can recompute from the files.
fn assert_fitted(dir: &Path, summary: &Value, bound: f64) {
    let (psnr, initial) = (
        number(summary, "held_out_psnr"),
        number(summary, "initial_held_out_psnr"),
    );
    eprintln!("held-out PSNR {psnr:.2} dB (before the fit {initial:.2} dB)");
    assert!(psnr >= bound, "held-out PSNR {psnr:.2} dB < {bound} dB");
    assert!(
        psnr >= initial + 3.0,
        "{psnr:.2} dB, before the fit {initial:.2} dB"
    );
    assert!(number(summary, "held_out_ssim") >= 0.93, "{summary}");
    let again = recomputed_psnr(dir, summary);
    assert!((again - psnr).abs() < 1e-6, "{again} against {psnr}");
}

#[test]
fn a_libraw_jpeg_fits_its_dng_and_the_twin_holds_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    camera_pair(dir.path(), 1, 1);
    let summary = fit(dir.path());
    assert_fitted(dir.path(), &summary, 32.0);
    assert_eq!(sizes(&summary, "crop"), [8, 24, 240, 208]);
    assert!(summary["alignment"]["crop_source"]
        .as_str()
        .unwrap()
        .contains("DefaultCrop"));
    assert_eq!(sizes(&summary, "fit_size"), [240, 208]);
    assert_eq!(summary["alignment"]["binning"], 1);
    let stages: Vec<&str> = summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(stages, ["highlight clip", "tone curve", "chroma gain"]);
    // the twin's folder is a run of the lab log, with the held-out PSNR's curve
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("twin/run.json")).unwrap()).unwrap();
    assert_eq!(meta["mode"], "camera fit");
    assert!(
        (meta["metrics"]["val_psnr"].as_f64().unwrap() - number(&summary, "held_out_psnr")).abs()
            < 1e-9
    );
    let curve = std::fs::read_to_string(dir.path().join("twin/metrics.csv")).unwrap();
    assert_eq!(curve.lines().count(), 21, "{curve}");
    assert!(
        curve.lines().last().unwrap().starts_with("camera fit,300,"),
        "{curve}"
    );
    let list = lens2logit(&["runs", "list", "--dir", "."], dir.path());
    assert!(String::from_utf8_lossy(&list.stdout).contains("camera fit"));
    // the paper's ISP and the added stages, by name, in the safetensors
    let bytes = std::fs::read(dir.path().join("twin/twin.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = tensors.names();
    names.sort_unstable();
    for name in [
        "black_level",
        "white_balance",
        "colour_correction",
        "gamma_correct",
        "debayer.weight",
        "highlight_clip.level",
        "tone_curve.start",
        "tone_curve.shares",
        "chroma_gain.start",
        "chroma_gain.rises",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
}

#[test]
fn a_half_size_jpeg_fits_the_raw_binned_to_it() {
    let dir = tempfile::tempdir().unwrap();
    camera_pair(dir.path(), 2, 1);
    let summary = fit(dir.path());
    assert_eq!(summary["alignment"]["binning"], 2);
    assert_eq!(sizes(&summary, "fit_size"), [120, 104]);
    assert_fitted(dir.path(), &summary, 30.0);
}

#[test]
fn a_jpeg_stored_turned_fits_as_it_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    camera_pair(dir.path(), 1, 6);
    let summary = fit(dir.path());
    assert_eq!(summary["alignment"]["jpeg_orientation"], 6);
    assert_eq!(sizes(&summary, "jpeg_stored_size"), [208, 240]);
    assert_eq!(sizes(&summary, "jpeg_shown_size"), [240, 208]);
    assert_fitted(dir.path(), &summary, 32.0);
}

#[test]
fn mismatched_pairs_are_refused_with_their_reason_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    camera_pair(dir.path(), 1, 1);
    let refused = |args: &[&str], needle: &str| {
        let all = fit_args(args);
        let out = lens2logit(&all, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!dir.path().join("twin").exists(), "{args:?} left a folder");
    };
    // the whole mosaic is square, the JPEG is not
    refused(&["--crop", "0,0,256,256"], "aspect ratio");
    refused(&["--crop", "0,0,250,216"], "integer fraction");
    refused(&["--crop", "100,0,240,208"], "does not lie within");
    refused(&["--crop", "8,24"], "X,Y,W,H");
    // a JPEG that is not one, and a DNG given as the JPEG
    std::fs::write(dir.path().join("broken.jpg"), b"not a jpeg").unwrap();
    // a JPEG cut off in its scan, as a download that stopped leaves it
    let whole = std::fs::read(dir.path().join("shot.jpg")).unwrap();
    std::fs::write(dir.path().join("cut.jpg"), &whole[..whole.len() / 2]).unwrap();
    for (jpeg, needle) in [("broken.jpg", "JPEG"), ("cut.jpg", "truncated")] {
        let args = [
            "fit-camera",
            "--dng",
            "shot.dng",
            "--jpeg",
            jpeg,
            "--out",
            "twin",
        ];
        let stderr = String::from_utf8(lens2logit(&args, dir.path()).stderr).unwrap();
        assert!(stderr.contains(jpeg) && stderr.contains(needle), "{stderr}");
        assert!(!dir.path().join("twin").exists());
    }
}

/// The cells of a CSV line (the tables' names hold no commas).
fn cells(line: &str) -> Vec<&str> {
    line.split(',').collect()
}

#[test]
fn a_twin_is_a_thirteenth_view_of_the_drift_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    camera_pair(d, 2, 1);
    lens2logit_ok(&fit_args(&["--steps", "2"]), d);
    let small = [
        crate::cli_experiment::SMALL,
        &["--intensities", "100,10", "--extra-view", "twin"],
    ]
    .concat();
    lens2logit_ok(
        &[
            &["train", "--mode", "synthesis"],
            &small[..],
            &["--out", "run"],
        ]
        .concat(),
        d,
    );
    let drift = std::fs::read_to_string(d.join("run/tables/drift.csv")).unwrap();
    let lines: Vec<&str> = drift.lines().collect();
    assert_eq!(cells(lines[0]).len(), 14, "{drift}");
    assert!(lines[0].ends_with(",twin:twin"), "{drift}");
    for line in &lines[1..] {
        assert!(cells(line).iter().all(|c| !c.is_empty()), "{drift}");
    }

    let view = "bilinear-sharpening_filter-gaussian_denoising";
    let experiment = [
        &["experiment", "synthesis"],
        &small[..],
        &["--train-view", view, "--out", "table"],
    ]
    .concat();
    lens2logit_ok(&experiment, d);
    let matrix = std::fs::read_to_string(d.join("table/synthesis_12x12.csv")).unwrap();
    let lines: Vec<&str> = matrix.lines().collect();
    assert!(lines[0].ends_with(",twin:twin"), "{matrix}");
    assert_eq!(cells(lines[1]).len(), 14, "{matrix}");
    assert!(cells(lines[1]).iter().all(|c| !c.is_empty()), "{matrix}");

    let forensics = [
        &["train", "--mode", "forensics"],
        &small[..],
        &["--out", "f"],
    ]
    .concat();
    let out = lens2logit(&forensics, d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--mode synthesis"),
        "{stderr}"
    );
    let missing = [
        &["train", "--mode", "synthesis"],
        crate::cli_experiment::SMALL,
        &["--extra-view", "nowhere", "--out", "m"],
    ]
    .concat();
    let out = lens2logit(&missing, d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("nowhere"),
        "{stderr}"
    );
}
