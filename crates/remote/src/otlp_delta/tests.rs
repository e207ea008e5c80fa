//! Tests of `otlp_delta`.

use super::*;
use crate::otlp_proto::{AnyValue, any_value};

fn kv(k: &str, v: &str) -> p::KeyValue {
    p::KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
    }
}

fn request(resource: Vec<p::KeyValue>, metrics: Vec<p::Metric>) -> p::ExportMetricsServiceRequest {
    p::ExportMetricsServiceRequest {
        resource_metrics: vec![p::ResourceMetrics {
            resource: Some(p::Resource {
                attributes: resource,
            }),
            scope_metrics: vec![p::ScopeMetrics {
                scope: None,
                metrics,
                schema_url: String::new(),
            }],
        }],
    }
}

fn delta_sum(name: &str, points: Vec<(u64, u64, f64, Vec<p::KeyValue>)>) -> p::Metric {
    p::Metric {
        name: name.into(),
        data: Some(metric::Data::Sum(p::Sum {
            data_points: points
                .into_iter()
                .map(|(start, t, v, attrs)| p::NumberDataPoint {
                    attributes: attrs,
                    start_time_unix_nano: start,
                    time_unix_nano: t,
                    value: Some(number_data_point::Value::AsInt(v as i64)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: p::TEMPORALITY_DELTA,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn delta_histogram(name: &str, points: Vec<p::HistogramDataPoint>) -> p::Metric {
    p::Metric {
        name: name.into(),
        data: Some(metric::Data::Histogram(p::Histogram {
            data_points: points,
            aggregation_temporality: p::TEMPORALITY_DELTA,
        })),
        ..Default::default()
    }
}

/// The (converted) histogram of `req`'s first metric.
fn first_histogram(req: &p::ExportMetricsServiceRequest) -> &p::Histogram {
    match &req.resource_metrics[0].scope_metrics[0].metrics[0].data {
        Some(metric::Data::Histogram(h)) => h,
        other => panic!("not a histogram: {other:?}"),
    }
}

/// (start, time, value) of each point of the sums in `req`, and whether all are cumulative.
fn sums(req: &p::ExportMetricsServiceRequest) -> Vec<(u64, u64, f64)> {
    let mut out = Vec::new();
    for m in &req.resource_metrics[0].scope_metrics[0].metrics {
        if let Some(metric::Data::Sum(s)) = &m.data {
            assert_eq!(s.aggregation_temporality, p::TEMPORALITY_CUMULATIVE);
            for dp in &s.data_points {
                // Integer points stay integers.
                let Some(number_data_point::Value::AsInt(v)) = dp.value else {
                    panic!("{dp:?}")
                };
                out.push((dp.start_time_unix_nano, dp.time_unix_nano, v as f64));
            }
        }
    }
    out
}

#[test]
fn deltas_add_up_per_stream_and_repeats_are_dropped() {
    let d = DeltaToCumulative::default();
    let a = || vec![kv("k", "a")];
    let mut req = request(
        vec![kv("service.name", "s")],
        vec![delta_sum(
            "jobs",
            vec![
                (0, 10, 5.0, a()),
                (10, 20, 2.0, a()),
                (0, 10, 1.0, vec![kv("k", "b")]),
            ],
        )],
    );
    assert_eq!(d.convert(&mut req), 0);
    assert_eq!(sums(&req), [(0, 10, 5.0), (0, 20, 7.0), (0, 10, 1.0)]);
    // The next request goes on from there; a repeat of the newest time and an older point are
    // dropped; attribute order does not make another stream.
    let mut req = request(
        vec![kv("service.name", "s")],
        vec![delta_sum(
            "jobs",
            vec![
                (20, 20, 9.0, a()),
                (5, 15, 9.0, a()),
                (20, 30, 4.0, a()),
                (10, 20, 3.0, vec![kv("k", "b")]),
            ],
        )],
    );
    assert_eq!(d.convert(&mut req), 2);
    assert_eq!(sums(&req), [(0, 30, 11.0), (0, 20, 4.0)]);
    // Another resource is another stream.
    let mut req = request(
        vec![kv("service.name", "t")],
        vec![delta_sum("jobs", vec![(30, 40, 1.0, a())])],
    );
    d.convert(&mut req);
    assert_eq!(sums(&req), [(30, 40, 1.0)]);
    assert_eq!(d.streams(), 3);
    // A metric whose points are all dropped goes, rather than fail the request as empty, and
    // so does a delta metric sent with none; a point starting before its stream did (a start
    // of 0 too) is dropped.
    let mut req = request(
        vec![kv("service.name", "t")],
        vec![
            delta_sum("jobs", vec![(30, 40, 1.0, a()), (0, 50, 1.0, a())]),
            delta_sum("none", vec![]),
        ],
    );
    assert_eq!(d.convert(&mut req), 2);
    assert!(req.resource_metrics[0].scope_metrics[0].metrics.is_empty());
    // A point with no recorded value passes as it is and moves nothing on.
    let mut req = request(
        vec![kv("service.name", "t")],
        vec![delta_sum(
            "jobs",
            vec![(40, 50, 0.0, a()), (40, 60, 2.0, a())],
        )],
    );
    if let Some(metric::Data::Sum(s)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        s.data_points[0].flags = p::FLAG_NO_RECORDED_VALUE;
        s.data_points[0].value = Some(number_data_point::Value::AsDouble(f64::NAN));
    }
    assert_eq!(d.convert(&mut req), 0);
    let Some(metric::Data::Sum(s)) = &req.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!()
    };
    assert_eq!(s.data_points[0].flags, p::FLAG_NO_RECORDED_VALUE);
    assert_eq!(
        s.data_points[1].value,
        Some(number_data_point::Value::AsInt(3))
    );
    // A point that carries no value adds nothing (it does not start the sum again).
    let mut req = request(
        vec![kv("service.name", "t")],
        vec![delta_sum(
            "jobs",
            vec![(60, 70, 0.0, a()), (70, 80, 4.0, a())],
        )],
    );
    if let Some(metric::Data::Sum(s)) =
        &mut req.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        s.data_points[0].value = None;
    }
    d.convert(&mut req);
    assert_eq!(sums(&req), [(30, 70, 3.0), (30, 80, 7.0)]);
}

#[test]
fn forgotten_streams_start_again_from_zero() {
    let d = DeltaToCumulative::new(Duration::from_millis(50));
    let one = |t: u64| request(vec![], vec![delta_sum("x", vec![(t - 10, t, 2.0, vec![])])]);
    let mut req = one(10);
    d.convert(&mut req);
    let mut req = one(20);
    d.convert(&mut req);
    assert_eq!(sums(&req), [(0, 20, 4.0)]);
    std::thread::sleep(Duration::from_millis(80));
    let mut req = one(30);
    d.convert(&mut req);
    assert_eq!(sums(&req), [(20, 30, 2.0)], "a new stream");
}

#[test]
fn explicit_histograms_add_while_their_bounds_stay() {
    let d = DeltaToCumulative::default();
    let point = |t: u64, bounds: Vec<f64>, counts: Vec<u64>| p::HistogramDataPoint {
        start_time_unix_nano: t - 10,
        time_unix_nano: t,
        count: counts.iter().sum(),
        sum: Some(1.0),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    };
    let mut req = request(
        vec![],
        vec![delta_histogram(
            "lat",
            vec![
                point(10, vec![1.0], vec![1, 2]),
                point(20, vec![1.0], vec![3, 0]),
                point(30, vec![2.0], vec![1, 1]),
            ],
        )],
    );
    d.convert(&mut req);
    let h = first_histogram(&req);
    assert_eq!(h.aggregation_temporality, p::TEMPORALITY_CUMULATIVE);
    let got: Vec<(u64, u64, Vec<u64>, Option<f64>)> = h
        .data_points
        .iter()
        .map(|p| {
            (
                p.start_time_unix_nano,
                p.count,
                p.bucket_counts.clone(),
                p.sum,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 3, vec![1, 2], Some(1.0)),
            (0, 6, vec![4, 2], Some(2.0)),
            // New bounds: counted again from this point, which starts the stream again.
            (20, 2, vec![1, 1], Some(1.0))
        ]
    );
}

/// A stream whose state grows past the bound (a histogram starting again with many more
/// bounds) has the point dropped, as a new stream past it is, and starts again with the next
/// point: a total that silently left the dropped point out would be wrong.
#[test]
fn a_stream_cannot_grow_its_state_past_the_bound() {
    let d = DeltaToCumulative::with_max_bytes(4096);
    let point = |t: u64, n: usize| p::HistogramDataPoint {
        start_time_unix_nano: t - 10,
        time_unix_nano: t,
        count: 1,
        sum: Some(1.0),
        bucket_counts: (0..=n).map(|i| u64::from(i == n)).collect(),
        explicit_bounds: (0..n).map(|i| i as f64).collect(),
        ..Default::default()
    };
    let mut req = request(
        vec![],
        vec![delta_histogram(
            "lat",
            vec![point(10, 1), point(20, 10_000), point(30, 1)],
        )],
    );
    assert_eq!(d.convert(&mut req), 1, "the large point dropped");
    let got: Vec<(u64, u64, usize)> = first_histogram(&req)
        .data_points
        .iter()
        .map(|p| (p.start_time_unix_nano, p.count, p.explicit_bounds.len()))
        .collect();
    // The third point starts the stream again from its own start time.
    assert_eq!(got, [(0, 1, 1), (20, 1, 1)]);
    assert!(d.state.lock().bytes <= 4096);
}

#[test]
fn exponential_histograms_merge_at_the_coarser_scale() {
    let a = p::ExponentialHistogramDataPoint {
        start_time_unix_nano: 0,
        time_unix_nano: 10,
        count: 3,
        sum: Some(3.0),
        scale: 1,
        zero_count: 1,
        positive: Some(p::Buckets {
            offset: 2,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    let b = p::ExponentialHistogramDataPoint {
        start_time_unix_nano: 10,
        time_unix_nano: 20,
        count: 2,
        sum: Some(2.0),
        scale: 0,
        positive: Some(p::Buckets {
            offset: 1,
            bucket_counts: vec![2],
        }),
        ..Default::default()
    };
    let s = add_exponential(&a, &b);
    // Scale 1 buckets 2 and 3 are scale 0 bucket 1, where b's two are.
    assert_eq!(
        (s.scale, s.count, s.zero_count, s.sum),
        (0, 5, 1, Some(5.0))
    );
    assert_eq!(
        s.positive,
        Some(p::Buckets {
            offset: 1,
            bucket_counts: vec![4]
        })
    );
    // A sum spanning more than 160 buckets is made coarser until it fits.
    let wide = p::ExponentialHistogramDataPoint {
        scale: 4,
        count: 2,
        positive: Some(p::Buckets {
            offset: 0,
            bucket_counts: {
                let mut v = vec![0u64; 300];
                v[0] = 1;
                v[299] = 1;
                v
            },
        }),
        ..Default::default()
    };
    let s = add_exponential(&wide, &wide);
    assert_eq!(s.scale, 3);
    let pos = s.positive.unwrap();
    assert!(pos.bucket_counts.len() <= MAX_BUCKETS);
    assert_eq!(pos.bucket_counts.iter().sum::<u64>(), 4);
    assert_eq!((pos.offset, *pos.bucket_counts.last().unwrap()), (0, 2));
    // Zero buckets of different widths: the narrower one is widened, and the buckets it then
    // covers move into the zero count (scale 0: bucket 0 is (1, 2], bucket 1 (2, 4]).
    let narrow = p::ExponentialHistogramDataPoint {
        scale: 0,
        count: 3,
        zero_threshold: 0.5,
        zero_count: 1,
        positive: Some(p::Buckets {
            offset: 0,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    let wide = p::ExponentialHistogramDataPoint {
        scale: 0,
        count: 1,
        zero_threshold: 2.0,
        zero_count: 1,
        ..Default::default()
    };
    let s = add_exponential(&narrow, &wide);
    assert_eq!((s.zero_count, s.zero_threshold), (3, 2.0));
    assert_eq!(
        s.positive,
        Some(p::Buckets {
            offset: 1,
            bucket_counts: vec![1]
        })
    );
}

/// A stream's exponential histogram is kept within 160 buckets a side from its first point,
/// and a zero bucket widened over a million buckets moves them in one pass.
#[test]
fn exponential_state_stays_small_and_widening_is_linear() {
    let many = p::ExponentialHistogramDataPoint {
        scale: 0,
        count: 1_000_000,
        zero_threshold: 0.0,
        positive: Some(p::Buckets {
            offset: -500_000,
            bucket_counts: vec![1; 1_000_000],
        }),
        attributes: vec![kv("a", "b")],
        ..Default::default()
    };
    let kept = first_exponential(&many);
    let pos = kept.positive.as_ref().unwrap();
    assert!(
        pos.bucket_counts.len() <= MAX_BUCKETS,
        "{}",
        pos.bucket_counts.len()
    );
    assert_eq!(pos.bucket_counts.iter().sum::<u64>(), 1_000_000);
    assert!(kept.attributes.is_empty());
    let mut wide = many.clone();
    widen_zero(&mut wide, 1.0);
    // Every bucket below 1 (indices under 0 at scale 0) went to the zero count.
    assert_eq!(wide.zero_count, 500_000);
    assert_eq!(wide.positive.as_ref().unwrap().offset, 0);
}
