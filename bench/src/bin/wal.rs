//! WAL cost with and without compression: vigil and Debian's Prometheus 2.42 scrape the same
//! changing targets, each once with `--storage.tsdb.wal-compression` (the default in both) and
//! once with `--no-storage.tsdb.wal-compression`, one run at a time.
//!
//! SERIES series on 10 targets scraped every 5s; the targets' values change at every scrape as
//! real ones do (a quarter each: integer counters, gauges with one decimal, cumulative
//! histogram buckets, counters of full-precision floats). Per run, after the first scrapes
//! (which log the series), a WINDOW of steady scraping measures the WAL bytes written per
//! sample appended (each system's own `prometheus_tsdb_head_samples_appended_total`) and the
//! CPU seconds per million samples. Then the process is killed with SIGKILL and started again
//! on its directory: the WAL replay time, and the check that every sample of the window came
//! back (`count_over_time` over the window before the kill and after the restart must agree,
//! and must equal the samples the window appended).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin wal [-- WINDOW SERIES]`

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_bench::dataset::Rng;
use vigil_bench::servers::urlencode;
use vigil_bench::{
    Killed, cpu_seconds, du, free_port, http_get, instant_at, now, serve_with, spawn,
};

const TARGETS: usize = 10;
const INTERVAL_S: u64 = 5;

/// One target's series and their current values.
struct Target {
    lines: Vec<(String, usize)>,
    values: Vec<f64>,
    rng: Rng,
}

impl Target {
    fn new(series: usize, seed: u64) -> Target {
        let mut lines = Vec::with_capacity(series);
        let mut rng = Rng(seed);
        let mut values = Vec::with_capacity(series);
        let les = [
            "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "+Inf",
        ];
        let per_family = 100;
        for i in 0..series {
            let fam = i / per_family;
            let kind = fam % 4;
            let j = i % per_family;
            let name = [
                "requests_total",
                "temperature_celsius",
                "latency_seconds_bucket",
                "cpu_seconds_total",
            ][kind];
            let labels = if kind == 2 {
                format!(
                    "family=\"{fam}\",pod=\"pod-{}\",le=\"{}\"",
                    j / les.len(),
                    les[j % les.len()]
                )
            } else {
                format!("family=\"{fam}\",pod=\"pod-{j}\",region=\"r{}\"", j % 5)
            };
            lines.push((format!("bench_family_{fam}_{name}{{{labels}}} "), kind));
            values.push(match kind {
                1 => ((rng.unit() * 1000.0).round()) / 10.0,
                3 => rng.unit() * 1000.0,
                _ => (rng.next_u64() % 10_000) as f64,
            });
        }
        Target { lines, values, rng }
    }

    /// The next scrape's body: every value moves as its kind does.
    fn scrape(&mut self) -> String {
        let mut out = String::with_capacity(self.lines.len() * 64);
        for ((prefix, kind), v) in self.lines.iter().zip(self.values.iter_mut()) {
            *v = match kind {
                0 | 2 => *v + (self.rng.next_u64() % 20) as f64,
                1 => (((*v + (self.rng.unit() - 0.5) * 2.0) * 10.0).round() / 10.0)
                    .clamp(-50.0, 150.0),
                _ => *v + self.rng.unit() * 0.37,
            };
            let _ = writeln!(out, "{prefix}{v}");
        }
        out
    }
}

