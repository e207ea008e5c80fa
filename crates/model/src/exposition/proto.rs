//! The protobuf exposition format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`): length-prefixed
//! `MetricFamily` messages, the only format that carries native histograms.
//!
//! Decoded whole into [`Decoded`], whose [`Decoded::entries`] are the same [`Entry`]s the text
//! parsers yield, so the scraper handles every format with one loop: each series gets a text
//! form (`name{label="value",...}`, values escaped as in the text format) that keys the
//! scraper's series cache and that [`SampleEntry::labels`] reads back. Classic histograms and
//! summaries become their `_count`, `_sum`, `_bucket`/quantile series as Prometheus's
//! protobuf parser makes them (`le` and `quantile` values as OpenMetrics writes floats:
//! `1.0`, `+Inf`); a native histogram becomes an [`Entry::Histogram`] when native histograms
//! are scraped, and its classic buckets too when asked for. A timestamp of 0 means none, as in
//! Prometheus (proto3 cannot tell them apart). Names follow the legacy rules, as everywhere
//! in vigil: another name is an error naming it.

use super::{Entry, Exemplar, HistogramEntry, MetricType, ParseError, SampleEntry};
use crate::histogram::{CounterResetHint, FloatHistogram, Span, absolute_from_deltas};

/// The media type of the format, without parameters.
pub const MEDIA_TYPE: &str = "application/vnd.google.protobuf";

/// What to make of histograms that carry native buckets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Native histograms become histogram samples (else only their classic buckets are read).
    pub native_histograms: bool,
    /// Classic buckets of a histogram that is also native are read too.
    pub keep_classic: bool,
}

/// One decoded body: what [`Decoded::entries`] lends out.
#[derive(Debug, Default)]
pub struct Decoded {
    items: Vec<Item>,
}

#[derive(Debug)]
enum Item {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Sample {
        series: String,
        name_len: usize,
        value: f64,
        timestamp_ms: Option<i64>,
        exemplar: Option<OwnedExemplar>,
    },
    Histogram {
        series: String,
        name_len: usize,
        h: FloatHistogram,
        timestamp_ms: Option<i64>,
        exemplars: Vec<OwnedExemplar>,
    },
}

#[derive(Debug, Clone)]
struct OwnedExemplar {
    value: f64,
    timestamp_ms: Option<i64>,
    /// The label block's text, as a text-format exemplar has it.
    labels: String,
}

impl OwnedExemplar {
    fn entry(&self) -> Exemplar<'_> {
        Exemplar {
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            labels_raw: &self.labels,
        }
    }
}

/// The label block of a series' text form: `name{...}` without the name and braces.
fn labels_of(series: &str, name_len: usize) -> &str {
    let rest = &series[name_len..];
    rest.strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or("")
}

impl Decoded {
    /// The entries in the order Prometheus's protobuf parser yields them: per family its
    /// help, unit and type, then its series.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.items.iter().map(|i| match i {
            Item::Help(f, h) => Entry::Help {
                family: f,
                help: h.as_str().into(),
            },
            Item::Type(f, k) => Entry::Type {
                family: f,
                kind: *k,
            },
            Item::Unit(f, u) => Entry::Unit { family: f, unit: u },
            Item::Sample {
                series,
                name_len,
                value,
                timestamp_ms,
                exemplar,
            } => Entry::Sample(SampleEntry {
                series,
                name: &series[..*name_len],
                value: *value,
                timestamp_ms: *timestamp_ms,
                exemplar: exemplar.as_ref().map(OwnedExemplar::entry),
                labels_raw: labels_of(series, *name_len),
            }),
            Item::Histogram {
                series,
                name_len,
                h,
                timestamp_ms,
                exemplars,
            } => Entry::Histogram(HistogramEntry {
                series,
                name: &series[..*name_len],
                h,
                timestamp_ms: *timestamp_ms,
                exemplars: exemplars.iter().map(OwnedExemplar::entry).collect(),
                labels_raw: labels_of(series, *name_len),
            }),
        })
    }

    /// Series (float and histogram) decoded.
    pub fn series_count(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, Item::Sample { .. } | Item::Histogram { .. }))
            .count()
    }
}

