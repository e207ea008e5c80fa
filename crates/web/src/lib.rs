//! The HTTP face of vigil: Prometheus's `/api/v1` JSON (byte-compatible where clients parse
//! it), the lifecycle endpoints (`/-/healthy`, `/-/ready`, `/-/reload`, `/-/quit`) and
//! `/metrics`.
//!
//! The web layer only calls other layers' interfaces: the PromQL engine for queries, the
//! scrape manager for targets, storage queriers for label lookups. It never parses PromQL or
//! reaches into storage internals itself.

pub mod agent;
pub mod api;
pub mod api_meta;
pub mod ast_json;
pub mod cors;
pub mod dashboards;
pub mod json;
pub mod lifecycle;
pub mod query_pool;
pub mod remote;
pub mod search;
pub mod search_score;
pub mod time;
pub mod ui;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};
use vigil_config::Config;
use vigil_promql::Engine;
use vigil_scrape::ScrapeManager;
use vigil_storage::Storage;

/// The TSDB admin actions behind `--web.enable-admin-api`.
/// Errors are the storage's I/O errors: each is answered as Prometheus answers them (500 with
/// the message), so no caller needs more than the message and its kind.
pub trait Admin: Send + Sync {
    /// Delete samples in `[mint, maxt]` of series matching any matcher set.
    fn delete_series(
        &self,
        sets: &[Vec<vigil_storage::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> std::io::Result<()>;
    fn clean_tombstones(&self) -> std::io::Result<()>;
    /// Returns the snapshot's name.
    fn snapshot(&self, skip_head: bool) -> std::io::Result<String>;
}

/// A request to reload the configuration; the answer says whether it worked.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Everything the handlers need, shared.
pub struct AppState {
    /// Local storage: appends, federation and the remote read endpoint.
    pub storage: Arc<dyn Storage>,
    /// What queries, series and label lookups read: local storage with the `remote_read`
    /// endpoints merged in.
    pub queryable: Arc<dyn Storage>,
    pub scrape: Arc<ScrapeManager>,
    /// What each discovery provider last failed at: the target pages name it, so a job whose
    /// discovery fails does not look like one that found nothing.
    pub discovery_health: Arc<vigil_discovery::health::Health>,
    /// The rule groups running (`/api/v1/rules`, `/api/v1/alerts`, the rules pages).
    pub rules: Arc<vigil_rules::Manager>,
    /// Where alerts go (`/api/v1/alertmanagers`).
    pub notifier: Arc<vigil_rules::notifier::Notifier>,
    pub engine: Engine,
    /// `--query.timeout`: the longest a query may run (a request's `timeout` can lower it).
    pub query_timeout: std::time::Duration,
    /// `--query.max-concurrency` slots; queries beyond it wait.
    pub query_gate: Arc<tokio::sync::Semaphore>,
    /// Where admitted queries run (one per core, at low CPU priority).
    pub query_pool: query_pool::QueryPool,
    /// `""` or `/prefix`: where the API and UI are served (`--web.route-prefix`).
    pub route_prefix: String,
    /// `""` or `/path`: where users reach vigil (the path of `--web.external-url`, else the route
    /// prefix). Links and redirects use it, so a proxy that strips its path still works.
    pub external_path: String,
    /// `--dashboards.dir`: Grafana dashboard JSON (or ConfigMaps of it) vigil renders.
    pub dashboards_dir: Option<std::path::PathBuf>,
    /// `--dashboards.provisioning`: a Grafana `providers.yaml` whose file providers' paths load.
    pub dashboards_provisioning: Option<std::path::PathBuf>,
    /// The config currently running.
    pub config: RwLock<Arc<Config>>,
    /// Flag values as given (for `/api/v1/status/flags`).
    pub flags: Vec<(String, String)>,
    /// Renders the self-metrics exposition.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// The `data` of `/api/v1/status/tsdb` for a given list limit.
    pub tsdb_status: Box<dyn Fn(usize) -> serde_json::Value + Send + Sync>,
    pub enable_lifecycle: bool,
    /// `None` unless `--web.enable-admin-api`.
    pub admin: Option<std::sync::Arc<dyn Admin>>,
    pub reload: mpsc::Sender<ReloadRequest>,
    pub quit: mpsc::Sender<()>,
    pub ready: AtomicBool,
    pub start_time: std::time::SystemTime,
    /// Outcome of the last configuration (re)load, for `runtimeinfo`.
    pub reload_status: ReloadStatus,
    /// `storageRetention` as Prometheus words it (`15d`, `15d or 512MiB`).
    pub storage_retention: RwLock<String>,
    /// WAL corruptions found at replay (`prometheus_tsdb_wal_corruptions_total`).
    pub wal_corruptions: Box<dyn Fn() -> u64 + Send + Sync>,
    /// `--web.page-title`.
    pub page_title: String,
    /// `--web.cors.origin`, compiled.
    pub cors: Arc<cors::Cors>,
    /// `--web.user-assets`: served at `/user/`.
    pub user_assets: Option<std::path::PathBuf>,
    /// `--web.enable-remote-write-receiver` (`/api/v1/write` stores what it is sent) and
    /// `--web.enable-otlp-receiver` (`/api/v1/otlp/v1/metrics` too).
    pub receivers_requested: (bool, bool),
    /// `--web.remote-write-receiver.accepted-protobuf-messages`: what the receiver takes.
    pub receiver_messages: Vec<vigil_remote::receive::Message>,
    /// Remote write queues (their status) and the receiver's counters.
    pub remote: Option<Arc<vigil_remote::RemoteWrite>>,
    /// `--agent`: no local queries, rules or alerts (see [`agent`]).
    pub agent: bool,
    /// `--storage.remote.read-sample-limit`.
    pub remote_read_sample_limit: u64,
    /// `--storage.remote.read-max-bytes-in-frame`.
    pub remote_read_max_frame: usize,
    /// `--storage.remote.read-concurrent-limit` slots (`None`: no limit, the flag's 0).
    pub remote_read_gate: Option<Arc<tokio::sync::Semaphore>>,
    /// `--enable-feature=search-api` (`None` without it) and its `--web.search.max-limit`.
    pub search_api: Option<search::SearchApi>,
}

/// Whether the last config (re)load worked, and when one last did.
#[derive(Debug, Default)]
pub struct ReloadStatus {
    pub success: AtomicBool,
    /// Unix milliseconds of the last successful load.
    pub last_success_ms: std::sync::atomic::AtomicI64,
}

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    let prefix = state.route_prefix.clone();
    let home = format!("{}/graph", state.external_path);
    let api = Router::new()
        .merge(api::routes())
        .merge(api_meta::routes())
        .merge(search::routes())
        .route("/api/v1/{*rest}", axum::routing::options(|| async {}))
        .layer(axum::middleware::from_fn_with_state(
            state.cors.clone(),
            cors::layer,
        ));
    let mut app = Router::new()
        .merge(api)
        .merge(ui::routes())
        .merge(lifecycle::routes())
        .merge(remote::routes(
            state.receivers_requested.0,
            state.receivers_requested.1,
        ))
        .route("/agent", axum::routing::get(agent::page));
    if let Some(dir) = &state.user_assets {
        app = app.nest_service("/user", tower_http::services::ServeDir::new(dir));
    }
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            agent::guard,
        ))
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ));
    if prefix.is_empty() {
        return app;
    }
    // Everything under the prefix (as behind an ingress path); the bare root and `{prefix}/`
    // point to the query page.
    let go_home = move || {
        let home = home.clone();
        async move { axum::response::Redirect::to(&home) }
    };
    Router::new()
        .route(&format!("{prefix}/"), axum::routing::get(go_home.clone()))
        .nest(&prefix, app)
        .route("/", axum::routing::get(go_home))
}

/// Largest request body: Prometheus (Go's form parser) reads at most 10 MiB of a POST form.
pub const MAX_BODY: usize = 10 << 20;

/// A handler that panicked answers 500 and is logged; the connection and the server go on.
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = msg, "A request handler panicked");
    api::ApiError::Internal(format!("request handler panicked: {msg}")).into_response()
}

/// `--web.route-prefix`, or the path of `--web.external-url` (Prometheus's rule), normalised to
/// `""` or `/path` without a trailing slash.
pub fn route_prefix(route_prefix: Option<&str>, external_url: Option<&str>) -> String {
    let raw = match (route_prefix, external_url) {
        (Some(p), _) => p.to_string(),
        (None, Some(u)) => u
            .split_once("://")
            .map(|(_, rest)| rest.find('/').map_or("", |i| &rest[i..]).to_string())
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let t = raw.trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}
