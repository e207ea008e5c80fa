//! The cpu collector: `/proc/stat`'s per-CPU times in seconds, guest times, and with
//! `--collector.cpu.info` the `/proc/cpuinfo` info series.

use std::collections::HashMap;

use super::{Error, Node, Out, parse_f64, read};

/// USER_HZ: the kernel reports CPU times in 1/100 s on every architecture Linux exports it for.
const USER_HZ: f64 = 100.0;

/// Kept between scrapes: the last time reported per CPU and mode, so a counter the kernel moves
/// backwards (as idle and iowait do on some kernels) is not reported as a reset.
#[derive(Default)]
pub struct State {
    last: HashMap<String, [f64; 10]>,
}

const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

const IDLE: usize = 3;

/// Idle time going back this many seconds or more is a real reset (a CPU hot-plugged back in), not
/// kernel jitter.
const JUMP_BACK_SECONDS: f64 = 3.0;

pub fn cpu(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("stat");
    let s = read(&path)?;
    let mut state = n.cpu_state.lock();
    let mut seen = std::collections::HashSet::new();
    for line in s.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        // The first line, `cpu `, is the sum over CPUs.
        if rest.starts_with(' ') {
            continue;
        }
        let mut f = rest.split_whitespace();
        let Some(id) = f.next() else { continue };
        let mut now = [0.0; 10];
        for (i, v) in f.take(10).enumerate() {
            now[i] = parse_f64(&path, v)? / USER_HZ;
        }
        let kept = state.last.entry(id.to_string()).or_insert(now);
        if kept[IDLE] - now[IDLE] >= JUMP_BACK_SECONDS {
            // Idle far behind what was reported: the CPU was reset, start over from it.
            *kept = now;
        } else {
            for i in 0..10 {
                kept[i] = kept[i].max(now[i]);
            }
        }
        let v = *kept;
        seen.insert(id.to_string());
        for (i, mode) in MODES.iter().enumerate() {
            out.counter(
                "node_cpu_seconds_total",
                "Seconds the CPUs spent in each mode.",
                &[("cpu", id), ("mode", mode)],
                v[i],
            );
        }
        if n.opts.cpu_guest {
            for (i, mode) in [(8, "user"), (9, "nice")] {
                out.counter(
                    "node_cpu_guest_seconds_total",
                    "Seconds the CPUs spent in guests (VMs) for each mode.",
                    &[("cpu", id), ("mode", mode)],
                    v[i],
                );
            }
        }
    }
    // A CPU taken offline is forgotten, so it starts afresh when it comes back.
    state.last.retain(|k, _| seen.contains(k));
    drop(state);
    throttles(n, out);
    isolated(n, out);
    if n.opts.cpu_info {
        info(n, out)?;
    }
    Ok(())
}

/// `/proc/cpuinfo` as node_cpu_info, one series per logical CPU.
fn info(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("cpuinfo");
    let s = read(&path)?;
    for block in s.split("\n\n") {
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for line in block.lines() {
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let Some(cpu) = fields.get("processor") else {
            continue;
        };
        let get = |k: &str| fields.get(k).copied().unwrap_or("");
        out.gauge(
            "node_cpu_info",
            "CPU information from /proc/cpuinfo.",
            &[
                ("cachesize", get("cache size")),
                ("core", get("core id")),
                ("cpu", cpu),
                ("family", get("cpu family")),
                ("microcode", get("microcode")),
                ("model", get("model")),
                ("model_name", get("model name")),
                ("package", get("physical id")),
                ("stepping", get("stepping")),
                ("vendor", get("vendor_id")),
            ],
            1.0,
        );
    }
    Ok(())
}

/// Thermal throttling counts from `/sys/devices/system/cpu/cpu*/thermal_throttle`: per core
/// (once per package and core, whichever of its CPUs is read first) and per package.
fn throttles(n: &Node, out: &mut Out) {
    let dir = n.sys("devices/system/cpu");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut cpus: Vec<(u32, std::path::PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name.strip_prefix("cpu")?.parse().ok()?, e.path()))
        })
        .collect();
    cpus.sort();
    let mut cores = std::collections::BTreeMap::new();
    let mut packages = std::collections::BTreeMap::new();
    for (_, path) in cpus {
        let read = |f: &str| {
            super::attr(&path.join(f)).and_then(|v| v.trim().parse::<f64>().ok().map(|x| (v, x)))
        };
        let (Some((package, _)), Some((core, _))) = (
            read("topology/physical_package_id"),
            read("topology/core_id"),
        ) else {
            continue;
        };
        if let Some((_, v)) = read("thermal_throttle/core_throttle_count") {
            cores.entry((package.clone(), core)).or_insert(v);
        }
        if let Some((_, v)) = read("thermal_throttle/package_throttle_count") {
            packages.entry(package).or_insert(v);
        }
    }
    for ((package, core), v) in cores {
        out.counter(
            "node_cpu_core_throttles_total",
            "Number of times this CPU core has been throttled.",
            &[("core", &core), ("package", &package)],
            v,
        );
    }
    for (package, v) in packages {
        out.counter(
            "node_cpu_package_throttles_total",
            "Number of times this CPU package has been throttled.",
            &[("package", &package)],
            v,
        );
    }
}

