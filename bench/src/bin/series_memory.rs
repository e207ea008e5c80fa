//! Memory per active series: vigil and Debian's `prometheus` scrape the same target of SERIES
//! series (default 1,000,000) side by side; once both heads hold every series and a few more
//! scrapes have landed, prints each one's resident memory, bytes per head series and the ratio.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin series_memory [-- SERIES SCRAPES]`
//!
//! The scrape interval is 15s (a million-series body is ~115 MB); SCRAPES (default 4) more
//! scrapes are waited for after both heads are full, so the heads hold a few samples per series
//! as they would in steady state. Neither cuts a block (that happens after 2h). Then both are
//! killed with SIGKILL and restarted on their data: the time to `/-/ready` is start-up with that
//! WAL.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_bench::{Killed, exposition, free_port, rss_bytes, self_metric, serve, up};

const INTERVAL_S: u64 = 15;

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let scrapes: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
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

    let body = exposition(series, false);
    println!(
        "target: {series} series ({:.0} MB per scrape), scraped every {INTERVAL_S}s by both",
        body.len() as f64 / 1e6
    );
    let target = serve(body);
    let dir = std::env::temp_dir().join(format!("vigil-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: {INTERVAL_S}s\n  scrape_timeout: {INTERVAL_S}s\nscrape_configs:\n  - job_name: bench\n    sample_limit: 0\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"),
    )
    .unwrap();
    let start = |bin: &PathBuf, port: u16, data: &str| {
        Killed(
            Command::new(bin)
                .args([
                    format!("--config.file={}", cfg.display()),
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    format!("--storage.tsdb.path={}", dir.join(data).display()),
                    "--log.level=warn".into(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (vp, pp) = (free_port(), free_port());
    let v = start(&vigil, vp, "vigil");
    let p = start(&prometheus, pp, "prom");
    while !(up(vp) && up(pp)) {
        std::thread::sleep(Duration::from_millis(200));
    }

    // Wait until both heads hold every series of the target.
    let t0 = Instant::now();
    let head = |port| self_metric(port, "prometheus_tsdb_head_series").unwrap_or(0.0);
    loop {
        let (hv, hp) = (head(vp), head(pp));
        if hv >= series as f64 && hp >= series as f64 {
            println!(
                "both heads full after {:.0}s; waiting {scrapes} more scrapes ...",
                t0.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "heads not full after 10 minutes: vigil {hv}, prometheus {hp}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    std::thread::sleep(Duration::from_secs(scrapes * INTERVAL_S));

    let rows = [("vigil", &v, vp), ("prometheus", &p, pp)].map(|(name, child, port)| {
        let rss = rss_bytes(child.0.id()).unwrap_or(0) as f64;
        let n = head(port);
        (name, rss, n)
    });
    println!();
    println!(
        "{:<12} {:>12} {:>10} {:>16}",
        "", "head series", "RSS MB", "bytes/series"
    );
    for (name, rss, n) in &rows {
        println!(
            "{:<12} {:>12.0} {:>10.0} {:>16.0}",
            name,
            n,
            rss / 1e6,
            rss / n.max(1.0)
        );
    }
    let per = |r: &(&str, f64, f64)| r.1 / r.2.max(1.0);
    println!(
        "{:<12} {:>12} {:>10.2} {:>16.2}",
        "ratio p/v",
        "",
        rows[1].1 / rows[0].1.max(1.0),
        per(&rows[1]) / per(&rows[0]).max(1e-9)
    );
    println!();
    println!("ratios above 1 mean vigil holds the same series in less memory.");
    // Start-up with that WAL: both killed (-9, so nothing is flushed on the way out), then the
    // time from process start to `/-/ready` answering 200, one at a time.
    drop((v, p));
    println!();
    println!("restart on the WAL of this run (kill -9, then time to /-/ready):");
    let mut times = Vec::new();
    for (name, bin, data) in [
        ("vigil", &vigil, "vigil"),
        ("prometheus", &prometheus, "prom"),
    ] {
        let port = free_port();
        let t0 = Instant::now();
        let c = start(bin, port, data);
        loop {
            if vigil_bench::http_get_status(port, "/-/ready") == Some(200) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(600),
                "{name} not ready in 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let t = t0.elapsed();
        println!("{name:<12} {:>8.2} s", t.as_secs_f64());
        times.push(t);
        drop(c);
    }
    println!(
        "ratio p/v    {:>8.2}",
        times[1].as_secs_f64() / times[0].as_secs_f64().max(1e-9)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
