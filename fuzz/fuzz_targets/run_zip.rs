//! A run zip as the page's Import and `lens2logit runs import` read it, on arbitrary bytes:
//! an error or a run, never a panic; a run that is accepted survives its own zip unchanged, and
//! its snapshots and curves read as errors or values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lens2logit::runs::Run;

fuzz_target!(|data: &[u8]| {
    let Ok(run) = Run::from_zip(data) else {
        return;
    };
    let again = Run::from_zip(&run.to_zip().expect("an accepted run writes as a zip"))
        .expect("a run's own zip reads back");
    assert_eq!(again, run);
    let _ = run.snapshots();
    let _ = run.curves();
    let _ = run.summary();
});
