//! Restart after a clean stop, with and without `--enable-feature=memory-snapshot-on-shutdown`:
//! vigil vs Debian's Prometheus 2.42 on the same data.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin restart [-- SERIES SAMPLES]`
//!
//! Each system, once without the feature and once with it, starts empty and receives SERIES
//! series (default 100,000) with SAMPLES samples each (default 240: an hour at 15s, all in the
//! head) through its remote write receiver, is stopped with SIGTERM (timed: the snapshot is
//! written then), and started again on the same directory with the same flags. Prints the
//! time from start to `/-/ready` answering 200 and the RSS then, after checking that every
//! series and sample is there (`count` and `count_over_time` against what was sent), and the
//! ratios.

use std::process::Command;
use std::time::Instant;

use vigil_bench::restarts::{remote_write_walk, scalar, start, wait_ready};
use vigil_bench::{free_port, rss_bytes};

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let samples: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(240);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-restart-{}", std::process::id()));
    let want_series = series as f64;
    let want_samples = (series as i64 * samples) as f64;
    println!("{series} series x {samples} samples (15s apart) per run, sent by remote write");
    let mut rows = Vec::new();
    for (name, bin) in [
        ("prometheus", vigil_bench::servers::PROMETHEUS.to_string()),
        ("vigil", vigil.display().to_string()),
    ] {
        for snapshot in [false, true] {
            let run = dir.join(format!("{name}-{snapshot}"));
            std::fs::create_dir_all(&run).unwrap();
            let data = run.join("data");
            let extra: &[&str] = if snapshot {
                &["--enable-feature=memory-snapshot-on-shutdown"]
            } else {
                &[]
            };
            let port = free_port();
            let mut child = start(&bin, &data, port, extra, &run.join("first.log"));
            wait_ready(port);
            // Ending now for each run: `count` at the end looks back 5 minutes.
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            // A counter-like walk: values as scrapes give them.
            remote_write_walk(
                port,
                "bench_restart",
                series,
                samples,
                now_ms - samples * 15_000,
                |i, k| ((i as i64 % 13) * k + (k * k) % 7) as f64,
            );
            // Every sample acknowledged is in the head before the stop.
            assert_eq!(
                scalar(port, "sum(count_over_time({job=\"bench\"}[1d]))"),
                want_samples,
                "{name}: samples before the stop"
            );
            let t = Instant::now();
            let st = Command::new("kill")
                .args(["-TERM", &child.0.id().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            child.0.wait().unwrap();
            let stop = t.elapsed();
            drop(child);
            let port = free_port();
            let log = run.join("restart.log");
            let child = start(&bin, &data, port, extra, &log);
            let ready = wait_ready(port);
            // The restart really loaded the snapshot (vigil: "Head snapshot loaded",
            // Prometheus: "Chunk snapshot loaded"), not a fallback to the WAL.
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert_eq!(
                text.to_lowercase().contains("snapshot loaded"),
                snapshot,
                "{name}: snapshot use at restart; log:\n{text:.3000}"
            );
            let rss = rss_bytes(child.0.id()).unwrap_or(0);
            let n = scalar(port, "count({job=\"bench\"})");
            let s = scalar(port, "sum(count_over_time({job=\"bench\"}[1d]))");
            assert_eq!(n, want_series, "{name}: series after the restart");
            assert_eq!(s, want_samples, "{name}: samples after the restart");
            let mode = if snapshot { "snapshot" } else { "WAL replay" };
            println!(
                "{name:<11} {mode:<11} stop {:>6.2}s, ready in {:>6.2}s, RSS {:>5.0} MB ({n} series, {s} samples checked)",
                stop.as_secs_f64(),
                ready.as_secs_f64(),
                rss as f64 / 1e6
            );
            rows.push((name, snapshot, stop, ready, rss));
            drop(child);
            let _ = std::fs::remove_dir_all(&run);
        }
    }
    let find = |name: &str, snap: bool| {
        rows.iter()
            .find(|r| r.0 == name && r.1 == snap)
            .map(|r| (r.2.as_secs_f64(), r.3.as_secs_f64(), r.4 as f64))
            .unwrap()
    };
    println!();
    for snap in [false, true] {
        let (p, v) = (find("prometheus", snap), find("vigil", snap));
        println!(
            "vigil / Prometheus, {}: time to ready {:.2}x, stop {:.2}x, RSS {:.2}x",
            if snap { "snapshot" } else { "WAL replay" },
            v.1 / p.1,
            v.0 / p.0.max(1e-3),
            v.2 / p.2.max(1.0)
        );
    }
    let (v0, v1) = (find("vigil", false), find("vigil", true));
    println!(
        "vigil, snapshot / WAL replay: time to ready {:.2}x",
        v1.1 / v0.1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
