//! Menon, Andriani and Calvagno (2007), "Demosaicing With Directional Filtering and a
//! posteriori Decision" (DDFAPD), with its refining step, as colour-demosaicing implements it:
//! 1-D filters with scipy.ndimage mode 'mirror', the direction classifier with mode 'constant'.
//!
//! The classifier picks horizontal or vertical green per pixel by `d_V >= d_H`. On quantized
//! mosaics these sums tie exactly at many pixels, so the last bit of rounding decides the
//! direction there; see the parity tests for how that is judged.

use super::super::filters::{convolve, convolve1d};
use super::super::plane::{Border, Plane};
use super::{channel, is_green, red_column, red_row, set_where};
use crate::raw::BayerSite;

fn cnv_h(p: &Plane, k: &[f64]) -> Plane {
    convolve1d(p, k, 1, Border::Mirror)
}

fn cnv_v(p: &Plane, k: &[f64]) -> Plane {
    convolve1d(p, k, 0, Border::Mirror)
}

/// `p[y, x + 2]` (axis 1) or `p[y + 2, x]` (axis 0), numpy's pad mode 'reflect' (= 'mirror').
fn shifted_by_two(p: &Plane, axis: usize) -> Plane {
    let k = [0.0, 0.0, 0.0, 0.0, 1.0];
    super::super::filters::correlate1d(p, &k, axis, Border::Mirror)
}

const K_B: [f64; 3] = [0.5, 0.0, 0.5];
const FIR: [f64; 3] = [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];

const DIRECTION: [[f64; 5]; 5] = [
    [0.0, 0.0, 1.0, 0.0, 1.0],
    [0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 3.0, 0.0, 3.0],
    [0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 1.0],
];

/// `a + b - c` element-wise, in numpy's order of evaluation.
fn add_sub(a: &Plane, b: &Plane, c: &Plane) -> Plane {
    a.like(
        a.data
            .iter()
            .zip(&b.data)
            .zip(&c.data)
            .map(|((a, b), c)| a + b - c)
            .collect(),
    )
}

pub fn menon2007(cfa: &Plane) -> [Plane; 3] {
    let mut r = channel(cfa, 0);
    let g = channel(cfa, 1);
    let mut b = channel(cfa, 2);
    let (h0, h1) = ([0.0, 0.5, 0.0, 0.5, 0.0], [-0.25, 0.0, 0.5, 0.0, -0.25]);

    let mut g_h = g.clone();
    let (h_a, h_b) = (cnv_h(cfa, &h0), cnv_h(cfa, &h1));
    set_where(&mut g_h, |s| !is_green(s), |i| h_a.data[i] + h_b.data[i]);
    let mut g_v = g.clone();
    let (v_a, v_b) = (cnv_v(cfa, &h0), cnv_v(cfa, &h1));
    set_where(&mut g_v, |s| !is_green(s), |i| v_a.data[i] + v_b.data[i]);

    // colour differences at red and blue sites, zero at green
    let difference = |g_dir: &Plane| {
        let mut c = Plane::zeros(cfa.width, cfa.height);
        set_where(
            &mut c,
            |s| s == BayerSite::Red,
            |i| r.data[i] - g_dir.data[i],
        );
        set_where(
            &mut c,
            |s| s == BayerSite::Blue,
            |i| b.data[i] - g_dir.data[i],
        );
        c
    };
    let (c_h, c_v) = (difference(&g_h), difference(&g_v));
    let d_h = c_h.zip_map(&shifted_by_two(&c_h, 1), |a, b| (a - b).abs());
    let d_v = c_v.zip_map(&shifted_by_two(&c_v, 0), |a, b| (a - b).abs());
    let transposed: [[f64; 5]; 5] =
        std::array::from_fn(|i| std::array::from_fn(|j| DIRECTION[j][i]));
    let d_h = convolve(&d_h, DIRECTION, Border::Zero);
    let d_v = convolve(&d_v, transposed, Border::Zero);

    let horizontal: Vec<bool> = d_v
        .data
        .iter()
        .zip(&d_h.data)
        .map(|(v, h)| v >= h)
        .collect();
    let g = g.like(
        (0..g.data.len())
            .map(|i| {
                if horizontal[i] {
                    g_h.data[i]
                } else {
                    g_v.data[i]
                }
            })
            .collect(),
    );

    let green_red_row = |s: BayerSite| is_green(s) && red_row(s);
    let green_blue_row = |s: BayerSite| is_green(s) && !red_row(s);

    let est = add_sub(&g, &cnv_h(&r, &K_B), &cnv_h(&g, &K_B));
    set_where(&mut r, green_red_row, |i| est.data[i]);
    let est = add_sub(&g, &cnv_v(&r, &K_B), &cnv_v(&g, &K_B));
    set_where(&mut r, green_blue_row, |i| est.data[i]);
    let est = add_sub(&g, &cnv_h(&b, &K_B), &cnv_h(&g, &K_B));
    set_where(&mut b, green_blue_row, |i| est.data[i]);
    let est = add_sub(&g, &cnv_v(&b, &K_B), &cnv_v(&g, &K_B));
    set_where(&mut b, green_red_row, |i| est.data[i]);

    let (est_h, est_v) = (
        add_sub(&b, &cnv_h(&r, &K_B), &cnv_h(&b, &K_B)),
        add_sub(&b, &cnv_v(&r, &K_B), &cnv_v(&b, &K_B)),
    );
    set_where(
        &mut r,
        |s| s == BayerSite::Blue,
        |i| {
            if horizontal[i] {
                est_h.data[i]
            } else {
                est_v.data[i]
            }
        },
    );
    let (est_h, est_v) = (
        add_sub(&r, &cnv_h(&b, &K_B), &cnv_h(&r, &K_B)),
        add_sub(&r, &cnv_v(&b, &K_B), &cnv_v(&r, &K_B)),
    );
    set_where(
        &mut b,
        |s| s == BayerSite::Red,
        |i| {
            if horizontal[i] {
                est_h.data[i]
            } else {
                est_v.data[i]
            }
        },
    );

    refine([r, g, b], &horizontal)
}

