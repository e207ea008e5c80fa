//! Scraping the protobuf exposition format and the native histograms it carries, with Debian's
//! Prometheus 2.42 (`--enable-feature=native-histograms`) scraping the same targets as the
//! referee: a target that encodes its body with prost (an encoder independent of vigil's
//! decoder), and Debian's node exporter (a real Go client library).

#[path = "../../model/tests/support/client_model.rs"]
mod client_model;
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use client_model::*;
use support::*;

/// A target serving `body(k, t)` to the `k`-th request of each scraper (told apart by their
/// User-Agent), stamped `t`, a second after the one before, starting a minute ago: both
/// scrapers get the same sequence of samples at the same times, however their scrapes fall
/// (Prometheus 2.42 fails a whole scrape that repeats a native histogram's timestamp, so each
/// request gets a new one). As protobuf when the request's Accept asks for it, and as nothing
/// else: a scraper that does not ask gets a 406.
fn serve_proto(body: fn(i64, i64) -> Vec<u8>) -> u16 {
    serve(body, None)
}

const TEXT: Option<&str> = Some("text/plain; version=0.0.4");
const OPENMETRICS: Option<&str> =
    Some("application/openmetrics-text; version=1.0.0; charset=utf-8");

/// As [`serve_proto`], in the format of the content type `text` whatever the Accept (protobuf
/// when None). Requests are counted per scraper and request line, so two jobs (or two
/// servers with one User-Agent) told apart by a parameter each get the whole sequence.
fn serve(body: fn(i64, i64) -> Vec<u8>, text: Option<&'static str>) -> u16 {
    let proto = text.is_none();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let base = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 1000
        - 60)
        * 1000;
    let seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, i64>>> =
        Default::default();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&req).to_lowercase();
                if proto && !req.contains("application/vnd.google.protobuf") {
                    let _ = s.write_all(
                        b"HTTP/1.1 406 Not Acceptable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                let mut agent = req
                    .lines()
                    .find_map(|l| l.strip_prefix("user-agent:"))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                agent.push_str(req.lines().next().unwrap_or(""));
                let k = {
                    let mut m = seen.lock().unwrap();
                    let c = m.entry(agent).or_insert(0);
                    *c += 1;
                    *c
                };
                let b = body(k, base + k * 1000);
                let ct = text.unwrap_or(
                    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                );
                let _ = s.write_all(&b);
            });
        }
    });
    port
}

