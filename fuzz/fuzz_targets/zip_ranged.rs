//! The random-access zip reader on arbitrary bytes held in memory: hostile offsets and sizes in
//! the central directory may fail it, never panic it, and never make it hand out an entry that
//! did not pass its CRC.
#![no_main]

use lens2logit::data::archive::ArchiveEvent;
use lens2logit::data::discovery::Entry;
use lens2logit::data::cancel::CancelToken;
use lens2logit::data::ranged::RangedArchive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cancel = CancelToken::default();
    let read = async {
        let mut zip = RangedArchive::open(data, "fuzz.zip", data.len() as u64, &cancel).await?;
        let wanted = zip
            .paths()
            .into_iter()
            .enumerate()
            .map(|(i, file)| (i, Entry::LooseTile { file }))
            .collect();
        zip.read(wanted, &cancel, &mut |event| {
            if let ArchiveEvent::Entry { bytes, .. } = event {
                std::hint::black_box(bytes);
            }
            Ok(())
        })
        .await
    };
    // memory never waits: the future completes when first polled
    let _ = futures_util::FutureExt::now_or_never(read);
});
