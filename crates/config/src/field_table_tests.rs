//! Every field of `prometheus.yml` that vigil's parser accepts, in one table, each with what
//! vigil does with it: acts on it (the loaded config changes), names it as not running, warns
//! that it is harmless, or refuses it. The field lists come from the parser's own structs, so a
//! field added to the parser without a row here fails the test: no field can be accepted and
//! silently dropped.

use std::collections::BTreeSet;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::*;

/// What loading a config with the field set shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Loads, nothing new is reported about it, and the resolved config differs.
    Acts,
    /// Loads, and `unimplemented()` names it (logged as NOT RUNNING, shown on the pages).
    NotRunning,
    /// Loads, and a warning names it as having no effect on data.
    Harmless,
    /// Does not load; the error names it.
    Refused,
    /// Loads, in a section that `unimplemented()` names as not running as a whole.
    SectionNotRunning,
    /// Loads without a word and changes nothing: what this test exists to forbid.
    Silent,
}
use Verdict::*;

/// Captures the field names a derived `Deserialize` struct declares.
struct FieldNames;

#[derive(Debug)]
struct Captured(String);
impl std::fmt::Display for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Captured {}
impl de::Error for Captured {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Captured(format!("unexpected: {msg}"))
    }
}

impl<'de> Deserializer<'de> for FieldNames {
    type Error = Captured;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
        Err(Captured("not a struct".into()))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        Err(Captured(fields.join(",")))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields_of<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
    match T::deserialize(FieldNames) {
        Err(Captured(s)) => s.split(',').map(str::to_string).collect(),
        Ok(_) => unreachable!("the capturing deserializer never succeeds"),
    }
}

/// Where a section's fields go: a config with `{F}` where one `field: value` line goes.
const SCRAPE: &str =
    "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    {F}\n";
const K8S: &str = "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        api_server: 'https://k:6443'\n        {F}\n";
const AM: &str =
    "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['am:9093']}]\n      {F}\n";
const RW: &str = "remote_write:\n  - url: http://r/w\n    {F}\n";
const RR: &str = "remote_read:\n  - url: http://r/r\n    {F}\n";
const HTTP_SD: &str = "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: http://sd/\n        {F}\n";

/// The `HTTPClientConfig` fields every HTTP-using section shares: the line and the verdict.
fn http_client_rows() -> Vec<(&'static str, &'static str, Verdict)> {
    vec![
        ("basic_auth", "basic_auth: {username: u, password: p}", Acts),
        ("authorization", "authorization: {credentials: t}", Acts),
        (
            "oauth2",
            "oauth2: {client_id: c, client_secret: s, token_url: 'http://t/'}",
            Acts,
        ),
        ("bearer_token", "bearer_token: t", Acts),
        ("bearer_token_file", "bearer_token_file: t.txt", Acts),
        (
            "tls_config",
            "tls_config: {insecure_skip_verify: true}",
            Acts,
        ),
        ("proxy_url", "proxy_url: 'http://proxy:3128/'", Acts),
        ("no_proxy", "{PROXY}no_proxy: example.com", Acts),
        (
            "proxy_from_environment",
            "proxy_from_environment: true",
            Acts,
        ),
        (
            "proxy_connect_header",
            "{PROXY}proxy_connect_header: {X-A: [b]}",
            NotRunning,
        ),
        ("follow_redirects", "follow_redirects: false", Acts),
        ("enable_http2", "enable_http2: false", Harmless),
        ("http_headers", "http_headers: {X-A: {values: [b]}}", Acts),
    ]
}

