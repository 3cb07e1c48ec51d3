//! The decoder: rawler, with every tag it relies on checked first.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rawler::decoders::dng::DngDecoder;
use rawler::decoders::{Decoder, RawDecodeParams};
use rawler::formats::tiff::reader::TiffReader;
use rawler::formats::tiff::{GenericTiffReader, Value, IFD};
use rawler::imgop::xyz::Illuminant;
use rawler::rawsource::RawSource;
use rawler::tags::{DngTag, TiffCommonTag};
use rawler::{RawImage, RawImageData};

use super::{DngColour, DngMeta};

/// What went wrong, in a user's words (the core adds the file's name).
type Result<T> = std::result::Result<T, String>;

/// linear sRGB (D65) -> XYZ, as dcraw and rawpy use it.
const XYZ_SRGB: [[f64; 3]; 3] = [
    [0.412453, 0.357580, 0.180423],
    [0.212671, 0.715160, 0.072169],
    [0.019334, 0.119193, 0.950227],
];

/// Decodes a DNG of at most `max_pixels` pixels: its description and the mosaic's samples
/// (row-major, `width * height`).
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<(DngMeta, Vec<f32>)> {
    check_directories(bytes)?;
    let source = RawSource::new_from_slice(bytes);
    let tiff = guarded(|| GenericTiffReader::new(&mut source.reader(), 0, 0, None, &[]))
        .map_err(|e| format!("not a readable TIFF/DNG file ({e})"))?;
    if !tiff.has_entry(DngTag::DNGVersion) {
        return Err(
            "a TIFF without the DNGVersion tag: not a DNG (convert camera raws to DNG first, e.g. \
             with Adobe DNG Converter or dnglab)"
                .into(),
        );
    }
    let layout = {
        let raw = raw_ifd(&tiff).ok_or_else(|| {
            "no full-resolution raw image (uncompressed, lossless JPEG, deflate or JPEG XL) \
                 in the file"
                .to_string()
        })?;
        Layout::read(raw, max_pixels)?
    };
    let image = guarded(|| {
        DngDecoder::new(&source, tiff, rawler::global_loader())?.raw_image(
            &source,
            &RawDecodeParams::default(),
            false,
        )
    })
    .map_err(|e| format!("the pixels could not be decoded ({e})"))?;
    if (image.width, image.height, image.cpp) != (layout.width, layout.height, 1) {
        return Err(format!(
            "the decoder returned a {}x{} image with {} samples per pixel for a {}x{} mosaic",
            image.width, image.height, image.cpp, layout.width, layout.height
        ));
    }
    to_lab(&image, &layout)
}

/// Every value of every TIFF directory (the main chain, SubIFDs, EXIF) fits in the file. rawler
/// allocates what an entry's count claims before reading it: in the browser a hostile count would
/// abort the worker, so the counts are checked first. A BigTIFF is left to rawler.
fn check_directories(bytes: &[u8]) -> Result<()> {
    let little = match bytes.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Ok(()),
    };
    // an unsigned integer of `n` bytes at `offset`, in the file's byte order
    let uint_at = |offset: usize, n: usize| {
        let b = bytes.get(offset..offset.checked_add(n)?)?;
        let push = |acc: usize, &byte: &u8| (acc << 8) | byte as usize;
        Some(if little {
            b.iter().rev().fold(0, push)
        } else {
            b.iter().fold(0, push)
        })
    };
    let u16_at = |o: usize| uint_at(o, 2);
    let u32_at = |o: usize| uint_at(o, 4);
    let broken = |what: &str| format!("{what}: the file is damaged or not a DNG");
    let mut pending = vec![u32_at(4).ok_or_else(|| broken("no first directory"))?];
    let mut seen = std::collections::HashSet::new();
    while let Some(ifd) = pending.pop() {
        // a chain may loop; a real DNG has a handful of directories
        if ifd == 0 || !seen.insert(ifd) || seen.len() > 64 {
            continue;
        }
        let entries = u16_at(ifd).ok_or_else(|| broken("a directory lies past the end"))?;
        for i in 0..entries {
            let entry = ifd + 2 + 12 * i;
            let (Some(tag), Some(kind), Some(count)) =
                (u16_at(entry), u16_at(entry + 2), u32_at(entry + 4))
            else {
                return Err(broken("a directory entry lies past the end"));
            };
            let size = match kind {
                3 | 8 => 2,
                4 | 9 | 11 | 13 => 4,
                5 | 10 | 12 | 16..=18 => 8,
                _ => 1,
            };
            if count.saturating_mul(size) > bytes.len() {
                return Err(format!(
                    "tag {tag} claims {count} values, more than the {}-byte file holds: the file \
                     is damaged or hostile",
                    bytes.len()
                ));
            }
            // SubIFDs and the EXIF directory are directories too
            if matches!(tag, 330 | 34665) {
                let values = if count * size <= 4 {
                    entry + 8
                } else {
                    u32_at(entry + 8).unwrap_or(0)
                };
                pending.extend((0..count.min(16)).filter_map(|k| u32_at(values + 4 * k)));
            }
        }
        pending.extend(u32_at(ifd + 2 + 12 * entries));
    }
    Ok(())
}

