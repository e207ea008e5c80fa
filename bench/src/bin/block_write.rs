//! Block writing at scale, in-process: what a head cut and a merge cost per series, with the
//! `scale` benchmark's shapes of label sets and values, without its fleet and scrapes.
//!
//! SERIES series (default 1,000,000; 10,000 a target, labelled as the `scale` fleet's are:
//! request counters, histogram buckets, cache and queue gauges, and per-customer counters
//! with a label of about a million values) get a sample every 15s for 35 minutes, in a
//! database with 5-minute blocks merged up to 15 minutes (the `scale` run's flags). Then one
//! maintenance pass runs, as the server's does once a minute: it cuts the head's six oldest
//! 5-minute ranges and merges them into two 15-minute blocks. Prints the pass's time, the
//! block writes' total and their mean cost per series (cuts and merges together), the pass's
//! peak anonymous memory over the appends', and checks that every series reads back with the
//! sample count appended (samples over the merged blocks and the head = series x scrapes).
//!
//! `cargo run --release -p vigil-bench --bin block_write [-- SERIES [FORMAT]]` (FORMAT
//! `vigil`, the default, or `prometheus`).
//!
//! vigil alone: Prometheus cuts and merges inside its own process, where no command can ask
//! for one block write and time it; the `scale` and `compaction` benchmarks compare whole
//! systems.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigil_bench::proc_status_bytes;
use vigil_model::Labels;
use vigil_storage::{MatchOp, Matcher, Storage};
use vigil_tsdb::db::{BlockFormat, Db, Options};

const STEP_MS: i64 = 15_000;
const MINUTE_MS: i64 = 60_000;
const SCRAPES: i64 = 35 * 4;
const PER_TARGET: usize = 10_000;
const CUSTOMERS: usize = 1_000_000;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Series `k` of target `t`, labelled as the fleet's are after relabelling.
fn labels(t: usize, k: usize) -> Labels {
    let target = [
        ("instance", format!("127.0.0.1:{}", 20_000 + t)),
        ("job", "fleet".to_string()),
        ("namespace", format!("ns{}", t % 20)),
        ("pod", format!("app-{t}")),
        ("service", format!("svc{}", t % 50)),
    ];
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let codes = ["200", "201", "304", "404", "500"];
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
    ];
    let mut own: Vec<(&str, String)> = match k * 100 / PER_TARGET {
        0..10 => vec![
            ("__name__", "http_requests_total".into()),
            ("method", methods[k % 4].into()),
            ("code", codes[(k / 4) % 5].into()),
            ("handler", format!("/api/v1/h{}", k / 20)),
        ],
        10..36 => vec![
            ("__name__", "http_request_duration_seconds_bucket".into()),
            ("method", methods[(k / 11) % 4].into()),
            ("handler", format!("/api/v1/h{}", k / 44)),
            ("le", les[k % 11].into()),
        ],
        36..51 => vec![
            ("__name__", "app_cache_entries".into()),
            ("cache", format!("c{}", k / 64)),
            ("shard", (k % 64).to_string()),
        ],
        51..52 => vec![
            ("__name__", "app_queue_depth".into()),
            ("queue", format!("q{k}")),
        ],
        _ => vec![
            ("__name__", "app_customer_requests_total".into()),
            ("customer", format!("cust-{}", (t * 997 + k) % CUSTOMERS)),
        ],
    };
    own.extend(target);
    Labels::from_pairs(own.iter().map(|(n, v)| (*n, v.as_str())))
}

/// Series `i`'s value at scrape `s`: counters grow by random amounts (a third stay idle),
/// gauges hold for a few scrapes and move.
fn value(i: usize, s: i64, counter: bool) -> f64 {
    let h = mix(i as u64);
    if counter {
        if h.is_multiple_of(3) {
            return (h % 1000) as f64;
        }
        let rate = (h >> 8) % 60;
        (h % 1000) as f64 + (s as u64 * rate + mix(h ^ s as u64) % (rate + 1)) as f64
    } else {
        let hold = 1 + (h % 8) as i64;
        ((mix(h ^ (s / hold) as u64) % 10_000) as f64) / 10.0
    }
}

fn anon_bytes() -> u64 {
    proc_status_bytes(std::process::id(), "RssAnon").unwrap_or(0)
}

