//! Function implementations.

use std::collections::HashMap;

use vigil_model::labels::{METRIC_NAME, is_valid_label_name};
use vigil_model::{Labels, Sample};

use crate::ast::{AggOp, Expr, Pos};
use crate::eval::{Ctx, R, Stepped, V, absent_labels, check_unique, drop_name, invalid};
use crate::select::{for_shards, merge_sorted};
use vigil_model::is_stale_nan;

/// Neumaier-compensated addition, as Prometheus's `kahanSumInc`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

pub(crate) fn kahan_sum(v: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &x in v {
        (s, c) = kahan_inc(x, s, c);
    }
    s + c
}

/// Mean with compensated summation, falling back to an incremental mean on overflow.
pub(crate) fn mean(v: &[f64]) -> f64 {
    let (mut sum, mut c, mut mean, mut count) = (0.0, 0.0, 0.0, 0.0);
    let mut incremental = false;
    for &x in v {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(x, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if x.is_infinite() && (mean > 0.0) == (x > 0.0) {
                continue;
            }
            if !x.is_infinite() && !x.is_nan() {
                continue;
            }
        }
        let corrected = mean + c;
        (mean, c) = kahan_inc(x / count - corrected / count, mean, c);
    }
    if incremental {
        mean + c
    } else {
        (sum + c) / count
    }
}

/// Population variance (Welford, compensated).
pub(crate) fn variance(v: &[f64]) -> f64 {
    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &x in v {
        count += 1.0;
        let delta = x - (mean + cm);
        (mean, cm) = kahan_inc(delta / count, mean, cm);
        (aux, ca) = kahan_inc(delta * (x - (mean + cm)), aux, ca);
    }
    (aux + ca) / count
}

