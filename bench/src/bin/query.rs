//! Query latency: vigil, Debian's Prometheus 2.42 and VictoriaMetrics answer the same PromQL over
//! the same backfilled data, side by side in one run; prints median and p90 per query and the
//! ratios, and checks every answer: vigil's must equal Prometheus's (for `topk`, the values at
//! each time, since which of equal values is kept is unspecified), and VictoriaMetrics' are
//! compared with vigil's and reported (its `rate` does not extrapolate as Prometheus's does, so
//! some of its answers differ by design). An empty answer fails the run: every system must
//! have loaded the data.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin query [-- PODS HOURS INTERVAL_S]`
//!
//! Defaults: 500 pods (10,000 series: counters, gauges, a histogram; see `dataset.rs`) over 24h
//! at 60s. Each instant query runs 20 times, each range query (the whole span, 60s step) 15 times,
//! after one warm-up run, once no system is busy (see `settle`), the systems taking turns run by
//! run. VictoriaMetrics runs with its result cache off
//! (`-search.disableCache`), so repeated range queries are computed each time as in the others.
//! `VIGIL_BENCH_KEEP=1` keeps the loaded data directories (for profiling);
//! `VIGIL_BENCH_BLOCKS=prometheus` has vigil serve promtool's blocks (Prometheus's format) as
//! they are, instead of blocks it wrote.

use std::time::{Duration, Instant};

use vigil_bench::compare::{Answer, compare, compare_values, parse};
use vigil_bench::dataset::{Dataset, START_S};
use vigil_bench::servers::{
    Server, backfill_prometheus, backfill_vigil, start_prometheus, start_victoria_metrics,
    start_vigil, victoria_metrics,
};

