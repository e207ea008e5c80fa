//! Metadata and query-tooling endpoints: `/api/v1/metadata`, `/api/v1/targets/metadata`,
//! `/api/v1/query_exemplars`, `/api/v1/parse_query`, `/api/v1/format_query`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value as Json, json};

use crate::AppState;
use crate::api::{ApiError, Params, labels_json, ok, parse_expr, parse_limit};

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/parse_query", get(parse_query).post(parse_query))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/targets/relabel_steps", get(relabel_steps))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/dashboards", get(dashboards))
        .route("/api/v1/dashboards/{uid}", get(dashboard))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alertmanagers", get(alertmanagers))
}

/// The dashboards vigil renders (built in, then `--dashboards.dir`, re-read on each request so
/// an edited file shows on the next load), with any file that could not be read.
async fn dashboards(State(s): St) -> Result<Response, ApiError> {
    let (ds, errors) = load_dashboards(&s).await?;
    Ok(ok(json!({
        "dashboards": ds.iter().map(|d| d.summary()).collect::<Vec<_>>(),
        "errors": errors,
    })))
}

/// Every dashboard, read and parsed on a blocking thread: the files may be many and large,
/// and the async workers also drive scrapes.
async fn load_dashboards(
    s: &AppState,
) -> Result<(Vec<crate::dashboards::Dashboard>, Vec<String>), ApiError> {
    let (dir, providers) = (s.dashboards_dir.clone(), s.dashboards_provisioning.clone());
    tokio::task::spawn_blocking(move || {
        crate::dashboards::load_all(dir.as_deref(), providers.as_deref())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading dashboards failed: {e}")))
}

async fn dashboard(
    State(s): St,
    axum::extract::Path(uid): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (ds, _) = load_dashboards(&s).await?;
    let d = ds
        .into_iter()
        .find(|d| d.uid == uid)
        .ok_or_else(|| ApiError::NotFound(format!("dashboard {uid:?} not found")))?;
    Ok(ok(json!({"dashboard": d.json, "meta": d.summary()})))
}

/// The rule groups as Prometheus shows them, with its filters; configured parts that do not
/// run (unsupported Alertmanager discovery, SigV4) are named in `warnings`.
async fn rules(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let set = |name: &str| -> std::collections::HashSet<String> {
        p.all(name).into_iter().map(str::to_string).collect()
    };
    let filter = vigil_rules::api::Filter {
        kind: p.get("type").map(str::to_string),
        rule_name: set("rule_name[]"),
        rule_group: set("rule_group[]"),
        file: set("file[]"),
        matchers: crate::api::parse_matchers_off(p.all("match[]")).await?,
        group_limit: match (p.get("group_limit"), p.get("group_next_token")) {
            (None | Some(""), Some(t)) if !t.is_empty() => {
                return Err(ApiError::BadData(
                    "invalid parameter \"group_next_token\": group_limit needs to be present in order to paginate over the groups".into(),
                ));
            }
            (None | Some(""), _) => None,
            (Some(l), _) => match l.parse::<i32>() {
                Ok(n) if n > 0 => Some(n as usize),
                Ok(_) => {
                    return Err(ApiError::BadData(
                        "invalid parameter \"group_limit\": group_limit needs to be greater than 0"
                            .into(),
                    ));
                }
                Err(_) => {
                    return Err(ApiError::BadData(format!(
                        "invalid parameter \"group_limit\": group_limit needs to be a valid number: strconv.ParseInt: parsing {l:?}: invalid syntax"
                    )));
                }
            },
        },
        group_next_token: p
            .get("group_next_token")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        // Go's strconv.ParseBool.
        exclude_alerts: match p.get("exclude_alerts") {
            None | Some("") => false,
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
            Some(v) => {
                return Err(ApiError::BadData(format!(
                    "error converting exclude_alerts: strconv.ParseBool: parsing {v:?}: invalid syntax"
                )));
            }
        },
    };
    filter.check().map_err(ApiError::BadData)?;
    let groups = s.rules.groups();
    let mut w = unimplemented_warnings(&s);
    for p in s.rules.unmatched() {
        w.push(format!(
            "rule_files pattern {p:?} matches no file: no rules are loaded from it"
        ));
    }
    Ok(crate::api::ok_warn(
        vigil_rules::api::rules(&groups, &filter).map_err(ApiError::BadData)?,
        &w.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
}

async fn alerts(State(s): St) -> Response {
    let groups = s.rules.groups();
    let w = unimplemented_warnings(&s);
    crate::api::ok_warn(
        vigil_rules::api::alerts(&groups),
        &w.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

async fn alertmanagers(State(s): St) -> Response {
    let (active, dropped) = s.notifier.alertmanagers();
    let urls =
        |v: Vec<String>| -> Vec<Json> { v.into_iter().map(|u| json!({ "url": u })).collect() };
    ok(json!({
        "activeAlertmanagers": urls(active),
        "droppedAlertmanagers": urls(dropped),
    }))
}

/// Parts of alerting that are configured but not carried out (unsupported discovery, SigV4).
fn unimplemented_warnings(s: &AppState) -> Vec<String> {
    use vigil_config::Unimplemented as U;
    s.config
        .read()
        .unimplemented()
        .into_iter()
        .filter(|u| matches!(u, U::Alerting(_)))
        .map(|u| u.to_string())
        .collect()
}

/// Why a target has the labels it has (or was dropped): `relabel_configs` of `scrapePool`
/// applied one rule at a time to the discovered `labels` (a JSON object), as Prometheus 3's
/// endpoint: `{"steps": [{"rule", "output", "keep"}]}`, stopping at the rule that drops it.
async fn relabel_steps(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let pool = p
        .get("scrapePool")
        .ok_or_else(|| ApiError::BadData("no scrapePool parameter provided".into()))?;
    let raw = p
        .get("labels")
        .ok_or_else(|| ApiError::BadData("no labels parameter provided".into()))?;
    let given: BTreeMap<String, String> = serde_json::from_str(raw)
        .map_err(|e| ApiError::BadData(format!("invalid parameter \"labels\": {e}")))?;
    let cfg = s.config.read().clone();
    let sc = cfg
        .scrape_configs
        .iter()
        .find(|c| c.job_name == pool)
        .ok_or_else(|| ApiError::BadData(format!("scrape pool {pool:?} not found")))?;
    let mut lb = vigil_model::labels::LabelsBuilder::new();
    for (k, v) in &given {
        lb.set(k.clone(), v.clone());
    }
    let mut steps = Vec::new();
    for rule in &sc.relabel_configs {
        let keep = vigil_model::relabel::apply(&mut lb, rule);
        let output: serde_json::Map<String, Json> = lb
            .iter()
            .map(|l| (l.name.clone(), Json::String(l.value.clone())))
            .collect();
        steps.push(json!({
            "rule": {
                "source_labels": rule.source_labels,
                "separator": rule.separator,
                "regex": rule.regex.as_str(),
                "modulus": rule.modulus,
                "target_label": rule.target_label,
                "replacement": rule.replacement,
                "action": rule.action.as_str(),
            },
            "output": if keep { Json::Object(output) } else { json!({}) },
            "keep": keep,
        }));
        if !keep {
            break;
        }
    }
    Ok(ok(json!({ "steps": steps })))
}

/// `{metric: [{type, help, unit}]}`, each entry once, over every active target.
async fn metadata(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let max_metrics = parse_limit(&p, "limit")?;
    let per_metric = parse_limit(&p, "limit_per_metric")?;
    let only = p.get("metric").map(str::to_string);
    // A walk over every target's metadata: on a blocking thread, not an async worker, which
    // also drives scrapes.
    let scrape = s.scrape.clone();
    let data = tokio::task::spawn_blocking(move || {
        let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        for t in scrape.targets().active {
            let md = t.status.lock().metadata.clone();
            for m in md
                .iter()
                .filter(|m| only.as_ref().is_none_or(|o| *o == m.family))
            {
                let list = out.entry(m.family.clone()).or_default();
                if per_metric.is_some_and(|n| list.len() >= n) {
                    continue;
                }
                let entry = json!({"type": m.kind, "help": m.help, "unit": m.unit});
                if !list.contains(&entry) {
                    list.push(entry);
                }
            }
        }
        out.into_iter()
            .take(max_metrics.unwrap_or(usize::MAX))
            .map(|(k, v)| (k, Json::Array(v)))
            .collect::<serde_json::Map<String, Json>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("reading metadata failed: {e}")))?;
    Ok(ok(Json::Object(data)))
}

/// `[{target, metric?, type, help, unit}]` for the targets `match_target` selects.
async fn targets_metadata(State(s): St, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from(q, &HeaderMap::new(), &Bytes::new())?;
    let max = parse_limit(&p, "limit")?;
    let metric = p.get("metric");
    let matchers = match p.get("match_target") {
        None => Vec::new(),
        Some(m) => crate::api::parse_matchers_off(vec![m])
            .await
            .map_err(|_| ApiError::BadData(format!("invalid parameter \"match_target\": {m:?}")))?
            .remove(0),
    };
    let mut targets = s.scrape.targets().active;
    targets.sort_by(|a, b| (&a.pool, &a.target.labels).cmp(&(&b.pool, &b.target.labels)));
    let mut out = Vec::new();
    for t in &targets {
        let labels = t.target.public_labels();
        if !matchers
            .iter()
            .all(|m| m.matches(labels.get_or_empty(&m.name)))
        {
            continue;
        }
        let md = t.status.lock().metadata.clone();
        for m in md.iter().filter(|m| metric.is_none_or(|x| x == m.family)) {
            if max.is_some_and(|n| out.len() >= n) {
                break;
            }
            let mut e = json!({
                "target": labels_json(&labels),
                "type": m.kind,
                "help": m.help,
                "unit": m.unit,
            });
            // As Prometheus: the metric name is given only when not asked for one.
            if metric.is_none() {
                e["metric"] = json!(m.family);
            }
            out.push(e);
        }
    }
    Ok(ok(Json::Array(out)))
}

/// The exemplars of the series the query's selectors match, in `[start, end]`, as Prometheus
/// answers: per series its labels and its exemplars oldest first. Empty without
/// `--enable-feature=exemplar-storage` (nothing is stored); 204 No Content for a query
/// without selectors, as Prometheus.
async fn query_exemplars(
    State(s): St,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let (start, end) = crate::api::range_params(&p)?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start timestamp".into(),
        ));
    }
    let e = parse_expr(p.get("query")).await?;
    let sets: Vec<Vec<vigil_storage::Matcher>> = e
        .selectors()
        .into_iter()
        .map(|vs| vs.matchers.clone())
        .collect();
    if sets.is_empty() {
        // Prometheus has no data to answer with here, and says so with 204 No Content.
        return Ok(axum::response::IntoResponse::into_response(
            axum::http::StatusCode::NO_CONTENT,
        ));
    }
    let storage = s.queryable.clone();
    // On a normal-priority blocking thread, not the query pool: the walk holds the exemplar
    // ring's read lock, which commits wait for, so it must not be preempted by scrapes for
    // long. It is bounded by the ring's size (`storage.exemplars.max_exemplars`).
    let found = tokio::task::spawn_blocking(move || storage.exemplars(start, end, &sets))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(exemplars_json(&found))
}

/// Written as Prometheus writes it: values as strings, timestamps as seconds with up to three
/// decimals.
fn exemplars_json(found: &[vigil_storage::SeriesExemplars]) -> Response {
    use crate::json::{format_value, write_labels, write_str, write_timestamp};
    let mut out = String::from("[");
    for (i, se) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"seriesLabels\":");
        write_labels(&mut out, &se.series);
        out.push_str(",\"exemplars\":[");
        for (j, x) in se.exemplars.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"labels\":");
            write_labels(&mut out, &x.labels);
            out.push_str(",\"value\":");
            write_str(&mut out, &format_value(x.value));
            out.push_str(",\"timestamp\":");
            write_timestamp(&mut out, x.t);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push(']');
    crate::api::ok_raw(out)
}

async fn parse_query(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let e = parse_expr(p.get("query")).await?;
    // Large trees are written off the async workers, as they are parsed.
    let json = tokio::task::spawn_blocking(move || crate::ast_json::translate(&e))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(crate::api::ok_raw(json))
}

/// The query in canonical form, split over lines as Prometheus splits it where a part is longer
/// than 100 characters.
async fn format_query(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = Params::from(q, &headers, &body)?;
    let e = parse_expr(p.get("query")).await?;
    let text = tokio::task::spawn_blocking(move || vigil_promql::pretty::pretty(&e))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|err| ApiError::BadData(err.to_string()))?;
    Ok(ok(json!(text)))
}
