//! The remote write receiver (`POST /api/v1/write`): a snappy protobuf
//! `prometheus.WriteRequest` (1.0) or `io.prometheus.write.v2.Request` (2.0) appended in one
//! transaction, answered as Prometheus answers.

use vigil_model::Labels;
use vigil_storage::Storage;

use crate::batch::{Batch, LabelPair, SeriesView};
use crate::codec;
use crate::proto::WriteRequest;

/// Which message a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// `prometheus.WriteRequest` (remote write 1.0; also a bare `application/x-protobuf`).
    V1,
    /// `io.prometheus.write.v2.Request` (remote write 2.0).
    V2,
}

impl Message {
    /// The message's fully qualified protobuf name.
    pub fn name(self) -> &'static str {
        match self {
            Message::V1 => "prometheus.WriteRequest",
            Message::V2 => "io.prometheus.write.v2.Request",
        }
    }

    /// The message named `s` (its fully qualified name).
    pub fn parse(s: &str) -> Option<Message> {
        [Message::V1, Message::V2]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Why a write was refused, with the HTTP status Prometheus answers it with.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// 400: the body cannot be read, or a sample cannot be stored (out of order, duplicate,
    /// too old): the sender must not retry it.
    #[error("{0}")]
    BadRequest(String),
    /// 415: a protocol or encoding vigil does not take.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500: the storage failed; the sender retries.
    #[error("{0}")]
    Storage(String),
}

impl ReceiveError {
    pub fn status(&self) -> u16 {
        match self {
            ReceiveError::BadRequest(_) => 400,
            ReceiveError::UnsupportedMediaType(_) => 415,
            ReceiveError::Storage(_) => 500,
        }
    }
}

/// What one accepted write carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    pub series: u64,
    pub samples: u64,
    /// Series skipped for invalid labels (no name, empty label name, a name twice), as
    /// Prometheus skips them: logged and counted, the rest of the write stored.
    pub invalid_series: u64,
    /// Native histogram samples stored.
    pub histograms: u64,
    /// Native histogram samples the storage cannot keep (one that refuses them by name).
    pub histograms_dropped: u64,
    /// Exemplars taken (stored with `--enable-feature=exemplar-storage`, as Prometheus
    /// counts them), and those refused (labels too long, out of order).
    pub exemplars: u64,
    pub exemplars_dropped: u64,
    /// Samples and histograms refused for their time (out of order, too old, out of bounds,
    /// a duplicate) in a partial write (2.0, see [`receive`]), and the first few refusals.
    pub refused: u64,
    pub refusals: Vec<String>,
}

/// How many refusals a partial write names.
const REFUSALS_NAMED: usize = 10;

/// Check the headers: remote write 1.0 or 2.0, in snappy.
pub fn check_headers(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Message, ReceiveError> {
    let mut msg = Message::V1;
    if let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) {
        let mut parts = ct.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        if !mime.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(ReceiveError::UnsupportedMediaType(format!(
                "expected application/x-protobuf as the first (media) part, got {ct} content-type"
            )));
        }
        for p in parts {
            match p.strip_prefix("proto=") {
                Some("prometheus.WriteRequest") => msg = Message::V1,
                Some("io.prometheus.write.v2.Request") => msg = Message::V2,
                Some(proto) => {
                    return Err(ReceiveError::UnsupportedMediaType(format!(
                        "unknown remote write protobuf message {proto}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
                    )));
                }
                None => {}
            }
        }
    }
    match content_encoding.map(str::trim) {
        None | Some("") | Some("snappy") => Ok(msg),
        Some(other) => Err(ReceiveError::UnsupportedMediaType(format!(
            "{other} encoding (compression) is not accepted by this server; only snappy is acceptable"
        ))),
    }
}

