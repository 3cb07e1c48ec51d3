//! Losses and metrics of the paper's two tasks.

use candle_core::{DType, Tensor, D};

use crate::spec::forensics::{SSIM_C1, SSIM_C2, SSIM_WINDOW};
use crate::{Error, Result};

/// Mean cross-entropy of logits (B, C) against class indices (B) as u32.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::loss::cross_entropy(logits, targets)?)
}

/// Fraction of rows whose arg-max is the target.
pub fn accuracy(logits: &Tensor, targets: &Tensor) -> Result<f32> {
    let predicted = logits.argmax(D::Minus1)?;
    let correct = predicted.eq(targets)?.to_dtype(DType::F32)?.mean_all()?;
    Ok(correct.to_scalar::<f32>()?)
}

/// Binary Dice loss from logits (B, 1, H, W) against a {0, 1} mask of the same shape:
/// 1 - (2 sum(p m) + 1) / (sum(p) + sum(m) + 1), p = sigmoid(logits), over the whole batch.
pub fn dice_loss(logits: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let p = candle_nn::ops::sigmoid(logits)?;
    let intersection = (p.mul(mask)?.sum_all()? * 2.0)?;
    let total = (p.sum_all()? + mask.sum_all()?)?;
    Ok(((intersection + 1.0)? / (total + 1.0)?)?.affine(-1.0, 1.0)?)
}

/// Intersection over union of the thresholded prediction (logit > 0) and the mask.
pub fn iou(logits: &Tensor, mask: &Tensor) -> Result<f32> {
    let predicted = logits.gt(0.0)?.to_dtype(DType::F32)?;
    let intersection = predicted.mul(mask)?.sum_all()?.to_scalar::<f32>()?;
    let union = (predicted.sum_all()? + mask.sum_all()?)?.to_scalar::<f32>()? - intersection;
    Ok(if union > 0.0 {
        intersection / union
    } else {
        1.0
    })
}

/// 1 - SSIM with a 7x7 box window (differentiable; averaged over channels and positions; data
/// range 1, the windows' population variances): forensics' distance, and the camera fit's metric.
pub fn ssim_distance(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (c1, c2) = (SSIM_C1, SSIM_C2);
    let pool = box_mean_7x7;
    let (mx, my) = (pool(x)?, pool(y)?);
    let sxx = (pool(&x.sqr()?)? - mx.sqr()?)?;
    let syy = (pool(&y.sqr()?)? - my.sqr()?)?;
    let sxy = (pool(&x.mul(y)?)? - mx.mul(&my)?)?;
    let num = ((mx.mul(&my)? * 2.0)? + c1)?.mul(&((sxy * 2.0)? + c2)?)?;
    let den = ((mx.sqr()? + my.sqr()?)? + c1)?.mul(&((sxx + syy)? + c2)?)?;
    Ok(num.div(&den)?.mean_all()?.affine(-1.0, 1.0)?)
}

/// The mean of every 7x7 window (stride 1, no padding) of (B, C, H, W), as sums of shifted
/// views: candle's avg_pool2d has no backward for a stride below its size.
fn box_mean_7x7(x: &Tensor) -> Result<Tensor> {
    const K: usize = SSIM_WINDOW;
    let (_, _, h, w) = x.dims4()?;
    if h < K || w < K {
        return Err(Error::invalid(format!(
            "SSIM's 7x7 window does not fit a {h}x{w} tile: use the l2 penalty"
        )));
    }
    let mut rows = x.narrow(2, 0, h - K + 1)?;
    for dy in 1..K {
        rows = (rows + x.narrow(2, dy, h - K + 1)?)?;
    }
    let mut sum = rows.narrow(3, 0, w - K + 1)?;
    for dx in 1..K {
        sum = (sum + rows.narrow(3, dx, w - K + 1)?)?;
    }
    Ok((sum / (K * K) as f64)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn metrics_on_known_cases() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[2.0f32, 0.0], [0.0, 3.0], [1.0, 0.0]], &dev).unwrap();
        let targets = Tensor::new(&[0u32, 1, 1], &dev).unwrap();
        assert!((accuracy(&logits, &targets).unwrap() - 2.0 / 3.0).abs() < 1e-6);
        let mask = Tensor::new(&[[[[1.0f32, 0.0], [1.0, 0.0]]]], &dev).unwrap();
        let perfect = Tensor::new(&[[[[9.0f32, -9.0], [9.0, -9.0]]]], &dev).unwrap();
        assert_eq!(iou(&perfect, &mask).unwrap(), 1.0);
        assert!(
            dice_loss(&perfect, &mask)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                < 1e-3
        );
        let half = Tensor::new(&[[[[9.0f32, 9.0], [-9.0, -9.0]]]], &dev).unwrap();
        assert!((iou(&half, &mask).unwrap() - 1.0 / 3.0).abs() < 1e-6);
    }
}
