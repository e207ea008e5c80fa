//! Native-histogram statistics: quantile, fraction and variance over a histogram's buckets,
//! with Prometheus's interpolation (exponential inside exponential buckets, linear in the
//! zero bucket and in custom buckets).

use vigil_model::FloatHistogram;
use vigil_model::histogram::Bucket;

/// What a statistic noticed about NaN observations (they land in no bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NanNote {
    None,
    /// The quantile could not be reached for NaN observations: the result is NaN.
    QuantileNaN,
    /// NaN observations skew the quantile higher.
    QuantileSkewed,
    /// NaN observations are excluded from all fractions.
    FractionExcludesNaN,
}

/// Treat the zero-crossing bucket as starting or ending at zero when the histogram has
/// observations on one side of zero only.
fn clip_zero_crossing(h: &FloatHistogram, b: &mut Bucket) {
    let (has_neg, has_pos) = (
        h.negative_buckets.iter().any(|c| *c != 0.0),
        h.positive_buckets.iter().any(|c| *c != 0.0),
    );
    if !has_neg && has_pos {
        b.lower = 0.0;
    } else if has_neg && !has_pos {
        b.upper = 0.0;
    }
}

/// The `q` quantile of `h`.
pub(crate) fn quantile(q: f64, h: &FloatHistogram) -> (f64, NanNote) {
    if q < 0.0 {
        return (f64::NEG_INFINITY, NanNote::None);
    }
    if q > 1.0 {
        return (f64::INFINITY, NanNote::None);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, NanNote::None);
    }
    let all = h.buckets();
    // From the far end nearer the quantile: better precision, as Prometheus does it.
    let forward = h.sum.is_nan() || q < 0.5;
    let rank_target = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let order: Vec<usize> = if forward {
        (0..all.len()).collect()
    } else {
        (0..all.len()).rev().collect()
    };
    let mut count = 0.0;
    let mut chosen: Option<(usize, Bucket)> = None;
    let mut pos = 0;
    for (k, &i) in order.iter().enumerate() {
        pos = k;
        let b = all[i];
        chosen = Some((k, b));
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank_target {
            break;
        }
    }
    let Some((_, mut b)) = chosen else {
        // No bucket at all: the rank is never reached.
        return if h.sum.is_nan() {
            (f64::NAN, NanNote::QuantileNaN)
        } else {
            (0.0, NanNote::None)
        };
    };
    if h.uses_custom_buckets() {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return (b.upper, NanNote::None);
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return (b.lower, NanNote::None);
        }
    } else if b.lower < 0.0 && b.upper > 0.0 {
        clip_zero_crossing(h, &mut b);
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank_target {
        if h.sum.is_nan() {
            return (f64::NAN, NanNote::QuantileNaN);
        }
        return (b.upper, NanNote::None);
    }
    let rank = if forward {
        rank_target - (count - b.count)
    } else {
        count - rank_target
    };
    let fraction = rank / b.count;
    let mut note = NanNote::None;
    if h.sum.is_nan() {
        let mut total = count;
        for &i in order.iter().skip(pos + 1) {
            total += all[i].count;
        }
        if total < h.count {
            note = NanNote::QuantileSkewed;
        }
    }
    let v = if h.uses_custom_buckets() || (b.lower <= 0.0 && b.upper >= 0.0) {
        b.lower + (b.upper - b.lower) * fraction
    } else {
        let (l, u) = (b.lower.abs().log2(), b.upper.abs().log2());
        if b.lower > 0.0 {
            (l + (u - l) * fraction).exp2()
        } else {
            -(u + (l - u) * (1.0 - fraction)).exp2()
        }
    };
    (v, note)
}

/// The fraction of `h`'s observations between `lower` and `upper`.
pub(crate) fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> (f64, NanNote) {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, NanNote::None);
    }
    if lower >= upper {
        return (0.0, NanNote::None);
    }
    let custom = h.uses_custom_buckets();
    let all = h.buckets();
    let (mut rank, mut count) = (0.0f64, 0.0f64);
    let (mut lower_rank, mut upper_rank): (Option<f64>, Option<f64>) = (None, None);
    let interpolate = |b: &Bucket, rank: f64, v: f64, zero: bool| -> f64 {
        if custom || zero {
            if b.lower == f64::NEG_INFINITY {
                return rank + b.count;
            }
            if b.upper == f64::INFINITY {
                return rank;
            }
            rank + b.count * (v - b.lower) / (b.upper - b.lower)
        } else {
            let (l, u, x) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let f = if v > 0.0 {
                (x - l) / (u - l)
            } else {
                1.0 - (x - u) / (l - u)
            };
            rank + b.count * f
        }
    };
    let mut consumed = 0;
    for (k, b0) in all.iter().enumerate() {
        consumed = k + 1;
        let mut b = *b0;
        count += b.count;
        let mut zero = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero = true;
            clip_zero_crossing(h, &mut b);
        }
        if lower_rank.is_none() && b.lower >= lower {
            lower_rank = Some(rank);
        }
        if upper_rank.is_none() && b.lower >= upper {
            upper_rank = Some(rank);
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        if lower_rank.is_none() && b.lower < lower && lower < b.upper {
            lower_rank = Some(interpolate(&b, rank, lower, zero));
        }
        if upper_rank.is_none() && b.lower < upper && upper < b.upper {
            upper_rank = Some(interpolate(&b, rank, upper, zero));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        rank += b.count;
    }
    let mut note = NanNote::None;
    if h.sum.is_nan() {
        for b in &all[consumed.min(all.len())..] {
            count += b.count;
        }
        if count < h.count {
            note = NanNote::FractionExcludesNaN;
        }
    } else {
        count = h.count;
    }
    let clamp = |r: Option<f64>| match r {
        Some(r) if r <= count => r,
        _ => count,
    };
    ((clamp(upper_rank) - clamp(lower_rank)) / h.count, note)
}

/// The variance of `h`'s observations, each bucket's observations taken at its middle
/// (geometric for exponential buckets, arithmetic for custom ones, 0 in the zero bucket).
pub(crate) fn stdvar(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut comp) = (0.0, 0.0);
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let g = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -g } else { g }
        };
        let d = val - mean;
        (var, comp) = super::kahan_inc(b.count * d * d, var, comp);
    }
    (var + comp) / h.count
}

/// A histogram as Prometheus's `String()` writes it (what `count_values` uses as a label
/// value): count, sum, then each bucket with a count as `<bounds>:<count>`, brackets showing
/// which bounds are inclusive.
pub(crate) fn histogram_string(h: &FloatHistogram) -> String {
    use super::format_go_float as g;
    let mut out = format!("{{count:{}, sum:{}", g(h.count), g(h.sum));
    for b in h.buckets().into_iter().filter(|b| b.count != 0.0) {
        out.push_str(&format!(
            ", {}{},{}{}:{}",
            if b.lower_inclusive { '[' } else { '(' },
            g(b.lower),
            g(b.upper),
            if b.upper_inclusive { ']' } else { ')' },
            g(b.count)
        ));
    }
    out.push('}');
    out
}
