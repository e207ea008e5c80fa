//! Delayed `__name__` removal (`promql-delayed-name-removal`): vigil's own cases in the
//! upstream test format (`testdata/delayed_names.test`, run plain and sharded; the runner runs
//! with the feature on, as Prometheus's does), and the same queries without it.

use vigil_model::Labels;
use vigil_promql::{Engine, Value, parse, promqltest};
use vigil_storage::{MemoryStorage, Storage};

#[test]
fn delayed_name_removal_evaluates_as_prometheus_defines_it() {
    promqltest::assert_own_file_passes("delayed_names.test", 14, true);
}

/// Without the feature, the name is gone as soon as a function drops it.
#[test]
fn without_the_feature_names_go_at_once() {
    let st = MemoryStorage::new();
    let mut app = st.appender();
    let l = Labels::from_pairs([("__name__", "req_total"), ("code", "200")]);
    for (t, v) in [(300_000, 30.0), (600_000, 60.0)] {
        app.append(0, &l, t, v).unwrap();
    }
    app.commit().unwrap();
    let q = r#"label_replace(rate(req_total[10m]), "src", "$1", "__name__", "(.+)")"#;
    let e = parse(q).unwrap();
    let labels = |engine: &Engine| match engine.instant(&st, &e, 600_000).unwrap() {
        Value::Vector(v) => v
            .into_iter()
            .map(|(l, _)| l.to_string())
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(labels(&Engine::default()), vec![r#"{code="200"}"#]);
    let delayed = Engine {
        delayed_name_removal: true,
        ..Engine::default()
    };
    assert_eq!(labels(&delayed), vec![r#"{code="200", src="req_total"}"#]);
}
