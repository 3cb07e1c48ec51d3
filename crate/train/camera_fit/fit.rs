//! The fit: AdamW on the parametrized ISP (from the DNG's camera) and the camera rendering's
//! stages (from the identity), L2 in display space on random crops, scored on the held-out
//! quarter; and the twin it gives: parameters, summary and the rendered image.

use candle_core::{DType, Device, Tensor};
use candle_nn::ParamsAdamW;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::align::{AlignedPair, Alignment};
use crate::codecs::{png8, to_byte};
use crate::data::cancel::CancelToken;
use crate::isp::param::{
    twin_safetensors, CameraRendering, IspParams, RenderingKnots, RenderingStages,
};
use crate::model::losses::ssim_distance;
use crate::model::AdamW;
use crate::raw::{orient_rgb, DngImage, RawTile};
use crate::spec::forensics::SSIM_WINDOW;
use crate::{Error, Result};

/// Pixels around a rendered area that the processing reads (the debayering's and the sharpening's
/// 1 px, the blur's 2 px), rounded up to whole 2x2 cells with room to spare; a crop's loss also
/// leaves out this margin, where its filters saw padding instead of neighbours.
const HALO: usize = 8;
/// Side of the blocks a large area is rendered in (bounded memory at any image size).
const BLOCK: usize = 512;
/// Side of a training crop at most, and at least (a crop needs room inside its margins).
const CROP_SIDE: usize = 128;
const MIN_CROP_SIDE: usize = 32;

/// How to fit.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub steps: usize,
    /// Crops per step.
    pub batch: usize,
    /// AdamW's learning rate for the ISP's parameters; the rendering's stages take ten times it.
    pub learning_rate: f64,
    pub seed: u64,
    pub stages: RenderingStages,
}

impl FitOptions {
    /// Every setting within the lab's limits, whoever set it.
    pub fn validate(&self) -> Result<()> {
        use crate::spec::limits::{check_real, BATCH, LEARNING_RATE, STEPS};
        STEPS.check_usize(self.steps)?;
        BATCH.check_usize(self.batch)?;
        check_real("the fit's learning rate", self.learning_rate, LEARNING_RATE)?;
        Ok(())
    }
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            steps: crate::spec::settings::DEFAULT_FIT_STEPS,
            batch: 4,
            learning_rate: 2e-3,
            seed: 0,
            stages: RenderingStages {
                highlight_clip: true,
                tone_curve: true,
                chroma_gain: true,
            },
        }
    }
}

/// Where a fit stands.
#[derive(Debug, Clone, Serialize)]
pub struct FitProgress {
    pub step: usize,
    pub steps: usize,
    /// The step's training loss (mean squared error in display space).
    pub loss: f64,
    /// PSNR (dB) of the held-out probe, where this step measured it.
    pub held_out_psnr: Option<f64>,
}

/// What a twin's JSON summary says.
#[derive(Debug, Clone, Serialize)]
pub struct TwinSummary {
    /// The twin's name (its column in drift tables is `twin:NAME`).
    pub name: String,
    /// The DNG's description.
    pub camera: String,
    pub alignment: Alignment,
    /// The stages fitted, in the order they run.
    pub stages: Vec<&'static str>,
    pub steps: usize,
    pub batch: usize,
    pub crop_side: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub loss: &'static str,
    /// The held-out region: x, y, width, height in the fitted area, in the sensor's frame and as
    /// the JPEG is shown (where rendered.png is compared with it).
    pub held_out_sensor_frame: [usize; 4],
    pub held_out_shown: [usize; 4],
    /// Over the held-out region, rendered.png against the JPEG as shown (8 bits, range 1):
    /// PSNR in dB and SSIM (7x7 box windows, averaged over R, G and B).
    pub held_out_psnr: f64,
    pub held_out_ssim: f64,
    /// The same at the fit's start: the DNG's camera through the paper's ISP, with the highlight
    /// clip at the sensor's saturation where the fit has that stage (the curves start as the
    /// identity).
    pub initial_held_out_psnr: f64,
    pub final_loss: f64,
    pub rendering_knots: RenderingKnots,
}

