//! `/api/v1/search/{metric_names,label_names,label_values}` (`--enable-feature=search-api`):
//! current Prometheus's experimental search over names and values, for autocompletion. The
//! answer is newline-delimited JSON: batches of `{"results":[...]}`, then a trailer
//! `{"status":"success","has_more":...}`. Errors before any result are the API's usual JSON.
//!
//! Matching and scoring are [`crate::search_score`]'s. The candidates are what
//! `/api/v1/labels` and `/api/v1/label/<name>/values` would list for the same `match[]` and
//! time range; the whole answer (at most `limit` records, capped by
//! `--web.search.max-limit`) is written at once rather than flushed per batch.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;
use crate::api::{ApiError, Params, now_ms, on_pool, parse_matchers, union_over};
use crate::search_score::{Filter, FuzzAlg};

type St = State<Arc<AppState>>;

/// The feature's settings; `AppState::search_api` is `None` without the feature.
#[derive(Debug, Clone, Copy)]
pub struct SearchApi {
    /// `--web.search.max-limit`: the largest `limit` a request may ask for (0: no cap).
    pub max_limit: usize,
}

/// Default `limit` and `batch_size`, and the largest batch written as one line.
const DEFAULT_LIMIT: usize = 100;
const DEFAULT_BATCH: usize = 100;
const MAX_BATCH: usize = 1000;
/// Most `search[]` terms a request may give (each adds work per candidate).
const MAX_TERMS: usize = 32;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/search/metric_names",
            get(metric_names).post(metric_names),
        )
        .route(
            "/api/v1/search/label_names",
            get(label_names).post(label_names),
        )
        .route(
            "/api/v1/search/label_values",
            get(label_values).post(label_values),
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    ValueAsc,
    ValueDesc,
    ScoreDesc,
}

/// A request's parameters, validated as Prometheus validates them, in its order.
struct Request {
    start: i64,
    end: i64,
    sets: Vec<Vec<vigil_storage::Matcher>>,
    filter: Option<Filter>,
    include_score: bool,
    order: Order,
    limit: usize,
    batch: usize,
}

fn bad(msg: String) -> ApiError {
    ApiError::BadData(msg)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(p: &Params, name: &str, default: bool) -> Result<bool, ApiError> {
    match p.get(name) {
        None => Ok(default),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(v) => Err(bad(format!("invalid {name} {v:?}: must be boolean"))),
    }
}

/// A positive integer parameter, or the message naming it.
fn positive(p: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    let Some(v) = p.get(name) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        _ => Err(bad(format!(
            "invalid {name} {v:?}: must be a positive integer"
        ))),
    }
}

