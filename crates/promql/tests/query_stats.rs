//! Query statistics (`stats=all`): the samples a query reads, in total and per step, counted
//! as Prometheus's engine counts them. The cases and their numbers are upstream's
//! (`promql/engine_test.go`, `TestQueryStatistics`); the peak is vigil's own count (samples
//! held at once against `--query.max-samples`), so it is checked by what it promises: a
//! limit of the peak passes and one below it fails.

use vigil_promql::promqltest::{TestValue, expand_values, series_labels};
use vigil_promql::{Engine, StatsLevel, parse};
use vigil_storage::{MemoryStorage, Storage};

fn storage() -> MemoryStorage {
    let st = MemoryStorage::new();
    let mut app = st.appender();
    let series = [
        ("metricWith1SampleEvery10Seconds", "1+1x100"),
        (r#"metricWith3SampleEvery10Seconds{a="1",b="1"}"#, "1+1x100"),
        (r#"metricWith3SampleEvery10Seconds{a="2",b="2"}"#, "1+1x100"),
        (r#"metricWith3SampleEvery10Seconds{a="3",b="2"}"#, "1+1x100"),
        (
            "metricWith1HistogramEvery10Seconds",
            "{{schema:1 count:5 sum:20 buckets:[1 2 1 1]}}+{{schema:1 count:10 sum:5 buckets:[1 2 3 4]}}x100",
        ),
    ];
    for (s, vals) in series {
        let labels = series_labels(s).unwrap();
        for (k, v) in expand_values(vals).unwrap().into_iter().enumerate() {
            let t = k as i64 * 10_000;
            match v {
                Some(TestValue::F(v)) => app.append(0, &labels, t, v).unwrap(),
                Some(TestValue::H(h)) => app.append_histogram(0, &labels, t, h).unwrap(),
                None => continue,
            };
        }
    }
    app.commit().unwrap();
    st
}

fn engine(max_samples: usize) -> Engine {
    Engine {
        stats: StatsLevel::PerStep,
        per_step_stats: true,
        max_samples,
        ..Engine::default()
    }
}

/// Total, per step (time in seconds, samples) and peak.
type Counted = (u64, Vec<(i64, u64)>, u64);

/// Total, per step (time in seconds, samples) and peak of a query: an instant one when
/// `end` is `None`.
fn run(
    st: &MemoryStorage,
    max: usize,
    q: &str,
    start: i64,
    end: Option<(i64, i64)>,
) -> Result<Counted, vigil_promql::EvalError> {
    let e = parse(q).unwrap();
    let r = match end {
        None => engine(max).instant_query(st, &e, start * 1000)?,
        Some((end, step)) => {
            engine(max).range_query(st, &e, start * 1000, end * 1000, step * 1000)?
        }
    };
    let s = r.stats.expect("stats asked for");
    let per_step = s
        .per_step
        .expect("per step asked for")
        .into_iter()
        .map(|(t, n)| (t / 1000, n))
        .collect();
    Ok((s.total_samples, per_step, s.peak_samples))
}

fn check(
    st: &MemoryStorage,
    q: &str,
    start: i64,
    end: Option<(i64, i64)>,
    total: u64,
    each: &[u64],
) {
    let (got_total, per_step, peak) = run(st, 50_000_000, q, start, end).unwrap();
    assert_eq!(got_total, total, "{q}: total");
    let counts: Vec<u64> = per_step.iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, each, "{q}: per step {per_step:?}");
    let times: Vec<i64> = per_step.iter().map(|(t, _)| *t).collect();
    let want_times: Vec<i64> = match end {
        None => vec![start],
        Some((end, step)) => (start..=end).step_by(step as usize).collect(),
    };
    assert_eq!(times, want_times, "{q}: step times");
    if peak > 0 {
        assert!(
            run(st, peak as usize, q, start, end).is_ok(),
            "{q}: at its peak {peak}"
        );
        assert!(
            matches!(
                run(st, peak as usize - 1, q, start, end),
                Err(vigil_promql::EvalError::TooManySamples)
            ),
            "{q}: below its peak {peak}"
        );
    }
}

#[test]
fn instant_queries_count_samples_as_prometheus() {
    let st = storage();
    let cases: &[(&str, i64, u64)] = &[
        ("1", 21, 0),
        ("metricWith1HistogramEvery10Seconds", 21, 13),
        ("timestamp(metricWith1HistogramEvery10Seconds)", 21, 1),
        (r#"metricWith3SampleEvery10Seconds{a="1"}[20s] @ 19"#, 21, 2),
        ("metricWith1SampleEvery10Seconds[60s]", 201, 6),
        ("metricWith1HistogramEvery10Seconds[60s]", 201, 78),
        (
            "max_over_time(metricWith1SampleEvery10Seconds[60s])[20s:5s]",
            201,
            24,
        ),
        (
            "max_over_time(metricWith1SampleEvery10Seconds[61s])[20s:5s]",
            201,
            26,
        ),
        (
            "max_over_time(metricWith1SampleEvery10Seconds[60s])",
            201,
            6,
        ),
        ("metricWith1SampleEvery10Seconds[60s:5s]", 201, 12),
        (
            "max_over_time(metricWith3SampleEvery10Seconds[60s:5s])",
            201,
            36,
        ),
        (
            "sum(max_over_time(metricWith3SampleEvery10Seconds[60s] @ 30))",
            201,
            12,
        ),
    ];
    for &(q, at, total) in cases {
        check(&st, q, at, None, total, &[total]);
    }
}

#[test]
fn range_queries_count_samples_per_step_as_prometheus() {
    let st = storage();
    check(
        &st,
        "metricWith1HistogramEvery10Seconds",
        204,
        Some((223, 5)),
        52,
        &[13; 4],
    );
    check(
        &st,
        "timestamp(metricWith1SampleEvery10Seconds)",
        201,
        Some((220, 5)),
        4,
        &[1; 4],
    );
    check(
        &st,
        r#"max_over_time(metricWith3SampleEvery10Seconds{a="1"}[10s])"#,
        991,
        Some((1021, 10)),
        2,
        &[1, 1, 0, 0],
    );
    check(
        &st,
        "max_over_time(metricWith3SampleEvery10Seconds[60s] @ 30)",
        201,
        Some((220, 5)),
        48,
        &[12; 4],
    );
    check(
        &st,
        "max_over_time(metricWith3SampleEvery10Seconds[60s])",
        201,
        Some((220, 5)),
        72,
        &[18; 4],
    );
    check(
        &st,
        "max_over_time(metricWith3SampleEvery10Seconds[60s:5s])",
        201,
        Some((220, 5)),
        144,
        &[36; 4],
    );
    check(
        &st,
        "max_over_time(metricWith1SampleEvery10Seconds[60s:5s])",
        201,
        Some((220, 5)),
        48,
        &[12; 4],
    );
    check(
        &st,
        "sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s])) + sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s]))",
        201,
        Some((220, 5)),
        288,
        &[72; 4],
    );
}

/// Without per-step statistics (`stats` other than `all`, or the feature off): totals only.
/// Off: nothing is collected.
#[test]
fn per_step_counts_need_the_level_and_the_feature() {
    let st = storage();
    let e = parse("max_over_time(metricWith3SampleEvery10Seconds[60s])").unwrap();
    let at = |engine: Engine| {
        engine
            .range_query(&st, &e, 201_000, 220_000, 5_000)
            .unwrap()
            .stats
    };
    let totals = at(Engine {
        stats: StatsLevel::Totals,
        per_step_stats: true,
        ..Engine::default()
    })
    .unwrap();
    assert_eq!((totals.total_samples, totals.per_step), (72, None));
    let no_feature = at(Engine {
        stats: StatsLevel::PerStep,
        ..Engine::default()
    })
    .unwrap();
    assert_eq!((no_feature.total_samples, no_feature.per_step), (72, None));
    assert_eq!(at(Engine::default()), None);
}
