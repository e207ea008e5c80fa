//! Random PromQL over the [`crate::dataset`] metrics, for the differential test against
//! Prometheus. Expressions are built from the pieces of the language both Prometheus 2.42 and
//! current Prometheus define the same way for float samples (see `docs/promql-differences.md`
//! for what is left out and why).

use crate::dataset::{CODES, METHODS, REGIONS, Rng};

const RANGES: [&str; 4] = ["1m", "5m", "10m", "1h"];
const OFFSETS: [&str; 3] = ["5m", "30m", "1h"];

fn counter(r: &mut Rng) -> String {
    let mut ms = Vec::new();
    if r.below(2) == 0 {
        ms.push(format!("method=\"{}\"", r.pick(&METHODS)));
    }
    match r.below(4) {
        0 => ms.push(format!("code=~\"{}|{}\"", r.pick(&CODES), r.pick(&CODES))),
        1 => ms.push(format!("code!=\"{}\"", r.pick(&CODES))),
        2 => ms.push(format!("pod=~\"pod-{}.*\"", r.below(3))),
        _ => {}
    }
    format!("dset_requests_total{{{}}}", ms.join(","))
}

fn gauge(r: &mut Rng) -> String {
    match r.below(3) {
        0 => "dset_temperature_celsius".into(),
        1 => format!(
            "dset_temperature_celsius{{region=\"{}\"}}",
            r.pick(&REGIONS)
        ),
        _ => format!(
            "dset_temperature_celsius{{region!~\"{}\"}}",
            r.pick(&REGIONS)
        ),
    }
}

fn modifier(r: &mut Rng) -> String {
    match r.below(6) {
        0 => format!(" offset {}", r.pick(&OFFSETS)),
        _ => String::new(),
    }
}

/// An instant-vector expression over counters (a rate-like function of a range).
fn counter_rate(r: &mut Rng) -> String {
    let f = *r.pick(&[
        "rate", "increase", "irate", "resets", "changes", "delta", "idelta",
    ]);
    format!("{f}({}[{}]{})", counter(r), r.pick(&RANGES), modifier(r))
}

fn gauge_fn(r: &mut Rng) -> String {
    let g = gauge(r);
    let range = *r.pick(&RANGES);
    match r.below(16) {
        0 => format!("avg_over_time({g}[{range}])"),
        1 => format!("min_over_time({g}[{range}])"),
        2 => format!("max_over_time({g}[{range}])"),
        3 => format!("sum_over_time({g}[{range}])"),
        4 => format!("count_over_time({g}[{range}])"),
        5 => format!("stddev_over_time({g}[{range}])"),
        6 => format!("quantile_over_time(0.{}, {g}[{range}])", 1 + r.below(9)),
        7 => format!("last_over_time({g}[{range}])"),
        8 => format!("deriv({g}[{range}])"),
        9 => format!("predict_linear({g}[{range}], 600)"),
        10 => format!("abs({g} - 25)"),
        11 => format!("clamp({g}, 10, 30)"),
        12 => format!("round({g}, 5)"),
        13 => format!("holt_winters({g}[{range}], 0.5, 0.5)"),
        14 => format!("stdvar_over_time({g}[{range}])"),
        _ => format!("{g}{}", modifier(r)),
    }
}

fn grouping(r: &mut Rng, labels: &[&str]) -> String {
    match r.below(3) {
        0 => format!(" by ({})", r.pick(labels)),
        1 => format!(" without ({})", r.pick(labels)),
        _ => String::new(),
    }
}

fn aggregate(r: &mut Rng) -> String {
    let (inner, labels): (String, &[&str]) = if r.below(2) == 0 {
        (counter_rate(r), &["pod", "method", "code"])
    } else {
        (gauge_fn(r), &["pod", "region"])
    };
    let g = grouping(r, labels);
    match r.below(12) {
        0 => format!("sum{g} ({inner})"),
        1 => format!("avg{g} ({inner})"),
        2 => format!("min{g} ({inner})"),
        3 => format!("max{g} ({inner})"),
        4 => format!("count{g} ({inner})"),
        5 => format!("stddev{g} ({inner})"),
        6 => format!("group{g} ({inner})"),
        7 => format!("topk{g} (3, {inner})"),
        8 => format!("bottomk{g} (2, {inner})"),
        9 => format!("quantile{g} (0.75, {inner})"),
        10 => format!("stdvar{g} ({inner})"),
        _ => format!("count_values{g} (\"v\", round({inner}))"),
    }
}

fn histogram(r: &mut Rng) -> String {
    let q = *r.pick(&["0.5", "0.9", "0.99"]);
    let range = *r.pick(&RANGES[1..]);
    match r.below(3) {
        0 => format!(
            "histogram_quantile({q}, sum by (le) (rate(dset_latency_seconds_bucket[{range}])))"
        ),
        1 => format!(
            "histogram_quantile({q}, rate(dset_latency_seconds_bucket{{pod=\"pod-{}\"}}[{range}]))",
            r.below(4)
        ),
        _ => format!(
            "rate(dset_latency_seconds_sum[{range}]) / rate(dset_latency_seconds_count[{range}])"
        ),
    }
}

fn binary(r: &mut Rng) -> String {
    match r.below(8) {
        0 => format!(
            "sum by (pod) ({}) / on (pod) group_left count by (pod) ({})",
            counter_rate(r),
            counter(r)
        ),
        1 => format!("{} > bool 20", gauge(r)),
        2 => format!("{} > 22", gauge(r)),
        3 => format!(
            "sum by (pod) ({}) and on (pod) {}",
            counter_rate(r),
            gauge(r)
        ),
        4 => format!("{} or {}", gauge(r), aggregate(r)),
        5 => format!("{} unless {} < 20", gauge(r), gauge(r)),
        6 => format!("2 * {} + 1", aggregate(r)),
        _ => format!(
            "sum by (region) ({}) - ignoring (region) group_left sum ({})",
            gauge(r),
            gauge(r)
        ),
    }
}

fn misc(r: &mut Rng) -> String {
    match r.below(9) {
        0 => format!(
            "label_replace({}, \"p\", \"$1\", \"pod\", \"pod-(.*)\")",
            gauge(r)
        ),
        1 => format!(
            "label_join({}, \"pm\", \"/\", \"pod\", \"method\")",
            counter(r)
        ),
        2 => format!("absent({})", counter(r)),
        3 => "absent(nonexistent_metric{job=\"x\"})".into(),
        4 => format!("max_over_time({}[30m:1m])", counter_rate(r)),
        5 => format!("sort_desc(sum by (pod) ({}))", counter_rate(r)),
        6 => format!("timestamp({})", gauge(r)),
        7 => format!("scalar(sum({})) * {}", gauge(r), gauge(r)),
        _ => format!("{} @ {}", gauge(r), crate::dataset::START_S + 3600),
    }
}

/// A random expression: about a fifth each of aggregations, functions, histograms, binary
/// operations and the rest.
pub fn expr(r: &mut Rng) -> String {
    match r.below(6) {
        0 => aggregate(r),
        1 => gauge_fn(r),
        2 => histogram(r),
        3 => binary(r),
        4 => misc(r),
        _ => counter_rate(r),
    }
}

/// `n` expressions from a fixed seed.
pub fn exprs(seed: u64, n: usize) -> Vec<String> {
    let mut r = Rng(seed | 1);
    (0..n).map(|_| expr(&mut r)).collect()
}
