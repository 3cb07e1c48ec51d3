//! The lab log as an SQL database (SQLite, bundled natively and sqlite-wasm-rs in the page's
//! worker): the paper's "virtual lab log" answered joins and aggregates over runs. The tables
//! follow MLflow's tracking tables, so that a query carries over, and hold the runs' result tables
//! cell by cell. Queries only read: an authorizer refuses anything but reading, and a progress
//! handler stops a query that runs past its time.

use std::collections::BTreeSet;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode};
use serde::Serialize;
use serde_json::Value;

use super::Run;
use crate::codecs::csv_text;
use crate::spec::limits;
use crate::train::job::now_ms;
use crate::train::Summary;
use crate::{Error, Result};

/// The tables, as the README documents them; `latest_metrics` is derived from `metrics` (each
/// key's value at its last step: SQLite takes a bare column from the row of `max`).
const SCHEMA: &str = "
CREATE TABLE runs(run_id TEXT PRIMARY KEY, name TEXT, mode TEXT, task TEXT, model TEXT,
  view TEXT, dataset TEXT, device TEXT, status TEXT, start_time INTEGER, end_time INTEGER);
CREATE TABLE params(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));
CREATE TABLE metrics(run_id TEXT, key TEXT, value REAL, step INTEGER, timestamp INTEGER);
CREATE INDEX metrics_by_run ON metrics(run_id, key);
CREATE VIEW latest_metrics AS
  SELECT run_id, key, value, max(step) AS step FROM metrics GROUP BY run_id, key;
CREATE TABLE tags(run_id TEXT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));
CREATE TABLE drift(run_id TEXT, train_view TEXT, test_view TEXT, intensity INTEGER, metric REAL);
CREATE TABLE forensics(run_id TEXT, grp TEXT, before REAL, after REAL, drop_ REAL);
";
/// The tables that hold a run's rows.
const TABLES: [&str; 6] = ["runs", "params", "metrics", "tags", "drift", "forensics"];

/// The files of a run the database reads (the weights and images stay unread).
pub const RUN_FILES: [&str; 3] = [super::META, super::SUMMARY, super::METRICS];

/// The questions the README and the page offer to start from: a title and its query.
pub const EXAMPLES: [(&str, &str); 3] = [
    (
        "Which training view drops least at 10 % light, averaged over seeds",
        "SELECT hi.train_view, avg(hi.metric - lo.metric) AS drop_at_10, \
         count(DISTINCT hi.run_id) AS runs\n\
         FROM drift hi JOIN drift lo\n  \
         ON lo.run_id = hi.run_id AND lo.test_view = hi.test_view\n\
         WHERE hi.test_view = hi.train_view AND hi.intensity = 100 AND lo.intensity = 10\n\
         GROUP BY hi.train_view ORDER BY drop_at_10",
    ),
    (
        "Which forensics group ranks first for each model",
        "SELECT model, grp, drop_ FROM (\n  \
         SELECT r.model, f.grp, avg(f.drop_) AS drop_,\n    \
         rank() OVER (PARTITION BY r.model ORDER BY avg(f.drop_) DESC) AS place\n  \
         FROM forensics f JOIN runs r USING (run_id)\n  \
         WHERE f.grp <> 'all' GROUP BY r.model, f.grp)\n\
         WHERE place = 1 ORDER BY model",
    ),
    (
        "The best validation metric per model and mode",
        "SELECT r.model, r.mode, m.key, max(m.value) AS best, count(*) AS runs\n\
         FROM latest_metrics m JOIN runs r USING (run_id)\n\
         WHERE m.key IN ('val_accuracy', 'val_iou')\n\
         GROUP BY r.model, r.mode, m.key ORDER BY best DESC",
    ),
];

/// A query's answer: its columns and its rows (at most [`limits::QUERY_ROWS`]; `truncated` says
/// that there were more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

impl Answer {
    /// The answer as CSV (a header, then the rows; an empty cell for NULL).
    pub fn to_csv(&self) -> String {
        csv_text(&self.columns, self.rows.iter().map(|r| r.iter().map(cell)))
    }

    /// The answer as a text table, columns aligned.
    pub fn to_table(&self) -> String {
        let cells: Vec<Vec<String>> = std::iter::once(self.columns.clone())
            .chain(self.rows.iter().map(|r| r.iter().map(cell).collect()))
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &cells {
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(v, &w)| format!("{v:<w$}"))
                .collect();
            out += padded.join("  ").trim_end();
            out += "\n";
        }
        out
    }

    /// The answer as a JSON array of objects, a key per column.
    pub fn to_json(&self) -> Value {
        let objects = self.rows.iter().map(|row| {
            let pairs = self.columns.iter().cloned().zip(row.iter().cloned());
            Value::Object(pairs.collect())
        });
        Value::Array(objects.collect())
    }
}

