//! The running statistics of the processing's final batch norm, as PyTorch's BatchNorm2d keeps
//! them: training steps normalise with the batch's own statistics and fold them into running
//! ones (momentum 0.1, unbiased variance); evaluation normalises with the running ones, so a
//! tile's result no longer depends on which tiles share its batch.

use candle_core::{DType, Tensor};

use crate::spec::isp::{BN_EPS, BN_INITIAL_MEAN, BN_INITIAL_VAR, BN_MOMENTUM as MOMENTUM};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningStats {
    pub mean: [f64; 3],
    pub var: [f64; 3],
}

impl Default for RunningStats {
    /// PyTorch's initial buffers: mean 0, variance 1.
    fn default() -> Self {
        Self {
            mean: [BN_INITIAL_MEAN; 3],
            var: [BN_INITIAL_VAR; 3],
        }
    }
}

impl RunningStats {
    /// Folds the statistics of a training batch `x` (B, 3, H, W), before normalisation, in.
    pub fn track(&mut self, x: &Tensor) -> Result<()> {
        let (b, c, h, w) = x.dims4()?;
        if c != 3 {
            return Err(Error::invalid(format!(
                "batch norm's running statistics are per RGB channel, got {c} channels"
            )));
        }
        let values = x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let plane = h * w;
        let n = (b * plane) as f64;
        for ch in 0..3 {
            let values = &values;
            let samples = || {
                (0..b).flat_map(move |i| {
                    let start = (i * 3 + ch) * plane;
                    values[start..start + plane].iter().copied()
                })
            };
            let mean = samples().sum::<f64>() / n;
            let var = samples().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            self.mean[ch] = (1.0 - MOMENTUM) * self.mean[ch] + MOMENTUM * mean;
            self.var[ch] = (1.0 - MOMENTUM) * self.var[ch] + MOMENTUM * var;
        }
        Ok(())
    }

    /// `x` (B, 3, H, W) normalised with the running statistics (evaluation mode), differentiable
    /// in `x`: per channel an affine map.
    pub fn normalise(&self, x: &Tensor) -> Result<Tensor> {
        let (dtype, device) = (x.dtype(), x.device());
        let column = |v: [f64; 3]| -> Result<Tensor> {
            Ok(Tensor::from_vec(v.to_vec(), (1, 3, 1, 1), device)?.to_dtype(dtype)?)
        };
        let scale = self.var.map(|v| 1.0 / (v + BN_EPS).sqrt());
        Ok(x.broadcast_sub(&column(self.mean)?)?
            .broadcast_mul(&column(scale)?)?)
    }

    /// As f32 for the GPU's statistics buffer: mean then variance.
    pub fn packed(&self) -> [f32; 6] {
        let [m0, m1, m2] = self.mean.map(|v| v as f32);
        let [v0, v1, v2] = self.var.map(|v| v as f32);
        [m0, m1, m2, v0, v1, v2]
    }

    pub fn from_packed(p: &[f32]) -> Result<Self> {
        match p {
            [m0, m1, m2, v0, v1, v2] => Ok(Self {
                mean: [*m0, *m1, *m2].map(f64::from),
                var: [*v0, *v1, *v2].map(f64::from),
            }),
            _ => Err(Error::invalid(format!(
                "running statistics are 6 values (mean, variance), got {}",
                p.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn tracks_as_pytorch_and_normalises_with_what_it_tracked() {
        // torch: bn = BatchNorm2d(3, affine=False); bn(x) in train mode with x below gives
        // running_mean = 0.1 * mean, running_var = 0.9 + 0.1 * unbiased var
        let x: Vec<f64> = (0..2 * 3 * 2 * 2)
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let t = Tensor::from_vec(x.clone(), (2, 3, 2, 2), &Device::Cpu).unwrap();
        let mut stats = RunningStats::default();
        stats.track(&t).unwrap();
        for c in 0..3 {
            let vals: Vec<f64> = (0..2)
                .flat_map(|b| x[(b * 3 + c) * 4..(b * 3 + c) * 4 + 4].to_vec())
                .collect();
            let mean = vals.iter().sum::<f64>() / 8.0;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 7.0;
            assert!((stats.mean[c] - 0.1 * mean).abs() < 1e-12);
            assert!((stats.var[c] - (0.9 + 0.1 * var)).abs() < 1e-12);
        }
        let y = stats
            .normalise(&t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let expected = (x[5] - stats.mean[1]) / (stats.var[1] + BN_EPS).sqrt();
        assert!((y[5] - expected).abs() < 1e-12);
        assert_eq!(
            RunningStats::from_packed(&stats.packed()).unwrap().packed(),
            stats.packed()
        );
    }
}
