//! The to-do list web app of `vigil demo` (and of `examples/todo-app`), instrumented with the
//! `prometheus-client` crate, standing in for chapter 14's .NET todo-list app: the metric
//! names are the ones its dashboard queries (`http_requests_in_progress`,
//! `http_request_duration_seconds` by code and method, `todo_tasks_created_total`,
//! `process_cpu_seconds_total`, and `dotnet_total_memory_bytes`, which here reports the
//! process's resident memory).
//!
//! `GET /` lists items, `POST /new` with a form field `item` adds one, `GET /metrics` serves
//! the exposition. Items live in a [`Store`], the app's database: the demo shares one between
//! the web pods and reports its activity as PostgreSQL's exporter would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
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

/// The most items kept: a demo left running for days keeps a bounded list.
const MAX_ITEMS: usize = 500;

/// The to-do items and what was done to them: the database behind the app.
#[derive(Default)]
pub struct Store {
    items: parking_lot::Mutex<VecDeque<String>>,
    /// Requests using the store right now (PostgreSQL's active sessions).
    pub active: AtomicI64,
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
    /// Rows read by lists and written by adds.
    pub fetched: AtomicU64,
    pub inserted: AtomicU64,
}

impl Store {
    fn list(&self) -> Vec<String> {
        self.active.fetch_add(1, Ordering::Relaxed);
        let items: Vec<String> = self.items.lock().iter().cloned().collect();
        self.fetched
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
        items
    }

    /// Add an item; an empty one is refused (a rolled-back transaction).
    fn add(&self, item: String) -> bool {
        self.active.fetch_add(1, Ordering::Relaxed);
        let ok = !item.trim().is_empty();
        if ok {
            let mut items = self.items.lock();
            if items.len() >= MAX_ITEMS {
                items.pop_front();
            }
            items.push_back(item);
            self.inserted.fetch_add(1, Ordering::Relaxed);
            self.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.rollbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.active.fetch_sub(1, Ordering::Relaxed);
        ok
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeMethod {
    code: String,
    method: String,
}

pub struct App {
    store: Arc<Store>,
    registry: Registry,
    in_progress: Family<Method, Gauge>,
    duration: Family<CodeMethod, Histogram>,
    created: Counter,
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    memory: Gauge,
}

impl App {
    pub fn new(store: Arc<Store>) -> App {
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
            store,
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
        if let Some(secs) = process_cpu_seconds() {
            let now = self.cpu_seconds.get();
            if secs > now {
                self.cpu_seconds.inc_by(secs - now);
            }
        }
        self.memory.set(process_resident_bytes().unwrap_or(0));
    }
}

/// This process's user and system CPU seconds.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// This process's resident memory in bytes.
pub fn process_resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// This process's virtual memory in bytes.
pub fn process_virtual_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().next()?.parse().ok()?;
    Some(pages * 4096)
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
    let lis: String = app
        .store
        .list()
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

async fn add(State(app): State<Arc<App>>, Form(f): Form<NewItem>) -> Response {
    if app.store.add(f.item) {
        app.created.inc();
        Redirect::to("/").into_response()
    } else {
        (
            axum::http::StatusCode::BAD_REQUEST,
            "an item needs some text",
        )
            .into_response()
    }
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

/// The app's routes: `/`, `/new`, `/metrics`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/new", post(add))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}
