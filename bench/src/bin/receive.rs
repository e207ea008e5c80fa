//! The remote write receiver's cost: vigil vs Debian's Prometheus 2.42 and VictoriaMetrics,
//! each taking the very same remote write 1.0 requests.
//!
//! `cargo build --release -p vigil && cargo run --release -p vigil-bench --bin receive [-- SERIES SAMPLES [SYSTEMS [2.0]]]`
//!
//! SERIES series (default 100,000) with SAMPLES samples each (default 30, 15 s apart, ending
//! now) are encoded once, before any system starts, as Prometheus's sender would send them:
//! 5,000 series a request, each series with nine labels as a Kubernetes scrape gives them
//! (`__name__`, `job`, `namespace`, `pod`, `container`, `instance`, `code`, `method`, and a
//! unique `series`), counters that grow. Each system starts empty and is sent every request
//! in time order over one connection; the receiving process's CPU seconds (user + system,
//! from `/proc`) are read before and after, so the sender's work is not counted. Then every
//! series and sample is checked through the query API, and CPU seconds per million samples,
//! wall time and peak RSS are printed with the ratios. `VIGIL_BENCH_BIN` runs another vigil
//! build (A/B); SYSTEMS (default `vigil,prometheus,victoria-metrics`) picks which run. A
//! fourth argument `2.0` sends the same series as remote write 2.0 requests (a symbol table
//! per request) to vigil alone: neither reference takes 2.0.

use std::time::{Duration, Instant};

use vigil_bench::restarts::{scalar, start, wait_ready};
use vigil_bench::{cpu_seconds, free_port, http_get, peak_rss_bytes};
use vigil_remote::proto::{Label, RequestV2, Sample, TimeSeries, TimeSeriesV2, WriteRequest};

const BATCH: usize = 5_000;

/// A 1.0 request as the 2.0 request carrying the same series.
fn as_v2(req: WriteRequest) -> RequestV2 {
    let mut symbols = vec![String::new()];
    let mut index = std::collections::HashMap::new();
    let mut sym = |s: String| -> u32 {
        *index.entry(s.clone()).or_insert_with(|| {
            symbols.push(s);
            symbols.len() as u32 - 1
        })
    };
    let timeseries = req
        .timeseries
        .into_iter()
        .map(|ts| TimeSeriesV2 {
            labels_refs: ts
                .labels
                .into_iter()
                .flat_map(|l| [sym(l.name), sym(l.value)])
                .collect(),
            samples: ts.samples,
            ..Default::default()
        })
        .collect();
    RequestV2 {
        symbols,
        timeseries,
    }
}

