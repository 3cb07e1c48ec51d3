//! Training on the synthetic default, the same check natively and in the browser.

use std::rc::Rc;

use lens2logit::data::Task;
use lens2logit::gpu::Gpu;
use lens2logit::isp::static_pipeline::View;
use lens2logit::spec::models::ModelKind;
use lens2logit::train::backend::BackendSpec;
use lens2logit::train::{DeviceChoice, Mode, Session, TileSet, TrainConfig};

/// A small classifier's backend spec (16 px, batch 2).
pub fn small_spec() -> BackendSpec {
    BackendSpec {
        model: ModelKind::ResNetSmall,
        classes: 4,
        batch: 2,
        height: 16,
        width: 16,
        tiles: 8,
        optimiser: Default::default(),
        backbone_lr: 1e-3,
        forensics: None,
    }
}

/// A session on synthetic tiles run to its end, on `gpu` where given.
pub async fn run_on(
    config: TrainConfig,
    task: Task,
    (n, size): (usize, usize),
    gpu: Option<Rc<Gpu>>,
) -> Session {
    let data = TileSet::synthetic(task, n, size, 3).unwrap();
    let mut session = Session::new(config, data).unwrap();
    if let Some(gpu) = gpu {
        session
            .choose_device(DeviceChoice::Gpu, Some(gpu))
            .await
            .unwrap();
    }
    while session.step().await.unwrap().is_some() {}
    session
}

pub async fn run(config: TrainConfig, task: Task, n: usize, size: usize) -> Session {
    run_on(config, task, (n, size), None).await
}

pub fn mean(v: &[(usize, f32, f32)], what: fn(&(usize, f32, f32)) -> f32) -> f32 {
    v.iter().map(what).sum::<f32>() / v.len() as f32
}

/// A small ResNet on 32 px synthetic cells: the loss falls by a third and validation accuracy
/// ends well above chance (0.25 for four classes). Returns (first loss, last loss, accuracy).
pub async fn classification_learns() -> (f32, f32, f32) {
    let mut config = TrainConfig::new(Mode::Synthesis, ModelKind::ResNetSmall);
    config.steps = 60;
    config.lr = 3e-3;
    config.intensities = vec![100, 10];
    config.snapshot_every = 30;
    config.corruption_severity = Some(5);
    let session = run(config, Task::Classification, 64, 32).await;
    let curve = session.summary.curves.values().next().unwrap();
    let (first, last) = (
        mean(&curve[..8], |c| c.1),
        mean(&curve[curve.len() - 8..], |c| c.1),
    );
    let accuracy = *session.summary.final_metric.values().next().unwrap();
    assert!(last < 0.67 * first, "loss {first} -> {last}");
    assert!(
        accuracy >= 0.5,
        "validation accuracy {accuracy} (chance 0.25)"
    );
    assert_eq!(session.summary.views.len(), 12);
    // the post-hoc baseline: each corruption's drop is against the training view at 100 %
    let trained = session.summary.views[&View::paper_views()[2].to_string()][&100];
    assert_eq!(session.summary.corruptions.len(), 3);
    for (name, (metric, drop)) in &session.summary.corruptions {
        println!("{name} at severity 5: {metric:.3} (drop {drop:.3})");
        assert!((trained - metric - drop).abs() < 1e-6, "{name}");
    }
    let (_, contrast_drop) = session.summary.corruptions["contrast"];
    assert!(
        contrast_drop > 0.1,
        "contrast at 5 % left the metric almost whole"
    );
    assert_eq!(session.snapshots.len(), 2);
    assert_eq!(session.snapshots[0].stages.len(), 5);
    (first, last, accuracy)
}
