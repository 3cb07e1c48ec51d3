//! The paper's weak augmentation on processed batches: horizontal and vertical flips and
//! rotations by 90 degrees, the same for images and masks. Applied after the ISP (flipping a raw
//! mosaic would change its Bayer pattern), as differentiable tensor ops.

use candle_core::Tensor;
use rand::Rng;

use crate::Result;

/// One random choice of flips and quarter turns.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    flip_h: bool,
    flip_v: bool,
    quarter_turns: u8,
}

fn flip(x: &Tensor, dim: usize) -> Result<Tensor> {
    let n = x.dim(dim)?;
    let idx = Tensor::from_vec((0..n as u32).rev().collect::<Vec<_>>(), n, x.device())?;
    Ok(x.index_select(&idx, dim)?)
}

impl Augment {
    /// No flip, no turn.
    pub const IDENTITY: Self = Self {
        flip_h: false,
        flip_v: false,
        quarter_turns: 0,
    };

    pub fn random(rng: &mut impl Rng) -> Self {
        Self {
            flip_h: rng.random(),
            flip_v: rng.random(),
            quarter_turns: rng.random_range(0..4),
        }
    }

    /// (flip left-right, flip up-down, quarter turns), for the GPU's augmentation op.
    pub fn choice(&self) -> (bool, bool, u8) {
        (self.flip_h, self.flip_v, self.quarter_turns)
    }

    /// Applies to (B, C, H, W) with H == W (a quarter turn swaps H and W).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        if self.flip_h {
            y = flip(&y, 3)?;
        }
        if self.flip_v {
            y = flip(&y, 2)?;
        }
        for _ in 0..self.quarter_turns {
            // rotate by 90 degrees counter-clockwise: transpose the plane, then flip its rows
            y = flip(&y.transpose(2, 3)?.contiguous()?, 2)?;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn four_quarter_turns_are_identity_and_flips_reverse() {
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap();
        let turn = Augment {
            flip_h: false,
            flip_v: false,
            quarter_turns: 1,
        };
        let mut y = x.clone();
        for _ in 0..4 {
            y = turn.apply(&y).unwrap();
        }
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let once = turn
            .apply(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // counter-clockwise: the top row after a quarter turn is the last column, top to bottom
        assert_eq!(&once[..4], &[3.0, 7.0, 11.0, 15.0]);
        let h = Augment {
            flip_h: true,
            flip_v: false,
            quarter_turns: 0,
        }
        .apply(&x)
        .unwrap();
        assert_eq!(
            &h.flatten_all().unwrap().to_vec1::<f32>().unwrap()[..4],
            &[3.0, 2.0, 1.0, 0.0]
        );
    }
}
