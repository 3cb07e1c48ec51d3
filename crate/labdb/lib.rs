//! The lab log as an SQL database: the paper's "virtual lab log" answered joins and aggregates
//! over runs. The tables follow MLflow's tracking tables, so that a query carries over, and hold
//! the runs' result tables cell by cell.
//!
//! A run reaches the database as its [`RunRows`], which the core makes from a run's files. SQLite
//! itself (feature `database`: `rusqlite`, bundled natively, over `sqlite-wasm-rs` in the page) is
//! apart from the core, so that the page's main module holds no SQLite: the worker loads the SQL
//! module (`lens2logit-labdb-web`) when the SQL box is first used.

use serde::{Deserialize, Serialize};

#[cfg(feature = "database")]
mod database;
#[cfg(feature = "database")]
pub use database::{Answer, LabDb};

/// What failed, in words a user can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

/// The bounds of a query.
pub mod limits {
    /// A query's time (ms), after which it is stopped, and the rows it shows at most.
    pub const QUERY_MS: u64 = 5_000;
    pub const QUERY_ROWS: usize = 10_000;
    /// Bytes of one text or blob a query may make (SQLite makes a large one in a single step,
    /// which the time bound cannot stop; the runs' own values are far smaller).
    pub const QUERY_VALUE_BYTES: usize = 16 << 20;
}

/// The questions the README, the CLI and the page offer to start from: a title and its query.
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

/// One run's rows in the lab log's tables (`run_id` is the run's, in each table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRows {
    pub run: RunRow,
    /// `params(key, value)`, under MLflow's keys
    pub params: Vec<(String, String)>,
    /// `tags(key, value)`
    pub tags: Vec<(String, String)>,
    pub metrics: Vec<MetricRow>,
    /// `drift(test_view, intensity, metric)`; its `train_view` is the run's view
    pub drift: Vec<DriftRow>,
    pub forensics: Vec<ForensicsRow>,
}

/// A row of `runs` (times in ms since 1970; `view` NULL for runs trained on no single view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub name: String,
    pub mode: String,
    pub task: String,
    pub model: String,
    pub view: Option<String>,
    pub dataset: String,
    pub device: String,
    pub status: String,
    pub start_time: i64,
    pub end_time: i64,
}

/// A logged point of a curve: `metrics(key, value, step, timestamp)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub key: String,
    pub value: f64,
    pub step: i64,
    pub timestamp: i64,
}

/// A cell of the drift table: the metric on `test_view` at `intensity` percent of the light.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftRow {
    pub test_view: String,
    pub intensity: i64,
    pub metric: f64,
}

/// A forensics group's metric before and after its attack, and the drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForensicsRow {
    pub grp: String,
    pub before: f64,
    pub after: f64,
    pub drop: f64,
}
