//! `vigil node`: a Linux node exporter compatible with `prometheus-node-exporter`'s default
//! collectors that the standard dashboards and rules query. Each collector reads its files
//! under `--path.procfs`, `--path.sysfs` and `--path.rootfs` at scrape time (so a DaemonSet
//! with the host's directories mounted reports the host) and writes node_exporter's families,
//! label names and units. `docs/node-exporter.md` lists what each collector serves and where
//! vigil differs.

mod bcache;
mod btrfs;
mod cpu;
mod disk;
mod fibrechannel;
mod filesystem;
mod hwmon;
mod infiniband;
mod ipvs;
mod kernel;
mod network;
mod nfs;
mod nfsd;
mod nvme;
pub mod out;
pub use ipvs::backend_labels as ipvs_backend_labels;
mod platform;
mod process;
mod tapestats;
mod textfile;
mod xfs;
mod zfs;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use regex::Regex;

pub use out::{Kind, Out};

/// Why a collector produced nothing, or not everything.
#[derive(Debug)]
pub enum Error {
    /// The node has nothing for this collector (no such file in procfs/sysfs): logged at
    /// debug, as node_exporter does, since it is normal on many machines.
    NoData(String),
    /// A file that should be there could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file's content was not what the kernel writes.
    Parse { path: PathBuf, what: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NoData(w) => write!(f, "no data: {w}"),
            Error::Read { path, source } => write!(f, "reading {}: {source}", path.display()),
            Error::Parse { path, what } => write!(f, "parsing {}: {what}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// Where the node's files are (all overridable, so tests can build a node in a directory and a
/// DaemonSet can read the host's).
#[derive(Debug, Clone)]
pub struct Paths {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            udev_data: "/run/udev/data".into(),
        }
    }
}

/// The collectors' options, by node_exporter's flag names.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--collector.cpu.guest`
    pub cpu_guest: bool,
    /// `--collector.cpu.info`
    pub cpu_info: bool,
    /// `--collector.filesystem.mount-points-exclude`
    pub fs_mount_points_exclude: Regex,
    /// `--collector.filesystem.fs-types-exclude`
    pub fs_types_exclude: Regex,
    /// `--collector.filesystem.mount-timeout`
    pub fs_mount_timeout: std::time::Duration,
    /// `--collector.diskstats.device-exclude`
    pub disk_exclude: Option<Regex>,
    /// `--collector.diskstats.device-include`
    pub disk_include: Option<Regex>,
    /// `--collector.netdev.device-exclude`
    pub netdev_exclude: Option<Regex>,
    /// `--collector.netdev.device-include`
    pub netdev_include: Option<Regex>,
    /// `--collector.netdev.netlink`: the kernel's link statistics (read from sysfs, where the
    /// kernel exposes the same counters netlink carries) rather than `/proc/net/dev`.
    pub netdev_netlink: bool,
    /// `--collector.netclass.ignored-devices`
    pub netclass_ignored: Regex,
    /// `--collector.netclass.ignore-invalid-speed`
    pub netclass_ignore_invalid_speed: bool,
    /// `--collector.powersupply.ignored-supplies`
    pub power_supply_ignored: Regex,
    /// `--collector.rapl.enable-zone-label`
    pub rapl_zone_label: bool,
    /// `--collector.bcache.priorityStats`
    pub bcache_priority_stats: bool,
    /// `--collector.tapestats.ignored-devices`
    pub tapestats_ignored: Regex,
    /// `--collector.netstat.fields`
    pub netstat_fields: Regex,
    /// `--collector.vmstat.fields`
    pub vmstat_fields: Regex,
    /// `--collector.ipvs.backend-labels`, in node_exporter's order.
    pub ipvs_backend_labels: Vec<&'static str>,
    /// `--collector.textfile.directory`
    pub textfile_dir: Option<PathBuf>,
    /// Not `--web.disable-exporter-metrics`: the exporter's own process metrics.
    pub exporter_metrics: bool,
}

