//! Window functions where a window holds native histograms: `rate`, `increase`, `delta`,
//! `irate`, `idelta`, `sum_over_time`, `avg_over_time`, the counting and last/first
//! functions, `changes` and `resets`, as Prometheus defines them. Windows of floats only are
//! left to the float functions (`window`). Annotations go to a sink, `(is_warning, text)`:
//! windows are computed on shard threads, where the query's notes cannot be reached.

use vigil_model::histogram::CounterResetHint;
use vigil_model::{FloatHistogram, HistogramSample, Sample};
use vigil_storage::Series;

use crate::ast::Pos;
use crate::value::Hist;

/// Whether window function `name` looks at histogram samples at all.
pub(crate) fn reads_histograms(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "sum_over_time"
            | "avg_over_time"
            | "count_over_time"
            | "present_over_time"
            | "last_over_time"
            | "first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_first_over_time"
            | "changes"
            | "resets"
    )
}

/// One value of either kind in a window, in time order.
enum Item<'a> {
    F(&'a Sample),
    H(&'a HistogramSample),
}

impl Item<'_> {
    fn t(&self) -> i64 {
        match self {
            Item::F(s) => s.t,
            Item::H(h) => h.t,
        }
    }
}

/// Recompute the steps of `s` whose window holds histogram samples (`pts` already holds the
/// float function's results; `hs` receives histogram results).
#[allow(clippy::too_many_arguments)]
pub(crate) fn hist_windows(
    ctx: &impl Fn(bool, String),
    name: &str,
    s: &Series,
    ends: &[i64],
    range_ms: i64,
    pos: Pos,
    pts: &mut [Option<f64>],
    hs: &mut Vec<Option<Hist>>,
) {
    let metric = s.labels.metric_name().unwrap_or("").to_string();
    if !reads_histograms(name) {
        // Float-only functions ignore histograms; where a window has both, Prometheus says so.
        for &end in ends {
            let inside = |t: i64| t > end - range_ms && t <= end;
            if s.histograms.iter().any(|x| inside(x.t)) && s.samples.iter().any(|x| inside(x.t)) {
                ctx(
                    false,
                    format!(
                        "ignored histograms in a range containing both floats and histograms for metric name {metric:?} ({pos})"
                    ),
                );
                break;
            }
        }
        return;
    }
    for (k, &end) in ends.iter().enumerate() {
        let start = end - range_ms;
        let hw: Vec<&HistogramSample> = s
            .histograms
            .iter()
            .filter(|x| x.t > start && x.t <= end)
            .collect();
        if hw.is_empty() {
            continue;
        }
        let fw: Vec<&Sample> = s
            .samples
            .iter()
            .filter(|x| x.t > start && x.t <= end)
            .collect();
        let mut all: Vec<Item> = fw
            .iter()
            .map(|x| Item::F(x))
            .chain(hw.iter().map(|x| Item::H(x)))
            .collect();
        all.sort_by_key(Item::t);
        let mix = || {
            ctx(
                true,
                format!(
                    "encountered a mix of histograms and floats for metric name {metric:?} ({pos})"
                ),
            )
        };
        let put_h = |hs: &mut Vec<Option<Hist>>, h: Option<FloatHistogram>| {
            if let Some(h) = h {
                if hs.is_empty() {
                    *hs = vec![None; ends.len()];
                }
                hs[k] = Some(Hist::new(h));
            }
        };
        pts[k] = None;
        match name {
            "rate" | "increase" | "delta" => {
                if !fw.is_empty() {
                    mix();
                    continue;
                }
                let counter = name != "delta";
                let r = hist_rate(ctx, &hw, counter, &metric, pos).map(|mut h| {
                    let f = extrapolation_factor(&hw, start, end, &h, counter);
                    h.scale(if name == "rate" {
                        f / (range_ms as f64 / 1000.0)
                    } else {
                        f
                    });
                    h.hint = CounterResetHint::Gauge;
                    h
                });
                put_h(hs, r);
            }
            "irate" | "idelta" => {
                let n = all.len();
                if n < 2 {
                    continue;
                }
                let (Item::H(prev), Item::H(last)) = (&all[n - 2], &all[n - 1]) else {
                    mix();
                    continue;
                };
                let dt = (last.t - prev.t) as f64 / 1000.0;
                if dt == 0.0 {
                    continue;
                }
                let is_rate = name == "irate";
                let gauge = |h: &FloatHistogram| h.hint == CounterResetHint::Gauge;
                if is_rate && (gauge(&prev.h) || gauge(&last.h)) {
                    ctx(
                        true,
                        format!(
                            "this native histogram metric is not a counter: {metric:?} ({pos})"
                        ),
                    );
                }
                let both_gauges = gauge(&prev.h) && gauge(&last.h);
                if !is_rate && !both_gauges {
                    ctx(
                        true,
                        format!("this native histogram metric is not a gauge: {metric:?} ({pos})"),
                    );
                }
                let mut h = if is_rate && last.h.detect_reset(&prev.h) {
                    (*last.h).clone()
                } else {
                    match last.h.sub_checked(&prev.h) {
                        Ok(c) => {
                            if c.reconciled_bounds {
                                ctx(
                                    false,
                                    format!(
                                        "mismatched custom buckets were reconciled during subtraction ({pos})"
                                    ),
                                );
                            }
                            c.h
                        }
                        Err(_) => {
                            ctx(true, mixed_schemas(&metric, pos));
                            continue;
                        }
                    }
                };
                if is_rate {
                    h.div(dt);
                }
                h.hint = CounterResetHint::Gauge;
                put_h(hs, Some(h.compacted()));
            }
            "sum_over_time" | "avg_over_time" => {
                if !fw.is_empty() {
                    mix();
                    continue;
                }
                let hists = hw.iter().map(|x| &*x.h);
                let r = if name == "avg_over_time" {
                    mean_histograms(ctx, hists, pos, &metric)
                } else {
                    sum_histograms(ctx, hists, pos, &metric)
                };
                put_h(hs, r.map(|h| h.compacted()));
            }
            "count_over_time" => pts[k] = Some(all.len() as f64),
            "present_over_time" => pts[k] = Some(1.0),
            "last_over_time" | "first_over_time" => {
                let item = if name == "last_over_time" {
                    all.last()
                } else {
                    all.first()
                };
                match item {
                    Some(Item::F(x)) => pts[k] = Some(x.v),
                    Some(Item::H(x)) => put_h(hs, Some((*x.h).clone())),
                    None => {}
                }
            }
            "ts_of_last_over_time" | "ts_of_first_over_time" => {
                let item = if name == "ts_of_last_over_time" {
                    all.last()
                } else {
                    all.first()
                };
                pts[k] = item.map(|i| i.t() as f64 / 1000.0);
            }
            "changes" | "resets" => {
                let mut c = 0.0;
                for p in all.windows(2) {
                    let hit = match (&p[0], &p[1]) {
                        (Item::F(a), Item::F(b)) => {
                            if name == "changes" {
                                !(a.v == b.v || a.v.is_nan() && b.v.is_nan())
                            } else {
                                b.v < a.v
                            }
                        }
                        (Item::H(a), Item::H(b)) => {
                            if name == "changes" {
                                !b.h.same_as(&a.h)
                            } else {
                                b.h.detect_reset(&a.h)
                            }
                        }
                        _ => true,
                    };
                    if hit {
                        c += 1.0;
                    }
                }
                pts[k] = Some(c);
            }
            _ => {}
        }
    }
}

