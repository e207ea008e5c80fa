//! The HTTP listener every vigil server shares (the server and the `probe`, `kube-state`,
//! `container-metrics` and `node` exporters): the exporter-toolkit web config file (TLS, client
//! certificates, basic auth, response headers, rate limit, HTTP/2), Prometheus's
//! `--web.max-connections` and `--web.read-timeout`, and graceful shutdown.
//!
//! - [`web_config`]: the file's format and validation.
//! - [`tls`]: rustls server configs from it.
//! - [`auth`]: basic auth with bcrypt.
//!
//! As in the toolkit, the file is read again when it changes (checked at most once a second,
//! on requests and TLS handshakes): users, headers, certificates and client-auth settings take
//! effect without a restart. A file that turns invalid fails closed (500 to requests, failed
//! handshakes) and is logged; switching TLS on or off needs a restart.

pub mod auth;
pub mod tls;
pub mod web_config;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

pub use web_config::{WebConfig, WebConfigError};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    WebConfig(#[from] WebConfigError),
    #[error("web config file {file}: {msg}")]
    Tls { file: String, msg: String },
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Requests on one HTTP/2 connection: when the last started and how many are running.
struct Activity {
    since: Instant,
    last_ms: std::sync::atomic::AtomicU64,
    running: std::sync::atomic::AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            since: Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
            running: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// `app` with each request counted on this connection. A request counts until its
    /// response body is sent or dropped, so a stream the client resets (which drops the
    /// handler mid-way) or a response still being written is counted right.
    fn track(self: &Arc<Self>, app: Router) -> Router {
        let a = self.clone();
        app.layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let running = Running::start(a.clone());
                async move {
                    let r = next.run(req).await;
                    let (parts, body) = r.into_parts();
                    // The closure owns `running`: it ends when the body is done or dropped.
                    let body = http_body_util::BodyExt::map_frame(body, move |f| {
                        let _ = &running;
                        f
                    });
                    Response::from_parts(parts, axum::body::Body::new(body))
                }
            },
        ))
    }

    fn touch(&self) {
        self.last_ms.store(
            self.since.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Resolves once no request has started or finished for `d` and none is running.
    async fn idle_for(&self, d: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        loop {
            let last = Duration::from_millis(self.last_ms.load(Relaxed));
            let idle = self.since.elapsed().saturating_sub(last);
            if self.running.load(Relaxed) == 0 && idle >= d {
                return;
            }
            let wait = if idle >= d { d } else { d - idle };
            tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
        }
    }
}

/// One request in flight on a tracked connection; the count drops with it.
struct Running(Arc<Activity>);

impl Running {
    fn start(a: Arc<Activity>) -> Running {
        use std::sync::atomic::Ordering::Relaxed;
        a.running.fetch_add(1, Relaxed);
        a.touch();
        Running(a)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.touch();
        self.0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How to serve.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Addresses to listen on: `host:port`, or `:port` for every interface (Go's form). One
    /// connection limit is shared by all of them, as in Prometheus.
    pub listen: Vec<String>,
    /// `--web.config.file`.
    pub web_config: Option<PathBuf>,
    /// `--web.max-connections`: connections served at once; more wait to be accepted (0: no
    /// limit).
    pub max_connections: usize,
    /// `--web.read-timeout`: longest wait for a request's headers (also on an idle
    /// keep-alive connection) and for a TLS handshake.
    pub read_timeout: Option<Duration>,
}

/// `:9090` means every interface, as in Go.
pub fn listen_addr(listen: &str) -> String {
    if listen.starts_with(':') {
        format!("0.0.0.0{listen}")
    } else {
        listen.to_string()
    }
}

/// Files whose change means the web config must be read again.
type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamp_of(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            (p.clone(), m)
        })
        .collect()
}

/// What the web config file currently says.
struct Loaded {
    stamp: Stamp,
    checked: Instant,
    config: Result<Arc<WebConfig>, String>,
    tls: Option<Result<Arc<rustls::ServerConfig>, String>>,
}

/// The web config file, re-read when it or the files it names change.
pub struct Source {
    path: PathBuf,
    tls_on: bool,
    /// `http_server_config.http2` as read at start: the connection code picks HTTP/2 from it,
    /// so a reload must not advertise `h2` in ALPN that the server would then not speak.
    http2: bool,
    loaded: Mutex<Loaded>,
    auth: auth::BasicAuth,
}

fn files_of(path: &Path, cfg: &WebConfig) -> Vec<PathBuf> {
    let mut v = vec![path.to_path_buf()];
    if let Some(t) = &cfg.tls {
        for p in [Some(&t.cert), Some(&t.key), t.client_ca.as_ref()]
            .into_iter()
            .flatten()
        {
            if let web_config::Pem::File(f) = p {
                v.push(f.clone());
            }
        }
    }
    v
}

impl Source {
    /// Load and validate now: any error stops start-up.
    pub fn load(path: &Path) -> Result<Source, ServeError> {
        let cfg = WebConfig::load(path)?;
        for w in &cfg.warnings {
            tracing::warn!(file = %path.display(), "{w}");
        }
        let tls = match &cfg.tls {
            None => None,
            Some(t) => Some(Arc::new(tls::server_config(t, cfg.http2).map_err(
                |msg| ServeError::Tls {
                    file: path.display().to_string(),
                    msg,
                },
            )?)),
        };
        let files = files_of(path, &cfg);
        Ok(Source {
            path: path.to_path_buf(),
            tls_on: tls.is_some(),
            http2: cfg.http2,
            loaded: Mutex::new(Loaded {
                stamp: stamp_of(&files),
                checked: Instant::now(),
                config: Ok(Arc::new(cfg)),
                tls: tls.map(Ok),
            }),
            auth: auth::BasicAuth::default(),
        })
    }

    /// Re-read the file if it (or a certificate it names) changed; at most once a second.
    fn refresh(&self) {
        let mut l = self.loaded.lock();
        if l.checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        l.checked = Instant::now();
        let paths: Vec<PathBuf> = l.stamp.iter().map(|(p, _)| p.clone()).collect();
        if stamp_of(&paths) == l.stamp {
            return;
        }
        let cfg = WebConfig::load(&self.path).map_err(|e| e.to_string());
        let files = match &cfg {
            Ok(c) => files_of(&self.path, c),
            Err(_) => paths,
        };
        l.stamp = stamp_of(&files);
        l.tls = match &cfg {
            Ok(c) => c.tls.as_ref().map(|t| {
                tls::server_config(t, self.http2)
                    .map(Arc::new)
                    .map_err(|m| format!("web config file {}: {m}", self.path.display()))
            }),
            Err(e) => Some(Err(e.clone())),
        };
        match (&cfg, &l.tls) {
            (Err(e), _) | (_, Some(Err(e))) => {
                tracing::error!(err = %e, "Web config file is invalid: requests are refused until it is fixed")
            }
            (Ok(c), _) => {
                if c.tls.is_some() != self.tls_on {
                    tracing::warn!(file = %self.path.display(), "Web config file turns TLS on or off: that takes effect at the next restart");
                }
                if c.http2 != self.http2 {
                    tracing::warn!(file = %self.path.display(), "Web config file changes http_server_config.http2: that takes effect at the next restart");
                }
                tracing::info!(file = %self.path.display(), "Web config file reloaded");
            }
        }
        l.config = cfg.map(Arc::new);
    }

    fn config(&self) -> Result<Arc<WebConfig>, String> {
        self.refresh();
        self.loaded.lock().config.clone()
    }

    fn tls_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        self.refresh();
        match &self.loaded.lock().tls {
            Some(r) => r.clone(),
            None => Err("the web config file no longer configures TLS".into()),
        }
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "Unauthorized\n",
    )
        .into_response()
}

