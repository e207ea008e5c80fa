//! `prometheus.yml`: parsed as current Prometheus parses it, validated, with defaults and
//! global inheritance applied.
//!
//! - [`raw`]: the YAML as written (strict serde structs; unknown fields and duplicate keys
//!   are errors).
//! - This module: the resolved types other crates use ([`Config`], [`ScrapeConfig`], ...)
//!   and the validation that turns one into the other, with errors that name the field path
//!   and, where the YAML parser knows it, the line.
//! - [`units`]: Prometheus's durations and sizes.
//!
//! This crate reads files (the config, `scrape_config_files`) but starts nothing.

pub mod raw;
pub mod reserialize;
pub mod units;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_model::Labels;
use vigil_model::labels::is_valid_label_name;
use vigil_model::relabel::{Action, RelabelConfig, RelabelRegex};

pub use units::{format_duration, parse_duration, parse_size};

use raw::*;

/// Why a config was rejected. Displayed as Prometheus words it, plus where:
/// `parsing YAML file prometheus.yml: scrape_configs[0] (job "node").relabel_configs[1]
/// (line 12, column 9): relabel configuration for replace action requires 'target_label' value`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {err}")]
    Io { path: String, err: std::io::Error },
    /// The text is not YAML of the config's shape: syntax, unknown field, wrong type,
    /// duplicate key.
    #[error("parsing YAML file {path}: {}", located(field, *line, msg))]
    Yaml {
        path: String,
        /// Field path, e.g. `scrape_configs[0].relabel_configs` (empty when unknown).
        field: String,
        /// 1-based line and column, when the parser knows them.
        line: Option<(u64, u64)>,
        msg: String,
    },
    /// Well-formed YAML with a value Prometheus rejects.
    #[error("parsing YAML file {path}: {}", located(field, *line, msg))]
    Invalid {
        path: String,
        /// Field path; a scrape config's segment carries its job: `scrape_configs[2] (job "x")`.
        field: String,
        /// 1-based line and column of the innermost enclosing item the parser located.
        line: Option<(u64, u64)>,
        msg: String,
    },
}

impl ConfigError {
    /// The field path the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Yaml { field, .. } | ConfigError::Invalid { field, .. } => {
                Some(field).filter(|f| !f.is_empty()).map(String::as_str)
            }
        }
    }

    /// 1-based line and column, if known.
    pub fn line_column(&self) -> Option<(u64, u64)> {
        match self {
            ConfigError::Io { .. } => None,
            ConfigError::Yaml { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }

    /// The message alone, without file, field or position.
    pub fn message(&self) -> String {
        match self {
            ConfigError::Io { err, .. } => err.to_string(),
            ConfigError::Yaml { msg, .. } | ConfigError::Invalid { msg, .. } => msg.clone(),
        }
    }
}

fn located(field: &str, line: Option<(u64, u64)>, msg: &str) -> String {
    let mut out = field.to_string();
    if let Some((l, c)) = line {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("(line {l}, column {c})"));
    }
    if !out.is_empty() {
        out.push_str(": ");
    }
    out.push_str(msg);
    out
}

/// A secret: printed as `<secret>`.
#[derive(Clone, PartialEq, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeProtocol {
    OpenMetricsText1_0_0,
    OpenMetricsText0_0_1,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
    PrometheusProto,
}

