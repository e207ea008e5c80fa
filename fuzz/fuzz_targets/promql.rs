//! The PromQL parser on arbitrary text: errors, never panics; what parses prints and
//! re-parses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        // Every opt-in syntax on, so the fill modifiers are fuzzed too.
        let all = vigil_promql::Features::all();
        if let Ok(e) = vigil_promql::parse_with(s, all) {
            let _ = vigil_promql::parse_with(&e.to_string(), all);
        }
    }
});
