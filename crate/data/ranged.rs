//! Zip archives read by random access, where a server honours byte ranges readable here (natively
//! Zenodo's record-page URL; in the browser a mirror that also sends CORS headers): the central
//! directory first, then only the entries asked for, neighbours fetched together in one request.
//! A tile out of a multi-gigabyte archive then costs a few requests instead of the whole download.
//!
//! async_zip parses the format. It reads from `Fetched`, an in-memory window onto the remote file;
//! when it asks for bytes outside the window, the window grows by one range request and the read
//! starts over, so the library itself says what it needs (the central directory behind the tail,
//! a local header whose extra field is longer than the central directory's).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

// async_zip 0.0.19 deprecates its seek reader for a `read1` module it does not publish yet.
#[allow(deprecated)]
use async_zip::base::read::seek::ZipFileReader;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncSeek, SeekFrom};

use super::archive::{zip_error, ArchiveEvent, Outcome, MAX_ENTRY_BYTES};
use super::discovery::Entry;
use super::http::CancelToken;
use super::zenodo::ZenodoClient;
use crate::{Error, Result};

/// The first request: the end of central directory record sits in the last 64 KiB + 22 bytes
/// (its comment is at most 65535 bytes), with the ZIP64 locator and record just before it.
const TAIL_BYTES: u64 = 128 << 10;
/// Entries closer than this are fetched in one request (the gap is read and dropped).
const MAX_GAP: u64 = 256 << 10;
/// Largest single request for entries: bounds memory, keeps progress moving.
const MAX_RUN: u64 = 8 << 20;
/// Room for a local header's extra field beyond what the central directory states.
const HEADER_SLACK: u64 = 1 << 10;
/// How often a read may ask for more bytes before the archive is declared unreadable.
const MAX_GROWTH: usize = 4;

/// A window [start, start + bytes.len()) onto a remote file of `len` bytes.
struct Fetched {
    len: u64,
    start: u64,
    bytes: Vec<u8>,
    pos: u64,
    /// The first position read outside the window since the last look.
    missing: Option<u64>,
}

impl Fetched {
    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    fn covers(&self, (start, end): (u64, u64)) -> bool {
        self.start <= start && end <= self.end()
    }

    fn available(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            return Ok(&[]);
        }
        if self.pos < self.start || self.pos >= self.end() {
            self.missing.get_or_insert(self.pos);
            return Err(io::Error::other("bytes not fetched yet"));
        }
        Ok(&self.bytes[(self.pos - self.start) as usize..])
    }
}

impl AsyncRead for Fetched {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = match this.available() {
            Ok(data) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                n
            }
            Err(e) => return Poll::Ready(Err(e)),
        };
        this.pos += n as u64;
        Poll::Ready(Ok(n))
    }
}

impl AsyncBufRead for Fetched {
    fn poll_fill_buf(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Poll::Ready(self.get_mut().available())
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().pos += amt as u64;
    }
}

impl AsyncSeek for Fetched {
    fn poll_seek(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        to: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => this.len.checked_add_signed(d),
            SeekFrom::Current(d) => this.pos.checked_add_signed(d),
        };
        Poll::Ready(match target {
            Some(p) if p <= this.len => {
                this.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the file",
            )),
        })
    }
}

