//! Native histograms as PromQL sees them: float counts in sparse exponential buckets (or
//! custom bounds), with Prometheus's semantics for bucket bounds, addition across schemas
//! and zero thresholds, scaling, counter-reset detection and compaction.
//!
//! Buckets are kept as Prometheus keeps them (spans of consecutive bucket indexes plus one
//! absolute count per bucket), so that encoders and decoders of its wire and storage formats
//! map one to one. Arithmetic goes through a sorted `(index, count)` list: simpler to get
//! right than merging spans in place, and histograms have few buckets.

/// The schema of histograms with custom bucket bounds (`custom_values`), as Prometheus's.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// The exponential schemas Prometheus defines (resolution `2^(2^-schema)`).
pub const MIN_SCHEMA: i32 = -4;
pub const MAX_SCHEMA: i32 = 8;

/// What the producer says about a counter reset before this sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    /// Nothing known: a reader compares with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened.
    CounterReset,
    /// Definitely no counter reset.
    NotCounterReset,
    /// A gauge histogram: resets do not apply.
    Gauge,
}

impl CounterResetHint {
    /// Prometheus's number for the hint, as its WAL records and remote write carry it.
    pub fn code(self) -> u8 {
        match self {
            CounterResetHint::Unknown => 0,
            CounterResetHint::CounterReset => 1,
            CounterResetHint::NotCounterReset => 2,
            CounterResetHint::Gauge => 3,
        }
    }

    /// The hint Prometheus numbers `c`; `None` for a number it does not define.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => CounterResetHint::Unknown,
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => return None,
        })
    }
}

/// A run of `length` consecutive buckets starting `offset` indexes after the previous run's
/// end (after index 0 for the first run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// A native histogram with float counts: what PromQL computes with.
#[derive(Debug, Clone, Default)]
pub struct FloatHistogram {
    pub hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    /// Absolute count per bucket, in span order.
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema [`CUSTOM_BUCKETS_SCHEMA`] only), sorted;
    /// the last bucket's upper bound is +Inf and not listed.
    pub custom_values: Vec<f64>,
}

/// One native histogram sample of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSample {
    pub t: i64,
    /// Shared: a query hands the same sample to many steps and functions.
    pub h: std::sync::Arc<FloatHistogram>,
}

impl HistogramSample {
    /// A staleness marker written into a histogram series (its sum is the stale NaN).
    pub fn is_stale(&self) -> bool {
        crate::sample::is_stale_nan(self.h.sum)
    }
}

impl PartialEq for FloatHistogram {
    fn eq(&self, other: &Self) -> bool {
        self.same_as(other) && self.hint == other.hint
    }
}

/// The result of adding or subtracting two histograms.
#[derive(Debug, Clone)]
pub struct Combined {
    pub h: FloatHistogram,
    /// One side said "counter reset" and the other "not a reset": the result's hint is
    /// unknown, and PromQL warns.
    pub collision: bool,
    /// Custom bucket bounds differed and were reduced to the ones both share.
    pub reconciled_bounds: bool,
}

/// The hint of a sum or difference: equal hints stay; a gauge makes a gauge; an unknown
/// makes unknown; reset with not-reset collides into unknown.
pub fn combined_hint(a: CounterResetHint, b: CounterResetHint) -> (CounterResetHint, bool) {
    use CounterResetHint::*;
    match (a, b) {
        _ if a == b => (a, false),
        (Gauge, _) | (_, Gauge) => (Gauge, false),
        (Unknown, _) | (_, Unknown) => (Unknown, false),
        _ => (Unknown, true),
    }
}

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HistogramError {
    #[error("cannot combine a histogram with custom buckets and one with exponential buckets")]
    MixedSchemas,
    #[error("histograms have incompatible custom buckets")]
    IncompatibleCustomBuckets,
}

/// One bucket with its bounds, as iterated for quantiles and the API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub count: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    /// The exponential (or custom) bucket index; zero bucket: 0 with `is_zero`.
    pub index: i32,
    pub is_zero: bool,
}

/// `(index, count)` pairs in index order.
type Buckets = Vec<(i32, f64)>;

/// Prometheus's checks of a histogram's counts, with its messages: no bucket may be negative,
/// and an integer histogram's count must equal the observations in its buckets (be at least
/// that when its sum is NaN). A float histogram's count is not compared, as in Prometheus:
/// rounding would make valid ones fail.
pub fn check_counts(h: &FloatHistogram, integer: bool) -> Result<(), String> {
    let mut total = h.zero_count;
    for (side, buckets) in [
        ("negative", &h.negative_buckets),
        ("positive", &h.positive_buckets),
    ] {
        for (i, &c) in buckets.iter().enumerate() {
            if c < 0.0 {
                return Err(format!(
                    "{side} side: bucket number {} has observation count of {c}: histogram has a bucket whose observation count is negative",
                    i + 1
                ));
            }
            total += c;
        }
    }
    if !integer {
        return Ok(());
    }
    if h.sum.is_nan() {
        if total > h.count {
            return Err(format!(
                "{total} observations found in buckets, but the Count field is {}: histogram's observation count should be at least the number of observations found in the buckets",
                h.count
            ));
        }
    } else if total != h.count {
        return Err(format!(
            "{total} observations found in buckets, but the Count field is {}: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)",
            h.count
        ));
    }
    Ok(())
}

