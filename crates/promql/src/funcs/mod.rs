//! Function implementations: `call` evaluates the functions that are not over windows;
//! the others live by job in `window`, `stats`, `histogram` and `sort`. Which function is
//! which is the table in `crate::functions`.

use std::collections::HashMap;

use crate::lexer::is_name as is_valid_label_name;
use vigil_model::labels::METRIC_NAME;
use vigil_model::{Labels, Sample};

use crate::ast::{AggOp, Expr, Pos};
use crate::context::EvalContext;
use crate::eval::{absent_labels, check_unique};
use crate::select::{for_shards, merge_sorted};
use crate::value::{R, Stepped, V, invalid};
use vigil_model::is_stale_nan;

mod extended;
mod histogram;
mod info;
mod native;
mod native_window;
mod sort;
mod stats;
#[cfg(test)]
mod tests;
mod window;

pub(crate) use extended::{matrix as extended_matrix, smoothed_vector};
pub(crate) use native::histogram_string;
pub(crate) use native_window::{mean_histograms, sum_histograms};
pub(crate) use {histogram::*, sort::*, stats::*, window::*};

pub(crate) fn map_vector(
    ctx: &EvalContext<'_>,
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
            pts.iter().any(Option::is_some).then(|| {
                let (labels, drop) = if keep_name {
                    (s.labels, false)
                } else {
                    ctx.dropping_name(&s.labels)
                };
                Stepped {
                    labels,
                    pts,
                    hs: Vec::new(),
                    drop_name: drop || s.drop_name,
                }
            })
        })
        .collect();
    check_unique(out)
}

/// Series with native histograms (their floats dropped) apart from float-only series.
pub(crate) fn split_native(v: Vec<Stepped>) -> (Vec<Stepped>, Vec<Stepped>) {
    let (mut native, mut floats) = (Vec::new(), Vec::new());
    for s in v {
        if s.has_histograms() {
            let n = s.pts.len();
            if s.pts.iter().any(Option::is_some) {
                let mut f = Stepped::floats(s.labels.clone(), s.pts);
                f.drop_name = s.drop_name;
                floats.push(f);
            }
            native.push(Stepped {
                labels: s.labels,
                pts: vec![None; n],
                hs: s.hs,
                drop_name: s.drop_name,
            });
        } else {
            floats.push(s);
        }
    }
    (native, floats)
}

/// Native histograms whose labels equal a classic histogram's (its buckets' labels without
/// `le`) are dropped with those buckets, with Prometheus's warning: which one to use is not
/// knowable.
pub(crate) fn drop_mixed(
    ctx: &EvalContext<'_>,
    (native, classic): (Vec<Stepped>, Vec<Stepped>),
    pos: Pos,
) -> (Vec<Stepped>, Vec<Stepped>) {
    if native.is_empty() || classic.is_empty() {
        return (native, classic);
    }
    let classic_key = |s: &Stepped| s.labels.without("le");
    let native_keys: std::collections::HashSet<&Labels> =
        native.iter().map(|s| &s.labels).collect();
    let mut clash: std::collections::HashSet<Labels> = Default::default();
    for s in &classic {
        let k = classic_key(s);
        if native_keys.contains(&k) {
            clash.insert(k);
        }
    }
    if clash.is_empty() {
        return (native, classic);
    }
    let mut names: Vec<&str> = clash.iter().filter_map(|l| l.metric_name()).collect();
    names.sort();
    names.dedup();
    for name in names {
        ctx.warn(format!(
            "vector contains a mix of classic and native histograms for metric name {name:?} ({pos})"
        ));
    }
    let native = native
        .into_iter()
        .filter(|s| !clash.contains(&s.labels))
        .collect();
    let classic = classic
        .into_iter()
        .filter(|s| !clash.contains(&classic_key(s)))
        .collect();
    (native, classic)
}

