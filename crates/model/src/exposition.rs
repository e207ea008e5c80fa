//! Zero-copy parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//!
//! [`Parser`] walks the input once and yields [`Entry`]s that borrow from it. Each sample line
//! is fully validated when it is scanned (names, quoting, escapes, duplicate label names,
//! UTF-8 of values, numbers), so [`SampleEntry::labels`] can re-walk the label block without
//! failing and without allocating unless a value has escapes. The scraper keys its series
//! cache by [`SampleEntry::series`], the raw `name{labels}` text, and never parses labels of a
//! series it has seen before. Nothing on the happy path allocates; a malformed input is an
//! error naming its 1-based line; no input makes the parser panic.
//!
//! Behaviour follows Prometheus 2.42's `promparse` and `openmetricsparse` (the grammar of their
//! lexers, Go's float syntax, the checks, the wording of the errors); the submodules say
//! where each format is lenient or strict. On top of Prometheus, a line whose labels repeat a
//! name (or name `__name__` beside a metric name) is rejected here rather than later in the
//! head. Names outside the classic set are read in Prometheus 3's quoted form
//! (`{"my.metric","label.name"="v"}`, `# TYPE "my.metric" counter`): a quoted string alone in
//! the braces is the metric name. Not implemented: the `le`/`quantile` value normalisation of
//! Prometheus 3 in the text formats.
//!
//! Module layout: `lex` (cursor, label blocks, floats, escapes, shared by both), `text`,
//! `openmetrics`, [`proto`], the protobuf format (decoded whole, since it is binary; the
//! only one with native histograms), which yields the same entries, and [`nhcb`], which turns
//! any format's classic histograms into native ones with custom buckets.

use std::borrow::Cow;

use crate::labels::{Labels, LabelsBuilder, METRIC_NAME};

/// A label value escaped for the text format: `\\`, `"` and newline, the only escapes its
/// parsers undo (Go's `%q`, [`crate::labels::quote`], escapes more).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Write a series' text form as the text formats write it: `name{a="x",...}`, or, for a
/// metric name outside the classic set, `{"my.metric",a="x"}`; label names outside it quoted.
/// Returns the metric name's length in `out` (0 when quoted inside the braces) and where the
/// label block starts (the text after `{`), if there are braces.
pub fn write_series<'l>(
    out: &mut String,
    name: &str,
    labels: impl IntoIterator<Item = (&'l str, &'l str)>,
) -> (usize, Option<usize>) {
    let start = out.len();
    let mut labels = labels.into_iter().peekable();
    let quoted = !crate::names::is_legacy_metric_name(name);
    let name_len = if quoted {
        out.push('{');
        let at = out.len();
        out.push('"');
        out.push_str(&escape_label_value(name));
        out.push('"');
        if labels.peek().is_some() {
            out.push(',');
        }
        return (0, Some(finish_labels(out, labels, at)));
    } else {
        out.push_str(name);
        out.len() - start
    };
    if labels.peek().is_none() {
        return (name_len, None);
    }
    out.push('{');
    let at = out.len();
    (name_len, Some(finish_labels(out, labels, at)))
}

fn finish_labels<'l>(
    out: &mut String,
    labels: impl Iterator<Item = (&'l str, &'l str)>,
    at: usize,
) -> usize {
    for (i, (n, v)) in labels.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_label(out, n, v);
    }
    out.push('}');
    at
}

/// One `name="value"` pair as the text formats write it: the value escaped, the name quoted
/// (and escaped) when outside the classic set.
pub(crate) fn push_label(out: &mut String, n: &str, v: &str) {
    if crate::names::is_legacy_label_name(n) {
        out.push_str(n);
    } else {
        out.push('"');
        out.push_str(&escape_label_value(n));
        out.push('"');
    }
    out.push_str("=\"");
    out.push_str(&escape_label_value(v));
    out.push('"');
}

