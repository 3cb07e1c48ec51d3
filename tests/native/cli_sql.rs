//! `lens2logit runs sql` and `runs db` on runs made by short sessions: the example questions
//! answer with the numbers the runs hold, writes and runaway queries are refused with a message,
//! the database follows an import and a delete, and `lab.sqlite` opens in the `sqlite3` shell.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cli::{lens2logit, lens2logit_ok, TINY_TRAIN};
use lens2logit_labdb::EXAMPLES;

/// A short session on a tiny synthetic set, measured at 100 % and 10 % of the light.
fn session(dir: &Path, out: &str, mode: &str, seed: &str) {
    let args = [
        "--intensities",
        "100,10",
        "--steps",
        "2",
        "--forensic-steps",
        "1",
        "--group",
        "each",
        "--seed",
        seed,
        "--mode",
        mode,
        "--out",
        out,
    ];
    lens2logit_ok(&[TINY_TRAIN, &args].concat(), dir);
}

/// The answer to `query` as JSON rows.
fn sql(dir: &Path, query: &str) -> Vec<Value> {
    let out = lens2logit(&["runs", "sql", "--format", "json", query], dir);
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    answer.as_array().unwrap().clone()
}

fn sql_error(dir: &Path, query: &str) -> String {
    let out = lens2logit(&["runs", "sql", query], dir);
    assert!(!out.status.success(), "{query} was answered");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-4
}

#[test]
fn the_example_questions_answer_from_the_runs_and_follow_imports_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    session(d, "runs/s1", "synthesis", "1");
    session(d, "runs/s2", "synthesis", "2");
    session(d, "runs/f", "forensics", "1");

    // 1. the training view's drop from 100 % to 10 % of the light, averaged over the two seeds
    let summaries = ["s1", "s2"].map(|r| json(&d.join("runs").join(r).join("summary.json")));
    let meta = json(&d.join("runs/s1/run.json"));
    let view = meta["view"].as_str().unwrap();
    let drops = summaries.each_ref().map(|s| {
        let own = &s["views"][view];
        own["100"].as_f64().unwrap() - own["10"].as_f64().unwrap()
    });
    let rows = sql(d, EXAMPLES[0].1);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["train_view"], view);
    assert_eq!(rows[0]["runs"], 2);
    assert!(
        close(&rows[0]["drop_at_10"], (drops[0] + drops[1]) / 2.0),
        "{rows:?} {drops:?}"
    );

    // 2. the forensics group with the largest drop (all of them where several tie)
    let forensics = json(&d.join("runs/f/summary.json"));
    let drops: Vec<(String, f64)> = forensics["forensics"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(g, _)| *g != "all")
        .map(|(g, v)| (g.clone(), v[2].as_f64().unwrap()))
        .collect();
    assert!(drops.len() > 1, "{forensics}");
    let largest = drops.iter().map(|d| d.1).fold(f64::MIN, f64::max);
    let mut firsts: Vec<&str> = drops
        .iter()
        .filter(|d| d.1 == largest)
        .map(|d| d.0.as_str())
        .collect();
    firsts.sort_unstable();
    let rows = sql(d, EXAMPLES[1].1);
    let mut answered: Vec<&str> = rows.iter().map(|r| r["grp"].as_str().unwrap()).collect();
    answered.sort_unstable();
    assert_eq!(answered, firsts, "{rows:?}");
    assert!(rows.iter().all(|r| close(&r["drop_"], largest)), "{rows:?}");

    // 3. the best final validation accuracy per model and mode
    let best = ["s1", "s2"]
        .map(|r| {
            json(&d.join("runs").join(r).join("run.json"))["metrics"]["val_accuracy"]
                .as_f64()
                .unwrap()
        })
        .into_iter()
        .fold(f64::MIN, f64::max);
    let rows = sql(d, EXAMPLES[2].1);
    let synthesis = rows.iter().find(|r| r["mode"] == "synthesis").unwrap();
    assert!(close(&synthesis["best"], best), "{rows:?}");
    assert_eq!(synthesis["runs"], 2);

    // the per-step curves are all there, under MLflow's keys
    let steps = sql(d, "SELECT count(*) AS n FROM metrics WHERE run_id = (SELECT run_id FROM runs WHERE mode = 'synthesis' LIMIT 1) AND key LIKE '%/loss'");
    let lines = std::fs::read_to_string(d.join("runs/s1/metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert_eq!(steps[0]["n"], lines);

    writes_and_runaways_are_refused(d);
    follows_deletes_and_imports_and_opens_in_sqlite3(d);
}

/// A write, a query that does not end and a bad query are refused with a message.
fn writes_and_runaways_are_refused(d: &Path) {
    for write in [
        "DELETE FROM runs",
        "CREATE TABLE t(x)",
        "ATTACH 'x.sqlite' AS x",
    ] {
        let e = sql_error(d, write);
        assert!(e.contains("only answers queries"), "{write}: {e}");
    }
    let e = sql_error(
        d,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n",
    );
    assert!(e.contains("and was stopped"), "{e}");
    let e = sql_error(d, "SELECT x FROM nowhere");
    assert!(e.contains("no such table: nowhere"), "{e}");
}

/// The database follows a delete and an import, and `runs db` writes it as a file for any SQLite
/// tool.
fn follows_deletes_and_imports_and_opens_in_sqlite3(d: &Path) {
    // the database follows a delete and an import
    let count = |d: &Path| {
        sql(d, "SELECT count(*) AS n FROM runs")[0]["n"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count(d), 3);
    lens2logit_ok(&["runs", "export", "runs/s2", "--out", "s2.zip"], d);
    std::fs::remove_dir_all(d.join("runs/s2")).unwrap();
    assert_eq!(count(d), 2);
    lens2logit_ok(&["runs", "import", "s2.zip"], d);
    assert_eq!(count(d), 3);

    // the database as a file
    lens2logit_ok(&["runs", "db", "--out", "lab.sqlite"], d);
    let shell = Command::new("sqlite3")
        .arg(d.join("lab.sqlite"))
        .arg("SELECT count(*) FROM runs; SELECT count(*) FROM drift WHERE intensity = 10;")
        .output()
        .expect("the sqlite3 shell (Debian's sqlite3)");
    assert!(
        shell.status.success(),
        "{}",
        String::from_utf8_lossy(&shell.stderr)
    );
    let counts = String::from_utf8(shell.stdout).unwrap();
    assert_eq!(counts.lines().next(), Some("3"), "{counts}");
    assert_eq!(
        counts.lines().nth(1),
        Some("24"),
        "two synthesis runs x 12 views: {counts}"
    );
    assert!(!d.join("lab.partial.sqlite").exists());
}
