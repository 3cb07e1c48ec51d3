//! The paper's task models against the libraries that define them: torchvision's ResNet-18 and
//! segmentation_models_pytorch's U-Net / U-Net++ on ResNet-18/34 encoders, with seeded random
//! weights saved by PyTorch (`tests/reference/pretrained.py`, run by the test command into
//! `$LENS2LOGIT_PRETRAINED`). Each loads from safetensors and both checkpoint layouts with strict
//! names; its eval-mode logits match PyTorch's to 1e-4 of their largest magnitude on the CPU and
//! the GPU backend; one AdamW training step's loss matches PyTorch's (1e-4 relative before the
//! step, 1e-3 after it, where Adam's normalised update amplifies float rounding).

use std::path::PathBuf;
use std::rc::Rc;

use candle_core::{DType, Device, Tensor};
use candle_nn::{ParamsAdamW, VarMap};
use lens2logit::codecs::read_npy;
use lens2logit::model::{load_strict, seed_weights, TaskModel, WeightsFile};
use lens2logit::spec::models::ModelKind;
use lens2logit::train::backend::{
    start_model_alone, BackendSpec, Batch, CpuBackend, GpuBackend, Input, StepBackend,
};
use lens2logit::train::predict::predict;
use lens2logit::train::DeviceChoice;

use crate::adapter;

fn fixtures() -> PathBuf {
    let dir = std::env::var("LENS2LOGIT_PRETRAINED").expect(
        "LENS2LOGIT_PRETRAINED is not set: scripts/test.sh writes the PyTorch fixtures \
         (tests/reference/pretrained.py) and sets it",
    );
    PathBuf::from(dir)
}

fn read(case: &str, suffix: &str) -> Vec<u8> {
    let path = fixtures().join(format!("{case}.{suffix}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn npy(case: &str, what: &str) -> (Vec<usize>, Vec<f32>) {
    read_npy(&read(case, &format!("{what}.npy")), what).unwrap()
}

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

/// Largest |ours - theirs| over the largest |theirs|.
fn relative(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    ours.iter()
        .zip(theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

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

#[test]
fn predict_writes_pytorchs_logits() {
    let dir = tempfile::tempdir().unwrap();
    let case = "unetpp_resnet18";
    let path = |suffix: &str| fixtures().join(format!("{case}.{suffix}"));
    crate::cli::lens2logit_ok(
        &[
            "predict",
            "--model",
            case,
            "--weights",
            path("pth").to_str().unwrap(),
            "--input",
            path("input.npy").to_str().unwrap(),
            "--out",
            "logits.npy",
        ],
        dir.path(),
    );
    let (shape, ours) = read_npy(
        &std::fs::read(dir.path().join("logits.npy")).unwrap(),
        "ours",
    )
    .unwrap();
    let (theirs_shape, theirs) = npy(case, "logits");
    assert_eq!(shape, theirs_shape);
    assert!(relative(&ours, &theirs) <= 1e-4);
}

/// The weights of a run folder's model, by name.
fn run_weights(dir: &std::path::Path) -> std::collections::HashMap<String, Tensor> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    let a = a
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let b = b
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    a == b
}

/// `train --init` starts from the file; a frozen backbone keeps its weights and its batch norms'
/// running statistics while the head trains; the run records where the weights came from.
#[test]
fn train_starts_from_weights_and_freezes_the_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fixtures().join("resnet18.pth");
    let out = crate::cli::lens2logit(
        &[
            "train",
            "--data",
            "synthetic",
            "--task",
            "classification",
            "--mode",
            "synthesis",
            "--model",
            "resnet18",
            "--steps",
            "3",
            "--n",
            "16",
            "--size",
            "32",
            "--batch",
            "4",
            "--intensities",
            "100",
            "--backend",
            "cpu",
            "--init",
            weights.to_str().unwrap(),
            "--freeze-backbone",
            "all",
            "--backbone-lr",
            "0.0001",
            "--out",
            "run",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("starting from") && stderr.contains("resnet18.pth"),
        "{stderr}"
    );
    let file = WeightsFile::read(&std::fs::read(&weights).unwrap(), "resnet18.pth", None).unwrap();
    let trained = run_weights(&dir.path().join("run"));
    for name in [
        "conv1.weight",
        "layer4.1.bn2.weight",
        "bn1.running_mean",
        "layer2.0.bn1.running_var",
    ] {
        assert!(
            same(&trained[name], &file.tensors[name]),
            "{name} moved while frozen"
        );
    }
    assert!(
        !same(&trained["fc.weight"], &file.tensors["fc.weight"]),
        "the head trained"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/run.json")).unwrap()).unwrap();
    let params = &meta["params"];
    assert_eq!(params["init"], "resnet18.pth");
    assert_eq!(params["init_sha256"], file.source.sha256.as_str());
    assert_eq!(params["freeze_backbone"], "all");
    assert_eq!(params["backbone_lr"], "0.0001");
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

/// The recipe on this machine: Raw-Microscopy tiles from the Zenodo-like record, ResNet-18
/// started from weights fetched by URL (a model hub's place), its backbone frozen for the first
/// steps at its own rate; the run records the URL and the weights' SHA-256.
#[test]
fn the_recipe_fetches_tiles_and_weights_and_fine_tunes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(crate::zenodo_like::start(
        "no-www".as_ref(),
        "no-pkg".as_ref(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let record = format!("{url}/ok");
    crate::cli::lens2logit_ok(
        &[
            "fetch",
            "--dataset",
            "microscopy",
            "--zenodo",
            &record,
            "--out",
            "micro",
        ],
        dir.path(),
    );
    let weights = format!("{url}/weights/resnet18.pth");
    let out = crate::cli::lens2logit(
        &[
            "train",
            "--data",
            "micro",
            "--task",
            "classification",
            "--mode",
            "synthesis",
            "--model",
            "resnet18",
            "--init",
            &weights,
            "--freeze-backbone",
            "2",
            "--backbone-lr",
            "0.0001",
            "--steps",
            "3",
            "--batch",
            "2",
            "--intensities",
            "100",
            "--backend",
            "cpu",
            "--out",
            "run",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("starting from {weights}")),
        "{stderr}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/run.json")).unwrap()).unwrap();
    let sha = WeightsFile::read(&read("resnet18", "pth"), "resnet18.pth", None)
        .unwrap()
        .source
        .sha256;
    assert_eq!(meta["params"]["init_url"], weights.as_str());
    assert_eq!(meta["params"]["init_sha256"], sha.as_str());
    assert_eq!(meta["params"]["freeze_backbone"], "2");
    // a weights URL that is not there is named
    let out = crate::cli::lens2logit(
        &[
            "train",
            "--data",
            "micro",
            "--task",
            "classification",
            "--mode",
            "synthesis",
            "--model",
            "resnet18",
            "--init",
            &format!("{url}/weights/missing.pth"),
            "--steps",
            "1",
            "--out",
            "x",
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("missing.pth") && stderr.contains("404"),
        "{stderr}"
    );
}
