//! `vigil container-metrics`: cAdvisor's container families, read from this node's cgroups at
//! scrape time, with the labels the kubelet gives Kubernetes containers. Pod UIDs and container
//! IDs come from cgroup paths ([`identity`]); pod, namespace, container and image names from the
//! Kubernetes API when a client is given (else those labels are empty, as for any non-pod
//! cgroup). `docs/container-metrics.md` is the specification followed.

pub mod cgroup;
pub mod filesystems;
pub mod identity;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::RwLock;

use crate::exposition::{Family, counter, fmt_value, gauge, push_labels};
use cgroup::{Layout, Meminfo, Stats};
use identity::PodInfo;

/// Where to read from (all overridable, so tests can build a node in a directory).
#[derive(Debug, Clone)]
pub struct Paths {
    pub sysfs: PathBuf,
    pub procfs: PathBuf,
    pub rootfs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            sysfs: "/sys".into(),
            procfs: "/proc".into(),
            rootfs: "/".into(),
        }
    }
}

const FAMILIES: [Family; 64] = [
    gauge(
        "container_last_seen",
        "Last time a container was seen by the exporter",
    ),
    counter(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
    ),
    counter(
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
    ),
    counter(
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
    ),
    counter(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
    ),
    counter(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
    ),
    counter(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
    ),
    gauge(
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    ),
    gauge(
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
    ),
    gauge("container_memory_rss", "Size of RSS in bytes."),
    gauge(
        "container_memory_cache",
        "Number of bytes of page cache memory.",
    ),
    gauge("container_memory_swap", "Container swap usage in bytes."),
    counter(
        "container_memory_failcnt",
        "Number of memory usage hits limits",
    ),
    gauge(
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
    ),
    gauge(
        "container_spec_memory_limit_bytes",
        "Memory limit for the container.",
    ),
    gauge(
        "container_spec_memory_swap_limit_bytes",
        "Memory swap limit for the container.",
    ),
    gauge(
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
    ),
    gauge(
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes.",
    ),
    gauge(
        "container_memory_kernel_usage",
        "Size of kernel memory allocated in bytes.",
    ),
    gauge(
        "container_memory_total_active_file_bytes",
        "Current total active file in bytes.",
    ),
    gauge(
        "container_memory_total_inactive_file_bytes",
        "Current total inactive file in bytes.",
    ),
    counter(
        "container_memory_failures_total",
        "Cumulative count of memory allocation failures.",
    ),
    counter(
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
    ),
    counter(
        "container_pressure_cpu_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to CPU congestion.",
    ),
    counter(
        "container_pressure_cpu_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to CPU congestion.",
    ),
    counter(
        "container_pressure_memory_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to memory congestion.",
    ),
    counter(
        "container_pressure_memory_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to memory congestion.",
    ),
    counter(
        "container_pressure_io_stalled_seconds_total",
        "Total time duration no tasks in the container could make progress due to IO congestion.",
    ),
    counter(
        "container_pressure_io_waiting_seconds_total",
        "Total time duration tasks in the container have waited due to IO congestion.",
    ),
    gauge(
        "container_threads",
        "Number of threads running inside the container",
    ),
    gauge(
        "container_threads_max",
        "Maximum number of threads allowed inside the container, infinity if value is zero",
    ),
    gauge("container_spec_cpu_quota", "CPU quota of the container."),
    gauge("container_spec_cpu_period", "CPU period of the container."),
    gauge("container_spec_cpu_shares", "CPU share of the container."),
    gauge(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
    ),
    counter(
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
    ),
    counter(
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
    ),
    counter(
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
    ),
    counter(
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
    ),
    counter(
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
    ),
    counter(
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
    ),
    counter(
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
    ),
    counter(
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
    ),
    counter(
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
    ),
    counter(
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
    ),
    counter(
        "container_fs_reads_total",
        "Cumulative count of reads completed",
    ),
    counter(
        "container_fs_writes_total",
        "Cumulative count of writes completed",
    ),
    counter(
        "container_fs_sector_reads_total",
        "Cumulative count of sector reads completed",
    ),
    counter(
        "container_fs_reads_merged_total",
        "Cumulative count of reads merged",
    ),
    counter(
        "container_fs_read_seconds_total",
        "Cumulative count of seconds spent reading",
    ),
    counter(
        "container_fs_sector_writes_total",
        "Cumulative count of sector writes completed",
    ),
    counter(
        "container_fs_writes_merged_total",
        "Cumulative count of writes merged",
    ),
    counter(
        "container_fs_write_seconds_total",
        "Cumulative count of seconds spent writing",
    ),
    gauge(
        "container_fs_io_current",
        "Number of I/Os currently in progress",
    ),
    counter(
        "container_fs_io_time_seconds_total",
        "Cumulative count of seconds spent doing I/Os",
    ),
    counter(
        "container_fs_io_time_weighted_seconds_total",
        "Cumulative weighted I/O time in seconds",
    ),
    gauge("container_fs_inodes_free", "Number of available Inodes"),
    gauge("container_fs_inodes_total", "Number of Inodes"),
    gauge(
        "container_fs_limit_bytes",
        "Number of bytes that can be consumed by the container on this filesystem.",
    ),
    gauge(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
    ),
    gauge(
        "container_processes",
        "Number of processes running inside the container.",
    ),
    gauge(
        "container_file_descriptors",
        "Number of open file descriptors for the container.",
    ),
    gauge(
        "container_sockets",
        "Number of open sockets for the container.",
    ),
    gauge("machine_cpu_cores", "Number of logical CPU cores."),
];
const MACHINE_MEMORY: Family = gauge(
    "machine_memory_bytes",
    "Amount of memory installed on the machine.",
);

