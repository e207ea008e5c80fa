//! The command line: the subcommands (`Cli`, `Command`) and the flags of the exporters
//! (`vigil probe`, `vigil kube-state`, `vigil container-metrics`), each by the name its
//! upstream exporter gives it. The server's Prometheus flags are in `server_flags.rs`, and
//! `vigil node`'s in `node_flags.rs`.

use clap::{Args, Parser, Subcommand};

pub use crate::server_flags::ServerFlags;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (serves the Prometheus 2.42 HTTP API: /api/v1/status/buildinfo reports version 2.42.0, which Grafana reads to pick features)"
    ),
    about = "vigil: a Prometheus-compatible monitoring server",
    args_conflicts_with_subcommands = true,
    // As kingpin and pflag: a flag given twice takes the last value.
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerFlags,
}

/// The command line as clap parses it, each server flag's help taken from
/// [`crate::server_flags::FLAGS`] (the table docs/configuration.md is generated from), so
/// `--help` cannot call a working flag ineffective or the reverse.
/// The server flags given on the command line (not defaults), by their long names, each with
/// its value as given (repeated ones joined by commas), for the flags page.
pub fn given(cmd: &clap::Command, m: &clap::ArgMatches) -> Vec<(String, String)> {
    cmd.get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            let id = a.get_id().as_str();
            if m.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
                return None;
            }
            let vals: Vec<String> = m
                .get_raw(id)?
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            Some((long.to_string(), vals.join(",")))
        })
        .collect()
}

pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_args(|a| match a.get_long().and_then(crate::server_flags::info) {
        Some(f) => a.help(f.help()),
        None => a,
    })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check configuration files, as `promtool check ...`.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run unit tests, as `promtool test ...`.
    Test {
        #[command(subcommand)]
        what: TestCommand,
    },
    /// Work with TSDB data directories, as `promtool tsdb ...`.
    Tsdb {
        #[command(subcommand)]
        what: TsdbCommand,
    },
    /// A blackbox-exporter-compatible prober: `/probe?target=...&module=...` and `/metrics`,
    /// with the blackbox exporter's flags.
    Probe(ProbeFlags),
    /// Kubernetes object state as kube-state-metrics exposes it on `/metrics` (the resources
    /// `--resources` lists).
    KubeState(Box<KubeStateFlags>),
    /// Container metrics as cAdvisor exposes them, read from this node's cgroups, on `/metrics`.
    ContainerMetrics(ContainerMetricsFlags),
    /// A Linux node exporter: prometheus-node-exporter's default collectors that the
    /// standard dashboards and rules query, with its flags, on `/metrics` (default :9100).
    Node(Box<crate::node_flags::NodeFlags>),
    /// Chapter 14's monitoring story on this machine, no cluster needed: a simulated
    /// Kubernetes API with the chapter's apps, their exporters, a load generator, and vigil
    /// scraping them with dashboards and an alert. `vigil demo scale NAME N` scales a running
    /// demo's Deployment.
    Demo(crate::demo::DemoFlags),
}

