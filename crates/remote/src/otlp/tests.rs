//! The OTLP translation, case by case, with the names and series Prometheus's translator
//! gives (its `otlptranslator` rules: unit words, `_total`, `_ratio`, label escaping, resource
//! attributes), and a request stored through the remote write path.

use super::*;
use crate::otlp_proto::{
    AnyValue, Buckets, ExponentialHistogramDataPoint, Gauge, HistogramDataPoint,
    InstrumentationScope, NumberDataPoint, Resource, ResourceMetrics, ScopeMetrics, Sum,
    SummaryDataPoint, ValueAtQuantile,
};

fn metric(name: &str, unit: &str, data: metric::Data) -> p::Metric {
    p::Metric {
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        data: Some(data),
    }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn num(t_ms: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: 0,
        time_unix_nano: t_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        exemplars: vec![],
        flags: 0,
    }
}

fn sum(points: Vec<NumberDataPoint>, monotonic: bool, temporality: i32) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn gauge(points: Vec<NumberDataPoint>) -> metric::Data {
    metric::Data::Gauge(Gauge {
        data_points: points,
    })
}

fn request(resource: Vec<KeyValue>, metrics: Vec<p::Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lib".into(),
                    version: "1.2".into(),
                    attributes: vec![],
                }),
                metrics,
                schema_url: String::new(),
            }],
        }],
    }
}

