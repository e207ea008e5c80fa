//! `info()`: vigil's own cases in the upstream test format (`testdata/info.test`, run plain
//! and sharded), and how its second argument parses.

use vigil_promql::{parse, promqltest};

#[test]
fn info_evaluates_as_prometheus_defines_it() {
    promqltest::assert_own_file_passes("info.test", 16, true);
}

#[test]
fn info_takes_label_matchers_that_may_all_match_empty() {
    // Alone, `{a=~".*"}` is no valid selector; as info's data labels it is.
    assert!(parse(r#"{a=~".*"}"#).is_err());
    for (q, want) in [
        ("info(up)", "info(up)"),
        (r#"info(up, {a=~".*"})"#, r#"info(up, {a=~".*"})"#),
        (
            r#"info(rate(x[5m]), {__name__=~".+_info", k8s_pod!=""})"#,
            r#"info(rate(x[5m]), {__name__=~".+_info", k8s_pod!=""})"#,
        ),
    ] {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "{q}");
        assert_eq!(parse(&e.to_string()).unwrap(), e, "{q} does not parse back");
    }
    for (q, msg) in [
        (
            "info()",
            "expected at least 1 argument(s) in call to \"info\", got 0",
        ),
        (
            "info(up, {a=\"b\"}, {c=\"d\"})",
            "expected at most 2 argument(s)",
        ),
        (
            "info(up, x{a=\"b\"})",
            "expected label selectors only, got vector selector instead",
        ),
        (
            "info(up, 1)",
            "expected type instant vector in call to function \"info\", got scalar",
        ),
    ] {
        let err = parse(q).unwrap_err().to_string();
        assert!(err.contains(msg), "{q}: {err}");
    }
}

#[test]
fn info_with_a_named_info_metric_prints_back_as_written() {
    let q = r#"info(up, {__name__="build_info"})"#;
    let e = parse(q).unwrap();
    assert_eq!(e.to_string(), q);
    assert_eq!(parse(&e.to_string()).unwrap(), e);
}
