//! The wasm-bindgen facade the page's worker calls. Thin: it converts JS values, calls the core and
//! turns errors into exceptions with a readable message. No logic of its own.

mod cache;
mod images;
mod runs;
mod tiles;
mod train;

use std::cell::RefCell;

use candle_core::{DType, Device};
use wasm_bindgen::prelude::*;

pub use images::RgbaImage;
pub use runs::RunView;
pub use tiles::FetchControl;
pub use train::{TrainControl, Trainer};
/// `initThreadPool(n)` in the threaded module: rayon's pool as n Web Workers sharing the memory.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

use crate::data::synthetic;
use crate::gpu::ComputeBackend;
use crate::isp::engine::IspEngine;
use crate::isp::param::{shape_of, IspParams, IspRun, Stage, NAMES};
use crate::isp::static_pipeline::{self, Plane, View};
use crate::raw::{BayerSite, CameraParams, RawTile};
use crate::train::collection::{StoredTile, TileStore};
use crate::viz;

/// Installed once when the module loads: a Rust panic then reaches the console with its message
/// (and the worker reports it to the page) instead of an opaque "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

pub(crate) fn js_error(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// A Rust value as a plain JS value (objects as objects, not Maps).
pub(crate) fn to_js<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsValue, JsError> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// One pass of the parametrized ISP: output, stages and (with an upstream gradient) gradients.
#[wasm_bindgen]
pub struct IspResult {
    run: IspRun,
    height: usize,
    width: usize,
}

/// A (1, 3, H, W) tensor's planes as f64 planes (for display).
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

#[wasm_bindgen]
impl IspResult {
    /// The stage names, in order.
    #[wasm_bindgen(js_name = stageNames)]
    pub fn stage_names() -> Vec<String> {
        Stage::ALL.iter().map(|s| s.name().to_string()).collect()
    }

    /// Stage `i` of the first tile, scaled for display.
    #[wasm_bindgen(js_name = stageImage)]
    pub fn stage_image(&self, i: usize) -> Result<RgbaImage, JsError> {
        let v = self
            .run
            .stages
            .get(i)
            .ok_or_else(|| JsError::new("no such stage"))?;
        let p = planes(v, self.height, self.width);
        Ok(viz::planes_rgba(&[&p[0], &p[1], &p[2]]).into())
    }

    /// The processed image (the gamma stage, before batch norm).
    #[wasm_bindgen(js_name = outputImage)]
    pub fn output_image(&self) -> Result<RgbaImage, JsError> {
        let v = self
            .run
            .stages
            .last()
            .ok_or_else(|| JsError::new("no output"))?;
        let n = self.height * self.width;
        let rgba = (0..n)
            .flat_map(|p| {
                let q = |c: usize| (v[c * n + p].clamp(0.0, 1.0) * 255.0).round() as u8;
                [q(0), q(1), q(2), 255]
            })
            .collect();
        Ok(RgbaImage::new(self.width, self.height, rgba))
    }

    #[wasm_bindgen(js_name = hasGradients)]
    pub fn has_gradients(&self) -> bool {
        self.run.gradients.is_some()
    }

    /// The largest |dL/d stage `i`| worth showing (99th percentile of the channel mean).
    #[wasm_bindgen(js_name = gradientScale)]
    pub fn gradient_scale(&self, i: usize) -> f32 {
        viz::robust_max(&self.gradient_map(i))
    }

    /// |dL/d stage `i`| as a heatmap scaled by `max`.
    #[wasm_bindgen(js_name = gradientImage)]
    pub fn gradient_image(&self, i: usize, max: f32) -> RgbaImage {
        viz::heatmap(&self.gradient_map(i), self.width, self.height, max).into()
    }

    /// dL/d parameters, packed in the order of `Lab.paramNames()`.
    #[wasm_bindgen(js_name = paramGradients)]
    pub fn param_gradients(&self) -> Vec<f32> {
        self.run
            .gradients
            .as_ref()
            .map(|g| g.params.clone())
            .unwrap_or_default()
    }

    /// The raw output (B, 3, H, W), flat.
    pub fn output(&self) -> Vec<f32> {
        self.run.output.clone()
    }
}

impl IspResult {
    /// Mean over channels of |dL/d stage| for the first tile.
    fn gradient_map(&self, i: usize) -> Vec<f32> {
        let n = self.height * self.width;
        let Some(g) = self.run.gradients.as_ref().and_then(|g| g.stages.get(i)) else {
            return vec![0.0; n];
        };
        (0..n)
            .map(|p| (0..3).map(|c| g[c * n + p].abs()).sum::<f32>() / 3.0)
            .collect()
    }
}

/// Every stage of the static pipeline for one tile: images and histograms.
#[wasm_bindgen]
pub struct StageSet {
    names: Vec<&'static str>,
    planes: Vec<Vec<Plane>>,
}

#[wasm_bindgen]
impl StageSet {
    pub fn names(&self) -> Vec<String> {
        self.names.iter().map(|s| s.to_string()).collect()
    }

    /// Stage `i` for display: the mosaics tinted by their filter colour, the colour stages
    /// scaled so the 99th percentile is white (gamma applied for the eye), the last as it is.
    pub fn image(&self, i: usize) -> Result<RgbaImage, JsError> {
        let p = self
            .planes
            .get(i)
            .ok_or_else(|| JsError::new("no such stage"))?;
        Ok(if p.len() == 1 {
            let mosaic = &p[0];
            let mut colour: [Plane; 3] =
                std::array::from_fn(|_| Plane::zeros(mosaic.width, mosaic.height));
            for (k, &v) in mosaic.data.iter().enumerate() {
                colour[BayerSite::at(k / mosaic.width, k % mosaic.width).channel()].data[k] = v;
            }
            viz::planes_rgba(&[&colour[0], &colour[1], &colour[2]]).into()
        } else {
            viz::planes_rgba(&[&p[0], &p[1], &p[2]]).into()
        })
    }

    /// {lo, hi, counts: [[..R], [..G], [..B]]} over 64 bins (one channel for the mosaics).
    pub fn histogram(&self, i: usize) -> Result<JsValue, JsError> {
        let p = self
            .planes
            .get(i)
            .ok_or_else(|| JsError::new("no such stage"))?;
        let refs: Vec<&Plane> = p.iter().collect();
        let (lo, hi, counts) = viz::histogram(&refs, 64);
        let value = serde_json::json!({ "lo": lo, "hi": hi, "counts": counts });
        to_js(&value)
    }
}

/// The lab's session in the worker: the compute engine, the camera, the parametrized ISP's
/// parameters and the loaded tiles.
#[wasm_bindgen]
pub struct Lab {
    engine: IspEngine,
    camera: RefCell<CameraParams>,
    params: RefCell<IspParams>,
    tiles: RefCell<TileStore>,
}

#[wasm_bindgen]
impl Lab {
    /// Starts on WebGPU when the browser offers an adapter (and `prefer_gpu`), else on the CPU.
    pub async fn create(prefer_gpu: bool) -> Result<Lab, JsError> {
        let backend = ComputeBackend::select(prefer_gpu).await.map_err(js_error)?;
        let camera = CameraParams::drone();
        Ok(Lab {
            engine: IspEngine::new(backend).await.map_err(js_error)?,
            params: RefCell::new(
                IspParams::initial(&camera, DType::F32, &Device::Cpu).map_err(js_error)?,
            ),
            camera: RefCell::new(camera),
            tiles: RefCell::new(TileStore::new()),
        })
    }

    /// "WebGPU (adapter description)" or "CPU (wasm SIMD)".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.backend().label()
    }

    /// Threads the CPU computes on: the Web Worker pool of the threaded module, else 1.
    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    /// The train-step benchmark of `lens2logit bench train-step`, here in the worker, on the
    /// CPU or (`gpu`) on the lab's WebGPU adapter.
    #[wasm_bindgen(js_name = benchTrainStep)]
    pub async fn bench_train_step(
        &self,
        model: &str,
        batch: usize,
        size: usize,
        steps: usize,
        gpu: bool,
    ) -> Result<JsValue, JsError> {
        let model = crate::model::ModelKind::parse(model).map_err(js_error)?;
        let device = match (gpu, self.gpu()) {
            (false, _) => None,
            (true, Some(gpu)) => Some(gpu),
            (true, None) => return Err(JsError::new("this browser offers no WebGPU adapter")),
        };
        let timing = crate::train::bench::train_step(model, batch, size, steps, device)
            .await
            .map_err(js_error)?;
        to_js(&timing)
    }

    /// The lab's GPU, where it runs on one.
    pub(crate) fn gpu(&self) -> Option<std::rc::Rc<crate::gpu::Gpu>> {
        match self.engine.backend() {
            ComputeBackend::Gpu(gpu) => Some(gpu.clone()),
            ComputeBackend::Cpu => None,
        }
    }

    #[wasm_bindgen(getter, js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        self.engine.backend().is_gpu()
    }

    /// A preset name (microscopy, drone) or camera JSON; resets the ISP parameters to it.
    #[wasm_bindgen(js_name = setCamera)]
    pub fn set_camera(&self, preset_or_json: &str) -> Result<(), JsError> {
        *self.camera.borrow_mut() = match CameraParams::preset(preset_or_json) {
            Ok(preset) => preset,
            Err(_) => CameraParams::from_json(preset_or_json).map_err(js_error)?,
        };
        self.reset_params()
    }

    /// The colour chart, as the current camera records it, becomes the only tile.
    #[wasm_bindgen(js_name = loadChart)]
    pub fn load_chart(&self, size: f64) -> Result<(), JsError> {
        let size = crate::train::options::whole(&crate::limits::SYNTHETIC_SIDE, size)
            .map_err(js_error)? as usize;
        let raw = synthetic::colour_chart(size, &self.camera.borrow()).map_err(js_error)?;
        let mut store = self.tiles.borrow_mut();
        *store = TileStore::new();
        store.source = "chart".into();
        store
            .tiles
            .push(StoredTile::unlabelled("colour chart".into(), raw));
        Ok(())
    }

    fn tile(&self) -> Result<RawTile, JsError> {
        let store = self.tiles.borrow();
        store
            .tiles
            .get(store.current)
            .map(|t| t.item.raw.clone())
            .ok_or_else(|| JsError::new("no raw tile loaded yet: load data or the chart first"))
    }

    /// Tile `i`'s mosaic, each sample shown in its filter's colour.
    pub fn mosaic(&self, i: usize) -> Result<RgbaImage, JsError> {
        let store = self.tiles.borrow();
        let t = store.tile(i).map_err(js_error)?;
        Ok(RgbaImage::new(
            t.item.raw.width(),
            t.item.raw.height(),
            t.item.raw.mosaic_rgba(),
        ))
    }

    /// Tile `i` through a static view (the tile browser's thumbnails).
    pub fn thumbnail(&self, i: usize, view: &str) -> Result<RgbaImage, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let raw = {
            let store = self.tiles.borrow();
            store.tile(i).map_err(js_error)?.item.raw.clone()
        };
        let image = static_pipeline::render(&raw, &self.camera.borrow(), view).map_err(js_error)?;
        Ok((&image).into())
    }

    /// The names of the paper's 12 views, in the order `renderViews` returns them.
    #[wasm_bindgen(js_name = viewNames)]
    pub fn view_names() -> Vec<String> {
        View::paper_views().iter().map(View::to_string).collect()
    }

    /// One view (`DEBAYER-SHARPENING-DENOISING`) of the current tile.
    #[wasm_bindgen(js_name = renderView)]
    pub fn render_view(&self, view: &str) -> Result<RgbaImage, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let image = static_pipeline::render(&self.tile()?, &self.camera.borrow(), view)
            .map_err(js_error)?;
        Ok((&image).into())
    }

    /// The paper's 12 views of the current tile.
    #[wasm_bindgen(js_name = renderViews)]
    pub fn render_views(&self) -> Result<Vec<RgbaImage>, JsError> {
        let images =
            static_pipeline::render_all(&self.tile()?, &self.camera.borrow(), &View::paper_views())
                .map_err(js_error)?;
        Ok(images.iter().map(RgbaImage::from).collect())
    }

    /// The static-views benchmark: median ms of `renderViews` (12 views and their RGBA) over
    /// `repeats` runs on the current tile, after one unmeasured run.
    #[wasm_bindgen(js_name = benchViews)]
    pub fn bench_views(&self, repeats: usize) -> Result<f64, JsError> {
        self.render_views()?;
        let times = (0..repeats.max(1))
            .map(|_| {
                let start = web_time::Instant::now();
                self.render_views()
                    .map(|_| start.elapsed().as_secs_f64() * 1000.0)
            })
            .collect::<Result<Vec<f64>, JsError>>()?;
        Ok(crate::train::bench::median(times))
    }

    /// The static pipeline stage by stage for the current tile: raw mosaic, black level,
    /// demosaic, white balance, colour correction, sharpening, denoising, gamma.
    pub fn stages(&self, view: &str) -> Result<StageSet, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let raw = self.tile()?;
        let s = static_pipeline::stages(&raw, &self.camera.borrow(), view).map_err(js_error)?;
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
        Ok(StageSet {
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

    /// The parametrized ISP's parameter names (the paper's PyTorch names), in packed order.
    #[wasm_bindgen(js_name = paramNames)]
    pub fn param_names() -> Vec<String> {
        NAMES.iter().map(|n| n.to_string()).collect()
    }

    /// The shape of a parameter.
    #[wasm_bindgen(js_name = paramShape)]
    pub fn param_shape(name: &str) -> Vec<usize> {
        shape_of(name).to_vec()
    }

    /// All parameter values, packed in `paramNames` order.
    pub fn params(&self) -> Result<Vec<f32>, JsError> {
        self.params.borrow().packed().map_err(js_error)
    }

    /// Replaces all parameter values (packed); refuses wrong lengths and NaN.
    #[wasm_bindgen(js_name = setParams)]
    pub fn set_params(&self, packed: &[f32]) -> Result<(), JsError> {
        *self.params.borrow_mut() =
            IspParams::from_packed(packed, DType::F32, &Device::Cpu).map_err(js_error)?;
        Ok(())
    }

    /// The camera preset's initial parameters.
    #[wasm_bindgen(js_name = resetParams)]
    pub fn reset_params(&self) -> Result<(), JsError> {
        *self.params.borrow_mut() =
            IspParams::initial(&self.camera.borrow(), DType::F32, &Device::Cpu)
                .map_err(js_error)?;
        Ok(())
    }

    /// Parameters from a safetensors file (as PyTorch's safetensors writes them).
    #[wasm_bindgen(js_name = loadParams)]
    pub fn load_params(&self, bytes: &[u8]) -> Result<(), JsError> {
        *self.params.borrow_mut() =
            IspParams::from_safetensors(bytes, DType::F32, &Device::Cpu).map_err(js_error)?;
        Ok(())
    }

    /// The parameters as a safetensors file.
    #[wasm_bindgen(js_name = saveParams)]
    pub fn save_params(&self) -> Result<Vec<u8>, JsError> {
        self.params.borrow().to_safetensors().map_err(js_error)
    }

    /// The parametrized ISP on the current tile, on the active backend; with `gradients`, the
    /// gradients of the mean squared distance to the current static view `view` (how the
    /// processing would have to change to look like it).
    #[wasm_bindgen(js_name = runIsp)]
    pub async fn run_isp(&self, gradients: bool, view: String) -> Result<IspResult, JsError> {
        let tile = self.tile()?;
        let (h, w) = (tile.height(), tile.width());
        let params =
            IspParams::from_packed(&self.params()?, DType::F32, &Device::Cpu).map_err(js_error)?;
        let upstream = if gradients {
            // without batch norm the output is the gamma stage: d/dout mean((out - target)^2)
            let target = self.render_view_data(&tile, &view)?;
            let out = self
                .engine
                .run(tile.data(), (1, h, w), &params, None, false)
                .await
                .map_err(js_error)?
                .output;
            Some(
                out.iter()
                    .zip(&target)
                    .map(|(o, t)| 2.0 * (o - t) / out.len() as f32)
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        let run = self
            .engine
            .run(tile.data(), (1, h, w), &params, upstream.as_deref(), false)
            .await
            .map_err(js_error)?;
        Ok(IspResult {
            run,
            height: h,
            width: w,
        })
    }

    /// The parametrized ISP on a batch of raw tiles (batch, height, width), flattened, with an
    /// optional upstream gradient (benchmarks and batch work).
    #[wasm_bindgen(js_name = runIspOn)]
    pub async fn run_isp_on(
        &self,
        raw: &[f32],
        batch: usize,
        height: usize,
        width: usize,
        upstream: Option<Vec<f32>>,
        batch_norm: bool,
    ) -> Result<IspResult, JsError> {
        let params =
            IspParams::from_packed(&self.params()?, DType::F32, &Device::Cpu).map_err(js_error)?;
        let run = self
            .engine
            .run(
                raw,
                (batch, height, width),
                &params,
                upstream.as_deref(),
                batch_norm,
            )
            .await
            .map_err(js_error)?;
        Ok(IspResult { run, height, width })
    }

    /// The heatmap colour map as a legend strip.
    #[wasm_bindgen(js_name = colourLegend)]
    pub fn colour_legend(width: usize, height: usize) -> RgbaImage {
        viz::legend(width, height).into()
    }
}

impl Lab {
    /// A static view of `tile` as (3, H, W) values.
    fn render_view_data(&self, tile: &RawTile, view: &str) -> Result<Vec<f32>, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let image = static_pipeline::render(tile, &self.camera.borrow(), view).map_err(js_error)?;
        Ok(hwc_to_chw(&image.data, image.height, image.width))
    }
}

/// Interleaved (H, W, 3) to planar (3, H, W).
fn hwc_to_chw(data: &[f32], height: usize, width: usize) -> Vec<f32> {
    let n = height * width;
    (0..3)
        .flat_map(|c| (0..n).map(move |p| data[p * 3 + c]))
        .collect()
}