/// Runs rawler, turning a panic into an error where panics unwind (natively).
fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> std::result::Result<T, E>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("the decoder failed on malformed data".into()),
    }
}

/// The IFD rawler decodes: the first full-resolution image with a compression it reads.
fn raw_ifd(tiff: &GenericTiffReader) -> Option<&IFD> {
    tiff.find_ifds_with_tag(TiffCommonTag::Compression)
        .into_iter()
        .find(|ifd| {
            let reduced = ifd
                .get_entry(TiffCommonTag::NewSubFileType)
                .is_some_and(|e| first_u32(&e.value).unwrap_or(0) & 1 != 0);
            let compression = ifd
                .get_entry(TiffCommonTag::Compression)
                .and_then(|e| first_u32(&e.value));
            !reduced && matches!(compression, Some(1 | 7 | 8 | 0x884c | 52546))
        })
}

fn first_u32(value: &Value) -> Option<u32> {
    value.get_u32(0).ok().flatten()
}

fn usizes(value: &Value) -> Option<Vec<usize>> {
    (0..value.count())
        .map(|i| value.get_usize(i).ok().flatten())
        .collect()
}

/// What the raw IFD says about the mosaic, checked against everything rawler would otherwise
/// panic on; read before any pixel is decoded.
struct Layout {
    width: usize,
    height: usize,
    /// (top, left, bottom, right), within the image.
    active: [usize; 4],
    /// The 2x2 CFA pattern from the active area's origin (0 red, 1 green, 2 blue), row-major.
    cfa: [u8; 4],
    /// DefaultCropOrigin and DefaultCropSize: x, y (from the active area's origin), width, height.
    default_crop: Option<[usize; 4]>,
}

impl Layout {
    fn read(raw: &IFD, max_pixels: u64) -> Result<Self> {
        let tag = |t: TiffCommonTag| raw.get_entry(t).map(|e| &e.value);
        let dng = |t: DngTag| raw.get_entry(t).map(|e| &e.value);
        let one = |v: Option<&Value>| v.and_then(first_u32);

        let (Some(width), Some(height)) = (
            one(tag(TiffCommonTag::ImageWidth)),
            one(tag(TiffCommonTag::ImageLength)),
        ) else {
            return Err("the raw image has no width or height".into());
        };
        let (width, height) = (width as usize, height as usize);
        let pixels = (width as u64) * (height as u64);
        if pixels > max_pixels {
            return Err(format!(
                "a {width}x{height} raw image has {pixels} pixels, more than the lab decodes \
                 ({max_pixels})"
            ));
        }

        match one(tag(TiffCommonTag::PhotometricInt)) {
            Some(32803) => {}
            Some(34892) => {
                return Err(
                    "a linear (already demosaiced) DNG, not a raw mosaic: the lab needs the \
                     sensor's colour filter array data"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "photometric interpretation {other:?} is not a colour filter array (32803)"
                ))
            }
        }
        if one(tag(TiffCommonTag::SamplesPerPixel)) != Some(1) {
            return Err(
                "the raw image has more than one sample per pixel: not a Bayer mosaic".into(),
            );
        }
        let bits = one(tag(TiffCommonTag::BitsPerSample)).unwrap_or(0);
        if !(1..=32).contains(&bits) {
            return Err(format!("{bits} bits per sample (1 to 32 are defined)"));
        }
        if let Some(white) = tag(TiffCommonTag::WhiteLevel) {
            if first_u32(white).unwrap_or(0) == 0 {
                return Err("the white level is 0".into());
            }
        }