/// A cell as text: numbers and text as they are, NULL empty.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The lab log's database, in memory (natively and in the page; `save` writes it to a file).
pub struct LabDb {
    connection: Connection,
}

impl LabDb {
    /// An empty database with the lab log's tables.
    pub fn new() -> Result<Self> {
        let connection = Connection::open_in_memory().map_err(|e| failed("opening", &e))?;
        connection
            .set_limit(Limit::SQLITE_LIMIT_LENGTH, limits::QUERY_VALUE_BYTES as i32)
            .map_err(|e| failed("bounding the values of", &e))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(|e| failed("creating the tables of", &e))?;
        Ok(Self { connection })
    }

    /// A database holding `runs`.
    pub fn from_runs<'a>(runs: impl IntoIterator<Item = &'a Run>) -> Result<Self> {
        let mut db = Self::new()?;
        for run in runs {
            db.add(run)?;
        }
        Ok(db)
    }

    /// The ids of the runs the database holds.
    pub fn run_ids(&self) -> Result<BTreeSet<String>> {
        let mut statement = self
            .connection
            .prepare("SELECT run_id FROM runs")
            .map_err(|e| failed("listing the runs of", &e))?;
        let ids = statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| failed("listing the runs of", &e));
        ids
    }

    /// Keeps only the runs `ids`; the ids it does not hold yet, for the caller to add.
    pub fn retain(&mut self, ids: &[String]) -> Result<Vec<String>> {
        let held = self.run_ids()?;
        for gone in held.iter().filter(|id| !ids.contains(id)) {
            self.remove(gone)?;
        }
        Ok(ids
            .iter()
            .filter(|id| !held.contains(*id))
            .cloned()
            .collect())
    }

    /// Adds `run`, or replaces the run of its id.
    pub fn add(&mut self, run: &Run) -> Result<()> {
        let id = run.meta().id.clone();
        let summary: Summary = match run.file(super::SUMMARY) {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| Error::decode(format!("{} of run {id}", super::SUMMARY), e))?,
            None => Summary::default(),
        };
        let history = run.metric_history()?;
        let adding = |e: rusqlite::Error| failed(&format!("adding run {id} to"), &e);
        let tx = self.connection.transaction().map_err(adding)?;
        delete_run(&tx, &id).map_err(adding)?;
        insert_run(&tx, run, &summary, &history).map_err(adding)?;
        tx.commit().map_err(adding)
    }

    /// Removes the run `id` (nothing where it holds none).
    pub fn remove(&mut self, id: &str) -> Result<()> {
        delete_run(&self.connection, id).map_err(|e| failed(&format!("removing run {id} from"), &e))
    }

    /// The answer to `sql`, one query that only reads, stopped after `limits::QUERY_MS`.
    pub fn query(&mut self, sql: &str) -> Result<Answer> {
        self.query_within(sql, limits::QUERY_MS)
    }

    /// The answer to `sql`, stopped after `time_ms`.
    pub fn query_within(&mut self, sql: &str, time_ms: u64) -> Result<Answer> {
        let deadline = now_ms().saturating_add(time_ms);
        let connection = &mut self.connection;
        let guard = |e: rusqlite::Error| failed("guarding", &e);
        connection
            .progress_handler(1000, Some(move || now_ms() > deadline))
            .map_err(guard)?;
        connection.authorizer(Some(reading_only)).map_err(guard)?;
        let answer = answer(connection, sql, time_ms);
        connection
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
            .map_err(guard)?;
        connection
            .progress_handler(0, None::<fn() -> bool>)
            .map_err(guard)?;
        answer
    }

    /// The database as a file any SQLite tool opens, written whole or not at all.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let partial = path.with_extension("partial.sqlite");
        let _ = std::fs::remove_file(&partial);
        self.connection
            .execute("VACUUM INTO ?1", [partial.to_string_lossy()])
            .map_err(|e| failed(&format!("writing {} from", partial.display()), &e))?;
        std::fs::rename(&partial, path)
            .map_err(|e| Error::io(format!("moving the database to {}", path.display()), e))
    }
}

