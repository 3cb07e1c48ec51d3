//! Running the `lens2logit` binary the way a user does, from a working directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn lens2logit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lens2logit"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run lens2logit")
}

/// Runs and fails the test with the CLI's own message when the command does not succeed.
pub fn lens2logit_ok(args: &[&str], dir: &Path) {
    let out = lens2logit(args, dir);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `train` on a synthetic classification set small enough for seconds; callers add the
/// intensities, a mode and an output.
pub const TINY_TRAIN: &[&str] = &[
    "train",
    "--data",
    "synthetic",
    "--task",
    "classification",
    "--n",
    "8",
    "--size",
    "32",
    "--batch",
    "2",
];

/// What is in `dir`, by name, sorted: a folder a command left, or its `.NAME.partial-PID` sibling.
pub fn left_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The sibling a command writes the folder `name` in (`.NAME.partial-PID`), while it does.
pub fn partial_of(dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!(".{name}.partial-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
}

/// Starts `lens2logit args` in `dir`, waits until `ready(dir)`, then stops it as Ctrl-C does
/// (SIGINT); its output.
pub fn interrupted(args: &[&str], dir: &Path, ready: impl Fn(&Path) -> bool) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lens2logit"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lens2logit");
    let start = Instant::now();
    while !ready(dir) {
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} ended or stalled before it could be stopped: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    child.wait_with_output().unwrap()
}
