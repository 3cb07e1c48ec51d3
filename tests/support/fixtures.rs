//! Small archives in the real folder layout of the paper's Zenodo record, built from synthetic
//! tiles: what the Zenodo-like server serves to the native and page tests.

use std::io::{Cursor, Write};

use lens2logit::codecs::{png8, tiff_gray16};
use lens2logit::data::synthetic::sample;
use lens2logit::data::Task;
use lens2logit::isp::static_pipeline::{render, View};
use lens2logit::raw::CameraParams;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

pub const TILE: usize = 32;
/// Microscopy tiles per class in the fixture (BAS has fewer than 5 and must be dropped).
pub const CLASSES: [(&str, usize); 3] = [("LYT", 5), ("MON", 5), ("BAS", 2)];
pub const DRONE_TILES: usize = 4;
/// Entries `microscopy_zip` adds for a central directory larger than a random-access reader's
/// first request (128 KiB): about 100 bytes each.
pub const PADDED_ENTRIES: usize = 3000;

fn tiff(task: Task, index: usize, intensity: f64) -> Vec<u8> {
    let s = sample(task, 11, index, TILE, intensity).unwrap();
    tiff_gray16(TILE, TILE, s.raw.data()).unwrap()
}

/// Raw-Microscopy: deflated entries written as a stream, so each has a data descriptor; `padding`
/// empty files after them.
pub fn microscopy_zip(padding: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new_stream(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let (tiles, labels) = microscopy_files();
    for (folder, file, bytes) in tiles {
        zip.start_file(
            format!("Raw-Microscopy/microscopy/images/{folder}/{file}"),
            options,
        )
        .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.start_file("Raw-Microscopy/microscopy/labels/labels.dat", options)
        .unwrap();
    zip.write_all(labels.as_bytes()).unwrap();
    zip.start_file("Raw-Microscopy/README.txt", options)
        .unwrap();
    zip.write_all(b"fixture").unwrap();
    for i in 0..padding {
        zip.start_file(
            format!("Raw-Microscopy/microscopy/annotations/padding/entry_{i:05}.txt"),
            options,
        )
        .unwrap();
    }
    zip.finish().unwrap().into_inner().into_inner()
}

/// Raw-Drone: stored entries with their sizes up front (masks before their tiles).
pub fn drone_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (stem, tif, mask) in drone_files() {
        zip.start_file(
            format!("Raw-Drone/drone/masks_tiles_256/{stem}.png"),
            options,
        )
        .unwrap();
        zip.write_all(&mask).unwrap();
        zip.start_file(
            format!("Raw-Drone/drone/images_tiles_256/raw_scale100/{stem}.tif"),
            options,
        )
        .unwrap();
        zip.write_all(&tif).unwrap();
    }
    // the paper's own view of the first tile: ours, through its bilinear view
    let first = sample(Task::Segmentation, 11, 0, TILE, 100.0).unwrap();
    let view = render(&first.raw, &CameraParams::drone(), View::paper_views()[0]).unwrap();
    let rgb: Vec<u8> = view
        .to_rgba8()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    zip.start_file(
        "Raw-Drone/drone/processed_views/bilinear/DJI_0000_0_0.png",
        options,
    )
    .unwrap();
    zip.write_all(&png8(TILE, TILE, 3, &rgb).unwrap()).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Flips bytes in the middle of the first entry's data, so its CRC (and the file's MD5) fail.
pub fn corrupted(mut archive: Vec<u8>) -> Vec<u8> {
    let name_len = u16::from_le_bytes([archive[26], archive[27]]) as usize;
    let extra_len = u16::from_le_bytes([archive[28], archive[29]]) as usize;
    let data = 30 + name_len + extra_len;
    for b in &mut archive[data + 40..data + 48] {
        *b ^= 0x5a;
    }
    archive
}

/// A zip of `entries` (path, bytes), deflated.
fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (path, bytes) in entries {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The entry of `bomb_record` that inflates past the lab's limit for one file.
pub const BOMB_ENTRY: &str = "Raw-Microscopy/microscopy/images/raw_scale100/Cell_bomb.tiff";

/// A Raw-Microscopy record whose only tile at 100 % is a deflate bomb: zeros one byte past the
/// lab's limit for one file (160 KiB deflated), its size stated in the local header as well as
/// the central directory; beside it a real tile at 50 %.
pub fn bomb_record() -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    zip.start_file(BOMB_ENTRY, options).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = lens2logit::data::archive::MAX_ENTRY_BYTES + 1;
    while left > 0 {
        let n = left.min(zeros.len() as u64);
        zip.write_all(&zeros[..n as usize]).unwrap();
        left -= n;
    }
    let (tiles, _) = microscopy_files();
    let (folder, file, bytes) = tiles.into_iter().find(|t| t.0 == "raw_scale050").unwrap();
    zip.start_file(
        format!("Raw-Microscopy/microscopy/images/{folder}/{file}"),
        options,
    )
    .unwrap();
    zip.write_all(&bytes).unwrap();
    vec![(
        "Raw-Microscopy.zip".into(),
        zip.finish().unwrap().into_inner(),
    )]
}

/// A microscopy tile of the fixture: level folder, file, bytes.
type LevelTile = (&'static str, String, Vec<u8>);

/// The microscopy fixture's files and the labels' text.
fn microscopy_files() -> (Vec<LevelTile>, String) {
    let mut tiles = Vec::new();
    let mut labels = String::new();
    let mut index = 0;
    for (class, n) in CLASSES {
        for _ in 0..n {
            let name = format!("Cell_{index:03}");
            for (folder, intensity) in [("raw_scale100", 100.0), ("raw_scale050", 50.0)] {
                let bytes = tiff(Task::Classification, index, intensity);
                tiles.push((folder, format!("{name}.tiff"), bytes));
            }
            labels.push_str(&format!("{name} {class}\n"));
            index += 1;
        }
    }
    (tiles, labels)
}

/// The drone fixture's tiles: (stem, TIFF, mask PNG).
fn drone_files() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    (0..DRONE_TILES)
        .map(|i| {
            let s = sample(Task::Segmentation, 11, i, TILE, 100.0).unwrap();
            let mask: Vec<u8> = s.mask.unwrap().iter().map(|m| m * 255).collect();
            (
                format!("DJI_{i:04}_0_0"),
                tiff_gray16(TILE, TILE, s.raw.data()).unwrap(),
                png8(TILE, TILE, 1, &mask).unwrap(),
            )
        })
        .collect()
}

/// The same tiles, labels and masks as `microscopy_zip` and `drone_zip`, in another of the
/// layouts the record may have (the files of a record: key and bytes):
/// - `bare`: per-dataset zips whose entries have no `microscopy/images/`-style prefix;
/// - `nested`: per-dataset zips holding one zip per folder;
/// - `toplevel`: one zip per intensity folder, the labels and a zip of masks beside them as files
///   of the record.
pub fn layout(name: &str) -> Vec<(String, Vec<u8>)> {
    let (micro, labels) = microscopy_files();
    let drone = drone_files();
    let micro_at = |level: &str, prefix: &str| -> Vec<(String, Vec<u8>)> {
        micro
            .iter()
            .filter(|(l, _, _)| *l == level)
            .map(|(_, f, b)| (format!("{prefix}{f}"), b.clone()))
            .collect()
    };
    let drone_tiles = |prefix: &str| -> Vec<(String, Vec<u8>)> {
        drone
            .iter()
            .map(|(s, t, _)| (format!("{prefix}{s}.tif"), t.clone()))
            .collect()
    };
    let drone_masks = |prefix: &str| -> Vec<(String, Vec<u8>)> {
        drone
            .iter()
            .map(|(s, _, m)| (format!("{prefix}{s}.png"), m.clone()))
            .collect()
    };
    let labels = labels.into_bytes();
    match name {
        "bare" => {
            let mut m = micro_at("raw_scale100", "raw_scale100/");
            m.extend(micro_at("raw_scale050", "raw_scale050/"));
            m.push(("Ma190c_annotations.dat".into(), labels));
            let mut d = drone_tiles("images_tiles_256/raw_scale100/");
            d.extend(drone_masks("masks_tiles_256/"));
            vec![
                ("Raw-Microscopy.zip".into(), zip_of(&m)),
                ("Raw-Drone.zip".into(), zip_of(&d)),
            ]
        }
        "nested" => {
            let m = vec![
                (
                    "raw_scale100.zip".into(),
                    zip_of(&micro_at("raw_scale100", "")),
                ),
                (
                    "raw_scale050.zip".into(),
                    zip_of(&micro_at("raw_scale050", "")),
                ),
                ("labels/Ma190c_annotations.dat".into(), labels),
            ];
            let d = vec![
                (
                    "images_tiles_256.zip".into(),
                    zip_of(&drone_tiles("raw_scale100/")),
                ),
                ("masks_tiles_256.zip".into(), zip_of(&drone_masks(""))),
            ];
            vec![
                ("Raw-Microscopy.zip".into(), zip_of(&m)),
                ("Raw-Drone.zip".into(), zip_of(&d)),
            ]
        }
        "toplevel" => vec![
            (
                "raw_scale100.zip".into(),
                zip_of(&micro_at("raw_scale100", "")),
            ),
            (
                "raw_scale050.zip".into(),
                zip_of(&micro_at("raw_scale050", "")),
            ),
            ("Ma190c_annotations.dat".into(), labels),
            (
                "Raw-Drone.zip".into(),
                zip_of(&drone_tiles("raw_scale100/")),
            ),
            ("masks_tiles_256.zip".into(), zip_of(&drone_masks(""))),
        ],
        other => panic!("no fixture layout {other}"),
    }
}

/// Side of the fixture's full drone images: 2x2 tiles of 256 px each.
pub const FULL_SIDE: usize = 512;

/// A 1-bit PNG mask, as the paper's code writes them: car where `car(row, column)`.
pub fn png1(width: usize, height: usize, car: impl Fn(usize, usize) -> bool) -> Vec<u8> {
    let stride = width.div_ceil(8);
    let mut packed = vec![0u8; stride * height];
    for y in 0..height {
        for x in 0..width {
            if car(y, x) {
                packed[y * stride + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(&packed)
        .unwrap();
    out
}

/// Cars (rectangles: top, left, side) on the two full images: image 0 has one in its first
/// tile (900 px, 1.4%: "car") and a small one in its second (100 px: left out of classification,
/// kept by segmentation); image 1 one in its last tile.
pub const FULL_CARS: [&[(usize, usize, usize)]; 2] =
    [&[(20, 20, 30), (40, 300, 10)], &[(400, 400, 30)]];

/// A Raw-Drone record of full images (DNG) and their full masks only, in one zip.
pub fn full_image_record() -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    for (image, cars) in FULL_CARS.iter().enumerate() {
        let scene = sample(Task::Segmentation, 5, image, FULL_SIDE, 100.0).unwrap();
        let data: Vec<u16> = scene
            .raw
            .data()
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 4095.0).round() as u16)
            .collect();
        let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let dng = crate::dng::small_dng(
            FULL_SIDE as u32,
            FULL_SIDE as u32,
            [0, 1, 1, 2],
            256,
            4095,
            [0.5, 1.0, 0.6],
            identity,
            &data,
        );
        let car = |y: usize, x: usize| {
            cars.iter().any(|&(top, left, side)| {
                (top..top + side).contains(&y) && (left..left + side).contains(&x)
            })
        };
        let stem = format!("DJI_{:04}", image + 1);
        entries.push((format!("drone/images_full/raw_scale100/{stem}.DNG"), dng));
        entries.push((
            format!("drone/masks_full/{stem}.png"),
            png1(FULL_SIDE, FULL_SIDE, car),
        ));
    }
    vec![("Raw-Drone.zip".into(), zip_of(&entries))]
}

/// The drone fixture with the paper's views in one flat folder, the view after the tile's stem.
pub fn flat_views_record() -> Vec<(String, Vec<u8>)> {
    let drone = drone_files();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for (stem, tif, mask) in &drone {
        entries.push((format!("raw_scale100/{stem}.tif"), tif.clone()));
        entries.push((format!("masks_tiles_256/{stem}.png"), mask.clone()));
    }
    let first = sample(Task::Segmentation, 11, 0, TILE, 100.0).unwrap();
    for view in View::paper_views().into_iter().take(2) {
        let image = render(&first.raw, &CameraParams::drone(), view).unwrap();
        let rgb: Vec<u8> = image
            .to_rgba8()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        entries.push((
            format!("processed_views/DJI_0000_0_0_{view}.png"),
            png8(TILE, TILE, 3, &rgb).unwrap(),
        ));
    }
    vec![("Raw-Drone.zip".into(), zip_of(&entries))]
}

/// Two photos as a user's camera writes them (DNG, 512x256: two 256 px tiles each), for dropping
/// into the page: (file name, bytes).
pub fn photos() -> Vec<(String, Vec<u8>)> {
    // XYZ -> camera, D65: a camera whose colours differ from sRGB's
    let cam_xyz = [0.9, -0.2, -0.1, -0.4, 1.3, 0.1, -0.1, 0.2, 0.6];
    [
        ("beach.dng", 3, [0.5, 1.0, 0.8]),
        ("forest.dng", 4, [0.6, 1.0, 0.7]),
    ]
    .into_iter()
    .map(|(name, seed, neutral)| {
        let scene = sample(Task::Classification, seed, 0, 256, 100.0).unwrap();
        let data: Vec<u16> = (0..256)
            .flat_map(|y| {
                let row = &scene.raw.data()[y * 256..(y + 1) * 256];
                // the photo is the scene twice side by side, the second half brighter
                row.iter().chain(row).enumerate().map(|(x, v)| {
                    let gain = if x < 256 { 1.0 } else { 1.3 };
                    (256.0 + (v * gain).clamp(0.0, 1.0) * 3800.0).round() as u16
                })
            })
            .collect();
        let dng = crate::dng::small_dng(512, 256, [0, 1, 1, 2], 256, 4095, neutral, cam_xyz, &data);
        (name.to_string(), dng)
    })
    .collect()
}
