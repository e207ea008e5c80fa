//! The protobuf exposition format: bodies encoded by prost (an independent encoder) from
//! client_model's messages, decoded by vigil into the entries the scraper reads.

#[path = "support/client_model.rs"]
mod client_model;

use client_model::*;
use vigil_model::exposition::proto::{self, Options, format_openmetrics_float};
use vigil_model::exposition::{Entry, MetricType};
use vigil_model::histogram::{CounterResetHint, Span};

/// Each entry as a line: `series value [timestamp] [# exemplar]` or `H series count sum`.
fn lines(body: &[u8], opts: Options) -> Vec<String> {
    let d = proto::decode(body, opts).unwrap();
    d.entries()
        .filter_map(|e| match e {
            Entry::Sample(s) => {
                let mut l = format!("{} {}", s.to_labels(), s.value);
                if let Some(t) = s.timestamp_ms {
                    l += &format!(" @{t}");
                }
                if let Some(x) = &s.exemplar {
                    let ls: Vec<String> = x.labels().map(|(n, v)| format!("{n}={v}")).collect();
                    l += &format!(" # {} {} {:?}", ls.join(","), x.value, x.timestamp_ms);
                }
                Some(l)
            }
            Entry::Histogram(h) => Some(format!(
                "H {} {} {} {:?}",
                h.as_sample().to_labels(),
                h.h.count,
                h.h.sum,
                h.exemplars.iter().map(|e| e.value).collect::<Vec<_>>()
            )),
            _ => None,
        })
        .collect()
}

fn native() -> Options {
    Options {
        native_histograms: true,
        keep_classic: false,
    }
}

