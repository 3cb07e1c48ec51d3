//! The training engine's GPU backend on lavapipe against its CPU backend (see
//! `shared::train_gpu`).

use std::rc::Rc;

use crate::adapter;
use crate::shared::train_gpu;

#[test]
fn every_mode_trains_on_the_gpu_as_on_the_cpu() {
    let Some(gpu) = adapter::gpu() else { return };
    for line in pollster::block_on(train_gpu::every_mode_matches(Rc::new(gpu))) {
        eprintln!("{line}");
    }
}

#[test]
fn a_twenty_step_gpu_run_follows_the_cpu_curve() {
    let Some(gpu) = adapter::gpu() else { return };
    eprintln!(
        "{}",
        pollster::block_on(train_gpu::twenty_steps_follow(Rc::new(gpu)))
    );
}

/// A session the device cannot hold is refused before anything big is allocated, naming the
/// largest batch that fits.
#[test]
fn a_session_too_big_for_the_gpu_is_refused_with_the_batch_that_fits() {
    use lens2logit::data::Task;
    use lens2logit::spec::models::ModelKind;
    use lens2logit::train::{DeviceChoice, Mode, Session, TileSet, TrainConfig};

    let Some(gpu) = adapter::gpu() else { return };
    let mut config = TrainConfig::new(Mode::Optimisation, ModelKind::UNetSmall);
    config.batch = 1000;
    let data = TileSet::synthetic(Task::Segmentation, 4, 256, 0).unwrap();
    let mut session = Session::new(config, data).unwrap();
    let err = pollster::block_on(session.choose_device(DeviceChoice::Gpu, Some(Rc::new(gpu))))
        .unwrap_err()
        .to_string();
    eprintln!("{err}");
    assert!(
        err.contains("unet_small") && err.contains("batch 1000") && err.contains("at most"),
        "{err}"
    );
}
