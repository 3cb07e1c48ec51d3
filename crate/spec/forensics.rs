//! Forensics' SSIM distance between the attacked processing's output and the default one: its
//! window and stabilising constants, shared by the candle objective (`train::session`) and its
//! gradient on the GPU (`gpu::nn::distance`).

/// Side of SSIM's box window (stride 1, no padding).
pub const SSIM_WINDOW: usize = 7;
/// SSIM's stabilising constants (k1 L)^2 and (k2 L)^2, with k1 = 0.01, k2 = 0.03 and a dynamic
/// range L = 1.
pub const SSIM_C1: f64 = 0.01 * 0.01;
pub const SSIM_C2: f64 = 0.03 * 0.03;

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPU's f32 constants are the ones its kernels always used.
    #[test]
    fn constants_as_f32_are_the_usual_ones() {
        assert_eq!(SSIM_C1 as f32, 0.0001f32);
        assert_eq!(SSIM_C2 as f32, 0.0009f32);
        assert_eq!(SSIM_C1, 0.01f64.powi(2));
        assert_eq!(SSIM_C2, 0.03f64.powi(2));
    }
}