/// node_exporter's defaults (1.5.0's `--help`).
pub mod defaults {
    pub const FS_MOUNT_POINTS_EXCLUDE: &str =
        "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
    pub const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
    pub const DISK_EXCLUDE: &str = "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";
    pub const NETCLASS_IGNORED: &str = "^$";
    pub const POWER_SUPPLY_IGNORED: &str = "^$";
    pub const TAPESTATS_IGNORED: &str = "^$";
    pub const NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";
    pub const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";
    pub const IPVS_BACKEND_LABELS: &str =
        "local_address,local_port,remote_address,remote_port,proto,local_mark";
}

impl Default for Options {
    fn default() -> Self {
        let re = |s: &str| Regex::new(s).expect("default regex compiles");
        Options {
            cpu_guest: true,
            cpu_info: false,
            fs_mount_points_exclude: re(defaults::FS_MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: re(defaults::FS_TYPES_EXCLUDE),
            fs_mount_timeout: std::time::Duration::from_secs(5),
            disk_exclude: Some(re(defaults::DISK_EXCLUDE)),
            disk_include: None,
            netdev_exclude: None,
            netdev_include: None,
            netdev_netlink: true,
            netclass_ignored: re(defaults::NETCLASS_IGNORED),
            power_supply_ignored: re(defaults::POWER_SUPPLY_IGNORED),
            rapl_zone_label: false,
            bcache_priority_stats: false,
            tapestats_ignored: re(defaults::TAPESTATS_IGNORED),
            netclass_ignore_invalid_speed: false,
            netstat_fields: re(defaults::NETSTAT_FIELDS),
            vmstat_fields: re(defaults::VMSTAT_FIELDS),
            ipvs_backend_labels: ipvs::BACKEND_LABELS.to_vec(),
            textfile_dir: None,
            exporter_metrics: true,
        }
    }
}

/// A collector: its node_exporter name, whether node_exporter enables it by default, and what
/// it writes.
pub struct Collector {
    pub name: &'static str,
    pub default_enabled: bool,
    run: fn(&Node, &mut Out) -> Result<(), Error>,
}

const fn c(
    name: &'static str,
    default_enabled: bool,
    run: fn(&Node, &mut Out) -> Result<(), Error>,
) -> Collector {
    Collector {
        name,
        default_enabled,
        run,
    }
}

/// The collectors vigil implements, by name.
pub static COLLECTORS: &[Collector] = &[
    c("arp", true, network::arp),
    c("bcache", true, bcache::bcache),
    c("bonding", true, network::bonding),
    c("btrfs", true, btrfs::btrfs),
    c("conntrack", true, network::conntrack),
    c("cpu", true, cpu::cpu),
    c("cpufreq", true, cpu::cpufreq),
    c("diskstats", true, disk::diskstats),
    c("dmi", true, platform::dmi),
    c("edac", true, hwmon::edac),
    c("entropy", true, kernel::entropy),
    c("fibrechannel", true, fibrechannel::fibrechannel),
    c("filefd", true, kernel::filefd),
    c("filesystem", true, filesystem::filesystem),
    c("hwmon", true, hwmon::hwmon),
    c("infiniband", true, infiniband::infiniband),
    c("ipvs", true, ipvs::ipvs),
    c("loadavg", true, kernel::loadavg),
    c("mdadm", true, disk::mdadm),
    c("meminfo", true, kernel::meminfo),
    c("netclass", true, network::netclass),
    c("netdev", true, network::netdev),
    c("netstat", true, network::netstat),
    c("nfs", true, nfs::nfs),
    c("nfsd", true, nfsd::nfsd),
    c("nvme", true, nvme::nvme),
    c("os", true, platform::os),
    c("powersupplyclass", true, hwmon::powersupplyclass),
    c("pressure", true, kernel::pressure),
    c("rapl", true, hwmon::rapl),
    c("schedstat", true, kernel::schedstat),
    c("selinux", true, platform::selinux),
    c("sockstat", true, network::sockstat),
    c("softnet", true, network::softnet),
    c("stat", true, kernel::stat),
    c("tapestats", true, tapestats::tapestats),
    c("textfile", true, textfile::textfile),
    c("thermal_zone", true, hwmon::thermal_zone),
    c("time", true, platform::time),
    c("timex", true, platform::timex),
    c("udp_queues", true, network::udp_queues),
    c("uname", true, platform::uname),
    c("vmstat", true, kernel::vmstat),
    c("xfs", true, xfs::xfs),
    c("zfs", true, zfs::zfs),
];

/// Every collector node_exporter 1.5.0 has on Linux that vigil does not implement, with whether
/// node_exporter enables it by default: asking for one is refused, and the default-enabled ones
/// are named in the start-up log and the docs so their absence is never silent.
pub static NOT_IMPLEMENTED: &[(&str, bool)] = &[
    ("buddyinfo", false),
    ("cgroups", false),
    ("drbd", false),
    ("drm", false),
    ("ethtool", false),
    ("interrupts", false),
    ("ksmd", false),
    ("lnstat", false),
    ("logind", false),
    ("meminfo_numa", false),
    ("mountstats", false),
    ("network_route", false),
    ("ntp", false),
    ("perf", false),
    ("processes", false),
    ("qdisc", false),
    ("runit", false),
    ("slabinfo", false),
    ("softirqs", false),
    ("supervisord", false),
    ("systemd", false),
    ("tcpstat", false),
    ("wifi", false),
    ("zoneinfo", false),
];

/// The exporter: paths, options, the enabled collectors and what collectors keep between
/// scrapes.
pub struct Node {
    pub paths: Paths,
    pub opts: Options,
    enabled: Vec<&'static Collector>,
    cpu_state: parking_lot::Mutex<cpu::State>,
    fs_state: filesystem::State,
    started: f64,
    http: process::HttpStats,
}

impl Node {
    /// `enabled` names collectors of [`COLLECTORS`]; unknown names are the caller's to refuse.
    pub fn new(paths: Paths, opts: Options, enabled: &[&str]) -> Self {
        Node {
            paths,
            opts,
            enabled: COLLECTORS
                .iter()
                .filter(|c| enabled.contains(&c.name))
                .collect(),
            cpu_state: Default::default(),
            fs_state: Default::default(),
            http: Default::default(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    pub fn enabled(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.enabled.iter().map(|c| c.name)
    }

    fn proc(&self, rel: &str) -> PathBuf {
        self.paths.procfs.join(rel)
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.paths.sysfs.join(rel)
    }

    /// One scrape: every enabled collector, timed, with its success, then the exporter's own
    /// families.
    pub fn scrape(&self) -> String {
        self.scrape_only(&self.enabled)
    }

    /// The collectors a `collect[]` parameter names, each enabled; else the 400 message
    /// node_exporter gives.
    pub fn select(&self, names: &[String]) -> Result<Vec<&'static Collector>, String> {
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| match self.enabled.iter().find(|c| c.name == n) {
                Some(c) => Ok(*c),
                None if COLLECTORS.iter().any(|c| c.name == n) => {
                    Err(format!("disabled collector: {n}"))
                }
                None if NOT_IMPLEMENTED.iter().any(|(x, _)| x == n) => {
                    Err(format!("vigil node does not implement the {n} collector"))
                }
                None => Err(format!("missing collector: {n}")),
            })
            .collect()
    }

    /// One scrape of the given collectors. Each runs isolated: one that panics or writes a
    /// name that is not a valid metric name is reported failed, and the others' families are
    /// served. textfile runs last, so a file can never take over a collector's family.
    pub fn scrape_only(&self, collectors: &[&'static Collector]) -> String {
        let mut out = Out::default();
        let ordered = collectors
            .iter()
            .filter(|c| c.name != "textfile")
            .chain(collectors.iter().filter(|c| c.name == "textfile"));
        for c in ordered {
            let t = Instant::now();
            let rejected = out.rejected();
            let res =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.run)(self, &mut out)))
                    .unwrap_or_else(|_| {
                        Err(Error::Parse {
                            path: self.paths.procfs.clone(),
                            what: "the collector panicked reading its files".into(),
                        })
                    });
            let res = match (res, out.rejected() > rejected) {
                (Ok(()), true) => Err(Error::Parse {
                    path: self.paths.procfs.clone(),
                    what: format!("dropped samples: {}", out.last_rejection()),
                }),
                (r, _) => r,
            };
            let took = t.elapsed().as_secs_f64();
            let ok = match res {
                Ok(()) => 1.0,
                Err(Error::NoData(w)) => {
                    tracing::debug!(collector = c.name, "collector returned no data: {w}");
                    0.0
                }
                Err(e) => {
                    tracing::error!(collector = c.name, "collector failed: {e}");
                    0.0
                }
            };
            out.gauge(
                "node_scrape_collector_duration_seconds",
                "node_exporter: Duration of a collector scrape.",
                &[("collector", c.name)],
                took,
            );
            out.gauge(
                "node_scrape_collector_success",
                "node_exporter: Whether a collector succeeded.",
                &[("collector", c.name)],
                ok,
            );
        }
        process::build_info(&mut out);
        if self.opts.exporter_metrics {
            process::exporter_metrics(self.started, &self.http, &mut out);
        }
        out.render()
    }
}