/// Each series as `{labels} value@t` lines, sorted.
fn lines(t: &Translated) -> Vec<String> {
    let mut out = Vec::new();
    for ts in &t.write.timeseries {
        let l: Vec<String> = ts
            .labels
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        for s in &ts.samples {
            let v = if vigil_model::is_stale_nan(s.value) {
                "stale".to_string()
            } else {
                s.value.to_string()
            };
            out.push(format!("{{{}}} {v}@{}", l.join(","), s.timestamp));
        }
        for h in &ts.histograms {
            let h = Histogram::decode(h.as_slice()).unwrap().to_float().unwrap();
            out.push(format!(
                "{{{}}} hist(schema={} count={} sum={} pos={:?}/{:?})",
                l.join(","),
                h.schema,
                h.count,
                h.sum,
                h.positive_spans
                    .iter()
                    .map(|s| (s.offset, s.length))
                    .collect::<Vec<_>>(),
                h.positive_buckets
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn metric_names_get_unit_words_and_type_suffixes() {
    let s = Settings::default();
    let n = |name: &str, unit: &str, kind: Kind| {
        metric_name(&metric(name, unit, gauge(vec![])), kind, &s).unwrap()
    };
    assert_eq!(
        n("http.server.duration", "ms", Kind::Histogram),
        "http_server_duration_milliseconds"
    );
    assert_eq!(
        n("system.network.io", "By", Kind::Counter),
        "system_network_io_bytes_total"
    );
    assert_eq!(
        n("requests", "{request}/s", Kind::Gauge),
        "requests_per_second"
    );
    assert_eq!(
        n("throughput", "By/s", Kind::Gauge),
        "throughput_bytes_per_second"
    );
    // The per-unit suffix always (Prometheus's check never matches one token).
    assert_eq!(
        n("hour.writes", "By/h", Kind::Gauge),
        "hour_writes_bytes_per_hour"
    );
    // An up-down counter: neither `_total` nor `_ratio`.
    assert_eq!(n("pool.usage", "1", Kind::UpDown), "pool_usage");
    assert_eq!(
        n("cpu.utilization", "1", Kind::Gauge),
        "cpu_utilization_ratio"
    );
    assert_eq!(
        n("cpu.utilization", "1", Kind::Counter),
        "cpu_utilization_total"
    );
    assert_eq!(n("total.foo", "", Kind::Counter), "foo_total");
    assert_eq!(n("foo__bar", "", Kind::Gauge), "foo_bar");
    assert_eq!(n("2xx.count", "", Kind::Gauge), "_2xx_count");
    assert_eq!(n("bytes.in", "By", Kind::Gauge), "bytes_in");
    assert_eq!(n("queue", "{items}", Kind::Gauge), "queue");
    assert!(metric_name(&metric("...", "", gauge(vec![])), Kind::Gauge, &s).is_err());
    // The other strategies.
    let with = |strategy, name: &str, unit: &str, kind| {
        let s = Settings {
            strategy,
            ..Settings::default()
        };
        metric_name(&metric(name, unit, gauge(vec![])), kind, &s).unwrap()
    };
    assert_eq!(
        with(
            Strategy::UnderscoreEscapingWithoutSuffixes,
            "http.server__duration",
            "ms",
            Kind::Counter
        ),
        "http_server__duration"
    );
    assert_eq!(
        with(
            Strategy::NoUtf8EscapingWithSuffixes,
            "http.server.duration",
            "ms",
            Kind::Histogram
        ),
        "http.server.duration_milliseconds"
    );
    assert_eq!(
        with(
            Strategy::NoUtf8EscapingWithSuffixes,
            "requests.total",
            "",
            Kind::Counter
        ),
        "requests_total"
    );
    // Suffixes already there are not written twice.
    let utf8 =
        |name: &str, unit: &str, kind| with(Strategy::NoUtf8EscapingWithSuffixes, name, unit, kind);
    assert_eq!(
        utf8("foo_seconds_total", "s", Kind::Counter),
        "foo_seconds_total"
    );
    assert_eq!(utf8("foobytes", "By", Kind::Gauge), "foobytes");
    assert_eq!(
        utf8("io", "By/s", Kind::Counter),
        "io_bytes_per_second_total"
    );
    assert_eq!(
        with(
            Strategy::NoTranslation,
            "http.server.duration",
            "ms",
            Kind::Histogram
        ),
        "http.server.duration"
    );
}

#[test]
fn label_names_are_escaped_as_prometheus_escapes_them() {
    let s = Settings::default();
    let l = |k: &str| label_name(k, &s);
    assert_eq!(l("http.method").unwrap(), "http_method");
    assert_eq!(l("2xx").unwrap(), "key_2xx");
    assert_eq!(l("_foo").unwrap(), "key_foo");
    assert_eq!(l("__foo").unwrap(), "__foo");
    assert_eq!(l("foo..bar").unwrap(), "foo__bar");
    assert!(l("").is_err());
    assert!(l("...").is_err());
    let collapse = Settings {
        label_name_preserve_multiple_underscores: false,
        ..Settings::default()
    };
    assert_eq!(label_name("foo..bar", &collapse).unwrap(), "foo_bar");
    let utf8 = Settings {
        strategy: Strategy::NoUtf8EscapingWithSuffixes,
        ..Settings::default()
    };
    assert_eq!(label_name("http.method", &utf8).unwrap(), "http.method");
}

#[test]
fn a_request_becomes_series_with_job_instance_and_target_info() {
    let mut counter = num(
        60_000,
        5.0,
        vec![kv("http.method", "GET"), kv("code", "200")],
    );
    counter.value = Some(number_data_point::Value::AsInt(5));
    let mut stale = num(70_000, 0.0, vec![]);
    stale.flags = p::FLAG_NO_RECORDED_VALUE;
    let req = request(
        vec![
            kv("service.name", "checkout"),
            kv("service.namespace", "shop"),
            kv("service.instance.id", "pod-1"),
            kv("k8s.pod.name", "checkout-1"),
        ],
        vec![
            metric(
                "http.requests",
                "{request}",
                sum(vec![counter], true, p::TEMPORALITY_CUMULATIVE),
            ),
            metric(
                "queue.depth",
                "",
                gauge(vec![num(60_000, 3.0, vec![]), stale]),
            ),
            metric(
                "latency",
                "s",
                metric::Data::Histogram(p::Histogram {
                    data_points: vec![HistogramDataPoint {
                        attributes: vec![],
                        start_time_unix_nano: 0,
                        time_unix_nano: 60_000_000_000,
                        count: 6,
                        sum: Some(2.5),
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![0.1, 1.0],
                        exemplars: vec![],
                        flags: 0,
                    }],
                    aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                }),
            ),
            metric(
                "rpc.duration",
                "ms",
                metric::Data::Summary(p::Summary {
                    data_points: vec![SummaryDataPoint {
                        attributes: vec![],
                        start_time_unix_nano: 0,
                        time_unix_nano: 60_000_000_000,
                        count: 10,
                        sum: 20.0,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.5,
                            value: 1.5,
                        }],
                        flags: 0,
                    }],
                }),
            ),
        ],
    );
    let got = translate(&req, &Settings::default()).unwrap();
    let id = r#"instance="pod-1",job="shop/checkout""#;
    let want = vec![
        format!(r#"{{__name__="http_requests_total",code="200",http_method="GET",{id}}} 5@60000"#),
        format!(r#"{{__name__="latency_seconds_bucket",{id},le="+Inf"}} 6@60000"#),
        format!(r#"{{__name__="latency_seconds_bucket",{id},le="0.1"}} 1@60000"#),
        format!(r#"{{__name__="latency_seconds_bucket",{id},le="1"}} 3@60000"#),
        format!(r#"{{__name__="latency_seconds_count",{id}}} 6@60000"#),
        format!(r#"{{__name__="latency_seconds_sum",{id}}} 2.5@60000"#),
        format!(r#"{{__name__="queue_depth",{id}}} 3@60000"#),
        format!(r#"{{__name__="queue_depth",{id}}} stale@70000"#),
        format!(r#"{{__name__="rpc_duration_milliseconds",{id},quantile="0.5"}} 1.5@60000"#),
        format!(r#"{{__name__="rpc_duration_milliseconds_count",{id}}} 10@60000"#),
        format!(r#"{{__name__="rpc_duration_milliseconds_sum",{id}}} 20@60000"#),
        // From the first to the last point, every half lookback delta and at the last.
        format!(r#"{{__name__="target_info",{id},k8s_pod_name="checkout-1"}} 1@60000"#),
        format!(r#"{{__name__="target_info",{id},k8s_pod_name="checkout-1"}} 1@70000"#),
    ];
    let mut want = want;
    want.sort();
    assert_eq!(lines(&got), want);
    // Promoted: on every series (a data point's own attribute wins); the identifying ones
    // kept on target_info when asked.
    let s = Settings {
        promote_resource_attributes: vec!["k8s.pod.name".into()],
        keep_identifying_resource_attributes: true,
        promote_scope_metadata: true,
        ..Settings::default()
    };
    let got = lines(&translate(&req, &s).unwrap());
    assert!(
        got.iter().any(|l| l.starts_with(r#"{__name__="queue_depth",instance="pod-1",job="shop/checkout",k8s_pod_name="checkout-1",otel_scope_name="lib",otel_scope_version="1.2"} 3@"#)),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|l| l.contains(
            r#"service_instance_id="pod-1",service_name="checkout",service_namespace="shop""#
        ) && l.starts_with(r#"{__name__="target_info""#)),
        "{got:#?}"
    );
}

#[test]
fn exponential_histograms_become_native_ones() {
    let dp = ExponentialHistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: 0,
        time_unix_nano: 60_000_000_000,
        count: 7,
        sum: Some(10.0),
        scale: 1,
        zero_count: 1,
        // OTel bucket i covers (base^i, base^(i+1)]; Prometheus's index is one more.
        positive: Some(Buckets {
            offset: -1,
            bucket_counts: vec![2, 0, 0, 0, 4],
        }),
        negative: None,
        flags: 0,
        exemplars: vec![],
        zero_threshold: 0.0,
    };
    let mut fine = dp.clone();
    fine.scale = 10;
    fine.positive = Some(Buckets {
        offset: 0,
        bucket_counts: vec![1, 1, 1, 1, 2],
    });
    let req = request(
        vec![kv("service.name", "a")],
        vec![
            metric(
                "size",
                "By",
                metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                    data_points: vec![dp],
                    aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                }),
            ),
            metric(
                "fine",
                "",
                metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                    data_points: vec![fine],
                    aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                }),
            ),
        ],
    );
    let got = lines(&translate(&req, &Settings::default()).unwrap());
    assert_eq!(
        got,
        vec![
            // Scale 10 merged down to 8: four buckets each (indices 0-3 -> 1, 4 -> 2).
            r#"{__name__="fine",job="a"} hist(schema=8 count=7 sum=10 pos=[(1, 2)]/[4.0, 2.0])"#,
            // A gap of three empty buckets starts a new span.
            r#"{__name__="size_bytes",job="a"} hist(schema=1 count=7 sum=10 pos=[(0, 1), (3, 1)]/[2.0, 4.0])"#,
        ]
    );
    let mut coarse = request(vec![], vec![]);
    coarse.resource_metrics[0].scope_metrics[0]
        .metrics
        .push(metric(
            "x",
            "",
            metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    scale: -5,
                    ..Default::default()
                }],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        ));
    let e = translate(&coarse, &Settings::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("Scale must be >= -4, was -5"), "{e}");
}

#[test]
fn untranslatable_metrics_fail_the_request_naming_each() {
    let req = request(
        vec![],
        vec![
            metric("ok", "", gauge(vec![num(1000, 1.0, vec![])])),
            metric(
                "deltas",
                "",
                sum(vec![num(1000, 1.0, vec![])], true, p::TEMPORALITY_DELTA),
            ),
            metric("nothing", "", gauge(vec![])),
            p::Metric {
                name: "untyped".into(),
                ..Default::default()
            },
        ],
    );
    let e = translate(&req, &Settings::default()).unwrap_err();
    assert_eq!(e.status(), 500);
    let e = e.to_string();
    for want in [
        r#"invalid temporality and type combination for metric "deltas""#,
        "empty data points. nothing is dropped",
        "could not get aggregation temporality for untyped as it has unsupported metric type Empty",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
}

#[test]
fn bodies_are_protobuf_plain_or_gzip() {
    let req = request(
        vec![],
        vec![metric("m", "", gauge(vec![num(1000, 1.0, vec![])]))],
    );
    let body = req.encode_to_vec();
    let ct = Some("application/x-protobuf");
    assert_eq!(decode(ct, None, &body, 1 << 20).unwrap(), req);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &body).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(decode(ct, Some("gzip"), &gz, 1 << 20).unwrap(), req);
    // A gzip body that expands past the limit is refused, not read whole.
    assert_eq!(decode(ct, Some("gzip"), &gz, 4).unwrap_err().status(), 400);
    assert_eq!(
        decode(ct, Some("br"), &body, 1 << 20).unwrap_err().status(),
        400
    );
    assert_eq!(
        decode(Some("text/plain"), None, &body, 1 << 20)
            .unwrap_err()
            .status(),
        400
    );
    assert_eq!(
        decode(Some("application/json"), None, b"{}", 1 << 20).unwrap(),
        ExportMetricsServiceRequest::default()
    );
    assert_eq!(
        decode(Some("application/json"), None, b"{", 1 << 20)
            .unwrap_err()
            .status(),
        400
    );
    assert_eq!(
        decode(ct, None, b"\xff\xff\xff", 1 << 20)
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn attribute_values_read_as_opentelemetry_writes_them() {
    let v = |x: any_value::Value| any_string(Some(&AnyValue { value: Some(x) }));
    assert_eq!(v(any_value::Value::IntValue(-3)), "-3");
    assert_eq!(v(any_value::Value::BoolValue(true)), "true");
    assert_eq!(v(any_value::Value::DoubleValue(1.5)), "1.5");
    assert_eq!(v(any_value::Value::DoubleValue(1e21)), "1e+21");
    assert_eq!(
        v(any_value::Value::BytesValue(b"hi!?".to_vec())),
        "aGkhPw=="
    );
    assert_eq!(
        v(any_value::Value::ArrayValue(p::ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::StringValue("a".into()))
            }]
        })),
        r#"["a"]"#
    );
}

/// The JSON encoding (OTLP's rules: camelCase or .proto names, 64-bit integers as strings,
/// enum names, hex trace ids) reads into the same request as the protobuf one.
#[test]
fn json_reads_as_the_protobuf_request() {
    let json = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}},{"key":"n","value":{"intValue":"7"}}]},
      "scopeMetrics":[{"scope":{"name":"lib","version":"1"},"metrics":[
        {"name":"reqs","unit":"1","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":true,
          "dataPoints":[{"timeUnixNano":"60000000000","asInt":"5","attributes":[{"key":"ok","value":{"boolValue":true}}],
            "exemplars":[{"timeUnixNano":"60000000000","asDouble":1.5,"traceId":"0a0b","spanId":"ff"}]}]}},
        {"name":"lat","histogram":{"aggregation_temporality":2,"data_points":[{"time_unix_nano":60000000000,"count":"3","sum":1.5,"bucketCounts":["1","2"],"explicitBounds":[0.5]}]}},
        {"name":"t","gauge":{"dataPoints":[{"timeUnixNano":"60000000000","asDouble":"NaN"}]}}
      ]}]}]}"#;
    let mut got = decode(Some("application/json"), None, json.as_bytes(), 1 << 20).unwrap();
    let mut reqs = num(
        60_000,
        0.0,
        vec![KeyValue {
            key: "ok".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::BoolValue(true)),
            }),
        }],
    );
    reqs.value = Some(number_data_point::Value::AsInt(5));
    reqs.exemplars.push(p::Exemplar {
        filtered_attributes: vec![],
        time_unix_nano: 60_000_000_000,
        value: Some(p::exemplar::Value::AsDouble(1.5)),
        span_id: vec![0xff],
        trace_id: vec![0x0a, 0x0b],
    });
    let mut want = request(
        vec![
            kv("service.name", "a"),
            KeyValue {
                key: "n".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(7)),
                }),
            },
        ],
        vec![
            metric(
                "reqs",
                "1",
                sum(vec![reqs], true, p::TEMPORALITY_CUMULATIVE),
            ),
            metric(
                "lat",
                "",
                metric::Data::Histogram(p::Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: 60_000_000_000,
                        count: 3,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2],
                        explicit_bounds: vec![0.5],
                        ..Default::default()
                    }],
                    aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                }),
            ),
        ],
    );
    want.resource_metrics[0].scope_metrics[0].scope = Some(InstrumentationScope {
        name: "lib".into(),
        version: "1".into(),
        attributes: vec![],
    });
    // NaN is not equal to itself: compared apart.
    let last = got.resource_metrics[0].scope_metrics[0]
        .metrics
        .pop()
        .unwrap();
    let Some(metric::Data::Gauge(g)) = last.data else {
        panic!("{last:?}")
    };
    assert!(matches!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsDouble(v)) if v.is_nan()
    ));
    assert_eq!(got, want);
    for (bad, at) in [
        (
            r#"{"resourceMetrics":{}}"#,
            "resourceMetrics: expected an array",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[7]}]}"#,
            "resourceMetrics[0].scopeMetrics[0]: expected an object",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"x"}]}}]}]}]}"#,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].asInt: expected an integer",
        ),
        (
            r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"SOMETIMES"}}]}]}]}"#,
            "aggregationTemporality: unknown value",
        ),
    ] {
        let e = decode(Some("application/json"), None, bad.as_bytes(), 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains(at), "{bad}: {e}");
    }
}