fn main() {
    let series: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let format = match std::env::args().nth(2).as_deref() {
        None | Some("vigil") => BlockFormat::Vigil,
        Some("prometheus") => BlockFormat::Prometheus,
        Some(f) => panic!("FORMAT is vigil or prometheus, not {f}"),
    };
    let dir = std::env::temp_dir().join(format!("vigil-bench-block-write-{}", std::process::id()));
    let mut opts = Options::new(0, 0).with_block_range(5 * MINUTE_MS, Some(15 * MINUTE_MS));
    opts.block_format = format;
    let db = Arc::new(Db::open(&dir, opts).expect("open"));

    let t0 = Instant::now();
    let all: Vec<(Labels, bool)> = (0..series)
        .map(|i| {
            let l = labels(i / PER_TARGET, i % PER_TARGET);
            let counter =
                l.get("__name__").is_some_and(|n| n.ends_with("_total")) || l.get("le").is_some();
            (l, counter)
        })
        .collect();
    let mut refs = vec![0u64; series];
    for s in 0..SCRAPES {
        // One transaction a target, as scrapes commit.
        for (t, (chunk, rs)) in all
            .chunks(PER_TARGET)
            .zip(refs.chunks_mut(PER_TARGET))
            .enumerate()
        {
            let mut app = db.appender();
            for (j, ((l, counter), r)) in chunk.iter().zip(rs.iter_mut()).enumerate() {
                let v = value(t * PER_TARGET + j, s, *counter);
                *r = app.append(*r, l, s * STEP_MS, v).expect("append");
            }
            app.commit().expect("commit");
        }
    }
    let appended = t0.elapsed();
    let anon_before = anon_bytes();
    println!(
        "{series} series x {SCRAPES} samples appended in {:.1} s; anonymous memory {} MB",
        appended.as_secs_f64(),
        anon_before >> 20
    );

    // The pass, with the peak of anonymous memory sampled beside it.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(anon_bytes());
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let t = Instant::now();
    db.maintain().expect("maintain");
    let pass = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let c = db.compactions();
    let blocks = db.blocks();
    println!(
        "maintenance pass: {:.1} s, {} block writes ({:.1} s in all), {:.2} us a series a write; \
         anonymous memory peak {} MB (+{} MB)",
        pass.as_secs_f64(),
        c.ran,
        c.sum_seconds,
        c.sum_seconds * 1e6 / (c.ran.max(1) as f64 * series as f64),
        peak >> 20,
        (peak.saturating_sub(anon_before)) >> 20
    );
    for b in &blocks {
        println!(
            "  block {} [{} min, {} min): {} series, {} samples, level {}",
            b.meta.ulid,
            b.meta.min_time / MINUTE_MS,
            b.meta.max_time / MINUTE_MS,
            b.meta.stats.num_series,
            b.meta.stats.num_samples,
            b.meta.compaction.level
        );
    }

    // Every sample kept: blocks' samples plus the head's equal what was appended.
    let mut failed = Vec::new();
    let merged: Vec<_> = blocks
        .iter()
        .filter(|b| b.meta.compaction.level == 2)
        .collect();
    if merged.len() != 2 || blocks.len() != 2 {
        failed.push(format!(
            "expected two merged 15-minute blocks, found {} blocks ({} merged)",
            blocks.len(),
            merged.len()
        ));
    }
    let in_blocks: u64 = blocks.iter().map(|b| b.meta.stats.num_samples).sum();
    let q = db.querier(i64::MIN, i64::MAX).expect("querier");
    // A target at a time: selecting every series at once would hold them all, and that
    // read's memory is not the pass's.
    let mut total = 0u64;
    let mut n = 0usize;
    for t in 0..series.div_ceil(PER_TARGET) {
        let m = [Matcher::new(MatchOp::Equal, "pod", format!("app-{t}")).expect("matcher")];
        for s in q.select(&m).expect("select") {
            total += s.samples.len() as u64;
            n += 1;
        }
    }
    let expected = series as u64 * SCRAPES as u64;
    if n != series || total != expected {
        failed.push(format!(
            "read back {n} series and {total} samples, expected {series} and {expected}"
        ));
    }
    println!("read back {n} series, {total} samples ({in_blocks} in blocks), expected {expected}");
    drop(q);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    if !failed.is_empty() {
        for f in &failed {
            eprintln!("FAILED: {f}");
        }
        std::process::exit(1);
    }
}