/// A fitted camera twin.
pub struct CameraTwin {
    pub params: IspParams,
    pub rendering: CameraRendering,
    pub summary: TwinSummary,
    /// The fitted area rendered as the JPEG is shown: width, height, RGB (8 bits).
    pub rendered: (usize, usize, Vec<u8>),
    /// |rendered - JPEG| four times brighter, as shown: width, height, RGB (8 bits).
    pub difference: (usize, usize, Vec<u8>),
    /// The camera's JPEG as shown (the fit's target): width, height, RGB (8 bits).
    pub jpeg: (usize, usize, Vec<u8>),
    /// (step, loss, held-out probe's PSNR) where the probe was measured: the run's curve.
    pub curve: Vec<(usize, f32, f32)>,
    /// Start and end, milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub finished_ms: u64,
}

impl CameraTwin {
    /// The ISP's parameters (the paper's names) and the rendering's stages, as safetensors.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        twin_safetensors(&self.params, &self.rendering)
    }

    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("a twin's summary always serialises")
    }

    pub fn rendered_png(&self) -> Result<Vec<u8>> {
        let (w, h, rgb) = &self.rendered;
        png8(*w, *h, 3, rgb)
    }
}

/// The (H, W, 3) values of `rect` (x, y, width, height) of an image `width` pixels wide.
fn cut(image: &[f32], width: usize, [x, y, w, h]: [usize; 4]) -> Vec<f32> {
    (y..y + h)
        .flat_map(|r| &image[(r * width + x) * 3..(r * width + x + w) * 3])
        .copied()
        .collect()
}

/// The twin's rendering of `rect` (x, y, width, height in `mosaic`), (H, W, 3) in [0, 1]: in
/// blocks, each with its halo of real neighbours, so any size renders in bounded memory and the
/// result does not depend on the blocks.
fn render(
    params: &IspParams,
    rendering: &CameraRendering,
    mosaic: &RawTile,
    [x, y, w, h]: [usize; 4],
) -> Result<Vec<f32>> {
    let (mw, mh) = (mosaic.width(), mosaic.height());
    let mut out = vec![0.0f32; w * h * 3];
    for by in (0..h).step_by(BLOCK) {
        for bx in (0..w).step_by(BLOCK) {
            let (x0, y0) = (x + bx, y + by);
            let (bw, bh) = (BLOCK.min(w - bx), BLOCK.min(h - by));
            // whole 2x2 cells from a red site: even starts, even ends (the mosaic's sides are)
            let (sx, sy) = (x0.saturating_sub(HALO) & !1, y0.saturating_sub(HALO) & !1);
            let even_end = |end: usize, side: usize| (end.min(side) + 1) & !1;
            let (ex, ey) = (even_end(x0 + bw + HALO, mw), even_end(y0 + bh + HALO, mh));
            let window = mosaic.window(sx, sy, ex - sx, ey - sy)?;
            let raw = Tensor::from_vec(window, (1, ey - sy, ex - sx), &Device::Cpu)?;
            let rgb = rendering
                .render(&raw, params)?
                .narrow(2, y0 - sy, bh)?
                .narrow(3, x0 - sx, bw)?
                .squeeze(0)?
                .permute((1, 2, 0))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            for (r, row) in rgb.chunks_exact(bw * 3).enumerate() {
                let at = ((by + r) * w + bx) * 3;
                out[at..at + bw * 3].copy_from_slice(row);
            }
        }
    }
    Ok(out)
}

/// Rounds to 8 bits, as rendered.png stores the values.
fn quantised(values: &[f32]) -> Vec<f32> {
    values
        .iter()
        .map(|&v| f32::from(to_byte(v)) / 255.0)
        .collect()
}

/// PSNR in dB of `a` against `b` (range 1); infinite where they are equal.
fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len().max(1) as f64;
    -10.0 * mse.log10()
}

/// SSIM of two (H, W, 3) images, averaged over R, G and B.
fn ssim(a: &[f32], b: &[f32], (w, h): (usize, usize)) -> Result<f64> {
    let planar = |v: &[f32]| -> Result<Tensor> {
        Ok(Tensor::from_slice(v, (1, h, w, 3), &Device::Cpu)?.permute((0, 3, 1, 2))?)
    };
    let distance = ssim_distance(&planar(a)?, &planar(b)?)?.to_scalar::<f32>()?;
    Ok(1.0 - f64::from(distance))
}

