//! Duration expressions (`x[5m * 2]`, `x offset (1m + 1m)`, `x[step()]`): vigil's own cases
//! in the upstream test format (`testdata/duration_expressions.test`), every eval passing,
//! and their printing back as written.

#[test]
fn duration_expressions_evaluate_as_prometheus_defines_them() {
    vigil_promql::promqltest::assert_own_file_passes("duration_expressions.test", 25, false);
}

#[test]
fn duration_expressions_print_back_as_written() {
    for (q, want) in [
        ("rate(x[5m * 2])", "rate(x[5m * 2])"),
        ("x[1h / 2:step()]", "x[1h / 2:step()]"),
        ("x offset (1m + 1m)", "x offset (1m + 1m)"),
        ("x offset -step()", "x offset -step()"),
        ("x[min_of(range(), 1h)]", "x[min_of(range(), 1h)]"),
        ("x[-(10s - 5s) + 20s]", "x[-(10s - 5s) + 20s]"),
        (
            "x[5m] offset max_of(step(), 1m)",
            "x[5m] offset max_of(step(), 1m)",
        ),
        (
            "sum_over_time(x[2 ^ 3 ^ 1:10])",
            "sum_over_time(x[2 ^ 3 ^ 1:10s])",
        ),
        // A single literal prints as before.
        ("x[300]", "x[5m]"),
        ("x offset -90s", "x offset -1m30s"),
    ] {
        let e = vigil_promql::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "{q}");
        let again = vigil_promql::parse(&e.to_string()).unwrap();
        assert_eq!(again, e, "{q} does not parse back to itself");
    }
    for (q, msg) in [
        ("x[5m - 10m]", "duration must be greater than 0"),
        ("x[10s / 0]", "division by zero"),
        ("x[5s x 5s]", "unexpected identifier"),
        ("x[step]", "expected number, duration, step(), or range()"),
        ("x offset (1h / (2 - 2))", "division by zero"),
        ("x[9.5e10]", "duration out of range"),
    ] {
        let err = vigil_promql::parse(q).unwrap_err().to_string();
        assert!(err.contains(msg), "{q}: {err}");
    }
    // A hostile length is refused, not recursed into.
    let long = format!("x[{}1s]", "1s + ".repeat(5000));
    let err = vigil_promql::parse(&long).unwrap_err().to_string();
    assert!(err.contains("duration expression too long"), "{err}");
    let deep = format!("x[{}1s{}]", "(".repeat(5000), ")".repeat(5000));
    let err = vigil_promql::parse(&deep).unwrap_err().to_string();
    assert!(err.contains("nested too deeply"), "{err}");
    for hostile in [
        format!("x[{}1s]", "- ".repeat(5000)),
        format!("x[{}1]", "1 ^ ".repeat(5000)),
    ] {
        let err = vigil_promql::parse(&hostile).unwrap_err().to_string();
        assert!(err.contains("nested too deeply"), "{err}");
    }
    // `step`, `range` and `min_of` stay names, and functions outside brackets.
    for q in [
        "step",
        "range{step=\"1\"}",
        "min_of(step(), 2)",
        "sum by (range) (x)",
        "x[5m] offset 1m",
        "x[5m:]",
    ] {
        vigil_promql::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
    assert!(
        vigil_promql::parse("x offset 5m [1m]")
            .unwrap_err()
            .to_string()
            .contains("no offset or @ modifiers allowed before range")
    );
}
