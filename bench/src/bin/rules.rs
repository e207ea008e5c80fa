//! Rule evaluation cost: 1,000 recording rules and 200 alerting rules (20 groups, every 10s)
//! over 100,000 scraped series, in vigil, Debian's Prometheus 2.42 and Debian's vmalert
//! (evaluating against VictoriaMetrics, which scrapes the same targets). One system at a time,
//! so each has the machine to itself.
//!
//! Each system first scrapes for a baseline window with no rules; then the rules are switched
//! on (`POST /-/reload` for vigil and Prometheus, vmalert started beside VictoriaMetrics) and
//! the same window is measured again. Rule CPU = CPU in the rules window minus the baseline;
//! for vmalert it is vmalert's CPU plus what VictoriaMetrics spent above its baseline answering
//! vmalert's queries and storing its results. Rounds are the systems' own iteration counters.
//! Group latency is the mean evaluation time of one group (vigil and Prometheus: every
//! `prometheus_rule_group_last_duration_seconds` seen; vmalert: its
//! `vmalert_iteration_duration_seconds` sum over count).
//!
//! The work is checked, not assumed: the targets' counters grow at known rates, so every
//! system's `bench:requests:rate_sum` must equal the known sum, every system must have
//! recorded the same number of series, and the same number of alerts must be firing.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin rules [-- WINDOW_SECONDS]`

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_bench::servers::urlencode;
use vigil_bench::{cpu_seconds, free_port, http_get, now, spawn};

const TARGETS: usize = 10;
const FAMILIES: usize = 100;
/// code (4) x method (5) x handler (5) series per family on each target.
const PER_FAMILY: usize = 100;
const GROUPS: usize = 20;
const INTERVAL_S: u64 = 10;

/// Per-second rate of series `i` of a family on one target.
fn rate_of(i: usize) -> f64 {
    1.0 + (i % 10) as f64
}

/// The sum of every series' rate in one family over all targets: what
/// `sum(rate(bench_requests_F_total[1m]))` must be.
fn family_rate_sum() -> f64 {
    TARGETS as f64 * (0..PER_FAMILY).map(rate_of).sum::<f64>()
}

/// A target whose counters are `rate * now`, computed per request, so every system sees the
/// same rates whenever it scrapes.
fn serve_counters() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                let t = now();
                let mut body = String::with_capacity(FAMILIES * PER_FAMILY * 90);
                let (codes, methods) = (
                    ["200", "201", "404", "500"],
                    ["GET", "POST", "PUT", "DELETE", "PATCH"],
                );
                for f in 0..FAMILIES {
                    let _ = writeln!(body, "# TYPE bench_requests_{f}_total counter");
                    for i in 0..PER_FAMILY {
                        let _ = writeln!(
                            body,
                            "bench_requests_{f}_total{{code=\"{}\",method=\"{}\",handler=\"/h{}\"}} {:.3}",
                            codes[i % 4],
                            methods[(i / 4) % 5],
                            i / 20,
                            rate_of(i) * t
                        );
                    }
                }
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

