//! The training engine on the synthetic default: learning happens, forensics hurts, and the
//! gradient through the ISP and a tiny model matches finite differences.

use lens2logit::data::Task;
use lens2logit::isp::static_pipeline::View;
use lens2logit::spec::models::ModelKind;
use lens2logit::train::{Mode, TileSet, TrainConfig};

use crate::shared::train::{mean, run};

#[test]
fn classification_loss_falls_and_accuracy_beats_chance() {
    let (first, last, accuracy) = pollster::block_on(crate::shared::train::classification_learns());
    println!("classification: loss {first:.3} -> {last:.3}, validation accuracy {accuracy:.3}");
}

/// Trains `model` on 32 px synthetic drone tiles: per phase, the Dice loss falls and IoU rises.
fn segmentation_learns(model: ModelKind, mode: Mode, phases: usize) {
    let mut config = TrainConfig::new(mode, model);
    config.steps = 25;
    config.lr = 3e-3;
    config.snapshot_every = 0;
    config.intensities = vec![100];
    let session = pollster::block_on(run(config, Task::Segmentation, 32, 32));
    assert_eq!(session.summary.curves.len(), phases);
    for (phase, curve) in &session.summary.curves {
        let (first, last) = (
            mean(&curve[..5], |c| c.1),
            mean(&curve[curve.len() - 5..], |c| c.1),
        );
        let (iou0, iou1) = (
            mean(&curve[..5], |c| c.2),
            mean(&curve[curve.len() - 5..], |c| c.2),
        );
        println!(
            "{} {phase}: dice loss {first:.3} -> {last:.3}, IoU {iou0:.3} -> {iou1:.3}",
            model.name()
        );
        assert!(last < first && iou1 > iou0 + 0.1, "{phase}");
    }
}

#[test]
fn segmentation_dice_falls_and_iou_rises() {
    // frozen and joint processing: two curves
    segmentation_learns(ModelKind::UNetSmall, Mode::Optimisation, 2);
}

#[test]
fn unet_plus_plus_learns_to_segment() {
    segmentation_learns(ModelKind::UNetPlusPlus, Mode::Synthesis, 1);
}

#[test]
fn forensics_lowers_the_metric() {
    let mut config = TrainConfig::new(Mode::Forensics, ModelKind::ResNetSmall);
    config.steps = 60;
    config.lr = 3e-3;
    config.snapshot_every = 0;
    config.groups = vec!["colour_correction".into(), "gamma_correct".into()];
    config.forensic_steps = 20;
    config.lambda = 0.01;
    let session = pollster::block_on(run(config, Task::Classification, 64, 32));
    for (group, (before, after, drop)) in &session.summary.forensics {
        println!("forensics {group}: {before:.3} -> {after:.3} (drop {drop:.3})");
    }
    let (before, after, _) = session.summary.forensics["colour_correction"];
    assert!(
        after < before,
        "attacking the colour matrix should lower accuracy ({before} -> {after})"
    );
    assert_eq!(session.adversarial.len(), 2);
}

/// The task loss's gradient with respect to the ISP parameters, through a tiny f64 classifier
/// (global average pool -> linear), against central finite differences.
#[test]
fn isp_parameter_gradients_through_a_model_match_finite_differences() {
    use candle_core::{DType, Device, Tensor};
    use lens2logit::isp::param::{forward, IspParams};
    use lens2logit::raw::CameraParams;
    use lens2logit::spec::isp::{packed_span, PARAMETERS};

    let dev = Device::Cpu;
    let data = TileSet::synthetic(Task::Classification, 4, 16, 5).unwrap();
    let raw: Vec<f32> = data
        .items
        .iter()
        .flat_map(|i| i.raw.data().to_vec())
        .collect();
    let raw = Tensor::from_vec(raw, (4, 16, 16), &dev)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let targets = Tensor::new(&[0u32, 1, 2, 3], &dev).unwrap();
    let head = Tensor::from_vec(
        (0..12)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.7)
            .collect::<Vec<_>>(),
        (4, 3),
        &dev,
    )
    .unwrap();
    let params = IspParams::initial(&CameraParams::drone(), DType::F64, &dev).unwrap();
    let loss_of = |p: &IspParams| {
        let out = forward(&raw, p, true, false).unwrap().output;
        let pooled = out.mean(3).unwrap().mean(2).unwrap();
        let logits = pooled.matmul(&head.t().unwrap()).unwrap();
        candle_nn::loss::cross_entropy(&logits, &targets).unwrap()
    };
    let grads = loss_of(&params).backward().unwrap();
    let packed: Vec<f32> = params.packed().unwrap();
    let mut analytic = Vec::new();
    for (_, var) in params.named() {
        analytic.extend(
            grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f64>()
                .unwrap(),
        );
    }
    let mut worst = 0f64;
    // each parameter group's first and middle values (the whole debayer kernel would take long)
    let checked: Vec<usize> = PARAMETERS
        .iter()
        .flat_map(|p| {
            let (first, len) = packed_span(p.name).unwrap();
            [first, first + len / 2]
        })
        .collect();
    for i in checked {
        let base: Vec<f64> = params
            .named()
            .flat_map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f64>()
                    .unwrap()
            })
            .collect();
        let eps = 1e-6 * base[i].abs().max(1e-2);
        let at = |delta: f64| {
            let mut v = base.clone();
            v[i] += delta;
            let p = IspParams::from_packed(
                &v.iter().map(|&x| x as f32).collect::<Vec<_>>(),
                DType::F64,
                &dev,
            )
            .unwrap();
            // f32 packing would round the perturbation away: set the exact f64 values instead
            for ((_, var), chunk) in p.named().zip(split(&v)) {
                var.set(&Tensor::from_vec(chunk, var.shape(), &dev).unwrap())
                    .unwrap();
            }
            loss_of(&p).to_scalar::<f64>().unwrap()
        };
        let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
        let err = (analytic[i] - numeric).abs() / numeric.abs().max(1e-6);
        worst = worst.max(err);
        assert!(
            err < 1e-4,
            "parameter {i}: autograd {} vs finite differences {numeric}",
            analytic[i]
        );
    }
    println!("ISP gradient through a model: worst relative error {worst:.1e}");
    assert_eq!(packed.len(), 132);
}