fn failed(what: &str, e: &rusqlite::Error) -> Error {
    Error::invalid(format!("{what} the lab log's database failed: {e}"))
}

/// The authorizer of queries: reading tables, calling functions, recursive queries.
fn reading_only(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => Authorization::Allow,
        _ => Authorization::Deny,
    }
}

/// Runs `sql` (under the guards `query_within` set).
fn answer(connection: &Connection, sql: &str, time_ms: u64) -> Result<Answer> {
    let refused = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::AuthorizationForStatementDenied) => Error::invalid(format!(
            "the lab log only answers queries (SELECT, WITH): {e}"
        )),
        Some(ErrorCode::OperationInterrupted) => Error::invalid(format!(
            "the query ran longer than {:.1} s and was stopped: narrow it (a WHERE, a LIMIT) or \
             check a recursive query's end",
            time_ms as f64 / 1000.0
        )),
        Some(ErrorCode::TooBig) => Error::invalid(format!(
            "the query makes a value over {} MiB, more than the lab log answers: {e}",
            limits::QUERY_VALUE_BYTES >> 20
        )),
        _ => Error::invalid(format!("the query failed: {e}")),
    };
    let mut statement = connection.prepare(sql).map_err(refused)?;
    if !statement.readonly() {
        return Err(Error::invalid(
            "the lab log only answers queries (SELECT, WITH): this statement would change it",
        ));
    }
    let columns: Vec<String> = statement.column_names().map(String::from).collect();
    let mut rows = statement.query([]).map_err(refused)?;
    let mut answer = Answer {
        columns,
        rows: Vec::new(),
        truncated: false,
    };
    while let Some(row) = rows.next().map_err(refused)? {
        if answer.rows.len() == limits::QUERY_ROWS {
            answer.truncated = true;
            break;
        }
        let values = (0..answer.columns.len()).map(|c| row.get_ref(c).map(json));
        answer
            .rows
            .push(values.collect::<rusqlite::Result<_>>().map_err(refused)?);
    }
    Ok(answer)
}

fn json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(r) => serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("({} bytes)", b.len()).into(),
    }
}

fn delete_run(connection: &Connection, id: &str) -> rusqlite::Result<()> {
    for table in TABLES {
        connection.execute(&format!("DELETE FROM {table} WHERE run_id = ?1"), [id])?;
    }
    Ok(())
}