/// Open file descriptors and, of them, sockets, over a container's processes: the entries of
/// each `/proc/<pid>/fd` and those linking to `socket:...`, as cAdvisor counts them. A process
/// gone meanwhile counts nothing; when vigil was refused any of them (not root, no
/// CAP_SYS_PTRACE), `None`: no count is better than a count that is too low.
fn open_files(procfs: &std::path::Path, pids: &[u32]) -> Option<(u64, u64)> {
    let (mut fds, mut sockets) = (0u64, 0u64);
    let mut denied = false;
    for pid in pids {
        let dir = procfs.join(pid.to_string()).join("fd");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    denied = true;
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| {
                        tracing::warn!(dir = %dir.display(), "container-metrics: not allowed to read processes' open files (run as root or with CAP_SYS_PTRACE); container_file_descriptors and container_sockets are left out");
                    });
                }
                continue;
            }
        };

        for e in entries.flatten() {
            fds += 1;
            if std::fs::read_link(e.path())
                .is_ok_and(|t| t.as_os_str().as_encoded_bytes().starts_with(b"socket"))
            {
                sockets += 1;
            }
        }
    }
    (!denied).then_some((fds, sockets))
}

/// Samples by family name, each with its labels sorted by name.
type Samples = BTreeMap<&'static str, (Family, Vec<(Vec<(String, String)>, f64)>)>;

fn push(out: &mut Samples, f: &Family, labels: &identity::Labels, extra: &[(&str, &str)], v: f64) {
    let mut l: Vec<(String, String)> = vec![
        ("container".into(), labels.container.clone()),
        ("id".into(), labels.id.clone()),
        ("image".into(), labels.image.clone()),
        ("name".into(), labels.name.clone()),
        ("namespace".into(), labels.namespace.clone()),
        ("pod".into(), labels.pod.clone()),
    ];
    if !extra.is_empty() {
        l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        l.sort();
    }
    out.entry(f.name)
        .or_insert_with(|| (*f, Vec::new()))
        .1
        .push((l, v));
}

fn fam(name: &str) -> &'static Family {
    FAMILIES
        .iter()
        .find(|f| f.name == name)
        .expect("known family")
}

/// The node's pods by UID, kept current by a watch when a client is given.
#[derive(Default)]
pub struct Pods(RwLock<HashMap<String, PodInfo>>);

