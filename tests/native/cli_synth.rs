//! `lens2logit synth` writes its folder whole or not at all: a dataset written before is replaced
//! whole, a folder of the user's is refused, and Ctrl-C leaves the folder as it was.

use crate::cli::{interrupted, left_in, lens2logit, lens2logit_ok, partial_of};

/// `synth` into `out`: `n` tiles of 32 px for `task`.
fn synth<'a>(task: &'a str, n: &'a str, out: &'a str) -> [&'a str; 9] {
    [
        "synth", "--task", task, "--n", n, "--size", "32", "--out", out,
    ]
}

#[test]
fn synth_replaces_its_dataset_whole_refuses_other_folders_and_ctrl_c_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    lens2logit_ok(&synth("classification", "4", "s"), d);
    lens2logit_ok(&synth("segmentation", "2", "s"), d);
    // the classification set is gone whole, labels.csv with it
    let tiles = ["masks", "synthetic_00000.tif", "synthetic_00001.tif"];
    assert_eq!(left_in(&d.join("s")), tiles);

    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/notes.txt"), "mine").unwrap();
    let out = lens2logit(&synth("segmentation", "2", "mine"), d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("mine exists and is not a dataset folder"),
        "{stderr}"
    );
    assert_eq!(left_in(&d.join("mine")), ["notes.txt"]);

    // stopped once it has written tiles: the folder is as it was, its sibling gone
    let out = interrupted(&synth("segmentation", "1000000", "s"), d, |d| {
        partial_of(d, "s")
            .is_some_and(|p| std::fs::read_dir(p.join("masks")).is_ok_and(|m| m.count() > 2))
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped: s is as it was"), "{stderr}");
    assert_eq!(left_in(d), ["mine", "s"]);
    assert_eq!(left_in(&d.join("s")), tiles);
}
