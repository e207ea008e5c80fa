//! Reading a container's cgroup: cgroup v2 (one unified tree) or v1 (one tree per controller),
//! into the numbers cAdvisor reports. `docs/container-metrics.md` says which file and field
//! each comes from.

use std::path::{Path, PathBuf};

/// A cgroup's readings; `None` where the file is absent (the family is then left out).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub cpu_usage_seconds: Option<f64>,
    /// Nanoseconds per CPU, `cpuacct.usage_percpu` (cgroup v1 only; v2 has no such file).
    pub cpu_per_cpu_ns: Option<Vec<u64>>,
    pub cpu_user_seconds: Option<f64>,
    pub cpu_system_seconds: Option<f64>,
    /// (periods, throttled periods, throttled seconds), only when a quota is set.
    pub cfs: Option<(f64, f64, f64)>,
    pub cpu_quota: Option<f64>,
    pub cpu_period: Option<f64>,
    pub cpu_shares: Option<f64>,
    pub memory_usage: Option<f64>,
    pub memory_working_set: Option<f64>,
    pub memory_rss: Option<f64>,
    pub memory_cache: Option<f64>,
    pub memory_swap: Option<f64>,
    pub memory_failcnt: Option<f64>,
    pub memory_max_usage: Option<f64>,
    pub memory_limit: Option<f64>,
    /// `memory.swap.max` (v2: swap alone) or `memory.memsw.limit_in_bytes` (v1: memory and
    /// swap), 0 when unlimited, as cAdvisor reports them.
    pub memory_swap_limit: Option<f64>,
    /// `memory.min` (v2) or `memory.soft_limit_in_bytes` (v1), 0 when unlimited.
    pub memory_reservation: Option<f64>,
    pub memory_mapped_file: Option<f64>,
    pub memory_active_file: Option<f64>,
    pub memory_inactive_file: Option<f64>,
    /// The cgroups library cAdvisor uses never fills it on v2: 0 there.
    pub memory_kernel_usage: Option<f64>,
    /// `pgfault` and `pgmajfault` of `memory.stat` (cAdvisor reports them for both scopes).
    pub memory_failures: Option<(f64, f64)>,
    /// Processes the OOM killer killed in this cgroup: `oom_kill` of `memory.events.local`
    /// (else `memory.events`; v1: `memory.oom_control`), the machine's count for the root.
    pub oom_kills: Option<f64>,
    /// Pressure stall totals in seconds, (full, some) of cpu, memory and io, where the kernel
    /// has `*.pressure` files (cgroup v2 with PSI); a missing `full` line counts 0.
    pub pressure: Option<[(f64, f64); 3]>,
    /// `pids.current` and `pids.max` (0 for `max`).
    pub threads: Option<(f64, f64)>,
    /// Per `MAJ:MIN`: read bytes, written bytes, reads, writes.
    pub io: Vec<(String, [f64; 4])>,
    pub procs: Vec<u32>,
    /// When the cgroup was created, in Unix seconds (with a fraction, for ordering).
    pub start_time: Option<f64>,
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn number(p: &Path) -> Option<f64> {
    read(p)?.trim().parse().ok()
}

/// `key value` lines.
fn keyed(p: &Path) -> Vec<(String, f64)> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn get(kv: &[(String, f64)], key: &str) -> Option<f64> {
    kv.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// A limit as cAdvisor reports it: `max` (or a value past 2^62, v1's "no limit") is 0.
fn limit(p: &Path) -> Option<f64> {
    let t = read(p)?;
    let t = t.trim();
    if t == "max" {
        return Some(0.0);
    }
    let v: f64 = t.parse().ok()?;
    Some(if v > (1u64 << 62) as f64 { 0.0 } else { v })
}

/// `some`/`full` `total=` (microseconds) of a PSI file, in seconds: (full, some).
fn psi(p: &Path) -> Option<(f64, f64)> {
    let text = read(p)?;
    let total = |kind: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix("total="))?
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |us| us / 1e6)
    };
    Some((total("full"), total("some")))
}

/// The pids controller's counts at `dir`.
fn threads(dir: &Path) -> Option<(f64, f64)> {
    let current = number(&dir.join("pids.current"))?;
    Some((current, limit(&dir.join("pids.max")).unwrap_or(0.0)))
}

