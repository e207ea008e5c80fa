//! Remote storage endpoints: the remote write receiver (`POST /api/v1/write`, with
//! `--web.enable-remote-write-receiver`), remote read (`POST /api/v1/read`) and federation
//! (`GET /federate`). Decoding and storing are the `remote` crate's; this is the HTTP side.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use vigil_model::names::NameEscaping;
use vigil_remote::receive::{self, ReceiveError};

use crate::AppState;
use crate::api::{ApiError, Params};

type St = State<Arc<AppState>>;

/// The largest remote write or read request body (compressed).
const MAX_REMOTE_BODY: usize = 32 << 20;

/// The largest OTLP request body, read or after gzip (vigil's bound; Prometheus sets none).
const MAX_OTLP_BODY: usize = 16 << 20;

/// OTLP requests are decoded and translated one at a time.
static OTLP_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Federation requests served at once; more wait their turn.
static FEDERATE_SLOTS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(4)));

/// What remote write requests being received at once may take, in KiB of their
/// [`receive::decoding_cost`] (2 GiB): more wait their turn. An ordinary request of 1 MiB
/// decompressed is admitted at 66 MiB, so thirty are received at once; one whose cost is
/// over the whole budget (the largest, 64 MiB decompressed, costs 4.1 GiB) runs alone.
const RECEIVE_BUDGET_KIB: usize = 2 << 20;
static RECEIVE_BUDGET: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(RECEIVE_BUDGET_KIB);

pub(crate) fn routes(receiver: bool, otlp: bool) -> Router<Arc<AppState>> {
    let mut r = Router::new()
        .route("/api/v1/status/remote_write", get(status))
        .route("/api/v1/read", post(read))
        .route("/federate", get(federate).post(federate));
    if receiver {
        r = r.route("/api/v1/write", post(write));
    } else {
        // As Prometheus without the flag: the endpoint exists and says how to turn it on.
        r = r.route(
            "/api/v1/write",
            post(|| async {
                (
                    StatusCode::NOT_FOUND,
                    "remote write receiver needs to be enabled with --web.enable-remote-write-receiver\n",
                )
            }),
        );
    }
    r = if otlp {
        r.route("/api/v1/otlp/v1/metrics", post(otlp_write))
    } else {
        // As Prometheus without the flag.
        r.route(
            "/api/v1/otlp/v1/metrics",
            post(|| async {
                (
                    StatusCode::NOT_FOUND,
                    "otlp write receiver needs to be enabled with --web.enable-otlp-receiver\n",
                )
            }),
        )
    };
    r.layer(axum::extract::DefaultBodyLimit::max(MAX_REMOTE_BODY))
}

/// The delta streams' running sums (`--enable-feature=otlp-deltatocumulative`), for the
/// process's life, as Prometheus's receiver holds its processor.
static DELTAS: std::sync::OnceLock<vigil_remote::otlp_delta::DeltaToCumulative> =
    std::sync::OnceLock::new();

