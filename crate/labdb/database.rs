//! SQLite under the lab log's tables. Queries only read: an authorizer refuses anything but
//! reading, and a progress handler stops a query that runs past its time.

use std::collections::BTreeSet;
use std::time::Duration;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags};
use serde::Serialize;
use serde_json::Value;
use web_time::Instant;

use crate::limits::{QUERY_MS, QUERY_ROWS, QUERY_VALUE_BYTES};
use crate::{Error, Result, RunRows};

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
/// The schema's version, kept in a stored database (`PRAGMA user_version`): one made by another
/// version is rebuilt from the runs rather than read with the wrong columns.
const SCHEMA_VERSION: i32 = 1;
/// The tables that hold a run's rows.
const TABLES: [&str; 6] = ["runs", "params", "metrics", "tags", "drift", "forensics"];

/// A query's answer: its columns and its rows (at most [`QUERY_ROWS`]; `truncated` says that
/// there were more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

impl Answer {
    /// The answer as CSV (a header, then the rows; an empty cell for NULL).
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let records = std::iter::once(self.columns.clone())
            .chain(self.rows.iter().map(|r| r.iter().map(cell).collect()));
        for record in records {
            writer
                .write_record(&record)
                .expect("CSV written into memory");
        }
        String::from_utf8(writer.into_inner().expect("CSV written into memory"))
            .expect("CSV of UTF-8 cells")
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

/// The lab log's database: in memory (`new`, natively `save` writes it to a file), or in a file
/// it keeps (`open`; in the page, a file in OPFS).
pub struct LabDb {
    connection: Connection,
}

impl LabDb {
    /// An empty database with the lab log's tables.
    pub fn new() -> Result<Self> {
        let connection = Connection::open_in_memory().map_err(|e| failed("opening", &e))?;
        Self::with_tables(connection)
    }

    /// The database in the file `path` (through the SQLite VFS `vfs`, where given), made where
    /// there is none and rebuilt empty where another schema version made it.
    pub fn open(path: &str, vfs: Option<&str>) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let opening = |e: rusqlite::Error| failed(&format!("opening {path} as"), &e);
        let connection = match vfs {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
            None => Connection::open_with_flags(path, flags),
        }
        .map_err(opening)?;
        let version: i32 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(opening)?;
        if version == SCHEMA_VERSION {
            return Self::bounded(connection);
        }
        // dropping every table and view leaves an empty file that the schema fills again
        let objects: Vec<(String, String)> = connection
            .prepare(
                "SELECT type, name FROM sqlite_schema WHERE type IN ('table', 'view') \
                 AND name NOT LIKE 'sqlite_%'",
            )
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(opening)?;
        for (kind, name) in objects {
            connection
                .execute_batch(&format!("DROP {kind} IF EXISTS \"{name}\""))
                .map_err(opening)?;
        }
        Self::with_tables(connection)
    }

    /// `connection` with the schema made in it.
    fn with_tables(connection: Connection) -> Result<Self> {
        connection
            .execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(|e| failed("creating the tables of", &e))?;
        Self::bounded(connection)
    }

    fn bounded(connection: Connection) -> Result<Self> {
        connection
            .set_limit(Limit::SQLITE_LIMIT_LENGTH, QUERY_VALUE_BYTES as i32)
            .map_err(|e| failed("bounding the values of", &e))?;
        Ok(Self { connection })
    }

