//! `vigil node`'s flags: node_exporter's, by its names and with its meanings, turned into the
//! exporter's options. Collector switches (`--collector.cpu`, `--no-collector.cpu`,
//! `--collector.cpu=false`) are rewritten by [`crate::argv`] into `--collector-switch` so
//! they keep their order; a switch naming a collector vigil does not implement is refused,
//! unless it turns that collector off.

use clap::Args;
use vigil_exporters::node::{COLLECTORS, NOT_IMPLEMENTED, Options, defaults};

#[derive(Args, Debug)]
pub struct NodeFlags {
    /// Addresses on which to expose metrics. Repeatable for multiple addresses.
    #[arg(long = "web.listen-address", default_value = ":9100")]
    pub listen_address: Vec<String>,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", default_value = "/metrics")]
    pub telemetry_path: String,
    /// Exclude metrics about the exporter itself (promhttp_*, process_*).
    #[arg(long = "web.disable-exporter-metrics", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub disable_exporter_metrics: bool,
    /// Maximum number of parallel scrape requests (more are answered 503). 0 disables the limit.
    #[arg(long = "web.max-requests", default_value_t = 40)]
    pub max_requests: usize,
    /// TLS, client certificates and basic auth (the exporter toolkit's web config file).
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<std::path::PathBuf>,
    /// Refused: vigil does not take listeners from systemd.
    #[arg(long = "web.systemd-socket", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub systemd_socket: bool,
    /// Longest wait for a request's headers, also on an idle kept-alive connection (a vigil
    /// flag, as the server's).
    #[arg(long = "web.read-timeout", default_value = "5m")]
    pub read_timeout: String,
    /// Most simultaneous connections (a vigil flag, as the server's); 0 is no limit.
    #[arg(long = "web.max-connections", default_value_t = 0)]
    pub max_connections: usize,
    /// Threads serving HTTP requests (node_exporter's Go runtime setting). Each scrape reads
    /// its files on a thread of its own, at most --web.max-requests at once.
    #[arg(long = "runtime.gomaxprocs", default_value_t = 1)]
    pub gomaxprocs: usize,
    #[arg(long = "path.procfs", default_value = "/proc")]
    pub procfs: std::path::PathBuf,
    #[arg(long = "path.sysfs", default_value = "/sys")]
    pub sysfs: std::path::PathBuf,
    #[arg(long = "path.rootfs", default_value = "/")]
    pub rootfs: std::path::PathBuf,
    #[arg(long = "path.udev.data", default_value = "/run/udev/data")]
    pub udev_data: std::path::PathBuf,
    /// Set all collectors to disabled by default.
    #[arg(long = "collector.disable-defaults", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub disable_defaults: bool,
    /// `--collector.NAME` / `--no-collector.NAME`, in the order given (written NAME=true|false).
    #[arg(long = "collector-switch", hide = true)]
    pub switches: Vec<String>,
    /// Enables metric node_cpu_guest_seconds_total.
    #[arg(long = "collector.cpu.guest", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub cpu_guest: bool,
    /// Enables metric node_cpu_info.
    #[arg(long = "collector.cpu.info", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub cpu_info: bool,
    /// Refused: vigil writes no node_cpu_flag_info.
    #[arg(long = "collector.cpu.info.flags-include")]
    pub cpu_flags_include: Option<String>,
    /// Refused: vigil writes no node_cpu_bug_info.
    #[arg(long = "collector.cpu.info.bugs-include")]
    pub cpu_bugs_include: Option<String>,
    /// Regexp of mount points to exclude for filesystem collector.
    #[arg(long = "collector.filesystem.mount-points-exclude", alias = "collector.filesystem.ignored-mount-points", default_value = defaults::FS_MOUNT_POINTS_EXCLUDE)]
    pub fs_mount_points_exclude: String,
    /// Regexp of filesystem types to exclude for filesystem collector.
    #[arg(long = "collector.filesystem.fs-types-exclude", alias = "collector.filesystem.ignored-fs-types", default_value = defaults::FS_TYPES_EXCLUDE)]
    pub fs_types_exclude: String,
    /// How long to wait for a mount to answer statfs before marking it stale.
    #[arg(long = "collector.filesystem.mount-timeout", default_value = "5s")]
    pub fs_mount_timeout: String,
    /// Regexp of diskstats devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.diskstats.device-exclude",
        alias = "collector.diskstats.ignored-devices"
    )]
    pub disk_exclude: Option<String>,
    /// Regexp of diskstats devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.diskstats.device-include")]
    pub disk_include: Option<String>,
    /// Regexp of net devices to exclude (mutually exclusive to device-include).
    #[arg(long = "collector.netdev.device-exclude")]
    pub netdev_exclude: Option<String>,
    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(long = "collector.netdev.device-include")]
    pub netdev_include: Option<String>,
    /// Read the kernel's link statistics (as netlink gives them) rather than /proc/net/dev.
    #[arg(long = "collector.netdev.netlink", num_args = 0..=1, default_value_t = true, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub netdev_netlink: bool,
    /// Refused: vigil writes no node_network_address_info.
    #[arg(long = "collector.netdev.address-info", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub netdev_address_info: bool,
    /// Refused: vigil writes node_exporter's default netdev names only.
    #[arg(long = "collector.netdev.enable-detailed-metrics", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub netdev_detailed: bool,
    /// Writes every RAPL zone in one family, node_rapl_joules_total, with a rapl_zone label.
    #[arg(long = "collector.rapl.enable-zone-label", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub rapl_zone_label: bool,
    /// Expose expensive priority stats.
    #[arg(long = "collector.bcache.priorityStats", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub bcache_priority_stats: bool,
    /// Regexp of devices to ignore for tapestats.
    #[arg(long = "collector.tapestats.ignored-devices", default_value = defaults::TAPESTATS_IGNORED)]
    pub tapestats_ignored: String,
    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(long = "collector.powersupply.ignored-supplies", default_value = defaults::POWER_SUPPLY_IGNORED)]
    pub power_supply_ignored: String,
    /// Regexp of net devices to ignore for netclass collector.
    #[arg(long = "collector.netclass.ignored-devices", default_value = defaults::NETCLASS_IGNORED)]
    pub netclass_ignored: String,
    /// Ignore devices where the speed is invalid.
    #[arg(long = "collector.netclass.ignore-invalid-speed", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub netclass_ignore_invalid_speed: bool,
    /// Refused when true: vigil reads /sys/class/net (node_exporter's default source).
    #[arg(long = "collector.netclass.netlink", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set, require_equals = true)]
    pub netclass_netlink: bool,
    /// Regexp of fields to return for netstat collector.
    #[arg(long = "collector.netstat.fields", default_value = defaults::NETSTAT_FIELDS)]
    pub netstat_fields: String,
    /// Regexp of fields to return for vmstat collector.
    #[arg(long = "collector.vmstat.fields", default_value = defaults::VMSTAT_FIELDS)]
    pub vmstat_fields: String,
    /// Comma separated list for IPVS backend stats labels.
    #[arg(long = "collector.ipvs.backend-labels", default_value = defaults::IPVS_BACKEND_LABELS)]
    pub ipvs_backend_labels: String,
    /// Directory to read text files with metrics from (empty: none).
    #[arg(long = "collector.textfile.directory")]
    pub textfile_directory: Option<String>,
    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", default_value = "info")]
    pub log_level: String,
    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", default_value = "logfmt")]
    pub log_format: String,
}