impl Request {
    fn parse(p: &Params, api: SearchApi, endpoint: &str, now: i64) -> Result<Request, ApiError> {
        let time = |name: &str, default: i64| match p.get(name) {
            None => Ok(default),
            Some(v) => crate::time::parse_time(v)
                .map_err(|e| bad(format!("invalid time value for '{name}': {e}"))),
        };
        let start = time("start", now - 3_600_000)?;
        let end = time("end", now)?;
        // Equal is a search at one instant.
        if end < start {
            return Err(bad(
                "end timestamp must not be before start timestamp".into()
            ));
        }
        let sets = parse_matchers(&p.all("match[]"))?;
        let terms = p.all("search[]");
        if terms.len() > MAX_TERMS {
            return Err(bad(format!(
                "too many search[] terms: got {}, maximum is {MAX_TERMS}",
                terms.len()
            )));
        }
        let threshold = match p.get("fuzz_threshold") {
            None => 0,
            Some(v) => match v.parse::<i64>() {
                Ok(n @ 0..=100) => n as u32,
                _ => {
                    return Err(bad(format!("invalid fuzz_threshold {v:?}: must be 0-100")));
                }
            },
        };
        let alg = match p.get("fuzz_alg") {
            None => FuzzAlg::JaroWinkler,
            Some(v) => FuzzAlg::parse(v).ok_or_else(|| {
                bad(format!(
                    "unsupported fuzz_alg {v:?}: must be one of [{}]",
                    FuzzAlg::NAMES.join(" ")
                ))
            })?,
        };
        let case_sensitive = parse_bool(p, "case_sensitive", true)?;
        let include_score = parse_bool(p, "include_score", false)?;
        let sort_by = p.get("sort_by");
        let sort_dir = p.get("sort_dir");
        if sort_dir.is_some() && sort_by.is_none() {
            return Err(bad("sort_dir is only valid when sort_by is set".into()));
        }
        if sort_dir.is_some() && sort_by == Some("score") {
            return Err(bad("sort_dir is not supported for sort_by=score".into()));
        }
        let sort_dir = sort_dir.unwrap_or("asc");
        if sort_dir != "asc" && sort_dir != "dsc" {
            return Err(bad(format!(
                "invalid sort_dir {sort_dir:?}: must be \"asc\" or \"dsc\""
            )));
        }
        if sort_by == Some("score") && terms.is_empty() {
            return Err(bad("sort_by=score requires search[] to be set".into()));
        }
        // A smaller operator cap lowers the default rather than failing every request.
        let mut limit = DEFAULT_LIMIT;
        if api.max_limit > 0 {
            limit = limit.min(api.max_limit);
        }
        if let Some(l) = positive(p, "limit")? {
            if api.max_limit > 0 && l > api.max_limit {
                return Err(bad(format!(
                    "limit {l} exceeds the configured maximum ({}, see --web.search.max-limit)",
                    api.max_limit
                )));
            }
            limit = l;
        }
        let batch = positive(p, "batch_size")?
            .unwrap_or(DEFAULT_BATCH)
            .min(limit)
            .min(MAX_BATCH);
        let order = match (sort_by, sort_dir) {
            (None, _) => Order::ValueAsc,
            (Some("alpha"), "dsc") => Order::ValueDesc,
            (Some("alpha"), _) => Order::ValueAsc,
            (Some("score"), _) => Order::ScoreDesc,
            (Some(other), _) => {
                return Err(bad(format!(
                    "invalid sort_by {other:?} for {endpoint}: must be \"alpha\" or \"score\""
                )));
            }
        };
        Ok(Request {
            start,
            end,
            sets,
            filter: Filter::new(&terms, threshold, alg, case_sensitive),
            include_score,
            order,
            limit,
            batch,
        })
    }

    /// The candidates (sorted by value) that match, ordered, at most `limit`, and whether
    /// more matched. By value, matching stops at the first past the limit; by score, every
    /// candidate is scored. Past `deadline` it gives up (fuzzy scores of many long values
    /// can take long), so a search holds a query thread no longer than a query may.
    fn select(
        &self,
        candidates: Vec<String>,
        deadline: std::time::Instant,
    ) -> Result<(Vec<(String, f64)>, bool), ApiError> {
        let wanted = match self.order {
            Order::ScoreDesc => usize::MAX,
            _ => self.limit.saturating_add(1),
        };
        let ordered: Box<dyn Iterator<Item = String>> = match self.order {
            Order::ValueDesc => Box::new(candidates.into_iter().rev()),
            _ => Box::new(candidates.into_iter()),
        };
        let mut hits: Vec<(String, f64)> = Vec::new();
        for (i, v) in ordered.enumerate() {
            if i % 1024 == 1023 && std::time::Instant::now() > deadline {
                return Err(ApiError::Timeout(
                    "search timed out (the query timeout, --query.timeout, passed)".into(),
                ));
            }
            let score = match &self.filter {
                None => Some(1.0),
                Some(f) => f.accept(&v),
            };
            if let Some(s) = score {
                hits.push((v, s));
                if hits.len() >= wanted {
                    break;
                }
            }
        }
        // A stable sort keeps the value order among equal scores.
        if self.order == Order::ScoreDesc {
            hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        }
        let more = hits.len() > self.limit;
        hits.truncate(self.limit);
        Ok((hits, more))
    }
}