/// The most memory decoding `body` can take, in bytes: its decompressed size (as snappy's
/// header states it, at most [`codec::MAX_DECODED_BYTES`]) and the decoded series, labels and
/// samples, which hold at most 65 times that (an empty entry is two bytes on the wire and up
/// to 64 decoded with its vectors' spare room, measured by
/// `tests::decoding_cost_bounds_what_receiving_holds`). The receiver admits requests by it,
/// so a burst of large or hostile ones waits rather than exhausting memory.
pub fn decoding_cost(body: &[u8]) -> usize {
    match snap::raw::decompress_len(body) {
        Ok(raw) if raw <= codec::MAX_DECODED_BYTES => raw.saturating_mul(66),
        // Refused before anything is decompressed: a tiny cost, so a junk request cannot
        // hold the budget from others while it waits.
        _ => 1,
    }
}

/// Decode and store one request body: the receiver's whole work for a request. Both
/// messages are read without copying their labels ([`crate::batch`]). 1.0 is stored as
/// [`append`] stores it. 2.0 is answered per sample, as current Prometheus answers it: a
/// sample or histogram refused for its time is skipped (counted in [`Received::refused`], the
/// first few named) and the rest stored, the caller answering 400 naming them; each series is
/// given its metadata, as Prometheus's 2.0 handler does with `metadata-wal-records`.
pub fn receive(storage: &dyn Storage, msg: Message, body: &[u8]) -> Result<Received, ReceiveError> {
    let raw = codec::decompress(body).map_err(ReceiveError::BadRequest)?;
    match msg {
        Message::V1 => append_inner(storage, &decode_v1(&raw)?, &[], false, &[]),
        Message::V2 => {
            let (batch, metadata) = decode_v2(&raw)?;
            append_inner(storage, &batch, &[], true, &metadata)
        }
    }
}

/// A decompressed remote write 1.0 body, borrowed.
fn decode_v1(raw: &[u8]) -> Result<Batch<'_>, ReceiveError> {
    crate::batch::decode_v1(raw).map_err(|e| ReceiveError::BadRequest(format!("protobuf: {e}")))
}

/// A decompressed remote write 2.0 body, borrowed and resolved against its symbols, with
/// each series' metadata as the storage keeps it (`--enable-feature=metadata-wal-records`;
/// else empty) and `__type__`/`__unit__` from it with `type-and-unit-labels`.
fn decode_v2(raw: &[u8]) -> Result<(Batch<'_>, SeriesMetadata), ReceiveError> {
    let opts = crate::batch::V2Options {
        type_and_unit: vigil_config::type_and_unit_labels(),
        keep_metadata: vigil_config::metadata_wal_records(),
    };
    let (batch, metadata) = crate::batch::decode_v2(raw, opts).map_err(ReceiveError::BadRequest)?;
    Ok((batch, metadata.iter().map(series_metadata).collect()))
}

/// Decode a request body of the given message into an owned request, 2.0 resolved to 1.0's
/// shape (tests and tools; the receiver stores from the borrowed form, [`receive`]).
pub fn decode(msg: Message, body: &[u8]) -> Result<WriteRequest, ReceiveError> {
    let raw = codec::decompress(body).map_err(ReceiveError::BadRequest)?;
    Ok(match msg {
        Message::V1 => decode_v1(&raw)?.to_request(),
        Message::V2 => decode_v2(&raw)?.0.to_request(),
    })
}

/// Each series' metadata as a 2.0 request gives it, by the series' place in the request
/// (empty for 1.0, or without `--enable-feature=metadata-wal-records`).
pub type SeriesMetadata = Vec<Option<std::sync::Arc<vigil_storage::Metadata>>>;

/// A 2.0 series' metadata as the storage keeps it; None when it says nothing (no type, help
/// or unit), which would only erase what the series has.
fn series_metadata(
    m: &Option<crate::batch::MetadataRef>,
) -> Option<std::sync::Arc<vigil_storage::Metadata>> {
    let m = m.as_ref()?;
    let kind = u64::try_from(m.kind)
        .ok()
        .and_then(vigil_model::exposition::MetricType::from_code)
        .unwrap_or(vigil_model::exposition::MetricType::Unknown);
    if kind == vigil_model::exposition::MetricType::Unknown
        && m.help.is_empty()
        && m.unit.is_empty()
    {
        return None;
    }
    Some(std::sync::Arc::new(vigil_storage::Metadata {
        kind,
        unit: m.unit.to_string(),
        help: m.help.to_string(),
    }))
}

