//! `vigil probe`: a prober answering `/probe?target=…&module=…` as the blackbox exporter does,
//! with its metric names, labels and semantics, for the `http` and `tcp` probers (modules from a
//! `blackbox.yml`, or the default `http_2xx` and `tcp_connect`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One module of `blackbox.yml`.
#[derive(Debug, Clone)]
pub struct Module {
    pub prober: String,
    pub timeout: Duration,
    pub http: HttpOptions,
    pub tcp: TcpOptions,
}

#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    pub valid_status_codes: Vec<u16>,
    pub valid_http_versions: Vec<String>,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub no_follow_redirects: bool,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    pub fail_if_body_matches_regexp: Vec<regex::Regex>,
    pub fail_if_body_not_matches_regexp: Vec<regex::Regex>,
}

#[derive(Debug, Clone, Default)]
pub struct TcpOptions {
    /// `query_response`: (expect regex, send line) steps.
    pub query_response: Vec<(Option<regex::Regex>, Option<String>)>,
}

fn duration(v: &Value, default: Duration) -> Duration {
    v.as_str()
        .and_then(|s| {
            let (n, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
            let n: f64 = n.parse().ok()?;
            Some(Duration::from_secs_f64(
                n * match unit {
                    "ms" => 0.001,
                    "s" | "" => 1.0,
                    "m" => 60.0,
                    _ => return None,
                },
            ))
        })
        .unwrap_or(default)
}

fn regexes(v: &Value) -> Result<Vec<regex::Regex>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .map(|r| regex::Regex::new(r).map_err(|e| format!("regexp {r:?}: {e}")))
        .collect()
}

impl Module {
    pub fn from_json(v: &Value) -> Result<Module, String> {
        let prober = v["prober"].as_str().unwrap_or("").to_string();
        if !matches!(prober.as_str(), "http" | "tcp" | "dns" | "icmp" | "grpc") {
            return Err(format!("unknown prober {prober:?}"));
        }
        let h = &v["http"];
        let http = HttpOptions {
            valid_status_codes: h["valid_status_codes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_u64().map(|c| c as u16))
                .collect(),
            valid_http_versions: h["valid_http_versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect(),
            method: h["method"].as_str().unwrap_or("GET").to_string(),
            headers: h["headers"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect(),
            body: h["body"].as_str().unwrap_or("").to_string(),
            no_follow_redirects: h["no_follow_redirects"].as_bool().unwrap_or(false)
                || h["follow_redirects"].as_bool() == Some(false),
            fail_if_ssl: h["fail_if_ssl"].as_bool().unwrap_or(false),
            fail_if_not_ssl: h["fail_if_not_ssl"].as_bool().unwrap_or(false),
            fail_if_body_matches_regexp: regexes(&h["fail_if_body_matches_regexp"])?,
            fail_if_body_not_matches_regexp: regexes(&h["fail_if_body_not_matches_regexp"])?,
        };
        let mut tcp = TcpOptions::default();
        for step in v["tcp"]["query_response"].as_array().into_iter().flatten() {
            let expect = match step["expect"].as_str() {
                Some(r) => Some(regex::Regex::new(r).map_err(|e| format!("expect {r:?}: {e}"))?),
                None => None,
            };
            tcp.query_response
                .push((expect, step["send"].as_str().map(str::to_string)));
        }
        Ok(Module {
            prober,
            timeout: duration(&v["timeout"], Duration::from_secs(5)),
            http,
            tcp,
        })
    }
}

/// Modules by name: the defaults (`http_2xx`, `tcp_connect`), then those of the file.
pub fn load_modules(yaml: Option<&str>) -> Result<BTreeMap<String, Module>, String> {
    let mut out = BTreeMap::new();
    for (name, prober) in [("http_2xx", "http"), ("tcp_connect", "tcp")] {
        out.insert(
            name.to_string(),
            Module::from_json(&serde_json::json!({"prober": prober}))?,
        );
    }
    if let Some(y) = yaml {
        let v: Value = serde_saphyr::from_str(y).map_err(|e| format!("blackbox config: {e}"))?;
        for (name, m) in v["modules"].as_object().into_iter().flatten() {
            out.insert(
                name.clone(),
                Module::from_json(m).map_err(|e| format!("module {name}: {e}"))?,
            );
        }
    }
    Ok(out)
}

/// The metrics of one probe, in exposition order, and the probe log.
#[derive(Default)]
pub struct Outcome {
    pub metrics: Vec<(String, String, f64)>,
    pub log: Vec<String>,
}

impl Outcome {
    fn set(&mut self, name: &str, labels: &str, v: f64) {
        self.metrics.retain(|(n, l, _)| !(n == name && l == labels));
        self.metrics.push((name.to_string(), labels.to_string(), v));
    }
    fn log(&mut self, msg: impl Into<String>) {
        self.log.push(msg.into());
    }
}

/// The blackbox exporter's `probe_ip_addr_hash`: FNV-1a (32 bit) of the address bytes.
fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h as f64
}

/// Resolve `host`, recording `probe_dns_lookup_time_seconds`, `probe_ip_protocol` and
/// `probe_ip_addr_hash` as the exporter does (IPv4 preferred here).
async fn resolve(out: &mut Outcome, host: &str, port: u16) -> Option<SocketAddr> {
    let t = Instant::now();
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => {
            out.log(format!("Error resolving address {host}: {e}"));
            out.set(
                "probe_dns_lookup_time_seconds",
                "",
                t.elapsed().as_secs_f64(),
            );
            // Reported (as zero) even when resolution fails, as the exporter does.
            out.set("probe_ip_protocol", "", 0.0);
            out.set("probe_ip_addr_hash", "", 0.0);
            return None;
        }
    };
    out.set(
        "probe_dns_lookup_time_seconds",
        "",
        t.elapsed().as_secs_f64(),
    );
    let a = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()?;
    out.set("probe_ip_protocol", "", if a.is_ipv4() { 4.0 } else { 6.0 });
    out.set("probe_ip_addr_hash", "", ip_hash(a.ip()));
    out.log(format!("Resolved target address {}", a.ip()));
    Some(a)
}

async fn probe_tcp(m: &Module, target: &str, out: &mut Outcome) -> bool {
    out.set("probe_failed_due_to_regex", "", 0.0);
    let Some((host, port)) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(|c| c == '[' || c == ']'), p.parse().ok()?)))
    else {
        out.log(format!(
            "Error splitting target address and port: {target:?}"
        ));
        return false;
    };
    let Some(addr) = resolve(out, host, port).await else {
        return false;
    };
    let mut conn = match TcpStream::connect(addr).await {
        Ok(c) => c,
        Err(e) => {
            out.log(format!("Error dialing TCP: {e}"));
            return false;
        }
    };
    out.log("Successfully dialed");
    let mut buf = Vec::new();
    for (expect, send) in &m.tcp.query_response {
        if let Some(re) = expect {
            // Read lines until one matches.
            let mut chunk = [0u8; 4096];
            loop {
                let n = match conn.read(&mut chunk).await {
                    Ok(0) | Err(_) => {
                        out.set("probe_failed_due_to_regex", "", 1.0);
                        out.log(format!("Regexp {:?} did not match", re.as_str()));
                        return false;
                    }
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                if re.is_match(&String::from_utf8_lossy(&buf)) {
                    buf.clear();
                    break;
                }
            }
        }
        // An empty `send` sends nothing, as the exporter does.
        if let Some(s) = send.as_ref().filter(|s| !s.is_empty())
            && conn.write_all(format!("{s}\n").as_bytes()).await.is_err()
        {
            out.log("Error writing to connection");
            return false;
        }
    }
    true
}