impl ScrapeProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OpenMetricsText1.0.0" => ScrapeProtocol::OpenMetricsText1_0_0,
            "OpenMetricsText0.0.1" => ScrapeProtocol::OpenMetricsText0_0_1,
            "PrometheusText0.0.4" => ScrapeProtocol::PrometheusText0_0_4,
            "PrometheusText1.0.0" => ScrapeProtocol::PrometheusText1_0_0,
            "PrometheusProto" => ScrapeProtocol::PrometheusProto,
            _ => return None,
        })
    }

    /// Prometheus 3's default order.
    pub fn defaults() -> Vec<Self> {
        vec![
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::OpenMetricsText0_0_1,
            ScrapeProtocol::PrometheusText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4,
        ]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    /// How far back rule queries look (`query_offset` of groups that set none).
    pub rule_query_offset: Duration,
    pub external_labels: Labels,
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    pub query_log_file: Option<String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            external_labels: Labels::empty(),
            body_size_limit: 0,
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            scrape_protocols: ScrapeProtocol::defaults(),
            query_log_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Authorization {
    /// `type`, default `Bearer`.
    pub kind: String,
    pub credentials: Option<Secret>,
    pub credentials_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TlsConfig {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<Secret>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuth2 {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<String>,
    pub token_url: String,
    pub scopes: Vec<String>,
    pub endpoint_params: BTreeMap<String, String>,
    pub tls_config: TlsConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub tls_config: TlsConfig,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: bool,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    /// Extra request headers: name to values.
    pub http_headers: BTreeMap<String, Vec<String>>,
    /// Extra request headers whose values are files, re-read for every request (tokens in
    /// files rotate): name to paths.
    pub http_header_files: BTreeMap<String, Vec<String>>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            tls_config: TlsConfig::default(),
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            follow_redirects: true,
            enable_http2: true,
            http_headers: BTreeMap::new(),
            http_header_files: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSdConfig {
    /// Patterns, resolved against the config file's directory.
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubernetesRole {
    Pod,
    Service,
    Endpoints,
    EndpointSlice,
    Node,
    Ingress,
}

impl KubernetesRole {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pod" => KubernetesRole::Pod,
            "service" => KubernetesRole::Service,
            "endpoints" => KubernetesRole::Endpoints,
            "endpointslice" => KubernetesRole::EndpointSlice,
            "node" => KubernetesRole::Node,
            "ingress" => KubernetesRole::Ingress,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            KubernetesRole::Pod => "pod",
            KubernetesRole::Service => "service",
            KubernetesRole::Endpoints => "endpoints",
            KubernetesRole::EndpointSlice => "endpointslice",
            KubernetesRole::Node => "node",
            KubernetesRole::Ingress => "ingress",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Namespaces {
    pub names: Vec<String>,
    pub own_namespace: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub role: KubernetesRole,
    pub label: Option<String>,
    pub field: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttachMetadata {
    pub node: bool,
    pub namespace: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesSdConfig {
    pub role: KubernetesRole,
    pub api_server: Option<String>,
    pub kubeconfig_file: Option<String>,
    pub namespaces: Option<Namespaces>,
    pub selectors: Vec<Selector>,
    pub attach_metadata: AttachMetadata,
    pub http_client: HttpClientConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
    pub enable_compression: bool,
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    pub http_client: HttpClientConfig,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    /// SD kinds present in the config that vigil does not implement yet.
    pub unsupported_sd_configs: Vec<String>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertmanagerConfig {
    pub scheme: String,
    pub path_prefix: String,
    pub timeout: Duration,
    pub api_version: String,
    pub http_client: HttpClientConfig,
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// Sections set that vigil does not carry out (`dns_sd_configs`, `consul_sd_configs`,
    /// `sigv4`): reported as NOT RUNNING.
    pub unsupported: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertingConfig {
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_on_http_429: bool,
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: String,
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub protobuf_message: String,
    pub send_exemplars: bool,
    /// `metadata_config`: send metric metadata (default true), how often (1m), how many per
    /// request (2000).
    pub send_metadata: bool,
    pub metadata_send_interval: Duration,
    pub metadata_max_per_send: usize,
    pub queue_config: QueueConfig,
    pub http_client: HttpClientConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteReadConfig {
    pub url: String,
    pub name: String,
    pub remote_timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub read_recent: bool,
    pub required_matchers: BTreeMap<String, String>,
    /// Add the external labels as matchers to the remote query, and remove them from its
    /// answers (default true).
    pub filter_external_labels: bool,
    pub http_client: HttpClientConfig,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageConfig {
    pub retention_time: Option<Duration>,
    pub retention_size: Option<u64>,
    pub retention_percentage: Option<f64>,
    pub out_of_order_time_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub global: GlobalConfig,
    pub rule_files: Vec<String>,
    pub scrape_config_files: Vec<String>,
    pub scrape_configs: Vec<ScrapeConfig>,
    pub alerting: AlertingConfig,
    pub remote_write: Vec<RemoteWriteConfig>,
    pub remote_read: Vec<RemoteReadConfig>,
    pub storage: StorageConfig,
    /// The YAML as loaded.
    pub source: String,
    /// Accepted but worth knowing: unsupported SD kinds and the like.
    pub warnings: Vec<String>,
    /// Directory relative paths were resolved against.
    pub base_dir: PathBuf,
    /// Byte ranges (offset, length) of the secret scalars in `source`, for masking.
    secret_spans: Vec<(usize, usize)>,
    /// Fields set that vigil does not act on (see `field_warnings`).
    field_notes: Vec<Unimplemented>,
}

/// Validation context: the file, its directory, and the positions of the items being
/// checked (innermost last) so errors can name a line.
struct Ctx<'a> {
    file: &'a str,
    base: &'a Path,
    locs: RefCell<Vec<(u64, u64)>>,
    /// A file named by `scrape_config_files` rather than the main config.
    included: bool,
}

/// Pops the position [`Ctx::at`] pushed when the item's check ends.
struct At<'a>(&'a RefCell<Vec<(u64, u64)>>, bool);

impl Drop for At<'_> {
    fn drop(&mut self) {
        if self.1 {
            self.0.borrow_mut().pop();
        }
    }
}

impl<'a> Ctx<'a> {
    fn new(file: &'a str, base: &'a Path) -> Self {
        Ctx {
            file,
            base,
            locs: RefCell::new(Vec::new()),
            included: false,
        }
    }

    /// Errors raised while the returned guard lives point at `item`.
    fn at<T>(&self, item: &Spanned<T>) -> At<'_> {
        let l = item.referenced;
        let known = l.line() > 0;
        if known {
            self.locs.borrow_mut().push((l.line(), l.column()));
        }
        At(&self.locs, known)
    }

    fn err(&self, field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.file.to_string(),
            field: field.into(),
            line: self.locs.borrow().last().copied(),
            msg: msg.into(),
        }
    }

    /// Resolve a file path against the config's directory, as Prometheus's `SetDirectory`.
    fn path(&self, p: &str) -> String {
        if p.is_empty() || Path::new(p).is_absolute() {
            p.to_string()
        } else {
            self.base.join(p).display().to_string()
        }
    }

    fn duration(&self, field: &str, v: &Option<Text>) -> Result<Option<Duration>, ConfigError> {
        match v {
            None => Ok(None),
            Some(t) => parse_duration(&t.0)
                .map(Some)
                .map_err(|e| self.err(field, e)),
        }
    }
}

/// Read YAML text into a raw struct, keeping the field path of a failure.
fn from_yaml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let path = RefCell::new(String::new());
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| yaml_err(file, &path.borrow(), &e))
}

/// The Go type Prometheus names in "field X not found in type Y", from the section holding it.
fn section_type(parent: &str) -> &'static str {
    let last = parent
        .rsplit('.')
        .next()
        .unwrap_or("")
        .split('[')
        .next()
        .unwrap_or("");
    match last {
        "" => "config.Config",
        "global" => "config.GlobalConfig",
        "scrape_configs" => "config.ScrapeConfig",
        "relabel_configs"
        | "metric_relabel_configs"
        | "write_relabel_configs"
        | "alert_relabel_configs" => "relabel.Config",
        "static_configs" => "targetgroup.Group",
        "file_sd_configs" => "file.SDConfig",
        "kubernetes_sd_configs" => "kubernetes.SDConfig",
        "http_sd_configs" => "http.SDConfig",
        "namespaces" => "kubernetes.NamespaceDiscovery",
        "selectors" => "kubernetes.SelectorConfig",
        "attach_metadata" => "kubernetes.AttachMetadataConfig",
        "tls_config" => "config.TLSConfig",
        "basic_auth" => "config.BasicAuth",
        "authorization" => "config.Authorization",
        "oauth2" => "config.OAuth2",
        "alerting" => "config.AlertingConfig",
        "alertmanagers" => "config.AlertmanagerConfig",
        "remote_write" => "config.RemoteWriteConfig",
        "remote_read" => "config.RemoteReadConfig",
        "queue_config" => "config.QueueConfig",
        "storage" => "config.StorageConfig",
        "tsdb" => "config.TSDBConfig",
        "retention" => "config.TSDBRetentionConfig",
        _ => "config",
    }
}

/// A serde-saphyr error as Prometheus would word it, with the field path and position.
fn yaml_err(file: &str, path: &str, e: &serde_saphyr::Error) -> ConfigError {
    let line = e
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column()));
    // One line, without the snippet or the position (reported separately).
    let mut msg = e
        .without_snippet()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(rest) = msg.strip_prefix("error: ")
        && let Some((_, m)) = rest.split_once(": ")
        && rest.starts_with("line ")
    {
        msg = m.to_string();
    }
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    // serde_path_to_error: `?` for an unknown position; Spanned items add `.value`.
    let mut field = path.replace("].value", "]").replace(".value.", ".");
    // An unknown position (a map key, the document) carries no information: drop it.
    while let Some(f) = field.strip_suffix(".?") {
        field = f.to_string();
    }
    if field == "?" || field == "." {
        field.clear();
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let parent = field
            .strip_suffix(name)
            .map(|p| p.trim_end_matches('.'))
            .unwrap_or(&field)
            .to_string();
        msg = format!("field {name} not found in type {}", section_type(&parent));
        field = parent;
    } else if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let name = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        msg = format!("field {name} already set");
    } else if msg.starts_with("!!binary scalar is not valid UTF-8") {
        msg = "!!binary value is not valid UTF-8 text".into();
    } else if msg.starts_with("invalid !!binary base64") {
        msg = "!!binary value contains invalid base64 data".into();
    }
    ConfigError::Yaml {
        path: file.to_string(),
        field,
        line,
        msg,
    }
}

fn labels_map(
    ctx: &Ctx<'_>,
    field: &str,
    m: &Option<BTreeMap<Text, Text>>,
) -> Result<Labels, ConfigError> {
    let mut pairs = Vec::new();
    for (k, v) in m.iter().flatten() {
        if !is_valid_label_name(&k.0) {
            return Err(ctx.err(field, format!("{:?} is not a valid label name", k.0)));
        }
        pairs.push((k.0.clone(), v.0.clone()));
    }
    Ok(Labels::from_pairs(pairs))
}

/// `*_ref` fields name secrets held by a secret provider, which vigil does not have: refused,
/// so a credential is never silently missing.
fn no_refs(
    ctx: &Ctx<'_>,
    field: &str,
    refs: &[(&str, &Option<String>)],
) -> Result<(), ConfigError> {
    for (name, v) in refs {
        if v.is_some() {
            return Err(ctx.err(
                format!("{field}.{name}"),
                format!("{name} is not supported: vigil has no secret providers; give the secret inline or with the matching _file field"),
            ));
        }
    }
    Ok(())
}

fn tls(ctx: &Ctx<'_>, field: &str, t: &Option<RawTls>) -> Result<TlsConfig, ConfigError> {
    let Some(t) = t else {
        return Ok(TlsConfig::default());
    };
    no_refs(
        ctx,
        field,
        &[
            ("ca_ref", &t.ca_ref),
            ("cert_ref", &t.cert_ref),
            ("key_ref", &t.key_ref),
        ],
    )?;
    for (a, b, n) in [(&t.ca, &t.ca_file, "ca"), (&t.cert, &t.cert_file, "cert")] {
        if a.is_some() && b.is_some() {
            return Err(ctx.err(
                field,
                format!("at most one of {n} and {n}_file must be configured"),
            ));
        }
    }
    if t.key.is_some() && t.key_file.is_some() {
        return Err(ctx.err(field, "at most one of key and key_file must be configured"));
    }
    let has_cert = t.cert.is_some() || t.cert_file.is_some();
    let has_key = t.key.is_some() || t.key_file.is_some();
    if has_cert != has_key {
        return Err(ctx.err(field, if has_cert { "exactly one of key or key_file must be configured when a client certificate is configured" } else { "exactly one of cert or cert_file must be configured when a client key is configured" }));
    }
    for v in [&t.min_version, &t.max_version].into_iter().flatten() {
        if !matches!(v.as_str(), "TLS10" | "TLS11" | "TLS12" | "TLS13") {
            return Err(ctx.err(field, format!("unknown TLS version: {v}")));
        }
    }
    Ok(TlsConfig {
        ca_file: t.ca_file.as_deref().map(|p| ctx.path(p)),
        cert_file: t.cert_file.as_deref().map(|p| ctx.path(p)),
        key_file: t.key_file.as_deref().map(|p| ctx.path(p)),
        ca: t.ca.clone(),
        cert: t.cert.clone(),
        key: t.key.as_ref().map(|k| Secret(k.0.0.clone())),
        server_name: t.server_name.clone(),
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
        min_version: t.min_version.clone(),
        max_version: t.max_version.clone(),
    })
}

/// The inlined `HTTPClientConfig` fields, validated as Prometheus's common/config does.
#[allow(clippy::too_many_arguments)]
fn http_client(
    ctx: &Ctx<'_>,
    field: &str,
    basic_auth: &Option<RawBasicAuth>,
    authorization: &Option<RawAuthorization>,
    oauth2: &Option<RawOAuth2>,
    bearer_token: &Option<SecretText>,
    bearer_token_file: &Option<String>,
    tls_config: &Option<RawTls>,
    proxy_url: &Option<String>,
    no_proxy: &Option<String>,
    proxy_from_environment: &Option<bool>,
    follow_redirects: &Option<bool>,
    enable_http2: &Option<bool>,
    http_headers: &Option<BTreeMap<String, RawHttpHeader>>,
) -> Result<HttpClientConfig, ConfigError> {
    if bearer_token.is_some() && bearer_token_file.is_some() {
        return Err(ctx.err(
            field,
            "at most one of bearer_token & bearer_token_file must be configured",
        ));
    }
    let has_bearer = bearer_token.is_some() || bearer_token_file.is_some();
    if (basic_auth.is_some() || oauth2.is_some()) && has_bearer {
        return Err(ctx.err(field, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured"));
    }
    if [
        basic_auth.is_some(),
        oauth2.is_some(),
        authorization.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count()
        > 1
    {
        return Err(ctx.err(
            field,
            "at most one of basic_auth, oauth2 & authorization must be configured",
        ));
    }
    if authorization.is_some() && has_bearer {
        return Err(ctx.err(
            field,
            "authorization is not compatible with bearer_token & bearer_token_file",
        ));
    }
    if let Some(b) = basic_auth {
        no_refs(
            ctx,
            &format!("{field}.basic_auth"),
            &[
                ("username_ref", &b.username_ref),
                ("password_ref", &b.password_ref),
            ],
        )?;
    }
    if let Some(a) = authorization {
        no_refs(
            ctx,
            &format!("{field}.authorization"),
            &[("credentials_ref", &a.credentials_ref)],
        )?;
    }
    let basic = match basic_auth {
        None => None,
        Some(b) => {
            if b.username.is_some() && b.username_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of basic_auth username & username_file must be configured",
                ));
            }
            if b.password.is_some() && b.password_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
            Some(BasicAuth {
                username: b.username.clone().map(|t| t.0).unwrap_or_default(),
                username_file: b.username_file.as_deref().map(|p| ctx.path(p)),
                password: b.password.as_ref().map(|p| Secret(p.0.0.clone())),
                password_file: b.password_file.as_deref().map(|p| ctx.path(p)),
            })
        }
    };
    let mut auth = match authorization {
        None => None,
        Some(a) => {
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(ctx.err(field, "at most one of authorization credentials & credentials_file must be configured"));
            }
            let kind = a
                .kind
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "Bearer".into());
            if kind.eq_ignore_ascii_case("basic") {
                return Err(ctx.err(
                    field,
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            Some(Authorization {
                kind,
                credentials: a.credentials.as_ref().map(|c| Secret(c.0.0.clone())),
                credentials_file: a.credentials_file.as_deref().map(|p| ctx.path(p)),
            })
        }
    };
    if has_bearer {
        // bearer_token(_file) is the old spelling of authorization with type Bearer.
        auth = Some(Authorization {
            kind: "Bearer".into(),
            credentials: bearer_token.as_ref().map(|c| Secret(c.0.0.clone())),
            credentials_file: bearer_token_file.as_deref().map(|p| ctx.path(p)),
        });
    }
    let oauth = match oauth2 {
        None => None,
        Some(o) => {
            if o.client_secret.is_some() && o.client_secret_file.is_some() {
                return Err(ctx.err(
                    field,
                    "at most one of oauth2 client_secret & client_secret_file must be configured",
                ));
            }
            let f = format!("{field}.oauth2");
            no_refs(
                ctx,
                &f,
                &[
                    ("client_secret_ref", &o.client_secret_ref),
                    ("client_certificate_key_ref", &o.client_certificate_key_ref),
                ],
            )?;
            if let Some(g) = o
                .grant_type
                .as_deref()
                .filter(|g| *g != "client_credentials")
            {
                return Err(ctx.err(format!("{f}.grant_type"), format!("grant type {g:?} is not supported by vigil: only client_credentials with a client secret is (the JWT-bearer grant is not)")));
            }
            // The JWT-bearer grant's fields: refused by name rather than dropped.
            for (set, name) in [
                (o.client_certificate_key.is_some(), "client_certificate_key"),
                (
                    o.client_certificate_key_file.is_some(),
                    "client_certificate_key_file",
                ),
                (
                    o.client_certificate_key_id.is_some(),
                    "client_certificate_key_id",
                ),
                (o.signature_algorithm.is_some(), "signature_algorithm"),
                (o.iss.is_some(), "iss"),
                (o.audience.is_some(), "audience"),
                (o.claims.is_some(), "claims"),
            ] {
                if set {
                    return Err(ctx.err(format!("{f}.{name}"), format!("{name} belongs to the JWT-bearer grant, which vigil does not support: only client_credentials with a client secret is")));
                }
            }
            for (set, name) in [
                (o.proxy_url.is_some(), "proxy_url"),
                (o.no_proxy.is_some(), "no_proxy"),
                (o.proxy_from_environment.is_some(), "proxy_from_environment"),
                (o.proxy_connect_header.is_some(), "proxy_connect_header"),
            ] {
                if set {
                    return Err(ctx.err(format!("{f}.{name}"), format!("{name}: a proxy for the token endpoint is not supported by vigil; the token is fetched directly")));
                }
            }
            if o.token_url.as_deref().is_none_or(str::is_empty) {
                return Err(ctx.err(&f, "oauth2 token_url must be configured"));
            }
            Some(OAuth2 {
                client_id: o.client_id.clone().map(|t| t.0).unwrap_or_default(),
                client_secret: o.client_secret.as_ref().map(|s| Secret(s.0.0.clone())),
                client_secret_file: o.client_secret_file.as_deref().map(|p| ctx.path(p)),
                token_url: o.token_url.clone().unwrap_or_default(),
                scopes: o.scopes.clone().unwrap_or_default(),
                endpoint_params: o.endpoint_params.clone().unwrap_or_default(),
                tls_config: tls(ctx, &format!("{field}.oauth2.tls_config"), &o.tls_config)?,
            })
        }
    };
    if proxy_from_environment.unwrap_or(false) && (proxy_url.is_some() || no_proxy.is_some()) {
        return Err(ctx.err(field, "if proxy_from_environment is configured, proxy_url and no_proxy must not be configured"));
    }
    if no_proxy.is_some() && proxy_url.is_none() {
        return Err(ctx.err(
            field,
            "if no_proxy is configured, proxy_url must also be configured",
        ));
    }
    let mut headers = BTreeMap::new();
    let mut header_files = BTreeMap::new();
    for (name, h) in http_headers.iter().flatten() {
        if let Some(files) = &h.files {
            header_files.insert(name.clone(), files.iter().map(|p| ctx.path(p)).collect());
        }
        let mut vals: Vec<String> = h.values.clone().unwrap_or_default();
        vals.extend(h.secrets.iter().flatten().map(|s| s.0.0.clone()));
        headers.insert(name.clone(), vals);
    }
    Ok(HttpClientConfig {
        basic_auth: basic,
        authorization: auth,
        oauth2: oauth,
        tls_config: tls(ctx, &format!("{field}.tls_config"), tls_config)?,
        proxy_url: proxy_url.clone(),
        no_proxy: no_proxy.clone(),
        proxy_from_environment: proxy_from_environment.unwrap_or(false),
        follow_redirects: follow_redirects.unwrap_or(true),
        enable_http2: enable_http2.unwrap_or(true),
        http_headers: headers,
        http_header_files: header_files,
    })
}

macro_rules! http_of {
    ($ctx:expr, $field:expr, $r:expr) => {
        http_client(
            $ctx,
            $field,
            &$r.basic_auth,
            &$r.authorization,
            &$r.oauth2,
            &$r.bearer_token,
            &$r.bearer_token_file,
            &$r.tls_config,
            &$r.proxy_url,
            &$r.no_proxy,
            &$r.proxy_from_environment,
            &$r.follow_redirects,
            &$r.enable_http2,
            &$r.http_headers,
        )
    };
}

/// The gist of a `regex` error on one line (its Display draws the pattern with a caret).
fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}

/// One relabel rule, validated as Prometheus's `relabel.Config.Validate`.
fn relabel(
    ctx: &Ctx<'_>,
    field: &str,
    what: &str,
    r: &Item<RawRelabel>,
) -> Result<RelabelConfig, ConfigError> {
    let Some(r) = r else {
        return Err(ctx.err(field, format!("empty or null {what}")));
    };
    let _at = ctx.at(r);
    let r = &r.value;
    let action = match &r.action {
        None => Action::Replace,
        Some(None) => return Err(ctx.err(field, "relabel action cannot be empty")),
        Some(Some(a)) if a.is_empty() => {
            return Err(ctx.err(field, "relabel action cannot be empty"));
        }
        Some(Some(a)) => Action::parse(a)
            .ok_or_else(|| ctx.err(field, format!("unknown relabel action {a:?}")))?,
    };
    let regex_src = r
        .regex
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "(.*)".into());
    let regex = RelabelRegex::new(&regex_src).map_err(|e| {
        ctx.err(
            format!("{field}.regex"),
            format!("error parsing regexp: {}: `{regex_src}`", regex_error(&e)),
        )
    })?;
    let mut src = Vec::new();
    for s in r.source_labels.iter().flatten() {
        if !is_valid_label_name(&s.0) {
            return Err(ctx.err(
                format!("{field}.source_labels"),
                format!("{:?} is not a valid label name", s.0),
            ));
        }
        src.push(s.0.clone());
    }
    let target = r.target_label.clone().unwrap_or_default();
    let replacement = r
        .replacement
        .as_ref()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "$1".into());
    let separator = r.separator.clone().unwrap_or_else(|| ";".into());
    let modulus = r.modulus.unwrap_or(0);
    let a = action.as_str();
    if modulus == 0 && action == Action::HashMod {
        return Err(ctx.err(
            field,
            "relabel configuration for hashmod requires non-zero modulus",
        ));
    }
    let needs_target = matches!(
        action,
        Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
    );
    if needs_target && target.is_empty() {
        return Err(ctx.err(
            field,
            format!("relabel configuration for {a} action requires 'target_label' value"),
        ));
    }
    let templated = target.contains('$');
    if action == Action::Replace && !templated && !is_valid_label_name(&target) {
        return Err(ctx.err(
            field,
            format!("{target:?} is invalid 'target_label' for {a} action"),
        ));
    }
    if matches!(
        action,
        Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
            | Action::HashMod
    ) && !is_valid_label_name(&target)
    {
        return Err(ctx.err(
            field,
            format!("{target:?} is invalid 'target_label' for {a} action"),
        ));
    }
    if matches!(
        action,
        Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
    ) && replacement != "$1"
    {
        return Err(ctx.err(
            field,
            format!("'replacement' can not be set for {a} action"),
        ));
    }
    if action == Action::LabelMap
        && !replacement.contains('$')
        && !is_valid_label_name(&replacement)
    {
        return Err(ctx.err(
            field,
            format!("{replacement:?} is invalid 'replacement' for {a} action"),
        ));
    }
    if matches!(action, Action::DropEqual | Action::KeepEqual)
        && (regex_src != "(.*)" || modulus != 0 || separator != ";" || replacement != "$1")
    {
        return Err(ctx.err(
            field,
            format!(
                "{a} action requires only 'source_labels' and `target_label`, and no other fields"
            ),
        ));
    }
    if matches!(action, Action::LabelDrop | Action::LabelKeep)
        && (r.source_labels.is_some()
            || !target.is_empty()
            || modulus != 0
            || separator != ";"
            || replacement != "$1")
    {
        return Err(ctx.err(
            field,
            format!("{a} action requires only 'regex', and no other fields"),
        ));
    }
    Ok(RelabelConfig {
        source_labels: src,
        separator,
        regex,
        modulus,
        target_label: target,
        replacement,
        action,
    })
}