/// Prometheus's quantile: linear interpolation between the closest ranks; NaN sorts first.
pub(crate) fn quantile(q: f64, mut v: Vec<f64>) -> f64 {
    if v.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    v.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = v.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    v[lower as usize] * (1.0 - w) + v[upper as usize] * w
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

fn linear_regression(s: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init = s[0].v;
    let mut const_y = true;
    for (i, p) in s.iter().enumerate() {
        if const_y && i > 0 && p.v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.v, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// `rate`, `increase`, `delta`: Prometheus's extrapolation.
fn extrapolated_rate(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    range_s: f64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    if counter {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    // Prometheus's decisions, exactly; its arithmetic in milliseconds. Each decision is first
    // made without dividing (multiplied out, in milliseconds); only when that lands within
    // rounding distance of the boundary, or overflows, is it made again with Prometheus's own
    // expression in seconds, so results never flip at an exact tie (a gap of exactly 1.1
    // intervals is common with regular scrapes). Divisions were most of the cost of a range
    // query's `rate`.
    let sampled = (last.t - first.t) as f64;
    let intervals = (w.len() - 1) as f64;
    let mut to_start = (first.t - range_start) as f64;
    let mut to_end = (range_end - last.t) as f64;
    let secs = |ms: f64| ms / 1000.0;
    // Prometheus: `to_s >= (sampled_s / intervals) * 1.1`.
    let beyond_threshold = |to: f64| {
        let (l, r) = (to * intervals, sampled * 1.1);
        if (l - r).abs() > r * 1e-12 {
            l > r
        } else {
            secs(to) >= (secs(sampled) / intervals) * 1.1
        }
    };
    if beyond_threshold(to_start) {
        to_start = sampled / intervals / 2.0;
    }
    // The counter's zero point limits the extrapolation. Prometheus: `sampled_s * (first /
    // result) < to_start_s`.
    if counter && result > 0.0 && first.v >= 0.0 {
        let (l, r) = (sampled * first.v, to_start * result);
        let below = if l.is_finite() && r.is_finite() && (l - r).abs() > r.abs() * 1e-12 {
            l < r
        } else {
            secs(sampled) * (first.v / result) < secs(to_start)
        };
        if below {
            to_start = sampled * (first.v / result);
        }
    }
    if beyond_threshold(to_end) {
        to_end = sampled / intervals / 2.0;
    }
    let span = sampled + to_start + to_end;
    // The factor first, as Prometheus (`result * span` could overflow where it does not). It
    // can differ from Prometheus's in the last bit (one division instead of five).
    Some(
        result
            * if is_rate {
                span / (sampled * range_s)
            } else {
                span / sampled
            },
    )
}

fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (prev, last) = (w[w.len() - 2], w[w.len() - 1]);
    let dt = (last.t - prev.t) as f64 / 1000.0;
    if dt == 0.0 {
        return None;
    }
    let mut v = last.v - prev.v;
    if is_rate {
        if last.v < prev.v {
            v = last.v;
        }
        v /= dt;
    }
    Some(v)
}

fn holt_winters(w: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (mut s0, mut s1, mut b) = (0.0, w[0].v, w[1].v - w[0].v);
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// `f` over each step's window of one series' samples (time order, no staleness markers)
/// into `pts`, one slot per window end. Generic, so each window function is inlined into this
/// loop (see [`wf`]): one indirect call per series rather than per window.
fn windows_into<G: Fn(&[Sample], usize, i64, i64) -> Option<f64>>(
    samples: &[Sample],
    ends: &[i64],
    range_ms: i64,
    f: &G,
    pts: &mut Vec<Option<f64>>,
) {
    pts.clear();
    let (mut lo, mut hi) = (0usize, 0usize);
    for (k, &end) in ends.iter().enumerate() {
        let start = end - range_ms;
        // Ends only decrease under `@` (where they are constant): start over then.
        if lo > 0 && samples[lo - 1].t > start || hi > 0 && samples[hi - 1].t > end {
            lo = 0;
            hi = 0;
        }
        while lo < samples.len() && samples[lo].t <= start {
            lo += 1;
        }
        hi = hi.max(lo);
        while hi < samples.len() && samples[hi].t <= end {
            hi += 1;
        }
        let w = &samples[lo..hi];
        pts.push(if w.is_empty() {
            None
        } else {
            f(w, k, end, range_ms)
        });
    }
}

/// A function over the windows of a range argument, per series and step. A matrix selector's
/// series are streamed from storage in shards (see `select`); a subquery's are evaluated first.
fn over_windows(ctx: &Ctx<'_>, arg: &Expr, keep_name: bool, f: &WindowFn<'_>) -> R<Vec<Stepped>> {
    let name = |l: Labels| if keep_name { l } else { drop_name(&l) };
    if let Expr::MatrixSelector { vs, range_ms } = arg.unparen() {
        let ends = ctx.window_ends(vs);
        let q = ctx.window_querier(&ends, *range_ms)?;
        let budget = ctx.budget();
        let steps = ctx.step_slots(ends.len());
        let parts = for_shards(&*q, &vs.matchers, |set| {
            let mut out = Vec::new();
            let mut pts = Vec::with_capacity(ends.len());
            for mut s in set {
                s.samples.retain(|x| !is_stale_nan(x.v));
                budget.count_series(&s.labels, s.samples.len() + steps)?;
                f(&s.samples, &ends, *range_ms, &mut pts);
                // The raw samples go now; the per-step results stay counted.
                budget.release(s.samples.len());
                if pts.iter().any(Option::is_some) {
                    out.push(Stepped {
                        labels: s.labels,
                        pts: pts.clone(),
                    });
                }
            }
            Ok(out)
        })?;
        let out = merge_sorted(parts, |s| &s.labels)
            .into_iter()
            .map(|s| Stepped {
                labels: name(s.labels),
                pts: s.pts,
            })
            .collect();
        return check_unique(out);
    }
    let ra = ctx.range_arg(arg)?;
    let one = |series: &[vigil_storage::Series]| -> Vec<Stepped> {
        let mut out = Vec::with_capacity(series.len());
        let mut pts = Vec::with_capacity(ra.ends.len());
        for s in series {
            f(&s.samples, &ra.ends, ra.range_ms, &mut pts);
            if pts.iter().any(Option::is_some) {
                out.push(Stepped {
                    labels: name(s.labels.clone()),
                    pts: pts.clone(),
                });
            }
        }
        out
    };
    // Series are independent: large evaluations are split over the machine's cores.
    let threads = if ra.series.len() * ra.ends.len() >= PARALLEL_WINDOWS {
        std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
    } else {
        1
    };
    let out = if threads <= 1 || ra.series.len() < 2 {
        one(&ra.series)
    } else {
        let chunk = ra.series.len().div_ceil(threads);
        std::thread::scope(|sc| {
            let workers: Vec<_> = ra
                .series
                .chunks(chunk)
                .map(|c| sc.spawn(|| one(c)))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("window worker panicked"))
                .collect()
        })
    };
    check_unique(out)
}

/// Per-step accumulators of one aggregation group, filled series by series.
struct GroupAcc {
    key: Labels,
    /// The smallest input labels that reached this group: groups are output in order of
    /// first appearance in the label-sorted input, as Prometheus does.
    first: Labels,
    acc: Vec<f64>,
    comp: Vec<f64>,
    cnt: Vec<u32>,
}

impl GroupAcc {
    fn add(&mut self, op: AggOp, k: usize, x: f64) {
        let (acc, cnt) = (&mut self.acc[k], self.cnt[k]);
        match op {
            AggOp::Sum => (*acc, self.comp[k]) = kahan_inc(x, *acc, self.comp[k]),
            AggOp::Min if cnt == 0 || x < *acc || acc.is_nan() => *acc = x,
            AggOp::Max if cnt == 0 || x > *acc || acc.is_nan() => *acc = x,
            _ => {}
        }
        self.cnt[k] += 1;
    }

    /// Add one series' per-step values (the loop chosen once per series, not per value).
    fn fold(&mut self, op: AggOp, pts: &[Option<f64>]) {
        if op == AggOp::Sum {
            for (k, p) in pts.iter().enumerate() {
                if let Some(x) = *p {
                    (self.acc[k], self.comp[k]) = kahan_inc(x, self.acc[k], self.comp[k]);
                    self.cnt[k] += 1;
                }
            }
        } else {
            for (k, p) in pts.iter().enumerate() {
                if let Some(x) = *p {
                    self.add(op, k, x);
                }
            }
        }
    }

    /// Fold another shard's accumulators for the same group into this one.
    fn merge(&mut self, op: AggOp, o: GroupAcc) {
        for k in 0..self.acc.len() {
            if o.cnt[k] == 0 {
                continue;
            }
            match op {
                AggOp::Sum => {
                    (self.acc[k], self.comp[k]) = kahan_inc(o.acc[k], self.acc[k], self.comp[k]);
                    (self.acc[k], self.comp[k]) = kahan_inc(o.comp[k], self.acc[k], self.comp[k]);
                    self.cnt[k] += o.cnt[k];
                }
                _ => {
                    let c = o.cnt[k];
                    self.add(op, k, o.acc[k]);
                    self.cnt[k] += c - 1;
                }
            }
        }
        if o.first < self.first {
            self.first = o.first;
        }
    }

    fn finish(self, op: AggOp) -> Option<Stepped> {
        let pts: Vec<Option<f64>> = (0..self.acc.len())
            .map(|k| {
                (self.cnt[k] > 0).then(|| match op {
                    AggOp::Sum => self.acc[k] + self.comp[k],
                    AggOp::Count => self.cnt[k] as f64,
                    AggOp::Group => 1.0,
                    _ => self.acc[k],
                })
            })
            .collect();
        pts.iter().any(Option::is_some).then_some(Stepped {
            labels: self.key,
            pts,
        })
    }
}

/// `sum`, `count`, `group`, `min` or `max` of a function over a matrix selector's windows
/// (`sum by (code) (rate(x[5m]))`), evaluated in one pass: each series is decoded, its windows
/// computed and folded into its group's accumulators, and dropped, on one thread per shard, so
/// neither the raw samples nor the function's per-series results are ever all held at once.
/// `None` when the expression has another shape, or when dropping the metric name could make
/// two series equal (that error is detected on the unfused path).
pub(crate) fn aggregate_windows(
    ctx: &Ctx<'_>,
    op: AggOp,
    expr: &Expr,
    grouping: &[String],
    without: bool,
) -> R<Option<Vec<Stepped>>> {
    if !matches!(
        op,
        AggOp::Sum | AggOp::Count | AggOp::Group | AggOp::Min | AggOp::Max
    ) {
        return Ok(None);
    }
    let Expr::Call {
        func,
        args,
        pos,
        arg_pos,
    } = expr.unparen()
    else {
        return Ok(None);
    };
    let Some((Expr::MatrixSelector { vs, range_ms }, keep_name)) =
        window_arg(func.name, args).map(|(a, k)| (a.unparen(), k))
    else {
        return Ok(None);
    };
    let one_name = vs.matchers.iter().any(|m| {
        m.name == METRIC_NAME && m.op == vigil_storage::MatchOp::Equal && !m.value.is_empty()
    });
    if !keep_name && !one_name {
        return Ok(None);
    }
    let Some(w) = windowed(ctx, func.name, args, *pos, arg_pos)? else {
        return Ok(None);
    };
    let f = &*w.f;
    let n = ctx.n();
    let ends = ctx.window_ends(vs);
    let q = ctx.window_querier(&ends, *range_ms)?;
    let budget = ctx.budget();
    let key_of = |l: &Labels| {
        Labels::from_sorted_refs(l.iter().filter(|x| {
            let named = x.name == METRIC_NAME;
            let listed = grouping.iter().any(|g| g == x.name);
            if without {
                !named && !listed
            } else {
                listed && (keep_name || !named)
            }
        }))
    };
    let parts = for_shards(&*q, &vs.matchers, |set| {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<GroupAcc> = Vec::new();
        let mut pts = Vec::with_capacity(n);
        for mut s in set {
            s.samples.retain(|x| !is_stale_nan(x.v));
            budget.count_series(&s.labels, s.samples.len())?;
            f(&s.samples, &ends, *range_ms, &mut pts);
            // Only the groups' accumulators stay: the raw samples go now.
            budget.release(s.samples.len());
            if !pts.iter().any(Option::is_some) {
                continue;
            }
            let key = key_of(&s.labels);
            let g = match index.get(&key) {
                Some(&g) => g,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(GroupAcc {
                        key,
                        first: s.labels.clone(),
                        acc: vec![0.0; n],
                        comp: vec![0.0; n],
                        cnt: vec![0; n],
                    });
                    groups.len() - 1
                }
            };
            groups[g].fold(op, &pts);
        }
        Ok(groups)
    })?;
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<GroupAcc> = Vec::new();
    for g in parts.into_iter().flatten() {
        match index.get(&g.key) {
            Some(&i) => groups[i].merge(op, g),
            None => {
                index.insert(g.key.clone(), groups.len());
                groups.push(g);
            }
        }
    }
    groups.sort_by(|a, b| a.first.cmp(&b.first));
    Ok(Some(
        groups.into_iter().filter_map(|g| g.finish(op)).collect(),
    ))
}

/// Windows (series x steps) above which a range function runs on several threads.
const PARALLEL_WINDOWS: usize = 100_000;

fn map_vector(
    v: Vec<Stepped>,
    keep_name: bool,
    f: impl Fn(f64, usize) -> Option<f64>,
) -> R<Vec<Stepped>> {
    let out = v
        .into_iter()
        .filter_map(|s| {
            let pts: Vec<Option<f64>> = s
                .pts
                .iter()
                .enumerate()
                .map(|(k, p)| p.and_then(|x| f(x, k)))
                .collect();
            pts.iter().any(Option::is_some).then(|| Stepped {
                labels: if keep_name {
                    s.labels
                } else {
                    drop_name(&s.labels)
                },
                pts,
            })
        })
        .collect();
    check_unique(out)
}

/// Year, month, day, hour, minute and weekday (0 = Sunday) of Unix seconds, in UTC.
fn civil(secs: f64) -> Option<(i64, u32, u32, u32, u32, u32, u32)> {
    if !secs.is_finite() {
        return None;
    }
    let s = secs.floor() as i64;
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = vigil_model::time::civil_from_days(days);
    let dow = (days + 4).rem_euclid(7) as u32;
    Some((
        y,
        m as u32,
        d as u32,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        dow,
        0,
    ))
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    (1..m).map(|mm| days_in_month(y, mm)).sum::<u32>() + d
}

/// A window function applied to every window of one series: its samples, the window ends, the
/// range's length, and the per-step output.
type WindowFn<'e> = dyn Fn(&[Sample], &[i64], i64, &mut Vec<Option<f64>>) + Sync + 'e;
type F<'e> = Box<WindowFn<'e>>;

/// Box a function of one window (its samples, the step index, the window's end and its length)
/// as a [`WindowFn`] over all of a series' windows, with the window function inlined there.
fn wf<'e>(f: impl Fn(&[Sample], usize, i64, i64) -> Option<f64> + Sync + 'e) -> F<'e> {
    Box::new(move |samples, ends, range_ms, pts| windows_into(samples, ends, range_ms, &f, pts))
}