/// `POST /api/v1/otlp/v1/metrics`: translated with the current config's `otlp:` settings and
/// stored in one transaction; 200 with an empty body, as Prometheus answers.
async fn otlp_write(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let cfg = s.config.read().otlp.clone();
    let settings = vigil_remote::otlp::Settings {
        strategy: vigil_remote::otlp::Strategy::parse(&cfg.translation_strategy)
            .unwrap_or_default(),
        promote_resource_attributes: cfg.promote_resource_attributes,
        promote_all_resource_attributes: cfg.promote_all_resource_attributes,
        ignore_resource_attributes: cfg.ignore_resource_attributes,
        keep_identifying_resource_attributes: cfg.keep_identifying_resource_attributes,
        convert_histograms_to_nhcb: cfg.convert_histograms_to_nhcb,
        promote_scope_metadata: cfg.promote_scope_metadata,
        label_name_underscore_sanitization: cfg.label_name_underscore_sanitization,
        label_name_preserve_multiple_underscores: cfg.label_name_preserve_multiple_underscores,
        lookback_ms: s.engine.lookback_ms,
        type_and_unit_labels: vigil_config::type_and_unit_labels(),
        start_zeros: vigil_config::created_timestamp_zero_ingestion(),
        native_delta: vigil_config::otlp_native_delta(),
        metadata: vigil_config::metadata_wal_records(),
    };
    let content_type = header_str(&headers, header::CONTENT_TYPE).map(str::to_string);
    let encoding = header_str(&headers, header::CONTENT_ENCODING).map(str::to_string);
    let storage = s.storage.clone();
    if body.len() > MAX_OTLP_BODY {
        return refuse(ReceiveError::BadRequest(format!(
            "the body is over {MAX_OTLP_BODY} bytes"
        )));
    }
    // One request decoded at a time: a decoded request can take many times its size in
    // memory (an empty metric is 2 bytes of protobuf and a hundred in memory). The turn goes
    // with the work, so a client that hangs up does not free it early.
    let Ok(turn) = OTLP_TURN.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    // Decoding, translating and appending are CPU and lock work: off the async workers.
    let res = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let mut req = vigil_remote::otlp::decode(
            content_type.as_deref(),
            encoding.as_deref(),
            &body,
            MAX_OTLP_BODY,
        )?;
        if vigil_config::otlp_delta_to_cumulative() {
            let dropped = DELTAS
                .get_or_init(vigil_remote::otlp_delta::DeltaToCumulative::default)
                .convert(&mut req);
            if dropped > 0 {
                tracing::debug!(
                    dropped,
                    "OTLP delta points dropped (repeated, out of order, or past the stream limit)"
                );
            }
        }
        let t = vigil_remote::otlp::translate(&req, &settings)?;
        for w in &t.warnings {
            tracing::warn!(warning = %w, "Warnings translating OTLP metrics to Prometheus write request");
        }
        receive::append_with_starts(&*storage, &t.write, &t.starts, &t.metadata)
    })
    .await
    .unwrap_or_else(|e| Err(ReceiveError::Storage(format!("write task failed: {e}"))));
    if let Some(remote) = &s.remote {
        let mut st = remote.received.lock();
        st.requests += 1;
        match &res {
            Ok(got) => {
                st.samples += got.samples;
                st.histograms += got.histograms;
            }
            Err(_) => st.refused += 1,
        }
    }
    match res {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::warn!(err = %e, "OTLP write request refused");
            refuse(e)
        }
    }
}

/// vigil's own: each remote write queue's progress, for the status page.
async fn status(State(s): St) -> Response {
    let queues = s
        .remote
        .as_ref()
        .map(|r| r.status())
        .unwrap_or_else(|| serde_json::json!([]));
    crate::api::ok(serde_json::json!({ "queues": queues }))
}

