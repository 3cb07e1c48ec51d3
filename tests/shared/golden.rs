//! Golden arrays written by the Python references in tests/reference/ (.npz of float32 arrays).

use std::collections::HashMap;
use std::io::{Cursor, Read};

/// An array from a golden file: its shape and values.
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Every array of an .npz archive, by name.
pub fn read_npz(bytes: &[u8]) -> HashMap<String, Array> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("golden .npz is a zip");
    let mut arrays = HashMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().trim_end_matches(".npy").to_string();
        let mut npy = Vec::new();
        entry.read_to_end(&mut npy).unwrap();
        let file = npyz::NpyFile::new(Cursor::new(npy)).unwrap();
        let shape = file.shape().iter().map(|&d| d as usize).collect();
        arrays.insert(
            name,
            Array {
                shape,
                data: file.into_vec::<f32>().unwrap(),
            },
        );
    }
    arrays
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// PSNR in dB for signals with peak 1.
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}