/// Rate limit, response headers and basic auth, from the current web config.
async fn guard(State(src): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    // At most a stat per second; a changed file is parsed here (milliseconds).
    let cfg = match src.source.config() {
        Ok(c) => c,
        Err(_) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response();
        }
    };
    if let Some((interval, burst)) = cfg.rate_limit
        && !src.take_token(interval, burst)
    {
        return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response();
    }
    let mut resp = if cfg.users.is_empty() {
        next.run(req).await
    } else {
        let creds = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(auth::parse_basic);
        let ok = match creds {
            None => false,
            Some((user, pass)) => match src.source.auth.cached(&cfg.users, &user, &pass) {
                Some(ok) => ok,
                None => {
                    // bcrypt runs one at a time; a flood of new passwords must not queue
                    // without bound on the blocking pool (which the rest of the process
                    // shares), so past a few waiting checks the answer is 429.
                    let Ok(_slot) = src.bcrypt_slots.clone().try_acquire_owned() else {
                        return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
                            .into_response();
                    };
                    let src2 = src.clone();
                    let cfg2 = cfg.clone();
                    tokio::task::spawn_blocking(move || {
                        src2.source.auth.check(&cfg2.users, &user, &pass)
                    })
                    .await
                    .unwrap_or(false)
                }
            },
        };
        if ok {
            next.run(req).await
        } else {
            unauthorized()
        }
    };
    for (k, v) in &cfg.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// Basic-auth checks with an uncached password allowed to wait for bcrypt at once (each takes
