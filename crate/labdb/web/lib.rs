//! The page's SQL module: the lab log's SQLite in the worker, apart from the main module so that
//! only a user of the SQL box loads it. The database is kept in the origin-private file system
//! (OPFS) through SQLite's sync-access-handle pool, so a visit finds the runs of the last one and
//! adds only the new; where OPFS is refused (another tab of the lab holds it, or the browser has
//! none) it is made in memory for the visit, and `storage` says why.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use lens2logit_labdb::{LabDb, RunRows};
use serde::Serialize;
use sqlite_wasm_vfs::sahpool::{install, OpfsSAHPoolCfgBuilder};
use wasm_bindgen::prelude::*;

/// The VFS's name, its folder in OPFS and the database's file in it.
const VFS: &str = "lens2logit-opfs";
const DIRECTORY: &str = ".lens2logit-lab-log";
const FILE: &str = "/lab-log.sqlite";
/// How long opening waits for OPFS's handles, in tries.
const OPFS_WAIT_MS: u64 = 3_000;
const OPFS_TRIES: usize = 12;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: lens2logit_labdb::Error) -> JsError {
    JsError::new(&e.0)
}

/// The lab log's SQL database in this worker, brought in step with the stored runs before each
/// query (`retain`, then `add` for each id it names).
#[wasm_bindgen]
pub struct LabLog {
    db: LabDb,
    storage: String,
}

#[wasm_bindgen]
impl LabLog {
    /// The database kept in this browser's OPFS, or, where that is refused, one in memory.
    pub async fn open() -> Result<LabLog, JsError> {
        let pool = OpfsSAHPoolCfgBuilder::new()
            .vfs_name(VFS)
            .directory(DIRECTORY)
            .build();
        // the handles of a worker that is ending (the page reloaded) are released soon after
        let installing = || install::<sqlite_wasm_rs::WasmOsCallback>(&pool, false);
        let waiting = ConstantBuilder::new()
            .with_delay(Duration::from_millis(OPFS_WAIT_MS / OPFS_TRIES as u64))
            .with_max_times(OPFS_TRIES);
        let kept = match installing.retry(waiting).await {
            Ok(_) => LabDb::open(FILE, Some(VFS)).map_err(|e| e.0),
            Err(e) => Err(format!(
                "OPFS refused it for {:.1} s, another tab of the lab may hold it: {e}",
                OPFS_WAIT_MS as f64 / 1000.0
            )),
        };
        Ok(match kept {
            Ok(db) => LabLog {
                db,
                storage: "kept in this browser (OPFS)".into(),
            },
            Err(why) => LabLog {
                db: LabDb::new().map_err(js_error)?,
                storage: format!("in memory for this visit ({why})"),
            },
        })
    }

    /// Where the database is kept, in words.
    #[wasm_bindgen(getter)]
    pub fn storage(&self) -> String {
        self.storage.clone()
    }

    /// Drops the runs not in `ids`; the ids to `add` before the next query.
    pub fn retain(&mut self, ids: Vec<String>) -> Result<Vec<String>, JsError> {
        self.db.retain(&ids).map_err(js_error)
    }

    /// Adds a run's rows (the main module's `sqlRows` of its zip), replacing any of its id.
    pub fn add(&mut self, rows: &str) -> Result<(), JsError> {
        let rows: RunRows = serde_json::from_str(rows)
            .map_err(|e| JsError::new(&format!("a run's rows for the lab log do not read: {e}")))?;
        self.db.add(&rows).map_err(js_error)
    }

    /// The answer to one read-only query: {columns, rows, truncated, csv}.
    pub fn query(&mut self, sql: &str) -> Result<JsValue, JsError> {
        let answer = self.db.query(sql).map_err(js_error)?;
        let csv = answer.to_csv();
        let value = serde_json::json!({
            "columns": answer.columns,
            "rows": answer.rows,
            "truncated": answer.truncated,
            "csv": csv,
        });
        value
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| JsError::new(&e.to_string()))
    }
}
