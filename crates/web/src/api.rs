//! `/api/v1/*`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};
use vigil_storage::Matcher;

use crate::AppState;
use crate::json::{ExecTimes, write_query_data_with};
use crate::time::{format_rfc3339, parse_duration_param, parse_time};

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/scrape_pools", get(scrape_pools))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/status/flags", get(status_flags))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/tsdb", get(tsdb_status))
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin_delete).put(admin_delete),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin_clean).put(admin_clean),
        )
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin_snapshot).put(admin_snapshot),
        )
}

/// Why a request failed, with Prometheus's `errorType` and status code.
#[derive(Debug)]
pub enum ApiError {
    BadData(String),
    /// `unavailable` (Prometheus answers disabled admin APIs with it, HTTP 500).
    Unavailable(String),
    Execution(String),
    Internal(String),
    /// `timeout` (HTTP 503), as Prometheus answers a query past its deadline.
    Timeout(String),
    /// `not_found` (HTTP 404).
    NotFound(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, kind, msg) = match self {
            ApiError::BadData(m) => (StatusCode::BAD_REQUEST, "bad_data", m),
            ApiError::Unavailable(m) => (StatusCode::INTERNAL_SERVER_ERROR, "unavailable", m),
            ApiError::Execution(m) => (StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
            ApiError::Timeout(m) => (StatusCode::SERVICE_UNAVAILABLE, "timeout", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
        };
        // Field order as Prometheus writes it.
        let body = format!(
            "{{\"status\":\"error\",\"errorType\":\"{kind}\",\"error\":{}}}",
            serde_json::to_string(&msg).unwrap_or_else(|_| "\"\"".into())
        );
        (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

pub(crate) fn ok_raw(data: String) -> Response {
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(&data);
    out.push('}');
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

pub(crate) fn ok(data: Json) -> Response {
    ok_raw(data.to_string())
}

/// Success with `warnings` (Prometheus puts them beside `data`).
pub(crate) fn ok_warn(data: Json, warnings: &[&str]) -> Response {
    if warnings.is_empty() {
        return ok(data);
    }
    let body = json!({"status": "success", "data": data, "warnings": warnings}).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Apply a request's `limit` (0 or absent: none) to a result list; the warning Prometheus
/// (and Grafana, which looks for it) uses when something was cut.
fn apply_limit(p: &Params, v: &mut Vec<Json>) -> Result<Vec<&'static str>, ApiError> {
    match parse_limit(p, "limit")? {
        Some(limit) if v.len() > limit => {
            v.truncate(limit);
            Ok(vec!["results truncated due to limit"])
        }
        _ => Ok(vec![]),
    }
}

/// A `limit`-style parameter: a positive number, or `None` for absent, 0 or negative (Prometheus
/// reads those as "no limit").
pub(crate) fn parse_limit(p: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            Ok(_) => Ok(None),
            Err(_) => Err(ApiError::BadData(format!(
                "invalid parameter \"{name}\": {v:?} is not a number"
            ))),
        },
    }
}

/// Parameters from the query string and, for form POSTs, the body; repeated keys kept.
#[derive(Clone)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from(
        q: Option<String>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, ApiError> {
        let mut v: Vec<(String, String)> = match q {
            Some(q) => serde_urlencoded::from_str(&q)
                .map_err(|e| ApiError::BadData(format!("invalid query string: {e}")))?,
            None => Vec::new(),
        };
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form && !body.is_empty() {
            let b: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| ApiError::BadData(format!("invalid form body: {e}")))?;
            v.extend(b);
        }
        Ok(Params(v))
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn time(&self, k: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(k) {
            None => Ok(default),
            Some(s) => parse_time(s)
                .map_err(|e| ApiError::BadData(format!("invalid parameter \"{k}\": {e}"))),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parse the `query` parameter on a blocking thread: a long query (up to the parser's limits,
/// see `vigil_promql::limits`) must not hold up an async worker, which also drives scrapes.
pub(crate) async fn parse_expr(q: Option<&str>) -> Result<vigil_promql::Expr, ApiError> {
    let q = q.ok_or_else(|| ApiError::BadData("invalid parameter \"query\": unknown position: parse error: no expression found in input".into()))?;
    // Short queries are parsed here, unless they compile regexes (see `parse_matchers_off`).
    if q.len() < 4096 && !has_regex(q) {
        return parse_now(q);
    }
    let q = q.to_string();
    tokio::task::spawn_blocking(move || parse_now(&q))
        .await
        .map_err(|e| ApiError::Internal(format!("query parsing failed: {e}")))?
}

fn parse_now(q: &str) -> Result<vigil_promql::Expr, ApiError> {
    vigil_promql::parse(q)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"query\": {e}")))
}

/// Evaluate on the query pool (low-priority threads, one query per core: see
/// [`crate::query_pool`]) under a `--query.max-concurrency` slot, with the deadline of
/// `--query.timeout` or the request's shorter `timeout`; the answer's JSON is written there too.
async fn evaluate(
    s: &Arc<AppState>,
    p: &Params,
    run: impl FnOnce(
        &vigil_promql::Engine,
        &dyn vigil_storage::Storage,
    ) -> Result<vigil_promql::QueryResult, vigil_promql::EvalError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    let mut timeout = s.query_timeout;
    if let Some(t) = p.get("timeout") {
        let ms = parse_duration_param(t)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"timeout\": {e}")))?;
        timeout = timeout.min(std::time::Duration::from_millis(ms.max(0) as u64));
    }
    // The deadline counts from the request, queueing included (as Prometheus); the slot
    // moves into the evaluation, so a client that goes away does not free it early.
    let mut engine = s.engine.with_timeout(timeout);
    // Any `stats` value asks for statistics (as Prometheus); `all` also for the samples of
    // each step, which the engine gives with `promql-per-step-stats` on.
    engine.stats = match p.get("stats") {
        None | Some("") => vigil_promql::StatsLevel::Off,
        Some("all") => vigil_promql::StatsLevel::PerStep,
        Some(_) => vigil_promql::StatsLevel::Totals,
    };
    let asked = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let slot = match tokio::time::timeout_at(deadline, s.query_gate.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(ApiError::Internal(e.to_string())),
        Err(_) => {
            return Err(ApiError::Timeout("query timed out in query queue".into()));
        }
    };
    let storage = s.queryable.clone();
    let body = s
        .query_pool
        .run(move || {
            let _slot = slot;
            let queued = asked.elapsed();
            run(&engine, storage.as_ref()).map(|r| query_response_body(&r, queued, asked))
        })
        .await
        .ok_or_else(|| ApiError::Internal("query evaluation panicked".into()))?
        .map_err(|e| match e {
            vigil_promql::EvalError::Timeout => ApiError::Timeout(e.to_string()),
            vigil_promql::EvalError::BadQuery(m) => {
                ApiError::BadData(format!("invalid parameter \"query\": {m}"))
            }
            other => ApiError::Execution(other.to_string()),
        })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A query's `data`, with `warnings` and `infos` beside it when the engine raised any (as
/// Prometheus 3; Grafana shows both).
fn query_response_body(
    r: &vigil_promql::QueryResult,
    queued: std::time::Duration,
    asked: std::time::Instant,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":\"success\",\"data\":");
    let exec = ExecTimes {
        queue_s: queued.as_secs_f64(),
        total_s: asked.elapsed().as_secs_f64(),
    };
    write_query_data_with(&mut out, &r.value, r.stats.as_ref().map(|s| (s, &exec)));
    for (key, list) in [("warnings", &r.warnings), ("infos", &r.infos)] {
        if !list.is_empty() {
            out.push_str(&format!(",\"{key}\":"));
            out.push_str(&serde_json::to_string(list).unwrap_or_else(|_| "[]".into()));
        }
    }
    out.push('}');
    out
}