/// Expand spans and their buckets into `(index, count)` in index order. Indexes past
/// [`MAX_INDEX`] either way (no real bucket is there; decoders refuse them) end the list.
pub fn expand_spans(spans: &[Span], buckets: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx = 0i64;
    let mut b = buckets.iter();
    for (k, s) in spans.iter().enumerate() {
        idx = if k == 0 {
            s.offset as i64
        } else {
            idx + s.offset as i64
        };
        for _ in 0..s.length {
            if idx.abs() > MAX_INDEX as i64 {
                return out;
            }
            match b.next() {
                Some(&c) => out.push((idx as i32, c)),
                None => return out,
            }
            idx += 1;
        }
    }
    out
}

/// The largest bucket index magnitude a valid histogram uses: past it the bounds of schema 8
/// (the finest) are beyond `f64` (2^(2^20 / 2^8) = 2^4096).
pub const MAX_INDEX: i32 = 1 << 20;

/// Whether a histogram's layout is one Prometheus defines: a known schema, a finite
/// non-negative zero threshold, span offsets keeping every index within [`MAX_INDEX`], and
/// as many buckets as the spans announce.
pub fn valid_layout(h: &FloatHistogram) -> bool {
    let schema_ok = (MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema) || h.uses_custom_buckets();
    let within = |spans: &[Span], n: usize| {
        let mut idx = 0i64;
        let mut total = 0u64;
        for (k, s) in spans.iter().enumerate() {
            idx = if k == 0 {
                s.offset as i64
            } else {
                idx + s.offset as i64
            };
            idx += s.length as i64;
            total += s.length as u64;
            if idx.abs() > MAX_INDEX as i64 + 1 {
                return false;
            }
        }
        total == n as u64
    };
    schema_ok
        && h.zero_threshold.is_finite()
        && h.zero_threshold >= 0.0
        && within(&h.positive_spans, h.positive_buckets.len())
        && within(&h.negative_spans, h.negative_buckets.len())
}

/// Spans and buckets for `(index, count)` pairs in strictly increasing index order; buckets
/// whose count is zero are dropped (as Prometheus's `Compact(0)`).
pub fn collapse_spans(pairs: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::with_capacity(pairs.len());
    let mut next: Option<i32> = None;
    for &(i, c) in pairs {
        if c == 0.0 {
            continue;
        }
        match next {
            Some(n) if n == i => spans.last_mut().expect("a span").length += 1,
            Some(n) => spans.push(Span {
                offset: i - n,
                length: 1,
            }),
            None => spans.push(Span {
                offset: i,
                length: 1,
            }),
        }
        buckets.push(c);
        next = Some(i + 1);
    }
    (spans, buckets)
}

/// The upper bound of exponential bucket `index` at `schema`: `2^(index * 2^-schema)`.
pub fn exponential_upper_bound(index: i32, schema: i32) -> f64 {
    // Decoders refuse other schemas; clamped so no input can overflow a shift here.
    let schema = schema.clamp(MIN_SCHEMA, MAX_SCHEMA);
    if schema <= 0 {
        let e = (index as i64) << (-schema);
        if e == 1024 {
            return f64::MAX;
        }
        return exp2_int(e);
    }
    let per = 1i64 << schema;
    let (whole, frac) = (
        (index as i64).div_euclid(per),
        (index as i64).rem_euclid(per),
    );
    if frac == 0 && whole == 1024 {
        // The last finite bucket ends at the largest float, as in Prometheus.
        return f64::MAX;
    }
    let f = (frac as f64 / per as f64).exp2();
    f * exp2_int(whole)
}

fn exp2_int(e: i64) -> f64 {
    if e > 1024 {
        f64::INFINITY
    } else if e < -1074 {
        0.0
    } else if e < -1022 {
        // Subnormal: scale in two steps so neither factor underflows.
        2f64.powi((e + 1022) as i32) * 2f64.powi(-1022)
    } else {
        2f64.powi(e as i32)
    }
}

/// The bucket index at `schema` whose range holds `v > 0` (upper bound inclusive).
pub fn exponential_index(v: f64, schema: i32) -> i32 {
    let schema = schema.clamp(MIN_SCHEMA, MAX_SCHEMA);
    if !(v > 0.0 && v.is_finite()) {
        return if v > 0.0 { MAX_INDEX } else { -MAX_INDEX };
    }
    // Start from the logarithm and correct by the exact bounds.
    let mut i = (v.log2() * 2f64.powi(schema)).ceil() as i32;
    while exponential_upper_bound(i, schema) < v {
        i += 1;
    }
    while i > i32::MIN && exponential_upper_bound(i - 1, schema) >= v {
        i -= 1;
    }
    i
}

/// The bucket index `index` of schema `from` falls into at the coarser schema `to`.
pub fn coarser_index(index: i32, from: i32, to: i32) -> i32 {
    let shift = (from - to).clamp(0, 31);
    (index.saturating_sub(1) >> shift).saturating_add(1)
}

