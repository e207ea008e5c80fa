//! `blackbox.yml`: modules as the blackbox exporter reads them. Unknown keys are errors (the
//! exporter reads its file strictly); keys and probers the exporter knows but vigil does not
//! implement yet load, and make that module's probes fail with a log line naming them, so a
//! stock `blackbox.yml` still serves its other modules. Each prober's section is read by its own
//! options type, beside the prober (`http`, `tcp`, `dns`, `icmp`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::dns::{self, DnsOptions};
use super::http::HttpOptions;
use super::icmp::{self, IcmpOptions};
use super::options::{check_keys, ip_preference};
use super::tcp::TcpOptions;

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

const PROBERS: [&str; 5] = ["http", "tcp", "dns", "icmp", "grpc"];
const MODULE_KEYS: [&str; 7] = ["prober", "timeout", "http", "tcp", "dns", "icmp", "grpc"];
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

impl Module {
    pub(super) fn from_json(v: &Value) -> Result<Module, String> {
        let mut unsupported = Vec::new();
        check_keys(v, "module", &MODULE_KEYS, &[], &mut unsupported)?;
        let prober = v["prober"].as_str().unwrap_or("").to_string();
        if !PROBERS.contains(&prober.as_str()) {
            return Err(format!("unknown prober {prober:?}"));
        }
        if !matches!(prober.as_str(), "http" | "tcp" | "dns" | "icmp") {
            unsupported.push(format!("prober {prober}"));
        }
        let http = HttpOptions::from_json(&v["http"], &mut unsupported)?;
        let tcp = TcpOptions::from_json(&v["tcp"], &mut unsupported)?;
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

/// Why `blackbox.yml` was refused. The file's modules stay as they were on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("blackbox config: {0}")]
    Yaml(String),
    /// A module is invalid; `reason` names the key.
    #[error("module {module}: {reason}")]
    Module { module: String, reason: String },
}

/// Modules by name: the defaults (`http_2xx`, `tcp_connect`), then those of the file.
pub fn load_modules(yaml: Option<&str>) -> Result<BTreeMap<String, Module>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, prober) in [("http_2xx", "http"), ("tcp_connect", "tcp")] {
        let m = Module::from_json(&serde_json::json!({"prober": prober}));
        // The defaults are built from constants; a failure is a bug in this file.
        out.insert(name.to_string(), m.expect("built-in module"));
    }
    if let Some(y) = yaml {
        let v: Value = serde_saphyr::from_str(y).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        for (name, m) in v["modules"].as_object().into_iter().flatten() {
            let m = Module::from_json(m).map_err(|reason| ConfigError::Module {
                module: name.clone(),
                reason,
            })?;
            out.insert(name.clone(), m);
        }
    }
    Ok(out)
}

/// Read and load `path`.
pub fn load_file(path: &std::path::Path) -> Result<BTreeMap<String, Module>, ConfigError> {
    let y = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_modules(Some(&y))
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
        assert!(
            matches!(&e, ConfigError::Module { module, .. } if module == "m"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "module m: http: unknown field \"methd\"");
        let e = load_modules(Some("modules:\n  m:\n    prober: htp\n")).unwrap_err();
        assert_eq!(e.to_string(), "module m: unknown prober \"htp\"");
        let e = load_modules(Some("modules:\n  m:\n    prober: tcp\n    timeout: 5x\n"))
            .unwrap_err()
            .to_string();
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
        .unwrap_err()
        .to_string();
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
        assert!(matches!(
            load_modules(Some("modules: [")),
            Err(ConfigError::Yaml(_))
        ));
    }

    #[test]
    fn an_unreadable_file_is_named() {
        let e = load_file(std::path::Path::new("/nonexistent/blackbox.yml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("/nonexistent/blackbox.yml: "),
            "{e}"
        );
    }
}
