//! The text-format exposition parser on arbitrary bytes: never panics, stops after its first
//! error, and every sample it accepts has a `series` that is a slice of the input and labels
//! that read back (valid names, a `__name__`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_model::exposition::{Entry, Format, Parser};

fuzz_target!(|data: &[u8]| check(data, Format::Text));

fn check(data: &[u8], format: Format) {
    let base = data.as_ptr() as usize;
    let mut errored = false;
    for e in Parser::new(data, format) {
        assert!(!errored, "an entry after an error");
        match e {
            Err(e) => {
                errored = true;
                assert!(e.line >= 1);
            }
            Ok(Entry::Sample(s)) => {
                let p = s.series.as_ptr() as usize;
                assert!(p >= base && p + s.series.len() <= base + data.len());
                // A classic name starts the series' text; a quoted one is inside its braces.
                assert!(s.series.starts_with('{') || s.series.starts_with(&*s.name));
                for (n, _) in s.labels() {
                    assert!(!n.is_empty(), "{n:?}");
                }
                let l = s.to_labels();
                assert_eq!(l.metric_name(), Some(&*s.name));
                if let Some(x) = &s.exemplar {
                    for (n, _) in x.labels() {
                        assert!(!n.is_empty(), "{n:?}");
                    }
                }
            }
            Ok(_) => {}
        }
    }
}
