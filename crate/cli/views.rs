//! `lens2logit views`: the paper's static views of raw tiles, as float32 .npy or 8-bit PNG; a
//! directory of tiles gives a new folder, written whole or not at all.
//! A camera raw (.dng) gives its centre tile of [`DNG_TILE`] px, with the camera its metadata
//! describes unless `--camera` says otherwise.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use lens2logit::codecs;
use lens2logit::isp::static_pipeline::{
    render_each, Debayer, Denoising, RgbImage, Sharpening, View,
};
use lens2logit::raw::cut::centre_tile;
use lens2logit::raw::intensity::scale_intensity;
use lens2logit::raw::{decode_dng, decode_tile, CameraParams, RawTile};

use crate::common::{load_camera, read_file, write_folder, EMPTY};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Npy,
    Png,
}

#[derive(Args)]
pub struct ViewsArgs {
    /// A raw tile (PNG, TIFF, .npy), a camera raw (.dng: its centre 256x256 tile), or a directory
    /// of them.
    input: PathBuf,
    /// microscopy, drone, or a JSON file with black_level, white_balance, colour_matrix, gamma.
    /// Needed for tiles; a .dng's own metadata gives its camera otherwise.
    #[arg(long)]
    camera: Option<String>,
    #[arg(long, default_value = "bilinear")]
    debayer: Debayer,
    #[arg(long, default_value = "unsharp_masking")]
    sharpening: Sharpening,
    #[arg(long, default_value = "gaussian_denoising")]
    denoising: Denoising,
    /// Light level in percent: the signal above the black level is scaled (the datasets hold
    /// 1, 5, 10, 25, 50, 75 and 100).
    #[arg(long, default_value_t = 100.0)]
    intensity: f64,
    /// Write all 12 views (DEBAYER-SHARPENING-DENOISING.npy) into the directory --out.
    #[arg(long)]
    all: bool,
    /// npy: float32 (H, W, 3); png: 8-bit RGB, clipped to [0, 1].
    #[arg(long, value_enum, default_value = "npy")]
    format: Format,
    /// Output file (one view of one tile) or directory (--all, or a directory as INPUT).
    #[arg(long)]
    out: PathBuf,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Png => "png",
        }
    }

    /// Writes `image` to `path`: a .npy straight from the image's values, a PNG encoded first.
    fn write(self, image: &RgbImage, path: &Path) -> lens2logit::Result<()> {
        let failed = |e| lens2logit::Error::io(format!("cannot write {}", path.display()), e);
        match self {
            Format::Npy => {
                let mut file = std::fs::File::create(path).map_err(failed)?;
                let shape = [image.height, image.width, 3];
                let name = path.display().to_string();
                codecs::write_npy_f32(&mut file, &shape, &image.data, &name)
            }
            Format::Png => {
                let rgb: Vec<u8> = image.data.iter().map(|&v| codecs::to_byte(v)).collect();
                let png = codecs::png8(image.width, image.height, 3, &rgb)?;
                std::fs::write(path, png).map_err(failed)
            }
        }
    }
}

/// The side of the tile taken from a camera raw: the datasets' tiles.
const DNG_TILE: usize = 256;

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Tiles the lab can read, by extension.
fn is_tile(path: &Path) -> bool {
    matches!(
        extension(path).as_deref(),
        Some("png" | "tif" | "tiff" | "npy" | "dng")
    )
}

