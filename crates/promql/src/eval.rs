//! The evaluator. Every query is evaluated as a range query (an instant query is a range of
//! one step): each node yields, per series, one value slot per step. Selectors walk each
//! series' samples once across all steps; aggregations and binary operations work step by
//! step over those dense slots.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use vigil_model::labels::METRIC_NAME;
use vigil_model::{HistogramSample, Labels, LabelsBuilder, Sample, is_stale_nan};
use vigil_storage::{MatchOp, Series, Storage};

use crate::ast::{AggOp, At, BinOp, Card, Expr, VectorMatching, VectorSelector};
use crate::context::{Engine, EvalContext, NotedQuerier, Notes};
use crate::funcs;
use crate::select::{Budget, for_shards, merge_sorted};
use crate::stats::{QueryStats, SampleStats, StatsLevel};
use crate::value::{EvalError, Hist, Point, R, RangeArg, Stepped, V, Value, invalid};

/// What histogram samples cost against `--query.max-samples` (and, at 16 bytes a sample,
/// `--query.max-bytes`), in float samples: by their size, as Prometheus counts a histogram
/// (the weight query statistics give it too).
pub(crate) fn hist_cost(hs: &[HistogramSample]) -> usize {
    hs.iter()
        .map(|x| crate::stats::hist_weight(&x.h) as usize)
        .sum()
}