fn refuse(e: ReceiveError) -> Response {
    let code = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (code, format!("{e}\n")).into_response()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn write(State(s): St, headers: HeaderMap, body: Bytes) -> Response {
    let Some(remote) = s.remote.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "remote write is not set up\n",
        )
            .into_response();
    };
    let checked = receive::check_headers(
        header_str(&headers, header::CONTENT_TYPE),
        header_str(&headers, header::CONTENT_ENCODING),
    );
    let checked = checked.and_then(|m| {
        if s.receiver_messages.contains(&m) {
            Ok(m)
        } else {
            Err(ReceiveError::UnsupportedMediaType(format!(
                "{} is not accepted by this server (--web.remote-write-receiver.accepted-protobuf-messages)",
                m.name()
            )))
        }
    });
    let v2 = matches!(checked, Ok(receive::Message::V2));
    let storage = s.storage.clone();
    // Admitted by what decoding it can take, the budget held until the work is done (a
    // client that hangs up does not free it early). A request refused by its headers costs
    // nothing, so it is answered without waiting.
    let budget = if checked.is_ok() {
        let cost = receive::decoding_cost(&body)
            .div_ceil(1024)
            .clamp(1, RECEIVE_BUDGET_KIB) as u32;
        let Ok(p) = RECEIVE_BUDGET.acquire_many(cost).await else {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        };
        Some(p)
    } else {
        None
    };
    // Decoding and appending are CPU and lock work: off the async workers.
    let res = tokio::task::spawn_blocking(move || {
        let _budget = budget;
        receive::receive(&*storage, checked?, &body)
    })
    .await
    .unwrap_or_else(|e| Err(ReceiveError::Storage(format!("write task failed: {e}"))));
    let mut st = remote.received.lock();
    st.requests += 1;
    let (written, histograms_written, exemplars_written) = res
        .as_ref()
        .map_or((0, 0, 0), |g| (g.samples, g.histograms, g.exemplars));
    let mut resp = match res {
        Ok(got) => {
            st.samples += got.samples;
            st.histograms += got.histograms;
            st.invalid_series += got.invalid_series;
            st.histograms_dropped += got.histograms_dropped;
            st.exemplars_dropped += got.exemplars_dropped;
            if v2 && (got.histograms_dropped > 0 || got.invalid_series > 0 || got.refused > 0) {
                // Remote write 2.0 must not be answered 2xx while anything went unwritten:
                // native histograms a storage cannot keep and series with invalid labels
                // make it a 400 naming them, after the rest is stored (a partial write,
                // which the sender does not retry).
                let mut why = Vec::new();
                if got.histograms_dropped > 0 {
                    why.push(format!(
                        "{} native histogram samples not written: this storage keeps float samples only",
                        got.histograms_dropped
                    ));
                }
                if got.invalid_series > 0 {
                    why.push(format!(
                        "{} series not written: invalid metric name or labels",
                        got.invalid_series
                    ));
                }
                if got.refused > 0 {
                    why.push(format!(
                        "{} samples or histograms not written: {}",
                        got.refused,
                        got.refusals.join("; ")
                    ));
                    // Answered with an error, though the rest was stored.
                    st.refused += 1;
                    tracing::warn!(
                        refused = got.refused,
                        first = %got.refusals.first().map_or("", String::as_str),
                        "Remote write 2.0: samples refused for their time, the rest stored"
                    );
                }
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{}; {} float samples written\n",
                        why.join("; "),
                        got.samples
                    ),
                )
                    .into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        Err(e) => {
            st.refused += 1;
            tracing::warn!(err = %e, "Remote write request refused");
            refuse(e)
        }
    };
    if v2 {
        // The 2.0 receipt: what was written (nothing on a refusal, which rolls back).
        let h = resp.headers_mut();
        for (name, n) in [
            ("x-prometheus-remote-write-samples-written", written),
            (
                "x-prometheus-remote-write-histograms-written",
                histograms_written,
            ),
            (
                "x-prometheus-remote-write-exemplars-written",
                exemplars_written,
            ),
        ] {
            h.insert(name, header::HeaderValue::from(n));
        }
    }
    resp
}

fn external(s: &AppState) -> BTreeMap<String, String> {
    vigil_remote::external_map(&s.config.read().global.external_labels)
}

