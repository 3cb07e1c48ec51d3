//! Running the `lens2logit` binary the way a user does, from a working directory.

use std::path::Path;
use std::process::{Command, Output};

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