impl EvalContext<'_> {
    /// Raise a `PromQL warning: ...` annotation.
    pub(crate) fn warn(&self, msg: String) {
        let msg = format!("PromQL warning: {msg}");
        let mut n = self.notes.borrow_mut();
        if !n.warnings.contains(&msg) {
            n.warnings.push(msg);
        }
    }

    /// Raise a `PromQL info: ...` annotation.
    pub(crate) fn info(&self, msg: String) {
        let msg = format!("PromQL info: {msg}");
        let mut n = self.notes.borrow_mut();
        if !n.infos.contains(&msg) {
            n.infos.push(msg);
        }
    }

    /// Run `f` with selectors reading histograms as the stats iterator does (or not).
    pub(crate) fn with_stats_only<T>(&self, on: bool, f: impl FnOnce() -> T) -> T {
        let was = self.stats_only.replace(on);
        let r = f();
        self.stats_only.set(was);
        r
    }

    pub fn n(&self) -> usize {
        ((self.end - self.start) / self.step) as usize + 1
    }

    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n()).map(|i| self.start + i as i64 * self.step)
    }

    /// The query's limits, for code that loads samples (possibly on other threads).
    pub(crate) fn budget(&self) -> Budget<'_> {
        Budget {
            samples: &self.samples,
            max_samples: self.engine.max_samples,
            bytes: &self.bytes,
            max_bytes: self.engine.max_bytes,
            deadline: self.engine.deadline,
            stats: self.stats,
        }
    }

    /// Slots per series to count as samples: the step count inside a subquery, else none.
    pub(crate) fn step_slots(&self, steps: usize) -> usize {
        if self.count_steps { steps } else { 0 }
    }

    fn count(&self, n: usize) -> R<()> {
        self.budget().count(n)
    }

    fn check_deadline(&self) -> R<()> {
        self.budget().check_deadline()
    }

    /// The labels of a result that loses the metric name (of most functions and operators),
    /// and whether the name is still to go: with delayed name removal it stays on until the
    /// query's result is assembled.
    pub(crate) fn dropping_name(&self, l: &Labels) -> (Labels, bool) {
        dropping_name(l, self.engine.delayed_name_removal)
    }

    /// A float result of `input` (its labels and pending mark) that loses the metric name.
    pub(crate) fn nameless(&self, input: &Labels, marked: bool, pts: Vec<Option<f64>>) -> Stepped {
        let (labels, drop) = self.dropping_name(input);
        let mut r = Stepped::floats(labels, pts);
        r.drop_name = drop || marked;
        r
    }

    pub(crate) fn at_time(&self, at: &Option<At>, t: i64) -> i64 {
        match at {
            Some(At::Time(x)) => *x,
            Some(At::Start) => self.q_start,
            Some(At::End) => self.q_end,
            None => t,
        }
    }

    /// Evaluate a node (on a fresh stack segment when this thread's runs low: see
    /// [`crate::limits`]).
    fn eval(&self, e: &Expr) -> R<V> {
        crate::limits::deep(|| self.eval_node(e))
    }

    fn eval_node(&self, e: &Expr) -> R<V> {
        self.check_deadline()?;
        match e {
            Expr::Number(n) => Ok(V::Scalar(vec![*n; self.n()])),
            Expr::String(s) => Ok(V::Str(s.clone())),
            Expr::Paren(e) => self.eval(e),
            Expr::VectorSelector(vs) => Ok(V::Vector(self.vector_selector(vs)?)),
            Expr::MatrixSelector { vs, range_ms } if vs.extend != crate::ast::Extend::None => {
                Ok(V::Matrix(funcs::extended_matrix(self, vs, *range_ms)?))
            }
            Expr::MatrixSelector { .. } | Expr::Subquery { .. } => {
                // Only valid at the top of an instant query: raw samples of the window.
                let ra = self.range_arg(e)?;
                // A subquery here counts what it read, at each step (Prometheus's
                // `SubqueryExpr` case); a matrix selector counted its window as it loaded.
                if let Some(st) = self.stats
                    && matches!(e.unparen(), Expr::Subquery { .. })
                {
                    for k in 0..self.n() {
                        st.add_at(k, ra.inner_samples);
                    }
                }
                let end = ra.ends[0];
                let dropped = &ra.dropped;
                let series: Vec<Series> = ra
                    .series
                    .into_iter()
                    .map(|mut s| {
                        // A subquery's names still pending removal go now: this is the result.
                        if dropped.contains(&s.labels) {
                            s.labels = drop_name(&s.labels);
                        }
                        s
                    })
                    .filter_map(|s| {
                        let inside = |t: i64| t > end - ra.range_ms && t <= end;
                        let samples: Vec<Sample> =
                            s.samples.into_iter().filter(|x| inside(x.t)).collect();
                        let histograms: Vec<_> =
                            s.histograms.into_iter().filter(|x| inside(x.t)).collect();
                        (!samples.is_empty() || !histograms.is_empty()).then_some(Series {
                            labels: s.labels,
                            samples,
                            histograms,
                        })
                    })
                    .collect();
                let series = if dropped.is_empty() {
                    series
                } else {
                    merge_same_labels(series)?
                };
                Ok(V::Matrix(series))
            }
            Expr::Neg(e) => match self.eval(e)? {
                V::Scalar(v) => Ok(V::Scalar(v.into_iter().map(|x| -x).collect())),
                V::Vector(v) => {
                    let out = v
                        .into_iter()
                        .map(|s| {
                            let (labels, drop) = self.dropping_name(&s.labels);
                            Stepped {
                                drop_name: drop || s.drop_name,
                                labels,
                                pts: s.pts.into_iter().map(|p| p.map(|x| -x)).collect(),
                                hs: s
                                    .hs
                                    .into_iter()
                                    .map(|h| {
                                        h.map(|h| {
                                            let mut h = (*h).clone();
                                            h.scale(-1.0);
                                            Hist::new(h)
                                        })
                                    })
                                    .collect(),
                            }
                        })
                        .collect();
                    Ok(V::Vector(check_unique(out)?))
                }
                _ => invalid("unary minus on a non-numeric value"),
            },
            Expr::Binary { .. } => {
                // A chain (`a + b + c ...`) is folded in a loop: its length is not bounded by
                // the nesting limit.
                let (spine, bottom) = e.left_spine();
                let mut acc = self.eval(bottom)?;
                for b in spine.iter().rev() {
                    if let Expr::Binary {
                        op,
                        rhs,
                        return_bool,
                        matching,
                        pos,
                        ..
                    } = b
                    {
                        self.check_deadline()?;
                        let r = self.eval(rhs)?;
                        let at = Op { op: *op, pos: *pos };
                        acc = self.binary(at, acc, r, *return_bool, matching.as_ref())?;
                    }
                }
                Ok(acc)
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
                param_pos,
                pos,
                expr_pos,
                ..
            } => self.aggregate(
                *op,
                expr,
                param.as_deref(),
                grouping,
                *without,
                AggPos {
                    param: *param_pos,
                    agg: *pos,
                    expr: *expr_pos,
                },
            ),
            Expr::Call {
                func,
                args,
                pos,
                arg_pos,
            } => funcs::call(self, func.name, args, *pos, arg_pos),
        }
    }

    /// The value of each series at each step: the newest sample in `(t - lookback, t]`
    /// unless it is a staleness marker.
    pub(crate) fn vector_selector(&self, vs: &VectorSelector) -> R<Vec<Stepped>> {
        if vs.extend == crate::ast::Extend::Smoothed {
            return funcs::smoothed_vector(self, vs);
        }
        Ok(self
            .vector_selector_ts(vs, false)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// As [`Self::vector_selector`], also returning each value's sample timestamp. Plain
    /// lookback even for a smoothed selector: `timestamp(x smoothed)` gives the samples' own
    /// times, as in Prometheus.
    /// `each_one`: for statistics each value counts 1, histograms too (`timestamp()` reads
    /// only their times, and Prometheus counts it so).
    pub(crate) fn vector_selector_ts(
        &self,
        vs: &VectorSelector,
        each_one: bool,
    ) -> R<Vec<(Stepped, Vec<i64>)>> {
        let lb = self.engine.lookback_ms;
        let evals: Vec<i64> = self
            .times()
            .map(|t| self.at_time(&vs.at, t) - vs.offset_ms)
            .collect();
        let (lo, hi) = (
            evals.iter().copied().min().unwrap_or(0),
            evals.iter().copied().max().unwrap_or(0),
        );
        let q = self.querier(lo - lb + 1, hi)?;
        let budget = self.budget();
        let evals = &evals;
        let steps = self.step_slots(evals.len());
        let stats = self.stats_only.get();
        let parts = for_shards(&*q, &vs.matchers, |set| {
            let mut out = Vec::new();
            for mut s in set {
                if stats {
                    resolve_hints(&mut s);
                }
                budget.count_series(
                    &s.labels,
                    s.samples.len() + hist_cost(&s.histograms) + steps,
                )?;
                let mut pts = Vec::with_capacity(evals.len());
                let mut hs: Vec<Option<Hist>> = Vec::new();
                let mut ts = Vec::with_capacity(evals.len());
                let (mut j, mut jh) = (0, 0);
                let mut any = false;
                let hists = &s.histograms;
                for (k, &te) in evals.iter().enumerate() {
                    // `evals` is non-decreasing except with `@`, where it is constant.
                    if j > 0 && s.samples[j - 1].t > te {
                        j = s.samples.partition_point(|x| x.t <= te);
                    }
                    while j < s.samples.len() && s.samples[j].t <= te {
                        j += 1;
                    }
                    if jh > 0 && hists[jh - 1].t > te {
                        jh = hists.partition_point(|x| x.t <= te);
                    }
                    while jh < hists.len() && hists[jh].t <= te {
                        jh += 1;
                    }
                    let f = j.checked_sub(1).map(|k| s.samples[k]);
                    let h = jh.checked_sub(1).map(|k| &hists[k]);
                    // The newer of the two kinds is the series' value at `te`.
                    match (f, h) {
                        (f, Some(h))
                            if f.is_none_or(|f| f.t < h.t) && h.t > te - lb && !h.is_stale() =>
                        {
                            if hs.is_empty() {
                                hs = vec![None; evals.len()];
                            }
                            pts.push(None);
                            hs[k] = Some(h.h.clone());
                            ts.push(h.t);
                            any = true;
                        }
                        // A float and a histogram at one time (merged sources): the float,
                        // as Prometheus picks.
                        (Some(x), h)
                            if h.is_none_or(|h| h.t <= x.t)
                                && x.t > te - lb
                                && !is_stale_nan(x.v) =>
                        {
                            pts.push(Some(x.v));
                            ts.push(x.t);
                            any = true;
                        }
                        _ => {
                            pts.push(None);
                            ts.push(0);
                        }
                    }
                }
                if any {
                    if let Some(st) = budget.stats {
                        if each_one {
                            st.add_present(&pts, &hs);
                        } else {
                            st.add_values(&pts, &hs);
                        }
                    }
                    out.push((
                        Stepped {
                            labels: s.labels,
                            pts,
                            hs,
                            drop_name: false,
                        },
                        ts,
                    ));
                }
            }
            Ok(out)
        })?;
        Ok(merge_sorted(parts, |(s, _)| &s.labels))
    }

    /// The window end of each step for a matrix selector (its `@` and `offset` applied).
    pub(crate) fn window_ends(&self, vs: &VectorSelector) -> Vec<i64> {
        self.times()
            .map(|t| self.at_time(&vs.at, t) - vs.offset_ms)
            .collect()
    }

    /// A querier over every window of length `range_ms` ending at `ends` (left-open).
    pub(crate) fn window_querier(&self, ends: &[i64], range_ms: i64) -> R<NotedQuerier<'_>> {
        let (lo, hi) = (
            ends.iter().copied().min().unwrap_or(0),
            ends.iter().copied().max().unwrap_or(0),
        );
        self.querier(lo - range_ms + 1, hi)
    }

    /// A querier over `[mint, maxt]` whose warnings (a remote source that failed) become
    /// the query's when it is dropped.
    pub(crate) fn querier(&self, mint: i64, maxt: i64) -> R<NotedQuerier<'_>> {
        Ok(NotedQuerier {
            q: self.storage.querier(mint, maxt)?,
            notes: self.notes,
        })
    }

    /// Evaluate a range argument (matrix selector or subquery): raw samples (staleness
    /// markers removed) and the window end of each step.
    pub(crate) fn range_arg(&self, e: &Expr) -> R<RangeArg> {
        match e.unparen() {
            Expr::MatrixSelector { vs, range_ms } => {
                let ends = self.window_ends(vs);
                let q = self.window_querier(&ends, *range_ms)?;
                let budget = self.budget();
                let stats = self.stats_only.get();
                // Streamed in shards: each series is charged as it is decoded, so the budget
                // stops the selection before all of it is loaded.
                let parts = for_shards(&*q, &vs.matchers, |set| {
                    let mut out = Vec::new();
                    for mut s in set {
                        if stats {
                            resolve_hints(&mut s);
                        }
                        s.samples.retain(|x| !is_stale_nan(x.v));
                        s.histograms.retain(|x| !x.is_stale());
                        budget
                            .count_series(&s.labels, s.samples.len() + hist_cost(&s.histograms))?;
                        if let Some(st) = budget.stats {
                            st.add_windows(&s.samples, &s.histograms, &ends, *range_ms);
                        }
                        if !s.samples.is_empty() || !s.histograms.is_empty() {
                            out.push(s);
                        }
                    }
                    Ok(out)
                })?;
                // In label order, as the selection would come unsharded (an instant `x[5m]`
                // answers sorted, as Prometheus's does).
                let series = merge_sorted(parts, |s| &s.labels);
                Ok(RangeArg {
                    series,
                    range_ms: *range_ms,
                    ends,
                    dropped: Default::default(),
                    inner_samples: 0,
                })
            }
            Expr::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
                at,
                ..
            } => {
                let step = step_ms.unwrap_or(self.engine.subquery_step_ms).max(1);
                let ends: Vec<i64> = self
                    .times()
                    .map(|t| self.at_time(at, t) - offset_ms)
                    .collect();
                let (lo, hi) = (
                    ends.iter().copied().min().unwrap_or(0),
                    ends.iter().copied().max().unwrap_or(0),
                );
                // Inner steps are aligned to multiples of the step, starting after lo - range.
                let first = lo - range_ms;
                let mut start = first.div_euclid(step) * step;
                if start <= first {
                    start += step;
                }
                if start > hi {
                    return Ok(RangeArg {
                        series: vec![],
                        range_ms: *range_ms,
                        ends,
                        dropped: Default::default(),
                        inner_samples: 0,
                    });
                }
                // Every inner step is a slot of every inner series: bound the count before any
                // is allocated.
                let steps = (hi - start) / step + 1;
                if steps > self.engine.max_samples as i64 {
                    return Err(EvalError::TooManySamples);
                }
                // Charge the steps once, whatever the inner expression is: `vector(1)` loads
                // no sample yet allocates a slot per step, and many such subqueries in one
                // query must add up against --query.max-samples.
                self.count(steps as usize)?;
                // What the inner evaluation reads is its own (Prometheus counts a
                // subquery's points in the windows of the function over it instead).
                let inner_stats = self.stats.map(|st| st.child());
                let inner = EvalContext {
                    stats: inner_stats.as_ref(),
                    count_steps: true,
                    stats_only: Default::default(),
                    storage: self.storage,
                    engine: self.engine,
                    start,
                    end: hi,
                    step,
                    q_start: self.q_start,
                    q_end: self.q_end,
                    q_step: self.q_step,
                    notes: self.notes,
                    samples: AtomicUsize::new(self.samples.load(Relaxed)),
                    bytes: AtomicUsize::new(self.bytes.load(Relaxed)),
                };
                let v = inner.eval(expr)?;
                self.samples.store(inner.samples.load(Relaxed), Relaxed);
                self.bytes.store(inner.bytes.load(Relaxed), Relaxed);
                let times: Vec<i64> = inner.times().collect();
                let mut dropped = std::collections::HashSet::new();
                let series = match v {
                    V::Vector(v) => v
                        .into_iter()
                        .filter_map(|s| {
                            if s.drop_name {
                                dropped.insert(s.labels.clone());
                            }
                            stepped_series(s, &times)
                        })
                        .map(forget_reset_hints)
                        .collect(),
                    V::Scalar(v) => vec![Series {
                        labels: Labels::empty(),
                        samples: v
                            .iter()
                            .zip(&times)
                            .map(|(v, t)| Sample { t: *t, v: *v })
                            .collect(),
                        histograms: Vec::new(),
                    }],
                    _ => return invalid("subquery of a non-vector expression"),
                };
                Ok(RangeArg {
                    series,
                    range_ms: *range_ms,
                    ends,
                    dropped,
                    inner_samples: inner_stats.map_or(0, |st| st.total()),
                })
            }
            _ => invalid("expected a range vector"),
        }
    }

    pub(crate) fn scalar_arg(&self, e: &Expr) -> R<Vec<f64>> {
        match self.eval(e)? {
            V::Scalar(v) => Ok(v),
            _ => invalid("expected a scalar"),
        }
    }

    pub(crate) fn vector_arg(&self, e: &Expr) -> R<Vec<Stepped>> {
        match self.eval(e)? {
            V::Vector(v) => Ok(v),
            _ => invalid("expected an instant vector"),
        }
    }

    pub(crate) fn string_arg(&self, e: &Expr) -> R<String> {
        match self.eval(e)? {
            V::Str(s) => Ok(s),
            _ => invalid("expected a string"),
        }
    }

    /// Combine evaluated operands.
    fn binary(
        &self,
        at: Op,
        l: V,
        r: V,
        return_bool: bool,
        matching: Option<&VectorMatching>,
    ) -> R<V> {
        let op = at.op;
        match (l, r) {
            (V::Scalar(_), V::Scalar(_)) if op.is_trim() => invalid(format!(
                "operator \"{}\" is for native histograms, not between two scalars",
                op.as_str()
            )),
            (V::Scalar(a), V::Scalar(b)) => Ok(V::Scalar(
                a.iter()
                    .zip(&b)
                    .map(|(x, y)| {
                        let v = arith(op, *x, *y);
                        if op.is_comparison() {
                            if v.is_some_and(|v| v != 0.0) {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v.unwrap_or(f64::NAN)
                        }
                    })
                    .collect(),
            )),
            (V::Vector(v), V::Scalar(s)) => Ok(V::Vector(check_unique(vector_scalar(
                self,
                at,
                v,
                &s,
                false,
                return_bool,
            ))?)),
            (V::Scalar(s), V::Vector(v)) => Ok(V::Vector(check_unique(vector_scalar(
                self,
                at,
                v,
                &s,
                true,
                return_bool,
            ))?)),
            (V::Vector(a), V::Vector(b)) => {
                let default = VectorMatching::one_to_one();
                let m = matching.unwrap_or(&default);
                match op {
                    BinOp::And | BinOp::Or | BinOp::Unless => {
                        Ok(V::Vector(set_op(op, a, b, m, self.n())))
                    }
                    _ => Ok(V::Vector(vector_vector(
                        self,
                        at,
                        a,
                        b,
                        m,
                        return_bool,
                        self.n(),
                    )?)),
                }
            }
            _ => invalid("binary expression must contain only scalar and instant vector types"),
        }
    }

    fn aggregate(
        &self,
        op: AggOp,
        expr: &Expr,
        param: Option<&Expr>,
        grouping: &[String],
        without: bool,
        apos: AggPos,
    ) -> R<V> {
        let param_pos = apos.param;
        if param.is_none() {
            let (samples, bytes) = (self.samples.load(Relaxed), self.bytes.load(Relaxed));
            let read = self.stats.map(|st| st.snapshot());
            match funcs::aggregate_windows(self, op, expr, grouping, without) {
                Ok(Some(out)) => return Ok(V::Vector(out)),
                Ok(None) => {}
                Err(EvalError::Unfused) => {
                    // Give back what the abandoned pass counted.
                    self.samples.store(samples, Relaxed);
                    self.bytes.store(bytes, Relaxed);
                    if let (Some(st), Some(read)) = (self.stats, read) {
                        st.restore(&read);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let input = self.vector_arg(expr)?;
        // A group whose series' names (with type and unit) were pending removal has them go
        // too, whatever it kept of them (`by (__name__)`, `without` keeping `__type__`). The
        // selecting aggregations keep their series' own marks.
        let pending: Option<std::collections::HashSet<Labels>> = (self.engine.delayed_name_removal
            && !matches!(
                op,
                AggOp::Topk
                    | AggOp::Bottomk
                    | AggOp::Limitk
                    | AggOp::LimitRatio
                    | AggOp::CountValues
            ))
        .then(|| {
            input
                .iter()
                .filter(|s| s.drop_name)
                .map(|s| group_labels(&s.labels, grouping, without))
                .collect()
        });
        let out = if input.iter().any(Stepped::has_histograms) {
            self.aggregate_with_histograms(op, input, grouping, without, param, apos)?
        } else {
            self.aggregate_floats(op, input, grouping, without, param, param_pos)?
        };
        match (out, pending) {
            (V::Vector(mut v), Some(p)) if !p.is_empty() => {
                for s in &mut v {
                    s.drop_name = p.contains(&s.labels);
                }
                Ok(V::Vector(v))
            }
            (out, _) => Ok(out),
        }
    }

    fn aggregate_floats(
        &self,
        op: AggOp,
        input: Vec<Stepped>,
        grouping: &[String],
        without: bool,
        param: Option<&Expr>,
        param_pos: crate::ast::Pos,
    ) -> R<V> {
        let n = self.n();
        let param_num = match (op, param) {
            (AggOp::CountValues, _) | (_, None) => None,
            (_, Some(p)) => Some(self.scalar_arg(p)?),
        };
        if let (AggOp::Quantile, Some(q)) = (op, &param_num) {
            funcs::check_quantiles(self, q, param_pos);
        }
        // A ratio outside [-1, 1] is capped, with a warning (as Prometheus 3).
        let param_num = match (op, param_num) {
            (AggOp::LimitRatio, Some(p)) => Some(
                p.into_iter()
                    .map(|r| {
                        if r.is_nan() || (-1.0..=1.0).contains(&r) {
                            return r;
                        }
                        let capped = r.clamp(-1.0, 1.0);
                        self.warn(format!(
                            "ratio value should be between -1 and 1, got {}, capping to {} ({param_pos})",
                            funcs::format_go_float(r),
                            funcs::format_go_float(capped)
                        ));
                        capped
                    })
                    .collect(),
            ),
            (_, p) => p,
        };
        // A NaN k or ratio is an error even when there is nothing to select from.
        if let (AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio, Some(p)) =
            (op, &param_num)
            && p.iter().any(|v| v.is_nan())
        {
            return invalid(if op == AggOp::LimitRatio {
                "Ratio value is NaN"
            } else {
                "Parameter value is NaN"
            });
        }
        let param_str = match (op, param) {
            (AggOp::CountValues, Some(p)) => Some(self.string_arg(p)?),
            _ => None,
        };
        if let Some(l) = &param_str
            && !crate::lexer::is_name(l)
        {
            return invalid(format!("invalid label name {}", crate::lexer::quote(l)));
        }
        let groups = group_series(&input, grouping, without);
        let mut out: Vec<Stepped> = Vec::new();
        match op {
            AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
                let p = param_num.unwrap_or_default();
                // Output keeps the input series' labels; a series is present at the steps it was
                // selected.
                let mut slots: Vec<Stepped> = input
                    .iter()
                    .map(|s| {
                        let mut o = Stepped::floats(s.labels.clone(), vec![None; n]);
                        o.drop_name = s.drop_name;
                        o
                    })
                    .collect();
                for (_, members) in &groups {
                    #[allow(clippy::needless_range_loop)] // `p` and the series share the step index
                    for step in 0..n {
                        let mut present: Vec<usize> = members
                            .iter()
                            .copied()
                            .filter(|&i| input[i].present(step))
                            .collect();
                        let chosen: Vec<usize> = match op {
                            AggOp::Topk | AggOp::Bottomk => {
                                let k = p[step];
                                if k.is_nan() {
                                    return invalid("Parameter value is NaN");
                                }
                                let k = if k >= 1.0 {
                                    k.min(i64::MAX as f64) as usize
                                } else {
                                    0
                                };
                                let vals: Vec<(usize, f64)> = present
                                    .iter()
                                    .map(|&i| (i, input[i].pts[step].unwrap_or(f64::NAN)))
                                    .collect();
                                funcs::heap_select(&vals, k, op == AggOp::Topk)
                            }
                            AggOp::Limitk => {
                                let k = p[step];
                                if k.is_nan() {
                                    return invalid("Parameter value is NaN");
                                }
                                let k = if k >= 1.0 { k as usize } else { 0 };
                                present.sort_by_key(|&i| input[i].labels.stable_hash());
                                present.truncate(k);
                                present
                            }
                            _ => {
                                let r = p[step];
                                if r.is_nan() || !(-1.0..=1.0).contains(&r) {
                                    return invalid(format!(
                                        "Ratio value {} is not in the range [-1, 1]",
                                        r
                                    ));
                                }
                                present
                                    .into_iter()
                                    .filter(|&i| {
                                        let h =
                                            input[i].labels.stable_hash() as f64 / u64::MAX as f64;
                                        if r >= 0.0 { h < r } else { h >= 1.0 + r }
                                    })
                                    .collect()
                            }
                        };
                        for i in chosen {
                            if let Some(v) = input[i].val(step) {
                                slots[i].put(step, v);
                            }
                        }
                    }
                }
                out.extend(slots.into_iter().filter(Stepped::any));
                return Ok(V::Vector(out));
            }
            AggOp::CountValues => {
                let label = param_str.unwrap_or_default();
                let mut by_key: HashMap<Labels, Vec<Option<f64>>> = HashMap::new();
                for (key, members) in &groups {
                    for step in 0..n {
                        for &i in members {
                            if let Some(v) = input[i].val(step) {
                                let text = match v {
                                    Val::F(v) => funcs::format_go_float(v),
                                    Val::H(h) => funcs::histogram_string(&h),
                                };
                                let mut b = key.builder();
                                b.set(label.clone(), text);
                                let slot = by_key.entry(b.build()).or_insert_with(|| vec![None; n]);
                                slot[step] = Some(slot[step].unwrap_or(0.0) + 1.0);
                            }
                        }
                    }
                }
                out.extend(by_key.into_iter().map(|(labels, pts)| Stepped {
                    labels,
                    pts,
                    hs: Vec::new(),
                    drop_name: false,
                }));
                return Ok(V::Vector(out));
            }
            _ => {}
        }
        if matches!(
            op,
            AggOp::Sum | AggOp::Count | AggOp::Group | AggOp::Min | AggOp::Max
        ) {
            // Series by series into per-step accumulators: memory is read in order instead of
            // one slot of every series per step. Values meet in the same order as step-wise.
            for (key, members) in groups {
                let mut acc = vec![0.0f64; n];
                let mut comp = vec![0.0f64; n];
                let mut cnt = vec![0u32; n];
                for &i in &members {
                    for (step, p) in input[i].pts.iter().enumerate() {
                        let Some(x) = *p else { continue };
                        match op {
                            AggOp::Sum => {
                                (acc[step], comp[step]) = funcs::kahan_inc(x, acc[step], comp[step])
                            }
                            AggOp::Min if cnt[step] == 0 || x < acc[step] || acc[step].is_nan() => {
                                acc[step] = x
                            }
                            AggOp::Max if cnt[step] == 0 || x > acc[step] || acc[step].is_nan() => {
                                acc[step] = x
                            }
                            _ => {}
                        }
                        cnt[step] += 1;
                    }
                }
                let pts: Vec<Option<f64>> = (0..n)
                    .map(|k| {
                        (cnt[k] > 0).then(|| match op {
                            AggOp::Sum => acc[k] + comp[k],
                            AggOp::Count => cnt[k] as f64,
                            AggOp::Group => 1.0,
                            _ => acc[k],
                        })
                    })
                    .collect();
                if pts.iter().any(Option::is_some) {
                    out.push(Stepped {
                        labels: key,
                        pts,
                        hs: Vec::new(),
                        drop_name: false,
                    });
                }
            }
            return Ok(V::Vector(out));
        }
        for (key, members) in groups {
            let mut pts = vec![None; n];
            for (step, slot) in pts.iter_mut().enumerate() {
                let vals: Vec<f64> = members.iter().filter_map(|&i| input[i].pts[step]).collect();
                if vals.is_empty() {
                    continue;
                }
                *slot = Some(match op {
                    AggOp::Sum => funcs::kahan_sum(&vals),
                    AggOp::Avg => funcs::mean(&vals),
                    AggOp::Count => vals.len() as f64,
                    AggOp::Group => 1.0,
                    AggOp::Min => vals
                        .iter()
                        .copied()
                        .fold(f64::NAN, |m, x| if x < m || m.is_nan() { x } else { m }),
                    AggOp::Max => vals
                        .iter()
                        .copied()
                        .fold(f64::NAN, |m, x| if x > m || m.is_nan() { x } else { m }),
                    AggOp::Stdvar => funcs::variance(&vals),
                    AggOp::Stddev => funcs::variance(&vals).sqrt(),
                    AggOp::Quantile => funcs::quantile(
                        param_num.as_ref().map(|p| p[step]).unwrap_or(f64::NAN),
                        vals,
                    ),
                    _ => unreachable_agg()?,
                });
            }
            if pts.iter().any(Option::is_some) {
                out.push(Stepped {
                    labels: key,
                    pts,
                    hs: Vec::new(),
                    drop_name: false,
                });
            }
        }
        Ok(V::Vector(out))
    }
}

impl EvalContext<'_> {
    /// An aggregation whose input holds native histograms, step by step: `sum` and `avg` add
    /// histograms (a group with floats and histograms gives nothing, with a warning);
    /// `count` and `group` count them; `limitk` and `limit_ratio` select them like floats; the
    /// others ignore them (with Prometheus's info) and aggregate the floats.
    fn aggregate_with_histograms(
        &self,
        op: AggOp,
        input: Vec<Stepped>,
        grouping: &[String],
        without: bool,
        param: Option<&Expr>,
        apos: AggPos,
    ) -> R<V> {
        let n = self.n();
        let param_pos = apos.param;
        let pos = if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            apos.agg
        } else {
            apos.expr
        };
        if !matches!(op, AggOp::Sum | AggOp::Avg | AggOp::Count | AggOp::Group) {
            if input.iter().any(Stepped::has_histograms) {
                let name = match op {
                    AggOp::Min => "min",
                    AggOp::Max => "max",
                    AggOp::Stddev => "stddev",
                    AggOp::Stdvar => "stdvar",
                    AggOp::Quantile => "quantile",
                    AggOp::Topk => "topk",
                    AggOp::Bottomk => "bottomk",
                    _ => "",
                };
                if !name.is_empty() {
                    self.info(format!("ignored histogram in {name} aggregation ({pos})"));
                }
            }
            if matches!(op, AggOp::Limitk | AggOp::LimitRatio | AggOp::CountValues) {
                // They select or count series whatever their samples are.
                return self.aggregate_floats(op, input, grouping, without, param, param_pos);
            }
            // The others aggregate floats only.
            let floats: Vec<Stepped> = input
                .into_iter()
                .map(|mut s| {
                    s.hs.clear();
                    s
                })
                .filter(|s| s.pts.iter().any(Option::is_some))
                .collect();
            return self.aggregate_floats(op, floats, grouping, without, param, param_pos);
        }
        let groups = group_series(&input, grouping, without);
        let sink = |warn: bool, msg: String| {
            if warn { self.warn(msg) } else { self.info(msg) }
        };
        let mut out = Vec::new();
        for (key, members) in groups {
            let mut o = Stepped::floats(key, vec![None; n]);
            for k in 0..n {
                let floats: Vec<f64> = members.iter().filter_map(|&i| input[i].pts[k]).collect();
                let hists: Vec<&Hist> = members.iter().filter_map(|&i| input[i].h(k)).collect();
                let total = floats.len() + hists.len();
                if total == 0 {
                    continue;
                }
                match op {
                    AggOp::Count => o.pts[k] = Some(total as f64),
                    AggOp::Group => o.pts[k] = Some(1.0),
                    _ if hists.is_empty() => {
                        o.pts[k] = Some(if op == AggOp::Sum {
                            funcs::kahan_sum(&floats)
                        } else {
                            funcs::mean(&floats)
                        })
                    }
                    _ if !floats.is_empty() => self.warn(format!(
                        "encountered a mix of histograms and floats for aggregation ({pos})"
                    )),
                    _ => {
                        let it = hists.iter().map(|h| &***h);
                        let r = if op == AggOp::Avg {
                            funcs::mean_histograms(&sink, it, pos, "")
                        } else {
                            funcs::sum_histograms(&sink, it, pos, "")
                        };
                        if let Some(h) = r {
                            o.set_h(k, Some(Hist::new(h.compacted())));
                        }
                    }
                }
            }
            if o.any() {
                out.push(o);
            }
        }
        Ok(V::Vector(out))
    }
}

fn unreachable_agg() -> R<f64> {
    invalid("unsupported aggregation")
}

/// An aggregation's groups in order of first appearance: each key with its members' indexes
/// (keys computed once per series).
fn group_series(
    input: &[Stepped],
    grouping: &[String],
    without: bool,
) -> Vec<(Labels, Vec<usize>)> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let key = group_labels(&s.labels, grouping, without);
        match index.get(&key) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![i]));
            }
        }
    }
    groups
}

