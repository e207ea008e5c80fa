//! Native histograms scraped in the protobuf format by vigil and Debian's Prometheus 2.42
//! (`--enable-feature=native-histograms`) side by side: CPU per scrape, resident memory (as
//! the window ends, before any query; and after the queries and a minute later, apart), WAL
//! bytes, and the bytes a block of the scraped histograms takes on disk (each system's
//! snapshot of its head), with the ratios to vigil.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin native_histograms [-- SERIES SECONDS]`
//!
//! One target serves SERIES integer native histograms (default 10000; schema 3, 30 buckets
//! each, counts that grow every scrape as a client library's do), encoded by prost from
//! client_model's messages, every 5s to both. After a 15s warm-up, CPU over SECONDS (default
//! 120) is read from /proc; then both snapshot their head and the snapshot's chunk bytes are
//! divided by the histogram samples it holds. The run fails unless each system stored every
//! series of about every scrape of the window (`count_over_time` of the histograms, asked of
//! each), so a system that skipped work cannot look cheap.
//!
//! Then `histogram_quantile` latency over the stored histograms: three queries (over the
//! rate summed by route, instant and range, and over every raw series), each asked of both
//! in turn, median of 20 runs. Every bucket count is the scrape's `k` times a constant, so a
//! quantile of either the raw histograms or their rates depends only on the constants: both
//! systems must answer for the same series and times, each value inside the same bucket.
//! (The values are not compared exactly: 2.42 interpolates linearly inside a bucket, current
//! Prometheus and vigil exponentially; docs/promql-differences.md.)

#[path = "../../../crates/model/tests/support/client_model.rs"]
mod client_model;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client_model::*;
use vigil_bench::{Killed, cpu_seconds, free_port, rss_bytes, up};

/// The body of scrape `k`: SERIES histograms whose buckets count `k` times a per-bucket rate.
fn body(series: usize, k: u64) -> Vec<u8> {
    let metric = (0..series)
        .map(|i| {
            let counts: Vec<u64> = (0..30u64)
                .map(|j| k * ((j * 7 + i as u64) % 13 + 1))
                .collect();
            let mut prev = 0i64;
            let deltas: Vec<i64> = counts
                .iter()
                .map(|&c| {
                    let d = c as i64 - prev;
                    prev = c as i64;
                    d
                })
                .collect();
            let zero = k;
            Metric {
                label: vec![
                    label("route", &format!("/r{}", i % 100)),
                    label("pod", &format!("pod-{}", i / 100)),
                ],
                histogram: Some(Histogram {
                    sample_count: counts.iter().sum::<u64>() + zero,
                    sample_sum: k as f64 * 1.5 * (i % 7 + 1) as f64,
                    schema: 3,
                    zero_threshold: 1e-9,
                    zero_count: zero,
                    positive_span: vec![BucketSpan {
                        offset: (i % 10) as i32 - 20,
                        length: 30,
                    }],
                    positive_delta: deltas,
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    delimited(&[MetricFamily {
        name: "bench_request_duration_seconds".into(),
        help: "Request durations.".into(),
        r#type: HISTOGRAM,
        metric,
        unit: String::new(),
    }])
}

/// A target serving `body(series, k)` in protobuf, `k` counting requests from 1.
fn serve(series: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let k = std::sync::Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let k = k.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf);
                let b = body(series, k.fetch_add(1, Ordering::Relaxed) / 2 + 1);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                );
                let _ = s.write_all(&b);
            });
        }
    });
    port
}

/// POST a snapshot of the head (both answer `{"data":{"name":...}}`); the snapshot's path.
fn snapshot(port: u16, data: &Path) -> PathBuf {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /api/v1/admin/tsdb/snapshot HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let name = v["data"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no snapshot: {text}"));
    data.join("snapshots").join(name)
}

/// Chunk bytes and samples (from each block's meta.json) of a snapshot's blocks.
fn block_figures(snap: &Path) -> (u64, u64) {
    let (mut bytes, mut samples) = (0, 0);
    for e in std::fs::read_dir(snap).unwrap().filter_map(Result::ok) {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.path().join("meta.json")).unwrap_or_default())
                .unwrap_or_default();
        samples += meta["stats"]["numSamples"].as_u64().unwrap_or(0);
        bytes += vigil_bench::du(&e.path().join("chunks"));
    }
    (bytes, samples)
}

/// The schema-3 bucket a positive value falls in: (2^((i-1)/8), 2^(i/8)].
fn bucket_of(v: f64) -> i64 {
    (v.log2() * 8.0).ceil() as i64
}

/// `(series key, [(t, v)])` of an instant or range answer.
fn answer_points(body: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    match vigil_bench::compare::parse(body) {
        vigil_bench::compare::Answer::Data { series, .. } => series,
        vigil_bench::compare::Answer::Error(e) => panic!("query failed: {e}"),
    }
}