/// A series two resources both write (the same identity, overlapping batches) is stored in
/// time order, one sample a time, not refused as out of order.
#[test]
fn overlapping_resources_merge_in_time_order() {
    let res = || vec![kv("service.name", "a"), kv("host", "h")];
    let mut req = request(
        res(),
        vec![metric("g", "", gauge(vec![num(120_000, 2.0, vec![])]))],
    );
    let second = request(
        res(),
        vec![metric(
            "g",
            "",
            gauge(vec![num(60_000, 1.0, vec![]), num(120_000, 3.0, vec![])]),
        )],
    );
    req.resource_metrics.extend(second.resource_metrics);
    let got = lines(&translate(&req, &Settings::default()).unwrap());
    assert_eq!(
        got,
        vec![
            r#"{__name__="g",job="a"} 1@60000"#,
            r#"{__name__="g",job="a"} 3@120000"#,
            r#"{__name__="target_info",host="h",job="a"} 1@120000"#,
            r#"{__name__="target_info",host="h",job="a"} 1@60000"#,
        ]
    );
}

/// Scope attributes are named as a whole with their prefix; a huge scale is merged, not
/// shifted past the integer's width.
#[test]
fn scope_labels_and_extreme_scales() {
    let mut req = request(
        vec![],
        vec![metric("g", "", gauge(vec![num(1000, 1.0, vec![])]))],
    );
    req.resource_metrics[0].scope_metrics[0]
        .scope
        .as_mut()
        .unwrap()
        .attributes = vec![kv("1x", "a"), kv("", "b")];
    let s = Settings {
        promote_scope_metadata: true,
        ..Settings::default()
    };
    let got = lines(&translate(&req, &s).unwrap());
    assert_eq!(
        got,
        vec![
            r#"{__name__="g",otel_scope_="b",otel_scope_1x="a",otel_scope_name="lib",otel_scope_version="1.2"} 1@1000"#
        ]
    );
    let huge = request(
        vec![],
        vec![metric(
            "e",
            "",
            metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    time_unix_nano: 1_000_000_000,
                    count: 2,
                    scale: 60,
                    positive: Some(Buckets {
                        offset: 5,
                        bucket_counts: vec![1, 1],
                    }),
                    ..Default::default()
                }],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        )],
    );
    let got = lines(&translate(&huge, &Settings::default()).unwrap());
    assert_eq!(
        got,
        vec![r#"{__name__="e"} hist(schema=8 count=2 sum=0 pos=[(1, 1)]/[2.0])"#]
    );
}