/// Add `b` into `a`, both in index order, bucket by bucket.
fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + sign * y.1));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                out.push((y.0, sign * y.1));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// Re-bucket `(index, count)` pairs from schema `from` to the coarser `to`.
fn reduce(pairs: Vec<(i32, f64)>, from: i32, to: i32) -> Vec<(i32, f64)> {
    if from == to {
        return pairs;
    }
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(pairs.len());
    for (i, c) in pairs {
        let t = coarser_index(i, from, to);
        match out.last_mut() {
            Some(l) if l.0 == t => l.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    pub fn positive(&self) -> Vec<(i32, f64)> {
        expand_spans(&self.positive_spans, &self.positive_buckets)
    }

    pub fn negative(&self) -> Vec<(i32, f64)> {
        expand_spans(&self.negative_spans, &self.negative_buckets)
    }

    pub fn set_positive(&mut self, pairs: &[(i32, f64)]) {
        (self.positive_spans, self.positive_buckets) = collapse_spans(pairs);
    }

    pub fn set_negative(&mut self, pairs: &[(i32, f64)]) {
        (self.negative_spans, self.negative_buckets) = collapse_spans(pairs);
    }

    /// Bounds of positive bucket `index`: (lower, upper).
    pub fn positive_bounds(&self, index: i32) -> (f64, f64) {
        if self.uses_custom_buckets() {
            let cv = &self.custom_values;
            let i = index.max(0) as usize;
            let lower = if i == 0 {
                f64::NEG_INFINITY
            } else {
                cv.get(i - 1).copied().unwrap_or(f64::INFINITY)
            };
            let upper = cv.get(i).copied().unwrap_or(f64::INFINITY);
            return (lower, upper);
        }
        (
            exponential_upper_bound(index - 1, self.schema),
            exponential_upper_bound(index, self.schema),
        )
    }

    /// The histogram as Go's `FloatHistogram.String()` writes it (what an alert template's
    /// `{{ $value }}` prints for one): `{count:C, sum:S` then each non-empty bucket, negative
    /// ones from the lowest bound up (`[lo,hi):n`), the zero bucket if it has a count
    /// (`[-t,t]:n`), positive ones (`(lo,hi]:n`; a custom-bucket histogram's first bucket
    /// `[-Inf,b]`), then `}`. Bounds are not clipped to the zero bucket, as Go's iterators
    /// leave them.
    pub fn go_string(&self) -> String {
        use std::fmt::Write as _;
        let g = crate::format_go_float;
        let mut out = format!("{{count:{}, sum:{}", g(self.count), g(self.sum));
        let custom = self.uses_custom_buckets();
        let mut bucket = |lower: f64, upper: f64, lower_in: bool, upper_in: bool, c: f64| {
            let _ = write!(
                out,
                ", {}{},{}{}:{}",
                if lower_in { '[' } else { '(' },
                g(lower),
                g(upper),
                if upper_in { ']' } else { ')' },
                g(c)
            );
        };
        for (i, c) in self.negative().into_iter().rev() {
            if c != 0.0 {
                let (lo, up) = self.positive_bounds(i);
                let (lower, upper) = (-up, -lo);
                let (li, ui) = if custom {
                    (lower == f64::NEG_INFINITY, true)
                } else {
                    (lower < 0.0, upper > 0.0)
                };
                bucket(lower, upper, li, ui, c);
            }
        }
        if self.zero_count != 0.0 {
            bucket(
                -self.zero_threshold,
                self.zero_threshold,
                true,
                true,
                self.zero_count,
            );
        }
        for (i, c) in self.positive() {
            if c != 0.0 {
                let (lower, upper) = self.positive_bounds(i);
                let (li, ui) = if custom {
                    (lower == f64::NEG_INFINITY, true)
                } else {
                    (lower < 0.0, upper > 0.0)
                };
                bucket(lower, upper, li, ui, c);
            }
        }
        out.push('}');
        out
    }

    /// Every bucket from the lowest bound to the highest, as Prometheus's all-bucket
    /// iterator yields them: negative buckets, the zero bucket (only when it has a count),
    /// positive buckets; bounds inside the zero bucket are clipped to it.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let zt = self.zero_threshold;
        let custom = self.uses_custom_buckets();
        for (i, c) in self.negative().into_iter().rev() {
            let (lo, up) = self.positive_bounds(i);
            let (lower, mut upper) = (-up, -lo);
            if upper > -zt && upper < 0.0 {
                upper = -zt;
            }
            out.push(Bucket {
                lower,
                upper,
                count: c,
                lower_inclusive: lower < 0.0,
                upper_inclusive: upper > 0.0,
                index: i,
                is_zero: false,
            });
        }
        if !custom && self.zero_count > 0.0 {
            out.push(Bucket {
                lower: -zt,
                upper: zt,
                count: self.zero_count,
                lower_inclusive: true,
                upper_inclusive: true,
                index: 0,
                is_zero: true,
            });
        }
        for (i, c) in self.positive() {
            let (mut lower, upper) = self.positive_bounds(i);
            if !custom && lower < zt && lower > 0.0 {
                lower = zt;
            }
            out.push(Bucket {
                lower,
                upper,
                count: c,
                lower_inclusive: if custom { i == 0 } else { lower < 0.0 },
                upper_inclusive: custom || upper > 0.0,
                index: i,
                is_zero: false,
            });
        }
        out
    }

    /// Multiply every count and the sum by `f`; a negative factor makes a gauge.
    pub fn scale(&mut self, f: f64) {
        if f < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
        self.zero_count *= f;
        self.count *= f;
        self.sum *= f;
        self.positive_buckets.iter_mut().for_each(|c| *c *= f);
        self.negative_buckets.iter_mut().for_each(|c| *c *= f);
    }

    /// Divide every count and the sum by `d`. Division by zero leaves infinities or NaN in
    /// the totals and no buckets, as in Prometheus; a negative divisor makes a gauge.
    pub fn div(&mut self, d: f64) {
        self.zero_count /= d;
        self.count /= d;
        self.sum /= d;
        if d == 0.0 {
            self.positive_spans.clear();
            self.positive_buckets.clear();
            self.negative_spans.clear();
            self.negative_buckets.clear();
            return;
        }
        if d < 0.0 {
            self.hint = CounterResetHint::Gauge;
        }
        self.positive_buckets.iter_mut().for_each(|c| *c /= d);
        self.negative_buckets.iter_mut().for_each(|c| *c /= d);
    }

    /// The zero count this histogram would have with a zero bucket of at least `t`, and the
    /// threshold it would really need: `t` widened to the upper bound of any populated bucket
    /// that `t` would cut in two (own schema's bounds).
    pub fn zero_count_for_threshold(&self, mut t: f64) -> (f64, f64) {
        if t <= self.zero_threshold {
            return (self.zero_count, self.zero_threshold);
        }
        'again: loop {
            let mut count = self.zero_count;
            for (i, c) in self.positive() {
                let (lo, up) = self.positive_bounds(i);
                if lo >= t {
                    break;
                }
                count += c;
                if up > t {
                    if c != 0.0 {
                        t = up;
                    }
                    break;
                }
            }
            for (i, c) in self.negative() {
                let (lo, up) = self.positive_bounds(i);
                if lo >= t {
                    break;
                }
                count += c;
                if up > t {
                    if c != 0.0 {
                        t = up;
                        continue 'again;
                    }
                    break;
                }
            }
            return (count, t);
        }
    }

    /// This histogram's zero count and buckets with its zero bucket widened to `t` (buckets
    /// inside it folded in), then brought to the coarser or equal `schema`.
    fn reconciled(&self, schema: i32, t: f64) -> (f64, Buckets, Buckets) {
        let (zero, _) = self.zero_count_for_threshold(t);
        let outside = |v: Vec<(i32, f64)>| -> Vec<(i32, f64)> {
            if t <= self.zero_threshold {
                return v;
            }
            v.into_iter()
                .filter(|&(i, _)| self.positive_bounds(i).0 >= t)
                .collect()
        };
        (
            zero,
            reduce(outside(self.positive()), self.schema, schema),
            reduce(outside(self.negative()), self.schema, schema),
        )
    }

    /// `self + sign * other`, reconciling zero thresholds (to the wider, widened further so
    /// as not to split a populated bucket) and schemas (to the coarser). Custom bounds that
    /// differ are reconciled to the bounds both share (`Ok((h, true))`), as current
    /// Prometheus does. The hint follows [`combined_hint`]; a collision of reset and not-reset
    /// comes back as [`Combined::collision`].
    fn combine(&self, other: &FloatHistogram, sign: f64) -> Result<Combined, HistogramError> {
        let (hint, collision) = combined_hint(self.hint, other.hint);
        match (self.uses_custom_buckets(), other.uses_custom_buckets()) {
            (true, true) => {
                let mut out = self.clone();
                out.hint = hint;
                out.count += sign * other.count;
                out.sum += sign * other.sum;
                out.negative_spans.clear();
                out.negative_buckets.clear();
                if self.custom_values == other.custom_values {
                    out.set_positive(&merge(&self.positive(), &other.positive(), sign));
                    return Ok(Combined {
                        h: out,
                        collision,
                        reconciled_bounds: false,
                    });
                }
                let common = common_bounds(self, other);
                let slots: Vec<f64> = self
                    .onto_bounds(&common)
                    .into_iter()
                    .zip(other.onto_bounds(&common))
                    .map(|(a, b)| a + sign * b)
                    .collect();
                let pairs: Vec<(i32, f64)> = slots
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| (i as i32, c))
                    .collect();
                out.custom_values = common;
                out.set_positive(&pairs);
                return Ok(Combined {
                    h: out,
                    collision,
                    reconciled_bounds: true,
                });
            }
            (false, false) => {}
            _ => return Err(HistogramError::MixedSchemas),
        }
        let schema = self.schema.min(other.schema);
        // Widen until neither histogram needs more.
        let mut t = self.zero_threshold.max(other.zero_threshold);
        loop {
            let (_, a) = self.zero_count_for_threshold(t);
            let (_, b) = other.zero_count_for_threshold(a);
            // Only a strictly wider threshold goes round again (a NaN never does).
            if b.partial_cmp(&t) != Some(std::cmp::Ordering::Greater) {
                break;
            }
            t = b;
        }
        let (az, ap, an) = self.reconciled(schema, t);
        let (bz, bp, bn) = other.reconciled(schema, t);
        let mut out = FloatHistogram {
            hint,
            schema,
            zero_threshold: t,
            zero_count: az + sign * bz,
            count: self.count + sign * other.count,
            sum: self.sum + sign * other.sum,
            ..Default::default()
        };
        out.set_positive(&merge(&ap, &bp, sign));
        out.set_negative(&merge(&an, &bn, sign));
        Ok(Combined {
            h: out,
            collision,
            reconciled_bounds: false,
        })
    }

    /// The sum of `hs` with every field and bucket compensated (Kahan-Neumaier), as
    /// Prometheus sums histograms in `sum`, `avg` and `sum_over_time`: all are first brought
    /// to the coarsest schema and the widest zero bucket any needs, then added index by index.
    /// Custom bounds that differ fall back to pairwise addition (reconciling bounds).
    pub fn kahan_sum(hs: &[&FloatHistogram]) -> Result<Combined, HistogramError> {
        let Some(first) = hs.first() else {
            return Ok(Combined {
                h: FloatHistogram::default(),
                collision: false,
                reconciled_bounds: false,
            });
        };
        let mut hint = first.hint;
        let mut collision = false;
        for h in &hs[1..] {
            let (x, c) = combined_hint(hint, h.hint);
            hint = x;
            collision |= c;
        }
        let custom = first.uses_custom_buckets();
        if hs.iter().any(|h| h.uses_custom_buckets() != custom) {
            return Err(HistogramError::MixedSchemas);
        }
        if custom && hs.iter().any(|h| h.custom_values != first.custom_values) {
            let mut acc = (*first).clone();
            let mut reconciled = false;
            for h in &hs[1..] {
                let c = acc.add_checked(h)?;
                reconciled |= c.reconciled_bounds;
                acc = c.h;
            }
            acc.hint = hint;
            return Ok(Combined {
                h: acc,
                collision,
                reconciled_bounds: reconciled,
            });
        }
        let schema = hs.iter().map(|h| h.schema).min().unwrap_or(0);
        let mut t = hs.iter().map(|h| h.zero_threshold).fold(0.0, f64::max);
        if !custom {
            // Widen until no histogram needs more.
            loop {
                let widened = hs
                    .iter()
                    .map(|h| h.zero_count_for_threshold(t).1)
                    .fold(t, f64::max);
                if widened.partial_cmp(&t) != Some(std::cmp::Ordering::Greater) {
                    break;
                }
                t = widened;
            }
        }
        let inc = |acc: &mut (f64, f64), x: f64| *acc = kahan_inc(x, acc.0, acc.1);
        let (mut count, mut sum, mut zero) = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0));
        let mut pos: std::collections::BTreeMap<i32, (f64, f64)> = Default::default();
        let mut neg: std::collections::BTreeMap<i32, (f64, f64)> = Default::default();
        for h in hs {
            inc(&mut count, h.count);
            inc(&mut sum, h.sum);
            let (z, p, n) = if custom {
                (0.0, h.positive(), Vec::new())
            } else {
                h.reconciled(schema, t)
            };
            inc(&mut zero, z);
            for (i, c) in p {
                inc(pos.entry(i).or_default(), c);
            }
            for (i, c) in n {
                inc(neg.entry(i).or_default(), c);
            }
        }
        let done = |a: (f64, f64)| if a.0.is_infinite() { a.0 } else { a.0 + a.1 };
        let mut out = FloatHistogram {
            hint,
            schema: first.schema.min(schema),
            zero_threshold: if custom { 0.0 } else { t },
            zero_count: done(zero),
            count: done(count),
            sum: done(sum),
            custom_values: if custom {
                first.custom_values.clone()
            } else {
                Vec::new()
            },
            ..Default::default()
        };
        let pairs = |m: std::collections::BTreeMap<i32, (f64, f64)>| -> Vec<(i32, f64)> {
            m.into_iter().map(|(i, a)| (i, done(a))).collect()
        };
        out.set_positive(&pairs(pos));
        out.set_negative(&pairs(neg));
        Ok(Combined {
            h: out,
            collision,
            reconciled_bounds: false,
        })
    }

    /// Whether any count, the sum or any bucket is infinite.
    pub fn has_infinity(&self) -> bool {
        self.count.is_infinite()
            || self.sum.is_infinite()
            || self.zero_count.is_infinite()
            || self.positive_buckets.iter().any(|c| c.is_infinite())
            || self.negative_buckets.iter().any(|c| c.is_infinite())
    }

    /// PromQL's trim operators: keep the observations below `r` (`upper`, `</`) or above it
    /// (`>/`). Buckets wholly on the removed side go, the one `r` cuts is interpolated
    /// (log-linearly in exponential buckets, linearly in custom ones and the zero bucket), and
    /// count and sum are estimated again from what is kept, each bucket at its middle
    /// (geometric for exponential buckets). A histogram nothing is removed from comes back
    /// as it was, sum included. As Prometheus 3.11's `TrimBuckets`.
    pub fn trim(&self, r: f64, upper: bool) -> FloatHistogram {
        let mut out = self.clone();
        let custom = self.uses_custom_buckets();
        let (mut cnt, mut sum, mut changed) = (0.0f64, 0.0f64, false);
        let (mut has_pos, mut has_neg) = (false, false);
        // The representative value of observations in [a, b], for the sum.
        let rep = |a: f64, b: f64, positive: bool| -> f64 {
            if a.is_infinite() {
                if b.is_infinite() {
                    0.0
                } else if b > 0.0 {
                    b / 2.0
                } else {
                    b
                }
            } else if b.is_infinite() {
                a
            } else if custom {
                (a + b) / 2.0
            } else {
                let g = (a * b).abs().sqrt();
                if positive { g } else { -g }
            }
        };
        // How many of `c` observations in [l, u] lie below `r`.
        let below = |l: f64, u: f64, c: f64, positive: bool| -> f64 {
            if r <= l {
                return 0.0;
            }
            if r >= u {
                return c;
            }
            if custom {
                c * (r - l) / (u - l)
            } else if positive {
                c * (r.log2() - l.log2()) / (u.log2() - l.log2())
            } else {
                let (la, ua, ra) = (l.abs().log2(), u.abs().log2(), r.abs().log2());
                c * (1.0 - (ra - ua) / (la - ua))
            }
        };
        // The kept count and its representative for a bucket `r` cuts.
        let cut = |l: f64, u: f64, c: f64, positive: bool| -> (f64, f64) {
            if l == f64::NEG_INFINITY {
                return if upper {
                    if r > 0.0 && u > 0.0 && u.is_finite() {
                        (c * r / u, r / 2.0)
                    } else if u <= 0.0 {
                        (c, r)
                    } else {
                        (0.0, 0.0)
                    }
                } else if r >= 0.0 && u > r && u.is_finite() {
                    (c * (1.0 - r / u), (r + u) / 2.0)
                } else {
                    (0.0, 0.0)
                };
            }
            if u == f64::INFINITY {
                return if upper { (0.0, 0.0) } else { (c, r) };
            }
            let under = below(l, u, c, positive);
            if upper {
                (under, rep(l, r, positive))
            } else {
                (c - under, rep(r, u, positive))
            }
        };
        let mut visit = |spans: &[Span], buckets: &mut [f64], positive: bool| {
            let idx: Vec<i32> = expand_spans(spans, &vec![0.0; buckets.len()])
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            for (slot, &i) in idx.iter().enumerate() {
                let c = buckets[slot];
                if c == 0.0 {
                    continue;
                }
                if positive {
                    has_pos = true;
                } else {
                    has_neg = true;
                }
                let (lo, up) = self.positive_bounds(i);
                let (l, u) = if positive { (lo, up) } else { (-up, -lo) };
                let keep_all = if upper { u <= r } else { l >= r };
                let partial = if upper { l < r } else { u > r };
                if keep_all {
                    cnt += c;
                    sum += c * rep(l, u, positive);
                } else if partial {
                    let (k, m) = cut(l, u, c, positive);
                    cnt += k;
                    sum += k * m;
                    if k != c {
                        buckets[slot] = k;
                        changed = true;
                    }
                } else {
                    buckets[slot] = 0.0;
                    changed = true;
                }
            }
        };
        visit(&self.positive_spans, &mut out.positive_buckets, true);
        visit(&self.negative_spans, &mut out.negative_buckets, false);
        if self.zero_count > 0.0 && !custom {
            let zt = self.zero_threshold;
            let (mut lo, mut hi) = (-zt, zt);
            if has_neg && !has_pos {
                hi = 0.0;
            } else if has_pos && !has_neg {
                lo = 0.0;
            }
            let zc = self.zero_count;
            let (k, m) = if upper {
                if r <= lo {
                    (0.0, 0.0)
                } else if r >= hi {
                    (zc, (lo + hi) / 2.0)
                } else {
                    (zc * (r - lo) / (hi - lo), (lo + r) / 2.0)
                }
            } else if r <= lo {
                (zc, (lo + hi) / 2.0)
            } else if r >= hi {
                (0.0, 0.0)
            } else {
                (zc * (hi - r) / (hi - lo), (r + hi) / 2.0)
            };
            if k != zc {
                out.zero_count = k;
                changed = true;
            }
            cnt += k;
            sum += k * m;
        }
        if !changed {
            return self.clone();
        }
        out.count = cnt;
        out.sum = sum;
        out.compacted()
    }

    /// `self + other` with what PromQL reports about it.
    pub fn add_checked(&self, other: &FloatHistogram) -> Result<Combined, HistogramError> {
        self.combine(other, 1.0)
    }

    /// `self - other` with what PromQL reports about it.
    pub fn sub_checked(&self, other: &FloatHistogram) -> Result<Combined, HistogramError> {
        self.combine(other, -1.0)
    }

    pub fn add(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        Ok(self.combine(other, 1.0)?.h)
    }

    pub fn sub(&self, other: &FloatHistogram) -> Result<FloatHistogram, HistogramError> {
        Ok(self.combine(other, -1.0)?.h)
    }

    /// Whether `self`, following `prev`, shows a counter reset: a count that went down
    /// (total, zero bucket or any bucket once both are at the same schema and threshold), a
    /// finer schema than before, a narrower zero bucket, or different custom bounds.
    pub fn detect_reset(&self, prev: &FloatHistogram) -> bool {
        match self.hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            _ => {}
        }
        if self.count < prev.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !prev.uses_custom_buckets() {
                return true;
            }
            if self.custom_values != prev.custom_values {
                // Compare counts between the bounds both share.
                let common = common_bounds(self, prev);
                return self
                    .onto_bounds(&common)
                    .iter()
                    .zip(prev.onto_bounds(&common))
                    .any(|(c, p)| *c < p);
            }
            return bucket_decreased(&prev.positive(), &self.positive());
        }
        if self.schema > prev.schema || self.zero_threshold < prev.zero_threshold {
            return true;
        }
        let (pz, t) = prev.zero_count_for_threshold(self.zero_threshold);
        if t != self.zero_threshold || self.zero_count < pz {
            return true;
        }
        let (_, pp, pn) = prev.reconciled(self.schema, self.zero_threshold);
        bucket_decreased(&pp, &self.positive()) || bucket_decreased(&pn, &self.negative())
    }

    /// This custom-bucket histogram's counts on coarser `bounds` (a subset of its own, as
    /// [`common_bounds`] gives): one slot per bound plus the +Inf slot.
    fn onto_bounds(&self, bounds: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; bounds.len() + 1];
        for (k, c) in self.positive() {
            let slot = match self.custom_values.get(k.max(0) as usize) {
                Some(&u) => bounds.iter().position(|&b| b >= u).unwrap_or(bounds.len()),
                None => bounds.len(),
            };
            out[slot] += c;
        }
        out
    }

    /// Merge buckets down to the coarser exponential schema `to` (a finer or equal one, or
    /// custom buckets, leave it as it is), as Prometheus's `ReduceResolution`.
    pub fn reduce_resolution(&mut self, to: i32) {
        if self.uses_custom_buckets() || to >= self.schema {
            return;
        }
        let pos = reduce(self.positive(), self.schema, to);
        let neg = reduce(self.negative(), self.schema, to);
        self.set_positive(&pos);
        self.set_negative(&neg);
        self.schema = to;
    }

    /// The same histogram with buckets whose count is zero removed and spans merged.
    pub fn compacted(&self) -> FloatHistogram {
        let mut out = self.clone();
        out.set_positive(&self.positive());
        out.set_negative(&self.negative());
        out
    }

    /// Equal in every field that carries meaning (counts compared bit for bit, so NaN sums
    /// are equal to NaN sums; buckets compared after compaction). The hint is not compared.
    pub fn same_as(&self, other: &FloatHistogram) -> bool {
        let eq = |a: f64, b: f64| a.to_bits() == b.to_bits() || a == b;
        let pairs_eq = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
            let a: Vec<_> = a.into_iter().filter(|x| x.1 != 0.0).collect();
            let b: Vec<_> = b.into_iter().filter(|x| x.1 != 0.0).collect();
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && eq(x.1, y.1))
        };
        self.schema == other.schema
            && eq(self.zero_threshold, other.zero_threshold)
            && eq(self.zero_count, other.zero_count)
            && eq(self.count, other.count)
            && eq(self.sum, other.sum)
            && self.custom_values == other.custom_values
            && pairs_eq(self.positive(), other.positive())
            && pairs_eq(self.negative(), other.negative())
    }
}

