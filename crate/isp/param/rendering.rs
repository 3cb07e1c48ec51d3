//! What a camera's own rendering has beyond the paper's ISP, for fitting a camera's JPEG: the
//! highlights clipped after the white balance (a saturated sensor stays white), a global tone
//! curve (monotone, piecewise linear over a few knots) and a saturation-dependent chroma gain.
//! The curves act in display space, after the gamma, and start as the identity; each stage is
//! optional.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use serde::Serialize;

use super::pointwise::clamp;
use super::{forward_clipping, IspParams};
use crate::spec::colour::RGB_TO_YUV;
use crate::{Error, Result};

/// Segments of each curve over [0, 1]: a camera's tone curve is smooth, and eight straight pieces
/// follow an S-curve or an sRGB toe to a level or two in 8 bits.
pub const SEGMENTS: usize = 8;

/// The stages, in the safetensors' names.
const HIGHLIGHT_LEVEL: &str = "highlight_clip.level";
const TONE_START: &str = "tone_curve.start";
const TONE_SHARES: &str = "tone_curve.shares";
const CHROMA_START: &str = "chroma_gain.start";
const CHROMA_RISES: &str = "chroma_gain.rises";

/// f(x) = start + sum_j rise_j clamp(SEGMENTS x - j, 0, 1): the line through the knots
/// (j / SEGMENTS, start + rise_0 + ... + rise_{j-1}), flat outside [0, 1]. `start` has one
/// element, `rises` SEGMENTS.
fn piecewise_linear(x: &Tensor, start: &Tensor, rises: &Tensor) -> Result<Tensor> {
    let scaled = x.affine(SEGMENTS as f64, 0.0)?;
    let mut out = start.broadcast_as(x.shape())?.contiguous()?;
    for j in 0..SEGMENTS {
        let ramp = clamp(&scaled.affine(1.0, -(j as f64))?, 0.0, 1.0)?;
        out = (out + ramp.broadcast_mul(&rises.narrow(0, j, 1)?)?)?;
    }
    Ok(out)
}

/// Which of the camera rendering's stages a fit uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RenderingStages {
    pub highlight_clip: bool,
    pub tone_curve: bool,
    pub chroma_gain: bool,
}

/// The camera's rendering around the paper's ISP: the stages a fit chose, each optional.
pub struct CameraRendering {
    /// The white-balanced value at which each channel clips.
    highlight_clip: Option<Var>,
    /// start (the black point) and the shares of the climb to white: the rises are
    /// (1 - start) share_j^2 / sum share^2, so the curve only climbs and white stays white (1 at
    /// 1), as a camera's tone curve keeps it, however few highlights a fit sees.
    tone_curve: Option<(Var, Var)>,
    /// start and rises of the gain on (RGB - luma) as a function of the chroma's magnitude.
    chroma_gain: Option<(Var, Var)>,
}

/// The curves' values at their knots, for a summary.
#[derive(Debug, Clone, Serialize)]
pub struct RenderingKnots {
    pub highlight_clip: Option<f32>,
    pub tone_curve: Option<Vec<f32>>,
    pub chroma_gain: Option<Vec<f32>>,
}

impl CameraRendering {
    /// The stages asked for, changing nothing but the highlights: the clip at `saturation` (the
    /// white-balanced value of a saturated sensor), the curves as the identity.
    pub fn initial(stages: RenderingStages, saturation: f64, device: &Device) -> Result<Self> {
        let var = |v: Vec<f32>| -> Result<Var> {
            let n = v.len();
            Ok(Var::from_tensor(&Tensor::from_vec(v, n, device)?)?)
        };
        let RenderingStages {
            highlight_clip,
            tone_curve,
            chroma_gain,
        } = stages;
        Ok(Self {
            highlight_clip: highlight_clip
                .then(|| var(vec![saturation as f32]))
                .transpose()?,
            tone_curve: tone_curve
                .then(|| Ok::<_, Error>((var(vec![0.0])?, var(vec![1.0; SEGMENTS])?)))
                .transpose()?,
            chroma_gain: chroma_gain
                .then(|| Ok::<_, Error>((var(vec![1.0])?, var(vec![0.0; SEGMENTS])?)))
                .transpose()?,
        })
    }

