//! The OTLP receiver (`--web.enable-otlp-receiver`): a request of every metric type stored as
//! Prometheus translates it and read back through the query API; gzip and JSON; bad requests
//! refused
//! by name with nothing stored; the `otlp:` settings applied from the config, and again after
//! a reload.
//!
//! No OTLP sender is packaged in Debian (its OpenTelemetry Go package predates the OTLP
//! exporters), so requests are built here with the upstream protobuf field numbers and the
//! expected series come from Prometheus's translator rules (see `crates/remote/src/otlp.rs`).

mod support;

use std::process::Command;
use std::time::Duration;

use prost::Message;
use support::*;
use vigil_remote::otlp_proto::{
    self as p, AnyValue, KeyValue, any_value, metric, number_data_point,
};

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn number(t_ms: u64, v: f64, attrs: Vec<KeyValue>) -> p::NumberDataPoint {
    p::NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> p::Metric {
    p::Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn request(metrics: Vec<p::Metric>) -> Vec<u8> {
    p::ExportMetricsServiceRequest {
        resource_metrics: vec![p::ResourceMetrics {
            resource: Some(p::Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.namespace", "shop"),
                    kv("service.instance.id", "pod-1"),
                    kv("k8s.namespace.name", "prod"),
                    kv("k8s.pod.name", "checkout-7d9"),
                ],
            }),
            scope_metrics: vec![p::ScopeMetrics {
                metrics,
                ..Default::default()
            }],
        }],
    }
    .encode_to_vec()
}