mod lex;
pub mod nhcb;
mod openmetrics;
pub mod proto;
mod text;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Whether a series named `name` belongs to the family `family` of type `kind` (declared by
/// the last `# TYPE` line): the family's own name, or one of the suffixes its type writes
/// (a counter's `_total` on either side), as Prometheus decides which series a family's type
/// and unit label. `_created` series belong to none.
pub fn belongs_to_family(name: &str, family: &str, kind: MetricType) -> bool {
    if name == family {
        return true;
    }
    let suffix = |sfx: &[&str]| {
        name.strip_prefix(family)
            .is_some_and(|rest| sfx.contains(&rest))
    };
    match kind {
        MetricType::Histogram => suffix(&["_bucket", "_sum", "_count"]),
        // `_gsum`/`_gcount` in OpenMetrics; the protobuf decoder writes `_sum`/`_count`.
        MetricType::GaugeHistogram => suffix(&["_bucket", "_gsum", "_gcount", "_sum", "_count"]),
        MetricType::Summary => suffix(&["_sum", "_count"]),
        MetricType::Info => suffix(&["_info"]),
        MetricType::Counter => {
            let base = |s: &'_ str| s.strip_suffix("_total").unwrap_or(s).to_string();
            base(name) == base(family)
        }
        _ => false,
    }
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

    /// The number Prometheus's WAL metadata record and remote write's protocol give the type
    /// (`unknown` is 0).
    pub fn code(self) -> u8 {
        match self {
            MetricType::Unknown => 0,
            MetricType::Counter => 1,
            MetricType::Gauge => 2,
            MetricType::Histogram => 3,
            MetricType::GaugeHistogram => 4,
            MetricType::Summary => 5,
            MetricType::Info => 6,
            MetricType::StateSet => 7,
        }
    }

    /// The type [`MetricType::code`] gives `c`; None for a number no type has.
    pub fn from_code(c: u64) -> Option<MetricType> {
        Some(match c {
            0 => MetricType::Unknown,
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => return None,
        })
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
    Help {
        family: &'a str,
        help: Cow<'a, str>,
    },
    Type {
        family: &'a str,
        kind: MetricType,
    },
    Unit {
        family: &'a str,
        unit: &'a str,
    },
    Sample(SampleEntry<'a>),
    /// A native histogram: only the protobuf format ([`proto`]) carries them.
    Histogram(HistogramEntry<'a>),
}

/// A native histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramEntry<'a> {
    /// The series' text form, as [`SampleEntry::series`]: the scraper's cache key.
    pub series: &'a str,
    pub name: Cow<'a, str>,
    pub h: &'a crate::histogram::FloatHistogram,
    /// Integer counts (checked as Prometheus checks integer histograms).
    pub integer: bool,
    pub timestamp_ms: Option<i64>,
    /// The created (start) timestamp of its counts, in ms, when the body gives one.
    pub created_ms: Option<i64>,
    pub exemplars: Vec<Exemplar<'a>>,
    labels_raw: TextSpan,
    /// Built by [`nhcb::Converter`] from classic series (custom buckets, already checked),
    /// not scraped as a native histogram.
    pub converted: bool,
}

impl<'a> HistogramEntry<'a> {
    /// Labels of the series (without `__name__`), values unescaped.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter {
            s: self.labels_raw.of(self.series),
        }
    }

    /// The series as a float sample line would name it: for code that builds labels the
    /// same way for both kinds.
    pub fn as_sample(&self) -> SampleEntry<'a> {
        SampleEntry {
            series: self.series,
            name: self.name.clone(),
            value: 0.0,
            timestamp_ms: self.timestamp_ms,
            created_ms: self.created_ms,
            exemplar: None,
            labels_raw: self.labels_raw,
        }
    }
}

/// Where a series' label block is in its text, as offsets rather than a slice: an entry
/// stays within 128 bytes, which it is moved around in without a call to `memcpy` (a slice
/// here made parsing 10% slower).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct TextSpan {
    start: u32,
    end: u32,
}

