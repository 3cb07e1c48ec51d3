//! Zip archives read as they stream in: each entry is handed out as soon as its bytes have
//! arrived and its CRC32 checked, so tiles appear while a multi-gigabyte archive downloads and
//! memory holds one entry at a time. The whole file's MD5 is checked at the end when the source
//! states one. async_zip parses the format; this module adds what streaming needs around it.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use async_zip::base::read::stream::{Reading, Ready, ZipFileReader};
use async_zip::base::read::WithEntry;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncReadExt};
use futures_util::{Stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};

use crate::codecs::hex;

use super::cancel::CancelToken;
use super::discovery::Entry;
use crate::{Error, Result};

/// Largest entry read into memory; tiles and label files are far smaller.
pub const MAX_ENTRY_BYTES: u64 = crate::spec::limits::ENTRY_BYTES.max;

/// The limit in the words every message about a file too large uses.
pub fn limit_text() -> String {
    format!(
        "{MAX_ENTRY_BYTES} bytes ({} MiB), the lab's limit for one file",
        MAX_ENTRY_BYTES >> 20
    )
}

/// Why an entry larger than the lab reads (by its stated size, or as it inflates: a zip bomb)
/// is skipped.
pub fn over_the_limit() -> String {
    format!("it inflates past {}", limit_text())
}

/// An entry skipped, named with its reason: what the fetch's warnings and final error, `fetch
/// --list` and the page's notes say of it.
pub fn skipped(archive: &str, path: &str, reason: &str) -> String {
    format!("{archive}: {path} skipped: {reason}")
}

/// What reading an archive produces, in order.
#[derive(Debug)]
pub enum ArchiveEvent {
    /// A relevant entry, its CRC checked.
    Entry {
        path: String,
        entry: Entry,
        bytes: Vec<u8>,
    },
    /// Bytes of the archive read so far.
    Progress { read: u64, total: Option<u64> },
    /// An entry skipped, named with the reason ([`skipped`]): too large, a failed CRC, damaged.
    Warning(String),
}

/// How an archive ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub entries: usize,
    /// Entries skipped: too large, a failed CRC.
    pub corrupt: usize,
    /// Whether the file's MD5 matched (None: no checksum to compare with).
    pub md5_ok: Option<bool>,
}

/// The last bytes read through `poll_read`: after async_zip consumes a data descriptor (with
/// `read_exact`), they hold it, and with it the CRC32 that the local header left as zero.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn record(&mut self, data: &[u8]) {
        self.bytes
            .extend_from_slice(&data[data.len().saturating_sub(16)..]);
        let excess = self.bytes.len().saturating_sub(16);
        self.bytes.drain(..excess);
    }

    /// The CRC32 of a data descriptor just read: CRC and two 32-bit sizes, with or without the
    /// signature before them, so the CRC is 12 bytes from the end either way.
    fn descriptor_crc(&self) -> Option<u32> {
        let at = self.bytes.len().checked_sub(12)?;
        Some(u32::from_le_bytes(self.bytes[at..at + 4].try_into().ok()?))
    }
}

struct Tapped<R> {
    inner: R,
    tail: Rc<RefCell<Tail>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tapped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.tail.borrow_mut().record(&buf[..n]);
        }
        poll
    }
}

impl<R: AsyncBufRead + Unpin> AsyncBufRead for Tapped<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().inner).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        Pin::new(&mut self.inner).consume(amt)
    }
}

/// A stream polled through a shared handle, so what the zip reader leaves unread (the central
/// directory) can still be drained after the reader is gone.
struct Shared<S>(Rc<RefCell<S>>);

impl<S: Stream + Unpin> Stream for Shared<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_next(cx)
    }
}

