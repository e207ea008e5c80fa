//! The web configuration file (`--web.config.file`) of Prometheus and its exporters, in the
//! exporter-toolkit format: `tls_server_config`, `http_server_config`, `basic_auth_users`,
//! `rate_limit`. Read strictly (an unknown key is an error), validated as the toolkit validates
//! it, with file paths relative to the config file's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a web config file was refused: always names the file and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("web config file {file}: {msg}")]
pub struct WebConfigError {
    pub file: String,
    pub msg: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    interval: Option<String>,
    burst: Option<u32>,
}

/// Where certificate material comes from: a file (re-read when it changes) or inline PEM.
#[derive(Debug, Clone, PartialEq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

/// `client_auth_type`, Go's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // `RequireClientCert` is the toolkit's old spelling.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether client certificates are checked against the client CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// A TLS protocol version rustls serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The server's TLS settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    pub client_ca: Option<Pem>,
    pub client_allowed_sans: Vec<String>,
    /// Go names of TLS 1.2 suites to allow; empty: the defaults. TLS 1.3 suites are always on,
    /// as in Go.
    pub cipher_suites: Vec<String>,
    /// Go names of key exchange groups, in preference order; empty: the defaults.
    pub curves: Vec<String>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    pub prefer_server_cipher_suites: bool,
}

/// A validated web configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebConfig {
    /// `None`: plain HTTP (no TLS material configured).
    pub tls: Option<TlsSettings>,
    pub http2: bool,
    /// Response headers, as configured.
    pub headers: Vec<(String, String)>,
    /// User to bcrypt hash.
    pub users: BTreeMap<String, String>,
    /// `(interval, burst)` of one global token bucket.
    pub rate_limit: Option<(Duration, u32)>,
    /// Settings accepted with a note (rustls cannot do what Go does): logged at start-up.
    pub warnings: Vec<String>,
}

/// The header names the toolkit allows, and the values allowed for each (`None`: any).
const HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// Go's names of the TLS 1.2 suites rustls implements.
pub const TLS12_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];
/// Go's names of the TLS 1.3 suites (always enabled, as Go enables them).
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
/// Go accepts these; rustls does not implement them (CBC modes and RSA key exchange).
const GO_ONLY_SUITES: [&str; 6] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
];
/// Curves rustls implements (with the ring provider), by Go's names.
pub const CURVES: [&str; 3] = ["X25519", "CurveP256", "CurveP384"];

impl WebConfig {
    /// Read and validate the file at `path`. A missing or unreadable file is an error, as is
    /// any unknown key; an empty file is valid (plain HTTP, no users).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| WebConfigError {
            file: path.display().to_string(),
            msg: format!("cannot read it: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|msg| WebConfigError {
            file: path.display().to_string(),
            msg,
        })
    }

    /// Parse `text`, resolving relative file paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<WebConfig, String> {
        let raw: RawConfig = if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                e.without_snippet()
                    .to_string()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })?
        };
        let mut cfg = WebConfig {
            http2: true,
            ..Default::default()
        };
        let http = raw.http_server_config.unwrap_or_default();
        cfg.http2 = http.http2.unwrap_or(true);
        for (k, v) in http.headers.unwrap_or_default() {
            let Some((_, allowed)) = HEADERS.iter().find(|(n, _)| *n == k) else {
                return Err(format!(
                    "http_server_config.headers: HTTP header {k:?} can not be configured (allowed: {})",
                    HEADERS.map(|h| h.0).join(", ")
                ));
            };
            if let Some(allowed) = allowed
                && !allowed.contains(&v.as_str())
            {
                return Err(format!(
                    "http_server_config.headers: invalid value for {k}. Expected one of: {allowed:?}, but got: {v:?}"
                ));
            }
            cfg.headers.push((k, v));
        }
        for (user, hash) in raw.basic_auth_users.unwrap_or_default() {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (write the output of `htpasswd -nBC 10 \"\" | tr -d ':'`, not the password)"
                ));
            }
            cfg.users.insert(user, hash);
        }
        if let Some(rl) = raw.rate_limit {
            let interval = match rl.interval.as_deref() {
                None | Some("0") | Some("0s") => Duration::ZERO,
                Some(s) => vigil_model::time::parse_duration_ms(s)
                    .map(|ms| Duration::from_millis(ms as u64))
                    .ok_or_else(|| format!("rate_limit.interval: not a duration: {s:?}"))?,
            };
            if !interval.is_zero() {
                cfg.rate_limit = Some((interval, rl.burst.unwrap_or(0)));
            }
        }
        if let Some(t) = raw.tls_server_config {
            cfg.tls = tls_settings(t, base, &mut cfg.warnings)?;
        }
        Ok(cfg)
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn version(field: &str, s: &str, warnings: &mut Vec<String>) -> Result<TlsVersion, String> {
    match s {
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS10" | "TLS11" if field == "min_version" => {
            warnings.push(format!(
                "tls_server_config.min_version {s}: vigil's TLS (rustls) serves TLS 1.2 and 1.3 only, so the minimum is TLS12"
            ));
            Ok(TlsVersion::Tls12)
        }
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{field}: {s} is not supported: vigil's TLS (rustls) serves TLS12 and TLS13 only"
        )),
        _ => Err(format!(
            "tls_server_config.{field}: unknown TLS version: {s}"
        )),
    }
}