impl Pods {
    pub fn snapshot(&self) -> HashMap<String, PodInfo> {
        self.0.read().clone()
    }
}

/// Everything the exporter serves.
pub struct ContainerMetrics {
    pub paths: Paths,
    pub layout: Layout,
    /// Every cgroup, not only the node root and the pods' (`--all-cgroups`).
    pub all_cgroups: bool,
    pub pods: Arc<Pods>,
    /// Family-name prefixes left out (`--disable_metrics`/`--enable_metrics`).
    pub disabled: Vec<&'static str>,
    /// `--enable_metrics=percpu`: usage per CPU where the cgroup has it (v1), in place of the
    /// total, as standalone cAdvisor writes it (the kubelet never asks for it).
    pub percpu: bool,
    /// CPUs this process may run on: cAdvisor reports usage for that many CPUs, not for the
    /// kernel's zero padding up to the possible ones.
    cpus: usize,
    /// The root's filesystems, listed once at start as cAdvisor lists them.
    pub partitions: Vec<filesystems::Partition>,
    /// Where their mount points are: the host's root, or `/` when the list is this process's
    /// own mounts (pid 1's could not be read).
    fs_root: PathBuf,
    /// Mount points whose `statfs` has not returned.
    hung: crate::mounts::Hung,
}

/// How long a scrape waits for the root's filesystems to answer `statfs`, together: a mount
/// that takes longer (a dead NFS server) is left out until its call returns.
const STATFS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// cAdvisor's metric kinds (`--enable_metrics`/`--disable_metrics`), each with the prefixes of
/// the families vigil writes for it; most kinds have none here (vigil does not collect them).
pub const METRIC_KINDS: [(&str, &[&str]); 23] = [
    ("accelerator", &[]),
    ("advtcp", &[]),
    ("app", &[]),
    ("cpu", &["container_cpu_"]),
    ("cpuLoad", &[]),
    ("cpu_topology", &[]),
    ("cpuset", &[]),
    (
        "disk",
        &[
            "container_fs_inodes_",
            "container_fs_limit_bytes",
            "container_fs_usage_bytes",
        ],
    ),
    (
        "diskIO",
        &[
            "container_fs_reads",
            "container_fs_writes",
            "container_fs_sector_",
            "container_fs_read_seconds",
            "container_fs_write_seconds",
            "container_fs_io_",
        ],
    ),
    ("hugetlb", &[]),
    ("memory", &["container_memory_"]),
    ("memory_numa", &[]),
    ("network", &["container_network_"]),
    ("oom_event", &["container_oom_events_total"]),
    ("percpu", &[]),
    ("perf_event", &[]),
    ("pressure", &["container_pressure_"]),
    (
        "process",
        &[
            "container_processes",
            "container_threads",
            "container_file_descriptors",
            "container_sockets",
        ],
    ),
    ("referenced_memory", &[]),
    ("resctrl", &[]),
    ("sched", &[]),
    ("tcp", &[]),
    ("udp", &[]),
];

/// The prefixes to leave out for cAdvisor's `--enable_metrics` (when given: only these kinds)
/// and `--disable_metrics`, and the enabled kinds vigil does not collect (for a warning). An
/// unknown kind is an error, as in cAdvisor.
pub fn metric_selection(
    enable: &[String],
    disable: &[String],
) -> Result<(Vec<&'static str>, Vec<String>), String> {
    for (flag, list) in [("enable_metrics", enable), ("disable_metrics", disable)] {
        for k in list {
            if !METRIC_KINDS.iter().any(|(n, _)| n == k) {
                return Err(format!(
                    "--{flag}: unsupported metric kind {k:?} (known: {})",
                    METRIC_KINDS.map(|(n, _)| n).join(",")
                ));
            }
        }
    }
    let on = |k: &str| {
        (enable.is_empty() || enable.iter().any(|e| e == k)) && !disable.iter().any(|d| d == k)
    };
    let disabled = METRIC_KINDS
        .iter()
        .filter(|(k, _)| !on(k))
        .flat_map(|(_, p)| p.iter().copied())
        .collect();
    // `percpu` has no families of its own: it splits the CPU usage by CPU (see `percpu`).
    let uncollected = enable
        .iter()
        .filter(|k| *k != "percpu")
        .filter(|k| on(k) && METRIC_KINDS.iter().any(|(n, p)| n == k && p.is_empty()))
        .cloned()
        .collect();
    Ok((disabled, uncollected))
}

