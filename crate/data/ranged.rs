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

use super::archive::{
    over_the_limit, skipped, zip_error, ArchiveEvent, Outcome, FAILED_CRC, MAX_ENTRY_BYTES,
};
use super::cancel::CancelToken;
use super::discovery::Entry;
use super::http::body_within;
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

/// Where the bytes of a remote file come from: byte ranges over HTTP, or memory (tests, fuzzing).
#[allow(async_fn_in_trait)] // driven on one thread: the worker's, or the CLI's runtime
pub trait RangeSource {
    /// Exactly the bytes [start, end), or an error.
    async fn fetch(&mut self, range: (u64, u64), cancel: &CancelToken) -> Result<Vec<u8>>;

    /// What to name in messages: the URL.
    fn name(&self) -> &str;
}

/// Byte ranges of `url`.
pub struct Http<'a> {
    pub client: &'a ZenodoClient,
    pub url: String,
}

impl RangeSource for Http<'_> {
    /// Refuses an answer that is not exactly the range asked for.
    async fn fetch(&mut self, (start, end): (u64, u64), cancel: &CancelToken) -> Result<Vec<u8>> {
        let url = &self.url;
        let response = self.client.get(url, Some((start, end)), cancel).await?;
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(Error::Network(format!(
                "{url} stopped answering byte ranges (status {}): read it as a whole stream instead",
                response.status()
            )));
        }
        // a server that sends more than asked is refused
        let bytes = body_within(response, end - start, url, cancel).await?;
        if bytes.len() as u64 != end - start {
            return Err(Error::Network(format!(
                "{url} sent {} bytes for a range of {}: try again",
                bytes.len(),
                end - start
            )));
        }
        Ok(bytes)
    }

    fn name(&self) -> &str {
        &self.url
    }
}

/// A file already in memory.
impl RangeSource for &[u8] {
    async fn fetch(&mut self, (start, end): (u64, u64), _cancel: &CancelToken) -> Result<Vec<u8>> {
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.get(s..e))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| Error::invalid(format!("bytes {start}..{end} are outside the file")))
    }

    fn name(&self) -> &str {
        "memory"
    }
}

/// A source and what was fetched from it.
struct Remote<S> {
    source: S,
    /// Bytes fetched so far, for progress.
    fetched: u64,
}

impl<S: RangeSource> Remote<S> {
    async fn fetch(&mut self, range: (u64, u64), cancel: &CancelToken) -> Result<Vec<u8>> {
        let bytes = self.source.fetch(range, cancel).await?;
        self.fetched += bytes.len() as u64;
        Ok(bytes)
    }