fn procs(p: &Path) -> Vec<u32> {
    read(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn mtime(p: &Path) -> Option<f64> {
    let t = std::fs::metadata(p).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64())
}

/// When a cgroup was created, as cAdvisor judges it: the earliest modification time of its
/// directory and of a file the kernel writes once at creation (the directory's own time moves
/// whenever a child cgroup is made). Sub-second precision is kept for ordering.
fn created(dir: &Path, marker: &str) -> Option<f64> {
    match (mtime(dir), mtime(&dir.join(marker))) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Which layout the machine mounts.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// The unified tree at this path.
    V2(PathBuf),
    /// Per-controller trees under this path (`cpu,cpuacct/`, `memory/`, `blkio/`, ...).
    V1(PathBuf),
}

impl Layout {
    /// cgroup v2 when the mount has `cgroup.controllers`, else v1.
    pub fn detect(cgroup_root: &Path) -> Layout {
        if cgroup_root.join("cgroup.controllers").exists() {
            Layout::V2(cgroup_root.to_path_buf())
        } else {
            Layout::V1(cgroup_root.to_path_buf())
        }
    }

    /// The tree whose directories are the cgroups (v1: the cpu accounting one).
    fn walk_root(&self) -> PathBuf {
        match self {
            Layout::V2(r) => r.clone(),
            Layout::V1(r) => ["cpu,cpuacct", "cpuacct", "cpu"]
                .iter()
                .map(|c| r.join(c))
                .find(|p| p.is_dir())
                .unwrap_or_else(|| r.join("cpuacct")),
        }
    }

    /// Every cgroup, as ids (`/`, `/kubepods.slice`, ...), parents before children.
    pub fn cgroups(&self, all: bool) -> Vec<String> {
        let root = self.walk_root();
        let mut out = vec!["/".to_string()];
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut kids: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect();
            kids.sort();
            for k in kids.into_iter().rev() {
                let id = format!("/{}", k.strip_prefix(&root).unwrap_or(&k).to_string_lossy());
                if id.ends_with(".mount") {
                    continue;
                }
                // Like the kubelet: the node root and the pods' subtree, unless asked for all.
                if all || id.starts_with("/kubepods") {
                    out.push(id);
                    stack.push(k);
                }
            }
        }
        out[1..].sort();
        out
    }

    pub fn stats(&self, id: &str, meminfo: &Meminfo) -> Stats {
        match self {
            Layout::V2(root) => v2(root, id, meminfo),
            Layout::V1(root) => v1(root, id, meminfo),
        }
    }
}

fn at(root: &Path, id: &str) -> PathBuf {
    if id == "/" {
        root.to_path_buf()
    } else {
        root.join(id.trim_start_matches('/'))
    }
}

/// `/proc/meminfo`'s totals, in bytes (the v2 root's memory comes partly from there).
#[derive(Debug, Default, Clone)]
pub struct Meminfo {
    pub mem_total: Option<f64>,
    pub swap_total: Option<f64>,
    pub swap_free: Option<f64>,
    /// `oom_kill` of `/proc/vmstat`: every OOM kill on the machine (the root cgroup's).
    pub oom_kills: Option<f64>,
}

impl Meminfo {
    pub fn read(procfs: &Path) -> Meminfo {
        let text = read(&procfs.join("meminfo")).unwrap_or_default();
        let kb = |key: &str| {
            text.lines().find_map(|l| {
                let rest = l.strip_prefix(key)?.strip_prefix(':')?;
                let n: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(n * 1024.0)
            })
        };
        let vmstat = keyed(&procfs.join("vmstat"));
        Meminfo {
            mem_total: kb("MemTotal"),
            swap_total: kb("SwapTotal"),
            swap_free: kb("SwapFree"),
            oom_kills: get(&vmstat, "oom_kill"),
        }
    }
}

/// `cpu.weight` (1..=10000) back to v1 shares, with cAdvisor's linear formula.
fn weight_to_shares(w: f64) -> f64 {
    if !(1.0..=10000.0).contains(&w) {
        return 0.0;
    }
    2.0 + (((w as u64 - 1) * 262142) / 9999) as f64
}

