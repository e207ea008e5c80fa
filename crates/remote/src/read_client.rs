//! Remote read as a client (`remote_read:`): queries read the configured endpoints too, and
//! their series merge with local ones, with Prometheus's rules:
//!
//! - without `read_recent`, an endpoint is asked only for time before local storage starts
//!   (the first block's start, or now when there is none, plus two evaluation intervals);
//! - with `required_matchers`, only selections that carry every one of them as an equality
//!   matcher go to the endpoint;
//! - with `filter_external_labels` (the default), the external labels are added as matchers
//!   (where the selection does not name them) and removed from the answers;
//! - an endpoint that fails makes the query a warning (`remote_read: ...`), not an error:
//!   local data still answers;
//! - the remote answers to one selection (every endpoint's, together) may take at most
//!   `--query.max-bytes` decoded: a bigger answer is not read on, and fails the query as
//!   local data past that budget does; the series they deliver then count against the
//!   query's budget as local ones do. Prometheus has no such bound; without it one remote
//!   endpoint could make vigil load a response of any size.
//!
//! The wrapper [`Fanout`] is a [`Storage`]: the query engine and the API see one storage and
//! never this module. Writes, federation and the remote read endpoint use local storage only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use vigil_config::{Config, RemoteReadConfig, mask_url};
use vigil_model::{HistogramSample, Labels, Sample};
use vigil_storage::{
    Appender, MatchOp, Matcher, Querier, Series, SeriesSet, Storage, StorageError,
};

use vigil_scrape::client::PostError;

use crate::codec;
use crate::proto::{LabelMatcher, Query, ReadRequest, ReadResponse};

/// The most a remote read response may be, compressed or decoded, whatever the budget.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// Buckets of `prometheus_remote_storage_read_request_duration_seconds` (Prometheus's).
const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
];

/// `ReadRequest.accepted_response_types` values.
const SAMPLES: i32 = 0;
const STREAMED_XOR_CHUNKS: i32 = 1;

/// Why a streamed answer gave no series.
#[derive(Debug, PartialEq)]
enum StreamError {
    /// Its decoded series would take more than the budget.
    OverBudget,
    /// A frame, message or chunk that cannot be read (named).
    Damaged(String),
}

