//! The convolutions' matrix-product kernels against a float64 product: the packed kernel (SIMD128
//! in the browser suite) and the `gemm` crate, on the three forms a convolution's passes make
//! (plain, A transposed, B transposed), at shapes off every block and register-tile edge.

use lens2logit::model::ops::{matmul, Kernel};

use super::conv_grad::noise;

/// (m, n, k): single elements, partial register tiles, several depth slices and output blocks.
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (5, 7, 3),
    (6, 8, 256),
    (13, 17, 300),
    (97, 129, 513),
    (64, 200, 0),
];

/// The largest error of `kernel` over every shape, form and accumulate flag, in units of the
/// worst-case bound of any summation order: k * 2^-24 * sum_k |a_ik * b_kj| per element (plus
/// the added destination's rounding). At most 1 means the kernel sums correctly.
pub fn worst_error_in_bounds(kernel: Kernel, threads: usize) -> f64 {
    let mut worst = 0f64;
    for (m, n, k) in SHAPES {
        for (a_t, b_t) in [(false, false), (true, false), (false, true)] {
            for accumulate in [false, true] {
                let a: Vec<f32> = noise(m * k, 1).iter().map(|&v| v as f32).collect();
                let b: Vec<f32> = noise(k * n, 2).iter().map(|&v| v as f32).collect();
                let start: Vec<f32> = noise(m * n, 3).iter().map(|&v| v as f32).collect();
                let mut dst = start.clone();
                matmul(
                    kernel,
                    (m, n, k),
                    &mut dst,
                    accumulate,
                    (&a, a_t),
                    (&b, b_t),
                    threads,
                )
                .unwrap();
                let at =
                    |i: usize, p: usize| f64::from(if a_t { a[p * m + i] } else { a[i * k + p] });
                let bt =
                    |p: usize, j: usize| f64::from(if b_t { b[j * k + p] } else { b[p * n + j] });
                for i in 0..m {
                    for j in 0..n {
                        let (mut exact, mut size) = (0f64, 0f64);
                        for p in 0..k {
                            exact += at(i, p) * bt(p, j);
                            size += (at(i, p) * bt(p, j)).abs();
                        }
                        let base = if accumulate {
                            f64::from(start[i * n + j])
                        } else {
                            0.0
                        };
                        let bound = (k + 1) as f64 * 2f64.powi(-24) * (size + base.abs()) + 1e-30;
                        let err = (f64::from(dst[i * n + j]) - (exact + base)).abs();
                        worst = worst.max(err / bound);
                    }
                }
            }
        }
    }
    worst
}