/// The block directories under `data` with their index files' bytes' length and first bytes
/// (Prometheus's index magic or vigil's): what a merge or rewrite would change.
fn block_dirs(data: &std::path::Path) -> Vec<(String, u64, Vec<u8>)> {
    let mut out: Vec<(String, u64, Vec<u8>)> = std::fs::read_dir(data)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("meta.json").exists())
                .map(|e| {
                    let index = std::fs::read(e.path().join("index")).unwrap_or_default();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        index.len() as u64,
                        index[..index.len().min(8)].to_vec(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Wait until no server is busy (each used under 2% of a core over two seconds, twice in a
/// row) and the last one started (`started`) has been up for 75 s: a system merging or
/// compacting what it just loaded would take CPU from whichever one is measured, and
/// Prometheus starts compacting about a minute after it opens its blocks. After 400 s it
/// measures anyway, saying who is still busy.
fn settle(servers: &[Server], started: Instant) {
    let cpu = |s: &Server| vigil_bench::cpu_seconds(s.pid()).unwrap_or(0.0);
    let mut idle = 0;
    loop {
        let before: Vec<f64> = servers.iter().map(cpu).collect();
        std::thread::sleep(Duration::from_secs(2));
        let busy: Vec<&str> = servers
            .iter()
            .zip(&before)
            .filter(|(s, b)| cpu(s) - **b > 0.04)
            .map(|(s, _)| s.name)
            .collect();
        idle = if busy.is_empty() { idle + 1 } else { 0 };
        if idle >= 2 && started.elapsed() > Duration::from_secs(75) {
            println!(
                "all systems idle {:.0}s after the last one started",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if started.elapsed() > Duration::from_secs(400) {
            println!(
                "still busy after 400s, measuring anyway: {}",
                busy.join(", ")
            );
            return;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut next = |d: i64| args.next().and_then(|s| s.parse().ok()).unwrap_or(d);
    let ds = Dataset {
        pods: next(500) as usize,
        hours: next(24),
        interval_s: next(60),
    };
    // `VIGIL_BENCH_BLOCKS=prometheus`: vigil reads promtool's blocks instead of its own.
    let prometheus_blocks = std::env::var("VIGIL_BENCH_BLOCKS").is_ok_and(|v| v == "prometheus");
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let dir = std::env::temp_dir().join(format!("vigil-bench-query-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let om = dir.join("data.om");
    let t = Instant::now();
    let samples = ds.write(&om).unwrap();
    println!(
        "{} series x {}h at {}s = {samples} samples, written in {:.0}s; loading ...",
        ds.series(),
        ds.hours,
        ds.interval_s,
        t.elapsed().as_secs_f64()
    );
    backfill_prometheus(&om, &dir.join("prom")).unwrap();
    if prometheus_blocks {
        // vigil serves a copy of promtool's blocks as they are (Prometheus's format).
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(dir.join("prom"))
            .arg(dir.join("vigil"))
            .status()
            .unwrap();
        assert!(st.success());
    } else {
        backfill_vigil(&vigil, &om, &dir.join("vigil")).unwrap();
    }
    // Over Prometheus's blocks, neither system may merge them while it is measured (vigil
    // would rewrite them in its own format within seconds): blocks are kept at promtool's 2h.
    let no_merge: Vec<String> = if prometheus_blocks {
        vec!["--storage.tsdb.max-block-duration=2h".into()]
    } else {
        Vec::new()
    };
    let promtool_blocks = block_dirs(&dir.join("vigil"));
    let mut servers: Vec<Server> = vec![
        start_vigil(&vigil, &dir.join("vigil"), &no_merge),
        start_prometheus(&dir.join("prom"), &no_merge),
    ];
    if let Some(vm) = victoria_metrics() {
        servers.push(start_victoria_metrics(vm, &om, &dir.join("vm")));
    } else {
        println!("victoria-metrics not installed: comparing vigil and Prometheus only");
    }
    let _ = std::fs::remove_file(&om);
    let started = Instant::now(); // the last system is up (VictoriaMetrics has imported)

    let (_, last_ms) = ds.time_range_ms();
    let end = last_ms / 1000 + 1;
    let start = START_S + 3600;
    let end_s = end.to_string();
    let start_s = start.to_string();
    let instant = [
        "sum(rate(dset_requests_total[5m]))",
        "sum by (code) (rate(dset_requests_total[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(dset_latency_seconds_bucket[5m])))",
        "topk(10, dset_temperature_celsius)",
        "count({__name__=~\".+\"})",
    ];
    // (label, path, parameters, runs)
    type Case<'a> = (String, &'a str, Vec<(&'a str, &'a str)>, usize);
    let mut cases: Vec<Case> = Vec::new();
    for q in instant {
        cases.push((
            format!("instant {q}"),
            "/api/v1/query",
            vec![("query", q), ("time", end_s.as_str())],
            20,
        ));
    }
    for q in &instant[..3] {
        cases.push((
            format!("range {}h/60s {q}", ds.hours - 1),
            "/api/v1/query_range",
            vec![
                ("query", q),
                ("start", start_s.as_str()),
                ("end", end_s.as_str()),
                ("step", "60"),
            ],
            15,
        ));
    }

    settle(&servers, started);
    println!();
    let names: Vec<&str> = servers.iter().map(|s| s.name).collect();
    println!(
        "{:<96} {}",
        "median / p90 ms",
        names.iter().map(|n| format!("{n:>22}")).collect::<String>()
    );
    let mut mismatches = 0;
    let mut vm_same = 0;
    let mut vm_notes = Vec::new();
    for (label, path, params, runs) in &cases {
        let mut cells = Vec::new();
        let mut medians = Vec::new();
        let mut answers = Vec::new();
        for s in &servers {
            answers.push(s.get(path, params)); // warm-up, and the answer compared below
        }
        // Run by run in turn, so whatever else the machine does falls on every system alike.
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(*runs); servers.len()];
        for _ in 0..*runs {
            for (s, times) in servers.iter().zip(times.iter_mut()) {
                let t = Instant::now();
                let body = s.get(path, params);
                times.push(t.elapsed());
                assert!(
                    body.contains("\"success\""),
                    "{} failed: {body:.300}",
                    s.name
                );
            }
        }
        for mut times in times {
            times.sort();
            let (m, p90) = (percentile(&times, 0.5), percentile(&times, 0.9));
            medians.push(m);
            cells.push(format!(
                "{:>10.1} / {:>7.1}",
                m.as_secs_f64() * 1e3,
                p90.as_secs_f64() * 1e3
            ));
        }
        for (s, a) in servers.iter().zip(&answers) {
            let empty = match parse(a) {
                Answer::Data { series, .. } => series.iter().all(|(_, p)| p.is_empty()),
                Answer::Error(_) => true,
            };
            assert!(!empty, "{}: no data for {label}: {a:.300}", s.name);
        }
        // topk over equal values may keep different series: compare the values at each time.
        let agree = |a: &str, b: &str| {
            if label.contains("topk") {
                compare_values(a, b)
            } else {
                compare(a, b, false)
            }
        };
        let same = agree(&answers[0], &answers[1]).is_ok();
        if !same {
            mismatches += 1;
        }
        if let Some(vm) = answers.get(2) {
            match agree(&answers[0], vm) {
                Ok(()) => vm_same += 1,
                Err(e) => vm_notes.push(format!("{label}: {e:.160}")),
            }
        }
        println!(
            "{:<96} {}{}",
            label,
            cells.iter().map(|c| format!("{c:>22}")).collect::<String>(),
            if same { "" } else { "  (vigil != prometheus!)" }
        );
        let ratios: Vec<String> = medians[1..]
            .iter()
            .zip(&names[1..])
            .map(|(m, n)| {
                format!(
                    "{n}/vigil {:.2}",
                    m.as_secs_f64() / medians[0].as_secs_f64().max(1e-9)
                )
            })
            .collect();
        println!("{:<96} {}", "", ratios.join("   "));
    }
    println!();
    println!(
        "vigil's answers equal Prometheus's on {} of {} queries (1e-9 relative; topk by the values kept).",
        cases.len() - mismatches,
        cases.len()
    );
    if servers.len() > 2 {
        println!(
            "VictoriaMetrics' answers equal vigil's on {vm_same} of {} queries; where they differ:",
            cases.len()
        );
        for n in &vm_notes {
            println!("  {n}");
        }
    }
    assert_eq!(mismatches, 0, "vigil and Prometheus disagree");
    drop(servers);
    if prometheus_blocks {
        // What was measured was promtool's blocks, as they were written.
        assert_eq!(
            block_dirs(&dir.join("vigil")),
            promtool_blocks,
            "vigil's blocks changed while measured: not Prometheus's blocks"
        );
        println!(
            "vigil served promtool's {} blocks unchanged (Prometheus's format).",
            promtool_blocks.len()
        );
    }
    // VIGIL_BENCH_KEEP=1 leaves the loaded data for profiling (vigil's TSDB in DIR/vigil).
    if std::env::var_os("VIGIL_BENCH_KEEP").is_some() {
        println!("data kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
