//! JSON exactly as Prometheus writes it where clients are picky: sample values as strings
//! (`"NaN"`, `"+Inf"`, shortest round-trip digits), timestamps as seconds with up to three
//! decimals, `{"status": ...}` envelopes.

use std::fmt::Write;

use vigil_model::{FloatHistogram, Labels, Sample};
use vigil_promql::{Point, Value};

/// A float as Prometheus's API formats it (Go's `strconv.FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// A millisecond timestamp as seconds, as Prometheus's `MarshalTimestamp` writes it.
pub fn write_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    let _ = write!(out, "{}", a / 1000);
    let frac = a % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

pub fn write_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

pub fn write_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, lab) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, lab.name);
        out.push(':');
        write_str(out, lab.value);
    }
    out.push('}');
}

fn write_point(out: &mut String, s: &Sample) {
    out.push('[');
    write_timestamp(out, s.t);
    out.push_str(",\"");
    out.push_str(&format_value(s.v));
    out.push_str("\"]");
}

/// A native histogram as Prometheus's API writes it: count and sum as strings, then every
/// bucket with a count as `[boundary_rule, lower, upper, count]`, where the rule says which
/// bounds are inclusive (0: upper only, 1: lower only, 2: neither, 3: both).
pub fn write_histogram(out: &mut String, h: &FloatHistogram) {
    let _ = write!(
        out,
        "{{\"count\":\"{}\",\"sum\":\"{}\"",
        format_value(h.count),
        format_value(h.sum)
    );
    let mut first = true;
    for b in h.buckets().into_iter().filter(|b| b.count != 0.0) {
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        let rule = match (b.lower_inclusive, b.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        };
        let _ = write!(
            out,
            "[{rule},\"{}\",\"{}\",\"{}\"]",
            format_value(b.lower),
            format_value(b.upper),
            format_value(b.count)
        );
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

fn write_hist_point(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    write_timestamp(out, t);
    out.push(',');
    write_histogram(out, h);
    out.push(']');
}

fn write_instant(out: &mut String, p: &Point) {
    match &p.h {
        Some(h) => {
            out.push_str(",\"histogram\":");
            write_hist_point(out, p.t, h);
        }
        None => {
            out.push_str(",\"value\":");
            write_point(out, &Sample { t: p.t, v: p.v });
        }
    }
}

/// The `data` object of a query response.
pub fn write_query_data(out: &mut String, v: &Value) {
    write_query_data_with(out, v, None);
}

/// The query timings the API measures itself: the wait for a query slot, and the whole.
pub struct ExecTimes {
    pub queue_s: f64,
    pub total_s: f64,
}

/// As [`write_query_data`], with the query's `stats` after `result` (as Prometheus's
/// `QueryData`), when asked for.
pub fn write_query_data_with(
    out: &mut String,
    v: &Value,
    stats: Option<(&vigil_promql::QueryStats, &ExecTimes)>,
) {
    write_result(out, v);
    if let Some((s, exec)) = stats {
        write_stats(out, s, exec);
    }
    out.push('}');
}

/// `"stats":{"timings":...,"samples":...}` in Prometheus's field order; times in seconds;
/// per step `[time, samples]`, the time written as Go writes a float (no trailing zeros).
fn write_stats(out: &mut String, s: &vigil_promql::QueryStats, exec: &ExecTimes) {
    let _ = write!(
        out,
        ",\"stats\":{{\"timings\":{{\"evalTotalTime\":{},\"resultSortTime\":{},\"queryPreparationTime\":{},\"innerEvalTime\":{},\"execQueueTime\":{},\"execTotalTime\":{}}},\"samples\":{{",
        go_float(s.eval_total_s),
        go_float(s.result_sort_s),
        go_float(s.preparation_s),
        go_float(s.inner_eval_s),
        go_float(exec.queue_s),
        go_float(exec.total_s),
    );
    if let Some(steps) = &s.per_step
        && !steps.is_empty()
    {
        out.push_str("\"totalQueryableSamplesPerStep\":[");
        for (i, (t, n)) in steps.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            let mut ts = String::new();
            write_timestamp(&mut ts, *t);
            if ts.contains('.') {
                ts.truncate(ts.trim_end_matches('0').len());
            }
            let _ = write!(out, "{ts},{n}]");
        }
        out.push_str("],");
    }
    let _ = write!(
        out,
        "\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}",
        s.total_samples, s.peak_samples
    );
}

/// A float as Go's encoding/json writes one: the shortest form, no `.0`; below 1e-6 or from
/// 1e21 with an exponent, a positive one of at least two digits (`1e+21`, `1e-7`).
fn go_float(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let e = format!("{x:e}");
        return match e.split_once('e') {
            Some((m, exp)) if !exp.starts_with('-') => format!("{m}e+{exp:0>2}"),
            _ => e,
        };
    }
    format!("{x}")
}

