//! Prometheus's own PromQL engine tests, run against vigil's engine. Prints a table of evals
//! passed and failed per file, and fails unless every eval of every file passes but the ones
//! listed in [`KNOWN_FAILURES`], each with its reason (and those must still fail: a fixed one
//! is taken off the list). Nothing is counted as skipped.

use vigil_promql::promqltest::{run, run_sharded};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/promql"
);

const FILES: &[&str] = &[
    "aggregators.test",
    "functions.test",
    "histograms.test",
    "limit.test",
    "literals.test",
    "native_histograms.test",
    "operators.test",
    "range_queries.test",
    "selectors.test",
    "staleness.test",
];

/// (file, line of the eval, why it fails): none now; an entry must name its reason.
const KNOWN_FAILURES: &[(&str, usize, &str)] = &[];

#[test]
fn upstream_promql_tests() {
    let verbose = std::env::var("VIGIL_PROMQL_VERBOSE").is_ok();
    println!(
        "{:<26} {:>7} {:>7} {:>9}",
        "file", "passed", "failed", "of total"
    );
    let mut unexpected = Vec::new();
    let mut failed_lines = Vec::new();
    let (mut p, mut t, mut reruns) = (0, 0, 0);
    for file in FILES {
        let text = std::fs::read_to_string(format!("{DIR}/{file}"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let r = run(&text);
        println!(
            "{:<26} {:>7} {:>7} {:>9}",
            file,
            r.passed,
            r.failed.len(),
            r.total()
        );
        reruns += r.at_reruns;
        for (line, expr, why) in &r.failed {
            if verbose {
                println!("    {file}:{line}: {expr}\n        {why}");
            }
            failed_lines.push((*file, *line));
            if !KNOWN_FAILURES.iter().any(|k| k.0 == *file && k.1 == *line) {
                unexpected.push(format!("{file}:{line}: {expr}: {why}"));
            }
        }
        p += r.passed;
        t += r.total();
    }
    println!("{:<26} {:>7} {:>7} {:>9}", "all", p, t - p, t);
    println!("instant evals re-run with @ pinned: {reruns}");
    for (file, line, why) in KNOWN_FAILURES {
        println!("known failure {file}:{line}: {why}");
    }
    assert!(unexpected.is_empty(), "failed: {unexpected:#?}");
    let fixed: Vec<_> = KNOWN_FAILURES
        .iter()
        .filter(|k| !failed_lines.contains(&(k.0, k.1)))
        .collect();
    assert!(
        fixed.is_empty(),
        "passing now, take off KNOWN_FAILURES: {fixed:?}"
    );
}

/// The same files with every selection read in three shards on three threads (as the TSDB
/// does on a multi-core machine): the same evals must pass as unsharded.
#[test]
fn upstream_promql_tests_sharded() {
    for file in FILES {
        let text = std::fs::read_to_string(format!("{DIR}/{file}"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let (one, three) = (run(&text), run_sharded(&text, 3));
        let failed = |r: &vigil_promql::promqltest::Report| -> Vec<usize> {
            r.failed.iter().map(|f| f.0).collect()
        };
        assert_eq!(
            (three.passed, failed(&three)),
            (one.passed, failed(&one)),
            "{file}: sharded reading changes which evals pass"
        );
    }
}
