//! The protobuf exposition decoder on arbitrary bytes: never panics, and every series it
//! accepts reads back from its text form (valid names, a `__name__`), and every histogram that
//! passes the scraper's check has a valid layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_model::exposition::Entry;
use vigil_model::exposition::proto::{Options, decode};

fuzz_target!(|data: &[u8]| {
    for keep_classic in [false, true] {
        let opts = Options {
            native_histograms: true,
            keep_classic,
        };
        let Ok(d) = decode(data, opts) else { continue };
        for e in d.entries() {
            match e {
                Entry::Sample(s) => {
                    assert!(s.series.starts_with(s.name));
                    for (n, _) in s.labels() {
                        assert!(vigil_model::labels::is_valid_label_name(n), "{n:?}");
                    }
                    assert_eq!(s.to_labels().metric_name(), Some(s.name));
                }
                Entry::Histogram(h) => {
                    // Checked as the scraper checks it: never a panic, and what passes has a
                    // layout the rest of vigil reads.
                    if vigil_model::exposition::proto::check(h.h, h.integer).is_ok() {
                        assert!(vigil_model::histogram::valid_layout(h.h));
                    }
                    assert_eq!(h.as_sample().to_labels().metric_name(), Some(h.name));
                }
                _ => {}
            }
        }
    }
});