/// The most a collector reads of one file: procfs and sysfs files are a few pages at most,
/// so anything larger is not the kernel's file.
const MAX_FILE: u64 = 16 << 20;

/// Read a regular file of at most [`MAX_FILE`] bytes. A FIFO or device planted under
/// `--path.procfs` would block a scrape forever or never end; those are refused.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_bounded_bytes(path)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}

/// [`read_bounded`]'s bytes, whatever their encoding.
fn read_bounded_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so opening a FIFO returns at once (then refused below); regular files
    // read the same either way.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(buf)
}

/// A file absent on this node or closed to this user: node_exporter's sysfs readers leave
/// such an attribute out rather than fail.
fn missing_or_denied(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    )
}

/// Read a whole file, naming it in the error.
fn read(path: &Path) -> Result<String, Error> {
    read_bounded(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// procfs's `SysReadFile`, which node_exporter's sysfs collectors read small attributes with:
/// the first 128 bytes, surrounding whitespace trimmed, each run of invalid UTF-8 as one U+FFFD
/// (Go's `strings.ToValidUTF8`, which label values go through). Read as every file here is, so
/// a FIFO planted in the tree cannot hold a scrape.
fn sysread(path: &Path) -> std::io::Result<String> {
    let all = read_bounded_bytes(path)?;
    let b = all[..all.len().min(128)].trim_ascii();
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() && !out.ends_with('\u{FFFD}') {
            out.push('\u{FFFD}');
        }
    }
    Ok(out)
}

/// procfs's `ReadIntFromFile`: the whole file, trimmed, as a base-10 integer.
fn read_int(path: &Path) -> Result<i64, Error> {
    let s = read(path)?;
    s.trim().parse().map_err(|_| Error::Parse {
        path: path.to_path_buf(),
        what: format!("{:?} is not an integer", s.trim()),
    })
}

/// `dir`'s entries whose names start with `prefix` and a digit (a `prefix[0-9]*` glob), sorted;
/// none when `dir` does not exist.
fn numbered(dir: &Path, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(prefix)?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| (name.clone(), e.path()))
        })
        .collect();
    v.sort();
    v
}

