//! `lens2logit predict`: a model started from a weights file, its eval-mode logits on a batch
//! given as .npy (used as it is: no normalisation, no processing), written as .npy. For
//! checking weights against their library, and for using them.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use clap::Args;

use lens2logit::codecs::{npy_f32, read_npy};
use lens2logit::spec::models::ModelKind;
use lens2logit::train::predict::predict;
use lens2logit::train::DeviceChoice;

use crate::common::{read_file, write_file};
use crate::train::read_weights;

#[derive(Args)]
pub struct PredictArgs {
    /// One of the lab's models (resnet18, unet_resnet18, unetpp_resnet18, ...).
    #[arg(long)]
    model: String,
    /// The weights: a file or an http(s) URL (safetensors or a PyTorch checkpoint).
    #[arg(long)]
    weights: String,
    /// Classes of a classifier's head (the segmenters give one logit per pixel).
    #[arg(long, default_value_t = 4)]
    classes: usize,
    /// A float32 (B, 3, H, W) batch.
    #[arg(long)]
    input: PathBuf,
    /// Where the logits go: (B, classes) for the classifiers, (B, 1, H, W) for the segmenters.
    #[arg(long)]
    out: PathBuf,
    /// auto, cpu or gpu.
    #[arg(long, default_value = "cpu")]
    backend: String,
}

pub fn run(args: PredictArgs) -> Result<(), String> {
    let kind = ModelKind::parse(&args.model).map_err(|e| e.to_string())?;
    let classes = if kind.is_segmenter() { 1 } else { args.classes };
    let name = args.input.display().to_string();
    let (shape, values) = read_npy(&read_file(&args.input)?, &name).map_err(|e| e.to_string())?;
    if shape.len() != 4 || shape[1] != 3 {
        return Err(format!(
            "{name} holds an array of shape {shape:?}: give a float32 (B, 3, H, W) batch"
        ));
    }
    let x = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).map_err(|e| e.to_string())?;
    let weights = read_weights(&args.weights)?;
    let choice = DeviceChoice::parse(&args.backend).map_err(|e| e.to_string())?;
    let (logits, loaded, chosen) = pollster::block_on(async {
        let adapter = choice.adapter().await?;
        predict(kind, classes, &weights, &x, (choice, adapter)).await
    })
    .map_err(|e| e.to_string())?;
    if let Some(told) = &loaded.head_reinitialised {
        eprintln!("{told}");
    }
    let out_shape = match kind.is_segmenter() {
        true => vec![shape[0], 1, shape[2], shape[3]],
        false => vec![shape[0], classes],
    };
    let bytes = npy_f32(&out_shape, &logits).map_err(|e| e.to_string())?;
    write_file(&args.out, &bytes)?;
    eprintln!(
        "{} on {}: logits {out_shape:?} to {}",
        kind.name(),
        chosen.describe(),
        args.out.display()
    );
    Ok(())
}
