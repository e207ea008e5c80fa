//! Zero-copy parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! [`Parser`] walks the input once, line by line, and yields [`Entry`]s that borrow from it.
//! Each sample line is fully validated when it is scanned (names, quoting, escapes, duplicate
//! labels, numbers), so [`SampleEntry::labels`] can re-walk the label block without failing
//! and without allocating unless a value has escapes. The scraper keys its series cache by
//! [`SampleEntry::series`], the raw `name{labels}` text, and never parses labels of a series
//! it has seen before. A malformed line is an error naming its line number; nothing panics.

use std::borrow::Cow;

use crate::labels::{Labels, LabelsBuilder, METRIC_NAME};

/// The exposition format of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// From an HTTP Content-Type: OpenMetrics for `application/openmetrics-text`, the text
    /// format for anything else (as Prometheus falls back).
    pub fn from_content_type(ct: &str) -> Format {
        let media = ct.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn parse(s: &str, f: Format) -> Option<MetricType> {
        Some(match (s, f) {
            ("counter", _) => MetricType::Counter,
            ("gauge", _) => MetricType::Gauge,
            ("histogram", _) => MetricType::Histogram,
            ("summary", _) => MetricType::Summary,
            ("untyped", Format::Text) => MetricType::Unknown,
            ("unknown", Format::OpenMetrics) => MetricType::Unknown,
            ("gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            ("info", Format::OpenMetrics) => MetricType::Info,
            ("stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }
}

/// One meaningful line.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    Help { family: &'a str, help: Cow<'a, str> },
    Type { family: &'a str, kind: MetricType },
    Unit { family: &'a str, unit: &'a str },
    Sample(SampleEntry<'a>),
}

/// A sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry<'a> {
    /// The raw `name{labels}` text as in the input (the series cache key).
    pub series: &'a str,
    pub name: &'a str,
    pub value: f64,
    /// Text format: integer milliseconds; OpenMetrics: float seconds, converted.
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'a>>,
    labels_raw: &'a str,
}

impl<'a> SampleEntry<'a> {
    /// Labels of the line (without `__name__`), in input order, values unescaped.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter { s: self.labels_raw }
    }

    /// The full label set, `__name__` included.
    pub fn to_labels(&self) -> Labels {
        let mut b = LabelsBuilder::with_capacity(8);
        b.set(METRIC_NAME, self.name);
        for (n, v) in self.labels() {
            b.set(n, v.into_owned());
        }
        b.build()
    }
}

/// An OpenMetrics exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    labels_raw: &'a str,
}

impl<'a> Exemplar<'a> {
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter { s: self.labels_raw }
    }
}

/// Walks an already validated label block (the text between the braces).
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    s: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s.trim_start_matches([' ', '\t', ',']);
        if s.is_empty() {
            return None;
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim_end();
        let rest = s[eq + 1..].trim_start();
        let body = rest.strip_prefix('"')?;
        let b = body.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while i < b.len() && b[i] != b'"' {
            if b[i] == b'\\' {
                escaped = true;
                i += 1;
            }
            i += 1;
        }
        let raw = body.get(..i)?;
        self.s = body.get(i + 1..).unwrap_or("");
        Some((
            name,
            if escaped {
                Cow::Owned(unescape_label(raw))
            } else {
                Cow::Borrowed(raw)
            },
        ))
    }
}

fn unescape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn unescape_help(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// A malformed input, at a 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// See the module docs.
pub struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    done: bool,
    seen_eof: bool,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Parser {
            b: input,
            pos: 0,
            line: 0,
            format,
            done: false,
            seen_eof: false,
        }
    }

    fn fail(&mut self, message: impl Into<String>) -> Option<Result<Entry<'a>, ParseError>> {
        self.done = true;
        Some(Err(ParseError {
            line: self.line,
            message: message.into(),
        }))
    }
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn is_label_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_label_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A short quote of the input around an error.
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(30)
        .collect();
    format!("{t:?}")
}

/// A float as Go's `strconv.ParseFloat` reads it (decimal forms; `NaN`, `Inf` spellings).
fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains('_') {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !unsigned
        .bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == b'.')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Scan a label block starting after `{`; returns the index just past `}` or an error.