/// The custom bucket bounds two histograms share: where Prometheus reconciles differing ones.
fn common_bounds(a: &FloatHistogram, b: &FloatHistogram) -> Vec<f64> {
    a.custom_values
        .iter()
        .copied()
        .filter(|v| b.custom_values.contains(v))
        .collect()
}

/// Absolute bucket counts from integer buckets given as deltas from the bucket before (how
/// Prometheus's integer histograms, its remote write and its chunks, carry them).
pub fn absolute_from_deltas(deltas: &[i64]) -> Vec<f64> {
    let mut cur = 0i64;
    deltas
        .iter()
        .map(|d| {
            cur = cur.wrapping_add(*d);
            cur as f64
        })
        .collect()
}

/// Neumaier's compensated addition, as Prometheus's `kahansum.Inc`: `(sum, compensation)`.
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
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

/// Whether any bucket of `prev` has a higher count than the same bucket of `cur` (a bucket
/// that disappeared counts as zero).
fn bucket_decreased(prev: &[(i32, f64)], cur: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while j < cur.len() && cur[j].0 < i {
            j += 1;
        }
        let now = if j < cur.len() && cur[j].0 == i {
            cur[j].1
        } else {
            0.0
        };
        if now < c {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, zero: f64, pos: &[(i32, f64)]) -> FloatHistogram {
        let mut h = FloatHistogram {
            schema,
            zero_count: zero,
            zero_threshold: 0.001,
            ..Default::default()
        };
        h.set_positive(pos);
        h.count = zero + pos.iter().map(|p| p.1).sum::<f64>();
        h
    }

    /// Go's `FloatHistogram.String()`, bucket by bucket: expectations written from its
    /// algorithm (negative buckets reversed, the zero bucket, positive ones, brackets by
    /// inclusivity). Bounds at positive schemas come from `exp2`, where Go reads a table
    /// whose entries can differ in the last digit (docs/status.md).
    #[test]
    fn prints_as_go_prints_it() {
        let mut x = h(0, 2.0, &[(0, 1.0), (1, 3.0), (3, 0.0)]);
        x.set_negative(&[(0, 1.0), (2, 4.0)]);
        x.count += 5.0;
        x.sum = 3.5;
        // Negative buckets from the most negative up; empty ones left out.
        assert_eq!(
            x.go_string(),
            "{count:11, sum:3.5, [-4,-2):4, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:3}"
        );
        // A zero threshold of 0 prints its negated bound as Go prints -0.
        x.zero_threshold = 0.0;
        assert!(x.go_string().contains(", [-0,0]:2, "), "{}", x.go_string());
        let mut c = FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            custom_values: vec![0.1, 1.0],
            count: 6.0,
            sum: 2.25,
            ..Default::default()
        };
        c.set_positive(&[(0, 1.0), (1, 0.0), (2, 5.0)]);
        assert_eq!(
            c.go_string(),
            "{count:6, sum:2.25, [-Inf,0.1]:1, (1,+Inf]:5}"
        );
        assert_eq!(FloatHistogram::default().go_string(), "{count:0, sum:0}");
    }

    #[test]
    fn bounds_follow_the_schema() {
        assert_eq!(exponential_upper_bound(0, 0), 1.0);
        assert_eq!(exponential_upper_bound(3, 0), 8.0);
        assert_eq!(exponential_upper_bound(-2, 0), 0.25);
        assert_eq!(exponential_upper_bound(1, -1), 4.0);
        assert!((exponential_upper_bound(1, 1) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(exponential_upper_bound(2, 1), 2.0);
        for s in MIN_SCHEMA..=MAX_SCHEMA {
            for v in [0.3, 1.0, 1.5, 7.0, 1e6] {
                let i = exponential_index(v, s);
                assert!(
                    exponential_upper_bound(i, s) >= v && exponential_upper_bound(i - 1, s) < v
                );
            }
        }
    }

    #[test]
    fn spans_round_trip() {
        let pairs = vec![(-2, 1.0), (-1, 2.0), (3, 4.0)];
        let (s, b) = collapse_spans(&pairs);
        assert_eq!(
            s,
            vec![
                Span {
                    offset: -2,
                    length: 2
                },
                Span {
                    offset: 3,
                    length: 1
                }
            ]
        );
        assert_eq!(expand_spans(&s, &b), pairs);
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        // Schema 1 buckets 1 and 2 both fall into schema 0 bucket 1.
        let a = h(1, 0.0, &[(1, 1.0), (2, 2.0), (3, 4.0)]);
        let b = h(0, 1.0, &[(1, 10.0)]);
        let s = a.add(&b).unwrap();
        assert_eq!(s.schema, 0);
        assert_eq!(s.positive(), vec![(1, 13.0), (2, 4.0)]);
        assert_eq!(s.zero_count, 1.0);
        assert_eq!(s.count, 18.0);
        let d = s.sub(&b).unwrap();
        assert_eq!(d.positive(), vec![(1, 3.0), (2, 4.0)]);
    }

    #[test]
    fn a_wider_zero_bucket_absorbs_buckets() {
        let a = h(0, 0.0, &[(-3, 1.0), (0, 2.0), (1, 4.0)]);
        let mut b = h(0, 1.0, &[]);
        b.zero_threshold = 1.0;
        let s = a.add(&b).unwrap();
        assert_eq!(s.zero_threshold, 1.0);
        assert_eq!(s.zero_count, 4.0);
        assert_eq!(s.positive(), vec![(1, 4.0)]);
    }

    #[test]
    fn resets_are_detected_per_bucket() {
        let a = h(0, 0.0, &[(1, 2.0), (2, 2.0)]);
        let b = h(0, 0.0, &[(1, 1.0), (2, 5.0)]);
        assert!(b.detect_reset(&a), "bucket 1 went down");
        assert!(!a.detect_reset(&h(0, 0.0, &[(1, 1.0)])));
        assert!(h(1, 0.0, &[(1, 9.0)]).detect_reset(&a), "finer schema");
        let custom = |cv: &[f64], pos: &[(i32, f64)]| {
            let mut h = FloatHistogram {
                schema: CUSTOM_BUCKETS_SCHEMA,
                custom_values: cv.to_vec(),
                ..Default::default()
            };
            h.set_positive(pos);
            h.count = pos.iter().map(|p| p.1).sum();
            h
        };
        // Different bounds are compared over the bounds both have (here 1 and +Inf).
        let prev = custom(&[1.0], &[(0, 2.0), (1, 1.0)]);
        assert!(custom(&[1.0, 2.0], &[(0, 1.0), (1, 5.0)]).detect_reset(&prev));
        assert!(!custom(&[1.0, 2.0], &[(0, 2.0), (2, 1.0)]).detect_reset(&prev));
        assert!(a.add(&custom(&[1.0], &[])).is_err());
    }

    #[test]
    fn trim_interpolates_the_bucket_it_cuts_and_estimates_the_sum_again() {
        // Buckets (0.5,1]: 2, (1,2]: 4, zero bucket 1 (positive only, so [0, zt]).
        let mut x = h(0, 1.0, &[(0, 2.0), (1, 4.0)]);
        x.sum = 100.0;
        // Cutting at sqrt(2) keeps half of (1,2] (log-linear), everything below.
        let below = x.trim(2f64.sqrt(), true);
        assert!((below.count - 5.0).abs() < 1e-9, "{below:?}");
        let want_sum = 2.0 * 0.5f64.sqrt() + 2.0 * 2f64.sqrt().sqrt() + 1.0 * 0.0005;
        assert!((below.sum - want_sum).abs() < 1e-9, "{below:?}");
        // Nothing removed: the histogram comes back as it was, its sum untouched.
        assert_eq!(x.trim(f64::INFINITY, true).sum, 100.0);
        assert_eq!(x.trim(f64::NEG_INFINITY, false).sum, 100.0);
        // Everything removed: empty, same layout parameters.
        let none = x.trim(f64::NEG_INFINITY, true);
        assert_eq!((none.count, none.sum, none.schema), (0.0, 0.0, 0));
        assert!(none.positive().is_empty());
    }

    #[test]
    fn hostile_layouts_neither_hang_nor_overflow() {
        // NaN zero thresholds: the widening loop ends.
        let mut a = h(0, 1.0, &[(1, 1.0)]);
        a.zero_threshold = f64::NAN;
        let b = a.clone();
        let _ = a.add(&b);
        let _ = FloatHistogram::kahan_sum(&[&a, &b]);
        assert!(!valid_layout(&a));
        // Schemas and indexes far outside Prometheus's: no shift or index overflows.
        let mut w = h(0, 0.0, &[]);
        w.schema = 40;
        w.positive_spans = vec![Span {
            offset: i32::MAX,
            length: 3,
        }];
        w.positive_buckets = vec![1.0; 3];
        assert!(!valid_layout(&w));
        let _ = w.buckets();
        let _ = w.add(&h(0, 0.0, &[(1, 1.0)]));
        let _ = exponential_upper_bound(i32::MIN, i32::MIN);
        assert_eq!(exponential_index(f64::INFINITY, 8), MAX_INDEX);
    }
}