    /// Widens `window` to cover `at`, the position a read missed: everything from `at` up to the
    /// window when before it, the next 64 KiB (and what lies between) when after it.
    async fn grow(&mut self, window: &mut Fetched, at: u64, cancel: &CancelToken) -> Result<()> {
        let (start, end) = if at < window.start {
            (at, window.start)
        } else {
            (window.end(), at.saturating_add(64 << 10).min(window.len))
        };
        if end <= start || end - start > MAX_ENTRY_BYTES {
            return Err(Error::decode(
                self.source.name(),
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
pub struct RangedArchive<S> {
    name: String,
    size: u64,
    remote: Remote<S>,
    zip: ZipFileReader<Fetched>,
}

#[allow(deprecated)]
impl<S: RangeSource> RangedArchive<S> {
    /// Reads the central directory of `name`, a file of `size` bytes.
    pub async fn open(source: S, name: &str, size: u64, cancel: &CancelToken) -> Result<Self> {
        let mut remote = Remote { source, fetched: 0 };
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

    /// Bytes fetched from the source so far.
    pub fn fetched(&self) -> u64 {
        self.remote.fetched
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
        // sizes and offsets come from the archive: a hostile one must not overflow them
        let end = start
            .saturating_add(stored.header_size() + HEADER_SLACK)
            .saturating_add(stored.compressed_size());
        (start.min(self.size), end.min(self.size))
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
        let mut outcome = Outcome::default();
        // sizes come from the archive: refuse what would not fit in memory before fetching it
        let (too_large, mut wanted): (Vec<_>, Vec<_>) =
            wanted.into_iter().partition(|(i, _)| self.too_large(*i));
        for (index, _) in too_large {
            outcome.corrupt += 1;
            let path = self.path(index);
            sink(ArchiveEvent::Warning(skipped(
                &self.name,
                &path,
                &over_the_limit(),
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
            if range.0 < range.1 && !self.zip.inner_mut().covers(range) {
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
                        sink(ArchiveEvent::Warning(skipped(&self.name, &path, &reason)))?;
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

    /// Whether the sizes the central directory states for an entry pass the lab's limit for one
    /// file: it is skipped unread.
    pub fn too_large(&self, index: usize) -> bool {
        let entry = &self.zip.file().entries()[index];
        entry.compressed_size().max(entry.uncompressed_size()) > MAX_ENTRY_BYTES
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
                // an entry inflating past its stated size (a zip bomb) stops one byte over
                (&mut reader).take(size + 1).read_to_end(&mut bytes).await?;
                Ok::<_, async_zip::error::ZipError>((bytes, reader.compute_hash()))
            }
            .await;
            let window = self.zip.inner_mut();
            match (attempt, window.missing.take()) {
                (Err(_), Some(at)) => match self.remote.grow(window, at, cancel).await {
                    Ok(()) => {}
                    // an entry pointing outside the file is its own fault, not the archive's
                    Err(Error::Decode { reason, .. }) => return Ok(Err(reason)),
                    Err(e) => return Err(e),
                },
                (Err(e), None) => {
                    return Ok(Err(match zip_error(&self.name, e) {
                        Error::Decode { reason, .. } => reason,
                        other => other.to_string(),
                    }))
                }
                (Ok((bytes, _)), _) if bytes.len() as u64 > size => {
                    return Ok(Err(format!(
                        "it inflates past the {size} bytes the archive states"
                    )))
                }
                (Ok((bytes, actual)), _) if actual == expected && bytes.len() as u64 == size => {
                    return Ok(Ok(bytes))
                }
                (Ok(_), _) => return Ok(Err(FAILED_CRC.to_string())),
            }
        }
        Ok(Err("it points outside the archive".to_string()))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::io::{Cursor, Write};

    use zip::write::SimpleFileOptions;
    use zip::CompressionMethod;

    use super::*;

    /// A tile stored with its data aligned to 4 KiB (the padding is an extra field in the local
    /// header only, longer than the slack the central directory allows for), a filler that puts
    /// it beyond the first request's tail, then a deflated tile.
    fn archive() -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        zip.start_file("tiles/a.tif", stored.with_alignment(4096))
            .unwrap();
        zip.write_all(&[7u8; 3000]).unwrap();
        zip.start_file("filler.bin", stored).unwrap();
        zip.write_all(&vec![1u8; 2 * TAIL_BYTES as usize]).unwrap();
        let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        zip.start_file("tiles/b.tif", deflated).unwrap();
        zip.write_all(&[9u8; 5000]).unwrap();
        zip.finish().unwrap().into_inner()
    }

    fn tile(path: &str) -> Entry {
        Entry::LooseTile {
            file: path.to_string(),
        }
    }

    /// The entries delivered (path, bytes) and the warnings.
    type Read = (Vec<(String, Vec<u8>)>, Vec<String>);

    /// Every tile read from `bytes`.
    fn read_all(bytes: &[u8]) -> Result<Read> {
        let cancel = CancelToken::default();
        futures_util::FutureExt::now_or_never(async {
            let mut zip = RangedArchive::open(bytes, "t.zip", bytes.len() as u64, &cancel).await?;
            let wanted = zip
                .paths()
                .iter()
                .enumerate()
                .filter(|(_, p)| p.starts_with("tiles/"))
                .map(|(i, p)| (i, tile(p)))
                .collect();
            let (mut entries, mut warnings) = (Vec::new(), Vec::new());
            zip.read(wanted, &cancel, &mut |event| {
                match event {
                    ArchiveEvent::Entry { path, bytes, .. } => entries.push((path, bytes)),
                    ArchiveEvent::Warning(w) => warnings.push(w),
                    ArchiveEvent::Progress { .. } => {}
                }
                Ok(())
            })
            .await?;
            Ok((entries, warnings))
        })
        .expect("memory never waits")
    }

    #[test]
    fn a_local_header_longer_than_the_directory_says_is_fetched_on_demand() {
        let bytes = archive();
        let (entries, warnings) = read_all(&bytes).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], ("tiles/a.tif".to_string(), vec![7u8; 3000]));
        assert_eq!(entries[1], ("tiles/b.tif".to_string(), vec![9u8; 5000]));
    }

    #[test]
    fn a_damaged_entry_is_skipped_and_the_rest_delivered() {
        let mut bytes = archive();
        // the stored tile's data starts at the 4 KiB boundary
        bytes[4096 + 10] ^= 0xff;
        let (entries, warnings) = read_all(&bytes).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "tiles/b.tif");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("tiles/a.tif skipped: it failed its CRC check"),
            "{warnings:?}"
        );
    }

    #[test]
    fn an_entry_inflating_past_its_stated_size_is_named_and_skipped() {
        let mut bytes = archive();
        // the deflated tile's central directory record (the last one) states 100 bytes
        let record = bytes
            .windows(4)
            .rposition(|w| w == [0x50, 0x4b, 0x01, 0x02])
            .unwrap();
        bytes[record + 24..record + 28].copy_from_slice(&100u32.to_le_bytes());
        let (entries, warnings) = read_all(&bytes).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            warnings,
            ["t.zip: tiles/b.tif skipped: it inflates past the 100 bytes the archive states"]
        );
    }

    /// Found by fuzzing (fuzz/fuzz_targets/zip_ranged.rs): a central directory entry whose extra
    /// field overruns it. async_zip 0.0.19 reports that as an error but computes the message's
    /// length with a subtraction that underflows, a panic where overflow checks are on (debug
    /// builds); the release and page builds, without them, get the error.
    const OVERRUNNING_EXTRA_FIELD: &str = "504b030414000000080047b57d5d84fac7b308000000cc000000330000005261772d44726f6e652f64726f6e652f696d616765735f74696c65735f3235362f7261775f7363616c653130302f612e746966f3f4d462182e0000504b030414000000080047b57d5d3b6a014e0a000000fa00000005000000622e747874cb48cdc9c9cf18890400504b0102140314000000080047b57d5d84fac7b308000000000000000000008001590000622e747874504b0506000000000200020094000000860000000000";

    #[test]
    #[cfg_attr(
        debug_assertions,
        ignore = "async_zip 0.0.19 panics on this input when overflow checks are on"
    )]
    fn an_extra_field_overrunning_its_entry_is_an_error() {
        let bytes: Vec<u8> = (0..OVERRUNNING_EXTRA_FIELD.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&OVERRUNNING_EXTRA_FIELD[i..i + 2], 16).unwrap())
            .collect();
        let err = read_all(&bytes).unwrap_err().to_string();
        assert!(err.contains("t.zip"), "{err}");
    }

    #[test]
    fn what_is_not_a_zip_archive_says_so() {
        let err = read_all(b"not an archive at all").unwrap_err().to_string();
        assert!(err.contains("t.zip") && err.contains("zip"), "{err}");
        let mut cut = archive();
        cut.truncate(cut.len() - 30);
        assert!(read_all(&cut).is_err());
    }
}