fn status_ok(m: &Module, code: u16) -> bool {
    if m.http.valid_status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        m.http.valid_status_codes.contains(&code)
    }
}

async fn probe_http(m: &Module, target: &str, out: &mut Outcome) -> bool {
    // The exporter reports the counters (zero when not reached), the resolve phase always and
    // the other phases once the name resolved.
    out.set("probe_http_duration_seconds", "phase=\"resolve\"", 0.0);
    for n in [
        "probe_failed_due_to_regex",
        "probe_http_content_length",
        "probe_http_redirects",
        "probe_http_ssl",
        "probe_http_status_code",
        "probe_http_uncompressed_body_length",
        "probe_http_version",
    ] {
        out.set(n, "", 0.0);
    }
    let target = if target.contains("://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    let mut url = match url::Url::parse(&target) {
        Ok(u) => u,
        Err(e) => {
            out.log(format!("Could not parse target URL: {e}"));
            return false;
        }
    };
    let mut redirects = 0;
    let mut resolve_total = 0.0;
    loop {
        if url.scheme() != "http" {
            out.log(format!(
                "Scheme {:?} is not supported by vigil probe yet (https is on its way)",
                url.scheme()
            ));
            return false;
        }
        let host = url.host_str().unwrap_or("").to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let t = Instant::now();
        let Some(addr) = resolve(out, host.trim_matches(|c| c == '[' || c == ']'), port).await
        else {
            return false;
        };
        resolve_total += t.elapsed().as_secs_f64();
        out.set(
            "probe_http_duration_seconds",
            "phase=\"resolve\"",
            resolve_total,
        );
        for phase in ["connect", "tls", "processing", "transfer"] {
            let l = format!("phase=\"{phase}\"");
            if !out
                .metrics
                .iter()
                .any(|(n, ls, _)| n == "probe_http_duration_seconds" && *ls == l)
            {
                out.set("probe_http_duration_seconds", &l, 0.0);
            }
        }
        let t = Instant::now();
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                out.log(format!("Error for HTTP request: {e}"));
                return false;
            }
        };
        out.set(
            "probe_http_duration_seconds",
            "phase=\"connect\"",
            t.elapsed().as_secs_f64(),
        );
        let t = Instant::now();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
            Ok(x) => x,
            Err(e) => {
                out.log(format!("Error for HTTP request: {e}"));
                return false;
            }
        };
        tokio::spawn(conn);
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut req = axum::http::Request::builder()
            .method(m.http.method.as_str())
            .uri(path)
            .header(header::HOST, url.host_str().unwrap_or(""))
            .header(header::USER_AGENT, "Blackbox Exporter/0.23.0");
        for (k, v) in &m.http.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = match req.body(Full::new(bytes::Bytes::from(m.http.body.clone()))) {
            Ok(r) => r,
            Err(e) => {
                out.log(format!("Error creating request: {e}"));
                return false;
            }
        };
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                out.log(format!("Error for HTTP request: {e}"));
                return false;
            }
        };
        out.set(
            "probe_http_duration_seconds",
            "phase=\"processing\"",
            t.elapsed().as_secs_f64(),
        );
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        if (300..400).contains(&status)
            && !m.http.no_follow_redirects
            && redirects < 10
            && let Some(loc) = location.and_then(|l| url.join(&l).ok())
        {
            redirects += 1;
            out.set("probe_http_redirects", "", redirects as f64);
            out.log(format!("Received redirect to {loc}"));
            url = loc;
            continue;
        }
        let version = match resp.version() {
            axum::http::Version::HTTP_10 => 1.0,
            axum::http::Version::HTTP_11 => 1.1,
            axum::http::Version::HTTP_2 => 2.0,
            _ => 0.0,
        };
        let content_length = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|l| l.to_str().ok()?.parse::<f64>().ok())
            .unwrap_or(-1.0);
        let t = Instant::now();
        let body = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                out.log(format!("Failed to read HTTP response body: {e}"));
                return false;
            }
        };
        out.set(
            "probe_http_duration_seconds",
            "phase=\"transfer\"",
            t.elapsed().as_secs_f64(),
        );
        out.set("probe_http_status_code", "", status as f64);
        out.set("probe_http_version", "", version);
        out.set("probe_http_content_length", "", content_length);
        out.set("probe_http_uncompressed_body_length", "", body.len() as f64);
        out.log(format!("Received HTTP response with status code {status}"));
        let mut ok = status_ok(m, status);
        if !ok {
            out.log(format!(
                "Invalid HTTP response status code {status}, wanted 2xx"
            ));
        }
        if !m.http.valid_http_versions.is_empty() {
            let v = format!(
                "HTTP/{}",
                if version == 1.1 {
                    "1.1".into()
                } else {
                    format!("{version}")
                }
            );
            if !m
                .http
                .valid_http_versions
                .iter()
                .any(|x| x == &v || (x == "HTTP/1.0" && version == 1.0))
            {
                out.log(format!("Invalid HTTP version number {v}"));
                ok = false;
            }
        }
        if m.http.fail_if_not_ssl {
            out.log("Final request was not over SSL");
            ok = false;
        }
        let text = String::from_utf8_lossy(&body);
        if m.http
            .fail_if_body_matches_regexp
            .iter()
            .any(|r| r.is_match(&text))
            || m.http
                .fail_if_body_not_matches_regexp
                .iter()
                .any(|r| !r.is_match(&text))
        {
            out.set("probe_failed_due_to_regex", "", 1.0);
            out.log("Body failed a regular expression check");
            ok = false;
        }
        return ok;
    }
}

