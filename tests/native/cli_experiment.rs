//! `lens2logit experiment` as a user runs it: the 12 x 12 synthesis table and its run folders, row
//! jobs (a job array) gathered into the same table, and forensics' and optimisation's tables.
//! Segmentation's IoU is a continuous metric, so that different cells hold different numbers and
//! a cell in the wrong place shows.

use std::path::Path;

use crate::cli::{interrupted, left_in, lens2logit, lens2logit_ok, partial_of};

/// A session small enough for seconds (the camera twin's tests train it too).
pub const SMALL: &[&str] = &[
    "--data",
    "synthetic",
    "--task",
    "segmentation",
    "--n",
    "16",
    "--size",
    "32",
    "--steps",
    "2",
    "--batch",
    "4",
    "--backend",
    "cpu",
];

fn synthesis(dir: &Path, extra: &[&str]) {
    let args = [
        &["experiment", "synthesis"],
        SMALL,
        &["--intensities", "100,10"],
        extra,
    ]
    .concat();
    lens2logit_ok(&args, dir);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap()
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

/// The lines of a CSV, split at commas.
fn csv(path: &Path) -> Vec<Vec<String>> {
    read(path)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Width and height of a PNG (its IHDR chunk).
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn synthesis_trains_on_each_view_and_tests_on_all_twelve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synthesis(d, &["--out", "full"]);
    let full = d.join("full");

    // `experiment views` is the tables' order: line i of it is row i and column i
    let views: Vec<String> = stdout(&["experiment", "views"], d)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(views.len(), 12);
    assert_eq!(views[0], "bilinear-sharpening_filter-gaussian_denoising");
    assert_eq!(views[11], "menon2007-unsharp_masking-median_denoising");

    let matrix = csv(&full.join("synthesis_12x12.csv"));
    assert_eq!(matrix.len(), 13, "a header and 12 rows");
    assert_eq!(matrix[0][0], "train_view");
    assert_eq!(matrix[0][1..], views[..]);
    let by_level = csv(&full.join("synthesis_intensity.csv"));
    assert_eq!(by_level[0], ["train_view", "100", "10"]);
    assert_eq!(by_level.len(), 13);

    let mut diagonal = Vec::new();
    for (r, view) in views.iter().enumerate() {
        let row = &matrix[r + 1];
        assert_eq!(&row[0], view, "rows in the views' order");
        assert_eq!(row.len(), 13);
        for cell in &row[1..] {
            let m: f64 = cell.parse().unwrap();
            assert!((0.0..=1.0).contains(&m), "{cell}");
            assert_eq!(cell.split('.').nth(1).map(str::len), Some(4), "{cell}");
        }
        // the row's own run: trained on this view, and the table's diagonal is what it measured
        let run = full.join("runs").join(view);
        assert_eq!(json(&run.join("run.json"))["view"], view.as_str());
        let summary = json(&run.join("summary.json"));
        let own = |level: &str| summary["views"][view][level].as_f64().unwrap();
        assert_eq!(row[1 + r], format!("{:.4}", own("100")), "{view}");
        assert_eq!(by_level[r + 1][0], *view);
        assert_eq!(by_level[r + 1][1], format!("{:.4}", own("100")), "{view}");
        assert_eq!(by_level[r + 1][2], format!("{:.4}", own("10")), "{view}");
        // and the rest of the row is that same model on the other views
        let other = (r + 5) % 12;
        let on_other = summary["views"][&views[other]]["100"].as_f64().unwrap();
        assert_eq!(row[1 + other], format!("{on_other:.4}"), "{view}");
        diagonal.push(row[1 + r].clone());
    }
    diagonal.sort();
    diagonal.dedup();
    assert!(
        diagonal.len() > 1,
        "the models differ, so a misplaced row would show: {diagonal:?}"
    );

    // both heatmaps have the 12 rows; the 12 x 12 one has more columns than the intensities
    let (w12, h12) = png_size(&full.join("synthesis_12x12.png"));
    let (w2, h2) = png_size(&full.join("synthesis_intensity.png"));
    assert_eq!(h12, h2);
    assert!(w12 > w2 && h12 > 12 * 20, "{w12}x{h12}, {w2}x{h2}");

    let listed = stdout(&["runs", "list", "--dir", "full/runs"], d);
    assert_eq!(listed.lines().count(), 1 + 12, "{listed}");
    for view in &views {
        assert!(listed.contains(view.as_str()), "{view}: {listed}");
    }
}

/// The two training views the row jobs train on (rows 2 and 9 of the table).
const TWO: &str = "bilinear-unsharp_masking-gaussian_denoising";
const NINE: &str = "menon2007-sharpening_filter-median_denoising";

#[test]
fn row_jobs_gathered_are_the_rows_of_the_full_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let one_row = row_jobs_are_deterministic_rows(d);
    gather_without_all_rows_names_the_missing(d);
    synthesis(d, &["--out", "full"]);
    partial_gather_is_the_full_run_s_rows(d, one_row);
    gather_with_the_full_run_is_the_whole_table(d);
    gathers_of_rows_that_disagree_are_refused(d);
}