fn post(v: &Vigil, body: &[u8], ct: &str, encoding: Option<&str>) -> (u16, String) {
    let f = v.dir.join("otlp.bin");
    std::fs::write(&f, body).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", &format!("Content-Type: {ct}")]);
    if let Some(e) = encoding {
        cmd.args(["-H", &format!("Content-Encoding: {e}")]);
    }
    let out = cmd
        .arg("--data-binary")
        .arg(format!("@{}", f.display()))
        .arg(format!("{}/api/v1/otlp/v1/metrics", v.base))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

fn one(v: &Vigil, q: &str) -> Option<(serde_json::Value, f64)> {
    let r = get_json(&format!("{}/api/v1/query?query={}", v.base, enc(q)));
    let s = &r["data"]["result"][0];
    let val = s["value"][1].as_str()?.parse().ok()?;
    Some((s["metric"].clone(), val))
}

const PB: &str = "application/x-protobuf";

#[test]
fn otlp_metrics_are_stored_as_prometheus_translates_them() {
    let cfg = "otlp:\n  promote_resource_attributes: [k8s.namespace.name]\nscrape_configs: []\n";
    let v = Vigil::start(
        "otlp",
        Some(cfg),
        &["--web.enable-otlp-receiver", "--web.enable-lifecycle"],
    );
    let t = now_ms() - 5_000;
    let mut counter = number(t, 0.0, vec![kv("http.method", "GET")]);
    counter.value = Some(number_data_point::Value::AsInt(5));
    let body = request(vec![
        metric(
            "http.requests",
            "{request}",
            metric::Data::Sum(p::Sum {
                data_points: vec![counter],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                is_monotonic: true,
            }),
        ),
        metric(
            "memory.usage",
            "By",
            metric::Data::Gauge(p::Gauge {
                data_points: vec![number(t, 1024.0, vec![])],
            }),
        ),
        metric(
            "latency",
            "s",
            metric::Data::Histogram(p::Histogram {
                data_points: vec![p::HistogramDataPoint {
                    time_unix_nano: t * 1_000_000,
                    count: 4,
                    sum: Some(1.0),
                    bucket_counts: vec![2, 2, 0],
                    explicit_bounds: vec![0.1, 1.0],
                    ..Default::default()
                }],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        ),
        metric(
            "payload",
            "By",
            metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                data_points: vec![p::ExponentialHistogramDataPoint {
                    time_unix_nano: t * 1_000_000,
                    count: 7,
                    sum: Some(100.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(p::Buckets {
                        offset: 2,
                        bucket_counts: vec![2, 4],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        ),
    ]);
    let (code, text) = post(&v, &body, PB, None);
    assert_eq!((code, text.as_str()), (200, ""));
    let (labels, val) = one(&v, "http_requests_total").unwrap();
    assert_eq!(val, 5.0);
    assert_eq!(
        labels,
        serde_json::json!({"__name__": "http_requests_total", "http_method": "GET",
            "job": "shop/checkout", "instance": "pod-1", "k8s_namespace_name": "prod"})
    );
    assert_eq!(one(&v, "memory_usage_bytes").unwrap().1, 1024.0);
    // Classic buckets: half the observations at or below 0.1.
    assert_eq!(
        one(&v, "latency_seconds_bucket{le=\"0.1\"}").unwrap().1,
        2.0
    );
    assert_eq!(one(&v, "latency_seconds_count").unwrap().1, 4.0);
    // The exponential histogram is a native one: its count and the zero bucket's share.
    assert_eq!(one(&v, "histogram_count(payload_bytes)").unwrap().1, 7.0);
    assert_eq!(one(&v, "histogram_sum(payload_bytes)").unwrap().1, 100.0);
    // The resource's other attributes are on target_info, identified by job and instance.
    let (info, _) = one(&v, "target_info").unwrap();
    assert_eq!(info["k8s_pod_name"], "checkout-7d9", "{info}");
    assert_eq!(info["job"], "shop/checkout", "{info}");
    assert_eq!(info["service_name"], serde_json::Value::Null, "{info}");

    // gzip, as OTLP exporters send it.
    let gz_body = request(vec![metric(
        "gzipped",
        "",
        metric::Data::Gauge(p::Gauge {
            data_points: vec![number(t, 7.0, vec![])],
        }),
    )]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &gz_body).unwrap();
    let (code, _) = post(&v, &gz.finish().unwrap(), PB, Some("gzip"));
    assert_eq!(code, 200);
    assert_eq!(one(&v, "gzipped").unwrap().1, 7.0);

    // Refused, named, and nothing of the request stored.
    let (code, text) = post(&v, b"\xff\xff\xff\xff", PB, None);
    assert_eq!(code, 400, "{text}");
    // JSON, as OTLP/HTTP exporters may send it.
    let json = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"in.json","unit":"s","gauge":{{"dataPoints":[{{"timeUnixNano":"{}","asDouble":2.5}}]}}}}]}}]}}]}}"#,
        t * 1_000_000
    );
    let (code, text) = post(&v, json.as_bytes(), "application/json", None);
    assert_eq!(code, 200, "{text}");
    let (labels, val) = one(&v, "in_json_seconds").unwrap();
    assert_eq!((labels["job"].as_str(), val), (Some("web"), 2.5));
    let (code, text) = post(&v, b"{", "application/json", None);
    assert_eq!(code, 400, "{text}");
    // Another content type: 400, as current Prometheus answers every body it cannot read.
    let (code, text) = post(&v, b"x", "text/plain", None);
    assert_eq!(code, 400, "{text}");
    let mixed = request(vec![
        metric(
            "kept_out",
            "",
            metric::Data::Gauge(p::Gauge {
                data_points: vec![number(t, 1.0, vec![])],
            }),
        ),
        metric(
            "deltas",
            "",
            metric::Data::Sum(p::Sum {
                data_points: vec![number(t, 1.0, vec![])],
                aggregation_temporality: p::TEMPORALITY_DELTA,
                is_monotonic: true,
            }),
        ),
    ]);
    let (code, text) = post(&v, &mixed, PB, None);
    assert_eq!(code, 500, "{text}");
    assert!(
        text.contains("invalid temporality and type combination for metric \"deltas\""),
        "{text}"
    );
    assert!(one(&v, "kept_out").is_none());
    // Out of order: 400, as Prometheus answers it.
    let old = request(vec![metric(
        "memory.usage",
        "By",
        metric::Data::Gauge(p::Gauge {
            data_points: vec![number(t - 60_000, 1.0, vec![])],
        }),
    )]);
    let (code, text) = post(&v, &old, PB, None);
    assert_eq!(code, 400, "{text}");

    // A reload applies new settings to the next request.
    std::fs::write(
        v.dir.join("vigil.yml"),
        "otlp:\n  translation_strategy: NoTranslation\nscrape_configs: []\n",
    )
    .unwrap();
    let (code, text) = http("POST", &format!("{}/-/reload", v.base), None).unwrap();
    assert_eq!(code, 200, "{text}");
    let dotted = request(vec![metric(
        "app.up",
        "",
        metric::Data::Gauge(p::Gauge {
            data_points: vec![number(now_ms() - 1000, 1.0, vec![])],
        }),
    )]);
    assert_eq!(post(&v, &dotted, PB, None).0, 200);
    assert_eq!(one(&v, "{\"app.up\"}").unwrap().1, 1.0);
    assert!(one(&v, "app_up").is_none());
}

