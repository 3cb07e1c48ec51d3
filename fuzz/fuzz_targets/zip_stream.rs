//! The streaming zip reader on arbitrary bytes, cut into arbitrary chunks: it may fail, never
//! panic, and never hand out an entry that did not pass its CRC. An entry's CRC lives in the
//! archive (local header, data descriptor or central directory), so the CRC32 of every entry
//! handed out must be written somewhere in the input: bytes that slipped through unchecked would
//! almost never find theirs there.
#![no_main]

use lens2logit::data::archive::{read_archive, ArchiveEvent};
use lens2logit::data::discovery::classify_loose;
use lens2logit::data::cancel::CancelToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the first byte sets the chunk size, as networks cut streams anywhere
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let size = usize::from(cut).max(1);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(size).map(|c| Ok(c.to_vec())).collect();
    let stream = futures_util::stream::iter(chunks);
    let mut sink = |event: ArchiveEvent| {
        if let ArchiveEvent::Entry { path, bytes, .. } = event {
            let crc = crc32fast::hash(&bytes).to_le_bytes();
            assert!(
                bytes.is_empty() || data.windows(4).any(|w| w == crc),
                "{path}: {} bytes handed out whose CRC32 the archive never records",
                bytes.len()
            );
        }
        Ok(())
    };
    let _ = futures_executor::block_on(read_archive(
        "fuzz.zip",
        stream,
        None,
        Some("00"),
        &CancelToken::default(),
        &classify_loose,
        &mut sink,
    ));
});
