//! A to-do list web app instrumented with the `prometheus-client` crate, standing in for
//! chapter 14's .NET todo-list app: the metric names are the ones its dashboard queries
//! (`http_requests_in_progress`, `http_request_duration_seconds` by code and method,
//! `todo_tasks_created_total`, `process_cpu_seconds_total`, and `dotnet_total_memory_bytes`,
//! which here reports the process's resident memory).
//!
//! `cargo run -p vigil --example todo-app -- [LISTEN]` (default `127.0.0.1:8080`): `GET /` lists
//! items, `POST /new` with a form field `item` adds one, `GET /metrics` serves the exposition.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Form, Request, State};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeMethod {
    code: String,
    method: String,
}

struct App {
    items: Mutex<Vec<String>>,
    registry: Registry,
    in_progress: Family<Method, Gauge>,
    duration: Family<CodeMethod, Histogram>,
    created: Counter,
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    memory: Gauge,
}

impl App {
    fn new() -> App {
        let mut registry = Registry::default();
        let in_progress = Family::<Method, Gauge>::default();
        let duration = Family::<CodeMethod, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        let created = Counter::default();
        let cpu_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        let memory = Gauge::default();
        registry.register(
            "http_requests_in_progress",
            "Requests being served",
            in_progress.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request",
            duration.clone(),
        );
        registry.register(
            "todo_tasks_created",
            "Items added to the list",
            created.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "CPU time used by the process",
            cpu_seconds.clone(),
        );
        registry.register(
            "dotnet_total_memory_bytes",
            "Resident memory of the process (named as the chapter's .NET app names its memory, so its dashboard works)",
            memory.clone(),
        );
        App {
            items: Mutex::new(Vec::new()),
            registry,
            in_progress,
            duration,
            created,
            cpu_seconds,
            memory,
        }
    }

    /// CPU and memory from /proc/self, read when scraped.
    fn sample_process(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let secs = ticks / 100.0;
            let now = self.cpu_seconds.get();
            if secs > now {
                self.cpu_seconds.inc_by(secs - now);
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let pages: i64 = statm
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.memory.set(pages * 4096);
        }
    }
}

async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/metrics" {
        return next.run(req).await;
    }
    let method = req.method().as_str().to_string();
    let gauge = app
        .in_progress
        .get_or_create(&Method {
            method: method.clone(),
        })
        .clone();
    gauge.inc();
    let t = Instant::now();
    let resp = next.run(req).await;
    gauge.dec();
    app.duration
        .get_or_create(&CodeMethod {
            code: resp.status().as_u16().to_string(),
            method,
        })
        .observe(t.elapsed().as_secs_f64());
    resp
}

async fn list(State(app): State<Arc<App>>) -> Html<String> {
    let items = app.items.lock().await;
    let lis: String = items
        .iter()
        .map(|i| format!("<li>{}</li>", escape(i)))
        .collect();
    Html(format!(
        "<!doctype html><title>To-do</title><h1>To-do list</h1><ul>{lis}</ul><form method=post action=new><input name=item><button>Add</button></form>"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[derive(serde::Deserialize)]
struct NewItem {
    item: String,
}

async fn add(State(app): State<Arc<App>>, Form(f): Form<NewItem>) -> Redirect {
    app.items.lock().await.push(f.item);
    app.created.inc();
    Redirect::to("/")
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.sample_process();
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &app.registry);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

#[tokio::main]
async fn main() {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let app = Arc::new(App::new());
    let router = Router::new()
        .route("/", get(list))
        .route("/new", post(add))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app);
    let l = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| panic!("listen on {listen}: {e}"));
    axum::serve(l, router).await.expect("serve");
}
