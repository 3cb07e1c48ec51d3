//! What a record holds, for a user to see (and paste into a bug report) before fetching: its
//! files with sizes and checksums, and each archive's entries grouped by what discovery makes of
//! them. Only the central directory is read where the server answers byte ranges; otherwise the
//! archive streams past once, its entries skipped unread.

use std::fmt::Write;

use futures_util::StreamExt;

use super::archive::{read_archive, ArchiveEvent, MAX_NESTING};
use super::cancel::CancelToken;
use super::census::Census;
use super::discovery::{classify, Entry};
use super::ranged::{Http, RangeSource, RangedArchive};
use super::zenodo::{Opened, ZenodoClient};
use crate::Result;

/// The report: the record's files, then each archive's entries grouped. `progress` hears what is
/// being read.
pub async fn inspect_record(
    client: &ZenodoClient,
    random_access: bool,
    cancel: &CancelToken,
    progress: &mut dyn FnMut(String),
) -> Result<String> {
    let files = client.list_files(cancel).await?;
    let mut report = String::new();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let _ = writeln!(
        report,
        "record {} at {}: {} files, {total} bytes",
        client.record(),
        client.base(),
        files.len()
    );
    for f in &files {
        let checksum = f
            .md5
            .as_deref()
            .map_or("no checksum".into(), |m| format!("md5:{m}"));
        let _ = writeln!(report, "  {}  {} bytes  {checksum}", f.key, f.size);
    }
    let mut loose = Census::default();
    for f in &files {
        let entry = classify(&f.key);
        if !matches!(entry, Some(Entry::Archive)) {
            loose.add(&f.key, entry.as_ref());
            continue;
        }
        progress(format!("reading {}", f.key));
        let mut census = Census::default();
        let how = match client.open(f, random_access, cancel).await? {
            Opened::Ranged { url, size } => {
                let archive =
                    RangedArchive::open(Http { client, url }, &f.key, size, cancel).await?;
                let fetched = list_ranged(archive, &f.key, cancel, &mut census, 0).await?;
                format!("read by byte ranges: {fetched} of {size} bytes")
            }
            Opened::Stream(response) => {
                let cell = std::cell::RefCell::new(census);
                let key = f.key.clone();
                // every entry counted; only archives inside are opened (read as they stream)
                let classify_all = |path: &str| {
                    let full = format!("{key}/{path}");
                    let entry = cell.borrow_mut().classify(&full);
                    entry.filter(|e| matches!(e, Entry::Archive))
                };
                let mut warnings = Vec::new();
                read_archive(
                    &f.key,
                    response.bytes_stream().boxed_local(),
                    Some(f.size),
                    f.md5.as_deref(),
                    cancel,
                    &classify_all,
                    &mut |event| {
                        if let ArchiveEvent::Warning(w) = event {
                            warnings.push(w);
                        }
                        Ok(())
                    },
                )
                .await?;
                census = cell.into_inner();
                let mut how = format!(
                    "read whole as a stream ({} bytes; the server answers no byte ranges)",
                    f.size
                );
                for w in warnings {
                    let _ = write!(how, "\n  warning: {w}");
                }
                how
            }
        };
        let _ = writeln!(report, "\n{} ({how})", f.key);
        for line in census.lines() {
            let _ = writeln!(report, "{line}");
        }
    }
    if !loose.is_empty() {
        let _ = writeln!(report, "\nfiles of the record outside archives");
        for line in loose.lines() {
            let _ = writeln!(report, "{line}");
        }
    }
    Ok(report)
}

/// Counts an archive's entries, and those of the archives inside it (read whole, within the
/// entry limit); the bytes fetched.
async fn list_ranged<S: RangeSource>(
    mut archive: RangedArchive<S>,
    context: &str,
    cancel: &CancelToken,
    census: &mut Census,
    depth: usize,
) -> Result<u64> {
    let paths = archive.paths();
    let mut nested = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let full = format!("{context}/{path}");
        let entry = census.classify(&full);
        if matches!(entry, Some(Entry::Archive)) && depth < MAX_NESTING {
            nested.push((i, Entry::Archive));
        }
    }
    let mut inner = Vec::new();
    archive
        .read(nested, cancel, &mut |event| {
            if let ArchiveEvent::Entry { path, bytes, .. } = event {
                inner.push((path, bytes));
            }
            Ok(())
        })
        .await?;
    let fetched = archive.fetched();
    for (path, bytes) in inner {
        let name = format!("{context}/{path}");
        let nested = RangedArchive::open(&bytes[..], &name, bytes.len() as u64, cancel).await?;
        Box::pin(list_ranged(nested, &name, cancel, census, depth + 1)).await?;
    }
    Ok(fetched)
}