/// The labels an aggregation groups by.
fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    if without {
        Labels::from_sorted_refs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !grouping.iter().any(|g| g == x.name)),
        )
    } else {
        Labels::from_sorted_refs(l.iter().filter(|x| grouping.iter().any(|g| g == x.name)))
    }
}

/// The labels without the metric name, and without the type and unit labels that describe
/// it (`__type__`, `__unit__`, which `type-and-unit-labels` adds on ingestion), as
/// Prometheus drops them together.
/// [`EvalContext::dropping_name`] where no context can go (shard and window threads):
/// `delayed` is the engine's `delayed_name_removal`.
pub(crate) fn dropping_name(l: &Labels, delayed: bool) -> (Labels, bool) {
    if delayed {
        (l.clone(), true)
    } else {
        (drop_name(l), false)
    }
}

pub(crate) fn drop_name(l: &Labels) -> Labels {
    if !l.iter().any(|x| is_metadata_label(x.name)) {
        return l.clone();
    }
    Labels::from_sorted_refs(l.iter().filter(|x| !is_metadata_label(x.name)))
}

/// `__name__`, `__type__` or `__unit__`.
pub(crate) fn is_metadata_label(name: &str) -> bool {
    matches!(name, METRIC_NAME | "__type__" | "__unit__")
}

