//! What a record holds, for a user to see (and paste into a bug report) before fetching: its
//! files with sizes and checksums, each archive's entries grouped by what discovery makes of
//! them, and the entries a fetch skips, each with its reason. Only the central directory is read
//! where the server answers byte ranges (an entry is skipped there for the size it states);
//! otherwise the archive streams past once, each entry checked as a stream fetch checks it
//! (size, CRC) and dropped.

use std::fmt::Write;

use futures_util::StreamExt;

use super::archive::{over_the_limit, read_archive, skipped, ArchiveEvent, MAX_NESTING};
use super::cancel::CancelToken;
use super::census::Census;
use super::discovery::{classify, Entry};
use super::ranged::{Http, RangeSource, RangedArchive};
use super::zenodo::{Opened, ZenodoClient};
use crate::Result;

/// The report: the record's files, then each archive's entries grouped and what a fetch skips of
/// them. `progress` hears what is being read.
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
        let mut warnings = Vec::new();
        let how = match client.open(f, random_access, cancel).await? {
            Opened::Ranged { url, size } => {
                let archive =
                    RangedArchive::open(Http { client, url }, &f.key, size, cancel).await?;
                let listing = Listing {
                    cancel,
                    census: &mut census,
                    warnings: &mut warnings,
                };
                let fetched = listing.ranged(archive, &f.key, 0).await?;
                format!("read by byte ranges: {fetched} of {size} bytes")
            }
            Opened::Stream(response) => {
                let cell = std::cell::RefCell::new(census);
                let key = f.key.clone();
                // every entry the lab knows is read, so what a fetch skips is named; archives
                // inside are read as they stream
                let classify_all = |path: &str| {
                    let full = format!("{key}/{path}");
                    cell.borrow_mut().classify(&full)
                };
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
                format!(
                    "read whole as a stream ({} bytes; the server answers no byte ranges)",
                    f.size
                )
            }
        };
        let _ = writeln!(report, "\n{} ({how})", f.key);
        for line in census.lines() {
            let _ = writeln!(report, "{line}");
        }
        for w in warnings {
            let _ = writeln!(report, "  warning: {w}");
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

/// What listing an archive by random access adds to: the entries counted, what a fetch skips.
struct Listing<'a> {
    cancel: &'a CancelToken,
    census: &'a mut Census,
    warnings: &'a mut Vec<String>,
}

impl Listing<'_> {
    /// Counts an archive's entries, and those of the archives inside it (read whole, within the
    /// entry limit), naming those a fetch skips for their size; the bytes fetched.
    async fn ranged<S: RangeSource>(
        self,
        mut archive: RangedArchive<S>,
        context: &str,
        depth: usize,
    ) -> Result<u64> {
        let mut nested = Vec::new();
        for (i, path) in archive.paths().iter().enumerate() {
            let entry = self.census.classify(&format!("{context}/{path}"));
            match entry {
                Some(Entry::Archive) if depth < MAX_NESTING => nested.push((i, Entry::Archive)),
                Some(Entry::Archive) => self.warnings.push(skipped(
                    context,
                    path,
                    &format!("it is an archive nested deeper than {MAX_NESTING} levels"),
                )),
                Some(_) if archive.too_large(i) => {
                    self.warnings
                        .push(skipped(context, path, &over_the_limit()))
                }
                _ => {}
            }
        }
        let mut inner = Vec::new();
        let warnings = &mut *self.warnings;
        archive
            .read(nested, self.cancel, &mut |event| {
                match event {
                    ArchiveEvent::Entry { path, bytes, .. } => inner.push((path, bytes)),
                    ArchiveEvent::Warning(w) => warnings.push(w),
                    ArchiveEvent::Progress { .. } => {}
                }
                Ok(())
            })
            .await?;
        let fetched = archive.fetched();
        for (path, bytes) in inner {
            let name = format!("{context}/{path}");
            let size = bytes.len() as u64;
            // an inner archive that cannot be read is that entry's fault: the listing goes on
            match RangedArchive::open(&bytes[..], &name, size, self.cancel).await {
                Ok(nested) => {
                    let listing = Listing {
                        cancel: self.cancel,
                        census: &mut *self.census,
                        warnings: &mut *self.warnings,
                    };
                    Box::pin(listing.ranged(nested, &name, depth + 1)).await?;
                }
                Err(e) => {
                    self.warnings
                        .push(skipped(context, &path, &format!("it cannot be read: {e}")))
                }
            }
        }
        Ok(fetched)
    }
}
