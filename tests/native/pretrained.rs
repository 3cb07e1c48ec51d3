//! The CLI with the paper's task models: `predict` gives PyTorch's logits; `train --init` starts
//! from weights (a file or a URL) with the backbone frozen, and records where they came from.

use candle_core::{Device, Tensor};
use lens2logit::codecs::read_npy;
use lens2logit::model::WeightsFile;

use crate::pretrained_fixtures::{fixtures, npy, read, relative, same};

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
    // a ResNet-18 on the fetched tiles, started from `init`
    let train = |init: &str, rest: &[&str]| {
        let base = [
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
            init,
        ];
        crate::cli::lens2logit(&[&base[..], rest].concat(), dir.path())
    };
    let out = train(
        &weights,
        &[
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
    let out = train(
        &format!("{url}/weights/missing.pth"),
        &["--steps", "1", "--out", "x"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("missing.pth") && stderr.contains("404"),
        "{stderr}"
    );
}
