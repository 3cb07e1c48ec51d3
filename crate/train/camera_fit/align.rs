//! Bringing a camera's JPEG and its raw into one frame: the JPEG as it is shown (its EXIF
//! orientation applied), turned back into the sensor's frame (the DNG's orientation undone), over
//! the raw's default crop, with the mosaic binned where the JPEG is smaller.

use serde::Serialize;

use crate::raw::{orient_rgb, CameraJpeg, DngImage, RawTile};
use crate::{Error, Result};

/// Which part of the mosaic the JPEG covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CropChoice {
    /// The DNG's default crop, or the whole mosaic where it gives none.
    Auto,
    /// x, y, width, height in the mosaic's pixels.
    Given([usize; 4]),
}

/// The alignment used, as the twin's summary reports it. Rectangles are x, y, width, height.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alignment {
    /// The mosaic's size (the active area, from its first red site).
    pub raw_size: [usize; 2],
    /// The area of the mosaic the JPEG covers, and where it came from.
    pub crop: [usize; 4],
    pub crop_source: &'static str,
    /// The DNG's orientation and the JPEG's EXIF orientation (1 to 8, 1 upright).
    pub raw_orientation: u16,
    pub jpeg_orientation: u16,
    /// The JPEG as stored and as shown.
    pub jpeg_stored_size: [usize; 2],
    pub jpeg_shown_size: [usize; 2],
    /// The mosaic is binned by this factor to the JPEG's resolution (1: the same resolution).
    pub binning: usize,
    /// The fitted area in the sensor's frame: the JPEG's pixels.
    pub fit_size: [usize; 2],
}

impl Alignment {
    /// The alignment in a sentence, as the CLI and the page report it.
    pub fn describe(&self) -> String {
        let [sw, sh] = self.jpeg_stored_size;
        let [w, h] = self.jpeg_shown_size;
        let [fw, fh] = self.fit_size;
        format!(
            "crop {:?} (x, y, width, height) from {}; raw orientation {}, JPEG orientation {} \
             ({sw}x{sh} stored, {w}x{h} shown); binned by {}; fitting {fw}x{fh} px",
            self.crop, self.crop_source, self.raw_orientation, self.jpeg_orientation, self.binning
        )
    }
}

/// A raw and its JPEG in the sensor's frame, at the JPEG's resolution.
#[derive(Debug)]
pub struct AlignedPair {
    pub alignment: Alignment,
    /// The mosaic, binned to the JPEG's resolution; it holds the fitted area and what lies
    /// around it (the processing's filters see real neighbours at the area's edges).
    pub mosaic: RawTile,
    /// Where the fitted area lies in `mosaic`: x, y, width, height.
    pub area: [usize; 4],
    /// The JPEG over the area, in the sensor's frame: RGB in [0, 1], row-major (H, W, 3).
    pub target: Vec<f32>,
}

/// Which of dropped files (by name) is the DNG and which the camera's JPEG: their indices, or
/// what is missing.
pub fn dng_and_jpeg(names: &[String]) -> Result<(usize, usize)> {
    let find = |test: &dyn Fn(&str) -> bool| names.iter().position(|n| test(&n.to_lowercase()));
    let dng = find(&|n| n.ends_with(".dng"));
    let jpeg = find(&|n| n.ends_with(".jpg") || n.ends_with(".jpeg"));
    match (dng, jpeg) {
        (Some(d), Some(j)) if names.len() == 2 => Ok((d, j)),
        _ => Err(Error::invalid(format!(
            "a camera fit takes two files together, a DNG and the camera's JPEG (.jpg) of the \
             same shot; got {}",
            match names.len() {
                0 => "none".to_string(),
                _ => names.join(", "),
            }
        ))),
    }
}

