//! A remote write's series borrowed from the request's bytes, and the remote write 1.0 and
//! 2.0 decoders that read them without copying.
//!
//! Why our own decoder: decoding `prometheus.WriteRequest` through prost made two `String`s
//! per label and a `Vec` per series, and `perf` of the receiver put about half its time in
//! glibc's `malloc` and `free` (`bench/src/bin/receive.rs`). Here a request's labels are
//! `&str`s into the decompressed body, and every series' labels, samples, exemplars and
//! histograms sit in a few flat vectors: a handful of allocations per request.
//!
//! Both take and refuse, on the wire, what prost takes and refuses for the same message
//! (wire types, UTF-8 strings, unknown fields of every wire type skipped, groups refused as
//! deep as prost refuses them); 2.0 then refuses what it cannot resolve (a reference outside
//! the symbols, an odd count, a first symbol not empty, more than
//! [`MAX_RESOLVED_LABEL_BYTES`]). `tests::same_as_prost_on_mutated_requests` and
//! `tests::v2_same_as_prost_on_mutated_requests` hold them to that.

use std::ops::Range;

use crate::proto::{Exemplar, Label, Sample, TimeSeries, WriteRequest};

/// A label as sent: name, value.
pub type LabelPair<'a> = (&'a str, &'a str);

/// One series of a [`Batch`]: where its parts are in the batch's vectors.
#[derive(Debug, Clone, Default)]
struct SeriesSpan {
    labels: Range<u32>,
    samples: Range<u32>,
    exemplars: Range<u32>,
    histograms: Range<u32>,
}

/// One exemplar of a [`Batch`].
#[derive(Debug, Clone, Copy)]
pub struct ExemplarRef {
    labels: (u32, u32),
    pub value: f64,
    pub timestamp: i64,
}

/// The series of one write, borrowed: from the request's bytes ([`decode_v1`],
/// [`decode_v2`]) or from a decoded [`WriteRequest`] ([`Batch::of`]).
#[derive(Debug, Default)]
pub struct Batch<'a> {
    series: Vec<SeriesSpan>,
    labels: Vec<LabelPair<'a>>,
    samples: Vec<(f64, i64)>,
    exemplars: Vec<ExemplarRef>,
    histograms: Vec<&'a [u8]>,
}

/// One series of a [`Batch`].
#[derive(Clone, Copy)]
pub struct SeriesView<'b, 'a> {
    batch: &'b Batch<'a>,
    span: &'b SeriesSpan,
}

fn range(r: &Range<u32>) -> Range<usize> {
    r.start as usize..r.end as usize
}

impl<'b, 'a> SeriesView<'b, 'a> {
    pub fn labels(&self) -> &'b [LabelPair<'a>] {
        &self.batch.labels[range(&self.span.labels)]
    }

    /// Samples as (value, timestamp in ms).
    pub fn samples(&self) -> &'b [(f64, i64)] {
        &self.batch.samples[range(&self.span.samples)]
    }

    pub fn exemplars(&self) -> &'b [ExemplarRef] {
        &self.batch.exemplars[range(&self.span.exemplars)]
    }

    /// The labels of one of this series' exemplars.
    pub fn exemplar_labels(&self, e: &ExemplarRef) -> &'b [LabelPair<'a>] {
        &self.batch.labels[e.labels.0 as usize..e.labels.1 as usize]
    }

    /// Native histograms, each an encoded [`crate::proto::Histogram`].
    pub fn histograms(&self) -> &'b [&'a [u8]] {
        &self.batch.histograms[range(&self.span.histograms)]
    }
}