/// `named`: the line gave a metric name, so a `__name__` label would duplicate it.
fn scan_labels(line: &str, mut i: usize, named: bool) -> Result<usize, String> {
    let b = line.as_bytes();
    let mut seen: [(usize, usize); 16] = [(0, 0); 16];
    let mut seen_n = 0usize;
    let mut more: Vec<&str> = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            return Err("unexpected end of line in label set, expected \"}\"".into());
        }
        if b[i] == b'}' {
            return Ok(i + 1);
        }
        if !is_label_start(b[i]) {
            return Err(format!("invalid label name {}", token(&line[i..])));
        }
        let ns = i;
        while i < b.len() && is_label_char(b[i]) {
            i += 1;
        }
        let name = &line[ns..i];
        // Duplicate label names within a line make an invalid series.
        let dup = (named && name == "__name__")
            || seen[..seen_n.min(16)]
                .iter()
                .any(|&(s, e)| &line[s..e] == name)
            || more.contains(&name);
        if dup {
            return Err(format!("duplicate label name {name:?}"));
        }
        if seen_n < 16 {
            seen[seen_n] = (ns, i);
        } else {
            more.push(name);
        }
        seen_n += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(format!(
                "expected \"=\" after label name {name:?}, got {}",
                if i >= b.len() {
                    "end of line".into()
                } else {
                    token(&line[i..])
                }
            ));
        }
        i += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return Err(format!(
                "expected quoted label value for {name:?}, got {}",
                if i >= b.len() {
                    "end of line".into()
                } else {
                    token(&line[i..])
                }
            ));
        }
        i += 1;
        loop {
            match b.get(i) {
                None => return Err(format!("unterminated label value for {name:?}")),
                Some(b'"') => break,
                Some(b'\\') => {
                    if i + 1 >= b.len() {
                        return Err(format!("unterminated label value for {name:?}"));
                    }
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        i += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            Some(_) => {
                return Err(format!(
                    "expected \",\" or \"}}\" after label value, got {}",
                    token(&line[i..])
                ));
            }
            None => return Err("unexpected end of line in label set, expected \"}\"".into()),
        }
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.pos >= self.b.len() {
                self.done = true;
                if self.format == Format::OpenMetrics && !self.seen_eof {
                    self.line += 1;
                    return self.fail("data does not end with # EOF");
                }
                return None;
            }
            let start = self.pos;
            let end = self.b[start..]
                .iter()
                .position(|&c| c == b'\n')
                .map(|p| start + p)
                .unwrap_or(self.b.len());
            self.pos = end + 1;
            self.line += 1;
            let Ok(line) = std::str::from_utf8(&self.b[start..end]) else {
                return self.fail("invalid UTF-8");
            };
            let line = line.strip_suffix('\r').unwrap_or(line);
            if self.seen_eof {
                if self.pos >= self.b.len() && line.is_empty() {
                    continue; // a final newline after "# EOF"
                }
                return self.fail("unexpected data after # EOF");
            }
            if line.trim().is_empty() {
                if self.format == Format::OpenMetrics {
                    return self.fail("unexpected empty line");
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                match self.meta(rest) {
                    Ok(Some(e)) => return Some(Ok(e)),
                    Ok(None) => continue,
                    Err(m) => return self.fail(m),
                }
            }
            return match self.sample(line) {
                Ok(s) => Some(Ok(Entry::Sample(s))),
                Err(m) => self.fail(m),
            };
        }
    }
}