fn relabels(
    ctx: &Ctx<'_>,
    field: &str,
    what: &str,
    v: &Option<Vec<Item<RawRelabel>>>,
) -> Result<Vec<RelabelConfig>, ConfigError> {
    v.iter()
        .flatten()
        .enumerate()
        .map(|(i, r)| relabel(ctx, &format!("{field}[{i}]"), what, r))
        .collect()
}

/// `static_configs`. As Prometheus, targets are checked to be host:port addresses only in jobs
/// without `relabel_configs`: with relabeling, a target written as a URL (the blackbox
/// exporter's documented pattern) is rewritten before it is scraped, and a target still not an
/// address after relabeling is dropped with an error then.
fn static_configs(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawStaticConfig>>>,
    check_hosts: bool,
) -> Result<Vec<StaticConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, s) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(s) = s else {
            return Err(ctx.err(f, "empty or null section in static_configs"));
        };
        let _at = ctx.at(s);
        let s = &s.value;
        let mut targets = Vec::new();
        for t in s.targets.iter().flatten().flatten() {
            if check_hosts && t.0.contains('/') {
                return Err(ctx.err(
                    format!("{f}.targets"),
                    format!("{:?} is not a valid hostname", t.0),
                ));
            }
            targets.push(t.0.clone());
        }
        out.push(StaticConfig {
            targets,
            labels: labels_map(ctx, &format!("{f}.labels"), &s.labels)?,
        });
    }
    Ok(out)
}

fn file_sd(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawFileSd>>>,
) -> Result<Vec<FileSdConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, s) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(s) = s else {
            return Err(ctx.err(f, "empty or null section in file_sd_configs"));
        };
        let _at = ctx.at(s);
        let s = &s.value;
        let files = s.files.clone().unwrap_or_default();
        if files.is_empty() {
            return Err(ctx.err(
                f,
                "file service discovery config must contain at least one path name",
            ));
        }
        for p in &files {
            let ext = Path::new(p)
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            if !matches!(ext, "json" | "yml" | "yaml") {
                return Err(ctx.err(
                    format!("{f}.files"),
                    format!("path name {p:?} is not valid for file discovery"),
                ));
            }
        }
        out.push(FileSdConfig {
            files: files.iter().map(|p| ctx.path(p)).collect(),
            refresh_interval: ctx
                .duration(&format!("{f}.refresh_interval"), &s.refresh_interval)?
                .unwrap_or(Duration::from_secs(300)),
        });
    }
    Ok(out)
}

