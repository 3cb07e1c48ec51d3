//! The GPU adapter the GPU tests run on. A missing one fails them: the README's commands install
//! Mesa's lavapipe (a CPU Vulkan driver) wherever the tests run, so no adapter means a broken
//! set-up, not a reason to pass. `LENS2LOGIT_SKIP_GPU=1` skips them, said out loud, on a machine
//! that cannot have one.

use lens2logit::gpu::nn::Kernels;
use lens2logit::gpu::Gpu;

/// Whether the GPU checks run (everywhere but where they are skipped explicitly).
pub fn required() -> bool {
    std::env::var("LENS2LOGIT_SKIP_GPU").as_deref() != Ok("1")
}

/// The adapter, or `None` where the GPU tests are skipped explicitly; panics where one is missing.
pub fn gpu() -> Option<Gpu> {
    if !required() {
        eprintln!("GPU checks skipped (LENS2LOGIT_SKIP_GPU=1)");
        return None;
    }
    let gpu = pollster::block_on(Gpu::request()).expect("asking for a GPU adapter failed");
    Some(gpu.expect(
        "no GPU adapter: install mesa-vulkan-drivers (lavapipe), or set LENS2LOGIT_SKIP_GPU=1",
    ))
}

/// The adapter with the training layers' kernels compiled.
pub fn gpu_with_kernels() -> Option<(Gpu, Kernels)> {
    let gpu = gpu()?;
    let kernels = pollster::block_on(Kernels::new(&gpu)).expect("layer kernels compile");
    Some((gpu, kernels))
}
