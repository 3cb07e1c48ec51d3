//! Small archives in the real folder layout of the paper's Zenodo record, built from synthetic
//! tiles: what the Zenodo-like server serves to the native and page tests.

use std::io::{Cursor, Write};

use lens2logit::arrays::{png8, tiff_gray16};
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
    let mut labels = String::new();
    let mut index = 0;
    for (class, n) in CLASSES {
        for _ in 0..n {
            let name = format!("Cell_{index:03}");
            for (folder, intensity) in [("raw_scale100", 100.0), ("raw_scale050", 50.0)] {
                zip.start_file(
                    format!("Raw-Microscopy/microscopy/images/{folder}/{name}.tiff"),
                    options,
                )
                .unwrap();
                zip.write_all(&tiff(Task::Classification, index, intensity))
                    .unwrap();
            }
            labels.push_str(&format!("{name} {class}\n"));
            index += 1;
        }
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
    for i in 0..DRONE_TILES {
        let s = sample(Task::Segmentation, 11, i, TILE, 100.0).unwrap();
        let stem = format!("DJI_{i:04}_0_0");
        let mask: Vec<u8> = s.mask.unwrap().iter().map(|m| m * 255).collect();
        zip.start_file(
            format!("Raw-Drone/drone/masks_tiles_256/{stem}.png"),
            options,
        )
        .unwrap();
        zip.write_all(&png8(TILE, TILE, 1, &mask).unwrap()).unwrap();
        zip.start_file(
            format!("Raw-Drone/drone/images_tiles_256/raw_scale100/{stem}.tif"),
            options,
        )
        .unwrap();
        zip.write_all(&tiff_gray16(TILE, TILE, s.raw.data()).unwrap())
            .unwrap();
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