fn tls_settings(
    t: RawTls,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<TlsSettings>, String> {
    let empty = |o: &Option<String>| o.as_deref().is_none_or(str::is_empty);
    // As the toolkit: no certificate, key, CA or client auth configured means plain HTTP.
    if empty(&t.cert)
        && empty(&t.cert_file)
        && empty(&t.key)
        && empty(&t.key_file)
        && empty(&t.client_ca)
        && empty(&t.client_ca_file)
        && empty(&t.client_auth_type)
    {
        let other = t.cipher_suites.is_some()
            || t.curve_preferences.is_some()
            || t.min_version.is_some()
            || t.max_version.is_some()
            || t.client_allowed_sans.is_some();
        if other {
            return Err(
                "tls_server_config has TLS settings but no cert_file/key_file (or cert/key): without a certificate the server would be plain HTTP"
                    .into(),
            );
        }
        return Ok(None);
    }
    // A file wins over inline text, as in the toolkit.
    let pem = |file: &Option<String>, inline: &Option<String>| -> Option<Pem> {
        match (
            file.as_deref().filter(|s| !s.is_empty()),
            inline.as_deref().filter(|s| !s.is_empty()),
        ) {
            (Some(f), _) => Some(Pem::File(resolve(base, f))),
            (None, Some(i)) => Some(Pem::Inline(i.to_string())),
            (None, None) => None,
        }
    };
    let cert =
        pem(&t.cert_file, &t.cert).ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key =
        pem(&t.key_file, &t.key).ok_or("tls_server_config: missing one of key or key_file")?;
    let client_auth_name = t.client_auth_type.clone().unwrap_or_default();
    let client_auth = ClientAuth::parse(&client_auth_name).ok_or_else(|| {
        format!("tls_server_config.client_auth_type: invalid ClientAuth: {client_auth_name}")
    })?;
    let client_ca = pem(&t.client_ca_file, &t.client_ca);
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err(
            "tls_server_config: client CA's have been configured without a Client Auth Policy"
                .into(),
        );
    }
    if client_auth.verifies() && client_ca.is_none() {
        return Err(format!(
            "tls_server_config: client_auth_type {client_auth_name} needs client_ca_file (or client_ca): vigil verifies client certificates only against a configured CA"
        ));
    }
    let sans = t.client_allowed_sans.unwrap_or_default();
    if !sans.is_empty()
        && !matches!(
            client_auth,
            ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
        )
    {
        return Err("tls_server_config.client_allowed_sans requires client_auth_type to be one of RequireAnyClientCert or RequireAndVerifyClientCert".into());
    }
    let mut suites = Vec::new();
    for s in t.cipher_suites.unwrap_or_default() {
        if TLS13_SUITES.contains(&s.as_str()) {
            // Go ignores the list for TLS 1.3; so does vigil.
            continue;
        }
        if GO_ONLY_SUITES.contains(&s.as_str()) {
            return Err(format!(
                "tls_server_config.cipher_suites: {s} is not supported by vigil's TLS (rustls); supported: {}",
                TLS12_SUITES.join(", ")
            ));
        }
        if !TLS12_SUITES.contains(&s.as_str()) {
            return Err(format!(
                "tls_server_config.cipher_suites: unknown cipher: {s}"
            ));
        }
        suites.push(s);
    }
    let mut curves = Vec::new();
    for c in t.curve_preferences.unwrap_or_default() {
        if !CURVES.contains(&c.as_str()) {
            return Err(if matches!(c.as_str(), "CurveP521" | "X25519MLKEM768") {
                format!(
                    "tls_server_config.curve_preferences: {c} is not supported by vigil's TLS (rustls with ring); supported: {}",
                    CURVES.join(", ")
                )
            } else {
                format!("tls_server_config.curve_preferences: unknown curve: {c}")
            });
        }
        curves.push(c);
    }
    let min_version = version(
        "min_version",
        t.min_version.as_deref().unwrap_or("TLS12"),
        warnings,
    )?;
    let max_version = version(
        "max_version",
        t.max_version.as_deref().unwrap_or("TLS13"),
        warnings,
    )?;
    if min_version > max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    Ok(Some(TlsSettings {
        cert,
        key,
        client_auth,
        client_ca,
        client_allowed_sans: sans,
        cipher_suites: suites,
        curves,
        min_version,
        max_version,
        prefer_server_cipher_suites: t.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<WebConfig, String> {
        WebConfig::parse(y, Path::new("/etc/vigil"))
    }

    #[test]
    fn empty_files_are_plain_http_without_users() {
        for y in ["", "# nothing\n", "\n\n"] {
            let c = parse(y).unwrap();
            assert!(c.tls.is_none() && c.users.is_empty() && c.http2);
        }
    }

    #[test]
    fn paths_are_relative_to_the_file_and_files_win_over_inline_text() {
        let c = parse(
            "tls_server_config:\n  cert_file: a.crt\n  key_file: /abs/a.key\n  cert: inline\n",
        )
        .unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.cert, Pem::File(PathBuf::from("/etc/vigil/a.crt")));
        assert_eq!(t.key, Pem::File(PathBuf::from("/abs/a.key")));
        assert_eq!(t.min_version, TlsVersion::Tls12);
        assert!(t.prefer_server_cipher_suites);
    }

    #[test]
    fn the_toolkits_errors() {
        let err = |y: &str| parse(y).unwrap_err();
        assert!(err("tls_server_config:\n  bogus: 1\n").contains("bogus"));
        assert!(err("nope: 1\n").contains("nope"));
        assert_eq!(
            err("tls_server_config:\n  key_file: k\n"),
            "tls_server_config: missing one of cert or cert_file"
        );
        assert_eq!(
            err("tls_server_config:\n  cert_file: c\n"),
            "tls_server_config: missing one of key or key_file"
        );
        assert_eq!(
            err(
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Sometimes\n"
            ),
            "tls_server_config.client_auth_type: invalid ClientAuth: Sometimes"
        );
        assert!(
            err("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n")
                .contains("without a Client Auth Policy")
        );
        assert!(
            err("http_server_config:\n  headers:\n    X-Frame-Options: DENY\n")
                .contains("Expected one of")
        );
        assert!(
            err("http_server_config:\n  headers:\n    Server: vigil\n")
                .contains("can not be configured")
        );
        assert!(err("basic_auth_users:\n  alice: plaintext\n").contains("not a bcrypt hash"));
        assert!(
            err("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]\n")
                .contains("not supported by vigil's TLS")
        );
        assert!(
            err("tls_server_config:\n  cert_file: c\n  key_file: k\n  curve_preferences: [CurveP521]\n")
                .contains("not supported")
        );
        assert!(
            err("tls_server_config:\n  cert_file: c\n  key_file: k\n  max_version: TLS11\n")
                .contains("TLS12 and TLS13 only")
        );
        assert!(
            err("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequestClientCert\n  client_allowed_sans: [a]\n")
                .contains("client_allowed_sans requires")
        );
        assert!(err("tls_server_config:\n  min_version: TLS13\n").contains("no cert_file"));
    }

    #[test]
    fn old_tls_minimums_warn_and_mean_tls12() {
        let c = parse("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n")
            .unwrap();
        assert_eq!(c.tls.unwrap().min_version, TlsVersion::Tls12);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn headers_users_and_rate_limit() {
        let c = parse(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: $2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG\nrate_limit:\n  interval: 1s\n  burst: 5\n",
        )
        .unwrap();
        assert!(!c.http2);
        assert_eq!(c.headers, vec![("X-Frame-Options".into(), "deny".into())]);
        assert!(c.users.contains_key("alice"));
        assert_eq!(c.rate_limit, Some((Duration::from_secs(1), 5)));
    }
}
