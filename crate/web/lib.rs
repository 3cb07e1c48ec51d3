//! The wasm-bindgen facade the page's worker calls. Thin: it converts JS values, calls the core and
//! turns errors into exceptions with a readable message. No logic of its own. wasm only: natively
//! this package is empty.
#![cfg(target_arch = "wasm32")]

mod cache;
mod camera;
mod camera_fit;
mod dng;
mod images;
mod runs;
mod tiles;
mod train;
mod weights;

use std::cell::RefCell;

use candle_core::{DType, Device};
use wasm_bindgen::prelude::*;

use camera::CameraSource;
pub use camera_fit::FittedTwin;
pub use images::RgbaImage;
pub use runs::RunView;
pub use tiles::FetchControl;
pub use train::{TrainControl, Trainer};
/// `initThreadPool(n)` in the threaded module: rayon's pool as n Web Workers sharing the memory.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

use lens2logit::data::synthetic;
use lens2logit::data::tile_store::{StoredTile, TileStore};
use lens2logit::isp::param::IspParams;
use lens2logit::isp::static_pipeline::{self, View};
use lens2logit::raw::{CameraParams, RawTile};
use lens2logit::spec::isp::{shape_of, IspRun, Stage, NAMES};
use lens2logit::train::isp_engine::IspEngine;
use lens2logit::train::DeviceChoice;
use lens2logit::viz;
use lens2logit::viz::inspect::StaticStages;

/// Installed once when the module loads: a Rust panic then reaches the console with its message
/// (and the worker reports it to the page) instead of an opaque "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