/// The `k`-th exposition, every sample stamped `ts` so that both scrapers store the same
/// samples: an integer native histogram whose counts grow and whose layout
/// widens every third step, a float gauge histogram, a classic histogram, a summary and a
/// counter.
fn body(k: i64, ts: i64) -> Vec<u8> {
    let n = (k % 1000) as u64 + 1;
    let wide = k % 3 == 0;
    let mut positive_span = vec![BucketSpan {
        offset: -1,
        length: 2,
    }];
    let mut positive_delta = vec![n as i64, n as i64];
    if wide {
        positive_span.push(BucketSpan {
            offset: 2,
            length: 1,
        });
        positive_delta.push(-(n as i64) + 1);
    }
    // Every observation in a bucket: Prometheus refuses a count that differs.
    let count = 3 * n + 1 + if wide { n + 1 } else { 0 };
    let native = Histogram {
        sample_count: count,
        sample_sum: 1.25 * n as f64,
        schema: 2,
        zero_threshold: 0.001,
        zero_count: 1,
        positive_span,
        positive_delta,
        negative_span: vec![BucketSpan {
            offset: 0,
            length: 1,
        }],
        negative_delta: vec![0],
        ..Default::default()
    };
    let gauge = Histogram {
        sample_count_float: (k % 7) as f64 + 2.5,
        sample_sum: -2.0,
        schema: 0,
        zero_threshold: 0.01,
        zero_count_float: 0.5,
        positive_span: vec![BucketSpan {
            offset: 1,
            length: 2,
        }],
        positive_count: vec![1.5, (k % 7) as f64 + 0.5],
        ..Default::default()
    };
    let bucket = |le: f64, c: u64| Bucket {
        cumulative_count: c,
        upper_bound: le,
        ..Default::default()
    };
    let classic = Histogram {
        sample_count: 4 * n,
        sample_sum: 0.5 * n as f64,
        bucket: vec![bucket(0.1, n), bucket(1.0, 2 * n), bucket(10.0, 3 * n)],
        ..Default::default()
    };
    let m = |labels: Vec<LabelPair>, f: &dyn Fn(&mut Metric)| {
        let mut x = Metric {
            label: labels,
            timestamp_ms: ts,
            ..Default::default()
        };
        f(&mut x);
        x
    };
    delimited(&[
        fam(
            "nh_seconds",
            HISTOGRAM,
            vec![m(vec![label("route", "/a")], &|x| {
                x.histogram = Some(native.clone())
            })],
        ),
        fam(
            "queue_depth",
            GAUGE_HISTOGRAM,
            vec![m(vec![], &|x| x.histogram = Some(gauge.clone()))],
        ),
        fam(
            "classic_seconds",
            HISTOGRAM,
            vec![m(vec![label("route", "/b")], &|x| {
                x.histogram = Some(classic.clone())
            })],
        ),
        fam(
            "rpc_seconds",
            SUMMARY,
            vec![m(vec![], &|x| {
                x.summary = Some(Summary {
                    sample_count: n,
                    sample_sum: 0.1 * n as f64,
                    quantile: vec![
                        Quantile {
                            quantile: 0.5,
                            value: 0.05,
                        },
                        Quantile {
                            quantile: 1.0,
                            value: 0.3,
                        },
                    ],
                    ..Default::default()
                })
            })],
        ),
        fam(
            "jobs_total",
            COUNTER,
            vec![m(vec![label("kind", "a\"b")], &|x| {
                x.counter = Some(Counter {
                    value: 3.0 * n as f64,
                    ..Default::default()
                })
            })],
        ),
    ])
}

/// Prometheus 2.42 scraping `target` as job `t`, and `extra` jobs.
fn prometheus(dir: &Path, port: u16, target: u16, extra: &str) -> Proc {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: t\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n{extra}"
        ),
    )
    .unwrap();
    let p = spawn(
        "prometheus",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", cfg.display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--enable-feature=native-histograms".into(),
        ],
        dir,
    );
    wait_http(&format!("http://127.0.0.1:{port}/-/ready"));
    p
}

fn vigil(dir: &Path, target: u16, extra: &str) -> (Proc, String) {
    let cfg = dir.join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: t\n    scrape_native_histograms: true\n{extra}    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
        ),
    )
    .unwrap();
    let c = format!("--config.file={}", cfg.display());
    vigil_on(dir, &dir.join("vigil-data"), "vigil", &[c.as_str()])
}

fn ask(base: &str, q: &str, t: f64) -> serde_json::Value {
    get_json(&format!("{base}/api/v1/query?query={}&time={t:.3}", enc(q)))["data"].clone()
}

/// The newest step both hold: the smaller of each one's newest `nh_seconds` timestamp.
fn newest_common(bases: &[&str]) -> i64 {
    bases
        .iter()
        .map(|b| {
            let r = query(b, "max(timestamp(nh_seconds))");
            r.first()
                .and_then(|x| x["value"][1].as_str()?.parse::<f64>().ok())
                .map(|s| (s * 1000.0) as i64)
                .unwrap_or(0)
        })
        .min()
        .unwrap_or(0)
}