fn synthesis_table(d: &Path, folder: &str) -> serde_json::Value {
    json(&d.join(folder).join("synthesis.json"))
}

/// Rows 2 (twice) and 9 as jobs: the same job twice measures the same numbers, to the last bit,
/// and a row job's table is one row. The height of its heatmap.
fn row_jobs_are_deterministic_rows(d: &Path) -> u32 {
    synthesis(d, &["--train-view", TWO, "--out", "row2"]);
    synthesis(d, &["--train-view", TWO, "--out", "row2-again"]);
    // determinism first
    assert_eq!(
        synthesis_table(d, "row2")["rows"],
        synthesis_table(d, "row2-again")["rows"]
    );

    synthesis(d, &["--train-view", NINE, "--out", "row9"]);
    let row = csv(&d.join("row2/synthesis_12x12.csv"));
    assert_eq!(row.len(), 2, "one row");
    assert_eq!(row[1][0], TWO);
    assert!(d.join("row2/runs").join(TWO).join("run.json").is_file());
    png_size(&d.join("row2/synthesis_12x12.png")).1
}

/// A gather without the other ten rows names them and writes nothing.
fn gather_without_all_rows_names_the_missing(d: &Path) {
    let out = lens2logit(&["experiment", "gather", "row2", "row9", "--out", "g"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("10 of the 12 rows are missing"), "{stderr}");
    assert!(
        stderr.contains("bilinear-sharpening_filter-gaussian_denoising"),
        "{stderr}"
    );
    assert!(!stderr.contains(&format!("{TWO},")), "{stderr}");
    assert!(!d.join("g").exists());
}

/// `--partial` gathers rows 9 and 2 into the full run's rows, in the paper's order.
fn partial_gather_is_the_full_run_s_rows(d: &Path, one_row: u32) {
    lens2logit_ok(
        &[
            "experiment",
            "gather",
            "row9",
            "row2",
            "--partial",
            "--out",
            "g",
        ],
        d,
    );
    let full = csv(&d.join("full/synthesis_12x12.csv"));
    let gathered = csv(&d.join("g/synthesis_12x12.csv"));
    assert_eq!(gathered[0], full[0]);
    assert!(png_size(&d.join("full/synthesis_12x12.png")).1 > one_row);
    let full_row = |view: &str| full.iter().find(|r| r[0] == view).unwrap().clone();
    assert_eq!(
        gathered[1..],
        [full_row(TWO), full_row(NINE)],
        "paper order"
    );
    assert_ne!(full_row(TWO)[1..], full_row(NINE)[1..]);
    let listed = stdout(&["runs", "list", "--dir", "g/runs"], d);
    assert_eq!(listed.lines().count(), 1 + 2, "{listed}");
}

/// With the full run, the same rows twice (the same numbers) make the whole table.
fn gather_with_the_full_run_is_the_whole_table(d: &Path) {
    lens2logit_ok(
        &[
            "experiment",
            "gather",
            "row2",
            "full",
            "row9",
            "--out",
            "all",
        ],
        d,
    );
    for file in ["synthesis_12x12.csv", "synthesis_intensity.csv"] {
        assert_eq!(
            read(&d.join("all").join(file)),
            read(&d.join("full").join(file))
        );
    }
    assert_eq!(
        std::fs::read(d.join("all/synthesis_12x12.png")).unwrap(),
        std::fs::read(d.join("full/synthesis_12x12.png")).unwrap()
    );
}

/// A row whose numbers differ from the same view's elsewhere, rows trained with other settings
/// and a folder that is no synthesis output are refused, naming why.
fn gathers_of_rows_that_disagree_are_refused(d: &Path) {
    // a row whose numbers differ from the same view's elsewhere is refused, naming both
    let mut edited = synthesis_table(d, "row2-again");
    let cell = &mut edited["rows"][TWO][TWO]["100"];
    *cell = serde_json::json!(cell.as_f64().unwrap() + 0.25);
    std::fs::write(
        d.join("row2-again/synthesis.json"),
        serde_json::to_vec(&edited).unwrap(),
    )
    .unwrap();
    let out = lens2logit(
        &["experiment", "gather", "full", "row2-again", "--out", "bad"],
        d,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("training view {TWO} is in full and in row2-again")),
        "{stderr}"
    );

    // rows trained with other settings are not one table
    synthesis(d, &["--train-view", NINE, "--seed", "1", "--out", "seed1"]);
    let out = lens2logit(
        &["experiment", "gather", "row2", "seed1", "--out", "bad"],
        d,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("seed1 has seed = 1"), "{stderr}");
    assert!(!d.join("bad").exists());

    let out = lens2logit(&["experiment", "gather", "nowhere", "--out", "bad"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is nowhere a synthesis output folder"),
        "{stderr}"
    );
}

#[test]
fn synthesis_without_full_light_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        &["experiment", "synthesis"],
        SMALL,
        &["--intensities", "50,10", "--out", "x"],
    ]
    .concat();
    let out = lens2logit(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("include 100"), "{stderr}");
    assert!(!dir.path().join("x").exists());
}

