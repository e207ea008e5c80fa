//! `blackbox.yml`: modules as the blackbox exporter reads them. Unknown keys are errors (the
//! exporter reads its file strictly); keys and probers the exporter knows but vigil does not
//! implement yet load, and make that module's probes fail with a log line naming them, so a
//! stock `blackbox.yml` still serves its other modules.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::dns::{self, DnsOptions};
use super::icmp::{self, IcmpOptions};
use super::tls::Tls;

/// One module of `blackbox.yml`.
#[derive(Debug, Clone)]
pub struct Module {
    pub prober: String,
    /// `timeout`; `None` when unset (the scrape's timeout decides then).
    pub timeout: Option<Duration>,
    pub http: HttpOptions,
    pub tcp: TcpOptions,
    pub dns: DnsOptions,
    pub icmp: IcmpOptions,
    /// Settings this module uses that vigil does not implement: probes fail and say so.
    pub unsupported: Vec<String>,
}

/// Which address family to dial first, and whether the other one may be used.
#[derive(Debug, Clone)]
pub struct IpPreference {
    pub ip6_first: bool,
    pub fallback: bool,
}

impl Default for IpPreference {
    // The exporter's default: "ip6", falling back to IPv4.
    fn default() -> Self {
        IpPreference {
            ip6_first: true,
            fallback: true,
        }
    }
}

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
    pub tls: Tls,
}

#[derive(Debug, Clone, Default)]
pub struct TcpOptions {
    pub ip: IpPreference,
    /// `tls: true`: the connection is wrapped in TLS (with `tls_config`).
    pub tls: Option<Tls>,
    /// `query_response`: (expect regex, send line) steps.
    pub query_response: Vec<(Option<regex::Regex>, Option<String>)>,
}

const PROBERS: [&str; 5] = ["http", "tcp", "dns", "icmp", "grpc"];
const MODULE_KEYS: [&str; 7] = ["prober", "timeout", "http", "tcp", "dns", "icmp", "grpc"];
const HTTP_KEYS: [&str; 16] = [
    "tls_config",
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
const HTTP_UNSUPPORTED: [&str; 15] = [
    "skip_resolve_phase_with_proxy",
    "compression",
    "body_size_limit",
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
const TCP_KEYS: [&str; 5] = [
    "preferred_ip_protocol",
    "ip_protocol_fallback",
    "query_response",
    "tls",
    "tls_config",
];
const TCP_UNSUPPORTED: [&str; 1] = ["source_ip_address"];

/// Unknown keys are errors; known-but-unimplemented ones are collected.
fn check_keys(
    v: &Value,
    section: &str,
    known: &[&str],
    unimplemented: &[&str],
    unsupported: &mut Vec<String>,
) -> Result<(), String> {
    for k in v.as_object().into_iter().flatten().map(|(k, _)| k) {
        if unimplemented.contains(&k.as_str()) {
            unsupported.push(format!("{section}.{k}"));
        } else if !known.contains(&k.as_str()) {
            return Err(format!("{section}: unknown field {k:?}"));
        }
    }
    Ok(())
}

/// A Prometheus-style duration (`5s`, `1m30s`, `500ms`).
fn duration(v: &Value, key: &str) -> Result<Option<Duration>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => vigil_model::time::parse_duration_ms(s)
            .filter(|ms| *ms >= 0)
            .map(|ms| Some(Duration::from_millis(ms as u64)))
            .ok_or_else(|| format!("{key}: not a valid duration string: {s:?}")),
        other => Err(format!("{key}: not a duration: {other}")),
    }
}

fn regexes(v: &Value, key: &str) -> Result<Vec<regex::Regex>, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let r = r
                .as_str()
                .ok_or_else(|| format!("{key}: not a string: {r}"))?;
            // Go's regexp is unanchored here too.
            regex::Regex::new(r).map_err(|e| format!("{key}: regexp {r:?}: {e}"))
        })
        .collect()
}