/// How many CPUs this process may run on (its affinity mask), as cAdvisor counts them.
fn allowed_cpus() -> usize {
    // SAFETY: `set` is a zeroed `cpu_set_t` of the size passed; the kernel only writes it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return usize::MAX;
    }
    // SAFETY: `set` was filled by the call above.
    unsafe { libc::CPU_COUNT(&set) as usize }
}

/// `text` without the families whose names start with one of `prefixes`.
fn without(text: String, prefixes: &[&str]) -> String {
    if prefixes.is_empty() {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            out.push_str(line);
        }
    }
    out
}

impl ContainerMetrics {
    pub fn new(paths: Paths, all_cgroups: bool) -> ContainerMetrics {
        let layout = Layout::detect(&paths.sysfs.join("fs/cgroup"));
        // The host's mounts (pid 1's, as the kubelet's cAdvisor sees them) under the host's
        // root, else ours under ours.
        let (mountinfo, fs_root) = match std::fs::read_to_string(paths.procfs.join("1/mountinfo")) {
            Ok(m) => (m, paths.rootfs.clone()),
            Err(_) => match std::fs::read_to_string(paths.procfs.join("self/mountinfo")) {
                Ok(m) => (m, PathBuf::from("/")),
                Err(e) => {
                    tracing::warn!(
                        "container-metrics: cannot read mountinfo ({e}); the root's filesystem families are left out"
                    );
                    (String::new(), PathBuf::from("/"))
                }
            },
        };
        let partitions = filesystems::partitions(&mountinfo, &fs_root);
        ContainerMetrics {
            paths,
            layout,
            all_cgroups,
            pods: Default::default(),
            disabled: Vec::new(),
            percpu: false,
            cpus: allowed_cpus(),
            partitions,
            fs_root,
            hung: Default::default(),
        }
    }

