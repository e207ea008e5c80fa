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
                    // A classic name starts the series' text; a quoted one is inside its braces.
                    assert!(s.series.starts_with('{') || s.series.starts_with(&*s.name));
                    for (n, _) in s.labels() {
                        assert!(!n.is_empty(), "{n:?}");
                    }
                    assert_eq!(s.to_labels().metric_name(), Some(&*s.name));
                }
                Entry::Histogram(h) => {
                    // Checked as the scraper checks it (never a panic); what passes keeps
                    // passing once compacted and at a coarser schema, as the bucket limit
                    // leaves it.
                    if vigil_model::exposition::proto::check(h.h, h.integer).is_ok() {
                        let c = h.h.compacted();
                        assert!(vigil_model::exposition::proto::check(&c, false).is_ok());
                        let mut r = c.clone();
                        r.reduce_resolution(r.schema - 1);
                        if !r.uses_custom_buckets() && r.schema >= -4 {
                            assert!(vigil_model::exposition::proto::check(&r, false).is_ok());
                        }
                    }
                    assert_eq!(h.as_sample().to_labels().metric_name(), Some(&*h.name));
                }
                _ => {}
            }
        }
    }
});