/// One row: section, field, the line (or a whole config starting with `!`), the verdict.
type Row = (&'static str, &'static str, &'static str, Verdict);

fn rows() -> Vec<Row> {
    vec![
        // The file.
        ("", "global", "global: {scrape_interval: 7s}", Acts),
        ("", "runtime", "runtime: {gogc: 50}", Harmless),
        ("", "rule_files", "rule_files: [r.yml]", Acts),
        (
            "",
            "scrape_config_files",
            "scrape_config_files: [s.yml]",
            Acts,
        ),
        (
            "",
            "scrape_configs",
            "!scrape_configs: [{job_name: a}]\n",
            Acts,
        ),
        (
            "",
            "storage",
            "storage: {tsdb: {retention: {time: 2d}}}",
            Acts,
        ),
        ("", "tracing", "tracing: {endpoint: 'otel:4317'}", Harmless),
        (
            "",
            "alerting",
            "alerting: {alertmanagers: [{static_configs: [{targets: ['am:9093']}]}]}",
            Acts,
        ),
        (
            "",
            "remote_write",
            "remote_write: [{url: 'http://r/w', metadata_config: {send: false}}]",
            Acts,
        ),
        (
            "",
            "remote_read",
            "remote_read: [{url: 'http://r/r'}]",
            Acts,
        ),
        ("", "otlp", "otlp: {promote_resource_attributes: [a]}", Acts),
        // otlp
        (
            "otlp",
            "promote_all_resource_attributes",
            "promote_all_resource_attributes: true",
            Acts,
        ),
        (
            "otlp",
            "promote_resource_attributes",
            "promote_resource_attributes: [a]",
            Acts,
        ),
        (
            "otlp",
            "ignore_resource_attributes",
            "!otlp:\n  promote_all_resource_attributes: true\n  ignore_resource_attributes: [a]\n",
            Acts,
        ),
        (
            "otlp",
            "translation_strategy",
            "translation_strategy: NoTranslation",
            Acts,
        ),
        (
            "otlp",
            "keep_identifying_resource_attributes",
            "keep_identifying_resource_attributes: true",
            Acts,
        ),
        (
            "otlp",
            "convert_histograms_to_nhcb",
            "convert_histograms_to_nhcb: true",
            Acts,
        ),
        (
            "otlp",
            "promote_scope_metadata",
            "promote_scope_metadata: true",
            Acts,
        ),
        (
            "otlp",
            "label_name_underscore_sanitization",
            "label_name_underscore_sanitization: false",
            Acts,
        ),
        (
            "otlp",
            "label_name_preserve_multiple_underscores",
            "label_name_preserve_multiple_underscores: false",
            Acts,
        ),
        // global
        ("global", "scrape_interval", "scrape_interval: 7s", Acts),
        ("global", "scrape_timeout", "scrape_timeout: 7s", Acts),
        (
            "global",
            "scrape_protocols",
            "scrape_protocols: [PrometheusText0.0.4]",
            Acts,
        ),
        (
            "global",
            "evaluation_interval",
            "evaluation_interval: 7s",
            Acts,
        ),
        ("global", "rule_query_offset", "rule_query_offset: 7s", Acts),
        (
            "global",
            "external_labels",
            "external_labels: {dc: eu}",
            Acts,
        ),
        (
            "global",
            "query_log_file",
            "query_log_file: q.log",
            NotRunning,
        ),
        (
            "global",
            "scrape_failure_log_file",
            "scrape_failure_log_file: f.log",
            NotRunning,
        ),
        ("global", "body_size_limit", "body_size_limit: 10MB", Acts),
        ("global", "sample_limit", "sample_limit: 7", Acts),
        ("global", "target_limit", "target_limit: 7", Acts),
        ("global", "label_limit", "label_limit: 7", Acts),
        (
            "global",
            "label_name_length_limit",
            "label_name_length_limit: 7",
            Acts,
        ),
        (
            "global",
            "label_value_length_limit",
            "label_value_length_limit: 7",
            Acts,
        ),
        (
            "global",
            "keep_dropped_targets",
            "keep_dropped_targets: 7",
            Acts,
        ),
        (
            "global",
            "metric_name_validation_scheme",
            "metric_name_validation_scheme: legacy",
            Acts,
        ),
        (
            "global",
            "metric_name_escaping_scheme",
            "metric_name_escaping_scheme: dots",
            Acts,
        ),
        (
            "global",
            "always_scrape_classic_histograms",
            "always_scrape_classic_histograms: true",
            Acts,
        ),
        (
            "global",
            "convert_classic_histograms_to_nhcb",
            "convert_classic_histograms_to_nhcb: true",
            Acts,
        ),
        (
            "global",
            "scrape_native_histograms",
            "scrape_native_histograms: true",
            Acts,
        ),
        (
            "global",
            "extra_scrape_metrics",
            "extra_scrape_metrics: true",
            Acts,
        ),
        // scrape_configs[]
        (
            "scrape",
            "job_name",
            "!scrape_configs:\n  - job_name: b\n    static_configs: [{targets: ['a:1']}]\n",
            Acts,
        ),
        ("scrape", "honor_labels", "honor_labels: true", Acts),
        (
            "scrape",
            "honor_timestamps",
            "honor_timestamps: false",
            Acts,
        ),
        (
            "scrape",
            "track_timestamps_staleness",
            "track_timestamps_staleness: true",
            Acts,
        ),
        ("scrape", "params", "params: {module: [http_2xx]}", Acts),
        ("scrape", "scrape_interval", "scrape_interval: 7s", Acts),
        ("scrape", "scrape_timeout", "scrape_timeout: 7s", Acts),
        (
            "scrape",
            "scrape_protocols",
            "scrape_protocols: [PrometheusText0.0.4]",
            Acts,
        ),
        (
            "scrape",
            "fallback_scrape_protocol",
            "fallback_scrape_protocol: OpenMetricsText1.0.0",
            NotRunning,
        ),
        (
            "scrape",
            "scrape_failure_log_file",
            "scrape_failure_log_file: f.log",
            NotRunning,
        ),
        (
            "scrape",
            "enable_compression",
            "enable_compression: false",
            Acts,
        ),
        (
            "scrape",
            "always_scrape_classic_histograms",
            "always_scrape_classic_histograms: true",
            Acts,
        ),
        (
            "scrape",
            "convert_classic_histograms_to_nhcb",
            "convert_classic_histograms_to_nhcb: true",
            Acts,
        ),
        (
            "scrape",
            "scrape_native_histograms",
            "scrape_native_histograms: true",
            Acts,
        ),
        (
            "scrape",
            "extra_scrape_metrics",
            "extra_scrape_metrics: true",
            Acts,
        ),
        ("scrape", "metrics_path", "metrics_path: /m", Acts),
        ("scrape", "scheme", "scheme: https", Acts),
        ("scrape", "body_size_limit", "body_size_limit: 10MB", Acts),
        ("scrape", "sample_limit", "sample_limit: 7", Acts),
        ("scrape", "target_limit", "target_limit: 7", Acts),
        ("scrape", "label_limit", "label_limit: 7", Acts),
        (
            "scrape",
            "label_name_length_limit",
            "label_name_length_limit: 7",
            Acts,
        ),
        (
            "scrape",
            "label_value_length_limit",
            "label_value_length_limit: 7",
            Acts,
        ),
        (
            "scrape",
            "native_histogram_bucket_limit",
            "native_histogram_bucket_limit: 7",
            Acts,
        ),
        (
            "scrape",
            "native_histogram_min_bucket_factor",
            "native_histogram_min_bucket_factor: 1.5",
            Acts,
        ),
        (
            "scrape",
            "keep_dropped_targets",
            "keep_dropped_targets: 7",
            Acts,
        ),
        (
            "scrape",
            "metric_name_validation_scheme",
            "metric_name_validation_scheme: legacy",
            Acts,
        ),
        (
            "scrape",
            "metric_name_escaping_scheme",
            "metric_name_escaping_scheme: dots",
            Acts,
        ),
        (
            "scrape",
            "relabel_configs",
            "relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        (
            "scrape",
            "metric_relabel_configs",
            "metric_relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        (
            "scrape",
            "static_configs",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['b:1']}]\n",
            Acts,
        ),
        (
            "scrape",
            "file_sd_configs",
            "file_sd_configs: [{files: [f.json]}]",
            Acts,
        ),
        (
            "scrape",
            "kubernetes_sd_configs",
            "kubernetes_sd_configs: [{role: pod}]",
            Acts,
        ),
        (
            "scrape",
            "http_sd_configs",
            "http_sd_configs: [{url: 'http://sd/'}]",
            NotRunning,
        ),
        (
            "scrape",
            "azure_sd_configs",
            "azure_sd_configs: [{subscription_id: s}]",
            NotRunning,
        ),
        (
            "scrape",
            "consul_sd_configs",
            "consul_sd_configs: [{server: 'c:8500'}]",
            NotRunning,
        ),
        (
            "scrape",
            "digitalocean_sd_configs",
            "digitalocean_sd_configs: [{}]",
            NotRunning,
        ),
        (
            "scrape",
            "docker_sd_configs",
            "docker_sd_configs: [{host: 'unix:///d'}]",
            NotRunning,
        ),
        (
            "scrape",
            "dockerswarm_sd_configs",
            "dockerswarm_sd_configs: [{host: 'unix:///d', role: tasks}]",
            NotRunning,
        ),
        (
            "scrape",
            "dns_sd_configs",
            "dns_sd_configs: [{names: [a.example]}]",
            NotRunning,
        ),
        (
            "scrape",
            "ec2_sd_configs",
            "ec2_sd_configs: [{region: eu}]",
            NotRunning,
        ),
        (
            "scrape",
            "eureka_sd_configs",
            "eureka_sd_configs: [{server: 'http://e/'}]",
            NotRunning,
        ),
        (
            "scrape",
            "gce_sd_configs",
            "gce_sd_configs: [{project: p, zone: z}]",
            NotRunning,
        ),
        (
            "scrape",
            "hetzner_sd_configs",
            "hetzner_sd_configs: [{role: hcloud}]",
            NotRunning,
        ),
        (
            "scrape",
            "ionos_sd_configs",
            "ionos_sd_configs: [{datacenter_id: d}]",
            NotRunning,
        ),
        (
            "scrape",
            "kuma_sd_configs",
            "kuma_sd_configs: [{server: 'http://k/'}]",
            NotRunning,
        ),
        (
            "scrape",
            "lightsail_sd_configs",
            "lightsail_sd_configs: [{region: eu}]",
            NotRunning,
        ),
        (
            "scrape",
            "linode_sd_configs",
            "linode_sd_configs: [{}]",
            NotRunning,
        ),
        (
            "scrape",
            "marathon_sd_configs",
            "marathon_sd_configs: [{servers: ['http://m/']}]",
            NotRunning,
        ),
        (
            "scrape",
            "nerve_sd_configs",
            "nerve_sd_configs: [{servers: [z], paths: [/p]}]",
            NotRunning,
        ),
        (
            "scrape",
            "nomad_sd_configs",
            "nomad_sd_configs: [{server: 'http://n/'}]",
            NotRunning,
        ),
        (
            "scrape",
            "oci_sd_configs",
            "oci_sd_configs: [{region: eu}]",
            NotRunning,
        ),
        (
            "scrape",
            "openstack_sd_configs",
            "openstack_sd_configs: [{role: instance, region: eu}]",
            NotRunning,
        ),
        (
            "scrape",
            "outscale_sd_configs",
            "outscale_sd_configs: [{region: eu}]",
            NotRunning,
        ),
        (
            "scrape",
            "ovhcloud_sd_configs",
            "ovhcloud_sd_configs: [{service: vps}]",
            NotRunning,
        ),
        (
            "scrape",
            "puppetdb_sd_configs",
            "puppetdb_sd_configs: [{url: 'http://p/', query: q}]",
            NotRunning,
        ),
        (
            "scrape",
            "scaleway_sd_configs",
            "scaleway_sd_configs: [{role: instance}]",
            NotRunning,
        ),
        (
            "scrape",
            "serverset_sd_configs",
            "serverset_sd_configs: [{servers: [z], paths: [/p]}]",
            NotRunning,
        ),
        (
            "scrape",
            "stackit_sd_configs",
            "stackit_sd_configs: [{project: p}]",
            NotRunning,
        ),
        (
            "scrape",
            "triton_sd_configs",
            "triton_sd_configs: [{account: a, dns_suffix: d, endpoint: e}]",
            NotRunning,
        ),
        (
            "scrape",
            "uyuni_sd_configs",
            "uyuni_sd_configs: [{server: 'http://u/', username: u, password: p}]",
            NotRunning,
        ),
        (
            "scrape",
            "vultr_sd_configs",
            "vultr_sd_configs: [{}]",
            NotRunning,
        ),
        // kubernetes_sd_configs[]
        (
            "k8s",
            "role",
            "!scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: service\n",
            Acts,
        ),
        (
            "k8s",
            "api_server",
            "!scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        api_server: 'https://k2:6443'\n",
            Acts,
        ),
        (
            "k8s",
            "kubeconfig_file",
            "!scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        kubeconfig_file: kc.yml\n",
            Acts,
        ),
        ("k8s", "namespaces", "namespaces: {names: [a]}", Acts),
        (
            "k8s",
            "selectors",
            "selectors: [{role: pod, label: 'a=b'}]",
            Acts,
        ),
        (
            "k8s",
            "attach_metadata",
            "attach_metadata: {node: true}",
            Acts,
        ),
        ("namespaces", "names", "names: [a]", Acts),
        ("namespaces", "own_namespace", "own_namespace: true", Acts),
        (
            "selector",
            "role",
            "!scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        selectors: [{role: pod}]\n",
            Acts,
        ),
        ("selector", "label", "label: 'a=b'", Acts),
        ("selector", "field", "field: 'a=b'", Acts),
        ("attach_metadata", "node", "node: true", Acts),
        ("attach_metadata", "namespace", "namespace: true", Acts),
        ("attach_metadata", "deployment", "deployment: true", Acts),
        ("attach_metadata", "job", "job: true", Acts),
        ("attach_metadata", "cronjob", "cronjob: true", Acts),
        // static and file SD
        (
            "static",
            "targets",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['b:1']}]\n",
            Acts,
        ),
        ("static", "labels", "labels: {a: b}", Acts),
        (
            "file_sd",
            "files",
            "!scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: [g.json]}]\n",
            Acts,
        ),
        ("file_sd", "refresh_interval", "refresh_interval: 7s", Acts),
        (
            "http_sd",
            "url",
            "!scrape_configs:\n  - job_name: a\n    http_sd_configs: [{url: 'http://sd2/'}]\n",
            SectionNotRunning,
        ),
        (
            "http_sd",
            "refresh_interval",
            "refresh_interval: 7s",
            SectionNotRunning,
        ),
        // relabel_configs[]
        ("relabel", "source_labels", "source_labels: [a]", Acts),
        ("relabel", "separator", "separator: ','", Acts),
        ("relabel", "regex", "regex: 'a(.*)'", Acts),
        (
            "relabel",
            "modulus",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs:\n      - {source_labels: [a], target_label: x, action: hashmod, modulus: 3}\n",
            Acts,
        ),
        (
            "relabel",
            "target_label",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs:\n      - {target_label: z, replacement: y}\n",
            Acts,
        ),
        (
            "relabel",
            "replacement",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs:\n      - {target_label: x, replacement: z}\n",
            Acts,
        ),
        (
            "relabel",
            "action",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs:\n      - {action: labeldrop, regex: x}\n",
            Acts,
        ),
        // auth and TLS
        (
            "basic_auth",
            "username",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    basic_auth: {username: v}\n",
            Acts,
        ),
        (
            "basic_auth",
            "username_file",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    basic_auth: {username_file: u.txt}\n",
            Acts,
        ),
        ("basic_auth", "username_ref", "username_ref: u", Refused),
        ("basic_auth", "password", "password: p", Acts),
        ("basic_auth", "password_file", "password_file: p.txt", Acts),
        ("basic_auth", "password_ref", "password_ref: p", Refused),
        ("authorization", "type", "type: Token", Acts),
        ("authorization", "credentials", "credentials: t", Acts),
        (
            "authorization",
            "credentials_file",
            "credentials_file: t.txt",
            Acts,
        ),
        (
            "authorization",
            "credentials_ref",
            "credentials_ref: t",
            Refused,
        ),
        ("tls", "ca", "ca: x", Acts),
        ("tls", "ca_file", "ca_file: ca.pem", Acts),
        ("tls", "ca_ref", "ca_ref: c", Refused),
        (
            "tls",
            "cert",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    tls_config: {cert: x, key: y}\n",
            Acts,
        ),
        (
            "tls",
            "cert_file",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    tls_config: {cert_file: c.pem, key_file: k.pem}\n",
            Acts,
        ),
        ("tls", "cert_ref", "cert_ref: c", Refused),
        (
            "tls",
            "key",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    tls_config: {cert: x, key: z}\n",
            Acts,
        ),
        (
            "tls",
            "key_file",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    tls_config: {cert_file: c.pem, key_file: k2.pem}\n",
            Acts,
        ),
        ("tls", "key_ref", "key_ref: k", Refused),
        ("tls", "server_name", "server_name: s.example", Acts),
        (
            "tls",
            "insecure_skip_verify",
            "insecure_skip_verify: true",
            Acts,
        ),
        ("tls", "min_version", "min_version: TLS13", Acts),
        ("tls", "max_version", "max_version: TLS12", Acts),
        (
            "oauth2",
            "client_id",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    oauth2: {client_id: d, token_url: 'http://t/'}\n",
            Acts,
        ),
        ("oauth2", "client_secret", "client_secret: s", Acts),
        (
            "oauth2",
            "client_secret_file",
            "client_secret_file: s.txt",
            Acts,
        ),
        (
            "oauth2",
            "client_secret_ref",
            "client_secret_ref: s",
            Refused,
        ),
        (
            "oauth2",
            "client_certificate_key_id",
            "client_certificate_key_id: k",
            Refused,
        ),
        (
            "oauth2",
            "client_certificate_key",
            "client_certificate_key: k",
            Refused,
        ),
        (
            "oauth2",
            "client_certificate_key_file",
            "client_certificate_key_file: k.pem",
            Refused,
        ),
        (
            "oauth2",
            "client_certificate_key_ref",
            "client_certificate_key_ref: k",
            Refused,
        ),
        (
            "oauth2",
            "grant_type",
            "grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer'",
            Refused,
        ),
        (
            "oauth2",
            "signature_algorithm",
            "signature_algorithm: RS256",
            Refused,
        ),
        ("oauth2", "iss", "iss: i", Refused),
        ("oauth2", "audience", "audience: a", Refused),
        ("oauth2", "claims", "claims: {a: b}", Refused),
        ("oauth2", "scopes", "scopes: [a]", Acts),
        (
            "oauth2",
            "token_url",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    oauth2: {client_id: c, token_url: 'http://t2/'}\n",
            Acts,
        ),
        ("oauth2", "endpoint_params", "endpoint_params: {a: b}", Acts),
        (
            "oauth2",
            "tls_config",
            "tls_config: {insecure_skip_verify: true}",
            Acts,
        ),
        (
            "oauth2",
            "proxy_url",
            "proxy_url: 'http://proxy:3128/'",
            Refused,
        ),
        ("oauth2", "no_proxy", "no_proxy: a", Refused),
        (
            "oauth2",
            "proxy_from_environment",
            "proxy_from_environment: true",
            Refused,
        ),
        (
            "oauth2",
            "proxy_connect_header",
            "proxy_connect_header: {X-A: [b]}",
            Refused,
        ),
        (
            "http_header",
            "values",
            "!scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    http_headers: {X-A: {values: [b]}}\n",
            Acts,
        ),
        ("http_header", "secrets", "secrets: [s]", Acts),
        ("http_header", "files", "files: [h.txt]", Acts),
        // alerting
        (
            "alerting",
            "alert_relabel_configs",
            "alert_relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        (
            "alerting",
            "alertmanagers",
            "alertmanagers: [{static_configs: [{targets: ['am:9093']}]}]",
            Acts,
        ),
        ("am", "scheme", "scheme: https", Acts),
        ("am", "path_prefix", "path_prefix: /am", Acts),
        ("am", "timeout", "timeout: 7s", Acts),
        // v2 is the default and the only version current Prometheus speaks.
        ("am", "api_version", "api_version: v1", Refused),
        (
            "am",
            "relabel_configs",
            "relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        (
            "am",
            "alert_relabel_configs",
            "alert_relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        (
            "am",
            "static_configs",
            "!alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['am2:9093']}]\n",
            Acts,
        ),
        (
            "am",
            "file_sd_configs",
            "file_sd_configs: [{files: [f.json]}]",
            Acts,
        ),
        (
            "am",
            "kubernetes_sd_configs",
            "kubernetes_sd_configs: [{role: pod}]",
            Acts,
        ),
        (
            "am",
            "dns_sd_configs",
            "dns_sd_configs: [{names: [a.example]}]",
            NotRunning,
        ),
        (
            "am",
            "consul_sd_configs",
            "consul_sd_configs: [{server: 'c:8500'}]",
            NotRunning,
        ),
        ("am", "sigv4", "sigv4: {region: eu}", NotRunning),
        // remote_write[]
        ("rw", "url", "!remote_write:\n  - url: http://r2/w\n", Acts),
        ("rw", "remote_timeout", "remote_timeout: 7s", Acts),
        ("rw", "headers", "headers: {X-A: b}", Acts),
        (
            "rw",
            "write_relabel_configs",
            "write_relabel_configs: [{target_label: x, replacement: y}]",
            Acts,
        ),
        ("rw", "name", "name: n", Acts),
        ("rw", "send_exemplars", "send_exemplars: true", Acts),
        (
            "rw",
            "send_native_histograms",
            "send_native_histograms: true",
            Acts,
        ),
        ("rw", "round_robin_dns", "round_robin_dns: true", NotRunning),
        (
            "rw",
            "protobuf_message",
            "protobuf_message: io.prometheus.write.v2.Request",
            Acts,
        ),
        ("rw", "queue_config", "queue_config: {capacity: 7}", Acts),
        (
            "rw",
            "metadata_config",
            "metadata_config: {send: false}",
            Acts,
        ),
        ("metadata", "send", "send: false", Acts),
        ("metadata", "send_interval", "send_interval: 7s", Acts),
        (
            "metadata",
            "max_samples_per_send",
            "max_samples_per_send: 7",
            Acts,
        ),
        ("rw", "sigv4", "sigv4: {region: eu}", Refused),
        ("rw", "azuread", "azuread: {cloud: AzurePublic}", Refused),
        (
            "rw",
            "google_iam",
            "google_iam: {credentials_file: c.json}",
            Refused,
        ),
        ("queue", "capacity", "capacity: 7", Acts),
        ("queue", "max_shards", "max_shards: 7", Acts),
        ("queue", "min_shards", "min_shards: 7", Acts),
        (
            "queue",
            "max_samples_per_send",
            "max_samples_per_send: 7",
            Acts,
        ),
        (
            "queue",
            "batch_send_deadline",
            "batch_send_deadline: 7s",
            Acts,
        ),
        ("queue", "min_backoff", "min_backoff: 7ms", Acts),
        ("queue", "max_backoff", "max_backoff: 7s", Acts),
        (
            "queue",
            "retry_on_http_429",
            "retry_on_http_429: true",
            Acts,
        ),
        ("queue", "sample_age_limit", "sample_age_limit: 7s", Acts),
        // remote_read[]: read by the querier (crates/remote/src/read_client.rs).
        ("rr", "url", "!remote_read:\n  - url: http://r2/r\n", Acts),
        ("rr", "remote_timeout", "remote_timeout: 7s", Acts),
        ("rr", "headers", "headers: {X-A: b}", Acts),
        ("rr", "read_recent", "read_recent: true", Acts),
        ("rr", "name", "name: n", Acts),
        ("rr", "required_matchers", "required_matchers: {a: b}", Acts),
        (
            "rr",
            "filter_external_labels",
            "filter_external_labels: false",
            Acts,
        ),
        // storage
        ("storage", "tsdb", "tsdb: {retention: {time: 2d}}", Acts),
        (
            "storage",
            "exemplars",
            "exemplars: {max_exemplars: 7}",
            Acts,
        ),
        (
            "tsdb",
            "out_of_order_time_window",
            "out_of_order_time_window: 10m",
            Acts,
        ),
        ("tsdb", "retention", "retention: {time: 2d}", Acts),
        (
            "tsdb",
            "stale_series_compaction_threshold",
            "stale_series_compaction_threshold: 0.5",
            NotRunning,
        ),
        ("retention", "time", "time: 2d", Acts),
        ("retention", "size", "size: 1GB", Acts),
        ("retention", "percentage", "percentage: 50", NotRunning),
    ]
}

