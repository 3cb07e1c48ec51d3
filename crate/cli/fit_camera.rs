//! `lens2logit fit-camera`: a digital twin of a camera's own processing, fitted to its JPEG of a
//! shot from the shot's raw (DNG); the twin's folder is written whole or not at all.

use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use lens2logit::data::cancel::CancelToken;
use lens2logit::isp::param::{RenderingStages, TwinView};
use lens2logit::raw::{decode_camera_jpeg, decode_dng};
use lens2logit::train::camera_fit::{align, fit_camera, CropChoice, FitOptions};

use lens2logit::runs::{Run, TWIN};

use crate::common::{may_replace, name_of, read_file};
use crate::runs::{write_dir, RUN_FOLDER};

#[derive(Args)]
pub struct FitCameraArgs {
    /// The camera raw (DNG) of the shot.
    #[arg(long)]
    dng: PathBuf,
    /// The camera's own JPEG of the same shot (at the raw's resolution or an integer fraction of
    /// it; its EXIF orientation is applied).
    #[arg(long)]
    jpeg: PathBuf,
    #[arg(long, default_value_t = FitOptions::default().steps)]
    steps: usize,
    /// The area of the mosaic the JPEG covers: auto (the DNG's default crop, else the whole
    /// mosaic) or X,Y,W,H in the mosaic's pixels.
    #[arg(long, default_value = "auto", value_parser = parse_crop)]
    crop: CropChoice,
    /// Crops per step.
    #[arg(long, default_value_t = FitOptions::default().batch)]
    batch: usize,
    /// AdamW's learning rate for the ISP's parameters (the tone curve and chroma gain take ten
    /// times it).
    #[arg(long, default_value_t = FitOptions::default().learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fit without clipping the highlights after the white balance.
    #[arg(long)]
    no_highlight_clip: bool,
    /// Fit without the tone curve.
    #[arg(long)]
    no_tone_curve: bool,
    /// Fit without the chroma gain.
    #[arg(long)]
    no_chroma_gain: bool,
    /// The twin's folder, a run of the lab log (`runs list`): twin.safetensors (the parameters),
    /// twin.json (the summary: held-out PSNR and SSIM, stages, alignment), rendered.png (the
    /// fitted area as the JPEG shows it), run.json and metrics.csv (the held-out PSNR's curve).
    #[arg(long)]
    out: PathBuf,
}

fn parse_crop(text: &str) -> Result<CropChoice, String> {
    if text == "auto" {
        return Ok(CropChoice::Auto);
    }
    let values: Vec<usize> = text
        .split(',')
        .map(|v| v.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{text}' is not auto or X,Y,W,H (four whole numbers)"))?;
    match values[..] {
        [x, y, w, h] => Ok(CropChoice::Given([x, y, w, h])),
        _ => Err(format!(
            "'{text}' is not auto or X,Y,W,H (four whole numbers)"
        )),
    }
}

/// A twin as a drift view (`--extra-view TWIN`): a folder `fit-camera` wrote, or its
/// twin.safetensors; its column in the drift tables is `twin:NAME`, NAME the folder's (or the
/// file's) name.
pub fn load_twin(path: &Path) -> Result<TwinView, String> {
    let (file, named) = match path.is_dir() {
        true => (path.join(TWIN), path.to_path_buf()),
        false => (path.to_path_buf(), path.with_extension("")),
    };
    let name = match name_of(&named) {
        "" => "twin",
        name => name,
    };
    TwinView::from_safetensors(name, &read_file(&file)?)
        .map_err(|e| format!("{}: {e}", file.display()))
}

pub fn run(args: FitCameraArgs) -> Result<(), String> {
    // refused before the fit, not after
    may_replace(&args.out, &RUN_FOLDER)?;
    let dng_name = args.dng.display().to_string();
    let jpeg_name = args.jpeg.display().to_string();
    let dng = decode_dng(&read_file(&args.dng)?, &dng_name).map_err(|e| e.to_string())?;
    let jpeg =
        decode_camera_jpeg(&read_file(&args.jpeg)?, &jpeg_name).map_err(|e| e.to_string())?;
    let pair = align(&dng, &jpeg, args.crop)
        .map_err(|e| format!("{jpeg_name} does not match {dng_name}: {e}"))?;
    eprintln!("{}", dng.summary);
    eprintln!("alignment: {}", pair.alignment.describe());
    let options = FitOptions {
        steps: args.steps,
        batch: args.batch,
        learning_rate: args.lr,
        seed: args.seed,
        stages: RenderingStages {
            highlight_clip: !args.no_highlight_clip,
            tone_curve: !args.no_tone_curve,
            chroma_gain: !args.no_chroma_gain,
        },
    };
    let bar = ProgressBar::new(args.steps as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} steps {elapsed} (eta {eta}) {msg}")
            .expect("valid template"),
    );
    // the folder's name, as `--extra-view` names the twin
    let name = name_of(&args.out).to_string();
    let twin = fit_camera(
        &name,
        &dng,
        pair,
        options,
        &CancelToken::default(),
        &mut |p| {
            bar.set_position(p.step as u64);
            if let Some(psnr) = p.held_out_psnr {
                bar.set_message(format!("loss {:.5}, held-out PSNR {psnr:.2} dB", p.loss));
            }
        },
    )
    .map_err(|e| e.to_string())?;
    bar.finish();
    let summary = &twin.summary;
    let run = Run::from_camera_twin(&twin, name_of(&args.dng), "CPU (native)")
        .map_err(|e| e.to_string())?;
    write_dir(&run, &args.out)?;
    println!(
        "{}: held-out PSNR {:.2} dB (the DNG's camera before the fit: {:.2} dB), SSIM {:.4}; \
         stages: paper ISP{}",
        args.out.display(),
        summary.held_out_psnr,
        summary.initial_held_out_psnr,
        summary.held_out_ssim,
        summary
            .stages
            .iter()
            .map(|s| format!(", {s}"))
            .collect::<String>()
    );
    Ok(())
}
