//! The parametrized ISP's parameters, named as the paper's PyTorch module names them, so weights
//! move both ways through safetensors.

use candle_core::{DType, Device, Tensor, Var};

use super::RunningStats;
use crate::isp::static_pipeline::filters::gaussian_kernel;
use crate::raw::CameraParams;
use crate::spec::isp::{shape_of, NAMES, PACKED_LEN};
use crate::{Error, Result};

/// K_RB and K_G of the paper's Debayer: bilinear interpolation as a 3x3 convolution.
const K_RB: [[f64; 3]; 3] = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]];
const K_G: [[f64; 3]; 3] = [[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]];
const K_SHARP: [[f64; 3]; 3] = [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]];

/// Trainable parameters (candle `Var`s) in one dtype on one device.
pub struct IspParams {
    vars: Vec<Var>,
}

impl IspParams {
    /// The paper's initialisation for a camera: its black level, white balance and colour matrix,
    /// gamma 2.2, bilinear debayering, the 3x3 sharpening filter and a 5x5 gaussian (sigma 0.5).
    pub fn initial(camera: &CameraParams, dtype: DType, device: &Device) -> Result<Self> {
        camera.validate()?;
        let mut debayer = vec![0.0f64; 81];
        for (c, k) in [(0, K_RB), (1, K_G), (2, K_RB)] {
            for (i, v) in k.iter().flatten().enumerate() {
                debayer[(c * 3 + c) * 9 + i] = *v;
            }
        }
        let g = gaussian_kernel(0.5, 4.0);
        let blur: Vec<f64> = g
            .iter()
            .flat_map(|a| g.iter().map(move |b| a * b))
            .collect();
        let initial = |name: &str| -> Vec<f64> {
            match name {
                "black_level" => camera.black_level.to_vec(),
                "white_balance" => camera.white_balance.to_vec(),
                "colour_correction" => camera.colour_matrix.to_vec(),
                "gamma_correct" => vec![camera.gamma],
                "debayer.weight" => debayer.clone(),
                "sharpening_filter.weight" => K_SHARP.iter().flatten().copied().collect(),
                _ => blur.clone(),
            }
        };
        let values = NAMES.map(initial);
        let vars = NAMES
            .iter()
            .zip(values)
            .map(|(name, v)| -> Result<Var> {
                let t = Tensor::from_vec(v, shape_of(name), device)?.to_dtype(dtype)?;
                Ok(Var::from_tensor(&t)?)
            })
            .collect::<Result<_>>()?;
        Ok(Self { vars })
    }

    /// Parameters from named tensors (a safetensors file): every name present with its shape and
    /// finite values.
    pub fn from_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let vars = NAMES
            .iter()
            .map(|name| -> Result<Var> {
                let t = tensors.get(*name).ok_or_else(|| {
                    Error::invalid(format!(
                        "the parameters lack '{name}' (expected: {})",
                        NAMES.join(", ")
                    ))
                })?;
                if t.dims() != shape_of(name) {
                    return Err(Error::invalid(format!(
                        "parameter '{name}' has shape {:?}, expected {:?}",
                        t.dims(),
                        shape_of(name)
                    )));
                }
                let t = t.to_dtype(DType::F64)?.to_device(device)?;
                if t.flatten_all()?
                    .to_vec1::<f64>()?
                    .iter()
                    .any(|v| !v.is_finite())
                {
                    return Err(Error::invalid(format!(
                        "parameter '{name}' holds NaN or infinite values"
                    )));
                }
                Ok(Var::from_tensor(&t.to_dtype(dtype)?)?)
            })
            .collect::<Result<_>>()?;
        Ok(Self { vars })
    }

    /// Reads a safetensors file's bytes (as PyTorch's `safetensors.torch.save_file` writes them).
    pub fn from_safetensors(bytes: &[u8], dtype: DType, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load_buffer(bytes, device)
            .map_err(|e| Error::decode("ISP parameters (safetensors)", e))?;
        Self::from_tensors(&tensors, dtype, device)
    }

    /// The parameters as safetensors bytes, float32 (what PyTorch modules hold), with the final
    /// batch norm's running statistics (`batch_norm.running_mean`, `batch_norm.running_var`)
    /// where a training session tracked them.
    pub fn to_safetensors(&self, running: Option<&RunningStats>) -> Result<Vec<u8>> {
        let mut tensors: Vec<(&str, Tensor)> = self
            .named()
            .map(|(n, v)| Ok((n, v.as_tensor().to_dtype(DType::F32)?)))
            .collect::<Result<_>>()?;
        if let Some(r) = running {
            let column = |v: [f64; 3]| Tensor::new(&v.map(|x| x as f32), &Device::Cpu);
            tensors.push(("batch_norm.running_mean", column(r.mean)?));
            tensors.push(("batch_norm.running_var", column(r.var)?));
        }
        safetensors::serialize(tensors, None)
            .map_err(|e| Error::invalid(format!("writing safetensors: {e}")))
    }

    /// All values in the paper's order, flattened: black_level (4), white_balance (3),
    /// colour_correction (9), gamma_correct (1), debayer.weight (81), sharpening_filter.weight (9),
    /// gaussian_blur.weight (25). The GPU kernels read this layout.
    pub fn packed(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(PACKED_LEN);
        for v in &self.vars {
            out.extend(
                v.as_tensor()
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?,
            );
        }
        Ok(out)
    }

    /// Parameters from the packed layout of [`IspParams::packed`].
    pub fn from_packed(values: &[f32], dtype: DType, device: &Device) -> Result<Self> {
        if values.len() != PACKED_LEN {
            return Err(Error::invalid(format!(
                "packed ISP parameters hold {PACKED_LEN} values, got {}",
                values.len()
            )));
        }
        let mut at = 0;
        let tensors = NAMES
            .iter()
            .map(|name| {
                let shape = shape_of(name);
                let len: usize = shape.iter().product();
                let t = Tensor::from_vec(values[at..at + len].to_vec(), shape, device);
                at += len;
                Ok((name.to_string(), t?))
            })
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        Self::from_tensors(&tensors, dtype, device)
    }

    /// (name, variable) in the paper's order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, &Var)> {
        NAMES.iter().copied().zip(&self.vars)
    }

    pub fn get(&self, name: &str) -> Option<&Var> {
        self.named().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The parameter named `name` (one of [`NAMES`]).
    fn at(&self, name: &str) -> &Tensor {
        let i = NAMES.iter().position(|n| *n == name).unwrap_or(0);
        self.vars[i].as_tensor()
    }

    pub fn black_level(&self) -> &Tensor {
        self.at("black_level")
    }
    pub fn white_balance(&self) -> &Tensor {
        self.at("white_balance")
    }
    pub fn colour_correction(&self) -> &Tensor {
        self.at("colour_correction")
    }
    pub fn gamma_correct(&self) -> &Tensor {
        self.at("gamma_correct")
    }
    pub fn debayer(&self) -> &Tensor {
        self.at("debayer.weight")
    }
    pub fn sharpening_filter(&self) -> &Tensor {
        self.at("sharpening_filter.weight")
    }
    pub fn gaussian_blur(&self) -> &Tensor {
        self.at("gaussian_blur.weight")
    }

    pub fn dtype(&self) -> DType {
        self.vars[0].dtype()
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }
}
