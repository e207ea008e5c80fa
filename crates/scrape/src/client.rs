//! The HTTP side of a scrape: one client per scrape pool, built from the job's
//! `HttpClientConfig`; one request per scrape with Prometheus's headers; the body streamed so
//! `body_size_limit` stops an oversized response early.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::body_pool::Body;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HOST, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};
use vigil_config::{HttpClientConfig, NameEscaping, ScrapeConfig, ScrapeProtocol};

/// Why a scrape produced no body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    /// The bodies being read at once would pass their budget (see `body_pool`).
    #[error(
        "the body would pass vigil's bound on scrape bodies: {budget} bytes for all being read at once (a quarter of memory), half of that for one; it reached {wanted} bytes (set body_size_limit to bound one target)"
    )]
    BodyBudget { budget: usize, wanted: usize },
    #[error("Get {0:?}: context deadline exceeded")]
    Timeout(String),
}

/// Why a client cannot be built from its settings (scrape configs, remote write and read,
/// Alertmanagers): a reload that meets one changes nothing and says which setting.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A file the settings name cannot be read: CA, certificate, key, password, token,
    /// header values.
    #[error("unable to read {what} {path}: {err}")]
    File {
        what: &'static str,
        path: String,
        err: std::io::Error,
    },
    /// TLS material or settings that cannot be used.
    #[error("{0}")]
    Tls(String),
    /// A setting whose value cannot be used: proxy URL, header name or value.
    #[error("{0}")]
    Invalid(String),
    /// The OAuth 2.0 token source cannot be set up.
    #[error("oauth2: {0}")]
    OAuth2(String),
    /// The HTTP library refused the settings as assembled.
    #[error("unable to build HTTP client: {0}")]
    Build(String),
}

/// A fetched body and what the server said it is. The body's buffer goes back to
/// [`crate::body_pool::BODIES`] when dropped.
pub struct Fetched {
    pub body: Body,
    pub content_type: String,
}

/// Builds requests for one pool.
pub struct Scraper {
    client: reqwest::Client,
    accept: HeaderValue,
    /// When the protocol order follows native histograms (no `scrape_protocols` set): the
    /// Accept header of a target that scrapes them (protobuf first), and of one that does not.
    accept_by_native: Option<(HeaderValue, HeaderValue)>,
    compression: bool,
    auth: Option<HeaderValue>,
    auth_file: Option<(String, String)>,
    /// `http_headers` whose values are files: name and path, read per request.
    header_files: Vec<(HeaderName, String)>,
    /// Set when `tls_config.server_name` is to be sent as SNI.
    sni: Option<SniRoute>,
    oauth2: Option<crate::oauth2::TokenSource>,
    body_limit: u64,
}

/// Make sure rustls has its process-wide crypto provider (ring; no C build).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Requests for HTTPS targets sent to `tls_config.server_name` so it is the SNI (and the
/// name checked), each resolved to the target's real address by a client of its own.
struct SniRoute {
    name: String,
    http: HttpClientConfig,
    compression: bool,
    clients: Mutex<HashMap<SocketAddr, reqwest::Client>>,
}

/// A client with default settings and `timeout`, for vigil's own calls (the demo's apps and
/// commands); it builds on a machine with no CA certificates too.
pub fn default_client(timeout: std::time::Duration) -> Result<reqwest::Client, ClientError> {
    let tls = vigil_config::TlsConfig::default();
    let mut b = reqwest::Client::builder().timeout(timeout);
    if crate::tls::needs_own_config(&tls) {
        b = b.tls_backend_preconfigured(crate::tls::client_config(&tls)?);
    }
    b.build().map_err(|e| ClientError::Build(e.to_string()))
}

