//! The remote read endpoint (`POST /api/v1/read`), in the response type the client asks for
//! first: `SAMPLES` (each query's series with their raw samples in one snappy
//! `prometheus.ReadResponse`) or `STREAMED_XOR_CHUNKS` (frames of
//! `prometheus.ChunkedReadResponse`, one series per frame, samples in XOR chunks as
//! Prometheus stores them: what Thanos' sidecar reads).

use std::collections::BTreeMap;

use vigil_model::Labels;
use vigil_storage::{MatchOp, Matcher, MatcherError, Storage};

use crate::codec;
use crate::proto::{
    Chunk, ChunkedReadResponse, ChunkedSeries, Histogram, Label, Query, QueryResult, ReadRequest,
    ReadResponse, Sample, TimeSeries,
};
use crate::receive::ReceiveError;

fn matcher(m: &crate::proto::LabelMatcher) -> Result<Matcher, ReceiveError> {
    let op = match m.r#type {
        0 => MatchOp::Equal,
        1 => MatchOp::NotEqual,
        2 => MatchOp::Regex,
        3 => MatchOp::NotRegex,
        t => {
            return Err(ReceiveError::BadRequest(format!(
                "invalid matcher type {t} for label {:?}",
                m.name
            )));
        }
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| match e {
        MatcherError::Regex(e) => {
            ReceiveError::BadRequest(format!("invalid regexp for label {:?}: {e}", m.name))
        }
        e @ MatcherError::TooManyLarge { .. } => {
            ReceiveError::BadRequest(format!("regexp for label {:?}: {e}", m.name))
        }
    })
}

/// The response types, as the protocol numbers them.
const SAMPLES: i32 = 0;
const STREAMED_XOR_CHUNKS: i32 = 1;

/// How a read is answered: the client's first accepted type vigil serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Samples,
    StreamedXorChunks,
}

/// Most queries one read request may hold. Prometheus's client sends one a request; an
/// empty query is two bytes on the wire and over a hundred decoded, so a 64 MiB body of them
/// would take gigabytes before any could be refused.
pub const MAX_READ_QUERIES: usize = 1_000;

/// Most matchers one read request may hold, over all its queries (for the same reason: two
/// bytes on the wire, about sixty decoded).
pub const MAX_READ_MATCHERS: usize = 10_000;

/// Count the queries and their matchers on the wire, before decoding: past the bounds a
/// request is refused. Malformed bytes stop the count; the decoder then names them.
fn check_counts(raw: &[u8]) -> Result<(), ReceiveError> {
    use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
    let (mut queries, mut matchers) = (0usize, 0usize);
    let mut buf = raw;
    while !buf.is_empty() {
        let Ok((tag, wire)) = decode_key(&mut buf) else {
            break;
        };
        if tag == 1 && wire == WireType::LengthDelimited {
            let Ok(len) = decode_varint(&mut buf) else {
                break;
            };
            let Some(mut q) = usize::try_from(len).ok().and_then(|l| buf.get(..l)) else {
                break;
            };
            buf = &buf[q.len()..];
            queries += 1;
            while !q.is_empty() {
                let Ok((t, w)) = decode_key(&mut q) else {
                    break;
                };
                if t == 3 && w == WireType::LengthDelimited {
                    matchers += 1;
                }
                if skip_field(w, t, &mut q, DecodeContext::default()).is_err() {
                    break;
                }
            }
        } else if skip_field(wire, tag, &mut buf, DecodeContext::default()).is_err() {
            break;
        }
        if queries > MAX_READ_QUERIES || matchers > MAX_READ_MATCHERS {
            return Err(ReceiveError::BadRequest(format!(
                "the read request holds over {MAX_READ_QUERIES} queries or {MAX_READ_MATCHERS} matchers, more than one request may"
            )));
        }
    }
    Ok(())
}

