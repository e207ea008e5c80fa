//! The HTTP side of a scrape: one client per scrape pool, built from the job's
//! `HttpClientConfig`; one request per scrape with Prometheus's headers; the body streamed so
//! `body_size_limit` stops an oversized response early.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};
use vigil_config::{HttpClientConfig, ScrapeConfig, ScrapeProtocol};

/// Why a scrape produced no body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    #[error("Get {0:?}: context deadline exceeded")]
    Timeout(String),
}

/// A fetched body and what the server said it is.
pub struct Fetched {
    pub body: Bytes,
    pub content_type: String,
}

/// Builds requests for one pool.
pub struct Scraper {
    client: reqwest::Client,
    accept: HeaderValue,
    compression: bool,
    auth: Option<HeaderValue>,
    auth_file: Option<(String, String)>,
    /// `http_headers` whose values are files: name and path, read per request.
    header_files: Vec<(HeaderName, String)>,
    oauth2: Option<crate::oauth2::TokenSource>,
    body_limit: u64,
}

/// Make sure rustls has its process-wide crypto provider (ring; no C build).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("unable to read {what} {path}: {e}"))
}

/// The Accept header Prometheus sends for the configured protocols, most preferred first.
/// Protocols vigil cannot parse (protobuf) are left out.
pub fn accept_header(protocols: &[ScrapeProtocol]) -> String {
    let mut parts = Vec::new();
    let mut q = 10u32;
    for p in protocols {
        let mime = match p {
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::PrometheusProto => continue,
        };
        q = q.saturating_sub(1).max(2);
        parts.push(format!("{mime};q=0.{q}"));
    }
    parts.push("*/*;q=0.1".into());
    parts.join(",")
}

impl Scraper {
    pub fn new(cfg: &ScrapeConfig) -> Result<Self, String> {
        Self::with_http(
            &cfg.http_client,
            &cfg.scrape_protocols,
            cfg.enable_compression,
            cfg.body_size_limit,
        )
    }

    /// A client for `h` (TLS, auth, proxy, headers) outside a scrape config: the notifier
    /// talks to Alertmanager with the same settings Prometheus allows there.
    pub fn with_http(
        h: &HttpClientConfig,
        protocols: &[ScrapeProtocol],
        compression: bool,
        body_limit: u64,
    ) -> Result<Self, String> {
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .redirect(if h.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true);
        let tls = &h.tls_config;
        if tls.server_name.is_some() {
            // The certificate is checked against `server_name`, not the URL's host: the TLS
            // setup is built by `crate::tls` then (CA, client certificate and versions too).
            b = b.tls_backend_preconfigured(crate::tls::client_config(tls)?);
        }
        if tls.server_name.is_none() {
            // A configured CA replaces the system roots, as in Prometheus.
            let ca_pem = match (&tls.ca_file, &tls.ca) {
                (Some(f), _) => Some(read_file(f, "CA file")?),
                (None, Some(c)) => Some(c.as_bytes().to_vec()),
                _ => None,
            };
            if let Some(pem) = ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("unable to use specified CA cert: {e}"))?;
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
                    .map_err(|e| format!("unable to use client certificate: {e}"))?;
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
            b = b.proxy(
                reqwest::Proxy::all(p).map_err(|e| format!("invalid proxy_url {p:?}: {e}"))?,
            );
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
                .map_err(|_| format!("invalid http_headers name {name:?}"))?;
            for v in values {
                headers.append(n.clone(), header(v)?);
            }
        }

        let mut header_files = Vec::new();
        for (name, files) in &h.http_header_files {
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid http_headers name {name:?}"))?;
            for f in files {
                read_file(f, "http_headers file")?; // fail the reload early if missing
                header_files.push((n.clone(), f.clone()));
            }
        }
        b = b.default_headers(headers);
        if !compression {
            b = b.no_gzip();
        }
        let client = b
            .build()
            .map_err(|e| format!("unable to build HTTP client: {e}"))?;

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
            accept: header(&accept_header(protocols))?,
            compression,
            auth,
            auth_file,
            header_files,
            oauth2: h
                .oauth2
                .as_ref()
                .map(crate::oauth2::TokenSource::new)
                .transpose()?,
            body_limit,
        })
    }

    /// The `http_headers` values kept in files, read now: Prometheus re-reads them for every
    /// request so rotated tokens are picked up.
    fn file_headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        let mut out = Vec::with_capacity(self.header_files.len());
        for (n, f) in &self.header_files {
            let v = read_file(f, "http_headers file")?;
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
        let run = async {
            let mut req = self.client.post(url).body(body);
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
            let resp = req
                .send()
                .await
                .map_err(|e| format!("Post {url:?}: {}", err_chain(&e)))?;
            let status = resp.status().as_u16();
            // Error bodies are for the log: the first KiB is enough.
            let text = if (200..300).contains(&status) {
                String::new()
            } else {
                let b = resp.bytes().await.unwrap_or_default();
                String::from_utf8_lossy(&b[..b.len().min(1024)])
                    .trim()
                    .to_string()
            };
            Ok((status, text))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("Post {url:?}: context deadline exceeded")),
        }
    }

    pub async fn fetch(&self, url: &str, timeout: Duration) -> Result<Fetched, ScrapeError> {
        let run = async {
            let mut req = self
                .client
                .get(url)
                .header(ACCEPT, self.accept.clone())
                .header(
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
            let mut buf = BytesMut::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| ScrapeError::Http(format!("Get {url:?}: {}", err_chain(&e))))?
            {
                if self.body_limit > 0 && (buf.len() + chunk.len()) as u64 > self.body_limit {
                    return Err(ScrapeError::BodySizeLimit);
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(Fetched {
                body: buf.freeze(),
                content_type,
            })
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(ScrapeError::Timeout(url.to_string())),
        }
    }
}

fn header(s: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(s).map_err(|_| "invalid characters in authorization header".to_string())
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
        let a = accept_header(&[
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4,
        ]);
        assert_eq!(
            a,
            "application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.8,*/*;q=0.1"
        );
    }
}