#[test]
fn counters_gauges_untyped_and_summaries() {
    let ex = Exemplar {
        label: vec![label("trace_id", "abc")],
        value: 0.5,
        timestamp: Some(Timestamp {
            seconds: 10,
            nanos: 250_000_000,
        }),
    };
    let body = delimited(&[
        fam(
            "req_total",
            COUNTER,
            vec![Metric {
                label: vec![label("path", "/a\"b\\c\nd"), label("code", "200")],
                counter: Some(Counter {
                    value: 7.0,
                    exemplar: Some(ex),
                    created_timestamp: None,
                }),
                ..Default::default()
            }],
        ),
        fam(
            "temp",
            GAUGE,
            vec![Metric {
                gauge: Some(Gauge { value: -1.5 }),
                timestamp_ms: 1234,
                ..Default::default()
            }],
        ),
        fam(
            "thing",
            UNTYPED,
            vec![Metric {
                untyped: Some(Untyped { value: 3.0 }),
                ..Default::default()
            }],
        ),
        fam(
            "lat",
            SUMMARY,
            vec![Metric {
                summary: Some(Summary {
                    sample_count: 4,
                    sample_sum: 2.5,
                    quantile: vec![
                        Quantile {
                            quantile: 0.5,
                            value: 0.4,
                        },
                        Quantile {
                            quantile: 1.0,
                            value: 0.9,
                        },
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        ),
        // No metrics: skipped, as Prometheus skips it.
        fam("empty", GAUGE, vec![]),
    ]);
    assert_eq!(
        lines(&body, Options::default()),
        vec![
            "req_total{code=\"200\", path=\"/a\\\"b\\\\c\\nd\"} 7 # trace_id=abc 0.5 Some(10250)",
            "temp{} -1.5 @1234",
            "thing{} 3",
            "lat_count{} 4",
            "lat_sum{} 2.5",
            "lat{quantile=\"0.5\"} 0.4",
            "lat{quantile=\"1.0\"} 0.9",
        ]
    );
    // Help and type come before each family's series.
    let d = proto::decode(&body, Options::default()).unwrap();
    let kinds: Vec<(String, MetricType)> = d
        .entries()
        .filter_map(|e| match e {
            Entry::Type { family, kind } => Some((family.to_string(), kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("req_total".to_string(), MetricType::Counter),
            ("temp".to_string(), MetricType::Gauge),
            ("thing".to_string(), MetricType::Unknown),
            ("lat".to_string(), MetricType::Summary),
        ]
    );
}

/// A histogram with both forms, as client_golang sends one with classic buckets and a
/// native bucket factor.
fn both_forms(kind: i32) -> MetricFamily {
    let bucket = |le: f64, c: u64| Bucket {
        cumulative_count: c,
        upper_bound: le,
        ..Default::default()
    };
    fam(
        "rt_seconds",
        kind,
        vec![Metric {
            label: vec![label("job", "x")],
            histogram: Some(Histogram {
                sample_count: 6,
                sample_sum: 3.5,
                bucket: vec![bucket(0.5, 2), bucket(1.0, 5)],
                schema: 1,
                zero_threshold: 0.001,
                zero_count: 1,
                positive_span: vec![
                    BucketSpan {
                        offset: -2,
                        length: 2,
                    },
                    BucketSpan {
                        offset: 1,
                        length: 1,
                    },
                ],
                // Counts 1, 3, 1 as deltas.
                positive_delta: vec![1, 2, -2],
                exemplars: vec![Exemplar {
                    label: vec![label("trace_id", "t1")],
                    value: 0.7,
                    timestamp: Some(Timestamp {
                        seconds: 5,
                        nanos: 0,
                    }),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
    )
}

#[test]
fn histograms_native_classic_or_both() {
    let body = delimited(&[both_forms(HISTOGRAM)]);
    let classic = vec![
        "rt_seconds_count{job=\"x\"} 6",
        "rt_seconds_sum{job=\"x\"} 3.5",
        "rt_seconds_bucket{job=\"x\", le=\"0.5\"} 2",
        "rt_seconds_bucket{job=\"x\", le=\"1.0\"} 5",
        "rt_seconds_bucket{job=\"x\", le=\"+Inf\"} 6",
    ];
    // Native histograms not scraped: the classic buckets, a +Inf bucket added.
    assert_eq!(lines(&body, Options::default()), classic);
    let h = "H rt_seconds{job=\"x\"} 6 3.5 [0.7]";
    assert_eq!(lines(&body, native()), vec![h]);
    let mut both = vec![h];
    both.extend(classic);
    assert_eq!(
        lines(
            &body,
            Options {
                native_histograms: true,
                keep_classic: true
            }
        ),
        both
    );
    // The buckets, from deltas.
    let d = proto::decode(&body, native()).unwrap();
    let Some(Entry::Histogram(e)) = d.entries().last() else {
        panic!("no histogram");
    };
    assert_eq!(e.h.schema, 1);
    assert_eq!(e.h.zero_count, 1.0);
    assert_eq!(e.h.positive(), vec![(-2, 1.0), (-1, 3.0), (1, 1.0)]);
    assert_eq!(e.h.hint, CounterResetHint::Unknown);

    // A gauge histogram says so; a float one keeps its float counts.
    let mut g = both_forms(GAUGE_HISTOGRAM);
    let hist = g.metric[0].histogram.as_mut().unwrap();
    hist.sample_count_float = 6.5;
    hist.zero_count = 0;
    hist.zero_count_float = 1.5;
    hist.positive_delta.clear();
    hist.positive_count = vec![1.0, 3.0, 1.0];
    let d = proto::decode(&delimited(&[g]), native()).unwrap();
    let Some(Entry::Histogram(e)) = d.entries().last() else {
        panic!("no histogram");
    };
    assert_eq!(e.h.hint, CounterResetHint::Gauge);
    assert_eq!((e.h.count, e.h.zero_count), (6.5, 1.5));
    assert_eq!(e.h.positive(), vec![(-2, 1.0), (-1, 3.0), (1, 1.0)]);
}

/// A native histogram without observations, marked by an empty span: native, with no
/// buckets; without native scraping, the classic `_count`, `_sum` and `+Inf` bucket.
#[test]
fn an_empty_native_histogram_is_native() {
    let f = fam(
        "idle_seconds",
        HISTOGRAM,
        vec![Metric {
            histogram: Some(Histogram {
                schema: 3,
                positive_span: vec![BucketSpan {
                    offset: 0,
                    length: 0,
                }],
                ..Default::default()
            }),
            ..Default::default()
        }],
    );
    let body = delimited(&[f]);
    assert_eq!(lines(&body, native()), vec!["H idle_seconds{} 0 0 []"]);
    let d = proto::decode(&body, native()).unwrap();
    let Some(Entry::Histogram(e)) = d.entries().last() else {
        panic!("no histogram");
    };
    assert!(e.h.positive_spans.is_empty(), "{:?}", e.h);
    assert_eq!(
        lines(&body, Options::default()),
        vec![
            "idle_seconds_count{} 0",
            "idle_seconds_sum{} 0",
            "idle_seconds_bucket{le=\"+Inf\"} 0",
        ]
    );
}

#[test]
fn bad_bodies_are_errors_naming_the_family() {
    let good = delimited(&[both_forms(HISTOGRAM)]);
    // Cut short: the length announces more than is there.
    let err = proto::decode(&good[..good.len() - 3], native()).unwrap_err();
    assert!(err.to_string().contains("metric family 1"), "{err}");
    // Any UTF-8 name decodes (the scraper checks it against its validation scheme); only an
    // empty one is refused here.
    let odd = delimited(&[fam(
        "bad-name",
        GAUGE,
        vec![Metric {
            label: vec![label("bad.label", "v")],
            ..Default::default()
        }],
    )]);
    let d = proto::decode(&odd, native()).unwrap();
    let s: Vec<String> = d
        .entries()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(s.to_labels().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(s, ["{\"bad-name\", \"bad.label\"=\"v\"}"]);
    let bad = delimited(&[fam("", GAUGE, vec![Metric::default()])]);
    let err = proto::decode(&bad, native()).unwrap_err();
    assert!(err.to_string().contains("invalid metric name"), "{err}");
    let bad = delimited(&[fam(
        "ok",
        GAUGE,
        vec![Metric {
            label: vec![label("", "v")],
            ..Default::default()
        }],
    )]);
    let err = proto::decode(&bad, native()).unwrap_err();
    assert!(err.to_string().contains("invalid label name"), "{err}");
    let dup = delimited(&[fam(
        "ok",
        GAUGE,
        vec![Metric {
            label: vec![label("a", "1"), label("a", "2")],
            ..Default::default()
        }],
    )]);
    let err = proto::decode(&dup, native()).unwrap_err();
    assert!(err.to_string().contains("duplicate label name"), "{err}");
    // Histograms are decoded as they are and checked by the scraper once their series is
    // kept (as Prometheus's appender checks them), with Prometheus's words: spans that do not
    // match the buckets, a count that is not the buckets' total, a negative bucket.
    let checked = |f: MetricFamily| -> Result<(), String> {
        let d = proto::decode(&delimited(&[f]), native()).unwrap();
        match d.entries().last() {
            Some(Entry::Histogram(h)) => proto::check(h.h, h.integer),
            _ => panic!("no histogram"),
        }
    };
    assert_eq!(checked(both_forms(HISTOGRAM)), Ok(()));
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].histogram.as_mut().unwrap().positive_delta.pop();
    let err = checked(f).unwrap_err();
    assert!(err.contains("do not match its spans"), "{err}");
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].histogram.as_mut().unwrap().sample_count = 5;
    let err = checked(f).unwrap_err();
    assert!(
        err.contains("6 observations found in buckets, but the Count field is 5"),
        "{err}"
    );
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].histogram.as_mut().unwrap().positive_delta = vec![1, -2, 2];
    let err = checked(f).unwrap_err();
    assert!(err.contains("positive side: bucket number 2"), "{err}");
    // Custom buckets cannot come in protobuf (it has no field for their bounds).
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].histogram.as_mut().unwrap().schema = -53;
    let err = checked(f).unwrap_err();
    assert!(err.contains("invalid schema"), "{err}");
    // Finer than schema 8: reduced to 8, as Prometheus reduces it.
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].histogram.as_mut().unwrap().schema = 10;
    let d = proto::decode(&delimited(&[f]), native()).unwrap();
    let Some(Entry::Histogram(h)) = d.entries().last() else {
        panic!("no histogram");
    };
    assert_eq!(h.h.schema, 8);
    assert_eq!(proto::check(h.h, h.integer), Ok(()));
    // A body that would expand into far more series text than its size: refused, not
    // walked for minutes (a metric of 1 MB labels and 50,000 empty buckets).
    let mut f = both_forms(HISTOGRAM);
    f.metric[0].label.push(label("big", &"x".repeat(1 << 20)));
    f.metric[0].histogram.as_mut().unwrap().bucket = vec![Bucket::default(); 50_000];
    let err = proto::decode(&delimited(&[f]), Options::default()).unwrap_err();
    assert!(
        err.to_string().contains("expands to too many bytes"),
        "{err}"
    );
    // Garbage never panics.
    for seed in 0..2000u64 {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let body: Vec<u8> = (0..(seed % 97))
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        let _ = proto::decode(&body, native());
        let mut cut = good.clone();
        let i = (seed as usize) % cut.len();
        cut[i] ^= (x >> 48) as u8 | 1;
        let _ = proto::decode(&cut, native());
    }
}

#[test]
fn le_and_quantile_values_are_written_as_openmetrics_floats() {
    for (v, s) in [
        (1.0, "1.0"),
        (0.0, "0.0"),
        (100.0, "100.0"),
        (0.25, "0.25"),
        (1e6, "1e+06"),
        (2.5e-5, "2.5e-05"),
        (123456.0, "123456.0"),
        (f64::INFINITY, "+Inf"),
        (-1.0, "-1.0"),
    ] {
        assert_eq!(format_openmetrics_float(v), s, "{v}");
    }
    let _ = Span::default();
}

/// Counters', summaries' and histograms' created timestamps reach every series each becomes
/// (the native histogram, classic buckets, `_count`, `_sum`, quantiles), in ms; gauges have
/// none, and an unset (zero) timestamp is none.
#[test]
fn created_timestamps_reach_every_series() {
    let ct = |seconds: i64, nanos: i32| Some(Timestamp { seconds, nanos });
    let metric = |m: Metric| Metric {
        label: vec![LabelPair {
            name: "a".into(),
            value: "1".into(),
        }],
        ..m
    };
    let families = [
        MetricFamily {
            name: "c_total".into(),
            r#type: COUNTER,
            metric: vec![
                metric(Metric {
                    counter: Some(Counter {
                        value: 3.0,
                        created_timestamp: ct(1_700_000_000, 250_000_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                Metric {
                    counter: Some(Counter {
                        value: 1.0,
                        created_timestamp: ct(0, 0),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
        MetricFamily {
            name: "s".into(),
            r#type: SUMMARY,
            metric: vec![metric(Metric {
                summary: Some(Summary {
                    sample_count: 2,
                    sample_sum: 1.5,
                    quantile: vec![Quantile {
                        quantile: 0.5,
                        value: 0.7,
                    }],
                    created_timestamp: ct(1_700_000_001, 0),
                }),
                ..Default::default()
            })],
            ..Default::default()
        },
        MetricFamily {
            name: "h".into(),
            r#type: HISTOGRAM,
            metric: vec![metric(Metric {
                histogram: Some(Histogram {
                    sample_count: 4,
                    sample_sum: 2.0,
                    schema: 0,
                    zero_count: 1,
                    positive_span: vec![BucketSpan {
                        offset: 0,
                        length: 1,
                    }],
                    positive_delta: vec![3],
                    bucket: vec![Bucket {
                        cumulative_count: 4,
                        upper_bound: 1.0,
                        ..Default::default()
                    }],
                    created_timestamp: ct(1_700_000_002, 999_999),
                    ..Default::default()
                }),
                ..Default::default()
            })],
            ..Default::default()
        },
        MetricFamily {
            name: "g".into(),
            r#type: GAUGE,
            metric: vec![metric(Metric {
                gauge: Some(Gauge { value: 1.0 }),
                ..Default::default()
            })],
            ..Default::default()
        },
    ];
    let mut body = Vec::new();
    for f in &families {
        prost::Message::encode_length_delimited(f, &mut body).unwrap();
    }
    let opts = Options {
        native_histograms: true,
        keep_classic: true,
    };
    let d = proto::decode(&body, opts).unwrap();
    let got: Vec<String> = d
        .entries()
        .filter_map(|e| match e {
            Entry::Sample(s) => Some(format!("{} {:?}", s.series, s.created_ms)),
            Entry::Histogram(h) => Some(format!("H {} {:?}", h.series, h.created_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        [
            "c_total{a=\"1\"} Some(1700000000250)",
            "c_total None",
            "s_count{a=\"1\"} Some(1700000001000)",
            "s_sum{a=\"1\"} Some(1700000001000)",
            "s{a=\"1\",quantile=\"0.5\"} Some(1700000001000)",
            "H h{a=\"1\"} Some(1700000002000)",
            "h_count{a=\"1\"} Some(1700000002000)",
            "h_sum{a=\"1\"} Some(1700000002000)",
            "h_bucket{a=\"1\",le=\"1.0\"} Some(1700000002000)",
            "h_bucket{a=\"1\",le=\"+Inf\"} Some(1700000002000)",
            "g{a=\"1\"} None",
        ]
    );
}
