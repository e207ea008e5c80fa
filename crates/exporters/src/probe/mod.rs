//! `vigil probe`: a prober answering `/probe?target=…&module=…` as the blackbox exporter does,
//! with its metric names, labels and semantics, for the `http`, `tcp`, `dns` and `icmp` probers
//! (modules from a `blackbox.yml`, or the default `http_2xx` and `tcp_connect`).

mod cert;
mod config;
mod dns;
mod http;
pub use http::set_body_budget;
mod icmp;
mod options;
mod tcp;
mod tls;

pub use config::{ConfigError, Module, load_file, load_modules};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use options::IpPreference;

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
    /// Add to a value (phases summed over redirects), creating it at zero.
    fn add(&mut self, name: &str, labels: &str, v: f64) {
        match self
            .metrics
            .iter_mut()
            .find(|(n, l, _)| n == name && l == labels)
        {
            Some(m) => m.2 += v,
            None => self.metrics.push((name.to_string(), labels.to_string(), v)),
        }
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
/// `probe_ip_addr_hash` as the exporter does, choosing the family as `preferred_ip_protocol`
/// and `ip_protocol_fallback` say.
async fn resolve(
    out: &mut Outcome,
    host: &str,
    port: u16,
    pref: &IpPreference,
) -> Option<SocketAddr> {
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
    let preferred = addrs.iter().find(|a| a.is_ipv6() == pref.ip6_first);
    let Some(a) = preferred
        .or_else(|| addrs.first().filter(|_| pref.fallback))
        .copied()
    else {
        out.log(format!(
            "Resolution of {host} gave no {} address and fallback is off",
            if pref.ip6_first { "IPv6" } else { "IPv4" }
        ));
        out.set("probe_ip_protocol", "", 0.0);
        out.set("probe_ip_addr_hash", "", 0.0);
        return None;
    };
    out.set("probe_ip_protocol", "", if a.is_ipv4() { 4.0 } else { 6.0 });
    out.set("probe_ip_addr_hash", "", ip_hash(a.ip()));
    out.log(format!("Resolved target address {}", a.ip()));
    Some(a)
}

/// How long a probe may run: the scrape's timeout (Prometheus sends it in
/// `X-Prometheus-Scrape-Timeout-Seconds`) less `--timeout-offset` (120 s less it without
/// one), and no longer than the module's `timeout` when it sets one.
pub fn effective_timeout(m: &Module, scrape_timeout: Option<f64>, offset: f64) -> Duration {
    let from_scrape = scrape_timeout
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(120.0);
    let from_scrape = if from_scrape > offset {
        from_scrape - offset
    } else {
        from_scrape
    };
    // The header comes from whoever asks: `1e20` must not panic the conversion. No probe
    // needs more than a day.
    let t = Duration::from_secs_f64(from_scrape.clamp(0.001, 86_400.0));
    match m.timeout {
        Some(mt) if !mt.is_zero() && mt < t => mt,
        _ => t,
    }
}

/// Run one probe within `timeout`; `probe_success` and `probe_duration_seconds` included. A
/// probe cut short keeps what it measured so far, as the exporter's registry does.
pub async fn probe(m: &Module, target: &str, timeout: Duration) -> Outcome {
    let mut out = Outcome::default();
    let start = Instant::now();
    out.log(format!(
        "Beginning probe: prober={} timeout_seconds={}",
        m.prober,
        timeout.as_secs_f64()
    ));
    let ok = if !m.unsupported.is_empty() {
        out.log(format!(
            "This module uses what vigil probe does not implement yet: {}",
            m.unsupported.join(", ")
        ));
        false
    } else {
        let run = async {
            match m.prober.as_str() {
                "http" => http::probe_http(&m.http, target, &mut out).await,
                "tcp" => tcp::probe_tcp(&m.tcp, target, &mut out).await,
                "dns" => dns::probe_dns(&m.dns, target, &mut out).await,
                "icmp" => icmp::probe_icmp(&m.icmp, target, start + timeout, &mut out).await,
                _ => false,
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(ok) => ok,
            Err(_) => {
                out.log("Timeout reached");
                false
            }
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

const HELP: [(&str, &str, &str); 26] = [
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
        "probe_dns_duration_seconds",
        "gauge",
        "Duration of DNS request by phase",
    ),
    (
        "probe_dns_answer_rrs",
        "gauge",
        "Returns number of entries in the answer resource record list",
    ),
    (
        "probe_dns_authority_rrs",
        "gauge",
        "Returns number of entries in the authority resource record list",
    ),
    (
        "probe_dns_additional_rrs",
        "gauge",
        "Returns number of entries in the additional resource record list",
    ),
    (
        "probe_dns_query_succeeded",
        "gauge",
        "Displays whether or not the query was executed successfully",
    ),
    (
        "probe_dns_serial",
        "gauge",
        "Returns the serial number of the zone",
    ),
    (
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "gauge",
        "Returns last SSL chain expiry in timestamp",
    ),
    (
        "probe_ssl_last_chain_info",
        "gauge",
        "Contains SSL leaf certificate information",
    ),
    (
        "probe_icmp_duration_seconds",
        "gauge",
        "Duration of icmp request by phase",
    ),
    (
        "probe_icmp_reply_hop_limit",
        "gauge",
        "Replied packet hop limit (TTL for ipv4)",
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

/// How `vigil probe` runs (its flags, the blackbox exporter's).
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// `--config.file`, re-read by `/-/reload`, SIGHUP and `--config.enable-auto-reload`.
    pub config_file: Option<std::path::PathBuf>,
    /// `--timeout-offset`: seconds taken off the scrape's timeout.
    pub timeout_offset: f64,
    /// `--log.prober`: the level each probe's log lines are logged at.
    pub prober_log: tracing::Level,
    /// `--history.limit`: probes kept for `/` and `/logs`.
    pub history_limit: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            config_file: None,
            timeout_offset: 0.5,
            prober_log: tracing::Level::INFO,
            history_limit: 100,
        }
    }
}

/// One probe of the history.
struct Record {
    id: u64,
    module: String,
    target: String,
    success: bool,
    debug: String,
}

pub struct ProbeState {
    modules: parking_lot::RwLock<BTreeMap<String, Module>>,
    pub probes: std::sync::atomic::AtomicU64,
    opts: ProbeOptions,
    history: parking_lot::Mutex<std::collections::VecDeque<Record>>,
    reloads_failed: std::sync::atomic::AtomicU64,
}

impl ProbeState {
    pub fn new(modules: BTreeMap<String, Module>, opts: ProbeOptions) -> ProbeState {
        ProbeState {
            modules: parking_lot::RwLock::new(modules),
            probes: Default::default(),
            opts,
            history: Default::default(),
            reloads_failed: Default::default(),
        }
    }

    /// Read `--config.file` again; on an error the modules in use stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.opts.config_file else {
            return Ok(());
        };
        match load_file(path) {
            Ok(m) => {
                *self.modules.write() = m;
                tracing::info!(file = %path.display(), "Loaded config file");
                Ok(())
            }
            Err(e) => {
                self.reloads_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(err = %e, "Error reloading config");
                Err(e)
            }
        }
    }

    fn remember(&self, module: &str, target: &str, o: &Outcome, debug: String) {
        if self.opts.history_limit == 0 {
            return;
        }
        let mut h = self.history.lock();
        let id = h.back().map_or(0, |r| r.id + 1);
        h.push_back(Record {
            id,
            module: module.to_string(),
            target: target.to_string(),
            success: o
                .metrics
                .iter()
                .any(|m| m.0 == "probe_success" && m.2 == 1.0),
            debug,
        });
        while h.len() > self.opts.history_limit {
            h.pop_front();
        }
    }
}

/// The probe's log at `--log.prober`'s level.
fn log_probe(level: tracing::Level, module: &str, target: &str, lines: &[String]) {
    for l in lines {
        match level {
            tracing::Level::ERROR => tracing::error!(module, target, "{l}"),
            tracing::Level::WARN => tracing::warn!(module, target, "{l}"),
            tracing::Level::INFO => tracing::info!(module, target, "{l}"),
            _ => tracing::debug!(module, target, "{l}"),
        }
    }
}

fn query_param(q: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn probe_handler(
    State(s): State<Arc<ProbeState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let q = q.unwrap_or_default();
    let module_name = query_param(&q, "module").unwrap_or_else(|| "http_2xx".into());
    let Some(module) = s.modules.read().get(&module_name).cloned() else {
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
    let scrape_timeout = headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
    let timeout = effective_timeout(&module, scrape_timeout, s.opts.timeout_offset);
    let o = probe(&module, &target, timeout).await;
    log_probe(s.opts.prober_log, &module_name, &target, &o.log);
    let debug = format!(
        "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\nprober: {}\ntimeout: {}\n",
        o.log.join("\n"),
        exposition(&o),
        module.prober,
        module
            .timeout
            .map(|t| format!("{:?}", t))
            .unwrap_or_else(|| "0s".into())
    );
    s.remember(&module_name, &target, &o, debug.clone());
    if query_param(&q, "debug").as_deref() == Some("true") {
        return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], debug).into_response();
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
    use std::sync::atomic::Ordering::Relaxed;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        format!(
            "# HELP vigil_probe_requests_total Probes run.\n# TYPE vigil_probe_requests_total counter\nvigil_probe_requests_total {}\n# HELP blackbox_exporter_config_last_reload_successful Blackbox exporter config loaded successfully.\n# TYPE blackbox_exporter_config_last_reload_successful gauge\nblackbox_exporter_config_last_reload_successful {}\n",
            s.probes.load(Relaxed),
            if s.reloads_failed.load(Relaxed) == 0 { 1 } else { 0 },
        ),
    )
        .into_response()
}

/// `/logs?id=N` or `/logs?target=T` (the newest probe of it): the probe's debug output.
async fn logs_handler(State(s): State<Arc<ProbeState>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let h = s.history.lock();
    let rec = match (query_param(&q, "id"), query_param(&q, "target")) {
        (Some(id), None) => id
            .parse::<u64>()
            .ok()
            .and_then(|id| h.iter().find(|r| r.id == id)),
        (None, Some(t)) => h.iter().rev().find(|r| r.target == t),
        _ => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                "Exactly one of id or target must be given",
            )
                .into_response();
        }
    };
    match rec {
        Some(r) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.debug.clone(),
        )
            .into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, "Probe not found").into_response(),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The landing page: links and the recent probes, newest first.
