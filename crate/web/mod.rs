//! The wasm-bindgen facade the page's worker calls. Thin: it converts JS values, calls the core and
//! turns errors into exceptions with a readable message. No logic of its own.

use wasm_bindgen::prelude::*;

use candle_core::{DType, Device};

use crate::data::synthetic;
use crate::gpu::ComputeBackend;
use crate::isp::engine::{IspEngine, IspRun};
use crate::isp::param::{shape_of, IspParams, NAMES};
use crate::isp::static_pipeline::{self, RgbImage, View};
use crate::raw::{decode_tile, CameraParams, RawTile};

/// Installed once when the module loads: a Rust panic then reaches the console with its message
/// (and the worker reports it to the page) instead of an opaque "unreachable".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// An RGBA8 image ready for `ImageData`.
#[wasm_bindgen]
pub struct RgbaImage {
    width: usize,
    height: usize,
    rgba: Vec<u8>,
}

impl From<&RgbImage> for RgbaImage {
    fn from(image: &RgbImage) -> Self {
        Self {
            width: image.width,
            height: image.height,
            rgba: image.to_rgba8(),
        }
    }
}

#[wasm_bindgen]
impl RgbaImage {
    #[wasm_bindgen(getter)]
    pub fn width(&self) -> usize {
        self.width
    }

    #[wasm_bindgen(getter)]
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels, moved out to JS (the image is consumed).
    #[wasm_bindgen(js_name = takeRgba)]
    pub fn take_rgba(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rgba)
    }
}

/// One pass of the parametrized ISP: output, stages and (with an upstream gradient) gradients,
/// as flat f32 arrays in (B, C, H, W) order.
#[wasm_bindgen]
pub struct IspResult {
    run: IspRun,
}

#[wasm_bindgen]
impl IspResult {
    pub fn output(&self) -> Vec<f32> {
        self.run.output.clone()
    }

    /// Stage `i` of demosaic, colour_correction, sharpening, denoising, gamma.
    pub fn stage(&self, i: usize) -> Vec<f32> {
        self.run.stages.get(i).cloned().unwrap_or_default()
    }

    #[wasm_bindgen(js_name = hasGradients)]
    pub fn has_gradients(&self) -> bool {
        self.run.gradients.is_some()
    }

    /// dL/d stage `i` (empty without gradients).
    #[wasm_bindgen(js_name = stageGradient)]
    pub fn stage_gradient(&self, i: usize) -> Vec<f32> {
        self.run
            .gradients
            .as_ref()
            .and_then(|g| g.stages.get(i).cloned())
            .unwrap_or_default()
    }

    #[wasm_bindgen(js_name = rawGradient)]
    pub fn raw_gradient(&self) -> Vec<f32> {
        self.run
            .gradients
            .as_ref()
            .map(|g| g.raw.clone())
            .unwrap_or_default()
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
}

/// The lab's session in the worker: the compute engine, the camera, the parametrized ISP's
/// parameters and the current raw tile.
#[wasm_bindgen]
pub struct Lab {
    engine: IspEngine,
    camera: CameraParams,
    params: IspParams,
    tile: Option<RawTile>,
}

#[wasm_bindgen]
impl Lab {
    /// Starts on WebGPU when the browser offers an adapter (and `prefer_gpu`), else on the CPU.
    pub async fn create(prefer_gpu: bool) -> Result<Lab, JsError> {
        let backend = ComputeBackend::select(prefer_gpu).await.map_err(js_error)?;
        let camera = CameraParams::drone();
        Ok(Lab {
            engine: IspEngine::new(backend).await.map_err(js_error)?,
            params: IspParams::initial(&camera, DType::F32, &Device::Cpu).map_err(js_error)?,
            camera,
            tile: None,
        })
    }

    /// "WebGPU (adapter description)" or "CPU (wasm SIMD)".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.engine.backend().label()
    }

    #[wasm_bindgen(getter, js_name = isGpu)]
    pub fn is_gpu(&self) -> bool {
        self.engine.backend().is_gpu()
    }