    /// Read every cgroup now and write the exposition (families and series sorted, as the
    /// Go client writes them; no sample timestamps: the values are read at scrape time).
    pub fn collect(&self) -> String {
        let meminfo = Meminfo::read(&self.paths.procfs);
        let pods = self.pods.snapshot();
        let devices: HashMap<String, String> = cgroup::block_devices(&self.paths.sysfs)
            .into_iter()
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0) as f64;
        let mut out: Samples = BTreeMap::new();
        // Nothing started before the machine did (cAdvisor raises earlier times to boot time).
        let boot = std::fs::read_to_string(self.paths.procfs.join("uptime"))
            .ok()
            .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
            .map(|up| now - up);
        let ids = self.layout.cgroups(self.all_cgroups);
        let disk = !self.disabled.contains(&"container_fs_usage_bytes");
        let mut read: Vec<(identity::Labels, bool, Stats)> = ids
            .iter()
            .map(|id| {
                let (labels, sandbox) = identity::labels(id, &pods);
                (labels, sandbox, self.layout.stats(id, &meminfo))
            })
            .collect();
        // Without the API, a pod's network goes to its first-started container (the sandbox
        // starts first), so a pod's traffic is counted once, as cAdvisor does.
        let mut first_by_pod: HashMap<String, (f64, usize)> = HashMap::new();
        for (i, (l, _, s)) in read.iter().enumerate() {
            let ids = identity::parse(&l.id);
            if let (Some(uid), Some(_)) = (ids.pod_uid, ids.container_id)
                && !pods.contains_key(&uid)
            {
                let t = s.start_time.unwrap_or(f64::MAX);
                let e = first_by_pod.entry(uid).or_insert((t, i));
                if t < e.0 {
                    *e = (t, i);
                }
            }
        }
        for (_, i) in first_by_pod.values() {
            read[*i].1 = true;
        }
        for (l, net_holder, s) in &read {
            push(&mut out, fam("container_last_seen"), l, &[], now);
            // Reading every process's fd table is the costly part: skipped with the kind off.
            let files = if self.disabled.contains(&"container_file_descriptors") {
                None
            } else {
                open_files(&self.paths.procfs, &s.procs)
            };
            let per_cpu = match &s.cpu_per_cpu_ns {
                Some(v) if self.percpu && !v.is_empty() => Some(&v[..v.len().min(self.cpus)]),
                _ => None,
            };
            if let Some(per_cpu) = per_cpu {
                // cAdvisor: one series per CPU that has used any time, and then no total.
                for (i, ns) in per_cpu.iter().enumerate().filter(|(_, ns)| **ns > 0) {
                    push(
                        &mut out,
                        fam("container_cpu_usage_seconds_total"),
                        l,
                        &[("cpu", &format!("cpu{i:02}"))],
                        *ns as f64 / 1e9,
                    );
                }
            } else if let Some(v) = s.cpu_usage_seconds.filter(|v| *v > 0.0) {
                push(
                    &mut out,
                    fam("container_cpu_usage_seconds_total"),
                    l,
                    &[("cpu", "total")],
                    v,
                );
            }
            for (name, v) in [
                ("container_cpu_user_seconds_total", s.cpu_user_seconds),
                ("container_cpu_system_seconds_total", s.cpu_system_seconds),
                ("container_memory_usage_bytes", s.memory_usage),
                ("container_memory_working_set_bytes", s.memory_working_set),
                ("container_memory_rss", s.memory_rss),
                ("container_memory_cache", s.memory_cache),
                ("container_memory_swap", s.memory_swap),
                ("container_memory_failcnt", s.memory_failcnt),
                ("container_memory_max_usage_bytes", s.memory_max_usage),
                ("container_spec_memory_limit_bytes", s.memory_limit),
                (
                    "container_spec_memory_swap_limit_bytes",
                    s.memory_swap_limit,
                ),
                (
                    "container_spec_memory_reservation_limit_bytes",
                    s.memory_reservation,
                ),
                ("container_memory_mapped_file", s.memory_mapped_file),
                ("container_memory_kernel_usage", s.memory_kernel_usage),
                (
                    "container_memory_total_active_file_bytes",
                    s.memory_active_file,
                ),
                (
                    "container_memory_total_inactive_file_bytes",
                    s.memory_inactive_file,
                ),
                ("container_threads", s.threads.map(|t| t.0)),
                ("container_threads_max", s.threads.map(|t| t.1)),
                ("container_spec_cpu_quota", s.cpu_quota),
                ("container_spec_cpu_period", s.cpu_period),
                ("container_spec_cpu_shares", s.cpu_shares),
                (
                    "container_start_time_seconds",
                    s.start_time.map(|t| boot.map_or(t, |b| t.max(b)).floor()),
                ),
                ("container_processes", Some(s.procs.len() as f64)),
                ("container_file_descriptors", files.map(|f| f.0 as f64)),
                ("container_sockets", files.map(|f| f.1 as f64)),
                ("container_oom_events_total", s.oom_kills),
            ] {
                if let Some(v) = v {
                    push(&mut out, fam(name), l, &[], v);
                }
            }
            if let Some((minor, major)) = s.memory_failures {
                for scope in ["container", "hierarchy"] {
                    for (kind, v) in [("pgfault", minor), ("pgmajfault", major)] {
                        push(
                            &mut out,
                            fam("container_memory_failures_total"),
                            l,
                            &[("failure_type", kind), ("scope", scope)],
                            v,
                        );
                    }
                }
            }
            if let Some(p) = s.pressure {
                for (i, res) in ["cpu", "memory", "io"].iter().enumerate() {
                    let (full, some) = p[i];
                    for (what, v) in [("stalled", full), ("waiting", some)] {
                        let name = format!("container_pressure_{res}_{what}_seconds_total");
                        push(&mut out, fam(&name), l, &[], v);
                    }
                }
            }
            if let Some((periods, throttled, secs)) = s.cfs {
                push(
                    &mut out,
                    fam("container_cpu_cfs_periods_total"),
                    l,
                    &[],
                    periods,
                );
                push(
                    &mut out,
                    fam("container_cpu_cfs_throttled_periods_total"),
                    l,
                    &[],
                    throttled,
                );
                push(
                    &mut out,
                    fam("container_cpu_cfs_throttled_seconds_total"),
                    l,
                    &[],
                    secs,
                );
            }
            for (dev, v) in &s.io {
                // The root's devices are named after its filesystems first, as cAdvisor's raw
                // handler names them (`/dev/mapper/vg-root` rather than `/dev/dm-0`); it lists
                // them for the disk I/O kind too.
                let by_fs = (l.id == "/").then(|| self.partition_named(dev)).flatten();
                // Then the disk map, then (as cAdvisor's machine namer) a filesystem with
                // those numbers.
                let device = by_fs
                    .or_else(|| devices.get(dev).map(String::as_str))
                    .or_else(|| self.partition_named(dev))
                    .unwrap_or("");
                for (i, name) in [
                    "container_fs_reads_bytes_total",
                    "container_fs_writes_bytes_total",
                    "container_fs_reads_total",
                    "container_fs_writes_total",
                ]
                .iter()
                .enumerate()
                {
                    push(&mut out, fam(name), l, &[("device", device)], v[i]);
                }
            }
            if l.id == "/" && disk {
                self.root_filesystems(&mut out, l);
            }
            // Network: the root reads pid 1 (the host's namespace); in a pod, the container
            // holding the pod's network namespace.
            let pid = if l.id == "/" {
                Some(1)
            } else if *net_holder {
                s.procs.first().copied()
            } else {
                None
            };
            if let Some(pid) = pid {
                for (iface, v) in cgroup::net_dev(&self.paths.procfs, pid) {
                    for (i, name) in [
                        "container_network_receive_bytes_total",
                        "container_network_receive_packets_total",
                        "container_network_receive_errors_total",
                        "container_network_receive_packets_dropped_total",
                        "container_network_transmit_bytes_total",
                        "container_network_transmit_packets_total",
                        "container_network_transmit_errors_total",
                        "container_network_transmit_packets_dropped_total",
                    ]
                    .iter()
                    .enumerate()
                    {
                        push(&mut out, fam(name), l, &[("interface", &iface)], v[i]);
                    }
                }
            }
        }
        let mut text = String::new();
        for (f, mut series) in out.into_values() {
            series.sort_by(|a, b| a.0.cmp(&b.0));
            text.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n",
                f.name, f.help, f.name, f.kind
            ));
            for (labels, v) in series {
                text.push_str(f.name);
                push_labels(
                    &mut text,
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                );
                text.push(' ');
                text.push_str(&fmt_value(v));
                text.push('\n');
            }
        }
        text.push_str(&self.machine());
        text
    }

    /// The name of the root's filesystem with device numbers `maj_min` (`8:1`), if any.
    fn partition_named(&self, maj_min: &str) -> Option<&str> {
        let (major, minor) = maj_min.split_once(':')?;
        let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
        self.partitions
            .iter()
            .find(|p| p.major == major && p.minor == minor)
            .map(|p| p.device.as_str())
    }

    /// The root's filesystems (cAdvisor's `DiskUsageMetrics`, and the filesystem half of its
    /// disk I/O families): sizes from `statfs` of each mount point, counters from
    /// `/proc/diskstats`. A mount point that no longer holds its filesystem (unmounted since
    /// start) is left out, where cAdvisor reports zeros or the parent filesystem's sizes.
    fn root_filesystems(&self, out: &mut Samples, l: &identity::Labels) {
        let disks = std::fs::read_to_string(self.paths.procfs.join("diskstats"))
            .map(|t| filesystems::diskstats(&t))
            .unwrap_or_default();
        // Every statfs is started before any is waited for, against one deadline.
        let pending: Vec<_> = self
            .partitions
            .iter()
            .map(|p| {
                let (part, root) = (p.clone(), self.fs_root.clone());
                self.hung
                    .start(&p.mountpoint, 64 * 1024, move || part.statfs(&root))
            })
            .collect();
        let deadline = std::time::Instant::now() + STATFS_TIMEOUT;
        for (p, pending) in self.partitions.iter().zip(pending) {
            let st = match pending.and_then(|x| x.wait(deadline)) {
                Some(Ok(st)) => st,
                Some(Err(e)) => {
                    tracing::debug!(device = %p.device, "container-metrics: filesystem left out: {e}");
                    continue;
                }
                None => continue,
            };
            let device = [("device", p.device.as_str())];
            // cAdvisor: capacity and free by the fragment size; usage is capacity less free.
            let capacity = st.blocks.saturating_mul(st.frsize);
            let free = st.bfree.saturating_mul(st.frsize);
            for (name, v) in [
                ("container_fs_limit_bytes", capacity),
                ("container_fs_usage_bytes", capacity.saturating_sub(free)),
                ("container_fs_inodes_total", st.files),
                ("container_fs_inodes_free", st.ffree),
            ] {
                push(out, fam(name), l, &device, v as f64);
            }
            let c = p.disk(&disks);
            // The times are milliseconds in /proc/diskstats; cAdvisor divides them by 1e9
            // all the same (see docs/container-metrics.md), and so does vigil, so the values
            // are what dashboards built on the kubelet's output expect.
            let ms = |v: u64| v as f64 / 1e9;
            for (name, v) in [
                ("container_fs_reads_total", c[0] as f64),
                ("container_fs_reads_merged_total", c[1] as f64),
                ("container_fs_sector_reads_total", c[2] as f64),
                ("container_fs_read_seconds_total", ms(c[3])),
                ("container_fs_writes_total", c[4] as f64),
                ("container_fs_writes_merged_total", c[5] as f64),
                ("container_fs_sector_writes_total", c[6] as f64),
                ("container_fs_write_seconds_total", ms(c[7])),
                ("container_fs_io_current", c[8] as f64),
                ("container_fs_io_time_seconds_total", ms(c[9])),
                ("container_fs_io_time_weighted_seconds_total", ms(c[10])),
            ] {
                // A cgroup I/O series already named after this device stays, as the
                // kubelet's registry keeps the first of two alike.
                let taken = out.get(name).is_some_and(|(_, series)| {
                    series.iter().any(|(labels, _)| {
                        labels.iter().any(|(k, v)| k == "device" && v == &p.device)
                            && labels.iter().any(|(k, v)| k == "id" && v == "/")
                    })
                });
                if !taken {
                    push(out, fam(name), l, &device, v);
                }
            }
        }
    }

    /// `machine_cpu_cores` and `machine_memory_bytes`, labelled with the machine's identity.
    fn machine(&self) -> String {
        let read = |p: PathBuf| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let boot_id = read(self.paths.procfs.join("sys/kernel/random/boot_id"));
        let machine_id = {
            let m = read(self.paths.rootfs.join("etc/machine-id"));
            if m.is_empty() {
                read(self.paths.rootfs.join("var/lib/dbus/machine-id"))
            } else {
                m
            }
        };
        let system_uuid = read(self.paths.sysfs.join("class/dmi/id/product_uuid"));
        let labels = [
            ("boot_id", boot_id.as_str()),
            ("machine_id", machine_id.as_str()),
            ("system_uuid", system_uuid.as_str()),
        ];
        // Logical CPUs online (`0-3,6`), else every `cpuN` directory.
        let online = std::fs::read_to_string(self.paths.sysfs.join("devices/system/cpu/online"))
            .ok()
            .and_then(|t| {
                t.trim()
                    .split(',')
                    .map(|r| match r.split_once('-') {
                        Some((a, b)) => {
                            Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?)
                        }
                        None => r.parse::<usize>().ok().map(|_| 1),
                    })
                    .sum::<Option<usize>>()
            });
        let cores = online.unwrap_or_else(|| {
            std::fs::read_dir(self.paths.sysfs.join("devices/system/cpu"))
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.strip_prefix("cpu").is_some_and(|d| {
                                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
                            })
                        })
                        .count()
                })
                .unwrap_or(0)
        });
        let mut s = String::new();
        for (f, v) in [
            (*fam("machine_cpu_cores"), Some(cores as f64)),
            (MACHINE_MEMORY, Meminfo::read(&self.paths.procfs).mem_total),
        ] {
            let Some(v) = v else { continue };
            s.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n{}",
                f.name, f.help, f.name, f.kind, f.name
            ));
            push_labels(&mut s, labels.iter().copied());
            s.push_str(&format!(" {}\n", fmt_value(v)));
        }
        s
    }

    /// Follow the pods of `node` (all pods when `None`) so series get their names.
    pub fn watch_pods(&self, client: kube::Client, node: Option<String>) {
        use futures_util::StreamExt;
        use k8s_openapi::api::core::v1::Pod;
        use kube::runtime::{WatchStreamExt, watcher};
        let pods = self.pods.clone();
        let mut cfg = watcher::Config::default();
        if let Some(n) = node {
            cfg = cfg.fields(&format!("spec.nodeName={n}"));
        }
        let api = kube::Api::<Pod>::all(client);
        tokio::spawn(async move {
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            let mut pending: Option<HashMap<String, PodInfo>> = None;
            while let Some(ev) = stream.next().await {
                let info = |p: &Pod| -> Option<(String, PodInfo)> {
                    let m = &p.metadata;
                    let mut containers = HashMap::new();
                    // Init, sidecar and ephemeral containers are containers too: only the pod's
                    // sandbox has no status entry.
                    let st = p.status.as_ref();
                    let all = st
                        .and_then(|s| s.container_statuses.as_ref())
                        .into_iter()
                        .chain(st.and_then(|s| s.init_container_statuses.as_ref()))
                        .chain(st.and_then(|s| s.ephemeral_container_statuses.as_ref()))
                        .flatten();
                    for cs in all {
                        if let Some(id) = cs
                            .container_id
                            .as_deref()
                            .and_then(|c| c.split_once("://"))
                            .map(|(_, id)| id)
                        {
                            containers.insert(
                                id.to_string(),
                                (cs.name.clone(), cs.image.clone(), cs.restart_count),
                            );
                        }
                    }
                    Some((
                        m.uid.clone()?,
                        PodInfo {
                            namespace: m.namespace.clone().unwrap_or_default(),
                            name: m.name.clone().unwrap_or_default(),
                            containers,
                        },
                    ))
                };
                match ev {
                    Ok(watcher::Event::Init) => pending = Some(HashMap::new()),
                    Ok(watcher::Event::InitApply(p)) => {
                        if let Some((uid, i)) = info(&p) {
                            pending.get_or_insert_with(HashMap::new).insert(uid, i);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        *pods.0.write() = pending.take().unwrap_or_default()
                    }
                    Ok(watcher::Event::Apply(p)) => {
                        if let Some((uid, i)) = info(&p) {
                            pods.0.write().insert(uid, i);
                        }
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        if let Some(uid) = &p.metadata.uid {
                            pods.0.write().remove(uid);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "container-metrics: pod watch failed; retrying")
                    }
                }
            }
        });
    }
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exporter's routes; the metrics under `metrics_path` (cAdvisor's
/// `--prometheus_endpoint`, `/metrics` by default).
pub fn router(state: Arc<ContainerMetrics>, metrics_path: &str) -> Router {
    Router::new()
        .route(
            metrics_path,
            get(|State(s): State<Arc<ContainerMetrics>>| async move {
                // Reading a few hundred small files: off the async workers.
                let text = tokio::task::spawn_blocking(move || without(s.collect(), &s.disabled))
                    .await
                    .unwrap_or_default();
                ([(header::CONTENT_TYPE, TEXT)], text).into_response()
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/",
            get(|| async {
                axum::response::Html("<h1>vigil container-metrics</h1><p>cAdvisor compatible: <a href=\"metrics\">/metrics</a></p>")
            }),
        )
        .with_state(state)
}
