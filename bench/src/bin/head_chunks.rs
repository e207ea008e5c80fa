//! Memory of a head holding hours of samples: vigil (full head chunks written to files and
//! read through mmap) vs Debian's Prometheus 2.42 (its `chunks_head`) on the same data.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin head_chunks [-- SERIES SAMPLES [SYSTEMS]]`
//!
//! Each system starts empty and receives SERIES series (default 100,000) with SAMPLES samples
//! each (default 480: two hours at 15s, ending now, so every sample is in the head and most of
//! them in full chunks) through its remote write receiver. After a few seconds for each to
//! settle it reads anonymous memory (`RssAnon`: the heap, what the head's chunks cost when
//! kept in memory) and RSS (which also counts the program's own pages and those of mapped
//! files read), then checks that every series and sample is there (`count` and
//! `count_over_time` against what was sent), and prints both and the ratios.
//! `VIGIL_BENCH_BIN` runs another vigil build (A/B); SYSTEMS (default `prometheus,vigil`)
//! picks which run (the ratios need both).

use vigil_bench::restarts::{remote_write_walk, scalar, start, wait_ready};
use vigil_bench::{free_port, proc_status_bytes, rss_bytes};

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let samples: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(480);
    let systems = args.next().unwrap_or_else(|| "prometheus,vigil".into());
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-head-chunks-{}", std::process::id()));
    let want_series = series as f64;
    let want_samples = (series as i64 * samples) as f64;
    println!("{series} series x {samples} samples (15s apart, ending now), sent by remote write");
    let mut rows = Vec::new();
    for (name, bin) in [
        ("prometheus", vigil_bench::servers::PROMETHEUS.to_string()),
        ("vigil", vigil.display().to_string()),
    ] {
        if !systems.split(',').any(|s| s == name) {
            continue;
        }
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        let data = run.join("data");
        let port = free_port();
        let child = start(&bin, &data, port, &[], &run.join("log"));
        wait_ready(port);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let t = std::time::Instant::now();
        remote_write_walk(
            port,
            "bench_head",
            series,
            samples,
            now_ms - samples * 15_000,
            |i, k| ((i as i64 % 13) * k + (k * k) % 7) as f64,
        );
        let took = t.elapsed();
        // Prometheus writes full chunks to its files from a queue: let both settle. Memory is
        // read before the checks, whose queries read every sample and leave their own memory
        // with the allocator.
        std::thread::sleep(std::time::Duration::from_secs(10));
        let pid = child.0.id();
        let anon = proc_status_bytes(pid, "RssAnon").unwrap_or(0);
        let rss = rss_bytes(pid).unwrap_or(0);
        // Over the whole span: the newest sample may be older than the 5-minute lookback by now.
        let n = scalar(port, "count(last_over_time({job=\"bench\"}[1d]))");
        let s = scalar(port, "sum(count_over_time({job=\"bench\"}[1d]))");
        assert_eq!(n, want_series, "{name}: series");
        assert_eq!(s, want_samples, "{name}: samples");
        let files: u64 = ["chunks_head", "head-chunks"]
            .iter()
            .filter_map(|d| std::fs::read_dir(data.join(d)).ok())
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.blocks() * 512
            })
            .sum();
        println!(
            "{name:<11} anonymous {:>6.0} MB, RSS {:>6.0} MB, head chunk files {:>5.0} MB on disk, sent in {:.0} s ({n} series, {s} samples checked)",
            anon as f64 / 1e6,
            rss as f64 / 1e6,
            files as f64 / 1e6,
            took.as_secs_f64()
        );
        rows.push((name, anon as f64, rss as f64));
        drop(child);
        let _ = std::fs::remove_dir_all(&run);
    }
    let find = |name: &str| rows.iter().find(|r| r.0 == name);
    if let (Some(p), Some(v)) = (find("prometheus"), find("vigil")) {
        println!();
        println!(
            "vigil / Prometheus: anonymous memory {:.2}x, RSS {:.2}x",
            v.1 / p.1,
            v.2 / p.2
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
