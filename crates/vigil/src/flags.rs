//! Prometheus's command-line flags, by their Prometheus names.
//!
//! Flags whose feature has not landed yet are accepted (so an existing Deployment's args
//! work unchanged), shown by `/api/v1/status/flags`, and documented as such in the README.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (serves the Prometheus 2.42 HTTP API: /api/v1/status/buildinfo reports version 2.42.0, which Grafana reads to pick features)"
    ),
    about = "vigil: a Prometheus-compatible monitoring server",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerFlags,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check configuration files, as `promtool check ...`.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Work with TSDB data directories, as `promtool tsdb ...`.
    Tsdb {
        #[command(subcommand)]
        what: TsdbCommand,
    },
    /// A blackbox-exporter-compatible prober: `/probe?target=...&module=...` and `/metrics`.
    Probe {
        /// A blackbox exporter `blackbox.yml` (the `http_2xx` and `tcp_connect` modules exist
        /// without one).
        #[arg(long = "config.file")]
        config_file: Option<std::path::PathBuf>,
        #[arg(long = "web.listen-address", default_value = ":9115")]
        listen_address: String,
        /// TLS, client certificates and basic auth (the exporter toolkit's web config file).
        #[arg(long = "web.config.file")]
        web_config_file: Option<std::path::PathBuf>,
    },
    /// Kubernetes object state as kube-state-metrics exposes it (pods, deployments, nodes,
    /// namespaces, services) on `/metrics`.
    KubeState(KubeStateFlags),
    /// Container metrics as cAdvisor exposes them, read from this node's cgroups, on `/metrics`.
    ContainerMetrics(ContainerMetricsFlags),
}

