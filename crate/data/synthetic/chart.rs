//! A colour-checker chart as a raw tile: the classic 24 patches, whose processed colours are
//! known, so every ISP stage can be judged by eye and by number.

use crate::isp::unprocess::unprocess;
use crate::raw::{CameraParams, RawTile};
use crate::Result;

/// The 24 ColorChecker patches in sRGB (8 bit), row by row as printed on the chart.
const PATCHES: [[u8; 3]; 24] = [
    [115, 82, 68],
    [194, 150, 130],
    [98, 122, 157],
    [87, 108, 67],
    [133, 128, 177],
    [103, 189, 170],
    [214, 126, 44],
    [80, 91, 166],
    [193, 90, 99],
    [94, 60, 108],
    [157, 188, 64],
    [224, 163, 46],
    [56, 61, 150],
    [70, 148, 73],
    [175, 54, 60],
    [231, 199, 31],
    [187, 86, 149],
    [8, 133, 161],
    [243, 243, 242],
    [200, 200, 200],
    [160, 160, 160],
    [122, 122, 121],
    [85, 85, 85],
    [52, 52, 52],
];

/// The chart as display RGB, interleaved, `size` x `size` (6 x 4 patches on a dark frame).
pub fn chart_rgb(size: usize) -> Vec<f32> {
    let frame = [0.1f32; 3];
    let (cols, rows) = (6, 4);
    let cell_w = size as f32 / cols as f32;
    let cell_h = size as f32 / rows as f32;
    let mut rgb = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 / cell_w, y as f32 / cell_h);
            let (col, row) = (fx as usize, fy as usize);
            // a 12% frame around each patch
            let inside =
                fx.fract() > 0.12 && fx.fract() < 0.88 && fy.fract() > 0.12 && fy.fract() < 0.88;
            let colour = if inside && col < cols && row < rows {
                PATCHES[row * cols + col].map(|v| v as f32 / 255.0)
            } else {
                frame
            };
            rgb.extend_from_slice(&colour);
        }
    }
    rgb
}

/// The chart as the raw mosaic `camera` would have recorded.
pub fn colour_chart(size: usize, camera: &CameraParams) -> Result<RawTile> {
    unprocess(&chart_rgb(size), size, size, camera)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_deterministic_and_in_range() {
        let a = colour_chart(64, &CameraParams::drone()).unwrap();
        let b = colour_chart(64, &CameraParams::drone()).unwrap();
        assert_eq!(a, b);
        assert!(a.data().iter().all(|v| (0.0..=1.0).contains(v)));
        // the white patch (row 3, col 0) is brighter in the mosaic than the black one (row 3, col 5)
        let at = |x: usize, y: usize| a.data()[y * 64 + x];
        assert!(at(5, 56) > at(58, 56));
    }
}