        let cfa = bayer_pattern(raw)?;

        let active = match dng(DngTag::ActiveArea) {
            None => [0, 0, height, width],
            Some(v) => match usizes(v).as_deref() {
                Some(&[top, left, bottom, right])
                    if top < bottom && left < right && bottom <= height && right <= width =>
                {
                    [top, left, bottom, right]
                }
                _ => {
                    return Err(format!(
                        "the active area {v:?} does not lie within the {width}x{height} image"
                    ))
                }
            },
        };
        let default_crop = default_crop(raw, active, width, height)?;

        if let Some(levels) = tag(TiffCommonTag::BlackLevels) {
            let repeat = match dng(DngTag::BlackLevelRepeatDim) {
                Some(Value::Short(dims)) if dims.len() == 2 => dims[0] as usize * dims[1] as usize,
                _ => 1,
            };
            let typed = matches!(
                levels,
                Value::Short(_) | Value::Long(_) | Value::Rational(_)
            );
            if !typed || levels.count() != repeat {
                return Err(format!(
                    "the black level holds {} values for a repeat pattern of {repeat}",
                    levels.count()
                ));
            }
        }
        Ok(Self {
            width,
            height,
            active,
            cfa,
            default_crop,
        })
    }
}

/// DefaultCropOrigin and DefaultCropSize (x, y from the active area's origin, width, height),
/// checked to lie within the active area; none where the file gives none.
fn default_crop(
    raw: &IFD,
    active: [usize; 4],
    width: usize,
    height: usize,
) -> Result<Option<[usize; 4]>> {
    let dng = |t: DngTag| raw.get_entry(t).map(|e| &e.value);
    // rawler turns the default crop into offsets from the image's edges
    let (Some(origin), Some(size)) = (dng(DngTag::DefaultCropOrigin), dng(DngTag::DefaultCropSize))
    else {
        return Ok(None);
    };
    match (usizes(origin).as_deref(), usizes(size).as_deref()) {
        (Some(&[x, y]), Some(&[w, h]))
            if w > 0 && h > 0 && active[1] + x + w <= width && active[0] + y + h <= height =>
        {
            Ok(Some([x, y, w, h]))
        }
        _ => Err("the default crop does not lie within the active area".into()),
    }
}

/// The 2x2 Bayer pattern (one red, two greens on a diagonal, one blue); anything else (X-Trans,
/// CYGM, RGBE) is refused.
fn bayer_pattern(raw: &IFD) -> Result<[u8; 4]> {
    let dims = raw
        .get_entry(TiffCommonTag::CFARepeatPatternDim)
        .and_then(|e| usizes(&e.value));
    let pattern = raw
        .get_entry(TiffCommonTag::CFAPattern)
        .and_then(|e| usizes(&e.value));
    let refuse = |what: String| {
        format!(
            "{what}: the lab reads 2x2 Bayer mosaics only (not X-Trans or other colour filter \
             arrays)"
        )
    };
    match (dims.as_deref(), pattern.as_deref()) {
        (Some(&[2, 2]) | None, Some(&[a, b, c, d])) => {
            let cells = [a, b, c, d];
            let count = |colour| cells.iter().filter(|&&v| v == colour).count();
            let greens_diagonal = (a == 1 && d == 1) || (b == 1 && c == 1);
            if count(0) == 1 && count(2) == 1 && greens_diagonal {
                Ok(cells.map(|v| v as u8))
            } else {
                Err(refuse(format!("the CFA pattern {cells:?}")))
            }
        }
        (Some(dims), _) if dims != [2, 2] => {
            Err(refuse(format!("a {dims:?} colour filter array repeat")))
        }
        (_, Some(p)) => Err(refuse(format!("a CFA pattern of {} cells", p.len()))),
        (_, None) => Err("the raw image has no CFA pattern".into()),
    }
}