pub(super) fn zip_error(file: &str, e: async_zip::error::ZipError) -> Error {
    match e {
        async_zip::error::ZipError::UpstreamReadError(io)
            if io.kind() == io::ErrorKind::UnexpectedEof =>
        {
            Error::Network(format!(
                "the download of {file} was cut off before the archive ended: try again"
            ))
        }
        async_zip::error::ZipError::UpstreamReadError(io)
            if io
                .get_ref()
                .is_some_and(|e| e.is::<flate2::DecompressError>()) =>
        {
            Error::decode(file, "an entry's compressed data is damaged")
        }
        async_zip::error::ZipError::UpstreamReadError(io) => Error::Network(format!(
            "the download of {file} broke off ({io}): try again"
        )),
        async_zip::error::ZipError::FeatureNotSupported(what) => Error::decode(
            file,
            format!("the archive uses {what}, which cannot be read as a stream"),
        ),
        other => Error::decode(file, format!("not a readable zip archive ({other})")),
    }
}

/// Why an entry whose bytes do not match its CRC32 is skipped.
pub const FAILED_CRC: &str = "it failed its CRC check";

/// Archives inside archives are read this deep at most (a zip of zips of zips is a bomb's shape).
pub const MAX_NESTING: usize = 2;

/// Reads a zip archive from a stream of byte chunks, handing the entries `classify` accepts to
/// `sink` as they complete. `md5` is the file's expected checksum. An entry `classify` calls an
/// [`Entry::Archive`] is read in turn as it streams, its entries classified by their path below
/// it (`inner.zip/a.tif`), and its own CRC checked once it ends.
pub async fn read_archive<S, B, E>(
    name: &str,
    chunks: S,
    total: Option<u64>,
    md5: Option<&str>,
    cancel: &CancelToken,
    classify: &dyn Fn(&str) -> Option<Entry>,
    sink: &mut dyn FnMut(ArchiveEvent) -> Result<()>,
) -> Result<Outcome>
where
    S: Stream<Item = std::result::Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let chunks = chunks
        .map_err(|e| io::Error::other(e.to_string()))
        .map_ok(|chunk| bytes::Bytes::copy_from_slice(chunk.as_ref()))
        .boxed_local();
    read_zip(name, chunks, total, md5, cancel, classify, sink, 0).await
}

/// An entry's bytes as a stream of chunks, for reading an archive inside an archive.
fn entry_chunks<'a, R: AsyncRead + Unpin + 'a>(reader: R) -> Chunks<'a> {
    futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; 64 << 10];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(reader)))
            }
            // the error ends the stream
            Err(e) => Some((Err(e), None)),
        }
    })
    .boxed_local()
}

type Chunks<'a> = futures_util::stream::LocalBoxStream<'a, io::Result<bytes::Bytes>>;

#[allow(clippy::too_many_arguments)]
async fn read_zip(
    name: &str,
    chunks: Chunks<'_>,
    total: Option<u64>,
    md5: Option<&str>,
    cancel: &CancelToken,
    classify: &dyn Fn(&str) -> Option<Entry>,
    sink: &mut dyn FnMut(ArchiveEvent) -> Result<()>,
    depth: usize,
) -> Result<Outcome> {
    let hasher = Rc::new(RefCell::new(Md5::new()));
    let read = Rc::new(RefCell::new(0u64));
    let (h, r) = (hasher.clone(), read.clone());
    let counted = chunks.map_ok(move |chunk| {
        h.borrow_mut().update(chunk.as_ref());
        *r.borrow_mut() += chunk.as_ref().len() as u64;
        chunk
    });
    let shared = Rc::new(RefCell::new(counted));
    let tail = Rc::new(RefCell::new(Tail::default()));
    let source = Tapped {
        inner: Shared(shared.clone()).into_async_read(),
        tail: tail.clone(),
    };
    let mut zip = ZipFileReader::new(source);
    let mut entries = EntryReader {
        name,
        cancel,
        classify,
        sink,
        depth,
        tail,
        outcome: Outcome::default(),
    };
    let mut reported = 0u64;
    loop {
        cancel.check()?;
        let Some(reading) = zip
            .next_with_entry()
            .await
            .map_err(|e| zip_error(name, e))?
        else {
            break;
        };
        zip = entries.read(reading).await?;
        let now = *read.borrow();
        if now >= reported + (1 << 20) {
            reported = now;
            (entries.sink)(ArchiveEvent::Progress { read: now, total })?;
        }
    }
    let EntryReader {
        sink, mut outcome, ..
    } = entries;
    // the central directory follows the entries: read it too, so the MD5 covers the whole file
    let mut rest = Shared(shared);
    while let Some(chunk) = rest
        .try_next()
        .await
        .map_err(|e| zip_error(name, e.into()))?
    {
        drop(chunk);
        cancel.check()?;
    }
    let read_total = *read.borrow();
    sink(ArchiveEvent::Progress {
        read: read_total,
        total,
    })?;
    if let Some(expected_total) = total.filter(|&t| t != read_total) {
        return Err(Error::Network(format!(
            "the download of {name} ended after {read_total} of {expected_total} bytes: try again"
        )));
    }
    if let Some(expected) = md5 {
        let digest = hasher.borrow_mut().finalize_reset();
        let actual = hex(&digest);
        outcome.md5_ok = Some(actual == expected.to_ascii_lowercase());
    }
    Ok(outcome)
}

