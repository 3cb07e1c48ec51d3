//! The first step of the parametrized ISP: the RGGB mosaic scattered into three colour planes
//! (zeros where a site has no sample), minus the black level of each site.

use candle_core::{DType, Device, Tensor};

use crate::raw::BayerSite;
use crate::Result;

/// Per-pixel Bayer site indices (0..4) of an HxW mosaic, as a tensor for `index_select`.
fn site_indices(height: usize, width: usize, device: &Device) -> Result<Tensor> {
    let sites: Vec<u32> = (0..height * width)
        .map(|i| BayerSite::at(i / width, i % width).index() as u32)
        .collect();
    Ok(Tensor::from_vec(sites, height * width, device)?)
}

/// One-hot colour planes (1, 3, H, W): 1 where the pixel's site samples that channel.
fn channel_masks(height: usize, width: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let plane = height * width;
    let mut mask = vec![0f32; 3 * plane];
    for i in 0..plane {
        mask[BayerSite::at(i / width, i % width).channel() * plane + i] = 1.0;
    }
    Ok(Tensor::from_vec(mask, (1, 3, height, width), device)?.to_dtype(dtype)?)
}

/// `raw` (B, H, W) and `black_level` (4) -> (B, 3, H, W). Differentiable in both inputs.
pub fn scatter_mosaic(raw: &Tensor, black_level: &Tensor) -> Result<Tensor> {
    let (_, height, width) = raw.dims3()?;
    let device = raw.device();
    let black = black_level
        .index_select(&site_indices(height, width, device)?, 0)?
        .reshape((1, height, width))?;
    let shifted = raw.broadcast_sub(&black)?.unsqueeze(1)?;
    Ok(shifted.broadcast_mul(&channel_masks(height, width, raw.dtype(), device)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn scatters_sites_and_routes_black_level_gradients() -> Result<()> {
        let dev = Device::Cpu;
        let raw = Tensor::new(&[[[0.5f32, 0.6], [0.7, 0.8]]], &dev)?;
        let black = Var::new(&[0.1f32, 0.2, 0.3, 0.4], &dev)?;
        let rgb = scatter_mosaic(&raw, black.as_tensor())?;
        let planes = rgb.squeeze(0)?.flatten_from(1)?.to_vec2::<f32>()?;
        let expected = [
            [0.4, 0.0, 0.0, 0.0],
            [0.0, 0.4, 0.4, 0.0],
            [0.0, 0.0, 0.0, 0.4],
        ];
        for (got, want) in planes.iter().zip(expected) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-6, "{planes:?}");
            }
        }
        let grads = rgb.sum_all()?.backward()?;
        let g = grads.get(black.as_tensor()).unwrap().to_vec1::<f32>()?;
        assert_eq!(g, vec![-1.0, -1.0, -1.0, -1.0]);
        Ok(())
    }
}