/// procfs hands the kernel's errors up wrapped, and node_exporter reports any "does not exist"
/// among them as no data, whichever file or directory it was; other failures fail the
/// collector.
fn missing_is_no_data(path: &Path, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::NoData(format!("{}: {source}", path.display()))
    } else {
        Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Read a file that may be absent on this node: absent is [`Error::NoData`].
fn read_optional(path: &Path) -> Result<String, Error> {
    match read_bounded(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NoData(format!("{} does not exist", path.display())))
        }
        r => r.map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A sysfs attribute: trimmed content, or `None` when absent or unreadable (many attributes
/// are absent or return EINVAL depending on the device's state).
fn attr(path: &Path) -> Option<String> {
    read_bounded(path)
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// A number as the kernel writes one: `inf` and `nan` parse as floats but no kernel file
/// holds them, so they are refused.
fn parse_f64(path: &Path, s: &str) -> Result<f64, Error> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            what: format!("not a number: {s:?}"),
        })
}

/// A hexadecimal counter (softnet, conntrack statistics, UDP queues).
fn parse_hex(path: &Path, s: &str) -> Result<f64, Error> {
    u64::from_str_radix(s.trim(), 16)
        .map(|v| v as f64)
        .map_err(|_| Error::Parse {
            path: path.to_path_buf(),
            what: format!("not a hex number: {s:?}"),
        })
}