/// Warn about quantiles outside [0, 1] (each distinct value once), as Prometheus does even when
/// there is no data.
pub(crate) fn check_quantiles(ctx: &Ctx<'_>, q: &[f64], pos: Pos) {
    let mut seen: Vec<u64> = Vec::new();
    for &x in q {
        if (x.is_nan() || !(0.0..=1.0).contains(&x)) && !seen.contains(&x.to_bits()) {
            seen.push(x.to_bits());
            ctx.warn(format!(
                "quantile value should be between 0 and 1, got {} ({pos})",
                format_go_float(x)
            ));
        }
    }
}

/// A function over the windows of a range argument: `f` gets a window's samples, the step
/// index, the window's end and the range's length (ms).
pub(crate) struct Windowed<'e> {
    pub arg: &'e Expr,
    pub keep_name: bool,
    pub f: F<'e>,
}

/// The range argument of `name` if it is a function over windows (checked before anything
/// is evaluated), and whether the function keeps the metric name.
pub(crate) fn window_arg<'e>(name: &str, args: &'e [Expr]) -> Option<(&'e Expr, bool)> {
    let f = crate::functions::lookup(name)?;
    Some((args.get(f.window_arg()?)?, f.window?.keeps_name))
}

/// The window function `name` applies, its scalar parameters evaluated (and checked, with
/// Prometheus's errors and warnings); `None` if `name` is not a function over windows.
pub(crate) fn windowed<'e>(
    ctx: &Ctx<'_>,
    name: &str,
    args: &'e [Expr],
    pos: Pos,
    arg_pos: &[Pos],
) -> R<Option<Windowed<'e>>> {
    let Some((arg, keep_name)) = window_arg(name, args) else {
        return Ok(None);
    };
    let apos = |i: usize| arg_pos.get(i).copied().unwrap_or(pos);
    let n = ctx.n();
    let f = match name {
        "rate" | "increase" | "delta" => {
            let counter = name != "delta";
            let is_rate = name == "rate";
            // The range in seconds, divided once rather than per window.
            let range_s = match arg.unparen() {
                Expr::MatrixSelector { range_ms, .. } | Expr::Subquery { range_ms, .. } => {
                    *range_ms as f64 / 1000.0
                }
                _ => f64::NAN,
            };
            wf(move |w, _, end, range_ms| {
                extrapolated_rate(w, end - range_ms, end, range_s, counter, is_rate)
            })
        }
        "irate" => wf(|w, _, _, _| instant_value(w, true)),
        "idelta" => wf(|w, _, _, _| instant_value(w, false)),
        "avg_over_time" => wf(|w, _, _, _| Some(mean(&w.iter().map(|s| s.v).collect::<Vec<_>>()))),
        "sum_over_time" => {
            wf(|w, _, _, _| Some(kahan_sum(&w.iter().map(|s| s.v).collect::<Vec<_>>())))
        }
        "count_over_time" => wf(|w, _, _, _| Some(w.len() as f64)),
        "min_over_time" => wf(|w, _, _, _| {
            Some(
                w.iter()
                    .fold(f64::NAN, |m, s| if s.v < m || m.is_nan() { s.v } else { m }),
            )
        }),
        "max_over_time" => wf(|w, _, _, _| {
            Some(
                w.iter()
                    .fold(f64::NAN, |m, s| if s.v > m || m.is_nan() { s.v } else { m }),
            )
        }),
        "stddev_over_time" => {
            wf(|w, _, _, _| Some(variance(&w.iter().map(|s| s.v).collect::<Vec<_>>()).sqrt()))
        }
        "stdvar_over_time" => {
            wf(|w, _, _, _| Some(variance(&w.iter().map(|s| s.v).collect::<Vec<_>>())))
        }
        "last_over_time" => wf(|w, _, _, _| w.last().map(|s| s.v)),
        "first_over_time" => wf(|w, _, _, _| w.first().map(|s| s.v)),
        "ts_of_last_over_time" => wf(|w, _, _, _| w.last().map(|s| s.t as f64 / 1000.0)),
        "ts_of_first_over_time" => wf(|w, _, _, _| w.first().map(|s| s.t as f64 / 1000.0)),
        "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let max = name == "ts_of_max_over_time";
            wf(move |w, _, _, _| {
                let mut best: Option<Sample> = None;
                for s in w {
                    let better = match best {
                        None => true,
                        Some(b) => b.v.is_nan() || if max { s.v >= b.v } else { s.v <= b.v },
                    };
                    if better {
                        best = Some(*s);
                    }
                }
                best.map(|b| b.t as f64 / 1000.0)
            })
        }
        "present_over_time" => wf(|_, _, _, _| Some(1.0)),
        "changes" => wf(|w, _, _, _| {
            let mut c = 0.0;
            for p in w.windows(2) {
                if !(p[1].v == p[0].v || p[1].v.is_nan() && p[0].v.is_nan()) {
                    c += 1.0;
                }
            }
            Some(c)
        }),
        "resets" => wf(|w, _, _, _| Some(w.windows(2).filter(|p| p[1].v < p[0].v).count() as f64)),
        "deriv" => wf(|w, _, _, _| (w.len() >= 2).then(|| linear_regression(w, w[0].t).0)),
        "predict_linear" => {
            let d = ctx.scalar_arg(&args[1])?;
            let times: Vec<i64> = ctx.times().collect();
            wf(move |w, k, _, _| {
                (w.len() >= 2).then(|| {
                    // The intercept is at the evaluation time, even under `@`.
                    let (slope, intercept) = linear_regression(w, times[k]);
                    slope * d[k] + intercept
                })
            })
        }
        "quantile_over_time" => {
            let q = ctx.scalar_arg(&args[0])?;
            check_quantiles(ctx, &q, apos(0));
            wf(move |w, k, _, _| Some(quantile(q[k], w.iter().map(|s| s.v).collect())))
        }
        "mad_over_time" => wf(|w, _, _, _| {
            let vals: Vec<f64> = w.iter().map(|s| s.v).collect();
            // A NaN sample makes the deviation NaN rather than being sorted away.
            if vals.iter().any(|v| v.is_nan()) {
                return Some(f64::NAN);
            }
            let med = quantile(0.5, vals.clone());
            Some(quantile(
                0.5,
                vals.iter().map(|v| (v - med).abs()).collect(),
            ))
        }),
        "holt_winters" | "double_exponential_smoothing" => {
            let sf = ctx.scalar_arg(&args[1])?;
            let tf = ctx.scalar_arg(&args[2])?;
            for k in 0..n {
                if sf[k] <= 0.0 || sf[k] >= 1.0 {
                    return invalid(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {:.6}",
                        sf[k]
                    ));
                }
                if tf[k] <= 0.0 || tf[k] >= 1.0 {
                    return invalid(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {:.6}",
                        tf[k]
                    ));
                }
            }
            wf(move |w, k, _, _| holt_winters(w, sf[k], tf[k]))
        }
        _ => unreachable!("the function table marks {name} as a window function"),
    };
    Ok(Some(Windowed { arg, keep_name, f }))
}