/// `vigil probe`: the blackbox exporter's flags, with its meanings.
#[derive(Args, Debug)]
pub struct ProbeFlags {
    /// Blackbox exporter configuration file. [default: ./blackbox.yml if it exists, else the
    /// built-in http_2xx and tcp_connect modules]
    #[arg(long = "config.file")]
    pub config_file: Option<std::path::PathBuf>,
    /// Validate the configuration file, then exit (0 if valid).
    #[arg(long = "config.check", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub config_check: bool,
    /// Re-read the configuration file every --config.auto-reload-interval.
    #[arg(long = "config.enable-auto-reload", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub auto_reload: bool,
    /// How often --config.enable-auto-reload re-reads the file (seconds, or a duration).
    #[arg(long = "config.auto-reload-interval", default_value = "30s")]
    pub auto_reload_interval: String,
    /// Seconds taken off the scrape's timeout for a probe's deadline.
    #[arg(long = "timeout-offset", default_value_t = 0.5)]
    pub timeout_offset: f64,
    /// The level each probe's log lines are logged at.
    #[arg(long = "log.prober", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_prober: String,
    /// Probes kept for the landing page and /logs.
    #[arg(long = "history.limit", default_value_t = 100)]
    pub history_limit: usize,
    /// The URL the prober is reachable under; its path is the default route prefix.
    #[arg(long = "web.external-url")]
    pub external_url: Option<String>,
    /// Prefix of every route. [default: the path of --web.external-url]
    #[arg(long = "web.route-prefix")]
    pub route_prefix: Option<String>,
    /// Address to listen on; repeat to listen on several.
    #[arg(long = "web.listen-address", default_value = ":9115")]
    pub listen_address: Vec<String>,
    /// TLS, client certificates and basic auth (the exporter toolkit's web config file).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Longest wait for a request's headers, also on an idle kept-alive connection (a vigil
    /// flag, as the server's): slow or stalled clients cannot hold connections forever.
    #[arg(long = "web.read-timeout", default_value = "5m")]
    pub read_timeout: String,
    /// Most simultaneous connections (a vigil flag, as the server's); 0 is no limit.
    #[arg(long = "web.max-connections", default_value_t = 0)]
    pub max_connections: usize,
    /// Refused: systemd socket activation is not supported (give --web.listen-address).
    #[arg(long = "web.systemd-socket", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub systemd_socket: bool,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    /// Output format of log messages.
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

/// `vigil container-metrics`: cAdvisor's flags as its DaemonSet manifests pass them (Go flag
/// spellings with underscores), with its meanings; settings that concern cAdvisor's own
/// collection loop are accepted and named as having no effect.
#[derive(Args, Debug)]
pub struct ContainerMetricsFlags {
    /// Address to listen on. [default: --listen_ip and --port, i.e. :8080]
    #[arg(long = "web.listen-address")]
    pub listen_address: Option<String>,
    /// Port to listen on (cAdvisor's flag).
    #[arg(long = "port", default_value_t = 8080)]
    pub port: u16,
    /// IP to listen on; empty means every interface (cAdvisor's flag).
    #[arg(long = "listen_ip", default_value = "")]
    pub listen_ip: String,
    /// Path the metrics are served under (cAdvisor's flag).
    #[arg(long = "prometheus_endpoint", default_value = "/metrics")]
    pub prometheus_endpoint: String,
    /// Comma-separated cAdvisor metric kinds to serve (cpu, memory, network, diskIO, process,
    /// ...); when given, the others are left out.
    #[arg(long = "enable_metrics", value_delimiter = ',')]
    pub enable_metrics: Vec<String>,
    /// Comma-separated cAdvisor metric kinds to leave out.
    #[arg(long = "disable_metrics", value_delimiter = ',')]
    pub disable_metrics: Vec<String>,
    /// No effect (named in a warning): vigil reads the cgroups when scraped.
    #[arg(long = "housekeeping_interval")]
    pub housekeeping_interval: Option<String>,
    /// No effect (named in a warning): vigil reads the cgroups when scraped.
    #[arg(long = "max_housekeeping_interval")]
    pub max_housekeeping_interval: Option<String>,
    /// No effect (named in a warning): vigil reads the cgroups when scraped.
    #[arg(long = "allow_dynamic_housekeeping", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub allow_dynamic_housekeeping: Option<bool>,
    /// No effect (named in a warning): vigil keeps no event store.
    #[arg(long = "event_storage_event_limit")]
    pub event_storage_event_limit: Option<String>,
    /// No effect (named in a warning): vigil keeps no event store.
    #[arg(long = "event_storage_age_limit")]
    pub event_storage_age_limit: Option<String>,
    /// No effect (named in a warning): vigil reports the node root and the pods' cgroups
    /// (every cgroup with --all-cgroups), never by container runtime.
    #[arg(long = "docker_only", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub docker_only: Option<bool>,
    /// vigil writes no `container_label_*` labels; `true` is named in a warning.
    #[arg(long = "store_container_labels", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub store_container_labels: Option<bool>,
    /// No effect (named in a warning): vigil writes no `container_label_*` labels.
    #[arg(long = "whitelisted_container_labels")]
    pub whitelisted_container_labels: Option<String>,
    /// Log verbosity (klog's): 4 and above logs at debug level.
    #[arg(long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Accepted: vigil always logs to stderr.
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub logtostderr: Option<bool>,
    /// TLS, client certificates and basic auth (the exporter toolkit's web config file).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Longest wait for a request's headers, also on an idle kept-alive connection (a vigil
    /// flag, as the server's): slow or stalled clients cannot hold connections forever.
    #[arg(long = "web.read-timeout", default_value = "5m")]
    pub read_timeout: String,
    /// Most simultaneous connections (a vigil flag, as the server's); 0 is no limit.
    #[arg(long = "web.max-connections", default_value_t = 0)]
    pub max_connections: usize,
    /// Where sysfs is mounted (cgroups are read under `fs/cgroup`); a DaemonSet mounts the
    /// host's.
    #[arg(long = "path.sysfs", default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
    #[arg(long = "path.procfs", default_value = "/proc")]
    pub procfs: std::path::PathBuf,
    /// The host's root: `/etc/machine-id`, and the mount points whose sizes the root
    /// cgroup's filesystem families report.
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

/// `vigil kube-state`: kube-state-metrics' flags (pflag spellings: `--flag=false` works), with
/// its meanings; the ones vigil does not implement are refused by name at start-up.
#[derive(Args, Debug)]
pub struct KubeStateFlags {
    /// Host to serve the state metrics on.
    #[arg(long = "host", default_value = "::")]
    pub host: String,
    /// Port to serve the state metrics on.
    #[arg(long = "port", default_value_t = 8080)]
    pub port: u16,
    /// Host to serve kube-state's own metrics on.
    #[arg(long = "telemetry-host", default_value = "::")]
    pub telemetry_host: String,
    /// Port to serve kube-state's own metrics on.
    #[arg(long = "telemetry-port", default_value_t = 8081)]
    pub telemetry_port: u16,
    /// vigil's earlier spelling of --host/--port (`host:port` or `:port`); wins over them.
    #[arg(long = "web.listen-address", hide = true)]
    pub listen_address: Option<String>,
    /// TLS, client certificates and basic auth: the exporter toolkit's web config file, for
    /// both servers.
    #[arg(long = "tls-config")]
    pub tls_config: Option<std::path::PathBuf>,
    /// A kubeconfig file; without it (and without --apiserver) the in-cluster service account.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The API server's URL.
    #[arg(long)]
    pub apiserver: Option<String>,
    /// Comma-separated resources to expose. [default: every resource vigil renders:
    /// configmaps, cronjobs, daemonsets, deployments, horizontalpodautoscalers, jobs,
    /// namespaces, nodes, persistentvolumeclaims, persistentvolumes, pods, replicasets,
    /// resourcequotas, secrets, services, statefulsets]
    #[arg(long = "resources", value_delimiter = ',')]
    pub resources: Vec<String>,
    /// Comma-separated namespaces to watch (namespaced resources are watched per namespace).
    /// [default: all]
    #[arg(long = "namespaces", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Comma-separated namespaces to leave out.
    #[arg(long = "namespaces-denylist", value_delimiter = ',')]
    pub namespaces_denylist: Vec<String>,
    /// Comma-separated metric names or regular expressions (anchored) to expose.
    #[arg(long = "metric-allowlist", value_delimiter = ',')]
    pub metric_allowlist: Vec<String>,
    /// Comma-separated metric names or regular expressions (anchored) to leave out.
    #[arg(long = "metric-denylist", value_delimiter = ',')]
    pub metric_denylist: Vec<String>,
    /// Which Kubernetes labels become `label_*` labels of `kube_<resource>_labels`:
    /// `pods=[app,version],deployments=[*]` (none by default).
    #[arg(long = "metric-labels-allowlist")]
    pub metric_labels_allowlist: Option<String>,
    /// Annotations to write as `annotation_*` labels of `kube_<resource>_annotations`:
    /// `pods=[team,owner],deployments=[*]`.
    #[arg(long = "metric-annotations-allowlist")]
    pub metric_annotations_allowlist: Option<String>,
    /// Refused when set: vigil renders none of kube-state-metrics' opt-in families yet.
    #[arg(long = "metric-opt-in-list", value_delimiter = ',')]
    pub metric_opt_in_list: Vec<String>,
    /// This instance's shard (with --total-shards).
    #[arg(long = "shard", default_value_t = 0)]
    pub shard: u32,
    /// Number of shards: objects are split by a hash of their UID, as kube-state-metrics
    /// splits them.
    #[arg(long = "total-shards", default_value_t = 1)]
    pub total_shards: u32,
    /// Refused: automatic sharding is not implemented yet.
    #[arg(long = "pod")]
    pub pod: Option<String>,
    /// Refused: automatic sharding is not implemented yet.
    #[arg(long = "pod-namespace")]
    pub pod_namespace: Option<String>,
    /// Refused: per-node sharding of pods is not implemented yet.
    #[arg(long = "node")]
    pub node: Option<String>,
    /// Refused: per-node sharding of pods is not implemented yet.
    #[arg(long = "track-unscheduled-pods", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub track_unscheduled_pods: bool,
    /// List from the API server's watch cache (resourceVersion=0) instead of etcd.
    #[arg(long = "use-apiserver-cache", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub use_apiserver_cache: bool,
    /// Refused when not 0: a limit on listed objects is not implemented.
    #[arg(long = "object-limit", default_value_t = 0)]
    pub object_limit: i64,
    /// Gzip /metrics for clients that accept it.
    #[arg(long = "enable-gzip-encoding", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub enable_gzip_encoding: bool,
    /// Custom resource state config (YAML, kube-state-metrics' format); wins over the file.
    #[arg(long = "custom-resource-state-config")]
    pub custom_resource_state_config: Option<String>,
    /// A file holding the custom resource state config, read at start.
    #[arg(long = "custom-resource-state-config-file")]
    pub custom_resource_state_config_file: Option<String>,
    /// Only the custom resource state metrics: no built-in resource, whatever --resources says.
    #[arg(long = "custom-resource-state-only", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub custom_resource_state_only: bool,
    /// vigil's own: how often the custom resource state config's wildcard entries are
    /// resolved again, so kinds whose CRDs appear later are watched (0: only at start).
    #[arg(
        long = "custom-resource-state-discovery-interval",
        default_value = "30s"
    )]
    pub custom_resource_state_discovery_interval: String,
    /// Refused: vigil reads the custom resource state config file at start only.
    #[arg(long = "continue-without-custom-resource-state-config-file", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub continue_without_crs_file: bool,
    /// Refused: an options file is not read; give the flags.
    #[arg(long = "config")]
    pub config: Option<String>,
    /// Refused: an options file is not read.
    #[arg(long = "continue-without-config", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub continue_without_config: bool,
    /// Refused: TokenReview/SubjectAccessReview authentication is not implemented (use
    /// --tls-config).
    #[arg(long = "auth-filter", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub auth_filter: bool,
    /// No effect (Go runtime tuning); warned about when set.
    #[arg(long = "auto-gomemlimit", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub auto_gomemlimit: bool,
    /// No effect (Go runtime tuning); warned about when set.
    #[arg(long = "auto-gomemlimit-ratio")]
    pub auto_gomemlimit_ratio: Option<f64>,
    /// Longest wait for a request (applied, with --server-read-header-timeout, as the wait for a
    /// request's headers and a TLS handshake).
    #[arg(long = "server-read-timeout", default_value = "1m")]
    pub server_read_timeout: String,
    /// Longest wait for a request's headers.
    #[arg(long = "server-read-header-timeout", default_value = "5s")]
    pub server_read_header_timeout: String,
    /// No effect yet: a write timeout is not applied; warned about when set.
    #[arg(long = "server-write-timeout")]
    pub server_write_timeout: Option<String>,
    /// No effect yet: an idle timeout is not applied; warned about when set.
    #[arg(long = "server-idle-timeout")]
    pub server_idle_timeout: Option<String>,
    /// Log verbosity (klog's): 4 and up logs debug lines.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub verbosity: u8,
    /// Logs go to standard error (klog's flag; always so in vigil).
    #[arg(long = "logtostderr", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub logtostderr: bool,
    /// Print the version and exit.
    #[arg(long = "version", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub version: bool,
    /// vigil's own: also write kube-state-metrics v1's resource families
    /// (`kube_node_status_allocatable_cpu_cores`, ...), which older dashboards query.
    #[arg(long = "legacy-resource-metrics", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
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
    /// Export a data directory (vigil's or Prometheus's) as Prometheus-format blocks, for
    /// Prometheus, promtool or a Thanos sidecar.
    Export {
        /// The only format: `prometheus` (index v2, XOR chunks).
        #[arg(long = "format", default_value = "prometheus", value_parser = ["prometheus"])]
        format: String,
        dir: std::path::PathBuf,
        out: std::path::PathBuf,
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
pub enum TestCommand {
    /// Run rule unit tests (promtool's `test rules` format).
    Rules {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckCommand {
    /// Check that config files are valid (like `promtool check config`).
    Config {
        /// Only check the syntax, not that referenced files exist.
        #[arg(long = "syntax-only")]
        syntax_only: bool,
        /// Check the config for agent mode (no rules, alerting or remote read).
        #[arg(long = "agent")]
        agent: bool,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// Check that rule files are valid (like `promtool check rules`).
    Rules {
        /// Lints: `all`, `duplicate-rules` or `none` (comma separated).
        #[arg(long = "lint", default_value = "duplicate-rules")]
        lint: String,
        /// Exit 3 when a lint finds something.
        #[arg(long = "lint-fatal")]
        lint_fatal: bool,
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}
