//! The seeded PyTorch models the test command writes into `$LENS2LOGIT_PRETRAINED`
//! (`tests/reference/pretrained.py`), for the core's parity tests and the CLI's.

use std::path::PathBuf;

use candle_core::{DType, Tensor};
use lens2logit::codecs::read_npy;

pub fn fixtures() -> PathBuf {
    let dir = std::env::var("LENS2LOGIT_PRETRAINED").expect(
        "LENS2LOGIT_PRETRAINED is not set: scripts/test.sh writes the PyTorch fixtures \
         (tests/reference/pretrained.py) and sets it",
    );
    PathBuf::from(dir)
}

pub fn read(case: &str, suffix: &str) -> Vec<u8> {
    let path = fixtures().join(format!("{case}.{suffix}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn npy(case: &str, what: &str) -> (Vec<usize>, Vec<f32>) {
    read_npy(&read(case, &format!("{what}.npy")), what).unwrap()
}

/// Largest |ours - theirs| over the largest |theirs|.
pub fn relative(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    ours.iter()
        .zip(theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// Whether two tensors hold the same values.
pub fn same(a: &Tensor, b: &Tensor) -> bool {
    let values = |t: &Tensor| -> Vec<f32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    values(a) == values(b)
}