/// Aligns `jpeg` with `dng`, or says why they do not match.
pub fn align(dng: &DngImage, jpeg: &CameraJpeg, choice: CropChoice) -> Result<AlignedPair> {
    let (raw_w, raw_h) = (dng.mosaic.width(), dng.mosaic.height());
    let (crop, crop_source) = match (choice, dng.default_crop) {
        (CropChoice::Given(rect), _) => (rect, "given (--crop)"),
        (CropChoice::Auto, Some(rect)) => (rect, "the DNG's DefaultCropOrigin and DefaultCropSize"),
        (CropChoice::Auto, None) => ([0, 0, raw_w, raw_h], "the whole mosaic (no default crop)"),
    };
    let [cx, cy, cw, ch] = crop;
    if cw == 0 || ch == 0 || cx + cw > raw_w || cy + ch > raw_h {
        return Err(Error::invalid(format!(
            "the crop {crop:?} (x, y, width, height) does not lie within the {raw_w}x{raw_h} mosaic"
        )));
    }
    let (tw, th, target) = orient_rgb(jpeg.width, jpeg.height, &jpeg.rgb, dng.orientation, true)?;
    let binning = binning(crop, (tw, th), jpeg, dng.orientation)?;
    let mosaic = dng.mosaic.binned(binning)?;
    let area = [cx / binning, cy / binning, tw, th];
    if area[0] + tw > mosaic.width() || area[1] + th > mosaic.height() {
        return Err(Error::invalid(format!(
            "the JPEG's {tw}x{th} pixels reach past the mosaic binned by {binning} ({}x{}) from \
             ({}, {}): the crop and the JPEG do not match",
            mosaic.width(),
            mosaic.height(),
            area[0],
            area[1]
        )));
    }
    Ok(AlignedPair {
        alignment: Alignment {
            raw_size: [raw_w, raw_h],
            crop,
            crop_source,
            raw_orientation: dng.orientation,
            jpeg_orientation: jpeg.stored.exif_orientation,
            jpeg_stored_size: [jpeg.stored.width, jpeg.stored.height],
            jpeg_shown_size: [jpeg.width, jpeg.height],
            binning,
            fit_size: [tw, th],
        },
        mosaic,
        area,
        target,
    })
}

