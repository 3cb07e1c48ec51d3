//! candle's autograd: a conv2d weight gradient against central finite differences (in f64, so the
//! differences are exact to ~1e-9 and any real defect shows).

use candle_core::{DType, Device, Tensor, Var};

/// Deterministic pseudo-random values in [-1, 1) (a tiny LCG: tests need no RNG crate).
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn loss(x: &Tensor, w: &Tensor, upstream: &Tensor) -> candle_core::Result<Tensor> {
    x.conv2d(w, 1, 1, 1, 1)?.mul(upstream)?.sum_all()
}

/// Returns the largest relative error between autograd and finite differences over all weights.
pub fn conv2d_weight_gradient_error() -> candle_core::Result<f64> {
    let dev = Device::Cpu;
    let x = Tensor::from_vec(noise(2 * 3 * 7 * 6, 1), (2, 3, 7, 6), &dev)?;
    let w0 = noise(4 * 3 * 3 * 3, 2);
    let upstream = Tensor::from_vec(noise(2 * 4 * 7 * 6, 3), (2, 4, 7, 6), &dev)?;
    let w = Var::from_vec(w0.clone(), (4, 3, 3, 3), &dev)?;
    let grads = loss(&x, w.as_tensor(), &upstream)?.backward()?;
    let analytic = grads
        .get(w.as_tensor())
        .expect("weight gradient")
        .flatten_all()?
        .to_vec1::<f64>()?;
    let eps = 1e-6;
    let mut worst = 0f64;
    for i in 0..w0.len() {
        let at = |delta: f64| -> candle_core::Result<f64> {
            let mut wd = w0.clone();
            wd[i] += delta;
            let wd = Tensor::from_vec(wd, (4, 3, 3, 3), &dev)?;
            loss(&x, &wd, &upstream)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()
        };
        let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps);
        let err = (analytic[i] - numeric).abs() / numeric.abs().max(1e-3);
        worst = worst.max(err);
    }
    Ok(worst)
}