impl<'a> Batch<'a> {
    /// The series of a decoded request, borrowed from it.
    pub fn of(req: &'a WriteRequest) -> Batch<'a> {
        let mut b = Batch::default();
        for ts in &req.timeseries {
            let mut span = SeriesSpan::default();
            let l0 = b.labels.len() as u32;
            b.labels.extend(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            span.labels = l0..b.labels.len() as u32;
            let s0 = b.samples.len() as u32;
            b.samples
                .extend(ts.samples.iter().map(|s| (s.value, s.timestamp)));
            span.samples = s0..b.samples.len() as u32;
            let e0 = b.exemplars.len() as u32;
            for e in &ts.exemplars {
                let el0 = b.labels.len() as u32;
                b.labels
                    .extend(e.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
                b.exemplars.push(ExemplarRef {
                    labels: (el0, b.labels.len() as u32),
                    value: e.value,
                    timestamp: e.timestamp,
                });
            }
            span.exemplars = e0..b.exemplars.len() as u32;
            let h0 = b.histograms.len() as u32;
            b.histograms
                .extend(ts.histograms.iter().map(|h| h.as_slice()));
            span.histograms = h0..b.histograms.len() as u32;
            b.series.push(span);
        }
        b
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn series(&self) -> impl Iterator<Item = SeriesView<'_, 'a>> {
        self.series
            .iter()
            .map(move |span| SeriesView { batch: self, span })
    }

    /// The owned request this batch holds the series of (tests and tools; the receiver
    /// never needs it). A 1.0 request's `metadata` entries are checked by [`decode_v1`] but
    /// not kept: the receiver stores none, so the request given back has none.
    pub fn to_request(&self) -> WriteRequest {
        let label = |&(n, v): &LabelPair| Label {
            name: n.to_string(),
            value: v.to_string(),
        };
        WriteRequest {
            timeseries: self
                .series()
                .map(|s| TimeSeries {
                    labels: s.labels().iter().map(label).collect(),
                    samples: s
                        .samples()
                        .iter()
                        .map(|&(value, timestamp)| Sample { value, timestamp })
                        .collect(),
                    exemplars: s
                        .exemplars()
                        .iter()
                        .map(|e| Exemplar {
                            labels: s.exemplar_labels(e).iter().map(label).collect(),
                            value: e.value,
                            timestamp: e.timestamp,
                        })
                        .collect(),
                    histograms: s.histograms().iter().map(|h| h.to_vec()).collect(),
                })
                .collect(),
            metadata: Vec::new(),
        }
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// prost's recursion budget at the top of a message it decodes.
const DEPTH: u32 = 100;

/// The most a 2.0 request may resolve to: every label's name and value (the series', their
/// exemplars', and `__type__`/`__unit__` from their metadata), each label also counted at
/// what it costs in a [`Batch`], and the help and unit each series' metadata keeps: four times
/// the decompressed body a request may have. A symbol is sent once and may be referred to by
/// every series, so without a bound a small request could name a huge string millions of
/// times, each reference a copy and a hash when stored.
pub const MAX_RESOLVED_LABEL_BYTES: usize = 4 * crate::codec::MAX_DECODED_BYTES;

/// Count `bytes` more against [`MAX_RESOLVED_LABEL_BYTES`]; `at` names the place.
fn charge(text: &mut usize, bytes: usize, at: impl Fn() -> String) -> Result<(), String> {
    *text = text.saturating_add(bytes);
    if *text > MAX_RESOLVED_LABEL_BYTES {
        return Err(format!(
            "{}: the request's labels resolve to more than {MAX_RESOLVED_LABEL_BYTES} bytes",
            at()
        ));
    }
    Ok(())
}

/// A cursor over protobuf wire bytes.
struct Wire<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Wire<'a> {
    fn new(buf: &'a [u8]) -> Wire<'a> {
        Wire { buf, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.at) else {
                return Err("buffer underflow".into());
            };
            self.at += 1;
            // The tenth byte may only carry the 64th bit.
            if i == 9 && b > 1 {
                return Err("invalid varint".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("invalid varint".into())
    }

    /// The next field's number and wire type.
    fn key(&mut self) -> Result<(u32, u8), String> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) {
            return Err(format!("invalid key value: {k}"));
        }
        let wire = (k & 7) as u8;
        if wire > FIXED32 {
            return Err(format!("invalid wire type value: {wire}"));
        }
        let field = (k >> 3) as u32;
        if field == 0 {
            return Err("invalid tag value: 0".into());
        }
        Ok((field, wire))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("buffer underflow")?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| "buffer underflow".to_string())?;
        self.take(n)
    }

    fn fixed64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("eight bytes")))
    }

    /// Step over a field vigil does not read. `depth` is what is left of prost's recursion
    /// budget where the field is (100 at the request, one less per message or group in),
    /// so deep groups are refused exactly where prost refuses them; it bounds this
    /// recursion too.
    fn skip(&mut self, field: u32, wire: u8, depth: u32) -> Result<(), String> {
        if depth == 0 {
            return Err("recursion limit reached".into());
        }
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP => loop {
                let (f, w) = self.key()?;
                match w {
                    END_GROUP if f == field => return Ok(()),
                    END_GROUP => return Err("unexpected end group tag".into()),
                    w => self.skip(f, w, depth - 1)?,
                }
            },
            _ => Err("unexpected end group tag".into()),
        }
    }
}

/// A known field's value, read after its wire type is checked; an error names the field.
/// (Errors are worded only when they happen: this is every label's path.)
fn field<'a, T>(
    w: &mut Wire<'a>,
    name: &str,
    got: u8,
    want: u8,
    read: impl FnOnce(&mut Wire<'a>) -> Result<T, String>,
) -> Result<T, String> {
    if got != want {
        return Err(format!(
            "{name}: invalid wire type: {got} (expected {want})"
        ));
    }
    read(w).map_err(|e| format!("{name}: {e}"))
}

fn string<'a>(w: &mut Wire<'a>) -> Result<&'a str, String> {
    std::str::from_utf8(w.bytes()?)
        .map_err(|_| "invalid string value: data is not UTF-8 encoded".to_string())
}

fn double(w: &mut Wire) -> Result<f64, String> {
    w.fixed64().map(f64::from_bits)
}

fn int64(w: &mut Wire) -> Result<i64, String> {
    w.varint().map(|v| v as i64)
}

/// A `prometheus.Label`; the last of a repeated field wins, as in any protobuf decoder.
fn label(buf: &[u8], depth: u32) -> Result<LabelPair<'_>, String> {
    let mut w = Wire::new(buf);
    let (mut name, mut value) = ("", "");
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => name = field(&mut w, "name", wire, LEN, string)?,
            2 => value = field(&mut w, "value", wire, LEN, string)?,
            _ => w.skip(f, wire, depth)?,
        }
    }
    Ok((name, value))
}

/// A `prometheus.Sample` as (value, timestamp).
fn sample(buf: &[u8]) -> Result<(f64, i64), String> {
    let mut w = Wire::new(buf);
    let (mut value, mut t) = (0.0, 0);
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => value = field(&mut w, "value", wire, FIXED64, double)?,
            2 => t = field(&mut w, "timestamp", wire, VARINT, int64)?,
            _ => w.skip(f, wire, DEPTH - 2)?,
        }
    }
    Ok((value, t))
}

/// A `prometheus.Exemplar` into `b` (its labels at the end of `b.labels`).
fn exemplar<'a>(b: &mut Batch<'a>, buf: &'a [u8]) -> Result<(), String> {
    let mut w = Wire::new(buf);
    let l0 = b.labels.len() as u32;
    let (mut value, mut t) = (0.0, 0);
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => {
                let m = field(&mut w, "labels", wire, LEN, Wire::bytes)?;
                let l = label(m, DEPTH - 3).map_err(|e| format!("labels: {e}"))?;
                b.labels.push(l);
            }
            2 => value = field(&mut w, "value", wire, FIXED64, double)?,
            3 => t = field(&mut w, "timestamp", wire, VARINT, int64)?,
            _ => w.skip(f, wire, DEPTH - 2)?,
        }
    }
    b.exemplars.push(ExemplarRef {
        labels: (l0, b.labels.len() as u32),
        value,
        timestamp: t,
    });
    Ok(())
}