#[derive(Args, Debug)]
pub struct ContainerMetricsFlags {
    #[arg(long = "web.listen-address", default_value = ":8080")]
    pub listen_address: String,
    /// TLS, client certificates and basic auth (the exporter toolkit's web config file).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Where sysfs is mounted (cgroups are read under `fs/cgroup`); a DaemonSet mounts the
    /// host's.
    #[arg(long = "path.sysfs", default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
    #[arg(long = "path.procfs", default_value = "/proc")]
    pub procfs: std::path::PathBuf,
    /// The host's root (for `/etc/machine-id`).
    #[arg(long = "path.rootfs", default_value = "/")]
    pub rootfs: std::path::PathBuf,
    /// Every cgroup, not only the node root and the pods' subtree (the kubelet's choice).
    #[arg(long = "all-cgroups")]
    pub all_cgroups: bool,
    /// Name pods and containers through the API (kubeconfig file); in a cluster the service
    /// account is used when neither this nor --apiserver is given.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    #[arg(long)]
    pub apiserver: Option<String>,
    /// Only this node's pods (as a DaemonSet passes `spec.nodeName`).
    #[arg(long = "node-name", env = "NODE_NAME")]
    pub node_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct KubeStateFlags {
    #[arg(long = "web.listen-address", default_value = ":8080")]
    pub listen_address: String,
    /// TLS, client certificates and basic auth: the exporter toolkit's web config file, under
    /// kube-state-metrics' flag name.
    #[arg(long = "tls-config")]
    pub tls_config: Option<std::path::PathBuf>,
    /// A kubeconfig file; without it (and without --apiserver) the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The API server's URL (kube-state-metrics' flag).
    #[arg(long)]
    pub apiserver: Option<String>,
    /// Which Kubernetes labels become `label_*` labels of `kube_<resource>_labels`, as
    /// kube-state-metrics: `pods=[app,version],deployments=[*]` (none by default).
    #[arg(long = "metric-labels-allowlist")]
    pub metric_labels_allowlist: Option<String>,
    /// Also write kube-state-metrics v1's resource families (`kube_node_status_allocatable_cpu_cores`,
    /// `kube_pod_container_resource_requests_memory_bytes`, ...), which older dashboards query.
    #[arg(long = "legacy-resource-metrics")]
    pub legacy_resource_metrics: bool,
}

#[derive(Subcommand, Debug)]
pub enum TsdbCommand {
    /// Create blocks from an input file (like `promtool tsdb create-blocks-from`).
    CreateBlocksFrom {
        /// Longest block to write (promtool's flag): e.g. `24h` for day blocks.
        #[arg(long = "max-block-duration", default_value = "2h", global = true)]
        max_block_duration: String,
        #[command(subcommand)]
        from: CreateFrom,
    },
    /// Analyze the blocks of a data directory: sizes, series, label cardinality.
    Analyze {
        #[arg(default_value = "data/")]
        dir: std::path::PathBuf,
        /// How many items to show in each list.
        #[arg(long, default_value = "20")]
        limit: usize,
    },
    /// Dump samples of a data directory as `{labels} value timestamp_ms` lines.
    Dump {
        #[arg(default_value = "data/")]
        dir: std::path::PathBuf,
        #[arg(long = "min-time", default_value_t = i64::MIN / 2)]
        min_time: i64,
        #[arg(long = "max-time", default_value_t = i64::MAX / 2)]
        max_time: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum CreateFrom {
    /// From an OpenMetrics file whose samples carry timestamps in seconds.
    Openmetrics {
        input: std::path::PathBuf,
        #[arg(default_value = "data/")]
        output: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that config files are valid (like `promtool check config`).
    Config {
        /// Only check the syntax, not that referenced files exist.
        #[arg(long = "syntax-only")]
        syntax_only: bool,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ServerFlags {
    /// Prometheus configuration file path. Without it and without ./prometheus.yml, vigil
    /// runs an embedded config that scrapes itself.
    #[arg(long = "config.file")]
    pub config_file: Option<String>,
    /// Address to listen on for UI, API, and telemetry.
    #[arg(long = "web.listen-address", default_value = "0.0.0.0:9090")]
    pub listen_address: String,
    /// Enable shutdown and reload via HTTP request.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
    /// Enable API endpoints for admin control actions (lands with the TSDB).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,
    /// Enable API endpoint accepting remote write requests (not yet implemented).
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,
    /// The URL under which vigil is externally reachable (accepted; used by the UI later).
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    /// Prefix for the internal routes of web endpoints (accepted; not yet applied).
    #[arg(long = "web.route-prefix")]
    pub route_prefix: Option<String>,
    /// Path to a web config file with TLS/basic auth (accepted; not yet applied).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<String>,
    #[arg(long = "web.read-timeout", default_value = "5m")]
    pub read_timeout: String,
    #[arg(long = "web.max-connections", default_value = "512")]
    pub max_connections: String,
    #[arg(
        long = "web.page-title",
        default_value = "vigil Time Series Collection and Processing Server"
    )]
    pub page_title: String,
    #[arg(long = "web.cors.origin", default_value = ".*")]
    pub cors_origin: String,
    #[arg(long = "web.user-assets")]
    pub user_assets: Option<String>,
    #[arg(long = "web.console.templates", default_value = "consoles")]
    pub console_templates: String,
    #[arg(long = "web.console.libraries", default_value = "console_libraries")]
    pub console_libraries: String,
    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", default_value = "data/")]
    pub tsdb_path: String,
    /// How long to retain samples in storage.
    #[arg(long = "storage.tsdb.retention.time")]
    pub retention_time: Option<String>,
    /// Maximum number of bytes that can be stored for blocks (lands with the TSDB).
    #[arg(long = "storage.tsdb.retention.size")]
    pub retention_size: Option<String>,
    /// Deprecated alias of --storage.tsdb.retention.time.
    #[arg(long = "storage.tsdb.retention", hide = true)]
    pub retention_deprecated: Option<String>,
    /// Range of the blocks the head is cut into (Prometheus: hidden, for testing).
    #[arg(
        long = "storage.tsdb.min-block-duration",
        default_value = "2h",
        hide = true
    )]
    pub min_block_duration: String,
    #[arg(long = "storage.tsdb.max-block-duration", hide = true)]
    pub max_block_duration: Option<String>,
    /// vigil: a directory of Grafana dashboards (JSON, or ConfigMap YAML wrapping JSON) to
    /// render at /dashboards; re-read on every load.
    #[arg(long = "dashboards.dir")]
    pub dashboards_dir: Option<std::path::PathBuf>,
    /// vigil: a Grafana provisioning file (`providers.yaml`); its file providers' `path`s load
    /// like `--dashboards.dir`.
    #[arg(long = "dashboards.provisioning")]
    pub dashboards_provisioning: Option<std::path::PathBuf>,
    #[arg(long = "storage.tsdb.no-lockfile")]
    pub no_lockfile: bool,
    #[arg(long = "storage.tsdb.wal-compression")]
    pub wal_compression: bool,
    #[arg(long = "storage.tsdb.allow-overlapping-blocks", hide = true)]
    pub allow_overlapping_blocks: bool,
    #[arg(long = "storage.remote.flush-deadline", default_value = "1m")]
    pub remote_flush_deadline: String,
    #[arg(long = "storage.remote.read-sample-limit", default_value = "50000000")]
    pub remote_read_sample_limit: String,
    #[arg(long = "storage.remote.read-concurrent-limit", default_value = "10")]
    pub remote_read_concurrent_limit: String,
    #[arg(
        long = "storage.remote.read-max-bytes-in-frame",
        default_value = "1048576"
    )]
    pub remote_read_max_bytes_in_frame: String,
    #[arg(long = "rules.alert.for-outage-tolerance", default_value = "1h")]
    pub alert_for_outage_tolerance: String,
    #[arg(long = "rules.alert.for-grace-period", default_value = "10m")]
    pub alert_for_grace_period: String,
    #[arg(long = "rules.alert.resend-delay", default_value = "1m")]
    pub alert_resend_delay: String,
    #[arg(
        long = "alertmanager.notification-queue-capacity",
        default_value = "10000"
    )]
    pub notification_queue_capacity: String,
    /// The maximum lookback duration for retrieving metrics during expression evaluations.
    #[arg(long = "query.lookback-delta", default_value = "5m")]
    pub lookback_delta: String,
    /// Maximum time a query may take before being aborted.
    #[arg(long = "query.timeout", default_value = "2m")]
    pub query_timeout: String,
    /// Maximum number of queries evaluated at once; more wait for a slot.
    #[arg(long = "query.max-concurrency", default_value = "20")]
    pub query_max_concurrency: String,
    /// Maximum number of samples a single query can load.
    #[arg(long = "query.max-samples", default_value = "50000000")]
    pub query_max_samples: String,
    /// Comma separated feature names to enable (accepted; none change behaviour yet).
    #[arg(long = "enable-feature", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    #[arg(long = "scrape.adjust-timestamps", hide = true)]
    pub scrape_adjust_timestamps: bool,
    #[arg(
        long = "scrape.discovery-reload-interval",
        default_value = "5s",
        hide = true
    )]
    pub discovery_reload_interval: String,
}

