//! The tile decoders (PNG, TIFF, .npy) on arbitrary bytes: errors, never panics or huge
//! allocations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lens2logit::raw::decode_tile(data, "fuzz");
    let _ = lens2logit::codecs::read_npy(data, "fuzz");
});
