//! The parametrized ISP's contract, shared by the candle pipeline (`isp::param`, the reference)
//! and the WGSL kernels (`gpu::isp`): the parameters with their names, shapes, groups and packed
//! layout; the tracked stages; the pipeline's constants; what one pass returns as plain data.

/// One parameter of the processing, named as the paper's PyTorch module names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IspParameter {
    /// The state-dict name (`debayer.weight`).
    pub name: &'static str,
    /// The group forensics attacks and the page lists (`debayer`).
    pub group: &'static str,
    pub shape: &'static [usize],
}

impl IspParameter {
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.shape.len() {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const fn parameter(
    name: &'static str,
    group: &'static str,
    shape: &'static [usize],
) -> IspParameter {
    IspParameter { name, group, shape }
}

/// The parameters in their packed order (black level, white balance, colour matrix, gamma, the
/// sharpening and blur filters, the debayering): the order of `IspParams::packed`, of the GPU's
/// parameter buffer and of forensics' attacks, group by group (the debayering last).
pub const PARAMETERS: [IspParameter; 7] = [
    parameter("black_level", "black_level", &[4]),
    parameter("white_balance", "white_balance", &[1, 3]),
    parameter("colour_correction", "colour_correction", &[3, 3]),
    parameter("gamma_correct", "gamma_correct", &[1]),
    parameter(
        "sharpening_filter.weight",
        "sharpening_filter",
        &[1, 1, 3, 3],
    ),
    parameter("gaussian_blur.weight", "gaussian_blur", &[1, 1, 5, 5]),
    parameter("debayer.weight", "debayer", &[3, 3, 3, 3]),
];

/// The parameters' state-dict names, in packed order.
pub const NAMES: [&str; 7] = {
    let mut names = [""; 7];
    let mut i = 0;
    while i < 7 {
        names[i] = PARAMETERS[i].name;
        i += 1;
    }
    names
};

/// The parameter groups, in packed order.
pub const GROUPS: [&str; 7] = {
    let mut groups = [""; 7];
    let mut i = 0;
    while i < 7 {
        groups[i] = PARAMETERS[i].group;
        i += 1;
    }
    groups
};

/// What forensics attacks all groups at once under (the paper's headline attack).
pub const ALL_GROUPS: &str = "all";

/// Number of values of all parameters together.
pub const PACKED_LEN: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < 7 {
        n += PARAMETERS[i].len();
        i += 1;
    }
    n
};

/// The parameter named `name`, or the one of group `name`.
pub fn parameter_named(name: &str) -> Option<&'static IspParameter> {
    PARAMETERS
        .iter()
        .find(|p| p.name == name || p.group == name)
}

/// Where parameter `name` (or its group's name) sits in the packed vector: (first value, count).
pub fn packed_span(name: &str) -> Option<(usize, usize)> {
    let mut first = 0;
    for p in &PARAMETERS {
        if p.name == name || p.group == name {
            return Some((first, p.len()));
        }
        first += p.len();
    }
    None
}

/// The shape of parameter `name` (empty for no such parameter).
pub fn shape_of(name: &str) -> &'static [usize] {
    parameter_named(name).map_or(&[], |p| p.shape)
}

/// The parameter names a forensics target covers: a group, or [`ALL_GROUPS`].
pub fn attacked(target: &str) -> Vec<&'static str> {
    PARAMETERS
        .iter()
        .filter(|p| target == ALL_GROUPS || p.group == target)
        .map(|p| p.name)
        .collect()
}

/// Clip bounds of the pipeline (the lower one keeps log() finite).
pub const CLIP_MIN: f64 = 1e-5;
pub const CLIP_MAX: f64 = 1.0;
/// BatchNorm2d's epsilon and momentum (PyTorch's defaults), for the processing's final batch
/// norm and the task models'.
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;
/// BatchNorm2d's running statistics before any batch (PyTorch's initial buffers).
pub const BN_INITIAL_MEAN: f64 = 0.0;
pub const BN_INITIAL_VAR: f64 = 1.0;

/// The tracked stages, in pipeline order, named as the CLI and the page name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After the debayering convolution.
    Demosaic,
    /// After white balance and the colour matrix.
    ColourCorrection,
    /// RGB after sharpening the Y plane.
    Sharpening,
    /// RGB after blurring the Y plane.
    Denoising,
    /// After clipping and gamma, before batch norm.
    Gamma,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Demosaic,
        Stage::ColourCorrection,
        Stage::Sharpening,
        Stage::Denoising,
        Stage::Gamma,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Demosaic => "demosaic",
            Stage::ColourCorrection => "colour_correction",
            Stage::Sharpening => "sharpening",
            Stage::Denoising => "denoising",
            Stage::Gamma => "gamma",
        }
    }
}

/// One pass of the parametrized ISP as plain f32 data: what the CPU (candle) and GPU (WGSL) paths
/// both return, so callers and tests compare them without knowing which ran. Each is flattened
/// in (B, C, H, W) order.
pub struct IspRun {
    /// (B, 3, H, W).
    pub output: Vec<f32>,
    /// The five tracked stages ([`Stage::ALL`]).
    pub stages: Vec<Vec<f32>>,
    /// Present when an upstream gradient was given.
    pub gradients: Option<IspGradients>,
}

pub struct IspGradients {
    /// dL/d stage for the five stages.
    pub stages: Vec<Vec<f32>>,
    /// dL/d raw, (B, H, W).
    pub raw: Vec<f32>,
    /// dL/d parameters, in packed order.
    pub params: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_spans_tile_the_packed_vector_in_order() {
        let mut next = 0;
        for p in PARAMETERS {
            let (first, len) = packed_span(p.name).unwrap();
            assert_eq!(first, next, "{}", p.name);
            assert_eq!(len, shape_of(p.name).iter().product::<usize>());
            assert_eq!(packed_span(p.group), Some((first, len)));
            next += len;
        }
        assert_eq!(next, PACKED_LEN);
        assert_eq!(PACKED_LEN, 132);
        assert_eq!(packed_span("exposure"), None);
        assert_eq!(attacked("debayer"), ["debayer.weight"]);
        assert_eq!(attacked(ALL_GROUPS), NAMES);
    }
}