/// Every request body, in the order sent.
fn bodies(series: usize, samples: i64, t0: i64, v2: bool) -> Vec<Vec<u8>> {
    let labels = |i: usize| {
        let l = |n: &str, v: String| Label {
            name: n.into(),
            value: v,
        };
        let pod = i / 200;
        vec![
            l("__name__", format!("http_requests_{}_total", i % 40)),
            l("code", ["200", "201", "404", "500"][i % 4].into()),
            l("container", format!("app-{}", pod % 7)),
            l("instance", format!("10.1.{}.{}:8080", pod / 250, pod % 250)),
            l("job", format!("kubernetes-pods-{}", pod % 5)),
            l("method", ["GET", "POST"][(i / 4) % 2].into()),
            l("namespace", format!("team-{}", pod % 23)),
            l("pod", format!("web-{pod:05}-7d9f8c6b5")),
            l("series", i.to_string()),
        ]
    };
    let mut out = Vec::new();
    for k in 0..samples {
        for first in (0..series).step_by(BATCH) {
            let mut req = WriteRequest::default();
            for i in first..(first + BATCH).min(series) {
                req.timeseries.push(TimeSeries {
                    labels: labels(i),
                    samples: vec![Sample {
                        // A counter that grows by a few per scrape, as request counts do.
                        value: ((i % 97) as i64 * 1_000 + k * (1 + (i as i64 % 5))) as f64,
                        timestamp: t0 + k * 15_000 + (i % 300) as i64,
                    }],
                    ..Default::default()
                });
            }
            out.push(if v2 {
                vigil_remote::codec::encode(&as_v2(req))
            } else {
                vigil_remote::codec::encode(&req)
            });
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let series: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let samples: i64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let systems = args
        .next()
        .unwrap_or_else(|| "vigil,prometheus,victoria-metrics".into());
    let v2 = args.next().is_some_and(|p| p == "2.0");
    let systems = if v2 { "vigil".into() } else { systems };
    let vigil = vigil_bench::vigil_binary();
    assert!(
        vigil.exists(),
        "build vigil first: cargo build --release -p vigil"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t0 = now_ms - samples * 15_000;
    let bodies = bodies(series, samples, t0, v2);
    let sent_bytes: usize = bodies.iter().map(Vec::len).sum();
    let total = (series as i64 * samples) as f64;
    println!(
        "{series} series x {samples} samples = {total} samples in {} remote write {} requests ({:.1} MB snappy), sent to each receiver",
        bodies.len(),
        if v2 { "2.0" } else { "1.0" },
        sent_bytes as f64 / 1e6
    );
    vigil_scrape::client::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("vigil-bench-receive-{}", std::process::id()));
    let mut rows: Vec<(&str, f64)> = Vec::new();
    for name in ["vigil", "prometheus", "victoria-metrics"] {
        if !systems.split(',').any(|s| s == name) {
            continue;
        }
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        let data = run.join("data");
        let port = free_port();
        let child = match name {
            "victoria-metrics" => {
                let Some(bin) = vigil_bench::servers::victoria_metrics() else {
                    println!("victoria-metrics: not installed, not run");
                    continue;
                };
                let c = vigil_bench::spawn(
                    std::path::Path::new(bin),
                    &[
                        format!("-storageDataPath={}", data.display()),
                        format!("-httpListenAddr=127.0.0.1:{port}"),
                        "-retentionPeriod=100y".into(),
                        "-search.latencyOffset=0s".into(),
                        "-search.disableCache".into(),
                    ],
                );
                while http_get(port, "/health").is_none() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                c
            }
            _ => {
                let bin = if name == "vigil" {
                    vigil.display().to_string()
                } else {
                    vigil_bench::servers::PROMETHEUS.to_string()
                };
                let c = start(&bin, &data, port, &[], &run.join("log"));
                wait_ready(port);
                c
            }
        };
        let pid = child.0.id();
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/api/v1/write");
        let cpu0 = cpu_seconds(pid).unwrap();
        let t = Instant::now();
        for body in &bodies {
            let resp = rt
                .block_on(
                    client
                        .post(&url)
                        .header("Content-Encoding", "snappy")
                        .header(
                            "Content-Type",
                            if v2 {
                                "application/x-protobuf;proto=io.prometheus.write.v2.Request"
                            } else {
                                "application/x-protobuf"
                            },
                        )
                        .header(
                            "X-Prometheus-Remote-Write-Version",
                            if v2 { "2.0.0" } else { "0.1.0" },
                        )
                        .body(body.clone())
                        .send(),
                )
                .unwrap();
            assert!(
                resp.status().is_success(),
                "{name}: remote write: {}",
                resp.status()
            );
        }
        let took = t.elapsed();
        if name == "victoria-metrics" {
            // It buffers what it takes for about a second before it is searchable.
            let _ = http_get(port, "/internal/force_flush");
            std::thread::sleep(Duration::from_secs(2));
        }
        let cpu = cpu_seconds(pid).unwrap() - cpu0;
        let peak = peak_rss_bytes(pid).unwrap_or(0);
        let n = scalar(port, "count(last_over_time({series!=\"\"}[1d]))");
        let s = scalar(port, "sum(count_over_time({series!=\"\"}[1d]))");
        assert_eq!(n, series as f64, "{name}: series");
        assert_eq!(s, total, "{name}: samples");
        let per_m = cpu / (total / 1e6);
        println!(
            "{name:<17} {cpu:>6.1} CPU-s ({per_m:.2} per M samples), sent in {:>5.1} s, peak RSS {:>5.0} MB ({n} series, {s} samples checked)",
            took.as_secs_f64(),
            peak as f64 / 1e6
        );
        rows.push((name, per_m));
        drop(child);
        let _ = std::fs::remove_dir_all(&run);
    }
    let find = |name: &str| rows.iter().find(|r| r.0 == name).map(|r| r.1);
    if let Some(v) = find("vigil") {
        println!();
        for other in ["prometheus", "victoria-metrics"] {
            if let Some(o) = find(other) {
                println!("vigil / {other}: CPU per sample {:.2}x", v / o);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