/// Section name -> (host config, the struct's field names).
fn sections() -> Vec<(&'static str, &'static str, BTreeSet<String>)> {
    vec![
        ("", "{F}\n", fields_of::<RawConfig>()),
        ("global", "global:\n  {F}\n", fields_of::<RawGlobal>()),
        ("scrape", SCRAPE, fields_of::<RawScrapeConfig>()),
        ("k8s", K8S, fields_of::<RawKubernetesSd>()),
        (
            "namespaces",
            "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        namespaces:\n          {F}\n",
            fields_of::<RawNamespaces>(),
        ),
        (
            "selector",
            "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        selectors:\n          - role: node\n            {F}\n",
            fields_of::<RawSelector>(),
        ),
        (
            "attach_metadata",
            "scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs:\n      - role: pod\n        attach_metadata:\n          {F}\n",
            fields_of::<RawAttachMetadata>(),
        ),
        (
            "static",
            "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['a:1']\n        {F}\n",
            fields_of::<RawStaticConfig>(),
        ),
        (
            "file_sd",
            "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [f.json]\n        {F}\n",
            fields_of::<RawFileSd>(),
        ),
        ("http_sd", HTTP_SD, fields_of::<RawHttpSd>()),
        (
            "relabel",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    relabel_configs:\n      - target_label: x\n        replacement: y\n        {F}\n",
            fields_of::<RawRelabel>(),
        ),
        (
            "basic_auth",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    basic_auth:\n      username: u\n      {F}\n",
            fields_of::<RawBasicAuth>(),
        ),
        (
            "authorization",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    authorization:\n      {F}\n",
            fields_of::<RawAuthorization>(),
        ),
        (
            "tls",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    tls_config:\n      {F}\n",
            fields_of::<RawTls>(),
        ),
        (
            "oauth2",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    oauth2:\n      client_id: c\n      token_url: 'http://t/'\n      {F}\n",
            fields_of::<RawOAuth2>(),
        ),
        (
            "http_header",
            "scrape_configs:\n  - job_name: a\n    static_configs: [{targets: ['a:1']}]\n    http_headers:\n      X-A:\n        values: [a]\n        {F}\n",
            fields_of::<RawHttpHeader>(),
        ),
        ("alerting", "alerting:\n  {F}\n", fields_of::<RawAlerting>()),
        ("am", AM, fields_of::<RawAlertmanager>()),
        ("rw", RW, fields_of::<RawRemoteWrite>()),
        (
            "queue",
            "remote_write:\n  - url: http://r/w\n    queue_config:\n      {F}\n",
            fields_of::<RawQueueConfig>(),
        ),
        ("rr", RR, fields_of::<RawRemoteRead>()),
        (
            "metadata",
            "remote_write:\n  - url: http://r/w\n    metadata_config:\n      {F}\n",
            fields_of::<RawMetadataConfig>(),
        ),
        ("storage", "storage:\n  {F}\n", fields_of::<RawStorage>()),
        ("otlp", "otlp:\n  {F}\n", fields_of::<RawOtlp>()),
        (
            "tsdb",
            "storage:\n  tsdb:\n    {F}\n",
            fields_of::<RawTsdb>(),
        ),
        (
            "retention",
            "storage:\n  tsdb:\n    retention:\n      {F}\n",
            fields_of::<RawRetention>(),
        ),
    ]
}

