//! Fetching one of the paper's datasets from Zenodo: list the record, stream each archive and
//! hand over tiles (with labels or masks) as they arrive. The CLI writes them to disk, the page's
//! worker decodes and shows them; both share this code.

use std::collections::HashMap;

use futures_util::StreamExt;

use super::archive::{read_archive, ArchiveEvent};
use super::discovery::{classify, parse_labels, DatasetKind, Entry};
use super::http::CancelToken;
use super::zenodo::{RemoteFile, ZenodoClient};
use crate::{Error, Result};

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub dataset: DatasetKind,
    /// Intensity level in percent (1, 5, 10, 25, 50, 75, 100).
    pub intensity: u32,
    /// Stop after this many tiles.
    pub limit: Option<usize>,
}

/// What fetching produces, in order of arrival.
#[derive(Debug)]
pub enum FetchEvent {
    /// The record's files.
    Listing(Vec<RemoteFile>),
    /// An archive starts streaming.
    Archive {
        key: String,
        size: u64,
    },
    /// A raw tile file (PNG/TIFF bytes as in the archive), with its class when already known.
    Tile {
        file: String,
        stem: String,
        bytes: Vec<u8>,
        label: Option<String>,
    },
    /// Raw-Microscopy labels (file name -> class), once read.
    Labels(HashMap<String, String>),
    /// A Raw-Drone car mask (PNG bytes).
    Mask {
        stem: String,
        bytes: Vec<u8>,
    },
    /// A file of the paper's own processed views.
    ProcessedView {
        path: String,
        bytes: Vec<u8>,
    },
    Progress {
        key: String,
        read: u64,
        total: Option<u64>,
    },
    /// An archive's MD5 did not match: everything it delivered must be discarded.
    Discard {
        key: String,
        reason: String,
    },
    /// An archive was read whole and its checksum matched (or none was stated).
    Verified {
        key: String,
    },
    Warning(String),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchSummary {
    /// Tiles delivered and not discarded.
    pub tiles: usize,
    pub archives: usize,
}

/// Streams the record's archives and reports through `on`. Labels and masks are looked for until
/// the archives end even after `limit` tiles, so the tiles that came are usable. A damaged or
/// broken archive is discarded (with a `Discard` event) and the next one read; fetching fails
/// only when no tile came through.
pub async fn fetch(
    client: &ZenodoClient,
    request: &FetchRequest,
    cancel: &CancelToken,
    on: &mut dyn FnMut(FetchEvent) -> Result<()>,
) -> Result<FetchSummary> {
    let files = client.list_files(cancel).await?;
    on(FetchEvent::Listing(files.clone()))?;
    let archives: Vec<&RemoteFile> = files
        .iter()
        .filter(|f| f.key.to_ascii_lowercase().ends_with(".zip"))
        .collect();
    if archives.is_empty() {
        return Err(Error::invalid(
            "the record holds no zip archives to read tiles from",
        ));
    }
    let mut summary = FetchSummary::default();
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut label_texts: Vec<String> = Vec::new();
    let limit = request.limit.unwrap_or(usize::MAX);
    let mut failures: Vec<String> = Vec::new();
    for file in archives {
        on(FetchEvent::Archive {
            key: file.key.clone(),
            size: file.size,
        })?;
        let response = client.get(&file.content_url, None, cancel).await?;
        let total = response
            .content_length()
            .or(Some(file.size).filter(|&s| s > 0));
        let chunks = response.bytes_stream().boxed_local();
        let key = file.key.clone();
        let mut tiles_here = 0usize;
        let mut handle = |event: ArchiveEvent| -> Result<()> {
            match event {
                ArchiveEvent::Entry { path, entry, bytes } => match entry {
                    Entry::Tile {
                        dataset,
                        intensity,
                        file,
                        stem,
                    } if dataset == request.dataset
                        && intensity == request.intensity
                        && summary.tiles < limit =>
                    {
                        summary.tiles += 1;
                        tiles_here += 1;
                        let label = labels.get(&file).cloned();
                        on(FetchEvent::Tile {
                            file,
                            stem,
                            bytes,
                            label,
                        })
                    }
                    Entry::Labels if request.dataset == DatasetKind::Microscopy => {
                        label_texts.push(String::from_utf8_lossy(&bytes).into_owned());
                        labels = parse_labels(&label_texts);
                        on(FetchEvent::Labels(labels.clone()))
                    }
                    Entry::Mask { stem } if request.dataset == DatasetKind::Drone => {
                        on(FetchEvent::Mask { stem, bytes })
                    }
                    Entry::ProcessedView { dataset, .. }
                        if dataset.is_none_or(|d| d == request.dataset) =>
                    {
                        on(FetchEvent::ProcessedView { path, bytes })
                    }
                    _ => Ok(()),
                },
                ArchiveEvent::Progress { read, total } => on(FetchEvent::Progress {
                    key: key.clone(),
                    read,
                    total,
                }),
                ArchiveEvent::Warning(w) => on(FetchEvent::Warning(w)),
            }
        };
        let result = read_archive(
            &file.key,
            chunks,
            total,
            file.md5.as_deref(),
            cancel,
            &classify,
            &mut handle,
        )
        .await;
        summary.archives += 1;
        // an archive whose end or checksum failed cannot be trusted: its tiles go, other archives
        // may still hold the dataset
        let failure = match result {
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            Err(e) => Some(format!("{e}; the {tiles_here} tiles from {} were discarded", file.key)),
            Ok(outcome) if outcome.md5_ok == Some(false) => Some(format!(
                "{}'s MD5 does not match the record's: its {tiles_here} tiles were discarded (the file was damaged on the way; try again)",
                file.key
            )),
            Ok(_) => None,
        };
        match failure {
            Some(reason) => {
                summary.tiles -= tiles_here;
                on(FetchEvent::Discard {
                    key: file.key.clone(),
                    reason: reason.clone(),
                })?;
                failures.push(reason);
            }
            None => on(FetchEvent::Verified {
                key: file.key.clone(),
            })?,
        }
    }
    match failures.into_iter().next() {
        // nothing usable came: the first failure is the reason
        Some(first) if summary.tiles == 0 => Err(Error::Network(first)),
        _ => Ok(summary),
    }
}