impl TextSpan {
    /// The span of `part`, a slice of `whole`; empty if it is not one or lies past 4 GiB
    /// (the parsers refuse a series text that long before they get here).
    fn within(whole: &str, part: &str) -> TextSpan {
        let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
        let Some(start) = p.checked_sub(w) else {
            return TextSpan::default();
        };
        let end = match start.checked_add(part.len()) {
            Some(e) if e <= whole.len() => e,
            _ => return TextSpan::default(),
        };
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(s), Ok(e)) => TextSpan { start: s, end: e },
            _ => TextSpan::default(),
        }
    }

    fn of(self, whole: &str) -> &str {
        whole
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// A sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry<'a> {
    /// The raw text of the series exactly as in the input: metric name plus the `{...}` label
    /// block if any (blanks inside included), without value or timestamp. A slice of the
    /// input; the scraper's series cache key.
    pub series: &'a str,
    /// The metric name, e.g. `foo_total` (the full series name, not the family); owned only
    /// when a quoted name holds escapes.
    pub name: Cow<'a, str>,
    pub value: f64,
    /// Text format: integer milliseconds; OpenMetrics: float seconds, truncated to
    /// milliseconds as Prometheus does.
    pub timestamp_ms: Option<i64>,
    /// The created (start) timestamp of a counter, summary or histogram series, in ms: the
    /// protobuf format's `created_timestamp`, or OpenMetrics' `_created` line when the parser
    /// looks for them ([`Parser::with_created_timestamps`]).
    pub created_ms: Option<i64>,
    /// OpenMetrics only.
    pub exemplar: Option<Exemplar<'a>>,
    labels_raw: TextSpan,
}

impl<'a> SampleEntry<'a> {
    /// Labels of the line (without `__name__`), in input order, values unescaped.
    pub fn labels(&self) -> LabelIter<'a> {
        LabelIter {
            s: self.labels_raw.of(self.series),
        }
    }

    /// The full label set, `__name__` included, sorted; empty values are dropped (an empty
    /// value means "no label").
    pub fn to_labels(&self) -> Labels {
        let mut b = LabelsBuilder::with_capacity(8);
        b.set(METRIC_NAME, &*self.name);
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
    /// The exemplar's labels, in input order, values unescaped.
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
    /// A label's name and value; the name is owned only when quoted with escapes.
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        lex::next_label(&mut self.s)
    }
}

/// A malformed input, at a 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Iterates over the entries of an exposition body; see the module docs. After the first
/// error (or the end of the data) it yields `None`.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    cur: lex::Cursor<'a>,
    format: Format,
    done: bool,
    /// OpenMetrics' `_created` lines read as created timestamps, when asked for.
    created: Option<Box<Created>>,
}

/// What finding created timestamps in OpenMetrics needs: the family the last `# TYPE` line
/// opened, and what the last read ahead found, so a family is read ahead through about once
/// however its lines are ordered.
#[derive(Debug, Clone, Default)]
struct Created {
    family: String,
    kind: Option<MetricType>,
    /// The next `_created` line of the family after the parser's position: where it ends, its
    /// key and value. Every sample before it has that line as the first `_created` line after
    /// it, which is the only one Prometheus's parser looks at.
    next: Option<(usize, CreatedKey, i64)>,
    /// No `_created` line is left in the family (a read ahead reached its end).
    none_left: bool,
}

/// A sample's labels without `le` and `quantile`, sorted: what its `_created` line has.
type CreatedKey = Vec<(String, String)>;

/// Entries one read ahead for a `_created` line covers at most: a family's label set keeps
/// its lines together, so the line is a few (a histogram's buckets) away. Past it the family
/// is taken to have none left.
const CREATED_LOOKAHEAD: usize = 4096;

