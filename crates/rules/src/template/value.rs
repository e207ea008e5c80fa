//! Values a template works with, typed as Go would type them: the type decides comparisons
//! (`gt $value 80` is an error, as in Go), printing and the names in error messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::gofmt;

/// One sample of a `query` result, or of the alert itself.
#[derive(Debug, Clone, PartialEq)]
pub struct QSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// A native histogram sample: `.Value` is the histogram (as in Prometheus 2.52+), and
    /// `value` is 0.
    pub histogram: Option<vigil_promql::Hist>,
}

/// What `.Value` of a sample or alert is: its histogram if it has one, else its float.
fn value_of(value: f64, h: &Option<vigil_promql::Hist>) -> Value {
    match h {
        Some(h) => Value::Histogram(h.clone()),
        None => Value::Float(value),
    }
}

impl QSample {
    pub fn value(&self) -> Value {
        value_of(self.value, &self.histogram)
    }
}

/// The data an alert's label and annotation templates see (`.Labels`, `.ExternalLabels`,
/// `.ExternalURL`, `.Value`).
#[derive(Debug, Clone, Default)]
pub struct AlertData {
    pub labels: BTreeMap<String, String>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub value: f64,
    /// The alert's sample is a native histogram: `$value` is it.
    pub histogram: Option<vigil_promql::Hist>,
}

impl AlertData {
    pub fn value(&self) -> Value {
        value_of(self.value, &self.histogram)
    }
}

pub const ALERT_DATA_TYPE: &str = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }";

#[derive(Debug, Clone)]
pub enum Value {
    /// Go's invalid value: a missing field or key of an interface map. Prints `<no value>`.
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// `safeHtml`'s result: a string that prints as it is.
    Html(String),
    /// Label maps: a missing key reads as "" (Prometheus executes with `missingkey=zero`).
    StrMap(Arc<BTreeMap<String, String>>),
    /// `args`'s result: a missing key reads as `<no value>`.
    AnyMap(Arc<BTreeMap<String, Value>>),
    List(Arc<Vec<Value>>),
    Sample(Arc<QSample>),
    Query(Arc<Vec<Arc<QSample>>>),
    Data(Arc<AlertData>),
    /// Unix nanoseconds (`toTime`).
    Time(i64),
    /// Nanoseconds (`toDuration`).
    Duration(i64),
    /// A native histogram (`$value` of an alert on one, `.Value` of such a `query` sample):
    /// prints as Go's `FloatHistogram.String()`, converts to no number.
    Histogram(vigil_promql::Hist),
}

impl Value {
    /// Go's name of the value's type, as error messages show it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Missing => "<invalid reflect.Value>",
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Html(_) => "template.HTML",
            Value::StrMap(_) => "map[string]string",
            Value::AnyMap(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
            Value::Sample(_) => "*template.sample",
            Value::Query(_) => "template.queryResult",
            Value::Data(_) => ALERT_DATA_TYPE,
            Value::Time(_) => "*time.Time",
            Value::Duration(_) => "*time.Duration",
            Value::Histogram(_) => "*histogram.FloatHistogram",
        }
    }

    /// Go's truth: false, 0, nil, empty string, map or slice.
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::StrMap(m) => !m.is_empty(),
            Value::AnyMap(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Query(q) => !q.is_empty(),
            Value::Sample(_)
            | Value::Data(_)
            | Value::Time(_)
            | Value::Duration(_)
            | Value::Histogram(_) => true,
        }
    }

    /// As `fmt.Sprint` prints it.
    pub fn print(&self) -> String {
        match self {
            Value::Missing => "<no value>".into(),
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Uint(u) => u.to_string(),
            Value::Float(f) => gofmt::format_g(*f, None),
            Value::Str(s) | Value::Html(s) => s.clone(),
            Value::StrMap(m) => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::AnyMap(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(Value::print).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => format!("&{}", sample_print(s)),
            Value::Query(q) => {
                let parts: Vec<String> =
                    q.iter().map(|s| format!("&{}", sample_print(s))).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Data(d) => {
                let m = |m: &BTreeMap<String, String>| Value::StrMap(Arc::new(m.clone())).print();
                format!(
                    "{{{} {} {} {}}}",
                    m(&d.labels),
                    m(&d.external_labels),
                    d.external_url,
                    d.value().print()
                )
            }
            Value::Time(ns) => format_time(*ns),
            Value::Duration(ns) => format_duration(*ns),
            Value::Histogram(h) => h.go_string(),
        }
    }
}

fn sample_print(s: &QSample) -> String {
    format!(
        "{{{} {}}}",
        Value::StrMap(Arc::new(s.labels.clone())).print(),
        s.value().print()
    )
}

/// `time.Time.String()` of a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, mo, d) = vigil_model::time::civil_from_days(days);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

/// `time.Duration.String()`: `1h30m0s`, `1.5s`, `500ms`, `0s`.
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Below a second: the largest unit that keeps a leading digit.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac_units(u, div));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = u / 60_000_000_000 % 60;
        let s_ns = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac_units(s_ns, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

fn frac_units(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_print_as_go() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(format_time(-1_000_000_000), "1969-12-31 23:59:59 +0000 UTC");
        assert_eq!(
            format_time(1_435_065_584_128_000_000),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(
            format_time(9_223_372_036_000_000_000),
            "2262-04-11 23:47:16 +0000 UTC"
        );
        assert_eq!(format_duration(5_400_000_000_000), "1h30m0s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(500_000_000), "500ms");
        assert_eq!(format_duration(1_000), "1µs");
        assert_eq!(format_duration(-60_000_000_000), "-1m0s");
        assert_eq!(format_duration(1_800_000_000_000), "30m0s");
    }
}