/// The labels of a series as sent, or why they are invalid. `sorted` is scratch space kept
/// across series, so a series costs one allocation: its packed label set.
fn series_labels<'a>(
    sent: &[LabelPair<'a>],
    sorted: &mut Vec<LabelPair<'a>>,
) -> Result<Labels, String> {
    sorted.clear();
    sorted.extend_from_slice(sent);
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!("duplicated label {}", w[0].0));
        }
    }
    if sorted.iter().any(|(n, _)| n.is_empty()) {
        return Err("a label with an empty name".into());
    }
    // An empty value is no label, as everywhere in Prometheus's data model.
    let ls = Labels::from_sorted_refs(
        sorted
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|&(name, value)| vigil_model::LabelRef { name, value }),
    );
    if ls.metric_name().is_none_or(str::is_empty) {
        return Err("no metric name".into());
    }
    Ok(ls)
}

/// An exemplar's labels as `Labels::from_pairs` takes them (the last of a name wins, and
/// an empty value removes it), sorted first so that many labels cost no quadratic inserts.
fn exemplar_labels<'a>(sent: &[LabelPair<'a>], sorted: &mut Vec<LabelPair<'a>>) -> Labels {
    sorted.clear();
    sorted.extend_from_slice(sent);
    // Stable: of one name, the last sent stays last.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut kept = 0;
    for i in 0..sorted.len() {
        if i + 1 < sorted.len() && sorted[i + 1].0 == sorted[i].0 {
            continue;
        }
        if !sorted[i].1.is_empty() {
            sorted[kept] = sorted[i];
            kept += 1;
        }
    }
    sorted.truncate(kept);
    Labels::from_sorted_refs(
        sorted
            .iter()
            .map(|&(name, value)| vigil_model::LabelRef { name, value }),
    )
}