/// tens of milliseconds at cost 10, so 16 is under a second of queue).
const BCRYPT_WAITERS: usize = 16;

/// The guard's state: the source and the rate limiter's bucket.
struct Guard {
    source: Arc<Source>,
    /// `(tokens, last refill)`.
    bucket: Mutex<(f64, Instant)>,
    /// Basic-auth checks that may wait for bcrypt at once.
    bcrypt_slots: Arc<tokio::sync::Semaphore>,
}

impl Guard {
    /// One global token bucket, as the toolkit's `rate.Limiter(Every(interval), burst)`.
    fn take_token(&self, interval: Duration, burst: u32) -> bool {
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let refill = now.duration_since(b.1).as_secs_f64() / interval.as_secs_f64();
        b.0 = (b.0 + refill).min(burst as f64);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A bound listener, ready to serve.
pub struct Server {
    listeners: Vec<tokio::net::TcpListener>,
    source: Option<Arc<Source>>,
    opts: Options,
}

impl Server {
    /// Validate the web config file (a missing or bad file is an error) and bind.
    pub async fn bind(opts: Options) -> Result<Server, ServeError> {
        let source = match &opts.web_config {
            Some(p) => Some(Arc::new(Source::load(p)?)),
            None => None,
        };
        let mut listeners = Vec::new();
        for l in &opts.listen {
            let addr = listen_addr(l);
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
            match &source {
                Some(s) if s.tls_on => {
                    tracing::info!(address = %addr, "Listening; TLS is enabled")
                }
                _ => tracing::info!(address = %addr, "Listening; TLS is disabled"),
            }
            listeners.push(listener);
        }
        Ok(Server {
            listeners,
            source,
            opts,
        })
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self.listeners.first() {
            Some(l) => l.local_addr(),
            None => Err(std::io::Error::other("no listen address")),
        }
    }

    /// Serve `app` until `shutdown` resolves, then let open requests finish (up to 5 s).
    pub async fn serve(self, app: Router, shutdown: impl Future<Output = ()> + Send) {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto;
        use hyper_util::service::TowerToHyperService;

        let app = match &self.source {
            Some(s) => app.layer(axum::middleware::from_fn_with_state(
                Arc::new(Guard {
                    source: s.clone(),
                    bucket: Mutex::new((f64::MAX, Instant::now())),
                    bcrypt_slots: Arc::new(tokio::sync::Semaphore::new(BCRYPT_WAITERS)),
                }),
                guard,
            )),
            None => app,
        };
        // A handler that panics answers 500 and the connection's task lives on (the exporters
        // have no other layer that would catch it).
        let app = app.layer(tower_http::catch_panic::CatchPanicLayer::new());
        let tls_source = self.source.clone().filter(|s| s.tls_on);
        let http2 = tls_source.as_ref().is_some_and(|s| s.http2);
        let limit = (self.opts.max_connections > 0).then(|| {
            // Past the semaphore's most (where it would panic), any count is no limit.
            let n = self.opts.max_connections;
            Arc::new(tokio::sync::Semaphore::new(
                n.min(tokio::sync::Semaphore::MAX_PERMITS),
            ))
        });
        let read_timeout = self.opts.read_timeout;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        // HTTP/2 connections with an idle timeout manage their own GOAWAY: they watch
        // `stopping`, and shutdown waits until every `h2_open` sender is gone.
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let (h2_open_tx, mut h2_open_rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut shutdown = std::pin::pin!(shutdown);
        // Each listener accepts on its own task, after taking a slot of the shared limit: at the
        // limit new connections wait in the kernel's backlog (Go's LimitListener).
        type Conn = (
            tokio::net::TcpStream,
            Option<tokio::sync::OwnedSemaphorePermit>,
        );
        let (conn_tx, mut conns) = tokio::sync::mpsc::channel::<Conn>(1);
        let mut acceptors = Vec::new();
        for listener in self.listeners {
            let tx = conn_tx.clone();
            let limit = limit.clone();
            acceptors.push(tokio::spawn(async move {
                loop {
                    let permit = match &limit {
                        Some(l) => match l.clone().acquire_owned().await {
                            Ok(p) => Some(p),
                            Err(_) => return,
                        },
                        None => None,
                    };
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            if tx.send((stream, permit)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            // Out of file descriptors and the like: wait, do not spin or exit.
                            tracing::warn!(err = %e, "Accepting a connection failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }));
        }
        drop(conn_tx);
        loop {
            let (stream, permit) = tokio::select! {
                c = conns.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let svc = TowerToHyperService::new(app.clone());
            let watcher = graceful.watcher();
            let (stopping, h2_open) = (stopping_rx.clone(), h2_open_tx.clone());
            let tls_source = tls_source.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut builder = auto::Builder::new(TokioExecutor::new());
                if let Some(d) = read_timeout {
                    builder
                        .http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(d);
                }
                match tls_source {
                    None => {
                        // Plain HTTP is HTTP/1.1 only, as Go serves it.
                        let builder = builder.http1_only();
                        let conn = builder.serve_connection(TokioIo::new(stream), svc);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Some(src) => {
                        let cfg = match src.tls_config() {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::warn!(err = %e, "TLS handshake refused");
                                return;
                            }
                        };
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                        let hs = acceptor.accept(stream);
                        let tls = match read_timeout {
                            Some(d) => match tokio::time::timeout(d, hs).await {
                                Ok(r) => r,
                                Err(_) => return,
                            },
                            None => hs.await,
                        };
                        let Ok(tls) = tls else {
                            return;
                        };
                        let h2 = http2 && tls.get_ref().1.alpn_protocol() == Some(b"h2");
                        if h2 {
                            // HTTP/2 has no header timeout in hyper: a connection that starts
                            // no request for --web.read-timeout (and has none running) is
                            // closed instead, as Go closes idle connections after ReadTimeout.
                            let activity = Activity::new();
                            let svc = TowerToHyperService::new(activity.track(app));
                            let builder = builder.http2_only();
                            let conn = builder.serve_connection(TokioIo::new(tls), svc);
                            let Some(d) = read_timeout else {
                                let _ = watcher.watch(conn.into_owned()).await;
                                return;
                            };
                            // Not under the shared watcher: this task must itself send GOAWAY
                            // when idle, and on shutdown; `_h2_open` holds shutdown until done.
                            let _h2_open = h2_open;
                            let mut conn = std::pin::pin!(conn.into_owned());
                            let mut stopping = stopping;
                            tokio::select! {
                                _ = conn.as_mut() => return,
                                _ = activity.idle_for(d) => {
                                    tracing::debug!("Closing an HTTP/2 connection idle for --web.read-timeout");
                                }
                                _ = stopping.wait_for(|s| *s) => {}
                            }
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                            return;
                        }
                        let builder = builder.http1_only();
                        let conn = builder.serve_connection(TokioIo::new(tls), svc);
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                }
            });
        }
        for a in acceptors {
            a.abort();
        }
        let _ = stopping_tx.send(true);
        drop(h2_open_tx);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(graceful.shutdown(), h2_open_rx.recv());
        })
        .await;
    }
}
