//! The YAML as written: strict serde structs (unknown fields are errors), every field
//! optional so defaults and inheritance can be applied afterwards. `Option<T>` list items
//! catch the `-` (null) entries Prometheus rejects.

use std::collections::BTreeMap;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
pub use serde_saphyr::Spanned;

/// A scalar read as text, whether YAML wrote it as a string, number or bool (`bearer_token:
/// 1234` is a valid secret).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Text, E> {
                String::from_utf8(v.to_vec()).map(Text).map_err(|_| {
                    E::custom(format!(
                        "{:?} is not valid UTF-8",
                        String::from_utf8_lossy(v)
                    ))
                })
            }
        }
        // As a string: Go's YAML gives a string field the scalar's text, so `yes`, `1.10`
        // and `0x1F` stay as written (not a YAML 1.1 boolean or a number printed again).
        d.deserialize_string(V)
    }
}

/// A list entry with its position in the file; `None` for a `-` (null) entry, which
/// Prometheus rejects with a message naming the section.
pub type Item<T> = Option<Spanned<T>>;

std::thread_local! {
    /// Byte ranges (offset, length) of the secrets read by the current parse, for masking.
    static SECRET_SPANS: std::cell::RefCell<Vec<(usize, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Start recording secret positions (clears what an earlier parse on this thread left).
pub fn start_secret_spans() {
    SECRET_SPANS.with(|s| s.borrow_mut().clear());
}

/// The byte ranges of the secrets read since [`start_secret_spans`].
pub fn take_secret_spans() -> Vec<(usize, usize)> {
    SECRET_SPANS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// A secret scalar (`password`, `credentials`, `bearer_token`, TLS `key`, ...): read like
/// [`Text`], and its position in the source is recorded so the config can be shown masked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretText(pub Text);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Text>::deserialize(d)?;
        // Both where it is used and, for an alias, where its anchor defines it.
        for loc in [s.referenced, s.defined] {
            let span = loc.span();
            if let (Some(o), Some(l)) = (span.byte_offset(), span.byte_len())
                && l > 0
            {
                SECRET_SPANS.with(|v| v.borrow_mut().push((o as usize, l as usize)));
            }
        }
        Ok(SecretText(s.value))
    }
}

/// The whole file.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub global: Option<Spanned<RawGlobal>>,
    pub runtime: Option<IgnoredAny>,
    pub rule_files: Option<Vec<Option<String>>>,
    pub scrape_config_files: Option<Vec<Option<String>>>,
    pub scrape_configs: Option<Vec<Item<RawScrapeConfig>>>,
    pub storage: Option<RawStorage>,
    pub tracing: Option<IgnoredAny>,
    pub alerting: Option<RawAlerting>,
    pub remote_write: Option<Vec<Item<RawRemoteWrite>>>,
    pub remote_read: Option<Vec<Item<RawRemoteRead>>>,
    pub otlp: Option<RawOtlp>,
}

/// A file named in `scrape_config_files`: only scrape configs.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawScrapeConfigFile {
    pub scrape_configs: Option<Vec<Item<RawScrapeConfig>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGlobal {
    pub scrape_interval: Option<Text>,
    pub scrape_timeout: Option<Text>,
    pub scrape_protocols: Option<Vec<String>>,
    pub evaluation_interval: Option<Text>,
    pub rule_query_offset: Option<Text>,
    pub external_labels: Option<BTreeMap<Text, Text>>,
    pub query_log_file: Option<String>,
    pub scrape_failure_log_file: Option<String>,
    pub body_size_limit: Option<Text>,
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
    pub keep_dropped_targets: Option<u64>,
    pub metric_name_validation_scheme: Option<String>,
    pub metric_name_escaping_scheme: Option<String>,
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    pub scrape_native_histograms: Option<bool>,
    pub extra_scrape_metrics: Option<bool>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: Option<Text>,
    pub username_file: Option<String>,
    pub username_ref: Option<String>,
    pub password: Option<SecretText>,
    pub password_file: Option<String>,
    pub password_ref: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub credentials: Option<SecretText>,
    pub credentials_file: Option<String>,
    pub credentials_ref: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: Option<String>,
    pub ca_file: Option<String>,
    pub ca_ref: Option<String>,
    pub cert: Option<String>,
    pub cert_file: Option<String>,
    pub cert_ref: Option<String>,
    pub key: Option<SecretText>,
    pub key_file: Option<String>,
    pub key_ref: Option<String>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    pub client_id: Option<Text>,
    pub client_secret: Option<SecretText>,
    pub client_secret_file: Option<String>,
    pub client_secret_ref: Option<String>,
    pub client_certificate_key_id: Option<String>,
    pub client_certificate_key: Option<SecretText>,
    pub client_certificate_key_file: Option<String>,
    pub client_certificate_key_ref: Option<String>,
    pub grant_type: Option<String>,
    pub signature_algorithm: Option<String>,
    pub iss: Option<String>,
    pub audience: Option<String>,
    pub claims: Option<IgnoredAny>,
    pub scopes: Option<Vec<String>>,
    pub token_url: Option<String>,
    pub endpoint_params: Option<BTreeMap<String, String>>,
    pub tls_config: Option<RawTls>,
    pub proxy_url: Option<String>,
    pub no_proxy: Option<String>,
    pub proxy_from_environment: Option<bool>,
    pub proxy_connect_header: Option<IgnoredAny>,
}

