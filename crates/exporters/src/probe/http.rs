//! The `http` prober over plain HTTP: the request as configured, redirects followed (at most 10,
//! as Go's client), then status, header and body checks in the exporter's order, each only
//! while the probe still succeeds. Phase durations add up over redirects.

use std::time::Instant;

use axum::http::header;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;

use super::config::{HeaderMatch, Module};
use super::{Outcome, resolve, tls};

/// A connection hyper can speak HTTP/1 over: plain TCP or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn status_ok(m: &Module, code: u16) -> bool {
    if m.http.valid_status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        m.http.valid_status_codes.contains(&code)
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
fn headers_ok(m: &Module, headers: &axum::http::HeaderMap, out: &mut Outcome) -> bool {
    let values = |hm: &HeaderMatch| -> Vec<String> {
        headers
            .get_all(hm.header.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    for hm in &m.http.fail_if_header_matches {
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
    for hm in &m.http.fail_if_header_not_matches {
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

pub(super) async fn probe_http(m: &Module, target: &str, out: &mut Outcome) -> bool {
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
    let mut method = m.http.method.clone();
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
            &m.http.ip,
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
            match m
                .http
                .tls
                .connect(host.trim_matches(|c| c == '[' || c == ']'), stream)
                .await
            {
                Ok(s) => {
                    phase(out, "tls", t.elapsed().as_secs_f64());
                    tls::report(out, s.get_ref().1, m.http.tls.verify);
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
        let host_header = m
            .http
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
            for (k, v) in m
                .http
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
            m.http.body.clone()
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
            if !m.http.no_follow_redirects && redirects <= 10 {
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
        let mut ok = status_ok(m, status);
        if !ok {
            out.log(format!("Invalid HTTP response status code {status}"));
        }
        if ok
            && !(m.http.fail_if_header_matches.is_empty()
                && m.http.fail_if_header_not_matches.is_empty())
        {
            ok = headers_ok(m, &headers, out);
            out.set("probe_failed_due_to_regex", "", if ok { 0.0 } else { 1.0 });
        }
        // After a request error the exporter never reads the body (its length stays 0).
        let t = Instant::now();
        let body = if errored {
            bytes::Bytes::new()
        } else {
            match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    out.log(format!("Failed to read HTTP response body: {e}"));
                    return false;
                }
            }
        };
        if !errored {
            phase(out, "transfer", t.elapsed().as_secs_f64());
        }
        let text = String::from_utf8_lossy(&body);
        if ok
            && !(m.http.fail_if_body_matches_regexp.is_empty()
                && m.http.fail_if_body_not_matches_regexp.is_empty())
        {
            let bad = m
                .http
                .fail_if_body_matches_regexp
                .iter()
                .find(|r| r.is_match(&text));
            let missing = m
                .http
                .fail_if_body_not_matches_regexp
                .iter()
                .find(|r| !r.is_match(&text));
            if let Some(r) = bad {
                out.log(format!("Body matched regular expression {:?}", r.as_str()));
            } else if let Some(r) = missing {
                out.log(format!(
                    "Body did not match regular expression {:?}",
                    r.as_str()
                ));
            }
            // (a body that was never read cannot pass, as the exporter's closed body cannot)
            ok = !errored && bad.is_none() && missing.is_none();
            out.set("probe_failed_due_to_regex", "", if ok { 0.0 } else { 1.0 });
        }
        out.set("probe_http_version", "", version);
        out.set("probe_http_content_length", "", content_length);
        out.set("probe_http_uncompressed_body_length", "", body.len() as f64);
        if !m.http.valid_http_versions.is_empty() {
            let v = if version == 1.1 {
                "HTTP/1.1".to_string()
            } else {
                format!("HTTP/{version:.1}")
            };
            if !m.http.valid_http_versions.contains(&v) {
                out.log(format!("Invalid HTTP version number {v}"));
                ok = false;
            }
        }
        if over_tls {
            out.set("probe_http_ssl", "", 1.0);
            if m.http.fail_if_ssl {
                out.log("Final request was over SSL");
                ok = false;
            }
        } else {
            // Certificate metrics of an earlier hop describe no final TLS connection.
            out.metrics
                .retain(|(n, _, _)| !n.starts_with("probe_ssl_") && n != "probe_tls_version_info");
            if m.http.fail_if_not_ssl {
                out.log("Final request was not over SSL");
                ok = false;
            }
        }
        return ok;
    }
}