/// A Kubernetes label or field selector, checked for the syntax the API accepts.
fn valid_selector(s: &str, field: bool) -> bool {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .all(|part| {
            let ops: &[&str] = &["!=", "==", "="];
            let has_op = ops.iter().any(|op| part.contains(op));
            if field {
                has_op
            } else {
                has_op || part.contains(" in ") || part.contains(" notin ") || !part.contains(' ')
            }
        })
}

fn kubernetes(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<Item<RawKubernetesSd>>>,
) -> Result<Vec<KubernetesSdConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, k) in v.iter().flatten().enumerate() {
        let f = format!("{field}[{i}]");
        let Some(k) = k else {
            return Err(ctx.err(f, "empty or null section in kubernetes_sd_configs"));
        };
        let _at = ctx.at(k);
        let k = &k.value;
        let role =
            match k.role.as_deref() {
                None | Some("") => return Err(ctx.err(
                    &f,
                    "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)",
                )),
                Some(r) => KubernetesRole::parse(r).ok_or_else(|| {
                    ctx.err(
                        format!("{f}.role"),
                        format!("unknown Kubernetes SD role {r:?}"),
                    )
                })?,
            };
        let http = http_of!(ctx, &f, k)?;
        if let Some(name) = http.http_header_files.keys().next() {
            // The Kubernetes client's headers are fixed when it is built; a file re-read per
            // request (as Prometheus does) is not possible there yet.
            return Err(ctx.err(
                format!("{f}.http_headers.{name}.files"),
                "header values from files are not supported for kubernetes_sd_configs yet; use values or secrets",
            ));
        }
        let api_server = k.api_server.clone().filter(|s| !s.is_empty());
        let custom_http = http != HttpClientConfig::default();
        if let Some(kc) = &k.kubeconfig_file {
            if api_server.is_some() {
                return Err(ctx.err(
                    &f,
                    "cannot use 'kubeconfig_file' and 'api_server' simultaneously",
                ));
            }
            if custom_http {
                return Err(ctx.err(
                    &f,
                    "cannot use a custom HTTP client configuration together with 'kubeconfig_file'",
                ));
            }
            let _ = kc;
        }
        if api_server.is_none() && k.kubeconfig_file.is_none() && custom_http {
            return Err(ctx.err(&f, "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"));
        }
        let own = k
            .namespaces
            .as_ref()
            .and_then(|n| n.own_namespace)
            .unwrap_or(false);
        if own && api_server.is_some() {
            return Err(ctx.err(
                &f,
                "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously",
            ));
        }
        if own && k.kubeconfig_file.is_some() {
            return Err(ctx.err(
                &f,
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
            ));
        }
        let allowed: &[KubernetesRole] = match role {
            KubernetesRole::Pod => &[KubernetesRole::Pod, KubernetesRole::Node],
            KubernetesRole::Service => &[KubernetesRole::Service],
            KubernetesRole::Endpoints => &[
                KubernetesRole::Pod,
                KubernetesRole::Service,
                KubernetesRole::Endpoints,
            ],
            KubernetesRole::EndpointSlice => &[
                KubernetesRole::Pod,
                KubernetesRole::Service,
                KubernetesRole::EndpointSlice,
            ],
            KubernetesRole::Node => &[KubernetesRole::Node],
            KubernetesRole::Ingress => &[KubernetesRole::Ingress],
        };
        let mut selectors = Vec::new();
        let mut seen = HashSet::new();
        for (j, s) in k.selectors.iter().flatten().enumerate() {
            let sf = format!("{f}.selectors[{j}]");
            let _at = ctx.at(s);
            let s = &s.value;
            let r = s.role.as_deref().unwrap_or("");
            let sr = KubernetesRole::parse(r)
                .ok_or_else(|| ctx.err(&sf, format!("invalid selector role: {r}")))?;
            if !seen.insert(sr.as_str()) {
                return Err(ctx.err(&sf, format!("duplicated selector role: {r}")));
            }
            if !allowed.contains(&sr) {
                let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
                return Err(ctx.err(
                    &sf,
                    format!(
                        "{} role supports only {} selectors",
                        role.as_str(),
                        names.join(", ")
                    ),
                ));
            }
            if let Some(l) = &s.label
                && !valid_selector(l, false)
            {
                return Err(ctx.err(format!("{sf}.label"), format!("invalid selector: {l:?}")));
            }
            if let Some(fl) = &s.field
                && !valid_selector(fl, true)
            {
                return Err(ctx.err(
                    format!("{sf}.field"),
                    format!("invalid selector: '{fl}'; can't understand '{fl}'"),
                ));
            }
            selectors.push(Selector {
                role: sr,
                label: s.label.clone(),
                field: s.field.clone(),
            });
        }
        out.push(KubernetesSdConfig {
            role,
            api_server,
            kubeconfig_file: k.kubeconfig_file.as_deref().map(|p| ctx.path(p)),
            namespaces: k.namespaces.as_ref().map(|n| Namespaces {
                names: n.names.clone().unwrap_or_default(),
                own_namespace: own,
            }),
            selectors,
            attach_metadata: AttachMetadata {
                node: k
                    .attach_metadata
                    .as_ref()
                    .and_then(|a| a.node)
                    .unwrap_or(false),
                namespace: k
                    .attach_metadata
                    .as_ref()
                    .and_then(|a| a.namespace)
                    .unwrap_or(false),
            },
            http_client: http,
        });
    }
    Ok(out)
}

fn protocols(
    ctx: &Ctx<'_>,
    field: &str,
    v: &Option<Vec<String>>,
) -> Result<Option<Vec<ScrapeProtocol>>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let mut out = Vec::new();
    for p in v {
        let sp = ScrapeProtocol::parse(p).ok_or_else(|| ctx.err(field, format!("unknown scrape protocol {p}, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]")))?;
        if out.contains(&sp) {
            return Err(ctx.err(
                field,
                format!("duplicated protocol in scrape_protocols, got {v:?}"),
            ));
        }
        out.push(sp);
    }
    if out.is_empty() {
        return Err(ctx.err(field, "scrape_protocols cannot be empty"));
    }
    Ok(Some(out))
}

fn scrape_config(
    ctx: &Ctx<'_>,
    field: &str,
    s: &RawScrapeConfig,
    g: &GlobalConfig,
    notes: &mut Vec<Unimplemented>,
) -> Result<ScrapeConfig, ConfigError> {
    let job = s.job_name.clone().unwrap_or_default();
    let f = if job.is_empty() {
        field.to_string()
    } else {
        format!("{field} (job {job:?})")
    };
    // Prometheus reads the service discovery sections before it checks the job name, so a
    // bad SD config is what it reports first.
    let kube = kubernetes(
        ctx,
        &format!("{f}.kubernetes_sd_configs"),
        &s.kubernetes_sd_configs,
    )?;
    for (i, h) in s.http_sd_configs.iter().flatten().enumerate() {
        let hf = format!("{f}.http_sd_configs[{i}]");
        let Some(h) = h else {
            return Err(ctx.err(hf, "empty or null section in http_sd_configs"));
        };
        let _at = ctx.at(h);
        http_of!(ctx, &hf, &h.value)?;
    }
    if job.is_empty() {
        return Err(ctx.err(field, "job_name is empty"));
    }
    let interval = ctx
        .duration(&format!("{f}.scrape_interval"), &s.scrape_interval)?
        .unwrap_or(g.scrape_interval);
    let timeout = match ctx.duration(&format!("{f}.scrape_timeout"), &s.scrape_timeout)? {
        Some(t) => t,
        None => g.scrape_timeout.min(interval),
    };
    if timeout > interval {
        return Err(ctx.err(&f, format!("scrape timeout greater than scrape interval for scrape config with job name {job:?}")));
    }
    let scheme = s.scheme.clone().unwrap_or_else(|| "http".into());
    if scheme != "http" && scheme != "https" {
        return Err(ctx.err(
            format!("{f}.scheme"),
            format!("unknown scrape scheme {scheme:?}: only http and https are supported"),
        ));
    }
    let body_size_limit = match &s.body_size_limit {
        None => g.body_size_limit,
        Some(t) => parse_size(&t.0).map_err(|e| ctx.err(format!("{f}.body_size_limit"), e))?,
    };
    if let Some(p) = &s.fallback_scrape_protocol {
        ScrapeProtocol::parse(p).ok_or_else(|| {
            ctx.err(
                format!("{f}.fallback_scrape_protocol"),
                format!("unknown fallback_scrape_protocol {p:?}"),
            )
        })?;
    }
    let mut unsupported = Vec::new();
    macro_rules! opaque {
        ($($n:ident),*) => {$(
            if let Some(list) = &s.$n {
                if list.iter().any(Option::is_none) {
                    return Err(ctx.err(format!("{f}.{}", stringify!($n)), format!("empty or null section in {}", stringify!($n))));
                }
                unsupported.push(stringify!($n).to_string());
            }
        )*};
    }
    opaque!(
        azure_sd_configs,
        consul_sd_configs,
        digitalocean_sd_configs,
        docker_sd_configs,
        dockerswarm_sd_configs,
        dns_sd_configs,
        ec2_sd_configs,
        eureka_sd_configs,
        gce_sd_configs,
        hetzner_sd_configs,
        ionos_sd_configs,
        kuma_sd_configs,
        lightsail_sd_configs,
        linode_sd_configs,
        marathon_sd_configs,
        nerve_sd_configs,
        nomad_sd_configs,
        oci_sd_configs,
        openstack_sd_configs,
        outscale_sd_configs,
        ovhcloud_sd_configs,
        puppetdb_sd_configs,
        scaleway_sd_configs,
        serverset_sd_configs,
        stackit_sd_configs,
        triton_sd_configs,
        uyuni_sd_configs,
        vultr_sd_configs
    );
    if s.http_sd_configs.is_some() {
        unsupported.push("http_sd_configs".into());
    }
    unsupported.sort();
    // Name the file too when the job comes from `scrape_config_files`.
    let whence = if ctx.included {
        format!(" in {}", ctx.file)
    } else {
        String::new()
    };
    for u in &unsupported {
        notes.push(Unimplemented::Field(format!(
            "{f}{whence}: {u} is not supported by vigil yet and will discover no targets"
        )));
    }
    Ok(ScrapeConfig {
        job_name: job.clone(),
        honor_labels: s.honor_labels.unwrap_or(false),
        honor_timestamps: s.honor_timestamps.unwrap_or(true),
        track_timestamps_staleness: s.track_timestamps_staleness.unwrap_or(false),
        scrape_interval: interval,
        scrape_timeout: timeout,
        scrape_protocols: protocols(ctx, &format!("{f}.scrape_protocols"), &s.scrape_protocols)?
            .unwrap_or_else(|| g.scrape_protocols.clone()),
        metrics_path: s.metrics_path.clone().unwrap_or_else(|| "/metrics".into()),
        scheme,
        params: s.params.clone().unwrap_or_default(),
        enable_compression: s.enable_compression.unwrap_or(true),
        body_size_limit,
        sample_limit: s.sample_limit.unwrap_or(g.sample_limit),
        target_limit: s.target_limit.unwrap_or(g.target_limit),
        label_limit: s.label_limit.unwrap_or(g.label_limit),
        label_name_length_limit: s
            .label_name_length_limit
            .unwrap_or(g.label_name_length_limit),
        label_value_length_limit: s
            .label_value_length_limit
            .unwrap_or(g.label_value_length_limit),
        keep_dropped_targets: s.keep_dropped_targets.unwrap_or(g.keep_dropped_targets),
        http_client: http_of!(ctx, &f, s)?,
        static_configs: static_configs(
            ctx,
            &format!("{f}.static_configs"),
            &s.static_configs,
            s.relabel_configs.as_ref().is_none_or(|r| r.is_empty()),
        )?,
        file_sd_configs: file_sd(ctx, &format!("{f}.file_sd_configs"), &s.file_sd_configs)?,
        kubernetes_sd_configs: kube,
        unsupported_sd_configs: unsupported,
        relabel_configs: relabels(
            ctx,
            &format!("{f}.relabel_configs"),
            "target relabeling rule in scrape config",
            &s.relabel_configs,
        )?,
        metric_relabel_configs: relabels(
            ctx,
            &format!("{f}.metric_relabel_configs"),
            "metric relabeling rule in scrape config",
            &s.metric_relabel_configs,
        )?,
    })
}

