//! The scipy filters the paper's views use, reproduced to the last few bits: ndimage's correlate /
//! convolve (any border), gaussian_filter and median_filter, and signal.convolve2d 'same'.

use super::plane::{Border, Plane};

/// One weight of a 2-D stencil at offset (dy, dx) from the output pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tap {
    pub dy: isize,
    pub dx: isize,
    pub w: f64,
}

/// The non-zero taps of a square kernel written as in scipy, for correlation (no flip).
pub fn taps<const N: usize>(kernel: [[f64; N]; N]) -> Vec<Tap> {
    let c = (N / 2) as isize;
    let mut out = Vec::new();
    for (j, row) in kernel.iter().enumerate() {
        for (i, &w) in row.iter().enumerate() {
            if w != 0.0 {
                out.push(Tap {
                    dy: j as isize - c,
                    dx: i as isize - c,
                    w,
                });
            }
        }
    }
    out
}

/// Convolution flips the kernel: ndimage.convolve(x, k) == correlate(x, k[::-1, ::-1]).
pub fn flipped(taps: &[Tap]) -> Vec<Tap> {
    taps.iter()
        .map(|t| Tap {
            dy: -t.dy,
            dx: -t.dx,
            w: t.w,
        })
        .collect()
}

/// out[y, x] = sum over taps of w * in[y + dy, x + dx], borders per `border`.
pub fn correlate(plane: &Plane, taps: &[Tap], border: Border) -> Plane {
    let ry = taps.iter().map(|t| t.dy.unsigned_abs()).max().unwrap_or(0);
    let rx = taps.iter().map(|t| t.dx.unsigned_abs()).max().unwrap_or(0);
    let padded = plane.padded(ry, rx, border);
    let (w, h, pw) = (plane.width, plane.height, padded.width);
    let source = |y: usize, tap: &Tap| {
        let (sy, ox) = (
            (y as isize + ry as isize + tap.dy) as usize,
            (rx as isize + tap.dx) as usize,
        );
        &padded.data[sy * pw + ox..sy * pw + ox + w]
    };
    // Row by row, tap by tap over the whole row: a multiply-add over contiguous slices that
    // vectorises, with the row in cache across its taps; the first tap writes (the sum's order,
    // and so every bit, is that of a zeroed row accumulating every tap).
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        let start = data.len();
        match taps.split_first() {
            None => data.resize(start + w, 0.0),
            Some((first, rest)) => {
                data.extend(source(y, first).iter().map(|s| first.w * s));
                let dst = &mut data[start..];
                for tap in rest {
                    for (d, s) in dst.iter_mut().zip(source(y, tap)) {
                        *d += tap.w * s;
                    }
                }
            }
        }
    }
    Plane {
        width: w,
        height: h,
        data,
    }
}

/// scipy.ndimage.convolve(plane, kernel, mode) for an odd square kernel.
pub fn convolve<const N: usize>(plane: &Plane, kernel: [[f64; N]; N], border: Border) -> Plane {
    correlate(plane, &flipped(&taps(kernel)), border)
}

/// scipy.ndimage.convolve1d along `axis` (0: down the columns, 1: along the rows).
pub fn convolve1d(plane: &Plane, weights: &[f64], axis: usize, border: Border) -> Plane {
    correlate(plane, &flipped(&taps1d(weights, axis)), border)
}

/// scipy.ndimage.correlate1d along `axis`.
pub fn correlate1d(plane: &Plane, weights: &[f64], axis: usize, border: Border) -> Plane {
    correlate(plane, &taps1d(weights, axis), border)
}

fn taps1d(weights: &[f64], axis: usize) -> Vec<Tap> {
    let c = (weights.len() / 2) as isize;
    weights
        .iter()
        .enumerate()
        .filter(|(_, &w)| w != 0.0)
        .map(|(i, &w)| {
            let d = i as isize - c;
            if axis == 0 {
                Tap { dy: d, dx: 0, w }
            } else {
                Tap { dy: 0, dx: d, w }
            }
        })
        .collect()
}

/// scipy.ndimage's 1-D gaussian weights: radius int(truncate * sigma + 0.5), normalised.
pub fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    let radius = (truncate * sigma + 0.5) as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
        .collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// scipy.ndimage.gaussian_filter with a sigma per axis (0 leaves that axis alone), mode 'reflect',