/// One `prometheus.TimeSeries` into `b`. Its labels and its exemplars' labels are pushed to
/// `b.labels` in the order the wire has them; `own` (scratch) notes where the series' own
/// are, so they can be gathered when an exemplar came between them.
fn series<'a>(b: &mut Batch<'a>, buf: &'a [u8], own: &mut Vec<u32>) -> Result<(), String> {
    let mut w = Wire::new(buf);
    let l0 = b.labels.len();
    let s0 = b.samples.len() as u32;
    let e0 = b.exemplars.len() as u32;
    let h0 = b.histograms.len() as u32;
    own.clear();
    let mut interleaved = false;
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => {
                let m = field(&mut w, "labels", wire, LEN, Wire::bytes)?;
                let l = label(m, DEPTH - 2).map_err(|e| format!("labels: {e}"))?;
                interleaved |= b.exemplars.len() as u32 > e0;
                own.push(b.labels.len() as u32);
                b.labels.push(l);
            }
            2 => {
                let m = field(&mut w, "samples", wire, LEN, Wire::bytes)?;
                b.samples
                    .push(sample(m).map_err(|e| format!("samples: {e}"))?);
            }
            3 => {
                let m = field(&mut w, "exemplars", wire, LEN, Wire::bytes)?;
                exemplar(b, m).map_err(|e| format!("exemplars: {e}"))?;
            }
            4 => {
                let m = field(&mut w, "histograms", wire, LEN, Wire::bytes)?;
                b.histograms.push(m);
            }
            _ => w.skip(f, wire, DEPTH - 1)?,
        }
    }
    let labels = if interleaved {
        // Rare (senders write labels first): the series' labels go again at the end, in
        // their order.
        let start = b.labels.len() as u32;
        for &k in own.iter() {
            let l = b.labels[k as usize];
            b.labels.push(l);
        }
        start..b.labels.len() as u32
    } else {
        // Pushed before any exemplar's: the first `own.len()` from where the series began.
        l0 as u32..(l0 + own.len()) as u32
    };
    b.series.push(SeriesSpan {
        labels,
        samples: s0..b.samples.len() as u32,
        exemplars: e0..b.exemplars.len() as u32,
        histograms: h0..b.histograms.len() as u32,
    });
    Ok(())
}

/// A `prometheus.MetricMetadata` checked as prost would decode it (the receiver keeps no
/// 1.0 metadata, but a malformed entry fails the request as it always has).
fn check_metadata(buf: &[u8]) -> Result<(), String> {
    let mut w = Wire::new(buf);
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => drop(field(&mut w, "type", wire, VARINT, Wire::varint)?),
            2 => drop(field(&mut w, "metric_family_name", wire, LEN, string)?),
            4 => drop(field(&mut w, "help", wire, LEN, string)?),
            5 => drop(field(&mut w, "unit", wire, LEN, string)?),
            _ => w.skip(f, wire, DEPTH - 1)?,
        }
    }
    Ok(())
}

/// A decompressed `prometheus.WriteRequest`, its series borrowed from `raw`. An error names
/// where the bytes went wrong (`timeseries[3]: labels: value: invalid string value: ...`).
pub fn decode_v1(raw: &[u8]) -> Result<Batch<'_>, String> {
    let mut b = Batch::default();
    let mut w = Wire::new(raw);
    let mut own = Vec::new();
    let mut meta = 0;
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => {
                let i = b.series.len();
                let m = field(&mut w, "timeseries", wire, LEN, Wire::bytes)?;
                series(&mut b, m, &mut own).map_err(|e| format!("timeseries[{i}]: {e}"))?;
            }
            3 => {
                let m = field(&mut w, "metadata", wire, LEN, Wire::bytes)?;
                check_metadata(m).map_err(|e| format!("metadata[{meta}]: {e}"))?;
                meta += 1;
            }
            _ => w.skip(f, wire, DEPTH)?,
        }
    }
    Ok(b)
}

/// One series' metadata as a 2.0 request gives it, resolved against its symbols.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataRef<'a> {
    /// 0 unspecified, 1 counter, 2 gauge, 3 histogram, 4 gaugehistogram, 5 summary, 6 info,
    /// 7 stateset (as sent; any other number too).
    pub kind: i32,
    pub help: &'a str,
    pub unit: &'a str,
}

/// What [`decode_v2`] does beyond reading the series.
#[derive(Debug, Clone, Copy, Default)]
pub struct V2Options {
    /// `--enable-feature=type-and-unit-labels`: a series whose metadata gives a type or unit
    /// carries them as `__type__` and `__unit__`, in place of any it was sent with.
    pub type_and_unit: bool,
    /// `--enable-feature=metadata-wal-records`: each series' metadata is given back.
    pub keep_metadata: bool,
}

/// A 2.0 series' metadata fields as sent (an optional message sent twice merges, field by
/// field, as in any protobuf decoder).
#[derive(Debug, Clone, Copy, Default)]
struct RawMetadata {
    kind: i32,
    help_ref: u32,
    unit_ref: u32,
}

/// A repeated `uint32`, packed or not, appended to `out`.
fn uint32s(w: &mut Wire, wire: u8, name: &str, out: &mut Vec<u32>) -> Result<(), String> {
    let e = |e: String| format!("{name}: {e}");
    match wire {
        LEN => {
            let mut packed = Wire::new(w.bytes().map_err(e)?);
            while !packed.done() {
                out.push(packed.varint().map_err(e)? as u32);
            }
            Ok(())
        }
        VARINT => {
            out.push(w.varint().map_err(e)? as u32);
            Ok(())
        }
        _ => Err(format!(
            "{name}: invalid wire type: {wire} (expected {LEN})"
        )),
    }
}

/// A remote write 2.0 request's symbols and series: the series are read once the whole table
/// is known (the wire may give it after them).
fn v2_parts(raw: &[u8]) -> Result<(Vec<&str>, Vec<&[u8]>), String> {
    let mut w = Wire::new(raw);
    let (mut symbols, mut series) = (Vec::new(), Vec::new());
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            4 => {
                let n = symbols.len();
                let s = field(&mut w, "symbols", wire, LEN, string)
                    .map_err(|e| format!("symbols[{n}]: {e}"))?;
                symbols.push(s);
            }
            5 => series.push(field(&mut w, "timeseries", wire, LEN, Wire::bytes)?),
            _ => w.skip(f, wire, DEPTH)?,
        }
    }
    Ok((symbols, series))
}

/// One `io.prometheus.write.v2.TimeSeries` as sent (its own label references go to the
/// `own` given to [`SeriesV2::read`]): its exemplars' references in `refs`, each exemplar
/// `(start, end, value, timestamp)` into them, its samples and histograms.
struct SeriesV2<'a> {
    refs: Vec<u32>,
    exemplars: Vec<(u32, u32, f64, i64)>,
    samples: Vec<(f64, i64)>,
    histograms: Vec<&'a [u8]>,
    metadata: Option<RawMetadata>,
}