/// The series of a `STREAMED_XOR_CHUNKS` answer to one query: frames of a uvarint length,
/// the message's CRC-32C (big-endian) and a `ChunkedReadResponse`; a series may go on over
/// several frames. Samples outside `[mint, maxt]` are dropped (chunks overlap the range),
/// labels `keep` refuses are removed. Native histogram chunks (Prometheus's integer and float
/// histogram encodings) are decoded into the series' histograms. Also returns the bytes the
/// decoded series take, which may not pass `limit`.
fn decode_streamed(
    body: &[u8],
    mint: i64,
    maxt: i64,
    limit: usize,
    keep: impl Fn(&str) -> bool,
) -> Result<(Vec<Series>, usize), StreamError> {
    use crate::proto::ChunkedReadResponse;
    use prost::Message as _;
    let damaged =
        |at: usize, what: String| StreamError::Damaged(format!("frame at byte {at}: {what}"));
    let mut out: Vec<Series> = Vec::new();
    let mut decoded = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let at = body.len() - rest.len();
        let len = prost::encoding::decode_varint(&mut rest)
            .map_err(|_| damaged(at, "its length is cut short".into()))?;
        let Some(need) = len
            .checked_add(4)
            .filter(|&n| n <= rest.len() as u64)
            .map(|n| n as usize)
        else {
            return Err(damaged(
                at,
                format!(
                    "{len} bytes announced, {} left",
                    rest.len().saturating_sub(4)
                ),
            ));
        };
        let (crc, msg) = rest[..need].split_at(4);
        rest = &rest[need..];
        if crc32c::crc32c(msg).to_be_bytes() != crc {
            return Err(damaged(at, "checksum mismatch".into()));
        }
        let resp = ChunkedReadResponse::decode(msg).map_err(|e| damaged(at, e.to_string()))?;
        if resp.query_index != 0 {
            return Err(damaged(
                at,
                format!(
                    "an answer to query {}, only query 0 was asked",
                    resp.query_index
                ),
            ));
        }
        for cs in resp.chunked_series {
            let pairs: Vec<(String, String)> = cs
                .labels
                .into_iter()
                .filter(|l| keep(&l.name))
                .map(|l| (l.name, l.value))
                .collect();
            let labels = Labels::from_pairs(pairs);
            let label_bytes: usize = labels.iter().map(|l| l.name.len() + l.value.len()).sum();
            let mut samples: Vec<Sample> = Vec::new();
            let mut histograms: Vec<HistogramSample> = Vec::new();
            for c in cs.chunks.iter().filter(|c| c.r#type == 2 || c.r#type == 3) {
                if c.max_time_ms < mint || c.min_time_ms > maxt {
                    continue;
                }
                use vigil_tsdb::prometheus::histogram_chunk;
                let got = histogram_chunk::decode(c.r#type as u8, &c.data)
                    .map_err(|e| damaged(at, e.to_string()))?;
                // A histogram costs its buckets: charged before it is kept.
                let size: usize = got
                    .iter()
                    .map(|(_, h)| {
                        std::mem::size_of::<HistogramSample>()
                            + 8 * (h.positive_buckets.len() + h.negative_buckets.len())
                    })
                    .sum();
                decoded += size;
                if decoded + label_bytes > limit {
                    return Err(StreamError::OverBudget);
                }
                histograms.extend(
                    got.into_iter()
                        .filter(|(t, _)| *t >= mint && *t <= maxt)
                        .map(|(t, h)| HistogramSample { t, h: Arc::new(h) }),
                );
            }
            for c in cs.chunks.iter().filter(|c| c.r#type == 1) {
                if c.max_time_ms < mint || c.min_time_ms > maxt {
                    continue;
                }
                let Some(iter) = vigil_tsdb::chunk::XorIter::from_bytes(&c.data) else {
                    return Err(damaged(at, "an XOR chunk shorter than its header".into()));
                };
                let want = u16::from_be_bytes([c.data[0], c.data[1]]) as usize;
                // The header bounds what the chunk can add: checked before decoding it, so a
                // small chunk of many samples cannot take memory past the budget.
                let size = std::mem::size_of::<Sample>();
                if decoded + label_bytes + (samples.len() + want) * size > limit {
                    return Err(StreamError::OverBudget);
                }
                let mut n = 0;
                samples.extend(
                    iter.inspect(|_| n += 1)
                        .filter(|s| s.t >= mint && s.t <= maxt),
                );
                if n != want {
                    return Err(damaged(
                        at,
                        format!("an XOR chunk of {want} samples holds {n}"),
                    ));
                }
            }
            if samples.is_empty() && histograms.is_empty() {
                continue;
            }
            decoded += samples.len() * std::mem::size_of::<Sample>() + label_bytes;
            match out.last_mut() {
                // The series goes on from the last frame.
                Some(last) if last.labels == labels => {
                    last.samples.extend(samples);
                    last.histograms.extend(histograms);
                }
                _ => out.push(Series {
                    labels,
                    samples,
                    histograms,
                }),
            }
        }
    }
    for s in &mut out {
        vigil_storage::time_order(&mut s.samples);
        vigil_storage::time_order(&mut s.histograms);
        // Prometheus's chunks carry stale markers as histograms; the engine drops them.
    }
    Ok((out, decoded))
}

/// A `SAMPLES` answer's series: its samples and native histograms within `[mint, maxt]`, in
/// time order; None when nothing is left; an error naming a histogram that cannot be read.
fn sampled_series(
    pairs: Vec<(String, String)>,
    samples: Vec<crate::proto::Sample>,
    histograms: &[Vec<u8>],
    mint: i64,
    maxt: i64,
) -> Result<Option<Series>, String> {
    let mut samples: Vec<Sample> = samples
        .into_iter()
        .filter(|s| s.timestamp >= mint && s.timestamp <= maxt)
        .map(|s| Sample {
            t: s.timestamp,
            v: s.value,
        })
        .collect();
    let mut kept = Vec::with_capacity(histograms.len());
    for (i, b) in histograms.iter().enumerate() {
        let h = crate::proto::Histogram::decode(b.as_slice())
            .map_err(|e| format!("histogram {i} of a series cannot be decoded: {e}"))?;
        if h.timestamp < mint || h.timestamp > maxt {
            continue;
        }
        let f = h.to_float().ok_or_else(|| {
            format!("histogram {i} of a series has a layout Prometheus does not define")
        })?;
        kept.push(HistogramSample {
            t: h.timestamp,
            h: Arc::new(f),
        });
    }
    let mut histograms = kept;
    if samples.is_empty() && histograms.is_empty() {
        return Ok(None);
    }
    vigil_storage::time_order(&mut samples);
    vigil_storage::time_order(&mut histograms);
    Ok(Some(Series {
        labels: Labels::from_pairs(pairs),
        samples,
        histograms,
    }))
}

/// One `remote_read` entry, ready to ask.
pub struct Reader {
    cfg: RemoteReadConfig,
    /// `remote_name`: the configured name, else a hash of the settings (as Prometheus).
    name: String,
    /// External labels added as matchers and removed from answers (none when
    /// `filter_external_labels: false`).
    external: Vec<(String, String)>,
    client: Arc<vigil_scrape::client::Scraper>,
    stats: ReadStats,
}

