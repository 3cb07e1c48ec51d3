//! The inverse ISP, in the spirit of Brooks et al. 2019, "Unprocessing Images for Learned Raw
//! Denoising": display RGB -> linear (inverse gamma) -> camera RGB (inverse colour matrix) ->
//! sensor RGB (inverse white balance) -> RGGB mosaic -> plus black level. It lets the lab make raw
//! tiles whose processed look is known, for the offline default data and for tests.

use super::static_pipeline::Plane;
use crate::raw::{BayerSite, CameraParams, RawTile};
use crate::spec::colour::{apply3, invert3, mat3};
use crate::{Error, Result};

/// Turns a display-referred RGB image (interleaved, values in [0, 1]) into the raw mosaic that the
/// camera's static pipeline maps back to (approximately) the same image. Values are clipped to the
/// sensor's [0, 1] range, as a real sensor saturates.
pub fn unprocess(
    rgb: &[f32],
    width: usize,
    height: usize,
    camera: &CameraParams,
) -> Result<RawTile> {
    mosaic(&sensor_rgb(rgb, width, height, camera)?, camera)
}

/// The light on the sensor behind each colour filter (R, G, B planes, linear, white-balance gains
/// undone, no black level) for a display-referred RGB image. Optics act on this light, before
/// the mosaic samples it.
pub fn sensor_rgb(
    rgb: &[f32],
    width: usize,
    height: usize,
    camera: &CameraParams,
) -> Result<[Plane; 3]> {
    if rgb.len() != width * height * 3 {
        return Err(Error::invalid(format!(
            "an RGB image of {width}x{height} needs {} values, got {}",
            width * height * 3,
            rgb.len()
        )));
    }
    camera.validate()?;
    let inverse_ccm = invert3(&mat3(&camera.colour_matrix)).ok_or_else(|| {
        Error::invalid("the camera's colour matrix is singular, so it cannot be inverted")
    })?;
    if camera.white_balance.iter().any(|&g| g.abs() < 1e-12) {
        return Err(Error::invalid(
            "a white balance gain of zero cannot be inverted",
        ));
    }
    let mut planes = [0, 1, 2].map(|_| Plane::zeros(width, height));
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let linear = [px[0], px[1], px[2]].map(|v| (v.clamp(0.0, 1.0) as f64).powf(camera.gamma));
        let camera_rgb = apply3(&inverse_ccm, linear);
        for (c, plane) in planes.iter_mut().enumerate() {
            plane.data[i] = camera_rgb[c] / camera.white_balance[c];
        }
    }
    Ok(planes)
}

/// The RGGB mosaic of the sensor light `planes` (from [`sensor_rgb`]): each site keeps its
/// filter's colour, the camera's black level is added and the sensor's range clips.
pub fn mosaic(planes: &[Plane; 3], camera: &CameraParams) -> Result<RawTile> {
    let (width, height) = (planes[0].width, planes[0].height);
    let raw = (0..width * height)
        .map(|i| {
            let site = BayerSite::at(i / width, i % width);
            let v = planes[site.channel()].data[i] + camera.black_level[site.index()];
            v.clamp(0.0, 1.0) as f32
        })
        .collect();
    RawTile::new(width, height, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_through_identity_camera_is_linearised() {
        let camera = CameraParams {
            black_level: [0.1; 4],
            white_balance: [1.0, 1.0, 1.0],
            colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            gamma: 2.0,
        };
        let tile = unprocess(&[0.5; 12], 2, 2, &camera).unwrap();
        for v in tile.data() {
            assert!((v - 0.35).abs() < 1e-6, "{v}");
        }
    }

    #[test]
    fn rejects_wrong_sizes_and_singular_cameras() {
        let mut camera = CameraParams::drone();
        assert!(unprocess(&[0.5; 11], 2, 2, &camera).is_err());
        camera.colour_matrix = [0.0; 9];
        assert!(unprocess(&[0.5; 12], 2, 2, &camera).is_err());
    }
}