fn header_matches(v: &Value, key: &str) -> Result<Vec<HeaderMatch>, String> {
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

fn ip_preference(v: &Value, section: &str) -> Result<IpPreference, String> {
    let ip6_first = match v["preferred_ip_protocol"].as_str() {
        None | Some("") | Some("ip6") => true,
        Some("ip4") => false,
        Some(o) => {
            return Err(format!(
                "{section}.preferred_ip_protocol: {o:?} is not \"ip4\" or \"ip6\""
            ));
        }
    };
    Ok(IpPreference {
        ip6_first,
        fallback: v["ip_protocol_fallback"].as_bool().unwrap_or(true),
    })
}

impl Module {
    pub fn from_json(v: &Value) -> Result<Module, String> {
        let mut unsupported = Vec::new();
        check_keys(v, "module", &MODULE_KEYS, &[], &mut unsupported)?;
        let prober = v["prober"].as_str().unwrap_or("").to_string();
        if !PROBERS.contains(&prober.as_str()) {
            return Err(format!("unknown prober {prober:?}"));
        }
        if !matches!(prober.as_str(), "http" | "tcp" | "dns" | "icmp") {
            unsupported.push(format!("prober {prober}"));
        }
        let h = &v["http"];
        check_keys(h, "http", &HTTP_KEYS, &HTTP_UNSUPPORTED, &mut unsupported)?;
        let method = h["method"].as_str().unwrap_or("GET").to_string();
        axum::http::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("http.method: {method:?} is not an HTTP method"))?;
        let http = HttpOptions {
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
            tls: Tls::from_json(&h["tls_config"], "http.tls_config")?,
        };
        let t = &v["tcp"];
        check_keys(t, "tcp", &TCP_KEYS, &TCP_UNSUPPORTED, &mut unsupported)?;
        let mut tcp = TcpOptions {
            ip: ip_preference(t, "tcp")?,
            tls: match t["tls"].as_bool().unwrap_or(false) {
                true => Some(Tls::from_json(&t["tls_config"], "tcp.tls_config")?),
                false => None,
            },
            query_response: Vec::new(),
        };
        for step in t["query_response"].as_array().into_iter().flatten() {
            check_keys(
                step,
                "tcp.query_response",
                &["expect", "send"],
                &["starttls"],
                &mut unsupported,
            )?;
            let expect = match step["expect"].as_str() {
                Some(r) => Some(
                    regex::Regex::new(r)
                        .map_err(|e| format!("tcp.query_response.expect {r:?}: {e}"))?,
                ),
                None => None,
            };
            tcp.query_response
                .push((expect, step["send"].as_str().map(str::to_string)));
        }
        let d = &v["dns"];
        check_keys(d, "dns", &dns::KEYS, &dns::UNSUPPORTED, &mut unsupported)?;
        let dns = DnsOptions::from_json(d, ip_preference(d, "dns")?, prober == "dns")?;
        let i = &v["icmp"];
        check_keys(i, "icmp", &icmp::KEYS, &icmp::UNSUPPORTED, &mut unsupported)?;
        let icmp = IcmpOptions::from_json(i, ip_preference(i, "icmp")?)?;
        Ok(Module {
            icmp,
            dns,
            prober,
            timeout: duration(&v["timeout"], "timeout")?,
            http,
            tcp,
            unsupported,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_keys_and_clear_errors() {
        let e = load_modules(Some(
            "modules:\n  m:\n    prober: http\n    http:\n      methd: GET\n",
        ))
        .unwrap_err();
        assert_eq!(e, "module m: http: unknown field \"methd\"");
        let e = load_modules(Some("modules:\n  m:\n    prober: htp\n")).unwrap_err();
        assert_eq!(e, "module m: unknown prober \"htp\"");
        let e =
            load_modules(Some("modules:\n  m:\n    prober: tcp\n    timeout: 5x\n")).unwrap_err();
        assert!(e.contains("not a valid duration"), "{e}");
        // Known to the exporter but not implemented here: loads, and says what.
        let m = load_modules(Some(
            "modules:\n  grpc:\n    prober: grpc\n  auth:\n    prober: http\n    http:\n      basic_auth:\n        username: u\n",
        ))
        .unwrap();
        assert_eq!(m["grpc"].unsupported, ["prober grpc"]);
        assert_eq!(m["auth"].unsupported, ["http.basic_auth"]);
        let e = load_modules(Some(
            "modules:\n  t:\n    prober: http\n    http:\n      tls_config:\n        ca_file: /nonexistent.pem\n",
        ))
        .unwrap_err();
        assert!(
            e.starts_with("module t: http.tls_config.ca_file \"/nonexistent.pem\""),
            "{e}"
        );
        assert!(m["http_2xx"].unsupported.is_empty());
        assert_eq!(m["http_2xx"].timeout, None);
        let m = load_modules(Some(
            "modules:\n  t:\n    prober: tcp\n    timeout: 1m30s\n",
        ))
        .unwrap();
        assert_eq!(m["t"].timeout, Some(Duration::from_secs(90)));
    }
}
