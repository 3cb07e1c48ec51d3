//! What the lab draws, computed here (the page only blits): images of ISP stages scaled for the
//! eye, per-channel histograms, and gradient heatmaps through a perceptual colour map.

pub mod draw;
pub mod inspect;

use crate::isp::static_pipeline::Plane;

/// An RGBA8 image.
#[derive(Debug, Clone, PartialEq)]
pub struct Rgba {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgba {
    /// An 8-bit RGB or RGBA PNG (what the lab writes: a run's adversarial images) as RGBA.
    pub fn from_png(bytes: &[u8], what: &str) -> crate::Result<Self> {
        let bad = |e: &dyn std::fmt::Display| crate::Error::decode(what, e);
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
        let (width, height) = (reader.info().width as usize, reader.info().height as usize);
        crate::spec::limits::IMAGE_SIDE.check_usize(width.max(height))?;
        let mut buf = vec![
            0;
            reader
                .output_buffer_size()
                .ok_or_else(|| bad(&"too large"))?
        ];
        let frame = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
        let channels = frame.color_type.samples();
        let pixels = &buf[..frame.buffer_size()];
        let data = match channels {
            4 => pixels.to_vec(),
            3 => pixels
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            1 => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            2 => pixels
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            n => return Err(bad(&format!("{n} channels"))),
        };
        Ok(Self {
            width,
            height,
            data,
        })
    }
}

/// A segmentation mask (non-zero: the class) as a translucent red overlay.
pub fn mask_overlay(mask: &[u8], width: usize, height: usize) -> Rgba {
    let data = mask
        .iter()
        .flat_map(|&m| if m > 0 { [230, 30, 30, 140] } else { [0; 4] })
        .collect();
    Rgba {
        width,
        height,
        data,
    }
}

/// The colour map of heatmaps (inferno: dark is small, bright is large, legible in grey).
pub fn colour(t: f64) -> [u8; 3] {
    let c = colorous::INFERNO.eval_continuous(t.clamp(0.0, 1.0));
    [c.r, c.g, c.b]
}

/// A horizontal legend strip of the colour map, `width` x `height`.
pub fn legend(width: usize, height: usize) -> Rgba {
    let mut data = Vec::with_capacity(width * height * 4);
    for _ in 0..height {
        for x in 0..width {
            let [r, g, b] = colour(x as f64 / (width.max(2) - 1) as f64);
            data.extend_from_slice(&[r, g, b, 255]);
        }
    }
    Rgba {
        width,
        height,
        data,
    }
}

/// Values as a heatmap, scaled by `max` (values above saturate).
pub fn heatmap(values: &[f32], width: usize, height: usize, max: f32) -> Rgba {
    let scale = if max > 0.0 { 1.0 / max as f64 } else { 0.0 };
    let data = values
        .iter()
        .flat_map(|&v| {
            let [r, g, b] = colour(v as f64 * scale);
            [r, g, b, 255]
        })
        .collect();
    Rgba {
        width,
        height,
        data,
    }
}

/// The 99th percentile of values: the display scale that one hot pixel does not wash out.
pub fn robust_max(values: &[f32]) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f64 * 0.99) as usize;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// Three planes (any range) as an image: scaled so the 99th percentile is white and encoded with
/// gamma 2.2, so linear intermediate stages are visible; negative values show as black.
pub fn planes_rgba(planes: &[&Plane; 3]) -> Rgba {
    let all: Vec<f32> = planes
        .iter()
        .flat_map(|p| p.data.iter().map(|&v| v as f32))
        .collect();
    let max = robust_max(&all).max(1e-12) as f64;
    let (w, h) = (planes[0].width, planes[0].height);
    let mut data = Vec::with_capacity(w * h * 4);
    for i in 0..w * h {
        for p in planes {
            data.push(((p.data[i] / max).clamp(0.0, 1.0).powf(1.0 / 2.2) * 255.0).round() as u8);
        }
        data.push(255);
    }
    Rgba {
        width: w,
        height: h,
        data,
    }
}

/// Per-channel histogram of planes: (lower edge, upper edge, counts per channel per bin).
pub fn histogram(planes: &[&Plane], bins: usize) -> (f64, f64, Vec<Vec<u32>>) {
    let finite = || {
        planes
            .iter()
            .flat_map(|p| p.data.iter().copied())
            .filter(|v| v.is_finite())
    };
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let counts = planes
        .iter()
        .map(|p| {
            let mut c = vec![0u32; bins];
            for &v in p.data.iter().filter(|v| v.is_finite()) {
                let b = (((v - lo) / (hi - lo)) * bins as f64) as usize;
                c[b.min(bins - 1)] += 1;
            }
            c
        })
        .collect();
    (lo, hi, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_legend_and_histogram() {
        let h = heatmap(&[0.0, 1.0, 2.0], 3, 1, 1.0);
        assert_eq!(
            &h.data[8..12],
            &h.data[4..8],
            "values above the scale saturate"
        );
        assert_ne!(&h.data[0..4], &h.data[4..8]);
        assert_eq!(legend(10, 2).data.len(), 80);
        let p = Plane {
            width: 2,
            height: 2,
            data: vec![0.0, 0.5, 1.0, 1.0],
        };
        let (lo, hi, counts) = histogram(&[&p], 2);
        assert_eq!((lo, hi), (0.0, 1.0));
        assert_eq!(counts[0], vec![1, 3]);
        assert_eq!(robust_max(&[1.0; 200]), 1.0);
    }
}