impl<'a> Parser<'a> {
    /// `# HELP|TYPE|UNIT|EOF ...`; other comments are skipped (text) or errors (OpenMetrics).
    fn meta(&mut self, rest: &'a str) -> Result<Option<Entry<'a>>, String> {
        let om = self.format == Format::OpenMetrics;
        let body = if om {
            match rest.strip_prefix(' ') {
                Some(b) => b,
                None => return Err(format!("invalid comment {:?}", format!("#{rest}"))),
            }
        } else {
            rest.trim_start_matches([' ', '\t'])
        };
        if om && body == "EOF" {
            self.seen_eof = true;
            return Ok(None);
        }
        let (kw, args) = match body.split_once([' ', '\t']) {
            Some((k, a)) => (k, a),
            None => (body, ""),
        };
        if !(matches!(kw, "HELP" | "TYPE") || om && kw == "UNIT") {
            if om {
                return Err(format!("invalid metadata line {:?}", format!("#{rest}")));
            }
            return Ok(None); // a plain comment
        }
        let args = if om {
            args
        } else {
            args.trim_start_matches([' ', '\t'])
        };
        let (family, text) = match args.split_once([' ', '\t']) {
            Some((f, t)) => (f, t),
            None => (args, ""),
        };
        if family.is_empty()
            || !is_name_start(family.as_bytes()[0])
            || !family.bytes().all(is_name_char)
        {
            return Err(format!(
                "invalid metric name {} in {kw} line",
                token(family)
            ));
        }
        match kw {
            "HELP" => Ok(Some(Entry::Help {
                family,
                help: unescape_help(if om {
                    text
                } else {
                    text.trim_start_matches([' ', '\t'])
                }),
            })),
            "TYPE" => {
                let t = text.trim();
                match MetricType::parse(t, self.format) {
                    Some(kind) => Ok(Some(Entry::Type { family, kind })),
                    None => Err(format!("invalid metric type {t:?}")),
                }
            }
            _ => {
                let unit = text.trim();
                if !unit.is_empty() && !family.ends_with(&format!("_{unit}")) {
                    return Err(format!("unit {unit:?} not a suffix of metric {family:?}"));
                }
                Ok(Some(Entry::Unit { family, unit }))
            }
        }
    }

    fn sample(&self, line: &'a str) -> Result<SampleEntry<'a>, String> {
        let om = self.format == Format::OpenMetrics;
        let b = line.as_bytes();
        let mut i = if om {
            0
        } else {
            line.len() - line.trim_start_matches([' ', '\t']).len()
        };
        let name_start = i;
        if i >= b.len() || !is_name_start(b[i]) {
            return Err(format!("{} is not a valid start token", token(&line[i..])));
        }
        while i < b.len() && is_name_char(b[i]) {
            i += 1;
        }
        let name = &line[name_start..i];
        let mut labels_raw = "";
        if b.get(i) == Some(&b'{') {
            let close = scan_labels(line, i + 1, true)?;
            labels_raw = &line[i + 1..close - 1];
            i = close;
        }
        let series = &line[name_start..i];
        let rest = &line[i..];
        if !rest.starts_with([' ', '\t']) {
            return Err(if rest.is_empty() {
                format!("expected value after metric {name:?}")
            } else {
                format!("expected value after metric, got {}", token(rest))
            });
        }
        let rest = rest.trim_start_matches([' ', '\t']);
        // Value, optional timestamp, optional exemplar.
        let (main, exemplar) = match rest.find(" # ") {
            Some(p) if om => (&rest[..p], Some(&rest[p + 3..])),
            _ => (rest, None),
        };
        let mut fields = main.split([' ', '\t']).filter(|s| !s.is_empty());
        let vs = fields
            .next()
            .ok_or_else(|| format!("expected value after metric {name:?}"))?;
        let value = parse_float(vs).ok_or_else(|| format!("invalid value {vs:?}"))?;
        let timestamp_ms = match fields.next() {
            None => None,
            Some(ts) => Some(self.timestamp(ts)?),
        };
        if let Some(extra) = fields.next() {
            return Err(format!("unexpected {} after sample", token(extra)));
        }
        let exemplar = match exemplar {
            None => None,
            Some(e) => Some(self.exemplar(e, name)?),
        };
        Ok(SampleEntry {
            series,
            name,
            value,
            timestamp_ms,
            exemplar,
            labels_raw,
        })
    }

    fn timestamp(&self, ts: &str) -> Result<i64, String> {
        if self.format == Format::OpenMetrics {
            let f = parse_float(ts)
                .filter(|f| f.is_finite())
                .ok_or_else(|| format!("invalid timestamp {ts:?}"))?;
            Ok((f * 1000.0).round() as i64)
        } else {
            ts.parse::<i64>()
                .map_err(|_| format!("invalid timestamp {ts:?}"))
        }
    }

    fn exemplar(&self, e: &'a str, name: &str) -> Result<Exemplar<'a>, String> {
        if !(name.ends_with("_total") || name.ends_with("_bucket")) {
            return Err(format!(
                "exemplars are only allowed on counter _total and histogram _bucket samples, not {name:?}"
            ));
        }
        let e = e.trim_start();
        if !e.starts_with('{') {
            return Err(format!("expected label set in exemplar, got {}", token(e)));
        }
        let close = scan_labels(e, 1, false).map_err(|m| format!("exemplar: {m}"))?;
        let labels_raw = &e[1..close - 1];
        let total: usize = LabelIter { s: labels_raw }
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum();
        if total > 128 {
            return Err(format!(
                "exemplar labels have {total} UTF-8 characters, exceeding the limit of 128"
            ));
        }
        let mut fields = e[close..].split([' ', '\t']).filter(|s| !s.is_empty());
        let vs = fields.next().ok_or("expected exemplar value")?;
        let value = parse_float(vs).ok_or_else(|| format!("invalid exemplar value {vs:?}"))?;
        let timestamp_ms = match fields.next() {
            None => None,
            Some(ts) => Some(self.timestamp(ts).map_err(|m| format!("exemplar: {m}"))?),
        };
        if let Some(extra) = fields.next() {
            return Err(format!("unexpected {} after exemplar", token(extra)));
        }
        Ok(Exemplar {
            value,
            timestamp_ms,
            labels_raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &str, f: Format) -> Result<Vec<Entry<'_>>, ParseError> {
        Parser::new(input.as_bytes(), f).collect()
    }

    fn samples(input: &str, f: Format) -> Vec<(String, f64, Option<i64>)> {
        all(input, f)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Sample(s) => Some((s.to_labels().to_string(), s.value, s.timestamp_ms)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_format_basics() {
        let input = "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 33 123123\n\n# a comment\n_metric_starting_with_underscore 1\ntestmetric{label=\"\\\"bar\\\"\"} 1\ntestmetric{_label=\"baz\", a=\"b\",} 2\nnan NaN\nninf -Inf\npinf +Inf\nexp 1.5e-3\n  indented 7\nnoeol 1";
        let e = all(input, Format::Text).unwrap();
        assert_eq!(
            e[0],
            Entry::Help {
                family: "go_goroutines",
                help: Cow::Borrowed("Number of goroutines.")
            }
        );
        assert_eq!(
            e[1],
            Entry::Type {
                family: "go_goroutines",
                kind: MetricType::Gauge
            }
        );
        let s = samples(input, Format::Text);
        assert_eq!(s[0], ("go_goroutines{}".into(), 33.0, Some(123123)));
        assert_eq!(s[2].0, r#"testmetric{label="\"bar\""}"#);
        assert_eq!(s[3].0, r#"testmetric{_label="baz", a="b"}"#);
        assert!(s[4].1.is_nan());
        assert_eq!(s[5].1, f64::NEG_INFINITY);
        assert_eq!(s[6].1, f64::INFINITY);
        assert_eq!(s[7].1, 1.5e-3);
        assert_eq!(s[8].0, "indented{}");
        assert_eq!(s[9].0, "noeol{}");
    }

    #[test]
    fn series_is_a_slice_of_the_input_and_labels_unescape() {
        let input = "m{a=\"x\\ny\",b=\"\\\\\"} 1\n";
        let e = all(input, Format::Text).unwrap();
        let Entry::Sample(s) = &e[0] else { panic!() };
        assert_eq!(s.series, "m{a=\"x\\ny\",b=\"\\\\\"}");
        let base = input.as_ptr() as usize;
        assert!(
            (s.series.as_ptr() as usize) >= base
                && (s.series.as_ptr() as usize) < base + input.len()
        );
        let l: Vec<(String, String)> = s
            .labels()
            .map(|(n, v)| (n.to_string(), v.into_owned()))
            .collect();
        assert_eq!(
            l,
            vec![("a".into(), "x\ny".into()), ("b".into(), "\\".into())]
        );
    }

    #[test]
    fn text_errors_name_the_line() {
        let cases = [
            ("a 1\nb{ 2\n", 2, "invalid label name"),
            ("a{x=\"1\" 2\n", 1, "expected \",\" or \"}\""),
            ("a{x=1} 2\n", 1, "expected quoted label value"),
            ("a{x=\"1\",x=\"2\"} 2\n", 1, "duplicate label name \"x\""),
            // Found by fuzzing: a __name__ label next to a metric name.
            (
                "#\na{__name__=\"\"} 1 1",
                2,
                "duplicate label name \"__name__\"",
            ),
            ("a 1\n\n1a 2\n", 3, "is not a valid start token"),
            ("a abc\n", 1, "invalid value"),
            ("a 1 1.5\n", 1, "invalid timestamp"),
            ("a 1 2 3\n", 1, "unexpected"),
            ("# TYPE a foo\n", 1, "invalid metric type \"foo\""),
            ("a\n", 1, "expected value"),
            ("a{x=\"unterminated} 1\n", 1, "unterminated"),
        ];
        for (input, line, msg) in cases {
            let err = all(input, Format::Text).unwrap_err();
            assert_eq!(err.line, line, "{input:?}: {err}");
            assert!(err.message.contains(msg), "{input:?}: {err}");
        }
        let err = all("a 1\n\u{0}\u{ff}", Format::Text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(Parser::new(b"a 1\n\xff\xfe 2\n", Format::Text).any(|e| e.is_err()));
    }

    /// Found by fuzzing: a `__name__` label next to a metric name used to erase the name.
    #[test]
    fn name_label_beside_metric_name_is_a_duplicate() {
        let err = all("#\na{__name__=\"\"} 1 1", Format::Text).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(
            err.message.contains("duplicate label name \"__name__\""),
            "{err}"
        );
    }

    #[test]
    fn openmetrics_basics() {
        let input = "# HELP a help\n# TYPE a counter\n# UNIT a_seconds seconds\na_total{x=\"1\"} 1 1.5 # {trace_id=\"abc\"} 0.5 1.2\na_created 1520430000.123\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3 # {} 1\nh_count 3\nh_sum 4.5\n# EOF\n";
        let e = all(input, Format::OpenMetrics).unwrap();
        assert_eq!(
            e[2],
            Entry::Unit {
                family: "a_seconds",
                unit: "seconds"
            }
        );
        let Entry::Sample(s) = &e[3] else { panic!() };
        assert_eq!(s.timestamp_ms, Some(1500));
        let ex = s.exemplar.as_ref().unwrap();
        assert_eq!(ex.value, 0.5);
        assert_eq!(ex.timestamp_ms, Some(1200));
        assert_eq!(ex.labels().next().unwrap().1, "abc");
        assert_eq!(samples(input, Format::OpenMetrics).len(), 5);
    }

    #[test]
    fn openmetrics_errors() {
        let cases = [
            ("a 1\n", 2, "does not end with # EOF"),
            ("a 1\n# EOF\nb 2\n", 3, "after # EOF"),
            ("a 1\n\n# EOF\n", 2, "empty line"),
            ("# TYPE a untyped\n# EOF\n", 1, "invalid metric type"),
            ("# random comment\n# EOF\n", 1, "invalid metadata"),
            (
                "a 1 # {x=\"y\"} 1\n# EOF\n",
                1,
                "exemplars are only allowed",
            ),
            ("# UNIT a_bytes seconds\n# EOF\n", 1, "not a suffix"),
        ];
        for (input, line, msg) in cases {
            let err = all(input, Format::OpenMetrics).unwrap_err();
            assert_eq!(err.line, line, "{input:?}: {err}");
            assert!(err.message.contains(msg), "{input:?}: {err}");
        }
    }

    #[test]
    fn content_type_selects_format() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4"),
            Format::Text
        );
        assert_eq!(Format::from_content_type(""), Format::Text);
    }

    /// Random mutations of valid inputs never panic, and every accepted sample's labels can
    /// be read back.
    #[test]
    fn mutations_never_panic() {
        let seeds = [
            "# HELP a x\n# TYPE a counter\na_total{x=\"1\",y=\"\\\"\"} 1 1.5 # {t=\"a\"} 1\n# EOF\n",
            "m{a=\"b\"} 1 100\nn 2\n# TYPE q summary\nq{quantile=\"0.5\"} 3\n",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for seed in seeds {
            for _ in 0..20_000 {
                let mut b = seed.as_bytes().to_vec();
                for _ in 0..(x % 4 + 1) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let i = (x as usize) % b.len();
                    match x % 3 {
                        0 => b[i] = (x >> 8) as u8,
                        1 => {
                            b.remove(i);
                        }
                        _ => b.insert(i, b"{}\"\\ #,=\n"[(x >> 16) as usize % 9]),
                    }
                    if b.is_empty() {
                        break;
                    }
                }
                for f in [Format::Text, Format::OpenMetrics] {
                    for e in Parser::new(&b, f) {
                        if let Ok(Entry::Sample(s)) = e {
                            let _ = s.to_labels();
                            if let Some(ex) = &s.exemplar {
                                let _ = ex.labels().count();
                            }
                        }
                    }
                }
            }
        }
    }
}
