//! The protobuf exposition format (`application/vnd.google.protobuf;
//! proto=io.prometheus.client.MetricFamily; encoding=delimited`): length-prefixed
//! `MetricFamily` messages, the only format that carries native histograms.
//!
//! Decoded whole into [`Decoded`], whose [`Decoded::entries`] are the same [`Entry`]s the text
//! parsers yield, so the scraper handles every format with one loop: each series gets a text
//! form (`name{label="value",...}`, values escaped as in the text format; a name outside the
//! classic set quoted as the text formats quote it, `{"my.metric","a.b"="x"}`) that keys the
//! scraper's series cache and that [`SampleEntry::labels`] reads back. Classic histograms and
//! summaries become their `_count`, `_sum`, `_bucket`/quantile series as Prometheus's
//! protobuf parser makes them (`le` and `quantile` values as OpenMetrics writes floats:
//! `1.0`, `+Inf`); a native histogram becomes an [`Entry::Histogram`] when native histograms
//! are scraped, and its classic buckets too when asked for. A timestamp of 0 means none, as in
//! Prometheus (proto3 cannot tell them apart). Any non-empty name is read: the scraper checks
//! names against its validation scheme once relabeling is done.

use std::borrow::Cow;

use super::{Entry, Exemplar, HistogramEntry, MetricType, ParseError, SampleEntry, TextSpan};
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
        created_ms: Option<i64>,
        exemplar: Option<OwnedExemplar>,
    },
    Histogram {
        series: String,
        name_len: usize,
        h: FloatHistogram,
        integer: bool,
        timestamp_ms: Option<i64>,
        created_ms: Option<i64>,
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

impl From<&Exemplar<'_>> for OwnedExemplar {
    fn from(e: &Exemplar<'_>) -> Self {
        OwnedExemplar {
            value: e.value,
            timestamp_ms: e.timestamp_ms,
            labels: e.labels_raw.to_string(),
        }
    }
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

/// The metric name of a series' text form: its first `name_len` bytes, or, when 0, the quoted
/// name inside its braces (a name outside the classic set).
fn name_of(series: &str, name_len: usize) -> Cow<'_, str> {
    if name_len == 0 {
        super::lex::quoted_metric_name(series)
    } else {
        Cow::Borrowed(&series[..name_len])
    }
}