/// Merge series with equal labels; two values for one labelset at one step are an error.
pub(crate) fn check_unique(v: Vec<Stepped>) -> R<Vec<Stepped>> {
    let mut idx: HashMap<Labels, usize> = HashMap::with_capacity(v.len());
    let mut out: Vec<Stepped> = Vec::with_capacity(v.len());
    for s in v {
        match idx.get(&s.labels) {
            None => {
                idx.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&i) => {
                out[i].drop_name |= s.drop_name;
                for k in 0..s.pts.len() {
                    if s.present(k) {
                        if out[i].present(k) {
                            return invalid("vector cannot contain metrics with the same labelset");
                        }
                        out[i].pts[k] = s.pts[k];
                        let h = s.h(k).cloned();
                        out[i].set_h(k, h);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A binary operator and where its expression starts (for annotations).
#[derive(Clone, Copy)]
pub(crate) struct Op {
    pub op: BinOp,
    pub pos: crate::ast::Pos,
}

/// Where an aggregation's parts start, for annotations: its parameter, itself, the
/// aggregated expression.
#[derive(Clone, Copy)]
pub(crate) struct AggPos {
    pub param: crate::ast::Pos,
    pub agg: crate::ast::Pos,
    pub expr: crate::ast::Pos,
}

/// A value at one step: what binary operators combine.
#[derive(Clone)]
pub(crate) enum Val {
    F(f64),
    H(Hist),
}

impl Stepped {
    pub(crate) fn val(&self, k: usize) -> Option<Val> {
        match (self.pts[k], self.h(k)) {
            (Some(x), _) => Some(Val::F(x)),
            (None, Some(h)) => Some(Val::H(h.clone())),
            _ => None,
        }
    }

    /// Store `v` at step `k`.
    pub(crate) fn put(&mut self, k: usize, v: Val) {
        match v {
            Val::F(x) => self.pts[k] = Some(x),
            Val::H(h) => self.set_h(k, Some(h)),
        }
    }
}

/// `l op r` where at least one side is a native histogram, as Prometheus defines it: `+` and
/// `-` of two histograms, `*` of a histogram and a float (either order), `/` of a histogram
/// by a float, `==` and `!=` of two histograms; every other combination drops the sample.
/// Comparisons return the left value (or 1/0 with `bool`).
fn hist_binary(ctx: &EvalContext<'_>, at: Op, l: &Val, r: &Val, return_bool: bool) -> Option<Val> {
    let (op, pos) = (at.op, at.pos);
    let scaled = |h: &Hist, f: f64, div: bool| {
        let mut h = (**h).clone();
        if div {
            h.div(f)
        } else {
            h.scale(f)
        }
        Val::H(Hist::new(h))
    };
    match (op, l, r) {
        (BinOp::Add | BinOp::Sub, Val::H(a), Val::H(b)) => {
            let (res, what) = if op == BinOp::Add {
                (a.add_checked(b), "addition")
            } else {
                (a.sub_checked(b), "subtraction")
            };
            match res {
                // Conflicting hints drop the element, with a warning.
                Ok(c) if c.collision => {
                    ctx.warn(format!(
                        "conflicting counter resets during histogram {what} ({pos})"
                    ));
                    None
                }
                Ok(c) => {
                    if c.reconciled_bounds {
                        ctx.info(format!(
                            "mismatched custom buckets were reconciled during {what} ({pos})"
                        ));
                    }
                    let mut h = c.h.compacted();
                    if op == BinOp::Sub {
                        h.hint = vigil_model::histogram::CounterResetHint::Gauge;
                    }
                    Some(Val::H(Hist::new(h)))
                }
                Err(_) => {
                    ctx.warn(format!(
                        "incompatible bucket layout encountered for binary operator {} ({pos})",
                        op.as_str()
                    ));
                    None
                }
            }
        }
        (BinOp::Mul, Val::H(h), Val::F(f)) | (BinOp::Mul, Val::F(f), Val::H(h)) => {
            Some(scaled(h, *f, false))
        }
        (BinOp::Div, Val::H(h), Val::F(f)) => Some(scaled(h, *f, true)),
        (BinOp::TrimUpper | BinOp::TrimLower, Val::H(h), Val::F(f)) => {
            Some(Val::H(Hist::new(h.trim(*f, op == BinOp::TrimUpper))))
        }
        (BinOp::Eq | BinOp::Neq, Val::H(a), Val::H(b)) => {
            let t = a.same_as(b) == (op == BinOp::Eq);
            if return_bool {
                Some(Val::F(if t { 1.0 } else { 0.0 }))
            } else {
                t.then(|| l.clone())
            }
        }
        _ => {
            let kind = |v: &Val| match v {
                Val::F(_) => "float",
                Val::H(_) => "histogram",
            };
            ctx.info(format!(
                "incompatible sample types encountered for binary operator {:?}: {} {} {} ({pos})",
                op.as_str(),
                kind(l),
                op.as_str(),
                kind(r)
            ));
            None
        }
    }
}

/// `l op r` for any two values of one step.
fn binary_val(ctx: &EvalContext<'_>, at: Op, l: &Val, r: &Val, return_bool: bool) -> Option<Val> {
    let op = at.op;
    match (l, r) {
        // Trimming is for histograms only.
        (Val::F(_), Val::F(_)) if op.is_trim() => hist_binary(ctx, at, l, r, return_bool),
        (Val::F(a), Val::F(b)) => {
            if op.is_comparison() {
                let t = arith(op, *a, *b).is_some();
                if return_bool {
                    Some(Val::F(if t { 1.0 } else { 0.0 }))
                } else {
                    t.then_some(Val::F(*a))
                }
            } else {
                arith(op, *a, *b).map(Val::F)
            }
        }
        _ => hist_binary(ctx, at, l, r, return_bool),
    }
}

/// Arithmetic or comparison of two floats; comparisons give Some(1)/None... as values: for
/// comparisons the result is `Some(x)` meaning true, None meaning false.
fn arith(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Atan2 => a.atan2(b),
        BinOp::Eq => return (a == b).then_some(1.0),
        BinOp::Neq => return (a != b).then_some(1.0),
        BinOp::Gtr => return (a > b).then_some(1.0),
        BinOp::Lss => return (a < b).then_some(1.0),
        BinOp::Gte => return (a >= b).then_some(1.0),
        BinOp::Lte => return (a <= b).then_some(1.0),
        _ => return None,
    })
}

fn vector_scalar(
    ctx: &EvalContext<'_>,
    at: Op,
    v: Vec<Stepped>,
    s: &[f64],
    scalar_left: bool,
    return_bool: bool,
) -> Vec<Stepped> {
    let op = at.op;
    let drop = !(op.is_comparison() || op.is_trim()) || return_bool;
    v.into_iter()
        .filter_map(|series| {
            let (labels, dropping) = if drop {
                ctx.dropping_name(&series.labels)
            } else {
                (series.labels.clone(), false)
            };
            let flagged = |mut s: Stepped| {
                s.drop_name = dropping || series.drop_name;
                s
            };
            if !series.has_histograms() && !op.is_trim() {
                let pts: Vec<Option<f64>> = series
                    .pts
                    .iter()
                    .zip(s)
                    .map(|(p, &sv)| {
                        let x = (*p)?;
                        let (a, b) = if scalar_left { (sv, x) } else { (x, sv) };
                        if op.is_comparison() {
                            let t = arith(op, a, b).is_some();
                            if return_bool {
                                Some(if t { 1.0 } else { 0.0 })
                            } else {
                                t.then_some(x)
                            }
                        } else {
                            arith(op, a, b)
                        }
                    })
                    .collect();
                return pts
                    .iter()
                    .any(Option::is_some)
                    .then(|| flagged(Stepped::floats(labels, pts)));
            }
            let mut out = flagged(Stepped::floats(labels, vec![None; s.len()]));
            for (k, &sv) in s.iter().enumerate() {
                let Some(x) = series.val(k) else { continue };
                let r = if scalar_left {
                    binary_val(ctx, at, &Val::F(sv), &x, return_bool)
                } else {
                    binary_val(ctx, at, &x, &Val::F(sv), return_bool)
                };
                // A comparison keeps the vector's value, whichever side it is on.
                let r = match (r, op.is_comparison() && !return_bool) {
                    (Some(_), true) => Some(x),
                    (r, _) => r,
                };
                if let Some(r) = r {
                    out.put(k, r);
                }
            }
            out.any().then_some(out)
        })
        .collect()
}

/// The labels two series are matched on.
fn signature(l: &Labels, m: &VectorMatching) -> Labels {
    if m.on {
        Labels::from_sorted_refs(l.iter().filter(|x| m.labels.iter().any(|g| g == x.name)))
    } else {
        Labels::from_sorted_refs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !m.labels.iter().any(|g| g == x.name)),
        )
    }
}

fn set_op(
    op: BinOp,
    a: Vec<Stepped>,
    b: Vec<Stepped>,
    m: &VectorMatching,
    n: usize,
) -> Vec<Stepped> {
    let sa: Vec<Labels> = a.iter().map(|s| signature(&s.labels, m)).collect();
    let sb: Vec<Labels> = b.iter().map(|s| signature(&s.labels, m)).collect();
    let mut out: Vec<Stepped> = Vec::new();
    // Keep series `s`'s values at the steps `keep` allows.
    let filtered = |s: &Stepped, keep: &dyn Fn(usize) -> bool| -> Stepped {
        let mut o = Stepped::floats(s.labels.clone(), vec![None; n]);
        o.drop_name = s.drop_name;
        for k in 0..n {
            if keep(k)
                && let Some(v) = s.val(k)
            {
                o.put(k, v);
            }
        }
        o
    };
    match op {
        BinOp::And | BinOp::Unless => {
            let mut present: Vec<std::collections::HashSet<&Labels>> = vec![Default::default(); n];
            for (s, sig) in b.iter().zip(&sb) {
                for (k, p) in present.iter_mut().enumerate() {
                    if s.present(k) {
                        p.insert(sig);
                    }
                }
            }
            for (s, sig) in a.iter().zip(&sa) {
                let o = filtered(s, &|k| (op == BinOp::And) == present[k].contains(sig));
                if o.any() {
                    out.push(o);
                }
            }
        }
        _ => {
            let mut present: Vec<std::collections::HashSet<&Labels>> = vec![Default::default(); n];
            for (s, sig) in a.iter().zip(&sa) {
                for (k, p) in present.iter_mut().enumerate() {
                    if s.present(k) {
                        p.insert(sig);
                    }
                }
            }
            let mut extra = Vec::new();
            for (s, sig) in b.iter().zip(&sb) {
                let o = filtered(s, &|k| !present[k].contains(sig));
                if o.any() {
                    extra.push(o);
                }
            }
            out.extend(a);
            out.extend(extra);
            // `-a or -b` can yield one labelset from both sides at different steps: one series.
            return check_unique(out).unwrap_or_default();
        }
    }
    out
}

/// All labels in braces, as Go's `labels.Labels.String()` prints them in error messages.
pub(crate) fn fmt_all(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={}", x.name, vigil_model::labels::quote(x.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The two series of a duplicate-match error, in a stable order.
fn dup_pair(a: &Labels, b: &Labels) -> (String, String) {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    (fmt_all(x), fmt_all(y))
}

#[allow(clippy::too_many_arguments)]
fn vector_vector(
    ctx: &EvalContext<'_>,
    at: Op,
    a: Vec<Stepped>,
    b: Vec<Stepped>,
    m: &VectorMatching,
    return_bool: bool,
    n: usize,
) -> R<Vec<Stepped>> {
    let op = at.op;
    // For group_right, the "many" side is the right one: swap, and swap back the operands.
    let swapped = m.card == Card::OneToMany;
    let (many, one) = if swapped { (b, a) } else { (a, b) };
    // As Prometheus applies them after that swap: `fill_right` stands in for a missing "one"
    // side and `fill_left` for a missing "many" side, whichever is written first.
    let (fill_one, fill_many) = (m.fill.rhs, m.fill.lhs);
    let sig_many: Vec<Labels> = many.iter().map(|s| signature(&s.labels, m)).collect();
    let sig_one: Vec<Labels> = one.iter().map(|s| signature(&s.labels, m)).collect();
    let mut out: Vec<Stepped> = Vec::new();
    let mut out_idx: HashMap<Labels, usize> = HashMap::new();
    let side = |left: bool| if left { "left" } else { "right" };
    for k in 0..n {
        // Nothing can match with a side empty, unless a fill stands in for it.
        let many_any = many.iter().any(|s| s.present(k));
        let one_any = one.iter().any(|s| s.present(k));
        if !(many_any && one_any) && (!m.fill.any() || !(many_any || one_any)) {
            continue;
        }
        // The "one" side: at most one series per signature at this step.
        let mut one_at: HashMap<&Labels, usize> = HashMap::new();
        for (i, s) in one.iter().enumerate() {
            if !s.present(k) {
                continue;
            }
            if let Some(&prev) = one_at.get(&sig_one[i]) {
                return invalid(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    fmt_all(&sig_one[i]),
                    side(swapped),
                    dup_pair(&one[prev].labels, &s.labels).0,
                    dup_pair(&one[prev].labels, &s.labels).1
                ));
            }
            one_at.insert(&sig_one[i], i);
        }
        let mut seen_one_to_one: HashMap<&Labels, usize> = HashMap::new();
        // Signatures of the "one" side some series matched at this step (for `fill_left`).
        let mut matched: std::collections::HashSet<&Labels> = Default::default();
        let delayed = ctx.engine.delayed_name_removal;
        // `many_flag`: the "many" series' name is pending removal.
        let mut emit = |many_labels: &Labels,
                        many_flag: bool,
                        one_labels: &Labels,
                        x: &Val,
                        y: &Val|
         -> R<()> {
            let (l, r) = if swapped { (y, x) } else { (x, y) };
            let Some(value) = binary_val(ctx, at, l, r, return_bool) else {
                return Ok(());
            };
            let labels = result_labels(many_labels, one_labels, op, m, return_bool, delayed);
            // Pending removal: `bool`'s result, or a kept name that was pending already
            // (Prometheus forgets the latter; vigil keeps it, see promql-differences.md).
            let drop = delayed && (return_bool || op.is_comparison() && many_flag);
            let idx = match out_idx.get(&labels) {
                Some(&idx) => {
                    if out[idx].present(k) {
                        return invalid(if m.card == Card::OneToOne {
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".to_string()
                        } else {
                            "multiple matches for labels: grouping labels must ensure unique matches".to_string()
                        });
                    }
                    idx
                }
                None => {
                    out_idx.insert(labels.clone(), out.len());
                    out.push(Stepped::floats(labels, vec![None; n]));
                    out.len() - 1
                }
            };
            out[idx].put(k, value);
            out[idx].drop_name |= drop;
            Ok(())
        };
        for (i, s) in many.iter().enumerate() {
            let Some(x) = s.val(k) else { continue };
            let sig = &sig_many[i];
            let one_match = one_at.get(sig).copied();
            if one_match.is_none() && fill_one.is_none() {
                continue;
            }
            if m.card == Card::OneToOne {
                if let Some(&prev) = seen_one_to_one.get(sig) {
                    return invalid(format!(
                        "found duplicate series for the match group {} on the left hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        fmt_all(sig),
                        dup_pair(&many[prev].labels, &s.labels).0,
                        dup_pair(&many[prev].labels, &s.labels).1
                    ));
                }
                seen_one_to_one.insert(sig, i);
            }
            match (one_match, fill_one) {
                (Some(j), _) => {
                    let Some(y) = one[j].val(k) else { continue };
                    // A pair whose types the operator takes counts as matched even when a
                    // comparison drops it; an incompatible pair does not (Prometheus then
                    // fills for the "one" side's series).
                    let (l, r) = if swapped { (&y, &x) } else { (&x, &y) };
                    if defined_for(op, l, r) {
                        matched.insert(sig);
                    }
                    emit(&s.labels, s.drop_name, &one[j].labels, &x, &y)?;
                }
                // No match: the fill value, labelled with the match group alone.
                (None, Some(f)) => emit(&s.labels, s.drop_name, sig, &x, &Val::F(f))?,
                (None, None) => {}
            }
        }
        if let Some(f) = fill_many {
            for (j, s) in one.iter().enumerate() {
                let sig = &sig_one[j];
                if one_at.get(sig) != Some(&j) || matched.contains(sig) {
                    continue;
                }
                let Some(y) = s.val(k) else { continue };
                emit(sig, false, &s.labels, &Val::F(f), &y)?;
            }
        }
    }
    Ok(out)
}

/// Whether binary operator `op` is defined between these two kinds of value (else Prometheus
/// drops the pair with an info annotation).
fn defined_for(op: BinOp, l: &Val, r: &Val) -> bool {
    match (l, r) {
        (Val::F(_), Val::F(_)) => !op.is_trim(),
        (Val::F(_), Val::H(_)) => op == BinOp::Mul,
        (Val::H(_), Val::F(_)) => matches!(
            op,
            BinOp::Mul | BinOp::Div | BinOp::TrimUpper | BinOp::TrimLower
        ),
        (Val::H(_), Val::H(_)) => matches!(op, BinOp::Add | BinOp::Sub | BinOp::Eq | BinOp::Neq),
    }
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    op: BinOp,
    m: &VectorMatching,
    return_bool: bool,
    delayed: bool,
) -> Labels {
    let mut b: LabelsBuilder = many.builder();
    // Arithmetic drops the name at once even with delayed name removal, as Prometheus's
    // `resultMetric` does; `bool` leaves it to the end then.
    if !(op.is_comparison() || op.is_trim()) || return_bool && !delayed {
        b.del(METRIC_NAME);
        b.del("__type__");
        b.del("__unit__");
    }
    if m.card == Card::OneToOne {
        if m.on {
            b.retain(|l| m.labels.contains(&l.name));
        } else {
            b.retain(|l| !m.labels.contains(&l.name));
        }
    }
    for l in &m.include {
        match one.get(l) {
            Some(v) => {
                b.set(l.clone(), v.to_string());
            }
            None => {
                b.del(l);
            }
        }
    }
    b.build()
}

/// Query results plus the annotations (warnings, infos) gathered while evaluating.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// When the engine's `stats` asked for them.
    pub stats: Option<QueryStats>,
}

impl Engine {
    fn ctx<'a>(
        &'a self,
        storage: &'a dyn Storage,
        notes: &'a std::cell::RefCell<Notes>,
        start: i64,
        end: i64,
        step: i64,
        stats: Option<&'a SampleStats>,
    ) -> EvalContext<'a> {
        EvalContext {
            stats,
            storage,
            engine: self,
            start,
            end,
            step,
            q_start: start,
            q_end: end,
            q_step: if start == end { 0 } else { step },
            notes,
            samples: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            count_steps: false,
            stats_only: Default::default(),
        }
    }

    /// Evaluate `expr` at `t` (ms).
    pub fn instant(&self, storage: &dyn Storage, expr: &Expr, t: i64) -> Result<Value, EvalError> {
        Ok(self.instant_query(storage, expr, t)?.value)
    }

    /// Evaluate `expr` at every step from `start` to `end` (ms, inclusive).
    pub fn range(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, EvalError> {
        Ok(self.range_query(storage, expr, start, end, step)?.value)
    }

    /// Instant evaluation with its annotations.
    pub fn instant_query(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        t: i64,
    ) -> Result<QueryResult, EvalError> {
        // `step()` and `range()` are 0 in an instant query.
        let resolved;
        let expr = if crate::durations::dynamic(expr) {
            resolved = crate::durations::resolved(expr, 0, 0)?;
            &resolved
        } else {
            expr
        };
        let notes = std::cell::RefCell::new(Notes::default());
        let read = self.sample_stats(1);
        let ctx = self.ctx(storage, &notes, t, t, 1, read.as_ref());
        let began = std::time::Instant::now();
        let evaluated = ctx.eval(expr)?;
        let inner = began.elapsed();
        let value = match evaluated {
            V::Scalar(v) => Value::Scalar(Sample { t, v: v[0] }),
            V::Str(s) => Value::String(t, s),
            V::Vector(v) => {
                let v = remove_pending_names(v)?;
                let mut out: Vec<(Labels, Point)> = v
                    .into_iter()
                    .filter_map(|s| match (s.pts[0], s.h(0)) {
                        (Some(x), _) => Some((s.labels, Point::float(t, x))),
                        (None, Some(h)) => {
                            let h = Some(h.clone());
                            Some((s.labels, Point { t, v: 0.0, h }))
                        }
                        _ => None,
                    })
                    .collect();
                funcs::order_instant(expr, &mut out);
                Value::Vector(out)
            }
            V::Matrix(m) => Value::Matrix(m),
        };
        let n = notes.into_inner();
        Ok(QueryResult {
            value,
            warnings: n.warnings,
            infos: n.infos,
            stats: self.query_stats(read, &[t], began, inner),
        })
    }

    /// The counters of a query that collects statistics.
    fn sample_stats(&self, steps: usize) -> Option<SampleStats> {
        (self.stats != StatsLevel::Off).then(|| SampleStats::new(steps))
    }

    /// The statistics of a query evaluated from `began`, `inner` of it in the evaluation
    /// proper (the rest: assembling and sorting the result).
    fn query_stats(
        &self,
        read: Option<SampleStats>,
        times: &[i64],
        began: std::time::Instant,
        inner: std::time::Duration,
    ) -> Option<QueryStats> {
        let read = read?;
        let total = began.elapsed();
        Some(QueryStats {
            total_samples: read.total(),
            peak_samples: read.peak() as u64,
            per_step: (self.stats == StatsLevel::PerStep && self.per_step_stats)
                .then(|| read.per_step(times)),
            eval_total_s: total.as_secs_f64(),
            inner_eval_s: inner.as_secs_f64(),
            result_sort_s: (total - inner).as_secs_f64(),
            preparation_s: 0.0,
        })
    }

    /// Range evaluation with its annotations.
    pub fn range_query(
        &self,
        storage: &dyn Storage,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, EvalError> {
        if step <= 0 {
            return invalid(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            );
        }
        let resolved;
        let expr = if crate::durations::dynamic(expr) {
            resolved = crate::durations::resolved(expr, step, end.saturating_sub(start))?;
            &resolved
        } else {
            expr
        };
        let vt = expr.value_type();
        if vt != crate::ast::ValueType::Scalar && vt != crate::ast::ValueType::Vector {
            return invalid(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                vt.name()
            ));
        }
        let notes = std::cell::RefCell::new(Notes::default());
        let read = self.sample_stats(((end - start) / step) as usize + 1);
        let ctx = self.ctx(storage, &notes, start, end, step, read.as_ref());
        let times: Vec<i64> = ctx.times().collect();
        let began = std::time::Instant::now();
        let evaluated = ctx.eval(expr)?;
        let inner = began.elapsed();
        let value = match evaluated {
            V::Scalar(v) => Value::Matrix(vec![Series {
                labels: Labels::empty(),
                samples: v
                    .iter()
                    .zip(&times)
                    .map(|(v, t)| Sample { t: *t, v: *v })
                    .collect(),
                histograms: Vec::new(),
            }]),
            V::Vector(v) => {
                let mut out: Vec<Series> = remove_pending_names(v)?
                    .into_iter()
                    .filter_map(|s| stepped_series(s, &times))
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(out)
            }
            _ => return invalid("invalid expression type for range query"),
        };
        let n = notes.into_inner();
        Ok(QueryResult {
            value,
            warnings: n.warnings,
            infos: n.infos,
            stats: self.query_stats(read, &times, began, inner),
        })
    }
}

