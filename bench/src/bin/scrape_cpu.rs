//! vigil, Debian's `prometheus` and (when installed) Debian's `victoria-metrics` scrape the
//! same large target side by side; prints CPU seconds per scrape and resident memory of each,
//! and the ratios to vigil.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin scrape_cpu [-- SERIES SECONDS]`
//!
//! Both scrape one target serving SERIES series (default 100000) every 5s. After a warm-up
//! (first scrapes create every series), CPU used over SECONDS (default 60) is read from
//! /proc, and resident memory at the end and at its peak (`VmHWM`). Both write their WAL;
//! neither has cut a block yet (that happens after 2h), so this measures the scrape path and
//! the head.
//!
//! Each system is then asked how many scrapes of the window it stored (`up` samples, by
//! PromQL) and how many samples it appended over the window (its own counter:
//! `prometheus_tsdb_head_samples_appended_total`, VictoriaMetrics'
//! `vm_rows_inserted_total{type="promscrape"}`): the run fails unless every one appended every
//! series of each of its scrapes and scraped about as often as configured, so a system that
//! skipped work cannot look cheap.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use vigil_bench::{
    Killed, cpu_seconds, exposition, free_port, proc_status_bytes, rss_bytes, serve, up,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let prometheus = PathBuf::from("/usr/bin/prometheus");
    assert!(
        prometheus.exists(),
        "install Debian's prometheus: apt-get install prometheus"
    );

    let target = serve(exposition(series, false));
    let dir = std::env::temp_dir().join(format!("vigil-bench-scrape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n  - job_name: bench\n    sample_limit: 0\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"),
    )
    .unwrap();
    let (vp, pp) = (free_port(), free_port());
    let v = Killed(
        Command::new(&vigil)
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--web.listen-address=127.0.0.1:{vp}"),
                format!("--storage.tsdb.path={}", dir.join("vigil").display()),
                "--log.level=warn".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let p = Killed(
        Command::new(&prometheus)
            .args([
                format!("--config.file={}", cfg.display()),
                format!("--web.listen-address=127.0.0.1:{pp}"),
                format!("--storage.tsdb.path={}", dir.join("prom").display()),
                "--log.level=warn".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut servers: Vec<(&str, u16, Killed)> = vec![("vigil", vp, v), ("prometheus", pp, p)];
    if let Some(vm) = vigil_bench::servers::victoria_metrics() {
        let port = free_port();
        let c = Command::new(vm)
            .args([
                format!("-promscrape.config={}", cfg.display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                format!("-storageDataPath={}", dir.join("vm").display()),
                "-loggerLevel=ERROR".into(),
                // Answer queries up to now (the default leaves out the last 30s).
                "-search.latencyOffset=1s".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push(("victoria-metrics", port, Killed(c)));
    }
    while !servers.iter().all(|(_, port, _)| up(*port)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{series} series per scrape, every 5s, {} scrapers; warming up 15s (first scrapes create every series) ...",
        servers.len()
    );
    std::thread::sleep(Duration::from_secs(15));
    let appended = |name: &str, port: u16| -> f64 {
        let (metric, kind) = if name == "victoria-metrics" {
            ("vm_rows_inserted_total", Some("type=\"promscrape\""))
        } else {
            ("prometheus_tsdb_head_samples_appended_total", None)
        };
        vigil_bench::http_get(port, "/metrics")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
            .filter(|l| kind.is_none_or(|k| l.contains(k)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let appended0: Vec<f64> = servers.iter().map(|(n, p, _)| appended(n, *p)).collect();
    let start: Vec<f64> = servers
        .iter()
        .map(|(_, _, k)| cpu_seconds(k.0.id()).unwrap())
        .collect();
    println!("measuring {seconds}s ...");
    let window_start = vigil_bench::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let window_end = vigil_bench::now();
    let cpu_end: Vec<f64> = servers
        .iter()
        .map(|(_, _, k)| cpu_seconds(k.0.id()).unwrap())
        .collect();
    let appended1: Vec<f64> = servers.iter().map(|(n, p, _)| appended(n, *p)).collect();
    let scrapes = seconds as f64 / 5.0;
    // RSS at the end, and the peak since start (VmHWM): a reading between scrapes does not
    // show the buffers a scrape holds while it runs.
    let rows: Vec<(&str, f64, f64, f64)> = servers
        .iter()
        .zip(start.iter().zip(&cpu_end))
        .map(|((name, _, k), (s0, s1))| {
            let cpu = (s1 - s0) / scrapes;
            let rss = rss_bytes(k.0.id()).unwrap_or(0) as f64 / 1e6;
            let peak = proc_status_bytes(k.0.id(), "VmHWM").unwrap_or(0) as f64 / 1e6;
            (*name, cpu, rss, peak)
        })
        .collect();
    let (vc, vr, vp) = (rows[0].1, rows[0].2, rows[0].3);
    println!();
    println!(
        "{:<18} {:>14} {:>8} {:>8} {:>16} {:>14} {:>15}",
        "", "CPU s/scrape", "RSS MB", "peak MB", "CPU / vigil's", "RSS / vigil's", "peak / vigil's"
    );
    for (name, cpu, rss, peak) in &rows {
        println!(
            "{name:<18} {cpu:>14.3} {rss:>8.0} {peak:>8.0} {:>16.2} {:>14.2} {:>15.2}",
            cpu / vc.max(1e-9),
            rss / vr.max(1e-9),
            peak / vp.max(1e-9)
        );
    }
    println!();
    println!(
        "each appends to its storage and writes its WAL or parts; ratios above 1 mean vigil uses less."
    );
    // What each really stored over the window (queried after the CPU reading).
    std::thread::sleep(Duration::from_secs(3));
    let range = format!("{}s", (window_end - window_start).round() as u64);
    let expected = (window_end - window_start) / 5.0;
    println!();
    println!(
        "{:<18} {:>16} {:>22} {:>22}",
        "in the window", "scrapes (up)", "samples appended", "per scrape"
    );
    let mut short = Vec::new();
    for (i, (name, port, _)) in servers.iter().enumerate() {
        let e = format!("sum(count_over_time(up{{job=\"bench\"}}[{range}]))");
        let scrapes = vigil_bench::instant_at(*port, &e, window_end).unwrap_or(0.0);
        let samples = appended1[i] - appended0[i];
        let per = samples / scrapes.max(1.0);
        println!("{name:<18} {scrapes:>16} {samples:>22} {per:>22.0}");
        // Scrape times are not aligned to the window: one scrape more or less is normal, and
        // the counters are read a moment apart from the window's edges.
        if scrapes < expected - 1.5 || samples < (scrapes - 1.0) * series as f64 {
            short.push(*name);
        }
    }
    assert!(
        short.is_empty(),
        "{short:?} did not store every series of about {expected:.0} scrapes: their figures above measure less work"
    );
    println!(
        "every system stored all {series} series of each of its scrapes (about {expected:.0} expected)."
    );
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