    /// The rendering from named tensors ([`CameraRendering::named`]'s): a stage is there where
    /// both its tensors are.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let stage = |start: &str, rises: &str| -> Result<Option<(Var, Var)>> {
            match (tensors.get(start), tensors.get(rises)) {
                (None, None) => Ok(None),
                (Some(s), Some(r)) if s.dims() == [1] && r.dims() == [SEGMENTS] => {
                    let var = |t: &Tensor| -> Result<Var> {
                        let t = t.to_dtype(DType::F32)?;
                        if t.to_vec1::<f32>()?.iter().any(|v| !v.is_finite()) {
                            return Err(Error::invalid(format!(
                                "'{start}' or '{rises}' holds NaN or infinite values"
                            )));
                        }
                        Ok(Var::from_tensor(&t)?)
                    };
                    Ok(Some((var(s)?, var(r)?)))
                }
                _ => Err(Error::invalid(format!(
                    "'{start}' (1 value) and '{rises}' ({SEGMENTS} values) come together"
                ))),
            }
        };
        let highlight_clip = tensors
            .get(HIGHLIGHT_LEVEL)
            .map(|t| -> Result<Var> {
                let v = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                match v[..] {
                    [level] if level.is_finite() => {
                        Ok(Var::from_tensor(&t.to_dtype(DType::F32)?.reshape(1)?)?)
                    }
                    _ => Err(Error::invalid(format!(
                        "'{HIGHLIGHT_LEVEL}' is one finite value"
                    ))),
                }
            })
            .transpose()?;
        Ok(Self {
            highlight_clip,
            tone_curve: stage(TONE_START, TONE_SHARES)?,
            chroma_gain: stage(CHROMA_START, CHROMA_RISES)?,
        })
    }

    /// (name, tensor) of every stage present, for safetensors.
    pub fn named(&self) -> Vec<(&'static str, Tensor)> {
        let mut out = Vec::new();
        if let Some(level) = &self.highlight_clip {
            out.push((HIGHLIGHT_LEVEL, level.as_tensor().clone()));
        }
        if let Some((s, r)) = &self.tone_curve {
            out.push((TONE_START, s.as_tensor().clone()));
            out.push((TONE_SHARES, r.as_tensor().clone()));
        }
        if let Some((s, r)) = &self.chroma_gain {
            out.push((CHROMA_START, s.as_tensor().clone()));
            out.push((CHROMA_RISES, r.as_tensor().clone()));
        }
        out
    }

    pub fn vars(&self) -> Vec<Var> {
        let curves = [&self.tone_curve, &self.chroma_gain]
            .into_iter()
            .flatten()
            .flat_map(|(s, r)| [s.clone(), r.clone()]);
        self.highlight_clip.iter().cloned().chain(curves).collect()
    }

    /// The stages present, in the order they run.
    pub fn stage_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.highlight_clip.is_some() {
            names.push("highlight clip");
        }
        if self.tone_curve.is_some() {
            names.push("tone curve");
        }
        if self.chroma_gain.is_some() {
            names.push("chroma gain");
        }
        names
    }

    fn tone_rises(start: &Var, shares: &Var) -> Result<Tensor> {
        let squares = shares.as_tensor().sqr()?;
        let climb = start
            .as_tensor()
            .affine(-1.0, 1.0)?
            .broadcast_div(&squares.sum_keepdim(0)?)?;
        Ok(squares.broadcast_mul(&climb)?)
    }

    /// raw (B, H, W) through the paper's ISP (no batch norm) and this rendering: (B, 3, H, W) in
    /// [0, 1], f32.
    pub fn render(&self, raw: &Tensor, params: &IspParams) -> Result<Tensor> {
        let level = self.highlight_clip.as_ref().map(Var::as_tensor);
        let isp = forward_clipping(raw, params, level, false, false)?;
        self.apply(&isp.output)
    }

    /// (B, 3, H, W) display values in, the curves' rendering out, clipped to [0, 1] as a JPEG
    /// stores it (f32).
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.to_dtype(DType::F32)?;
        if let Some((start, shares)) = &self.tone_curve {
            x = piecewise_linear(&x, start.as_tensor(), &Self::tone_rises(start, shares)?)?;
        }
        if let Some((start, rises)) = &self.chroma_gain {
            let luma_weights: Vec<f32> = RGB_TO_YUV[0].iter().map(|&w| w as f32).collect();
            let luma = x
                .broadcast_mul(&Tensor::from_vec(luma_weights, (1, 3, 1, 1), x.device())?)?
                .sum_keepdim(1)?;
            let chroma = x.broadcast_sub(&luma)?;
            let magnitude = (chroma.sqr()?.sum_keepdim(1)? + 1e-6)?.sqrt()?;
            let gain = piecewise_linear(&magnitude, start.as_tensor(), rises.as_tensor())?;
            x = luma.broadcast_add(&chroma.broadcast_mul(&gain)?)?;
        }
        clamp(&x, 0.0, 1.0)
    }

    /// The curves at their SEGMENTS + 1 knots.
    pub fn knots(&self) -> Result<RenderingKnots> {
        let at_knots = |start: &Var, rises: Tensor| -> Result<Vec<f32>> {
            let xs: Vec<f32> = (0..=SEGMENTS).map(|j| j as f32 / SEGMENTS as f32).collect();
            let xs = Tensor::from_vec(xs, SEGMENTS + 1, start.device())?;
            Ok(piecewise_linear(&xs, start.as_tensor(), &rises)?.to_vec1::<f32>()?)
        };
        Ok(RenderingKnots {
            highlight_clip: self
                .highlight_clip
                .as_ref()
                .map(|v| v.as_tensor().to_vec1::<f32>().map(|v| v[0]))
                .transpose()?,
            tone_curve: self
                .tone_curve
                .as_ref()
                .map(|(s, r)| at_knots(s, Self::tone_rises(s, r)?))
                .transpose()?,
            chroma_gain: self
                .chroma_gain
                .as_ref()
                .map(|(s, r)| at_knots(s, r.as_tensor().clone()))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::CameraParams;

    const CURVES: RenderingStages = RenderingStages {
        highlight_clip: false,
        tone_curve: true,
        chroma_gain: true,
    };
    const TONE: RenderingStages = RenderingStages {
        chroma_gain: false,
        ..CURVES
    };
    const CHROMA: RenderingStages = RenderingStages {
        tone_curve: false,
        ..CURVES
    };

    fn image(values: &[f32]) -> Tensor {
        Tensor::from_vec(values.to_vec(), (1, 3, 1, values.len() / 3), &Device::Cpu).unwrap()
    }

    #[test]
    fn the_identity_renders_the_image_unchanged_but_clipped() {
        let r = CameraRendering::initial(CURVES, 1.0, &Device::Cpu).unwrap();
        let x = [0.0, 0.3, 0.9, 0.5, 0.2, 1.2, 0.7, -0.1, 0.4];
        let out = r.apply(&image(&x)).unwrap().flatten_all().unwrap();
        for (o, v) in out.to_vec1::<f32>().unwrap().iter().zip(x) {
            assert!((o - v.clamp(0.0, 1.0)).abs() < 1e-5, "{o} {v}");
        }
        let knots = r.knots().unwrap();
        let tone = knots.tone_curve.unwrap();
        assert!(
            (tone[SEGMENTS] - 1.0).abs() < 1e-6 && tone[0] == 0.0,
            "{tone:?}"
        );
    }

    #[test]
    fn the_tone_curve_interpolates_its_knots_climbs_to_white_and_has_gradients() {
        let r = CameraRendering::initial(TONE, 1.0, &Device::Cpu).unwrap();
        let (start, shares) = r.tone_curve.as_ref().unwrap();
        start
            .set(&Tensor::new(&[0.05f32], &Device::Cpu).unwrap())
            .unwrap();
        let raised: Vec<f32> = (0..SEGMENTS).map(|j| (j as f32 - 3.0) * 0.4).collect();
        shares
            .set(&Tensor::from_vec(raised.clone(), SEGMENTS, &Device::Cpu).unwrap())
            .unwrap();
        let knots = r.knots().unwrap().tone_curve.unwrap();
        let total: f32 = raised.iter().map(|v| v * v).sum();
        for j in 0..SEGMENTS {
            let rise = 0.95 * raised[j] * raised[j] / total;
            assert!((knots[j + 1] - knots[j] - rise).abs() < 1e-6, "{knots:?}");
        }
        assert!((knots[0] - 0.05).abs() < 1e-7 && (knots[SEGMENTS] - 1.0).abs() < 1e-6);
        // halfway between knots 2 and 3: their mean
        let x = 2.5 / SEGMENTS as f32;
        let out = r.apply(&image(&[x, x, x])).unwrap();
        let v = out.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
        assert!(
            (v - (knots[2] + knots[3]) / 2.0).abs() < 1e-6,
            "{v} {knots:?}"
        );
        // raising the black point lifts the shadows and keeps white: d out / d start = 1 - 2.5/8
        // of the climb below x, for each of the 3 channels
        let grads = out.sum_all().unwrap().backward().unwrap();
        let g = grads
            .get(start.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        let below = (knots[2] + knots[3]) / 2.0 - 0.05;
        let expected = 3.0 * (1.0 - below / 0.95);
        assert!((g - expected).abs() < 1e-4, "{g} {expected}");
    }

    #[test]
    fn the_chroma_gain_scales_colour_and_keeps_grey_and_luma() {
        let r = CameraRendering::initial(CHROMA, 1.0, &Device::Cpu).unwrap();
        let (start, _) = r.chroma_gain.as_ref().unwrap();
        start
            .set(&Tensor::new(&[1.5f32], &Device::Cpu).unwrap())
            .unwrap();
        // one grey and one coloured pixel, as (1, 3, 1, 2)
        let x = Tensor::from_vec(
            vec![0.4f32, 0.6, 0.4, 0.3, 0.4, 0.2],
            (1, 3, 1, 2),
            &Device::Cpu,
        )
        .unwrap();
        let out = r
            .apply(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (grey, colour) = ([out[0], out[2], out[4]], [out[1], out[3], out[5]]);
        assert!(grey.iter().all(|v| (v - 0.4).abs() < 1e-3), "{grey:?}");
        let luma = |p: [f32; 3]| -> f32 { (0..3).map(|c| RGB_TO_YUV[0][c] as f32 * p[c]).sum() };
        let before = [0.6, 0.3, 0.2];
        assert!((luma(colour) - luma(before)).abs() < 1e-5);
        let l = luma(before);
        for c in 0..3 {
            assert!(
                (colour[c] - l - 1.5 * (before[c] - l)).abs() < 1e-3,
                "{colour:?}"
            );
        }
    }

    #[test]
    fn a_saturated_sensor_stays_white_through_the_highlight_clip() {
        let camera = CameraParams::drone();
        let params = IspParams::initial(&camera, DType::F32, &Device::Cpu).unwrap();
        // a saturated 8x8 mosaic: every site at the white level
        let raw = Tensor::ones((1, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let saturation = (1.0 - camera.black_level[0]) * camera.white_balance[1];
        let stages = RenderingStages {
            highlight_clip: true,
            tone_curve: false,
            chroma_gain: false,
        };
        let clipped = CameraRendering::initial(stages, saturation, &Device::Cpu).unwrap();
        let plain = CameraRendering::initial(
            RenderingStages {
                highlight_clip: false,
                ..stages
            },
            saturation,
            &Device::Cpu,
        )
        .unwrap();
        let centre = |r: &CameraRendering| -> Vec<f32> {
            let out = r.render(&raw, &params).unwrap();
            (0..3)
                .map(|c| {
                    out.get(0)
                        .unwrap()
                        .get(c)
                        .unwrap()
                        .get(4)
                        .unwrap()
                        .get(4)
                        .unwrap()
                })
                .map(|t| t.to_scalar::<f32>().unwrap())
                .collect()
        };
        let (white, tinted) = (centre(&clipped), centre(&plain));
        let spread = |v: &[f32]| {
            v.iter().fold(0f32, |m, x| m.max(*x)) - v.iter().fold(1f32, |m, x| m.min(*x))
        };
        assert!(spread(&white) < 0.02, "{white:?}");
        assert!(spread(&tinted) > 0.2, "{tinted:?}");
        let grads = clipped
            .render(&raw, &params)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let level = clipped.highlight_clip.as_ref().unwrap();
        assert!(
            grads
                .get(level.as_tensor())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0]
                > 0.0
        );
    }

    #[test]
    fn stored_stages_come_back_and_broken_ones_are_refused() {
        let r = CameraRendering::initial(TONE, 1.0, &Device::Cpu).unwrap();
        let named: HashMap<String, Tensor> = r
            .named()
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        let back = CameraRendering::from_tensors(&named).unwrap();
        assert_eq!(back.stage_names(), ["tone curve"]);
        let mut half = named.clone();
        half.remove(TONE_START);
        assert!(CameraRendering::from_tensors(&half).is_err());
    }
}
