//! `info(v, {data labels})`: each series of `v` gains the data labels of the info series
//! (`target_info` unless the selector names others) that share its identifying labels,
//! `instance` and `job`, step by step, as Prometheus's experimental `info()` defines it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::ast::VectorSelector;
use vigil_storage::{MatchOp, Matcher};

const TARGET_INFO: &str = "target_info";

/// The labels an info series and the series it enriches must share.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// The `__name__` matchers that say which series are info series: as written when one is
/// positive; `=~".+_info"` before them when all are negative (else they would take every
/// other metric for one); `target_info` when none is written.
fn info_names(data: Option<&VectorSelector>) -> R<Vec<Matcher>> {
    let written: Vec<Matcher> = data
        .map(|vs| {
            vs.matchers
                .iter()
                .filter(|m| m.name == METRIC_NAME)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if written.is_empty() {
        return Ok(vec![Matcher::equal(METRIC_NAME, TARGET_INFO)]);
    }
    if written
        .iter()
        .any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex))
    {
        return Ok(written);
    }
    // Fails only when the regexes in use already hold the process's allowance.
    let info = Matcher::new(MatchOp::Regex, METRIC_NAME, ".+_info")
        .map_err(|e| crate::EvalError::Invalid(e.to_string()))?;
    let mut out = vec![info];
    out.extend(written);
    Ok(out)
}

/// One info series: its labels, the identity it is matched by, and at each step the
/// timestamp of the sample it is seen with (newest wins between two of one identity).
struct InfoSeries {
    labels: Labels,
    identity: Labels,
    seen_at: Vec<Seen>,
}

/// An info series at one step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    No,
    /// A float sample of this time.
    At(i64),
    /// A native histogram: an error, but only at a step something is enriched.
    Histogram,
}

/// An info series' or a base series' identity for info metric `name`: the name and whichever
/// identifying labels it has.
fn identity(name: &str, l: &Labels) -> Labels {
    let mut pairs = vec![(METRIC_NAME, name)];
    for n in IDENTIFYING {
        if let Some(v) = l.get(n) {
            pairs.push((n, v));
        }
    }
    Labels::from_pairs(pairs)
}

/// The info series that may match `base`, read around every step (the window of the first
/// selector in the first argument, its `@` and `offset` applied), each valued at each step by
/// the newest sample within the lookback delta.
fn fetch(
    ctx: &EvalContext<'_>,
    arg: &Expr,
    base: &[&Stepped],
    names: &[Matcher],
    data: &[Matcher],
) -> R<Vec<InfoSeries>> {
    let mut values: BTreeMap<&str, std::collections::HashSet<&str>> = BTreeMap::new();
    for s in base {
        for n in IDENTIFYING {
            if let Some(v) = s.labels.get(n).filter(|v| !v.is_empty()) {
                values.entry(n).or_default().insert(v);
            }
        }
    }
    if values.is_empty() {
        return Ok(vec![]);
    }
    // The identifying values are checked per series, not sent as a regex of every value
    // (thousands of instances make one too big to compile).
    let mut matchers: Vec<Matcher> = names.to_vec();
    matchers.extend(data.iter().cloned());
    let (mut start, mut end) = (ctx.start, ctx.end);
    let mut offset = 0;
    if let Some(vs) = arg.selectors().first() {
        if vs.at.is_some() {
            start = ctx.at_time(&vs.at, ctx.start);
            end = start;
        }
        offset = vs.offset_ms;
    }
    let lb = ctx.engine.lookback_ms;
    let q = ctx.querier(start - lb + 1 - offset, end - offset)?;
    let budget = ctx.budget();
    let times: Vec<i64> = ctx.times().collect();
    let steps = ctx.step_slots(times.len());
    let parts = for_shards(&*q, &matchers, |set| {
        let mut out = Vec::new();
        for s in set {
            if !values
                .iter()
                .all(|(n, vs)| vs.contains(s.labels.get(n).unwrap_or_default()))
            {
                continue;
            }
            let held = s.samples.len() + s.histograms.len();
            budget.count_series(&s.labels, held + steps)?;
            let mut seen_at = Vec::with_capacity(times.len());
            let mut any = false;
            for &t in &times {
                let f = s.samples.partition_point(|x| x.t <= t);
                let h = s.histograms.partition_point(|x| x.t <= t);
                let f = f.checked_sub(1).map(|i| s.samples[i]);
                let h = h.checked_sub(1).map(|i| &s.histograms[i]);
                let seen = match (f, h) {
                    (f, Some(h)) if f.is_none_or(|f| f.t < h.t) => {
                        if h.t > t - lb && !h.is_stale() {
                            Seen::Histogram
                        } else {
                            Seen::No
                        }
                    }
                    (Some(f), _) if f.t > t - lb && !is_stale_nan(f.v) => Seen::At(f.t),
                    _ => Seen::No,
                };
                any |= seen != Seen::No;
                seen_at.push(seen);
            }
            budget.release(held);
            if let Some(st) = budget.stats {
                for (k, seen) in seen_at.iter().enumerate() {
                    if *seen != Seen::No {
                        st.add_at(k, 1);
                    }
                }
            }
            if any {
                let name = s.labels.metric_name().unwrap_or_default().to_string();
                out.push(InfoSeries {
                    identity: identity(&name, &s.labels),
                    labels: s.labels,
                    seen_at,
                });
            }
        }
        Ok(out)
    })?;
    Ok(merge_sorted(parts, |s| &s.labels))
}