async fn query(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let expr = parse_expr(p.get("query")).await?;
    let t = p.time("time", now_ms())?;
    evaluate(&s, &p, move |e, st| e.instant_query(st, &expr, t)).await
}

/// Points a range query may return per series, as Prometheus limits it.
const MAX_POINTS: i64 = 11_000;

async fn query_range(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let start = p.time("start", i64::MIN).and_then(|t| {
        if t == i64::MIN {
            Err(ApiError::BadData(
                "invalid parameter \"start\": cannot parse \"\" to a valid timestamp".into(),
            ))
        } else {
            Ok(t)
        }
    })?;
    let end = p.time("end", i64::MIN).and_then(|t| {
        if t == i64::MIN {
            Err(ApiError::BadData(
                "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
            ))
        } else {
            Ok(t)
        }
    })?;
    if end < start {
        return Err(ApiError::BadData(
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ));
    }
    let step = match p.get("step") {
        Some(st) => parse_duration_param(st)
            .map_err(|e| ApiError::BadData(format!("invalid parameter \"step\": {e}")))?,
        None => {
            return Err(ApiError::BadData(
                "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
            ));
        }
    };
    if step <= 0 {
        return Err(ApiError::BadData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into()));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::BadData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into()));
    }
    let expr = parse_expr(p.get("query")).await?;
    // Prometheus rejects a range query of a non-instant expression as bad data.
    use vigil_promql::ast::ValueType;
    let vt = expr.value_type();
    if vt != ValueType::Scalar && vt != ValueType::Vector {
        return Err(ApiError::BadData(format!(
            "invalid expression type {:?} for range query, must be Scalar or instant Vector",
            vt.name()
        )));
    }
    evaluate(&s, &p, move |e, st| {
        e.range_query(st, &expr, start, end, step)
    })
    .await
}