/// Both answers name the same series at the same times, and put each value in the same
/// bucket; the number of values compared.
fn same_buckets(label: &str, a: &str, b: &str) -> usize {
    let (mut pa, mut pb) = (answer_points(a), answer_points(b));
    pa.sort_by(|x, y| x.0.cmp(&y.0));
    pb.sort_by(|x, y| x.0.cmp(&y.0));
    let keys = |p: &[(String, Vec<(f64, f64)>)]| p.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&pa), keys(&pb), "{label}: the series differ");
    let mut n = 0;
    for ((k, xa), (_, xb)) in pa.iter().zip(&pb) {
        let ta: Vec<f64> = xa.iter().map(|p| p.0).collect();
        let tb: Vec<f64> = xb.iter().map(|p| p.0).collect();
        assert_eq!(ta, tb, "{label}: {k}: the times differ");
        for ((_, va), (_, vb)) in xa.iter().zip(xb) {
            assert!(
                va.is_finite() && *va > 0.0 && bucket_of(*va) == bucket_of(*vb),
                "{label}: {k}: {va} and {vb} are not in one bucket"
            );
            n += 1;
        }
    }
    assert!(n > 0, "{label}: no values");
    n
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(120);
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let prometheus = PathBuf::from("/usr/bin/prometheus");
    assert!(prometheus.exists(), "install Debian's prometheus");
    let target = serve(series);
    let dir = std::env::temp_dir().join(format!("vigil-bench-nh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bench.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  scrape_interval: 5s\n  scrape_timeout: 5s\nscrape_configs:\n  - job_name: bench\n    scrape_native_histograms: true\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"),
    )
    .unwrap();
    // Prometheus 2.42 does not know `scrape_native_histograms`: its copy of the config leaves
    // it out (its feature flag does the same).
    let pcfg = dir.join("bench-prometheus.yml");
    std::fs::write(
        &pcfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("    scrape_native_histograms: true\n", ""),
    )
    .unwrap();
    let (vp, pp) = (free_port(), free_port());
    let (vdata, pdata) = (dir.join("vigil"), dir.join("prom"));
    let v = vigil_bench::spawn(
        &vigil,
        &[
            format!("--config.file={}", cfg.display()),
            format!("--web.listen-address=127.0.0.1:{vp}"),
            format!("--storage.tsdb.path={}", vdata.display()),
            "--web.enable-admin-api".into(),
            "--log.level=warn".into(),
        ],
    );
    let p = vigil_bench::spawn(
        &prometheus,
        &[
            format!("--config.file={}", pcfg.display()),
            format!("--web.listen-address=127.0.0.1:{pp}"),
            format!("--storage.tsdb.path={}", pdata.display()),
            "--enable-feature=native-histograms".into(),
            "--web.enable-admin-api".into(),
            "--log.level=warn".into(),
        ],
    );
    let servers: Vec<(&str, u16, Killed, PathBuf)> =
        vec![("vigil", vp, v, vdata), ("prometheus", pp, p, pdata)];
    while !servers.iter().all(|(_, port, _, _)| up(*port)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "{series} native histograms per scrape (30 buckets each), every 5s; warming up 15s ..."
    );
    std::thread::sleep(Duration::from_secs(15));
    let cpu0: Vec<f64> = servers
        .iter()
        .map(|s| cpu_seconds(s.2.0.id()).unwrap())
        .collect();
    println!("measuring {seconds}s ...");
    let t0 = vigil_bench::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let t1 = vigil_bench::now();
    // Memory as the window ends, before any query: what holding the histograms takes (a
    // query's own allocations, which either may keep for a while, are not counted here).
    let memory: Vec<(f64, f64, f64)> = servers
        .iter()
        .map(|s| {
            let pid = s.2.0.id();
            let part = |f: &str| vigil_bench::proc_status_bytes(pid, f).unwrap_or(0) as f64 / 1e6;
            (
                rss_bytes(pid).unwrap_or(0) as f64 / 1e6,
                part("RssAnon"),
                part("RssFile") + part("RssShmem"),
            )
        })
        .collect();
    let cpu1: Vec<f64> = servers
        .iter()
        .map(|s| cpu_seconds(s.2.0.id()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let range = format!("{}s", (t1 - t0).round() as u64);
    let expected = (t1 - t0) / 5.0;
    let mut rows = Vec::new();
    let mut short = Vec::new();
    for (i, (name, port, _, data)) in servers.iter().enumerate() {
        let stored = vigil_bench::instant_at(
            *port,
            &format!("sum(count_over_time(bench_request_duration_seconds[{range}]))"),
            t1,
        )
        .unwrap_or(0.0);
        if stored < (expected - 1.5) * series as f64 {
            short.push(*name);
        }
        let (rss, anon, file) = memory[i];
        let wal = vigil_bench::du(&data.join("wal")) as f64;
        let (chunk_bytes, samples) = block_figures(&snapshot(*port, data));
        let cpu = (cpu1[i] - cpu0[i]) / (seconds as f64 / 5.0);
        rows.push((
            *name,
            cpu,
            rss,
            wal / 1e6,
            chunk_bytes as f64 / samples.max(1) as f64,
            stored,
            (anon, file),
        ));
    }
    println!();
    println!(
        "{:<12} {:>13} {:>8} {:>13} {:>9} {:>17} {:>18}",
        "",
        "CPU s/scrape",
        "RSS MB",
        "anon + file",
        "WAL MB",
        "bytes/histogram",
        "histograms stored"
    );
    for r in &rows {
        println!(
            "{:<12} {:>13.3} {:>8.0} {:>13} {:>9.1} {:>17.1} {:>18}",
            r.0,
            r.1,
            r.2,
            format!("{:.0} + {:.0}", r.6.0, r.6.1),
            r.3,
            r.4,
            r.5
        );
    }
    let (v, p) = (&rows[0], &rows[1]);
    println!();
    println!(
        "vigil / Prometheus: CPU {:.2}, RSS {:.2} (anonymous {:.2}, file-backed {:.2}), WAL {:.2}, block bytes per histogram {:.2}",
        v.1 / p.1.max(1e-9),
        v.2 / p.2.max(1e-9),
        v.6.0 / p.6.0.max(1e-9),
        v.6.1 / p.6.1.max(1e-9),
        v.3 / p.3.max(1e-9),
        v.4 / p.4.max(1e-9)
    );
    assert!(
        short.is_empty(),
        "{short:?} did not store every histogram of about {expected:.0} scrapes"
    );
    println!(
        "both stored every histogram of each scrape (about {expected:.0} scrapes of {series})."
    );

    // histogram_quantile latency, asked at the window's end (range: its last minute, where
    // every 1m rate window is full in both).
    let by_route =
        "histogram_quantile(0.9, sum by (route) (rate(bench_request_duration_seconds[1m])))";
    let enc = vigil_bench::servers::urlencode;
    let cases = [
        (
            format!("instant: {by_route}"),
            format!("/api/v1/query?query={}&time={t1:.3}", enc(by_route)),
        ),
        (
            format!("range 1m, step 5s: {by_route}"),
            format!(
                "/api/v1/query_range?query={}&start={:.3}&end={t1:.3}&step=5",
                enc(by_route),
                t1 - 60.0
            ),
        ),
        (
            "instant: histogram_quantile(0.99, bench_request_duration_seconds)".to_string(),
            format!(
                "/api/v1/query?query={}&time={t1:.3}",
                enc("histogram_quantile(0.99, bench_request_duration_seconds)")
            ),
        ),
    ];
    println!();
    println!(
        "{:<100} {:>10} {:>12} {:>8}",
        "median ms of 20", "vigil", "prometheus", "ratio"
    );
    let get = |port: u16, path: &str| {
        vigil_bench::http_get(port, path).unwrap_or_else(|| panic!("no answer to {path}"))
    };
    for (label, path) in &cases {
        let answers: Vec<String> = servers.iter().map(|s| get(s.1, path)).collect();
        let compared = same_buckets(label, &answers[0], &answers[1]);
        // Run by run in turn, so whatever else the machine does falls on both alike.
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..20 {
            for (i, s) in servers.iter().enumerate() {
                let t = Instant::now();
                let body = get(s.1, path);
                times[i].push(t.elapsed());
                assert!(body.contains("\"success\""), "{}: {body:.300}", s.0);
            }
        }
        let [v, p] = [0, 1].map(|i| median(times[i].clone()).as_secs_f64() * 1e3);
        println!(
            "{:<100} {v:>10.1} {p:>12.1} {:>8.2}",
            format!("{label} ({compared} values in the same buckets)"),
            p / v.max(1e-9)
        );
    }
    println!("ratio: Prometheus's median / vigil's (above 1: vigil is faster).");
    // What the queries left resident (each keeps some of a query's memory for a while), and
    // a minute later: vigil hands freed memory back at its next storage maintenance, Go's
    // scavenger over minutes.
    let rss_now = || -> String {
        servers
            .iter()
            .map(|s| {
                format!(
                    "{} {:.0} MB",
                    s.0,
                    rss_bytes(s.2.0.id()).unwrap_or(0) as f64 / 1e6
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("RSS after the queries: {}", rss_now());
    std::thread::sleep(Duration::from_secs(65));
    println!("RSS 65 s later: {}", rss_now());
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}