async fn index_handler(State(s): State<Arc<ProbeState>>) -> Response {
    let mut rows = String::new();
    for r in s.history.lock().iter().rev() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href=\"logs?id={}\">Logs</a></td></tr>",
            html_escape(&r.module),
            html_escape(&r.target),
            if r.success {
                "Success"
            } else {
                "<strong>Failure</strong>"
            },
            r.id
        ));
    }
    axum::response::Html(format!(
        "<h1>vigil probe</h1><p>Blackbox-exporter-compatible: <a href=\"probe?target=prometheus.io&module=http_2xx&debug=true\">probe?target=…&amp;module=…</a>, <a href=\"metrics\">metrics</a></p><h2>Recent probes</h2><table border=\"1\"><tr><th>Module</th><th>Target</th><th>Result</th><th>Debug</th></tr>{rows}</table>"
    ))
    .into_response()
}

/// The prober's routes, under `prefix` (`""` or `/path`, from `--web.route-prefix` or the
/// external URL's path).
pub fn router(state: Arc<ProbeState>, prefix: &str) -> Router {
    let reload_state = state.clone();
    let index_state = state.clone();
    let app = Router::new()
        .route("/probe", get(probe_handler))
        .route("/metrics", get(metrics_handler))
        .route("/logs", get(logs_handler))
        .route("/-/healthy", get(|| async { "Healthy" }))
        .route(
            "/-/reload",
            axum::routing::post(move || {
                let s = reload_state.clone();
                async move {
                    match tokio::task::spawn_blocking(move || s.reload()).await {
                        Ok(Ok(())) => "OK".into_response(),
                        Ok(Err(e)) => (
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                            format!("failed to reload config: {e}"),
                        )
                            .into_response(),
                        Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                            .into_response(),
                    }
                }
            })
            .fallback(|| async {
                (
                    axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    "This endpoint requires a POST request.\n",
                )
            }),
        )
        .route("/", get(index_handler))
        .with_state(state);
    if prefix.is_empty() {
        app
    } else {
        // `/prefix/` is the landing page too; `/` points there.
        let home = format!("{prefix}/");
        Router::new()
            .nest(prefix, app)
            .route(&home, get(index_handler).with_state(index_state))
            .route("/", get(index_handler_redirect(home)))
    }
}