/// A duration histogram: per bucket, sum, count.
type Durations = ([u64; BUCKETS.len()], f64, u64);

#[derive(Default)]
struct ReadStats {
    in_flight: AtomicI64,
    /// By response type and HTTP status code ("none" and "error" when no answer came).
    by_code: Mutex<std::collections::BTreeMap<(&'static str, String), u64>>,
    /// Request durations by response type: per bucket, sum, count.
    duration: Mutex<std::collections::BTreeMap<&'static str, Durations>>,
}

/// Why an endpoint gave no series.
#[derive(Debug)]
enum ReadFailure {
    /// The answer is larger than the query may still load: the query fails.
    OverBudget(String),
    /// Anything else: the query answers from local data, with a warning.
    Failed(String),
}

impl Reader {
    /// The endpoint's series for `matchers` over `[mint, maxt]` and the bytes their decoded
    /// answer took, or why not. `None` when the selection does not carry every required
    /// matcher (the endpoint is not asked). An answer over `budget` bytes, compressed or
    /// decoded, is not read on.
    async fn read(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        budget: usize,
    ) -> Option<Result<(Vec<Series>, usize), ReadFailure>> {
        let required_met = self.cfg.required_matchers.iter().all(|(n, v)| {
            matchers
                .iter()
                .any(|m| m.op == MatchOp::Equal && &m.name == n && &m.value == v)
        });
        if !required_met {
            return None;
        }
        // External labels the selection does not name become matchers, and come off the
        // answers (Prometheus: the user who names one wants that value, not ours).
        let added: Vec<&(String, String)> = self
            .external
            .iter()
            .filter(|(n, _)| !matchers.iter().any(|m| &m.name == n))
            .collect();
        let mut wire: Vec<LabelMatcher> = matchers.iter().map(to_wire).collect();
        wire.extend(added.iter().map(|(n, v)| LabelMatcher {
            r#type: 0,
            name: n.clone(),
            value: v.clone(),
        }));
        let req = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: mint,
                end_timestamp_ms: maxt,
                matchers: wire,
                hints: None,
            }],
            // Streamed chunks first, as current Prometheus asks (a server without them
            // answers with samples): XOR chunks are several times smaller on the wire than
            // samples, and the server need not hold the whole answer.
            accepted_response_types: vec![STREAMED_XOR_CHUNKS, SAMPLES],
        };
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Encoding", "snappy"),
            ("Content-Type", "application/x-protobuf"),
            ("X-Prometheus-Remote-Read-Version", "0.1.0"),
            ("User-Agent", concat!("vigil/", env!("CARGO_PKG_VERSION"))),
        ];
        headers.extend(
            self.cfg
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let limit = budget.min(MAX_RESPONSE_BYTES);
        let over = |what: &str| {
            let why = if limit == MAX_RESPONSE_BYTES {
                format!("the {limit} bytes a remote read answer may be")
            } else {
                format!("the {limit} bytes this query may still load (--query.max-bytes)")
            };
            ReadFailure::OverBudget(format!(
                "remote_read: the answer from {} is larger {what} than {why}",
                mask_url(&self.cfg.url)
            ))
        };
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let t0 = Instant::now();
        let res = self
            .client
            .post_read(
                &self.cfg.url,
                &headers,
                codec::encode(&req),
                self.cfg.remote_timeout,
                limit,
            )
            .await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let (status, ctype, body) = match res {
            Ok(r) => r,
            Err(e) => {
                self.observe(secs, "none", "error".into());
                return Some(Err(match e {
                    PostError::TooLarge(_) => over("compressed"),
                    PostError::Failed(e) | PostError::Refused(e) => {
                        ReadFailure::Failed(redact(&self.cfg.url, e))
                    }
                }));
            }
        };
        // As current Prometheus labels them: by the content type of the answer.
        let response_type = if !(200..300).contains(&status) {
            "none"
        } else if ctype
            .starts_with("application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse")
        {
            "chunked"
        } else if ctype.starts_with("application/x-protobuf") {
            "sampled"
        } else {
            "unsupported"
        };
        if response_type != "chunked" {
            self.observe(secs, response_type, status.to_string());
        }
        if response_type == "unsupported" {
            return Some(Err(ReadFailure::Failed(format!(
                "remote server {} answered with unsupported content type {ctype:?}",
                mask_url(&self.cfg.url)
            ))));
        }
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_string();
            return Some(Err(ReadFailure::Failed(format!(
                "remote server {} returned HTTP status {status}: {text}",
                mask_url(&self.cfg.url)
            ))));
        }
        if response_type == "chunked" {
            // Decoding is CPU work in proportion to the answer: off the runtime's workers,
            // which scrapes and the HTTP server share.
            let dropped: Vec<String> = added.iter().map(|(n, _)| n.clone()).collect();
            let res = tokio::task::spawn_blocking(move || {
                decode_streamed(&body, mint, maxt, limit, |name| {
                    !dropped.iter().any(|n| n == name)
                })
            })
            .await
            .unwrap_or_else(|e| Err(StreamError::Damaged(format!("decoding stopped: {e}"))));
            // As current Prometheus counts a stream it could not read.
            let code = match res {
                Ok(_) => status.to_string(),
                Err(_) => "aborted_stream".to_string(),
            };
            self.observe(secs, "chunked", code);
            return Some(match res {
                Ok(r) => Ok(r),
                Err(StreamError::OverBudget) => Err(over("decoded")),
                Err(StreamError::Damaged(e)) => Err(ReadFailure::Failed(format!(
                    "error reading streamed response from {}: {e}",
                    mask_url(&self.cfg.url)
                ))),
            });
        }
        let decoded = match snap::raw::decompress_len(&body) {
            Ok(n) if n > limit => return Some(Err(over("decoded"))),
            Ok(n) => n,
            Err(_) => 0, // decode_limited names the error
        };
        let resp: ReadResponse = match codec::decode_limited(&body, limit) {
            Ok(r) => r,
            Err(e) => {
                return Some(Err(ReadFailure::Failed(format!(
                    "error reading response from {}: {e}",
                    mask_url(&self.cfg.url)
                ))));
            }
        };
        drop(body);
        if resp.results.len() != 1 {
            return Some(Err(ReadFailure::Failed(format!(
                "responses: want 1, got {}",
                resp.results.len()
            ))));
        }
        let mut out = Vec::new();
        for ts in resp.results.into_iter().flat_map(|r| r.timeseries) {
            let pairs: Vec<(String, String)> = ts
                .labels
                .into_iter()
                .filter(|l| !added.iter().any(|(n, _)| n == &l.name))
                .map(|l| (l.name, l.value))
                .collect();
            match sampled_series(pairs, ts.samples, &ts.histograms, mint, maxt) {
                Ok(Some(series)) => out.push(series),
                Ok(None) => {}
                Err(e) => {
                    return Some(Err(ReadFailure::Failed(format!(
                        "damaged answer from {}: {e}",
                        mask_url(&self.cfg.url)
                    ))));
                }
            }
        }
        Some(Ok((out, decoded)))
    }

    fn observe(&self, secs: f64, response_type: &'static str, code: String) {
        *self
            .stats
            .by_code
            .lock()
            .entry((response_type, code))
            .or_default() += 1;
        let mut all = self.stats.duration.lock();
        let d = all
            .entry(response_type)
            .or_insert(([0; BUCKETS.len()], 0.0, 0));
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                d.0[i] += 1;
            }
        }
        d.1 += secs;
        d.2 += 1;
    }
}