/// The sections that carry the shared HTTP client fields.
const HTTP_HOSTS: [&str; 6] = ["scrape", "k8s", "http_sd", "am", "rw", "rr"];

/// The resolved config with what always differs between two sources cleared.
fn resolved(c: &Config) -> Config {
    let mut c = c.clone();
    c.source.clear();
    c.warnings.clear();
    c.secret_spans.clear();
    c.field_notes.clear();
    c
}

/// Whether `msg` names `field` as a word (not as part of a longer name).
fn names(msg: &str, field: &str) -> bool {
    msg.match_indices(field).any(|(i, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let before = msg[..i].chars().next_back().is_none_or(|c| !word(c));
        let after = msg[i + field.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        before && after
    })
}

fn observe(host: &str, line: &str, field: &str, whole: bool, dir: &Path) -> (Verdict, String) {
    let base_yaml = host.replace("{F}", "");
    let yaml = if let Some(whole) = line.strip_prefix('!') {
        whole.to_string()
    } else if let Some(l) = line.strip_prefix("{PROXY}") {
        // Fields that need a proxy_url beside them.
        host.replace(
            "{F}",
            &format!("proxy_url: 'http://p:1/'\n{}{l}", indent(host)),
        )
    } else {
        host.replace("{F}", line)
    };
    let base = Config::parse(&base_yaml, dir)
        .unwrap_or_else(|e| panic!("host config does not load: {e}\n{base_yaml}"));
    let c = match Config::parse(&yaml, dir) {
        Err(e) => {
            let e = e.to_string();
            let v = if names(&e, field) { Refused } else { Silent };
            return (v, e);
        }
        Ok(c) => c,
    };
    let all_u: Vec<String> = c.unimplemented().iter().map(|u| u.to_string()).collect();
    if whole {
        // The section as a whole is named as not running, which covers every field in it.
        return match all_u.iter().find(|m| names(m, field)) {
            Some(m) => (SectionNotRunning, m.clone()),
            None => (Silent, format!("section not named: {all_u:?}")),
        };
    }
    let old_u: Vec<String> = base.unimplemented().iter().map(|u| u.to_string()).collect();
    let new_u: Vec<String> = all_u.into_iter().filter(|m| !old_u.contains(m)).collect();
    if let Some(m) = new_u.iter().find(|m| names(m, field)) {
        return (NotRunning, m.clone());
    }
    let new_w: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| !base.warnings.contains(w))
        .collect();
    if let Some(m) = new_w.iter().find(|m| names(m, field)) {
        return (Harmless, (*m).clone());
    }
    if resolved(&c) != resolved(&base) {
        (Acts, String::new())
    } else if !new_u.is_empty() || !new_w.is_empty() {
        (
            Silent,
            format!("new messages not naming it: {new_u:?} {new_w:?}"),
        )
    } else {
        (Silent, "loads and changes nothing".into())
    }
}

