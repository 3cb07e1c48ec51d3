use super::*;
use crate::{DriftRow, ForensicsRow, MetricRow, RunRow};

fn run(id: &str, view: Option<&str>) -> RunRows {
    RunRows {
        run: RunRow {
            run_id: id.into(),
            name: format!("run {id}"),
            mode: "synthesis".into(),
            task: "classification".into(),
            model: "resnet_small".into(),
            view: view.map(String::from),
            dataset: "synthetic".into(),
            device: "cpu".into(),
            status: "finished".into(),
            start_time: 1_700_000_000_000,
            end_time: 1_700_000_060_000,
        },
        params: vec![("seed".into(), "1".into())],
        tags: vec![("lens2logit.view".into(), view.unwrap_or("").into())],
        metrics: (1..=3)
            .map(|step| MetricRow {
                key: "train/loss".into(),
                value: 1.0 / step as f64,
                step,
                timestamp: 1_700_000_000_000 + step,
            })
            .collect(),
        drift: [(100, 0.9), (10, 0.5)]
            .map(|(intensity, metric)| DriftRow {
                test_view: "other".into(),
                intensity,
                metric,
            })
            .into(),
        forensics: vec![ForensicsRow {
            grp: "debayer".into(),
            before: 0.9,
            after: 0.4,
            drop: 0.5,
        }],
    }
}

fn lab() -> LabDb {
    LabDb::from_rows(&[run("a", Some("v1")), run("b", None), run("c", Some("v2"))]).unwrap()
}

fn first(db: &mut LabDb, sql: &str) -> Value {
    db.query(sql).unwrap().rows[0][0].clone()
}

#[test]
fn every_row_lands_in_its_table() {
    let mut db = lab();
    for (table, count) in [
        ("runs", 3),
        ("params", 3),
        ("tags", 3),
        ("metrics", 9),
        ("latest_metrics", 3),
        ("drift", 6),
        ("forensics", 3),
    ] {
        assert_eq!(
            first(&mut db, &format!("SELECT count(*) FROM {table}")),
            count,
            "{table}"
        );
    }
    assert_eq!(
        first(
            &mut db,
            "SELECT value FROM latest_metrics WHERE run_id = 'a'"
        ),
        1.0 / 3.0
    );
    assert_eq!(
        first(&mut db, "SELECT train_view FROM drift WHERE run_id = 'a'"),
        "v1"
    );
    assert_eq!(
        first(&mut db, "SELECT view FROM runs WHERE run_id = 'b'"),
        Value::Null
    );
}

#[test]
fn writes_are_refused() {
    let mut db = lab();
    for sql in [
        "DELETE FROM runs",
        "INSERT INTO tags VALUES ('x', 'y', 'z')",
        "DROP TABLE runs",
        "CREATE TABLE x(a)",
        "ATTACH DATABASE 'elsewhere.sqlite' AS other",
        "PRAGMA query_only = 0",
        "UPDATE runs SET name = 'x'",
    ] {
        let e = db.query(sql).unwrap_err().to_string();
        assert!(e.contains("only answers queries"), "{sql}: {e}");
    }
    assert!(!std::path::Path::new("elsewhere.sqlite").exists());
    assert_eq!(db.run_ids().unwrap().len(), 3);
    // the guard is lifted between queries: the lab itself still writes
    db.remove("a").unwrap();
    assert_eq!(db.run_ids().unwrap().len(), 2);
}

#[test]
fn a_runaway_query_is_stopped_with_a_message() {
    let mut db = lab();
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                   SELECT count(*) FROM n";
    let started = Instant::now();
    let e = db.query_within(endless, 300).unwrap_err().to_string();
    assert!(e.contains("ran longer than 0.3 s and was stopped"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // the connection answers again afterwards
    assert_eq!(first(&mut db, "SELECT count(*) FROM runs"), 3);
}

#[test]
fn a_huge_value_is_refused_at_once() {
    let mut db = lab();
    let started = Instant::now();
    for sql in [
        "SELECT length(randomblob(900000000))",
        "SELECT zeroblob(1000000000)",
        "SELECT printf('%.*c', 100000000, 'x')",
    ] {
        let e = db.query(sql).unwrap_err().to_string();
        assert!(e.contains("makes a value over 16 MiB"), "{sql}: {e}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn the_rows_shown_are_bounded() {
    let mut db = lab();
    let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 20000) \
                SELECT i FROM n";
    let answer = db.query(many).unwrap();
    assert_eq!(answer.rows.len(), QUERY_ROWS);
    assert!(answer.truncated);
}

#[test]
fn a_bad_query_says_why() {
    let e = lab().query("SELEC 1").unwrap_err().to_string();
    assert!(
        e.contains("the query failed") && e.contains("syntax error"),
        "{e}"
    );
}

#[test]
fn the_database_follows_adds_replacements_and_removals() {
    let mut db = lab();
    let mut again = run("a", Some("v3"));
    again.drift.truncate(1);
    db.add(&again).unwrap();
    assert_eq!(first(&mut db, "SELECT count(*) FROM runs"), 3);
    assert_eq!(
        first(&mut db, "SELECT count(*) FROM drift WHERE run_id = 'a'"),
        1
    );
    assert_eq!(
        first(&mut db, "SELECT view FROM runs WHERE run_id = 'a'"),
        "v3"
    );
    db.remove("a").unwrap();
    for table in TABLES.into_iter().chain(["latest_metrics"]) {
        let sql = format!("SELECT count(*) FROM {table} WHERE run_id = 'a'");
        assert_eq!(first(&mut db, &sql), 0, "{table}");
    }
}

#[test]
fn retain_removes_the_runs_gone_and_names_the_new() {
    let mut db = lab();
    let ids = ["b", "c", "new"].map(String::from);
    assert_eq!(db.retain(&ids).unwrap(), ["new"]);
    let held: Vec<String> = db.run_ids().unwrap().into_iter().collect();
    assert_eq!(held, ["b", "c"]);
}

#[test]
fn a_kept_database_opens_again_with_its_runs_and_another_schema_is_rebuilt() {
    let dir = std::env::temp_dir().join(format!("labdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lab.sqlite").to_string_lossy().into_owned();
    let _ = std::fs::remove_file(&path);
    LabDb::open(&path, None)
        .unwrap()
        .add(&run("a", Some("v1")))
        .unwrap();
    assert_eq!(
        LabDb::open(&path, None).unwrap().run_ids().unwrap().len(),
        1
    );

    // a file from another version of the schema: emptied and made anew, not read
    let old = Connection::open(&path).unwrap();
    old.execute_batch("PRAGMA user_version = 0; CREATE TABLE stale(x);")
        .unwrap();
    drop(old);
    let mut db = LabDb::open(&path, None).unwrap();
    assert!(db.run_ids().unwrap().is_empty());
    let tables = db
        .query("SELECT count(*) FROM sqlite_schema WHERE name = 'stale'")
        .unwrap();
    assert_eq!(tables.rows[0][0], 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn answers_read_as_csv_table_and_json() {
    let mut db = lab();
    let answer = db
        .query("SELECT run_id, view FROM runs WHERE run_id IN ('a', 'b') ORDER BY run_id")
        .unwrap();
    assert_eq!(answer.to_csv(), "run_id,view\na,v1\nb,\n");
    assert_eq!(answer.to_table(), "run_id  view\na       v1\nb\n");
    assert_eq!(
        answer.to_json(),
        serde_json::json!([{"run_id": "a", "view": "v1"}, {"run_id": "b", "view": null}])
    );
}
