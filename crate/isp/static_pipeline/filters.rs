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
///
/// Row by row, tap by tap over the whole row: a multiply-add over contiguous slices that
/// vectorises, with the row in cache across its taps. Source rows and the columns near the edges
/// go through `border`, so no padded copy of the plane is made. The first tap writes (the sum's
/// order, and so every bit, is that of a zeroed row accumulating every tap).
#[cfg_attr(
    not(target_arch = "wasm32"),
    multiversion::multiversion(targets("x86_64+avx+avx2"))
)]
pub fn correlate(plane: &Plane, taps: &[Tap], border: Border) -> Plane {
    let (w, h) = (plane.width, plane.height);
    let rx = taps.iter().map(|t| t.dx.unsigned_abs()).max().unwrap_or(0);
    // columns [inner_start, inner_end) read every tap inside the row
    let inner_start = rx.min(w);
    let inner_end = w.saturating_sub(rx).max(inner_start);
    let mut data = Vec::with_capacity(w * h);
    let mut acc = vec![0.0; w];
    for y in 0..h {
        for (k, tap) in taps.iter().enumerate() {
            let row = border
                .source(y as isize + tap.dy, h)
                .map(|sy| &plane.data[sy * w..(sy + 1) * w]);
            match (k, row) {
                (0, None) => acc.fill(0.0),
                (_, None) => {}
                (0, Some(row)) => {
                    accumulate::<false>(&mut acc, row, tap, border, inner_start..inner_end)
                }
                (_, Some(row)) => {
                    accumulate::<true>(&mut acc, row, tap, border, inner_start..inner_end)
                }
            }
        }
        data.extend_from_slice(&acc);
    }
    Plane {
        width: w,
        height: h,
        data,
    }
}

/// `acc[x] (+)= tap.w * row[x + tap.dx]` over a row: the columns in `inner` straight from the row,
/// the rest through `border`.
#[inline]
fn accumulate<const ADD: bool>(
    acc: &mut [f64],
    row: &[f64],
    tap: &Tap,
    border: Border,
    inner: std::ops::Range<usize>,
) {
    let put = |a: &mut f64, v: f64| {
        if ADD {
            *a += v;
        } else {
            *a = v;
        }
    };
    if !inner.is_empty() {
        let shifted = &row[(inner.start as isize + tap.dx) as usize..][..inner.len()];
        for (a, s) in acc[inner.clone()].iter_mut().zip(shifted) {
            put(a, tap.w * s);
        }
    }
    let w = row.len();
    for x in (0..inner.start).chain(inner.end..w) {
        let v = border
            .source(x as isize + tap.dx, w)
            .map_or(0.0, |sx| row[sx]);
        put(&mut acc[x], tap.w * v);
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
    let mut out: Option<Plane> = None;
    for (axis, &s) in sigma.iter().enumerate() {
        if s > 0.0 {
            let input = out.as_ref().unwrap_or(plane);
            out = Some(correlate1d(
                input,
                &gaussian_kernel(s, 4.0),
                axis,
                Border::Reflect,
            ));
        }
    }
    out.unwrap_or_else(|| plane.clone())
}

/// scipy.ndimage.median_filter(plane, size=3), mode 'reflect'.
///
/// Each column of three is sorted once; the median of nine is then the median of (largest low,
/// middle of middles, smallest high) over three neighbouring columns, which is exact.
#[cfg_attr(
    not(target_arch = "wasm32"),
    multiversion::multiversion(targets("x86_64+avx+avx2"))
)]
pub fn median3x3(plane: &Plane) -> Plane {
    let (w, h) = (plane.width, plane.height);
    let mut out = Plane::zeros(w, h);
    // sorted columns at x - 1 for x in 0 ..= w + 1: the two edge columns per 'reflect'
    let (mut lo, mut mid, mut hi) = (vec![0.0; w + 2], vec![0.0; w + 2], vec![0.0; w + 2]);
    let edges = [0, w + 1].map(|x| {
        let source = Border::Reflect.source(x as isize - 1, w);
        (x, source.map_or(x, |s| s + 1))
    });
    let row_at = |y: isize| {
        let sy = Border::Reflect.source(y, h).unwrap_or(0);
        &plane.data[sy * w..(sy + 1) * w]
    };
    for (y, dst) in out.data.chunks_exact_mut(w).enumerate() {
        let rows = [-1, 0, 1].map(|d| row_at(y as isize + d));
        for x in 0..w {
            let (a, b, c) = (rows[0][x], rows[1][x], rows[2][x]);
            let (a, b) = (a.min(b), a.max(b));
            let (b, c) = (b.min(c), b.max(c));
            let (a, b) = (a.min(b), a.max(b));
            lo[x + 1] = a;
            mid[x + 1] = b;
            hi[x + 1] = c;
        }
        for (x, source) in edges {
            lo[x] = lo[source];
            mid[x] = mid[source];
            hi[x] = hi[source];
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
    fn correlation_equals_its_definition_at_every_border() {
        // a plane narrower than the taps reach, so that periodic extension is exercised too
        let p = Plane::from_fn(5, 4, |y, x| ((y * 5 + x) * 37 % 11) as f64 - 3.5);
        let taps = [
            Tap {
                dy: 0,
                dx: 0,
                w: 0.5,
            },
            Tap {
                dy: -1,
                dx: 3,
                w: -1.25,
            },
            Tap {
                dy: 2,
                dx: -6,
                w: 0.75,
            },
            Tap {
                dy: -5,
                dx: 1,
                w: 2.0,
            },
        ];
        for border in [Border::Reflect, Border::Mirror, Border::Zero] {
            let out = correlate(&p, &taps, border);
            for y in 0..4 {
                for x in 0..5 {
                    let expected = taps.iter().fold(0.0, |sum, t| {
                        let sy = border.source(y as isize + t.dy, 4);
                        let sx = border.source(x as isize + t.dx, 5);
                        let v = sy.zip(sx).map_or(0.0, |(sy, sx)| p.at(sy, sx));
                        sum + t.w * v
                    });
                    assert_eq!(out.at(y, x), expected, "{border:?} at {y},{x}");
                }
            }
        }
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
