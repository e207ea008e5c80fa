//! The exporter's own families: `node_exporter_build_info` (always, since dashboards list
//! instances by it) and, unless `--web.disable-exporter-metrics`, `process_*` and the
//! `promhttp_*` request counters. node_exporter's `go_*` runtime families have no meaning for
//! a Rust process and are not written.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::Out;

/// `/metrics` requests, as promhttp counts them.
#[derive(Default)]
pub struct HttpStats {
    pub in_flight: AtomicI64,
    /// Completed requests answered 200, 500 and 503.
    pub by_code: [AtomicU64; 3],
}

/// Counts a scrape in flight until dropped.
pub struct InFlight<'a>(&'a HttpStats);

impl<'a> InFlight<'a> {
    pub fn enter(h: &'a HttpStats) -> Self {
        h.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(h)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub const CODES: [&str; 3] = ["200", "500", "503"];

pub fn build_info(out: &mut Out) {
    let arch = crate::exposition::go_arch();
    out.gauge(
        "node_exporter_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
        &[
            ("branch", ""),
            ("goarch", arch),
            ("goos", std::env::consts::OS),
            ("goversion", ""),
            ("revision", "vigil"),
            ("version", env!("CARGO_PKG_VERSION")),
        ],
        1.0,
    );
}

pub fn exporter_metrics(started: f64, http: &HttpStats, out: &mut Out) {
    for (i, code) in CODES.iter().enumerate() {
        out.counter(
            "promhttp_metric_handler_requests_total",
            "Total number of scrapes by HTTP status code.",
            &[("code", code)],
            http.by_code[i].load(Ordering::Relaxed) as f64,
        );
    }
    // Gathering cannot fail here (a failing collector is reported by its success series)
    // and encoding is to a string: these stay 0, as they do for a healthy node_exporter.
    for cause in ["encoding", "gathering"] {
        out.counter(
            "promhttp_metric_handler_errors_total",
            "Total number of internal errors encountered by the promhttp metric handler.",
            &[("cause", cause)],
            0.0,
        );
    }
    out.gauge(
        "promhttp_metric_handler_requests_in_flight",
        "Current number of scrapes being served.",
        &[],
        http.in_flight.load(Ordering::Relaxed) as f64,
    );
    out.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[],
        started,
    );
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..))
            .unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let (hz, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if f.len() > 21 {
            out.counter(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                &[],
                (f[11] + f[12]) / hz.max(1) as f64,
            );
            out.gauge(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[],
                f[20],
            );
            out.gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[],
                f[21] * page as f64,
            );
        }
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        out.gauge(
            "process_open_fds",
            "Number of open file descriptors.",
            &[],
            d.count() as f64,
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        for (prefix, name, help) in [
            (
                "Max open files",
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            (
                "Max address space",
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
            ),
        ] {
            if let Some(soft) = limits
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .and_then(|r| r.split_whitespace().next())
            {
                // "unlimited" is written as Go's client writes it: the largest u64.
                let v = soft.parse::<f64>().unwrap_or(u64::MAX as f64);
                out.gauge(name, help, &[], v);
            }
        }
    }
}