pub(crate) fn call(ctx: &Ctx<'_>, name: &str, args: &[Expr], pos: Pos, arg_pos: &[Pos]) -> R<V> {
    if let Some(w) = windowed(ctx, name, args, pos, arg_pos)? {
        return Ok(V::Vector(over_windows(ctx, w.arg, w.keep_name, &*w.f)?));
    }
    let apos = |i: usize| arg_pos.get(i).copied().unwrap_or(pos);
    let n = ctx.n();
    let times: Vec<i64> = ctx.times().collect();
    let math = |f: fn(f64) -> f64| -> R<V> {
        Ok(V::Vector(map_vector(
            ctx.vector_arg(&args[0])?,
            false,
            |x, _| Some(f(x)),
        )?))
    };
    match name {
        "absent_over_time" => {
            let present = over_windows(ctx, &args[0], false, &*wf(|_, _, _, _| Some(1.0)))?;
            let labels = match args[0].unparen() {
                Expr::MatrixSelector { vs, .. } => absent_labels(vs),
                _ => Labels::empty(),
            };
            let pts: Vec<Option<f64>> = (0..n)
                .map(|k| (!present.iter().any(|s| s.pts[k].is_some())).then_some(1.0))
                .collect();
            Ok(V::Vector(if pts.iter().any(Option::is_some) {
                vec![Stepped { labels, pts }]
            } else {
                vec![]
            }))
        }
        "absent" => {
            let v = ctx.vector_arg(&args[0])?;
            let labels = match args[0].unparen() {
                Expr::VectorSelector(vs) => absent_labels(vs),
                _ => Labels::empty(),
            };
            let pts: Vec<Option<f64>> = (0..n)
                .map(|k| (!v.iter().any(|s| s.pts[k].is_some())).then_some(1.0))
                .collect();
            Ok(V::Vector(if pts.iter().any(Option::is_some) {
                vec![Stepped { labels, pts }]
            } else {
                vec![]
            }))
        }
        "abs" => math(f64::abs),
        "ceil" => math(f64::ceil),
        "floor" => math(f64::floor),
        "exp" => math(f64::exp),
        "sqrt" => math(f64::sqrt),
        "ln" => math(f64::ln),
        "log2" => math(f64::log2),
        "log10" => math(f64::log10),
        "sin" => math(f64::sin),
        "cos" => math(f64::cos),
        "tan" => math(f64::tan),
        "asin" => math(f64::asin),
        "acos" => math(f64::acos),
        "atan" => math(f64::atan),
        "sinh" => math(f64::sinh),
        "cosh" => math(f64::cosh),
        "tanh" => math(f64::tanh),
        "asinh" => math(f64::asinh),
        "acosh" => math(f64::acosh),
        "atanh" => math(f64::atanh),
        "deg" => math(|x| x * 180.0 / std::f64::consts::PI),
        "rad" => math(|x| x * std::f64::consts::PI / 180.0),
        "sgn" => math(|x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }),
        "round" => {
            let to = if args.len() > 1 {
                ctx.scalar_arg(&args[1])?
            } else {
                vec![1.0; n]
            };
            Ok(V::Vector(map_vector(
                ctx.vector_arg(&args[0])?,
                false,
                |x, k| {
                    let inv = 1.0 / to[k];
                    Some((x * inv + 0.5).floor() / inv)
                },
            )?))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = ctx.vector_arg(&args[0])?;
            let (lo, hi) = match name {
                "clamp" => (ctx.scalar_arg(&args[1])?, ctx.scalar_arg(&args[2])?),
                "clamp_min" => (ctx.scalar_arg(&args[1])?, vec![f64::INFINITY; n]),
                _ => (vec![f64::NEG_INFINITY; n], ctx.scalar_arg(&args[1])?),
            };
            Ok(V::Vector(map_vector(v, false, |x, k| {
                if hi[k] < lo[k] {
                    return None;
                }
                Some(x.max(lo[k]).min(hi[k]))
            })?))
        }
        "timestamp" => {
            if let Expr::VectorSelector(vs) = args[0].unparen() {
                let out = ctx
                    .vector_selector_ts(vs)?
                    .into_iter()
                    .map(|(s, ts)| Stepped {
                        labels: drop_name(&s.labels),
                        pts: s
                            .pts
                            .iter()
                            .zip(&ts)
                            .map(|(p, t)| p.map(|_| *t as f64 / 1000.0))
                            .collect(),
                    })
                    .collect();
                Ok(V::Vector(check_unique(out)?))
            } else {
                Ok(V::Vector(map_vector(
                    ctx.vector_arg(&args[0])?,
                    false,
                    |_, k| Some(times[k] as f64 / 1000.0),
                )?))
            }
        }
        "time" => Ok(V::Scalar(
            times.iter().map(|t| *t as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(V::Scalar(vec![std::f64::consts::PI; n])),
        // The query's own parameters, in seconds (experimental upstream).
        "step" => Ok(V::Scalar(vec![ctx.q_step as f64 / 1000.0; n])),
        "range" => Ok(V::Scalar(vec![
            (ctx.q_end - ctx.q_start) as f64 / 1000.0;
            n
        ])),
        "start" => Ok(V::Scalar(vec![ctx.q_start as f64 / 1000.0; n])),
        "end" => Ok(V::Scalar(vec![ctx.q_end as f64 / 1000.0; n])),
        "min_of" | "max_of" => {
            let a = ctx.scalar_arg(&args[0])?;
            let b = ctx.scalar_arg(&args[1])?;
            let min = name == "min_of";
            Ok(V::Scalar(
                a.iter()
                    .zip(&b)
                    .map(|(&x, &y)| match () {
                        _ if x.is_nan() || y.is_nan() => f64::NAN,
                        _ if min => x.min(y),
                        _ => x.max(y),
                    })
                    .collect(),
            ))
        }
        "histogram_quantiles" => {
            let v = ctx.vector_arg(&args[0])?;
            let label = ctx.string_arg(&args[1])?;
            if !vigil_model::labels::is_valid_label_name(&label) {
                return invalid(format!("invalid label name {label:?}"));
            }
            let mut out = Vec::new();
            for (i, a) in args.iter().enumerate().skip(2) {
                let q = ctx.scalar_arg(a)?;
                check_quantiles(ctx, &q, apos(i));
                for mut s in histogram_quantile(ctx, &q, v.clone(), n, apos(0))? {
                    // One quantile per call: its value names the series (e.g. q="0.5").
                    let mut b = s.labels.builder();
                    b.set(label.clone(), quantile_label(q[0]));
                    s.labels = b.build();
                    out.push(s);
                }
            }
            Ok(V::Vector(check_unique(out)?))
        }
        "vector" => {
            let s = ctx.scalar_arg(&args[0])?;
            Ok(V::Vector(vec![Stepped {
                labels: Labels::empty(),
                pts: s.into_iter().map(Some).collect(),
            }]))
        }
        "scalar" => {
            let v = ctx.vector_arg(&args[0])?;
            Ok(V::Scalar(
                (0..n)
                    .map(|k| {
                        let mut it = v.iter().filter_map(|s| s.pts[k]);
                        match (it.next(), it.next()) {
                            (Some(x), None) => x,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "hour" | "minute" => {
            let v = if args.is_empty() {
                vec![Stepped {
                    labels: Labels::empty(),
                    pts: times.iter().map(|t| Some(*t as f64 / 1000.0)).collect(),
                }]
            } else {
                ctx.vector_arg(&args[0])?
            };
            let which = name.to_string();
            Ok(V::Vector(map_vector(v, false, move |x, _| {
                let (y, m, d, h, mi, dow, _) = civil(x)?;
                Some(match which.as_str() {
                    "year" => y as f64,
                    "month" => m as f64,
                    "day_of_month" => d as f64,
                    "day_of_week" => dow as f64,
                    "day_of_year" => day_of_year(y, m, d) as f64,
                    "days_in_month" => days_in_month(y, m) as f64,
                    "hour" => h as f64,
                    _ => mi as f64,
                })
            })?))
        }
        "label_replace" => {
            let v = ctx.vector_arg(&args[0])?;
            let dst = ctx.string_arg(&args[1])?;
            let repl = ctx.string_arg(&args[2])?;
            let src = ctx.string_arg(&args[3])?;
            let re_src = ctx.string_arg(&args[4])?;
            let re = regex::Regex::new(&format!("^(?s:{re_src})$")).map_err(|e| {
                crate::eval::EvalError::Invalid(format!(
                    "invalid regular expression in label_replace(): {re_src}: {e}"
                ))
            })?;
            if !is_valid_label_name(&dst) {
                return invalid(format!(
                    "invalid destination label name in label_replace(): {dst}"
                ));
            }
            let out = v
                .into_iter()
                .map(|s| {
                    let val = s.labels.get_or_empty(&src).to_string();
                    let labels = match re.captures(&val) {
                        Some(caps) => {
                            let mut res = String::new();
                            caps.expand(&repl, &mut res);
                            let mut b = s.labels.builder();
                            b.set(dst.clone(), res);
                            b.build()
                        }
                        None => s.labels,
                    };
                    Stepped { labels, pts: s.pts }
                })
                .collect();
            Ok(V::Vector(check_unique(out)?))
        }
        "label_join" => {
            let v = ctx.vector_arg(&args[0])?;
            let dst = ctx.string_arg(&args[1])?;
            let sep = ctx.string_arg(&args[2])?;
            let srcs: Vec<String> = args[3..]
                .iter()
                .map(|a| ctx.string_arg(a))
                .collect::<R<_>>()?;
            if !is_valid_label_name(&dst) {
                return invalid(format!(
                    "invalid destination label name in label_join(): {dst}"
                ));
            }
            for s in &srcs {
                if !is_valid_label_name(s) {
                    return invalid(format!("invalid source label name in label_join(): {s}"));
                }
            }
            let out = v
                .into_iter()
                .map(|s| {
                    let joined = srcs
                        .iter()
                        .map(|n| s.labels.get_or_empty(n))
                        .collect::<Vec<_>>()
                        .join(&sep);
                    let mut b = s.labels.builder();
                    b.set(dst.clone(), joined);
                    Stepped {
                        labels: b.build(),
                        pts: s.pts,
                    }
                })
                .collect();
            Ok(V::Vector(check_unique(out)?))
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            if ctx.q_start != ctx.q_end {
                ctx.warn(format!(
                    "sort is ineffective for range queries since results are always ordered by labels ({pos})"
                ));
            }
            Ok(V::Vector(ctx.vector_arg(&args[0])?))
        }
        "histogram_quantile" => {
            let q = ctx.scalar_arg(&args[0])?;
            check_quantiles(ctx, &q, apos(0));
            let v = ctx.vector_arg(&args[1])?;
            Ok(V::Vector(histogram_quantile(ctx, &q, v, n, apos(1))?))
        }
        "histogram_fraction" => {
            let lo = ctx.scalar_arg(&args[0])?;
            let hi = ctx.scalar_arg(&args[1])?;
            let v = ctx.vector_arg(&args[2])?;
            Ok(V::Vector(classic_buckets(ctx, v, n, apos(2), |k, b| {
                (bucket_fraction(lo[k], hi[k], b), false)
            })))
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Native histograms are not stored yet: float samples yield nothing, as upstream.
            Ok(V::Vector(vec![]))
        }
        other => invalid(format!("function {other:?} is not implemented yet")),
    }
}

/// A quantile as the label value `histogram_quantiles` gives it: always with a decimal point
/// (`0.0`, `0.25`, `1.0`).
fn quantile_label(q: f64) -> String {
    let s = format_go_float(q);
    if q.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// `histogram_quantile` over classic buckets (`le` label); `pos` is the buckets argument's.
fn histogram_quantile(
    ctx: &Ctx<'_>,
    q: &[f64],
    v: Vec<Stepped>,
    n: usize,
    pos: Pos,
) -> R<Vec<Stepped>> {
    Ok(classic_buckets(ctx, v, n, pos, |k, b| {
        bucket_quantile(q[k], b)
    }))
}

/// Group classic bucket series (by their labels without `le` and `__name__`) and compute
/// `f(step, buckets)` per group and step, buckets as `(upper bound, cumulative count)`.
fn classic_buckets(
    ctx: &Ctx<'_>,
    v: Vec<Stepped>,
    n: usize,
    pos: Pos,
    f: impl Fn(usize, &mut [(f64, f64)]) -> (f64, bool),
) -> Vec<Stepped> {
    // Group key -> (metric name of the buckets, (bound, series index) per bucket).
    let mut groups: HashMap<Labels, (String, Vec<(f64, usize)>)> = HashMap::new();
    for (i, s) in v.iter().enumerate() {
        let name = s.labels.metric_name().unwrap_or("").to_string();
        let Some(le) = s.labels.get("le").and_then(parse_le) else {
            ctx.warn(format!(
                "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?} ({pos})",
                s.labels.get("le").unwrap_or(""),
                name
            ));
            continue;
        };
        let key = Labels::from_sorted_refs(
            s.labels
                .iter()
                .filter(|l| l.name != "le" && l.name != METRIC_NAME),
        );
        groups
            .entry(key)
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push((le, i));
    }
    let mut out = Vec::new();
    for (labels, (name, members)) in groups {
        let mut pts = vec![None; n];
        let mut forced = false;
        for (k, slot) in pts.iter_mut().enumerate() {
            let mut buckets: Vec<(f64, f64)> = members
                .iter()
                .filter_map(|&(le, i)| v[i].pts[k].map(|c| (le, c)))
                .collect();
            if buckets.is_empty() {
                continue;
            }
            let (value, fixed) = f(k, &mut buckets);
            forced |= fixed;
            *slot = Some(value);
        }
        if forced {
            ctx.info(format!(
                "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {name:?} ({pos})"
            ));
        }
        if pts.iter().any(Option::is_some) {
            out.push(Stepped { labels, pts });
        }
    }
    out
}

/// Sort by bound and merge equal bounds; `None` without a `+Inf` bucket.
fn sorted_buckets(b: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    if b.last().is_none_or(|x| x.0 != f64::INFINITY) {
        return None;
    }
    let mut c: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for &(le, cnt) in b.iter() {
        match c.last_mut() {
            Some(last) if last.0 == le => last.1 += cnt,
            _ => c.push((le, cnt)),
        }
    }
    Some(c)
}

/// The fraction of observations between `lower` and `upper`, interpolating linearly within
/// buckets, as Prometheus's `BucketFraction`.
fn bucket_fraction(lower: f64, upper: f64, b: &mut [(f64, f64)]) -> f64 {
    let Some(c) = sorted_buckets(b) else {
        return f64::NAN;
    };
    let count = c[c.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(ub, cnt)) in c.iter().enumerate() {
        // The first bucket starts at 0 when its bound is positive (as histogram_quantile
        // assumes), else at -Inf.
        let lb = match i {
            0 if ub > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => c[i - 1].0,
        };
        // No interpolation within a bucket of infinite width: its observations all count as
        // lying beyond any finite point inside it.
        let interpolate = |v: f64| {
            if lb == f64::NEG_INFINITY {
                cnt
            } else if ub == f64::INFINITY {
                rank
            } else {
                rank + (cnt - rank) * (v - lb) / (ub - lb)
            }
        };
        if !lower_set && lb >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lb >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lb < lower && ub > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lb < upper && ub > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cnt;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim().to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        x => x.parse().ok(),
    }
}

/// The quantile, and whether bucket counts had to be forced monotonic.
fn bucket_quantile(q: f64, b: &mut [(f64, f64)]) -> (f64, bool) {
    let mut forced = false;
    let v = (|| {
        if q.is_nan() {
            return f64::NAN;
        }
        if q < 0.0 {
            return f64::NEG_INFINITY;
        }
        if q > 1.0 {
            return f64::INFINITY;
        }
        let Some(mut c) = sorted_buckets(b) else {
            return f64::NAN;
        };
        // Monotonicity, ignoring tiny float noise.
        let mut prev = c[0].1;
        for x in c.iter_mut().skip(1) {
            let cur = x.1;
            if cur == prev {
                continue;
            }
            if (cur - prev).abs() <= 1e-12 * cur.abs().max(prev.abs()) {
                x.1 = prev;
                continue;
            }
            if cur < prev {
                x.1 = prev;
                forced = true;
                continue;
            }
            prev = cur;
        }
        if c.len() < 2 {
            return f64::NAN;
        }
        let obs = c[c.len() - 1].1;
        if obs == 0.0 {
            return f64::NAN;
        }
        let mut rank = q * obs;
        let idx = c[..c.len() - 1].partition_point(|x| x.1 < rank);
        if idx == c.len() - 1 {
            return c[c.len() - 2].0;
        }
        if idx == 0 && c[0].0 <= 0.0 {
            return c[0].0;
        }
        let (mut start, end, mut count) = (0.0, c[idx].0, c[idx].1);
        if idx > 0 {
            start = c[idx - 1].0;
            count -= c[idx - 1].1;
            rank -= c[idx - 1].1;
        }
        start + (end - start) * (rank / count)
    })();
    (v, forced)
}

/// Result order of instant queries whose outermost function sorts.
pub(crate) fn order_instant(expr: &Expr, out: &mut [(Labels, Sample)]) {
    if let Expr::Aggregate { op, .. } = expr.unparen() {
        match op {
            crate::ast::AggOp::Topk => {
                out.sort_by(|a, b| cmp_desc(a.1.v, b.1.v).then_with(|| a.0.cmp(&b.0)))
            }
            crate::ast::AggOp::Bottomk => {
                out.sort_by(|a, b| cmp_val(a.1.v, b.1.v).then_with(|| a.0.cmp(&b.0)))
            }
            _ => {}
        }
        return;
    }
    let Expr::Call { func, args, .. } = expr.unparen() else {
        return;
    };
    match func.name {
        "sort" => out.sort_by(|a, b| cmp_val(a.1.v, b.1.v)),
        "sort_desc" => out.sort_by(|a, b| cmp_desc(a.1.v, b.1.v)),
        "sort_by_label" | "sort_by_label_desc" => {
            let names: Vec<String> = args[1..]
                .iter()
                .filter_map(|a| {
                    if let Expr::String(s) = a {
                        Some(s.clone())
                    } else {
                        None
                    }
                })
                .collect();
            out.sort_by(|a, b| {
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = natural_cmp(a.0.get_or_empty(n), b.0.get_or_empty(n));
                    if o != std::cmp::Ordering::Equal {
                        break;
                    }
                }
                let o = o.then_with(|| a.0.cmp(&b.0));
                if func.name == "sort_by_label_desc" {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        _ => {}
    }
}

/// Ascending by value, NaN last.
pub(crate) fn cmp_val(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Descending by value, NaN last (a total order, unlike reversing `cmp_val`).
pub(crate) fn cmp_desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Compare strings with digit runs compared numerically.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
            let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
            let (dx, dy) = (&x[..nx], &y[..ny]);
            let tx = dx.iter().skip_while(|c| **c == b'0').count();
            let ty = dy.iter().skip_while(|c| **c == b'0').count();
            let o = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            x = &x[nx..];
            y = &y[ny..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len())
}

/// The `k` series `topk` (or `bottomk`) keeps from `vals` (series index, value) in input order.
///
/// Which of several equal values survive is observable, so this follows Prometheus's algorithm
/// rather than a sort: a binary min-heap (max-heap for `bottomk`) of at most `k` entries, where
/// NaN orders below everything, a new value replaces the root only if strictly better, and the
/// heap is restored by the textbook sift-down/sift-up.
pub fn heap_select(vals: &[(usize, f64)], k: usize, top: bool) -> Vec<usize> {
    // `less(a, b)`: a belongs nearer the root (is evicted first).
    let less = |a: f64, b: f64| {
        if a.is_nan() {
            return true;
        }
        if top { a < b } else { a > b }
    };
    let mut h: Vec<(usize, f64)> = Vec::with_capacity(k.min(vals.len()));
    let sift_down = |h: &mut Vec<(usize, f64)>, mut i: usize| {
        let n = h.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let mut c = l;
            if l + 1 < n && less(h[l + 1].1, h[l].1) {
                c = l + 1;
            }
            if !less(h[c].1, h[i].1) {
                break;
            }
            h.swap(i, c);
            i = c;
        }
    };
    for &(i, v) in vals {
        if h.len() < k {
            h.push((i, v));
            let mut j = h.len() - 1;
            while j > 0 {
                let p = (j - 1) / 2;
                if !less(h[j].1, h[p].1) {
                    break;
                }
                h.swap(p, j);
                j = p;
            }
        } else if k > 0 {
            let root = h[0].1;
            let better = if top { root < v } else { root > v };
            if better || (root.is_nan() && !v.is_nan()) {
                h[0] = (i, v);
                if k > 1 {
                    sift_down(&mut h, 0);
                }
            }
        }
    }
    h.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gap of exactly 1.1 average intervals: Prometheus's arithmetic (in seconds) decides
    /// the boundary, and vigil's faster form must decide it the same way.
    #[test]
    fn extrapolation_threshold_ties_decide_as_prometheus() {
        let w: Vec<Sample> = (0..6)
            .map(|i| Sample {
                t: 11_000 + i * 10_000,
                v: 100.0 + 10.0 * i as f64,
            })
            .collect();
        // to_start 11s = 1.1 x 10s: shortened to 5s; to_end 9s kept; 50 * 64/50.
        assert_eq!(
            extrapolated_rate(&w, 0, 70_000, 70.0, false, false),
            Some(64.0)
        );
        // Huge counter values: the zero-point comparison must not overflow into "no clamp".
        let big = [
            Sample {
                t: 10_000,
                v: 1e306,
            },
            Sample {
                t: 70_000,
                v: 1.01e308,
            },
        ];
        let got = extrapolated_rate(&big, 5_000, 75_000, 70.0, true, false).unwrap();
        // Prometheus: to_zero = 60 * (1e306 / 1e308) = 0.6s < to_start 5s: clamped.
        let want = (1.01e308 - 1e306) * ((60.0 + 0.6 + 5.0) / 60.0);
        assert!((got - want).abs() <= want.abs() * 1e-12, "{got} vs {want}");
    }
}
