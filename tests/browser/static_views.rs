//! The static views in the browser against the same golden arrays as natively (the tie-free
//! synthetic fixture: every view, so every demosaicing, within 1e-5).

use wasm_bindgen_test::*;

use crate::shared::golden::read_npz;
use crate::shared::static_views::{check, fixture_tile, golden_views};

#[wasm_bindgen_test]
fn synthetic_tile_all_views_within_1e_5() {
    let golden = read_npz(include_bytes!("../golden/static_synthetic.npz"));
    let report = check(&golden, &fixture_tile(&golden), &golden_views(), false);
    assert_eq!(report.len(), 26);
}
