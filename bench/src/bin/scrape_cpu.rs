//! vigil, Debian's `prometheus` and (when installed) Debian's `victoria-metrics` scrape the
//! same large target side by side; prints CPU seconds per scrape and resident memory of each,
//! and the ratios to vigil.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin scrape_cpu [-- SERIES SECONDS]`
//!
//! Both scrape one target serving SERIES series (default 100000) every 5s. After a warm-up
//! (first scrapes create every series), CPU used over SECONDS (default 60) is read from
//! /proc, and resident memory at the end. Both write their WAL; neither has cut a block yet
//! (that happens after 2h), so this measures the scrape path and the head.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use vigil_bench::{Killed, cpu_seconds, exposition, free_port, rss_bytes, serve, up};

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
    let start: Vec<f64> = servers
        .iter()
        .map(|(_, _, k)| cpu_seconds(k.0.id()).unwrap())
        .collect();
    println!("measuring {seconds}s ...");
    std::thread::sleep(Duration::from_secs(seconds));
    let scrapes = seconds as f64 / 5.0;
    let rows: Vec<(&str, f64, f64)> = servers
        .iter()
        .zip(&start)
        .map(|((name, _, k), s0)| {
            let cpu = (cpu_seconds(k.0.id()).unwrap() - s0) / scrapes;
            let rss = rss_bytes(k.0.id()).unwrap_or(0) as f64 / 1e6;
            (*name, cpu, rss)
        })
        .collect();
    let (vc, vr) = (rows[0].1, rows[0].2);
    println!();
    println!(
        "{:<18} {:>14} {:>8} {:>16} {:>14}",
        "", "CPU s/scrape", "RSS MB", "CPU / vigil's", "RSS / vigil's"
    );
    for (name, cpu, rss) in &rows {
        println!(
            "{name:<18} {cpu:>14.3} {rss:>8.0} {:>16.2} {:>14.2}",
            cpu / vc.max(1e-9),
            rss / vr.max(1e-9)
        );
    }
    println!();
    println!(
        "each appends to its storage and writes its WAL or parts; ratios above 1 mean vigil uses less."
    );
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
