//! The paper's task models against the libraries that define them: torchvision's ResNet-18 and
//! segmentation_models_pytorch's U-Net / U-Net++ on ResNet-18/34 encoders, with seeded random
//! weights saved by PyTorch (`tests/reference/pretrained.py`, run by the test command into
//! `$LENS2LOGIT_PRETRAINED`). Each loads from safetensors and both checkpoint layouts with strict
//! names; its eval-mode logits match PyTorch's to 1e-4 of their largest magnitude on the CPU and
//! the GPU backend; one AdamW training step's loss matches PyTorch's (1e-4 relative before the
//! step, 1e-3 after it, where Adam's normalised update amplifies float rounding).

use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ParamsAdamW, VarMap};
use lens2logit::model::{load_strict, seed_weights, TaskModel, WeightsFile};
use lens2logit::spec::models::ModelKind;
use lens2logit::train::backend::{
    start_model_alone, BackendSpec, Batch, CpuBackend, GpuBackend, Input, StepBackend,
};
use lens2logit::train::predict::predict;
use lens2logit::train::DeviceChoice;

use crate::adapter;
use crate::pretrained_fixtures::{npy, read, relative, same};

struct Case {
    name: &'static str,
    kind: ModelKind,
    classes: usize,
}

const CASES: [Case; 7] = [
    Case {
        name: "resnet18",
        kind: ModelKind::ResNet18,
        classes: 4,
    },
    Case {
        name: "unet_resnet18",
        kind: ModelKind::UnetResNet18,
        classes: 1,
    },
    Case {
        name: "unetpp_resnet18",
        kind: ModelKind::UnetPlusPlusResNet18,
        classes: 1,
    },
    Case {
        name: "unet_resnet34",
        kind: ModelKind::UnetResNet34,
        classes: 1,
    },
    Case {
        name: "unetpp_resnet34",
        kind: ModelKind::UnetPlusPlusResNet34,
        classes: 1,
    },
    Case {
        name: "resnet18_256",
        kind: ModelKind::ResNet18,
        classes: 4,
    },
    Case {
        name: "unetpp_resnet18_256",
        kind: ModelKind::UnetPlusPlusResNet18,
        classes: 1,
    },
];

fn input(case: &Case) -> Tensor {
    let (shape, x) = npy(case.name, "input");
    Tensor::from_vec(x, shape, &Device::Cpu).unwrap()
}

fn targets(case: &Case) -> Tensor {
    let (shape, t) = npy(case.name, "targets");
    let t = Tensor::from_vec(t, shape, &Device::Cpu).unwrap();
    match case.kind.is_segmenter() {
        true => t,
        false => t.to_dtype(DType::U32).unwrap(),
    }
}

#[test]
fn every_checkpoint_layout_loads_with_strict_names_and_gives_pytorchs_logits() {
    for case in &CASES[..5] {
        let (_, expected) = npy(case.name, "logits");
        let x = input(case);
        for suffix in ["safetensors", "pth", "wrapped.pth"] {
            let file = WeightsFile::read(&read(case.name, suffix), suffix, None).unwrap();
            let (logits, loaded, chosen) = pollster::block_on(predict(
                case.kind,
                case.classes,
                &file,
                &x,
                (DeviceChoice::Cpu, None),
            ))
            .unwrap();
            assert!(!chosen.gpu);
            assert_eq!(loaded.head_reinitialised, None);
            let err = relative(&logits, &expected);
            eprintln!("{} {suffix}: CPU logits within {err:.2e}", case.name);
            assert!(err <= 1e-4, "{} {suffix}: {err}", case.name);
        }
    }
}

#[test]
fn the_gpu_backend_gives_pytorchs_logits() {
    let Some(gpu) = adapter::gpu() else { return };
    let gpu = Rc::new(gpu);
    for case in &CASES {
        let (_, expected) = npy(case.name, "logits");
        let file = WeightsFile::read(&read(case.name, "safetensors"), "safetensors", None).unwrap();
        let (logits, _, chosen) = pollster::block_on(predict(
            case.kind,
            case.classes,
            &file,
            &input(case),
            (DeviceChoice::Gpu, Some(gpu.clone())),
        ))
        .unwrap();
        assert!(chosen.gpu);
        let err = relative(&logits, &expected);
        eprintln!("{}: GPU logits within {err:.2e}", case.name);
        assert!(err <= 1e-4, "{}: {err}", case.name);
    }
}

/// The loss of a training step on the fixture's batch (batch statistics), then the loss on the
/// same batch after that step's AdamW update: what `train` reports before each update.
fn step_losses(backend: &mut dyn StepBackend, case: &Case) -> (f32, f32) {
    let vars = VarMap::new();
    TaskModel::new(case.kind, case.classes, &vars, &Device::Cpu).unwrap();
    seed_weights(&vars, 0).unwrap();
    let file = WeightsFile::read(&read(case.name, "safetensors"), "safetensors", None).unwrap();
    load_strict(&vars, case.kind, case.classes, &file).unwrap();
    let batch = Batch {
        input: Input::Processed(input(case)),
        targets: targets(case),
    };
    pollster::block_on(async {
        start_model_alone(backend, &vars).await.unwrap();
        let augment = lens2logit::train::backend::NO_AUGMENTATION;
        let before = backend.train(&batch, augment, false).await.unwrap().loss;
        let after = backend.train(&batch, augment, false).await.unwrap().loss;
        (before, after)
    })
}

