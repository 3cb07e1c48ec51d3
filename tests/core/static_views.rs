//! The 12 views against golden arrays from numpy/scipy/colour-demosaicing
//! (tests/reference/static_views.py), on a tie-free synthetic tile and crops of the two real
//! demo tiles, which are read from ../shared/data/raw2logit-demo (never copied here).

use std::path::PathBuf;

use lens2logit::raw::{decode_tile, RawTile};

use crate::shared::golden::read_npz;
use crate::shared::static_views::{check, fixture_tile, golden_views};

/// The repository's root (these tests belong to the CLI's package, `crate/cli`).
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn golden(name: &str) -> std::collections::HashMap<String, crate::shared::golden::Array> {
    let path = format!("{ROOT}/tests/golden/static_{name}.npz");
    read_npz(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// The shared demo folder: $LENS2LOGIT_DEMO_DATA, else ../shared/data/raw2logit-demo.
pub fn demo_dir() -> PathBuf {
    let dir = std::env::var_os("LENS2LOGIT_DEMO_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ROOT).join("../shared/data/raw2logit-demo"));
    assert!(
        dir.join("micro.png").is_file(),
        "demo tiles not found in {} (set LENS2LOGIT_DEMO_DATA)",
        dir.display()
    );
    dir
}

/// A 48x48 crop of a demo tile at an even offset (the crop the reference script takes).
fn demo_crop(name: &str, y0: usize, x0: usize) -> RawTile {
    let path = demo_dir().join(format!("{name}.png"));
    let full = decode_tile(&std::fs::read(&path).unwrap(), name).unwrap();
    let data = (y0..y0 + 48)
        .flat_map(|y| full.data()[y * full.width() + x0..y * full.width() + x0 + 48].to_vec())
        .collect();
    RawTile::new(48, 48, data).unwrap()
}

#[test]
fn synthetic_tile_all_views_within_1e_5() {
    let g = golden("synthetic");
    for line in check(&g, &fixture_tile(&g), &golden_views(), false) {
        println!("synthetic {line}");
    }
}

#[test]
fn real_tiles_match_bilinear_malvar_exactly_and_menon_by_psnr() {
    for (name, y0, x0) in [("micro", 32, 64), ("car", 32, 176)] {
        let g = golden(name);
        let tile = demo_crop(name, y0, x0);
        assert_eq!(
            tile,
            fixture_tile(&g),
            "{name}: decoding differs from the reference's input"
        );
        for line in check(&g, &tile, &golden_views(), true) {
            println!("{name} {line}");
        }
    }
}
