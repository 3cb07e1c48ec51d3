//! Malvar, He and Cutler (2004), "High-quality linear interpolation for demosaicing of
//! Bayer-patterned color images", as colour-demosaicing implements it: 5x5 gradient-corrected
//! kernels over the whole mosaic (scipy.ndimage.convolve, mode 'reflect'), chosen per site.

use super::super::filters::convolve;
use super::super::plane::{Border, Plane};
use super::{channel, is_green, red_column, red_row, set_where};
use crate::raw::BayerSite;

const GR_GB: [[f64; 5]; 5] = [
    [0.0, 0.0, -0.125, 0.0, 0.0],
    [0.0, 0.0, 0.25, 0.0, 0.0],
    [-0.125, 0.25, 0.5, 0.25, -0.125],
    [0.0, 0.0, 0.25, 0.0, 0.0],
    [0.0, 0.0, -0.125, 0.0, 0.0],
];

const RG_RB_BG_BR: [[f64; 5]; 5] = [
    [0.0, 0.0, 0.0625, 0.0, 0.0],
    [0.0, -0.125, 0.0, -0.125, 0.0],
    [-0.125, 0.5, 0.625, 0.5, -0.125],
    [0.0, -0.125, 0.0, -0.125, 0.0],
    [0.0, 0.0, 0.0625, 0.0, 0.0],
];

const RB_BB_BR_RR: [[f64; 5]; 5] = [
    [0.0, 0.0, -0.1875, 0.0, 0.0],
    [0.0, 0.25, 0.0, 0.25, 0.0],
    [-0.1875, 0.0, 0.75, 0.0, -0.1875],
    [0.0, 0.25, 0.0, 0.25, 0.0],
    [0.0, 0.0, -0.1875, 0.0, 0.0],
];

fn transpose(k: [[f64; 5]; 5]) -> [[f64; 5]; 5] {
    std::array::from_fn(|i| std::array::from_fn(|j| k[j][i]))
}

pub fn malvar2004(cfa: &Plane) -> [Plane; 3] {
    let mut r = channel(cfa, 0);
    let mut g = channel(cfa, 1);
    let mut b = channel(cfa, 2);

    let g_at_rb = convolve(cfa, GR_GB, Border::Reflect);
    set_where(&mut g, |s| !is_green(s), |i| g_at_rb.data[i]);

    let rbg_rbbr = convolve(cfa, RG_RB_BG_BR, Border::Reflect);
    let rbg_brrb = convolve(cfa, transpose(RG_RB_BG_BR), Border::Reflect);
    let rbgr_bbrr = convolve(cfa, RB_BB_BR_RR, Border::Reflect);

    // green on a red row: red comes along the row, blue across it (and the other way round)
    let green_red_row = |s: BayerSite| red_row(s) && !red_column(s);
    let green_blue_row = |s: BayerSite| !red_row(s) && red_column(s);
    set_where(&mut r, green_red_row, |i| rbg_rbbr.data[i]);
    set_where(&mut r, green_blue_row, |i| rbg_brrb.data[i]);
    set_where(&mut b, green_blue_row, |i| rbg_rbbr.data[i]);
    set_where(&mut b, green_red_row, |i| rbg_brrb.data[i]);
    set_where(&mut r, |s| s == BayerSite::Blue, |i| rbgr_bbrr.data[i]);
    set_where(&mut b, |s| s == BayerSite::Red, |i| rbgr_bbrr.data[i]);
    [r, g, b]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_sum_to_one() {
        for k in [GR_GB, RG_RB_BG_BR, RB_BB_BR_RR] {
            let s: f64 = k.iter().flatten().sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }
}
