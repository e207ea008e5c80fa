//! Fields vigil accepts but does not act on, found so they can be refused or reported by name.

use super::*;

/// Fields Prometheus accepts that vigil does not act on, when set: each named with what it
/// means (none is silently ignored).
pub(crate) fn field_warnings(raw: &RawConfig) -> Vec<Unimplemented> {
    let mut out = Vec::new();
    let mut harmless = Vec::new();
    let mut not_running = |m: String| out.push(Unimplemented::Field(m));
    let mut scopes: Vec<(String, Scope)> = Vec::new();
    for (i, r) in raw.remote_write.iter().flatten().enumerate() {
        let Some(r) = r else { continue };
        let r = &r.value;
        if r.round_robin_dns == Some(true) {
            not_running(format!(
                "remote_write[{i}].round_robin_dns: vigil tries the addresses a host resolves to in the resolver's order, as without the setting"
            ));
        }
    }
    if let Some(g) = &raw.global {
        let g = &g.value;
        if let Some(f) = &g.query_log_file {
            not_running(format!(
                "global.query_log_file: vigil does not write a query log; nothing is written to {f}"
            ));
        }
        scopes.push((
            "global".into(),
            Scope {
                failure_log: g.scrape_failure_log_file.clone(),
                ..Default::default()
            },
        ));
    }
    for (i, s) in raw.scrape_configs.iter().flatten().enumerate() {
        let Some(s) = s else { continue };
        let s = &s.value;
        let name = format!(
            "scrape_configs[{i}] ({})",
            s.job_name.as_deref().unwrap_or("")
        );
        scopes.push((
            name,
            Scope {
                failure_log: s.scrape_failure_log_file.clone(),
                fallback: s.fallback_scrape_protocol.clone(),
                proxy_connect_header: s.proxy_connect_header.is_some(),
                http2: s.enable_http2,
            },
        ));
        // The other HTTP clients a scrape config holds.
        for (k, sd) in s.kubernetes_sd_configs.iter().flatten().enumerate() {
            let Some(sd) = sd else { continue };
            scopes.push(http_scope(
                format!("scrape_configs[{i}].kubernetes_sd_configs[{k}]"),
                sd.value.proxy_connect_header.is_some(),
                sd.value.enable_http2,
            ));
        }
    }
    if let Some(a) = &raw.alerting {
        for (i, am) in a.alertmanagers.iter().flatten().enumerate() {
            let Some(am) = am else { continue };
            scopes.push(http_scope(
                format!("alerting.alertmanagers[{i}]"),
                am.value.proxy_connect_header.is_some(),
                am.value.enable_http2,
            ));
        }
    }
    for (i, r) in raw.remote_write.iter().flatten().enumerate() {
        let Some(r) = r else { continue };
        scopes.push(http_scope(
            format!("remote_write[{i}]"),
            r.value.proxy_connect_header.is_some(),
            r.value.enable_http2,
        ));
    }
    for (i, r) in raw.remote_read.iter().flatten().enumerate() {
        let Some(r) = r else { continue };
        scopes.push(http_scope(
            format!("remote_read[{i}]"),
            r.value.proxy_connect_header.is_some(),
            r.value.enable_http2,
        ));
    }
    if let Some(t) = raw.storage.as_ref().and_then(|s| s.tsdb.as_ref())
        && t.stale_series_compaction_threshold.is_some()
    {
        not_running(
            "storage.tsdb.stale_series_compaction_threshold: vigil does not compact stale series out of the head early; they leave it with the next regular compaction".into(),
        );
    }
    for (at, s) in scopes {
        if let Some(f) = s.failure_log {
            not_running(format!(
                "{at}.scrape_failure_log_file: vigil does not write a scrape failure log; failures are on /targets and in `up`; nothing is written to {f}"
            ));
        }
        if s.fallback
            .as_deref()
            .is_some_and(|p| p != "PrometheusText0.0.4")
        {
            not_running(format!(
                "{at}.fallback_scrape_protocol: vigil reads a response without a known content type as the text format 0.0.4"
            ));
        }
        if s.proxy_connect_header {
            not_running(format!(
                "{at}.proxy_connect_header: not sent; vigil's proxy client sends no CONNECT headers"
            ));
        }
        if s.http2.is_some() {
            harmless.push(Unimplemented::Harmless(format!("{at}.enable_http2: vigil's HTTP clients negotiate HTTP/2 over TLS when the server offers it; the setting has no effect")));
        }
    }
    out.extend(harmless);
    out
}

/// Per-scope fields [`field_warnings`] looks at.
#[derive(Default)]
pub(crate) struct Scope {
    pub(crate) failure_log: Option<String>,
    pub(crate) fallback: Option<String>,
    pub(crate) proxy_connect_header: bool,
    pub(crate) http2: Option<bool>,
}

/// The HTTP-client-only notes for a section that is not a scrape config.
pub(crate) fn http_scope(
    at: String,
    proxy_connect_header: bool,
    http2: Option<bool>,
) -> (String, Scope) {
    (
        at,
        Scope {
            proxy_connect_header,
            http2,
            ..Default::default()
        },
    )
}

/// A configured section vigil accepts but does not carry out (see [`Config::unimplemented`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Unimplemented {
    Alerting(String),
    Remote(String),
    Storage(String),
    /// A field vigil does not act on (a query log, native histogram settings, ...).
    Field(String),
    /// Sections with no effect on data (tracing, Go runtime tuning).
    Harmless(String),
}

impl std::fmt::Display for Unimplemented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unimplemented::Alerting(m)
            | Unimplemented::Remote(m)
            | Unimplemented::Storage(m)
            | Unimplemented::Field(m)
            | Unimplemented::Harmless(m) => f.write_str(m),
        }
    }
}
