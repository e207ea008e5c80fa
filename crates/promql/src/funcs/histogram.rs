//! Classic-histogram functions: `histogram_quantile` and `histogram_fraction` over `le` buckets.

use super::*;

/// A quantile as the label value `histogram_quantiles` gives it: always with a decimal point
/// (`0.0`, `0.25`, `1.0`).
pub(crate) fn quantile_label(q: f64) -> String {
    let s = format_go_float(q);
    if q.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// `histogram_quantile` over classic buckets (`le` label); `pos` is the buckets argument's.
pub(crate) fn histogram_quantile(
    ctx: &EvalContext<'_>,
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
pub(crate) fn classic_buckets(
    ctx: &EvalContext<'_>,
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
                // The name stays in the key: two families whose buckets share every other
                // label are two groups, and dropping the name afterwards makes them collide
                // (an error), as in Prometheus; they are never summed.
                .filter(|l| l.name != "le"),
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
            out.push(ctx.nameless(&labels, false, pts));
        }
    }
    out
}

/// Sort by bound and merge equal bounds; `None` without a `+Inf` bucket.
pub(crate) fn sorted_buckets(b: &mut [(f64, f64)]) -> Option<Vec<(f64, f64)>> {
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
pub(crate) fn bucket_fraction(lower: f64, upper: f64, b: &mut [(f64, f64)]) -> f64 {
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

pub(crate) fn parse_le(s: &str) -> Option<f64> {
    match s.trim().to_ascii_lowercase().as_str() {
        "+inf" | "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        x => x.parse().ok(),
    }
}

/// The quantile, and whether bucket counts had to be forced monotonic.
pub(crate) fn bucket_quantile(q: f64, b: &mut [(f64, f64)]) -> (f64, bool) {
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
