//! The remote storage decoders, as the receivers and the read endpoint run them on request
//! bodies: remote write 1.0 and 2.0, OTLP and remote read requests decode or fail without
//! panicking, and a decoded write (an OTLP one once translated) is appended (in one
//! transaction, refused or stored) to an in-memory store; a decoded read is answered in both
//! response types.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use vigil_remote::{otlp, read, receive};
use vigil_storage::MemoryStorage;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    // A few series to read back, so the read answers have something to encode.
    let st = MemoryStorage::new();
    {
        use vigil_storage::Storage;
        let mut app = st.appender();
        for (i, name) in ["up", "a", "b"].into_iter().enumerate() {
            let l = vigil_model::Labels::from_pairs([("__name__", name), ("site", "x")]);
            for t in 0..200 {
                let _ = app.append(0, &l, t * 1000, (t as f64) * (i as f64 + 0.5));
            }
        }
        let _ = app.commit();
    }
    match kind % 4 {
        3 => {
            let settings = otlp::Settings {
                convert_histograms_to_nhcb: kind & 4 != 0,
                ..Default::default()
            };
            // Bit 3 of the first byte picks OTLP's JSON encoding.
            let ct = if kind & 8 != 0 {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            if let Ok(req) = otlp::decode(Some(ct), None, body, 1 << 20)
                && let Ok(t) = otlp::translate(&req, &settings)
            {
                let _ = receive::append(&st, &t.write);
            }
        }
        0 | 1 => {
            let msg = if kind % 4 == 0 {
                receive::Message::V1
            } else {
                receive::Message::V2
            };
            // As the receiver runs it: decoded (1.0 without copying) and stored.
            let _ = receive::receive(&st, msg, body);
        }
        _ => {
            let ext = BTreeMap::from([("site".to_string(), "a".to_string())]);
            if let Ok((req, _)) = read::decode(body) {
                let _ = read::read_samples(&st, &req, &ext, 1_000_000);
                if read::check_streamed(&req, &ext).is_ok() {
                    let _ = read::stream(&st, &req, &ext, 1024, &mut |_| true);
                }
            }
        }
    }
});