/// An Alertmanager stand-in that accepts every notification and counts the requests.
fn serve_alert_sink(count: Arc<AtomicU64>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(s);
                // Keep-alive: answer requests on this connection until it closes.
                loop {
                    let (mut len, mut chunked, mut line) = (0usize, false, String::new());
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                            chunked = true;
                        }
                    }
                    if chunked {
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                            let mut chunk = vec![0u8; n + 2];
                            if r.read_exact(&mut chunk).is_err() {
                                return;
                            }
                            if n == 0 {
                                break;
                            }
                        }
                    } else {
                        let mut body = vec![0u8; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    let reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if r.get_mut().write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The rule file: GROUPS groups of FAMILIES/GROUPS families each; per family ten recording
/// rules of the shapes dashboards and SLOs use, and two alerting rules (one that fires for each
/// code, one that never fires).
fn rule_file() -> String {
    let per_group = FAMILIES / GROUPS;
    let mut out = String::from("groups:\n");
    for g in 0..GROUPS {
        let _ = write!(
            out,
            "  - name: bench-{g}\n    interval: {INTERVAL_S}s\n    rules:\n"
        );
        for f in g * per_group..(g + 1) * per_group {
            let m = format!("bench_requests_{f}_total");
            let records = [
                ("rate_by_code", format!("sum by (code) (rate({m}[1m]))")),
                ("rate_by_method", format!("sum by (method) (rate({m}[1m]))")),
                (
                    "rate_by_instance",
                    format!("sum by (instance) (rate({m}[1m]))"),
                ),
                ("rate_sum", format!("sum(rate({m}[1m]))")),
                ("max_by_handler", format!("max by (handler) ({m})")),
                (
                    "irate_avg",
                    format!("avg by (code, method) (irate({m}[1m]))"),
                ),
                ("busy_series", format!("count by (instance) ({m} > 100)")),
                ("max_rate_by_code", format!("max by (code) (rate({m}[1m]))")),
                (
                    "increase_by_code",
                    format!("sum by (code) (increase({m}[2m]))"),
                ),
                ("rate_p90", format!("quantile(0.9, rate({m}[1m]))")),
            ];
            for (name, expr) in records {
                let _ = write!(
                    out,
                    "      - record: bench:requests:{name}\n        expr: {expr}\n        labels:\n          family: \"{f}\"\n"
                );
            }
            let _ = write!(
                out,
                "      - alert: BenchRequestsFlowing\n        expr: sum by (code) (rate({m}[1m])) > 0\n        for: 30s\n        labels:\n          family: \"{f}\"\n          severity: info\n        annotations:\n          summary: \"code {{{{ $labels.code }}}} at {{{{ $value | humanize }}}} req/s\"\n"
            );
            let _ = write!(
                out,
                "      - alert: BenchCounterHuge\n        expr: max({m}) > 1e15\n        for: 1m\n        labels:\n          family: \"{f}\"\n          severity: page\n        annotations:\n          summary: \"counter at {{{{ $value }}}}\"\n"
            );
        }
    }
    out
}

/// Every sample of `name` in a `/metrics` page, by its label set.
fn samples(port: u16, name: &str) -> HashMap<String, f64> {
    let body = http_get(port, "/metrics").unwrap_or_default();
    body.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
                let (labels, v) = r.split_once("} ")?;
                (labels.to_string(), v)
            } else {
                (String::new(), rest.strip_prefix(' ')?)
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

fn sum(port: u16, name: &str) -> f64 {
    samples(port, name).values().sum()
}

fn instant(port: u16, q: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={}", urlencode(q)))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Outcome {
    rule_cpu_s: f64,
    rounds: f64,
    group_latency_ms: f64,
    recorded_series: f64,
    rate_sum: (f64, f64),
    firing: f64,
    notifications: u64,
}

/// Data in and every 1m rate answerable: each target scraped several times.
fn wait_for_data(port: u16) {
    wait_for("data scraped", Duration::from_secs(180), || {
        instant(
            port,
            "count(count_over_time(bench_requests_0_total[1m]) >= 4)",
        )
        .is_some_and(|n| n >= (TARGETS * PER_FAMILY) as f64)
    });
}

/// What the finished rules window left in the system's storage.
fn checks(port: u16) -> (f64, (f64, f64), f64) {
    let recorded = instant(port, r#"count({__name__=~"bench:requests:.+"})"#).unwrap_or(0.0);
    let rate = (
        instant(port, "min(bench:requests:rate_sum)").unwrap_or(f64::NAN),
        instant(port, "max(bench:requests:rate_sum)").unwrap_or(f64::NAN),
    );
    let firing = instant(port, r#"count(ALERTS{alertstate="firing"})"#).unwrap_or(0.0);
    (recorded, rate, firing)
}

/// vigil or Prometheus: baseline window, reload with the rules, rules window.
fn run_prom_like(bin: &Path, dir: &Path, scrape: &str, sink: u16, window: u64) -> Outcome {
    let port = free_port();
    let cfg = dir.join("config.yml");
    let alerting = format!(
        "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{sink}']\n"
    );
    std::fs::write(&cfg, format!("{scrape}{alerting}")).unwrap();
    let child = spawn(
        bin,
        &[
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--web.enable-lifecycle".into(),
            "--log.level=error".into(),
        ],
    );
    let pid = child.0.id();
    wait_for_data(port);
    let c0 = cpu_seconds(pid).unwrap();
    std::thread::sleep(Duration::from_secs(window));
    let baseline = cpu_seconds(pid).unwrap() - c0;
    std::fs::write(
        &cfg,
        format!("{scrape}{alerting}rule_files:\n  - rules.yml\n"),
    )
    .unwrap();
    let reloaded = Command::new("curl")
        .args(["-s", "-f", "-X", "POST"])
        .arg(format!("http://127.0.0.1:{port}/-/reload"))
        .status()
        .unwrap();
    assert!(reloaded.success(), "reload failed");
    // Every group has started (Prometheus staggers them over one interval).
    wait_for("every group evaluated", Duration::from_secs(60), || {
        samples(port, "prometheus_rule_group_iterations_total").len() == GROUPS
            && samples(port, "prometheus_rule_group_iterations_total")
                .values()
                .all(|n| *n >= 1.0)
    });
    let (c0, i0) = (
        cpu_seconds(pid).unwrap(),
        sum(port, "prometheus_rule_group_iterations_total"),
    );
    let start = Instant::now();
    let mut seen: HashMap<(String, u64), f64> = HashMap::new();
    while start.elapsed() < Duration::from_secs(window) {
        let ts = samples(
            port,
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
        );
        let d = samples(port, "prometheus_rule_group_last_duration_seconds");
        for (group, t) in ts {
            if let Some(v) = d.get(&group) {
                seen.insert((group, t.to_bits()), *v);
            }
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    let rule_cpu = cpu_seconds(pid).unwrap() - c0 - baseline;
    let rounds = (sum(port, "prometheus_rule_group_iterations_total") - i0) / GROUPS as f64;
    let latency = seen.values().sum::<f64>() / seen.len().max(1) as f64 * 1000.0;
    let (recorded, rate_sum, firing) = checks(port);
    drop(child);
    Outcome {
        rule_cpu_s: rule_cpu,
        rounds,
        group_latency_ms: latency,
        recorded_series: recorded,
        rate_sum,
        firing,
        notifications: 0,
    }
}

/// VictoriaMetrics scraping, then vmalert evaluating against it and writing results back.
fn run_vmalert(vm: &Path, dir: &Path, scrape: &str, sink: u16, window: u64) -> Outcome {
    let port = free_port();
    let cfg = dir.join("scrape.yml");
    std::fs::write(&cfg, scrape).unwrap();
    let vm_child = spawn(
        vm,
        &[
            format!("-storageDataPath={}", dir.join("data").display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            format!("-promscrape.config={}", cfg.display()),
            // Answer from the newest samples, as vigil and Prometheus do.
            "-search.latencyOffset=0s".into(),
            "-loggerLevel=ERROR".into(),
        ],
    );
    let vm_pid = vm_child.0.id();
    wait_for_data(port);
    let c0 = cpu_seconds(vm_pid).unwrap();
    std::thread::sleep(Duration::from_secs(window));
    let baseline = cpu_seconds(vm_pid).unwrap() - c0;
    let vmalert_port = free_port();
    let vmalert = spawn(
        Path::new("/usr/bin/vmalert"),
        &[
            format!("-rule={}", dir.join("rules.yml").display()),
            format!("-datasource.url=http://127.0.0.1:{port}"),
            format!("-remoteWrite.url=http://127.0.0.1:{port}"),
            format!("-notifier.url=http://127.0.0.1:{sink}"),
            format!("-httpListenAddr=127.0.0.1:{vmalert_port}"),
            format!("-evaluationInterval={INTERVAL_S}s"),
            "-loggerLevel=ERROR".into(),
        ],
    );
    let va_pid = vmalert.0.id();
    wait_for(
        "every vmalert group evaluated",
        Duration::from_secs(60),
        || {
            let s = samples(vmalert_port, "vmalert_iteration_total");
            s.len() == GROUPS && s.values().all(|n| *n >= 1.0)
        },
    );
    let lat = |p| {
        (
            sum(p, "vmalert_iteration_duration_seconds_sum"),
            sum(p, "vmalert_iteration_duration_seconds_count"),
        )
    };
    let (vm0, va0, i0, l0) = (
        cpu_seconds(vm_pid).unwrap(),
        cpu_seconds(va_pid).unwrap(),
        sum(vmalert_port, "vmalert_iteration_total"),
        lat(vmalert_port),
    );
    std::thread::sleep(Duration::from_secs(window));
    let rule_cpu =
        (cpu_seconds(va_pid).unwrap() - va0) + (cpu_seconds(vm_pid).unwrap() - vm0) - baseline;
    let rounds = (sum(vmalert_port, "vmalert_iteration_total") - i0) / GROUPS as f64;
    let l1 = lat(vmalert_port);
    let latency = (l1.0 - l0.0) / (l1.1 - l0.1).max(1.0) * 1000.0;
    // vmalert's results reach VictoriaMetrics through remote write: let the last batch land.
    std::thread::sleep(Duration::from_secs(3));
    let _ = http_get(port, "/internal/force_flush");
    let (recorded, rate_sum, firing) = checks(port);
    drop(vmalert);
    drop(vm_child);
    Outcome {
        rule_cpu_s: rule_cpu,
        rounds,
        group_latency_ms: latency,
        recorded_series: recorded,
        rate_sum,
        firing,
        notifications: 0,
    }
}

fn main() {
    let window: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    for bin in [
        "/usr/bin/prometheus",
        "/usr/bin/vmalert",
        "/usr/bin/victoria-metrics",
    ] {
        assert!(Path::new(bin).exists(), "install Debian's {bin}");
    }
    let targets: Vec<String> = (0..TARGETS)
        .map(|_| format!("'127.0.0.1:{}'", serve_counters()))
        .collect();
    let scrape = format!(
        "global:\n  scrape_interval: {INTERVAL_S}s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let base = std::env::temp_dir().join(format!("vigil-bench-rules-{}", std::process::id()));
    let rules = rule_file();
    let (records, alerts) = (
        rules.matches("- record:").count(),
        rules.matches("- alert:").count(),
    );
    println!(
        "{records} recording and {alerts} alerting rules in {GROUPS} groups every {INTERVAL_S}s over {} series on {TARGETS} targets; {window}s baseline and {window}s with rules per system\n",
        TARGETS * FAMILIES * PER_FAMILY
    );
    let mut results = Vec::new();
    for name in ["vigil", "prometheus", "vmalert"] {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rules.yml"), &rules).unwrap();
        let notified = Arc::new(AtomicU64::new(0));
        let sink = serve_alert_sink(notified.clone());
        let mut o = match name {
            "vigil" => run_prom_like(&vigil, &dir, &scrape, sink, window),
            "prometheus" => run_prom_like(
                Path::new("/usr/bin/prometheus"),
                &dir,
                &scrape,
                sink,
                window,
            ),
            _ => run_vmalert(
                Path::new("/usr/bin/victoria-metrics"),
                &dir,
                &scrape,
                sink,
                window,
            ),
        };
        o.notifications = notified.load(Ordering::Relaxed);
        println!(
            "{name:<11} rule CPU {:>6.2} s over {:>4.1} rounds = {:>6.3} CPU-s/round; mean group evaluation {:>7.1} ms; recorded series {}, rate_sum {:.1}..{:.1}, firing alerts {}, notification requests {}",
            o.rule_cpu_s,
            o.rounds,
            o.rule_cpu_s / o.rounds,
            o.group_latency_ms,
            o.recorded_series,
            o.rate_sum.0,
            o.rate_sum.1,
            o.firing,
            o.notifications
        );
        results.push((name, o));
        let _ = std::fs::remove_dir_all(&dir);
    }
    let want = family_rate_sum();
    let mut all_ok = true;
    for (name, o) in &results {
        let ok_rate =
            (o.rate_sum.0 - want).abs() / want < 0.01 && (o.rate_sum.1 - want).abs() / want < 0.01;
        let ok = ok_rate
            && o.recorded_series == results[0].1.recorded_series
            && o.recorded_series > 0.0
            && o.firing == results[0].1.firing
            && o.firing > 0.0
            && o.notifications > 0
            && o.rounds >= 1.0;
        if !ok {
            println!(
                "{name}: the work does not check out (want rate_sum {want}, the same series and alerts as vigil, notifications sent)"
            );
        }
        all_ok &= ok;
    }
    let per_round = |i: usize| results[i].1.rule_cpu_s / results[i].1.rounds;
    println!(
        "\nwork checked: {all_ok}; CPU per round vigil/Prometheus {:.2}, vigil/vmalert {:.2}; group latency vigil/Prometheus {:.2}, vigil/vmalert {:.2}",
        per_round(0) / per_round(1),
        per_round(0) / per_round(2),
        results[0].1.group_latency_ms / results[1].1.group_latency_ms,
        results[0].1.group_latency_ms / results[2].1.group_latency_ms,
    );
    let _ = std::fs::remove_dir_all(&base);
    assert!(all_ok, "a system did not do the work");
}