fn spec(case: &Case) -> BackendSpec {
    let (shape, _) = npy(case.name, "input");
    BackendSpec {
        model: case.kind,
        classes: case.classes,
        batch: shape[0],
        height: shape[2],
        width: shape[3],
        tiles: shape[0],
        optimiser: ParamsAdamW {
            lr: 1e-3,
            weight_decay: 1e-4,
            ..Default::default()
        },
        backbone_lr: 1e-3,
        forensics: None,
    }
}

fn reference_losses(case: &Case) -> (f32, f32) {
    let json: serde_json::Value = serde_json::from_slice(&read(case.name, "json")).unwrap();
    let loss = |k: &str| json[k].as_f64().unwrap() as f32;
    (loss("loss_before"), loss("loss_after"))
}

fn check_losses(case: &Case, ours: (f32, f32), on: &str) {
    let theirs = reference_losses(case);
    let rel = |a: f32, b: f32| (a - b).abs() / b.abs().max(1e-6);
    let (before, after) = (rel(ours.0, theirs.0), rel(ours.1, theirs.1));
    eprintln!(
        "{} on {on}: loss {:.6} -> {:.6} (PyTorch {:.6} -> {:.6}); relative {before:.1e}, {after:.1e}",
        case.name, ours.0, ours.1, theirs.0, theirs.1
    );
    assert!(
        before <= 1e-4,
        "{} on {on}: loss before the step {before}",
        case.name
    );
    assert!(
        after <= 1e-3,
        "{} on {on}: loss after the step {after}",
        case.name
    );
}

#[test]
fn one_training_step_matches_pytorch_on_the_cpu() {
    for case in &CASES[..3] {
        let mut backend = CpuBackend::new(&spec(case)).unwrap();
        let losses = step_losses(&mut backend, case);
        check_losses(case, losses, "the CPU");
    }
}

#[test]
fn one_training_step_matches_pytorch_on_the_gpu() {
    let Some(gpu) = adapter::gpu() else { return };
    let gpu = Rc::new(gpu);
    for case in &CASES[..3] {
        let mut backend = pollster::block_on(GpuBackend::new(gpu.clone(), &spec(case))).unwrap();
        let losses = step_losses(&mut backend, case);
        check_losses(case, losses, "the GPU");
    }
}

#[test]
fn a_head_made_for_other_classes_starts_afresh_and_a_foreign_key_is_named() {
    let case = &CASES[0];
    let file = WeightsFile::read(&read(case.name, "pth"), "resnet18.pth", None).unwrap();
    let vars = VarMap::new();
    TaskModel::new(ModelKind::ResNet18, 7, &vars, &Device::Cpu).unwrap();
    seed_weights(&vars, 0).unwrap();
    let loaded = load_strict(&vars, ModelKind::ResNet18, 7, &file).unwrap();
    let told = loaded.head_reinitialised.unwrap();
    assert!(
        told.contains("'fc.weight' has shape [4, 512]") && told.contains("7 class"),
        "{told}"
    );
    assert_eq!(file.source.sha256.len(), 64);
    // a segmenter's weights are not a classifier's
    let vars = VarMap::new();
    TaskModel::new(ModelKind::UnetResNet18, 1, &vars, &Device::Cpu).unwrap();
    let err = load_strict(&vars, ModelKind::UnetResNet18, 1, &file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'conv1.weight'") || err.contains("conv1.weight"),
        "{err}"
    );
    assert!(err.contains("unet_resnet18"), "{err}");
}

/// The same on the GPU backend, with the backbone frozen for the first steps only: it moves
/// once they are over.
#[test]
fn the_gpu_backend_freezes_the_backbone_for_the_first_steps() {
    use lens2logit::data::Task;
    use lens2logit::train::{Freeze, Mode, Session, TileSet, TrainConfig};
    let Some(gpu) = adapter::gpu() else { return };
    let gpu = Rc::new(gpu);
    let file = WeightsFile::read(
        &read("resnet18", "safetensors"),
        "resnet18.safetensors",
        None,
    )
    .unwrap();
    let run = |freeze: Freeze| {
        let mut config = TrainConfig::new(Mode::Synthesis, ModelKind::ResNet18);
        config.steps = 2;
        config.batch = 4;
        config.snapshot_every = 0;
        config.intensities = vec![100];
        config.freeze_backbone = freeze;
        let data = TileSet::synthetic(Task::Classification, 16, 32, 0).unwrap();
        let mut session = Session::new(config, data).unwrap();
        session.start_from(&file).unwrap();
        pollster::block_on(async {
            session
                .choose_device(DeviceChoice::Gpu, Some(gpu.clone()))
                .await
                .unwrap();
            while session.step().await.unwrap().is_some() {}
        });
        let vars = session.model_vars().data().lock().unwrap();
        let get = |n: &str| vars[n].as_tensor().clone();
        (
            get("conv1.weight"),
            get("bn1.running_mean"),
            get("fc.weight"),
        )
    };
    let (conv, mean, fc) = run(Freeze::Steps(2));
    assert!(same(&conv, &file.tensors["conv1.weight"]));
    assert!(same(&mean, &file.tensors["bn1.running_mean"]));
    assert!(!same(&fc, &file.tensors["fc.weight"]));
    let (conv, mean, _) = run(Freeze::Steps(1));
    assert!(
        !same(&conv, &file.tensors["conv1.weight"]),
        "trained from the second step"
    );
    assert!(!same(&mean, &file.tensors["bn1.running_mean"]));
}