#[test]
fn arrays_and_maps_read_as_go_marshals_them() {
    let s = |x: &str| AnyValue {
        value: Some(any_value::Value::StringValue(x.into())),
    };
    let map = AnyValue {
        value: Some(any_value::Value::KvlistValue(p::KeyValueList {
            values: vec![
                KeyValue {
                    key: "z".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::DoubleValue(1.0)),
                    }),
                },
                KeyValue {
                    key: "a".into(),
                    value: Some(s("<b>&")),
                },
            ],
        })),
    };
    assert_eq!(
        any_string(Some(&map)),
        r#"{"a":"\u003cb\u003e\u0026","z":1}"#
    );
    let nan = AnyValue {
        value: Some(any_value::Value::ArrayValue(p::ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::DoubleValue(f64::NAN)),
            }],
        })),
    };
    assert_eq!(any_string(Some(&nan)), "");
}

/// With start zeros, counters, histograms and summaries carry their points' start time
/// (not gauges, not stale points).
#[test]
fn start_times_become_zeros_before_the_first_sample() {
    let mut c = num(60_000, 5.0, vec![]);
    c.start_time_unix_nano = 30_000_000_000;
    let mut g = num(60_000, 1.0, vec![]);
    g.start_time_unix_nano = 30_000_000_000;
    let req = request(
        vec![],
        vec![
            metric(
                "c",
                "",
                sum(vec![c.clone()], true, p::TEMPORALITY_CUMULATIVE),
            ),
            metric("g", "", gauge(vec![g])),
            metric(
                "h",
                "",
                metric::Data::Histogram(p::Histogram {
                    data_points: vec![HistogramDataPoint {
                        start_time_unix_nano: 30_000_000_000,
                        time_unix_nano: 60_000_000_000,
                        count: 1,
                        sum: Some(1.0),
                        bucket_counts: vec![1, 0],
                        explicit_bounds: vec![1.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
                }),
            ),
        ],
    );
    let s = Settings {
        start_zeros: true,
        ..Settings::default()
    };
    let t = translate(&req, &s).unwrap();
    let with_start: Vec<String> = t
        .write
        .timeseries
        .iter()
        .zip(&t.starts)
        .filter(|(_, st)| **st == Some(30_000))
        .map(|(ts, _)| {
            ts.labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert_eq!(
        with_start,
        [
            "__name__=c_total",
            "__name__=h_bucket,le=+Inf",
            "__name__=h_bucket,le=1",
            "__name__=h_count",
            "__name__=h_sum"
        ]
    );
    assert!(
        translate(&req, &Settings::default())
            .unwrap()
            .starts
            .iter()
            .all(Option::is_none)
    );
    // Stored through the TSDB: `cargo test -p vigil --test otlp` (the memory store keeps no
    // start zeros).
}

/// `otlp-native-delta-ingestion`: delta sums and histograms are stored as they come, named as
/// cumulative ones are (`_total` for a monotonic sum), with no `__type__` (a delta's type is
/// unknown to Prometheus) and native histograms marked as gauge histograms, as Prometheus's
/// translator stores them; cumulative metrics are unchanged beside them.
#[test]
fn native_delta_ingestion_stores_deltas_as_they_come() {
    let delta_hist = |t_ms: u64, counts: Vec<u64>| HistogramDataPoint {
        attributes: vec![],
        start_time_unix_nano: (t_ms - 60_000) * 1_000_000,
        time_unix_nano: t_ms * 1_000_000,
        count: counts.iter().sum(),
        sum: Some(1.5),
        bucket_counts: counts,
        explicit_bounds: vec![0.5],
        exemplars: vec![],
        flags: 0,
    };
    let req = request(
        vec![kv("service.name", "a")],
        vec![
            metric(
                "requests",
                "",
                sum(
                    vec![num(60_000, 3.0, vec![]), num(120_000, 2.0, vec![])],
                    true,
                    p::TEMPORALITY_DELTA,
                ),
            ),
            metric(
                "inflight",
                "",
                sum(vec![num(60_000, -1.0, vec![])], false, p::TEMPORALITY_DELTA),
            ),
            metric(
                "total",
                "",
                sum(
                    vec![num(60_000, 7.0, vec![])],
                    true,
                    p::TEMPORALITY_CUMULATIVE,
                ),
            ),
            metric(
                "lat",
                "s",
                metric::Data::Histogram(p::Histogram {
                    data_points: vec![delta_hist(60_000, vec![1, 2])],
                    aggregation_temporality: p::TEMPORALITY_DELTA,
                }),
            ),
            metric(
                "size",
                "",
                metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        time_unix_nano: 60_000_000_000,
                        count: 2,
                        sum: Some(3.0),
                        scale: 0,
                        positive: Some(Buckets {
                            offset: 0,
                            bucket_counts: vec![2],
                        }),
                        ..Default::default()
                    }],
                    aggregation_temporality: p::TEMPORALITY_DELTA,
                }),
            ),
        ],
    );
    // Refused without the feature, as before.
    let e = translate(&req, &Settings::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(r#"metric "requests""#), "{e}");
    let on = Settings {
        native_delta: true,
        type_and_unit_labels: true,
        ..Settings::default()
    };
    let t = translate(&req, &on).unwrap();
    let got = lines(&t);
    let has = |want: &str| assert!(got.iter().any(|l| l == want), "{want} not in {got:#?}");
    has(r#"{__name__="requests_total",job="a"} 3@60000"#);
    has(r#"{__name__="requests_total",job="a"} 2@120000"#);
    has(r#"{__name__="inflight",job="a"} -1@60000"#);
    has(r#"{__name__="total",__type__="counter",job="a"} 7@60000"#);
    // Classic buckets of the interval's own counts.
    has(r#"{__name__="lat_seconds_bucket",__unit__="seconds",job="a",le="0.5"} 1@60000"#);
    has(r#"{__name__="lat_seconds_bucket",__unit__="seconds",job="a",le="+Inf"} 3@60000"#);
    // The exponential one: a gauge histogram.
    let size = t
        .write
        .timeseries
        .iter()
        .find(|s| s.labels.iter().any(|l| l.value == "size"))
        .expect("size stored");
    let h = Histogram::decode(size.histograms[0].as_slice())
        .unwrap()
        .to_float()
        .unwrap();
    assert_eq!(
        (h.count, h.hint),
        (2.0, vigil_model::histogram::CounterResetHint::Gauge)
    );
    assert!(!size.labels.iter().any(|l| l.name == "__type__"));
    // With custom buckets, the explicit one is a gauge histogram too.
    let nhcb = Settings {
        convert_histograms_to_nhcb: true,
        ..on
    };
    let t = translate(&req, &nhcb).unwrap();
    let lat = t
        .write
        .timeseries
        .iter()
        .find(|s| s.labels.iter().any(|l| l.value == "lat_seconds"))
        .expect("lat stored");
    let h = Histogram::decode(lat.histograms[0].as_slice())
        .unwrap()
        .to_float()
        .unwrap();
    assert_eq!(
        (h.count, h.hint),
        (3.0, vigil_model::histogram::CounterResetHint::Gauge)
    );
}

/// With `metadata-wal-records`, each series carries its metric's metadata, by its place in the
/// request: a delta (taken natively) is of unknown type, as Prometheus marks it; two metrics
/// writing one series give it the later one's; native histograms (exponential, and classic
/// ones as custom buckets) keep their own metric's, and `target_info` (written last) has
/// Prometheus's. Without the setting there is none.
#[test]
fn series_metadata_follows_prometheus_otlp_appender() {
    let described = |mut m: p::Metric, help: &str| {
        m.description = help.into();
        m
    };
    let first = described(
        metric("jobs", "", gauge(vec![num(1000, 1.0, vec![])])),
        "First.",
    );
    let again = described(
        metric("jobs", "", gauge(vec![num(2000, 2.0, vec![])])),
        "Again.",
    );
    let delta = described(
        metric("sent", "By", sum(vec![num(1000, 5.0, vec![])], true, 1)),
        "Bytes sent.",
    );
    let exp = ExponentialHistogramDataPoint {
        time_unix_nano: 1_000_000_000,
        count: 2,
        sum: Some(3.0),
        scale: 0,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    let size = described(
        metric(
            "size",
            "By",
            metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                data_points: vec![exp.clone()],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        ),
        "Sizes.",
    );
    let size_delta = described(
        metric(
            "size.delta",
            "By",
            metric::Data::ExponentialHistogram(p::ExponentialHistogram {
                data_points: vec![exp],
                aggregation_temporality: p::TEMPORALITY_DELTA,
            }),
        ),
        "Size deltas.",
    );
    let lat = described(
        metric(
            "lat",
            "s",
            metric::Data::Histogram(p::Histogram {
                data_points: vec![HistogramDataPoint {
                    time_unix_nano: 1_000_000_000,
                    count: 3,
                    sum: Some(1.0),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![0.5],
                    ..Default::default()
                }],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        ),
        "Latency.",
    );
    let quantiles = described(
        metric(
            "q",
            "",
            metric::Data::Summary(p::Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: 1_000_000_000,
                    count: 2,
                    sum: 4.0,
                    quantile_values: vec![ValueAtQuantile {
                        quantile: 0.5,
                        value: 2.0,
                    }],
                    ..Default::default()
                }],
            }),
        ),
        "Quantiles.",
    );
    let req = request(
        vec![kv("service.name", "a"), kv("host.name", "box")],
        vec![first, again, delta, size, size_delta, lat, quantiles],
    );
    let on = Settings {
        metadata: true,
        native_delta: true,
        convert_histograms_to_nhcb: true,
        ..Settings::default()
    };
    let t = translate(&req, &on).unwrap();
    assert_eq!(t.metadata.len(), t.write.timeseries.len());
    // By the whole label set: no two series collapse into one entry.
    let got: BTreeMap<String, Metadata> = t
        .write
        .timeseries
        .iter()
        .zip(&t.metadata)
        .map(|(ts, m)| {
            let l: Vec<String> = ts
                .labels
                .iter()
                .filter(|l| l.name != "job" && l.name != "host_name")
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            (l.join(","), (**m.as_ref().unwrap()).clone())
        })
        .collect();
    let m = |kind, unit: &str, help: &str| Metadata {
        kind,
        unit: unit.into(),
        help: help.into(),
    };
    let summary = m(MetricType::Summary, "", "Quantiles.");
    let want: BTreeMap<String, Metadata> = [
        ("__name__=jobs", m(MetricType::Gauge, "", "Again.")),
        (
            "__name__=sent_bytes_total",
            m(MetricType::Unknown, "bytes", "Bytes sent."),
        ),
        (
            "__name__=size_bytes",
            m(MetricType::Histogram, "bytes", "Sizes."),
        ),
        (
            "__name__=size_delta_bytes",
            m(MetricType::Unknown, "bytes", "Size deltas."),
        ),
        (
            "__name__=lat_seconds",
            m(MetricType::Histogram, "seconds", "Latency."),
        ),
        ("__name__=q,quantile=0.5", summary.clone()),
        ("__name__=q_sum", summary.clone()),
        ("__name__=q_count", summary),
        (
            "__name__=target_info",
            m(MetricType::Gauge, "", "Target metadata"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    let off = Settings {
        native_delta: true,
        ..Settings::default()
    };
    assert!(translate(&req, &off).unwrap().metadata.is_empty());
}

/// Units as Prometheus's `UnitNamer.Build` makes them (its documented examples, and the
/// trimming of its last step).
#[test]
fn unit_words_as_prometheus_unit_namer() {
    for (unit, want) in [
        ("s", "seconds"),
        ("By/s", "bytes_per_second"),
        ("requests/s", "requests_per_second"),
        ("1", ""),
        ("%", "percent"),
        ("{request}", ""),
        ("{request}/s", "per_second"),
        ("/s", "per_second"),
        ("foo-", "foo"),
        ("s/!!!", "seconds_per"),
        (" ms / {x} ", "milliseconds"),
        ("m/s", "meters_per_second"),
    ] {
        assert_eq!(unit_words(unit), want, "{unit:?}");
    }
}

/// A resource's attributes are copied into every series of its points: a request whose
/// series would hold more than the bound is refused by name before any is made, where an
/// ordinary request far larger in points is translated.
#[test]
fn expansion_of_resource_attributes_is_bounded() {
    let points = |n: u64| -> Vec<NumberDataPoint> {
        (0..n)
            .map(|i| num(60_000, 1.0, vec![kv("i", &i.to_string())]))
            .collect()
    };
    // 1 MiB of service.name over a thousand points: about 1 GiB of labels from a 1 MiB body.
    let big = "x".repeat(1 << 20);
    let req = request(
        vec![kv("service.name", &big)],
        vec![metric("m", "", gauge(points(1000)))],
    );
    let body = req.encoded_len();
    assert!(body < 2 << 20, "{body}");
    match translate(&req, &Settings::default()) {
        Err(ReceiveError::BadRequest(m)) => {
            assert!(m.contains("512 MiB of labels"), "{m}");
            assert!(m.contains("1025 KiB resource"), "{m}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A classic histogram's point makes a series per bucket: 100 KiB of point attributes
    // over 6,000 buckets is refused too.
    let wide = HistogramDataPoint {
        attributes: vec![kv("a", &"y".repeat(100 << 10))],
        start_time_unix_nano: 0,
        time_unix_nano: 60_000_000_000,
        count: 0,
        sum: Some(0.0),
        bucket_counts: vec![0; 6000],
        explicit_bounds: (0..5999).map(f64::from).collect(),
        exemplars: vec![],
        flags: 0,
    };
    let hist = |p: HistogramDataPoint| {
        metric(
            "h",
            "",
            metric::Data::Histogram(p::Histogram {
                data_points: vec![p],
                aggregation_temporality: p::TEMPORALITY_CUMULATIVE,
            }),
        )
    };
    let req = request(vec![kv("service.name", "svc")], vec![hist(wide.clone())]);
    assert!(matches!(
        translate(&req, &Settings::default()),
        Err(ReceiveError::BadRequest(_))
    ));
    // A unit goes into the stored name (and `__unit__`): 64 KiB of it over 20,000 buckets
    // is counted there, and refused.
    let mut long_unit = hist(HistogramDataPoint {
        attributes: vec![],
        bucket_counts: vec![0; 20_000],
        explicit_bounds: (0..19_999).map(f64::from).collect(),
        ..wide.clone()
    });
    long_unit.unit = "u".repeat(64 << 10);
    let req = request(vec![kv("service.name", "svc")], vec![long_unit]);
    assert!(req.encoded_len() < 1 << 20);
    match translate(&req, &Settings::default()) {
        Err(ReceiveError::BadRequest(m)) => assert!(m.contains("MiB of labels"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The same point as a custom-bucket native histogram is one series: translated.
    let req = request(vec![kv("service.name", "svc")], vec![hist(wide.clone())]);
    let nhcb = Settings {
        convert_histograms_to_nhcb: true,
        ..Settings::default()
    };
    assert_eq!(translate(&req, &nhcb).unwrap().write.timeseries.len(), 1);
    // An ordinary large request: 10,000 points of a resource with ten promoted attributes.
    let mut attrs: Vec<KeyValue> = (0..10)
        .map(|i| {
            kv(
                &format!("k8s.attr{i}"),
                &format!("value-{i}-of-some-length"),
            )
        })
        .collect();
    attrs.push(kv("service.name", "svc"));
    let promoted = Settings {
        promote_resource_attributes: (0..10).map(|i| format!("k8s.attr{i}")).collect(),
        ..Settings::default()
    };
    let req = request(attrs, vec![metric("m", "", gauge(points(10_000)))]);
    let got = translate(&req, &promoted).unwrap();
    // Its 10,000 series and the resource's `target_info`.
    assert_eq!(got.write.timeseries.len(), 10_001);
    assert!(
        got.write.timeseries[0]
            .labels
            .iter()
            .any(|l| l.name == "k8s_attr3")
    );
}
