//! Camera raws (DNG) into the lab, and full images cut into the paper's tiles, on files written
//! here.

use std::path::Path;

use crate::cli::{lens2logit, lens2logit_ok};
use crate::dng::{dng_claiming, small_dng};
use crate::fixtures::png1;

use lens2logit::isp::static_pipeline::{render, View};
use lens2logit::raw::cut::{centre_tile, cut_tiles, has_car, keep_car_tiles};
use lens2logit::raw::{decode_dng, decode_mask, CameraParams};

const RGGB: [u8; 4] = [0, 1, 1, 2];
const IDENTITY: [f64; 9] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
/// XYZ -> camera, D65, four decimals as a DNG stores them here.
const CAM_XYZ: [f64; 9] = [
    0.9, -0.2, -0.1, //
    -0.4, 1.3, 0.1, //
    -0.1, 0.2, 0.6,
];
const XYZ_SRGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

fn ramp(width: usize, height: usize) -> Vec<u16> {
    (0..width * height)
        .map(|i| 256 + (i * 7 % 3000) as u16)
        .collect()
}

fn mat_mul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    [0, 1, 2].map(|r| [0, 1, 2].map(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

#[test]
fn a_written_dng_decodes_to_its_mosaic_and_camera() {
    let data = ramp(8, 6);
    let bytes = small_dng(8, 6, RGGB, 256, 4095, [0.5, 1.0, 0.8], CAM_XYZ, &data);
    let image = decode_dng(&bytes, "cam.dng").unwrap();
    let m = &image.mosaic;
    assert_eq!((m.width(), m.height()), (8, 6));
    for (got, raw) in m.data().iter().zip(&data) {
        assert_eq!(*got, (*raw as f64 / 4095.0) as f32);
    }
    let cam = &image.camera;
    assert_eq!(cam.black_level, [256.0 / 4095.0; 4]);
    // gains = 1 / AsShotNeutral, green = 1
    for (g, expected) in cam.white_balance.iter().zip([2.0, 1.0, 1.25]) {
        assert!((g - expected).abs() < 1e-6, "{:?}", cam.white_balance);
    }
    assert_eq!(cam.gamma, 2.2);
    // rgb_cam inverts cam_xyz * xyz_srgb with rows normalised to 1, as dcraw and rawpy do
    let cam_xyz = [0, 1, 2].map(|r| [0, 1, 2].map(|c| CAM_XYZ[r * 3 + c]));
    let cam_rgb = mat_mul(&cam_xyz, &XYZ_SRGB).map(|row| row.map(|v| v / row.iter().sum::<f64>()));
    let rgb_cam = [0, 1, 2].map(|r| [0, 1, 2].map(|c| cam.colour_matrix[r * 3 + c]));
    let product = mat_mul(&rgb_cam, &cam_rgb);
    for (r, row) in product.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let expected = if r == c { 1.0 } else { 0.0 };
            assert!((v - expected).abs() < 1e-5, "{product:?}");
        }
        let sum: f64 = rgb_cam[r].iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "{rgb_cam:?}");
    }
    for needle in ["Lens2Logit", "8x6", "RGGB", "4095", "AsShotNeutral", "D65"] {
        assert!(
            image.summary.contains(needle),
            "{needle}: {}",
            image.summary
        );
    }
}

#[test]
fn other_bayer_patterns_are_moved_to_rggb() {
    let (w, h) = (6usize, 4usize);
    let data = ramp(w, h);
    let value = |y: usize, x: usize| (data[y * w + x] as f64 / 4095.0) as f32;
    // (pattern, red's row, red's column)
    for (cfa, dy, dx) in [
        ([2, 1, 1, 0], 1, 1),
        ([1, 0, 2, 1], 0, 1),
        ([1, 2, 0, 1], 1, 0),
    ] {
        let bytes = small_dng(6, 4, cfa, 0, 4095, [1.0; 3], IDENTITY, &data);
        let image = decode_dng(&bytes, "p.dng").unwrap();
        let m = &image.mosaic;
        let (mw, mh) = ((w - dx) & !1, (h - dy) & !1);
        assert_eq!((m.width(), m.height()), (mw, mh), "{cfa:?}");
        for y in 0..mh {
            for x in 0..mw {
                assert_eq!(m.data()[y * mw + x], value(y + dy, x + dx), "{cfa:?}");
            }
        }
    }
}

#[test]
fn garbage_non_bayer_and_oversized_files_are_refused_by_name() {
    let data = ramp(4, 4);
    let xtrans_like = small_dng(4, 4, [0, 0, 1, 2], 0, 4095, [1.0; 3], IDENTITY, &data);
    let huge = dng_claiming(8200, 8200);
    let mut cut = small_dng(4, 4, RGGB, 0, 4095, [1.0; 3], IDENTITY, &data);
    cut.truncate(cut.len() / 2);
    for (bytes, name, needle) in [
        (&b"not a camera raw at all"[..], "junk.dng", "junk.dng"),
        (&xtrans_like[..], "odd.dng", "Bayer"),
        (&huge[..], "huge.dng", "pixels"),
        (&cut[..], "cut.dng", "cut.dng"),
    ] {
        let e = decode_dng(bytes, name).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(needle), "{name}: {e}");
    }
    // a plain TIFF is not a DNG
    let mut tif = std::io::Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut tif)
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray16>(2, 2, &[0; 4])
        .unwrap();
    let e = decode_dng(tif.get_ref(), "plain.tif")
        .unwrap_err()
        .to_string();
    assert!(e.contains("plain.tif") && e.contains("DNGVersion"), "{e}");
}