pub(crate) fn info(ctx: &EvalContext<'_>, args: &[Expr]) -> R<Vec<Stepped>> {
    let base = ctx.vector_arg(&args[0])?;
    let data_sel = match args.get(1).map(Expr::unparen) {
        Some(Expr::VectorSelector(vs)) => Some(vs),
        Some(_) => return invalid("expected label selectors only"),
        None => None,
    };
    let names = info_names(data_sel)?;
    let data: Vec<Matcher> = data_sel
        .map(|vs| {
            vs.matchers
                .iter()
                .filter(|m| m.name != METRIC_NAME)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // Info series themselves are passed through, not enriched.
    let is_info = |l: &Labels| {
        let name = l.metric_name().unwrap_or_default();
        names.iter().all(|m| m.matches(name))
    };
    let ignored: Vec<bool> = base.iter().map(|s| is_info(&s.labels)).collect();
    let enriched: Vec<&Stepped> = base
        .iter()
        .zip(&ignored)
        .filter(|(_, i)| !**i)
        .map(|(s, _)| s)
        .collect();
    let infos = fetch(ctx, &args[0], &enriched, &names, &data)?;
    let info_names: BTreeSet<&str> = infos
        .iter()
        .map(|i| i.labels.metric_name().unwrap_or_default())
        .collect();
    let data_names: BTreeSet<&str> = data.iter().map(|m| m.name.as_str()).collect();
    // A base series no info series matched is kept only if every data matcher takes a
    // missing label.
    let keep_unmatched = data.iter().all(Matcher::matches_empty);
    let n = ctx.n();
    let mut out: Vec<Stepped> = Vec::new();
    let mut out_idx: HashMap<Labels, usize> = HashMap::new();
    for k in 0..n {
        if !base.iter().any(|s| s.present(k)) {
            continue;
        }
        ctx.budget().check_deadline()?;
        // The info series of each identity at this step: the newest sample wins.
        let mut by_identity: HashMap<&Labels, &InfoSeries> = HashMap::new();
        for i in &infos {
            let t = match i.seen_at[k] {
                Seen::No => continue,
                Seen::Histogram => return invalid("info sample should be float"),
                Seen::At(t) => t,
            };
            match by_identity.get(&i.identity) {
                Some(prev) => {
                    let pt = match prev.seen_at[k] {
                        Seen::At(pt) => pt,
                        _ => i64::MIN,
                    };
                    if pt == t {
                        return invalid(format!(
                            "found duplicate series for info metric: existing {} @ {pt}, new {} @ {t}",
                            crate::eval::fmt_all(&prev.labels),
                            crate::eval::fmt_all(&i.labels)
                        ));
                    }
                    if pt < t {
                        by_identity.insert(&i.identity, i);
                    }
                }
                None => {
                    by_identity.insert(&i.identity, i);
                }
            }
        }
        for (s, ignore) in base.iter().zip(&ignored) {
            let Some(v) = s.val(k) else { continue };
            let labels = if *ignore {
                s.labels.clone()
            } else {
                let mut added: BTreeMap<&str, &str> = BTreeMap::new();
                let mut matched = false;
                for name in &info_names {
                    let Some(i) = by_identity.get(&identity(name, &s.labels)) else {
                        continue;
                    };
                    matched = true;
                    for l in i.labels.iter() {
                        if l.name == METRIC_NAME
                            || !data_names.is_empty() && !data_names.contains(l.name)
                        {
                            continue;
                        }
                        if added.get(l.name).is_some_and(|v| *v != l.value) {
                            return invalid(format!("conflicting label: {}", l.name));
                        }
                        if s.labels.has(l.name) {
                            continue;
                        }
                        added.insert(l.name, l.value);
                    }
                }
                if !matched && !keep_unmatched {
                    continue;
                }
                let mut b = s.labels.builder();
                for (name, value) in added {
                    b.set(name.to_string(), value.to_string());
                }
                b.build()
            };
            let idx = match out_idx.get(&labels) {
                Some(&idx) => {
                    if out[idx].present(k) {
                        return invalid("vector cannot contain metrics with the same labelset");
                    }
                    idx
                }
                None => {
                    out_idx.insert(labels.clone(), out.len());
                    out.push(Stepped::floats(labels, vec![None; n]));
                    out.len() - 1
                }
            };
            out[idx].put(k, v);
            out[idx].drop_name |= s.drop_name;
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}