/// The active area from the first red site, cut to whole 2x2 cells, scaled by the white level;
/// and the camera in the lab's terms.
fn to_lab(image: &RawImage, layout: &Layout) -> Result<(DngMeta, Vec<f32>)> {
    let [top, left, bottom, right] = layout.active;
    // the red site's offset in the pattern; the checked pattern always has one
    let red = layout.cfa.iter().position(|&c| c == 0).unwrap_or(0);
    let (dy, dx) = (red / 2, red % 2);
    let (y0, x0) = (top + dy, left + dx);
    let width = (right - x0) & !1;
    let height = (bottom - y0) & !1;
    if width == 0 || height == 0 {
        return Err(format!(
            "the active area {:?} holds no whole 2x2 cell",
            layout.active
        ));
    }

    let white = image.whitelevel.0.first().copied().unwrap_or(0) as f64;
    if white <= 0.0 {
        return Err("the white level is 0".into());
    }
    let rows = |px_len: usize| {
        (y0..y0 + height)
            .map(move |y| y * image.width + x0)
            .take_while(move |&i| i + width <= px_len)
    };
    let data: Vec<f32> = match &image.data {
        RawImageData::Integer(px) => rows(px.len())
            .flat_map(|i| &px[i..i + width])
            .map(|&v| (v as f64 / white) as f32)
            .collect(),
        RawImageData::Float(px) => rows(px.len())
            .flat_map(|i| &px[i..i + width])
            .map(|&v| (v as f64 / white) as f32)
            .collect(),
    };
    if data.len() != width * height {
        return Err("the decoder returned fewer pixels than the image's size".into());
    }
    let (colour, illuminant, wb_source) = lab_colour(image, (dy, dx), white)?;

    let pattern: String = layout
        .cfa
        .iter()
        .map(|&c| ['R', 'G', 'B'][c as usize])
        .collect();
    let make_model = format!("{} {}", image.make.trim(), image.model.trim());
    let summary = format!(
        "{}: {width}x{height} RGGB mosaic from the {}x{} active area ({pattern} pattern, origin \
         moved by {dy} row(s), {dx} column(s)); black level {:?} of white level {white}; white \
         balance {:.3?} from {wb_source}; colour matrix from ColorMatrix ({illuminant:?})",
        if make_model.trim().is_empty() {
            "unknown camera"
        } else {
            make_model.trim()
        },
        right - left,
        bottom - top,
        colour.black_level.map(|b| (b * white).round()),
        colour.white_balance,
    );
    // the crop in the mosaic's pixels: it starts (dy, dx) into the active area
    let default_crop = layout.default_crop.map(|[x, y, w, h]| {
        let (x0, y0) = (
            x.saturating_sub(dx).min(width),
            y.saturating_sub(dy).min(height),
        );
        [x0, y0, w.min(width - x0), h.min(height - y0)]
    });
    let meta = DngMeta {
        width,
        height,
        colour,
        summary,
        default_crop,
        // rawler's 0 is a file that says nothing
        orientation: image.orientation.to_u16().max(1),
    };
    Ok((meta, data))
}

/// The camera's colour in the lab's terms, its black level read from the mosaic's origin (dy, dx)
/// into the active area and scaled by `white`; with the ColorMatrix's illuminant and where the
/// white balance came from.
fn lab_colour(
    image: &RawImage,
    (dy, dx): (usize, usize),
    white: f64,
) -> Result<(DngColour, Illuminant, &'static str)> {
    // DNG's black level repeats from the active area's origin; ours starts (dy, dx) into it
    let black = &image.blacklevel;
    let black_at = |sy: usize, sx: usize| -> f64 {
        let (bw, bh) = (black.width.max(1), black.height.max(1));
        let i = ((dy + sy) % bh) * bw + (dx + sx) % bw;
        black
            .levels
            .get(i)
            .or(black.levels.first())
            .map_or(0.0, |r| r.as_f32() as f64)
    };
    let black_level = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(sy, sx)| black_at(sy, sx) / white);

    let (illuminant, cam_xyz) = cam_xyz(image).ok_or_else(|| {
        "no 3x3 ColorMatrix: the file does not say how its colours map to XYZ (pass the \
             camera's parameters instead)"
            .to_string()
    })?;
    let (colour_matrix, daylight_gains) = rgb_cam(&cam_xyz).ok_or_else(|| {
        format!("the ColorMatrix ({illuminant:?}) is singular and cannot be inverted")
    })?;
    let neutral = image.wb_coeffs;
    let (white_balance, wb_source) = if neutral[..3].iter().all(|g| g.is_finite() && *g > 0.0) {
        let g = neutral[1] as f64;
        (
            [neutral[0] as f64 / g, 1.0, neutral[2] as f64 / g],
            "AsShotNeutral",
        )
    } else {
        (daylight_gains, "the colour matrix (daylight)")
    };
    let colour = DngColour {
        black_level,
        white_balance,
        colour_matrix,
    };
    Ok((colour, illuminant, wb_source))
}

