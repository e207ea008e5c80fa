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
        .route(
            "/",
            get(|State(s): St| async move { Redirect::to(&format!("{}/graph", s.external_path)) }),
        )
}

/// "Server" or "Agent", as Prometheus names itself in these answers.
fn mode(s: &AppState) -> &'static str {
    if s.agent { "Agent" } else { "Server" }
}

async fn healthy(State(s): St) -> String {
    format!("vigil {} is Healthy.\n", mode(&s))
}

async fn ready(State(s): St) -> Response {
    if s.ready.load(Ordering::Relaxed) {
        format!("vigil {} is Ready.\n", mode(&s)).into_response()
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