/// A series' labels for a log line: about 1 KiB of their text (a label may be megabytes),
/// each cut marked with `...` (escaping can make what is shown a few times longer).
fn shown(labels: &[LabelPair]) -> String {
    const SHOWN: usize = 1024;
    // At most `max` bytes of `s`, on a character boundary.
    let cut = |s: &str, max: usize| -> String {
        if s.len() <= max {
            return s.to_string();
        }
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    };
    let mut out = String::new();
    for (n, v) in labels {
        if out.len() >= SHOWN {
            out.push_str(",...");
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let n = cut(n, SHOWN - out.len());
        let v = cut(v, SHOWN.saturating_sub(out.len() + n.len()));
        out.push_str(&format!("{n}={v:?}"));
    }
    out
}

/// The 0 at `start` before the first sample of `ts` (a zero histogram of its layout when it
/// holds histograms); the series ref to go on with.
fn start_zero(
    app: &mut dyn vigil_storage::Appender,
    labels: &Labels,
    start: i64,
    ts: &SeriesView,
) -> vigil_storage::SeriesRef {
    use prost::Message as _;
    let first_hist = ts
        .histograms()
        .first()
        .and_then(|raw| crate::proto::Histogram::decode(*raw).ok());
    let (t, template) = match (ts.samples().first(), &first_hist) {
        (Some(&(_, t)), _) => (t, None),
        (None, Some(h)) => (h.timestamp, h.to_float()),
        (None, None) => return 0,
    };
    if start >= t {
        return 0;
    }
    app.append_start_zero(0, labels, start, t, template.as_ref())
        .unwrap_or(0)
}

/// Append every sample of `req` in one transaction. A sample that cannot be stored (out of
/// order, duplicate, too old) rolls the whole write back and is answered 400, so the sender
/// drops it rather than retrying forever, as Prometheus does.
pub fn append(storage: &dyn Storage, req: &WriteRequest) -> Result<Received, ReceiveError> {
    append_inner(storage, &Batch::of(req), &[], false, &[])
}

/// As [`append`], with a start time for some series (`starts[i]` for `req.timeseries[i]`):
/// with `created-timestamp-zero-ingestion` a 0 at it goes before the series' first sample, as
/// a best effort (refused, out of order after an earlier request, it is neither an error nor
/// counted, as for scrapes). Each series is given its metadata, `metadata[i]` (none when
/// empty), as Prometheus's OTLP appender does.
pub fn append_with_starts(
    storage: &dyn Storage,
    req: &WriteRequest,
    starts: &[Option<i64>],
    metadata: &SeriesMetadata,
) -> Result<Received, ReceiveError> {
    append_inner(storage, &Batch::of(req), starts, false, metadata)
}

/// Whether an append was refused for the sample's time only (the series is fine).
fn refused_for_time(e: &vigil_storage::AppendError) -> bool {
    use vigil_storage::AppendError as E;
    matches!(
        e,
        E::OutOfOrder | E::TooOld | E::OutOfBounds | E::DuplicateTimestamp
    )
}

fn append_inner(
    storage: &dyn Storage,
    req: &Batch,
    starts: &[Option<i64>],
    partial: bool,
    metadata: &[Option<std::sync::Arc<vigil_storage::Metadata>>],
) -> Result<Received, ReceiveError> {
    let mut app = storage.appender();
    let mut got = Received::default();
    let mut sorted = Vec::new();
    for (i, ts) in req.series().enumerate() {
        let labels = match series_labels(ts.labels(), &mut sorted) {
            Ok(l) => l,
            Err(why) => {
                tracing::warn!(labels = %shown(ts.labels()), %why, "Remote write: invalid metric names or labels; series skipped");
                got.invalid_series += 1;
                continue;
            }
        };
        got.series += 1;
        let refused_before = got.refused;
        let mut r = 0;
        if let Some(Some(start)) = starts.get(i) {
            r = start_zero(&mut *app, &labels, *start, &ts);
        }
        for &(value, timestamp) in ts.samples() {
            match app.append(r, &labels, timestamp, value) {
                Ok(next) => r = next,
                Err(e) if partial && refused_for_time(&e) => {
                    got.refused += 1;
                    if got.refusals.len() < REFUSALS_NAMED {
                        got.refusals
                            .push(format!("{e}: series {labels}, timestamp {timestamp}"));
                    }
                    continue;
                }
                Err(e) => {
                    app.rollback();
                    let msg = format!("{e}: series {labels}, timestamp {timestamp}");
                    // Every refusal is final for the sender (a series limit too, as Mimir
                    // answers it): retrying the same request would block its queue forever.
                    return Err(ReceiveError::BadRequest(msg));
                }
            }
            got.samples += 1;
        }
        // Native histograms after the floats, as Prometheus appends them.
        for (k, raw) in ts.histograms().iter().enumerate() {
            use prost::Message as _;
            let h = crate::proto::Histogram::decode(*raw).map_err(|e| {
                ReceiveError::BadRequest(format!(
                    "series {labels}, histograms[{k}]: not a native histogram message: {e}"
                ))
            });
            let h = match h {
                Ok(h) => h,
                Err(e) => {
                    app.rollback();
                    return Err(e);
                }
            };
            let Some(fh) = h.to_float() else {
                app.rollback();
                return Err(ReceiveError::BadRequest(format!(
                    "invalid native histogram: series {labels}, histograms[{k}], timestamp {}",
                    h.timestamp
                )));
            };
            match app.append_histogram(r, &labels, h.timestamp, fh) {
                Ok(next) => {
                    r = next;
                    got.histograms += 1;
                }
                // A storage without native histograms: counted, the rest stored.
                Err(vigil_storage::AppendError::Unsupported(_)) => got.histograms_dropped += 1,
                Err(e) if partial && refused_for_time(&e) => {
                    got.refused += 1;
                    if got.refusals.len() < REFUSALS_NAMED {
                        got.refusals
                            .push(format!("{e}: series {labels}, timestamp {}", h.timestamp));
                    }
                }
                Err(e) => {
                    app.rollback();
                    let msg = format!("{e}: series {labels}, timestamp {}", h.timestamp);
                    return Err(ReceiveError::BadRequest(msg));
                }
            }
        }
        if let Some(Some(m)) = metadata.get(i)
            && let Err(e) = app.update_metadata(r, &labels, m)
        {
            tracing::debug!(err = %e, series = %labels, "Remote write: metadata not stored");
        }
        // A series whose every sample was refused has no sample for its exemplars: they are
        // dropped, as Prometheus drops them (its series ref is unknown then).
        let sent = (ts.samples().len() + ts.histograms().len()) as u64;
        if sent > 0 && got.refused - refused_before == sent {
            got.exemplars_dropped += ts.exemplars().len() as u64;
            continue;
        }
        // As Prometheus: after the series' samples, and a refused exemplar never fails the
        // write (it is counted and logged at debug).
        for e in ts.exemplars() {
            let ex = vigil_storage::Exemplar {
                labels: exemplar_labels(ts.exemplar_labels(e), &mut sorted),
                value: e.value,
                t: e.timestamp,
            };
            match app.append_exemplar(r, &labels, ex) {
                Ok(()) => got.exemplars += 1,
                Err(err) => {
                    tracing::debug!(%err, series = %labels, "Remote write: exemplar not stored");
                    got.exemplars_dropped += 1;
                }
            }
        }
    }
    app.commit()
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{MetadataV2, RequestV2, TimeSeriesV2};

    /// A 2.0 request through the receiver's decoder, with the features given.
    fn from_v2(
        req: RequestV2,
        type_and_unit: bool,
        keep_metadata: bool,
    ) -> Result<(WriteRequest, SeriesMetadata), String> {
        use prost::Message as _;
        let raw = req.encode_to_vec();
        let opts = crate::batch::V2Options {
            type_and_unit,
            keep_metadata,
        };
        let (batch, metadata) = crate::batch::decode_v2(&raw, opts)?;
        Ok((
            batch.to_request(),
            metadata.iter().map(series_metadata).collect(),
        ))
    }

    fn request(kind: i32, unit_ref: u32) -> RequestV2 {
        RequestV2 {
            // 0 "", 1 __name__, 2 x_seconds, 3 __type__, 4 gauge, 5 seconds
            symbols: ["", "__name__", "x_seconds", "__type__", "gauge", "seconds"]
                .map(String::from)
                .to_vec(),
            timeseries: vec![TimeSeriesV2 {
                labels_refs: vec![1, 2, 3, 4],
                metadata: Some(MetadataV2 {
                    r#type: kind,
                    help_ref: 0,
                    unit_ref,
                }),
                ..Default::default()
            }],
        }
    }

    fn labels(req: RequestV2, on: bool) -> Vec<(String, String)> {
        let mut l: Vec<(String, String)> = from_v2(req, on, false).unwrap().0.timeseries[0]
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        l.sort();
        l
    }

    /// With `type-and-unit-labels`, a 2.0 series' metadata becomes `__type__`/`__unit__` in
    /// place of what it was sent with; without metadata, or without the feature, the labels
    /// stay as sent.
    #[test]
    fn v2_metadata_becomes_type_and_unit_labels() {
        let p = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(
            labels(request(1, 5), true),
            vec![
                p("__name__", "x_seconds"),
                p("__type__", "counter"),
                p("__unit__", "seconds")
            ]
        );
        let as_sent = vec![p("__name__", "x_seconds"), p("__type__", "gauge")];
        assert_eq!(labels(request(0, 0), true), as_sent);
        assert_eq!(labels(request(1, 5), false), as_sent);
        // A unit reference outside the table is the sender's error, named.
        let err = from_v2(request(1, 99), true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeseries[0].metadata.unit_ref"), "{err}");
    }

    /// With `metadata-wal-records`, each 2.0 series' metadata is kept for the storage, by its
    /// place in the request; one that says nothing is none; a reference outside the table is
    /// the sender's error, named. Without the feature none is kept.
    #[test]
    fn v2_metadata_is_kept_for_the_storage_with_the_feature() {
        use vigil_model::exposition::MetricType;
        let meta = |req: RequestV2| from_v2(req, false, true).map(|(_, m)| m);
        let mut req = request(2, 5);
        req.timeseries[0].metadata.as_mut().unwrap().help_ref = 2;
        req.timeseries.push(request(0, 0).timeseries[0].clone());
        req.timeseries.push(TimeSeriesV2 {
            labels_refs: vec![1, 2],
            ..Default::default()
        });
        let got = meta(req.clone()).unwrap();
        assert_eq!(
            got,
            vec![
                Some(std::sync::Arc::new(vigil_storage::Metadata {
                    kind: MetricType::Gauge,
                    unit: "seconds".into(),
                    help: "x_seconds".into(),
                })),
                None,
                None
            ]
        );
        assert!(from_v2(req.clone(), false, false).unwrap().1.is_empty());
        req.timeseries[0].metadata.as_mut().unwrap().help_ref = 77;
        let err = meta(req).unwrap_err().to_string();
        assert!(err.contains("timeseries[0].metadata.help_ref"), "{err}");
    }

    /// Through the receiver's whole path (`receive`, 1.0 read without copying): a label with
    /// an empty value is no label; the series' labels are found when an exemplar comes
    /// between them on the wire; an exemplar's labels keep the last of a name and drop an
    /// empty one; a name twice in a series skips that series only.
    #[test]
    fn a_request_is_stored_as_sent_through_the_whole_path() {
        use crate::proto::{Exemplar, Label, Sample, TimeSeries};
        use prost::Message as _;
        use vigil_storage::{Matcher, Storage as _};
        let l = |n: &str, v: &str| Label {
            name: n.into(),
            value: v.into(),
        };
        // One series' fields in three runs: concatenated messages merge, so this is one
        // series with its exemplar between its labels.
        let parts = [
            TimeSeries {
                labels: vec![l("__name__", "up"), l("empty", "")],
                ..Default::default()
            },
            TimeSeries {
                exemplars: vec![Exemplar {
                    labels: vec![l("trace", "1"), l("span", ""), l("trace", "2")],
                    value: 1.0,
                    timestamp: 1_000,
                }],
                ..Default::default()
            },
            TimeSeries {
                labels: vec![l("job", "a")],
                samples: vec![Sample {
                    value: 1.0,
                    timestamp: 1_000,
                }],
                ..Default::default()
            },
        ];
        let series: Vec<u8> = parts.iter().flat_map(|p| p.encode_to_vec()).collect();
        let twice = TimeSeries {
            labels: vec![l("__name__", "up"), l("job", "b"), l("job", "c")],
            samples: vec![Sample {
                value: 2.0,
                timestamp: 1_000,
            }],
            ..Default::default()
        }
        .encode_to_vec();
        let mut raw = Vec::new();
        for s in [&series, &twice] {
            raw.push(0x0a);
            prost::encoding::encode_varint(s.len() as u64, &mut raw);
            raw.extend_from_slice(s);
        }
        let st = vigil_storage::MemoryStorage::with_exemplars(10);
        let got = receive(&st, Message::V1, &codec::compress(&raw)).unwrap();
        assert_eq!((got.series, got.samples, got.invalid_series), (1, 1, 1));
        assert_eq!(got.exemplars, 1);
        let q = st.querier(0, 10_000).unwrap();
        let stored: Vec<String> = q
            .select(&[Matcher::equal("__name__", "up")])
            .unwrap()
            .map(|s| s.labels.to_string())
            .collect();
        assert_eq!(stored, vec![r#"up{job="a"}"#]);
        let ex = st
            .exemplars(0, 10_000, &[vec![Matcher::equal("__name__", "up")]])
            .unwrap();
        assert_eq!(ex[0].exemplars[0].labels.to_string(), r#"{trace="2"}"#);
    }

    /// A log line shows about 1 KiB of a series' labels, cuts marked.
    #[test]
    fn a_log_line_shows_a_bounded_part_of_huge_labels() {
        let big = "é".repeat(1 << 20);
        let s = shown(&[("__name__", "up"), ("a", big.as_str()), ("b", "c")]);
        assert!(s.len() < 1100, "{} bytes", s.len());
        assert!(s.starts_with("__name__=\"up\",a=\"éé"), "{s:.40}");
        assert!(s.ends_with("...\",..."), "{}", &s[s.len() - 20..]);
        assert_eq!(shown(&[("x", "y")]), "x=\"y\"");
    }

    /// `decoding_cost` is an upper bound of what receiving a request holds at its peak,
    /// measured for the shapes that decode largest per byte: empty entries of every
    /// repeated field, two bytes each on the wire, and refs resolved into label pairs.
    #[test]
    fn decoding_cost_bounds_what_receiving_holds() {
        let st = vigil_storage::MemoryStorage::default();
        // A vector's spare room is least at a power of two and most just past one.
        for n in [1 << 18, (1 << 18) + 1] {
            let nested = |field: u8, inner: &[u8]| -> Vec<u8> {
                let mut out = vec![field];
                let mut len = inner.len();
                while len >= 0x80 {
                    out.push((len as u8) | 0x80);
                    len >>= 7;
                }
                out.push(len as u8);
                out.extend_from_slice(inner);
                out
            };
            let empty = |field: u8| [field, 0x00].repeat(n);
            let shapes: Vec<(&str, Message, Vec<u8>)> = vec![
                ("1.0 empty series", Message::V1, empty(0x0a)),
                ("1.0 empty labels", Message::V1, nested(0x0a, &empty(0x0a))),
                ("1.0 empty samples", Message::V1, nested(0x0a, &empty(0x12))),
                (
                    "1.0 empty exemplars",
                    Message::V1,
                    nested(0x0a, &empty(0x1a)),
                ),
                (
                    "1.0 empty histograms",
                    Message::V1,
                    nested(0x0a, &empty(0x22)),
                ),
                (
                    "2.0 empty series",
                    Message::V2,
                    [vec![0x22, 0x00], empty(0x2a)].concat(),
                ),
                ("2.0 empty symbols", Message::V2, empty(0x22)),
                (
                    "2.0 refs to the empty symbol",
                    Message::V2,
                    [
                        vec![0x22, 0x00],
                        nested(0x2a, &nested(0x0a, &vec![0u8; 2 * n])),
                    ]
                    .concat(),
                ),
                (
                    "2.0 empty samples",
                    Message::V2,
                    [vec![0x22, 0x00], nested(0x2a, &empty(0x12))].concat(),
                ),
                (
                    "2.0 empty histograms",
                    Message::V2,
                    [vec![0x22, 0x00], nested(0x2a, &empty(0x1a))].concat(),
                ),
                (
                    "2.0 empty exemplars",
                    Message::V2,
                    [vec![0x22, 0x00], nested(0x2a, &empty(0x22))].concat(),
                ),
                (
                    "2.0 series of empty metadata",
                    Message::V2,
                    [vec![0x22, 0x00], [0x2a, 0x02, 0x2a, 0x00].repeat(n / 2)].concat(),
                ),
            ];
            for (what, msg, raw) in shapes {
                let body = codec::compress(&raw);
                let cost = decoding_cost(&body);
                let (res, peak) = crate::alloc_count::peak_of(|| receive(&st, msg, &body));
                // Decoded or refused, it went through the decoder.
                drop(res);
                assert!(
                    peak <= cost,
                    "{what}: receiving {} bytes held {peak} at its peak, over the {cost} admitted",
                    raw.len()
                );
                assert!(peak > raw.len(), "{what}: measured {peak}");
            }
        }
    }
}
