//! Prometheus's own PromQL engine tests, run against vigil's engine. Prints a table of evals
//! passed per file and fails if a file falls below its recorded floor (raise the floors as
//! the engine improves; the goal is every eval that does not need native histograms).

use vigil_promql::promqltest::{run, run_sharded};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/promql"
);

/// (file, minimum evals that must pass)
const FLOORS: &[(&str, usize)] = &[
    ("aggregators.test", 125),
    ("functions.test", 377),
    ("histograms.test", 91),
    ("limit.test", 15),
    ("literals.test", 25),
    ("native_histograms.test", 3),
    ("operators.test", 145),
    ("range_queries.test", 17),
    ("selectors.test", 31),
    ("staleness.test", 17),
];

#[test]
fn upstream_promql_tests() {
    let verbose = std::env::var("VIGIL_PROMQL_VERBOSE").is_ok();
    println!(
        "{:<26} {:>7} {:>7} {:>8} {:>9}",
        "file", "passed", "failed", "skipped", "of total"
    );
    let mut below = Vec::new();
    let (mut p, mut t) = (0, 0);
    for (file, floor) in FLOORS {
        let text = std::fs::read_to_string(format!("{DIR}/{file}"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let r = run(&text);
        println!(
            "{:<26} {:>7} {:>7} {:>8} {:>9}",
            file,
            r.passed,
            r.failed.len(),
            r.skipped_native_histograms,
            r.total()
        );
        if verbose {
            for (line, expr, why) in &r.failed {
                println!("    {file}:{line}: {expr}\n        {why}");
            }
        }
        p += r.passed;
        t += r.total();
        if r.passed < *floor {
            below.push(format!("{file}: {} passed, floor {floor}", r.passed));
        }
    }
    println!("{:<26} {:>7} {:>26}", "all", p, t);
    assert!(below.is_empty(), "regressions: {below:?}");
}

/// The same files with every selection read in three shards on three threads (as the TSDB
/// does on a multi-core machine): the same evals must pass as unsharded.
#[test]
fn upstream_promql_tests_sharded() {
    for (file, _) in FLOORS {
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