fn to_wire(m: &Matcher) -> LabelMatcher {
    LabelMatcher {
        r#type: match m.op {
            MatchOp::Equal => 0,
            MatchOp::NotEqual => 1,
            MatchOp::Regex => 2,
            MatchOp::NotRegex => 3,
        },
        name: m.name.clone(),
        value: m.value.clone(),
    }
}

/// Errors from the HTTP client can quote the URL with its password.
fn redact(url: &str, e: String) -> String {
    format!("remote_read: {}", crate::queue::redact(url, e))
}

/// Readers built for a reload, not yet in use.
pub struct Prepared(Vec<Arc<Reader>>);

/// Every `remote_read` endpoint, reconfigured on reload.
pub struct RemoteRead {
    rt: tokio::runtime::Handle,
    readers: RwLock<Arc<Vec<Arc<Reader>>>>,
    /// The first timestamp local storage holds (Prometheus: the first block's start, else
    /// now) plus a margin, in ms.
    local_start: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Decoded bytes one query's remote answers may take together (`--query.max-bytes`;
    /// 0: only [`MAX_RESPONSE_BYTES`] per answer).
    max_bytes: usize,
}

impl RemoteRead {
    pub fn new(
        rt: tokio::runtime::Handle,
        local_start: Box<dyn Fn() -> i64 + Send + Sync>,
        max_bytes: usize,
    ) -> Arc<RemoteRead> {
        Arc::new(RemoteRead {
            rt,
            readers: RwLock::new(Arc::new(Vec::new())),
            local_start,
            max_bytes,
        })
    }