/// Go's JSON rendering of a float (`1`, `0.325`, `1e-7`).
fn go_float(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The NDJSON answer: the records in batches (the first always written, so its warnings are
/// seen even with no result), then the trailer.
fn ndjson(records: &[String], batch: usize, warnings: &[String], more: bool) -> Response {
    let mut out = String::new();
    let mut chunks: Vec<&[String]> = records.chunks(batch.max(1)).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    for (i, chunk) in chunks.iter().enumerate() {
        out.push_str("{\"results\":[");
        out.push_str(&chunk.join(","));
        out.push(']');
        if i == 0 && !warnings.is_empty() {
            let w: Vec<String> = warnings.iter().map(|w| json_str(w)).collect();
            out.push_str(",\"warnings\":[");
            out.push_str(&w.join(","));
            out.push(']');
        }
        out.push_str("}\n");
    }
    out.push_str(&format!("{{\"status\":\"success\",\"has_more\":{more}}}\n"));
    (
        [(header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8")],
        out,
    )
        .into_response()
}

fn score_field(r: &Request, score: f64) -> String {
    if r.include_score {
        format!(",\"score\":{}", go_float(score))
    } else {
        String::new()
    }
}

/// The parameters every endpoint shares, checked first as Prometheus checks them.
/// `match[]` sets with a regex are parsed on a blocking thread (see
/// `api::parse_matchers_off`), the other parameters with them so their errors keep their order.
async fn common(s: &AppState, p: &Params, endpoint: &'static str) -> Result<Request, ApiError> {
    let api = s
        .search_api
        .ok_or_else(|| ApiError::Unavailable("search API disabled".into()))?;
    if !p.all("match[]").iter().any(|m| crate::api::has_regex(m)) {
        return Request::parse(p, api, endpoint, now_ms());
    }
    let p = p.clone();
    tokio::task::spawn_blocking(move || Request::parse(&p, api, endpoint, now_ms()))
        .await
        .map_err(|e| ApiError::Internal(format!("matcher parsing failed: {e}")))?
}

/// On the query pool: the candidates (`list` over each `match[]` set, their union), the
/// matches, and their records.
async fn run(
    s: &AppState,
    req: Request,
    list: impl Fn(
        &dyn vigil_storage::Querier,
        &[vigil_storage::Matcher],
    ) -> Result<Vec<String>, vigil_storage::StorageError>
    + Send
    + 'static,
    record: impl Fn(&Request, &str, f64) -> String + Send + 'static,
) -> Result<Response, ApiError> {
    let st = s.queryable.clone();
    on_pool(s, move |deadline| {
        let q = st.querier(req.start, req.end)?;
        let candidates = union_over(&req.sets, |m| {
            deadline.check()?;
            Ok(list(&*q, m)?)
        })?;
        let (hits, more) = req.select(candidates, deadline.0)?;
        let records: Vec<String> = hits.iter().map(|(v, sc)| record(&req, v, *sc)).collect();
        let mut warnings = q.warnings();
        warnings.sort();
        Ok(ndjson(&records, req.batch, &warnings, more))
    })
    .await
}

async fn metric_names(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let req = common(&s, &p, "metric_names").await?;
    let with_metadata = parse_bool(&p, "include_metadata", false)?;
    // The targets' metadata, read once per request, and only for a first record that wants it.
    let scrape = s.scrape.clone();
    let metadata: std::sync::OnceLock<Families> = std::sync::OnceLock::new();
    run(
        &s,
        req,
        |q, m| q.label_values("__name__", m),
        move |r, name, score| {
            let mut out = format!("{{\"name\":{}{}", json_str(name), score_field(r, score));
            let md = with_metadata
                .then(|| metadata.get_or_init(|| families(&scrape)))
                .and_then(|m| metadata_for(m, name));
            if let Some(md) = md {
                for (k, v) in [("type", md.0), ("help", &md.1), ("unit", &md.2)] {
                    if !v.is_empty() {
                        out.push_str(&format!(",\"{k}\":{}", json_str(v)));
                    }
                }
            }
            out.push('}');
            out
        },
    )
    .await
}

async fn label_names(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let req = common(&s, &p, "label_names").await?;
    run(
        &s,
        req,
        |q, m| q.label_names(m),
        |r, name, score| format!("{{\"name\":{}{}}}", json_str(name), score_field(r, score)),
    )
    .await
}

async fn label_values(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let req = common(&s, &p, "label_values").await?;
    let Some(label) = p.get("label").map(str::to_string) else {
        return Err(bad("missing required parameter \"label\"".into()));
    };
    run(
        &s,
        req,
        move |q, m| q.label_values(&label, m),
        |r, value, score| format!("{{\"value\":{}{}}}", json_str(value), score_field(r, score)),
    )
    .await
}

/// Each metric family's metadata over the active targets: the first seen of each type.
type Families = HashMap<String, Vec<(&'static str, String, String)>>;

fn families(scrape: &vigil_scrape::ScrapeManager) -> Families {
    let mut out: Families = HashMap::new();
    for t in scrape.targets().active {
        let md = t.status.lock().metadata.clone();
        for m in md.iter() {
            let list = out.entry(m.family.clone()).or_default();
            if !list.iter().any(|(k, _, _)| *k == m.kind) {
                list.push((m.kind, m.help.clone(), m.unit.clone()));
            }
        }
    }
    out
}

/// The metadata of the family a metric name belongs to: the family of that name, else the
/// name less its last `_suffix` when the family's type writes that suffix (never
/// `_created`, whose samples are timestamps).
fn metadata_for<'a>(
    families: &'a Families,
    name: &str,
) -> Option<&'a (&'static str, String, String)> {
    if let Some(first) = families.get(name).and_then(|l| l.first()) {
        return Some(first);
    }
    let (family, suffix) = name.rsplit_once('_')?;
    let allows = |kind: &str| match suffix {
        "total" => kind == "counter",
        "bucket" => matches!(kind, "histogram" | "gaugehistogram"),
        "sum" | "count" => matches!(kind, "histogram" | "gaugehistogram" | "summary"),
        "gsum" | "gcount" => kind == "gaugehistogram",
        "info" => kind == "info",
        _ => false,
    };
    families.get(family)?.iter().find(|m| allows(m.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::from(Some(q.into()), &HeaderMap::new(), &Bytes::new()).unwrap_or_else(|_| {
            panic!("bad query string {q}");
        })
    }

    fn parse(q: &str, max: usize) -> Result<Request, String> {
        Request::parse(
            &params(q),
            SearchApi { max_limit: max },
            "metric_names",
            10_000_000,
        )
        .map_err(|e| match e {
            ApiError::BadData(m) => m,
            _ => "not bad_data".into(),
        })
    }

    /// Each refusal with Prometheus's message.
    #[test]
    fn parameters_are_checked_as_prometheus_checks_them() {
        let err = |q: &str| parse(q, 10_000).err().unwrap_or_default();
        assert_eq!(
            err("start=20&end=10"),
            "end timestamp must not be before start timestamp"
        );
        assert_eq!(
            err(&"search[]=a&".repeat(33)),
            "too many search[] terms: got 33, maximum is 32"
        );
        assert_eq!(
            err("fuzz_threshold=101"),
            "invalid fuzz_threshold \"101\": must be 0-100"
        );
        assert_eq!(
            err("fuzz_alg=levenshtein"),
            "unsupported fuzz_alg \"levenshtein\": must be one of [jarowinkler subsequence]"
        );
        assert_eq!(
            err("case_sensitive=yes"),
            "invalid case_sensitive \"yes\": must be boolean"
        );
        assert_eq!(
            err("sort_dir=dsc"),
            "sort_dir is only valid when sort_by is set"
        );
        assert_eq!(
            err("sort_by=score&sort_dir=asc&search[]=a"),
            "sort_dir is not supported for sort_by=score"
        );
        assert_eq!(
            err("sort_by=score"),
            "sort_by=score requires search[] to be set"
        );
        assert_eq!(
            err("sort_by=cardinality"),
            "invalid sort_by \"cardinality\" for metric_names: must be \"alpha\" or \"score\""
        );
        assert_eq!(
            err("limit=0"),
            "invalid limit \"0\": must be a positive integer"
        );
        assert_eq!(
            err("limit=10001"),
            "limit 10001 exceeds the configured maximum (10000, see --web.search.max-limit)"
        );
        assert_eq!(
            err("batch_size=-1"),
            "invalid batch_size \"-1\": must be a positive integer"
        );
        // Defaults: the last hour, 100 records in batches of 100; a smaller cap lowers the
        // default limit; 0 is no cap; the batch is at most the limit and 1000.
        let r = parse("", 10_000).unwrap();
        assert_eq!(
            (r.start, r.end, r.limit, r.batch),
            (6_400_000, 10_000_000, 100, 100)
        );
        assert_eq!(parse("", 50).unwrap().limit, 50);
        assert_eq!(parse("limit=1000000", 0).unwrap().limit, 1_000_000);
        assert_eq!(parse("limit=5&batch_size=50", 0).unwrap().batch, 5);
        assert_eq!(parse("limit=5000&batch_size=5000", 0).unwrap().batch, 1000);
        // Checked in Prometheus's order: the first refusal is the one named.
        assert_eq!(
            err("limit=0&sort_by=bad"),
            "invalid limit \"0\": must be a positive integer"
        );
        assert_eq!(
            err("fuzz_threshold=x&sort_dir=dsc"),
            "invalid fuzz_threshold \"x\": must be 0-100"
        );
        assert_eq!(
            err("start=20&end=10&fuzz_alg=x"),
            "end timestamp must not be before start timestamp"
        );
        // Unknown parameters are ignored; equal start and end are one instant.
        assert!(parse("include_cardinality=true&start=5&end=5", 10).is_ok());
    }

    #[test]
    fn matches_are_ordered_limited_and_tell_if_more() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = names(&["go_goroutines", "go_threads", "process_open_fds", "up"]);
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let r = parse("search[]=go&search[]=fds&sort_by=score&limit=2", 0).unwrap();
        let (hits, more) = r.select(all.clone(), later).ok().unwrap();
        assert_eq!(
            hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            ["go_goroutines", "go_threads"]
        );
        assert!(more);
        let r = parse("sort_by=alpha&sort_dir=dsc", 0).unwrap();
        let (hits, more) = r.select(all.clone(), later).ok().unwrap();
        assert_eq!(hits[0].0, "up");
        assert!(!more);
        // By value, cut at the limit with more to come, descending too.
        let r = parse("search[]=o&limit=2&sort_by=alpha&sort_dir=dsc", 0).unwrap();
        let (hits, more) = r.select(all.clone(), later).ok().unwrap();
        assert_eq!(
            hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            ["process_open_fds", "go_threads"]
        );
        assert!(more);
        // Past its deadline a long search gives up with a timeout.
        let many: Vec<String> = (0..5000).map(|i| format!("m{i:05}")).collect();
        let r = parse("search[]=zz&fuzz_threshold=10", 0).unwrap();
        let past = std::time::Instant::now() - std::time::Duration::from_secs(1);
        assert!(matches!(r.select(many, past), Err(ApiError::Timeout(_))));
    }

    #[test]
    fn ndjson_batches_then_a_trailer() {
        let body = |r: Response| {
            let (parts, body) = r.into_parts();
            let bytes = futures_util_bytes(body);
            (parts.headers[header::CONTENT_TYPE].clone(), bytes)
        };
        let recs: Vec<String> = (0..5).map(|i| format!("{{\"name\":\"m{i}\"}}")).collect();
        let (ct, text) = body(ndjson(&recs, 2, &[], true));
        assert_eq!(ct, "application/x-ndjson; charset=utf-8");
        assert_eq!(
            text,
            "{\"results\":[{\"name\":\"m0\"},{\"name\":\"m1\"}]}\n{\"results\":[{\"name\":\"m2\"},{\"name\":\"m3\"}]}\n{\"results\":[{\"name\":\"m4\"}]}\n{\"status\":\"success\",\"has_more\":true}\n"
        );
        let (_, text) = body(ndjson(&[], 100, &["w".to_string()], false));
        assert_eq!(
            text,
            "{\"results\":[],\"warnings\":[\"w\"]}\n{\"status\":\"success\",\"has_more\":false}\n"
        );
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.325), "0.325");
        assert_eq!(go_float(1e-7), "1e-7");
    }

    fn futures_util_bytes(body: axum::body::Body) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let b = rt.block_on(axum::body::to_bytes(body, usize::MAX)).unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn metadata_follows_the_family_a_name_belongs_to() {
        let mut f = Families::new();
        f.insert(
            "http_requests".into(),
            vec![("counter", "Requests.".into(), String::new())],
        );
        f.insert(
            "latency_seconds".into(),
            vec![("histogram", "Latency.".into(), "seconds".into())],
        );
        assert_eq!(
            metadata_for(&f, "http_requests_total").unwrap().1,
            "Requests."
        );
        assert_eq!(
            metadata_for(&f, "latency_seconds_bucket").unwrap().0,
            "histogram"
        );
        assert!(metadata_for(&f, "latency_seconds_created").is_none());
        assert!(metadata_for(&f, "http_requests_bucket").is_none());
        assert!(metadata_for(&f, "up").is_none());
    }
}