pub(crate) fn labels_json(l: &vigil_model::Labels) -> Json {
    Json::Object(
        l.iter()
            .map(|x| (x.name.to_string(), Json::String(x.value.to_string())))
            .collect(),
    )
}

/// A label set as a JSON object, written from the set itself (no intermediate map).
struct LabelsJson<'a>(&'a vigil_model::Labels);

impl serde::Serialize for LabelsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for l in self.0.iter() {
            m.serialize_entry(l.name, l.value)?;
        }
        m.end()
    }
}

/// One active target as `/api/v1/targets` gives it (keys in the order vigil has always
/// written them, sorted).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveTargetJson<'a> {
    discovered_labels: LabelsJson<'a>,
    global_url: String,
    health: &'static str,
    labels: LabelsJson<'a>,
    last_error: &'a str,
    last_scrape: String,
    last_scrape_duration: f64,
    scrape_interval: String,
    scrape_pool: &'a str,
    scrape_timeout: String,
    scrape_url: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DroppedTargetJson<'a> {
    discovered_labels: LabelsJson<'a>,
    scrape_pool: &'a str,
}

/// Each target is written straight into the answer: with ten thousand targets, building a
/// JSON tree first took about 12 KB per target at once, the largest part of the server's peak
/// memory while a page or a tool polled the list.
async fn targets(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let pool = p.get("scrapePool");
    let snap = s.scrape.targets();
    let show_active = state == "any" || state == "active";
    let show_dropped = state == "any" || state == "dropped";
    let host = s.external_host();
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    out.push(b'{');
    let mut first_key = true;
    if show_active {
        sep(&mut out, &mut first_key);
        out.extend_from_slice(b"\"activeTargets\":[");
        let mut ts = snap.active;
        ts.sort_by(|a, b| (&a.pool, &a.target.labels).cmp(&(&b.pool, &b.target.labels)));
        let mut first = true;
        for t in ts.iter().filter(|t| pool.is_none_or(|p| p == t.pool)) {
            let st = t.status.lock().clone();
            let public = t.target.public_labels();
            sep(&mut out, &mut first);
            write(
                &mut out,
                &ActiveTargetJson {
                    discovered_labels: LabelsJson(&t.target.discovered),
                    global_url: global_url(&t.target.url, &host),
                    health: st.health.as_str(),
                    labels: LabelsJson(&public),
                    last_error: &st.last_error,
                    last_scrape: st
                        .last_scrape
                        .map(format_rfc3339)
                        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                    last_scrape_duration: st.last_scrape_duration.as_secs_f64(),
                    scrape_interval: vigil_config::format_duration(t.target.interval),
                    scrape_pool: &t.pool,
                    scrape_timeout: vigil_config::format_duration(t.target.timeout),
                    scrape_url: &t.target.url,
                },
            );
        }
        out.push(b']');
    }
    if show_dropped {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (p, _) in &snap.dropped {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        sep(&mut out, &mut first_key);
        out.extend_from_slice(b"\"droppedTargetCounts\":");
        write(&mut out, &counts);
        out.extend_from_slice(b",\"droppedTargets\":[");
        let mut first = true;
        for (p, d) in snap
            .dropped
            .iter()
            .filter(|(p, _)| pool.is_none_or(|x| x == p))
        {
            sep(&mut out, &mut first);
            // scrapePool as current Prometheus gives it (2.42 had only the labels).
            write(
                &mut out,
                &DroppedTargetJson {
                    discovered_labels: LabelsJson(&d.discovered),
                    scrape_pool: p,
                },
            );
        }
        out.push(b']');
    }
    out.push(b'}');
    let data = String::from_utf8(out).map_err(|e| ApiError::Internal(format!("targets: {e}")))?;
    let warnings = discovery_warnings(&s, pool);
    if warnings.is_empty() {
        return Ok(ok_raw(data));
    }
    let mut body = String::with_capacity(data.len() + 256);
    body.push_str("{\"status\":\"success\",\"data\":");
    body.push_str(&data);
    body.push_str(",\"warnings\":");
    body.push_str(&Json::from(warnings).to_string());
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Why a job may have fewer targets than it should, for the target and service discovery
/// pages (in the answer's `warnings`, which Prometheus's API clients pass on): discovery
/// kinds vigil does not run, and providers whose last attempt failed (a Kubernetes watch
/// refused, a file that does not parse). Without this a job whose discovery fails reads as
/// one that found nothing.
pub(crate) fn discovery_warnings(s: &AppState, pool: Option<&str>) -> Vec<String> {
    let cfg = s.config.read().clone();
    // The job quoted as JSON quotes it, so the pages match a warning to its job by the same
    // text (`scrape job "<name>":`).
    let quoted = |job: &str| Json::from(job).to_string();
    let mut out = Vec::new();
    for sc in cfg
        .scrape_configs
        .iter()
        .filter(|sc| pool.is_none_or(|p| p == sc.job_name))
    {
        for kind in &sc.unsupported_sd_configs {
            out.push(format!(
                "scrape job {}: {kind} is not supported by vigil, so it discovers no targets",
                quoted(&sc.job_name)
            ));
        }
    }
    for p in s.discovery_health.problems() {
        if pool.is_some_and(|x| x != p.job) {
            continue;
        }
        out.push(format!(
            "scrape job {}: {} ({}): {} (since {})",
            quoted(&p.job),
            p.provider,
            p.part,
            p.error,
            format_rfc3339(p.since)
        ));
    }
    out
}

/// A comma before every element but the first.
fn sep(out: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
}

fn write<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(out, v);
}

/// The scrape URL with a loopback host replaced by this server's host name, as Prometheus's
/// `globalUrl`.
fn global_url(url: &str, host: &str) -> String {
    for lo in ["localhost", "127.0.0.1", "[::1]"] {
        if let Some(i) = url.find(&format!("://{lo}")) {
            return format!("{}://{}{}", &url[..i], host, &url[i + 3 + lo.len()..]);
        }
    }
    url.to_string()
}

async fn scrape_pools(State(s): St) -> Response {
    ok(json!({"scrapePools": s.scrape.pool_names()}))
}

/// Whether PromQL text may hold a regex matcher (`=~` or `!~`, perhaps inside a string too:
/// only a hint of where to parse it).
pub(crate) fn has_regex(text: &str) -> bool {
    text.contains("=~") || text.contains("!~")
}

/// [`parse_matchers`] on a blocking thread when a set has a regex, or the sets are many or
/// long: compiling a regex may take tens of milliseconds (a large one, up to the storage's
/// bound), and parsing megabytes of sets as long, which an async worker, also driving
/// scrapes, must not spend.
pub(crate) async fn parse_matchers_off(sets: Vec<&str>) -> Result<Vec<Vec<Matcher>>, ApiError> {
    // Short plain sets are parsed here; many or long ones (a 10 MiB body of `match[]=up`)
    // are as much work as a long query, which is parsed off the workers too.
    let total: usize = sets.iter().map(|m| m.len()).sum();
    if total < 4096 && sets.len() <= 64 && !sets.iter().any(|m| has_regex(m)) {
        return parse_matchers(&sets);
    }
    let owned: Vec<String> = sets.iter().map(|m| m.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        parse_matchers(&refs)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("matcher parsing failed: {e}")))?
}