/// With `created-timestamp-zero-ingestion`, a counter's start time puts a 0 before its first
/// sample; a later request whose start is then in the series' past is stored all the same.
#[test]
fn otlp_start_times_become_zeros_with_their_feature() {
    let v = Vigil::start(
        "otlp-start",
        Some("scrape_configs: []\n"),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=created-timestamp-zero-ingestion",
        ],
    );
    let t = now_ms() - 20_000;
    let counter = |at: u64, v: f64| {
        let mut dp = number(at, v, vec![]);
        dp.start_time_unix_nano = (t - 10_000) * 1_000_000;
        request(vec![metric(
            "jobs.done",
            "",
            metric::Data::Sum(p::Sum {
                data_points: vec![dp],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                is_monotonic: true,
            }),
        )])
    };
    assert_eq!(post(&v, &counter(t, 5.0), PB, None).0, 200);
    assert_eq!(post(&v, &counter(t + 10_000, 7.0), PB, None).0, 200);
    let r = get_json(&format!(
        "{}/api/v1/query?query={}",
        v.base,
        enc("jobs_done_total[1m]")
    ));
    let values: Vec<(f64, String)> = r["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
        .collect();
    let s = |ms: u64| ms as f64 / 1000.0;
    assert_eq!(
        values,
        vec![
            (s(t - 10_000), "0".to_string()),
            (s(t), "5".to_string()),
            (s(t + 10_000), "7".to_string())
        ],
        "{r}"
    );
}

/// Without the flag the endpoint answers 404 with Prometheus's hint.
#[test]
fn otlp_receiver_needs_its_flag() {
    let v = Vigil::start("otlp-off", Some("scrape_configs: []\n"), &[]);
    let (code, text) = post(&v, &request(vec![]), PB, None);
    assert_eq!(code, 404);
    assert!(text.contains("--web.enable-otlp-receiver"), "{text}");
    wait_for("nothing", Duration::from_millis(1), || Some(()));
}

