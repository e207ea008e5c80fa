//! `/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit` and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::AppState;

type St = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/-/quit", post(quit).put(quit))
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Redirect::to("/targets") }))
        .route("/targets", get(crate::lifecycle::targets_page))
}

async fn healthy() -> &'static str {
    "vigil Server is Healthy.\n"
}

async fn ready(State(s): St) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        "vigil Server is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

const LIFECYCLE_OFF: &str = "Lifecycle API is not enabled.";

async fn reload(State(s): St) -> Response {
    if !s.enable_lifecycle {
        return (StatusCode::FORBIDDEN, LIFECYCLE_OFF).into_response();
    }
    let (tx, rx) = oneshot::channel();
    if s.reload.send(tx).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response(),
    }
}

async fn quit(State(s): St) -> Response {
    if !s.enable_lifecycle {
        return (StatusCode::FORBIDDEN, LIFECYCLE_OFF).into_response();
    }
    let _ = s.quit.send(()).await;
    "Requesting termination... Goodbye!".into_response()
}

async fn metrics(State(s): St) -> Response {
    let body = (s.metrics)();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A plain server-rendered target list until the real UI lands (its own piece of work).
pub async fn targets_page(State(s): St) -> Response {
    let snap = s.scrape.targets();
    let mut ts = snap.active;
    ts.sort_by(|a, b| (&a.pool, &a.target.url).cmp(&(&b.pool, &b.target.url)));
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>vigil targets</title>\
         <style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.up{color:#070}.down{color:#b00}</style>\
         <h1>Targets</h1><table><tr><th>Pool</th><th>Endpoint</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Error</th></tr>",
    );
    for t in &ts {
        let st = t.status.lock().clone();
        let ago = st
            .last_scrape
            .and_then(|l| l.elapsed().ok())
            .map(|d| format!("{:.1}s ago", d.as_secs_f64()))
            .unwrap_or_else(|| "never".into());
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class={h}>{h}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.pool),
            esc(&t.target.url),
            esc(&t.target.public_labels().to_string()),
            ago,
            esc(&st.last_error),
            h = st.health.as_str(),
        ));
    }
    html.push_str("</table>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