async fn read(State(s): St, body: Bytes) -> Response {
    // At most `--storage.remote.read-concurrent-limit` reads at once, as Prometheus: the rest
    // wait here for a slot, holding only their request. A read holds its slot until its last
    // frame is made.
    let slot = match &s.remote_read_gate {
        None => None,
        Some(gate) => match gate.clone().acquire_owned().await {
            Ok(p) => Some(p),
            Err(e) => return refuse(ReceiveError::Storage(e.to_string())),
        },
    };
    let ext = external(&s);
    // Decoding and the streamed answer's checks (which compile the request's regexes) at
    // the queries' low priority too, off the async workers, which also drive scrapes.
    let checks = {
        let ext = ext.clone();
        crate::query_pool::run_on_own_thread("vigil-remote-read", move || {
            let (req, kind) = vigil_remote::read::decode(&body)?;
            if kind == vigil_remote::read::ResponseType::StreamedXorChunks {
                vigil_remote::read::check_streamed(&req, &ext)?;
            }
            Ok((req, kind))
        })
    };
    let (req, kind) = match checks
        .await
        .unwrap_or_else(|| Err(ReceiveError::Storage("remote read task failed".into())))
    {
        Ok(r) => r,
        Err(e) => return refuse(e),
    };
    let storage = s.storage.clone();
    if kind == vigil_remote::read::ResponseType::StreamedXorChunks {
        // Frames go out as they are made; a full channel holds the reader back, a client
        // that leaves stops it. An error before the first frame is still an error status.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, ReceiveError>>(4);
        let max_frame = s.remote_read_max_frame;
        // A thread of its own at the queries' priority: it waits on the client as it sends,
        // which must hold neither a query thread nor a normal-priority one.
        let started = crate::query_pool::spawn_at_query_priority("vigil-remote-read", move || {
            let _slot = slot;
            let mut emit = |f: Vec<u8>| tx.blocking_send(Ok(f)).is_ok();
            if let Err(e) = vigil_remote::read::stream(&*storage, &req, &ext, max_frame, &mut emit)
            {
                tracing::warn!(err = %e, "Streamed remote read failed");
                // Before the first frame: the error status. After: the body is aborted, so
                // the client sees a broken stream, never a short answer that looks whole.
                let _ = tx.blocking_send(Err(e));
            }
        });
        if let Err(e) = started {
            return refuse(ReceiveError::Storage(format!("remote read thread: {e}")));
        }
        let first = match rx.recv().await {
            Some(Err(e)) => return refuse(e),
            Some(Ok(f)) => Some(f),
            None => None,
        };
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Some(Ok(f)) => Some((Ok(Bytes::from(f)), rx)),
                Some(Err(e)) => Some((Err(std::io::Error::other(e.to_string())), rx)),
                None => None,
            }
        });
        let frames = futures_util::StreamExt::chain(
            futures_util::stream::iter(first.map(|f| Ok(Bytes::from(f)))),
            rest,
        );
        return (
            [(
                header::CONTENT_TYPE,
                "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse",
            )],
            axum::body::Body::from_stream(frames),
        )
            .into_response();
    }
    let limit = s.remote_read_sample_limit;
    // At the queries' priority, so reads never take the CPU from scrapes.
    let res = crate::query_pool::run_on_own_thread("vigil-remote-read", move || {
        let _slot = slot;
        vigil_remote::read::read_samples(&*storage, &req, &ext, limit)
    })
    .await
    .unwrap_or_else(|| Err(ReceiveError::Storage("remote read task failed".into())));
    match res {
        Ok(b) => (
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            b,
        )
            .into_response(),
        Err(e) => refuse(e),
    }
}