/// `--enable-feature=otlp-native-delta-ingestion`: a delta counter's points are stored as they
/// come and add up with `sum_over_time`, as Prometheus's documentation advises for them;
/// without the feature the same request is refused naming the metric and nothing of it is
/// stored. Enabling it beside `otlp-deltatocumulative` is refused at start-up, as in
/// Prometheus.
#[test]
fn otlp_deltas_are_stored_as_they_come_with_their_feature() {
    let t = now_ms() - 30_000;
    let deltas = |at: u64, v: f64| {
        request(vec![metric(
            "jobs.done",
            "",
            metric::Data::Sum(p::Sum {
                data_points: vec![number(at, v, vec![])],
                aggregation_temporality: p::TEMPORALITY_DELTA,
                is_monotonic: true,
            }),
        )])
    };
    let off = Vigil::start(
        "otlp-delta-off",
        Some("scrape_configs: []\n"),
        &["--web.enable-otlp-receiver"],
    );
    let (code, text) = post(&off, &deltas(t, 5.0), PB, None);
    assert_eq!(code, 500, "{text}");
    assert!(text.contains(r#"metric "jobs.done""#), "{text}");
    assert!(one(&off, "jobs_done_total").is_none());
    drop(off);
    let v = Vigil::start(
        "otlp-delta",
        Some("scrape_configs: []\n"),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=otlp-native-delta-ingestion",
        ],
    );
    for (i, d) in [5.0, 2.0, 4.0].into_iter().enumerate() {
        let (code, text) = post(&v, &deltas(t + i as u64 * 10_000, d), PB, None);
        assert_eq!(code, 200, "{text}");
    }
    let (_, total) = one(&v, "sum_over_time(jobs_done_total[1m])").expect("stored");
    assert_eq!(total, 11.0);
    let out = Command::new(vigil_bin())
        .args([
            "--enable-feature=otlp-native-delta-ingestion,otlp-deltatocumulative",
            "--web.listen-address=127.0.0.1:0",
        ])
        .arg(format!(
            "--storage.tsdb.path={}",
            v.dir.join("both").display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(
            "cannot enable otlp-deltatocumulative and otlp-native-delta-ingestion features at the same time"
        ),
        "{err}"
    );
}

/// `--enable-feature=otlp-deltatocumulative`: a stream's delta points are summed into a
/// cumulative counter before they are stored, so `jobs_done_total` reads as any counter does;
/// a point sent again is dropped and the request still succeeds.
#[test]
fn otlp_deltas_become_cumulative_with_their_feature() {
    let t = now_ms() - 30_000;
    let deltas = |at: u64, v: f64| {
        let mut dp = number(at, v, vec![kv("queue", "q1")]);
        dp.start_time_unix_nano = (at - 10_000) * 1_000_000;
        request(vec![metric(
            "jobs.done",
            "",
            metric::Data::Sum(p::Sum {
                data_points: vec![dp],
                aggregation_temporality: p::TEMPORALITY_DELTA,
                is_monotonic: true,
            }),
        )])
    };
    let v = Vigil::start(
        "otlp-delta-cumulative",
        Some("scrape_configs: []\n"),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=otlp-deltatocumulative",
        ],
    );
    for (i, d) in [5.0, 2.0, 4.0].into_iter().enumerate() {
        let (code, text) = post(&v, &deltas(t + i as u64 * 10_000, d), PB, None);
        assert_eq!(code, 200, "{text}");
    }
    // The second point again: dropped, the request answered as stored.
    let (code, text) = post(&v, &deltas(t + 10_000, 2.0), PB, None);
    assert_eq!(code, 200, "{text}");
    let r = get_json(&format!(
        "{}/api/v1/query?query={}",
        v.base,
        enc("jobs_done_total[1m]")
    ));
    let values: Vec<String> = r["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values, ["5", "7", "11"], "{r}");
    assert_eq!(r["data"]["result"][0]["metric"]["queue"], "q1", "{r}");
}

/// Each series' metadata in the WAL, by its labels other than `job` and `instance`: (type,
/// unit, help) as last logged, and how many entries were logged in all.
fn wal_metadata(
    wal_dir: &std::path::Path,
) -> (
    std::collections::BTreeMap<String, (String, String, String)>,
    usize,
) {
    let (by_labels, entries) = support::wal_metadata(wal_dir, |l| {
        let key: Vec<String> = l
            .iter()
            .filter(|l| l.name != "job" && l.name != "instance")
            .map(|l| format!("{}={}", l.name, l.value))
            .collect();
        key.join(",")
    });
    let out = by_labels
        .into_iter()
        .map(|(k, m)| {
            let kind = format!("{:?}", m.kind).to_lowercase();
            (k, (kind, m.unit.clone(), m.help.clone()))
        })
        .collect();
    (out, entries)
}

/// `--enable-feature=metadata-wal-records`: every series an OTLP request writes has its
/// metric's type, unit and help logged in the WAL, as Prometheus's OTLP appender gives them
/// (a non-monotonic sum is a gauge, a classic histogram's every series a histogram, the unit
/// as its words, `target_info` a gauge with Prometheus's help). The same request again logs
/// nothing; a changed description is logged for that metric's series only. What was logged
/// survives `kill -9`.
#[test]
fn otlp_metadata_is_logged_with_metadata_wal_records() {
    let v = Vigil::start(
        "otlp-metadata",
        Some("scrape_configs: []\n"),
        &[
            "--web.enable-otlp-receiver",
            "--enable-feature=metadata-wal-records",
        ],
    );
    let t = now_ms() - 20_000;
    let body = |at: u64, queue_help: &str| {
        let mut requests = number(at, 0.0, vec![]);
        requests.value = Some(number_data_point::Value::AsInt(5));
        let described = |mut m: p::Metric, help: &str| {
            m.description = help.into();
            m
        };
        request(vec![
            described(
                metric(
                    "http.requests",
                    "{request}",
                    metric::Data::Sum(p::Sum {
                        data_points: vec![requests],
                        aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                        is_monotonic: true,
                    }),
                ),
                "Requests served.",
            ),
            described(
                metric(
                    "queue.length",
                    "",
                    metric::Data::Sum(p::Sum {
                        data_points: vec![number(at, 3.0, vec![])],
                        aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                        is_monotonic: false,
                    }),
                ),
                queue_help,
            ),
            described(
                metric(
                    "latency",
                    "s",
                    metric::Data::Histogram(p::Histogram {
                        data_points: vec![p::HistogramDataPoint {
                            time_unix_nano: at * 1_000_000,
                            count: 4,
                            sum: Some(1.0),
                            bucket_counts: vec![2, 2, 0],
                            explicit_bounds: vec![0.1, 1.0],
                            ..Default::default()
                        }],
                        aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                    }),
                ),
                "Request latency.",
            ),
            described(
                metric(
                    "network.io",
                    "By/s",
                    metric::Data::Gauge(p::Gauge {
                        data_points: vec![number(at, 10.0, vec![])],
                    }),
                ),
                "Traffic.",
            ),
        ])
    };
    assert_eq!(post(&v, &body(t, "Jobs waiting."), PB, None).0, 200);
    assert_eq!(post(&v, &body(t + 5_000, "Jobs waiting."), PB, None).0, 200);
    assert_eq!(
        post(&v, &body(t + 10_000, "Jobs waiting to run."), PB, None).0,
        200
    );
    let wal = v.dir.join("data").join("wal");
    drop(v); // kill -9
    let (logged, entries) = wal_metadata(&wal);
    let m = |kind: &str, unit: &str, help: &str| (kind.into(), unit.into(), help.into());
    let latency = m("histogram", "seconds", "Request latency.");
    let want: std::collections::BTreeMap<String, (String, String, String)> = [
        (
            "__name__=http_requests_total",
            m("counter", "", "Requests served."),
        ),
        (
            "__name__=queue_length",
            m("gauge", "", "Jobs waiting to run."),
        ),
        ("__name__=latency_seconds_bucket,le=0.1", latency.clone()),
        ("__name__=latency_seconds_bucket,le=1", latency.clone()),
        ("__name__=latency_seconds_bucket,le=+Inf", latency.clone()),
        ("__name__=latency_seconds_sum", latency.clone()),
        ("__name__=latency_seconds_count", latency),
        (
            "__name__=network_io_bytes_per_second",
            m("gauge", "bytes_per_second", "Traffic."),
        ),
        (
            "__name__=target_info,k8s_namespace_name=prod,k8s_pod_name=checkout-7d9",
            m("gauge", "", "Target metadata"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(logged, want);
    // Three buckets, sum and count, three other series and `target_info`: logged once each,
    // and the queue's again for its changed help.
    assert_eq!(entries, 3 + 2 + 3 + 1 + 1);
}