/// Decode a read request and pick its response type (none listed: `SAMPLES`).
pub fn decode(body: &[u8]) -> Result<(ReadRequest, ResponseType), ReceiveError> {
    let raw = codec::decompress(body).map_err(ReceiveError::BadRequest)?;
    check_counts(&raw)?;
    let req = <ReadRequest as prost::Message>::decode(raw.as_slice())
        .map_err(|e| ReceiveError::BadRequest(format!("protobuf: {e}")))?;
    let accepted = if req.accepted_response_types.is_empty() {
        vec![SAMPLES]
    } else {
        req.accepted_response_types.clone()
    };
    let kind = accepted.iter().find_map(|t| match *t {
        SAMPLES => Some(ResponseType::Samples),
        STREAMED_XOR_CHUNKS => Some(ResponseType::StreamedXorChunks),
        _ => None,
    });
    match kind {
        Some(k) => Ok((req, k)),
        None => Err(ReceiveError::BadRequest(format!(
            "server does not support any of the requested response types: {:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
            req.accepted_response_types
        ))),
    }
}

/// Answer one read request with `SAMPLES`. Matchers on external labels are checked against
/// them and left out of the selection (the data here does not carry them), and the results
/// carry them, as Prometheus's server does. More than `sample_limit` samples in all is a 400.
pub fn read(
    storage: &dyn Storage,
    body: &[u8],
    external: &BTreeMap<String, String>,
    sample_limit: u64,
) -> Result<Vec<u8>, ReceiveError> {
    let (req, _) = decode(body)?;
    read_samples(storage, &req, external, sample_limit)
}

/// The `SAMPLES` answer to a decoded request.
pub fn read_samples(
    storage: &dyn Storage,
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
    sample_limit: u64,
) -> Result<Vec<u8>, ReceiveError> {
    let mut out = ReadResponse::default();
    let mut samples = 0u64;
    for q in &req.queries {
        out.results
            .push(query(storage, q, external, sample_limit, &mut samples)?);
    }
    Ok(codec::encode(&out))
}

/// The selection for a query, or `None` when its matchers on external labels exclude
/// everything here.
fn selection(
    q: &Query,
    external: &BTreeMap<String, String>,
) -> Result<Option<Vec<Matcher>>, ReceiveError> {
    let mut matchers = Vec::new();
    for m in &q.matchers {
        let m = matcher(m)?;
        if let Some(v) = external.get(&m.name) {
            if !m.matches(v) {
                return Ok(None);
            }
            // The stored series lack the external label (it is added to the results): select
            // those without one of their own, as Prometheus does.
            matchers.push(Matcher::equal(m.name.clone(), ""));
            continue;
        }
        matchers.push(m);
    }
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(ReceiveError::BadRequest(
            "a query needs at least one matcher that selects a non-empty value".into(),
        ));
    }
    Ok(Some(matchers))
}

fn query(
    storage: &dyn Storage,
    q: &Query,
    external: &BTreeMap<String, String>,
    sample_limit: u64,
    samples: &mut u64,
) -> Result<QueryResult, ReceiveError> {
    let Some(matchers) = selection(q, external)? else {
        return Ok(QueryResult::default());
    };
    let querier = storage
        .querier(q.start_timestamp_ms, q.end_timestamp_ms)
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    // One shard of one: sources that stream (the TSDB's blocks) decode a series only when
    // it is reached, so the sample limit stops a large read before it is all in memory.
    let set = querier
        .select_shard(&matchers, 0, 1)
        .map_err(|e| ReceiveError::Storage(e.to_string()))?;
    let mut res = QueryResult::default();
    for s in set {
        if s.samples.is_empty() && s.histograms.is_empty() {
            continue;
        }
        // Histograms count as samples, as Prometheus counts them against the limit.
        *samples += (s.samples.len() + s.histograms.len()) as u64;
        if *samples > sample_limit {
            return Err(ReceiveError::BadRequest(format!(
                "exceeded sample limit ({sample_limit})"
            )));
        }
        res.timeseries.push(TimeSeries {
            labels: with_external(&s.labels, external),
            samples: s
                .samples
                .iter()
                .map(|x| Sample {
                    value: x.v,
                    timestamp: x.t,
                })
                .collect(),
            histograms: s
                .histograms
                .iter()
                .map(|x| prost::Message::encode_to_vec(&Histogram::from_float(&x.h, x.t)))
                .collect(),
            ..Default::default()
        });
    }
    Ok(res)
}

/// Check every query of a request for `STREAMED_XOR_CHUNKS` before anything is sent (a bad
/// matcher is still a 400 then; once frames flow, the status is fixed).
pub fn check_streamed(
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
) -> Result<(), ReceiveError> {
    for q in &req.queries {
        selection(q, external)?;
    }
    Ok(())
}