/// The newest sample (within the lookback delta, not a staleness marker) of every series
/// matching any `match[]`, with timestamps, external labels added where a series lacks them:
/// what a federating Prometheus scrapes. In the text format (floats only: native histograms
/// have no text form), or in the protobuf format when the request's Accept asks for it, with
/// native histograms, as Prometheus's federation negotiates.
async fn federate(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use vigil_model::exposition::proto;
    use vigil_model::names::escape_name;
    let p = Params::from(q, &headers, &body)?;
    let sets = crate::api::parse_matchers_off(p.all("match[]")).await?;
    // Names outside the classic set go out as they are only to a reader that asks for them
    // (`escaping=allow-utf-8`); others get them escaped, `underscores` unless they ask for
    // another scheme, as Prometheus's federation negotiates.
    let (protobuf, escaping) = negotiate(&headers);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let lookback = s.engine.lookback_ms;
    let ext = external(&s);
    let storage = s.storage.clone();
    let content_type = if protobuf {
        format!(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited; escaping={}",
            escaping.as_str()
        )
    } else {
        format!(
            "text/plain; version=0.0.4; charset=utf-8; escaping={}",
            escaping.as_str()
        )
    };
    // A federating server scrapes this, so it runs beside queries, not queued behind them:
    // on a thread of its own at the queries' low priority (scrapes here come first), at most
    // `FEDERATE_SLOTS` at once, within `--query.timeout`, waiting included.
    let on = crate::api::RunOn::OwnThread("vigil-federate");
    crate::api::run_gated(&FEDERATE_SLOTS, on, s.query_timeout, move |deadline| {
        let querier = storage.querier(now - lookback + 1, now)?;
        // The newer of a series' last float and last histogram, unless it is a stale marker.
        let mut latest: BTreeMap<vigil_model::Labels, (i64, Latest)> = BTreeMap::new();
        for set in &sets {
            for (i, series) in querier.select_shard(set, 0, 1)?.enumerate() {
                if i % 1024 == 1023 {
                    deadline.check()?;
                }
                let f = series.samples.last();
                let h = series.histograms.last();
                let newest = match (f, h) {
                    (Some(f), Some(h)) if h.t > f.t => (h.t, Latest::Histogram(h.h.clone())),
                    (None, Some(h)) => (h.t, Latest::Histogram(h.h.clone())),
                    (Some(f), _) => (f.t, Latest::Float(f.v)),
                    (None, None) => continue,
                };
                let stale = match &newest.1 {
                    Latest::Float(v) => vigil_model::sample::is_stale_nan(*v),
                    Latest::Histogram(h) => vigil_model::sample::is_stale_nan(h.sum),
                };
                // Custom-bucket histograms have no protobuf form (no field for their bounds).
                let writable = match &newest.1 {
                    Latest::Float(_) => true,
                    Latest::Histogram(h) => protobuf && !h.uses_custom_buckets(),
                };
                if !stale && writable {
                    latest.insert(series.labels, newest);
                }
            }
        }
        // Families by name; floats, histograms and gauge histograms of one name apart.
        type Family = Vec<(Vec<(String, String)>, i64, Latest)>;
        let mut by_name: BTreeMap<(String, u8), Family> = BTreeMap::new();
        for (ls, (t, v)) in latest {
            let Some(name) = ls
                .metric_name()
                .map(|n| escape_name(n, escaping).into_owned())
            else {
                continue;
            };
            let mut pairs: Vec<(String, String)> = ls
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| {
                    (
                        escape_name(l.name, escaping).into_owned(),
                        l.value.to_string(),
                    )
                })
                .collect();
            for (n, val) in &ext {
                if !ls.has(n) {
                    pairs.push((escape_name(n, escaping).into_owned(), val.clone()));
                }
            }
            pairs.sort();
            let kind = match &v {
                Latest::Float(_) => 0,
                Latest::Histogram(h)
                    if h.hint == vigil_model::histogram::CounterResetHint::Gauge =>
                {
                    2
                }
                Latest::Histogram(_) => 1,
            };
            by_name.entry((name, kind)).or_default().push((pairs, t, v));
        }
        let mut out = Vec::new();
        for ((name, kind), series) in by_name {
            if protobuf {
                let metrics: Vec<proto::OutMetric> = series
                    .iter()
                    .map(|(pairs, t, v)| {
                        let v = match v {
                            Latest::Float(x) => proto::OutValue::Untyped(*x),
                            Latest::Histogram(h) => proto::OutValue::Histogram(h),
                        };
                        (&pairs[..], *t, v)
                    })
                    .collect();
                proto::write_family(&mut out, &name, kind == 2, &metrics);
                continue;
            }
            let mut text = String::from("# TYPE ");
            // Quoted as the series lines quote it, so readers match the two.
            if vigil_model::names::is_legacy_metric_name(&name) {
                text.push_str(&name);
            } else {
                text.push('"');
                text.push_str(&vigil_model::exposition::escape_label_value(&name));
                text.push('"');
            }
            text.push_str(" untyped\n");
            for (pairs, t, v) in series {
                let Latest::Float(v) = v else { continue };
                vigil_model::exposition::write_series(
                    &mut text,
                    &name,
                    pairs.iter().map(|(n, val)| (n.as_str(), val.as_str())),
                );
                text.push_str(&format!(" {} {t}\n", crate::json::format_value(v)));
            }
            out.extend_from_slice(text.as_bytes());
        }
        Ok(([(header::CONTENT_TYPE, content_type)], out).into_response())
    })
    .await
}