/// The HTTP client for `h`; `resolve` pins a host name to an address.
fn build_client(
    h: &HttpClientConfig,
    compression: bool,
    resolve: Option<(&str, SocketAddr)>,
) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .redirect(if h.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true);
    let tls = &h.tls_config;
    if crate::tls::needs_own_config(tls) {
        // The certificate is checked against `server_name`, not the URL's host, or there
        // are no system roots: the TLS setup is built by `crate::tls` then (CA, client
        // certificate and versions too).
        b = b.tls_backend_preconfigured(crate::tls::client_config(tls)?);
    } else {
        // A configured CA replaces the system roots, as in Prometheus.
        let ca_pem = match (&tls.ca_file, &tls.ca) {
            (Some(f), _) => Some(read_file(f, "CA file")?),
            (None, Some(c)) => Some(c.as_bytes().to_vec()),
            _ => None,
        };
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Tls(format!("unable to use specified CA cert: {e}")))?;
            b = b.tls_certs_only(certs);
        }
        let cert = match (&tls.cert_file, &tls.cert) {
            (Some(f), _) => Some(read_file(f, "client certificate")?),
            (None, Some(c)) => Some(c.as_bytes().to_vec()),
            _ => None,
        };
        let key = match (&tls.key_file, &tls.key) {
            (Some(f), _) => Some(read_file(f, "client key")?),
            (None, Some(k)) => Some(k.0.as_bytes().to_vec()),
            _ => None,
        };
        if let (Some(mut cert), Some(key)) = (cert, key) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let id = reqwest::Identity::from_pem(&cert)
                .map_err(|e| ClientError::Tls(format!("unable to use client certificate: {e}")))?;
            b = b.identity(id);
        }
        let version = |v: &str| match v {
            "TLS10" => Some(reqwest::tls::Version::TLS_1_0),
            "TLS11" => Some(reqwest::tls::Version::TLS_1_1),
            "TLS12" => Some(reqwest::tls::Version::TLS_1_2),
            "TLS13" => Some(reqwest::tls::Version::TLS_1_3),
            _ => None,
        };
        if let Some(v) = tls.min_version.as_deref().and_then(version) {
            b = b.tls_version_min(v);
        }
        if let Some(v) = tls.max_version.as_deref().and_then(version) {
            b = b.tls_version_max(v);
        }
        if tls.insecure_skip_verify {
            b = b.tls_danger_accept_invalid_certs(true);
        }
    }
    if let Some(p) = &h.proxy_url {
        let mut proxy = reqwest::Proxy::all(p)
            .map_err(|e| ClientError::Invalid(format!("invalid proxy_url {p:?}: {e}")))?;
        // Hosts, domains and CIDRs that bypass the proxy, comma-separated as in Go's
        // `NO_PROXY` (which is what Prometheus's `no_proxy` feeds).
        if let Some(list) = &h.no_proxy {
            proxy = proxy.no_proxy(reqwest::NoProxy::from_string(list));
        }
        b = b.proxy(proxy);
    } else if !h.proxy_from_environment {
        b = b.no_proxy();
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("vigil/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, values) in &h.http_headers {
        let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ClientError::Invalid(format!("invalid http_headers name {name:?}")))?;
        for v in values {
            headers.append(n.clone(), header(v)?);
        }
    }

    b = b.default_headers(headers);
    if !compression {
        b = b.no_gzip();
    }
    if let Some((name, addr)) = resolve {
        b = b.resolve(name, addr);
    }
    b.build().map_err(|e| {
        // reqwest says only "builder error"; the reason is in the sources.
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why.push_str(&format!(": {s}"));
            source = s.source();
        }
        ClientError::Build(why)
    })
}

pub(crate) fn read_file(path: &str, what: &'static str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|err| ClientError::File {
        what,
        path: path.to_string(),
        err,
    })
}

/// An answer to a POST: the status, (the start of) an error body, and the response headers
/// asked for.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub headers: Vec<Option<String>>,
}

/// Whether an error, or any error under it, is a refused TCP connection.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The Accept header Prometheus sends for the configured protocols, most preferred first:
/// weights count down from 0.6 (one more than the protocols there are), and the two formats
/// that can carry quoted names (text 1.0.0, OpenMetrics 1.0.0) say which `escaping` the scrape
/// wants.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: NameEscaping) -> String {
    let mut parts = Vec::new();
    let mut q = ScrapeProtocol::ALL.len() as u32 + 1;
    for p in protocols {
        let mime = match p {
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
        };
        let esc = match p {
            ScrapeProtocol::OpenMetricsText1_0_0 | ScrapeProtocol::PrometheusText1_0_0 => {
                format!(";escaping={}", escaping.as_str())
            }
            _ => String::new(),
        };
        parts.push(format!("{mime}{esc};q=0.{q}"));
        q = q.saturating_sub(1).max(1);
    }
    parts.push(format!("*/*;q=0.{q}"));
    parts.join(",")
}

impl Scraper {
    pub fn new(cfg: &ScrapeConfig) -> Result<Self, ClientError> {
        let mut s = Self::with_http(
            &cfg.http_client,
            &cfg.scrape_protocols,
            cfg.name_escaping,
            cfg.enable_compression,
            cfg.body_size_limit,
        )?;
        if cfg.protocols_follow_native {
            s.accept_by_native = Some((
                header(&accept_header(
                    &ScrapeProtocol::proto_first(),
                    cfg.name_escaping,
                ))?,
                header(&accept_header(
                    &ScrapeProtocol::defaults(),
                    cfg.name_escaping,
                ))?,
            ));
        }
        Ok(s)
    }