    /// Readers for `cfg`'s `remote_read` entries, to [`RemoteRead::commit`] once the rest of
    /// the reload has passed. Fails when an endpoint's HTTP client cannot be built (a missing
    /// certificate, say). An unchanged entry keeps its reader and counters.
    pub fn prepare(&self, cfg: &Config) -> Result<Prepared, String> {
        let old = self.readers.read().clone();
        let external: Vec<(String, String)> = cfg
            .global
            .external_labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        let mut next = Vec::new();
        for r in &cfg.remote_read {
            let ext = if r.filter_external_labels {
                external.clone()
            } else {
                Vec::new()
            };
            if let Some(same) = old.iter().find(|o| &o.cfg == r && o.external == ext) {
                next.push(same.clone());
                continue;
            }
            let client = vigil_scrape::client::Scraper::with_http(
                &r.http_client,
                &[],
                vigil_config::NameEscaping::AllowUtf8,
                false,
                0,
            )
            .map_err(|e| format!("remote_read {}: {e}", mask_url(&r.url)))?;
            next.push(Arc::new(Reader {
                name: if r.name.is_empty() {
                    crate::settings_hash(r)
                } else {
                    r.name.clone()
                },
                cfg: r.clone(),
                external: ext,
                client: Arc::new(client),
                stats: ReadStats::default(),
            }));
        }
        Ok(Prepared(next))
    }

    /// Start reading from the prepared endpoints (queries already running keep theirs).
    pub fn commit(&self, p: Prepared) {
        *self.readers.write() = Arc::new(p.0);
    }

    /// `prometheus_remote_storage_*` read metrics, in the text format.
    pub fn metrics(&self) -> String {
        let readers = self.readers.read().clone();
        if readers.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        let lbl = |r: &Reader| {
            format!(
                "remote_name=\"{}\",url=\"{}\"",
                vigil_model::exposition::escape_label_value(&r.name),
                vigil_model::exposition::escape_label_value(&mask_url(&r.cfg.url))
            )
        };
        // Labels in name order, as Prometheus writes them.
        let typed = |r: &Reader, response_type: &str| {
            format!(
                "remote_name=\"{}\",response_type=\"{response_type}\",url=\"{}\"",
                vigil_model::exposition::escape_label_value(&r.name),
                vigil_model::exposition::escape_label_value(&mask_url(&r.cfg.url))
            )
        };
        s.push_str("# HELP prometheus_remote_storage_remote_read_queries The number of in-flight remote read queries.\n# TYPE prometheus_remote_storage_remote_read_queries gauge\n");
        for r in readers.iter() {
            let _ = writeln!(
                s,
                "prometheus_remote_storage_remote_read_queries{{{}}} {}",
                lbl(r),
                r.stats.in_flight.load(Ordering::Relaxed)
            );
        }
        s.push_str("# HELP prometheus_remote_storage_read_queries_total The total number of remote read queries.\n# TYPE prometheus_remote_storage_read_queries_total counter\n");
        for r in readers.iter() {
            for ((response_type, code), n) in r.stats.by_code.lock().iter() {
                let _ = writeln!(
                    s,
                    "prometheus_remote_storage_read_queries_total{{code=\"{code}\",{}}} {n}",
                    typed(r, response_type)
                );
            }
        }
        s.push_str("# HELP prometheus_remote_storage_read_request_duration_seconds Histogram of the latency for remote read requests.\n# TYPE prometheus_remote_storage_read_request_duration_seconds histogram\n");
        for r in readers.iter() {
            for (response_type, d) in r.stats.duration.lock().iter() {
                let l = typed(r, response_type);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "prometheus_remote_storage_read_request_duration_seconds_bucket{{{l},le=\"{b}\"}} {}",
                        d.0[i]
                    );
                }
                let _ = writeln!(
                    s,
                    "prometheus_remote_storage_read_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                    d.2
                );
                let _ = writeln!(
                    s,
                    "prometheus_remote_storage_read_request_duration_seconds_sum{{{l}}} {}",
                    d.1
                );
                let _ = writeln!(
                    s,
                    "prometheus_remote_storage_read_request_duration_seconds_count{{{l}}} {}",
                    d.2
                );
            }
        }
        s
    }
}

/// Local storage with the remote read endpoints merged into its reads.
pub struct Fanout {
    pub local: Arc<dyn Storage>,
    pub remote: Arc<RemoteRead>,
}