/// The bytes [start, end) of `url`, refusing an answer that is not exactly that range.
async fn fetch_range(
    client: &ZenodoClient,
    url: &str,
    (start, end): (u64, u64),
    cancel: &CancelToken,
) -> Result<Vec<u8>> {
    let response = client.get(url, Some((start, end)), cancel).await?;
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(Error::Network(format!(
            "{url} stopped answering byte ranges (status {}): read it as a whole stream instead",
            response.status()
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Error::Network(format!("the download of {url} broke off ({e}): try again")))?;
    if bytes.len() as u64 != end - start {
        return Err(Error::Network(format!(
            "{url} sent {} bytes for a range of {}: try again",
            bytes.len(),
            end - start
        )));
    }
    Ok(bytes.to_vec())
}

/// Where a remote file is read from.
struct Remote<'a> {
    client: &'a ZenodoClient,
    url: String,
    /// Bytes fetched so far, for progress.
    fetched: u64,
}

impl Remote<'_> {
    async fn fetch(&mut self, range: (u64, u64), cancel: &CancelToken) -> Result<Vec<u8>> {
        let bytes = fetch_range(self.client, &self.url, range, cancel).await?;
        self.fetched += bytes.len() as u64;
        Ok(bytes)
    }

    /// Widens `window` to cover `at`, the position a read missed: everything from `at` up to the
    /// window when before it, the next 64 KiB (and what lies between) when after it.
    async fn grow(&mut self, window: &mut Fetched, at: u64, cancel: &CancelToken) -> Result<()> {
        let (start, end) = if at < window.start {
            (at, window.start)
        } else {
            (window.end(), (at + (64 << 10)).min(window.len))
        };
        if end <= start || end - start > MAX_ENTRY_BYTES {
            return Err(Error::decode(
                &self.url,
                format!("the archive points to bytes {at} that cannot be read"),
            ));
        }
        let mut more = self.fetch((start, end), cancel).await?;
        if at < window.start {
            more.append(&mut window.bytes);
            window.bytes = more;
            window.start = start;
        } else {
            window.bytes.append(&mut more);
        }
        Ok(())
    }
}

/// Entries fetched in one request: the bytes [start, end) and the entries (index, what it is).
type Run = ((u64, u64), Vec<(usize, Entry)>);

/// An archive on a server that answers byte ranges, its central directory read.
#[allow(deprecated)]
pub struct RangedArchive<'a> {
    name: String,
    size: u64,
    remote: Remote<'a>,
    zip: ZipFileReader<Fetched>,
}

#[allow(deprecated)]
impl<'a> RangedArchive<'a> {
    /// Reads the central directory of the `size`-byte file `name` at `url`.
    pub async fn open(
        client: &'a ZenodoClient,
        name: &str,
        url: &str,
        size: u64,
        cancel: &CancelToken,
    ) -> Result<Self> {
        let mut remote = Remote {
            client,
            url: url.to_string(),
            fetched: 0,
        };
        let start = size.saturating_sub(TAIL_BYTES);
        let mut window = Fetched {
            len: size,
            start,
            bytes: remote.fetch((start, size), cancel).await?,
            pos: 0,
            missing: None,
        };
        for _ in 0..MAX_GROWTH {
            match ZipFileReader::new(&mut window).await {
                Ok(zip) => {
                    let file = zip.file().clone();
                    return Ok(Self {
                        name: name.to_string(),
                        size,
                        remote,
                        zip: ZipFileReader::from_raw_parts(window, file),
                    });
                }
                Err(e) => match window.missing.take() {
                    Some(at) => remote.grow(&mut window, at, cancel).await?,
                    None => return Err(zip_error(name, e)),
                },
            }
        }
        Err(Error::decode(
            name,
            "its central directory could not be located",
        ))
    }

    /// The archive's entry paths, in central directory order (the indices `read` takes).
    pub fn paths(&self) -> Vec<String> {
        (0..self.zip.file().entries().len())
            .map(|i| self.path(i))
            .collect()
    }

    /// The bytes an entry occupies: local header, name, extra field (with slack) and data.
    fn span(&self, index: usize) -> (u64, u64) {
        let stored = &self.zip.file().entries()[index];
        let start = stored.header_offset();
        let end = start + stored.header_size() + HEADER_SLACK + stored.compressed_size();
        (start, end.min(self.size))
    }