    /// A client for `h` (TLS, auth, proxy, headers) outside a scrape config: the notifier
    /// talks to Alertmanager with the same settings Prometheus allows there.
    pub fn with_http(
        h: &HttpClientConfig,
        protocols: &[ScrapeProtocol],
        escaping: NameEscaping,
        compression: bool,
        body_limit: u64,
    ) -> Result<Self, ClientError> {
        install_crypto_provider();
        let client = build_client(h, compression, None)?;
        let mut header_files = Vec::new();
        for (name, files) in &h.http_header_files {
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ClientError::Invalid(format!("invalid http_headers name {name:?}")))?;
            for f in files {
                read_file(f, "http_headers file")?; // fail the reload early if missing
                header_files.push((n.clone(), f.clone()));
            }
        }
        // Go sends `server_name` as SNI; reqwest sends the URL's host (none for a pod IP).
        // So for HTTPS with a server name, requests go to that name, resolved to the target's
        // address by a client per address (through a proxy the URL is left as it is).
        let sni = match &h.tls_config.server_name {
            Some(name) if h.proxy_url.is_none() && !h.proxy_from_environment => Some(SniRoute {
                name: name.clone(),
                http: h.clone(),
                compression,
                clients: Mutex::new(HashMap::new()),
            }),
            _ => None,
        };
        let (auth, auth_file) = if let Some(ba) = &h.basic_auth {
            let user = match &ba.username_file {
                Some(f) => String::from_utf8_lossy(&read_file(f, "username file")?)
                    .trim()
                    .to_string(),
                None => ba.username.clone(),
            };
            let pass = match (&ba.password, &ba.password_file) {
                (_, Some(f)) => String::from_utf8_lossy(&read_file(f, "password file")?)
                    .trim()
                    .to_string(),
                (Some(p), None) => p.0.clone(),
                _ => String::new(),
            };
            let token = base64_encode(format!("{user}:{pass}").as_bytes());
            (Some(header(&format!("Basic {token}"))?), None)
        } else if let Some(a) = &h.authorization {
            match (&a.credentials, &a.credentials_file) {
                (_, Some(f)) => {
                    read_file(f, "authorization credentials file")?; // fail the reload early if missing
                    (None, Some((a.kind.clone(), f.clone())))
                }
                (Some(c), None) => (Some(header(&format!("{} {}", a.kind, c.0))?), None),
                (None, None) => (None, None),
            }
        } else {
            (None, None)
        };
        Ok(Scraper {
            client,
            accept: header(&accept_header(protocols, escaping))?,
            accept_by_native: None,
            compression,
            auth,
            auth_file,
            header_files,
            sni,
            oauth2: h
                .oauth2
                .as_ref()
                .map(crate::oauth2::TokenSource::new)
                .transpose()?,
            body_limit,
        })
    }

    /// The client, URL and `Host` header for a request to `url`: as they are, or with the URL
    /// pointed at `server_name` (and the original host kept in `Host`) when SNI needs it.
    async fn route(&self, url: &str) -> Result<(reqwest::Client, String, Option<String>), String> {
        let Some(sni) = &self.sni else {
            return Ok((self.client.clone(), url.to_string(), None));
        };
        let mut u = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if u.scheme() != "https" {
            return Ok((self.client.clone(), url.to_string(), None));
        }
        let host = u.host_str().unwrap_or("").to_string();
        let port = u.port_or_known_default().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("Get {url:?}: dial tcp: lookup {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("Get {url:?}: dial tcp: lookup {host}: no addresses"))?;
        let authority = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let client = {
            let mut clients = sni.clients.lock().unwrap_or_else(|e| e.into_inner());
            match clients.get(&addr) {
                Some(c) => c.clone(),
                None => {
                    let c = build_client(&sni.http, sni.compression, Some((&sni.name, addr)))
                        .map_err(|e| e.to_string())?;
                    // Targets come and go; a bounded map keeps a churning pool from growing.
                    if clients.len() >= 4096 {
                        clients.clear();
                    }
                    clients.insert(addr, c.clone());
                    c
                }
            }
        };
        u.set_host(Some(&sni.name))
            .map_err(|e| format!("invalid tls_config.server_name {:?}: {e}", sni.name))?;
        Ok((client, u.to_string(), Some(authority)))
    }

    /// The `http_headers` values kept in files, read now: Prometheus re-reads them for every
    /// request so rotated tokens are picked up.
    fn file_headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let mut out = Vec::with_capacity(self.header_files.len());
        for (n, f) in &self.header_files {
            let v = read_file(f, "http_headers file").map_err(|e| e.to_string())?;
            let v = HeaderValue::from_bytes(v.trim_ascii())
                .map_err(|_| format!("http_headers file {f}: not a valid header value"))?;
            out.push((n.clone(), v));
        }
        Ok(out)
    }

    /// POST a JSON body to `url` within `timeout`, with the configured authorization; any 2xx
    /// is success.
    pub async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), String> {
        let (status, _) = self
            .post(url, &[("Content-Type", "application/json")], body, timeout)
            .await?;
        if !(200..300).contains(&status) {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            return Err(format!("bad response status {status} {reason}"));
        }
        Ok(())
    }

    /// POST `body` with `headers` to `url` within `timeout`, with the configured
    /// authorization: the status and (the start of) the response body. Err only when no
    /// response came (connection, TLS, timeout).
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let r = self
            .post_reply(url, headers, body, timeout, &[])
            .await
            .map_err(|e| e.to_string())?;
        Ok((r.status, r.text))
    }

    /// As [`Scraper::post`], with the values of the response headers named in `want` (in
    /// that order; `None` where absent).
    pub async fn post_reply(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
        want: &[&str],
    ) -> Result<Reply, PostError> {
        let run = async {
            let mut resp = self.send_post(url, headers, body).await?;
            let status = resp.status().as_u16();
            let found = want
                .iter()
                .map(|h| {
                    resp.headers()
                        .get(*h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
                .collect();
            // Error bodies are for the log: the first KiB is enough, and no more is read (a
            // receiver's error body may be of any size).
            let text = if (200..300).contains(&status) {
                String::new()
            } else {
                let mut b = Vec::new();
                while b.len() < 1024 {
                    match resp.chunk().await {
                        Ok(Some(c)) => b.extend_from_slice(&c[..c.len().min(1024 - b.len())]),
                        _ => break,
                    }
                }
                String::from_utf8_lossy(&b).trim().to_string()
            };
            Ok(Reply {
                status,
                text,
                headers: found,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(PostError::Failed(format!(
                "Post {url:?}: context deadline exceeded"
            ))),
        }
    }

    /// As [`Scraper::post`], with the whole response: status, `Content-Type` and body (at
    /// most `limit` bytes; a longer body is [`PostError::TooLarge`], read no further). An
    /// error status's body is cut to its first 4 KiB instead: it is only ever shown.
    pub async fn post_read(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
        limit: usize,
    ) -> Result<(u16, String, Vec<u8>), PostError> {
        let run = async {
            let mut resp = self.send_post(url, headers, body).await?;
            let status = resp.status().as_u16();
            let ctype = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut out = Vec::new();
            let error_status = !(200..300).contains(&status);
            while let Some(c) = resp
                .chunk()
                .await
                .map_err(|e| PostError::Failed(format!("Post {url:?}: {}", err_chain(&e))))?
            {
                if error_status {
                    out.extend_from_slice(&c[..c.len().min(4096 - out.len())]);
                    if out.len() >= 4096 {
                        break;
                    }
                    continue;
                }
                if out.len() + c.len() > limit {
                    return Err(PostError::TooLarge(limit));
                }
                out.extend_from_slice(&c);
            }
            Ok((status, ctype, out))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(PostError::Failed(format!(
                "Post {url:?}: context deadline exceeded"
            ))),
        }
    }

    async fn send_post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<reqwest::Response, PostError> {
        let (client, to, host) = self.route(url).await?;
        let mut req = client.post(to).body(body);
        if let Some(h) = host {
            req = req.header(HOST, h);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        for (n, v) in self.file_headers()? {
            req = req.header(n, v);
        }
        if let Some(o) = &self.oauth2 {
            req = req.header(AUTHORIZATION, o.header().await?);
        } else if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        } else if let Some((kind, file)) = &self.auth_file {
            let tok = std::fs::read_to_string(file).map_err(|e| {
                format!("unable to read authorization credentials file {file}: {e}")
            })?;
            req = req.header(AUTHORIZATION, format!("{kind} {}", tok.trim()));
        }
        req.send().await.map_err(|e| {
            let msg = format!("Post {url:?}: {}", err_chain(&e));
            if connection_refused(&e) {
                PostError::Refused(msg)
            } else {
                PostError::Failed(msg)
            }
        })
    }

    /// Fetch `url`. `native`: whether this target scrapes native histograms (its own setting,
    /// which picks the Accept header when no `scrape_protocols` is set).
    pub async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        native: bool,
        size_hint: usize,
    ) -> Result<Fetched, ScrapeError> {
        let accept = match &self.accept_by_native {
            Some((proto_first, plain)) => {
                if native {
                    proto_first
                } else {
                    plain
                }
            }
            None => &self.accept,
        };
        let run = async {
            let (client, to, host) = self.route(url).await.map_err(ScrapeError::Http)?;
            let mut req = client.get(to).header(ACCEPT, accept.clone());
            if let Some(h) = host {
                req = req.header(HOST, h);
            }
            let mut req = req.header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
            if !self.compression {
                req = req.header(ACCEPT_ENCODING, "identity");
            }
            for (n, v) in self.file_headers().map_err(ScrapeError::Http)? {
                req = req.header(n, v);
            }
            if let Some(o) = &self.oauth2 {
                let h = o.header().await.map_err(ScrapeError::Http)?;
                req = req.header(AUTHORIZATION, h);
            } else if let Some(a) = &self.auth {
                req = req.header(AUTHORIZATION, a.clone());
            } else if let Some((kind, file)) = &self.auth_file {
                // Re-read per scrape: tokens in files rotate (service account tokens do).
                let tok = std::fs::read_to_string(file).map_err(|e| {
                    ScrapeError::Http(format!(
                        "unable to read authorization credentials file {file}: {e}"
                    ))
                })?;
                req = req.header(AUTHORIZATION, format!("{kind} {}", tok.trim()));
            }
            let mut resp = req
                .send()
                .await
                .map_err(|e| ScrapeError::Http(format!("Get {url:?}: {}", err_chain(&e))))?;
            if resp.status() != reqwest::StatusCode::OK {
                let s = resp.status();
                return Err(ScrapeError::Status(format!(
                    "{} {}",
                    s.as_u16(),
                    s.canonical_reason().unwrap_or("")
                )));
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            // Sized from the declared length, else from the caller's hint (the target's last
            // body: a decompressed gzip body has no declared length), asked for at most the
            // limit and 64 MiB before a byte arrives, so a body is not grown by doubling: up to
            // twice its size, for every target being scraped at once. The pool may hand out a
            // kept buffer larger than asked, or a new one an eighth larger (see `body_pool`).
            let declared = resp.content_length().unwrap_or(size_hint as u64);
            let cap = match self.body_limit {
                0 => 64 << 20,
                l => l.min(64 << 20),
            };
            let mut buf = Body::with_capacity(declared.min(cap) as usize);
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| ScrapeError::Http(format!("Get {url:?}: {}", err_chain(&e))))?
            {
                // As Prometheus, which reads at most the limit: a body of exactly the limit
                // fails too.
                if self.body_limit > 0 && (buf.len() + chunk.len()) as u64 >= self.body_limit {
                    return Err(ScrapeError::BodySizeLimit);
                }
                buf.extend_within_budget(&chunk)
                    .map_err(|o| ScrapeError::BodyBudget {
                        budget: o.budget,
                        wanted: o.wanted,
                    })?;
            }
            Ok(Fetched {
                body: buf,
                content_type,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout(url.to_string())),
        }
    }
}

fn header(s: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(s)
        .map_err(|_| ClientError::Invalid("invalid characters in authorization header".into()))
}

/// Why a POST has no answer: callers treat a body over the limit apart (a query's memory
/// budget) from a failed request, and a refused connection (nothing listens on the port) apart
/// from other failures: retrying it costs the receiver no more than a probe would, so remote
/// write retries it sooner than its backoff (`vigil_remote::queue`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("response larger than the {0} bytes allowed")]
    TooLarge(usize),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Refused(String),
}

impl From<String> for PostError {
    fn from(s: String) -> Self {
        PostError::Failed(s)
    }
}

/// The error with its causes, like Go's wrapped error strings.
fn err_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = match chunk.len() {
            3 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8 | chunk[2] as u32,
            2 => (chunk[0] as u32) << 16 | (chunk[1] as u32) << 8,
            _ => (chunk[0] as u32) << 16,
        };
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn accept_prefers_openmetrics() {
        let a = accept_header(
            &[
                ScrapeProtocol::OpenMetricsText1_0_0,
                ScrapeProtocol::PrometheusText0_0_4,
            ],
            NameEscaping::Underscores,
        );
        assert_eq!(
            a,
            "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,text/plain;version=0.0.4;q=0.5,*/*;q=0.4"
        );
        // Prometheus 3's default header, byte for byte (its scrape tests hold it).
        assert_eq!(
            accept_header(&ScrapeProtocol::defaults(), NameEscaping::AllowUtf8),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        let a = accept_header(&ScrapeProtocol::proto_first(), NameEscaping::AllowUtf8);
        assert!(
            a.starts_with(
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,"
            ),
            "{a}"
        );
    }
}