/// Series that share a label set once their names went, merged point by point; two points
/// at one time are an error, as Prometheus merges a result's series.
fn merge_same_labels(series: Vec<Series>) -> R<Vec<Series>> {
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    for s in series {
        let Some(&i) = idx.get(&s.labels) else {
            idx.insert(s.labels.clone(), out.len());
            out.push(s);
            continue;
        };
        let o = &mut out[i];
        let taken = |t: i64, o: &Series| {
            o.samples.iter().any(|x| x.t == t) || o.histograms.iter().any(|x| x.t == t)
        };
        if s.samples.iter().any(|x| taken(x.t, o)) || s.histograms.iter().any(|x| taken(x.t, o)) {
            return invalid("vector cannot contain metrics with the same labelset");
        }
        o.samples.extend(s.samples);
        o.samples.sort_by_key(|x| x.t);
        o.histograms.extend(s.histograms);
        o.histograms.sort_by_key(|x| x.t);
    }
    Ok(out)
}

/// Delayed name removal's last step: the names still pending go, and series that then share
/// a label set merge where their steps do not overlap and fail where they do, as Prometheus
/// assembles a result.
fn remove_pending_names(v: Vec<Stepped>) -> R<Vec<Stepped>> {
    if !v.iter().any(|s| s.drop_name) {
        return Ok(v);
    }
    check_unique(
        v.into_iter()
            .map(|mut s| {
                if s.drop_name {
                    s.labels = drop_name(&s.labels);
                    s.drop_name = false;
                }
                s
            })
            .collect(),
    )
}

