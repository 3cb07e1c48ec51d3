//! How the parity tests compare numbers: one definition of a tensor's values and of the relative
//! error, for the layers, the model graphs and the sessions.

use candle_core::{DType, Tensor};

/// A tensor's values in f32, row-major.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// max |ours - reference| / max |reference| (the absolute difference where the reference is 0).
pub fn relative(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len(), "lengths differ");
    let diff = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    let scale = reference.iter().map(|v| v.abs()).fold(0.0, f32::max);
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}