pub(crate) fn parse_matchers(sets: &[&str]) -> Result<Vec<Vec<Matcher>>, ApiError> {
    sets.iter()
        .map(|m| match vigil_promql::parse(m).as_mut() {
            Ok(vigil_promql::Expr::VectorSelector(sel)) => Ok(std::mem::take(&mut sel.matchers)),
            Ok(_) => Err(ApiError::BadData(format!(
                "invalid parameter \"match[]\": {m:?} is not a vector selector"
            ))),
            Err(e) => Err(ApiError::BadData(format!(
                "invalid parameter \"match[]\": {e}"
            ))),
        })
        .collect()
}

pub(crate) fn range_params(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((p.time("start", i64::MIN / 2)?, p.time("end", i64::MAX / 2)?))
}

impl From<vigil_storage::StorageError> for ApiError {
    fn from(e: vigil_storage::StorageError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// The union of `f` over the `match[]` sets (all series when there are none), sorted.
pub(crate) fn union_over(
    sets: &[Vec<Matcher>],
    f: impl Fn(&[Matcher]) -> Result<Vec<String>, ApiError>,
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    if sets.is_empty() {
        out.extend(f(&[])?);
    }
    for m in sets {
        out.extend(f(m)?);
    }
    // One sort (next to free on the sorted answer of a single call), not a set's insert per
    // name or value.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

async fn labels(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let (start, end) = range_params(&p)?;
    let sets = parse_matchers_off(p.all("match[]")).await?;
    let st = s.queryable.clone();
    on_pool(&s, move |deadline| {
        let qr = st.querier(start, end)?;
        let mut v: Vec<Json> = union_over(&sets, |m| {
            deadline.check()?;
            Ok(qr.label_names(m)?)
        })?
        .into_iter()
        .map(Json::String)
        .collect();
        let w = apply_limit(&p, &mut v)?;
        Ok(ok_warn(Json::Array(v), &w))
    })
    .await
}

/// Storage reads of the metadata endpoints (series, label names and values, search, TSDB
/// status) are as heavy as a query when they match every series, so they run as queries do:
/// on the query pool (never on the async workers, which drive scrapes), under a
/// `--query.max-concurrency` slot, and within `--query.timeout`, queueing included. `f` is
/// given the deadline to check where it walks: series every 1,024 series, search every
/// 1,024 candidates, label names and values between `match[]` sets; TSDB status (short
/// holds of the head's lock) only before it starts. A burst of them waits its turn and
/// gives up in the queue rather than piling up work.
pub(crate) async fn on_pool(
    s: &AppState,
    f: impl FnOnce(Deadline) -> Result<Response, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    run_gated(
        &s.query_gate,
        RunOn::Pool(&s.query_pool),
        s.query_timeout,
        f,
    )
    .await
}

/// Where [`run_gated`] runs its work.
pub(crate) enum RunOn<'a> {
    /// On the query pool's threads.
    Pool(&'a crate::query_pool::QueryPool),
    /// On a thread of its own, named so, at the queries' priority: for work that must not
    /// queue behind queries (federation, which a federating server scrapes).
    OwnThread(&'static str),
}

/// [`on_pool`]'s work: a slot of `gate` within `timeout`, then `f` where `on` says, given
/// the deadline, which it has not passed when it starts.
pub(crate) async fn run_gated<T: Send + 'static>(
    gate: &Arc<tokio::sync::Semaphore>,
    on: RunOn<'_>,
    timeout: std::time::Duration,
    f: impl FnOnce(Deadline) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let deadline = Deadline(std::time::Instant::now() + timeout);
    let slot = match tokio::time::timeout(timeout, gate.clone().acquire_owned()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(ApiError::Internal(e.to_string())),
        Err(_) => return Err(ApiError::Timeout("request timed out in query queue".into())),
    };
    let work = move || {
        // The slot is the evaluation's, so a client that goes away does not free it early.
        let _slot = slot;
        deadline.check()?;
        f(deadline)
    };
    let done = match on {
        RunOn::Pool(pool) => pool.run(work).await,
        RunOn::OwnThread(name) => crate::query_pool::run_on_own_thread(name, work).await,
    };
    done.unwrap_or_else(|| Err(ApiError::Internal("request handler panicked".into())))
}

/// When a request run by [`on_pool`] must have answered (`--query.timeout` after it came).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline(pub(crate) std::time::Instant);

impl Deadline {
    /// A `timeout` error once the deadline has passed.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        if std::time::Instant::now() >= self.0 {
            Err(ApiError::Timeout("request timed out".into()))
        } else {
            Ok(())
        }
    }
}

/// Prometheus 3's `U__` escaping of label names in URL paths (Grafana uses it): `_XX_` is the
/// code point XX in hex, `__` an underscore; other names pass unchanged.
fn unescape_label_name(n: &str) -> String {
    vigil_model::names::unescape_name(n, vigil_model::names::NameEscaping::Values).into_owned()
}

async fn label_values(
    State(s): St,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let name = unescape_label_name(&name);
    if !vigil_model::names::NameValidation::Utf8.label_name_ok(&name) {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let (start, end) = range_params(&p)?;
    let sets = parse_matchers_off(p.all("match[]")).await?;
    let st = s.queryable.clone();
    on_pool(&s, move |deadline| {
        let qr = st.querier(start, end)?;
        let mut v: Vec<Json> = union_over(&sets, |m| {
            deadline.check()?;
            Ok(qr.label_values(&name, m)?)
        })?
        .into_iter()
        .map(Json::String)
        .collect();
        let w = apply_limit(&p, &mut v)?;
        Ok(ok_warn(Json::Array(v), &w))
    })
    .await
}

async fn series(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let sets = parse_matchers_off(p.all("match[]")).await?;
    if sets.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = range_params(&p)?;
    let st = s.queryable.clone();
    on_pool(&s, move |deadline| {
        let qr = st.querier(start, end)?;
        let mut all = std::collections::BTreeSet::new();
        for m in &sets {
            // Matching every series is a long walk: read lazily (each series decoded as the
            // merge reaches it), the deadline checked as it goes.
            for (i, series) in qr.select_shard(m, 0, 1)?.enumerate() {
                if i % 1024 == 1023 {
                    deadline.check()?;
                }
                all.insert(series.labels);
            }
        }
        let mut v: Vec<Json> = all.iter().map(labels_json).collect();
        let from_storage = qr.warnings();
        let mut w: Vec<&str> = apply_limit(&p, &mut v)?;
        w.extend(from_storage.iter().map(String::as_str));
        Ok(ok_warn(Json::Array(v), &w))
    })
    .await
}

/// The running config, re-serialised with secrets masked; its warnings (sections vigil does
/// not carry out, unsupported discovery kinds) beside it.
async fn status_config(State(s): St) -> Response {
    let cfg = s.config.read().clone();
    let w: Vec<&str> = cfg.warnings.iter().map(String::as_str).collect();
    ok_warn(json!({"yaml": cfg.to_masked_yaml()}), &w)
}

async fn status_flags(State(s): St) -> Response {
    let m: serde_json::Map<String, Json> = s
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    ok(Json::Object(m))
}

/// Grafana reads `version` to choose features, so it is the Prometheus API level vigil
/// follows; vigil's own version is `vigilVersion` (what `vigil --version` prints), and
/// `versionNote` says so in the answer itself.
async fn buildinfo() -> Response {
    ok(json!({
        "version": PROMETHEUS_API_VERSION,
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "vigil",
        "buildUser": "vigil",
        "buildDate": "",
        "goVersion": "none (vigil is written in Rust)",
        "vigilVersion": env!("CARGO_PKG_VERSION"),
        "versionNote": format!("version is the Prometheus API level vigil serves (Grafana reads it to pick features); vigil's own version is {}", env!("CARGO_PKG_VERSION")),
    }))
}

/// The Prometheus release whose HTTP API vigil serves, as `buildinfo` reports it.
pub const PROMETHEUS_API_VERSION: &str = "2.42.0";

async fn tsdb_status(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let limit = match p.get("limit") {
        None => 10,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::BadData("limit must be a positive number".into())),
        },
    };
    // A walk over the whole head: on the query pool, never on the runtime's threads, which
    // also run the scrapes.
    let st = s.clone();
    on_pool(&s, move |_| Ok(ok((st.tsdb_status)(limit)))).await
}