fn write_result(out: &mut String, v: &Value) {
    let _ = write!(out, "{{\"resultType\":\"{}\",\"result\":", v.type_name());
    match v {
        Value::Scalar(s) => write_point(out, s),
        Value::String(t, s) => {
            out.push('[');
            write_timestamp(out, *t);
            out.push(',');
            write_str(out, s);
            out.push(']');
        }
        Value::Vector(v) => {
            out.push('[');
            for (i, (l, s)) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, l);
                write_instant(out, s);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push('[');
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(out, &s.labels);
                // Either list is left out when empty, as Prometheus does.
                if !s.samples.is_empty() || s.histograms.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, p) in s.samples.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(out, p);
                    }
                    out.push(']');
                }
                if !s.histograms.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, p) in s.histograms.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_hist_point(out, p.t, &p.h);
                    }
                    out.push(']');
                }
                out.push('}');
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn floats_are_written_as_go_writes_them() {
        use super::go_float;
        assert_eq!(go_float(0.0), "0");
        assert_eq!(go_float(201.0), "201");
        assert_eq!(go_float(0.000447452), "0.000447452");
        assert_eq!(go_float(1e-7), "1e-7");
        assert_eq!(go_float(2.5e-9), "2.5e-9");
        assert_eq!(go_float(1e21), "1e+21");
    }

    use super::*;

    #[test]
    fn values_and_timestamps_as_prometheus() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        let mut s = String::new();
        write_timestamp(&mut s, 1_435_781_451_781);
        s.push(' ');
        write_timestamp(&mut s, 1_435_781_451_000);
        s.push(' ');
        write_timestamp(&mut s, 1_435_781_451_050);
        assert_eq!(s, "1435781451.781 1435781451 1435781451.050");
    }

    #[test]
    fn native_histograms_in_prometheus_shape() {
        use vigil_model::FloatHistogram;
        let mut h = FloatHistogram {
            count: 5.0,
            sum: 7.5,
            zero_threshold: 0.001,
            zero_count: 1.0,
            ..Default::default()
        };
        h.set_positive(&[(1, 3.0), (2, 0.0)]);
        h.set_negative(&[(0, 1.0)]);
        let v = Value::Vector(vec![(
            Labels::from_pairs([("__name__", "h")]),
            Point {
                t: 1500,
                v: 0.0,
                h: Some(std::sync::Arc::new(h)),
            },
        )]);
        let mut out = String::new();
        write_query_data(&mut out, &v);
        // Negative bucket [-1, -0.5): rule 1; zero bucket: 3; positive (1, 2]: 0. Empty
        // buckets are left out.
        assert_eq!(
            out,
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"h"},"histogram":[1.500,{"count":"5","sum":"7.5","buckets":[[1,"-1","-0.5","1"],[3,"-0.001","0.001","1"],[0,"1","2","3"]]}]}]}"#
        );
    }
}