/// vigil asks for protobuf (the target answers nothing else) and stores what Prometheus 2.42
/// stores from the same bodies: native histograms (integer, float, gauge) and the classic
/// series of classic histograms, summaries and counters, with the same labels (`le` and
/// `quantile` as OpenMetrics floats); PromQL over them answers the same.
#[test]
fn native_histograms_are_scraped_as_prometheus_scrapes_them() {
    let dir = temp_dir("native-scrape");
    let target = serve_proto(body);
    let (v, vbase) = vigil(&dir, target, "");
    // Prometheus also federates vigil's native histograms (asking for protobuf, as it does
    // with the feature on), renamed `fed_*` beside its own scrape's series.
    let federate = format!(
        "  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params: {{'match[]': ['{{__name__=~\"nh_seconds|queue_depth|jobs_total\"}}']}}\n    static_configs:\n      - targets: ['{}']\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        target_label: __name__\n        replacement: fed_$1\n",
        vbase.trim_start_matches("http://")
    );
    let pport = free_port();
    let _prom = prometheus(&dir, pport, target, &federate);
    let pbase = format!("http://127.0.0.1:{pport}");

    // Ten steps both hold, then a step back from the newest, so no answer is cut short.
    let first = wait_for("both to hold a step", Duration::from_secs(60), || {
        let t = newest_common(&[&pbase, &vbase]);
        (t > 0).then_some(t)
    });
    let last = wait_for("ten more steps", Duration::from_secs(90), || {
        let t = newest_common(&[&pbase, &vbase]);
        (t >= first + 20_000).then_some(t)
    });
    let times: Vec<f64> = [last - 1000, last - 6000, last - 9000]
        .iter()
        .map(|t| *t as f64 / 1000.0 + 0.5)
        .collect();
    let queries = [
        "nh_seconds",
        "queue_depth",
        "nh_seconds[5s]",
        "histogram_count(nh_seconds)",
        "histogram_sum(queue_depth)",
        "histogram_fraction(0, 2, nh_seconds)",
        "histogram_count(rate(nh_seconds[5s]))",
        "{__name__=~\"classic_seconds.*|rpc_seconds.*|jobs_total\"}",
        "rate(classic_seconds_bucket[5s])",
        "histogram_quantile(0.5, rate(classic_seconds_bucket[5s]))",
    ];
    let mut answered = 0;
    for q in queries {
        for &t in &times {
            let want = ask(&pbase, q, t);
            let got = ask(&vbase, q, t);
            answered += usize::from(want["result"].as_array().is_some_and(|r| !r.is_empty()));
            let (got, want) = (sorted(got), sorted(want));
            assert!(
                close(&got, &want),
                "{q} at {t}\nvigil: {got}\nPrometheus: {want}\nvigil log:\n{}",
                v.log_text()
            );
        }
    }
    assert_eq!(answered, queries.len() * times.len());
    // What Prometheus federated: each sample is vigil's at the same time, histograms and
    // floats, gauge histograms still gauges.
    let at = last as f64 / 1000.0;
    for name in ["nh_seconds", "queue_depth", "jobs_total"] {
        let fed = ask(&pbase, &format!("fed_{name}[30s]"), at);
        let ours = ask(&vbase, &format!("{name}[40s]"), at);
        let pick = |v: &serde_json::Value| -> Vec<serde_json::Value> {
            let r = &v["result"][0];
            r["histograms"]
                .as_array()
                .or_else(|| r["values"].as_array())
                .cloned()
                .unwrap_or_default()
        };
        let (fed, ours) = (pick(&fed), pick(&ours));
        assert!(
            fed.len() >= 5,
            "{name}: Prometheus federated too little: {fed:?}"
        );
        for x in &fed {
            assert!(
                ours.iter().any(|y| close(x, y)),
                "{name}: federated {x} is not one of vigil's samples {ours:?}"
            );
        }
    }
    let hint = query(&pbase, "histogram_count(fed_queue_depth)");
    assert!(!hint.is_empty(), "the gauge histogram was not federated");
    // The families as vigil writes them: a gauge histogram stays one.
    let families = federate_protobuf(&vbase, "{__name__=~\"nh_seconds|queue_depth|jobs_total\"}");
    let kind = |name: &str| families.iter().find(|f| f.name == name).map(|f| f.r#type);
    assert_eq!(kind("nh_seconds"), Some(HISTOGRAM));
    assert_eq!(kind("queue_depth"), Some(GAUGE_HISTOGRAM));
    assert_eq!(kind("jobs_total"), Some(UNTYPED));
    // Text is what a scraper gets that does not rank protobuf first.
    let (_, _, text) = curl(&[
        "-g",
        "-H",
        "Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.1,text/plain;q=0.5",
        &format!("{vbase}/federate?match[]=jobs_total"),
    ]);
    assert!(text.contains("# TYPE jobs_total untyped"), "{text}");

    // Remote read of vigil's histograms by a second vigil (which asks for
    // STREAMED_XOR_CHUNKS first) holding no data of its own: it answers what vigil answers.
    // Prometheus 2.42 reads the floats beside them (`SAMPLES`); its remote read client leaves
    // native histograms out of what it decodes, so it cannot referee them.
    let read_cfg = format!("remote_read:\n  - url: {vbase}/api/v1/read\n    read_recent: true\n");
    let rdir = dir.join("reader");
    std::fs::create_dir_all(&rdir).unwrap();
    let rport = free_port();
    let rcfg = rdir.join("prometheus.yml");
    std::fs::write(&rcfg, format!("global:\n  scrape_interval: 1s\n{read_cfg}")).unwrap();
    let _reader = spawn(
        "prometheus-reader",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", rcfg.display()),
            format!("--storage.tsdb.path={}", rdir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{rport}"),
            "--enable-feature=native-histograms".into(),
        ],
        &rdir,
    );
    let rbase = format!("http://127.0.0.1:{rport}");
    wait_http(&format!("{rbase}/-/ready"));
    let vcfg = rdir.join("vigil.yml");
    std::fs::write(&vcfg, &read_cfg).unwrap();
    let c = format!("--config.file={}", vcfg.display());
    let (_vreader, vrbase) = vigil_on(
        &rdir,
        &rdir.join("vigil-data"),
        "vigil-reader",
        &[c.as_str()],
    );
    // Off the whole second the samples sit on: 2.42's windows are closed on the left.
    let at = at + 0.5;
    let floats = sorted(ask(&vbase, "jobs_total[10s]", at));
    let got = sorted(ask(&rbase, "jobs_total[10s]", at));
    assert!(
        close(&got, &floats),
        "remote-read by Prometheus: {got}\nvigil: {floats}"
    );
    for q in [
        "nh_seconds[10s]",
        "queue_depth[10s]",
        "histogram_count(rate(nh_seconds[5s]))",
        "jobs_total[10s]",
    ] {
        let want = sorted(ask(&vbase, q, at));
        let got = sorted(ask(&vrbase, q, at));
        assert!(
            want["result"].as_array().is_some_and(|r| !r.is_empty()) && close(&got, &want),
            "{q} remote-read by vigil: {got}\nvigil: {want}"
        );
    }
}

/// The `k`-th text exposition, stamped `ts`: classic histograms whose buckets grow at
/// different rates (one of them resets every 15 steps), one whose buckets go down (no
/// histogram can be made of it), and a counter.
fn classic_body(k: i64, ts: i64) -> Vec<u8> {
    let n = k % 15 + 1;
    let mut b = String::from("# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds histogram\n");
    for (path, step) in [("/a", 1), ("/b", 3)] {
        let c = [
            2 * n * step,
            3 * n * step + 1,
            3 * n * step + 1,
            4 * n * step + 2,
        ];
        for (le, v) in ["0.1", "0.5", "1", "+Inf"].iter().zip(c) {
            b += &format!("rpc_seconds_bucket{{path=\"{path}\",le=\"{le}\"}} {v} {ts}\n");
        }
        b += &format!(
            "rpc_seconds_sum{{path=\"{path}\"}} {} {ts}\n",
            0.3 * (n * step) as f64
        );
        b += &format!("rpc_seconds_count{{path=\"{path}\"}} {} {ts}\n", c[3]);
    }
    b += &format!(
        "# TYPE bad_seconds histogram\nbad_seconds_bucket{{le=\"1\"}} 5 {ts}\nbad_seconds_bucket{{le=\"+Inf\"}} 3 {ts}\nbad_seconds_count 3 {ts}\n"
    );
    b += &format!("# TYPE jobs_total counter\njobs_total {} {ts}\n", 5 * k);
    b.into_bytes()
}

/// `convert_classic_histograms_to_nhcb`: vigil stores a text target's classic histograms as
/// native histograms with custom buckets, and PromQL over them answers what Prometheus 2.42
/// (which predates the conversion) answers over the classic series of the same bodies:
/// counts, sums, quantiles and fractions, raw and over rates. The classic series are gone
/// unless `always_scrape_classic_histograms` keeps them too; a family that cannot be a
/// histogram is dropped and counted.
#[test]
fn classic_histograms_convert_to_native_ones_with_custom_buckets() {
    let dir = temp_dir("nhcb-scrape");
    let target = serve(classic_body, TEXT);
    let keep = format!(
        "  - job_name: keep\n    convert_classic_histograms_to_nhcb: true\n    always_scrape_classic_histograms: true\n    params: {{job: [keep]}}\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    );
    let cfg = dir.join("vigil.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: t\n    convert_classic_histograms_to_nhcb: true\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n{keep}"
        ),
    )
    .unwrap();
    let c = format!("--config.file={}", cfg.display());
    let (v, vbase) = vigil_on(&dir, &dir.join("vigil-data"), "vigil", &[c.as_str()]);
    let pport = free_port();
    let _prom = prometheus(&dir, pport, target, "");
    let pbase = format!("http://127.0.0.1:{pport}");
    let newest = |b: &str| {
        let r = query(b, "max(timestamp(jobs_total{job=\"t\"}))");
        r.first()
            .and_then(|x| x["value"][1].as_str()?.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as i64)
            .unwrap_or(0)
    };
    let common = || newest(&pbase).min(newest(&vbase));
    let first = wait_for("both to hold a step", Duration::from_secs(60), || {
        let t = common();
        (t > 0).then_some(t)
    });
    let last = wait_for("twenty more steps", Duration::from_secs(90), || {
        let t = common();
        (t >= first + 20_000).then_some(t)
    });
    // (`+ 0` drops the name, as the functions do.)
    let pairs = [
        (
            "histogram_count(rpc_seconds{job=\"t\"})",
            "rpc_seconds_count + 0",
        ),
        (
            "histogram_sum(rpc_seconds{job=\"t\"})",
            "rpc_seconds_sum + 0",
        ),
        (
            "histogram_quantile(0.9, rpc_seconds{job=\"t\"})",
            "histogram_quantile(0.9, rpc_seconds_bucket)",
        ),
        (
            "histogram_quantile(0.3, rate(rpc_seconds{job=\"t\"}[5s]))",
            "histogram_quantile(0.3, rate(rpc_seconds_bucket[5s]))",
        ),
        (
            "histogram_fraction(0, 0.5, rpc_seconds{job=\"t\"})",
            "sum without (le) (rpc_seconds_bucket{le=\"0.5\"}) / rpc_seconds_count",
        ),
        (
            "histogram_count(increase(rpc_seconds{job=\"t\"}[20s]))",
            "increase(rpc_seconds_count[20s])",
        ),
    ];
    let mut answered = 0;
    for (ours, theirs) in pairs {
        for t in [last - 1000, last - 7000, last - 12_000] {
            let t = t as f64 / 1000.0 + 0.5;
            let want = sorted(ask(&pbase, theirs, t));
            let got = sorted(ask(&vbase, ours, t));
            answered += usize::from(want["result"].as_array().is_some_and(|r| r.len() == 2));
            assert!(
                close(&got, &want),
                "{ours} at {t}\nvigil: {got}\nPrometheus ({theirs}): {want}\nvigil log:\n{}",
                v.log_text()
            );
        }
    }
    assert_eq!(answered, pairs.len() * 3);
    let at = last as f64 / 1000.0;
    let count = |q: &str| {
        ask(&vbase, q, at)["result"]
            .as_array()
            .map_or(0, |r| r.len())
    };
    // Converted: one histogram series per path, no classic series, nothing of the family
    // that cannot be a histogram; kept beside the histograms in the other job.
    assert_eq!(count("rpc_seconds{job=\"t\"}"), 2);
    assert_eq!(
        count("{__name__=~\"rpc_seconds_.+|bad_seconds.*\",job=\"t\"}"),
        0
    );
    assert_eq!(count("rpc_seconds{job=\"keep\"}"), 2);
    assert_eq!(count("rpc_seconds_bucket{job=\"keep\"}"), 8);
    assert_eq!(count("jobs_total"), 2);
    // Two jobs, every scrape since the first: at least one failure per scrape each.
    let (_, metrics) = get(&format!("{vbase}/metrics"));
    let n: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vigil_scrape_nhcb_conversion_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(n >= 40.0, "{n} failures counted");
}

/// Step `k`'s protobuf body (stamped `ts`): a counter created 30s before the sequence's base
/// that resets between steps 9 and 10 (a new created timestamp, counting from 1 again), and
/// an integer native histogram created with it.
fn created_body(k: i64, ts: i64) -> Vec<u8> {
    let base = ts - k * 1000;
    let (value, created) = if k < 10 {
        (k, base - 30_000)
    } else {
        (k - 9, base + 9_500)
    };
    let stamp = |ms: i64| {
        Some(Timestamp {
            seconds: ms.div_euclid(1000),
            nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
        })
    };
    let label = vec![LabelPair {
        name: "a".into(),
        value: "1".into(),
    }];
    let families = [
        MetricFamily {
            name: "c_total".into(),
            r#type: COUNTER,
            metric: vec![Metric {
                label: label.clone(),
                counter: Some(Counter {
                    value: value as f64,
                    created_timestamp: stamp(created),
                    ..Default::default()
                }),
                timestamp_ms: ts,
                ..Default::default()
            }],
            ..Default::default()
        },
        MetricFamily {
            name: "h".into(),
            r#type: HISTOGRAM,
            metric: vec![Metric {
                label,
                histogram: Some(Histogram {
                    sample_count: 2 * k as u64,
                    sample_sum: k as f64,
                    schema: 1,
                    zero_threshold: 0.001,
                    positive_span: vec![BucketSpan {
                        offset: 0,
                        length: 2,
                    }],
                    positive_delta: vec![k, 0],
                    created_timestamp: stamp(base - 30_000),
                    ..Default::default()
                }),
                timestamp_ms: ts,
                ..Default::default()
            }],
            ..Default::default()
        },
    ];
    let mut b = Vec::new();
    for f in &families {
        prost::Message::encode_length_delimited(f, &mut b).unwrap();
    }
    b
}

/// Step `k`'s OpenMetrics body: a counter with its `_created` line (30s before the base).
fn created_om_body(k: i64, ts: i64) -> Vec<u8> {
    let created = (ts - k * 1000 - 30_000) as f64 / 1000.0;
    format!(
        "# TYPE oc counter\noc_total{{a=\"1\"}} {k} {}\noc_created{{a=\"1\"}} {created}\n# EOF\n",
        ts as f64 / 1000.0
    )
    .into_bytes()
}

/// `--enable-feature=created-timestamp-zero-ingestion`: a 0 at each counter's and histogram's
/// created timestamp (protobuf's `created_timestamp`, OpenMetrics' `_created`), once per
/// created timestamp however many scrapes follow, a new one after a reset; no refusal of the
/// repeated attempts counted as out of order; OpenMetrics' `_created` series not stored.
/// Without the feature, none of that. (Prometheus 2.42 predates the feature: these are
/// current Prometheus's documented rules, checked on the samples stored.)
#[test]
fn created_timestamps_become_zero_samples() {
    let dir = temp_dir("created-zero");
    let proto = serve(created_body, None);
    let om = serve(created_om_body, OPENMETRICS);
    let cfg = |d: &Path, tag: &str| {
        let f = d.join("vigil.yml");
        std::fs::write(
            &f,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: p\n    scrape_native_histograms: true\n    params: {{v: [{tag}]}}\n    static_configs:\n      - targets: ['127.0.0.1:{proto}']\n  - job_name: o\n    params: {{v: [{tag}]}}\n    static_configs:\n      - targets: ['127.0.0.1:{om}']\n"
            ),
        )
        .unwrap();
        format!("--config.file={}", f.display())
    };
    let c = cfg(&dir, "zero");
    let (v, base) = vigil_on(
        &dir,
        &dir.join("data"),
        "vigil",
        &[
            c.as_str(),
            "--enable-feature=created-timestamp-zero-ingestion",
        ],
    );
    let plain_dir = dir.join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let c = cfg(&plain_dir, "plain");
    let (_plain, plain) = vigil_on(&plain_dir, &plain_dir.join("data"), "plain", &[c.as_str()]);
    let steps = |b: &str| {
        query(b, "count_over_time(c_total[5m])")
            .first()
            .and_then(|x| x["value"][1].as_str()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    wait_for("fifteen steps", Duration::from_secs(90), || {
        (steps(&base) >= 17.0 && steps(&plain) >= 15.0).then_some(())
    });
    // Every point of a range, as (ms, value); histograms by their count.
    let points = |b: &str, q: &str| -> Vec<(i64, String)> {
        let r = query(b, &format!("{q}[5m]"));
        let s = &r.first().unwrap_or_else(|| panic!("{q}: nothing"));
        let f = s["values"].as_array().cloned().unwrap_or_default();
        let h = s["histograms"].as_array().cloned().unwrap_or_default();
        f.iter()
            .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
            .chain(h.iter().map(|p| {
                (
                    p[0].as_f64().unwrap(),
                    p[1]["count"].as_str().unwrap().to_string(),
                )
            }))
            .map(|(t, v)| ((t * 1000.0).round() as i64, v))
            .collect()
    };
    let zeros = |p: &[(i64, String)]| -> Vec<i64> {
        p.iter().filter(|x| x.1 == "0").map(|x| x.0).collect()
    };
    let c = points(&base, "c_total");
    // Step 1 is the first sample: the sequence's base is a second before it.
    let first = c.iter().find(|x| x.1 == "1").unwrap().0 - 1000;
    assert_eq!(
        zeros(&c),
        [first - 30_000, first + 9_500],
        "c_total: {c:?}\n{}",
        v.log_text()
    );
    let h = points(&base, "h");
    assert_eq!(zeros(&h), [first - 30_000], "h: {h:?}");
    let oc = points(&base, "oc_total");
    let oc_first = oc.iter().find(|x| x.1 == "1").unwrap().0 - 1000;
    assert_eq!(zeros(&oc), [oc_first - 30_000], "oc_total: {oc:?}");
    assert!(query(&base, "oc_created").is_empty());
    let (_, metrics) = get(&format!("{base}/metrics"));
    for name in [
        "prometheus_target_scrapes_sample_out_of_order_total ",
        "prometheus_tsdb_out_of_order_samples_total ",
    ] {
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(n.trim(), "0", "{name}");
    }
    // Without the feature: no zero samples, `_created` an ordinary series.
    assert!(zeros(&points(&plain, "c_total")).is_empty());
    assert!(zeros(&points(&plain, "oc_total")).is_empty());
    assert_eq!(query(&plain, "oc_created").len(), 1);
}

/// Equal JSON, numbers in strings within 1e-12 relative: bucket bounds at positive schemas
/// differ in the last place (vigil computes them with `exp2`, Prometheus reads a table;
/// docs/promql-differences.md).
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (String(x), String(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) if p.is_finite() && q.is_finite() => {
                p == q || (p - q).abs() <= 1e-12 * p.abs().max(q.abs())
            }
            _ => x == y,
        },
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| close(p, q)))
        }
        _ => a == b,
    }
}