fn created_key(s: &SampleEntry<'_>) -> CreatedKey {
    let mut k: Vec<(String, String)> = s
        .labels()
        .filter(|(n, _)| *n != "le" && *n != "quantile")
        .map(|(n, v)| (n.to_string(), v.into_owned()))
        .collect();
    k.sort();
    k
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8], format: Format) -> Self {
        Parser {
            cur: lex::Cursor::new(input),
            format,
            done: false,
            created: None,
        }
    }

    /// In OpenMetrics, read each counter's, summary's and histogram's `_created` line as the
    /// created timestamp of the series of its label set ([`SampleEntry::created_ms`]) and
    /// yield no `_created` series, as Prometheus's parser does with
    /// `created-timestamp-zero-ingestion`: a sample's timestamp is that of the first
    /// `_created` line after it within its family, if that line has its labels (but `le` and
    /// `quantile`). A read ahead stops at a line of another family and after 4,096 entries.
    /// The text format has none.
    pub fn with_created_timestamps(mut self) -> Self {
        if self.format == Format::OpenMetrics {
            self.created = Some(Box::default());
        }
        self
    }

    /// The created timestamp of `s`, a sample of the family `c` is in: that of the first
    /// `_created` line of the family after it, if its labels are `s`'s.
    fn created_of(&self, c: &mut Created, s: &SampleEntry<'_>) -> Option<i64> {
        if c.none_left {
            return None;
        }
        if c.next.as_ref().is_none_or(|n| n.0 <= self.cur.pos) {
            c.next = None;
            let mut ahead = self.cur.clone();
            for _ in 0..CREATED_LOOKAHEAD {
                let Ok(Some(Entry::Sample(x))) = openmetrics::next(&mut ahead) else {
                    break;
                };
                let Some(rest) = x.name.strip_prefix(c.family.as_str()) else {
                    break;
                };
                if rest == "_created" {
                    c.next = Some((ahead.pos, created_key(&x), (x.value * 1000.0) as i64));
                    break;
                }
            }
            if c.next.is_none() {
                c.none_left = true;
                return None;
            }
        }
        let (_, key, t) = c.next.as_ref()?;
        (*key == created_key(s)).then_some(*t)
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = loop {
            let r = match self.format {
                Format::Text => text::next(&mut self.cur),
                Format::OpenMetrics => openmetrics::next(&mut self.cur),
            };
            let Some(mut c) = self.created.take() else {
                break r;
            };
            let r = match r {
                Ok(Some(Entry::Type { family, kind })) => {
                    c.family.clear();
                    c.family.push_str(family);
                    c.kind = Some(kind);
                    c.next = None;
                    c.none_left = false;
                    Ok(Some(Entry::Type { family, kind }))
                }
                Ok(Some(Entry::Sample(mut s)))
                    if matches!(
                        c.kind,
                        Some(MetricType::Counter | MetricType::Summary | MetricType::Histogram)
                    ) && s.name.starts_with(c.family.as_str()) =>
                {
                    if &s.name[c.family.len()..] == "_created" {
                        // Read as a timestamp, not stored as a series.
                        self.created = Some(c);
                        continue;
                    }
                    s.created_ms = self.created_of(&mut c, &s);
                    Ok(Some(Entry::Sample(s)))
                }
                r => r,
            };
            self.created = Some(c);
            break r;
        };
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(message) => {
                self.done = true;
                Some(Err(ParseError {
                    line: self.cur.line,
                    message,
                }))
            }
        }
    }
}

#[cfg(test)]
mod family_tests {
    use super::{MetricType as T, belongs_to_family as of};

    #[test]
    fn series_belong_to_the_family_their_suffix_names() {
        assert!(of("http_requests_total", "http_requests", T::Counter));
        assert!(of("http_requests_total", "http_requests_total", T::Counter));
        assert!(of("http_requests", "http_requests_total", T::Counter));
        assert!(!of("http_requests_created", "http_requests", T::Counter));
        assert!(of("lat_bucket", "lat", T::Histogram));
        assert!(!of("lat_gsum", "lat", T::Histogram));
        assert!(of("lat_gsum", "lat", T::GaugeHistogram));
        assert!(of("lat_count", "lat", T::GaugeHistogram));
        assert!(of("q_count", "q", T::Summary));
        assert!(!of("q_bucket", "q", T::Summary));
        assert!(of("build_info", "build", T::Info));
        assert!(of("temp", "temp", T::Gauge));
        assert!(!of("temp_total", "temp", T::Gauge));
        assert!(!of("other", "temp", T::Unknown));
    }
}
