//! The `http` prober, over plain HTTP or TLS: the request as configured, redirects followed (at most 10,
//! as Go's client), then status, header and body checks in the exporter's order, each only
//! while the probe still succeeds. Phase durations add up over redirects. Its options (the
//! module's `http` section) are read here too.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::header;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::net::TcpStream;
use vigil_model::budget::ByteBudget;

use super::options::{IpPreference, check_keys, ip_preference, regexes};
use super::tls::Tls;
use super::{Outcome, resolve, tls};

#[derive(Debug, Clone)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: regex::Regex,
    pub allow_missing: bool,
}

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub valid_status_codes: Vec<u16>,
    pub valid_http_versions: Vec<String>,
    pub ip: IpPreference,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub no_follow_redirects: bool,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    pub fail_if_body_matches_regexp: Vec<regex::Regex>,
    pub fail_if_body_not_matches_regexp: Vec<regex::Regex>,
    pub fail_if_header_matches: Vec<HeaderMatch>,
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    /// `body_size_limit`: the most of a body read (its bytes as received), `None` for no
    /// limit (`0`, the default); past it the probe fails, as the exporter's does.
    pub body_size_limit: Option<usize>,
    pub tls: Tls,
}

const HTTP_KEYS: [&str; 17] = [
    "tls_config",
    "body_size_limit",
    "valid_status_codes",
    "valid_http_versions",
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "method",
    "headers",
    "body",
    "no_follow_redirects",
    "follow_redirects",
    "fail_if_ssl",
    "fail_if_not_ssl",
    "fail_if_body_matches_regexp",
    "fail_if_body_not_matches_regexp",
    "fail_if_header_matches",
    "fail_if_header_not_matches",
];
/// Keys of the exporter's HTTP probe that vigil does not implement yet.
const HTTP_UNSUPPORTED: [&str; 14] = [
    "skip_resolve_phase_with_proxy",
    "compression",
    "body_file",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "oauth2",
    "enable_http2",
    "http_headers",
];

/// The bytes every probe's body being read holds (its buffer's capacity), and the most they
/// may hold together (the prober sets a quarter of its memory). A probed site that sends
/// without end would otherwise take the prober's memory before the probe's timeout; past the
/// budget the probe fails as a body that cannot be read does, and the prober goes on.
static BUDGET: ByteBudget = ByteBudget::new();

/// Set the most all bodies being probed may hold at once.
pub fn set_body_budget(bytes: usize) {
    BUDGET.set(bytes);
}

/// Bytes counted in [`BUDGET`], given back when dropped.
struct HeldBytes(usize);

impl Drop for HeldBytes {
    fn drop(&mut self) {
        BUDGET.release(self.0);
    }
}

/// Why a body could not be read whole, and what had been read of it.
struct ReadError {
    read: Vec<u8>,
    held: HeldBytes,
    why: String,
}

/// A response body read whole, at most `limit` bytes of it (`body_size_limit`), its buffer's
/// capacity counted against the budget as it grows (at most half of it for one body, so one
/// site cannot take every other probe's room).
async fn read_within_budget(
    mut body: hyper::body::Incoming,
    limit: Option<usize>,
) -> Result<(Vec<u8>, HeldBytes), ReadError> {
    let mut out: Vec<u8> = Vec::new();
    let mut held = HeldBytes(0);
    let fail = |read, held, why| Err(ReadError { read, held, why });
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return fail(out, held, e.to_string()),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let mut chunk = bytes::Buf::chunk(&data);
        // As Go's `http.MaxBytesReader`, which the exporter reads through: the limit's
        // bytes are read, then the read fails.
        let over_limit = limit.is_some_and(|l| out.len() + chunk.len() > l);
        if let Some(l) = limit.filter(|_| over_limit) {
            chunk = &chunk[..l - out.len()];
        }
        if let Err(over) = BUDGET.reserve(&mut out, &mut held.0, chunk.len()) {
            let why = format!(
                "the body would pass vigil's bound on probed bodies: {} bytes for all being read at once (a quarter of memory), half of that for one; it reached {} bytes",
                over.budget, over.wanted
            );
            return fail(out, held, why);
        }
        out.extend_from_slice(chunk);
        if over_limit {
            return fail(out, held, "http: request body too large".into());
        }
    }
    Ok((out, held))
}