pub(crate) fn js_error(e: lens2logit::Error) -> JsError {
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
        let image = self.run.stage_image(i, self.height, self.width);
        Ok(image.map_err(js_error)?.into())
    }

    /// The processed image (the gamma stage, before batch norm).
    #[wasm_bindgen(js_name = outputImage)]
    pub fn output_image(&self) -> Result<RgbaImage, JsError> {
        let image = self.run.output_image(self.height, self.width);
        Ok(image.map_err(js_error)?.into())
    }

    #[wasm_bindgen(js_name = hasGradients)]
    pub fn has_gradients(&self) -> bool {
        self.run.gradients.is_some()
    }

    /// The largest |dL/d stage `i`| worth showing (99th percentile of the channel mean).
    #[wasm_bindgen(js_name = gradientScale)]
    pub fn gradient_scale(&self, i: usize) -> f32 {
        viz::robust_max(&self.run.gradient_map(i, self.height, self.width))
    }

    /// |dL/d stage `i`| as a heatmap scaled by `max`.
    #[wasm_bindgen(js_name = gradientImage)]
    pub fn gradient_image(&self, i: usize, max: f32) -> RgbaImage {
        let map = self.run.gradient_map(i, self.height, self.width);
        viz::heatmap(&map, self.width, self.height, max).into()
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

/// Every stage of the static pipeline for one tile: images and histograms.
#[wasm_bindgen]
pub struct StageSet(StaticStages);

#[wasm_bindgen]
impl StageSet {
    pub fn names(&self) -> Vec<String> {
        self.0.names.iter().map(|s| s.to_string()).collect()
    }

    /// Stage `i` for display (see [`StaticStages::image`]).
    pub fn image(&self, i: usize) -> Result<RgbaImage, JsError> {
        Ok(self.0.image(i).map_err(js_error)?.into())
    }

    /// {lo, hi, counts: [[..R], [..G], [..B]]} over 64 bins (one channel for the mosaics).
    pub fn histogram(&self, i: usize) -> Result<JsValue, JsError> {
        let (lo, hi, counts) = self.0.histogram(i, 64).map_err(js_error)?;
        to_js(&serde_json::json!({ "lo": lo, "hi": hi, "counts": counts }))
    }
}

/// The lab's session in the worker: the compute engine, the camera (and where it came from), the
/// parametrized ISP's parameters and the loaded tiles.
#[wasm_bindgen]
pub struct Lab {
    engine: IspEngine,
    camera: RefCell<CameraParams>,
    camera_source: RefCell<CameraSource>,
    params: RefCell<IspParams>,
    tiles: RefCell<TileStore>,
}

#[wasm_bindgen]
impl Lab {
    /// Starts on WebGPU when the browser offers an adapter (and `prefer_gpu`), else on the CPU.
    pub async fn create(prefer_gpu: bool) -> Result<Lab, JsError> {
        let choice = match prefer_gpu {
            true => DeviceChoice::Auto,
            false => DeviceChoice::Cpu,
        };
        let gpu = choice.adapter().await.map_err(js_error)?;
        let camera = CameraParams::drone();
        Ok(Lab {
            engine: IspEngine::new(gpu).await.map_err(js_error)?,
            params: RefCell::new(
                IspParams::initial(&camera, DType::F32, &Device::Cpu).map_err(js_error)?,
            ),
            camera: RefCell::new(camera),
            camera_source: RefCell::new(CameraSource::Preset("drone".into())),
            tiles: RefCell::new(TileStore::new()),
        })
    }

    /// "WebGPU (adapter description)" or "CPU (wasm SIMD)".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.label()
    }

    /// Threads the CPU computes on: the Web Worker pool of the threaded module, else 1.
    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    /// The train-step benchmark of `lens2logit bench train-step`, here in the worker, on the
    /// CPU or (`gpu`) on the lab's WebGPU adapter; with `frozen_backbone`, fine-tuning's steps
    /// that train the head alone.
    #[cfg(feature = "bench")]
    #[wasm_bindgen(js_name = benchTrainStep)]
    pub async fn bench_train_step(
        &self,
        model: &str,
        batch: usize,
        size: usize,
        steps: usize,
        frozen_backbone: bool,
        gpu: bool,
    ) -> Result<JsValue, JsError> {
        let model = lens2logit::spec::models::ModelKind::parse(model).map_err(js_error)?;
        let device = match (gpu, self.gpu()) {
            (false, _) => None,
            (true, Some(gpu)) => Some(gpu),
            (true, None) => return Err(JsError::new("this browser offers no WebGPU adapter")),
        };
        let timing = lens2logit::train::bench::train_step(
            model,
            (batch, size, steps),
            frozen_backbone,
            device,
        )
        .await
        .map_err(js_error)?;
        to_js(&timing)
    }

    /// The convolutions' matrix products by the page's SIMD128 kernel and by the `gemm` crate
    /// (`lens2logit::train::bench::matrix_products`), on this worker's threads.
    #[cfg(feature = "bench")]
    #[wasm_bindgen(js_name = benchMatrixProducts)]
    pub fn bench_matrix_products(repeats: usize) -> Result<JsValue, JsError> {
        to_js(&lens2logit::train::bench::matrix_products(repeats).map_err(js_error)?)
    }

    /// The lab's GPU, where it runs on one.
    pub(crate) fn gpu(&self) -> Option<std::rc::Rc<lens2logit::gpu::Gpu>> {
        self.engine.gpu().cloned()
    }

    #[wasm_bindgen(getter, js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        self.engine.gpu().is_some()
    }

    /// A preset name (microscopy, drone) or camera JSON (an upload); resets the ISP parameters
    /// to it.
    #[wasm_bindgen(js_name = setCamera)]
    pub fn set_camera(&self, preset_or_json: &str) -> Result<(), JsError> {
        match CameraParams::preset(preset_or_json) {
            Ok(_) => self.set_camera_preset(preset_or_json),
            Err(_) => self.set_camera_json(preset_or_json, "upload"),
        }
    }

    /// The colour chart, as the current camera records it, becomes the only tile.
    #[wasm_bindgen(js_name = loadChart)]
    pub fn load_chart(&self, size: f64) -> Result<(), JsError> {
        let size =
            lens2logit::train::options::whole(&lens2logit::spec::limits::SYNTHETIC_SIDE, size)
                .map_err(js_error)? as usize;
        let raw = synthetic::colour_chart(size, &self.camera.borrow()).map_err(js_error)?;
        let mut store = self.tiles.borrow_mut();
        *store = TileStore::new();
        store.label = "colour chart".into();
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

    /// Every setting's default and range (`spec::settings`): the page builds its controls
    /// from them.
    pub fn settings() -> Result<JsValue, JsError> {
        to_js(&lens2logit::spec::settings::describe())
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
    #[cfg(feature = "bench")]
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
        Ok(lens2logit::train::bench::median(times))
    }

    /// The static pipeline stage by stage for the current tile: raw mosaic, black level,
    /// demosaic, white balance, colour correction, sharpening, denoising, gamma.
    pub fn stages(&self, view: &str) -> Result<StageSet, JsError> {
        let view: View = view.parse().map_err(js_error)?;
        let stages = StaticStages::of(&self.tile()?, &self.camera.borrow(), view);
        Ok(StageSet(stages.map_err(js_error)?))
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
        self.params.borrow().to_safetensors(None).map_err(js_error)
    }

    /// The parametrized ISP on the current tile, on the active backend; with `gradients`, the
    /// gradients of the mean squared distance to the current static view `view` (how the
    /// processing would have to change to look like it).
    #[wasm_bindgen(js_name = runIsp)]
    pub async fn run_isp(&self, gradients: bool, view: String) -> Result<IspResult, JsError> {
        let tile = self.tile()?;
        let toward = match gradients {
            true => Some(view.parse::<View>().map_err(js_error)?),
            false => None,
        };
        // copies: the borrows must not live across the await
        let params =
            IspParams::from_packed(&self.params()?, DType::F32, &Device::Cpu).map_err(js_error)?;
        let camera = self.camera.borrow().clone();
        let run =
            lens2logit::train::isp_engine::param_isp(&self.engine, &tile, &camera, &params, toward)
                .await
                .map_err(js_error)?;
        Ok(IspResult {
            run,
            height: tile.height(),
            width: tile.width(),
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