impl Storage for Fanout {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.local.appender()
    }

    /// Local exemplars only: the remote read protocol carries none.
    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<vigil_storage::SeriesExemplars>, StorageError> {
        self.local.exemplars(mint, maxt, sets)
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        let readers = self.remote.readers.read().clone();
        let local = self.local.querier(mint, maxt)?;
        if readers.is_empty() {
            return Ok(local);
        }
        let start = (self.remote.local_start)();
        let remotes: Vec<(Arc<Reader>, i64, i64)> = readers
            .iter()
            .filter_map(|r| {
                if r.cfg.read_recent {
                    return Some((r.clone(), mint, maxt));
                }
                // Only time local storage does not hold.
                (mint <= start).then(|| (r.clone(), mint, maxt.min(start)))
            })
            .collect();
        if remotes.is_empty() {
            return Ok(local);
        }
        Ok(Box::new(FanoutQuerier {
            local,
            remotes,
            rt: self.remote.rt.clone(),
            fetched: Mutex::new(HashMap::new()),
            left: Mutex::new(if self.remote.max_bytes == 0 {
                usize::MAX
            } else {
                self.remote.max_bytes
            }),
            warnings: Mutex::new(Vec::new()),
        }))
    }
}

/// One selection's remote answer, or why the query cannot have it.
type Fetched = Result<Arc<Vec<Series>>, String>;

struct FanoutQuerier<'a> {
    local: Box<dyn Querier + 'a>,
    remotes: Vec<(Arc<Reader>, i64, i64)>,
    rt: tokio::runtime::Handle,
    /// Remote answers per selection: shard threads of one selection ask once between them.
    /// An answer over the budget is kept too, so the other shards fail without asking again.
    fetched: Mutex<HashMap<String, Fetched>>,
    /// Decoded bytes this query's remote answers may still take.
    left: Mutex<usize>,
    warnings: Mutex<Vec<String>>,
}

impl FanoutQuerier<'_> {
    /// Every endpoint's series for `matchers`, merged and sorted by labels; an error when
    /// their answers are larger than the query may still load.
    fn remote_series(&self, matchers: &[Matcher]) -> Result<Arc<Vec<Series>>, StorageError> {
        let key = matchers
            .iter()
            .map(|m| format!("{}{}{:?}", m.name, m.op.as_str(), m.value))
            .collect::<Vec<_>>()
            .join(",");
        let mut fetched = self.fetched.lock();
        if let Some(s) = fetched.get(&key) {
            return s.clone().map_err(StorageError::Other);
        }
        let budget = *self.left.lock();
        let mut merged: std::collections::BTreeMap<Labels, (Vec<Sample>, Vec<HistogramSample>)> =
            Default::default();
        // Every endpoint is asked at once (each bounded by its remote_timeout); the requests
        // run on the runtime and this thread (a query thread, or a rule's blocking thread)
        // waits for them in order, which works from any thread.
        let waiting: Vec<_> = self
            .remotes
            .iter()
            .map(|(r, mint, maxt)| {
                let (r, ms, mint, maxt) = (r.clone(), matchers.to_vec(), *mint, *maxt);
                let (tx, rx) = std::sync::mpsc::channel();
                self.rt.spawn(async move {
                    let _ = tx.send(r.read(&ms, mint, maxt, budget).await);
                });
                rx
            })
            .collect();
        // Endpoints answer at once, each within the budget left; together they may not
        // exceed it either.
        let mut over: Option<String> = None;
        for rx in waiting {
            match rx.recv() {
                Ok(None) => {}
                Ok(Some(Ok((series, bytes)))) => {
                    let mut left = self.left.lock();
                    if bytes > *left {
                        over.get_or_insert(format!(
                            "remote_read: the answers to this query are larger than the {budget} bytes it may load (--query.max-bytes)"
                        ));
                        continue;
                    }
                    *left -= bytes;
                    for s in series {
                        let m = merged.entry(s.labels).or_default();
                        merge_samples(&mut m.0, s.samples);
                        merge_samples(&mut m.1, s.histograms);
                    }
                }
                Ok(Some(Err(ReadFailure::OverBudget(e)))) => {
                    over.get_or_insert(e);
                }
                Ok(Some(Err(ReadFailure::Failed(e)))) => {
                    let w = if e.starts_with("remote_read") {
                        e
                    } else {
                        format!("remote_read: {e}")
                    };
                    tracing::warn!(err = %w, "Remote read failed; answering from local data");
                    let mut ws = self.warnings.lock();
                    if !ws.contains(&w) {
                        ws.push(w);
                    }
                }
                Err(_) => self
                    .warnings
                    .lock()
                    .push("remote_read: the request ended without an answer (shutdown, or its task failed)".into()),
            }
        }
        if let Some(e) = over {
            tracing::warn!(err = %e, "Remote read answer over the query's memory budget");
            fetched.insert(key, Err(e.clone()));
            return Err(StorageError::Other(e));
        }
        let out = Arc::new(
            merged
                .into_iter()
                .map(|(labels, (samples, histograms))| Series {
                    labels,
                    samples,
                    histograms,
                })
                .collect::<Vec<_>>(),
        );
        fetched.insert(key, Ok(out.clone()));
        Ok(out)
    }
}

