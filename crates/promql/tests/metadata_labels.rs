//! The type and unit labels (`__type__`, `__unit__`) go wherever the metric name goes:
//! vigil's own cases in the upstream test format (`testdata/metadata_labels.test`).

#[test]
fn type_and_unit_labels_go_with_the_name() {
    vigil_promql::promqltest::assert_own_file_passes("metadata_labels.test", 10, false);
}

/// `rate` and `increase` say when a series may not be a counter: by its name's suffix, or with
/// `type-and-unit-labels` by its `__type__`.
#[test]
fn rate_says_when_a_series_may_not_be_a_counter() {
    vigil_promql::promqltest::assert_own_file_passes("counter_infos.test", 5, false);

    use vigil_model::Labels;
    use vigil_storage::{MemoryStorage, Storage};
    let st = MemoryStorage::new();
    let mut app = st.appender();
    for (name, kind) in [("reads", "counter"), ("temp_total", "gauge")] {
        let l = Labels::from_pairs([("__name__", name), ("__type__", kind)]);
        for (t, v) in [(30_000, 0.0), (60_000, 10.0)] {
            app.append(0, &l, t, v).unwrap();
        }
    }
    app.commit().unwrap();
    let infos = |engine: &vigil_promql::Engine, q: &str| {
        let e = vigil_promql::parse(q).unwrap();
        engine.instant_query(&st, &e, 60_000).unwrap().infos
    };
    let by_type = vigil_promql::Engine {
        type_and_unit_labels: true,
        ..Default::default()
    };
    // By name: `reads` is suspect, `temp_total` is not.
    assert_eq!(
        infos(
            &Default::default(),
            "rate(reads[1m]) + rate(temp_total[1m])"
        ),
        vec![
            r#"PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "reads" (1:6)"#
        ]
    );
    // By type: the other way round.
    assert_eq!(
        infos(&by_type, "rate(reads[1m]) + rate(temp_total[1m])"),
        vec![
            r#"PromQL info: metric might not be a counter, __type__ label is not set to "counter" or "histogram", got "gauge": "temp_total" (1:24)"#
        ]
    );
}

/// Without delayed name removal too, an aggregation over a function's result (which may take
/// the fused path) has no type or unit left to group by.
#[test]
fn aggregations_over_functions_lose_type_and_unit() {
    use vigil_model::Labels;
    use vigil_promql::Value;
    use vigil_storage::{MemoryStorage, Storage};
    let st = MemoryStorage::new();
    let mut app = st.appender();
    let l = Labels::from_pairs([
        ("__name__", "reads_total"),
        ("__type__", "counter"),
        ("dev", "sda"),
    ]);
    for (t, v) in [(300_000, 0.0), (600_000, 30.0)] {
        app.append(0, &l, t, v).unwrap();
    }
    app.commit().unwrap();
    for q in [
        "sum without (dev) (rate(reads_total[10m]))",
        "sum by (__type__) (rate(reads_total[10m]))",
        "sum by (__type__) (rate({__name__=~\"reads_total\"}[10m]))",
    ] {
        let e = vigil_promql::parse(q).unwrap();
        match vigil_promql::Engine::default()
            .instant(&st, &e, 600_000)
            .unwrap()
        {
            Value::Vector(v) => {
                assert_eq!(v.len(), 1, "{q}");
                assert_eq!(v[0].0.to_string(), "{}", "{q}");
            }
            other => panic!("{q}: {other:?}"),
        }
    }
}