/// truncate 4: axis 0 first, then axis 1, as scipy does.
pub fn gaussian_filter(plane: &Plane, sigma: [f64; 2]) -> Plane {
    let mut out = plane.clone();
    for (axis, &s) in sigma.iter().enumerate() {
        if s > 0.0 {
            out = correlate1d(&out, &gaussian_kernel(s, 4.0), axis, Border::Reflect);
        }
    }
    out
}

/// scipy.ndimage.median_filter(plane, size=3), mode 'reflect'.
///
/// Each column of three is sorted once; the median of nine is then the median of (largest low,
/// middle of middles, smallest high) over three neighbouring columns, which is exact.
pub fn median3x3(plane: &Plane) -> Plane {
    let padded = plane.padded(1, 1, Border::Reflect);
    let (w, pw) = (plane.width, padded.width);
    let mut out = Plane::zeros(w, plane.height);
    let (mut lo, mut mid, mut hi) = (vec![0.0; pw], vec![0.0; pw], vec![0.0; pw]);
    for (y, dst) in out.data.chunks_exact_mut(w).enumerate() {
        let rows = [0, 1, 2].map(|k| &padded.data[(y + k) * pw..(y + k + 1) * pw]);
        for x in 0..pw {
            let (a, b, c) = (rows[0][x], rows[1][x], rows[2][x]);
            let (a, b) = (a.min(b), a.max(b));
            let (b, c) = (b.min(c), b.max(c));
            let (a, b) = (a.min(b), a.max(b));
            lo[x] = a;
            mid[x] = b;
            hi[x] = c;
        }
        for (x, d) in dst.iter_mut().enumerate() {
            let max_lo = lo[x].max(lo[x + 1]).max(lo[x + 2]);
            let min_hi = hi[x].min(hi[x + 1]).min(hi[x + 2]);
            let med_mid = median3(mid[x], mid[x + 1], mid[x + 2]);
            *d = median3(max_lo, med_mid, min_hi);
        }
    }
    out
}

#[inline]
fn median3(a: f64, b: f64, c: f64) -> f64 {
    a.min(b).max(a.max(b).min(c))
}

/// scipy.signal.convolve2d(plane, kernel, 'same', boundary='fill', fillvalue=0).
pub fn convolve2d_same<const N: usize>(plane: &Plane, kernel: [[f64; N]; N]) -> Plane {
    convolve(plane, kernel, Border::Zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_kernel_matches_scipy() {
        // scipy.ndimage._gaussian_kernel1d(0.5, 0, 2)
        let k = gaussian_kernel(0.5, 4.0);
        let expected = [
            2.638_650_83e-4,
            1.064_507_72e-1,
            7.865_707_26e-1,
            1.064_507_72e-1,
            2.638_650_83e-4,
        ];
        assert_eq!(k.len(), 5);
        for (a, b) in k.iter().zip(expected) {
            assert!((a - b).abs() < 1e-9, "{k:?}");
        }
        assert_eq!(gaussian_kernel(1.0, 4.0).len(), 9);
    }

    #[test]
    fn convolution_flips_and_correlation_does_not() {
        let p = Plane::from_fn(5, 1, |_, x| if x == 2 { 1.0 } else { 0.0 });
        let k = [0.0, 1.0, 2.0];
        assert_eq!(
            convolve1d(&p, &k, 1, Border::Zero).data,
            vec![0.0, 0.0, 1.0, 2.0, 0.0]
        );
        assert_eq!(
            correlate1d(&p, &k, 1, Border::Zero).data,
            vec![0.0, 2.0, 1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn median_equals_a_sort_of_nine() {
        let p = Plane::from_fn(7, 6, |y, x| ((y * 7 + x) * 37 % 11) as f64);
        let m = median3x3(&p);
        for y in 0..6 {
            for x in 0..7 {
                let mut v: Vec<f64> = (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                    .map(|(dy, dx)| {
                        let sy = Border::Reflect.source(y as isize + dy, 6).unwrap();
                        let sx = Border::Reflect.source(x as isize + dx, 7).unwrap();
                        p.at(sy, sx)
                    })
                    .collect();
                v.sort_by(f64::total_cmp);
                assert_eq!(m.at(y, x), v[4], "{y},{x}");
            }
        }
    }
}