#[test]
fn a_full_image_and_its_mask_cut_as_the_paper_does() {
    let (w, h) = (600, 520);
    let data = ramp(w, h);
    let bytes = small_dng(600, 520, RGGB, 256, 4095, [0.5, 1.0, 0.8], CAM_XYZ, &data);
    let image = decode_dng(&bytes, "05.dng").unwrap().mosaic;
    // tile 1 (rows 0..256, columns 256..512): half car; tile 3: 300 px of car (< 1 %)
    let mask_png = png1(w, h, |y, x| {
        (y < 128 && (256..512).contains(&x)) || (y == 300 && (300..600).contains(&x))
    });
    let mask = decode_mask(&mask_png, "05.png").unwrap();
    assert_eq!(mask.len(), w * h);

    let tiles = cut_tiles(&image, Some(&mask), 5, 256).unwrap();
    let names: Vec<_> = tiles.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["05_00000", "05_00001", "05_00002", "05_00003"]);
    let shares: Vec<f64> = tiles.iter().map(|t| t.car_share.unwrap()).collect();
    assert_eq!(shares, [0.0, 0.5, 0.0, 212.0 / 65536.0]);
    let cars: Vec<bool> = shares.iter().map(|&s| has_car(s)).collect();
    assert_eq!(cars, [false, true, false, false]);
    // tile 3 starts at row 256, column 256
    assert_eq!(tiles[3].raw.data()[0], image.data()[256 * w + 256]);
    assert_eq!(tiles[3].mask.as_ref().unwrap()[44 * 256 + 44], 1);

    let kept: Vec<_> = keep_car_tiles(tiles, 5)
        .into_iter()
        .map(|t| (t.name, t.car_share.unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            ("05_00000".to_string(), 0.5),
            ("05_00001".to_string(), 212.0 / 65536.0)
        ]
    );
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let file = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    (file.shape().to_vec(), file.into_vec::<f32>().unwrap())
}

#[test]
fn views_renders_a_dng_centre_tile_with_its_own_camera() {
    let dir = tempfile::tempdir().unwrap();
    let data = ramp(300, 280);
    let bytes = small_dng(300, 280, RGGB, 256, 4095, [0.5, 1.0, 0.8], CAM_XYZ, &data);
    std::fs::write(dir.path().join("raw.dng"), &bytes).unwrap();
    let out = lens2logit(&["views", "raw.dng", "--out", "v.npy"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("AsShotNeutral"));

    let decoded = decode_dng(&bytes, "raw.dng").unwrap();
    let tile = centre_tile(&decoded.mosaic, 256).unwrap();
    let view: View = "bilinear-unsharp_masking-gaussian_denoising"
        .parse()
        .unwrap();
    let (shape, got) = read_npy(&dir.path().join("v.npy"));
    assert_eq!(shape, vec![256, 256, 3]);
    assert_eq!(got, render(&tile, &decoded.camera, view).unwrap().data);

    lens2logit_ok(
        &["views", "raw.dng", "--camera", "drone", "--out", "d.npy"],
        dir.path(),
    );
    let (_, drone) = read_npy(&dir.path().join("d.npy"));
    assert_eq!(
        drone,
        render(&tile, &CameraParams::drone(), view).unwrap().data
    );

    // a tile without --camera says what is missing
    std::fs::write(
        dir.path().join("t.npy"),
        lens2logit::codecs::npy_f32(&[2, 2], &[0.0; 4]).unwrap(),
    )
    .unwrap();
    let out = lens2logit(&["views", "t.npy", "--out", "t_view.npy"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--camera"));
}

#[test]
fn train_takes_camera_raws_classified_by_photo_with_their_camera() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::PathBuf::from(dir.path()).join("photos");
    std::fs::create_dir(&data).unwrap();
    // two photos of 512x256: two 256 px tiles each, classed by photo
    for (name, neutral) in [
        ("beach.dng", [0.5, 1.0, 0.8]),
        ("forest.DNG", [0.6, 1.0, 0.7]),
    ] {
        let bytes = small_dng(512, 256, RGGB, 256, 4095, neutral, CAM_XYZ, &ramp(512, 256));
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let out = lens2logit(
        &[
            "train",
            "--data",
            "photos",
            "--task",
            "classification",
            "--mode",
            "synthesis",
            "--model",
            "resnet_small",
            "--steps",
            "2",
            "--batch",
            "2",
            "--out",
            "run",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("camera from beach.dng"), "{stderr}");
    // the classes are the photos
    let config = std::fs::read_to_string(dir.path().join("run/config.json")).unwrap();
    assert!(
        config.contains("\"beach\"") && config.contains("\"forest\""),
        "{config}"
    );
}