/// Whether a Content-Type names this format.
pub fn is_proto(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    media.eq_ignore_ascii_case(MEDIA_TYPE)
}

/// Decode a whole body. An error names the family (by its position, and name once known)
/// and what is wrong; nothing of a body with an error is used.
pub fn decode(body: &[u8], opts: Options) -> Result<Decoded, ParseError> {
    let mut out = Decoded::default();
    let mut r = Reader::new(body);
    let mut index = 0usize;
    while !r.done() {
        index += 1;
        let err = |message: String| ParseError {
            line: index,
            message: format!("metric family {index}: {message}"),
        };
        let len = r.varint().ok_or_else(|| err("truncated length".into()))?;
        let msg = r
            .bytes(len)
            .ok_or_else(|| err(format!("{len} bytes announced, fewer left")))?;
        let fam = Family::decode(msg).map_err(&err)?;
        fam.emit(&mut out, opts)
            .map_err(|m| err(format!("{}: {m}", fam.name)))?;
    }
    Ok(out)
}

/// A protobuf wire reader over one message.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

/// A field's value by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// The next field: (number, value).
    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let bad = || "truncated field".to_string();
        let key = self.varint().ok_or_else(bad)?;
        let v = match key & 7 {
            0 => Value::Varint(self.varint().ok_or_else(bad)?),
            1 => {
                let b = self.bytes(8).ok_or_else(bad)?;
                Value::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| bad())?))
            }
            2 => {
                let n = self.varint().ok_or_else(bad)?;
                Value::Bytes(self.bytes(n).ok_or_else(bad)?)
            }
            5 => {
                self.bytes(4).ok_or_else(bad)?;
                Value::Fixed32
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok((key >> 3, v))
    }

    /// Each field of the message, to `f`.
    fn each(
        b: &'a [u8],
        mut f: impl FnMut(u64, Value<'a>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut r = Reader::new(b);
        while !r.done() {
            let (n, v) = r.field()?;
            f(n, v)?;
        }
        Ok(())
    }
}

fn double(v: &Value) -> Result<f64, String> {
    match v {
        Value::Fixed64(x) => Ok(f64::from_bits(*x)),
        _ => Err("a double field of the wrong wire type".into()),
    }
}

fn uint(v: &Value) -> Result<u64, String> {
    match v {
        Value::Varint(x) => Ok(*x),
        _ => Err("an integer field of the wrong wire type".into()),
    }
}

fn sint(v: &Value) -> Result<i64, String> {
    uint(v).map(|u| ((u >> 1) as i64) ^ -((u & 1) as i64))
}

fn message<'a>(v: &Value<'a>) -> Result<&'a [u8], String> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err("a message field of the wrong wire type".into()),
    }
}

fn string<'a>(v: &Value<'a>) -> Result<&'a str, String> {
    std::str::from_utf8(message(v)?).map_err(|_| "a string that is not UTF-8".to_string())
}

/// Repeated scalars come packed (one length-delimited field) or one per field.
fn repeated(v: &Value, out: &mut Vec<u64>, fixed64: bool) -> Result<(), String> {
    match v {
        Value::Bytes(b) if fixed64 => {
            if b.len() % 8 != 0 {
                return Err("a packed double list of a length not a multiple of 8".into());
            }
            out.extend(
                b.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())),
            );
        }
        Value::Bytes(b) => {
            let mut r = Reader::new(b);
            while !r.done() {
                out.push(r.varint().ok_or("a truncated packed list")?);
            }
        }
        Value::Varint(x) | Value::Fixed64(x) => out.push(*x),
        Value::Fixed32 => return Err("a list of the wrong wire type".into()),
    }
    Ok(())
}

#[derive(Default)]
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    kind: i64,
    unit: &'a str,
    metrics: Vec<&'a [u8]>,
}

