//! vigil and Debian's `prometheus` scrape the same large target side by side; prints CPU
//! seconds per scrape and resident memory of each, and the ratios.
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
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let vigil = root.join("target/release/vigil");
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
    while !(up(vp) && up(pp)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{series} series per scrape, every 5s; warming up 15s (first scrapes create every series) ..."
    );
    std::thread::sleep(Duration::from_secs(15));
    let (v0, p0) = (
        cpu_seconds(v.0.id()).unwrap(),
        cpu_seconds(p.0.id()).unwrap(),
    );
    println!("measuring {seconds}s ...");
    std::thread::sleep(Duration::from_secs(seconds));
    let (v1, p1) = (
        cpu_seconds(v.0.id()).unwrap(),
        cpu_seconds(p.0.id()).unwrap(),
    );
    let scrapes = seconds as f64 / 5.0;
    let (vc, pc) = ((v1 - v0) / scrapes, (p1 - p0) / scrapes);
    let (vr, pr) = (
        rss_bytes(v.0.id()).unwrap_or(0) as f64 / 1e6,
        rss_bytes(p.0.id()).unwrap_or(0) as f64 / 1e6,
    );
    println!();
    println!("{:<12} {:>16} {:>10}", "", "CPU s/scrape", "RSS MB");
    println!("{:<12} {:>16.3} {:>10.0}", "vigil", vc, vr);
    println!("{:<12} {:>16.3} {:>10.0}", "prometheus", pc, pr);
    println!(
        "{:<12} {:>16.2} {:>10.2}",
        "ratio p/v",
        pc / vc.max(1e-9),
        pr / vr.max(1e-9)
    );
    println!();
    println!("both append to their head and write their WAL; ratios above 1 mean vigil uses less.");
    let _ = std::fs::remove_dir_all(&dir);
}
