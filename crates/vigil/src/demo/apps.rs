//! What runs in the demo's pods: one set of listeners per pod, on the pod's loopback IP, for
//! as long as the pod lives. The to-do app is real (`todo.rs`); its proxy and database are
//! stand-ins that expose what the chapter's nginx and PostgreSQL exporters expose, computed
//! from the requests they really serve; the numbers API fails now and then as the chapter's
//! does; the prober, container metrics and kube-state are vigil's own exporters.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::RwLock;

use super::todo;

/// What a pod runs, by its Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Timecheck,
    TodoWeb,
    TodoProxy,
    TodoDb,
    NumbersApi,
    LoadGen,
    Cadvisor,
    KubeState,
}

/// What the pods share: the to-do database, where the web pods and the numbers API pods are
/// (for the proxy and the load generator), and the simulated API's address.
pub struct Shared {
    pub store: Arc<todo::Store>,
    pub web: RwLock<Vec<SocketAddr>>,
    pub proxies: RwLock<Vec<SocketAddr>>,
    pub numbers: RwLock<Vec<SocketAddr>>,
    pub api_url: String,
    pub http: reqwest::Client,
    started: Instant,
}

impl Shared {
    pub fn new(api_url: String) -> Result<Shared, String> {
        Ok(Shared {
            store: Arc::new(todo::Store::default()),
            web: RwLock::new(Vec::new()),
            proxies: RwLock::new(Vec::new()),
            numbers: RwLock::new(Vec::new()),
            api_url,
            http: vigil_scrape::client::default_client(Duration::from_secs(5))
                .map_err(|e| e.to_string())?,
            started: Instant::now(),
        })
    }
}

/// A running pod's listeners and tasks; dropping it stops them.
pub struct Pod {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Why a pod did not start.
#[derive(Debug)]
pub enum StartError {
    /// One of its ports on that IP is taken (another demo, or another program): another IP
    /// may do.
    InUse(String),
    Failed(String),
}

impl From<String> for StartError {
    fn from(e: String) -> Self {
        StartError::Failed(e)
    }
}

/// Start what `w` runs on `ip`.
pub async fn start(w: Workload, ip: Ipv4Addr, shared: &Arc<Shared>) -> Result<Pod, StartError> {
    // Every port is bound before anything starts, so a pod that cannot have its ports leaves
    // nothing running behind it (the exporters' API watches cannot be stopped once started).
    let mut ports: Vec<std::net::TcpListener> = Vec::new();
    for &port in w.ports() {
        let addr = SocketAddr::from((ip, port));
        let l = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| {
                let msg = format!("listen on {addr}: {e}");
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    StartError::InUse(msg)
                } else {
                    StartError::Failed(msg)
                }
            })?;
        ports.push(l);
    }
    let mut apps: Vec<Router> = Vec::new();
    let mut tasks = Vec::new();
    match w {
        Workload::Timecheck => apps.push(timecheck(shared.clone())),
        Workload::TodoWeb => {
            apps.push(todo::router(Arc::new(todo::App::new(shared.store.clone()))));
        }
        Workload::TodoProxy => {
            let proxy = Arc::new(Proxy {
                shared: shared.clone(),
                stats: NginxStats::default(),
                next: AtomicU64::new(0),
            });
            apps.push(proxy_router(proxy.clone()));
            apps.push(nginx_exporter(proxy));
        }
        Workload::TodoDb => apps.push(postgres_exporter(shared.clone())),
        Workload::NumbersApi => {
            apps.push(numbers_api());
            // The blackbox exporter sidecar: vigil's prober with its built-in modules.
            use vigil_exporters::probe;
            let modules = probe::load_modules(None).map_err(|e| e.to_string())?;
            let state = Arc::new(probe::ProbeState::new(modules, Default::default()));
            apps.push(probe::router(state, ""));
        }
        Workload::LoadGen => tasks.push(tokio::spawn(super::loadgen::run(shared.clone()))),
        Workload::Cadvisor => {
            use vigil_exporters::container;
            let cm = container::ContainerMetrics::new(container::Paths::default(), false);
            let client = vigil_exporters::kube_state::client(Some(&shared.api_url), None).await?;
            cm.watch_pods(client, None);
            apps.push(container::router(Arc::new(cm), "/metrics"));
        }
        Workload::KubeState => {
            use vigil_exporters::kube_state;
            let requests = Arc::new(kube_state::list_watch::ListWatch::default());
            let client =
                kube_state::counted_client(Some(&shared.api_url), None, requests.clone()).await?;
            let state = kube_state::KubeState::start(
                client,
                Default::default(),
                kube_state::Scope {
                    total_shards: 1,
                    ..Default::default()
                },
                requests,
            );
            apps.push(kube_state::router(state.clone()));
            apps.push(kube_state::telemetry_router(state));
        }
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for (listener, app) in ports.into_iter().zip(apps) {
        let mut stopped = stopped.clone();
        let l = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| StartError::Failed(format!("listener: {e}")))?;
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(l, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
        }));
    }
    Ok(Pod {
        stop: Some(stop),
        tasks,
    })
}

