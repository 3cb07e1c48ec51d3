//! `lens2logit params` and `lens2logit grad` as their contract says, against the PyTorch golden
//! file (tests/reference/param_isp.py).

use crate::cli::{lens2logit, lens2logit_ok};
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use lens2logit::codecs::npy_f32;
use lens2logit::isp::param::IspParams;
use lens2logit::raw::CameraParams;
use lens2logit::spec::isp::{shape_of, NAMES};

use crate::param_isp::{configs, golden, max_abs, relative, F32, F64};

fn write_npy(path: &Path, t: &Tensor) {
    let data = t
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    std::fs::write(path, npy_f32(t.dims(), &data).unwrap()).unwrap();
}

#[test]
fn params_writes_the_paper_names_and_initial_values() {
    let dir = tempfile::tempdir().unwrap();
    lens2logit_ok(
        &["params", "--camera", "drone", "--out", "p.safetensors"],
        dir.path(),
    );
    let file =
        candle_core::safetensors::load(dir.path().join("p.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&str> = file.keys().map(String::as_str).collect();
    names.sort();
    let mut expected = NAMES.to_vec();
    expected.sort();
    assert_eq!(names, expected);
    let initial = IspParams::initial(&CameraParams::drone(), DType::F32, &Device::Cpu).unwrap();
    for (name, var) in initial.named() {
        assert_eq!(file[name].dims(), shape_of(name));
        assert_eq!(file[name].dtype(), DType::F32);
        assert_eq!(max_abs(&file[name], var.as_tensor()), 0.0, "{name}");
    }
}

#[test]
fn grad_matches_pytorch_on_cpu_f32_f64_and_gpu() {
    let golden = golden(include_bytes!("../golden/param_isp.safetensors"));
    let dir = tempfile::tempdir().unwrap();
    let gpu = crate::adapter::required();
    for (camera, bn, prefix) in configs() {
        write_npy(
            &dir.path().join("raw.npy"),
            &golden[&format!("{camera}/raw")],
        );
        write_npy(
            &dir.path().join("g.npy"),
            &golden[&format!("{camera}/upstream")],
        );
        // parameters as PyTorch saves them (float32), and in float64 for the f64 run
        for dtype in [DType::F32, DType::F64] {
            let params: HashMap<String, Tensor> = NAMES
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        golden[&format!("{camera}/param.{n}")]
                            .to_dtype(dtype)
                            .unwrap(),
                    )
                })
                .collect();
            candle_core::safetensors::save(
                &params,
                dir.path().join(format!("p_{dtype:?}.safetensors")),
            )
            .unwrap();
        }
        let mut runs = vec![
            (vec!["--dtype", "f64"], F64, DType::F64),
            (vec![], F32, DType::F32),
        ];
        if gpu {
            runs.push((vec!["--backend", "gpu"], F32, DType::F32));
        }
        for (extra, tol, dtype) in runs {
            let params = format!("p_{dtype:?}.safetensors");
            let mut args = vec![
                "grad",
                "raw.npy",
                "--params",
                &params,
                "--upstream",
                "g.npy",
                "--out",
                "o.safetensors",
            ];
            if !bn {
                args.push("--no-batch-norm");
            }
            args.extend(extra.iter().copied());
            lens2logit_ok(&args, dir.path());
            let ours =
                candle_core::safetensors::load(dir.path().join("o.safetensors"), &Device::Cpu)
                    .unwrap();
            let (forward_tol, grad_tol) = (tol.forward, tol.gradient);
            for (key, t) in &ours {
                assert_eq!(t.dtype(), dtype, "{key}");
                let reference = &golden[&format!("{prefix}/{key}")];
                if key.starts_with("grad.") {
                    let e = relative(t, reference);
                    assert!(e <= grad_tol, "{args:?} {prefix}/{key}: {e:e}");
                } else {
                    let e = max_abs(t, reference);
                    assert!(e <= forward_tol, "{args:?} {prefix}/{key}: {e:e}");
                }
            }
            assert!(
                ours.contains_key("grad.raw")
                    && ours.contains_key("stage.gamma")
                    && ours.contains_key("grad.debayer.weight")
            );
        }
    }
}

#[test]
fn grad_refuses_bad_inputs_with_one_line_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    lens2logit_ok(
        &["params", "--camera", "microscopy", "--out", "p.safetensors"],
        p,
    );
    write_npy(
        &p.join("raw.npy"),
        &Tensor::full(0.5f32, (2, 8, 8), &Device::Cpu).unwrap(),
    );
    write_npy(
        &p.join("g.npy"),
        &Tensor::ones((2, 3, 8, 8), DType::F32, &Device::Cpu).unwrap(),
    );
    write_npy(
        &p.join("g_bad.npy"),
        &Tensor::ones((2, 3, 8, 6), DType::F32, &Device::Cpu).unwrap(),
    );
    let mut nan = IspParams::initial(&CameraParams::microscopy(), DType::F32, &Device::Cpu)
        .unwrap()
        .to_safetensors(None)
        .unwrap();
    // gamma_correct's one value is the last 4 bytes of its tensor: poison the whole file's floats
    let header = u64::from_le_bytes(nan[..8].try_into().unwrap()) as usize + 8;
    for chunk in nan[header..].chunks_exact_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(p.join("nan.safetensors"), nan).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "grad",
                "raw.npy",
                "--params",
                "p.safetensors",
                "--upstream",
                "g_bad.npy",
                "--out",
                "o",
            ],
            "shape",
        ),
        (
            &[
                "grad",
                "missing.npy",
                "--params",
                "p.safetensors",
                "--upstream",
                "g.npy",
                "--out",
                "o",
            ],
            "missing.npy",
        ),
        (
            &[
                "grad",
                "raw.npy",
                "--params",
                "nan.safetensors",
                "--upstream",
                "g.npy",
                "--out",
                "o",
            ],
            "NaN",
        ),
        (
            &[
                "grad",
                "raw.npy",
                "--params",
                "p.safetensors",
                "--upstream",
                "g.npy",
                "--out",
                "o",
                "--backend",
                "gpu",
                "--dtype",
                "f64",
            ],
            "CPU",
        ),
    ];
    for (args, needle) in cases {
        let out = lens2logit(args, p);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
