//! The query path on arbitrary text: what parses is evaluated (instant and range) over a small
//! fixed store with counters, gauges, a classic histogram, NaN, ±Inf and stale markers. Errors
//! are fine; panics, hangs and runaway allocations are not (max-samples and a deadline keep
//! evaluation bounded, as on the server).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use vigil_model::Labels;
use vigil_model::sample::STALE_NAN;
use vigil_promql::Engine;
use vigil_storage::{MemoryStorage, Storage};

fn store() -> &'static MemoryStorage {
    static S: OnceLock<MemoryStorage> = OnceLock::new();
    S.get_or_init(|| {
        let s = MemoryStorage::new();
        let mut app = s.appender();
        let series: Vec<Labels> = [
            vec![("__name__", "c_total"), ("job", "a"), ("i", "0")],
            vec![("__name__", "c_total"), ("job", "a"), ("i", "1")],
            vec![("__name__", "g"), ("job", "b")],
            vec![("__name__", "h_bucket"), ("le", "0.5")],
            vec![("__name__", "h_bucket"), ("le", "1")],
            vec![("__name__", "h_bucket"), ("le", "+Inf")],
            vec![("__name__", "odd"), ("x", "y")],
        ]
        .into_iter()
        .map(Labels::from_pairs)
        .collect();
        for k in 0..40i64 {
            let t = k * 15_000;
            let vals = [
                (k * 3) as f64,
                if k == 20 { 0.0 } else { (k * 5) as f64 },
                ((k * 7) % 11) as f64 - 5.5,
                k as f64,
                (2 * k) as f64,
                (3 * k) as f64,
                match k % 4 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => STALE_NAN,
                    _ => -0.0,
                },
            ];
            for (l, v) in series.iter().zip(vals) {
                let _ = app.append(0, l, t, v);
            }
        }
        let _ = app.commit();
        s
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = vigil_promql::parse_with(text, vigil_promql::Features::all()) else {
        return;
    };
    let engine = Engine {
        max_samples: 100_000,
        ..Engine::default()
    }
    .with_timeout(Duration::from_secs(2));
    let _ = engine.instant(store(), &expr, 300_000);
    let _ = engine.range(store(), &expr, 0, 600_000, 30_000);
});
