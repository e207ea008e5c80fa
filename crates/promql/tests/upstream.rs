//! Prometheus's own PromQL engine tests, run against vigil's engine. Prints a table of evals
//! passed and failed per file and fails if a file falls below its recorded floor (raise the
//! floors as the engine improves; the goal is every eval of every file, native histograms
//! included, and then `failed == 0` per file). Nothing is counted as skipped.

use vigil_promql::promqltest::{run, run_sharded};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/promql"
);

/// (file, minimum evals that must pass)
const FLOORS: &[(&str, usize)] = &[
    ("aggregators.test", 159),
    ("functions.test", 431),
    ("histograms.test", 185),
    ("limit.test", 37),
    ("literals.test", 25),
    ("native_histograms.test", 522),
    ("operators.test", 214),
    ("range_queries.test", 18),
    ("selectors.test", 31),
    ("staleness.test", 17),
];

#[test]
fn upstream_promql_tests() {
    let verbose = std::env::var("VIGIL_PROMQL_VERBOSE").is_ok();
    println!(
        "{:<26} {:>7} {:>7} {:>9}",
        "file", "passed", "failed", "of total"
    );
    let mut below = Vec::new();
    let (mut p, mut t, mut reruns) = (0, 0, 0);
    for (file, floor) in FLOORS {
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
    println!("{:<26} {:>7} {:>7} {:>9}", "all", p, t - p, t);
    println!("instant evals re-run with @ pinned: {reruns}");
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