fn global(ctx: &Ctx<'_>, g: &Option<Spanned<RawGlobal>>) -> Result<GlobalConfig, ConfigError> {
    let mut out = GlobalConfig::default();
    let Some(g) = g else { return Ok(out) };
    let _at = ctx.at(g);
    let g = &g.value;
    if let Some(d) = ctx.duration("global.scrape_interval", &g.scrape_interval)? {
        out.scrape_interval = d;
    }
    match ctx.duration("global.scrape_timeout", &g.scrape_timeout)? {
        Some(d) => out.scrape_timeout = d,
        None => out.scrape_timeout = out.scrape_timeout.min(out.scrape_interval),
    }
    if out.scrape_timeout > out.scrape_interval {
        return Err(ctx.err(
            "global",
            "global scrape timeout greater than scrape interval",
        ));
    }
    if let Some(d) = ctx.duration("global.evaluation_interval", &g.evaluation_interval)? {
        out.evaluation_interval = d;
    }
    if let Some(d) = ctx.duration("global.rule_query_offset", &g.rule_query_offset)? {
        out.rule_query_offset = d;
    }
    out.external_labels = labels_map(ctx, "global.external_labels", &g.external_labels)?;
    if let Some(t) = &g.body_size_limit {
        out.body_size_limit = parse_size(&t.0).map_err(|e| ctx.err("global.body_size_limit", e))?;
    }
    out.sample_limit = g.sample_limit.unwrap_or(0);
    out.target_limit = g.target_limit.unwrap_or(0);
    out.label_limit = g.label_limit.unwrap_or(0);
    out.label_name_length_limit = g.label_name_length_limit.unwrap_or(0);
    out.label_value_length_limit = g.label_value_length_limit.unwrap_or(0);
    out.keep_dropped_targets = g.keep_dropped_targets.unwrap_or(0);
    if let Some(p) = protocols(ctx, "global.scrape_protocols", &g.scrape_protocols)? {
        out.scrape_protocols = p;
    }
    if let Some(s) = &g.metric_name_validation_scheme
        && !matches!(s.as_str(), "" | "utf8" | "legacy")
    {
        return Err(ctx.err("global.metric_name_validation_scheme", format!("unknown global name validation method specified, must be either '', 'legacy' or 'utf8', got {s}")));
    }
    out.query_log_file = g.query_log_file.as_deref().map(|p| ctx.path(p));
    Ok(out)
}

/// A glob is only allowed in the last path element, as Prometheus requires.
fn check_glob_path(p: &str) -> bool {
    let dir = Path::new(p)
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    !dir.contains(['*', '?', '['])
}

const RESERVED_HEADERS: &[&str] = &[
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "retry-after",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
];

fn check_headers(
    ctx: &Ctx<'_>,
    field: &str,
    h: &Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let h = h.clone().unwrap_or_default();
    for k in h.keys() {
        let l = k.to_ascii_lowercase();
        if l == "authorization" {
            return Err(ctx.err(field, "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter"));
        }
        if RESERVED_HEADERS.contains(&l.as_str()) {
            return Err(ctx.err(
                field,
                format!("{l} is a reserved header. It must not be changed"),
            ));
        }
    }
    Ok(h)
}

/// `metadata_config`, checked as Prometheus checks it: whether metadata is sent, how often,
/// how many entries per request.
fn metadata_send(
    ctx: &Ctx<'_>,
    f: &str,
    m: &Option<RawMetadataConfig>,
) -> Result<(bool, Duration, usize), ConfigError> {
    let defaults = (true, Duration::from_secs(60), 2000);
    let Some(m) = m else { return Ok(defaults) };
    let every = ctx
        .duration(
            &format!("{f}.metadata_config.send_interval"),
            &m.send_interval,
        )?
        .filter(|d| !d.is_zero())
        .unwrap_or(defaults.1);
    let per_send = match m.max_samples_per_send {
        Some(n) if n < 0 => {
            return Err(ctx.err(
                format!("{f}.metadata_config.max_samples_per_send"),
                format!("max_samples_per_send must not be negative, got {n}"),
            ));
        }
        Some(n) if n > 0 => n as usize,
        _ => defaults.2,
    };
    Ok((m.send.unwrap_or(true), every, per_send))
}

fn remote_write(
    ctx: &Ctx<'_>,
    v: &Option<Vec<Item<RawRemoteWrite>>>,
) -> Result<Vec<RemoteWriteConfig>, ConfigError> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in v.iter().flatten().enumerate() {
        let f = format!("remote_write[{i}]");
        let Some(r) = r else {
            return Err(ctx.err(f, "empty or null remote write config section"));
        };
        let _at = ctx.at(r);
        let r = &r.value;
        let url = r.url.clone().unwrap_or_default();
        if url.is_empty() {
            return Err(ctx.err(&f, "url for remote_write is empty"));
        }
        let name = r.name.clone().unwrap_or_default();
        if !name.is_empty() && !names.insert(name.clone()) {
            return Err(ctx.err(
                &f,
                format!("found multiple remote write configs with job name {name:?}"),
            ));
        }
        let headers = check_headers(ctx, &format!("{f}.headers"), &r.headers)?;
        // Authentication vigil cannot do yet is refused by name: sending unsigned would only
        // fail at the receiver, later and less clearly.
        for (set, what) in [
            (r.sigv4.is_some(), "sigv4"),
            (r.azuread.is_some(), "azuread"),
            (r.google_iam.is_some(), "google_iam"),
        ] {
            if set {
                return Err(ctx.err(
                    format!("{f}.{what}"),
                    format!("vigil cannot authenticate remote write with {what} yet; remove it or send through a proxy that signs requests"),
                ));
            }
        }
        let msg = r
            .protobuf_message
            .clone()
            .unwrap_or_else(|| "prometheus.WriteRequest".into());
        if !matches!(
            msg.as_str(),
            "prometheus.WriteRequest" | "io.prometheus.write.v2.Request"
        ) {
            return Err(ctx.err(format!("{f}.protobuf_message"), format!("unknown remote write protobuf message {msg}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request")));
        }

        let mut q = QueueConfig::default();
        if let Some(rq) = &r.queue_config {
            let _at = ctx.at(rq);
            let rq = &rq.value;
            let qf = format!("{f}.queue_config");
            let pos = |name: &str, v: Option<i64>, cur: u64| -> Result<u64, ConfigError> {
                match v {
                    None => Ok(cur),
                    Some(x) if x > 0 => Ok(x as u64),
                    Some(x) => Err(ctx.err(
                        format!("{qf}.{name}"),
                        format!("{name} must be greater than 0, got {x}"),
                    )),
                }
            };
            q.capacity = pos("capacity", rq.capacity, q.capacity)?;
            q.max_shards = pos("max_shards", rq.max_shards, q.max_shards)?;
            q.min_shards = pos("min_shards", rq.min_shards, q.min_shards)?;
            q.max_samples_per_send = pos(
                "max_samples_per_send",
                rq.max_samples_per_send,
                q.max_samples_per_send,
            )?;
            if q.min_shards > q.max_shards {
                return Err(ctx.err(
                    &qf,
                    format!(
                        "min_shards ({}) must not be greater than max_shards ({})",
                        q.min_shards, q.max_shards
                    ),
                ));
            }
            if let Some(d) = ctx.duration(
                &format!("{qf}.batch_send_deadline"),
                &rq.batch_send_deadline,
            )? {
                q.batch_send_deadline = d;
            }
            if let Some(d) = ctx.duration(&format!("{qf}.min_backoff"), &rq.min_backoff)? {
                q.min_backoff = d;
            }
            if let Some(d) = ctx.duration(&format!("{qf}.max_backoff"), &rq.max_backoff)? {
                q.max_backoff = d;
            }
            if q.max_backoff < q.min_backoff {
                return Err(ctx.err(
                    &qf,
                    format!(
                        "max_backoff ({}) must not be less than min_backoff ({})",
                        format_duration(q.max_backoff),
                        format_duration(q.min_backoff)
                    ),
                ));
            }
            if let Some(d) =
                ctx.duration(&format!("{qf}.sample_age_limit"), &rq.sample_age_limit)?
            {
                q.sample_age_limit = d;
            }
            q.retry_on_http_429 = rq.retry_on_http_429.unwrap_or(false);
        }
        let metadata = metadata_send(ctx, &f, &r.metadata_config)?;
        out.push(RemoteWriteConfig {
            url,
            name,
            remote_timeout: ctx
                .duration(&format!("{f}.remote_timeout"), &r.remote_timeout)?
                .unwrap_or(Duration::from_secs(30)),
            headers,
            write_relabel_configs: relabels(
                ctx,
                &format!("{f}.write_relabel_configs"),
                "relabeling rule in remote write config",
                &r.write_relabel_configs,
            )?,
            protobuf_message: msg,
            send_exemplars: r.send_exemplars.unwrap_or(false),
            send_metadata: metadata.0,
            metadata_send_interval: metadata.1,
            metadata_max_per_send: metadata.2,
            queue_config: q,
            http_client: http_of!(ctx, &f, r)?,
        });
    }
    Ok(out)
}