/// `--collector.*.device-include` / `device-exclude`: an include pattern, when given, decides
/// alone.
fn device_wanted(
    include: &Option<regex::Regex>,
    exclude: &Option<regex::Regex>,
    dev: &str,
) -> bool {
    match include {
        Some(inc) => inc.is_match(dev),
        None => !exclude.as_ref().is_some_and(|ex| ex.is_match(dev)),
    }
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` (or `--web.telemetry-path`) and a landing page. At most `max_requests` scrapes
/// run at once (0: no limit); more are answered 503, as node_exporter answers them.
pub fn router(node: Arc<Node>, metrics_path: &str, max_requests: usize) -> Router {
    // 0, or a count past the semaphore's most (where it would panic), is no limit.
    let limit = Arc::new(tokio::sync::Semaphore::new(if max_requests == 0 {
        tokio::sync::Semaphore::MAX_PERMITS
    } else {
        max_requests.min(tokio::sync::Semaphore::MAX_PERMITS)
    }));
    let scrape = get(move |State(n): State<Arc<Node>>, RawQuery(q): RawQuery| {
        let limit = limit.clone();
        async move {
            // `?collect[]=cpu&collect[]=meminfo`: only those collectors, for this request.
            let names: Vec<String> = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .filter(|(k, _)| k == "collect[]")
                .map(|(_, v)| v.into_owned())
                .collect();
            let only = if names.is_empty() {
                None
            } else {
                match n.select(&names) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        return (
                            axum::http::StatusCode::BAD_REQUEST,
                            format!("Couldn't create filtered metrics handler: {e}\n"),
                        )
                            .into_response();
                    }
                }
            };
            let Ok(permit) = limit.try_acquire_owned() else {
                n.http.by_code[2].fetch_add(1, Ordering::Relaxed);
                return (
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Limit of concurrent requests reached ({max_requests}), try again later.\n"
                    ),
                )
                    .into_response();
            };
            // The permit and the in-flight count go with the scrape itself: a client that
            // gives up (a scrape timeout) does not end the scrape, so neither may be released
            // before it ends.
            let n2 = n.clone();
            let text = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _flight = process::InFlight::enter(&n2.http);
                match only {
                    Some(c) => n2.scrape_only(&c),
                    None => n2.scrape(),
                }
            })
            .await;
            match text {
                Ok(text) => {
                    n.http.by_code[0].fetch_add(1, Ordering::Relaxed);
                    ([(header::CONTENT_TYPE, TEXT)], text).into_response()
                }
                Err(e) => {
                    n.http.by_code[1].fetch_add(1, Ordering::Relaxed);
                    tracing::error!("scrape failed: {e}");
                    (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "scrape failed\n",
                    )
                        .into_response()
                }
            }
        }
    });
    let mut r = Router::new().route(metrics_path, scrape);
    if metrics_path != "/" {
        let page = format!(
            "<h1>vigil node</h1><p>node_exporter compatible: <a href=\"{0}\">{0}</a></p>",
            crate::exposition::escape_label_value(metrics_path).replace('<', "&lt;")
        );
        r = r.route("/", get(move || async move { axum::response::Html(page) }));
    }
    r.with_state(node)
}