fn admin(s: &AppState) -> Result<std::sync::Arc<dyn crate::Admin>, ApiError> {
    s.admin
        .clone()
        .ok_or_else(|| ApiError::Unavailable("admin APIs disabled".into()))
}

/// An admin operation (a deletion rebuilding series, a snapshot writing every block) off the
/// runtime's threads, which also drive the scrapes; on the blocking pool, not the queries'
/// low-priority one, since it holds the storage's locks while it runs.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("admin task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn admin_delete(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = admin(&s)?;
    let p = Params::from(q, &headers, &body)?;
    let sets = parse_matchers_off(p.all("match[]")).await?;
    if sets.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = range_params(&p)?;
    blocking(move || a.delete_series(&sets, start, end)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn admin_clean(State(s): St) -> Result<Response, ApiError> {
    let a = admin(&s)?;
    blocking(move || a.clean_tombstones()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn admin_snapshot(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let a = admin(&s)?;
    let p = Params::from(q, &headers, &body)?;
    let skip_head = matches!(p.get("skip_head"), Some("true") | Some("1"));
    let name = blocking(move || a.snapshot(skip_head)).await?;
    Ok(ok(json!({ "name": name })))
}

/// Prometheus's runtime information with vigil's real values. The Go runtime's fields
/// (`goroutineCount`, `GOMAXPROCS`, `GOGC`, `GODEBUG`, `GOMEMLIMIT`) are left out rather than
/// filled with numbers that mean nothing here.
async fn runtimeinfo(State(s): St) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let last = s.reload_status.last_success_ms.load(Relaxed);
    let last = UNIX_EPOCH + std::time::Duration::from_millis(last.max(0) as u64);
    ok(json!({
        "startTime": format_rfc3339(s.start_time),
        "CWD": std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default(),
        "hostname": s.external_host(),
        "serverTime": format_rfc3339(SystemTime::now()),
        "reloadConfigSuccess": s.reload_status.success.load(Relaxed),
        "lastConfigTime": format_rfc3339(last),
        "corruptionCount": (s.wal_corruptions)(),
        "storageRetention": *s.storage_retention.read(),
    }))
}

impl AppState {
    /// Host name for `globalUrl`.
    pub fn external_host(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into())
    }
}

#[cfg(test)]
mod tests {
    /// Metadata reads run as queries do: they wait for a `--query.max-concurrency` slot and
    /// give up in the queue at `--query.timeout`, and a read past its deadline stops.
    #[tokio::test]
    async fn metadata_reads_share_the_query_slots_and_deadline() {
        use std::time::Duration;
        let gate = Arc::new(tokio::sync::Semaphore::new(1));
        let pool = crate::query_pool::QueryPool::new(1, 0);
        let secs = Duration::from_secs(30);
        // A free slot: the read runs, before its deadline.
        let got = super::run_gated(&gate, super::RunOn::Pool(&pool), secs, |d| {
            d.check()?;
            Ok(7)
        })
        .await;
        assert_eq!(got.ok(), Some(7));
        assert_eq!(gate.available_permits(), 1, "the slot is given back");
        // Every slot taken (as by a long query): the read waits, and gives up at its timeout
        // without running.
        let held = gate.clone().acquire_owned().await.unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r2 = ran.clone();
        let got = super::run_gated(
            &gate,
            super::RunOn::Pool(&pool),
            Duration::from_millis(200),
            move |_| {
                r2.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            },
        )
        .await;
        match got {
            Err(ApiError::Timeout(m)) => assert!(m.contains("query queue"), "{m}"),
            other => panic!("expected a timeout in the queue, got {:?}", other.err()),
        }
        assert!(
            !ran.load(std::sync::atomic::Ordering::SeqCst),
            "ran without a slot"
        );
        // Freed, the next one runs.
        drop(held);
        let got = super::run_gated(&gate, super::RunOn::Pool(&pool), secs, |_| Ok(1)).await;
        assert_eq!(got.ok(), Some(1));
        // A read that outlives its deadline is stopped by its own check.
        let got = super::run_gated(
            &gate,
            super::RunOn::Pool(&pool),
            Duration::from_millis(50),
            |d| {
                std::thread::sleep(Duration::from_millis(100));
                d.check()?;
                Ok(())
            },
        )
        .await;
        assert!(matches!(got, Err(ApiError::Timeout(_))), "{:?}", got.err());
    }

    #[test]
    fn unescapes_grafana_label_names() {
        use super::unescape_label_name as u;
        assert_eq!(u("job"), "job");
        assert_eq!(u("U__job"), "job");
        assert_eq!(u("U__a__b"), "a_b");
        assert_eq!(u("U__a_2e_b"), "a.b");
        // Not a valid escape: the name stays as given.
        assert_eq!(u("U__a_2e"), "U__a_2e");
        assert_eq!(u("U__a_zz_"), "U__a_zz_");
    }

    use super::*;

    #[test]
    fn global_url_replaces_loopback() {
        assert_eq!(
            global_url("http://localhost:9090/metrics", "box"),
            "http://box:9090/metrics"
        );
        assert_eq!(
            global_url("http://10.0.0.1:9100/metrics", "box"),
            "http://10.0.0.1:9100/metrics"
        );
    }
}
