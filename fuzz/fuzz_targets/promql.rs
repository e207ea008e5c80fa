//! The PromQL parser on arbitrary text: errors, never panics; what parses prints and
//! re-parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(e) = vigil_promql::parse(s) {
            let _ = vigil_promql::parse(&e.to_string());
        }
    }
});
