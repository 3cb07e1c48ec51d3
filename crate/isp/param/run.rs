//! One pass of the parametrized ISP as plain f32 data: what the CPU (candle) and GPU (WGSL) paths
//! both return, so callers and tests compare them without knowing which ran.

/// Outputs of one pass, each flattened in (B, C, H, W) order.
pub struct IspRun {
    /// (B, 3, H, W).
    pub output: Vec<f32>,
    /// The five tracked stages ([`super::Stage::ALL`]).
    pub stages: Vec<Vec<f32>>,
    /// Present when an upstream gradient was given.
    pub gradients: Option<IspGradients>,
}

pub struct IspGradients {
    /// dL/d stage for the five stages.
    pub stages: Vec<Vec<f32>>,
    /// dL/d raw, (B, H, W).
    pub raw: Vec<f32>,
    /// dL/d parameters, packed as [`super::IspParams::packed`].
    pub params: Vec<f32>,
}
