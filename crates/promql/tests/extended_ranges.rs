//! The extended range selectors `anchored` and `smoothed`: vigil's own cases in the upstream
//! test format (`testdata/extended_ranges.test`, run plain and sharded), and their parsing and
//! printing.

use vigil_promql::{parse, promqltest};

#[test]
fn extended_ranges_evaluate_as_prometheus_defines_them() {
    promqltest::assert_own_file_passes("extended_ranges.test", 37, true);
}

#[test]
fn extended_ranges_print_back_and_leave_names_alone() {
    for (q, want) in [
        ("rate(c[5m] anchored)", "rate(c[5m] anchored)"),
        ("rate(c[5m] SMOOTHED)", "rate(c[5m] smoothed)"),
        ("c[5m] offset 1m anchored", "c[5m] anchored offset 1m"),
        (
            "c[5m] anchored @ 10 offset 1m",
            "c[5m] anchored @ 10.000 offset 1m",
        ),
        ("c anchored [5m]", "c[5m] anchored"),
        ("c smoothed offset 1m", "c smoothed offset 1m"),
        ("c smoothed @ 10 offset 1m", "c @ 10.000 smoothed offset 1m"),
        // The words are still names where a selector starts.
        (
            "anchored{a=\"b\"} + smoothed",
            "anchored{a=\"b\"} + smoothed",
        ),
        ("sum by (anchored) (x)", "sum by (anchored) (x)"),
    ] {
        let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(e.to_string(), want, "{q}");
        assert_eq!(parse(&e.to_string()).unwrap(), e, "{q} does not parse back");
    }
    for (q, msg) in [
        (
            "x[5m:1m] smoothed",
            "smoothed modifier is not supported for subqueries",
        ),
        (
            "x[5m] smoothed anchored",
            "anchored and smoothed modifiers cannot be used together",
        ),
        ("sum(x) anchored", "anchored modifier not implemented"),
        ("1 smoothed", "smoothed modifier not implemented"),
    ] {
        let err = parse(q).unwrap_err().to_string();
        assert!(err.contains(msg), "{q}: {err}");
    }
}
