//! The camera raw (DNG) decoder on arbitrary bytes: errors, never panics or huge allocations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lens2logit::raw::decode_dng(data, "fuzz");
});