/// The fit's regions in the fitted area's pixels.
struct Regions {
    crop_side: usize,
    /// Columns [0, train_width) train; the rest is held out.
    train_width: usize,
    held_out: [usize; 4],
    /// Up to four crops of the held-out region, scored during the fit.
    probes: Vec<[usize; 4]>,
}

impl Regions {
    fn of(pair: &AlignedPair) -> Result<Self> {
        let [_, _, w, h] = pair.area;
        let held_width = w / 4;
        let train_width = w - held_width;
        // room for a crop to start on a red site of the mosaic wherever the area starts
        let crop_side = CROP_SIDE
            .min(train_width.saturating_sub(2))
            .min(h.saturating_sub(2))
            & !1;
        if crop_side < MIN_CROP_SIDE || held_width < SSIM_WINDOW {
            return Err(Error::invalid(format!(
                "a {w}x{h} image is too small to fit: the fit trains on crops of at least \
                 {MIN_CROP_SIDE} px in three quarters of the image and holds out the last quarter"
            )));
        }
        let held_out = [train_width, 0, held_width, h];
        let side = crop_side.min(held_width);
        let probes = (0..4)
            .map(|i| {
                let y = (h - side) * i / 3;
                [train_width + (held_width - side) / 2, y, side, side]
            })
            .collect::<Vec<_>>();
        let probes = if held_width * h <= 4 * side * side {
            vec![held_out]
        } else {
            probes
        };
        Ok(Self {
            crop_side,
            train_width,
            held_out,
            probes,
        })
    }

    /// A random training crop's origin in the fitted area, on a red site of the mosaic.
    fn draw(&self, pair: &AlignedPair, rng: &mut ChaCha8Rng) -> (usize, usize) {
        let [ax, ay, _, h] = pair.area;
        // an even mosaic position in [from, last]: the crop side leaves room for one
        let pick = |from: usize, last: usize, rng: &mut ChaCha8Rng| {
            let first = from.next_multiple_of(2);
            first + 2 * rng.random_range(0..=(last - first) / 2) - from
        };
        let x = pick(ax, ax + self.train_width - self.crop_side, rng);
        let y = pick(ay, ay + h - self.crop_side, rng);
        (x, y)
    }
}

/// A batch of training crops: raw (B, S, S) and the JPEG's values (B, 3, S, S).
fn batch(
    pair: &AlignedPair,
    regions: &Regions,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Tensor, Tensor)> {
    let s = regions.crop_side;
    let (mut raw, mut target) = (
        Vec::with_capacity(n * s * s),
        Vec::with_capacity(n * 3 * s * s),
    );
    for _ in 0..n {
        let (x, y) = regions.draw(pair, rng);
        let [mx, my, ..] = in_mosaic(pair, [x, y, s, s]);
        raw.extend(pair.mosaic.window(mx, my, s, s)?);
        target.extend(cut(&pair.target, pair.area[2], [x, y, s, s]));
    }
    let raw = Tensor::from_vec(raw, (n, s, s), &Device::Cpu)?;
    let target = Tensor::from_vec(target, (n, s, s, 3), &Device::Cpu)?.permute((0, 3, 1, 2))?;
    Ok((raw, target))
}

/// Mean squared error of (B, 3, S, S) renderings against their targets, away from the margin.
fn loss(out: &Tensor, target: &Tensor) -> Result<Tensor> {
    let s = out.dim(2)?;
    let inner = |t: &Tensor| -> Result<Tensor> {
        Ok(t.narrow(2, HALO, s - 2 * HALO)?
            .narrow(3, HALO, s - 2 * HALO)?)
    };
    Ok((inner(out)? - inner(target)?)?.sqr()?.mean_all()?)
}

/// The fitted area's rectangle in the mosaic for a rectangle of the area.
fn in_mosaic(pair: &AlignedPair, [x, y, w, h]: [usize; 4]) -> [usize; 4] {
    [pair.area[0] + x, pair.area[1] + y, w, h]
}