/// Splits packed values into the parameters' chunks (black_level 4, white_balance 3, ...).
fn split(v: &[f64]) -> Vec<Vec<f64>> {
    let mut at = 0;
    lens2logit::spec::isp::PARAMETERS
        .iter()
        .map(|p| p.len())
        .map(|n| {
            let chunk = v[at..at + n].to_vec();
            at += n;
            chunk
        })
        .collect()
}

/// A synthesis session's evaluation comes as steps, a cell each (the 12 views at each level, then
/// the corruptions), with the time left falling to zero; the table is the one the model gives
/// evaluated at once, and the drops follow from it.
#[test]
fn the_evaluation_after_training_reports_a_step_per_cell() {
    let mut config = TrainConfig::new(Mode::Synthesis, ModelKind::ResNetSmall);
    config.steps = 3;
    config.batch = 4;
    config.intensities = vec![100, 10];
    config.corruption_severity = Some(2);
    config.snapshot_every = 0;
    let data = TileSet::synthetic(Task::Classification, 24, 16, 3).unwrap();
    let mut session = lens2logit::train::Session::new(config, data).unwrap();
    let cells = 12 * 2 + 3;
    assert_eq!(session.total_steps(), 3 + cells);
    let mut reports = Vec::new();
    while let Some(report) = pollster::block_on(session.step()).unwrap() {
        reports.push(report);
    }
    let (training, evaluating): (Vec<_>, Vec<_>) =
        reports.iter().partition(|r| r.evaluating.is_none());
    assert_eq!(training.len(), 3);
    assert_eq!(evaluating.len(), cells);
    for (k, r) in evaluating.iter().enumerate() {
        assert_eq!(
            (r.phase.as_str(), r.step, r.steps),
            ("evaluate views", k + 1, cells)
        );
        assert!(r.loss.is_nan() && (0.0..=1.0).contains(&r.metric));
    }
    let first = format!("{} at 100 %", View::paper_views()[0]);
    assert_eq!(evaluating[0].evaluating.as_deref(), Some(first.as_str()));
    assert_eq!(
        evaluating[cells - 1].evaluating.as_deref(),
        Some("contrast corruption")
    );
    assert!(reports
        .windows(2)
        .all(|w| w[1].global_step == w[0].global_step + 1));
    assert!(evaluating[1].left_ms > 0.0 && reports.last().unwrap().left_ms == 0.0);
    // the curves hold the training steps only
    assert_eq!(
        session.summary.curves.values().map(Vec::len).sum::<usize>(),
        3
    );

    let summary = session.summary.clone();
    let table = pollster::block_on(session.view_table(&[100, 10])).unwrap();
    assert_eq!(summary.views, table);
    let trained = session.config().view.to_string();
    let base = table[&trained][&100];
    for (view, drop) in &summary.view_drops {
        assert!((drop - (base - table[view][&100])).abs() < 1e-6, "{view}");
    }
    for (name, (metric, drop)) in &summary.corruptions {
        assert!((drop - (base - metric)).abs() < 1e-6, "{name}");
    }
    assert_eq!(summary.corruptions.len(), 3);
}