fn remote_read(
    ctx: &Ctx<'_>,
    v: &Option<Vec<Item<RawRemoteRead>>>,
) -> Result<Vec<RemoteReadConfig>, ConfigError> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, r) in v.iter().flatten().enumerate() {
        let f = format!("remote_read[{i}]");
        let Some(r) = r else {
            return Err(ctx.err(f, "empty or null remote read config section"));
        };
        let _at = ctx.at(r);
        let r = &r.value;
        let url = r.url.clone().unwrap_or_default();
        if url.is_empty() {
            return Err(ctx.err(&f, "url for remote_read is empty"));
        }
        let name = r.name.clone().unwrap_or_default();
        if !name.is_empty() && !names.insert(name.clone()) {
            return Err(ctx.err(
                &f,
                format!("found multiple remote read configs with job name {name:?}"),
            ));
        }
        out.push(RemoteReadConfig {
            url,
            name,
            remote_timeout: ctx
                .duration(&format!("{f}.remote_timeout"), &r.remote_timeout)?
                .unwrap_or(Duration::from_secs(60)),
            headers: check_headers(ctx, &format!("{f}.headers"), &r.headers)?,
            read_recent: r.read_recent.unwrap_or(false),
            required_matchers: r.required_matchers.clone().unwrap_or_default(),
            filter_external_labels: r.filter_external_labels.unwrap_or(true),
            http_client: http_of!(ctx, &f, r)?,
        });
    }
    Ok(out)
}

fn alerting(ctx: &Ctx<'_>, a: &Option<RawAlerting>) -> Result<AlertingConfig, ConfigError> {
    let Some(a) = a else {
        return Ok(AlertingConfig::default());
    };
    let mut out = AlertingConfig {
        alert_relabel_configs: relabels(
            ctx,
            "alerting.alert_relabel_configs",
            "alert relabeling rule",
            &a.alert_relabel_configs,
        )?,
        alertmanagers: vec![],
    };
    for (i, am) in a.alertmanagers.iter().flatten().enumerate() {
        let f = format!("alerting.alertmanagers[{i}]");
        let Some(am) = am else {
            return Err(ctx.err(f, "empty or null Alertmanager config"));
        };
        let _at = ctx.at(am);
        let am = &am.value;
        let api = am.api_version.clone().unwrap_or_else(|| "v2".into());
        let mut unsupported = Vec::new();
        if am.dns_sd_configs.is_some() {
            unsupported.push("dns_sd_configs".to_string());
        }
        if am.consul_sd_configs.is_some() {
            unsupported.push("consul_sd_configs".to_string());
        }
        if am.sigv4.is_some() {
            unsupported.push("sigv4".to_string());
        }
        if api != "v2" {
            return Err(ctx.err(
                format!("{f}.api_version"),
                format!("expected Alertmanager api version to be one of [v2] but got {api}"),
            ));
        }
        out.alertmanagers.push(AlertmanagerConfig {
            scheme: am.scheme.clone().unwrap_or_else(|| "http".into()),
            path_prefix: am.path_prefix.clone().unwrap_or_else(|| "/".into()),
            timeout: ctx
                .duration(&format!("{f}.timeout"), &am.timeout)?
                .unwrap_or(Duration::from_secs(10)),
            api_version: api,
            http_client: http_of!(ctx, &f, am)?,
            static_configs: static_configs(
                ctx,
                &format!("{f}.static_configs"),
                &am.static_configs,
                am.relabel_configs.as_ref().is_none_or(|r| r.is_empty()),
            )?,
            file_sd_configs: file_sd(ctx, &format!("{f}.file_sd_configs"), &am.file_sd_configs)?,
            kubernetes_sd_configs: kubernetes(
                ctx,
                &format!("{f}.kubernetes_sd_configs"),
                &am.kubernetes_sd_configs,
            )?,
            relabel_configs: relabels(
                ctx,
                &format!("{f}.relabel_configs"),
                "Alertmanager target relabeling rule",
                &am.relabel_configs,
            )?,
            alert_relabel_configs: relabels(
                ctx,
                &format!("{f}.alert_relabel_configs"),
                "alert relabeling rule",
                &am.alert_relabel_configs,
            )?,
            unsupported,
        });
    }
    Ok(out)
}

fn storage(ctx: &Ctx<'_>, s: &Option<RawStorage>) -> Result<StorageConfig, ConfigError> {
    let mut out = StorageConfig::default();
    let Some(t) = s.as_ref().and_then(|s| s.tsdb.as_ref()) else {
        return Ok(out);
    };
    if let Some(d) = ctx.duration(
        "storage.tsdb.out_of_order_time_window",
        &t.out_of_order_time_window,
    )? {
        out.out_of_order_time_window = d;
    }
    if let Some(r) = &t.retention {
        let _at = ctx.at(r);
        let r = &r.value;
        out.retention_time = ctx.duration("storage.tsdb.retention.time", &r.time)?;
        if let Some(sz) = &r.size {
            out.retention_size =
                Some(parse_size(&sz.0).map_err(|e| ctx.err("storage.tsdb.retention.size", e))?);
        }
        if let Some(p) = r.percentage {
            if !(0.0..=100.0).contains(&p) {
                return Err(ctx.err(
                    "storage.tsdb.retention.percentage",
                    format!("retention percentage must be between 0 and 100, got {p}"),
                ));
            }
            out.retention_percentage = Some(p);
        }
    }
    Ok(out)
}

impl Config {
    /// Read and parse `path`; relative paths inside resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io {
            path: path.display().to_string(),
            err,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        Self::parse_named(&text, &base, &path.display().to_string())
    }

    /// Parse YAML text; relative paths resolve against `base_dir`.
    pub fn parse(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        Self::parse_named(yaml, base_dir, "<config>")
    }

    fn parse_named(yaml: &str, base_dir: &Path, file: &str) -> Result<Config, ConfigError> {
        raw::start_secret_spans();
        let raw: RawConfig = if yaml.trim().is_empty() {
            RawConfig::default()
        } else {
            from_yaml(yaml, file)?
        };
        let secret_spans = raw::take_secret_spans();
        let ctx = Ctx::new(file, base_dir);
        let g = global(&ctx, &raw.global)?;
        let mut notes = field_warnings(&raw);
        let mut rule_files = Vec::new();
        for rf in raw.rule_files.iter().flatten().flatten() {
            if !check_glob_path(rf) {
                return Err(ctx.err("rule_files", format!("invalid rule file path {rf:?}")));
            }
            rule_files.push(ctx.path(rf));
        }
        let mut scrape_config_files = Vec::new();
        for sf in raw.scrape_config_files.iter().flatten().flatten() {
            if !check_glob_path(sf) {
                return Err(ctx.err(
                    "scrape_config_files",
                    format!("invalid scrape config file path {sf:?}"),
                ));
            }
            scrape_config_files.push(ctx.path(sf));
        }
        let mut scrape_configs: Vec<ScrapeConfig> = Vec::new();
        // Job name -> where it was first defined, for the duplicate message.
        let mut jobs: HashMap<String, String> = HashMap::new();
        for (i, s) in raw.scrape_configs.iter().flatten().enumerate() {
            let f = format!("scrape_configs[{i}]");
            let Some(s) = s else {
                return Err(ctx.err(f, "empty or null scrape config section"));
            };
            let _at = ctx.at(s);
            let sc = scrape_config(&ctx, &f, &s.value, &g, &mut notes)?;
            if jobs.contains_key(&sc.job_name) {
                return Err(ctx.err(
                    f,
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        sc.job_name
                    ),
                ));
            }
            jobs.insert(sc.job_name.clone(), "main config file".into());
            scrape_configs.push(sc);
        }
        // scrape_config_files: each file may hold only scrape configs; job names stay unique.
        for pattern in &scrape_config_files {
            let mut files: Vec<PathBuf> = glob::glob(pattern)
                .map_err(|e| {
                    ctx.err(
                        "scrape_config_files",
                        format!("invalid pattern {pattern:?}: {e}"),
                    )
                })?
                .filter_map(Result::ok)
                .collect();
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::Io {
                    path: path.display().to_string(),
                    err,
                })?;
                let name = path.display().to_string();
                let sub: RawScrapeConfigFile = if text.trim().is_empty() {
                    RawScrapeConfigFile::default()
                } else {
                    from_yaml(&text, &name)?
                };
                let sub_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
                let mut sctx = Ctx::new(&name, &sub_base);
                sctx.included = true;
                for (i, s) in sub.scrape_configs.iter().flatten().enumerate() {
                    let f = format!("scrape_configs[{i}]");
                    let Some(s) = s else {
                        return Err(sctx.err(f, "empty or null scrape config section"));
                    };
                    let _at = sctx.at(s);
                    let sc = scrape_config(&sctx, &f, &s.value, &g, &mut notes)?;
                    if let Some(first) = jobs.get(&sc.job_name) {
                        return Err(sctx.err(
                            f,
                            format!(
                                "found multiple scrape configs with job name {:?}, first found in {first}",
                                sc.job_name
                            ),
                        ));
                    }
                    jobs.insert(sc.job_name.clone(), format!("{name:?}"));
                    scrape_configs.push(sc);
                }
            }
        }
        let mut cfg = Config {
            alerting: alerting(&ctx, &raw.alerting)?,
            remote_write: remote_write(&ctx, &raw.remote_write)?,
            remote_read: remote_read(&ctx, &raw.remote_read)?,
            storage: storage(&ctx, &raw.storage)?,
            global: g,
            rule_files,
            scrape_config_files,
            scrape_configs,
            source: yaml.to_string(),
            secret_spans,
            warnings: Vec::new(),
            base_dir: base_dir.to_path_buf(),
            field_notes: notes,
        };
        let mut w = cfg.unimplemented();
        w.extend(
            cfg.field_notes
                .iter()
                .filter(|u| matches!(u, Unimplemented::Harmless(_)))
                .cloned(),
        );
        if raw.storage.as_ref().is_some_and(|s| s.exemplars.is_some()) {
            w.push(Unimplemented::Harmless(
                "storage.exemplars: vigil does not store exemplars yet; the section has no effect"
                    .into(),
            ));
        }
        for (section, present) in [
            ("tracing", raw.tracing.is_some()),
            ("otlp", raw.otlp.is_some()),
            ("runtime", raw.runtime.is_some()),
        ] {
            if present {
                w.push(Unimplemented::Harmless(format!(
                    "{section}: accepted for compatibility and not used by vigil (it has no effect on what is scraped, stored or queried)"
                )));
            }
        }
        cfg.warnings.extend(w.iter().map(Unimplemented::to_string));
        Ok(cfg)
    }

    /// Sections that are configured but that vigil does not carry out yet, each with what it
    /// means for the user. Logged loudly at start-up and reload, printed by `vigil check
    /// config`, and shown on the rules and alerts pages.
    pub fn unimplemented(&self) -> Vec<Unimplemented> {
        let mut out = Vec::new();
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            for u in &am.unsupported {
                let what = if u == "sigv4" {
                    "vigil does not sign requests with AWS SigV4 yet: alerts sent there are unsigned"
                } else {
                    "vigil does not support this discovery yet: no Alertmanager is found through it"
                };
                out.push(Unimplemented::Alerting(format!(
                    "alerting.alertmanagers[{i}].{u}: {what}"
                )));
            }
        }
        for (i, r) in self.remote_write.iter().enumerate() {
            // Samples are sent; metric metadata (Prometheus sends it every minute by default)
            // and exemplars are not.
            if r.send_exemplars {
                out.push(Unimplemented::Remote(format!(
                    "remote_write[{i}].send_exemplars: vigil stores no exemplars yet, so none are sent"
                )));
            }
        }
        if self.storage.retention_percentage.is_some() {
            out.push(Unimplemented::Storage(
                "storage.tsdb.retention.percentage: vigil does not apply a retention by share of the disk yet: only retention.time and retention.size limit what is kept".into(),
            ));
        }
        if !self.storage.out_of_order_time_window.is_zero() {
            out.push(Unimplemented::Storage(
                "storage.tsdb.out_of_order_time_window: vigil does not accept out-of-order samples yet: samples older than a series' newest are dropped (and counted) as without the setting".into(),
            ));
        }
        out.extend(
            self.field_notes
                .iter()
                .filter(|u| !matches!(u, Unimplemented::Harmless(_)))
                .cloned(),
        );
        out
    }
}

