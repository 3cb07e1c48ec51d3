//! What the lab shows of the ISP for one tile: the static pipeline stage by stage (images and
//! histograms), and the parametrized ISP's stages, output and per-stage gradients toward a static
//! view. The page's facade and any other viewer draw these; none of them computes its own.

use crate::isp::static_pipeline::{self, Plane, View};
use crate::raw::{BayerSite, CameraParams, RawTile};
use crate::spec::isp::IspRun;
use crate::viz::{self, Rgba};
use crate::{Error, Result};

/// Interleaved (H, W, 3) to planar (3, H, W).
pub fn hwc_to_chw(data: &[f32], height: usize, width: usize) -> Vec<f32> {
    let n = height * width;
    (0..3)
        .flat_map(|c| (0..n).map(move |p| data[p * 3 + c]))
        .collect()
}

/// The first image of a (B, 3, H, W) batch as three f64 planes.
fn planes(values: &[f32], height: usize, width: usize) -> [Plane; 3] {
    std::array::from_fn(|c| Plane {
        width,
        height,
        data: values[c * height * width..(c + 1) * height * width]
            .iter()
            .map(|&v| v as f64)
            .collect(),
    })
}

/// Every stage of the static pipeline for one tile, in order, as planes: the raw mosaic, black
/// level (one plane each), then demosaic, white balance, colour correction, sharpening, denoising
/// and gamma (three planes each).
pub struct StaticStages {
    pub names: Vec<&'static str>,
    pub planes: Vec<Vec<Plane>>,
}

impl StaticStages {
    pub fn of(raw: &RawTile, camera: &CameraParams, view: View) -> Result<Self> {
        let s = static_pipeline::stages(raw, camera, view)?;
        let mosaic = Plane {
            width: raw.width(),
            height: raw.height(),
            data: raw.data().iter().map(|&v| v as f64).collect(),
        };
        let gamma = planes(
            &hwc_to_chw(&s.gamma.data, s.gamma.height, s.gamma.width),
            s.gamma.height,
            s.gamma.width,
        );
        Ok(Self {
            names: vec![
                "raw mosaic",
                "black level",
                "demosaic",
                "white balance",
                "colour correction",
                "sharpening",
                "denoising",
                "gamma",
            ],
            planes: vec![
                vec![mosaic],
                vec![s.black_level],
                s.demosaic.to_vec(),
                s.white_balance.to_vec(),
                s.colour_correction.to_vec(),
                s.sharpening.to_vec(),
                s.denoising.to_vec(),
                gamma.to_vec(),
            ],
        })
    }

    fn stage(&self, i: usize) -> Result<&[Plane]> {
        self.planes
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::invalid(format!("the static pipeline has no stage {i}")))
    }

    /// Stage `i` for display: a mosaic with each sample in its filter's colour, colour stages
    /// scaled so their 99th percentile is white (gamma applied for the eye).
    pub fn image(&self, i: usize) -> Result<Rgba> {
        let p = self.stage(i)?;
        Ok(if let [mosaic] = p {
            let mut colour: [Plane; 3] =
                std::array::from_fn(|_| Plane::zeros(mosaic.width, mosaic.height));
            for (k, &v) in mosaic.data.iter().enumerate() {
                colour[BayerSite::at(k / mosaic.width, k % mosaic.width).channel()].data[k] = v;
            }
            viz::planes_rgba(&[&colour[0], &colour[1], &colour[2]])
        } else {
            viz::planes_rgba(&[&p[0], &p[1], &p[2]])
        })
    }

    /// Stage `i`'s histogram over `bins` bins: (lo, hi, counts per plane).
    pub fn histogram(&self, i: usize, bins: usize) -> Result<(f64, f64, Vec<Vec<u32>>)> {
        let refs: Vec<&Plane> = self.stage(i)?.iter().collect();
        Ok(viz::histogram(&refs, bins))
    }
}

/// The first (3, H, W) image of `values` scaled for display: its 99th percentile white, gamma
/// applied for the eye (the parametrized ISP's stages are linear until the gamma stage).
pub fn planar_rgba(values: &[f32], height: usize, width: usize) -> Rgba {
    let p = planes(values, height, width);
    viz::planes_rgba(&[&p[0], &p[1], &p[2]])
}

/// Display of a pass of the parametrized ISP over (B, 3, H, W): the first tile of each.
impl IspRun {
    /// Stage `i`, scaled for display.
    pub fn stage_image(&self, i: usize, height: usize, width: usize) -> Result<Rgba> {
        let v = self
            .stages
            .get(i)
            .ok_or_else(|| Error::invalid(format!("the parametrized ISP has no stage {i}")))?;
        Ok(planar_rgba(v, height, width))
    }

    /// The processed image as it is (clipped to [0, 1]).
    pub fn output_image(&self, height: usize, width: usize) -> Result<Rgba> {
        let v = self
            .stages
            .last()
            .ok_or_else(|| Error::invalid("the parametrized ISP ran no stage"))?;
        let n = height * width;
        let data = (0..n)
            .flat_map(|p| {
                let q = |c: usize| crate::codecs::to_byte(v[c * n + p]);
                [q(0), q(1), q(2), 255]
            })
            .collect();
        Ok(Rgba {
            width,
            height,
            data,
        })
    }

    /// Mean over channels of |dL/d stage `i`| (zeros without gradients).
    pub fn gradient_map(&self, i: usize, height: usize, width: usize) -> Vec<f32> {
        let n = height * width;
        let Some(g) = self.gradients.as_ref().and_then(|g| g.stages.get(i)) else {
            return vec![0.0; n];
        };
        (0..n)
            .map(|p| (0..3).map(|c| g[c * n + p].abs()).sum::<f32>() / 3.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_becomes_planar() {
        let hwc = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(hwc_to_chw(&hwc, 1, 2), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }

    #[test]
    fn the_mosaic_shows_each_sample_in_its_filter_colour() {
        let raw = RawTile::new(8, 8, vec![0.5; 64]).unwrap();
        let stages = StaticStages::of(&raw, &CameraParams::microscopy(), View::paper_views()[0]);
        let stages = stages.unwrap();
        assert_eq!(stages.names.len(), stages.planes.len());
        let image = stages.image(0).unwrap();
        // RGGB: red at (0, 0), green at (0, 1) and (1, 0), blue at (1, 1) (8 pixels a row)
        let px = |k: usize| &image.data[k * 4..k * 4 + 3];
        assert!(px(0)[0] > 0 && px(0)[1] == 0 && px(0)[2] == 0);
        assert!(px(1)[1] > 0 && px(1)[0] == 0);
        assert!(px(8)[1] > 0 && px(8)[0] == 0);
        assert!(px(9)[2] > 0 && px(9)[0] == 0 && px(9)[1] == 0);
        assert!(stages.image(8).is_err());
    }
}