/// A float per step from each native histogram (`f(step, h)`), the metric name dropped; the
/// NaN notes `f` returns become Prometheus's infos at `pos`.
pub(crate) fn native_stat(
    ctx: &EvalContext<'_>,
    v: Vec<Stepped>,
    n: usize,
    pos: Pos,
    f: impl Fn(usize, &vigil_model::FloatHistogram) -> (f64, native::NanNote),
) -> Vec<Stepped> {
    let mut out = Vec::new();
    for s in v {
        let name = s.labels.metric_name().unwrap_or("").to_string();
        let suffix = if name.is_empty() {
            String::new()
        } else {
            format!(" for metric name {name:?}")
        };
        let mut pts = vec![None; n];
        for (k, p) in pts.iter_mut().enumerate() {
            let Some(h) = s.h(k) else { continue };
            let (x, note) = f(k, h);
            let msg = match note {
                native::NanNote::None => None,
                native::NanNote::QuantileNaN => {
                    Some("input to histogram_quantile has NaN observations, result is NaN")
                }
                native::NanNote::QuantileSkewed => Some(
                    "input to histogram_quantile has NaN observations, result is skewed higher",
                ),
                native::NanNote::FractionExcludesNaN => Some(
                    "input to histogram_fraction has NaN observations, which are excluded from all fractions",
                ),
            };
            if let Some(m) = msg {
                ctx.info(format!("{m}{suffix} ({pos})"));
            }
            *p = Some(x);
        }
        if pts.iter().any(Option::is_some) {
            out.push(ctx.nameless(&s.labels, s.drop_name, pts));
        }
    }
    out
}

/// Year, month, day, hour, minute and weekday (0 = Sunday) of Unix seconds, in UTC.
pub(crate) fn civil(secs: f64) -> Option<(i64, u32, u32, u32, u32, u32, u32)> {
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

pub(crate) fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
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

pub(crate) fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    (1..m).map(|mm| days_in_month(y, mm)).sum::<u32>() + d
}

