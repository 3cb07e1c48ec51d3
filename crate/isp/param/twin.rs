//! A fitted camera twin (`fit-camera`'s twin.safetensors) as a processing: the paper's ISP with
//! the twin's parameters and camera rendering, a drift view beside the paper's 12 static ones.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::{CameraRendering, IspParams};
use crate::{Error, Result};

/// A camera twin, shared by every session that tests on it.
#[derive(Clone)]
pub struct TwinView {
    name: String,
    params: Arc<IspParams>,
    rendering: Arc<CameraRendering>,
}

impl std::fmt::Debug for TwinView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TwinView({})", self.name)
    }
}

/// A twin as safetensors: the ISP's parameters under the paper's names (f32) and the rendering's
/// stages under theirs.
pub fn twin_safetensors(params: &IspParams, rendering: &CameraRendering) -> Result<Vec<u8>> {
    let mut tensors: Vec<(&str, Tensor)> = params
        .named()
        .map(|(n, v)| Ok((n, v.as_tensor().to_dtype(DType::F32)?)))
        .collect::<Result<_>>()?;
    tensors.extend(rendering.named());
    safetensors::serialize(tensors, None)
        .map_err(|e| Error::invalid(format!("writing the twin's safetensors: {e}")))
}

impl TwinView {
    /// The twin in a safetensors file's bytes; `name` (the twin's folder, say) labels its column
    /// as `twin:NAME` and the errors.
    pub fn from_safetensors(name: &str, bytes: &[u8]) -> Result<Self> {
        let failed = |e: Error| Error::invalid(format!("camera twin '{name}': {e}"));
        let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|e| Error::decode(format!("camera twin '{name}' (safetensors)"), e))?;
        let params = IspParams::from_tensors(&tensors, DType::F32, &Device::Cpu).map_err(failed)?;
        let rendering = CameraRendering::from_tensors(&tensors).map_err(failed)?;
        Ok(Self {
            name: format!("twin:{name}"),
            params: Arc::new(params),
            rendering: Arc::new(rendering),
        })
    }

    /// The drift table's column: `twin:NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Raw tiles (B, H, W) through the twin: (B, 3, H, W) in [0, 1].
    pub fn render(&self, raw: &Tensor) -> Result<Tensor> {
        self.rendering
            .render(&raw.to_dtype(DType::F32)?, &self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isp::param::RenderingStages;
    use crate::raw::CameraParams;

    #[test]
    fn a_twin_written_comes_back_and_renders_the_same() {
        let params = IspParams::initial(&CameraParams::drone(), DType::F32, &Device::Cpu).unwrap();
        let stages = RenderingStages {
            highlight_clip: true,
            tone_curve: true,
            chroma_gain: false,
        };
        let rendering = CameraRendering::initial(stages, 0.9, &Device::Cpu).unwrap();
        let bytes = twin_safetensors(&params, &rendering).unwrap();
        let twin = TwinView::from_safetensors("mine", &bytes).unwrap();
        assert_eq!(twin.name(), "twin:mine");
        let raw = Tensor::rand(0f32, 1.0, (2, 16, 16), &Device::Cpu).unwrap();
        let (a, b) = (
            twin.render(&raw).unwrap(),
            rendering.render(&raw, &params).unwrap(),
        );
        let diff = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
        let e = TwinView::from_safetensors("broken", b"nothing")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broken"), "{e}");
    }
}
