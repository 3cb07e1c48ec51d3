//! Bilinear demosaicing (colour-demosaicing's `demosaicing_CFA_Bayer_bilinear`): each channel's
//! samples convolved with a 3x3 kernel, scipy.ndimage mode 'reflect'.

use super::super::filters::convolve;
use super::super::plane::{Border, Plane};
use super::channel;

const H_G: [[f64; 3]; 3] = [[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]];
const H_RB: [[f64; 3]; 3] = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]];

pub fn bilinear(cfa: &Plane) -> [Plane; 3] {
    [
        convolve(&channel(cfa, 0), H_RB, Border::Reflect),
        convolve(&channel(cfa, 1), H_G, Border::Reflect),
        convolve(&channel(cfa, 2), H_RB, Border::Reflect),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_mosaic_stays_flat_inside() {
        let cfa = Plane::from_fn(8, 8, |_, _| 0.5);
        let [r, g, b] = bilinear(&cfa);
        for p in [&r, &g, &b] {
            assert!((p.at(4, 4) - 0.5).abs() < 1e-12);
        }
    }
}