/// Add `more` to the time-sorted `into`; on equal timestamps the sample already there stays
/// (local data wins over remote, the first endpoint over later ones).
fn merge_samples<T: vigil_storage::Timed + Clone>(into: &mut Vec<T>, more: Vec<T>) {
    if into.is_empty() {
        *into = more;
        return;
    }
    let mut out = Vec::with_capacity(into.len() + more.len());
    let (mut a, mut b) = (into.iter().peekable(), more.into_iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.t() < y.t() => out.push(a.next().expect("peeked").clone()),
            (Some(x), Some(y)) if x.t() > y.t() => out.push(b.next().expect("peeked")),
            (Some(_), Some(_)) => {
                out.push(a.next().expect("peeked").clone());
                b.next();
            }
            (Some(_), None) => out.push(a.next().expect("peeked").clone()),
            (None, Some(_)) => out.push(b.next().expect("peeked")),
            (None, None) => break,
        }
    }
    *into = out;
}

impl Querier for FanoutQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>, StorageError> {
        self.select_shard(matchers, 0, 1)
    }

    fn select_shard(
        &self,
        matchers: &[Matcher],
        shard: usize,
        of: usize,
    ) -> Result<SeriesSet<'_>, StorageError> {
        let local = self.local.select_shard(matchers, shard, of)?;
        let remote = self.remote_series(matchers)?;
        let mine: Vec<Series> = remote
            .iter()
            .filter(|s| of <= 1 || s.labels.shard(of) == shard)
            .cloned()
            .collect();
        if mine.is_empty() {
            return Ok(local);
        }
        Ok(Box::new(Merge {
            local: local.peekable(),
            remote: mine.into_iter().peekable(),
        }))
    }

    fn shards(&self) -> usize {
        self.local.shards()
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.local.warnings();
        w.extend(self.warnings.lock().iter().cloned());
        w
    }

    // The remote read protocol has no label name or value lookups (Prometheus's client has
    // none either): these answer from local data.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.local.label_names(matchers)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        self.local.label_values(name, matchers)
    }
}

/// Two label-sorted series streams as one; a series in both gets both sets of samples.
struct Merge<'a> {
    local: std::iter::Peekable<SeriesSet<'a>>,
    remote: std::iter::Peekable<std::vec::IntoIter<Series>>,
}

