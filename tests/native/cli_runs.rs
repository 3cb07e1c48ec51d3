//! `lens2logit runs` as a user runs it: `train --out` writes a run folder; `runs list`, `show`,
//! `export` and `import` move it between folders and zips unchanged; broken inputs are refused
//! by name; an MLflow server that is down leaves the run kept and says how to log it later.

use std::io::Write;
use std::path::Path;

use crate::cli::{left_in, lens2logit, lens2logit_ok, TINY_TRAIN};

/// [`TINY_TRAIN`] is measured at full light only.
const FULL_LIGHT: &[&str] = &["--intensities", "100"];

fn train(dir: &Path, out: &str, mode: &str, name: &str) {
    let args = [
        "--mode",
        mode,
        "--steps",
        "2",
        "--forensic-steps",
        "2",
        "--group",
        "all",
        "--name",
        name,
        "--out",
        out,
    ];
    lens2logit_ok(&[TINY_TRAIN, FULL_LIGHT, &args].concat(), dir);
}

fn stdout(args: &[&str], dir: &Path) -> String {
    let out = lens2logit(args, dir);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                pending.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                all.push((name, std::fs::read(&p).unwrap()));
            }
        }
    }
    all.sort();
    all
}

#[test]
fn runs_move_between_folders_and_zips_unchanged_and_list_filters_and_sorts() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), "runs/a", "synthesis", "baseline");
    train(dir.path(), "runs/b", "forensics", "attack");
    let a = dir.path().join("runs/a");
    for name in [
        "run.json",
        "summary.json",
        "metrics.csv",
        "tables/drift.csv",
        "snapshots.safetensors",
        "model.safetensors",
        "isp.safetensors",
        "config.json",
    ] {
        assert!(a.join(name).is_file(), "{name}");
    }
    let b = dir.path().join("runs/b");
    assert!(b.join("tables/forensics.csv").is_file());
    assert!(b.join("adversarial/all.png").is_file());
    let metrics = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("phase,step,loss,metric\n"), "{metrics}");
    assert_eq!(metrics.lines().count(), 1 + 2);

    let listed = stdout(&["runs", "list"], dir.path());
    let rows: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows[0].ends_with("attack") && rows[1].ends_with("baseline"),
        "newest first: {listed}"
    );
    let filtered = stdout(
        &["runs", "list", "--filter", "synthesis", "--json"],
        dir.path(),
    );
    let meta: serde_json::Value = serde_json::from_str(filtered.trim()).unwrap();
    assert_eq!(meta["name"], "baseline");
    assert_eq!(meta["params"]["batch"], "2");
    assert!(meta["metrics"]["val_accuracy"].is_number());

    let shown = stdout(&["runs", "show", "runs/b"], dir.path());
    assert!(shown.contains("forensics_drop/all = "), "{shown}");

    lens2logit_ok(&["runs", "export", "runs/a", "--out", "a.zip"], dir.path());
    lens2logit_ok(&["runs", "import", "a.zip", "--dir", "copies"], dir.path());
    let id = meta["id"].as_str().unwrap();
    assert_eq!(files(&dir.path().join("copies").join(id)), files(&a));
    // by id, from --dir
    lens2logit_ok(
        &[
            "runs",
            "export",
            id,
            "--dir",
            "copies",
            "--out",
            "again.zip",
        ],
        dir.path(),
    );
    assert_eq!(
        std::fs::read(dir.path().join("again.zip")).unwrap(),
        std::fs::read(dir.path().join("a.zip")).unwrap()
    );
}

#[test]
fn broken_runs_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.zip"), b"PK\x03\x04 no zip").unwrap();
    let out = lens2logit(&["runs", "import", "junk.zip"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("junk.zip: could not decode a run zip"),
        "{stderr}"
    );

    let out = lens2logit(&["runs", "show", "nothing"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no run nothing: give a run folder, a run zip, or the id"),
        "{stderr}"
    );

    std::fs::create_dir_all(dir.path().join("runs/x")).unwrap();
    std::fs::write(dir.path().join("runs/x/run.json"), b"{\"format\": 99}").unwrap();
    let out = lens2logit(&["runs", "list"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping") && stderr.contains("run.json"),
        "{stderr}"
    );

    // --out on a folder that is not a run folder is not overwritten
    std::fs::create_dir_all(dir.path().join("precious")).unwrap();
    std::fs::write(dir.path().join("precious/notes.txt"), b"mine").unwrap();
    let out = lens2logit(
        &[
            TINY_TRAIN,
            FULL_LIGHT,
            &["--mode", "synthesis", "--steps", "1", "--out", "precious"],
        ]
        .concat(),
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("precious exists and is not a run folder"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("precious/notes.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_tracking_server_that_is_down_leaves_the_run_kept_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = lens2logit(
        &[
            TINY_TRAIN,
            FULL_LIGHT,
            &[
                "--mode",
                "synthesis",
                "--steps",
                "1",
                "--out",
                "kept",
                "--mlflow",
                &url,
            ],
        ]
        .concat(),
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the MLflow tracking server"),
        "{stderr}"
    );
    assert!(stderr.contains("The run is kept in kept"), "{stderr}");
    assert!(dir.path().join("kept/run.json").is_file());
}

#[test]
fn an_import_that_fails_midway_leaves_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, "r", "synthesis", "whole");
    // a zip the lab reads as a run, whose files cannot all be written: `notes` is a file and a
    // folder, so the import fails after it has begun writing
    let clash = [
        ("notes".to_string(), b"a".to_vec()),
        ("notes/more.txt".to_string(), b"b".to_vec()),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files(&d.join("r")).into_iter().chain(clash) {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&bytes).unwrap();
    }
    std::fs::write(d.join("clash.zip"), zip.finish().unwrap().into_inner()).unwrap();
    std::fs::write(d.join("junk.zip"), b"PK\x03\x04 no zip").unwrap();
    for zip in ["clash.zip", "junk.zip"] {
        let out = lens2logit(&["runs", "import", zip, "--dir", "imported"], d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{zip}: {stderr}");
        // no run folder, no sibling it was written in, no folder made for them
        assert_eq!(
            left_in(d),
            ["clash.zip", "junk.zip", "r"],
            "{zip}: {stderr}"
        );
    }
}