/// The indentation of the `{F}` line in a host.
fn indent(host: &str) -> String {
    let line = host.lines().find(|l| l.contains("{F}")).unwrap_or("");
    line[..line.len() - line.trim_start().len()].to_string()
}

#[test]
fn every_config_field_acts_or_is_named() {
    let dir = std::env::temp_dir().join(format!("vigil-field-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.yml"), "groups: []\n").unwrap();
    std::fs::write(dir.join("s.yml"), "scrape_configs: []\n").unwrap();
    let sections = sections();
    let mut rows: Vec<(String, &str, String, Verdict)> = rows()
        .into_iter()
        .map(|(s, f, l, v)| (s.to_string(), f, l.to_string(), v))
        .collect();
    for host in HTTP_HOSTS {
        // A whole section that is not running names every field through itself.
        let whole_not_running = host == "http_sd";
        for (f, l, v) in http_client_rows() {
            // The Kubernetes client cannot carry these out: refused at load, by name.
            let kube_cannot =
                host == "k8s" && ["oauth2", "no_proxy", "proxy_from_environment"].contains(&f);
            let v = if whole_not_running {
                SectionNotRunning
            } else if kube_cannot {
                Refused
            } else {
                v
            };
            rows.push((host.to_string(), f, l.to_string(), v));
        }
    }
    let mut failures = Vec::new();
    // Every field the parser knows has a row, and every row is a field the parser knows.
    for (name, _, fields) in &sections {
        let listed: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.0 == *name)
            .map(|r| r.1.to_string())
            .collect();
        for f in fields.difference(&listed) {
            failures.push(format!("{name}.{f}: accepted by the parser but has no row"));
        }
        for f in listed.difference(fields) {
            failures.push(format!(
                "{name}.{f}: has a row but the parser has no such field"
            ));
        }
    }
    for (section, field, line, want) in &rows {
        let Some((_, host, _)) = sections.iter().find(|s| s.0 == section) else {
            failures.push(format!("{section}: no such section"));
            continue;
        };
        // In a section that is not running as a whole, the message names the section.
        let whole = *want == SectionNotRunning;
        let named = match section.as_str() {
            _ if !whole => field,
            "http_sd" => "http_sd_configs",
            s => panic!("{s}: which section name is its message?"),
        };
        let (got, why) = observe(host, line, named, whole, &dir);
        if got != *want {
            failures.push(format!(
                "{section}.{field}: expected {want:?}, got {got:?} ({why})"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