/// The tile to render and its camera: a tile file with `camera`, or a camera raw's centre tile
/// with `camera` or else its own. A camera raw's description goes to stderr when `describe`.
fn load(
    input: &Path,
    camera: Option<&CameraParams>,
    describe: bool,
) -> Result<(RawTile, CameraParams), String> {
    let name = input.display().to_string();
    let bytes = read_file(input)?;
    if extension(input).as_deref() == Some("dng") {
        let raw = decode_dng(&bytes, &name).map_err(|e| e.to_string())?;
        if describe {
            eprintln!("{name}: {}", raw.summary);
        }
        let tile = centre_tile(&raw.mosaic, DNG_TILE).map_err(|e| format!("{name}: {e}"))?;
        return Ok((tile, camera.cloned().unwrap_or(raw.camera)));
    }
    let camera = camera.cloned().ok_or_else(|| {
        format!("{name} is a tile: say its camera with --camera (microscopy, drone or a JSON file)")
    })?;
    Ok((
        decode_tile(&bytes, &name).map_err(|e| e.to_string())?,
        camera,
    ))
}

/// Renders the requested views of one tile into `target` (a file for one view, else a directory).
struct Job<'a> {
    camera: Option<&'a CameraParams>,
    views: &'a [View],
    intensity: f64,
    all: bool,
    format: Format,
    /// Print a camera raw's description (one input; a directory's progress bar owns stderr).
    describe: bool,
}

fn process(input: &Path, target: &Path, job: &Job) -> Result<(), String> {
    let Job {
        camera,
        views,
        intensity,
        all,
        format,
        describe,
    } = *job;
    let (tile, camera) = load(input, camera, describe)?;
    let tile = if intensity < 100.0 {
        scale_intensity(&tile, intensity, &camera).map_err(|e| e.to_string())?
    } else {
        tile
    };
    if all {
        std::fs::create_dir_all(target)
            .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    }
    // each view is written as soon as it is rendered: a tile's 12 views are never all in memory
    render_each(&tile, &camera, views, |i, image| {
        let path = if all {
            target.join(format!("{}.{}", views[i], format.extension()))
        } else {
            target.to_path_buf()
        };
        format.write(&image, &path)
    })
    .map_err(|e| format!("{}: {e}", input.display()))
}

pub fn run(args: ViewsArgs) -> Result<(), String> {
    let camera = args.camera.as_deref().map(load_camera).transpose()?;
    let views = if args.all {
        View::paper_views()
    } else {
        vec![View {
            debayer: args.debayer,
            sharpening: args.sharpening,
            denoising: args.denoising,
        }]
    };
    let job = Job {
        camera: camera.as_ref(),
        views: &views,
        intensity: args.intensity,
        all: args.all,
        format: args.format,
        describe: !args.input.is_dir(),
    };
    if !(args.intensity > 0.0 && args.intensity <= 100.0) {
        return Err(format!(
            "--intensity is a percentage in (0, 100], got {}",
            args.intensity
        ));
    }
    if !args.input.is_dir() {
        return process(&args.input, &args.out, &job);
    }

    let mut tiles: Vec<PathBuf> = std::fs::read_dir(&args.input)
        .map_err(|e| format!("cannot list {}: {e}", args.input.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_tile(p))
        .collect();
    tiles.sort();
    if tiles.is_empty() {
        return Err(format!(
            "no PNG, TIFF, .npy or .dng files in {}",
            args.input.display()
        ));
    }
    // only an empty folder is replaced: a folder of views cannot be told from one of tiles
    write_folder(&args.out, &EMPTY, |out| {
        let bar = ProgressBar::new(tiles.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} tiles {elapsed} (eta {eta})")
                .expect("valid template"),
        );
        let failures: Vec<String> = tiles
            .par_iter()
            .filter_map(|tile| {
                let stem = tile.file_stem().unwrap_or_default().to_string_lossy();
                let target = if args.all {
                    out.join(stem.as_ref())
                } else {
                    out.join(format!("{stem}.{}", args.format.extension()))
                };
                let result = process(tile, &target, &job);
                bar.inc(1);
                result.err()
            })
            .collect();
        bar.finish_and_clear();
        match failures.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} of {} tiles failed, so none was written; first: {first}",
                failures.len(),
                tiles.len()
            )),
        }
    })?;
    eprintln!("wrote {} tiles to {}", tiles.len(), args.out.display());
    Ok(())
}