pub(crate) fn call(
    ctx: &EvalContext<'_>,
    name: &str,
    args: &[Expr],
    pos: Pos,
    arg_pos: &[Pos],
) -> R<V> {
    extended::check_allowed(name, args)?;
    if extended::applies(args) {
        let apos = arg_pos.first().copied().unwrap_or(pos);
        return Ok(V::Vector(extended::call(ctx, name, args, apos)?));
    }
    if let Some(w) = windowed(ctx, name, args, pos, arg_pos)? {
        return Ok(V::Vector(over_windows(
            ctx,
            w.arg,
            w.keep_name,
            &*w.f,
            w.hist,
            w.counter,
        )?));
    }
    let apos = |i: usize| arg_pos.get(i).copied().unwrap_or(pos);
    let n = ctx.n();
    let times: Vec<i64> = ctx.times().collect();
    let math = |f: fn(f64) -> f64| -> R<V> {
        Ok(V::Vector(map_vector(
            ctx,
            ctx.vector_arg(&args[0])?,
            false,
            |x, _| Some(f(x)),
        )?))
    };
    match name {
        "info" => Ok(V::Vector(info::info(ctx, args)?)),
        "absent_over_time" => {
            let present = over_windows(
                ctx,
                &args[0],
                true,
                &*wf(|_, _, _, _| Some(1.0)),
                Some(("present_over_time", pos)),
                None,
            )?;
            let labels = match args[0].unparen() {
                Expr::MatrixSelector { vs, .. } => absent_labels(vs),
                _ => Labels::empty(),
            };
            let pts: Vec<Option<f64>> = (0..n)
                .map(|k| (!present.iter().any(|s| s.present(k))).then_some(1.0))
                .collect();
            Ok(V::Vector(if pts.iter().any(Option::is_some) {
                vec![Stepped::floats(labels, pts)]
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
                .map(|k| (!v.iter().any(|s| s.present(k))).then_some(1.0))
                .collect();
            Ok(V::Vector(if pts.iter().any(Option::is_some) {
                vec![Stepped::floats(labels, pts)]
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
                ctx,
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
            Ok(V::Vector(map_vector(ctx, v, false, |x, k| {
                if hi[k] < lo[k] {
                    return None;
                }
                // Go's math.Max/Min: a NaN anywhere makes NaN.
                if x.is_nan() || lo[k].is_nan() || hi[k].is_nan() {
                    return Some(f64::NAN);
                }
                Some(x.max(lo[k]).min(hi[k]))
            })?))
        }
        "timestamp" => {
            if let Expr::VectorSelector(vs) = args[0].unparen() {
                let out = ctx
                    .vector_selector_ts(vs, true)?
                    .into_iter()
                    .map(|(s, ts)| {
                        let pts = (0..ts.len())
                            .map(|k| s.present(k).then(|| ts[k] as f64 / 1000.0))
                            .collect();
                        ctx.nameless(&s.labels, s.drop_name, pts)
                    })
                    .collect();
                Ok(V::Vector(check_unique(out)?))
            } else {
                // Histogram samples have a time too.
                let out = ctx
                    .vector_arg(&args[0])?
                    .into_iter()
                    .map(|s| {
                        let pts = (0..n)
                            .map(|k| s.present(k).then(|| times[k] as f64 / 1000.0))
                            .collect();
                        ctx.nameless(&s.labels, s.drop_name, pts)
                    })
                    .filter(Stepped::any)
                    .collect();
                Ok(V::Vector(check_unique(out)?))
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
            let v = ctx.with_stats_only(false, || ctx.vector_arg(&args[0]))?;
            let label = ctx.string_arg(&args[1])?;
            if !is_valid_label_name(&label) {
                return invalid(format!("invalid label name {label:?}"));
            }
            let (native, classic) = drop_mixed(ctx, split_native(v), apos(0));
            let mut out = Vec::new();
            for (i, a) in args.iter().enumerate().skip(2) {
                let q = ctx.scalar_arg(a)?;
                check_quantiles(ctx, &q, apos(i));
                let mut one = histogram_quantile(ctx, &q, classic.clone(), n, apos(0))?;
                one.extend(native_stat(ctx, native.clone(), n, apos(0), |k, h| {
                    native::quantile(q[k], h)
                }));
                for mut s in one {
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
                hs: Vec::new(),
                drop_name: false,
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
                    hs: Vec::new(),
                    drop_name: false,
                }]
            } else {
                ctx.vector_arg(&args[0])?
            };
            let which = name.to_string();
            Ok(V::Vector(map_vector(ctx, v, false, move |x, _| {
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
                crate::value::EvalError::Invalid(format!(
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
                    // Written to the name (the regex matched), the name stays.
                    let (labels, drop_name) = match re.captures(&val) {
                        Some(caps) => {
                            let mut res = String::new();
                            caps.expand(&repl, &mut res);
                            let mut b = s.labels.builder();
                            b.set(dst.clone(), res);
                            (b.build(), s.drop_name && dst != METRIC_NAME)
                        }
                        None => (s.labels, s.drop_name),
                    };
                    Stepped {
                        labels,
                        pts: s.pts,
                        hs: s.hs,
                        drop_name,
                    }
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
                        hs: s.hs,
                        drop_name: s.drop_name && dst != METRIC_NAME,
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
            let v = ctx.vector_arg(&args[0])?;
            // `sort` and `sort_desc` order by value: histograms have none and are dropped.
            if name == "sort" || name == "sort_desc" {
                return Ok(V::Vector(
                    v.into_iter()
                        .map(|mut s| {
                            s.hs.clear();
                            s
                        })
                        .filter(|s| s.pts.iter().any(Option::is_some))
                        .collect(),
                ));
            }
            Ok(V::Vector(v))
        }
        "histogram_quantile" => {
            let q = ctx.scalar_arg(&args[0])?;
            check_quantiles(ctx, &q, apos(0));
            let v = ctx.with_stats_only(false, || ctx.vector_arg(&args[1]))?;
            let (native, classic) = drop_mixed(ctx, split_native(v), apos(1));
            let mut out = histogram_quantile(ctx, &q, classic, n, apos(1))?;
            out.extend(native_stat(ctx, native, n, apos(1), |k, h| {
                native::quantile(q[k], h)
            }));
            Ok(V::Vector(check_unique(out)?))
        }
        "histogram_fraction" => {
            let lo = ctx.scalar_arg(&args[0])?;
            let hi = ctx.scalar_arg(&args[1])?;
            let v = ctx.with_stats_only(false, || ctx.vector_arg(&args[2]))?;
            let (native, classic) = drop_mixed(ctx, split_native(v), apos(2));
            let mut out = classic_buckets(ctx, classic, n, apos(2), |k, b| {
                (bucket_fraction(lo[k], hi[k], b), false)
            });
            out.extend(native_stat(ctx, native, n, apos(2), |k, h| {
                native::fraction(lo[k], hi[k], h)
            }));
            Ok(V::Vector(check_unique(out)?))
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Float samples yield nothing, as upstream. Count, sum and average read no
            // buckets: Prometheus's stats iterator, whose hints this mirrors.
            let stats = matches!(name, "histogram_count" | "histogram_sum" | "histogram_avg");
            let v = ctx.with_stats_only(stats, || ctx.vector_arg(&args[0]))?;
            let (native, _) = split_native(v);
            let f = |h: &vigil_model::FloatHistogram| match name {
                "histogram_count" => h.count,
                "histogram_sum" => h.sum,
                "histogram_avg" => h.sum / h.count,
                "histogram_stddev" => native::stdvar(h).sqrt(),
                _ => native::stdvar(h),
            };
            let out = native_stat(ctx, native, n, apos(0), |_, h| {
                (f(h), native::NanNote::None)
            });
            Ok(V::Vector(check_unique(out)?))
        }
        other => invalid(format!("function {other:?} is not implemented yet")),
    }
}