/// `HTTPClientConfig` fields, inlined into scrape configs and others.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHttpHeader {
    pub values: Option<Vec<String>>,
    pub secrets: Option<Vec<SecretText>>,
    pub files: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStaticConfig {
    pub targets: Option<Vec<Option<Text>>>,
    pub labels: Option<BTreeMap<Text, Text>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawFileSd {
    pub files: Option<Vec<String>>,
    pub refresh_interval: Option<Text>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNamespaces {
    pub own_namespace: Option<bool>,
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSelector {
    pub role: Option<String>,
    pub label: Option<String>,
    pub field: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAttachMetadata {
    pub node: Option<bool>,
    pub namespace: Option<bool>,
    pub deployment: Option<bool>,
    pub job: Option<bool>,
    pub cronjob: Option<bool>,
}

macro_rules! http_client_fields {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        $vis struct $name {
            pub basic_auth: Option<RawBasicAuth>,
            pub authorization: Option<RawAuthorization>,
            pub oauth2: Option<RawOAuth2>,
            pub bearer_token: Option<SecretText>,
            pub bearer_token_file: Option<String>,
            pub tls_config: Option<RawTls>,
            pub proxy_url: Option<String>,
            pub no_proxy: Option<String>,
            pub proxy_from_environment: Option<bool>,
            pub proxy_connect_header: Option<IgnoredAny>,
            pub follow_redirects: Option<bool>,
            pub enable_http2: Option<bool>,
            pub http_headers: Option<BTreeMap<String, RawHttpHeader>>,
            $($body)*
        }
    };
}

http_client_fields! {
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawKubernetesSd {
        pub role: Option<String>,
        pub api_server: Option<String>,
        pub kubeconfig_file: Option<String>,
        pub namespaces: Option<RawNamespaces>,
        pub selectors: Option<Vec<Spanned<RawSelector>>>,
        pub attach_metadata: Option<RawAttachMetadata>,
    }
}

/// Service discoveries vigil parses but does not run yet (each a list of opaque maps).
type Opaque = Option<Vec<Option<IgnoredAny>>>;

http_client_fields! {
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawScrapeConfig {
        pub job_name: Option<String>,
        pub honor_labels: Option<bool>,
        pub honor_timestamps: Option<bool>,
        pub track_timestamps_staleness: Option<bool>,
        pub params: Option<BTreeMap<String, Vec<String>>>,
        pub scrape_interval: Option<Text>,
        pub scrape_timeout: Option<Text>,
        pub scrape_protocols: Option<Vec<String>>,
        pub fallback_scrape_protocol: Option<String>,
        pub scrape_failure_log_file: Option<String>,
        pub enable_compression: Option<bool>,
        pub always_scrape_classic_histograms: Option<bool>,
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        pub scrape_native_histograms: Option<bool>,
        pub extra_scrape_metrics: Option<bool>,
        pub metrics_path: Option<String>,
        pub scheme: Option<String>,
        pub body_size_limit: Option<Text>,
        pub sample_limit: Option<u64>,
        pub target_limit: Option<u64>,
        pub label_limit: Option<u64>,
        pub label_name_length_limit: Option<u64>,
        pub label_value_length_limit: Option<u64>,
        pub native_histogram_bucket_limit: Option<u64>,
        pub native_histogram_min_bucket_factor: Option<f64>,
        pub keep_dropped_targets: Option<u64>,
        pub metric_name_validation_scheme: Option<String>,
        pub metric_name_escaping_scheme: Option<String>,
        pub relabel_configs: Option<Vec<Item<RawRelabel>>>,
        pub metric_relabel_configs: Option<Vec<Item<RawRelabel>>>,
        pub static_configs: Option<Vec<Item<RawStaticConfig>>>,
        pub file_sd_configs: Option<Vec<Item<RawFileSd>>>,
        pub kubernetes_sd_configs: Option<Vec<Item<RawKubernetesSd>>>,
        pub azure_sd_configs: Opaque,
        pub consul_sd_configs: Opaque,
        pub digitalocean_sd_configs: Opaque,
        pub docker_sd_configs: Opaque,
        pub dockerswarm_sd_configs: Opaque,
        pub dns_sd_configs: Opaque,
        pub ec2_sd_configs: Opaque,
        pub eureka_sd_configs: Opaque,
        pub gce_sd_configs: Opaque,
        pub hetzner_sd_configs: Opaque,
        pub http_sd_configs: Option<Vec<Item<RawHttpSd>>>,
        pub ionos_sd_configs: Opaque,
        pub kuma_sd_configs: Opaque,
        pub lightsail_sd_configs: Opaque,
        pub linode_sd_configs: Opaque,
        pub marathon_sd_configs: Opaque,
        pub nerve_sd_configs: Opaque,
        pub nomad_sd_configs: Opaque,
        pub oci_sd_configs: Opaque,
        pub openstack_sd_configs: Opaque,
        pub outscale_sd_configs: Opaque,
        pub ovhcloud_sd_configs: Opaque,
        pub puppetdb_sd_configs: Opaque,
        pub scaleway_sd_configs: Opaque,
        pub serverset_sd_configs: Opaque,
        pub stackit_sd_configs: Opaque,
        pub triton_sd_configs: Opaque,
        pub uyuni_sd_configs: Opaque,
        pub vultr_sd_configs: Opaque,
    }
}

http_client_fields! {
    /// `http_sd_configs`: parsed for its HTTP client validation; not run yet.
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawHttpSd {
        pub url: Option<String>,
        pub refresh_interval: Option<Text>,
    }
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawRelabel {
    pub source_labels: Option<Vec<Text>>,
    pub separator: Option<String>,
    pub regex: Option<Text>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<Text>,
    /// `None`: absent (defaults to replace); `Some(None)`: written as null (an error).
    #[serde(default, deserialize_with = "double_option")]
    pub action: Option<Option<String>>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    pub alert_relabel_configs: Option<Vec<Item<RawRelabel>>>,
    pub alertmanagers: Option<Vec<Item<RawAlertmanager>>>,
}

http_client_fields! {
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawAlertmanager {
        pub scheme: Option<String>,
        pub path_prefix: Option<String>,
        pub timeout: Option<Text>,
        pub api_version: Option<String>,
        pub relabel_configs: Option<Vec<Item<RawRelabel>>>,
        pub alert_relabel_configs: Option<Vec<Item<RawRelabel>>>,
        pub static_configs: Option<Vec<Item<RawStaticConfig>>>,
        pub file_sd_configs: Option<Vec<Item<RawFileSd>>>,
        pub kubernetes_sd_configs: Option<Vec<Item<RawKubernetesSd>>>,
        pub dns_sd_configs: Opaque,
        pub consul_sd_configs: Opaque,
        pub sigv4: Option<IgnoredAny>,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawQueueConfig {
    pub capacity: Option<i64>,
    pub max_shards: Option<i64>,
    pub min_shards: Option<i64>,
    pub max_samples_per_send: Option<i64>,
    pub batch_send_deadline: Option<Text>,
    pub min_backoff: Option<Text>,
    pub max_backoff: Option<Text>,
    pub retry_on_http_429: Option<bool>,
    pub sample_age_limit: Option<Text>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMetadataConfig {
    pub send: Option<bool>,
    pub send_interval: Option<Text>,
    pub max_samples_per_send: Option<i64>,
}

http_client_fields! {
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawRemoteWrite {
        pub url: Option<String>,
        pub remote_timeout: Option<Text>,
        pub headers: Option<BTreeMap<String, String>>,
        pub write_relabel_configs: Option<Vec<Item<RawRelabel>>>,
        pub name: Option<String>,
        pub send_exemplars: Option<bool>,
        pub send_native_histograms: Option<bool>,
        pub round_robin_dns: Option<bool>,
        pub protobuf_message: Option<String>,
        pub queue_config: Option<Spanned<RawQueueConfig>>,
        pub metadata_config: Option<RawMetadataConfig>,
        pub sigv4: Option<IgnoredAny>,
        pub azuread: Option<IgnoredAny>,
        pub google_iam: Option<IgnoredAny>,
    }
}

http_client_fields! {
    #[derive(Debug, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct RawRemoteRead {
        pub url: Option<String>,
        pub remote_timeout: Option<Text>,
        pub headers: Option<BTreeMap<String, String>>,
        pub read_recent: Option<bool>,
        pub name: Option<String>,
        pub required_matchers: Option<BTreeMap<String, String>>,
        pub filter_external_labels: Option<bool>,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    pub promote_all_resource_attributes: Option<bool>,
    pub promote_resource_attributes: Option<Vec<String>>,
    pub ignore_resource_attributes: Option<Vec<String>>,
    pub translation_strategy: Option<String>,
    pub keep_identifying_resource_attributes: Option<bool>,
    pub convert_histograms_to_nhcb: Option<bool>,
    pub promote_scope_metadata: Option<bool>,
    pub label_name_underscore_sanitization: Option<bool>,
    pub label_name_preserve_multiple_underscores: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub tsdb: Option<RawTsdb>,
    pub exemplars: Option<RawExemplars>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExemplars {
    pub max_exemplars: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTsdb {
    pub out_of_order_time_window: Option<Text>,
    pub retention: Option<Spanned<RawRetention>>,
    pub stale_series_compaction_threshold: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub time: Option<Text>,
    pub size: Option<Text>,
    pub percentage: Option<f64>,
}