impl ServerFlags {
    /// Every flag as `/api/v1/status/flags` shows it: name to value, as strings.
    pub fn as_pairs(&self) -> Vec<(String, String)> {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let b = |v: bool| v.to_string();
        vec![
            (
                "config.file".into(),
                self.config_file
                    .clone()
                    .unwrap_or_else(|| "prometheus.yml".into()),
            ),
            ("web.listen-address".into(), self.listen_address.clone()),
            ("web.enable-lifecycle".into(), b(self.enable_lifecycle)),
            ("web.enable-admin-api".into(), b(self.enable_admin_api)),
            (
                "web.enable-remote-write-receiver".into(),
                b(self.enable_remote_write_receiver),
            ),
            ("web.external-url".into(), o(&self.external_url)),
            ("web.route-prefix".into(), o(&self.route_prefix)),
            ("web.config.file".into(), o(&self.web_config_file)),
            ("web.read-timeout".into(), self.read_timeout.clone()),
            ("web.max-connections".into(), self.max_connections.clone()),
            ("web.page-title".into(), self.page_title.clone()),
            ("web.cors.origin".into(), self.cors_origin.clone()),
            ("web.user-assets".into(), o(&self.user_assets)),
            (
                "web.console.templates".into(),
                self.console_templates.clone(),
            ),
            (
                "web.console.libraries".into(),
                self.console_libraries.clone(),
            ),
            ("storage.tsdb.path".into(), self.tsdb_path.clone()),
            (
                "storage.tsdb.retention.time".into(),
                self.retention_time.clone().unwrap_or_else(|| "0s".into()),
            ),
            (
                "storage.tsdb.retention.size".into(),
                self.retention_size.clone().unwrap_or_else(|| "0B".into()),
            ),
            (
                "storage.tsdb.min-block-duration".into(),
                self.min_block_duration.clone(),
            ),
            (
                "storage.tsdb.max-block-duration".into(),
                o(&self.max_block_duration),
            ),
            ("storage.tsdb.no-lockfile".into(), b(self.no_lockfile)),
            (
                "storage.tsdb.wal-compression".into(),
                b(self.wal_compression),
            ),
            (
                "storage.remote.flush-deadline".into(),
                self.remote_flush_deadline.clone(),
            ),
            (
                "storage.remote.read-sample-limit".into(),
                self.remote_read_sample_limit.clone(),
            ),
            (
                "storage.remote.read-concurrent-limit".into(),
                self.remote_read_concurrent_limit.clone(),
            ),
            (
                "storage.remote.read-max-bytes-in-frame".into(),
                self.remote_read_max_bytes_in_frame.clone(),
            ),
            (
                "rules.alert.for-outage-tolerance".into(),
                self.alert_for_outage_tolerance.clone(),
            ),
            (
                "rules.alert.for-grace-period".into(),
                self.alert_for_grace_period.clone(),
            ),
            (
                "rules.alert.resend-delay".into(),
                self.alert_resend_delay.clone(),
            ),
            (
                "alertmanager.notification-queue-capacity".into(),
                self.notification_queue_capacity.clone(),
            ),
            ("query.lookback-delta".into(), self.lookback_delta.clone()),
            ("query.timeout".into(), self.query_timeout.clone()),
            (
                "query.max-concurrency".into(),
                self.query_max_concurrency.clone(),
            ),
            ("query.max-samples".into(), self.query_max_samples.clone()),
            ("enable-feature".into(), self.enable_feature.join(",")),
            ("log.level".into(), self.log_level.clone()),
            ("log.format".into(), self.log_format.clone()),
            (
                "scrape.adjust-timestamps".into(),
                b(self.scrape_adjust_timestamps),
            ),
            (
                "scrape.discovery-reload-interval".into(),
                self.discovery_reload_interval.clone(),
            ),
        ]
    }
}
