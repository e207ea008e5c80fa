//! The binary operator fill modifiers (`promql-binop-fill-modifiers`): vigil's own cases in
//! the upstream test format (`testdata/fill_modifiers.test`), their parsing behind the
//! feature, and their printing as Prometheus prints them.

use vigil_promql::{Features, parse_with};

const ON: Features = Features {
    binop_fill_modifiers: true,
};

#[test]
fn fill_modifiers_evaluate_as_prometheus_defines_them() {
    vigil_promql::promqltest::assert_own_file_passes("fill_modifiers.test", 25, false);
}

#[test]
fn fill_modifiers_parse_only_behind_their_feature() {
    let err = parse_with("a + fill(0) b", Features::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "1:1: parse error: binop fill modifiers are experimental and not enabled"
    );
    // Without a `(`, the words are names, with or without the feature.
    for f in [Features::default(), ON] {
        assert_eq!(parse_with("a + fill", f).unwrap().to_string(), "a + fill");
        assert_eq!(
            parse_with("fill_left - fill_right", f).unwrap().to_string(),
            "fill_left - fill_right"
        );
    }
}

#[test]
fn fill_modifiers_print_as_prometheus_prints_them() {
    for (q, want) in [
        ("a + fill(0) b", "a + fill (0) b"),
        ("a + fill_left(1) fill_right(1) b", "a + fill (1) b"),
        (
            "a + fill_right(2) fill_left(1) b",
            "a + fill_left (1) fill_right (2) b",
        ),
        ("a + fill(NaN) b", "a + fill_left (NaN) fill_right (NaN) b"),
        ("a + fill(-Inf) b", "a + fill (-Inf) b"),
        ("a + fill(5m) b", "a + fill (300) b"),
        ("a + fill(1e6) b", "a + fill (1e+06) b"),
        (
            "a / on(x) group_left(y) fill_right(1) b",
            "a / on (x) group_left (y) fill_right (1) b",
        ),
        (
            "a > bool ignoring(z) fill(0) b",
            "a > bool ignoring (z) fill (0) b",
        ),
    ] {
        let e = parse_with(q, ON).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "{q}");
        let again = parse_with(&e.to_string(), ON).unwrap();
        assert_eq!(again.to_string(), want, "{q} prints back differently");
    }
}

#[test]
fn misplaced_fill_modifiers_are_parse_errors() {
    for (q, msg) in [
        ("a + fill(0) fill(1) b", "unexpected identifier \"fill\""),
        (
            "a + fill_left(0) fill(1) b",
            "unexpected identifier \"fill\"",
        ),
        (
            "a + fill_left(0) fill_left(1) b",
            "unexpected identifier \"fill_left\"",
        ),
        ("a + fill() b", "unexpected \")\""),
        ("a + fill(x) b", "unexpected identifier \"x\""),
        ("a + fill(1 + 1) b", "unexpected <op:+> in fill modifier"),
        ("a + fill(0) on(x) b", "parse error"),
        (
            "a or fill(0) b",
            "filling in missing series not allowed for set operators",
        ),
        (
            "a + fill(0) 1",
            "filling in missing series only allowed between instant vectors",
        ),
        (
            "1 + fill(0) 1",
            "filling in missing series only allowed between instant vectors",
        ),
    ] {
        let err = parse_with(q, ON)
            .map(|e| format!("parsed as {e}"))
            .unwrap_or_else(|e| e.to_string());
        assert!(err.contains(msg), "{q}: {err}");
    }
}
