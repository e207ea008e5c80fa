//! Compaction memory: vigil vs Debian's Prometheus 2.42 merging the same blocks.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin compaction [-- SERIES HOURS STEP_S]`
//!
//! Writes HOURS (default 8) of SERIES series (default 50,000), one sample every STEP_S seconds
//! (default 15), as Prometheus-format two-hour blocks, aligned so that the first three make
//! one complete six-hour range, which both systems compact into one block (the fourth, the
//! newest, stays). Prometheus and vigil each start on a copy of the directory with no
//! scrape targets; once the six-hour block exists, each one's peak RSS (VmHWM, which counts
//! the pages of memory-mapped block files read), peak anonymous memory (`RssAnon` sampled
//! every 20 ms: the heap) and RSS at ready are printed with the ratios, and both are checked to answer the same sample count
//! (`count_over_time` over the whole span) as was written.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_bench::{Killed, free_port, rss_bytes};
use vigil_model::{Labels, Sample};
use vigil_tsdb::block::Compaction;

const HOUR_MS: i64 = 3_600_000;

/// Whether `data` holds a block spanning six hours (the compaction's result).
fn compacted(data: &Path) -> bool {
    std::fs::read_dir(data)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read(e.path().join("meta.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|m| {
                    m["maxTime"].as_i64().unwrap_or(0) - m["minTime"].as_i64().unwrap_or(0)
                        == 6 * HOUR_MS
                })
        })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let hours: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let step_s: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(15);
    assert!(
        hours >= 8,
        "HOURS: at least 8, so a complete six-hour range exists"
    );
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-compaction-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("blocks");
    std::fs::create_dir_all(&data).unwrap();

    // The span starts on a six-hour boundary and ends before now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = (now_ms - hours * HOUR_MS).div_euclid(6 * HOUR_MS) * 6 * HOUR_MS;
    let end = start + hours * HOUR_MS;
    let step = step_s * 1000;
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("bench_compact_{}", i % 50)),
                ("instance", format!("pod-{}", i / 50)),
                ("job", "bench".to_string()),
                ("series", i.to_string()),
            ])
        })
        .collect();
    let t = Instant::now();
    let mut written = 0u64;
    for b in 0..hours / 2 {
        let (lo, hi) = (start + b * 2 * HOUR_MS, start + (b + 1) * 2 * HOUR_MS);
        let block: Vec<vigil_storage::Series> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                // Counters that grow by varying amounts, as real ones do.
                let samples: Vec<Sample> = (lo..hi)
                    .step_by(step as usize)
                    .map(|ts| Sample {
                        t: ts,
                        v: ((ts / step) * (i as i64 % 7 + 1) + (ts / step * 31 + i as i64) % 13)
                            as f64,
                    })
                    .collect();
                written += samples.len() as u64;
                vigil_storage::Series::new(l.clone(), samples)
            })
            .collect();
        vigil_tsdb::prometheus::writer::write_block(&data, lo, hi, block, Compaction::default())
            .unwrap();
    }
    println!(
        "{series} series x {hours}h every {step_s}s ({written} samples) written as {} Prometheus-format 2h blocks in {:.0}s",
        hours / 2,
        t.elapsed().as_secs_f64()
    );

    let cfg = dir.join("empty.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let mut rows = Vec::new();
    for (name, bin) in [
        (
            "prometheus",
            PathBuf::from(vigil_bench::servers::PROMETHEUS),
        ),
        ("vigil", vigil.clone()),
    ] {
        let d = dir.join(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&d)
            .status()
            .unwrap();
        assert!(st.success());
        let port = free_port();
        let p = Killed(
            Command::new(&bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!("--storage.tsdb.path={}", d.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y")
                // The check below counts every sample in one query.
                .arg("--query.max-samples=1000000000")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display())),
        );
        let pid = p.0.id();
        let t = Instant::now();
        while vigil_bench::http_get_status(port, "/-/ready") != Some(200) {
            assert!(t.elapsed() < Duration::from_secs(300), "{name} not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        let ready_rss = rss_bytes(pid).unwrap_or(0);
        // Anonymous memory (the heap), sampled: RSS also counts the pages of the blocks'
        // memory-mapped files that were read, which the kernel may drop at will.
        let mut anon = 0;
        let mut settle = None;
        loop {
            anon = anon.max(vigil_bench::proc_status_bytes(pid, "RssAnon").unwrap_or(0));
            match settle {
                // A few seconds past the new block's appearance: the merge's end.
                Some(at) if Instant::now() >= at => break,
                Some(_) => {}
                None if compacted(&d) => settle = Some(Instant::now() + Duration::from_secs(3)),
                None => assert!(
                    t.elapsed() < Duration::from_secs(600),
                    "{name} did not compact the six-hour range in 10 minutes"
                ),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = t.elapsed().as_secs_f64();
        let peak = vigil_bench::peak_rss_bytes(pid).unwrap_or(0);
        let q = format!("sum(count_over_time({{job=\"bench\"}}[{}s]))", hours * 3600);
        let count = vigil_bench::instant_at(port, &q, (end - 1) as f64 / 1000.0)
            .unwrap_or_else(|| panic!("{name}: no answer to {q}"));
        assert_eq!(
            count as u64, written,
            "{name} holds every sample after compacting"
        );
        println!(
            "{name:<11} compacted within {took:>5.1}s of start; RSS at ready {:>6.1} MB, peak RSS {:>6.1} MB, peak anonymous {:>6.1} MB; {} samples answered",
            ready_rss as f64 / 1e6,
            peak as f64 / 1e6,
            anon as f64 / 1e6,
            count as u64
        );
        rows.push((peak as f64, anon as f64));
        drop(p);
    }
    println!(
        "while starting and compacting, vigil/prometheus: peak RSS {:.2}x, peak anonymous memory {:.2}x",
        rows[1].0 / rows[0].0,
        rows[1].1 / rows[0].1
    );
    let _ = std::fs::remove_dir_all(&dir);
}