/// `/sys/devices/system/cpu/isolated`, a CPU list such as `1-3,6`: one series per isolated CPU.
fn isolated(n: &Node, out: &mut Out) {
    let Some(list) = super::attr(&n.sys("devices/system/cpu/isolated")) else {
        return;
    };
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u32>(), hi.trim().parse::<u32>()) else {
            tracing::debug!("cannot parse the isolated CPU list {list:?}");
            return;
        };
        for cpu in lo..=hi.min(lo.saturating_add(4096)) {
            out.gauge(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                &[("cpu", &cpu.to_string())],
                1.0,
            );
        }
    }
}

/// A frequency file in kHz: absent or not readable by this user is no value (the family is
/// left out for that CPU), anything but a number is an error.
fn khz(path: &std::path::Path) -> Result<Option<f64>, Error> {
    match super::read_bounded(path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map(|v| Some(v as f64 * 1000.0))
            .map_err(|_| Error::Parse {
                path: path.to_path_buf(),
                what: format!("{:?} is not a frequency", s.trim()),
            }),
        Err(e) if super::missing_or_denied(&e) => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `devices/system/cpu/cpu*/cpufreq`: current, minimum and maximum frequencies of the CPU and
/// of its scaling driver, in hertz. As node_exporter 1.5 (procfs 0.8) reads them, the driver's
/// string attributes must all be readable, and every CPU is read before anything is written.
pub fn cpufreq(n: &Node, out: &mut Out) -> Result<(), Error> {
    const FILES: [&str; 6] = [
        "cpuinfo_cur_freq",
        "cpuinfo_min_freq",
        "cpuinfo_max_freq",
        "scaling_cur_freq",
        "scaling_min_freq",
        "scaling_max_freq",
    ];
    let mut cpus = Vec::new();
    for (name, dir) in super::numbered(&n.sys("devices/system/cpu"), "cpu") {
        let freq = dir.join("cpufreq");
        match std::fs::metadata(&freq) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Read { path: freq, source }),
            Ok(_) => {}
        }
        for f in [
            "scaling_available_governors",
            "scaling_driver",
            "scaling_governor",
            "related_cpus",
            "scaling_setspeed",
        ] {
            let p = freq.join(f);
            super::sysread(&p).map_err(|source| Error::Read { path: p, source })?;
        }
        let mut v = [None; 6];
        for (slot, f) in v.iter_mut().zip(FILES) {
            *slot = khz(&freq.join(f))?;
        }
        cpus.push((name["cpu".len()..].to_string(), v));
    }
    let families = [
        (
            "node_cpu_frequency_hertz",
            "Current cpu thread frequency in hertz.",
        ),
        (
            "node_cpu_frequency_min_hertz",
            "Minimum cpu thread frequency in hertz.",
        ),
        (
            "node_cpu_frequency_max_hertz",
            "Maximum cpu thread frequency in hertz.",
        ),
        (
            "node_cpu_scaling_frequency_hertz",
            "Current scaled CPU thread frequency in hertz.",
        ),
        (
            "node_cpu_scaling_frequency_min_hertz",
            "Minimum scaled CPU thread frequency in hertz.",
        ),
        (
            "node_cpu_scaling_frequency_max_hertz",
            "Maximum scaled CPU thread frequency in hertz.",
        ),
    ];
    for (cpu, v) in &cpus {
        for ((name, help), x) in families.iter().zip(v) {
            if let Some(x) = x {
                out.gauge(name, help, &[("cpu", cpu)], *x);
            }
        }
    }
    Ok(())
}
