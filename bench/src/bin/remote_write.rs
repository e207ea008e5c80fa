//! Remote write cost: 100,000 series on 10 targets scraped every 5s, each system remote-writing
//! to its own fresh VictoriaMetrics: vigil (server and `--agent`), Debian's Prometheus 2.42
//! (server and `--enable-feature=agent`) and Debian's vmagent, one at a time so each has the
//! machine to itself.
//!
//! Per system: after a warm-up, a WINDOW of steady sending measures the sender's CPU seconds
//! per million samples the receiver stored (VictoriaMetrics's own count of rows it inserted
//! from remote write, so the work is counted by the receiver, not claimed by the sender), the
//! bytes on the wire (the receiver's count of bytes read) and the sender's peak RSS, split
//! into anonymous memory (heap, stacks: what the sender holds) and file-backed pages (its
//! binary's code and read-only data, which the kernel can drop and read again). Then the
//! receiver is stopped for OUTAGE seconds and started again: catch-up is the time from its
//! restart until it holds every `up` sample of the outage, and loss is how many of those it
//! never gets (each scrape of each target writes one).
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin remote_write [-- WINDOW OUTAGE [SENDERS]]`
//! (SENDERS: a comma-separated subset, e.g. `vigil-agent,vmagent`; ratios are printed only
//! when all run; VIGIL_BENCH_BIN names another vigil binary or a wrapper script)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vigil_bench::{
    Killed, cpu_seconds, exposition, free_port, http_get, instant_at, now, proc_status_bytes,
    rss_bytes, serve, spawn,
};

const TARGETS: usize = 10;
const SERIES: usize = 100_000;
const INTERVAL_S: u64 = 5;

/// The sum of a metric's samples on a `/metrics` page (every label set).
fn metric_sum(port: u16, name: &str) -> f64 {
    http_get(port, "/metrics")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| !l.contains("type=\"") || l.contains("type=\"promremotewrite\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// VictoriaMetrics on `dir`, answering from the newest samples.
fn victoria_metrics(dir: &Path, port: u16) -> Killed {
    let k = spawn(
        Path::new("/usr/bin/victoria-metrics"),
        &[
            format!("-storageDataPath={}", dir.display()),
            format!("-httpListenAddr=127.0.0.1:{port}"),
            "-search.latencyOffset=0s".into(),
            "-search.disableCache".into(),
            "-retentionPeriod=100y".into(),
        ],
    );
    let t = Instant::now();
    while http_get(port, "/health").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "VictoriaMetrics did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    k
}

/// Stop with SIGTERM (VictoriaMetrics flushes what it acknowledged) and wait.
fn terminate(mut k: Killed) {
    let _ = Command::new("kill")
        .args(["-TERM", &k.0.id().to_string()])
        .status();
    let _ = k.0.wait();
}

struct Outcome {
    cpu_per_million: f64,
    samples_per_s: f64,
    bytes_per_sample: f64,
    peak_rss_mb: f64,
    /// At the peak: anonymous and file-backed resident memory.
    peak_anon_mb: f64,
    peak_file_mb: f64,
    catch_up_s: f64,
    lost: i64,
}

fn run(name: &str, dir: &Path, targets: &[String], window: u64, outage: u64) -> Outcome {
    let vm_port = free_port();
    let vm_dir = dir.join("vm");
    let vm = victoria_metrics(&vm_dir, vm_port);
    let url = format!("http://127.0.0.1:{vm_port}/api/v1/write");
    let scrape = format!(
        "global:\n  scrape_interval: {INTERVAL_S}s\n  scrape_timeout: 4s\nscrape_configs:\n  - job_name: bench\n    static_configs:\n      - targets: [{}]\n",
        targets.join(", ")
    );
    let cfg = dir.join("config.yml");
    let port = free_port();
    let sender = match name {
        "vmagent" => {
            std::fs::write(&cfg, &scrape).unwrap();
            spawn(
                Path::new("/usr/bin/vmagent"),
                &[
                    format!("-promscrape.config={}", cfg.display()),
                    format!("-remoteWrite.url={url}"),
                    format!("-remoteWrite.tmpDataPath={}", dir.join("vmagent").display()),
                    format!("-httpListenAddr=127.0.0.1:{port}"),
                    "-loggerLevel=ERROR".into(),
                ],
            )
        }
        _ => {
            std::fs::write(&cfg, format!("{scrape}remote_write:\n  - url: {url}\n")).unwrap();
            let bin = if name.starts_with("vigil") {
                vigil_bench::vigil_binary()
            } else {
                PathBuf::from("/usr/bin/prometheus")
            };
            let mut args = vec![
                format!("--config.file={}", cfg.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=error".into(),
            ];
            if name == "vigil-agent" {
                args.push("--agent".into());
                args.push(format!(
                    "--storage.agent.path={}",
                    dir.join("data").display()
                ));
            } else if name == "prometheus-agent" {
                args.push("--enable-feature=agent".into());
                args.push(format!(
                    "--storage.agent.path={}",
                    dir.join("data").display()
                ));
            } else {
                args.push(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ));
            }
            spawn(&bin, &args)
        }
    };
    let pid = sender.0.id();
    // Warm-up: every series has reached the receiver a few times.
    let t0 = Instant::now();
    loop {
        let n = instant_at(
            vm_port,
            r#"count(count_over_time(up{job="bench"}[1m]) >= 3)"#,
            now(),
        );
        if n.is_some_and(|n| n >= TARGETS as f64) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "{name}: no data reached the receiver"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let rows = |p| metric_sum(p, "vm_rows_inserted_total");
    let bytes = |p| metric_sum(p, "vm_tcplistener_read_bytes_total");
    let (c0, r0, b0) = (cpu_seconds(pid).unwrap(), rows(vm_port), bytes(vm_port));
    let start = Instant::now();
    let (mut peak, mut anon, mut file) = (0u64, 0u64, 0u64);
    while start.elapsed() < Duration::from_secs(window) {
        let now = rss_bytes(pid).unwrap_or(0);
        if now > peak {
            peak = now;
            anon = proc_status_bytes(pid, "RssAnon").unwrap_or(0);
            file = proc_status_bytes(pid, "RssFile").unwrap_or(0);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = start.elapsed().as_secs_f64();
    let (c1, r1, b1) = (cpu_seconds(pid).unwrap(), rows(vm_port), bytes(vm_port));
    let sent = r1 - r0;
    assert!(sent > 0.0, "{name}: the receiver stored nothing");

    // The outage.
    terminate(vm);
    let down = now();
    std::thread::sleep(Duration::from_secs(outage));
    let up_again = now();
    let vm = victoria_metrics(&vm_dir, vm_port);
    let restarted = Instant::now();
    // Every scrape of every target in the outage (less the one in flight at each edge).
    let expected = (TARGETS as u64 * outage / INTERVAL_S) as i64;
    let q = format!(
        r#"sum(count_over_time(up{{job="bench"}}[{}ms]))"#,
        ((up_again - down) * 1000.0) as i64
    );
    let mut got = 0i64;
    let mut catch_up = f64::NAN;
    while restarted.elapsed() < Duration::from_secs(outage.max(60) * 3) {
        let _ = http_get(vm_port, "/internal/force_flush");
        got = instant_at(vm_port, &q, up_again).unwrap_or(0.0) as i64;
        if got >= expected - TARGETS as i64 {
            catch_up = restarted.elapsed().as_secs_f64();
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(sender);
    drop(vm);
    Outcome {
        cpu_per_million: (c1 - c0) / (sent / 1e6),
        samples_per_s: sent / secs,
        bytes_per_sample: (b1 - b0) / sent,
        peak_rss_mb: peak as f64 / 1e6,
        peak_anon_mb: anon as f64 / 1e6,
        peak_file_mb: file as f64 / 1e6,
        catch_up_s: catch_up,
        lost: (expected - TARGETS as i64 - got).max(0),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let window: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let outage: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120);
    // Optional: a comma-separated subset of the senders (the ratios need all of them).
    let only: Option<Vec<String>> = args
        .next()
        .map(|s| s.split(',').map(str::to_string).collect());
    assert!(
        vigil_bench::vigil_binary().exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    for bin in [
        "/usr/bin/prometheus",
        "/usr/bin/vmagent",
        "/usr/bin/victoria-metrics",
    ] {
        assert!(Path::new(bin).exists(), "install Debian's {bin}");
    }
    let body = exposition(SERIES / TARGETS, false);
    let targets: Vec<String> = (0..TARGETS)
        .map(|_| format!("'127.0.0.1:{}'", serve(body.clone())))
        .collect();
    println!(
        "{SERIES} series on {TARGETS} targets every {INTERVAL_S}s, remote-written to VictoriaMetrics; {window}s measured, then a {outage}s receiver outage\n"
    );
    println!(
        "{:<17} {:>14} {:>10} {:>13} {:>9} {:>15} {:>10} {:>6}",
        "sender",
        "CPU-s/M samples",
        "samples/s",
        "bytes/sample",
        "peak RSS",
        "(anon + file)",
        "catch-up",
        "lost"
    );
    let base = std::env::temp_dir().join(format!("vigil-bench-rw-{}", std::process::id()));
    let mut results = Vec::new();
    for name in [
        "vigil",
        "vigil-agent",
        "prometheus",
        "prometheus-agent",
        "vmagent",
    ] {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let o = run(name, &dir, &targets, window, outage);
        println!(
            "{name:<17} {:>14.2} {:>10.0} {:>13.2} {:>6.0} MB {:>6.0} + {:>3.0} MB {:>8.1} s {:>6}",
            o.cpu_per_million,
            o.samples_per_s,
            o.bytes_per_sample,
            o.peak_rss_mb,
            o.peak_anon_mb,
            o.peak_file_mb,
            o.catch_up_s,
            o.lost
        );
        let _ = std::fs::remove_dir_all(&dir);
        results.push((name, o));
    }
    let find = |n: &str| results.iter().find(|(m, _)| *m == n).map(|(_, o)| o);
    if let (Some(a), Some(vm)) = (find("vigil-agent"), find("vmagent")) {
        println!(
            "vigil agent / vmagent: peak RSS {:.2}, anonymous memory at the peak {:.2}, file-backed {:.2}",
            a.peak_rss_mb / vm.peak_rss_mb,
            a.peak_anon_mb / vm.peak_anon_mb,
            a.peak_file_mb / vm.peak_file_mb,
        );
    }
    if only.is_some() {
        let _ = std::fs::remove_dir_all(&base);
        return;
    }
    let get = |n: &str| &results.iter().find(|(m, _)| *m == n).unwrap().1;
    let v = get("vigil");
    let a = get("vigil-agent");
    println!(
        "agents: CPU per sample vigil/Prometheus {:.2}, vigil/vmagent {:.2}; peak RSS vigil/Prometheus {:.2}, vigil/vmagent {:.2}",
        a.cpu_per_million / get("prometheus-agent").cpu_per_million,
        a.cpu_per_million / get("vmagent").cpu_per_million,
        a.peak_rss_mb / get("prometheus-agent").peak_rss_mb,
        a.peak_rss_mb / get("vmagent").peak_rss_mb,
    );
    println!(
        "\nCPU per sample vigil/Prometheus {:.2}, vigil/Prometheus agent {:.2}, vigil/vmagent {:.2}; peak RSS vigil/Prometheus {:.2}, vigil/vmagent {:.2}; catch-up vigil/Prometheus {:.2}",
        v.cpu_per_million / get("prometheus").cpu_per_million,
        v.cpu_per_million / get("prometheus-agent").cpu_per_million,
        v.cpu_per_million / get("vmagent").cpu_per_million,
        v.peak_rss_mb / get("prometheus").peak_rss_mb,
        v.peak_rss_mb / get("vmagent").peak_rss_mb,
        v.catch_up_s / get("prometheus").catch_up_s,
    );
    let _ = std::fs::remove_dir_all(&base);
}