fn v2(root: &Path, id: &str, meminfo: &Meminfo) -> Stats {
    let dir = at(root, id);
    let mut s = Stats::default();
    let cpu = keyed(&dir.join("cpu.stat"));
    s.cpu_usage_seconds = get(&cpu, "usage_usec").map(|v| v / 1e6);
    s.cpu_user_seconds = get(&cpu, "user_usec").map(|v| v / 1e6);
    s.cpu_system_seconds = get(&cpu, "system_usec").map(|v| v / 1e6);
    if let Some(max) = read(&dir.join("cpu.max")) {
        let mut f = max.split_whitespace();
        let quota = f.next().unwrap_or("max");
        s.cpu_period = f.next().and_then(|p| p.parse().ok());
        if quota != "max" {
            s.cpu_quota = quota.parse().ok();
        }
    } else if dir.is_dir() {
        s.cpu_period = Some(0.0);
    }
    if s.cpu_quota.is_some_and(|q| q > 0.0) {
        s.cfs = Some((
            get(&cpu, "nr_periods").unwrap_or(0.0),
            get(&cpu, "nr_throttled").unwrap_or(0.0),
            get(&cpu, "throttled_usec").unwrap_or(0.0) / 1e6,
        ));
    }
    if dir.is_dir() {
        s.cpu_shares = Some(number(&dir.join("cpu.weight")).map_or(0.0, weight_to_shares));
    }
    let mem = keyed(&dir.join("memory.stat"));
    let usage = number(&dir.join("memory.current")).or_else(|| {
        // The root has no memory.current: anon + file, as the cgroups library reports it.
        (id == "/" && !mem.is_empty())
            .then(|| get(&mem, "anon").unwrap_or(0.0) + get(&mem, "file").unwrap_or(0.0))
    });
    if let Some(u) = usage {
        s.memory_usage = Some(u);
        s.memory_working_set = Some(match get(&mem, "inactive_file") {
            Some(i) => (u - i).max(0.0),
            None => u,
        });
        s.memory_rss = Some(get(&mem, "anon").unwrap_or(0.0));
        s.memory_cache = Some(get(&mem, "file").unwrap_or(0.0));
        s.memory_swap = Some(if id == "/" {
            match (meminfo.swap_total, meminfo.swap_free) {
                (Some(t), Some(f)) => (t - f).max(0.0),
                _ => 0.0,
            }
        } else {
            number(&dir.join("memory.swap.current")).unwrap_or(0.0)
        });
        // cgroup v2 counts no limit hits; cAdvisor reports 0.
        s.memory_failcnt = Some(0.0);
        s.memory_max_usage = Some(number(&dir.join("memory.peak")).unwrap_or(0.0));
        s.memory_mapped_file = Some(get(&mem, "file_mapped").unwrap_or(0.0));
        s.memory_active_file = Some(get(&mem, "active_file").unwrap_or(0.0));
        s.memory_inactive_file = Some(get(&mem, "inactive_file").unwrap_or(0.0));
        s.memory_kernel_usage = Some(0.0);
        s.memory_failures = Some((
            get(&mem, "pgfault").unwrap_or(0.0),
            get(&mem, "pgmajfault").unwrap_or(0.0),
        ));
    }
    s.oom_kills = if id == "/" {
        meminfo.oom_kills
    } else {
        // The kills of this cgroup's own processes, as cAdvisor attributes them (it reads
        // them from the kernel log); `memory.events` counts descendants' too.
        let local = keyed(&dir.join("memory.events.local"));
        let events = if local.is_empty() {
            keyed(&dir.join("memory.events"))
        } else {
            local
        };
        get(&events, "oom_kill")
    };
    // Written wherever the cgroup accounts memory, a missing file as 0; the root's swap limit
    // is the machine's swap, as cAdvisor's raw handler gives it.
    if id == "/" {
        s.memory_swap_limit = Some(meminfo.swap_total.unwrap_or(0.0));
        s.memory_reservation = Some(0.0);
    } else if dir.join("memory.max").exists() {
        s.memory_swap_limit = Some(limit(&dir.join("memory.swap.max")).unwrap_or(0.0));
        s.memory_reservation = Some(limit(&dir.join("memory.min")).unwrap_or(0.0));
    }
    if let (Some(c), Some(m), Some(i)) = (
        psi(&dir.join("cpu.pressure")),
        psi(&dir.join("memory.pressure")),
        psi(&dir.join("io.pressure")),
    ) {
        s.pressure = Some([c, m, i]);
    }
    let pids = threads(&dir);
    if let Some(max) = read(&dir.join("memory.max")) {
        s.memory_limit = Some(max.trim().parse().unwrap_or(0.0));
    } else if id == "/" {
        s.memory_limit = meminfo.mem_total;
    }
    s.io = read(&dir.join("io.stat"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let dev = f.next()?;
            dev.contains(':').then_some(())?;
            let mut v = [0.0; 4];
            for kv in f {
                let Some((k, n)) = kv.split_once('=') else {
                    continue;
                };
                let i = match k {
                    "rbytes" => 0,
                    "wbytes" => 1,
                    "rios" => 2,
                    "wios" => 3,
                    _ => continue,
                };
                v[i] = n.parse().unwrap_or(0.0);
            }
            Some((dev.to_string(), v))
        })
        .collect();
    s.procs = procs(&dir.join("cgroup.procs"));
    // Without the pids controller the cgroups library counts `cgroup.procs` (no limit); the
    // root reports none, as cAdvisor's raw handler leaves pids out.
    s.threads = if id == "/" {
        Some((0.0, 0.0))
    } else {
        pids.or_else(|| dir.is_dir().then_some((s.procs.len() as f64, 0.0)))
    };
    s.start_time = created(&dir, "cgroup.events");
    s
}