    /// A database holding `runs`.
    pub fn from_rows<'a>(runs: impl IntoIterator<Item = &'a RunRows>) -> Result<Self> {
        let mut db = Self::new()?;
        for run in runs {
            db.add(run)?;
        }
        Ok(db)
    }

    /// The ids of the runs the database holds.
    pub fn run_ids(&self) -> Result<BTreeSet<String>> {
        let listing = |e: rusqlite::Error| failed("listing the runs of", &e);
        let mut statement = self
            .connection
            .prepare("SELECT run_id FROM runs")
            .map_err(listing)?;
        let ids = statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(listing);
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

    /// Adds a run's rows, or replaces those of the run of its id, in one transaction.
    pub fn add(&mut self, rows: &RunRows) -> Result<()> {
        let id = &rows.run.run_id;
        let adding = |e: rusqlite::Error| failed(&format!("adding run {id} to"), &e);
        let tx = self.connection.transaction().map_err(adding)?;
        delete_run(&tx, id).map_err(adding)?;
        insert_run(&tx, rows).map_err(adding)?;
        tx.commit().map_err(adding)
    }

    /// Removes the run `id` (nothing where it holds none).
    pub fn remove(&mut self, id: &str) -> Result<()> {
        delete_run(&self.connection, id).map_err(|e| failed(&format!("removing run {id} from"), &e))
    }

    /// The answer to `sql`, one query that only reads, stopped after [`QUERY_MS`].
    pub fn query(&mut self, sql: &str) -> Result<Answer> {
        self.query_within(sql, QUERY_MS)
    }

    /// The answer to `sql`, stopped after `time_ms`.
    pub fn query_within(&mut self, sql: &str, time_ms: u64) -> Result<Answer> {
        let started = Instant::now();
        let limit = Duration::from_millis(time_ms);
        let connection = &mut self.connection;
        let guard = |e: rusqlite::Error| failed("guarding", &e);
        connection
            .progress_handler(1000, Some(move || started.elapsed() > limit))
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
        std::fs::rename(&partial, path).map_err(|e| {
            Error(format!(
                "moving the database to {} failed: {e}",
                path.display()
            ))
        })
    }
}

fn failed(what: &str, e: &rusqlite::Error) -> Error {
    Error(format!("{what} the lab log's database failed: {e}"))
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
        Some(ErrorCode::AuthorizationForStatementDenied) => Error(format!(
            "the lab log only answers queries (SELECT, WITH): {e}"
        )),
        Some(ErrorCode::OperationInterrupted) => Error(format!(
            "the query ran longer than {:.1} s and was stopped: narrow it (a WHERE, a LIMIT) or \
             check a recursive query's end",
            time_ms as f64 / 1000.0
        )),
        Some(ErrorCode::TooBig) => Error(format!(
            "the query makes a value over {} MiB, more than the lab log answers: {e}",
            QUERY_VALUE_BYTES >> 20
        )),
        _ => Error(format!("the query failed: {e}")),
    };
    let mut statement = connection.prepare(sql).map_err(refused)?;
    if !statement.readonly() {
        return Err(Error(
            "the lab log only answers queries (SELECT, WITH): this statement would change it"
                .into(),
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
        if answer.rows.len() == QUERY_ROWS {
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

fn insert_run(connection: &Connection, rows: &RunRows) -> rusqlite::Result<()> {
    let r = &rows.run;
    connection.execute(
        "INSERT INTO runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            r.run_id,
            r.name,
            r.mode,
            r.task,
            r.model,
            r.view,
            r.dataset,
            r.device,
            r.status,
            r.start_time,
            r.end_time
        ],
    )?;
    let mut param = connection.prepare("INSERT OR REPLACE INTO params VALUES (?1, ?2, ?3)")?;
    for (key, value) in &rows.params {
        param.execute(params![r.run_id, key, value])?;
    }
    let mut tag = connection.prepare("INSERT OR REPLACE INTO tags VALUES (?1, ?2, ?3)")?;
    for (key, value) in &rows.tags {
        tag.execute(params![r.run_id, key, value])?;
    }
    let mut metric = connection.prepare("INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for p in &rows.metrics {
        metric.execute(params![r.run_id, p.key, p.value, p.step, p.timestamp])?;
    }
    let mut drift = connection.prepare("INSERT INTO drift VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for d in &rows.drift {
        drift.execute(params![
            r.run_id,
            r.view,
            d.test_view,
            d.intensity,
            d.metric
        ])?;
    }
    let mut forensics = connection.prepare("INSERT INTO forensics VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for f in &rows.forensics {
        forensics.execute(params![r.run_id, f.grp, f.before, f.after, f.drop])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