/// Fields Prometheus accepts that vigil does not act on, when set: each named with what it
/// means (none is silently ignored).
fn field_warnings(raw: &RawConfig) -> Vec<Unimplemented> {
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
        if r.send_native_histograms == Some(true) {
            harmless.push(Unimplemented::Harmless(format!("remote_write[{i}].send_native_histograms: vigil stores no native histograms yet, so there are none to send")));
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
                validation: g.metric_name_validation_scheme.clone(),
                escaping: g.metric_name_escaping_scheme.clone(),
                native: g.scrape_native_histograms,
                nhcb: g.convert_classic_histograms_to_nhcb,
                extra: g.extra_scrape_metrics,
                classic: g.always_scrape_classic_histograms,
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
                validation: s.metric_name_validation_scheme.clone(),
                escaping: s.metric_name_escaping_scheme.clone(),
                native: s.scrape_native_histograms,
                nhcb: s.convert_classic_histograms_to_nhcb,
                extra: None,
                fallback: s.fallback_scrape_protocol.clone(),
                classic: s.always_scrape_classic_histograms,
                bucket_limit: s.native_histogram_bucket_limit.is_some(),
                bucket_factor: s.native_histogram_min_bucket_factor.is_some(),
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
        if s.validation.as_deref() == Some("utf8") {
            not_running(format!(
                "{at}.metric_name_validation_scheme: utf8: vigil checks names with the legacy rules; series with other names fail their scrape with an error naming them"
            ));
        }
        if s.escaping.is_some() {
            not_running(format!(
                "{at}.metric_name_escaping_scheme: vigil does not ask targets for escaped UTF-8 names (it accepts legacy names only)"
            ));
        }
        if s.native == Some(true) {
            not_running(format!(
                "{at}.scrape_native_histograms: vigil does not ingest native histograms yet; classic histograms are stored"
            ));
        }
        if s.nhcb == Some(true) {
            not_running(format!(
                "{at}.convert_classic_histograms_to_nhcb: vigil does not convert classic histograms yet; they are stored as they are"
            ));
        }
        if s.extra == Some(true) {
            not_running(format!(
                "{at}.extra_scrape_metrics: vigil writes the standard scrape_* series only"
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
        if s.classic == Some(true) {
            harmless.push(Unimplemented::Harmless(format!("{at}.always_scrape_classic_histograms: vigil always stores classic histograms (it does not ingest native ones yet); the setting has no effect")));
        }
        for (set, name) in [
            (s.bucket_limit, "native_histogram_bucket_limit"),
            (s.bucket_factor, "native_histogram_min_bucket_factor"),
        ] {
            if set {
                harmless.push(Unimplemented::Harmless(format!(
                    "{at}.{name}: no effect (vigil does not ingest native histograms yet)"
                )));
            }
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
struct Scope {
    failure_log: Option<String>,
    validation: Option<String>,
    escaping: Option<String>,
    native: Option<bool>,
    nhcb: Option<bool>,
    extra: Option<bool>,
    fallback: Option<String>,
    classic: Option<bool>,
    bucket_limit: bool,
    bucket_factor: bool,
    proxy_connect_header: bool,
    http2: Option<bool>,
}

/// The HTTP-client-only notes for a section that is not a scrape config.
fn http_scope(at: String, proxy_connect_header: bool, http2: Option<bool>) -> (String, Scope) {
    (
        at,
        Scope {
            proxy_connect_header,
            http2,
            ..Default::default()
        },
    )
}

/// A URL with the password of its user info (`scheme://user:password@host`) masked.
pub fn mask_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_start = rest.find('/').unwrap_or(rest.len());
            match rest[..host_start].rsplit_once('@') {
                Some((user, host)) if user.contains(':') => {
                    let user = user.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}:{MASK}@{host}{}", &rest[host_start..])
                }
                Some(_) => url.to_string(),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// A configured section vigil accepts but does not carry out (see [`Config::unimplemented`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Unimplemented {
    Alerting(String),
    Remote(String),
    Storage(String),
    /// A field vigil does not act on (a query log, native histogram settings, ...).
    Field(String),
    /// Sections with no effect on data (tracing, OTLP settings, Go runtime tuning).
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

impl Config {
    /// Agent mode (`--agent`) runs no rules, sends no alerts and answers no queries: the
    /// sections for them are refused, in Prometheus's words and order.
    pub fn check_agent(&self) -> Result<(), String> {
        if !self.alerting.alertmanagers.is_empty()
            || !self.alerting.alert_relabel_configs.is_empty()
        {
            return Err("field alerting is not allowed in agent mode".into());
        }
        if !self.rule_files.is_empty() {
            return Err("field rule_files is not allowed in agent mode".into());
        }
        if !self.remote_read.is_empty() {
            return Err("field remote_read is not allowed in agent mode".into());
        }
        Ok(())
    }
}

impl Config {
    /// What `promtool check config` checks beyond parsing: every referenced file exists.
    pub fn check_files(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |what: &str, p: &Option<String>| {
            if let Some(p) = p
                && !Path::new(p).is_file()
            {
                problems.push(format!("error checking {what} {p:?}: no such file"));
            }
        };
        let mut http = |h: &HttpClientConfig| {
            check("client cert file", &h.tls_config.cert_file);
            check("client key file", &h.tls_config.key_file);
            check("CA file", &h.tls_config.ca_file);
            if let Some(b) = &h.basic_auth {
                check("password file", &b.password_file);
                check("username file", &b.username_file);
            }
            if let Some(a) = &h.authorization {
                check("credentials file", &a.credentials_file);
            }
            if let Some(o) = &h.oauth2 {
                check("client secret file", &o.client_secret_file);
                check("client cert file", &o.tls_config.cert_file);
                check("client key file", &o.tls_config.key_file);
                check("CA file", &o.tls_config.ca_file);
            }
        };
        for sc in &self.scrape_configs {
            http(&sc.http_client);
            for k in &sc.kubernetes_sd_configs {
                http(&k.http_client);
            }
        }
        for r in &self.remote_write {
            http(&r.http_client);
        }
        for r in &self.remote_read {
            http(&r.http_client);
        }
        for am in &self.alerting.alertmanagers {
            http(&am.http_client);
        }
        for rf in &self.rule_files {
            let matches: Vec<PathBuf> = glob::glob(rf)
                .map(|g| g.filter_map(Result::ok).collect())
                .unwrap_or_default();
            if matches.is_empty() && !rf.contains(['*', '?', '[']) {
                problems.push(format!("{rf:?} does not point to an existing file"));
            }
        }
        problems
    }

    /// The config as loaded, re-serialised (values and their order, without the file's
    /// comments, which can hold credentials), with every secret replaced by `<secret>`.
    pub fn to_masked_yaml(&self) -> String {
        let masked = self.masked_source();
        reserialize::reserialize(&masked).unwrap_or_else(|e| {
            // The text parsed when the config was loaded; this cannot fail in practice. Never
            // fall back to text that may carry comments.
            format!("# vigil could not re-serialise the configuration: {e}\n")
        })
    }

    /// The main file's text with every secret replaced by `<secret>`: the secrets vigil
    /// parses are masked where the parser found them (any quoting, block scalars, anchors);
    /// inside sections kept opaque (unsupported service discoveries) values of secret-named
    /// keys are masked line by line; URL passwords too.
    fn masked_source(&self) -> String {
        let mut text = self.source.clone();
        let mut spans = self.secret_spans.clone();
        spans.sort_unstable();
        spans.dedup();
        let mut end_of_next = usize::MAX;
        for &(o, l) in spans.iter().rev() {
            let e = o + l;
            if e > text.len() || e > end_of_next {
                continue;
            }
            if !text.is_char_boundary(o) || !text.is_char_boundary(e) {
                continue;
            }
            // Block scalars' spans run to the next line's indentation: keep that.
            let region = &text[o..e];
            let tail = region[region.trim_end().len()..].to_string();
            text.replace_range(o..e, &format!("{MASK}{tail}"));
            end_of_next = o;
        }
        mask_by_key(&text)
    }
}

const MASK: &str = "<secret>";

/// Keys whose values are secrets in Prometheus's SD configs (masked where vigil keeps the
/// section opaque).
const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "credentials",
    "client_secret",
    "key",
    "secret_key",
    "token",
    "auth_token",
    "key_passphrase",
    "application_secret",
    "consumer_key",
    "service_account_key",
    "private_key",
    "client_certificate_key",
];

fn mask_by_key(text: &str) -> String {
    let key_re = regex::Regex::new(r"^(\s*(?:-\s+)*)([A-Za-z0-9_]+)(\s*:)(\s*)(.*)$")
        .unwrap_or_else(|_| unreachable!("constant regex"));
    let flow_re = regex::Regex::new(&format!(
        r#"([{{,]\s*)({})(\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,}}\s][^,}}]*)"#,
        SECRET_KEYS.join("|")
    ))
    .unwrap_or_else(|_| unreachable!("constant regex"));
    let url_re = regex::Regex::new(r"(://[^/\s:@]+:)[^@/\s]+@")
        .unwrap_or_else(|_| unreachable!("constant regex"));
    let mut out: Vec<String> = Vec::new();
    // While masking a block scalar: the key's column; deeper lines are its content.
    let mut block: Option<usize> = None;
    for line in text.split('\n') {
        if let Some(col) = block {
            let indent = line.len() - line.trim_start().len();
            if line.trim().is_empty() || indent > col {
                continue;
            }
            block = None;
        }
        let mut l = line.to_string();
        if let Some(c) = key_re.captures(line) {
            let val = c[5].trim_end();
            let plain_scalar = !val.is_empty()
                && !val.starts_with(['#', '{', '[', '&', '*'])
                && !val.starts_with(MASK);
            if SECRET_KEYS.contains(&&c[2]) && plain_scalar {
                if val.starts_with(['|', '>']) {
                    block = Some(c[1].len());
                }
                let sep = if c[4].is_empty() { " " } else { &c[4] };
                l = format!("{}{}{}{sep}{MASK}", &c[1], &c[2], &c[3]);
            }
        }
        if l.contains('{') {
            l = flow_re
                .replace_all(&l, |c: &regex::Captures| {
                    if c[4].starts_with(MASK) {
                        c[0].to_string()
                    } else {
                        format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
                    }
                })
                .into_owned();
        }
        l = url_re
            .replace_all(&l, format!("${{1}}{MASK}@"))
            .into_owned();
        out.push(l);
    }
    out.join("\n")
}

#[cfg(test)]
mod field_table_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Config, ConfigError> {
        Config::parse(y, Path::new("/etc/prometheus"))
    }

    #[test]
    fn defaults_and_inheritance() {
        let c = parse("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 5s\n").unwrap();
        assert_eq!(c.scrape_configs[0].scrape_interval, Duration::from_secs(15));
        assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(10));
        assert_eq!(
            c.scrape_configs[1].scrape_timeout,
            Duration::from_secs(5),
            "timeout capped at the interval"
        );
        assert_eq!(c.scrape_configs[0].metrics_path, "/metrics");
        assert!(c.scrape_configs[0].honor_timestamps);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("scrape_configs[0] (job \"a\").relabel_configs[0]")
                && e.contains("requires 'target_label'"),
            "{e}"
        );
        let e = parse("scrape_configs:\n  - job_name: a\n    bogus: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("scrape_configs:\n  - job_name: a\nscrape_configs:\n  - job_name: b\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("(line 3, column 1): field scrape_configs already set"),
            "{e}"
        );
    }

    #[test]
    fn errors_carry_path_job_and_position() {
        let y = "scrape_configs:\n  - job_name: a\n  - job_name: b\n    relabel_configs:\n      - source_labels: [x]\n        action: hashmod\n        target_label: y\n";
        let e = parse(y).unwrap_err();
        assert_eq!(
            e.field(),
            Some("scrape_configs[1] (job \"b\").relabel_configs[0]")
        );
        assert_eq!(e.line_column(), Some((5, 9)));
        assert_eq!(
            e.to_string(),
            "parsing YAML file <config>: scrape_configs[1] (job \"b\").relabel_configs[0] (line 5, column 9): relabel configuration for hashmod requires non-zero modulus"
        );
        // Shape errors: Prometheus's wording, the section's path, the key's position.
        let e =
            parse("scrape_configs:\n  - job_name: a\n    consult_sd_configs: []\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "parsing YAML file <config>: scrape_configs[0] (line 3, column 5): field consult_sd_configs not found in type config.ScrapeConfig"
        );
        let e = parse("global:\n  scrape_interval: [1]\n").unwrap_err();
        assert_eq!(e.field(), Some("global.scrape_interval"), "{e}");
        assert_eq!(e.line_column().map(|l| l.0), Some(2), "{e}");
        // Regex errors fit on one line and quote the pattern.
        let e = parse("scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - regex: abc(def\n        target_label: x\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("error parsing regexp: unclosed group: `abc(def`") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn unsupported_discovery_is_kept_and_warned_about() {
        let c = parse("scrape_configs:\n  - job_name: a\n  - job_name: bar\n    consul_sd_configs:\n      - server: x\n    static_configs:\n      - targets: [a:1]\n").unwrap();
        assert_eq!(
            c.scrape_configs[1].unsupported_sd_configs,
            ["consul_sd_configs"]
        );
        assert_eq!(
            c.warnings,
            [
                "scrape_configs[1] (job \"bar\"): consul_sd_configs is not supported by vigil yet and will discover no targets"
            ]
        );
        let e = parse("scrape_configs:\n  - job_name: a\n    consul_sd_configs: {server: x}\n")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("scrape_configs[0].consul_sd_configs"),
            "{e}"
        );
    }

    #[test]
    fn masking_covers_every_way_of_writing_a_secret() {
        let y = r#"global:
  scrape_interval: 15s
remote_write:
  - url: http://user:hunter1@remote/push
    basic_auth:
      username: u
      password: &pw "hunter2 # not a comment"
scrape_configs:
  - job_name: a
    authorization: {type: Bearer, credentials: hunter3}
    tls_config:
      cert_file: c
      key: |
        -----BEGIN hunter4-----
        abc
    http_headers:
      X-Token:
        secrets: ["hunter5", hunter6]
  - job_name: b
    basic_auth:
      username: v
      password: *pw
    consul_sd_configs:
      - server: x
        token: hunter7
        tls_config: {key: hunter8, cert: c}
"#;
        let c = parse(y).unwrap();
        let m = c.to_masked_yaml();
        for n in 1..=8 {
            assert!(!m.contains(&format!("hunter{n}")), "hunter{n} leaked:\n{m}");
        }
        // Still YAML with the same shape.
        let again = parse(&m).unwrap();
        assert_eq!(again.scrape_configs.len(), 2);
        assert_eq!(
            again.scrape_configs[1]
                .http_client
                .basic_auth
                .as_ref()
                .and_then(|b| b.password.as_ref())
                .map(|p| p.0.as_str()),
            Some("<secret>")
        );
        assert!(m.contains("scrape_interval: 15s"));
    }

    #[test]
    fn bearer_token_becomes_authorization_and_secrets_are_masked() {
        let c = parse("scrape_configs:\n  - job_name: a\n    bearer_token: 1234\n    basic_auth_unused: null\n").unwrap_err();
        let _ = c;
        let c = parse("scrape_configs:\n  - job_name: a\n    bearer_token: 1234\n").unwrap();
        let a = c.scrape_configs[0]
            .http_client
            .authorization
            .as_ref()
            .unwrap();
        assert_eq!(
            (a.kind.as_str(), a.credentials.as_ref().unwrap().0.as_str()),
            ("Bearer", "1234")
        );
        assert!(c.to_masked_yaml().contains("bearer_token: <secret>"));
        assert!(!c.to_masked_yaml().contains("1234"));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_dir() {
        let c = parse(
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['t/*.json']\n",
        )
        .unwrap();
        assert_eq!(
            c.scrape_configs[0].file_sd_configs[0].files[0],
            "/etc/prometheus/t/*.json"
        );
    }

    /// Remote write authentication vigil cannot do is refused naming the field; what it does
    /// not send (metadata, remote write 2.0) is named.
    #[test]
    fn remote_write_refuses_unsupported_auth_and_names_what_is_not_sent() {
        for what in ["sigv4", "azuread", "google_iam"] {
            let y = format!("remote_write:\n  - url: http://r/w\n    {what}: {{}}\n");
            let e = Config::parse(&y, Path::new(".")).unwrap_err().to_string();
            assert!(e.contains(&format!("remote_write[0].{what}")), "{e}");
        }
        let y = "remote_write:\n  - url: http://r/w\n    protobuf_message: io.prometheus.write.v2.Request\n";
        let c = Config::parse(y, Path::new(".")).unwrap();
        assert_eq!(
            c.remote_write[0].protobuf_message,
            "io.prometheus.write.v2.Request"
        );
        let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
        assert!(
            !u.iter()
                .any(|m| m.contains("protobuf_message") || m.contains("metadata_config")),
            "{u:?}"
        );
        let y = "remote_write:\n  - url: http://r/w\n    round_robin_dns: true\n    send_native_histograms: true\n";
        let c = Config::parse(y, Path::new(".")).unwrap();
        let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
        assert!(
            u.iter()
                .any(|m| m.starts_with("remote_write[0].round_robin_dns")),
            "{u:?}"
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("send_native_histograms")),
            "{:?}",
            c.warnings
        );
    }

    /// Fields Prometheus accepts and vigil does not act on are named, and `_ref` secrets are
    /// refused: none is silently ignored.
    #[test]
    fn fields_vigil_does_not_act_on_are_named() {
        let y = "global:\n  query_log_file: q.log\n  external_labels: {dc: eu}\nscrape_configs:\n  - job_name: a\n    scrape_native_histograms: true\n    scrape_failure_log_file: f.log\n    enable_http2: false\n    static_configs: [{targets: ['a:1']}]\n";
        let c = Config::parse(y, Path::new(".")).unwrap();
        let u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
        for want in [
            "global.query_log_file: vigil does not write a query log",
            "scrape_configs[0] (a).scrape_native_histograms:",
            "scrape_configs[0] (a).scrape_failure_log_file:",
        ] {
            assert!(u.iter().any(|m| m.starts_with(want)), "{want}: {u:?}");
        }
        // External labels are acted on (alerts, remote write, federation, remote read).
        assert!(!u.iter().any(|m| m.contains("external_labels")), "{u:?}");
        assert!(
            c.warnings.iter().any(|w| w.contains("enable_http2")),
            "{:?}",
            c.warnings
        );
        for (y, want) in [
            (
                "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password_ref: p}\n",
                "password_ref is not supported",
            ),
            (
                "scrape_configs:\n  - job_name: a\n    tls_config: {ca_ref: c}\n",
                "ca_ref is not supported",
            ),
        ] {
            let e = Config::parse(y, Path::new(".")).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
