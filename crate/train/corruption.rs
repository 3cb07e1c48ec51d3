//! The post-hoc corruption baseline the paper compares its drift synthesis with: corruptions of
//! the processed image (not of the raw data), at ImageNet-C's five severities (Hendrycks and
//! Dietterich 2019, whose parameters these are): Gaussian noise, Gaussian blur, contrast.

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::isp::static_pipeline::filters::gaussian_filter;
use crate::isp::static_pipeline::Plane;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// x + N(0, sigma^2), sigma 0.08 .. 0.38.
    GaussianNoise,
    /// scipy's gaussian_filter per channel (mode 'reflect', truncate 4), sigma 1 .. 6.
    GaussianBlur,
    /// (x - mean) * c + mean with the image's mean over pixels and channels, c 0.4 .. 0.05.
    Contrast,
}

impl Corruption {
    pub const ALL: [Corruption; 3] = [
        Corruption::GaussianNoise,
        Corruption::GaussianBlur,
        Corruption::Contrast,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::GaussianBlur => "gaussian_blur",
            Corruption::Contrast => "contrast",
        }
    }

    /// An error unless `severity` is one of 1 ..= 5.
    pub fn check_severity(severity: u8) -> Result<()> {
        Corruption::Contrast.strength(severity).map(|_| ())
    }

    /// The corruption's strength at severity 1 ..= 5.
    fn strength(self, severity: u8) -> Result<f64> {
        let levels = match self {
            Corruption::GaussianNoise => [0.08, 0.12, 0.18, 0.26, 0.38],
            Corruption::GaussianBlur => [1.0, 2.0, 3.0, 4.0, 6.0],
            Corruption::Contrast => [0.4, 0.3, 0.2, 0.1, 0.05],
        };
        levels
            .get(usize::from(severity).wrapping_sub(1))
            .copied()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "corruption severity {severity} is not one of 1, 2, 3, 4, 5"
                ))
            })
    }

    /// Corrupts a batch of processed images (B, 3, H, W) in [0, 1]; the result is clipped to
    /// [0, 1] as the processed images are.
    pub fn apply(self, images: &Tensor, severity: u8, rng: &mut impl Rng) -> Result<Tensor> {
        let strength = self.strength(severity)?;
        let (b, c, h, w) = images.dims4()?;
        let mut data: Vec<f32> = images.flatten_all()?.to_vec1()?;
        match self {
            Corruption::GaussianNoise => {
                let normal = Normal::new(0.0, strength as f32)
                    .map_err(|e| Error::invalid(format!("noise of sigma {strength}: {e}")))?;
                for v in &mut data {
                    *v += normal.sample(rng);
                }
            }
            Corruption::GaussianBlur => {
                for plane in data.chunks_exact_mut(h * w) {
                    let input = Plane {
                        width: w,
                        height: h,
                        data: plane.iter().map(|&v| f64::from(v)).collect(),
                    };
                    let blurred = gaussian_filter(&input, [strength, strength]);
                    for (out, v) in plane.iter_mut().zip(blurred.data) {
                        *out = v as f32;
                    }
                }
            }
            Corruption::Contrast => {
                for image in data.chunks_exact_mut(c * h * w) {
                    let mean =
                        image.iter().map(|&v| f64::from(v)).sum::<f64>() / image.len() as f64;
                    for v in image {
                        *v = ((f64::from(*v) - mean) * strength + mean) as f32;
                    }
                }
            }
        }
        for v in &mut data {
            *v = v.clamp(0.0, 1.0);
        }
        Ok(Tensor::from_vec(data, (b, c, h, w), &Device::Cpu)?.to_device(images.device())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn stats(t: &Tensor) -> (f32, f32) {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        (mean, var.sqrt())
    }

    /// A (1, 3, 32, 32) image: a ramp from 0.2 to 0.8 along x.
    fn ramp() -> Tensor {
        let data: Vec<f32> = (0..3 * 32 * 32)
            .map(|i| 0.2 + 0.6 * (i % 32) as f32 / 31.0)
            .collect();
        Tensor::from_vec(data, (1, 3, 32, 32), &Device::Cpu).unwrap()
    }

    #[test]
    fn noise_adds_the_severitys_standard_deviation() {
        let flat = Tensor::full(0.5f32, (2, 3, 64, 64), &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (severity, sigma) in [(1, 0.08), (3, 0.18)] {
            let noisy = Corruption::GaussianNoise
                .apply(&flat, severity, &mut rng)
                .unwrap();
            let (mean, std) = stats(&noisy);
            assert!((mean - 0.5).abs() < 0.005, "{mean}");
            assert!(
                (std - sigma).abs() < 0.01 * sigma / 0.08,
                "{std} vs {sigma}"
            );
        }
    }

    #[test]
    fn contrast_scales_the_spread_around_the_mean() {
        let image = ramp();
        let (mean, std) = stats(&image);
        let low = Corruption::Contrast
            .apply(&image, 2, &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        let (low_mean, low_std) = stats(&low);
        assert!((low_mean - mean).abs() < 1e-5);
        assert!(
            (low_std - 0.3 * std).abs() < 1e-5,
            "{low_std} vs {}",
            0.3 * std
        );
    }

    #[test]
    fn blur_keeps_the_mean_and_smooths_more_with_severity() {
        let image = ramp();
        let roughness = |t: &Tensor| {
            // mean absolute step along x: a blurred ramp's ends bend, its steps shrink at the edges
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            v.chunks(32)
                .map(|row| row.windows(2).map(|p| (p[1] - p[0]).abs()).sum::<f32>())
                .sum::<f32>()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mild = Corruption::GaussianBlur.apply(&image, 1, &mut rng).unwrap();
        let strong = Corruption::GaussianBlur.apply(&image, 5, &mut rng).unwrap();
        assert!((stats(&mild).0 - stats(&image).0).abs() < 1e-4);
        assert!(roughness(&strong) < roughness(&mild));
        assert!(roughness(&mild) < roughness(&image) + 1e-4);
    }

    #[test]
    fn severities_outside_one_to_five_are_refused() {
        let image = ramp();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for severity in [0, 6] {
            let err = Corruption::Contrast.apply(&image, severity, &mut rng);
            assert!(err.unwrap_err().to_string().contains("severity"));
        }
    }
}
