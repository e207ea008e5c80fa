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

/// `extrapolated_rate` as it was before `rate_windows` (commit 1062da6's parent), kept
/// verbatim as the oracle the faster form must match bit for bit.
#[allow(clippy::too_many_arguments)]
fn extrapolated_rate_before(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    range_s: f64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    // Resets are rare: looking for one first takes compares only, where adding them up as
    // the window is walked chained every step through `result` (a third of a range query's
    // `rate` in `perf`). The sum, when there is one, is Prometheus's, in its order.
    if counter && w.windows(2).any(|p| p[1].v < p[0].v) {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    // Prometheus's decisions, exactly; its arithmetic in milliseconds. Each decision is first
    // made without dividing (multiplied out, in milliseconds); only when that lands within
    // rounding distance of the boundary, or overflows, is it made again with Prometheus's own
    // expression in seconds, so results never flip at an exact tie (a gap of exactly 1.1
    // intervals is common with regular scrapes). Divisions were most of the cost of a range
    // query's `rate`.
    let sampled = (last.t - first.t) as f64;
    let intervals = (w.len() - 1) as f64;
    let mut to_start = (first.t - range_start) as f64;
    let mut to_end = (range_end - last.t) as f64;
    let secs = |ms: f64| ms / 1000.0;
    // Prometheus: `to_s >= (sampled_s / intervals) * 1.1`.
    let beyond_threshold = |to: f64| {
        let (l, r) = (to * intervals, sampled * 1.1);
        if (l - r).abs() > r * 1e-12 {
            l > r
        } else {
            secs(to) >= (secs(sampled) / intervals) * 1.1
        }
    };
    if beyond_threshold(to_start) {
        to_start = sampled / intervals / 2.0;
    }
    // The counter's zero point limits the extrapolation. Prometheus: `sampled_s * (first /
    // result) < to_start_s`.
    if counter && result > 0.0 && first.v >= 0.0 {
        let (l, r) = (sampled * first.v, to_start * result);
        let below = if l.is_finite() && r.is_finite() && (l - r).abs() > r.abs() * 1e-12 {
            l < r
        } else {
            secs(sampled) * (first.v / result) < secs(to_start)
        };
        if below {
            to_start = sampled * (first.v / result);
        }
    }
    if beyond_threshold(to_end) {
        to_end = sampled / intervals / 2.0;
    }
    let span = sampled + to_start + to_end;
    // The factor first, as Prometheus (`result * span` could overflow where it does not). It
    // can differ from Prometheus's in the last bit (one division instead of five).
    Some(
        result
            * if is_rate {
                span / (sampled * range_s)
            } else {
                span / sampled
            },
    )
}

/// `rate_windows` works each window shape's decisions out once and finds drops once per
/// series: over series with jittered, missing and repeated times, resets, NaNs, negative
/// values, huge values and zeros, with ends in and out of order, at steps
/// that do and do not divide the interval, its answers are bit for bit those of
/// the code before per window, for `rate`, `increase` and `delta`.
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
            t += match next() % 12 {
                0 => 15_000 + (next() % 2_000) as i64 - 1_000,
                1 => 45_000,
                2 => 0, // a repeated time
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
            for i in (1..ends.len()).rev() {
                ends.swap(i, (next() as usize) % (i + 1));
            }
        }
        for (counter, is_rate) in [(true, true), (true, false), (false, false)] {
            let range_s = range_ms as f64 / 1000.0;
            let mut fast = Vec::new();
            rate_windows(
                &samples, &ends, range_ms, range_s, counter, is_rate, &mut fast,
            );
            // Each window alone, found by a plain search, through the code before.
            let each: Vec<Option<f64>> = ends
                .iter()
                .map(|&end| {
                    let w: Vec<Sample> = samples
                        .iter()
                        .copied()
                        .filter(|s| s.t > end - range_ms && s.t <= end)
                        .collect();
                    extrapolated_rate_before(&w, end - range_ms, end, range_s, counter, is_rate)
                })
                .collect();
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

/// Windows whose first value sits right at, and around, the counter's zero point (where
/// `rate_windows` skips the exact test for values clearly above it): the same answers, bit
/// for bit, as `extrapolated_rate_before`.
#[test]
fn rate_windows_zero_point_near_ties() {
    let mut compared = 0;
    for to_start in [1i64, 999, 5_000, 7_500, 14_999] {
        for gap in [1i64, 15_000, 60_000] {
            for result in [1.0, 3.0, 12.0, 1e-9, 1e12, 7.25] {
                let (n, range_ms) = (5usize, 4 * gap + to_start + 1);
                let sampled = (4 * gap) as f64;
                // The distance to the start the zero point is weighed against: beyond 1.1
                // intervals, half an interval.
                let to_start_used = if to_start as f64 > 1.1 * gap as f64 {
                    sampled / 8.0
                } else {
                    to_start as f64
                };
                let tie = result * to_start_used / sampled;
                for rel in [
                    0.0, 1e-15, -1e-15, 1e-9, -1e-9, 1e-7, 9.9e-7, 1e-6, 1.1e-6, 1e-3,
                ] {
                    let first = tie * (1.0 + rel);
                    for first in [
                        first,
                        f64::from_bits(first.to_bits() + 1),
                        f64::from_bits(first.to_bits().saturating_sub(1)),
                    ] {
                        let samples: Vec<Sample> = (0..n)
                            .map(|i| Sample {
                                t: 100_000 + to_start + i as i64 * gap,
                                v: first + result * i as f64 / (n - 1) as f64,
                            })
                            .collect();
                        let end = 100_000 + range_ms;
                        let range_s = range_ms as f64 / 1000.0;
                        for is_rate in [true, false] {
                            let mut fast = Vec::new();
                            rate_windows(
                                &samples,
                                &[end],
                                range_ms,
                                range_s,
                                true,
                                is_rate,
                                &mut fast,
                            );
                            let before = extrapolated_rate_before(
                                &samples,
                                end - range_ms,
                                end,
                                range_s,
                                true,
                                is_rate,
                            );
                            assert_eq!(
                                fast[0].map(f64::to_bits),
                                before.map(f64::to_bits),
                                "to_start {to_start}, gap {gap}, result {result}, first {first}"
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(compared, 5 * 3 * 6 * 10 * 3 * 2);
}
