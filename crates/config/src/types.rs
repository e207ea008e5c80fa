//! The resolved config: what other crates read once a `prometheus.yml` is validated, with defaults
//! and global inheritance applied.

use super::*;

/// A secret: printed as `<secret>`.
#[derive(Clone, PartialEq, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// `--enable-feature=native-histograms` given: `scrape_native_histograms` defaults to true,
/// as in Prometheus 2.40 to 3.8 (Prometheus 3.9 and later ignore the flag).
static NATIVE_HISTOGRAMS_DEFAULT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up, before any config is read (a feature flag, not a config field).
pub fn set_native_histograms_default(on: bool) {
    NATIVE_HISTOGRAMS_DEFAULT.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn native_histograms_default() -> bool {
    NATIVE_HISTOGRAMS_DEFAULT.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--enable-feature=created-timestamp-zero-ingestion` given: scrapes append a 0 at a
/// counter's, summary's or histogram's created timestamp, and ask for the protobuf format
/// first unless `scrape_protocols` says otherwise, as Prometheus does.
static CREATED_TIMESTAMP_ZERO: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up, before any config is read (a feature flag, not a config field).
pub fn set_created_timestamp_zero_ingestion(on: bool) {
    CREATED_TIMESTAMP_ZERO.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn created_timestamp_zero_ingestion() -> bool {
    CREATED_TIMESTAMP_ZERO.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--enable-feature=otlp-native-delta-ingestion` given: the OTLP receiver stores delta sums
/// and histograms as they come instead of refusing them.
static OTLP_NATIVE_DELTA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up (a feature flag, not a config field).
pub fn set_otlp_native_delta(on: bool) {
    OTLP_NATIVE_DELTA.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn otlp_native_delta() -> bool {
    OTLP_NATIVE_DELTA.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--enable-feature=otlp-deltatocumulative` given: the OTLP receiver sums delta points into
/// cumulative ones per stream before translating them.
static OTLP_DELTA_TO_CUMULATIVE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up (a feature flag, not a config field).
pub fn set_otlp_delta_to_cumulative(on: bool) {
    OTLP_DELTA_TO_CUMULATIVE.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn otlp_delta_to_cumulative() -> bool {
    OTLP_DELTA_TO_CUMULATIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--enable-feature=extra-scrape-metrics` given: each scrape also reports
/// `scrape_timeout_seconds`, `scrape_sample_limit` and `scrape_body_size_bytes`.
static EXTRA_SCRAPE_METRICS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up, before any config is read (a feature flag, not a config field).
pub fn set_extra_scrape_metrics(on: bool) {
    EXTRA_SCRAPE_METRICS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn extra_scrape_metrics() -> bool {
    EXTRA_SCRAPE_METRICS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Go's `os.Expand`, as Prometheus 3 applies it to external label values: `$name` (letters,
/// digits, `_`) and `${name}` are replaced by `lookup(name)`, `$$` by `$`; a `$` followed by
/// nothing that names a variable stays, and bad braces (`${}`, an unclosed `${`) are dropped.
pub fn expand_env(s: &str, lookup: &dyn Fn(&str) -> String) -> String {
    let special = |c: u8| b"*#$@!?-0123456789".contains(&c);
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut j = 0;
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[i..j]);
            let rest = &s[j + 1..];
            let r = rest.as_bytes();
            // (name, bytes consumed after the `$`)
            let (name, w): (&str, usize) = if r[0] == b'{' {
                if r.len() > 2 && special(r[1]) && r[2] == b'}' {
                    (&rest[1..2], 3)
                } else {
                    match r.iter().position(|&c| c == b'}') {
                        Some(1) => ("", 2),
                        Some(k) => (&rest[1..k], k + 1),
                        None => ("", 1),
                    }
                }
            } else if special(r[0]) {
                (&rest[..1], 1)
            } else {
                let k = r
                    .iter()
                    .position(|&c| !(c == b'_' || c.is_ascii_alphanumeric()))
                    .unwrap_or(r.len());
                (&rest[..k], k)
            };
            if name.is_empty() && w == 0 {
                // `$` before something that names nothing: kept.
                out.push('$');
            } else if !name.is_empty() {
                // Prometheus's mapping: `$$` is a literal `$`.
                if name == "$" {
                    out.push('$');
                } else {
                    out.push_str(&lookup(name));
                }
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// `--enable-feature=type-and-unit-labels` given: scraped series carry their family's type
/// and unit as `__type__` and `__unit__`, as Prometheus's parsers add them.
static TYPE_AND_UNIT_LABELS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up, before any config is read (a feature flag, not a config field).
pub fn set_type_and_unit_labels(on: bool) {
    TYPE_AND_UNIT_LABELS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn type_and_unit_labels() -> bool {
    TYPE_AND_UNIT_LABELS.load(std::sync::atomic::Ordering::Relaxed)
}

/// `--enable-feature=metadata-wal-records` given: scrapes hand each series' metadata to the
/// storage, which logs it in the WAL when it changes.
static METADATA_WAL_RECORDS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up, before any config is read (a feature flag, not a config field).
pub fn set_metadata_wal_records(on: bool) {
    METADATA_WAL_RECORDS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn metadata_wal_records() -> bool {
    METADATA_WAL_RECORDS.load(std::sync::atomic::Ordering::Relaxed)
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
    /// Every protocol Prometheus knows (its Accept weights count down from one more).
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
    ];

    pub fn defaults() -> Vec<Self> {
        vec![
            ScrapeProtocol::OpenMetricsText1_0_0,
            ScrapeProtocol::OpenMetricsText0_0_1,
            ScrapeProtocol::PrometheusText1_0_0,
            ScrapeProtocol::PrometheusText0_0_4,
        ]
    }

    /// The default where native histograms are scraped: protobuf first, the only format
    /// that carries them.
    pub fn proto_first() -> Vec<Self> {
        let mut v = vec![ScrapeProtocol::PrometheusProto];
        v.extend(Self::defaults());
        v
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
    /// `scrape_protocols` was set: scrape configs inherit it whether or not they scrape
    /// native histograms.
    pub scrape_protocols_set: bool,
    pub scrape_native_histograms: bool,
    pub always_scrape_classic_histograms: bool,
    /// `global.extra_scrape_metrics`: the default of every job's.
    pub extra_scrape_metrics: bool,
    pub convert_classic_histograms_to_nhcb: bool,
    /// `metric_name_validation_scheme` (utf8 unless set to legacy).
    pub name_validation: NameValidation,
    /// `metric_name_escaping_scheme`: what a scrape asks targets for.
    pub name_escaping: NameEscaping,
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
            scrape_protocols_set: false,
            scrape_native_histograms: native_histograms_default(),
            always_scrape_classic_histograms: false,
            extra_scrape_metrics: false,
            convert_classic_histograms_to_nhcb: false,
            name_validation: NameValidation::Utf8,
            name_escaping: NameEscaping::AllowUtf8,
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
    /// Prometheus 3.11: `__meta_kubernetes_pod_deployment_name`, through the pod's ReplicaSet.
    pub deployment: bool,
    /// Prometheus 3.11: `__meta_kubernetes_pod_job_name`.
    pub job: bool,
    /// Prometheus 3.11: `__meta_kubernetes_pod_cronjob_name`, through the pod's Job.
    pub cronjob: bool,
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
    /// `scrape_protocols` was set by neither the job nor `global`, and
    /// `created-timestamp-zero-ingestion` is off: the order follows whether native histograms
    /// are scraped, which a target's `__scrape_native_histograms__` can change.
    pub protocols_follow_native: bool,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// Native histograms become histogram samples (else their classic buckets are read).
    pub scrape_native_histograms: bool,
    /// A histogram's classic buckets are kept beside its native form.
    pub always_scrape_classic_histograms: bool,
    /// Classic histograms are stored as native histograms with custom buckets (their classic
    /// series only with `always_scrape_classic_histograms`).
    pub convert_classic_histograms_to_nhcb: bool,
    /// Which metric and label names a scrape accepts; a series with another fails the scrape.
    pub name_validation: NameValidation,
    /// The `escaping=` a scrape asks targets for (`allow-utf-8` only with utf8 validation).
    pub name_escaping: NameEscaping,
    /// A 0 is appended at each counter's, summary's and histogram's created timestamp
    /// (`--enable-feature=created-timestamp-zero-ingestion`; not a config field).
    pub created_timestamp_zero_ingestion: bool,
    /// Scraped series get `__type__` and `__unit__` from their family's metadata
    /// (`--enable-feature=type-and-unit-labels`; not a config field).
    pub type_and_unit_labels: bool,
    /// Each series' metadata goes to the storage when the series is new or its family's
    /// metadata changed (`--enable-feature=metadata-wal-records`; not a config field).
    pub append_metadata: bool,
    /// Each scrape also reports its timeout, sample limit and body size
    /// (`--enable-feature=extra-scrape-metrics`; not a config field).
    pub extra_scrape_metrics: bool,
    /// Most buckets a native histogram may keep (0: no limit): its resolution is lowered
    /// until it fits, and a scrape whose histogram cannot fit fails.
    pub native_histogram_bucket_limit: u64,
    /// The finest resolution kept, as the least growth factor from one bucket to the next
    /// (0: no lower bound on the factor).
    pub native_histogram_min_bucket_factor: f64,
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
    /// Native histogram samples are sent (`send_native_histograms`, off by default).
    pub send_native_histograms: bool,
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

/// `otlp:` as Prometheus defines it (defaults: no promotion, `UnderscoreEscapingWithSuffixes`,
/// both label-name compatibility settings on).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    pub promote_all_resource_attributes: bool,
    pub promote_resource_attributes: Vec<String>,
    pub ignore_resource_attributes: Vec<String>,
    pub translation_strategy: String,
    pub keep_identifying_resource_attributes: bool,
    pub convert_histograms_to_nhcb: bool,
    pub promote_scope_metadata: bool,
    pub label_name_underscore_sanitization: bool,
    pub label_name_preserve_multiple_underscores: bool,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_all_resource_attributes: false,
            promote_resource_attributes: Vec::new(),
            ignore_resource_attributes: Vec::new(),
            translation_strategy: "UnderscoreEscapingWithSuffixes".into(),
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageConfig {
    pub retention_time: Option<Duration>,
    pub retention_size: Option<u64>,
    pub retention_percentage: Option<f64>,
    pub out_of_order_time_window: Duration,
    /// `storage.exemplars.max_exemplars` as written (Prometheus's default is 100000); used
    /// only with `--enable-feature=exemplar-storage`, as in Prometheus. 0 or less keeps none.
    pub max_exemplars: Option<i64>,
    /// Whether `storage.exemplars` is present (a warning without the feature).
    pub exemplars_section: bool,
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
    /// `otlp:`: the OTLP receiver's translation.
    pub otlp: OtlpConfig,
    /// The YAML as loaded.
    pub source: String,
    /// Accepted but worth knowing: unsupported SD kinds and the like.
    pub warnings: Vec<String>,
    /// Directory relative paths were resolved against.
    pub base_dir: PathBuf,
    /// Byte ranges (offset, length) of the secret scalars in `source`, for masking.
    pub(crate) secret_spans: Vec<(usize, usize)>,
    /// Fields set that vigil does not act on (see `field_warnings`).
    pub(crate) field_notes: Vec<Unimplemented>,
}

#[cfg(test)]
mod expand_tests {
    use super::expand_env;

    /// As Go's `os.Expand` with Prometheus's mapping.
    #[test]
    fn external_label_values_expand_as_go_expands_them() {
        let env = |n: &str| match n {
            "DC" => "eu-1".to_string(),
            "1" => "one".to_string(),
            _ => String::new(),
        };
        for (input, want) in [
            ("$DC", "eu-1"),
            ("${DC}-x", "eu-1-x"),
            ("a$DC.b", "aeu-1.b"),
            ("$UNSET", ""),
            ("cost $$5", "cost $5"),
            ("${1}$1", "oneone"),
            ("$ end", "$ end"),
            ("tail$", "tail$"),
            ("${}x", "x"),
            ("${DC", "DC"),
            ("$DC_EXTRA", ""),
            ("é$DC", "éeu-1"),
            ("plain", "plain"),
        ] {
            assert_eq!(expand_env(input, &env), want, "{input:?}");
        }
    }
}
