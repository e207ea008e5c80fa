//! The remote write receiver (`POST /api/v1/write`): a snappy protobuf
//! `prometheus.WriteRequest` appended in one transaction, answered as Prometheus answers.

use vigil_model::Labels;
use vigil_storage::Storage;

use crate::codec;
use crate::proto::WriteRequest;

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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub series: u64,
    pub samples: u64,
    /// Series skipped for invalid labels (no name, empty label name, a name twice), as
    /// Prometheus skips them: logged and counted, the rest of the write stored.
    pub invalid_series: u64,
    /// Native histogram samples and exemplars, which vigil does not store yet.
    pub histograms_dropped: u64,
    pub exemplars_dropped: u64,
}

/// Check the headers: remote write 1.0 in snappy. Remote write 2.0 is refused with 415 so a
/// sender that speaks both falls back to 1.0.
pub fn check_headers(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(), ReceiveError> {
    if let Some(ct) = content_type.map(str::trim).filter(|c| !c.is_empty()) {
        let mut parts = ct.split(';').map(str::trim);
        let mime = parts.next().unwrap_or_default();
        if !mime.eq_ignore_ascii_case("application/x-protobuf") {
            return Err(ReceiveError::UnsupportedMediaType(format!(
                "expected application/x-protobuf as the first (media) part, got {ct} content-type"
            )));
        }
        for p in parts {
            if let Some(proto) = p.strip_prefix("proto=")
                && proto != "prometheus.WriteRequest"
            {
                return Err(ReceiveError::UnsupportedMediaType(format!(
                    "unknown remote write protobuf message {proto}, this endpoint accepts only prometheus.WriteRequest (remote write 1.0)"
                )));
            }
        }
    }
    match content_encoding.map(str::trim) {
        None | Some("") | Some("snappy") => Ok(()),
        Some(other) => Err(ReceiveError::UnsupportedMediaType(format!(
            "{other} encoding (compression) is not accepted by this server; only snappy is acceptable"
        ))),
    }
}

/// Decode a request body.
pub fn decode(body: &[u8]) -> Result<WriteRequest, ReceiveError> {
    codec::decode(body).map_err(ReceiveError::BadRequest)
}

/// The labels of a series as sent, or why they are invalid.
fn series_labels(ts: &crate::proto::TimeSeries) -> Result<Labels, String> {
    let mut pairs: Vec<(&str, &str)> = ts
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    pairs.sort_unstable();
    for w in pairs.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!("duplicated label {}", w[0].0));
        }
    }
    if pairs.iter().any(|(n, _)| n.is_empty()) {
        return Err("a label with an empty name".into());
    }
    let ls = Labels::from_pairs(pairs);
    if ls.metric_name().is_none_or(str::is_empty) {
        return Err("no metric name".into());
    }
    Ok(ls)
}

/// Append every sample of `req` in one transaction. A sample that cannot be stored (out of
/// order, duplicate, too old) rolls the whole write back and is answered 400, so the sender
/// drops it rather than retrying forever, as Prometheus does.
pub fn append(storage: &dyn Storage, req: &WriteRequest) -> Result<Received, ReceiveError> {
    let mut app = storage.appender();
    let mut got = Received::default();
    for ts in &req.timeseries {
        got.histograms_dropped += ts.histograms.len() as u64;
        got.exemplars_dropped += ts.exemplars.len() as u64;
        let labels = match series_labels(ts) {
            Ok(l) => l,
            Err(why) => {
                let shown: Vec<String> = ts
                    .labels
                    .iter()
                    .map(|l| format!("{}={:?}", l.name, l.value))
                    .collect();
                tracing::warn!(labels = %shown.join(","), %why, "Remote write: invalid metric names or labels; series skipped");
                got.invalid_series += 1;
                continue;
            }
        };
        got.series += 1;
        let mut r = 0;
        for s in &ts.samples {
            match app.append(r, &labels, s.timestamp, s.value) {
                Ok(next) => r = next,
                Err(e) => {
                    app.rollback();
                    let msg = format!("{e}: series {labels}, timestamp {}", s.timestamp);
                    // Every refusal is final for the sender (a series limit too, as Mimir
                    // answers it): retrying the same request would block its queue forever.
                    return Err(ReceiveError::BadRequest(msg));
                }
            }
            got.samples += 1;
        }
    }
    app.commit()
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    Ok(got)
}
