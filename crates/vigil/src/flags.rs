//! Prometheus's command-line flags, by their Prometheus names.
//!
//! Flags whose feature has not landed yet are accepted (so an existing Deployment's args
//! work unchanged), shown by `/api/v1/status/flags`, and documented as such in the README.

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
