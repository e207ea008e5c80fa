//! Differential test against Debian's Prometheus 2.42: the same generated data backfilled into
//! vigil and into Prometheus (`promtool`), a few hundred generated PromQL queries sent to both
//! HTTP APIs, and the answers compared: same result type, same series, same timestamps, values
//! within 1e-9 relative; and the samples each query read (`stats=all`), total and per step. Differences 2.42 and current Prometheus are known to have are kept out
//! of the generated queries and listed in `docs/promql-differences.md`.

use std::path::Path;

use vigil_bench::compare::{compare, compare_values};
use vigil_bench::dataset::{Dataset, START_S};
use vigil_bench::querygen;
use vigil_bench::servers::{
    PROMTOOL, backfill_prometheus, backfill_vigil, start_prometheus, start_vigil,
};

#[test]
fn generated_queries_answer_as_prometheus_does() {
    assert!(
        Path::new(PROMTOOL).exists(),
        "Debian's prometheus is needed (scripts/test installs it)"
    );
    let dir = std::env::temp_dir().join(format!("vigil-differential-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ds = Dataset {
        pods: 12,
        hours: 6,
        interval_s: 15,
    };
    let om = dir.join("data.om");
    let samples = ds.write(&om).unwrap();
    let vigil = Path::new(env!("CARGO_BIN_EXE_vigil"));
    backfill_vigil(vigil, &om, &dir.join("vigil")).unwrap();
    backfill_prometheus(&om, &dir.join("prom")).unwrap();
    // Statistics per step on both, so each answer also says what the query read.
    let stats = ["--enable-feature=promql-per-step-stats".to_string()];
    let v = start_vigil(vigil, &dir.join("vigil"), &stats);
    let p = start_prometheus(&dir.join("prom"), &stats);
    println!("{} series, {samples} samples loaded into both", ds.series());

    if let Ok(q) = std::env::var("VIGIL_DIFF_DEBUG") {
        let (q, t) = q.rsplit_once('@').unwrap();
        println!(
            "vigil: {}",
            v.get("/api/v1/query", &[("query", q), ("time", t)])
        );
        println!(
            "prometheus: {}",
            p.get("/api/v1/query", &[("query", q), ("time", t)])
        );
    }
    // More or other queries: VIGIL_DIFF_SEED=n VIGIL_DIFF_QUERIES=n.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let exprs = querygen::exprs(
        env("VIGIL_DIFF_SEED", 0x5eed),
        env("VIGIL_DIFF_QUERIES", 300) as usize,
    );
    let mut failures = Vec::new();
    let mut stats_failures = Vec::new();
    let mut checked = 0;
    for (i, e) in exprs.iter().enumerate() {
        // Whole-second evaluation times (samples are off-grid, see dataset) such that every
        // window, offset and subquery lies inside the data: from 2.5h (1h range + 1h offset +
        // 30m subquery) to 5h (a 1h range query ends by the 6h end of the data).
        let t = START_S + 9000 + (i as i64 * 617) % 9000;
        let ordered = e.starts_with("sort");
        let (path, params): (&str, Vec<(&str, String)>) = if i % 3 == 2 {
            (
                "/api/v1/query_range",
                vec![
                    ("query", e.clone()),
                    ("start", t.to_string()),
                    ("end", (t + 3600).to_string()),
                    ("step", "60".into()),
                ],
            )
        } else {
            (
                "/api/v1/query",
                vec![("query", e.clone()), ("time", t.to_string())],
            )
        };
        let mut params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        params.push(("stats", "all"));
        let a = v.get(path, &params);
        let b = p.get(path, &params);
        checked += 1;
        // Which of several equal values topk/bottomk keep is unspecified (and differs between
        // Prometheus versions): compare only the values there.
        let result = if e.contains("topk") || e.contains("bottomk") {
            compare_values(&a, &b)
        } else {
            compare(&a, &b, ordered)
        };
        if let Err(why) = result {
            failures.push(format!("{path} {e} @{t}: {why}"));
        } else if let Err(why) = same_samples_read(&a, &b) {
            stats_failures.push(format!("{path} {e} @{t}: {why}"));
        }
    }
    println!(
        "{} of {checked} generated queries answered as Prometheus 2.42 does",
        checked - failures.len()
    );
    println!(
        "{} of {checked} read the samples Prometheus 2.42 reads (totalQueryableSamples and per step)",
        checked - failures.len() - stats_failures.len()
    );
    for f in &stats_failures {
        println!("STATS DIFFER: {f}");
    }
    // `format_query`: long expressions split over lines as Prometheus splits them. Selectors
    // have one matcher each: 2.42 sorts matchers and joins them with "," where current
    // Prometheus (and vigil) keep their order and join them with ", " (promql-differences.md).
    let m = r#"a_very_long_metric_name_for_testing_total{label_one="value one"}"#;
    let formats = [
        format!("sum by (job, instance) (rate({m}[5m])) / sum by (job, instance) (rate({m}[1h]))"),
        format!("histogram_quantile(0.99, sum by (le, job) (rate({m}[5m])))"),
        format!("topk(5, sum without (instance, pod, container) ({m}))"),
        format!("(sum(rate({m}[5m])) > 10) and on (job) up == 1"),
        format!("-sum(rate({m}[5m]) + another_really_long_metric_name_here_total)"),
        format!("max_over_time(sum by (job) (rate({m}[5m]))[1h:5m] offset 1d)"),
        format!(r#"label_replace({m}, "dst", "$1", "src", "(.*)-something-long-enough")"#),
        format!(r#"count_values("some_label_name_long", sum by (job) (rate({m}[5m])))"#),
        format!("({m} + {m})"),
        format!("{m} > bool on(job) group_right(x) {m}"),
        format!("sum(rate(x[5m])) / ignoring(code) group_left sum without (code) (rate({m}[5m]))"),
        format!("quantile_over_time(0.9, {m}[5m:30s] @ 1700000000) * 100 - 50 + 20 * 3"),
        format!("1 + 2 * 3 - sum({m}) / count(another_really_long_metric_name_here_total)"),
        format!("sum by (a, b) ({m} offset 5m) or on (a, b) vector(0) unless {m}"),
    ];
    let mut format_diffs = Vec::new();
    for q in &formats {
        let answer = |s: &vigil_bench::servers::Server| -> String {
            let body = s.get("/api/v1/format_query", &[("query", q)]);
            let j: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
            j["data"].as_str().unwrap_or_default().to_string()
        };
        let (a, b) = (answer(&v), answer(&p));
        if a != b {
            format_diffs.push(format!("{q}\nvigil:\n{a}\nprometheus:\n{b}"));
        }
    }
    println!(
        "{} of {} long queries formatted as Prometheus 2.42 formats them",
        formats.len() - format_diffs.len(),
        formats.len()
    );
    for d in &format_diffs {
        println!("FORMAT DIFFERS: {d}");
    }
    assert!(format_diffs.is_empty(), "format_query differs");
    for f in &failures {
        println!("DIFFERS: {f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} queries differ", failures.len());
    assert!(
        stats_failures.is_empty(),
        "{} queries read other samples",
        stats_failures.len()
    );
}

/// The samples two answers say their query read: the total and each step's count (the
/// per-step times too). Errors on both sides carry no statistics.
fn same_samples_read(a: &str, b: &str) -> Result<(), String> {
    let parse = |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap_or_default() };
    let (a, b) = (parse(a), parse(b));
    if a["status"] != "success" {
        return Ok(());
    }
    let (sa, sb) = (
        &a["data"]["stats"]["samples"],
        &b["data"]["stats"]["samples"],
    );
    for k in ["totalQueryableSamples", "totalQueryableSamplesPerStep"] {
        if sa[k].is_null() || sa[k] != sb[k] {
            return Err(format!("{k}: vigil {} vs prometheus {}", sa[k], sb[k]));
        }
    }
    Ok(())
}