impl Workload {
    /// The ports its pod listens on, in the order its routers are built.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Workload::Timecheck | Workload::TodoWeb | Workload::Cadvisor => &[8080],
            Workload::TodoProxy => &[8080, 9113],
            Workload::TodoDb => &[9187],
            Workload::NumbersApi => &[8080, 9115],
            Workload::LoadGen => &[],
            Workload::KubeState => &[8080, 8081],
        }
    }

    /// One per cluster: its watches of the API cannot be stopped, so it is not scaled.
    pub fn singleton(self) -> bool {
        matches!(self, Workload::Cadvisor | Workload::KubeState)
    }
}

fn text(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The time-check app: it checks the time every five seconds and counts its checks.
fn timecheck(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move {
                let up = s.started.elapsed().as_secs();
                let start = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    - up;
                text(format!(
                    "# HELP timecheck_checks_total Time checks made (one every 5s).\n# TYPE timecheck_checks_total counter\ntimecheck_checks_total {}\n# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start}\n",
                    up / 5
                ))
            }),
        )
        .with_state(shared)
}

/// The counters nginx's `stub_status` reports, which the nginx exporter turns into metrics.
#[derive(Default)]
struct NginxStats {
    accepted: AtomicU64,
    requests: AtomicU64,
    active: AtomicI64,
    writing: AtomicI64,
}

struct Proxy {
    shared: Arc<Shared>,
    stats: NginxStats,
    next: AtomicU64,
}

/// The to-do list's proxy (nginx in the chapter): every request goes to one of the web pods,
/// round robin; 502 when there is none or it does not answer.
fn proxy_router(p: Arc<Proxy>) -> Router {
    Router::new().fallback(proxy).with_state(p)
}

async fn proxy(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let s = &p.stats;
    s.accepted.fetch_add(1, Ordering::Relaxed);
    s.requests.fetch_add(1, Ordering::Relaxed);
    s.active.fetch_add(1, Ordering::Relaxed);
    s.writing.fetch_add(1, Ordering::Relaxed);
    let resp = forward(&p, req).await;
    s.writing.fetch_sub(1, Ordering::Relaxed);
    s.active.fetch_sub(1, Ordering::Relaxed);
    resp
}