/// `body_size_limit` as the exporter reads it: a size with its unit (`10MB`), `0` or absent
/// for none.
fn body_size_limit(v: &Value) -> Result<Option<usize>, String> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("http.body_size_limit: not a size: {other}")),
    };
    let n =
        vigil_model::size::parse_size(&text).map_err(|e| format!("http.body_size_limit: {e}"))?;
    Ok((n > 0).then(|| usize::try_from(n).unwrap_or(usize::MAX)))
}

impl HttpOptions {
    /// The `http` section of a module.
    pub(super) fn from_json(h: &Value, unsupported: &mut Vec<String>) -> Result<Self, String> {
        check_keys(h, "http", &HTTP_KEYS, &HTTP_UNSUPPORTED, unsupported)?;
        let method = h["method"].as_str().unwrap_or("GET").to_string();
        axum::http::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("http.method: {method:?} is not an HTTP method"))?;
        Ok(HttpOptions {
            valid_status_codes: h["valid_status_codes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    c.as_u64()
                        .and_then(|c| u16::try_from(c).ok())
                        .ok_or_else(|| format!("http.valid_status_codes: {c} is not a status code"))
                })
                .collect::<Result<_, _>>()?,
            valid_http_versions: h["valid_http_versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect(),
            ip: ip_preference(h, "http")?,
            method,
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
            fail_if_body_matches_regexp: regexes(
                &h["fail_if_body_matches_regexp"],
                "http.fail_if_body_matches_regexp",
            )?,
            fail_if_body_not_matches_regexp: regexes(
                &h["fail_if_body_not_matches_regexp"],
                "http.fail_if_body_not_matches_regexp",
            )?,
            fail_if_header_matches: header_matches(
                &h["fail_if_header_matches"],
                "http.fail_if_header_matches",
            )?,
            fail_if_header_not_matches: header_matches(
                &h["fail_if_header_not_matches"],
                "http.fail_if_header_not_matches",
            )?,
            body_size_limit: body_size_limit(&h["body_size_limit"])?,
            tls: Tls::from_json(&h["tls_config"], "http.tls_config")?,
        })
    }
}

pub(super) fn header_matches(v: &Value, key: &str) -> Result<Vec<HeaderMatch>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let header = m["header"]
                .as_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format!("{key}: header is required"))?;
            let r = m["regexp"]
                .as_str()
                .ok_or_else(|| format!("{key}: regexp is required"))?;
            Ok(HeaderMatch {
                header: header.to_string(),
                regexp: regex::Regex::new(r).map_err(|e| format!("{key}: regexp {r:?}: {e}"))?,
                allow_missing: m["allow_missing"].as_bool().unwrap_or(false),
            })
        })
        .collect()
}

/// A connection hyper can speak HTTP/1 over: plain TCP or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn status_ok(o: &HttpOptions, code: u16) -> bool {
    if o.valid_status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        o.valid_status_codes.contains(&code)
    }
}

const PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

fn phase(out: &mut Outcome, name: &str, secs: f64) {
    out.add(
        "probe_http_duration_seconds",
        &format!("phase=\"{name}\""),
        secs,
    );
}

