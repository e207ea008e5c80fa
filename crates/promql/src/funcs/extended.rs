//! Prometheus's extended range selectors (`anchored`, `smoothed`): which functions take
//! them, the boundary values they give `rate`, `increase`, `delta`, `changes` and `resets`, a
//! bare extended range, and the smoothed instant selector.
//!
//! An `anchored` boundary takes the newest sample at or before it (within the lookback
//! delta), else the first sample inside the range; a `smoothed` one interpolates between the
//! samples around it (within the lookback delta on either side), and carries the nearest
//! sample when there is none on one side. Neither extrapolates.

use super::*;
use crate::ast::{Extend, VectorSelector};
use vigil_storage::Series;

/// The range argument of a call with an extended range selector, if any.
fn extended_arg(args: &[Expr]) -> Option<(&VectorSelector, i64)> {
    args.iter().find_map(|a| match a.unparen() {
        Expr::MatrixSelector { vs, range_ms } if vs.extend != Extend::None => Some((vs, *range_ms)),
        _ => None,
    })
}

/// Refuse an extended range under a function that does not define it (checked when the call
/// is evaluated, before anything is read, as Prometheus does).
pub(crate) fn check_allowed(name: &str, args: &[Expr]) -> R<()> {
    let Some((vs, _)) = extended_arg(args) else {
        return Ok(());
    };
    let allowed = vs.extend.functions();
    if allowed.contains(&name) {
        return Ok(());
    }
    invalid(format!(
        "{} modifier can only be used with: {} - not with {name}",
        vs.extend.word(),
        allowed.join(", ")
    ))
}

/// Whether `call` evaluates this call here.
pub(crate) fn applies(args: &[Expr]) -> bool {
    extended_arg(args).is_some()
}

/// `per_series` over the float samples of each series selected by `vs` around every step's
/// window: from the lookback delta before the earliest window to the latest window's end
/// (plus the lookback delta for `smoothed`), staleness markers removed; histograms are
/// refused by name. A series' samples are charged to the query while `per_series` runs and
/// given back after; `extra` more per series stay charged, for its per-step results. In
/// label order.
fn each_series<T: Send>(
    ctx: &EvalContext<'_>,
    vs: &VectorSelector,
    ends: &[i64],
    range_ms: i64,
    extra: usize,
    per_series: impl Fn(Series) -> Option<T> + Sync,
) -> R<Vec<T>> {
    let lb = ctx.engine.lookback_ms;
    let (lo, hi) = (
        ends.iter().copied().min().unwrap_or(0),
        ends.iter().copied().max().unwrap_or(0),
    );
    let after = if vs.extend == Extend::Smoothed { lb } else { 0 };
    let q = ctx.querier(lo - range_ms - lb + 1, hi.saturating_add(after))?;
    let budget = ctx.budget();
    let word = vs.extend.word();
    let parts = for_shards(&*q, &vs.matchers, |set| {
        let mut out = Vec::new();
        for mut s in set {
            s.samples.retain(|x| !is_stale_nan(x.v));
            s.histograms.retain(|x| !x.is_stale());
            if !s.histograms.is_empty() {
                return invalid(format!("{word} modifier is not supported with histograms"));
            }
            let held = s.samples.len();
            budget.count_series(&s.labels, held + extra)?;
            // Statistics count a window's own samples (not the points either side of it
            // that anchoring or smoothing reads); the smoothed instant selector counts its
            // values instead.
            if range_ms > 0
                && let Some(st) = budget.stats
            {
                st.add_windows(&s.samples, &[], ends, range_ms);
            }
            let labels = s.labels.clone();
            if held > 0
                && let Some(x) = per_series(s)
            {
                out.push((labels, x));
            }
            budget.release(held);
        }
        Ok(out)
    })?;
    Ok(merge_sorted(parts, |(l, _)| l)
        .into_iter()
        .map(|(_, x)| x)
        .collect())
}

/// The samples one step reads: `(start - lookback, end]`, or `(start - lookback, end +
/// lookback]` when smoothed.
fn around(samples: &[Sample], start: i64, end: i64, lb: i64, smoothed: bool) -> &[Sample] {
    let hi_t = if smoothed {
        end.saturating_add(lb)
    } else {
        end
    };
    let lo = samples.partition_point(|s| s.t <= start - lb);
    let hi = samples.partition_point(|s| s.t <= hi_t);
    &samples[lo..hi.max(lo)]
}