fn v1(root: &Path, id: &str, meminfo: &Meminfo) -> Stats {
    let ctl = |names: &[&str]| -> PathBuf {
        names
            .iter()
            .map(|c| at(&root.join(c), id))
            .find(|p| p.is_dir())
            .unwrap_or_else(|| at(&root.join(names[0]), id))
    };
    let cpuacct = ctl(&["cpu,cpuacct", "cpuacct"]);
    let cpu = ctl(&["cpu,cpuacct", "cpu"]);
    let memory = ctl(&["memory"]);
    let blkio = ctl(&["blkio"]);
    let mut s = Stats {
        cpu_usage_seconds: number(&cpuacct.join("cpuacct.usage")).map(|ns| ns / 1e9),
        ..Default::default()
    };
    s.cpu_per_cpu_ns = read(&cpuacct.join("cpuacct.usage_percpu")).map(|t| {
        t.split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    });
    let ticks = keyed(&cpuacct.join("cpuacct.stat"));
    // USER_HZ is 100 on every Linux cAdvisor supports.
    s.cpu_user_seconds = get(&ticks, "user").map(|t| t / 100.0);
    s.cpu_system_seconds = get(&ticks, "system").map(|t| t / 100.0);
    let quota = number(&cpu.join("cpu.cfs_quota_us"));
    s.cpu_period = number(&cpu.join("cpu.cfs_period_us"));
    s.cpu_shares = number(&cpu.join("cpu.shares"));
    if let Some(q) = quota.filter(|q| *q > 0.0) {
        s.cpu_quota = Some(q);
        let st = keyed(&cpu.join("cpu.stat"));
        s.cfs = Some((
            get(&st, "nr_periods").unwrap_or(0.0),
            get(&st, "nr_throttled").unwrap_or(0.0),
            get(&st, "throttled_time").unwrap_or(0.0) / 1e9,
        ));
    }
    if let Some(u) = number(&memory.join("memory.usage_in_bytes")) {
        let st = keyed(&memory.join("memory.stat"));
        let pick = |total: &str, local: &str| get(&st, total).or_else(|| get(&st, local));
        s.memory_usage = Some(u);
        s.memory_working_set = Some(match pick("total_inactive_file", "inactive_file") {
            Some(i) => (u - i).max(0.0),
            None => u,
        });
        s.memory_rss = Some(pick("total_rss", "rss").unwrap_or(0.0));
        s.memory_cache = Some(pick("total_cache", "cache").unwrap_or(0.0));
        s.memory_swap = Some(pick("total_swap", "swap").unwrap_or(0.0));
        s.memory_failcnt = Some(number(&memory.join("memory.failcnt")).unwrap_or(0.0));
        s.memory_max_usage = Some(number(&memory.join("memory.max_usage_in_bytes")).unwrap_or(0.0));
        s.memory_mapped_file = Some(pick("total_mapped_file", "mapped_file").unwrap_or(0.0));
        s.memory_active_file = Some(pick("total_active_file", "active_file").unwrap_or(0.0));
        s.memory_inactive_file = Some(pick("total_inactive_file", "inactive_file").unwrap_or(0.0));
        s.memory_kernel_usage =
            Some(number(&memory.join("memory.kmem.usage_in_bytes")).unwrap_or(0.0));
        // The local counters, for both scopes, as cAdvisor reads them (not `total_pgfault`).
        s.memory_failures = Some((
            get(&st, "pgfault").unwrap_or(0.0),
            get(&st, "pgmajfault").unwrap_or(0.0),
        ));
        s.oom_kills = if id == "/" {
            meminfo.oom_kills
        } else {
            get(&keyed(&memory.join("memory.oom_control")), "oom_kill")
        };
    }
    if id == "/" {
        s.memory_swap_limit = Some(meminfo.swap_total.unwrap_or(0.0));
        s.memory_reservation = Some(0.0);
    } else if memory.is_dir() {
        // `memory.memsw.*` exists only with swap accounting on (`swapaccount=1`).
        s.memory_swap_limit =
            Some(limit(&memory.join("memory.memsw.limit_in_bytes")).unwrap_or(0.0));
        s.memory_reservation =
            Some(limit(&memory.join("memory.soft_limit_in_bytes")).unwrap_or(0.0));
    }
    s.threads = Some(if id == "/" {
        (0.0, 0.0)
    } else {
        threads(&ctl(&["pids"])).unwrap_or((0.0, 0.0))
    });
    if let Some(l) = number(&memory.join("memory.limit_in_bytes")) {
        // "No limit" is a huge page-aligned number; cAdvisor reports 0.
        s.memory_limit = Some(if l > (1u64 << 62) as f64 { 0.0 } else { l });
    }
    let bytes = read(&blkio.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
    let ios = read(&blkio.join("blkio.throttle.io_serviced")).unwrap_or_default();
    let mut io: Vec<(String, [f64; 4])> = Vec::new();
    for (text, base) in [(bytes, 0), (ios, 2)] {
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, n] = f[..] else {
                continue;
            };
            let i = match op {
                "Read" => base,
                "Write" => base + 1,
                _ => continue,
            };
            let v = n.parse().unwrap_or(0.0);
            match io.iter_mut().find(|(d, _)| d == dev) {
                Some((_, vals)) => vals[i] = v,
                None => {
                    let mut vals = [0.0; 4];
                    vals[i] = v;
                    io.push((dev.to_string(), vals));
                }
            }
        }
    }
    s.io = io;
    s.procs = procs(&cpuacct.join("cgroup.procs"));
    s.start_time = created(&cpuacct, "cgroup.clone_children");
    s
}