/// What Prometheus's stats iterator does to hints: a histogram stored with an unknown hint
/// that follows a histogram read just before it gets "reset" or "not a reset" by comparing
/// the two.
pub(crate) fn resolve_hints(s: &mut Series) {
    use vigil_model::histogram::CounterResetHint as Hint;
    for i in 1..s.histograms.len() {
        let (prev, cur) = (&s.histograms[i - 1], &s.histograms[i]);
        if cur.h.hint != Hint::Unknown || prev.is_stale() || cur.is_stale() {
            continue;
        }
        // A float between them is the sample read before this one.
        if s.samples.iter().any(|f| f.t > prev.t && f.t < cur.t) {
            continue;
        }
        let mut h = (*cur.h).clone();
        h.hint = if h.detect_reset(&prev.h) {
            Hint::CounterReset
        } else {
            Hint::NotCounterReset
        };
        s.histograms[i].h = Hist::new(h);
    }
}

/// A subquery's histograms lose what their hints say about counter resets (as in
/// Prometheus): the steps are not consecutive samples of one chunk, so a reader must compare.
fn forget_reset_hints(mut s: Series) -> Series {
    use vigil_model::histogram::CounterResetHint as Hint;
    for h in &mut s.histograms {
        if matches!(h.h.hint, Hint::CounterReset | Hint::NotCounterReset) {
            let mut x = (*h.h).clone();
            x.hint = Hint::Unknown;
            h.h = Hist::new(x);
        }
    }
    s
}

