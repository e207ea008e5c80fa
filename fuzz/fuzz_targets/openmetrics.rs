//! The openmetrics exposition parser on arbitrary bytes: never panics, and every sample it accepts
//! yields its labels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_model::exposition::{Entry, Format, Parser};

fuzz_target!(|data: &[u8]| {
    for e in Parser::new(data, Format::OpenMetrics) {
        if let Ok(Entry::Sample(s)) = e {
            let l = s.to_labels();
            assert!(l.metric_name().is_some());
            if let Some(ex) = &s.exemplar {
                let _ = ex.labels().count();
            }
        }
    }
});