/// `/federate` asked for the delimited protobuf format: its families, decoded by prost.
fn federate_protobuf(base: &str, matcher: &str) -> Vec<MetricFamily> {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /federate?match[]={} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited\r\n\r\n",
        enc(matcher)
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = &buf[at..];
    let mut out = Vec::new();
    while !body.is_empty() {
        out.push(<MetricFamily as prost::Message>::decode_length_delimited(&mut body).unwrap());
    }
    out
}

fn sorted(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(r) = v["result"].as_array_mut() {
        r.sort_by_key(|x| x["metric"].to_string());
    }
    v
}

/// Debian's node exporter (Go's client library) asked for protobuf by both: vigil and
/// Prometheus 2.42 store the same series (names and labels, summaries' quantiles included).
#[test]
fn a_go_exporter_scraped_in_protobuf_gives_prometheus_s_series() {
    let dir = temp_dir("native-scrape-node");
    let (_ne, ne_port) = node_exporter(&dir);
    let pport = free_port();
    let _prom = prometheus(&dir, pport, ne_port, "");
    let pbase = format!("http://127.0.0.1:{pport}");
    let (v, vbase) = vigil(&dir, ne_port, "    scrape_protocols: [PrometheusProto]\n");
    let series = |base: &str| -> std::collections::BTreeSet<String> {
        let j = get_json(&format!(
            "{base}/api/v1/series?match[]={}",
            enc("{job=\"t\",__name__=~\"go_.*|node_exporter_.*|process_.*|promhttp_.*\"}")
        ));
        j["data"]
            .as_array()
            .map(|a| a.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    };
    // Both sets settle within a few scrapes; the last pair is compared either way, so a
    // difference shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut theirs, mut ours) = Default::default();
    while std::time::Instant::now() < deadline {
        (theirs, ours) = (series(&pbase), series(&vbase));
        if theirs.len() > 20 && theirs == ours {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        ours.iter().any(|s| s.contains("\"quantile\":\"1.0\"")),
        "no summary quantile as protobuf writes it: {ours:?}\n{}",
        v.log_text()
    );
    assert_eq!(ours, theirs);
}

/// `--enable-feature=extra-scrape-metrics`: vigil reports a scrape's timeout, sample limit
/// and body size as Debian's Prometheus 2.42 does with the same feature, for the same target
/// and limits.
#[test]
fn extra_scrape_metrics_are_reported_as_prometheus_reports_them() {
    fn fixed(_: i64, _: i64) -> Vec<u8> {
        b"# TYPE a gauge\na{x=\"1\"} 1\n".to_vec()
    }
    let dir = temp_dir("native-scrape-extra");
    let target = serve(fixed, TEXT);
    let job = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: t\n    sample_limit: 100\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    );
    let pcfg = dir.join("prometheus.yml");
    std::fs::write(&pcfg, &job).unwrap();
    let pport = free_port();
    let _prom = spawn(
        "prometheus",
        &debian_bin("prometheus"),
        &[
            format!("--config.file={}", pcfg.display()),
            format!("--storage.tsdb.path={}", dir.join("prom-data").display()),
            format!("--web.listen-address=127.0.0.1:{pport}"),
            "--enable-feature=extra-scrape-metrics".into(),
        ],
        &dir,
    );
    wait_http(&format!("http://127.0.0.1:{pport}/-/ready"));
    let vcfg = dir.join("vigil.yml");
    std::fs::write(&vcfg, &job).unwrap();
    let c = format!("--config.file={}", vcfg.display());
    let (_v, vbase) = vigil_on(
        &dir,
        &dir.join("vigil-data"),
        "vigil",
        &[c.as_str(), "--enable-feature=extra-scrape-metrics"],
    );
    let pbase = format!("http://127.0.0.1:{pport}");
    let values = |base: &str| -> Vec<(String, String)> {
        let j = get_json(&format!(
            "{base}/api/v1/query?query={}",
            enc(
                r#"{job="t", __name__=~"scrape_timeout_seconds|scrape_sample_limit|scrape_body_size_bytes"}"#
            )
        ));
        let mut v: Vec<(String, String)> = j["data"]["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["metric"]["__name__"].as_str().unwrap_or("").to_string(),
                            s["value"][1].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let theirs = wait_for(
        "Prometheus's extra scrape metrics",
        Duration::from_secs(30),
        || {
            let v = values(&pbase);
            (v.len() == 3).then_some(v)
        },
    );
    let ours = wait_for(
        "vigil's extra scrape metrics",
        Duration::from_secs(30),
        || {
            let v = values(&vbase);
            (v.len() == 3).then_some(v)
        },
    );
    assert_eq!(ours, theirs);
    assert_eq!(
        theirs,
        vec![
            (
                "scrape_body_size_bytes".to_string(),
                fixed(0, 0).len().to_string()
            ),
            ("scrape_sample_limit".to_string(), "100".to_string()),
            ("scrape_timeout_seconds".to_string(), "0.9".to_string()),
        ]
    );
}