/// The XYZ -> camera matrix, preferring the D65 calibration (the sRGB white point).
fn cam_xyz(image: &RawImage) -> Option<(Illuminant, [[f64; 3]; 3])> {
    let mut found: Vec<_> = image
        .color_matrix
        .iter()
        .filter(|(_, m)| m.len() == 9 && m.iter().all(|v| v.is_finite()))
        .map(|(&illuminant, m)| (illuminant, m))
        .collect();
    found.sort_by_key(|(illuminant, _)| (*illuminant != Illuminant::D65, *illuminant as u16));
    let (illuminant, m) = found.first()?;
    let at = |r: usize, c: usize| m[r * 3 + c] as f64;
    Some((
        *illuminant,
        [0, 1, 2].map(|r| [at(r, 0), at(r, 1), at(r, 2)]),
    ))
}

/// dcraw's (and so rawpy's) camera -> linear sRGB matrix: cam_rgb = cam_xyz * xyz_srgb with each
/// row normalised to sum 1, inverted; row-major. Also the daylight white balance those row sums
/// give (dcraw's pre_mul), normalised to green.
fn rgb_cam(cam_xyz: &[[f64; 3]; 3]) -> Option<([f64; 9], [f64; 3])> {
    let mut cam_rgb = [[0.0; 3]; 3];
    let mut sums = [0.0; 3];
    for r in 0..3 {
        for c in 0..3 {
            cam_rgb[r][c] = (0..3).map(|k| cam_xyz[r][k] * XYZ_SRGB[k][c]).sum();
        }
        sums[r] = cam_rgb[r].iter().sum();
        if !(sums[r].is_finite() && sums[r].abs() > 1e-12) {
            return None;
        }
        for v in &mut cam_rgb[r] {
            *v /= sums[r];
        }
    }
    let inverse = invert3(&cam_rgb)?;
    let gains = [sums[1] / sums[0], 1.0, sums[1] / sums[2]];
    let mut flat = [0.0; 9];
    for (i, v) in flat.iter_mut().enumerate() {
        *v = inverse[i / 3][i % 3];
    }
    Some((flat, gains))
}

fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let cofactor = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cofactor(0, c)).sum();
    if !(det.is_finite() && det.abs() > 1e-12) {
        return None;
    }
    // the inverse is the transposed cofactor matrix over the determinant
    Some([0, 1, 2].map(|r| [0, 1, 2].map(|c| cofactor(c, r) / det)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_camera_gives_the_srgb_matrix_inverse() {
        // a camera that sees XYZ as sRGB does: cam_xyz = inverse(xyz_srgb)
        let cam_xyz = invert3(&XYZ_SRGB).unwrap();
        let (m, gains) = rgb_cam(&cam_xyz).unwrap();
        for (i, v) in m.iter().enumerate() {
            let expected = if i % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - expected).abs() < 1e-9, "{m:?}");
        }
        assert!(gains.iter().all(|g| (g - 1.0).abs() < 1e-9), "{gains:?}");
    }

    #[test]
    fn rows_of_the_matrix_sum_to_one_and_singular_matrices_are_refused() {
        let cam_xyz = [[0.9, -0.2, -0.1], [-0.4, 1.3, 0.1], [-0.1, 0.2, 0.6]];
        let (m, _) = rgb_cam(&cam_xyz).unwrap();
        for row in m.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{m:?}");
        }
        assert!(rgb_cam(&[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 0.0]]).is_none());
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [
            &b""[..],
            b"hello",
            b"II*\0\x08\0\0\0\xff\xff",
            b"MM\0*\0\0\0\x08\0\x01\x01\0\0\x03\xff\xff\xff\xff\0\0\0\0",
        ] {
            // an error saying what is wrong, never a panic
            let e = decode(bytes, 1 << 20).unwrap_err();
            assert!(e.len() > 10, "{e:?}");
        }
    }
}
