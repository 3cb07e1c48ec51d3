//! Nearest upsampling by an integer factor as a broadcast: its backward sums each output block
//! into its source and adds to what the source's other readers sent. (candle 0.11's
//! `upsample_nearest2d` backward overwrites the gradient collected so far, which loses the other
//! readers' share wherever an upsampled tensor is read twice, as in U-Net++'s dense skips.)

use candle_core::Tensor;

use crate::{Error, Result};

/// (B, C, H, W) -> (B, C, h, w), each pixel repeated (h / H) x (w / W) times.
pub fn upsample_nearest(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (b, c, xh, xw) = x.dims4()?;
    if xh == 0 || xw == 0 || !h.is_multiple_of(xh) || !w.is_multiple_of(xw) {
        return Err(Error::invalid(format!(
            "nearest upsampling from {xh}x{xw} to {h}x{w} needs whole factors: use tiles whose \
             side divides by the model's downsampling"
        )));
    }
    let (fy, fx) = (h / xh, w / xw);
    Ok(x.reshape((b, c, xh, 1, xw, 1))?
        .broadcast_as((b, c, xh, fy, xw, fx))?
        .reshape((b, c, h, w))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Read twice, the source receives both readers' gradients (candle's own op keeps one).
    #[test]
    fn values_as_nearest_and_gradients_of_every_reader() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 4, 5), &dev).unwrap()).unwrap();
        let up = upsample_nearest(x.as_tensor(), 8, 10).unwrap();
        let reference = x.as_tensor().upsample_nearest2d(8, 10).unwrap();
        assert_eq!(
            up.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        // loss = sum(up) + 3 sum(x): every x gets 4 (its 2x2 block) + 3
        let loss =
            (up.sum_all().unwrap() + (x.as_tensor() * 3.0).unwrap().sum_all().unwrap()).unwrap();
        let g = loss.backward().unwrap();
        let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap();
        assert!(gx.to_vec1::<f32>().unwrap().iter().all(|&v| v == 7.0));
        assert!(upsample_nearest(x.as_tensor(), 9, 10).is_err());
    }
}