/// An entry opened for reading, and the reader the archive goes on with once it is read.
type Opened<'a, R> = ZipFileReader<Reading<'a, R, WithEntry<'a>>>;
type Next<R> = ZipFileReader<Ready<R>>;

/// Reads one archive's entries in turn: what each needs besides its own bytes, and what they
/// add up to.
struct EntryReader<'r> {
    name: &'r str,
    cancel: &'r CancelToken,
    classify: &'r dyn Fn(&str) -> Option<Entry>,
    sink: &'r mut dyn FnMut(ArchiveEvent) -> Result<()>,
    depth: usize,
    tail: Rc<RefCell<Tail>>,
    outcome: Outcome,
}

impl EntryReader<'_> {
    /// Counts and names an entry that inflates past the lab's limit for one file.
    fn skip_oversized(&mut self, path: &str) -> Result<()> {
        self.outcome.corrupt += 1;
        (self.sink)(ArchiveEvent::Warning(skipped(
            self.name,
            path,
            &over_the_limit(),
        )))
    }

    /// Reads, or skips, the entry `reading` holds, as `classify` calls it.
    async fn read<R: AsyncBufRead + Unpin>(&mut self, reading: Opened<'_, R>) -> Result<Next<R>> {
        let name = self.name;
        let entry_meta = reading.reader().entry();
        let path = entry_meta
            .filename()
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (header_crc, size) = (entry_meta.crc32(), entry_meta.uncompressed_size());
        match (self.classify)(&path) {
            Some(Entry::Archive) if self.depth < MAX_NESTING => {
                self.archive(reading, path, header_crc).await
            }
            Some(Entry::Archive) => {
                (self.sink)(ArchiveEvent::Warning(skipped(
                    name,
                    &path,
                    &format!("it is an archive nested deeper than {MAX_NESTING} levels"),
                )))?;
                reading.skip().await.map_err(|e| zip_error(name, e))
            }
            // the local header states the size: skipped unkept, but named
            Some(_) if size > MAX_ENTRY_BYTES => {
                self.skip_oversized(&path)?;
                reading.skip().await.map_err(|e| zip_error(name, e))
            }
            None => reading.skip().await.map_err(|e| zip_error(name, e)),
            Some(kind) => self.file(reading, path, kind, header_crc).await,
        }
    }

    /// An archive inside this one, read as it streams: its entries go to the sink under its path.
    async fn archive<R: AsyncBufRead + Unpin>(
        &mut self,
        mut reading: Opened<'_, R>,
        path: String,
        header_crc: u32,
    ) -> Result<Next<R>> {
        let name = self.name;
        let inner_name = format!("{name}/{path}");
        let classify = self.classify;
        let inner_classify = |p: &str| classify(&format!("{path}/{p}"));
        let sink = &mut *self.sink;
        let mut inner_sink = |event: ArchiveEvent| match event {
            ArchiveEvent::Entry {
                path: p,
                entry,
                bytes,
            } => sink(ArchiveEvent::Entry {
                path: format!("{path}/{p}"),
                entry,
                bytes,
            }),
            // the outer archive's progress stands for both
            ArchiveEvent::Progress { .. } => Ok(()),
            warning => sink(warning),
        };
        let inner = Box::pin(read_zip(
            &inner_name,
            entry_chunks(&mut *reading.reader_mut()),
            None,
            None,
            self.cancel,
            &inner_classify,
            &mut inner_sink,
            self.depth + 1,
        ))
        .await;
        match inner {
            Ok(found) => {
                self.outcome.entries += found.entries;
                self.outcome.corrupt += found.corrupt;
            }
            Err(Error::Cancelled) => return Err(Error::Cancelled),
            // a broken inner archive is that entry's fault: the outer one reads on
            Err(e) => (self.sink)(ArchiveEvent::Warning(format!(
                "{e}; its entries were skipped"
            )))?,
        }
        // what the inner reader left (after an error) still counts for the CRC
        futures_util::io::copy(&mut *reading.reader_mut(), &mut futures_util::io::sink())
            .await
            .map_err(|e| zip_error(name, e.into()))?;
        let (crc_ok, next) = self.check_crc(reading, header_crc, true).await?;
        if !crc_ok {
            self.outcome.corrupt += 1;
            (self.sink)(ArchiveEvent::Warning(format!(
                "{name}: the archive {path} inside it failed its CRC check: what it \
                 delivered cannot be trusted"
            )))?;
        }
        Ok(next)
    }

    /// A file the lab reads, handed to the sink whole once its CRC is checked.
    async fn file<R: AsyncBufRead + Unpin>(
        &mut self,
        mut reading: Opened<'_, R>,
        path: String,
        kind: Entry,
        header_crc: u32,
    ) -> Result<Next<R>> {
        let name = self.name;
        let mut bytes = Vec::with_capacity(reading.reader().entry().uncompressed_size() as usize);
        // the header's size may lie (a zip bomb): read one byte past the limit at most,
        // and inflate the rest of an oversized entry into nothing
        let reader = reading.reader_mut();
        (&mut *reader)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| zip_error(name, e.into()))?;
        let oversized = bytes.len() as u64 > MAX_ENTRY_BYTES;
        if oversized {
            bytes = Vec::new();
            futures_util::io::copy(&mut *reader, &mut futures_util::io::sink())
                .await
                .map_err(|e| zip_error(name, e.into()))?;
        }
        let (crc_ok, next) = self
            .check_crc(reading, header_crc, !bytes.is_empty())
            .await?;
        if oversized {
            self.skip_oversized(&path)?;
        } else if crc_ok {
            self.outcome.entries += 1;
            (self.sink)(ArchiveEvent::Entry {
                path,
                entry: kind,
                bytes,
            })?;
        } else {
            self.outcome.corrupt += 1;
            (self.sink)(ArchiveEvent::Warning(skipped(name, &path, FAILED_CRC)))?;
        }
        Ok(next)
    }

    /// Ends an entry read to its end: whether its CRC matched, and the reader for the next one.
    /// Sizes and CRC live in a data descriptor after the data when the header says 0 (and
    /// `may_have_descriptor`).
    async fn check_crc<R: AsyncBufRead + Unpin>(
        &self,
        mut reading: Opened<'_, R>,
        header_crc: u32,
        may_have_descriptor: bool,
    ) -> Result<(bool, Next<R>)> {
        let actual = reading.reader_mut().compute_hash();
        self.tail.borrow_mut().bytes.clear();
        let next = reading.done().await.map_err(|e| zip_error(self.name, e))?;
        let expected = if header_crc == 0 && may_have_descriptor {
            self.tail.borrow().descriptor_crc().unwrap_or(0)
        } else {
            header_crc
        };
        Ok((actual == expected, next))
    }
}
