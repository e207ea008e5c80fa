//! The config loader on arbitrary text: errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = vigil_config::Config::parse(s, std::path::Path::new("/nonexistent"));
    }
});
