//! Agent mode (`--agent`) in the web layer: what Prometheus's agent does not serve answers as
//! it answers (the query, metadata-of-data, rules, alerts and TSDB APIs: 422 "unavailable with
//! Prometheus Agent"), the pages that need local data lead to `/agent`, and `/agent` says
//! what the agent does and where to look.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::AppState;

/// API paths (after the route prefix) an agent refuses, as Prometheus's `wrapAgent` does;
/// `/federate` and remote read have no local data to serve either.
fn refused(path: &str) -> bool {
    const EXACT: [&str; 12] = [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/query_exemplars",
        "/api/v1/format_query",
        "/api/v1/parse_query",
        "/api/v1/labels",
        "/api/v1/series",
        "/api/v1/alertmanagers",
        "/api/v1/alerts",
        "/api/v1/rules",
        "/api/v1/status/tsdb",
        "/api/v1/read",
    ];
    EXACT.contains(&path)
        || path == "/federate"
        || path.starts_with("/api/v1/admin/tsdb/")
        || (path.starts_with("/api/v1/label/") && path.ends_with("/values"))
}

/// UI pages that show local data: an agent has none, so they lead to `/agent`.
fn data_page(path: &str) -> bool {
    matches!(
        path,
        "/" | "/graph" | "/query" | "/alerts" | "/rules" | "/tsdb-status" | "/dashboards"
    ) || path.starts_with("/d/")
}

/// The layer over the whole app in agent mode.
pub async fn guard(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !s.agent {
        return next.run(req).await;
    }
    // `nest` has already taken the route prefix off.
    let path = req.uri().path();
    // The search endpoints answer that they are off first, as Prometheus's do.
    let search = s.search_api.is_some()
        && matches!(
            path,
            "/api/v1/search/metric_names"
                | "/api/v1/search/label_names"
                | "/api/v1/search/label_values"
        );
    if refused(path) || search {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"error","errorType":"execution","error":"unavailable with Prometheus Agent"}"#,
        )
            .into_response();
    }
    if data_page(path) {
        return Redirect::to(&format!("{}/agent", s.external_path)).into_response();
    }
    next.run(req).await
}

/// `/agent`: what this process does, and links to the pages that still apply.
pub async fn page(State(s): State<Arc<AppState>>) -> Response {
    if !s.agent {
        return StatusCode::NOT_FOUND.into_response();
    }
    let p = &s.external_path;
    let title = html_escape(&s.page_title);
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>\
         <h1>vigil agent</h1>\
         <p>This vigil runs in agent mode: it discovers and scrapes targets and sends every \
         sample by remote write. Samples are kept in a write-ahead log only until they are \
         sent; there are no local queries, rules or alerts.</p>\
         <ul><li><a href=\"{p}/targets\">Targets</a></li>\
         <li><a href=\"{p}/service-discovery\">Service discovery</a></li>\
         <li><a href=\"{p}/status\">Status</a> (remote write queues)</li>\
         <li><a href=\"{p}/config\">Configuration</a></li>\
         <li><a href=\"{p}/flags\">Flags</a></li></ul></body></html>"
    ))
    .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