/// The integer factor between the crop and the JPEG in the sensor's frame (tw x th), or why
/// there is none.
fn binning(
    [_, _, cw, ch]: [usize; 4],
    (tw, th): (usize, usize),
    jpeg: &CameraJpeg,
    raw_orientation: u16,
) -> Result<usize> {
    let shown = format!(
        "the JPEG ({}x{} as shown, {tw}x{th} in the raw's frame of orientation {raw_orientation})",
        jpeg.width, jpeg.height
    );
    // aspect ratios agree to a pixel of the JPEG
    if (cw as f64 / tw as f64 - ch as f64 / th as f64).abs() * (tw.min(th) as f64)
        > (cw as f64 / tw as f64).max(1.0)
    {
        let turned = (cw as f64 / th as f64 - ch as f64 / tw as f64).abs() * (tw.min(th) as f64)
            <= (cw as f64 / th as f64).max(1.0);
        return Err(Error::invalid(format!(
            "{shown} and the raw's {cw}x{ch} crop differ in aspect ratio ({:.4} against {:.4}){}: \
             is it the same shot?",
            tw as f64 / th as f64,
            cw as f64 / ch as f64,
            if turned {
                "; turned a quarter they would match: the JPEG's or the DNG's orientation tag \
                 may be wrong"
            } else {
                ""
            }
        )));
    }
    if tw > cw || th > ch {
        return Err(Error::invalid(format!(
            "{shown} is larger than the raw's {cw}x{ch} crop: give the crop it covers (--crop)"
        )));
    }
    let factor = (cw as f64 / tw as f64).round() as usize;
    if cw / factor != tw && cw.div_ceil(factor) != tw
        || ch / factor != th && ch.div_ceil(factor) != th
    {
        return Err(Error::invalid(format!(
            "{shown} is {:.3} of the raw's {cw}x{ch} crop: the fit takes a JPEG at the crop's \
             size or an integer fraction of it (1/2, 1/3, ...)",
            tw as f64 / cw as f64
        )));
    }
    Ok(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{CameraParams, JpegMeta};

    fn dng(width: usize, height: usize, crop: Option<[usize; 4]>, orientation: u16) -> DngImage {
        DngImage {
            mosaic: RawTile::new(width, height, vec![0.25; width * height]).unwrap(),
            camera: CameraParams::drone(),
            summary: String::new(),
            default_crop: crop,
            orientation,
        }
    }

    /// A JPEG as shown, whose pixel (x, y) holds x / 1000 in red and y / 1000 in green.
    fn jpeg(width: usize, height: usize, exif_orientation: u16) -> CameraJpeg {
        let rgb = (0..width * height)
            .flat_map(|i| {
                [
                    (i % width) as f32 / 1000.0,
                    (i / width) as f32 / 1000.0,
                    0.0,
                ]
            })
            .collect();
        CameraJpeg {
            width,
            height,
            rgb,
            stored: JpegMeta {
                width,
                height,
                exif_orientation,
            },
        }
    }

    #[test]
    fn the_default_crop_and_the_jpegs_size_give_the_area() {
        let pair = align(
            &dng(40, 30, Some([4, 2, 32, 24]), 1),
            &jpeg(32, 24, 1),
            CropChoice::Auto,
        )
        .unwrap();
        assert_eq!(pair.area, [4, 2, 32, 24]);
        assert_eq!(pair.alignment.binning, 1);
        assert!(pair.alignment.crop_source.contains("DefaultCrop"));
        let whole = align(&dng(40, 30, None, 1), &jpeg(40, 30, 1), CropChoice::Auto).unwrap();
        assert_eq!(whole.area, [0, 0, 40, 30]);
    }

    #[test]
    fn a_half_size_jpeg_bins_the_mosaic() {
        let pair = align(
            &dng(64, 48, Some([4, 4, 56, 40]), 1),
            &jpeg(28, 20, 1),
            CropChoice::Auto,
        )
        .unwrap();
        assert_eq!(pair.alignment.binning, 2);
        assert_eq!((pair.mosaic.width(), pair.mosaic.height()), (32, 24));
        assert_eq!(pair.area, [2, 2, 28, 20]);
    }

    #[test]
    fn a_raw_shown_turned_takes_its_jpeg_back_to_the_sensors_frame() {
        // the sensor is 40 wide, 30 high; the camera shows it turned a quarter (orientation 6),
        // its JPEG stored upright as shown: 30 wide, 40 high
        let pair = align(&dng(40, 30, None, 6), &jpeg(30, 40, 1), CropChoice::Auto).unwrap();
        assert_eq!(pair.alignment.fit_size, [40, 30]);
        // shown turned clockwise: the sensor's top-left pixel is shown at the top right
        let first = &pair.target[..3];
        assert!(
            (first[0] - 29.0 / 1000.0).abs() < 3e-3 && first[1].abs() < 3e-3,
            "{first:?}"
        );
    }

    #[test]
    fn a_dropped_pair_is_told_apart_by_its_names() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dng_and_jpeg(&names(&["IMG.JPG", "img.dng"])).unwrap(),
            (1, 0)
        );
        assert_eq!(dng_and_jpeg(&names(&["a.DNG", "a.jpeg"])).unwrap(), (0, 1));
        for wrong in [
            &["a.dng"][..],
            &["a.dng", "b.dng"],
            &["a.dng", "a.jpg", "c.png"],
            &[],
        ] {
            let e = dng_and_jpeg(&names(wrong)).unwrap_err().to_string();
            assert!(e.contains("a DNG and the camera's JPEG"), "{e}");
        }
    }

    #[test]
    fn mismatched_pairs_are_refused_with_their_reason() {
        let d = dng(40, 30, None, 1);
        let e = align(&d, &jpeg(40, 20, 1), CropChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("aspect ratio"), "{e}");
        let e = align(&d, &jpeg(30, 40, 1), CropChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("turned a quarter"), "{e}");
        let e = align(&d, &jpeg(80, 60, 1), CropChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger"), "{e}");
        let e = align(&dng(60, 30, None, 1), &jpeg(40, 20, 1), CropChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("integer fraction"), "{e}");
        let e = align(&d, &jpeg(40, 30, 1), CropChoice::Given([8, 0, 40, 30]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not lie within"), "{e}");
    }
}