/// Linear interpolation at `t` between two samples. For a counter that reset between them,
/// the later value counts up from 0.
fn interpolate(a: Sample, b: Sample, t: i64, counter: bool) -> f64 {
    let y1 = if counter && b.v < a.v { 0.0 } else { a.v };
    y1 + (b.v - y1) * (t - a.t) as f64 / (b.t - a.t) as f64
}

/// The boundary values of one window `(start, end]` over the samples around it, and the
/// index range of the samples they came from: `None` when no sample lies inside.
struct Bounds {
    left: f64,
    right: f64,
    first: usize,
    last: usize,
}

fn bounds(f: &[Sample], start: i64, end: i64, smoothed: bool, counter: bool) -> Option<Bounds> {
    let n = f.len();
    if n == 0 {
        return None;
    }
    // The newest sample at or before the start, else the first one.
    let first = f[..n - 1]
        .partition_point(|s| s.t <= start)
        .saturating_sub(1);
    // Smoothed: the first sample at or after the end, else the last one.
    let last = if smoothed {
        f[..n - 1].partition_point(|s| s.t < end)
    } else {
        n - 1
    };
    // Left-open: a range whose samples all lie at or before its start holds none.
    if f[last].t <= start || smoothed && f[first].t > end {
        return None;
    }
    let mut left = f[first].v;
    if smoothed && f[first].t < start {
        left = interpolate(f[first], f[first + 1], start, counter);
    }
    let mut right = f[last].v;
    if smoothed && f[last].t > end {
        right = interpolate(f[last - 1], f[last], end, counter);
    }
    Some(Bounds {
        left,
        right,
        first,
        last,
    })
}

/// `rate`, `increase` or `delta` of one extended window: the difference of its boundary
/// values, corrected for counter resets between them for a counter.
fn extended_rate(
    f: &[Sample],
    start: i64,
    end: i64,
    smoothed: bool,
    counter: bool,
    per_second: Option<f64>,
) -> Option<f64> {
    let b = bounds(f, start, end, smoothed, counter)?;
    let mut result = b.right - b.left;
    if counter {
        let mut prev = b.left;
        let mut correction = 0.0;
        let inner = f[b.first..=b.last]
            .iter()
            .filter(|s| s.t > start && s.t < end)
            .map(|s| s.v);
        for v in inner.chain(std::iter::once(b.right)) {
            if v < prev {
                correction += prev;
            }
            prev = v;
        }
        result += correction;
    }
    Some(match per_second {
        Some(secs) => result / secs,
        None => result,
    })
}

/// `changes` or `resets` of one anchored window: counted from the newest sample at or before
/// its start.
fn anchored_count(f: &[Sample], start: i64, resets: bool) -> Option<f64> {
    let n = f.len();
    if n == 0 || f[n - 1].t <= start {
        return None;
    }
    let first = f[..n - 1]
        .partition_point(|s| s.t <= start)
        .saturating_sub(1);
    let counted = f[first..]
        .windows(2)
        .filter(|p| {
            if resets {
                p[1].v < p[0].v
            } else {
                !(p[1].v == p[0].v || p[1].v.is_nan() && p[0].v.is_nan())
            }
        })
        .count();
    Some(counted as f64)
}

