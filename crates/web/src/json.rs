//! JSON exactly as Prometheus writes it where clients are picky: sample values as strings
//! (`"NaN"`, `"+Inf"`, shortest round-trip digits), timestamps as seconds with up to three
//! decimals, `{"status": ...}` envelopes.

use std::fmt::Write;

use vigil_model::{Labels, Sample};
use vigil_promql::Value;

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

/// The `data` object of a query response.
pub fn write_query_data(out: &mut String, v: &Value) {
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
                out.push_str(",\"value\":");
                write_point(out, s);
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
                out.push_str(",\"values\":[");
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(out, p);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
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
}
