//! `lens2logit train` and `evaluate` as a user runs them: the files a run writes, the 12-view
//! table, the post-hoc corruption baseline, and clear refusals.

use crate::cli::{lens2logit, lens2logit_ok};

const SYNTHESIS: &[&str] = &[
    "train",
    "--data",
    "synthetic",
    "--task",
    "classification",
    "--mode",
    "synthesis",
    "--steps",
    "6",
    "--n",
    "16",
    "--size",
    "32",
    "--batch",
    "4",
    "--intensities",
    "100,10",
];

#[test]
fn train_writes_curves_summary_and_checkpoints_and_evaluate_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        SYNTHESIS,
        &[
            "--corruption-severity",
            "3",
            "--timeline-out",
            "timeline.gif",
            "--out",
            "run",
        ],
    ]
    .concat();
    lens2logit_ok(&args, dir.path());
    let run = dir.path().join("run");
    // the timeline: a frame per snapshot (one per step here), five 32 px stages wide, the
    // gradient row above the output row
    let gif = std::fs::read(dir.path().join("timeline.gif")).unwrap();
    let mut decoder = gif::DecodeOptions::new().read_info(gif.as_slice()).unwrap();
    assert_eq!(
        (decoder.width(), decoder.height()),
        (5 * 32 + 4 * 2, 2 * 32 + 2)
    );
    let mut frames = 0;
    while decoder.read_next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 6);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("phase,step,loss,metric\n"), "{metrics}");
    assert_eq!(metrics.lines().count(), 1 + 6);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["views"].as_object().unwrap().len(), 12);
    let corruptions = summary["corruptions"].as_object().unwrap();
    let names: Vec<&str> = corruptions.keys().map(String::as_str).collect();
    assert_eq!(names, ["contrast", "gaussian_blur", "gaussian_noise"]);
    for name in ["model.safetensors", "isp.safetensors", "config.json"] {
        assert!(run.join(name).exists(), "{name}");
    }

    lens2logit_ok(
        &[
            "evaluate",
            "--run",
            "run",
            "--data",
            "synthetic",
            "--intensities",
            "100,50",
            "--out",
            "table.csv",
        ],
        dir.path(),
    );
    let table = std::fs::read_to_string(dir.path().join("table.csv")).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "header, 100, 50, drop_at_100: {table}");
    assert_eq!(rows[0].split(',').count(), 13);
    assert!(rows[3].starts_with("drop_at_100,"));
    // the run's own view at 100 % drops nothing relative to itself
    let header: Vec<&str> = rows[0].split(',').collect();
    let trained = header
        .iter()
        .position(|v| *v == "bilinear-unsharp_masking-gaussian_denoising")
        .unwrap();
    assert_eq!(rows[3].split(',').nth(trained), Some("0.0000"));
}

#[test]
fn a_severity_outside_one_to_five_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let args = [SYNTHESIS, &["--corruption-severity", "7", "--out", "run"]].concat();
    let out = lens2logit(&args, dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("severity 7"), "{stderr}");
    assert!(!dir.path().join("run/metrics.csv").exists());
}

/// `--backend gpu` trains on the adapter (lavapipe here) and says so; auto keeps a software
/// adapter off (the CPU is faster); an unknown backend is refused before anything runs.
#[test]
fn train_backend_gpu_trains_on_the_adapter_and_auto_takes_the_faster_it_measured() {
    if !crate::adapter::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mode = ["--mode", "optimisation"];
    let base = [&SYNTHESIS[..5], &mode[..], &SYNTHESIS[9..]].concat();
    let out = lens2logit(
        &[
            &base[..],
            &["--steps", "2", "--backend", "gpu", "--out", "gpu"],
        ]
        .concat(),
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("training on Vulkan"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("gpu/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["curves"].as_object().unwrap().len(), 2);

    let out = lens2logit(
        &[&base[..], &["--steps", "1", "--out", "auto"]].concat(),
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // auto times a warm step on each and trains on the faster, saying what it measured
    let line = stderr
        .lines()
        .find(|l| l.starts_with("training on "))
        .unwrap_or_else(|| panic!("{stderr}"));
    let ms = |device: &str| -> f64 {
        let at = line
            .find(&format!("{device}: "))
            .unwrap_or_else(|| panic!("{line}"));
        let rest = &line[at + device.len() + 2..];
        rest[..rest.find(' ').unwrap()].parse().unwrap()
    };
    let (gpu_ms, cpu_ms) = (ms("GPU"), ms("CPU"));
    let on_gpu = line.starts_with("training on Vulkan");
    assert!(on_gpu == (gpu_ms < cpu_ms) || gpu_ms == cpu_ms, "{line}");

    let out = lens2logit(
        &[
            &base[..],
            &["--steps", "1", "--backend", "tpu", "--out", "x"],
        ]
        .concat(),
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown backend 'tpu': use auto, cpu or gpu"));
}
