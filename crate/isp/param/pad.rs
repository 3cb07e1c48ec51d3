//! PyTorch's 'reflect' padding (d c b | a b c d | c b a) of the last two dimensions, built from
//! `index_select` so candle differentiates it (its backward scatters back with index_add).

use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// Source indices of a reflect-padded axis of length `n` with `pad` on each side.
fn reflect_indices(n: usize, pad: usize, device: &Device) -> Result<Tensor> {
    if pad >= n {
        return Err(Error::invalid(format!(
            "reflect padding of {pad} needs a side longer than {pad}, got {n}"
        )));
    }
    let idx: Vec<u32> = (0..n + 2 * pad)
        .map(|i| {
            let j = i as isize - pad as isize;
            let j = if j < 0 {
                -j
            } else if j >= n as isize {
                2 * (n as isize - 1) - j
            } else {
                j
            };
            j as u32
        })
        .collect();
    Ok(Tensor::from_vec(idx, n + 2 * pad, device)?)
}

/// Pads (B, C, H, W) by `pad` on every side of H and W.
pub fn reflect_pad2d(x: &Tensor, pad: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let rows = reflect_indices(h, pad, x.device())?;
    let cols = reflect_indices(w, pad, x.device())?;
    Ok(x.contiguous()?
        .index_select(&rows, 2)?
        .index_select(&cols, 3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflects_like_pytorch() {
        let x = Tensor::arange(0f32, 4.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 4))
            .unwrap();
        let x = x.broadcast_as((1, 1, 3, 4)).unwrap().contiguous().unwrap();
        let p = reflect_pad2d(&x, 2).unwrap();
        let row = p
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(row, vec![2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
        assert!(reflect_pad2d(&x, 3).is_err());
    }
}
