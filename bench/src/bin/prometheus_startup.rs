//! Start-up on a Prometheus data directory: vigil vs Debian's Prometheus 2.42, same directory.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin prometheus_startup [-- SERIES SAMPLES]`
//!
//! Prometheus 2.42 receives SERIES series (default 1,000,000) with SAMPLES samples each
//! (default 10, 15s apart) through its remote write receiver, so they are all in its WAL and
//! head, and is killed with SIGKILL. Two copies of the directory are made; Prometheus restarts
//! on one (replaying its WAL) and vigil starts on the other (reading the WAL and persisting it
//! as blocks). Prints each one's time from start to `/-/ready` answering 200, its RSS then, and
//! the ratio; both are checked to hold every series and sample (`count` and
//! `count_over_time` compared to what was sent). `VIGIL_BENCH_KEEP=1` keeps a pristine copy
//! of the directory for profiling.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use vigil_bench::restarts::{remote_write_walk, scalar, wait_ready};
use vigil_bench::{Killed, free_port, rss_bytes};

fn config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    cfg
}

fn start(bin: &str, data: &Path, port: u16, extra: &[&str]) -> Killed {
    let cfg = config(data.parent().unwrap());
    Killed(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}")),
    )
}

fn cp(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let samples: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-promstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("prom");

    // Fill Prometheus's WAL through its remote write receiver.
    let port = free_port();
    let mut prom = start(
        vigil_bench::servers::PROMETHEUS,
        &data,
        port,
        &["--web.enable-remote-write-receiver"],
    );
    wait_ready(port);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now_ms - samples * 15_000;
    let t = Instant::now();
    remote_write_walk(port, "bench_startup", series, samples, t0, |i, k| {
        (i as i64 * 7 + k) as f64
    });
    println!(
        "{series} series x {samples} samples written to Prometheus 2.42 in {:.0}s; killing it (SIGKILL)",
        t.elapsed().as_secs_f64()
    );
    prom.0.kill().unwrap();
    prom.0.wait().unwrap();
    drop(prom);
    let (pd, vd) = (dir.join("p"), dir.join("v"));
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::create_dir_all(&vd).unwrap();
    cp(&data, &pd.join("data"));
    cp(&data, &vd.join("data"));
    let _ = std::fs::remove_dir_all(&data);
    if std::env::var("VIGIL_BENCH_KEEP").is_ok() {
        // A pristine copy for profiling vigil's start-up by hand.
        cp(&pd.join("data"), &dir.join("pristine"));
        println!("kept: {}", dir.join("pristine").display());
    }

    let want_series = series as f64;
    let want_samples = (series as i64 * samples) as f64;
    let mut rows = Vec::new();
    for (name, bin, d) in [
        (
            "prometheus",
            vigil_bench::servers::PROMETHEUS.to_string(),
            pd.join("data"),
        ),
        ("vigil", vigil.display().to_string(), vd.join("data")),
    ] {
        let port = free_port();
        let child = start(&bin, &d, port, &[]);
        let ready = wait_ready(port);
        let rss = rss_bytes(child.0.id()).unwrap_or(0);
        let peak = vigil_bench::peak_rss_bytes(child.0.id()).unwrap_or(0);
        let n = scalar(port, "count({job=\"bench\"})");
        let s = scalar(port, "sum(count_over_time({job=\"bench\"}[1d]))");
        assert_eq!(n, want_series, "{name}: series after start-up");
        assert_eq!(s, want_samples, "{name}: samples after start-up");
        println!(
            "{name:<11} ready in {:>7.2}s, RSS {:>6.0} MB, peak before ready {:>6.0} MB ({n} series, {s} samples checked)",
            ready.as_secs_f64(),
            rss as f64 / 1e6,
            peak as f64 / 1e6
        );
        rows.push((name, ready, rss, peak));
        drop(child);
    }
    println!(
        "\nvigil / Prometheus: time to ready {:.2}x, RSS {:.2}x, peak RSS {:.2}x",
        rows[1].1.as_secs_f64() / rows[0].1.as_secs_f64(),
        rows[1].2 as f64 / rows[0].2.max(1) as f64,
        rows[1].3 as f64 / rows[0].3.max(1) as f64
    );
    if std::env::var("VIGIL_BENCH_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
