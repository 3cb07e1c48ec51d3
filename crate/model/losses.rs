//! Losses and metrics of the paper's two tasks.

use candle_core::{DType, Tensor, D};

use crate::Result;

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