/// Answer a request with `STREAMED_XOR_CHUNKS`: `emit` gets each frame (a uvarint length, the
/// CRC-32C of the message big-endian, the message) and returns false when the client is
/// gone. A frame holds one series' chunks (120 samples each, as Prometheus cuts them; native
/// histograms as float histogram chunks, encoding 3), in time order, up to about `max_frame`
/// bytes; a longer series continues in further frames.
pub fn stream(
    storage: &dyn Storage,
    req: &ReadRequest,
    external: &BTreeMap<String, String>,
    max_frame: usize,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), ReceiveError> {
    use prost::Message as _;
    for (i, q) in req.queries.iter().enumerate() {
        let Some(matchers) = selection(q, external)? else {
            continue;
        };
        let querier = storage
            .querier(q.start_timestamp_ms, q.end_timestamp_ms)
            .map_err(|e| ReceiveError::Storage(e.to_string()))?;
        // Streamed as it is read (see `query`): one series at a time from each block.
        let set = querier
            .select_shard(&matchers, 0, 1)
            .map_err(|e| ReceiveError::Storage(e.to_string()))?;
        for s in set {
            if s.samples.is_empty() && s.histograms.is_empty() {
                continue;
            }
            let labels = with_external(&s.labels, external);
            let labels_len: usize = labels
                .iter()
                .map(|l| l.name.len() + l.value.len() + 4)
                .sum();
            let mut chunks: Vec<Chunk> = Vec::new();
            let mut size = labels_len;
            let mut flush = |chunks: &mut Vec<Chunk>| -> bool {
                let msg = ChunkedReadResponse {
                    chunked_series: vec![ChunkedSeries {
                        labels: labels.clone(),
                        chunks: std::mem::take(chunks),
                    }],
                    query_index: i as i64,
                };
                emit(frame(&msg.encode_to_vec()))
            };
            for c in kind_runs(&s.samples, &s.histograms) {
                size += c.data.len() + 24;
                chunks.push(c);
                if size >= max_frame {
                    if !flush(&mut chunks) {
                        return Ok(());
                    }
                    size = labels_len;
                }
            }
            if !chunks.is_empty() && !flush(&mut chunks) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A series' chunks in time order, a new chunk at every change between floats and
/// histograms (as Prometheus's head cuts them), so no two chunks overlap in time: XOR chunks
/// of up to 120 samples, float histogram chunks (encoding 3) as the chunk encoder cuts them.
/// A float and a histogram at one time: the float first.
fn kind_runs(fs: &[vigil_model::Sample], hs: &[vigil_model::HistogramSample]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < fs.len() || j < hs.len() {
        if j >= hs.len() || (i < fs.len() && fs[i].t <= hs[j].t) {
            let end = match hs.get(j) {
                Some(h) => i + fs[i..].partition_point(|x| x.t <= h.t),
                None => fs.len(),
            };
            for part in fs[i..end].chunks(vigil_tsdb::chunk::SAMPLES_PER_CHUNK as usize) {
                let mut c = vigil_tsdb::chunk::XorChunk::new();
                for x in part {
                    c.append(x.t, x.v);
                }
                out.push(Chunk {
                    min_time_ms: part[0].t,
                    max_time_ms: part[part.len() - 1].t,
                    r#type: 1, // XOR
                    data: c.bytes(),
                });
            }
            i = end;
        } else {
            let end = match fs.get(i) {
                Some(f) => j + hs[j..].partition_point(|x| x.t < f.t),
                None => hs.len(),
            };
            for c in vigil_tsdb::prometheus::histogram_chunk::encode_all(&hs[j..end]) {
                out.push(Chunk {
                    min_time_ms: c.min_t,
                    max_time_ms: c.max_t,
                    // The remote read protocol numbers its encodings as chunkenc does
                    // (HISTOGRAM = 2, FLOAT_HISTOGRAM = 3).
                    r#type: c.encoding as i32,
                    data: c.bytes,
                });
            }
            j = end;
        }
    }
    out
}

/// One frame of a streamed response.
pub(crate) fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 14);
    crate::queue::put_varint(&mut out, msg.len() as u64);
    out.extend_from_slice(&crc32c::crc32c(msg).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// The series' labels plus the external labels it lacks, sorted by name.
pub fn with_external(ls: &Labels, external: &BTreeMap<String, String>) -> Vec<Label> {
    let mut out: Vec<Label> = ls
        .iter()
        .map(|l| Label {
            name: l.name.to_string(),
            value: l.value.to_string(),
        })
        .collect();
    for (n, v) in external {
        if !ls.has(n) {
            out.push(Label {
                name: n.clone(),
                value: v.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{FloatHistogram, HistogramSample, Sample};

    /// A series that goes float, histogram, float: chunks in time order that never overlap,
    /// each of one kind, holding every sample.
    #[test]
    fn streamed_chunks_follow_the_series_kinds_without_overlap() {
        let f = |ts: std::ops::Range<i64>| -> Vec<Sample> {
            ts.map(|t| Sample {
                t: t * 1000,
                v: t as f64,
            })
            .collect()
        };
        let mut floats = f(0..150);
        floats.extend(f(300..310));
        let hists: Vec<HistogramSample> = (150..300)
            .map(|t| HistogramSample {
                t: t * 1000,
                h: std::sync::Arc::new(FloatHistogram {
                    count: t as f64,
                    zero_count: t as f64,
                    zero_threshold: 0.001,
                    sum: 1.0,
                    ..Default::default()
                }),
            })
            .collect();
        let chunks = kind_runs(&floats, &hists);
        for w in chunks.windows(2) {
            assert!(
                w[0].max_time_ms < w[1].min_time_ms,
                "{} then {}",
                w[0].max_time_ms,
                w[1].min_time_ms
            );
        }
        let kinds: Vec<i32> = chunks.iter().map(|c| c.r#type).collect();
        assert_eq!(kinds.first(), Some(&1));
        assert_eq!(kinds.last(), Some(&1));
        // Whole counts: Prometheus's integer histogram chunks.
        assert!(kinds.contains(&2));
        let mut n = 0;
        for c in &chunks {
            n += match c.r#type {
                1 => vigil_tsdb::chunk::XorIter::from_bytes(&c.data)
                    .unwrap()
                    .count(),
                k => vigil_tsdb::prometheus::histogram_chunk::decode(k as u8, &c.data)
                    .unwrap()
                    .len(),
            };
        }
        assert_eq!(n, floats.len() + hists.len());
    }

    /// Queries and matchers past the bounds are refused before decoding, counted on the
    /// wire; a request at the bounds decodes as prost decodes it.
    #[test]
    fn read_requests_past_the_query_and_matcher_bounds_are_refused() {
        use crate::proto::{LabelMatcher, Query};
        let req = |queries: usize, matchers: usize| ReadRequest {
            queries: (0..queries)
                .map(|_| Query {
                    start_timestamp_ms: 1,
                    end_timestamp_ms: 2,
                    matchers: (0..matchers)
                        .map(|i| LabelMatcher {
                            r#type: 0,
                            name: "a".into(),
                            value: i.to_string(),
                        })
                        .collect(),
                    hints: None,
                })
                .collect(),
            accepted_response_types: vec![0],
        };
        let ok = req(MAX_READ_QUERIES, MAX_READ_MATCHERS / MAX_READ_QUERIES);
        let (got, kind) = decode(&codec::encode(&ok)).unwrap();
        assert_eq!(got, ok);
        assert_eq!(kind, ResponseType::Samples);
        for bad in [req(MAX_READ_QUERIES + 1, 0), req(1, MAX_READ_MATCHERS + 1)] {
            match decode(&codec::encode(&bad)) {
                Err(ReceiveError::BadRequest(m)) => assert!(m.contains("1000 queries"), "{m}"),
                other => panic!("expected a refusal, got {:?}", other.map(|r| r.1)),
            }
        }
        // Two million empty queries: 4 MiB on the wire, refused without decoding them.
        let raw: Vec<u8> = [0x0au8, 0x00].repeat(2_000_000);
        assert!(matches!(
            decode(&codec::compress(&raw)),
            Err(ReceiveError::BadRequest(_))
        ));
        // Malformed bytes are still named by the decoder.
        match decode(&codec::compress(&[0x0a, 0x05, 0x01])) {
            Err(ReceiveError::BadRequest(m)) => assert!(m.contains("protobuf"), "{m}"),
            other => panic!("expected a decode error, got {:?}", other.map(|r| r.1)),
        }
    }
}