fn insert_run(
    connection: &Connection,
    run: &Run,
    summary: &Summary,
    history: &[super::tracking::MetricPoint],
) -> rusqlite::Result<()> {
    let m = run.meta();
    let view = (!m.view.is_empty()).then_some(m.view.as_str());
    connection.execute(
        "INSERT INTO runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            m.id,
            m.name,
            m.mode,
            m.task,
            m.model,
            view,
            m.dataset,
            m.device,
            m.status,
            m.started_ms as i64,
            m.finished_ms as i64
        ],
    )?;
    let mut param = connection.prepare("INSERT OR REPLACE INTO params VALUES (?1, ?2, ?3)")?;
    for (key, value) in &m.params {
        param.execute(params![m.id, super::tracking::key(key), value])?;
    }
    let mut tag = connection.prepare("INSERT OR REPLACE INTO tags VALUES (?1, ?2, ?3)")?;
    for (key, value) in run.tags() {
        tag.execute(params![m.id, key, value])?;
    }
    let mut metric = connection.prepare("INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for p in history {
        metric.execute(params![
            m.id,
            p.key,
            p.value,
            p.step as i64,
            p.timestamp_ms as i64
        ])?;
    }
    let mut drift = connection.prepare("INSERT INTO drift VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (test_view, row) in &summary.views {
        for (&intensity, &value) in row {
            drift.execute(params![m.id, view, test_view, intensity, f64::from(value)])?;
        }
    }
    let mut forensics = connection.prepare("INSERT INTO forensics VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (group, &(before, after, drop)) in &summary.forensics {
        forensics.execute(params![
            m.id,
            group,
            f64::from(before),
            f64::from(after),
            f64::from(drop)
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runs::{RunMeta, META, METRICS, SUMMARY};

    /// A synthesis run trained on `view` with `seed`: its own view at `own` (100 %) and `own_10`
    /// (10 %), every other view lower.
    fn synthesis(id: &str, view: &str, seed: u64, own: f32, own_10: f32) -> Run {
        let mut meta = RunMeta::example();
        meta.id = id.into();
        meta.view = view.into();
        meta.params.insert("seed".into(), seed.to_string());
        meta.metrics = BTreeMap::from([("val_accuracy".into(), f64::from(own))]);
        let mut summary = Summary {
            phase_order: vec!["frozen, static".into()],
            ..Summary::default()
        };
        summary
            .curves
            .insert("frozen, static".into(), vec![(1, 1.5, 0.25), (2, 1.0, own)]);
        summary
            .views
            .insert(view.into(), BTreeMap::from([(100, own), (10, own_10)]));
        summary
            .views
            .insert("other".into(), BTreeMap::from([(100, 0.3), (10, 0.2)]));
        let csv = "phase,step,loss,metric\n\"frozen, static\",1,1.5,0.25\n";
        Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json().unwrap()),
            (SUMMARY.to_string(), serde_json::to_vec(&summary).unwrap()),
            (
                METRICS.to_string(),
                format!("{csv}\"frozen, static\",2,1.0,{own}\n").into_bytes(),
            ),
        ]))
        .unwrap()
    }

    fn forensics(id: &str, model: &str, drops: &[(&str, f32)]) -> Run {
        let mut meta = RunMeta::example();
        meta.id = id.into();
        meta.mode = "forensics".into();
        meta.model = model.into();
        meta.view = String::new();
        let mut summary = Summary::default();
        for &(group, drop) in drops {
            summary
                .forensics
                .insert(group.into(), (0.9, 0.9 - drop, drop));
        }
        Run::from_files(BTreeMap::from([
            (META.to_string(), meta.to_json().unwrap()),
            (SUMMARY.to_string(), serde_json::to_vec(&summary).unwrap()),
        ]))
        .unwrap()
    }

    fn lab() -> LabDb {
        LabDb::from_runs(&[
            synthesis("a1", "bilinear-none-none", 1, 0.9, 0.5),
            synthesis("a2", "bilinear-none-none", 2, 0.8, 0.6),
            synthesis("b1", "malvar2004-sharpening_filter-none", 1, 0.85, 0.75),
            forensics(
                "f1",
                "resnet_small",
                &[("debayer", 0.5), ("gamma_correct", 0.1), ("all", 0.7)],
            ),
            forensics(
                "f2",
                "resnet18",
                &[("debayer", 0.1), ("gamma_correct", 0.3)],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn the_example_questions_get_the_numbers_the_runs_hold() {
        let mut db = lab();
        let [(_, views), (_, groups), (_, best)] = EXAMPLES;
        let answer = db.query(views).unwrap();
        assert_eq!(answer.columns, ["train_view", "drop_at_10", "runs"]);
        // b: 0.85 - 0.75; a: the mean of 0.4 and 0.2 over its two seeds
        let rows: Vec<(String, f64, i64)> = answer
            .rows
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().into(),
                    r[1].as_f64().unwrap(),
                    r[2].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows[0].0, "malvar2004-sharpening_filter-none");
        assert!((rows[0].1 - 0.1).abs() < 1e-6, "{rows:?}");
        assert_eq!((rows[1].0.as_str(), rows[1].2), ("bilinear-none-none", 2));
        assert!((rows[1].1 - 0.3).abs() < 1e-6, "{rows:?}");

        let answer = db.query(groups).unwrap();
        let firsts: Vec<(&str, &str)> = answer
            .rows
            .iter()
            .map(|r| (r[0].as_str().unwrap(), r[1].as_str().unwrap()))
            .collect();
        assert_eq!(
            firsts,
            [("resnet18", "gamma_correct"), ("resnet_small", "debayer")]
        );

        let answer = db.query(best).unwrap();
        // the forensics runs keep the example's final 0.5
        assert_eq!(answer.rows.len(), 3, "{answer:?}");
        assert_eq!(
            answer.rows[0][..3],
            ["resnet_small", "synthesis", "val_accuracy"]
        );
        assert!((answer.rows[0][3].as_f64().unwrap() - 0.9).abs() < 1e-6);
        assert_eq!(answer.rows[0][4], 3);
    }

    #[test]
    fn the_metrics_are_every_logged_step_under_mlflows_keys() {
        let mut db = lab();
        let answer = db
            .query("SELECT key, value, step FROM metrics WHERE run_id = 'a1' ORDER BY step, key")
            .unwrap();
        let keys: Vec<&str> = answer.rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "frozen_ static/accuracy",
                "frozen_ static/loss",
                "frozen_ static/accuracy",
                "frozen_ static/loss",
                "val_accuracy"
            ]
        );
        let latest = db
            .query("SELECT value, step FROM latest_metrics WHERE run_id = 'a1' AND key = 'frozen_ static/loss'")
            .unwrap();
        assert_eq!(
            latest.rows,
            [[serde_json::json!(1.0), serde_json::json!(2)]]
        );
        let tag = db
            .query("SELECT value FROM tags WHERE run_id = 'b1' AND key = 'lens2logit.view'")
            .unwrap();
        assert_eq!(tag.rows[0][0], "malvar2004-sharpening_filter-none");
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
        assert_eq!(db.run_ids().unwrap().len(), 5);
        // the guard is lifted between queries: the lab itself still writes
        db.remove("a1").unwrap();
        assert_eq!(db.run_ids().unwrap().len(), 4);
    }

    #[test]
    fn a_runaway_query_is_stopped_with_a_message() {
        let mut db = lab();
        let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                       SELECT count(*) FROM n";
        let started = now_ms();
        let e = db.query_within(endless, 300).unwrap_err().to_string();
        assert!(e.contains("ran longer than 0.3 s and was stopped"), "{e}");
        assert!(now_ms() - started < 5_000);
        // the connection answers again afterwards
        assert_eq!(db.query("SELECT count(*) FROM runs").unwrap().rows[0][0], 5);
    }

    #[test]
    fn a_huge_value_is_refused_at_once() {
        let mut db = lab();
        let started = now_ms();
        for sql in [
            "SELECT length(randomblob(900000000))",
            "SELECT zeroblob(1000000000)",
            "SELECT printf('%.*c', 100000000, 'x')",
        ] {
            let e = db.query(sql).unwrap_err().to_string();
            assert!(e.contains("makes a value over 16 MiB"), "{sql}: {e}");
        }
        assert!(now_ms() - started < 1_000);
    }

    #[test]
    fn the_rows_shown_are_bounded() {
        let mut db = lab();
        let many = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 20000) \
                    SELECT i FROM n";
        let answer = db.query(many).unwrap();
        assert_eq!(answer.rows.len(), limits::QUERY_ROWS);
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
        db.add(&synthesis("a1", "bilinear-none-none", 1, 0.5, 0.5))
            .unwrap();
        let count = |db: &mut LabDb, sql: &str| db.query(sql).unwrap().rows[0][0].clone();
        assert_eq!(count(&mut db, "SELECT count(*) FROM runs"), 5);
        assert_eq!(
            count(&mut db, "SELECT count(*) FROM drift WHERE run_id = 'a1'"),
            4
        );
        db.remove("a1").unwrap();
        for table in TABLES.into_iter().chain(["latest_metrics"]) {
            let sql = format!("SELECT count(*) FROM {table} WHERE run_id = 'a1'");
            assert_eq!(count(&mut db, &sql), 0, "{table}");
        }
    }

    #[test]
    fn retain_removes_the_runs_gone_and_names_the_new() {
        let mut db = lab();
        let ids = ["a2", "b1", "f1", "f2", "new"].map(String::from);
        assert_eq!(db.retain(&ids).unwrap(), ["new"]);
        let held: Vec<String> = db.run_ids().unwrap().into_iter().collect();
        assert_eq!(held, ["a2", "b1", "f1", "f2"]);
    }

    #[test]
    fn a_run_zip_gives_the_tables_without_its_weights() {
        let run = synthesis("a1", "bilinear-none-none", 1, 0.9, 0.5);
        let mut files: BTreeMap<String, Vec<u8>> =
            run.files().map(|(k, v)| (k.into(), v.to_vec())).collect();
        files.insert(crate::runs::MODEL.into(), vec![1; 1000]);
        let zip = Run::from_files(files).unwrap().to_zip().unwrap();
        let tables = Run::from_zip_files(&zip, &RUN_FILES).unwrap();
        assert_eq!(tables, run);
    }

    #[test]
    fn answers_read_as_csv_table_and_json() {
        let mut db = lab();
        let answer = db
            .query("SELECT run_id, view FROM runs WHERE run_id IN ('a1', 'f1') ORDER BY run_id")
            .unwrap();
        assert_eq!(answer.to_csv(), "run_id,view\na1,bilinear-none-none\nf1,\n");
        assert_eq!(
            answer.to_table(),
            "run_id  view\na1      bilinear-none-none\nf1\n"
        );
        assert_eq!(
            answer.to_json(),
            serde_json::json!([{"run_id": "a1", "view": "bilinear-none-none"}, {"run_id": "f1", "view": null}])
        );
    }
}
