//! The lab log: every session kept as a run. A run is the files of one folder, by relative path;
//! the CLI's run folder, the run zip, the page's store and an MLflow run's artifacts all hold these
//! same files, so a run moves between them unchanged.
//!
//! Files of a run (only `run.json` is required; a run from an older lab may lack the others):
//! - `run.json`: [`RunMeta`], what the runs table lists and MLflow gets as params and tags;
//! - `summary.json`: the session's [`Summary`] (curves, drift table, forensics drops);
//! - `metrics.csv`: loss and metric at every step of the session;
//! - `tables/drift.csv`, `tables/forensics.csv`, `tables/corruptions.csv`: the result tables;
//! - `snapshots.safetensors`: the gradient snapshots (one `H x W` tensor per snapshot and stage);
//! - `adversarial/<group>.png`: forensics' adversarial processing of the first validation tile;
//! - `model.safetensors`, `isp.safetensors`: the trained task model and processing.

#[cfg(any(target_arch = "wasm32", feature = "net"))]
pub mod mlflow;
mod record;
mod select;
pub mod sql;
mod tables;
mod tracking;

use std::collections::BTreeMap;
use std::io::{Read, Write};

pub use record::RunMeta;
pub use select::{facets, select, Selection};
pub use tables::{drift_csv, parse_curves, results_csv, Curve};
pub use tracking::MetricPoint;

use crate::train::Snapshot;
use crate::{Error, Result};

/// The run's description, the one required file.
pub const META: &str = "run.json";
pub const SUMMARY: &str = "summary.json";
pub const METRICS: &str = "metrics.csv";
pub const SNAPSHOTS: &str = "snapshots.safetensors";
pub const MODEL: &str = "model.safetensors";
pub const ISP: &str = "isp.safetensors";
/// A camera fit's run: the twin (`--extra-view` reads it), its summary and its rendering.
pub const TWIN: &str = "twin.safetensors";
pub const TWIN_SUMMARY: &str = "twin.json";
pub const TWIN_RENDERED: &str = "rendered.png";

/// Most files in one run (a run has about a dozen; this bounds what an imported zip may hold).
pub(super) const MAX_FILES: usize = 4096;
/// Most bytes of all of a run's files together (the largest task model, ResNet-18, is 45 MB).
pub(super) const MAX_BYTES: u64 = 1 << 30;

/// A run: its files, by relative path ('/'-separated), checked to be a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    meta: RunMeta,
    files: BTreeMap<String, Vec<u8>>,
}

impl Run {
    /// A run from its files, as read from a folder, a zip, the browser's store or MLflow.
    pub fn from_files(files: BTreeMap<String, Vec<u8>>) -> Result<Self> {
        if files.len() > MAX_FILES {
            return Err(Error::invalid(format!(
                "a run holds at most {MAX_FILES} files; this one has {}",
                files.len()
            )));
        }
        let total: u64 = files.values().map(|b| b.len() as u64).sum();
        if total > MAX_BYTES {
            return Err(Error::invalid(format!(
                "a run holds at most {} MiB; this one has {} MiB",
                MAX_BYTES >> 20,
                total >> 20
            )));
        }
        for name in files.keys() {
            check_name(name)?;
        }
        let meta = files
            .get(META)
            .ok_or_else(|| Error::invalid(format!("not a run: it has no {META}")))?;
        let meta = RunMeta::parse(meta)?;
        Ok(Self { meta, files })
    }

    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// Every file, `run.json` among them, in path order.
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Adds or replaces a file beside the lab's own (the CLI keeps `config.json`, which
    /// `evaluate` reads). `run.json` is the run's own and cannot be replaced this way.
    pub fn insert(&mut self, name: &str, bytes: Vec<u8>) -> Result<()> {
        check_name(name)?;
        if name == META {
            return Err(Error::invalid(format!(
                "{META} is written by the lab itself"
            )));
        }
        self.files.insert(name.to_string(), bytes);
        Ok(())
    }

    /// Renames the run (the name is the runs table's label; the id stays).
    pub fn rename(&mut self, name: &str) -> Result<()> {
        self.meta.name = name.trim().to_string();
        self.files.insert(META.into(), self.meta.to_json()?);
        Ok(())
    }