/// Run one probe with its timeout; `probe_success` and `probe_duration_seconds` included.
pub async fn probe(m: &Module, target: &str) -> Outcome {
    let mut out = Outcome::default();
    let start = Instant::now();
    out.log(format!(
        "Beginning probe: prober={} timeout_seconds={}",
        m.prober,
        m.timeout.as_secs_f64()
    ));
    let fut = async {
        let mut o = Outcome::default();
        let ok = match m.prober.as_str() {
            "http" => probe_http(m, target, &mut o).await,
            "tcp" => probe_tcp(m, target, &mut o).await,
            other => {
                o.log(format!(
                    "Prober {other:?} is not supported by vigil probe yet"
                ));
                false
            }
        };
        (ok, o)
    };
    let ok = match tokio::time::timeout(m.timeout, fut).await {
        Ok((ok, o)) => {
            out.metrics.extend(o.metrics);
            out.log.extend(o.log);
            ok
        }
        Err(_) => {
            out.log("Timeout reached");
            false
        }
    };
    out.set("probe_duration_seconds", "", start.elapsed().as_secs_f64());
    out.set("probe_success", "", if ok { 1.0 } else { 0.0 });
    out.log(if ok {
        "Probe succeeded"
    } else {
        "Probe failed"
    });
    out
}