    /// Reads the given entries (index, what it is), in file order, neighbours fetched in one
    /// request, and hands each to `sink` once its CRC32 matches the central directory's. A damaged
    /// entry is skipped with a warning; the others stand on their own.
    pub async fn read(
        &mut self,
        wanted: Vec<(usize, Entry)>,
        cancel: &CancelToken,
        sink: &mut dyn FnMut(ArchiveEvent) -> Result<()>,
    ) -> Result<Outcome> {
        let mut outcome = Outcome {
            entries: 0,
            corrupt: 0,
            md5_ok: None,
        };
        // sizes come from the archive: refuse what would not fit in memory before fetching it
        let (mut wanted, too_large): (Vec<_>, Vec<_>) = wanted.into_iter().partition(|(i, _)| {
            let entry = &self.zip.file().entries()[*i];
            entry.compressed_size().max(entry.uncompressed_size()) <= MAX_ENTRY_BYTES
        });
        for (index, _) in too_large {
            outcome.corrupt += 1;
            sink(ArchiveEvent::Warning(format!(
                "{}: {} is larger than {MAX_ENTRY_BYTES} bytes and was skipped",
                self.name,
                self.path(index)
            )))?;
        }
        wanted.sort_by_key(|(i, _)| self.span(*i).0);
        // runs of entries fetched together: [start, end) and the entries in it
        let mut runs: Vec<Run> = Vec::new();
        for (index, entry) in wanted {
            let (start, end) = self.span(index);
            match runs.last_mut() {
                Some(((run_start, run_end), members))
                    if start <= *run_end + MAX_GAP && end - *run_start <= MAX_RUN =>
                {
                    *run_end = (*run_end).max(end);
                    members.push((index, entry));
                }
                _ => runs.push(((start, end), vec![(index, entry)])),
            }
        }
        // a small archive is whole in the window already, read with the central directory
        let window = self.zip.inner_mut();
        let to_fetch = runs
            .iter()
            .filter(|(range, _)| !window.covers(*range))
            .map(|((start, end), _)| end - start);
        let total = self.remote.fetched + to_fetch.sum::<u64>();
        for (range, members) in runs {
            cancel.check()?;
            if !self.zip.inner_mut().covers(range) {
                let bytes = self.remote.fetch(range, cancel).await?;
                let window = self.zip.inner_mut();
                (window.start, window.bytes) = (range.0, bytes);
            }
            for (index, entry) in members {
                cancel.check()?;
                let path = self.path(index);
                match self.read_entry(index, cancel).await? {
                    Ok(bytes) => {
                        outcome.entries += 1;
                        sink(ArchiveEvent::Entry { path, entry, bytes })?;
                    }
                    Err(reason) => {
                        outcome.corrupt += 1;
                        sink(ArchiveEvent::Warning(format!(
                            "{}: {path} {reason} and was skipped",
                            self.name
                        )))?;
                    }
                }
            }
            sink(ArchiveEvent::Progress {
                read: self.remote.fetched,
                total: Some(total),
            })?;
        }
        Ok(outcome)
    }

    fn path(&self, index: usize) -> String {
        let entry = &self.zip.file().entries()[index];
        entry.filename().as_str().unwrap_or_default().to_string()
    }

    /// One entry's bytes, or why they cannot be trusted.
    async fn read_entry(
        &mut self,
        index: usize,
        cancel: &CancelToken,
    ) -> Result<std::result::Result<Vec<u8>, String>> {
        let stored = &self.zip.file().entries()[index];
        let (expected, size) = (stored.crc32(), stored.uncompressed_size());
        for _ in 0..MAX_GROWTH {
            let attempt = async {
                let mut reader = self.zip.reader_without_entry(index).await?;
                let mut bytes = Vec::with_capacity(size as usize);
                reader.read_to_end(&mut bytes).await?;
                Ok::<_, async_zip::error::ZipError>((bytes, reader.compute_hash()))
            }
            .await;
            let window = self.zip.inner_mut();
            match (attempt, window.missing.take()) {
                (Err(_), Some(at)) => self.remote.grow(window, at, cancel).await?,
                (Err(e), None) => return Ok(Err(zip_error(&self.name, e).to_string())),
                (Ok((bytes, actual)), _) if actual == expected && bytes.len() as u64 == size => {
                    return Ok(Ok(bytes))
                }
                (Ok(_), _) => return Ok(Err("failed its CRC check".to_string())),
            }
        }
        Ok(Err("points outside the archive".to_string()))
    }
}
