//! Shared pieces of vigil's benchmarks: realistic exposition payloads, process CPU readings,
//! a static target server and child processes.

pub mod compare;
pub mod dataset;
pub mod fleet;
pub mod querygen;
pub mod restarts;
pub mod servers;

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::TcpListener;
use std::process::Child;

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

/// A field of `/proc/<pid>/status` in bytes (`VmHWM`, `RssAnon`, ...).
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Peak resident memory of a process in bytes (`VmHWM`).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    proc_status_bytes(pid, "VmHWM")
}

/// A child process killed (and reaped) when dropped, so a failed benchmark leaves nothing behind.
pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `bin` with `args`, its output discarded, killed when dropped.
pub fn spawn(bin: &std::path::Path, args: &[String]) -> Killed {
    Killed(
        std::process::Command::new(bin)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display())),
    )
}

/// The vigil binary a benchmark runs: `target/release/vigil`, or the one `VIGIL_BENCH_BIN`
/// names (another build to compare, or a wrapper script such as one running it under
/// heaptrack).
pub fn vigil_binary() -> std::path::PathBuf {
    std::env::var_os("VIGIL_BENCH_BIN").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/vigil"),
        std::path::PathBuf::from,
    )
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Serve `body` as a text-format `/metrics` on a loopback port (one thread per connection).
pub fn serve(body: String) -> u16 {
    let body: &'static str = Box::leak(body.into_boxed_str());
    serve_with(move || body.to_string())
}

/// Serve what `scrape` returns, called once per request, as a text-format `/metrics` on a
/// loopback port (one thread per connection): a target whose values change between scrapes.
pub fn serve_with(scrape: impl Fn() -> String + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let scrape = std::sync::Arc::new(scrape);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let scrape = scrape.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                let body = scrape();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(body.as_bytes());
            });
        }
    });
    port
}

/// Seconds since the Unix epoch, as the HTTP API's times are written.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Bytes of the files under `p` (0 if it does not exist).
pub fn du(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => du(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// The first value of an instant query at time `t`, if there is one.
pub fn instant_at(port: u16, q: &str, t: f64) -> Option<f64> {
    let body = http_get(
        port,
        &format!("/api/v1/query?query={}&time={t:.3}", servers::urlencode(q)),
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Whether something listens on the loopback port.
pub fn up(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// GET `path` from a loopback port with a bare HTTP/1.0 request; the response body, if any.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// The value of an unlabelled metric in a server's own `/metrics` (e.g.
/// `prometheus_tsdb_head_series`), as both vigil and Prometheus expose them.
pub fn self_metric(port: u16, name: &str) -> Option<f64> {
    let body = http_get(port, "/metrics")?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The HTTP status of a GET on a loopback port, if it answered.
pub fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}
