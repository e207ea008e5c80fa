//! Queries must not starve ingestion. vigil, then Debian's Prometheus 2.42 (one at a time, the
//! other stopped, so each has the machine to itself), scrape a 100,000-series target every 5s
//! (timeout 4s) while CLIENTS threads of this process send
//! `sum by (code) (rate(<every counter>[1m]))` back to back for SECONDS. Prints, per system:
//! queries answered per second, their latency (median, p99), failed queries, scrapes kept out
//! of those due in the window, the longest scrape, and the peak resident memory; then the
//! ratios. Both answers are compared (same series and values).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin query_overload [-- CLIENTS SECONDS SERIES TARGETS KIND]`
//!
//! The SERIES (default 100,000) are split over TARGETS targets (default 10); scrapes kept
//! and the longest scrape are over all of them. KIND `values` sends
//! `/api/v1/label/pod/values` instead (read without matchers: SERIES / TARGETS values, as
//! every target serves the same `pod` names, told apart by `instance`).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_bench::servers::urlencode;
use vigil_bench::{Killed, free_port, http_get, now, rss_bytes, serve, up};

const QUERY: &str = "sum by (code) (rate(bench_requests_total[1m]))";
const VALUES_PATH: &str = "/api/v1/label/pod/values";

/// What the clients send: the PromQL query, or the label values of `pod`.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Rate,
    Values,
}

impl Kind {
    fn path(self) -> String {
        match self {
            Kind::Rate => format!("/api/v1/query?query={}", urlencode(QUERY)),
            Kind::Values => VALUES_PATH.to_string(),
        }
    }
}

/// SERIES counters of one family, as a busy service's request counters look: the query rates
/// all of them.
fn target_body(series: usize) -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "# HELP bench_requests_total Requests.\n# TYPE bench_requests_total counter\n",
    );
    let (methods, codes) = (
        ["GET", "POST", "PUT", "DELETE"],
        ["200", "201", "404", "500"],
    );
    for i in 0..series {
        let _ = writeln!(
            out,
            "bench_requests_total{{method=\"{}\",code=\"{}\",pod=\"pod-{i:06}\"}} {}",
            methods[i % 4],
            codes[(i / 4) % 4],
            i * 3
        );
    }
    out
}

struct Outcome {
    answered: u64,
    failed: u64,
    qps: f64,
    p50_ms: f64,
    p99_ms: f64,
    scrapes_due: u64,
    scrapes_kept: u64,
    longest_scrape_s: f64,
    peak_rss_mb: f64,
    answer: String,
}

/// One request for `path` over a fresh connection; status code and body.
fn query(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text.split_once("\r\n\r\n")?.1.to_string()))
}