async fn forward(p: &Proxy, req: Request) -> Response {
    let web = p.shared.web.read().clone();
    if web.is_empty() {
        return (StatusCode::BAD_GATEWAY, "no to-do web pod").into_response();
    }
    let to = web[p.next.fetch_add(1, Ordering::Relaxed) as usize % web.len()];
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = p
        .shared
        .http
        .request(parts.method.clone(), format!("http://{to}{path}"))
        .body(body);
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    match out.send().await {
        Ok(r) => {
            let status = r.status();
            let location = r.headers().get(header::LOCATION).cloned();
            let ctype = r.headers().get(header::CONTENT_TYPE).cloned();
            let body = r.bytes().await.unwrap_or_default();
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status;
            for (k, v) in [(header::LOCATION, location), (header::CONTENT_TYPE, ctype)] {
                if let Some(v) = v {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// What the nginx exporter (0.8, the chapter's sidecar) serves for the proxy's stub status.
fn nginx_exporter(p: Arc<Proxy>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(p): State<Arc<Proxy>>| async move {
                let s = &p.stats;
                let accepted = s.accepted.load(Ordering::Relaxed);
                // This scrape is a connection too, as nginx counts the exporter's own.
                let active = s.active.load(Ordering::Relaxed) + 1;
                let writing = s.writing.load(Ordering::Relaxed) + 1;
                let mut out = String::new();
                for (name, kind, help, v) in [
                    (
                        "nginx_connections_accepted",
                        "counter",
                        "Accepted client connections",
                        accepted as i64,
                    ),
                    (
                        "nginx_connections_active",
                        "gauge",
                        "Active client connections",
                        active,
                    ),
                    (
                        "nginx_connections_handled",
                        "counter",
                        "Handled client connections",
                        accepted as i64,
                    ),
                    (
                        "nginx_connections_reading",
                        "gauge",
                        "Connections where NGINX is reading the request header",
                        0,
                    ),
                    (
                        "nginx_connections_waiting",
                        "gauge",
                        "Idle client connections",
                        0,
                    ),
                    (
                        "nginx_connections_writing",
                        "gauge",
                        "Connections where NGINX is writing the response back to the client",
                        writing,
                    ),
                    (
                        "nginx_http_requests_total",
                        "counter",
                        "Total http requests",
                        s.requests.load(Ordering::Relaxed) as i64,
                    ),
                    ("nginx_up", "gauge", "Status of the last metric scrape", 1),
                ] {
                    out.push_str(&format!(
                        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
                    ));
                }
                text(out)
            }),
        )
        .with_state(p)
}

/// What the PostgreSQL exporter (the chapter's sidecar) serves for the to-do database.
fn postgres_exporter(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Shared>>| async move {
                let db = &s.store;
                let active = db.active.load(Ordering::Relaxed);
                let mut out = String::from(
                    "# HELP pg_up Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).\n# TYPE pg_up gauge\npg_up 1\n# HELP pg_stat_activity_count number of connections in this state\n# TYPE pg_stat_activity_count gauge\n",
                );
                for (state, n) in [
                    ("active", active),
                    ("disabled", 0),
                    ("fastpath function call", 0),
                    ("idle", 2),
                    ("idle in transaction", 0),
                    ("idle in transaction (aborted)", 0),
                ] {
                    out.push_str(&format!(
                        "pg_stat_activity_count{{datname=\"todo\",state=\"{state}\"}} {n}\n"
                    ));
                }
                for (name, help, v) in [
                    ("xact_commit", "Number of transactions in this database that have been committed", &db.commits),
                    ("xact_rollback", "Number of transactions in this database that have been rolled back", &db.rollbacks),
                    ("tup_fetched", "Number of rows fetched by queries in this database", &db.fetched),
                    ("tup_inserted", "Number of rows inserted by queries in this database", &db.inserted),
                ] {
                    out.push_str(&format!(
                        "# HELP pg_stat_database_{name} {help}\n# TYPE pg_stat_database_{name} counter\npg_stat_database_{name}{{datid=\"16384\",datname=\"todo\"}} {}\n",
                        v.load(Ordering::Relaxed)
                    ));
                }
                let vm = todo::process_virtual_bytes().unwrap_or(0);
                let cpu = todo::process_cpu_seconds().unwrap_or(0.0);
                out.push_str(&format!(
                    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {vm}\n# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n"
                ));
                text(out)
            }),
        )
        .with_state(shared)
}

/// How many calls the numbers API answers before it breaks (the chapter's
/// `FailAfterCallCount`), and how long it stays broken before it is back.
const FAIL_AFTER: u64 = 100;
const BROKEN_FOR: Duration = Duration::from_secs(40);

#[derive(Default)]
struct Numbers {
    calls: AtomicU64,
    broken: AtomicBool,
    broken_at: parking_lot::Mutex<Option<Instant>>,
    seed: AtomicU64,
}

impl Numbers {
    /// Whether the API is broken now (mending it once it has been for BROKEN_FOR).
    fn broken(&self) -> bool {
        let mut at = self.broken_at.lock();
        if let Some(t) = *at
            && t.elapsed() >= BROKEN_FOR
        {
            *at = None;
            self.calls.store(0, Ordering::Relaxed);
            self.broken.store(false, Ordering::Relaxed);
        }
        self.broken.load(Ordering::Relaxed)
    }
}

/// The random-number API: `/rng` answers a number from 1 to 100 until it has answered
/// FAIL_AFTER calls, then it and `/healthz` fail with 500 for BROKEN_FOR.
fn numbers_api() -> Router {
    let n = Arc::new(Numbers::default());
    n.seed.store(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1,
        Ordering::Relaxed,
    );
    Router::new()
        .route(
            "/rng",
            get(|State(n): State<Arc<Numbers>>| async move {
                if n.broken() {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "Unhealthy".to_string());
                }
                if n.calls.fetch_add(1, Ordering::Relaxed) + 1 >= FAIL_AFTER {
                    n.broken.store(true, Ordering::Relaxed);
                    *n.broken_at.lock() = Some(Instant::now());
                }
                // xorshift: a number, not a secret.
                let mut x = n.seed.load(Ordering::Relaxed);
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                n.seed.store(x, Ordering::Relaxed);
                (StatusCode::OK, (x % 100 + 1).to_string())
            }),
        )
        .route(
            "/healthz",
            get(|State(n): State<Arc<Numbers>>| async move {
                if n.broken() {
                    (StatusCode::INTERNAL_SERVER_ERROR, "Unhealthy")
                } else {
                    (StatusCode::OK, "Ok")
                }
            }),
        )
        .with_state(n)
}