/// What [`name_of`] takes back: 0 for a name quoted inside the braces.
fn text_name_len(series: &str, name: &str) -> usize {
    if series.starts_with('{') {
        0
    } else {
        name.len()
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
                created_ms,
                exemplar,
            } => Entry::Sample(SampleEntry {
                series,
                name: name_of(series, *name_len),
                value: *value,
                timestamp_ms: *timestamp_ms,
                created_ms: *created_ms,
                exemplar: exemplar.as_ref().map(OwnedExemplar::entry),
                labels_raw: TextSpan::within(series, labels_of(series, *name_len)),
            }),
            Item::Histogram {
                series,
                name_len,
                h,
                integer,
                timestamp_ms,
                created_ms,
                exemplars,
            } => Entry::Histogram(HistogramEntry {
                series,
                name: name_of(series, *name_len),
                h,
                integer: *integer,
                timestamp_ms: *timestamp_ms,
                created_ms: *created_ms,
                exemplars: exemplars.iter().map(OwnedExemplar::entry).collect(),
                labels_raw: TextSpan::within(series, labels_of(series, *name_len)),
                converted: false,
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

/// Decode a whole body into owned entries (tests and tools; the scraper streams with
/// [`decode_each`]). An error names the family and what is wrong.
pub fn decode(body: &[u8], opts: Options) -> Result<Decoded, ParseError> {
    let mut out = Decoded::default();
    let mut keep = |e: Entry<'_>| -> Result<(), String> {
        out.items.push(match e {
            Entry::Help { family, help } => Item::Help(family.into(), help.into_owned()),
            Entry::Type { family, kind } => Item::Type(family.into(), kind),
            Entry::Unit { family, unit } => Item::Unit(family.into(), unit.into()),
            Entry::Sample(s) => Item::Sample {
                series: s.series.into(),
                name_len: text_name_len(s.series, &s.name),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
                created_ms: s.created_ms,
                exemplar: s.exemplar.as_ref().map(OwnedExemplar::from),
            },
            Entry::Histogram(h) => Item::Histogram {
                series: h.series.into(),
                name_len: text_name_len(h.series, &h.name),
                h: h.h.clone(),
                integer: h.integer,
                timestamp_ms: h.timestamp_ms,
                created_ms: h.created_ms,
                exemplars: h.exemplars.iter().map(OwnedExemplar::from).collect(),
            },
        });
        Ok(())
    };
    decode_each(body, opts, &mut keep).map_err(|message| ParseError { line: 0, message })?;
    Ok(out)
}

/// Most bytes of series texts a body may expand into: each bucket or quantile of a metric
/// repeats the metric's labels, so a small body of many empty buckets under long labels would
/// otherwise cost time out of all proportion to its size.
fn expansion_budget(body: usize) -> usize {
    body.saturating_mul(1024).saturating_add(256 << 20)
}

/// Walk a body, handing each entry to `f` as Prometheus's protobuf parser yields them: per
/// family its help, unit and type, then its series. Series texts are built into one reused
/// buffer, so memory stays that of one series however many a body holds. A decoding error
/// names the family (by position, and name once known) and what is wrong; an error of `f`
/// stops the walk and is returned as it is.
pub fn decode_each(
    body: &[u8],
    opts: Options,
    f: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut sink = Sink {
        f,
        buf: String::new(),
        budget: expansion_budget(body.len()),
        failed: None,
    };
    let mut r = Reader::new(body);
    let mut index = 0usize;
    while !r.done() {
        index += 1;
        let len = r
            .varint()
            .ok_or_else(|| format!("metric family {index}: truncated length"))?;
        let msg = r
            .bytes(len)
            .ok_or_else(|| format!("metric family {index}: {len} bytes announced, fewer left"))?;
        let fam = Family::decode(msg).map_err(|m| format!("metric family {index}: {m}"))?;
        if let Err(m) = fam.emit(&mut sink, opts) {
            // The callback's own error comes back as it is.
            return Err(sink
                .failed
                .take()
                .unwrap_or_else(|| format!("metric family {index}: {}: {m}", fam.name)));
        }
    }
    Ok(())
}

/// The callback with the buffer series texts are built in.
struct Sink<'f> {
    f: &'f mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    buf: String,
    budget: usize,
    /// The callback's error, returned as it is.
    failed: Option<String>,
}

impl Sink<'_> {
    fn give(&mut self, e: Entry<'_>) -> Result<(), String> {
        (self.f)(e).map_err(|m| {
            self.failed = Some(m);
            String::new()
        })
    }

    /// Build `family` + `suffix` + `{block[,magic]}` into the buffer; the name's length.
    fn series(
        &mut self,
        name: &str,
        suffix: &str,
        block: &str,
        magic: Option<(&str, &str)>,
    ) -> Result<usize, String> {
        self.buf.clear();
        self.buf.push_str(name);
        self.buf.push_str(suffix);
        let mut name_len = self.buf.len();
        // A name outside the classic set is written quoted inside the braces, as the text
        // formats write it, so the series' text stays unambiguous; its length is then 0.
        let quoted = !crate::names::is_legacy_metric_name(&self.buf);
        if quoted {
            let full = format!("{{\"{}\"", super::escape_label_value(&self.buf));
            self.buf.clear();
            self.buf.push_str(&full);
            name_len = 0;
        }
        if quoted || !block.is_empty() || magic.is_some() {
            if !quoted {
                self.buf.push('{');
            } else if !block.is_empty() || magic.is_some() {
                self.buf.push(',');
            }
            self.buf.push_str(block);
            if let Some((n, v)) = magic {
                if !block.is_empty() {
                    self.buf.push(',');
                }
                super::push_label(&mut self.buf, n, v);
            }
            self.buf.push('}');
        }
        self.budget = self.budget.checked_sub(self.buf.len()).ok_or_else(|| {
            "the body expands to too many bytes of series names and labels for its size".to_string()
        })?;
        Ok(name_len)
    }
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

    fn emit(&self, sink: &mut Sink, opts: Options) -> Result<(), String> {
        // Any name (checked by the scraper against its validation scheme) but an empty one.
        if self.name.is_empty() {
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
        sink.give(Entry::Help {
            family: self.name,
            help: self.help.into(),
        })?;
        if !self.unit.is_empty() {
            sink.give(Entry::Unit {
                family: self.name,
                unit: self.unit,
            })?;
        }
        sink.give(Entry::Type {
            family: self.name,
            kind,
        })?;
        for m in &self.metrics {
            let m = Metric::decode(m)?;
            m.emit(self.name, kind, sink, opts)?;
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
    /// The counter's `created_timestamp` (field 3 of `Counter`), in ms.
    created_ms: Option<i64>,
}

#[derive(Default)]
struct Summary {
    count: u64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
    /// `created_timestamp` (field 4 of `Summary`), in ms.
    created_ms: Option<i64>,
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
    /// `created_timestamp` (field 15 of `Histogram`), in ms.
    created_ms: Option<i64>,
}

impl Histogram {
    /// Prometheus's test: any span, a zero threshold or a zero count make it native (an
    /// instrumentation with no observations yet sends an empty span to say so).
    fn is_native(&self) -> bool {
        !self.positive_spans.is_empty()
            || !self.negative_spans.is_empty()
            || self.zero_threshold > 0.0
            || self.zero_count > 0
    }

    fn count(&self) -> f64 {
        if self.count_float > 0.0 {
            self.count_float
        } else {
            self.count as f64
        }
    }

    /// The native histogram, and whether its counts are integers. Not checked here: the
    /// scraper checks it once the series survived relabeling ([`check`]), as Prometheus's
    /// appender does.
    fn native(&self, gauge: bool) -> Result<(FloatHistogram, bool), String> {
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
        let mut h = FloatHistogram {
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
        // Spans that account for every bucket, whatever the schema: only then is a finer
        // schema reduced (a broken layout is left for the check to refuse).
        let agree =
            |spans: &[Span], n: usize| spans.iter().map(|s| s.length as usize).sum::<usize>() == n;
        let consistent = agree(&h.positive_spans, h.positive_buckets.len())
            && agree(&h.negative_spans, h.negative_buckets.len());
        if crate::histogram::valid_layout(&h) {
            h = h.compacted();
        } else if consistent && schema > crate::histogram::MAX_SCHEMA && schema <= 52 {
            // Finer than vigil keeps (schemas Prometheus reserves for finer resolutions):
            // reduced to the finest, as Prometheus reduces them.
            h.reduce_resolution(crate::histogram::MAX_SCHEMA);
            if crate::histogram::valid_layout(&h) {
                h = h.compacted();
            }
        }
        Ok((h, !float))
    }
}

/// Prometheus's checks of a scraped native histogram, with its words: a known schema (the
/// protobuf format carries no custom bucket bounds), spans that match the buckets, no
/// negative bucket, and an integer histogram's count equal to its buckets' total.
pub fn check(h: &FloatHistogram, integer: bool) -> Result<(), String> {
    use crate::histogram::{MAX_SCHEMA, MIN_SCHEMA};
    if !(MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema) {
        return Err(format!(
            "histogram has an invalid schema, which must be between {MIN_SCHEMA} and {MAX_SCHEMA}, got schema {}",
            h.schema
        ));
    }
    if !crate::histogram::valid_layout(h) {
        return Err(format!(
            "a native histogram whose buckets do not match its spans (schema {})",
            h.schema
        ));
    }
    crate::histogram::check_counts(h, integer)
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

fn exemplar(b: &[u8]) -> Result<Option<OwnedExemplar>, String> {
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
    // An exemplar whose labels vigil cannot keep is dropped, never the scrape (as Prometheus
    // treats a bad exemplar).
    Ok(label_block(&pairs)
        .ok()
        .map(|labels| OwnedExemplar { labels, ..e }))
}

/// `a="x",b="y"` for the pairs, names checked, values escaped.
fn label_block(pairs: &[(&str, &str)]) -> Result<String, String> {
    let mut s = String::new();
    for (n, v) in pairs.iter().copied() {
        if n.is_empty() {
            return Err(format!("invalid label name {n:?}"));
        }
        if !s.is_empty() {
            s.push(',');
        }
        super::push_label(&mut s, n, v);
    }
    Ok(s)
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` with `.0` added to a whole number, as
/// Prometheus writes `le` and `quantile` values it takes from protobuf.
pub fn format_openmetrics_float(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into(); // -0 too, as Go's formatting of it is special-cased there
    }
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
                            2 => m.exemplar = exemplar(message(&v)?)?,
                            3 => m.created_ms = created(message(&v)?)?,
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
        sink: &mut Sink,
        opts: Options,
    ) -> Result<(), String> {
        let ts = (self.timestamp_ms != 0).then_some(self.timestamp_ms);
        // Every series a counter, summary or histogram becomes carries its created timestamp.
        let created = match kind {
            MetricType::Counter => self.created_ms,
            MetricType::Summary => self.summary.as_ref().and_then(|s| s.created_ms),
            MetricType::Histogram | MetricType::GaugeHistogram => {
                self.histogram.as_ref().and_then(|h| h.created_ms)
            }
            _ => None,
        };
        let mut pairs = self.labels.clone();
        pairs.retain(|(n, _)| *n != crate::labels::METRIC_NAME);
        let mut names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("duplicate label name {:?}", w[0]));
        }
        // The labels' text once per metric; each of its series repeats it.
        let block = label_block(&pairs)?;
        let sample = |sink: &mut Sink,
                      suffix: &str,
                      magic: Option<(&str, &str)>,
                      value: f64,
                      exemplar: Option<&OwnedExemplar>|
         -> Result<(), String> {
            let name_len = sink.series(family, suffix, &block, magic)?;
            let series = std::mem::take(&mut sink.buf);
            let r = sink.give(Entry::Sample(SampleEntry {
                series: &series,
                name: name_of(&series, name_len),
                value,
                timestamp_ms: ts,
                created_ms: created,
                exemplar: exemplar.map(OwnedExemplar::entry),
                labels_raw: TextSpan::within(&series, labels_of(&series, name_len)),
            }));
            sink.buf = series;
            r
        };
        match kind {
            MetricType::Summary => {
                let s = self.summary.unwrap_or_default();
                sample(sink, "_count", None, s.count as f64, None)?;
                sample(sink, "_sum", None, s.sum, None)?;
                for (q, v) in s.quantiles {
                    let q = format_openmetrics_float(q);
                    sample(sink, "", Some(("quantile", &q)), v, None)?;
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = self.histogram.unwrap_or_default();
                let native = opts.native_histograms && h.is_native();
                if native {
                    let (nh, integer) = h.native(kind == MetricType::GaugeHistogram)?;
                    // Its own exemplars, or, when it has none, its classic buckets'; only
                    // those with a timestamp, in the order they are appended in (time, value,
                    // labels), as Prometheus takes them.
                    let mut exemplars: Vec<&OwnedExemplar> = if h.exemplars.is_empty() {
                        h.buckets.iter().filter_map(|b| b.2.as_ref()).collect()
                    } else {
                        h.exemplars.iter().collect()
                    };
                    exemplars.retain(|e| e.timestamp_ms.is_some());
                    // Ties broken by the labels as the exemplar store orders them (name, then
                    // value, label by label), not by their escaped text.
                    let key = |e: &OwnedExemplar| -> Vec<(String, String)> {
                        super::LabelIter { s: &e.labels }
                            .map(|(n, v)| (n.to_string(), v.into_owned()))
                            .collect()
                    };
                    exemplars.sort_by(|a, b| {
                        a.timestamp_ms
                            .cmp(&b.timestamp_ms)
                            .then(a.value.total_cmp(&b.value))
                            .then_with(|| key(a).cmp(&key(b)))
                    });
                    let name_len = sink.series(family, "", &block, None)?;
                    let series = std::mem::take(&mut sink.buf);
                    let r = sink.give(Entry::Histogram(HistogramEntry {
                        series: &series,
                        name: name_of(&series, name_len),
                        h: &nh,
                        integer,
                        timestamp_ms: ts,
                        created_ms: created,
                        exemplars: exemplars.iter().map(|e| e.entry()).collect(),
                        labels_raw: TextSpan::within(&series, labels_of(&series, name_len)),
                        converted: false,
                    }));
                    sink.buf = series;
                    r?;
                }
                if !native || (opts.keep_classic && !h.buckets.is_empty()) {
                    let count = h.count();
                    sample(sink, "_count", None, count, None)?;
                    sample(sink, "_sum", None, h.sum, None)?;
                    let mut inf = false;
                    for (le, c, e) in &h.buckets {
                        inf |= *le == f64::INFINITY;
                        let le = format_openmetrics_float(*le);
                        sample(sink, "_bucket", Some(("le", &le)), *c, e.as_ref())?;
                        if inf {
                            break;
                        }
                    }
                    if !inf {
                        sample(sink, "_bucket", Some(("le", "+Inf")), count, None)?;
                    }
                }
            }
            _ => sample(
                sink,
                "",
                None,
                self.value.unwrap_or(0.0),
                self.exemplar.as_ref(),
            )?,
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
            4 => s.created_ms = created(message(&v)?)?,
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
                        3 => e = exemplar(message(&v)?)?,
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
            15 => h.created_ms = created(message(&v)?)?,
            16 => h.exemplars.extend(exemplar(message(&v)?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(h)
}

/// A created timestamp (a `google.protobuf.Timestamp`) in ms; 0 is none, as Prometheus takes
/// an unset one.
fn created(b: &[u8]) -> Result<Option<i64>, String> {
    Ok(Some(timestamp(b)?).filter(|&t| t != 0))
}

/// A series' value as [`write_family`] writes it.
#[derive(Debug, Clone, Copy)]
pub enum OutValue<'a> {
    Untyped(f64),
    Histogram(&'a FloatHistogram),
}

/// One series of a family: its labels (without `__name__`), timestamp and value.
pub type OutMetric<'a> = (&'a [(String, String)], i64, OutValue<'a>);

/// Append one length-delimited `MetricFamily` of `metrics` to `out`: floats as `UNTYPED`,
/// native histograms as `HISTOGRAM` (`GAUGE_HISTOGRAM` when `gauge_histogram`) in their float
/// form, as Prometheus's federation writes them. The first metric's kind is the family's: the
/// caller groups floats and histograms into families of their own.
pub fn write_family(out: &mut Vec<u8>, name: &str, gauge_histogram: bool, metrics: &[OutMetric]) {
    let mut fam = Vec::new();
    put_bytes(&mut fam, 1, name.as_bytes());
    let kind = match metrics.first().map(|m| m.2) {
        Some(OutValue::Histogram(_)) if gauge_histogram => 5,
        Some(OutValue::Histogram(_)) => 4,
        _ => 3,
    };
    put_varint_field(&mut fam, 3, kind);
    for (labels, t, v) in metrics {
        let mut m = Vec::new();
        for (n, val) in labels.iter() {
            let mut lp = Vec::new();
            put_bytes(&mut lp, 1, n.as_bytes());
            put_bytes(&mut lp, 2, val.as_bytes());
            put_bytes(&mut m, 1, &lp);
        }
        match v {
            OutValue::Untyped(x) => {
                let mut u = Vec::new();
                put_double(&mut u, 1, *x);
                put_bytes(&mut m, 5, &u);
            }
            OutValue::Histogram(h) => put_bytes(&mut m, 7, &histogram_message(h)),
        }
        put_varint_field(&mut m, 6, *t as u64);
        put_bytes(&mut fam, 4, &m);
    }
    put_varint(out, fam.len() as u64);
    out.extend_from_slice(&fam);
}

fn histogram_message(h: &FloatHistogram) -> Vec<u8> {
    // Compacted: spans of empty buckets would read back as an integer histogram whose spans
    // do not match its (absent) deltas.
    let h = &h.compacted();
    let mut b = Vec::new();
    put_double(&mut b, 2, h.sum);
    put_double(&mut b, 4, h.count);
    put_varint_field(&mut b, 5, zigzag(i64::from(h.schema)));
    put_double(&mut b, 6, h.zero_threshold);
    put_double(&mut b, 8, h.zero_count);
    for (field, spans, counts_field, counts) in [
        (9, &h.negative_spans, 11, &h.negative_buckets),
        (12, &h.positive_spans, 14, &h.positive_buckets),
    ] {
        for s in spans.iter() {
            let mut sb = Vec::new();
            put_varint_field(&mut sb, 1, zigzag(i64::from(s.offset)));
            put_varint_field(&mut sb, 2, u64::from(s.length));
            put_bytes(&mut b, field, &sb);
        }
        if !counts.is_empty() {
            let packed: Vec<u8> = counts
                .iter()
                .flat_map(|c| c.to_bits().to_le_bytes())
                .collect();
            put_bytes(&mut b, counts_field, &packed);
        }
    }
    // A histogram with no buckets and a zero threshold of 0 would read as classic: an empty
    // span marks it native, as client libraries mark one without observations.
    if h.positive_spans.is_empty() && h.negative_spans.is_empty() && h.zero_threshold == 0.0 {
        put_bytes(&mut b, 12, &[]);
    }
    b
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_double(out: &mut Vec<u8>, field: u64, v: f64) {
    put_varint(out, (field << 3) | 1);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}
