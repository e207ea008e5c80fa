//! Functions over the windows of a range vector (`rate`, `*_over_time`, ...): each window
//! evaluated per step, in parallel over series when there are many, and aggregations of
//! windowed results done without materialising them.

use super::*;

/// `rate`, `increase`, `delta` of one window, from the same parts as [`rate_windows`] (which
/// the evaluator uses): kept for the unit tests of single windows. The oracle `rate_windows`
/// is checked against is the code before it, in the tests (`extrapolated_rate_before`).
#[cfg(test)]
pub(crate) fn extrapolated_rate(
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
    let shape = rate_shape(w, range_start, range_end, range_s, is_rate);
    let reset = counter && w.windows(2).any(|p| p[1].v < p[0].v);
    Some(rate_with(w, &shape, range_s, counter, reset, is_rate))
}

/// What the extrapolation decides from a window's times alone: where its first and last
/// samples sit against its edges and how many it holds. A range query's windows mostly have
/// one shape (regular scrapes, a step a multiple of the interval), so [`rate_windows`] works
/// it out once per shape rather than per window.
#[derive(Clone, Copy)]
struct RateShape {
    sampled: f64,
    /// Both extrapolations, limited as Prometheus limits them (the counter's zero point
    /// aside: it depends on the values).
    to_start: f64,
    to_end: f64,
    /// The factor `result` is multiplied by when the zero point does not limit the start.
    factor: f64,
    /// A first value above `result * zero_clear` is far enough from the counter's zero point
    /// that the exact test below would not limit the start: `to_start / sampled` with a
    /// margin (1e-6) far beyond rounding, so windows need no more than one product for it
    /// (NaN when `sampled` is 0, and then the test is always made).
    zero_clear: f64,
}

fn rate_shape(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    range_s: f64,
    is_rate: bool,
) -> RateShape {
    let (first, last) = (w[0], w[w.len() - 1]);
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
    if beyond_threshold(to_end) {
        to_end = sampled / intervals / 2.0;
    }
    RateShape {
        sampled,
        to_start,
        to_end,
        factor: rate_factor(sampled, to_start, to_end, range_s, is_rate),
        zero_clear: to_start / sampled * (1.0 + 1e-6),
    }
}

fn secs(ms: f64) -> f64 {
    ms / 1000.0
}

/// The factor first, as Prometheus (`result * span` could overflow where it does not). It
/// can differ from Prometheus's in the last bit (one division instead of five).
fn rate_factor(sampled: f64, to_start: f64, to_end: f64, range_s: f64, is_rate: bool) -> f64 {
    let span = sampled + to_start + to_end;
    if is_rate {
        span / (sampled * range_s)
    } else {
        span / sampled
    }
}