fn index_handler_redirect(
    to: String,
) -> impl Fn() -> std::future::Ready<axum::response::Redirect> + Clone + Send + Sync + 'static {
    move || std::future::ready(axum::response::Redirect::to(&to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_from_the_scrape_and_the_module() {
        let mods = load_modules(Some(
            "modules:\n  short:\n    prober: tcp\n    timeout: 2s\n",
        ))
        .unwrap();
        let (plain, short) = (&mods["tcp_connect"], &mods["short"]);
        assert_eq!(
            effective_timeout(plain, None, 0.5),
            Duration::from_secs_f64(119.5)
        );
        assert_eq!(
            effective_timeout(plain, Some(10.0), 0.5),
            Duration::from_secs_f64(9.5)
        );
        assert_eq!(
            effective_timeout(short, Some(10.0), 0.5),
            Duration::from_secs(2)
        );
        assert_eq!(
            effective_timeout(plain, Some(10.0), 2.0),
            Duration::from_secs(8)
        );
        assert_eq!(
            effective_timeout(short, Some(1.0), 0.5),
            Duration::from_secs_f64(0.5)
        );
        // Whatever the header says, the conversion does not panic.
        assert_eq!(
            effective_timeout(plain, Some(1e20), 0.5),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            effective_timeout(plain, Some(10.0), -1e308),
            Duration::from_secs(86_400)
        );
    }

    #[tokio::test]
    async fn a_timed_out_probe_keeps_what_it_measured() {
        // A listener that accepts and never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = l.accept().await {
                held.push(c);
            }
        });
        let mods = load_modules(None).unwrap();
        let o = probe(
            &mods["http_2xx"],
            &format!("http://127.0.0.1:{port}/"),
            Duration::from_millis(300),
        )
        .await;
        let get = |n: &str, l: &str| o.metrics.iter().find(|m| m.0 == n && m.1 == l).map(|m| m.2);
        assert_eq!(get("probe_success", ""), Some(0.0));
        assert_eq!(get("probe_ip_protocol", ""), Some(4.0));
        assert!(get("probe_http_duration_seconds", "phase=\"connect\"").is_some());
        assert!(o.log.iter().any(|l| l == "Timeout reached"));
    }
}