/// PSNR of the probes (8-bit rendering against the JPEG).
fn probe_psnr(
    params: &IspParams,
    rendering: &CameraRendering,
    pair: &AlignedPair,
    probes: &[[usize; 4]],
) -> Result<f64> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for &rect in probes {
        ours.extend(quantised(&render(
            params,
            rendering,
            &pair.mosaic,
            in_mosaic(pair, rect),
        )?));
        theirs.extend(cut(&pair.target, pair.area[2], rect));
    }
    Ok(psnr(&ours, &theirs))
}

/// A fit under way, a step at a time (the page yields to its messages between steps).
pub struct CameraFit {
    name: String,
    camera: String,
    orientation: u16,
    pair: AlignedPair,
    options: FitOptions,
    regions: Regions,
    params: IspParams,
    rendering: CameraRendering,
    isp_opt: AdamW,
    rendering_opt: AdamW,
    rng: ChaCha8Rng,
    done: usize,
    loss: f64,
    initial_psnr: f64,
    curve: Vec<(usize, f32, f32)>,
    started_ms: u64,
}

impl CameraFit {
    /// A fit, named `name`, of the camera that rendered `pair`'s JPEG from `dng`, from the DNG's
    /// camera.
    pub fn new(name: &str, dng: &DngImage, pair: AlignedPair, options: FitOptions) -> Result<Self> {
        options.validate()?;
        let regions = Regions::of(&pair)?;
        let device = Device::Cpu;
        let params = IspParams::initial(&dng.camera, DType::F32, &device)?;
        // a saturated sensor's value after the black level and the white balance's green gain
        let black = dng.camera.black_level.iter().sum::<f64>() / 4.0;
        let saturation = ((1.0 - black) * dng.camera.white_balance[1].abs()).max(0.05);
        let rendering = CameraRendering::initial(options.stages, saturation, &device)?;
        let initial_psnr = probe_psnr(&params, &rendering, &pair, &[regions.held_out])?;
        let adamw = |vars, lr| {
            AdamW::new(
                vars,
                ParamsAdamW {
                    lr,
                    weight_decay: 0.0,
                    ..ParamsAdamW::default()
                },
            )
        };
        Ok(Self {
            name: name.to_string(),
            camera: dng.summary.clone(),
            orientation: dng.orientation,
            isp_opt: adamw(params.vars().to_vec(), options.learning_rate)?,
            rendering_opt: adamw(rendering.vars(), options.learning_rate * 10.0)?,
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            pair,
            options,
            regions,
            params,
            rendering,
            done: 0,
            loss: f64::NAN,
            initial_psnr,
            curve: Vec::new(),
            started_ms: crate::train::job::now_ms(),
        })
    }

    /// Whether every step has run.
    pub fn finished(&self) -> bool {
        self.done >= self.options.steps
    }

    /// One step; the held-out probe's PSNR every twentieth of the fit and at its end.
    pub fn step(&mut self) -> Result<FitProgress> {
        if self.finished() {
            return Err(Error::invalid("the fit has run all its steps"));
        }
        let (raw, target) = batch(&self.pair, &self.regions, self.options.batch, &mut self.rng)?;
        let out = self.rendering.render(&raw, &self.params)?;
        let l = loss(&out, &target)?;
        let grads = l.backward()?;
        self.isp_opt.step(&grads)?;
        self.rendering_opt.step(&grads)?;
        self.done += 1;
        self.loss = f64::from(l.to_scalar::<f32>()?);
        if !self.loss.is_finite() {
            return Err(Error::invalid(format!(
                "the fit diverged at step {} (loss {}): try a lower learning rate",
                self.done, self.loss
            )));
        }
        let steps = self.options.steps;
        let every = (steps / 20).max(1);
        let held_out_psnr = (self.done.is_multiple_of(every) || self.done == steps)
            .then(|| {
                probe_psnr(
                    &self.params,
                    &self.rendering,
                    &self.pair,
                    &self.regions.probes,
                )
            })
            .transpose()?;
        if let Some(psnr) = held_out_psnr {
            self.curve.push((self.done, self.loss as f32, psnr as f32));
        }
        Ok(FitProgress {
            step: self.done,
            steps,
            loss: self.loss,
            held_out_psnr,
        })
    }