/// Prometheus's warning for exponential and custom-bucket histograms met in one operation.
fn mixed_schemas(metric: &str, pos: Pos) -> String {
    format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {metric:?} ({pos})"
    )
}

/// Sum histograms (compensated, as Prometheus) with its annotations for a counter-reset
/// collision and for custom bounds reconciled; None (with a warning) when exponential and
/// custom buckets meet.
pub(crate) fn sum_histograms<'a>(
    ctx: &impl Fn(bool, String),
    hs: impl Iterator<Item = &'a FloatHistogram>,
    pos: Pos,
    metric: &str,
) -> Option<FloatHistogram> {
    let hs: Vec<&FloatHistogram> = hs.collect();
    let (saw_reset, saw_not_reset) = (
        hs.iter().any(|h| h.hint == CounterResetHint::CounterReset),
        hs.iter()
            .any(|h| h.hint == CounterResetHint::NotCounterReset),
    );
    match FloatHistogram::kahan_sum(&hs) {
        Ok(c) => {
            if c.reconciled_bounds {
                ctx(
                    false,
                    format!("mismatched custom buckets were reconciled during aggregation ({pos})"),
                );
            }
            if saw_reset && saw_not_reset {
                ctx(
                    true,
                    format!("conflicting counter resets during histogram aggregation ({pos})"),
                );
            }
            Some(c.h.compacted())
        }
        Err(_) => {
            ctx(true, mixed_schemas(metric, pos));
            None
        }
    }
}