/// `/proc/<pid>/net/dev`: per interface (rx bytes, rx packets, rx errors, rx dropped, tx bytes,
/// tx packets, tx errors, tx dropped), without `lo*`, `veth*` and `docker*`; a malformed file
/// gives nothing.
pub fn net_dev(procfs: &Path, pid: u32) -> Vec<(String, [f64; 8])> {
    let Some(text) = read(&procfs.join(pid.to_string()).join("net/dev")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for l in text.lines().skip(2) {
        let f: Vec<&str> = l.split(':').flat_map(str::split_whitespace).collect();
        if f.len() != 17 {
            return Vec::new();
        }
        let name = f[0];
        let lower = name.to_ascii_lowercase();
        if ["lo", "veth", "docker"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            continue;
        }
        let n = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
        out.push((
            name.to_string(),
            [n(1), n(2), n(3), n(4), n(9), n(10), n(11), n(12)],
        ));
    }
    out
}

/// `MAJ:MIN` → `/dev/<name>` from `/sys/block/*/dev`.
pub fn block_devices(sysfs: &Path) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(sysfs.join("block")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let dev = read(&e.path().join("dev"))?;
            Some((
                dev.trim().to_string(),
                format!("/dev/{}", e.file_name().to_string_lossy()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_from_weight() {
        assert_eq!(weight_to_shares(1.0), 2.0);
        assert_eq!(weight_to_shares(39.0), 998.0);
        assert_eq!(weight_to_shares(100.0), 2597.0);
        assert_eq!(weight_to_shares(0.0), 0.0);
    }
}
