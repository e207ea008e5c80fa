//! Tests of the function implementations.

use super::*;

/// A gap of exactly 1.1 average intervals: Prometheus's arithmetic (in seconds) decides
/// the boundary, and vigil's faster form must decide it the same way.
#[test]
fn extrapolation_threshold_ties_decide_as_prometheus() {
    let w: Vec<Sample> = (0..6)
        .map(|i| Sample {
            t: 11_000 + i * 10_000,
            v: 100.0 + 10.0 * i as f64,
        })
        .collect();
    // to_start 11s = 1.1 x 10s: shortened to 5s; to_end 9s kept; 50 * 64/50.
    assert_eq!(
        extrapolated_rate(&w, 0, 70_000, 70.0, false, false),
        Some(64.0)
    );
    // Huge counter values: the zero-point comparison must not overflow into "no clamp".
    let big = [
        Sample {
            t: 10_000,
            v: 1e306,
        },
        Sample {
            t: 70_000,
            v: 1.01e308,
        },
    ];
    let got = extrapolated_rate(&big, 5_000, 75_000, 70.0, true, false).unwrap();
    // Prometheus: to_zero = 60 * (1e306 / 1e308) = 0.6s < to_start 5s: clamped.
    let want = (1.01e308 - 1e306) * ((60.0 + 0.6 + 5.0) / 60.0);
    assert!((got - want).abs() <= want.abs() * 1e-12, "{got} vs {want}");
}

/// Every function in the table has an implementation: called with arguments of the types
/// its row names, none answers "not implemented" (a window function's row without an arm in
/// `windowed`, or a plain one without an arm in `call`).
#[test]
fn every_function_in_the_table_is_implemented() {
    use crate::ast::ValueType;
    let st = vigil_storage::MemoryStorage::new();
    let engine = crate::Engine::default();
    for f in crate::functions::FUNCTIONS {
        let args: Vec<&str> = f
            .args
            .iter()
            .map(|a| match a {
                ValueType::Scalar => "0.5",
                ValueType::Matrix => "x[5m]",
                ValueType::Vector => "x",
                _ => "\"a\"",
            })
            .collect();
        let mut q = format!("{}({})", f.name, args.join(", "));
        if f.name == "info" {
            // Its second argument is label matchers in braces, not a selector.
            q = r#"info(x, {a="b"})"#.to_string();
        }
        let expr = crate::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        if let Err(e) = engine.instant(&st, &expr, 3_600_000) {
            assert!(!e.to_string().contains("not implemented"), "{q}: {e}");
        }
    }
}

/// Counter resets anywhere in a window (first step, last step, several, none, NaN beside
/// one) add up as Prometheus adds them: the value before each drop, in order.
#[test]
fn counter_resets_add_the_value_before_each_drop() {
    let w = |vals: &[f64]| -> Vec<Sample> {
        vals.iter()
            .enumerate()
            .map(|(i, &v)| Sample {
                t: i as i64 * 15_000,
                v,
            })
            .collect()
    };
    let increase = |vals: &[f64]| {
        let s = w(vals);
        let end = s[s.len() - 1].t;
        // The window is exactly the samples' span: no extrapolation, the raw increase.
        extrapolated_rate(&s, 0, end, end as f64 / 1000.0, true, false).unwrap()
    };
    assert_eq!(increase(&[1.0, 2.0, 3.0]), 2.0);
    assert_eq!(increase(&[5.0, 1.0, 3.0]), 3.0 - 5.0 + 5.0);
    assert_eq!(increase(&[1.0, 4.0, 2.0]), 2.0 - 1.0 + 4.0);
    assert_eq!(increase(&[3.0, 7.0, 1.0, 9.0, 2.0]), 2.0 - 3.0 + 7.0 + 9.0);
    assert_eq!(increase(&[0.1, 0.2, 0.05]), 0.05 - 0.1 + 0.2);
    // NaN compares false both ways: never a reset (the drop from 1 to 0.5 across it is not
    // seen, as in Prometheus).
    assert_eq!(increase(&[1.0, f64::NAN, 0.5]), 0.5 - 1.0);
}

/// `rate_windows` works each window shape's decisions out once and finds drops once per
/// series: over series with jittered, missing and repeated times, resets, NaNs, negative
/// values, huge values and zeros, with ends in and out of order, at steps
/// that do and do not divide the interval, its answers are bit for bit those of
/// `extrapolated_rate` per window, for `rate`, `increase` and `delta`.
#[test]
fn rate_windows_answer_as_each_window_alone() {
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut compared = 0;
    for round in 0..300 {
        let mut t = 0i64;
        let mut v = 0.0f64;
        let mut samples = Vec::new();
        for _ in 0..200 {
            // Mostly regular (15 s), sometimes jittered or with a gap.
            t += match next() % 10 {
                0 => 15_000 + (next() % 2_000) as i64 - 1_000,
                1 => 45_000,
                _ => 15_000,
            };
            v = match next() % 20 {
                0 => (next() % 5) as f64, // a reset
                1 => -v,
                2 => v * 1e300,
                3 => f64::NAN,
                _ => v + (next() % 7) as f64,
            };
            samples.push(Sample { t, v });
        }
        let step = [15_000, 60_000, 7_000][round % 3];
        let range_ms = [60_000, 300_000, 31_000][round % 3];
        let mut ends: Vec<i64> = (0..400).map(|k| 30_000 + k * step).collect();
        // Ends out of order (no caller gives them, but the loop must stay right).
        if round % 7 == 6 {
            ends.reverse();
        }
        for (counter, is_rate) in [(true, true), (true, false), (false, false)] {
            let range_s = range_ms as f64 / 1000.0;
            let mut fast = Vec::new();
            rate_windows(
                &samples, &ends, range_ms, range_s, counter, is_rate, &mut fast,
            );
            let mut each = Vec::new();
            let one = |w: &[Sample], _: usize, end: i64, range_ms: i64| {
                extrapolated_rate(w, end - range_ms, end, range_s, counter, is_rate)
            };
            windows_into(&samples, &ends, range_ms, &one, &mut each);
            let bits =
                |p: &[Option<f64>]| p.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
            assert_eq!(
                bits(&fast),
                bits(&each),
                "round {round}, counter {counter}, rate {is_rate}"
            );
            compared += each.iter().flatten().count();
        }
    }
    assert!(compared > 100_000, "{compared} windows compared");
}