/// The samples of a stepped series at `times`, or None if it has none.
pub(crate) fn stepped_series(s: Stepped, times: &[i64]) -> Option<Series> {
    let samples: Vec<Sample> = s
        .pts
        .iter()
        .zip(times)
        .filter_map(|(p, t)| p.map(|v| Sample { t: *t, v }))
        .collect();
    let histograms: Vec<HistogramSample> =
        s.hs.into_iter()
            .zip(times)
            .filter_map(|(h, t)| h.map(|h| HistogramSample { t: *t, h }))
            .collect();
    (!samples.is_empty() || !histograms.is_empty()).then_some(Series {
        labels: s.labels,
        samples,
        histograms,
    })
}

/// Label matchers of the selector that `absent()` copies into its result.
pub(crate) fn absent_labels(vs: &VectorSelector) -> Labels {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for m in &vs.matchers {
        *seen.entry(m.name.as_str()).or_default() += 1;
    }
    let mut b = LabelsBuilder::new();
    for m in &vs.matchers {
        if m.op == MatchOp::Equal && m.name != METRIC_NAME && seen[m.name.as_str()] == 1 {
            b.set(m.name.clone(), m.value.clone());
        }
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use vigil_model::STALE_NAN;
    use vigil_storage::MemoryStorage;

    fn store() -> MemoryStorage {
        let st = MemoryStorage::new();
        let mut app = st.appender();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        for (t, v) in [(10_000, 1.0), (20_000, 0.0)] {
            app.append(0, &a, t, v).unwrap();
        }
        app.append(0, &b, 10_000, 1.0).unwrap();
        app.append(0, &b, 15_000, STALE_NAN).unwrap();
        app.commit().unwrap();
        st
    }

    #[test]
    fn instant_selector_honours_lookback_and_staleness() {
        let st = store();
        let e = Engine::default();
        let Value::Vector(v) = e.instant(&st, &parse("up").unwrap(), 12_000).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        let Value::Vector(v) = e.instant(&st, &parse("up").unwrap(), 16_000).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1, "stale series b is gone");
        assert_eq!(v[0].1, Point::float(16_000, 1.0));
        let Value::Vector(v) = e
            .instant(&st, &parse("up").unwrap(), 20_000 + 300_000)
            .unwrap()
        else {
            panic!()
        };
        assert!(v.is_empty(), "beyond lookback");
        let Value::Vector(v) = e
            .instant(&st, &parse("up offset 10s").unwrap(), 30_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(v[0].1.v, 0.0);
    }

    #[test]
    fn range_walks_steps() {
        let st = store();
        let e = Engine::default();
        let Value::Matrix(m) = e
            .range(&st, &parse(r#"up{job="a"}"#).unwrap(), 0, 30_000, 10_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            m[0].samples,
            vec![
                Sample { t: 10_000, v: 1.0 },
                Sample { t: 20_000, v: 0.0 },
                Sample { t: 30_000, v: 0.0 }
            ]
        );
    }

    #[test]
    fn aggregation_and_arithmetic() {
        let st = store();
        let e = Engine::default();
        let Value::Vector(v) = e
            .instant(&st, &parse("sum(up) * 2 + 1").unwrap(), 12_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(v, vec![(Labels::empty(), Point::float(12_000, 5.0))]);
        let Value::Vector(v) = e
            .instant(&st, &parse("count by (job) (up)").unwrap(), 12_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        let Value::Scalar(s) = e.instant(&st, &parse("1 + 2 * 3").unwrap(), 0).unwrap() else {
            panic!()
        };
        assert_eq!(s.v, 7.0);
    }
}
