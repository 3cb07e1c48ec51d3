//! The forward pass of the parametrized ISP on a batch of raw tiles, keeping every tracked stage
//! on the path to the output (as the paper's module does with track_stages), so candle's
//! backward yields the loss gradient of each stage too.

use candle_core::{DType, Tensor, Var};

use super::conv::{conv2d_same, Padding};
use super::mosaic::scatter_mosaic;
use super::pointwise::{batch_norm, clip_gamma};
use super::IspParams;
use crate::spec::colour::{yuv_to_rgb, RGB_TO_YUV};
use crate::Result;

/// What a forward pass produces.
pub struct Forward {
    pub output: Tensor,
    /// One tensor (B, 3, H, W) per [`Stage::ALL`].
    pub stages: Vec<Tensor>,
    /// With stage tracking, one zero variable added to each stage: candle keeps gradients only for
    /// variables, and dL/d(tap) is dL/d(stage) (PyTorch's retain_grad).
    pub taps: Vec<Var>,
}

/// Adds a zero variable to `x` when tracking, so the stage's gradient is kept.
fn tap(x: Tensor, taps: &mut Option<Vec<Var>>) -> Result<Tensor> {
    match taps {
        Some(list) => {
            let zero = Var::zeros(x.shape(), x.dtype(), x.device())?;
            let tapped = x.add(zero.as_tensor())?;
            list.push(zero);
            Ok(tapped)
        }
        None => Ok(x),
    }
}

fn matrix(m: &[[f64; 3]; 3], dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let flat: Vec<f64> = m.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (3, 3), device)?.to_dtype(dtype)?)
}

/// out[b, k] = sum_c m[k, c] x[b, c] for (B, 3, H, W).
fn mix(m: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let flat = x.reshape((b, c, h * w))?;
    Ok(m.broadcast_left(b)?.matmul(&flat)?.reshape((b, c, h, w))?)
}

/// raw (B, H, W) -> output (B, 3, H, W), in the dtype of `raw` (the parameters must match it).
/// `track_stages` keeps each stage's gradient available after backward (see [`Forward::taps`]).
pub fn forward(
    raw: &Tensor,
    params: &IspParams,
    batch_norm_output: bool,
    track_stages: bool,
) -> Result<Forward> {
    forward_clipping(raw, params, None, batch_norm_output, track_stages)
}

/// [`forward`], with the white-balanced image clipped at `highlight` (one element) before the
/// colour correction where it is given: what cameras do, so that a sensor's saturated highlight
/// stays white, where the paper's ISP turns it into the white balance's colour.
pub fn forward_clipping(
    raw: &Tensor,
    params: &IspParams,
    highlight: Option<&Tensor>,
    batch_norm_output: bool,
    track_stages: bool,
) -> Result<Forward> {
    let (dtype, device) = (raw.dtype(), raw.device());
    let mut taps = track_stages.then(Vec::new);
    let to_yuv = matrix(&RGB_TO_YUV, dtype, device)?;
    let to_rgb = matrix(&yuv_to_rgb(), dtype, device)?;

    // A parameter's gradient sums over every pixel of the batch, and candle's sums run in the
    // tensor's dtype, one after another: where the black level, white balance and colour matrix
    // meet the image the ops run in f64, so those long sums keep their digits where batch norm
    // makes their terms cancel (the convolutions' weight gradients add up in f64 too).
    let wide = |t: &Tensor| t.to_dtype(DType::F64);
    let mosaic = scatter_mosaic(&wide(raw)?, &wide(params.black_level())?)?.to_dtype(dtype)?;
    let demosaic = tap(
        conv2d_same(&mosaic, params.debayer(), Padding::Reflect)?,
        &mut taps,
    )?;
    let mut balanced =
        wide(&demosaic)?.broadcast_mul(&wide(params.white_balance())?.reshape((1, 3, 1, 1))?)?;
    if let Some(level) = highlight {
        balanced = balanced.broadcast_minimum(&wide(level)?)?;
    }
    let corrected = tap(
        mix(&wide(params.colour_correction())?, &balanced)?.to_dtype(dtype)?,
        &mut taps,
    )?;

    let yuv = mix(&to_yuv, &corrected)?;
    let y = conv2d_same(
        &yuv.narrow(1, 0, 1)?,
        params.sharpening_filter(),
        Padding::Zeros,
    )?;
    let sharpened = tap(
        mix(&to_rgb, &Tensor::cat(&[&y, &yuv.narrow(1, 1, 2)?], 1)?)?,
        &mut taps,
    )?;

    let yuv = mix(&to_yuv, &sharpened)?;
    let y = conv2d_same(
        &yuv.narrow(1, 0, 1)?,
        params.gaussian_blur(),
        Padding::Reflect,
    )?;
    let denoised = tap(
        mix(&to_rgb, &Tensor::cat(&[&y, &yuv.narrow(1, 1, 2)?], 1)?)?,
        &mut taps,
    )?;

    let gamma = tap(clip_gamma(&denoised, params.gamma_correct())?, &mut taps)?;
    let output = if batch_norm_output {
        batch_norm(&gamma)?
    } else {
        gamma.clone()
    };
    Ok(Forward {
        output,
        stages: vec![demosaic, corrected, sharpened, denoised, gamma],
        taps: taps.unwrap_or_default(),
    })
}