    /// The session's summary as JSON (for the page's result views and comparisons).
    pub fn summary(&self) -> Result<serde_json::Value> {
        match self.file(SUMMARY) {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| Error::decode(format!("{} of run {}", SUMMARY, self.meta.id), e)),
            None => Ok(serde_json::Value::Null),
        }
    }

    /// The loss and metric curves, one per phase, from `metrics.csv`.
    pub fn curves(&self) -> Result<Vec<Curve>> {
        match self.file(METRICS) {
            Some(bytes) => parse_curves(bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The gradient snapshots, from `snapshots.safetensors`.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        match self.file(SNAPSHOTS) {
            Some(bytes) => record::read_snapshots(bytes),
            None => Ok(Vec::new()),
        }
    }

    /// The forensics groups with their adversarial images (PNG), in attack order.
    pub fn adversarial(&self) -> Vec<(String, &[u8])> {
        self.meta
            .adversarial
            .iter()
            .filter_map(|g| {
                self.file(&record::adversarial_path(g))
                    .map(|png| (g.clone(), png))
            })
            .collect()
    }

    /// The run as one zip (the format `lens2logit runs export` writes and the page downloads).
    pub fn to_zip(&self) -> Result<Vec<u8>> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        let failed = |e: &dyn std::fmt::Display| {
            Error::invalid(format!(
                "could not write run {} as a zip: {e}",
                self.meta.id
            ))
        };
        for (name, bytes) in &self.files {
            zip.start_file(name.as_str(), options)
                .map_err(|e| failed(&e))?;
            zip.write_all(bytes).map_err(|e| failed(&e))?;
        }
        let cursor = zip.finish().map_err(|e| failed(&e))?;
        Ok(cursor.into_inner())
    }

    /// A run from its zip, every entry's size and CRC checked while it inflates.
    pub fn from_zip(bytes: &[u8]) -> Result<Self> {
        Self::from_zip_within(bytes, MAX_BYTES, |_| true)
    }

    /// The files `names` of a run zip (`run.json` among them), the others left compressed.
    pub fn from_zip_files(bytes: &[u8], names: &[&str]) -> Result<Self> {
        Self::from_zip_within(bytes, MAX_BYTES, |name| names.contains(&name))
    }

    fn from_zip_within(bytes: &[u8], max_bytes: u64, keep: impl Fn(&str) -> bool) -> Result<Self> {
        let not_a_run = |e: &dyn std::fmt::Display| Error::decode("a run zip", e);
        let mut zip =
            zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| not_a_run(&e))?;
        if zip.len() > MAX_FILES {
            return Err(Error::invalid(format!(
                "a run holds at most {MAX_FILES} files; this zip has {}",
                zip.len()
            )));
        }
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        for i in 0..zip.len() {
            let entry = zip.by_index(i).map_err(|e| not_a_run(&e))?;
            if entry.is_dir() {
                continue;
            }
            let name = entry.name().map_err(|e| not_a_run(&e))?.to_string();
            check_name(&name)?;
            if !keep(&name) {
                continue;
            }
            // the declared size may lie: read one byte past what is left of the budget
            let left = max_bytes - total;
            let mut data = Vec::new();
            entry
                .take(left + 1)
                .read_to_end(&mut data)
                .map_err(|e| Error::decode(format!("{name} in a run zip"), e))?;
            total += data.len() as u64;
            if total > max_bytes {
                return Err(Error::invalid(format!(
                    "a run holds at most {} MiB; this zip inflates to more (at {name})",
                    max_bytes >> 20
                )));
            }
            files.insert(name, data);
        }
        Self::from_files(files)
    }
}

/// A run's file name: relative, '/'-separated, no `..`, printable, so that writing a run into a
/// folder can never leave that folder.
fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains(':')
        || name.chars().any(char::is_control)
        || name
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::invalid(format!(
            "a run may not hold a file named {name:?} (names are relative paths without '..')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> BTreeMap<String, Vec<u8>> {
        let meta = RunMeta::example();
        BTreeMap::from([(META.to_string(), meta.to_json().unwrap())])
    }

    #[test]
    fn a_run_survives_its_zip() {
        let mut files = minimal();
        files.insert(
            "tables/drift.csv".into(),
            b"intensity,a\n100,0.5\n".to_vec(),
        );
        files.insert(MODEL.into(), vec![7; 100_000]);
        let run = Run::from_files(files).unwrap();
        let back = Run::from_zip(&run.to_zip().unwrap()).unwrap();
        assert_eq!(back, run);
    }

    #[test]
    fn names_that_would_leave_the_folder_are_refused() {
        for name in [
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a\\b",
            "c:x",
            "a//b",
            "",
            "./a",
        ] {
            let mut files = minimal();
            files.insert(name.into(), vec![]);
            let e = Run::from_files(files).unwrap_err().to_string();
            assert!(e.contains("may not hold a file named"), "{name}: {e}");
        }
    }

    #[test]
    fn a_zip_without_run_json_is_no_run() {
        let mut files = minimal();
        files.remove(META);
        files.insert("x.txt".into(), vec![1]);
        let e = Run::from_files(files).unwrap_err().to_string();
        assert!(e.contains("has no run.json"), "{e}");
        let e = Run::from_zip(b"PK\x03\x04 not really")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a run zip"), "{e}");
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_budget() {
        // 64 MiB of zeros deflate to 64 kB: the reader stops at a 16 MiB budget
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file(META, options).unwrap();
        zip.write_all(&RunMeta::example().to_json().unwrap())
            .unwrap();
        zip.start_file("bomb.bin", options).unwrap();
        let block = vec![0u8; 1 << 20];
        for _ in 0..64 {
            zip.write_all(&block).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20);
        let e = Run::from_zip_within(&bytes, 16 << 20, |_| true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at most 16 MiB") && e.contains("bomb.bin"),
            "{e}"
        );
    }
}
