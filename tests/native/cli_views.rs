//! `lens2logit views` as its contract says, on tiles written here.

use crate::cli::{left_in, lens2logit, lens2logit_ok};
use std::path::Path;

use lens2logit::codecs::npy_f32;
use lens2logit::isp::static_pipeline::{render, View};
use lens2logit::raw::{decode_tile, CameraParams, RawTile};

fn tile(seed: usize) -> RawTile {
    RawTile::new(
        16,
        12,
        (0..192)
            .map(|i| ((i * 37 + seed * 11) % 97) as f32 / 97.0)
            .collect(),
    )
    .unwrap()
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let file = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    (file.shape().to_vec(), file.into_vec::<f32>().unwrap())
}

#[test]
fn one_view_is_a_float32_hw3_array_equal_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.npy"),
        npy_f32(&[12, 16], tile(1).data()).unwrap(),
    )
    .unwrap();
    lens2logit_ok(
        &[
            "views",
            "t.npy",
            "--camera",
            "drone",
            "--debayer",
            "malvar2004",
            "--sharpening",
            "sharpening_filter",
            "--denoising",
            "median_denoising",
            "--out",
            "v.npy",
        ],
        dir.path(),
    );
    let (shape, data) = read_npy(&dir.path().join("v.npy"));
    assert_eq!(shape, vec![12, 16, 3]);
    let view: View = "malvar2004-sharpening_filter-median_denoising"
        .parse()
        .unwrap();
    assert_eq!(
        data,
        render(&tile(1), &CameraParams::drone(), view).unwrap().data
    );
}

#[test]
fn all_views_as_npy_and_png_and_a_directory_of_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    for (i, name) in ["a.npy", "b.npy"].iter().enumerate() {
        std::fs::write(
            tiles.join(name),
            npy_f32(&[12, 16], tile(i).data()).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(tiles.join("notes.txt"), "not a tile").unwrap();

    lens2logit_ok(
        &[
            "views",
            "tiles/a.npy",
            "--camera",
            "microscopy",
            "--all",
            "--out",
            "all",
        ],
        dir.path(),
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("all"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = View::paper_views()
        .iter()
        .map(|v| format!("{v}.npy"))
        .collect();
    expected.sort();
    assert_eq!(names, expected);

    lens2logit_ok(
        &[
            "views", "tiles", "--camera", "drone", "--all", "--format", "png", "--out", "pngs",
        ],
        dir.path(),
    );
    for stem in ["a", "b"] {
        let png = std::fs::read(dir.path().join(format!(
            "pngs/{stem}/menon2007-unsharp_masking-median_denoising.png"
        )))
        .unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let info = decoder.read_info().unwrap().info().clone();
        assert_eq!(
            (info.width, info.height, info.color_type),
            (16, 12, png::ColorType::Rgb)
        );
    }
}

#[test]
fn camera_json_and_intensity() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.npy"),
        npy_f32(&[12, 16], tile(2).data()).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("cam.json"), CameraParams::drone().to_json()).unwrap();
    lens2logit_ok(
        &[
            "views",
            "t.npy",
            "--camera",
            "cam.json",
            "--intensity",
            "25",
            "--out",
            "v.npy",
        ],
        dir.path(),
    );
    let (_, dim) = read_npy(&dir.path().join("v.npy"));
    lens2logit_ok(
        &["views", "t.npy", "--camera", "drone", "--out", "w.npy"],
        dir.path(),
    );
    let (_, bright) = read_npy(&dir.path().join("w.npy"));
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&dim) < mean(&bright), "25 % light must look darker");
}

#[test]
fn bad_inputs_fail_with_one_line_reasons() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("odd.npy"),
        npy_f32(&[3, 4], &[0.5; 12]).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for (args, needle) in [
        (
            vec!["views", "odd.npy", "--camera", "drone", "--out", "o.npy"],
            "even",
        ),
        (
            vec!["views", "junk.png", "--camera", "drone", "--out", "o.npy"],
            "junk.png",
        ),
        (
            vec![
                "views",
                "missing.tif",
                "--camera",
                "drone",
                "--out",
                "o.npy",
            ],
            "missing.tif",
        ),
        (
            vec!["views", "odd.npy", "--camera", "phone", "--out", "o.npy"],
            "unknown camera",
        ),
    ] {
        let out = lens2logit(&args, dir.path());
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(decode_tile(b"", "empty").is_err());
}

#[test]
fn a_directory_s_views_are_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiles = d.join("tiles");
    std::fs::create_dir(&tiles).unwrap();
    for (i, name) in ["a.npy", "b.npy"].iter().enumerate() {
        let npy = npy_f32(&[12, 16], tile(i).data()).unwrap();
        std::fs::write(tiles.join(name), npy).unwrap();
    }
    std::fs::write(tiles.join("c.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let args = ["views", "tiles", "--camera", "drone", "--out", "v"];
    let out = lens2logit(&args, d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 of 3 tiles failed, so none was written") && stderr.contains("c.png"),
        "{stderr}"
    );
    // the two views rendered went with the failure: no folder, no sibling
    assert_eq!(left_in(d), ["tiles"]);

    std::fs::remove_file(tiles.join("c.png")).unwrap();
    lens2logit_ok(&args, d);
    assert_eq!(left_in(&d.join("v")), ["a.npy", "b.npy"]);
    // views cannot be told from tiles: a folder that is not empty is refused, as it was
    let out = lens2logit(&args, d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("v exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(left_in(&d.join("v")), ["a.npy", "b.npy"]);
}
