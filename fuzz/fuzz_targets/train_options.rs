//! The page's session settings (JSON, as the worker hands them over) on arbitrary input: an error
//! or a configuration within the lab's limits, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lens2logit::data::Task;
use lens2logit::spec::limits;
use lens2logit::train::TrainOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(options) = serde_json::from_slice::<TrainOptions>(data) else {
        return;
    };
    for task in [Task::Classification, Task::Segmentation] {
        if let Ok(config) = options.config(task) {
            assert!(limits::BATCH.check_usize(config.batch).is_ok());
            assert!(limits::STEPS.check_usize(config.steps).is_ok());
            assert!(limits::STEPS.check_usize(config.forensic_steps).is_ok());
            assert!(config.lr.is_finite() && config.lambda.is_finite());
            assert!(config.validate().is_ok());
        }
    }
});