#[test]
fn forensics_ranks_the_groups_by_drop() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        &["experiment", "forensics"],
        SMALL,
        &["--forensic-steps", "2", "--out", "f"],
    ]
    .concat();
    lens2logit_ok(&args, d);
    let table = csv(&d.join("f/forensics.csv"));
    assert_eq!(table[0], ["group", "before", "after", "drop"]);
    let mut groups: Vec<&str> = table[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        groups.len(),
        8,
        "every parameter group in turn, then all at once"
    );
    let drops: Vec<f64> = table[1..].iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(drops.windows(2).all(|w| w[0] >= w[1]), "{drops:?}");
    let summary = json(&d.join("f/runs/forensics/summary.json"));
    for row in &table[1..] {
        let (before, after, drop) = (&row[1], &row[2], &row[3]);
        let kept = &summary["forensics"][&row[0]];
        assert_eq!(*before, format!("{:.4}", kept[0].as_f64().unwrap()));
        assert_eq!(*after, format!("{:.4}", kept[1].as_f64().unwrap()));
        assert_eq!(*drop, format!("{:.4}", kept[2].as_f64().unwrap()));
        // one trained model: every attack starts from the same metric
        assert_eq!(*before, table[1][1]);
    }
    groups.sort();
    assert_eq!(
        groups,
        [
            "all",
            "black_level",
            "colour_correction",
            "debayer",
            "gamma_correct",
            "gaussian_blur",
            "sharpening_filter",
            "white_balance"
        ]
    );
    let (_, height) = png_size(&d.join("f/forensics.png"));
    assert!(height > 8 * 20, "a bar per group: {height}");
    assert!(d.join("f/runs/forensics/adversarial/debayer.png").is_file());
}

#[test]
fn optimisation_writes_both_phases_and_their_curves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [&["experiment", "optimisation"], SMALL, &["--out", "o"]].concat();
    lens2logit_ok(&args, d);
    let table = csv(&d.join("o/optimisation.csv"));
    assert_eq!(table[0], ["phase", "final_metric"]);
    let phases: Vec<&str> = table[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(phases, ["frozen processing", "joint processing"]);
    let summary = json(&d.join("o/runs/optimisation/summary.json"));
    for row in &table[1..] {
        let m = summary["final_metric"][&row[0]].as_f64().unwrap();
        assert_eq!(row[1], format!("{m:.4}"));
    }
    let curves = read(&d.join("o/curves.csv"));
    assert_eq!(curves, read(&d.join("o/runs/optimisation/metrics.csv")));
    assert!(curves.starts_with("phase,step,loss,metric\n"));
    assert_eq!(curves.lines().count(), 1 + 2 * 2, "two phases of two steps");
}

#[test]
fn a_tracking_server_that_is_down_leaves_the_experiments_run_kept() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let args = [
        &["experiment", "optimisation"],
        SMALL,
        &["--mlflow", &url, "--out", "o"],
    ]
    .concat();
    let out = lens2logit(&args, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach the MLflow tracking server"),
        "{stderr}"
    );
    assert!(dir.path().join("o/runs/optimisation/run.json").is_file());
}

#[test]
fn an_experiment_that_fails_or_is_stopped_leaves_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // tiles that are not there (a mistyped --data) fail the experiment before it trains
    assert_eq!(SMALL[..2], ["--data", "synthetic"]);
    let args = [
        &["experiment", "forensics", "--data", "nowhere"],
        &SMALL[2..],
        &["--out", "f"],
    ]
    .concat();
    let out = lens2logit(&args, d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("nowhere"),
        "{stderr}"
    );
    assert_eq!(left_in(d), Vec::<String>::new());

    // stopped after its first training: neither the finished run nor the folder stays
    let args = [
        &["experiment", "synthesis"],
        SMALL,
        &["--intensities", "100,10", "--out", "x"],
    ]
    .concat();
    let first_run_done = |d: &Path| {
        partial_of(d, "x").is_some_and(|p| {
            std::fs::read_dir(p.join("runs")).is_ok_and(|mut runs| {
                runs.any(|r| !r.unwrap().file_name().to_string_lossy().starts_with('.'))
            })
        })
    };
    let out = interrupted(&args, d, first_run_done);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped: x is as it was"), "{stderr}");
    assert_eq!(left_in(d), Vec::<String>::new());
}