/// What Go's `expfmt.Negotiate` picks from the request's Accept: its media types in order of
/// `q` (highest first, written order among equals), the first that is the delimited protobuf
/// format or the text format 0.0.4 (`text/plain` with that version or none) wins, the text
/// format if none does. The `escaping=` in force is the last valid one on the types looked at
/// up to the winner (`underscores` if none), as Go carries it along.
fn negotiate(headers: &HeaderMap) -> (bool, NameEscaping) {
    let mut clauses: Vec<(f32, String)> = Vec::new();
    for value in headers.get_all(header::ACCEPT).iter() {
        let Ok(value) = value.to_str() else { continue };
        for part in value.split(',') {
            let q = part
                .split(';')
                .skip(1)
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "q")
                .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
            clauses.push((q, part.to_string()));
        }
    }
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut escaping = NameEscaping::Underscores;
    for (q, part) in clauses {
        if q <= 0.0 {
            continue;
        }
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let (mut proto_ok, mut delimited, mut version) = (false, false, None);
        for p in params {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let v = v.trim();
            match k.trim() {
                "proto" => proto_ok = v == "io.prometheus.client.MetricFamily",
                "encoding" => delimited = v == "delimited",
                "version" => version = Some(v.to_string()),
                "escaping" => {
                    if let Some(e) = NameEscaping::parse(v) {
                        escaping = e;
                    }
                }
                _ => {}
            }
        }
        if media == vigil_model::exposition::proto::MEDIA_TYPE && proto_ok && delimited {
            return (true, escaping);
        }
        if media == "text/plain" && version.as_deref().is_none_or(|v| v == "0.0.4") {
            return (false, escaping);
        }
    }
    (false, escaping)
}

/// A series' newest value, for federation.
enum Latest {
    Float(f64),
    Histogram(std::sync::Arc<vigil_model::FloatHistogram>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Federation's format and escaping as Go's `expfmt.Negotiate` picks them: delimited
    /// protobuf only when named fully and ranked highest; the escaping of the types looked at
    /// up to the winner.
    #[test]
    fn federation_negotiates_its_format_by_q() {
        let accept = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, v.parse().unwrap());
            negotiate(&h)
        };
        let proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily";
        let u = NameEscaping::Underscores;
        assert_eq!(
            accept(&format!(
                "{proto};encoding=delimited;q=0.7,text/plain;q=0.3,*/*;q=0.1"
            )),
            (true, u)
        );
        assert_eq!(
            accept(&format!(
                "{proto};encoding=delimited;q=0.2,text/plain;q=0.5"
            )),
            (false, u)
        );
        assert_eq!(accept(&format!("{proto};encoding=text")), (false, u));
        assert_eq!(
            accept(&format!("{proto};encoding=delimited;q=0")),
            (false, u)
        );
        assert_eq!(accept("text/plain;version=0.0.4"), (false, u));
        assert_eq!(accept("*/*"), (false, u));
        assert_eq!(negotiate(&HeaderMap::new()), (false, u));
        // Prometheus 3's scrape header: text 0.0.4 wins, carrying the allow-utf-8 of the
        // types ranked above it.
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
            ),
            (false, NameEscaping::AllowUtf8)
        );
        // A type ranked below the winner does not set it; an unknown scheme is ignored.
        assert_eq!(
            accept("text/plain;version=0.0.4;q=0.5,text/plain;escaping=values;q=0.4"),
            (false, u)
        );
        assert_eq!(
            accept("text/plain;version=1.0.0;escaping=dots,text/plain;escaping=bogus;q=0.5"),
            (false, NameEscaping::Dots)
        );
        assert_eq!(
            accept(&format!("{proto};encoding=delimited;escaping=values")),
            (true, NameEscaping::Values)
        );
    }
}