impl Iterator for Merge<'_> {
    type Item = Series;
    fn next(&mut self) -> Option<Series> {
        use std::cmp::Ordering::*;
        let order = match (self.local.peek(), self.remote.peek()) {
            (Some(l), Some(r)) => l.labels.cmp(&r.labels),
            (Some(_), None) => Less,
            (None, Some(_)) => Greater,
            (None, None) => return None,
        };
        match order {
            Less => self.local.next(),
            Greater => self.remote.next(),
            Equal => {
                let mut l = self.local.next()?;
                let r = self.remote.next()?;
                merge_samples(&mut l.samples, r.samples);
                merge_samples(&mut l.histograms, r.histograms);
                Some(l)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn merged_samples_keep_time_order_and_the_first_at_equal_times() {
        let mut a = vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)];
        merge_samples(&mut a, vec![s(0, 0.5), s(3, 9.0), s(4, 4.0), s(6, 6.0)]);
        let got: Vec<(i64, f64)> = a.iter().map(|x| (x.t, x.v)).collect();
        assert_eq!(
            got,
            vec![(0, 0.5), (1, 1.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 6.0)]
        );
    }

    /// A test series: labels, and chunks of (type, samples).
    type TestSeries<'a> = (&'a [(&'a str, &'a str)], Vec<(i32, Vec<(i64, f64)>)>);

    /// One streamed frame holding `series`.
    fn streamed(series: &[TestSeries]) -> Vec<u8> {
        use crate::proto::{Chunk, ChunkedReadResponse, ChunkedSeries, Label};
        use prost::Message as _;
        let msg = ChunkedReadResponse {
            chunked_series: series
                .iter()
                .map(|(labels, chunks)| ChunkedSeries {
                    labels: labels
                        .iter()
                        .map(|(n, v)| Label {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                    chunks: chunks
                        .iter()
                        .map(|(typ, samples)| {
                            let mut c = vigil_tsdb::chunk::XorChunk::new();
                            for &(t, v) in samples {
                                c.append(t, v);
                            }
                            Chunk {
                                min_time_ms: samples[0].0,
                                max_time_ms: samples[samples.len() - 1].0,
                                r#type: *typ,
                                data: c.bytes(),
                            }
                        })
                        .collect(),
                })
                .collect(),
            query_index: 0,
        };
        crate::read::frame(&msg.encode_to_vec())
    }

    #[test]
    fn a_samples_answer_brings_its_native_histograms() {
        use crate::proto::{BucketSpan, Histogram};
        let h = |t: i64, k: i64| {
            Histogram {
                count_int: Some(3 * k as u64),
                sum: 2.0 * k as f64,
                schema: 0,
                positive_spans: vec![BucketSpan {
                    offset: 1,
                    length: 2,
                }],
                // Integer buckets are deltas: k then 2k.
                positive_deltas: vec![k, k],
                timestamp: t,
                ..Default::default()
            }
            .encode_to_vec()
        };
        let s = sampled_series(
            vec![("__name__".into(), "h".into())],
            vec![],
            &[h(3000, 2), h(1000, 1), h(9000, 3)],
            0,
            5000,
        )
        .unwrap()
        .unwrap();
        let times: Vec<i64> = s.histograms.iter().map(|x| x.t).collect();
        assert_eq!(times, [1000, 3000]);
        assert_eq!(s.histograms[0].h.count, 3.0);
        assert_eq!(s.histograms[0].h.positive(), vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(s.histograms[1].h.positive(), vec![(1, 2.0), (2, 4.0)]);
        assert!(
            sampled_series(vec![], vec![], &[h(9000, 1)], 0, 5000)
                .unwrap()
                .is_none()
        );
        // Damage and layouts Prometheus does not define are errors, not dropped quietly.
        assert!(sampled_series(vec![], vec![], &[vec![0xff, 0xff]], 0, 5000).is_err());
        let mut bad = Histogram::decode(h(1000, 1).as_slice()).unwrap();
        bad.zero_threshold = f64::NAN;
        assert!(sampled_series(vec![], vec![], &[bad.encode_to_vec()], 0, 5000).is_err());
        bad.zero_threshold = 0.0;
        bad.schema = 40;
        assert!(sampled_series(vec![], vec![], &[bad.encode_to_vec()], 0, 5000).is_err());
    }

    #[test]
    fn streamed_series_join_over_frames_within_the_range() {
        let up: &[(&str, &str)] = &[("__name__", "up"), ("cluster", "a")];
        let other: &[(&str, &str)] = &[("__name__", "other")];
        let mut body = streamed(&[(up, vec![(1, vec![(1, 1.0), (2, 2.0)])])]);
        body.extend(streamed(&[
            (up, vec![(1, vec![(3, 3.0), (4, 4.0)])]),
            (other, vec![(1, vec![(3, 5.0), (5, 5.0)])]),
        ]));
        let (got, bytes) = decode_streamed(&body, 2, 4, 1 << 20, |n| n != "cluster").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels, Labels::from_pairs(vec![("__name__", "up")]));
        assert_eq!(got[0].samples, vec![s(2, 2.0), s(3, 3.0), s(4, 4.0)]);
        assert_eq!(got[1].samples, vec![s(3, 5.0)]);
        assert!(bytes >= 3 * 16);
        assert_eq!(
            decode_streamed(&body, 0, 10, 40, |_| true),
            Err(StreamError::OverBudget)
        );
    }

    #[test]
    fn damaged_streamed_answers_are_named() {
        let up: &[(&str, &str)] = &[("__name__", "up")];
        let good = streamed(&[(up, vec![(1, vec![(1, 1.0), (2, 2.0)])])]);
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 1] ^= 1;
        let cut = good[..good.len() - 3].to_vec();
        // A length near u64::MAX (it must not wrap past the check).
        let mut huge = Vec::new();
        prost::encoding::encode_varint(u64::MAX - 1, &mut huge);
        huge.extend_from_slice(&[0, 0, 0]);
        // A chunk whose header claims more samples than it holds.
        let short = {
            use crate::proto::{Chunk, ChunkedReadResponse, ChunkedSeries};
            use prost::Message as _;
            let mut c = vigil_tsdb::chunk::XorChunk::new();
            c.append(1, 1.0);
            c.append(2, 2.0);
            let mut data = c.bytes();
            data[1] = 50;
            let msg = ChunkedReadResponse {
                chunked_series: vec![ChunkedSeries {
                    labels: vec![],
                    chunks: vec![Chunk {
                        min_time_ms: 1,
                        max_time_ms: 2,
                        r#type: 1,
                        data,
                    }],
                }],
                query_index: 0,
            };
            crate::read::frame(&msg.encode_to_vec())
        };
        for (body, says) in [
            (bad_crc, "checksum"),
            (cut, "announced"),
            (vec![0x80], "length"),
            (huge, "announced"),
            (short, "of 50 samples holds 2"),
        ] {
            match decode_streamed(&body, 0, 10, 1 << 20, |_| true) {
                Err(StreamError::Damaged(e)) => assert!(e.contains(says), "{e}"),
                other => panic!("{says}: {other:?}"),
            }
        }
    }
}