fn instant_value(port: u16, q: &str, t: f64) -> Option<f64> {
    let body = http_get(
        port,
        &format!("/api/v1/query?query={}&time={t}", urlencode(q)),
    )?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn run(
    name: &str,
    mut cmd: Command,
    port: u16,
    clients: usize,
    seconds: u64,
    targets: usize,
    kind: Kind,
) -> Outcome {
    let child = Killed(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let t0 = Instant::now();
    while !up(port) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Warm up: every series created, a few scrapes in the head.
    loop {
        let n = instant_value(port, r#"min(count_over_time(up{job="bench"}[1m]))"#, now());
        if n.is_some_and(|n| n >= 3.0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "{name} did not scrape"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let path = kind.path();
    let (_, answer) = query(port, &path).expect("a first answer");
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let latencies = Arc::new(parking_lot::Mutex::new(Vec::<f64>::new()));
    let start_wall = now();
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, answered, failed, lat, path) = (
                stop.clone(),
                answered.clone(),
                failed.clone(),
                latencies.clone(),
                path.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match query(port, &path) {
                        Some((200, _)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            lat.lock().push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    let mut peak = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        peak = peak.max(rss_bytes(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    // Queries still running when the window closed are counted as they finish.
    for w in workers {
        let _ = w.join();
    }
    let window = start.elapsed().as_secs_f64();
    let end_wall = start_wall + seconds as f64;
    // Let the last scrapes of the window land, then read the system's own record of them.
    std::thread::sleep(Duration::from_secs(6));
    let range = format!("{}s", seconds);
    // Successful scrapes over all targets (up == 1), and those due.
    let kept = instant_value(
        port,
        &format!(r#"sum(sum_over_time(up{{job="bench"}}[{range}]))"#),
        end_wall,
    )
    .unwrap_or(0.0) as u64;
    let longest = instant_value(
        port,
        &format!(r#"max(max_over_time(scrape_duration_seconds{{job="bench"}}[{range}]))"#),
        end_wall,
    )
    .unwrap_or(f64::NAN);
    let mut lat = latencies.lock().clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    drop(child);
    Outcome {
        answered: answered.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        qps: answered.load(Ordering::Relaxed) as f64 / window,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        scrapes_due: targets as u64 * (seconds / 5),
        scrapes_kept: kept,
        longest_scrape_s: longest,
        peak_rss_mb: peak as f64 / 1e6,
        answer,
    }
}

/// The result's series and values (or the label's values), for comparing two systems'
/// answers.
fn canonical(body: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    if let Some(values) = v["data"]
        .as_array()
        .filter(|a| a.iter().all(|x| x.is_string()))
    {
        let mut out: Vec<(String, String)> = values
            .iter()
            .map(|x| (x.as_str().unwrap_or("").to_string(), String::new()))
            .collect();
        out.sort();
        return out;
    }
    let mut out: Vec<(String, String)> = v["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| (s["metric"].to_string(), s["value"][1].to_string()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let targets: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    let kind = match args.next().as_deref() {
        None | Some("rate") => Kind::Rate,
        Some("values") => Kind::Values,
        Some(k) => panic!("KIND is `rate` or `values`, not {k:?}"),
    };
    let what = match kind {
        Kind::Rate => format!("`{QUERY}`"),
        Kind::Values => format!("`{VALUES_PATH}`"),
    };
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let prometheus = PathBuf::from("/usr/bin/prometheus");
    assert!(prometheus.exists(), "install Debian's prometheus");
    let ports: Vec<String> = (0..targets)
        .map(|_| format!("'127.0.0.1:{}'", serve(target_body(series / targets))))
        .collect();
    let dir = std::env::temp_dir().join(format!("vigil-bench-overload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 5s\n  scrape_timeout: 4s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{}]\n", ports.join(", ")),
    )
    .unwrap();
    println!(
        "{series} series on {targets} targets scraped every 5s (timeout 4s); {clients} clients send {what} for {seconds}s\n"
    );
    let mut results = Vec::new();
    for name in ["vigil", "prometheus"] {
        let port = free_port();
        let mut cmd = Command::new(if name == "vigil" { &vigil } else { &prometheus });
        cmd.args([
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join(name).display()),
            "--log.level=error".into(),
        ]);
        let o = run(name, cmd, port, clients, seconds, targets, kind);
        println!(
            "{name:<11} answered {:>6} ({:>6.1}/s), failed {:>4}, latency median {:>7.1} ms, p99 {:>7.1} ms; scrapes kept {}/{}, longest {:.2} s; peak RSS {:.0} MB",
            o.answered,
            o.qps,
            o.failed,
            o.p50_ms,
            o.p99_ms,
            o.scrapes_kept,
            o.scrapes_due,
            o.longest_scrape_s,
            o.peak_rss_mb
        );
        results.push((name, o));
    }
    let (v, p) = (&results[0].1, &results[1].1);
    let same = canonical(&v.answer) == canonical(&p.answer) && !canonical(&v.answer).is_empty();
    println!(
        "\nanswers equal: {same}; queries answered vigil/Prometheus: {:.2}x; median latency Prometheus/vigil: {:.2}x; peak RSS vigil/Prometheus: {:.2}",
        v.qps / p.qps,
        p.p50_ms / v.p50_ms,
        v.peak_rss_mb / p.peak_rss_mb
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(same, "the two systems answered differently");
}