/// The refining step: green updated from smoothed colour differences, then red and blue at green
/// sites, then red (blue) at blue (red) sites, each along the chosen direction.
fn refine([mut r, mut g, mut b]: [Plane; 3], horizontal: &[bool]) -> [Plane; 3] {
    let along = |p: &Plane, i_is_h: &dyn Fn(usize) -> bool| -> Plane {
        let (h, v) = (cnv_h(p, &FIR), cnv_v(p, &FIR));
        p.like(
            (0..p.data.len())
                .map(|i| if i_is_h(i) { h.data[i] } else { v.data[i] })
                .collect(),
        )
    };
    let dir = |i: usize| horizontal[i];

    // green at red and blue sites
    let r_g = r.zip_map(&g, |a, b| a - b);
    let b_g = b.zip_map(&g, |a, b| a - b);
    let b_g_m = along(&b_g, &dir);
    let r_g_m = along(&r_g, &dir);
    set_where(
        &mut g,
        |s| s == BayerSite::Red,
        |i| r.data[i] - r_g_m.data[i],
    );
    set_where(
        &mut g,
        |s| s == BayerSite::Blue,
        |i| b.data[i] - b_g_m.data[i],
    );

    // red and blue at green sites
    let r_g = r.zip_map(&g, |a, b| a - b);
    let b_g = b.zip_map(&g, |a, b| a - b);
    let green_blue_row = |s: BayerSite| is_green(s) && !red_row(s);
    let green_blue_column = |s: BayerSite| is_green(s) && !red_column(s);
    let green_red_row = |s: BayerSite| is_green(s) && red_row(s);
    let green_red_column = |s: BayerSite| is_green(s) && red_column(s);
    let v = cnv_v(&r_g, &K_B);
    set_where(&mut r, green_blue_row, |i| g.data[i] + v.data[i]);
    let h = cnv_h(&r_g, &K_B);
    set_where(&mut r, green_blue_column, |i| g.data[i] + h.data[i]);
    let v = cnv_v(&b_g, &K_B);
    set_where(&mut b, green_red_row, |i| g.data[i] + v.data[i]);
    let h = cnv_h(&b_g, &K_B);
    set_where(&mut b, green_red_column, |i| g.data[i] + h.data[i]);

    // red at blue sites, then blue at red sites
    let r_b = r.zip_map(&b, |a, b| a - b);
    let r_b_m = along(&r_b, &dir);
    set_where(
        &mut r,
        |s| s == BayerSite::Blue,
        |i| b.data[i] + r_b_m.data[i],
    );
    set_where(
        &mut b,
        |s| s == BayerSite::Red,
        |i| r.data[i] - r_b_m.data[i],
    );
    [r, g, b]
}