/// A duration as the Go flags write it: `5s`, `1m30s`, `500ms`.
fn duration(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    vigil_config::parse_duration(s).map_err(|e| format!("--{flag}: {s:?}: {e}"))
}

fn regex(flag: &str, s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| format!("--{flag}: {s:?}: {e}"))
}

impl NodeFlags {
    /// The exporter's options and enabled collectors, or every refused flag, each named.
    pub fn options(&self) -> Result<(Options, Vec<&'static str>), Vec<String>> {
        let mut errs = Vec::new();
        let mut refuse = |set: bool, flag: &str, why: &str| {
            if set {
                errs.push(format!("--{flag}: refused: {why}"));
            }
        };
        refuse(
            self.systemd_socket,
            "web.systemd-socket",
            "vigil does not take listeners from systemd",
        );
        refuse(
            self.cpu_flags_include.is_some(),
            "collector.cpu.info.flags-include",
            "vigil writes no node_cpu_flag_info",
        );
        refuse(
            self.cpu_bugs_include.is_some(),
            "collector.cpu.info.bugs-include",
            "vigil writes no node_cpu_bug_info",
        );
        refuse(
            self.netdev_address_info,
            "collector.netdev.address-info",
            "vigil writes no node_network_address_info",
        );
        refuse(
            self.netdev_detailed,
            "collector.netdev.enable-detailed-metrics",
            "vigil writes node_exporter's default netdev families only",
        );
        refuse(
            self.disk_exclude.as_deref().is_some_and(|s| !s.is_empty())
                && self.disk_include.as_deref().is_some_and(|s| !s.is_empty()),
            "collector.diskstats.device-include",
            "mutually exclusive with --collector.diskstats.device-exclude",
        );
        refuse(
            self.netdev_exclude
                .as_deref()
                .is_some_and(|s| !s.is_empty())
                && self
                    .netdev_include
                    .as_deref()
                    .is_some_and(|s| !s.is_empty()),
            "collector.netdev.device-include",
            "mutually exclusive with --collector.netdev.device-exclude",
        );
        refuse(
            self.gomaxprocs == 0,
            "runtime.gomaxprocs",
            "must be at least 1",
        );
        refuse(
            self.netclass_netlink,
            "collector.netclass.netlink",
            "vigil reads /sys/class/net, node_exporter's default source; its netlink mode reports some attributes differently",
        );
        refuse(
            !self.telemetry_path.starts_with('/'),
            "web.telemetry-path",
            "must start with /",
        );
        let mut enabled: Vec<&'static str> = COLLECTORS
            .iter()
            .filter(|c| c.default_enabled && !self.disable_defaults)
            .map(|c| c.name)
            .collect();
        for sw in &self.switches {
            // The spellings Go's strconv.ParseBool accepts, as kingpin reads them.
            let (name, on) = match sw.split_once('=') {
                Some((n, "1" | "t" | "T" | "TRUE" | "true" | "True")) => (n, true),
                Some((n, "0" | "f" | "F" | "FALSE" | "false" | "False")) => (n, false),
                _ => {
                    errs.push(format!("--collector.{sw}: not a boolean"));
                    continue;
                }
            };
            if let Some(c) = COLLECTORS.iter().find(|c| c.name == name) {
                enabled.retain(|e| *e != c.name);
                if on {
                    enabled.push(c.name);
                }
            } else if NOT_IMPLEMENTED.iter().any(|(n, _)| *n == name) {
                if on {
                    errs.push(format!(
                        "--collector.{name}: refused: vigil node does not implement the {name} collector (docs/node-exporter.md lists the ones it does)"
                    ));
                }
            } else {
                errs.push(format!("--collector.{name}: no such collector"));
            }
        }
        let mut compile = |flag: &str, s: &str| match regex(flag, s) {
            Ok(r) => Some(r),
            Err(e) => {
                errs.push(e);
                None
            }
        };
        let fs_mp = compile(
            "collector.filesystem.mount-points-exclude",
            &self.fs_mount_points_exclude,
        );
        let fs_types = compile(
            "collector.filesystem.fs-types-exclude",
            &self.fs_types_exclude,
        );
        // An empty pattern is no pattern, as node_exporter reads it.
        let disk_exclude = match (self.disk_exclude.as_deref(), &self.disk_include) {
            (Some(""), _) => None,
            (Some(s), _) => compile("collector.diskstats.device-exclude", s),
            (None, None) => compile("collector.diskstats.device-exclude", defaults::DISK_EXCLUDE),
            (None, Some(_)) => None,
        };
        let disk_include = self
            .disk_include
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| compile("collector.diskstats.device-include", s));
        let netdev_exclude = self
            .netdev_exclude
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| compile("collector.netdev.device-exclude", s));
        let netdev_include = self
            .netdev_include
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| compile("collector.netdev.device-include", s));
        let netclass = compile("collector.netclass.ignored-devices", &self.netclass_ignored);
        let power_supply = compile(
            "collector.powersupply.ignored-supplies",
            &self.power_supply_ignored,
        );
        let tapestats = compile(
            "collector.tapestats.ignored-devices",
            &self.tapestats_ignored,
        );
        let netstat = compile("collector.netstat.fields", &self.netstat_fields);
        let vmstat = compile("collector.vmstat.fields", &self.vmstat_fields);
        let ipvs_labels = vigil_exporters::node::ipvs_backend_labels(&self.ipvs_backend_labels)
            .map_err(|e| errs.push(format!("--collector.ipvs.backend-labels: {e}")))
            .ok();
        let timeout = duration("collector.filesystem.mount-timeout", &self.fs_mount_timeout)
            .and_then(|d| {
                if d.is_zero() {
                    Err("--collector.filesystem.mount-timeout: must be more than 0".to_string())
                } else {
                    Ok(d)
                }
            })
            .map_err(|e| errs.push(e))
            .ok();
        if !errs.is_empty() {
            return Err(errs);
        }
        let (
            Some(fs_mp),
            Some(fs_types),
            Some(netclass),
            Some(power_supply),
            Some(tapestats),
            Some(netstat),
            Some(vmstat),
            Some(timeout),
            Some(ipvs_labels),
        ) = (
            fs_mp,
            fs_types,
            netclass,
            power_supply,
            tapestats,
            netstat,
            vmstat,
            timeout,
            ipvs_labels,
        )
        else {
            return Err(vec!["a flag did not compile".into()]);
        };
        Ok((
            Options {
                cpu_guest: self.cpu_guest,
                cpu_info: self.cpu_info,
                fs_mount_points_exclude: fs_mp,
                fs_types_exclude: fs_types,
                fs_mount_timeout: timeout,
                disk_exclude,
                disk_include,
                netdev_exclude,
                netdev_include,
                netdev_netlink: self.netdev_netlink,
                netclass_ignored: netclass,
                power_supply_ignored: power_supply,
                rapl_zone_label: self.rapl_zone_label,
                bcache_priority_stats: self.bcache_priority_stats,
                tapestats_ignored: tapestats,
                netclass_ignore_invalid_speed: self.netclass_ignore_invalid_speed,
                netstat_fields: netstat,
                vmstat_fields: vmstat,
                ipvs_backend_labels: ipvs_labels,
                textfile_dir: self
                    .textfile_directory
                    .as_deref()
                    .filter(|d| !d.is_empty())
                    .map(Into::into),
                exporter_metrics: !self.disable_exporter_metrics,
            },
            enabled,
        ))
    }
}