/// `fail_if_header_matches` / `fail_if_header_not_matches`, as the exporter applies them.
fn headers_ok(o: &HttpOptions, headers: &axum::http::HeaderMap, out: &mut Outcome) -> bool {
    let values = |hm: &HeaderMatch| -> Vec<String> {
        headers
            .get_all(hm.header.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    for hm in &o.fail_if_header_matches {
        let vs = values(hm);
        if vs.is_empty() && !hm.allow_missing {
            out.log(format!("Missing required header {:?}", hm.header));
            return false;
        }
        if vs.iter().any(|v| hm.regexp.is_match(v)) {
            out.log(format!(
                "Header {:?} matched regular expression {:?}",
                hm.header,
                hm.regexp.as_str()
            ));
            return false;
        }
    }
    for hm in &o.fail_if_header_not_matches {
        let vs = values(hm);
        if vs.is_empty() && !hm.allow_missing {
            out.log(format!("Missing required header {:?}", hm.header));
            return false;
        }
        if !vs.is_empty() && !vs.iter().any(|v| hm.regexp.is_match(v)) {
            out.log(format!(
                "Header {:?} did not match regular expression {:?}",
                hm.header,
                hm.regexp.as_str()
            ));
            return false;
        }
    }
    true
}

pub(super) async fn probe_http(o: &HttpOptions, target: &str, out: &mut Outcome) -> bool {
    // The exporter reports these from the start (zero when not reached).
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
    let mut method = o.method.clone();
    let mut send_body = true;
    loop {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                out.log(format!(
                    "Scheme {other:?} is not supported (http and https are)"
                ));
                return false;
            }
        };
        let host = url.host_str().unwrap_or("").to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let t = Instant::now();
        let Some(addr) = resolve(
            out,
            host.trim_matches(|c| c == '[' || c == ']'),
            port,
            &o.ip,
        )
        .await
        else {
            return false;
        };
        phase(out, "resolve", t.elapsed().as_secs_f64());
        // Once resolved, every phase is reported (zero until reached).
        for p in PHASES {
            phase(out, p, 0.0);
        }
        let t = Instant::now();
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                out.log(format!("Error for HTTP request: {e}"));
                return false;
            }
        };
        phase(out, "connect", t.elapsed().as_secs_f64());
        // The exporter's "tls" phase runs from the end of resolution to the handshake's end,
        // so it includes the connect.
        let (io, over_tls): (Box<dyn Io>, bool) = if https {
            match o
                .tls
                .connect(host.trim_matches(|c| c == '[' || c == ']'), stream)
                .await
            {
                Ok(s) => {
                    phase(out, "tls", t.elapsed().as_secs_f64());
                    tls::report(out, s.get_ref().1, o.tls.verify);
                    (Box::new(s), true)
                }
                Err(e) => {
                    out.log(format!("Error for HTTP request: TLS handshake: {e}"));
                    return false;
                }
            }
        } else {
            (Box::new(stream), false)
        };
        let t = Instant::now();
        let io = hyper_util::rt::TokioIo::new(io);
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
        // Go sends the port in Host when the URL names one; a configured Host header wins.
        let host_header = o
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| match url.port() {
                Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
                None => url.host_str().unwrap_or("").to_string(),
            });
        let mut req = axum::http::Request::builder()
            .method(method.as_str())
            .uri(path)
            .header(header::HOST, host_header);
        // Configured headers replace the defaults (Go's `Header.Set`).
        if let Some(h) = req.headers_mut() {
            h.insert(
                header::USER_AGENT,
                axum::http::HeaderValue::from_static("Blackbox Exporter/0.23.0"),
            );
            for (k, v) in o
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            {
                match (
                    axum::http::HeaderName::try_from(k.as_str()),
                    axum::http::HeaderValue::try_from(v.as_str()),
                ) {
                    (Ok(k), Ok(v)) => {
                        h.insert(k, v);
                    }
                    _ => {
                        out.log(format!("Error creating request: invalid header {k:?}"));
                        return false;
                    }
                }
            }
        }
        let body = if send_body {
            o.body.clone()
        } else {
            String::new()
        };
        let req = match req.body(Full::new(bytes::Bytes::from(body))) {
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
        phase(out, "processing", t.elapsed().as_secs_f64());
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        // Go's client: these statuses with a Location are redirects; the 11th, or any when
        // redirects are off, ends the request with an error and this response as the last.
        let mut errored = false;
        if matches!(status, 301 | 302 | 303 | 307 | 308)
            && let Some(loc) = location
        {
            redirects += 1;
            out.set("probe_http_redirects", "", redirects as f64);
            out.log(format!("Received redirect to {loc}"));
            if !o.no_follow_redirects && redirects <= 10 {
                // Go's client: after 301/302/303 the body is dropped and any method but GET
                // and HEAD becomes GET; 307/308 repeat the request as it was.
                if matches!(status, 301..=303) {
                    send_body = false;
                    if method != "GET" && method != "HEAD" {
                        method = "GET".into();
                    }
                }
                url = loc;
                continue;
            }
            out.log("Not following redirect");
            errored = true;
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
        let headers = resp.headers().clone();
        out.set("probe_http_status_code", "", status as f64);
        out.log(format!("Received HTTP response with status code {status}"));
        let mut ok = status_ok(o, status);
        if !ok {
            out.log(format!("Invalid HTTP response status code {status}"));
        }
        if ok && !(o.fail_if_header_matches.is_empty() && o.fail_if_header_not_matches.is_empty()) {
            ok = headers_ok(o, &headers, out);
            out.set("probe_failed_due_to_regex", "", if ok { 0.0 } else { 1.0 });
        }
        // After a request error the exporter never reads the body (its length stays 0). A
        // body that cannot be read whole fails the probe, with what was read counted and
        // every other figure set, as the exporter does.
        let t = Instant::now();
        let (body, _held, read_error) = if errored {
            (Vec::new(), HeldBytes(0), None)
        } else {
            match read_within_budget(resp.into_body(), o.body_size_limit).await {
                Ok((b, held)) => (b, held, None),
                Err(ReadError { read, held, why }) => (read, held, Some(why)),
            }
        };
        let read_failed = read_error.is_some();
        if !errored {
            phase(out, "transfer", t.elapsed().as_secs_f64());
        }
        let text = String::from_utf8_lossy(&body);
        if ok
            && !(o.fail_if_body_matches_regexp.is_empty()
                && o.fail_if_body_not_matches_regexp.is_empty())
        {
            let bad = o
                .fail_if_body_matches_regexp
                .iter()
                .find(|r| r.is_match(&text));
            let missing = o
                .fail_if_body_not_matches_regexp
                .iter()
                .find(|r| !r.is_match(&text));
            if read_failed {
                // The exporter matches on the body read whole, and fails the match when
                // it cannot be.
                out.log("Error reading HTTP body");
            } else if let Some(r) = bad {
                out.log(format!("Body matched regular expression {:?}", r.as_str()));
            } else if let Some(r) = missing {
                out.log(format!(
                    "Body did not match regular expression {:?}",
                    r.as_str()
                ));
            }
            // (a body that was never read cannot pass, as the exporter's closed body cannot)
            ok = !errored && !read_failed && bad.is_none() && missing.is_none();
            out.set("probe_failed_due_to_regex", "", if ok { 0.0 } else { 1.0 });
        }
        // Logged after the body's regexps, as the exporter reads the rest of the body then.
        if let Some(why) = read_error {
            out.log(format!("Failed to read HTTP response body: {why}"));
            ok = false;
        }
        out.set("probe_http_version", "", version);
        out.set("probe_http_content_length", "", content_length);
        out.set("probe_http_uncompressed_body_length", "", body.len() as f64);
        if !o.valid_http_versions.is_empty() {
            let v = if version == 1.1 {
                "HTTP/1.1".to_string()
            } else {
                format!("HTTP/{version:.1}")
            };
            if !o.valid_http_versions.contains(&v) {
                out.log(format!("Invalid HTTP version number {v}"));
                ok = false;
            }
        }
        if over_tls {
            out.set("probe_http_ssl", "", 1.0);
            if o.fail_if_ssl {
                out.log("Final request was over SSL");
                ok = false;
            }
        } else {
            // Certificate metrics of an earlier hop describe no final TLS connection.
            out.metrics
                .retain(|(n, _, _)| !n.starts_with("probe_ssl_") && n != "probe_tls_version_info");
            if o.fail_if_not_ssl {
                out.log("Final request was not over SSL");
                ok = false;
            }
        }
        return ok;
    }
}
