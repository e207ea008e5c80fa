//! Shared pieces of vigil's benchmarks: realistic exposition payloads, process CPU readings.

use std::fmt::Write;

/// A realistic exposition: `series` series spread over counters, gauges, histograms
/// (10 buckets + sum + count) and summaries, with 3–6 labels each, like a busy service's
/// `/metrics`. OpenMetrics adds `# EOF` and `_total` suffixes as the format requires.
pub fn exposition(series: usize, openmetrics: bool) -> String {
    let mut out = String::with_capacity(series * 90);
    let mut n = 0usize;
    let mut family = 0usize;
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let codes = ["200", "201", "404", "500"];
    while n < series {
        let kind = family % 4;
        let name = format!(
            "app_component_{family}_{}",
            [
                "requests",
                "queue_depth",
                "request_duration_seconds",
                "payload_bytes"
            ][kind]
        );
        let _ = writeln!(
            out,
            "# HELP {name} Synthetic family {family} for benchmarks."
        );
        let t = ["counter", "gauge", "histogram", "summary"][kind];
        let _ = writeln!(out, "# TYPE {name} {t}");
        for i in 0..50 {
            if n >= series {
                break;
            }
            let labels = format!(
                "service=\"svc-{}\",method=\"{}\",code=\"{}\",pod=\"pod-{:05}\"",
                i % 7,
                methods[i % 4],
                codes[(i / 4) % 4],
                i * 31 % 10007
            );
            let v = (family * 1000 + i) as f64 * 1.25;
            match kind {
                0 => {
                    let suffix = if openmetrics { "_total" } else { "" };
                    let _ = writeln!(out, "{name}{suffix}{{{labels}}} {v}");
                    n += 1;
                }
                1 => {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                    n += 1;
                }
                2 => {
                    let mut cum = 0u64;
                    for le in [
                        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5",
                        "+Inf",
                    ] {
                        cum += (i as u64 % 13) + 1;
                        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cum}");
                    }
                    let _ = writeln!(out, "{name}_sum{{{labels}}} {v}");
                    let _ = writeln!(out, "{name}_count{{{labels}}} {cum}");
                    n += 12;
                }
                _ => {
                    for q in ["0.5", "0.9", "0.99"] {
                        let _ = writeln!(out, "{name}{{{labels},quantile=\"{q}\"}} {}", v / 3.0);
                    }
                    let _ = writeln!(out, "{name}_sum{{{labels}}} {v}");
                    let _ = writeln!(out, "{name}_count{{{labels}}} {i}");
                    n += 5;
                }
            }
        }
        family += 1;
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// Resident memory of a process in bytes, from `/proc/<pid>/statm`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    Some(s.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}