const HELP: [(&str, &str, &str); 16] = [
    (
        "probe_dns_lookup_time_seconds",
        "gauge",
        "Returns the time taken for probe dns lookup in seconds",
    ),
    (
        "probe_duration_seconds",
        "gauge",
        "Returns how long the probe took to complete in seconds",
    ),
    (
        "probe_failed_due_to_regex",
        "gauge",
        "Indicates if probe failed due to regex",
    ),
    (
        "probe_http_content_length",
        "gauge",
        "Length of http content response",
    ),
    (
        "probe_http_duration_seconds",
        "gauge",
        "Duration of http request by phase, summed over all redirects",
    ),
    ("probe_http_redirects", "gauge", "The number of redirects"),
    (
        "probe_http_ssl",
        "gauge",
        "Indicates if SSL was used for the final redirect",
    ),
    (
        "probe_http_status_code",
        "gauge",
        "Response HTTP status code",
    ),
    (
        "probe_http_uncompressed_body_length",
        "gauge",
        "Length of uncompressed response body",
    ),
    (
        "probe_http_version",
        "gauge",
        "Returns the version of HTTP of the probe response",
    ),
    (
        "probe_ip_addr_hash",
        "gauge",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
    ),
    (
        "probe_ip_protocol",
        "gauge",
        "Specifies whether probe ip protocol is IP4 or IP6",
    ),
    (
        "probe_success",
        "gauge",
        "Displays whether or not the probe was a success",
    ),
    (
        "probe_http_last_modified_timestamp_seconds",
        "gauge",
        "Returns the Last-Modified HTTP response header in unixtime",
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "gauge",
        "Returns earliest SSL cert expiry in unixtime",
    ),
    (
        "probe_tls_version_info",
        "gauge",
        "Contains the TLS version used",
    ),
];

/// The outcome as the exporter's text exposition (sorted by name, HELP and TYPE per family).
pub fn exposition(o: &Outcome) -> String {
    let mut ms = o.metrics.clone();
    ms.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut s = String::new();
    let mut last = "";
    for (name, labels, v) in &ms {
        if name != last {
            let (typ, help) = HELP
                .iter()
                .find(|h| h.0 == name)
                .map(|h| (h.1, h.2))
                .unwrap_or(("gauge", ""));
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {typ}\n"));
            last = name;
        }
        if labels.is_empty() {
            s.push_str(&format!("{name} {v}\n"));
        } else {
            s.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    }
    s
}

pub struct ProbeState {
    pub modules: BTreeMap<String, Module>,
    pub probes: std::sync::atomic::AtomicU64,
}

fn query_param(q: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn probe_handler(State(s): State<Arc<ProbeState>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let module_name = query_param(&q, "module").unwrap_or_else(|| "http_2xx".into());
    let Some(module) = s.modules.get(&module_name) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            format!("Unknown module {module_name:?}"),
        )
            .into_response();
    };
    let Some(target) = query_param(&q, "target") else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "Target parameter is missing",
        )
            .into_response();
    };
    s.probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let o = probe(module, &target).await;
    if query_param(&q, "debug").as_deref() == Some("true") {
        let body = format!(
            "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\nprober: {}\ntimeout: {:?}\n",
            o.log.join("\n"),
            exposition(&o),
            module.prober,
            module.timeout
        );
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        exposition(&o),
    )
        .into_response()
}

async fn metrics_handler(State(s): State<Arc<ProbeState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        format!(
            "# HELP vigil_probe_requests_total Probes run.\n# TYPE vigil_probe_requests_total counter\nvigil_probe_requests_total {}\n",
            s.probes.load(std::sync::atomic::Ordering::Relaxed)
        ),
    )
        .into_response()
}

pub fn router(state: Arc<ProbeState>) -> Router {
    Router::new()
        .route("/probe", get(probe_handler))
        .route("/metrics", get(metrics_handler))
        .route(
            "/",
            get(|| async {
                axum::response::Html(
                    "<h1>vigil probe</h1><p>Blackbox-exporter-compatible: <a href=\"/probe?target=prometheus.io&module=http_2xx&debug=true\">/probe?target=…&amp;module=…</a>, <a href=\"/metrics\">/metrics</a></p>",
                )
            }),
        )
        .with_state(state)
}