/// The mean of histograms: their compensated sum divided by their number, or, where that
/// sum overflows, the sum of each divided first (as Prometheus falls back to an incremental
/// mean).
pub(crate) fn mean_histograms<'a>(
    ctx: &impl Fn(bool, String),
    hs: impl Iterator<Item = &'a FloatHistogram>,
    pos: Pos,
    metric: &str,
) -> Option<FloatHistogram> {
    let hs: Vec<&FloatHistogram> = hs.collect();
    let n = hs.len() as f64;
    let mut sum = sum_histograms(ctx, hs.iter().copied(), pos, metric)?;
    if sum.has_infinity() && !hs.iter().any(|h| h.has_infinity()) {
        let scaled: Vec<FloatHistogram> = hs
            .iter()
            .map(|h| {
                let mut h = (*h).clone();
                h.div(n);
                h
            })
            .collect();
        let quiet = |_: bool, _: String| {};
        return sum_histograms(&quiet, scaled.iter(), pos, metric);
    }
    sum.div(n);
    Some(sum)
}

/// `last - first` of the window's histograms, corrected for counter resets (counters).
fn hist_rate(
    ctx: &impl Fn(bool, String),
    w: &[&HistogramSample],
    counter: bool,
    metric: &str,
    pos: Pos,
) -> Option<FloatHistogram> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (&w[0].h, &w[w.len() - 1].h);
    if counter && (first.hint == CounterResetHint::Gauge || last.hint == CounterResetHint::Gauge) {
        ctx(
            true,
            format!("this native histogram metric is not a counter: {metric:?} ({pos})"),
        );
    }
    if !counter && (first.hint != CounterResetHint::Gauge || last.hint != CounterResetHint::Gauge) {
        ctx(
            true,
            format!("this native histogram metric is not a gauge: {metric:?} ({pos})"),
        );
    }
    // A reset right after the first sample: count from an empty histogram instead.
    let first: FloatHistogram = if counter && w[1].h.detect_reset(first) {
        FloatHistogram {
            schema: w[1].h.schema,
            custom_values: w[1].h.custom_values.clone(),
            ..Default::default()
        }
    } else {
        (**first).clone()
    };
    let mut h = match last.sub_checked(&first) {
        Ok(c) => {
            if c.reconciled_bounds {
                ctx(
                    false,
                    format!("mismatched custom buckets were reconciled during subtraction ({pos})"),
                );
            }
            c.h
        }
        Err(_) => {
            ctx(true, mixed_schemas(metric, pos));
            return None;
        }
    };
    if counter {
        for p in w.windows(2).skip(1) {
            if p[1].h.detect_reset(&p[0].h) {
                h = match h.add_checked(&p[0].h) {
                    Ok(c) => {
                        if c.reconciled_bounds {
                            ctx(
                                false,
                                format!(
                                    "mismatched custom buckets were reconciled during addition ({pos})"
                                ),
                            );
                        }
                        c.h
                    }
                    Err(_) => {
                        ctx(true, mixed_schemas(metric, pos));
                        return None;
                    }
                };
            }
        }
    }
    Some(h.compacted())
}

/// Prometheus's extrapolation of a window's increase to the whole range, for histograms: the
/// zero point of a counter is estimated from the count.
fn extrapolation_factor(
    w: &[&HistogramSample],
    start: i64,
    end: i64,
    result: &FloatHistogram,
    counter: bool,
) -> f64 {
    let (first, last) = (w[0], w[w.len() - 1]);
    let secs = |ms: i64| ms as f64 / 1000.0;
    let sampled = secs(last.t - first.t);
    let avg = sampled / (w.len() - 1) as f64;
    let mut to_start = secs(first.t - start);
    let mut to_end = secs(end - last.t);
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result.count > 0.0 && first.h.count >= 0.0 {
        let to_zero = sampled * (first.h.count / result.count);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    (sampled + to_start + to_end) / sampled
}