impl<'a> SeriesV2<'a> {
    fn clear(&mut self) {
        self.refs.clear();
        self.exemplars.clear();
        self.samples.clear();
        self.histograms.clear();
        self.metadata = None;
    }

    fn read(&mut self, buf: &'a [u8], own: &mut Vec<u32>) -> Result<(), String> {
        self.clear();
        own.clear();
        let mut w = Wire::new(buf);
        while !w.done() {
            let (f, wire) = w.key()?;
            match f {
                1 => uint32s(&mut w, wire, "labels_refs", own)?,
                2 => {
                    let m = field(&mut w, "samples", wire, LEN, Wire::bytes)?;
                    self.samples
                        .push(sample(m).map_err(|e| format!("samples: {e}"))?);
                }
                3 => self
                    .histograms
                    .push(field(&mut w, "histograms", wire, LEN, Wire::bytes)?),
                4 => {
                    let m = field(&mut w, "exemplars", wire, LEN, Wire::bytes)?;
                    self.exemplar(m).map_err(|e| format!("exemplars: {e}"))?;
                }
                5 => {
                    let m = field(&mut w, "metadata", wire, LEN, Wire::bytes)?;
                    let mut md = self.metadata.unwrap_or_default();
                    metadata_v2(m, &mut md).map_err(|e| format!("metadata: {e}"))?;
                    self.metadata = Some(md);
                }
                6 => drop(field(&mut w, "created_timestamp", wire, VARINT, int64)?),
                _ => w.skip(f, wire, DEPTH - 1)?,
            }
        }
        Ok(())
    }

    fn exemplar(&mut self, buf: &[u8]) -> Result<(), String> {
        let mut w = Wire::new(buf);
        let r0 = self.refs.len() as u32;
        let (mut value, mut t) = (0.0, 0);
        while !w.done() {
            let (f, wire) = w.key()?;
            match f {
                1 => uint32s(&mut w, wire, "labels_refs", &mut self.refs)?,
                2 => value = field(&mut w, "value", wire, FIXED64, double)?,
                3 => t = field(&mut w, "timestamp", wire, VARINT, int64)?,
                _ => w.skip(f, wire, DEPTH - 2)?,
            }
        }
        self.exemplars.push((r0, self.refs.len() as u32, value, t));
        Ok(())
    }
}

fn metadata_v2(buf: &[u8], md: &mut RawMetadata) -> Result<(), String> {
    let mut w = Wire::new(buf);
    while !w.done() {
        let (f, wire) = w.key()?;
        match f {
            1 => md.kind = field(&mut w, "type", wire, VARINT, int64)? as i32,
            3 => md.help_ref = field(&mut w, "help_ref", wire, VARINT, int64)? as u32,
            4 => md.unit_ref = field(&mut w, "unit_ref", wire, VARINT, int64)? as u32,
            _ => w.skip(f, wire, DEPTH - 2)?,
        }
    }
    Ok(())
}

/// Label pairs given as references into `symbols`, pushed to `out`; `at` names their place
/// for the error an odd count or a reference outside the table gets.
fn resolve<'a>(
    symbols: &[&'a str],
    refs: &[u32],
    out: &mut Vec<LabelPair<'a>>,
    text: &mut usize,
    at: impl Fn() -> String,
) -> Result<(), String> {
    if !refs.len().is_multiple_of(2) {
        return Err(format!(
            "{}.labels_refs: an odd number of references ({})",
            at(),
            refs.len()
        ));
    }
    let get = |r: u32| {
        symbols.get(r as usize).copied().ok_or_else(|| {
            format!(
                "{}.labels_refs: reference {r} is outside the {} symbols",
                at(),
                symbols.len()
            )
        })
    };
    for pair in refs.chunks(2) {
        let (name, value) = (get(pair[0])?, get(pair[1])?);
        let cost = name.len() + value.len() + std::mem::size_of::<LabelPair>();
        charge(text, cost, || format!("{}.labels_refs", at()))?;
        out.push((name, value));
    }
    Ok(())
}

/// The names Prometheus gives 2.0's metric types in `__type__`.
fn type_name(kind: i32) -> &'static str {
    match kind {
        1 => "counter",
        2 => "gauge",
        3 => "histogram",
        4 => "gaugehistogram",
        5 => "summary",
        6 => "info",
        7 => "stateset",
        _ => "",
    }
}