/// A call of `rate`, `increase`, `delta`, `changes` or `resets` over an extended range
/// (already checked by [`check_allowed`]).
pub(crate) fn call(
    ctx: &EvalContext<'_>,
    name: &str,
    args: &[Expr],
    arg_pos: Pos,
) -> R<Vec<Stepped>> {
    let Some((vs, range_ms)) = extended_arg(args) else {
        return invalid("expected an anchored or smoothed range");
    };
    let ends = ctx.window_ends(vs);
    let lb = ctx.engine.lookback_ms;
    let smoothed = vs.extend == Extend::Smoothed;
    let range_s = range_ms as f64 / 1000.0;
    // (Not through `ctx`, which shard threads cannot share.)
    let delayed = ctx.engine.delayed_name_removal;
    let steps = ctx.step_slots(ends.len());
    // `rate` and `increase` say when a series may not be a counter, as over plain ranges.
    let counter = matches!(name, "rate" | "increase").then(|| super::CounterCheck {
        pos: arg_pos,
        by_type: ctx.engine.type_and_unit_labels,
    });
    let notes = std::sync::Mutex::new(Vec::<String>::new());
    let out = each_series(ctx, vs, &ends, range_ms, steps, |s| {
        let pts: Vec<Option<f64>> = ends
            .iter()
            .map(|&end| {
                let start = end - range_ms;
                let f = around(&s.samples, start, end, lb, smoothed);
                match name {
                    "rate" => extended_rate(f, start, end, smoothed, true, Some(range_s)),
                    "increase" => extended_rate(f, start, end, smoothed, true, None),
                    "delta" => extended_rate(f, start, end, smoothed, false, None),
                    "changes" => anchored_count(f, start, false),
                    _ => anchored_count(f, start, true),
                }
            })
            .collect();
        if let Some(m) = counter
            .filter(|_| pts.iter().any(Option::is_some))
            .and_then(|c| c.note(&s.labels))
            && let Ok(mut n) = notes.lock()
        {
            n.push(m);
        }
        pts.iter().any(Option::is_some).then(|| {
            let (labels, drop) = crate::eval::dropping_name(&s.labels, delayed);
            let mut r = Stepped::floats(labels, pts);
            r.drop_name = drop;
            r
        })
    })?;
    for m in notes.into_inner().unwrap_or_default() {
        ctx.info(m);
    }
    check_unique(out)
}

/// A bare extended range (`x[5m] anchored` as an instant query's result): each series' samples
/// strictly inside the window between a point at each boundary holding its value.
pub(crate) fn matrix(ctx: &EvalContext<'_>, vs: &VectorSelector, range_ms: i64) -> R<Vec<Series>> {
    let ends = ctx.window_ends(vs);
    let end = ends[0];
    let start = end - range_ms;
    let lb = ctx.engine.lookback_ms;
    let smoothed = vs.extend == Extend::Smoothed;
    let out = each_series(ctx, vs, &ends[..1], range_ms, 0, |s| {
        let f = around(&s.samples, start, end, lb, smoothed);
        let b = bounds(f, start, end, smoothed, false)?;
        let mut samples = vec![Sample {
            t: start,
            v: b.left,
        }];
        samples.extend(f.iter().filter(|x| x.t > start && x.t < end).copied());
        samples.push(Sample { t: end, v: b.right });
        Some(Series {
            labels: s.labels,
            samples,
            histograms: Vec::new(),
        })
    })?;
    // The answer's points stay charged.
    ctx.budget()
        .count(out.iter().map(|s| s.samples.len()).sum())?;
    Ok(out)
}

/// The smoothed instant selector (`x smoothed`): at each step the sample at that time, else
/// the value interpolated between the samples either side of it (each within the lookback
/// delta), else the newest sample before it.
pub(crate) fn smoothed_vector(ctx: &EvalContext<'_>, vs: &VectorSelector) -> R<Vec<Stepped>> {
    let ends = ctx.window_ends(vs);
    let lb = ctx.engine.lookback_ms;
    let stats = ctx.stats;
    // A range of 0: the lookback delta either side of each step.
    each_series(ctx, vs, &ends, 0, ctx.step_slots(ends.len()), |s| {
        let f = &s.samples;
        let pts: Vec<Option<f64>> = ends
            .iter()
            .map(|&t| {
                let i = f.partition_point(|x| x.t < t);
                let next = f.get(i).filter(|x| x.t <= t.saturating_add(lb));
                let prev = i.checked_sub(1).map(|j| f[j]).filter(|x| x.t > t - lb);
                match (prev, next) {
                    (_, Some(n)) if n.t == t => Some(n.v),
                    (Some(p), Some(n)) => Some(interpolate(p, *n, t, false)),
                    (Some(p), None) => Some(p.v),
                    (None, _) => None,
                }
            })
            .collect();
        if let Some(st) = stats {
            st.add_present(&pts, &[]);
        }
        pts.iter()
            .any(Option::is_some)
            .then(|| Stepped::floats(s.labels, pts))
    })
}