    /// The twin: the whole area rendered, scored on the held-out region.
    pub fn finish(self) -> Result<CameraTwin> {
        let (pair, regions) = (&self.pair, &self.regions);
        let [_, _, w, h] = pair.area;
        let whole = quantised(&render(
            &self.params,
            &self.rendering,
            &pair.mosaic,
            pair.area,
        )?);
        let ours = cut(&whole, w, regions.held_out);
        let theirs = cut(&pair.target, w, regions.held_out);
        let [_, _, hw, hh] = regions.held_out;
        let (held_out_psnr, held_out_ssim) =
            (psnr(&ours, &theirs), ssim(&ours, &theirs, (hw, hh))?);
        let shown = |image: &[f32]| -> Result<(usize, usize, Vec<u8>)> {
            let (sw, sh, values) = orient_rgb(w, h, image, self.orientation, false)?;
            Ok((sw, sh, values.iter().map(|&v| to_byte(v)).collect()))
        };
        // |twin - JPEG|, four times brighter: an error of 1/64 shows a quarter of full scale
        let difference: Vec<f32> = whole
            .iter()
            .zip(&pair.target)
            .map(|(a, b)| ((a - b).abs() * 4.0).min(1.0))
            .collect();
        let summary = TwinSummary {
            name: self.name.clone(),
            camera: self.camera.clone(),
            alignment: pair.alignment.clone(),
            stages: self.rendering.stage_names(),
            steps: self.options.steps,
            batch: self.options.batch,
            crop_side: regions.crop_side,
            learning_rate: self.options.learning_rate,
            seed: self.options.seed,
            loss: "L2 (mean squared error) in display space, 8 px from each crop's edge",
            held_out_sensor_frame: regions.held_out,
            held_out_shown: shown_rect(regions.held_out, (w, h), self.orientation)?,
            held_out_psnr,
            held_out_ssim,
            initial_held_out_psnr: self.initial_psnr,
            final_loss: self.loss,
            rendering_knots: self.rendering.knots()?,
        };
        Ok(CameraTwin {
            rendered: shown(&whole)?,
            difference: shown(&difference)?,
            jpeg: shown(&pair.target)?,
            curve: self.curve,
            started_ms: self.started_ms,
            finished_ms: crate::train::job::now_ms(),
            params: self.params,
            rendering: self.rendering,
            summary,
        })
    }
}

/// Fits a twin, named `name`, of the camera that rendered `pair`'s JPEG from `dng`, reporting
/// each step to `progress`; `cancel` ends it with [`Error::Cancelled`].
pub fn fit_camera(
    name: &str,
    dng: &DngImage,
    pair: AlignedPair,
    options: FitOptions,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(&FitProgress),
) -> Result<CameraTwin> {
    let mut fit = CameraFit::new(name, dng, pair, options)?;
    while !fit.finished() {
        cancel.check()?;
        progress(&fit.step()?);
    }
    fit.finish()
}

/// A rectangle of a (w, h) image in the sensor's frame, as the image is shown with `orientation`.
fn shown_rect(rect: [usize; 4], (w, h): (usize, usize), orientation: u16) -> Result<[usize; 4]> {
    let [x, y, rw, rh] = rect;
    let mask: Vec<f32> = (0..w * h)
        .flat_map(|i| {
            let inside = (x..x + rw).contains(&(i % w)) && (y..y + rh).contains(&(i / w));
            [if inside { 1.0 } else { 0.0 }; 3]
        })
        .collect();
    let (sw, _, shown) = orient_rgb(w, h, &mask, orientation, false)?;
    let (mut lo, mut hi) = ([usize::MAX; 2], [0; 2]);
    for (i, px) in shown.chunks_exact(3).enumerate() {
        if px[0] > 0.5 {
            let (cx, cy) = (i % sw, i / sw);
            lo = [lo[0].min(cx), lo[1].min(cy)];
            hi = [hi[0].max(cx), hi[1].max(cy)];
        }
    }
    Ok([lo[0], lo[1], hi[0] + 1 - lo[0], hi[1] + 1 - lo[1]])
}