    /// A preset name (microscopy, drone) or camera JSON; resets the ISP parameters to it.
    #[wasm_bindgen(js_name = setCamera)]
    pub fn set_camera(&mut self, preset_or_json: &str) -> Result<(), JsError> {
        self.camera = match CameraParams::preset(preset_or_json) {
            Ok(preset) => preset,
            Err(_) => CameraParams::from_json(preset_or_json).map_err(js_error)?,
        };
        self.reset_params()
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
        self.params.packed().map_err(js_error)
    }

    /// Replaces all parameter values (packed); refuses wrong lengths and NaN.
    #[wasm_bindgen(js_name = setParams)]
    pub fn set_params(&mut self, packed: &[f32]) -> Result<(), JsError> {
        self.params = IspParams::from_packed(packed, DType::F32, &Device::Cpu).map_err(js_error)?;
        Ok(())
    }

    /// The camera preset's initial parameters.
    #[wasm_bindgen(js_name = resetParams)]
    pub fn reset_params(&mut self) -> Result<(), JsError> {
        self.params =
            IspParams::initial(&self.camera, DType::F32, &Device::Cpu).map_err(js_error)?;
        Ok(())
    }

    /// Parameters from a safetensors file (as PyTorch's safetensors writes them).
    #[wasm_bindgen(js_name = loadParams)]
    pub fn load_params(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        self.params =
            IspParams::from_safetensors(bytes, DType::F32, &Device::Cpu).map_err(js_error)?;
        Ok(())
    }

    /// The parameters as a safetensors file.
    #[wasm_bindgen(js_name = saveParams)]
    pub fn save_params(&self) -> Result<Vec<u8>, JsError> {
        self.params.to_safetensors().map_err(js_error)
    }

    /// The parametrized ISP on the current tile, on the active backend; with `upstream`
    /// (1, 3, H, W), the gradients of sum(output * upstream) too.
    #[wasm_bindgen(js_name = runIsp)]
    pub async fn run_isp(
        &self,
        upstream: Option<Vec<f32>>,
        batch_norm: bool,
    ) -> Result<IspResult, JsError> {
        let tile = self.tile()?;
        self.run_isp_on(
            tile.data(),
            1,
            tile.height(),
            tile.width(),
            upstream,
            batch_norm,
        )
        .await
    }

    /// The parametrized ISP on a batch of raw tiles (batch, height, width), flattened.
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
        let run = self
            .engine
            .run(
                raw,
                (batch, height, width),
                &self.params,
                upstream.as_deref(),
                batch_norm,
            )
            .await
            .map_err(js_error)?;
        Ok(IspResult { run })
    }

    /// Decodes a raw tile file (PNG, TIFF, .npy) and makes it the current tile.
    #[wasm_bindgen(js_name = loadTile)]
    pub fn load_tile(&mut self, bytes: &[u8], name: &str) -> Result<(), JsError> {
        self.tile = Some(decode_tile(bytes, name).map_err(js_error)?);
        Ok(())
    }

    /// The colour chart, as the current camera records it, becomes the current tile.
    #[wasm_bindgen(js_name = loadChart)]
    pub fn load_chart(&mut self, size: usize) -> Result<(), JsError> {
        self.tile = Some(synthetic::colour_chart(size, &self.camera).map_err(js_error)?);
        Ok(())
    }

    fn tile(&self) -> Result<&RawTile, JsError> {
        self.tile
            .as_ref()
            .ok_or_else(|| JsError::new("no raw tile loaded yet: load a file or the chart first"))
    }

    /// The current tile's mosaic, each sample shown in its filter's colour.
    pub fn mosaic(&self) -> Result<RgbaImage, JsError> {
        let tile = self.tile()?;
        Ok(RgbaImage {
            width: tile.width(),
            height: tile.height(),
            rgba: tile.mosaic_rgba(),
        })
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
        let image = static_pipeline::render(self.tile()?, &self.camera, view).map_err(js_error)?;
        Ok((&image).into())
    }

    /// The paper's 12 views of the current tile.
    #[wasm_bindgen(js_name = renderViews)]
    pub fn render_views(&self) -> Result<Vec<RgbaImage>, JsError> {
        let images = static_pipeline::render_all(self.tile()?, &self.camera, &View::paper_views())
            .map_err(js_error)?;
        Ok(images.iter().map(RgbaImage::from).collect())
    }
}