/// The sum of a metric over every label set on a server's `/metrics`.
fn metric_sum(port: u16, name: &str) -> f64 {
    http_get(port, "/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn wait(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Outcome {
    bytes_per_sample: f64,
    cpu_per_million: f64,
    samples: f64,
    replay_s: f64,
}

fn start(name: &str, bin: &Path, dir: &Path, cfg: &Path, port: u16) -> Killed {
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    if name.ends_with("plain") {
        args.push("--no-storage.tsdb.wal-compression".into());
    }
    spawn(bin, &args)
}

fn run(name: &str, bin: &Path, dir: &Path, targets: &[u16], series: usize, window: u64) -> Outcome {
    let cfg = dir.join("config.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: {INTERVAL_S}s\n  scrape_timeout: 4s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{}]\n",
            targets
                .iter()
                .map(|p| format!("'127.0.0.1:{p}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    let port = free_port();
    let mut p = start(name, bin, dir, &cfg, port);
    let appended = || metric_sum(port, "prometheus_tsdb_head_samples_appended_total");
    wait(
        "every series scraped twice",
        Duration::from_secs(120),
        || appended() >= 2.0 * series as f64,
    );
    let wal = dir.join("data/wal");
    let (cpu0, n0, b0) = (cpu_seconds(p.0.id()).unwrap(), appended(), du(&wal));
    let t0 = now();
    std::thread::sleep(Duration::from_secs(window));
    let (cpu1, n1, b1) = (cpu_seconds(p.0.id()).unwrap(), appended(), du(&wal));
    let t1 = now();
    let samples = n1 - n0;
    // The window's samples, as the system answers for them (scrape timestamps fall strictly
    // between the two readings, give or take the scrape in flight at either end).
    let q = format!(
        "sum(count_over_time({{job=\"bench\",__name__=~\"bench_.+\"}}[{}ms]))",
        ((t1 - t0) * 1000.0) as u64
    );
    // Ask 6s later: a scrape that started before t1 is committed by then.
    std::thread::sleep(Duration::from_secs(6));
    let before = instant_at(port, &q, t1).unwrap_or_else(|| {
        panic!(
            "{name}: no count before the kill: {:?}",
            http_get(
                port,
                &format!("/api/v1/query?query={}&time={t1:.3}", urlencode(&q))
            )
        )
    });
    let _ = p.0.kill();
    let _ = p.0.wait();
    let restart = Instant::now();
    let _p = start(name, bin, dir, &cfg, port);
    wait("ready after SIGKILL", Duration::from_secs(600), || {
        vigil_bench::http_get_status(port, "/-/ready") == Some(200)
    });
    let replay_s = restart.elapsed().as_secs_f64();
    let after = instant_at(port, &q, t1).unwrap_or_else(|| {
        panic!(
            "{name}: no count after the restart: {:?}",
            http_get(
                port,
                &format!("/api/v1/query?query={}&time={t1:.3}", urlencode(&q))
            )
        )
    });
    assert_eq!(
        before, after,
        "{name}: samples of the window before SIGKILL and after the restart"
    );
    // Every sample appended in the window is one the query counts, but for the five
    // report series (`up`, ...) of each scrape, within one scrape round at each edge.
    let scrapes = (t1 - t0) / INTERVAL_S as f64;
    let report = (scrapes + 2.0) * (5 * TARGETS) as f64;
    let round = (series + 5 * TARGETS) as f64;
    assert!(
        (before - samples).abs() <= 2.0 * round + report,
        "{name}: {before} samples counted for the window, {samples} appended"
    );
    Outcome {
        bytes_per_sample: (b1 - b0) as f64 / samples,
        cpu_per_million: (cpu1 - cpu0) / samples * 1e6,
        samples,
        replay_s,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let window: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let prometheus = PathBuf::from("/usr/bin/prometheus");
    assert!(prometheus.exists(), "install Debian's prometheus");
    let targets: Vec<u16> = (0..TARGETS)
        .map(|i| {
            let t = Mutex::new(Target::new(series / TARGETS, 0x9e37_79b9 + i as u64));
            serve_with(move || t.lock().unwrap().scrape())
        })
        .collect();
    println!(
        "{series} series on {TARGETS} targets every {INTERVAL_S}s, values changing at every scrape; {window}s measured\n"
    );
    println!(
        "{:<19} {:>13} {:>16} {:>10} {:>12}",
        "system", "WAL B/sample", "CPU-s/M samples", "samples", "replay"
    );
    let base = std::env::temp_dir().join(format!("vigil-bench-wal-{}", std::process::id()));
    let mut out = Vec::new();
    for (name, bin) in [
        ("vigil", &vigil),
        ("vigil plain", &vigil),
        ("prometheus", &prometheus),
        ("prometheus plain", &prometheus),
    ] {
        let dir = base.join(name.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        let o = run(name, bin, &dir, &targets, series, window);
        println!(
            "{name:<19} {:>13.2} {:>16.2} {:>10.0} {:>10.2} s",
            o.bytes_per_sample, o.cpu_per_million, o.samples, o.replay_s
        );
        let _ = std::fs::remove_dir_all(&dir);
        out.push(o);
    }
    let _ = std::fs::remove_dir_all(&base);
    let r = |a: f64, b: f64| a / b;
    println!(
        "\nvigil compressed / plain: {:.2}x the bytes, {:.2}x the CPU",
        r(out[0].bytes_per_sample, out[1].bytes_per_sample),
        r(out[0].cpu_per_million, out[1].cpu_per_million)
    );
    println!(
        "Prometheus compressed / plain: {:.2}x the bytes, {:.2}x the CPU",
        r(out[2].bytes_per_sample, out[3].bytes_per_sample),
        r(out[2].cpu_per_million, out[3].cpu_per_million)
    );
    println!(
        "vigil / Prometheus, both compressed: {:.2}x the WAL bytes, {:.2}x the CPU, {:.2}x the replay time",
        r(out[0].bytes_per_sample, out[2].bytes_per_sample),
        r(out[0].cpu_per_million, out[2].cpu_per_million),
        r(out[0].replay_s, out[2].replay_s)
    );
}