impl<'a> Family<'a> {
    fn decode(b: &'a [u8]) -> Result<Family<'a>, String> {
        let mut f = Family::default();
        Reader::each(b, |n, v| {
            match n {
                1 => f.name = string(&v)?,
                2 => f.help = string(&v)?,
                3 => f.kind = uint(&v)? as i64,
                4 => f.metrics.push(message(&v)?),
                5 => f.unit = string(&v)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(f)
    }

    fn emit(&self, out: &mut Decoded, opts: Options) -> Result<(), String> {
        if !crate::labels::is_valid_metric_name(self.name) {
            return Err("invalid metric name".into());
        }
        let kind = match self.kind {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Summary,
            3 => MetricType::Unknown,
            4 => MetricType::Histogram,
            5 => MetricType::GaugeHistogram,
            k => return Err(format!("unknown metric type {k}")),
        };
        if self.metrics.is_empty() {
            return Ok(()); // as Prometheus: an empty family is skipped
        }
        out.items
            .push(Item::Help(self.name.into(), self.help.into()));
        if !self.unit.is_empty() {
            out.items
                .push(Item::Unit(self.name.into(), self.unit.into()));
        }
        out.items.push(Item::Type(self.name.into(), kind));
        for m in &self.metrics {
            let m = Metric::decode(m)?;
            m.emit(self.name, kind, out, opts)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Metric<'a> {
    labels: Vec<(&'a str, &'a str)>,
    value: Option<f64>,
    exemplar: Option<OwnedExemplar>,
    summary: Option<Summary>,
    histogram: Option<Histogram>,
    timestamp_ms: i64,
}

#[derive(Default)]
struct Summary {
    count: u64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
}

#[derive(Default)]
struct Histogram {
    count: u64,
    count_float: f64,
    sum: f64,
    /// (upper bound, cumulative count, exemplar).
    buckets: Vec<(f64, f64, Option<OwnedExemplar>)>,
    schema: i64,
    zero_threshold: f64,
    zero_count: u64,
    zero_count_float: f64,
    negative_spans: Vec<Span>,
    negative_deltas: Vec<u64>,
    negative_counts: Vec<u64>,
    positive_spans: Vec<Span>,
    positive_deltas: Vec<u64>,
    positive_counts: Vec<u64>,
    exemplars: Vec<OwnedExemplar>,
}

impl Histogram {
    /// Prometheus's test: any span, a zero threshold or a zero count make it native (an
    /// instrumentation with no observations yet sends an empty span to say so).
    fn is_native(&self) -> bool {
        !self.positive_spans.is_empty()
            || !self.negative_spans.is_empty()
            || self.zero_threshold > 0.0
            || self.zero_count > 0
            || self.zero_count_float > 0.0
    }

    fn count(&self) -> f64 {
        if self.count_float > 0.0 {
            self.count_float
        } else {
            self.count as f64
        }
    }

    fn native(&self, gauge: bool) -> Result<FloatHistogram, String> {
        let float = self.count_float > 0.0 || self.zero_count_float > 0.0;
        let schema = i32::try_from(self.schema).map_err(|_| "schema out of range")?;
        let counts = |deltas: &[u64], counts: &[u64]| -> Vec<f64> {
            if float {
                counts.iter().map(|c| f64::from_bits(*c)).collect()
            } else {
                let d: Vec<i64> = deltas
                    .iter()
                    .map(|u| ((u >> 1) as i64) ^ -((u & 1) as i64))
                    .collect();
                absolute_from_deltas(&d)
            }
        };
        let h = FloatHistogram {
            hint: if gauge {
                CounterResetHint::Gauge
            } else {
                CounterResetHint::Unknown
            },
            schema,
            zero_threshold: self.zero_threshold,
            zero_count: if float {
                self.zero_count_float
            } else {
                self.zero_count as f64
            },
            count: if float {
                self.count_float
            } else {
                self.count as f64
            },
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            positive_buckets: counts(&self.positive_deltas, &self.positive_counts),
            negative_spans: self.negative_spans.clone(),
            negative_buckets: counts(&self.negative_deltas, &self.negative_counts),
            custom_values: Vec::new(),
        };
        if !crate::histogram::valid_layout(&h) {
            return Err(format!(
                "a native histogram whose buckets do not match its spans (schema {schema})"
            ));
        }
        crate::histogram::check_counts(&h, !float)?;
        Ok(h.compacted())
    }
}

fn span(b: &[u8]) -> Result<Span, String> {
    let mut s = Span::default();
    Reader::each(b, |n, v| {
        match n {
            1 => s.offset = i32::try_from(sint(&v)?).map_err(|_| "span offset out of range")?,
            2 => s.length = u32::try_from(uint(&v)?).map_err(|_| "span length out of range")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn label_pair(b: &[u8]) -> Result<(&str, &str), String> {
    let (mut name, mut value) = ("", "");
    Reader::each(b, |n, v| {
        match n {
            1 => name = string(&v)?,
            2 => value = string(&v)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((name, value))
}

/// Milliseconds of a `google.protobuf.Timestamp`.
fn timestamp(b: &[u8]) -> Result<i64, String> {
    let (mut s, mut ns) = (0i64, 0i64);
    Reader::each(b, |n, v| {
        match n {
            1 => s = uint(&v)? as i64,
            2 => ns = uint(&v)? as i32 as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok(s.saturating_mul(1000).saturating_add(ns / 1_000_000))
}

fn exemplar(b: &[u8]) -> Result<OwnedExemplar, String> {
    let mut e = OwnedExemplar {
        value: 0.0,
        timestamp_ms: None,
        labels: String::new(),
    };
    let mut pairs = Vec::new();
    Reader::each(b, |n, v| {
        match n {
            1 => pairs.push(label_pair(message(&v)?)?),
            2 => e.value = double(&v)?,
            3 => e.timestamp_ms = Some(timestamp(message(&v)?)?),
            _ => {}
        }
        Ok(())
    })?;
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    e.labels = label_block(&pairs, None)?;
    Ok(e)
}

/// `a="x",b="y"` for the pairs (and the magic label last), names checked, values escaped.
fn label_block(pairs: &[(&str, &str)], magic: Option<(&str, &str)>) -> Result<String, String> {
    let mut s = String::new();
    for (n, v) in pairs.iter().copied().chain(magic) {
        if !crate::labels::is_valid_label_name(n) {
            return Err(format!("invalid label name {n:?}"));
        }
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(n);
        s.push_str("=\"");
        s.push_str(&super::escape_label_value(v));
        s.push('"');
    }
    Ok(s)
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` with `.0` added to a whole number, as
/// Prometheus writes `le` and `quantile` values it takes from protobuf.
pub fn format_openmetrics_float(v: f64) -> String {
    let s = crate::format_go_float(v);
    if v.is_finite() && !s.contains(['.', 'e']) {
        s + ".0"
    } else {
        s
    }
}

impl<'a> Metric<'a> {
    fn decode(b: &'a [u8]) -> Result<Metric<'a>, String> {
        let mut m = Metric::default();
        Reader::each(b, |n, v| {
            match n {
                1 => m.labels.push(label_pair(message(&v)?)?),
                // Gauge and untyped: value = 1.
                2 | 5 => {
                    Reader::each(message(&v)?, |n, v| {
                        if n == 1 {
                            m.value = Some(double(&v)?);
                        }
                        Ok(())
                    })?;
                }
                3 => {
                    Reader::each(message(&v)?, |n, v| {
                        match n {
                            1 => m.value = Some(double(&v)?),
                            2 => m.exemplar = Some(exemplar(message(&v)?)?),
                            _ => {}
                        }
                        Ok(())
                    })?;
                }
                4 => m.summary = Some(summary(message(&v)?)?),
                6 => m.timestamp_ms = uint(&v)? as i64,
                7 => m.histogram = Some(histogram(message(&v)?)?),
                _ => {}
            }
            Ok(())
        })?;
        Ok(m)
    }

    fn emit(
        self,
        family: &str,
        kind: MetricType,
        out: &mut Decoded,
        opts: Options,
    ) -> Result<(), String> {
        let ts = (self.timestamp_ms != 0).then_some(self.timestamp_ms);
        let mut pairs = self.labels.clone();
        pairs.retain(|(n, _)| *n != crate::labels::METRIC_NAME);
        let series =
            |suffix: &str, magic: Option<(&str, &str)>| -> Result<(String, usize), String> {
                let name = format!("{family}{suffix}");
                let block = label_block(&pairs, magic)?;
                let n = name.len();
                Ok(if block.is_empty() {
                    (name, n)
                } else {
                    (format!("{name}{{{block}}}"), n)
                })
            };
        let sample = |out: &mut Decoded,
                      suffix: &str,
                      magic: Option<(&str, &str)>,
                      value: f64,
                      exemplar: Option<OwnedExemplar>|
         -> Result<(), String> {
            let (series, name_len) = series(suffix, magic)?;
            out.items.push(Item::Sample {
                series,
                name_len,
                value,
                timestamp_ms: ts,
                exemplar,
            });
            Ok(())
        };
        match kind {
            MetricType::Summary => {
                let s = self.summary.unwrap_or_default();
                sample(out, "_count", None, s.count as f64, None)?;
                sample(out, "_sum", None, s.sum, None)?;
                for (q, v) in s.quantiles {
                    let q = format_openmetrics_float(q);
                    sample(out, "", Some(("quantile", &q)), v, None)?;
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let mut h = self.histogram.unwrap_or_default();
                let native = opts.native_histograms && h.is_native();
                if native {
                    let nh = h.native(kind == MetricType::GaugeHistogram)?;
                    // Its own exemplars, or, when it has none, its classic buckets'; only
                    // those with a timestamp, as Prometheus takes them.
                    let exemplars: Vec<OwnedExemplar> = if h.exemplars.is_empty() {
                        h.buckets.iter().filter_map(|b| b.2.clone()).collect()
                    } else {
                        std::mem::take(&mut h.exemplars)
                    }
                    .into_iter()
                    .filter(|e| e.timestamp_ms.is_some())
                    .collect();
                    let (series, name_len) = series("", None)?;
                    out.items.push(Item::Histogram {
                        series,
                        name_len,
                        h: nh,
                        timestamp_ms: ts,
                        exemplars,
                    });
                }
                if !native || (opts.keep_classic && !h.buckets.is_empty()) {
                    let count = h.count();
                    sample(out, "_count", None, count, None)?;
                    sample(out, "_sum", None, h.sum, None)?;
                    let mut inf = false;
                    for (le, c, e) in std::mem::take(&mut h.buckets) {
                        inf |= le == f64::INFINITY;
                        let le = format_openmetrics_float(le);
                        sample(out, "_bucket", Some(("le", &le)), c, e)?;
                        if inf {
                            break;
                        }
                    }
                    if !inf {
                        sample(out, "_bucket", Some(("le", "+Inf")), count, None)?;
                    }
                }
            }
            _ => sample(out, "", None, self.value.unwrap_or(0.0), self.exemplar)?,
        }
        Ok(())
    }
}

fn summary(b: &[u8]) -> Result<Summary, String> {
    let mut s = Summary::default();
    Reader::each(b, |n, v| {
        match n {
            1 => s.count = uint(&v)?,
            2 => s.sum = double(&v)?,
            3 => {
                let (mut q, mut x) = (0.0, 0.0);
                Reader::each(message(&v)?, |n, v| {
                    match n {
                        1 => q = double(&v)?,
                        2 => x = double(&v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                s.quantiles.push((q, x));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(s)
}

fn histogram(b: &[u8]) -> Result<Histogram, String> {
    let mut h = Histogram::default();
    Reader::each(b, |n, v| {
        match n {
            1 => h.count = uint(&v)?,
            2 => h.sum = double(&v)?,
            3 => {
                let (mut le, mut c, mut cf, mut e) = (0.0, 0u64, 0.0, None);
                Reader::each(message(&v)?, |n, v| {
                    match n {
                        1 => c = uint(&v)?,
                        2 => le = double(&v)?,
                        3 => e = Some(exemplar(message(&v)?)?),
                        4 => cf = double(&v)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                h.buckets
                    .push((le, if cf != 0.0 { cf } else { c as f64 }, e));
            }
            4 => h.count_float = double(&v)?,
            5 => h.schema = sint(&v)?,
            6 => h.zero_threshold = double(&v)?,
            7 => h.zero_count = uint(&v)?,
            8 => h.zero_count_float = double(&v)?,
            9 => h.negative_spans.push(span(message(&v)?)?),
            10 => repeated(&v, &mut h.negative_deltas, false)?,
            11 => repeated(&v, &mut h.negative_counts, true)?,
            12 => h.positive_spans.push(span(message(&v)?)?),
            13 => repeated(&v, &mut h.positive_deltas, false)?,
            14 => repeated(&v, &mut h.positive_counts, true)?,
            16 => h.exemplars.push(exemplar(message(&v)?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(h)
}
