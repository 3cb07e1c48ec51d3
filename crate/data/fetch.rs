//! Fetching one of the paper's datasets from Zenodo: list the record, stream each archive and
//! hand over tiles (with labels or masks) as they arrive. The CLI writes them to disk, the page's
//! worker decodes and shows them; both share this code.

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;

use super::archive::{read_archive, ArchiveEvent, Outcome};
use super::discovery::{classify, parse_labels, DatasetKind, Entry};
use super::http::CancelToken;
use super::ranged::{Http, RangedArchive};
use super::zenodo::{Opened, RemoteFile, ZenodoClient};
use crate::{Error, Result};

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub dataset: DatasetKind,
    /// Intensity level in percent (1, 5, 10, 25, 50, 75, 100).
    pub intensity: u32,
    /// Stop after this many tiles.
    pub limit: Option<usize>,
    /// Read only the entries needed, by byte ranges, where the server allows it; otherwise (or
    /// when false) every archive is read whole as a stream, which also checks its MD5.
    pub random_access: bool,
}

/// What fetching produces, in order of arrival.
#[derive(Debug)]
pub enum FetchEvent {
    /// The record's files.
    Listing(Vec<RemoteFile>),
    /// An archive starts to be read: streamed whole, or by random access.
    Archive {
        key: String,
        size: u64,
        random_access: bool,
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
    /// A file of the paper's own processed views: `view` names the processing, `stem` the tile.
    ProcessedView {
        view: String,
        stem: String,
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
    /// Everything an archive delivered is checked: read whole with its MD5 matching (or none
    /// stated), or read by random access with each entry's CRC32 matching.
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

/// Whether an entry belongs to what `request` asks for.
fn relevant(request: &FetchRequest, entry: &Entry) -> bool {
    match entry {
        Entry::Tile {
            dataset, intensity, ..
        } => *dataset == request.dataset && *intensity == request.intensity,
        Entry::Labels => request.dataset == DatasetKind::Microscopy,
        Entry::Mask { .. } => request.dataset == DatasetKind::Drone,
        Entry::ProcessedView { dataset, .. } => dataset.is_none_or(|d| d == request.dataset),
        Entry::LooseTile { .. } => false,
    }
}

/// Reads from an archive opened for random access what `request` needs and nothing else: the
/// labels first (so tiles arrive with their classes), then up to `remaining` tiles with their
/// masks and the paper's processed views.
async fn read_needed(
    mut archive: RangedArchive<Http<'_>>,
    request: &FetchRequest,
    remaining: usize,
    cancel: &CancelToken,
    sink: &mut dyn FnMut(ArchiveEvent) -> Result<()>,
) -> Result<Outcome> {
    let relevant: Vec<(usize, Entry)> = archive
        .paths()
        .iter()
        .enumerate()
        .filter_map(|(i, path)| Some((i, classify(path).filter(|e| relevant(request, e))?)))
        .collect();
    let (labels, rest): (Vec<_>, Vec<_>) = relevant
        .into_iter()
        .partition(|(_, e)| matches!(e, Entry::Labels));
    let (tiles, rest): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|(_, e)| matches!(e, Entry::Tile { .. }));
    let tiles: Vec<_> = tiles.into_iter().take(remaining).collect();
    let stems: HashSet<&str> = tiles
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Tile { stem, .. } => Some(stem.as_str()),
            _ => None,
        })
        .collect();
    // masks and the paper's views of the tiles read, nothing of the others
    let others: Vec<_> = rest
        .into_iter()
        .filter(|(_, e)| match e {
            Entry::Mask { stem } | Entry::ProcessedView { stem, .. } => {
                stems.contains(stem.as_str())
            }
            _ => true,
        })
        .collect();
    let first = archive.read(labels, cancel, sink).await?;
    let second = archive
        .read(tiles.into_iter().chain(others).collect(), cancel, sink)
        .await?;
    Ok(Outcome {
        entries: first.entries + second.entries,
        corrupt: first.corrupt + second.corrupt,
        md5_ok: None,
    })
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
    if let Some(limit) = request.limit {
        crate::limits::FETCH_TILES.check_usize(limit)?;
    }
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
        let opened = client.open(file, request.random_access, cancel).await?;
        on(FetchEvent::Archive {
            key: file.key.clone(),
            size: file.size,
            random_access: matches!(opened, Opened::Ranged { .. }),
        })?;
        let key = file.key.clone();
        let mut tiles_here = 0usize;
        let remaining = limit.saturating_sub(summary.tiles);
        let mut handle = |event: ArchiveEvent| -> Result<()> {
            match event {
                ArchiveEvent::Entry { entry, bytes, .. } if relevant(request, &entry) => {
                    match entry {
                        Entry::Tile { file, stem, .. } if summary.tiles < limit => {
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
                        Entry::Labels => {
                            label_texts.push(String::from_utf8_lossy(&bytes).into_owned());
                            labels = parse_labels(&label_texts);
                            on(FetchEvent::Labels(labels.clone()))
                        }
                        Entry::Mask { stem } => on(FetchEvent::Mask { stem, bytes }),
                        Entry::ProcessedView { view, stem, .. } => {
                            on(FetchEvent::ProcessedView { view, stem, bytes })
                        }
                        _ => Ok(()),
                    }
                }
                ArchiveEvent::Entry { .. } => Ok(()),
                ArchiveEvent::Progress { read, total } => on(FetchEvent::Progress {
                    key: key.clone(),
                    read,
                    total,
                }),
                ArchiveEvent::Warning(w) => on(FetchEvent::Warning(w)),
            }
        };
        let result = match opened {
            Opened::Stream(response) => {
                let total = response
                    .content_length()
                    .or(Some(file.size).filter(|&s| s > 0));
                read_archive(
                    &file.key,
                    response.bytes_stream().boxed_local(),
                    total,
                    file.md5.as_deref(),
                    cancel,
                    &classify,
                    &mut handle,
                )
                .await
            }
            Opened::Ranged { url, size } => {
                async {
                    let source = Http { client, url };
                    let archive = RangedArchive::open(source, &file.key, size, cancel).await?;
                    read_needed(archive, request, remaining, cancel, &mut handle).await
                }
                .await
            }
        };
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