/// The extrapolated result of a window of at least two samples whose shape is `shape`;
/// `reset`: whether a counter's window holds a drop (a value below the one before it).
fn rate_with(
    w: &[Sample],
    shape: &RateShape,
    range_s: f64,
    counter: bool,
    reset: bool,
    is_rate: bool,
) -> f64 {
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.v - first.v;
    // Resets are rare: whether a window has one is known first (see `rate_windows`), where
    // adding them up as the window is walked chained every step through `result`. The sum,
    // when there is one, is Prometheus's, in its order.
    if reset {
        let mut prev = first.v;
        for p in &w[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut factor = shape.factor;
    // The counter's zero point limits the extrapolation. Prometheus: `sampled_s * (first /
    // result) < to_start_s`.
    let clear =
        first.v.partial_cmp(&(result * shape.zero_clear)) == Some(std::cmp::Ordering::Greater);
    if counter && result > 0.0 && first.v >= 0.0 && !clear {
        let (sampled, to_start) = (shape.sampled, shape.to_start);
        let (l, r) = (sampled * first.v, to_start * result);
        let below = if l.is_finite() && r.is_finite() && (l - r).abs() > r.abs() * 1e-12 {
            l < r
        } else {
            secs(sampled) * (first.v / result) < secs(to_start)
        };
        if below {
            let to_zero = sampled * (first.v / result);
            factor = rate_factor(sampled, to_zero, shape.to_end, range_s, is_rate);
        }
    }
    result * factor
}

/// `rate`, `increase` or `delta` over every window of one series: [`extrapolated_rate`]'s
/// answers, each shape's decisions worked out once (see [`RateShape`]), and a counter's
/// drops found once per series rather than looked for in every window (that scan was a
/// third of the window loop in `perf`).
pub(crate) fn rate_windows(
    samples: &[Sample],
    ends: &[i64],
    range_ms: i64,
    range_s: f64,
    counter: bool,
    is_rate: bool,
    pts: &mut Vec<Option<f64>>,
) {
    // Indexes `i` with `samples[i].v < samples[i - 1].v` (the predicate Prometheus's reset
    // loop uses, so NaNs count as there), then a sentinel.
    let listed: Vec<usize>;
    let drops: &[usize] = if counter {
        listed = samples
            .windows(2)
            .enumerate()
            .filter(|(_, p)| p[1].v < p[0].v)
            .map(|(i, _)| i + 1)
            .chain([usize::MAX])
            .collect();
        &listed
    } else {
        &[usize::MAX]
    };
    let mut c = 0usize;
    let mut last: Option<((i64, i64, usize), RateShape)> = None;
    windows_at(samples, ends, range_ms, pts, |lo, hi, end| {
        let w = &samples[lo..hi];
        if w.len() < 2 {
            return None;
        }
        // The first drop after `lo` (windows move forward; back to the start otherwise).
        if c > 0 && drops[c - 1] > lo {
            c = 0;
        }
        while drops[c] <= lo {
            c += 1;
        }
        let reset = drops[c] < hi;
        let start = end - range_ms;
        let key = (w[0].t - start, end - w[w.len() - 1].t, w.len());
        let shape = match last {
            Some((k, shape)) if k == key => shape,
            _ => {
                let shape = rate_shape(w, start, end, range_s, is_rate);
                last = Some((key, shape));
                shape
            }
        };
        Some(rate_with(w, &shape, range_s, counter, reset, is_rate))
    });
}

pub(crate) fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
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

/// `f` over each step's window of one series' samples (time order, no staleness markers)
/// into `pts`, one slot per window end. Generic, so each window function is inlined into this
/// loop (see [`wf`]): one indirect call per series rather than per window.
pub(crate) fn windows_into<G: Fn(&[Sample], usize, i64, i64) -> Option<f64>>(
    samples: &[Sample],
    ends: &[i64],
    range_ms: i64,
    f: &G,
    pts: &mut Vec<Option<f64>>,
) {
    let mut k = 0;
    windows_at(samples, ends, range_ms, pts, |lo, hi, end| {
        k += 1;
        if lo == hi {
            None
        } else {
            f(&samples[lo..hi], k - 1, end, range_ms)
        }
    });
}

/// The sliding of every window function: `f(lo, hi, end)` for each window end in turn, where
/// `samples[lo..hi]` are the window's samples, into `pts` (one slot per end).
fn windows_at(
    samples: &[Sample],
    ends: &[i64],
    range_ms: i64,
    pts: &mut Vec<Option<f64>>,
    mut f: impl FnMut(usize, usize, i64) -> Option<f64>,
) {
    pts.clear();
    pts.resize(ends.len(), None);
    // Ends never decrease (under `@` they are constant): checked once, with the per-window
    // test to start over kept for any caller that breaks this.
    let in_order = ends.is_sorted();
    let (mut lo, mut hi) = (0usize, 0usize);
    for (&end, slot) in ends.iter().zip(pts.iter_mut()) {
        let start = end - range_ms;
        if !in_order && (lo > 0 && samples[lo - 1].t > start || hi > 0 && samples[hi - 1].t > end) {
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
        *slot = f(lo, hi, end);
    }
}

/// A function over the windows of a range argument, per series and step. A matrix selector's
/// series are streamed from storage in shards (see `select`); a subquery's are evaluated first.
pub(crate) fn over_windows(
    ctx: &EvalContext<'_>,
    arg: &Expr,
    keep_name: bool,
    f: &WindowFn<'_>,
    hist: Option<(&str, Pos)>,
    counter: Option<CounterCheck>,
) -> R<Vec<Stepped>> {
    // The labels of a result, and whether its name is pending removal.
    // (Not through `ctx`, which shard and window threads cannot share.)
    let delayed = ctx.engine.delayed_name_removal;
    let name = move |l: Labels| {
        if keep_name {
            (l, false)
        } else {
            crate::eval::dropping_name(&l, delayed)
        }
    };
    // Annotations from shard threads, raised on this one afterwards.
    let notes = std::sync::Mutex::new(Vec::<(bool, String)>::new());
    let sink = |warn: bool, msg: String| {
        if let Ok(mut n) = notes.lock() {
            n.push((warn, msg));
        }
    };
    let flush = || {
        for (warn, msg) in notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
        {
            if warn { ctx.warn(msg) } else { ctx.info(msg) }
        }
    };
    if let Expr::MatrixSelector { vs, range_ms } = arg.unparen() {
        let ends = ctx.window_ends(vs);
        let q = ctx.window_querier(&ends, *range_ms)?;
        let budget = ctx.budget();
        let steps = ctx.step_slots(ends.len());
        let stats = ctx.stats_only.get();
        let parts = for_shards(&*q, &vs.matchers, |set| {
            let mut out = Vec::new();
            let mut pts = Vec::with_capacity(ends.len());
            for mut s in set {
                if stats {
                    crate::eval::resolve_hints(&mut s);
                }
                s.samples.retain(|x| !is_stale_nan(x.v));
                s.histograms.retain(|x| !x.is_stale());
                let held = s.samples.len() + crate::eval::hist_cost(&s.histograms);
                budget.count_series(&s.labels, held + steps)?;
                if let Some(st) = budget.stats {
                    st.add_windows(&s.samples, &s.histograms, &ends, *range_ms);
                }
                f(&s.samples, &ends, *range_ms, &mut pts);
                let mut hs = Vec::new();
                if let Some((name, pos)) = hist
                    && !s.histograms.is_empty()
                {
                    super::native_window::hist_windows(
                        &sink, name, &s, &ends, *range_ms, pos, &mut pts, &mut hs,
                    );
                }
                // The raw samples go now; the per-step results stay counted.
                budget.release(held);
                if let Some(c) = counter
                    && pts.iter().any(Option::is_some)
                    && let Some(m) = c.note(&s.labels)
                {
                    sink(false, m);
                }
                if pts.iter().any(Option::is_some) || hs.iter().any(Option::is_some) {
                    out.push(Stepped {
                        labels: s.labels,
                        pts: pts.clone(),
                        hs,
                        drop_name: false,
                    });
                }
            }
            Ok(out)
        })?;
        let out = merge_sorted(parts, |s| &s.labels)
            .into_iter()
            .map(|s| {
                let (labels, drop_name) = name(s.labels);
                Stepped {
                    labels,
                    pts: s.pts,
                    hs: s.hs,
                    drop_name,
                }
            })
            .collect();
        flush();
        return check_unique(out);
    }
    let ra = ctx.range_arg(arg)?;
    if let Some(st) = ctx.stats {
        for s in &ra.series {
            st.add_windows(&s.samples, &s.histograms, &ra.ends, ra.range_ms);
        }
    }
    let one = |series: &[vigil_storage::Series]| -> Vec<Stepped> {
        let mut out = Vec::with_capacity(series.len());
        let mut pts = Vec::with_capacity(ra.ends.len());
        for s in series {
            f(&s.samples, &ra.ends, ra.range_ms, &mut pts);
            let mut hs = Vec::new();
            if let Some((fname, pos)) = hist
                && !s.histograms.is_empty()
            {
                super::native_window::hist_windows(
                    &sink,
                    fname,
                    s,
                    &ra.ends,
                    ra.range_ms,
                    pos,
                    &mut pts,
                    &mut hs,
                );
            }
            if let Some(c) = counter
                && pts.iter().any(Option::is_some)
                && let Some(m) = c.note(&s.labels)
            {
                sink(false, m);
            }
            if pts.iter().any(Option::is_some) || hs.iter().any(Option::is_some) {
                let (labels, drop) = name(s.labels.clone());
                out.push(Stepped {
                    labels,
                    pts: pts.clone(),
                    hs,
                    drop_name: drop || ra.dropped.contains(&s.labels),
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
    flush();
    check_unique(out)
}

/// Per-step accumulators of one aggregation group, filled series by series.
pub(crate) struct GroupAcc {
    pub(crate) key: Labels,
    /// The smallest input labels that reached this group: groups are output in order of
    /// first appearance in the label-sorted input, as Prometheus does.
    pub(crate) first: Labels,
    pub(crate) acc: Vec<f64>,
    pub(crate) comp: Vec<f64>,
    pub(crate) cnt: Vec<u32>,
}

impl GroupAcc {
    pub(crate) fn add(&mut self, op: AggOp, k: usize, x: f64) {
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
    pub(crate) fn fold(&mut self, op: AggOp, pts: &[Option<f64>]) {
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
    pub(crate) fn merge(&mut self, op: AggOp, o: GroupAcc) {
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

    pub(crate) fn finish(self, op: AggOp) -> Option<Stepped> {
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
            hs: Vec::new(),
            drop_name: false,
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
    ctx: &EvalContext<'_>,
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
    // Extended ranges have their own path (`extended`), reached through `call`. Grouping
    // by a name that delayed removal keeps is left to the unfused path too.
    if vs.extend != crate::ast::Extend::None
        || ctx.engine.delayed_name_removal
            && !keep_name
            && !without
            && grouping.iter().any(|g| crate::eval::is_metadata_label(g))
    {
        return Ok(None);
    }
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
    let counter = w.counter;
    // Infos from shard threads, raised on this one afterwards.
    let notes = std::sync::Mutex::new(Vec::<String>::new());
    let n = ctx.n();
    let ends = ctx.window_ends(vs);
    let q = ctx.window_querier(&ends, *range_ms)?;
    let budget = ctx.budget();
    // The function dropped the name, and the type and unit with it, unless it keeps them
    // (`without` drops the name in any case).
    let key_of = |l: &Labels| {
        Labels::from_sorted_refs(l.iter().filter(|x| {
            let dropped = if keep_name {
                x.name == METRIC_NAME && without
            } else {
                crate::eval::is_metadata_label(x.name)
            };
            let listed = grouping.iter().any(|g| g == x.name);
            !dropped && (listed != without)
        }))
    };
    let parts = for_shards(&*q, &vs.matchers, |set| {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<GroupAcc> = Vec::new();
        let mut pts = Vec::with_capacity(n);
        for mut s in set {
            // Histograms need the unfused path (per-series results first).
            if s.histograms.iter().any(|h| !h.is_stale()) {
                return Err(crate::value::EvalError::Unfused);
            }
            s.samples.retain(|x| !is_stale_nan(x.v));
            budget.count_series(&s.labels, s.samples.len())?;
            if let Some(st) = budget.stats {
                st.add_windows(&s.samples, &[], &ends, *range_ms);
            }
            f(&s.samples, &ends, *range_ms, &mut pts);
            // Only the groups' accumulators stay: the raw samples go now.
            budget.release(s.samples.len());
            if !pts.iter().any(Option::is_some) {
                continue;
            }
            if let Some(m) = counter.and_then(|c| c.note(&s.labels))
                && let Ok(mut n) = notes.lock()
            {
                n.push(m);
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
    for m in notes.into_inner().unwrap_or_default() {
        ctx.info(m);
    }
    Ok(Some(
        groups.into_iter().filter_map(|g| g.finish(op)).collect(),
    ))
}

/// Windows (series x steps) above which a range function runs on several threads.
pub(crate) const PARALLEL_WINDOWS: usize = 100_000;

/// A window function applied to every window of one series: its samples, the window ends, the
/// range's length, and the per-step output.
pub(crate) type WindowFn<'e> = dyn Fn(&[Sample], &[i64], i64, &mut Vec<Option<f64>>) + Sync + 'e;

pub(crate) type F<'e> = Box<WindowFn<'e>>;

/// Box a function of one window (its samples, the step index, the window's end and its length)
/// as a [`WindowFn`] over all of a series' windows, with the window function inlined there.
pub(crate) fn wf<'e>(f: impl Fn(&[Sample], usize, i64, i64) -> Option<f64> + Sync + 'e) -> F<'e> {
    Box::new(move |samples, ends, range_ms, pts| windows_into(samples, ends, range_ms, &f, pts))
}

/// Warn about quantiles outside [0, 1] (each distinct value once), as Prometheus does even when
/// there is no data.
pub(crate) fn check_quantiles(ctx: &EvalContext<'_>, q: &[f64], pos: Pos) {
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
    /// The function's name and its range argument's position, for windows that hold native
    /// histograms (see `native_window`).
    pub hist: Option<(&'e str, Pos)>,
    /// `rate` and `increase`: say when a series may not be a counter.
    pub counter: Option<CounterCheck>,
}

/// For `rate` and `increase`: where their range argument starts, and whether a series'
/// `__type__` (with `type-and-unit-labels`) rather than its name says it is a counter.
#[derive(Clone, Copy)]
pub(crate) struct CounterCheck {
    pub pos: Pos,
    pub by_type: bool,
}

impl CounterCheck {
    /// Prometheus's info for a named series that `rate`/`increase` gave a float for and that
    /// may not be a counter.
    pub(crate) fn note(&self, l: &Labels) -> Option<String> {
        let name = l.metric_name().filter(|n| !n.is_empty())?;
        if self.by_type {
            let t = l.get("__type__").unwrap_or("");
            (t != "counter" && t != "histogram").then(|| {
                format!(
                    "metric might not be a counter, __type__ label is not set to \"counter\" or \"histogram\", got {t:?}: {name:?} ({})",
                    self.pos
                )
            })
        } else {
            let counter_like = ["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|sfx| name.ends_with(sfx));
            (!counter_like).then(|| {
                format!(
                    "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {name:?} ({})",
                    self.pos
                )
            })
        }
    }
}

fn f_window_index(name: &str) -> usize {
    crate::functions::lookup(name)
        .and_then(|f| f.window_arg())
        .unwrap_or(0)
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
    ctx: &EvalContext<'_>,
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
            Box::new(
                move |samples: &[Sample], ends: &[i64], range_ms, pts: &mut Vec<Option<f64>>| {
                    rate_windows(samples, ends, range_ms, range_s, counter, is_rate, pts)
                },
            )
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
        // The table marks it as a window function but no arm implements it: an error for
        // this query (the test below keeps every row implemented), never a panic.
        _ => return invalid(format!("function {name:?} is not implemented yet")),
    };
    // Every window function gets to see the histograms: to use them, or to say it ignored
    // them.
    let hist = crate::functions::lookup(name).map(|f| (f.name, apos(f_window_index(name))));
    let counter = matches!(name, "rate" | "increase").then(|| CounterCheck {
        pos: apos(0),
        by_type: ctx.engine.type_and_unit_labels,
    });
    Ok(Some(Windowed {
        arg,
        keep_name,
        f,
        hist,
        counter,
    }))
}