/// A decompressed `io.prometheus.write.v2.Request`, resolved against its symbols into the
/// series of a [`Batch`] borrowed from `raw`, and (with `keep_metadata`) each series'
/// metadata by its place. Errors name the place: `timeseries[2].labels_refs: reference 9 is
/// outside the 4 symbols`, and those of the wire begin `protobuf: `.
#[allow(clippy::type_complexity)]
pub fn decode_v2(
    raw: &[u8],
    opts: V2Options,
) -> Result<(Batch<'_>, Vec<Option<MetadataRef<'_>>>), String> {
    let (symbols, series) = v2_parts(raw).map_err(|e| format!("protobuf: {e}"))?;
    if symbols.first().is_some_and(|s| !s.is_empty()) {
        return Err("symbols: the first symbol must be the empty string".into());
    }
    let mut b = Batch::default();
    let mut metadata = Vec::new();
    let mut ts = SeriesV2 {
        refs: Vec::new(),
        exemplars: Vec::new(),
        samples: Vec::new(),
        histograms: Vec::new(),
        metadata: None,
    };
    let mut own = Vec::new();
    let mut text = 0;
    for (i, buf) in series.into_iter().enumerate() {
        let at = || format!("timeseries[{i}]");
        ts.read(buf, &mut own)
            .map_err(|e| format!("protobuf: timeseries[{i}]: {e}"))?;
        let symbol = |r: u32, name: &str| {
            symbols.get(r as usize).copied().ok_or_else(|| {
                format!(
                    "timeseries[{i}].metadata.{name}: reference {r} is outside the {} symbols",
                    symbols.len()
                )
            })
        };
        let l0 = b.labels.len();
        resolve(&symbols, &own, &mut b.labels, &mut text, at)?;
        if opts.keep_metadata {
            metadata.push(match ts.metadata {
                Some(m) => {
                    let (help, unit) = (
                        symbol(m.help_ref, "help_ref")?,
                        symbol(m.unit_ref, "unit_ref")?,
                    );
                    // The storage keeps a copy per series.
                    charge(&mut text, help.len() + unit.len(), || {
                        format!("timeseries[{i}].metadata")
                    })?;
                    Some(MetadataRef {
                        kind: m.kind,
                        help,
                        unit,
                    })
                }
                None => None,
            });
        }
        if opts.type_and_unit
            && let Some(m) = ts.metadata
        {
            let kind = type_name(m.kind);
            let unit = symbol(m.unit_ref, "unit_ref")?;
            if !(kind.is_empty() && unit.is_empty()) {
                // In place of any the series was sent with, after its other labels.
                let mut k = l0;
                for j in l0..b.labels.len() {
                    let l = b.labels[j];
                    if l.0 != "__type__" && l.0 != "__unit__" {
                        b.labels[k] = l;
                        k += 1;
                    }
                }
                b.labels.truncate(k);
                for (name, value) in [("__type__", kind), ("__unit__", unit)] {
                    if !value.is_empty() {
                        let cost = name.len() + value.len() + std::mem::size_of::<LabelPair>();
                        charge(&mut text, cost, || format!("timeseries[{i}].metadata"))?;
                        b.labels.push((name, value));
                    }
                }
            }
        }
        let labels = l0 as u32..b.labels.len() as u32;
        let e0 = b.exemplars.len() as u32;
        for (k, &(r0, r1, value, timestamp)) in ts.exemplars.iter().enumerate() {
            let el0 = b.labels.len() as u32;
            resolve(
                &symbols,
                &ts.refs[r0 as usize..r1 as usize],
                &mut b.labels,
                &mut text,
                || format!("timeseries[{i}].exemplars[{k}]"),
            )?;
            b.exemplars.push(ExemplarRef {
                labels: (el0, b.labels.len() as u32),
                value,
                timestamp,
            });
        }
        let s0 = b.samples.len() as u32;
        b.samples.extend_from_slice(&ts.samples);
        let h0 = b.histograms.len() as u32;
        b.histograms.extend_from_slice(&ts.histograms);
        b.series.push(SeriesSpan {
            labels,
            samples: s0..b.samples.len() as u32,
            exemplars: e0..b.exemplars.len() as u32,
            histograms: h0..b.histograms.len() as u32,
        });
    }
    Ok((b, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    fn request() -> WriteRequest {
        let l = |n: &str, v: &str| Label {
            name: n.into(),
            value: v.into(),
        };
        WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![l("__name__", "up"), l("job", "a"), l("é", "ü\u{1F600}")],
                    samples: vec![
                        Sample {
                            value: 1.5,
                            timestamp: 1000,
                        },
                        Sample {
                            value: f64::from_bits(0x7ff0000000000002),
                            timestamp: -5,
                        },
                    ],
                    exemplars: vec![Exemplar {
                        labels: vec![l("trace_id", "abc")],
                        value: 2.0,
                        timestamp: 900,
                    }],
                    histograms: vec![vec![8, 1, 16, 2]],
                },
                TimeSeries::default(),
                TimeSeries {
                    labels: vec![l("__name__", "x"), l("", "")],
                    samples: vec![Sample {
                        value: -0.0,
                        timestamp: i64::MAX,
                    }],
                    ..Default::default()
                },
            ],
            metadata: vec![crate::proto::MetricMetadata {
                r#type: 2,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: "u".into(),
            }],
        }
    }

    /// Decoded equal when both decoders take `raw`, or both refuse it. Compared through the
    /// encoding, so NaN payloads and signed zeros count.
    fn agree(raw: &[u8]) -> bool {
        let ours = decode_v1(raw);
        let prost = WriteRequest::decode(raw);
        match (ours, prost) {
            (Ok(b), Ok(mut p)) => {
                p.metadata.clear();
                assert_eq!(
                    b.to_request().encode_to_vec(),
                    p.encode_to_vec(),
                    "decoded differently: {raw:02x?}"
                );
                true
            }
            (Err(_), Err(_)) => false,
            (o, p) => panic!(
                "one decoder took what the other refused: ours {:?}, prost {:?}, bytes {raw:02x?}",
                o.map(|b| b.len()),
                p.map(|r| r.timeseries.len())
            ),
        }
    }

    #[test]
    fn decodes_what_prost_decodes() {
        let req = request();
        let raw = req.encode_to_vec();
        let b = decode_v1(&raw).unwrap();
        assert_eq!(b.len(), 3);
        let first = b.series().next().unwrap();
        assert_eq!(first.labels()[2], ("é", "ü\u{1F600}"));
        assert_eq!(first.samples()[1].1, -5);
        assert_eq!(
            first.exemplar_labels(&first.exemplars()[0]),
            &[("trace_id", "abc")]
        );
        assert_eq!(first.histograms(), &[&[8u8, 1, 16, 2][..]]);
        assert!(agree(&raw));
        // `Batch::of` gives the same series.
        assert_eq!(
            Batch::of(&req).to_request().encode_to_vec(),
            b.to_request().encode_to_vec()
        );
    }

    /// Hand-made corners: fields out of order (an exemplar between a series' labels), a field
    /// repeated (the last wins), unknown fields of each wire type, nested groups, and the
    /// ways bytes can be wrong.
    #[test]
    fn corners_agree_with_prost() {
        let (varint, key, len) = (pb_varint, pb_key, pb_len);
        let lab = |n: &str, v: &str| [len(1, n.as_bytes()), len(2, v.as_bytes())].concat();
        let ex = len(1, &lab("t", "1"));
        let series = [
            len(1, &lab("__name__", "a")),
            len(3, &ex),
            len(1, &lab("job", "j")),
            len(
                2,
                &[
                    key(1, 1),
                    7.5f64.to_le_bytes().to_vec(),
                    key(2, 0),
                    varint(9),
                ]
                .concat(),
            ),
            // unknown fields of every wire type, and groups nested three deep
            key(9, 0),
            varint(u64::MAX),
            key(10, 1),
            vec![0; 8],
            key(11, 5),
            vec![0; 4],
            len(12, b"zz"),
            key(13, 3),
            key(14, 3),
            key(15, 3),
            key(15, 4),
            key(16, 0),
            vec![1],
            key(14, 4),
            key(13, 4),
        ]
        .concat();
        let good = len(1, &series);
        assert!(agree(&good));
        let b = decode_v1(&good).unwrap();
        let s = b.series().next().unwrap();
        assert_eq!(s.labels(), &[("__name__", "a"), ("job", "j")]);
        assert_eq!(s.exemplar_labels(&s.exemplars()[0]), &[("t", "1")]);
        assert_eq!(s.samples(), &[(7.5, 9)]);
        // A repeated scalar: the last wins.
        let twice = len(
            1,
            &len(2, &[key(2, 0), varint(1), key(2, 0), varint(2)].concat()),
        );
        assert!(agree(&twice));
        assert_eq!(decode_v1(&twice).unwrap().samples, vec![(0.0, 2)]);
        let bad: Vec<Vec<u8>> = vec![
            len(1, &len(1, &len(1, &[0xff]))),                  // not UTF-8
            len(1, &[key(1, 0), varint(1)].concat()),           // labels as a varint
            [key(1, 2), varint(100)].concat(),                  // longer than the body
            vec![0x80; 11],                                     // a varint too long
            key(0, 0),                                          // field 0
            key(3, 6),                                          // wire type 6
            key(5, 4),                                          // a stray end of group
            [key(5, 3), key(6, 4)].concat(),                    // a group closed by another field
            key(5, 3),                                          // a group never closed
            len(1, &len(2, &[key(1, 1), vec![0; 3]].concat())), // a double cut short
            len(1, &len(2, &[key(2, 0), vec![0xff; 9], vec![2]].concat())), // 10th byte > 1
            len(3, &[key(2, 0), varint(1)].concat()), // metadata's family name as a varint
            len(3, &len(4, &[0xc3])),                 // metadata help not UTF-8
        ];
        for b in &bad {
            assert!(!agree(b), "taken: {b:02x?}");
        }
        // An error names where: the series, the field, what is wrong.
        let second_bad = [
            len(1, &len(1, &lab("__name__", "a"))),
            len(1, &len(1, &len(2, &[b'x', 0xff]))),
        ]
        .concat();
        let e = decode_v1(&second_bad).unwrap_err();
        assert_eq!(
            e,
            "timeseries[1]: labels: value: invalid string value: data is not UTF-8 encoded"
        );
        // Groups nested past prost's limit are refused by both.
        assert!(!agree(&groups(200)));
        assert!(agree(&groups(50)));
    }

    /// Random mutations of a valid request (bit flips, bytes cut, inserted, repeated): every
    /// one is taken by both decoders with the same series, or refused by both.
    #[test]
    fn same_as_prost_on_mutated_requests() {
        let base = request().encode_to_vec();
        let (mut taken, mut refused) = (0, 0);
        for b in mutated(&base, 0x2545_f491_4f6c_dd1d, 20_000) {
            if agree(&b) {
                taken += 1;
            } else {
                refused += 1;
            }
        }
        // Both outcomes must be exercised for the comparison to mean anything.
        assert!(
            taken > 1_000 && refused > 1_000,
            "{taken} taken, {refused} refused"
        );
    }

    /// prost's reading of a 2.0 request resolved against its symbols, written plainly: the
    /// oracle for [`decode_v2`].
    #[allow(clippy::type_complexity)]
    fn v2_by_prost(
        raw: &[u8],
        opts: V2Options,
    ) -> Option<(WriteRequest, Vec<Option<(i32, String, String)>>)> {
        use crate::proto::RequestV2;
        let req = RequestV2::decode(raw).ok()?;
        let sym = &req.symbols;
        if sym.first().is_some_and(|s| !s.is_empty()) {
            return None;
        }
        let get = |r: u32| sym.get(r as usize).cloned();
        let pairs = |refs: &[u32]| -> Option<Vec<Label>> {
            if refs.len() % 2 == 1 {
                return None;
            }
            refs.chunks(2)
                .map(|p| {
                    Some(Label {
                        name: get(p[0])?,
                        value: get(p[1])?,
                    })
                })
                .collect()
        };
        let mut out = WriteRequest::default();
        let mut meta = Vec::new();
        for ts in &req.timeseries {
            let mut labels = pairs(&ts.labels_refs)?;
            if opts.keep_metadata {
                meta.push(match &ts.metadata {
                    Some(m) => Some((m.r#type, get(m.help_ref)?, get(m.unit_ref)?)),
                    None => None,
                });
            }
            if opts.type_and_unit
                && let Some(m) = &ts.metadata
            {
                let names = [
                    "",
                    "counter",
                    "gauge",
                    "histogram",
                    "gaugehistogram",
                    "summary",
                    "info",
                    "stateset",
                ];
                let kind = usize::try_from(m.r#type)
                    .ok()
                    .and_then(|k| names.get(k))
                    .copied()
                    .unwrap_or("");
                let unit = get(m.unit_ref)?;
                if !(kind.is_empty() && unit.is_empty()) {
                    labels.retain(|l| l.name != "__type__" && l.name != "__unit__");
                    for (n, v) in [("__type__", kind), ("__unit__", unit.as_str())] {
                        if !v.is_empty() {
                            labels.push(Label {
                                name: n.into(),
                                value: v.into(),
                            });
                        }
                    }
                }
            }
            let mut exemplars = Vec::new();
            for e in &ts.exemplars {
                exemplars.push(Exemplar {
                    labels: pairs(&e.labels_refs)?,
                    value: e.value,
                    timestamp: e.timestamp,
                });
            }
            out.timeseries.push(TimeSeries {
                labels,
                samples: ts.samples.clone(),
                exemplars,
                histograms: ts.histograms.clone(),
            });
        }
        Some((out, meta))
    }

    /// Both readings of a 2.0 request agree: the same series and metadata, or both refuse.
    fn agree_v2(raw: &[u8], opts: V2Options) -> bool {
        let ours = decode_v2(raw, opts);
        match (ours, v2_by_prost(raw, opts)) {
            (Ok((b, m)), Some((p, pm))) => {
                assert_eq!(
                    b.to_request().encode_to_vec(),
                    p.encode_to_vec(),
                    "decoded differently: {raw:02x?}"
                );
                let m: Vec<_> = m
                    .iter()
                    .map(|m| m.map(|m| (m.kind, m.help.to_string(), m.unit.to_string())))
                    .collect();
                assert_eq!(m, pm, "metadata: {raw:02x?}");
                true
            }
            (Err(_), None) => false,
            (o, p) => panic!(
                "one decoder took what the other refused: ours {:?}, prost {:?}, bytes {raw:02x?}",
                o.map(|b| b.0.len()),
                p.map(|r| r.0.timeseries.len())
            ),
        }
    }

    fn request_v2() -> crate::proto::RequestV2 {
        use crate::proto::{ExemplarV2, MetadataV2, RequestV2, TimeSeriesV2};
        RequestV2 {
            symbols: [
                "", "__name__", "up", "job", "a", "__type__", "seconds", "trace_id", "é",
            ]
            .map(String::from)
            .to_vec(),
            timeseries: vec![
                TimeSeriesV2 {
                    labels_refs: vec![1, 2, 3, 4, 5, 4],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    histograms: vec![vec![8, 1]],
                    exemplars: vec![ExemplarV2 {
                        labels_refs: vec![7, 8],
                        value: 2.5,
                        timestamp: 4,
                    }],
                    metadata: Some(MetadataV2 {
                        r#type: 1,
                        help_ref: 8,
                        unit_ref: 6,
                    }),
                    created_timestamp: 3,
                },
                TimeSeriesV2 {
                    labels_refs: vec![1, 8],
                    samples: vec![Sample {
                        value: -1.0,
                        timestamp: -2,
                    }],
                    metadata: Some(MetadataV2::default()),
                    ..Default::default()
                },
            ],
        }
    }

    /// Random mutations of a valid 2.0 request, read with each combination of the features:
    /// both readings agree on every one.
    #[test]
    fn v2_same_as_prost_on_mutated_requests() {
        let base = request_v2().encode_to_vec();
        let all = [(false, false), (true, false), (false, true), (true, true)].map(
            |(type_and_unit, keep_metadata)| V2Options {
                type_and_unit,
                keep_metadata,
            },
        );
        for opts in all {
            assert!(agree_v2(&base, opts));
        }
        let (b, m) = decode_v2(&base, all[3]).unwrap();
        let first = b.series().next().unwrap();
        assert_eq!(
            first.labels(),
            &[
                ("__name__", "up"),
                ("job", "a"),
                ("__type__", "counter"),
                ("__unit__", "seconds")
            ]
        );
        assert_eq!(
            first.exemplar_labels(&first.exemplars()[0]),
            &[("trace_id", "é")]
        );
        assert_eq!(
            m[0],
            Some(MetadataRef {
                kind: 1,
                help: "é",
                unit: "seconds"
            })
        );
        let (mut taken, mut refused) = (0, 0);
        for (round, b) in mutated(&base, 0x9e37_79b9_7f4a_7c15, 20_000).enumerate() {
            if agree_v2(&b, all[round % 4]) {
                taken += 1;
            } else {
                refused += 1;
            }
        }
        assert!(
            taken > 1_000 && refused > 1_000,
            "{taken} taken, {refused} refused"
        );
    }

    /// Hand-made 2.0 corners: the symbols after the series, label references unpacked and
    /// packed in two runs, metadata sent twice (merged field by field), an unknown field,
    /// and references out of the table or odd in number.
    #[test]
    fn v2_corners_agree_with_prost() {
        let (varint, key, len) = (pb_varint, pb_key, pb_len);
        let packed = |f: u64, refs: &[u64]| {
            len(f, &refs.iter().flat_map(|&r| varint(r)).collect::<Vec<_>>())
        };
        let unpacked = |f: u64, refs: &[u64]| {
            refs.iter()
                .flat_map(|&r| [key(f, 0), varint(r)].concat())
                .collect::<Vec<_>>()
        };
        let symbols = ["", "__name__", "up", "job", "a", "h", "u"]
            .iter()
            .flat_map(|s| len(4, s.as_bytes()))
            .collect::<Vec<_>>();
        let series = |refs: Vec<u8>| {
            let body = [
                refs,
                len(4, &[unpacked(1, &[3]), packed(1, &[4])].concat()),
                len(5, &[key(1, 0), varint(2), key(3, 0), varint(5)].concat()),
                len(5, &[key(4, 0), varint(6)].concat()),
                key(9, 0),
                varint(1),
            ]
            .concat();
            len(5, &body)
        };
        let opts = V2Options {
            type_and_unit: true,
            keep_metadata: true,
        };
        let good = [
            series([unpacked(1, &[1, 2]), packed(1, &[3, 4])].concat()),
            symbols.clone(),
        ]
        .concat();
        assert!(agree_v2(&good, opts));
        let (b, m) = decode_v2(&good, opts).unwrap();
        let s = b.series().next().unwrap();
        assert_eq!(
            s.labels(),
            &[
                ("__name__", "up"),
                ("job", "a"),
                ("__type__", "gauge"),
                ("__unit__", "u")
            ]
        );
        assert_eq!(s.exemplar_labels(&s.exemplars()[0]), &[("job", "a")]);
        assert_eq!(
            m,
            vec![Some(MetadataRef {
                kind: 2,
                help: "h",
                unit: "u"
            })]
        );
        for bad in [
            [series(packed(1, &[1, 2, 3])), symbols.clone()].concat(),
            [series(packed(1, &[1, 70])), symbols.clone()].concat(),
            [len(4, b"x"), series(packed(1, &[1, 2]))].concat(),
        ] {
            assert!(!agree_v2(&bad, opts), "taken: {bad:02x?}");
        }
        let e = decode_v2(&[series(packed(1, &[1, 70])), symbols].concat(), opts).unwrap_err();
        assert_eq!(
            e,
            "timeseries[0].labels_refs: reference 70 is outside the 7 symbols"
        );
    }

    fn pb_varint(mut v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        while v >= 0x80 {
            o.push(v as u8 | 0x80);
            v >>= 7;
        }
        o.push(v as u8);
        o
    }

    fn pb_key(f: u64, wire: u64) -> Vec<u8> {
        pb_varint(f << 3 | wire)
    }

    fn pb_len(f: u64, body: &[u8]) -> Vec<u8> {
        [pb_key(f, 2), pb_varint(body.len() as u64), body.to_vec()].concat()
    }

    /// Groups of field 7 nested `n` deep, with nothing inside the deepest.
    fn groups(n: usize) -> Vec<u8> {
        [pb_key(7, 3).repeat(n), pb_key(7, 4).repeat(n)].concat()
    }

    /// `rounds` random mutations of `base` (bits flipped, bytes cut, inserted, repeated), the
    /// same for the same `seed`.
    fn mutated(base: &[u8], mut seed: u64, rounds: usize) -> impl Iterator<Item = Vec<u8>> + '_ {
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..rounds).map(move |_| {
            let mut b = base.to_vec();
            for _ in 0..1 + next() % 3 {
                if b.is_empty() {
                    break;
                }
                let at = (next() as usize) % b.len();
                match next() % 4 {
                    0 => b[at] ^= 1 << (next() % 8),
                    1 => b.truncate(at),
                    2 => b.insert(at, next() as u8),
                    _ => {
                        let end = (at + 1 + (next() as usize) % 8).min(b.len());
                        let piece = b[at..end].to_vec();
                        b.splice(at..at, piece);
                    }
                }
            }
            b
        })
    }

    /// prost's recursion budget differs with the depth of the message a group is skipped in:
    /// both decoders take groups nested exactly as deep as it allows there, and refuse one
    /// more, in every message of both versions.
    #[test]
    fn groups_are_refused_where_prost_refuses_them() {
        type Place = (&'static str, usize, fn(Vec<u8>) -> Vec<u8>);
        let v1: [Place; 7] = [
            ("request", 100, |g| g),
            ("series", 99, |g| pb_len(1, &g)),
            ("label", 98, |g| pb_len(1, &pb_len(1, &g))),
            ("sample", 98, |g| pb_len(1, &pb_len(2, &g))),
            ("exemplar", 98, |g| pb_len(1, &pb_len(3, &g))),
            ("exemplar's label", 97, |g| {
                pb_len(1, &pb_len(3, &pb_len(1, &g)))
            }),
            ("metadata", 99, |g| pb_len(3, &g)),
        ];
        for (place, budget, wrap) in v1 {
            assert!(
                agree(&wrap(groups(budget))),
                "1.0 {place}: {budget} deep refused"
            );
            assert!(
                !agree(&wrap(groups(budget + 1))),
                "1.0 {place}: {} deep taken",
                budget + 1
            );
        }
        let opts = V2Options {
            type_and_unit: true,
            keep_metadata: true,
        };
        let v2: [Place; 5] = [
            ("request", 100, |g| g),
            ("series", 99, |g| pb_len(5, &g)),
            ("sample", 98, |g| pb_len(5, &pb_len(2, &g))),
            ("exemplar", 98, |g| pb_len(5, &pb_len(4, &g))),
            ("metadata", 98, |g| pb_len(5, &pb_len(5, &g))),
        ];
        // The empty symbol the metadata's references name.
        let empty = pb_len(4, b"");
        for (place, budget, wrap) in v2 {
            let ok = [empty.clone(), wrap(groups(budget))].concat();
            assert!(agree_v2(&ok, opts), "2.0 {place}: {budget} deep refused");
            assert!(
                !agree_v2(&[empty.clone(), wrap(groups(budget + 1))].concat(), opts),
                "2.0 {place}: {} deep taken",
                budget + 1
            );
        }
    }

    /// A 2.0 request whose references would resolve to more label text than allowed is
    /// refused naming where, before anything is copied: one symbol sent once and referred to
    /// by many series.
    #[test]
    fn v2_references_cannot_multiply_a_symbol_without_bound() {
        let big = "x".repeat(8 << 20);
        let symbols: Vec<u8> = ["", "__name__", big.as_str()]
            .iter()
            .flat_map(|s| pb_len(4, s.as_bytes()))
            .collect();
        let series = pb_len(5, &pb_len(1, &[1, 2]));
        let n = MAX_RESOLVED_LABEL_BYTES / big.len();
        let ok = [symbols.clone(), series.repeat(n - 1)].concat();
        let (b, _) = decode_v2(&ok, V2Options::default()).unwrap();
        assert_eq!(b.len(), n - 1);
        let over = [symbols, series.repeat(n + 1)].concat();
        let e = decode_v2(&over, V2Options::default()).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "timeseries[{}].labels_refs: the request's labels resolve to more than",
                n - 1
            )),
            "{e}"
        );
    }

    /// The bound counts what metadata makes of a symbol too: with `metadata-wal-records` each
    /// series keeps its help and unit, with `type-and-unit-labels` its unit becomes a label;
    /// a huge help or unit named by many series is refused, naming where.
    #[test]
    fn v2_metadata_cannot_multiply_a_symbol_without_bound() {
        let big = "x".repeat(8 << 20);
        let symbols: Vec<u8> = ["", "__name__", "a", big.as_str()]
            .iter()
            .flat_map(|s| pb_len(4, s.as_bytes()))
            .collect();
        let n = MAX_RESOLVED_LABEL_BYTES / big.len();
        // help_ref 3 (the big one), then unit_ref 3.
        let help = pb_len(5, &[pb_len(1, &[1, 2]), pb_len(5, &[3 << 3, 3])].concat());
        let unit = pb_len(5, &[pb_len(1, &[1, 2]), pb_len(5, &[4 << 3, 3])].concat());
        for (series, opts, what) in [
            (
                help,
                V2Options {
                    keep_metadata: true,
                    ..Default::default()
                },
                "help kept",
            ),
            (
                unit,
                V2Options {
                    type_and_unit: true,
                    ..Default::default()
                },
                "unit as a label",
            ),
        ] {
            let ok = [symbols.clone(), series.repeat(n - 2)].concat();
            assert!(decode_v2(&ok, opts).is_ok(), "{what}");
            let over = [symbols.clone(), series.repeat(n + 1)].concat();
            let e = decode_v2(&over, opts).unwrap_err();
            assert!(
                e.contains("].metadata: the request's labels resolve to more than"),
                "{what}: {e}"
            );
            // Without the feature, the same request is taken: nothing is copied.
            assert!(decode_v2(&over, V2Options::default()).is_ok(), "{what}");
        }
    }
}
