//! `--enable-feature=otlp-deltatocumulative`: the OTLP receiver sums each stream's delta
//! points into cumulative ones before they are translated, as Prometheus does with
//! OpenTelemetry's `deltatocumulative` processor (its default settings: a stream idle for five
//! minutes is forgotten, and its next point starts again from zero).
//!
//! A stream is what the processor calls one: the resource's attributes, the scope (name,
//! version, attributes), the metric (name, unit, kind, monotonicity) and the point's
//! attributes. A point at or before its stream's newest time, or starting before the stream
//! did, is dropped (a repeat or out of order), as are new streams past [`MAX_STREAMS`]; the
//! request goes on with the rest. Sums add up; explicit-bucket histograms add bucket by bucket
//! while their bounds stay, and start again from a point whose bounds changed; exponential
//! histograms are merged at the coarser of the two scales, made coarser still while a side
//! would hold more than [`MAX_BUCKETS`] buckets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message;

use crate::otlp_proto::{self as p, metric, number_data_point};

/// A stream with no point for this long is forgotten (the processor's `max_stale`).
const MAX_STALE: Duration = Duration::from_secs(5 * 60);
/// How often forgotten streams are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// vigil's own bound on the streams held (Prometheus sets none): a sender inventing streams
/// cannot grow the receiver's memory without end. Points of new streams past it are dropped.
/// A stream costs its 16-byte key and its state (a histogram's buckets), never its labels.
pub const MAX_STREAMS: usize = 1_000_000;
/// The most buckets a side of an exponential histogram's sum may span (the processor's).
const MAX_BUCKETS: usize = 160;
/// vigil's own bound on the memory of all streams' state: explicit-bucket histograms may
/// have any number of bounds, so the stream count alone does not bound it. Points of new
/// streams past it are dropped.
pub const MAX_STATE_BYTES: usize = 256 << 20;

/// The running state of every delta stream seen.
pub struct DeltaToCumulative {
    state: Mutex<State>,
    max_stale: Duration,
}

struct State {
    /// Keyed by a 128-bit hash of the stream's identity, seeded at random per process (as the
    /// processor keys streams by hashes): two streams would have to collide in 128 bits to be
    /// summed together.
    streams: HashMap<u128, Stream>,
    seed: u64,
    swept: Instant,
    /// About how much memory the streams' state takes ([`Acc::size`]), and its bound
    /// ([`MAX_STATE_BYTES`]; smaller in tests).
    bytes: usize,
    max_bytes: usize,
    /// Points dropped in the request being converted.
    dropped: usize,
}

struct Stream {
    start_ns: u64,
    last_ns: u64,
    seen: Instant,
    acc: Acc,
}

impl Acc {
    /// About the memory this state and its stream's entry take.
    fn size(&self) -> usize {
        const ENTRY: usize = 96;
        ENTRY
            + match self {
                Acc::Int(_) | Acc::Double(_) => 0,
                Acc::Histogram { bounds, counts, .. } => 8 * (bounds.len() + counts.len()),
                Acc::Exponential(h) => {
                    std::mem::size_of::<p::ExponentialHistogramDataPoint>()
                        + 8 * [&h.positive, &h.negative]
                            .iter()
                            .map(|b| b.as_ref().map_or(0, |b| b.bucket_counts.len()))
                            .sum::<usize>()
                }
            }
    }
}

/// A stream's running total: only what the sum needs (no attributes or exemplars).
#[derive(Clone)]
enum Acc {
    Int(i64),
    Double(f64),
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: Option<f64>,
    },
    Exponential(Box<p::ExponentialHistogramDataPoint>),
}

impl Default for DeltaToCumulative {
    fn default() -> Self {
        Self::new(MAX_STALE)
    }
}

impl DeltaToCumulative {
    pub fn new(max_stale: Duration) -> Self {
        use std::hash::BuildHasher;
        DeltaToCumulative {
            state: Mutex::new(State {
                streams: HashMap::new(),
                seed: std::collections::hash_map::RandomState::new().hash_one(0xde17a_u64),
                swept: Instant::now(),
                bytes: 0,
                max_bytes: MAX_STATE_BYTES,
                dropped: 0,
            }),
            max_stale,
        }
    }

    /// With its state bounded at `max_bytes` instead of [`MAX_STATE_BYTES`].
    #[cfg(test)]
    fn with_max_bytes(max_bytes: usize) -> Self {
        let d = Self::default();
        d.state.lock().max_bytes = max_bytes;
        d
    }

    /// Streams held.
    pub fn streams(&self) -> usize {
        self.state.lock().streams.len()
    }

    /// Make every delta metric of `req` cumulative, in place; returns how many points were
    /// dropped. A delta metric left with no point (none sent, or all dropped) is removed, as
    /// the processor removes it, rather than failing the request as an empty metric would
    /// (after the other metrics' points were counted).
    pub fn convert(&self, req: &mut p::ExportMetricsServiceRequest) -> usize {
        let mut st = self.state.lock();
        let now = Instant::now();
        if now.duration_since(st.swept) >= SWEEP_EVERY.min(self.max_stale) {
            let stale = self.max_stale;
            let mut freed = 0;
            st.streams.retain(|_, s| {
                let keep = now.duration_since(s.seen) < stale;
                if !keep {
                    freed += s.acc.size();
                }
                keep
            });
            st.bytes = st.bytes.saturating_sub(freed);
            st.swept = now;
        }
        st.dropped = 0;
        for rm in &mut req.resource_metrics {
            let mut resource = Vec::new();
            put_attrs(
                &mut resource,
                rm.resource.as_ref().map_or(&[][..], |r| &r.attributes),
            );
            for sm in &mut rm.scope_metrics {
                if !sm.metrics.iter().any(is_delta) {
                    continue;
                }
                // The resource and scope once, as a digest: a stream's key is built from it,
                // the metric and the point's attributes, whatever their size.
                let mut scope = resource.clone();
                match &sm.scope {
                    Some(s) => {
                        put(&mut scope, s.name.as_bytes());
                        put(&mut scope, s.version.as_bytes());
                        put_attrs(&mut scope, &s.attributes);
                    }
                    None => put(&mut scope, b"-"),
                }
                let digest = twox_hash::XxHash3_128::oneshot_with_seed(st.seed, &scope);
                sm.metrics
                    .retain_mut(|m| !is_delta(m) || st.metric(digest, m, now) > 0);
            }
        }
        st.dropped
    }
}

fn is_delta(m: &p::Metric) -> bool {
    match &m.data {
        Some(metric::Data::Sum(s)) => s.aggregation_temporality == p::TEMPORALITY_DELTA,
        Some(metric::Data::Histogram(h)) => h.aggregation_temporality == p::TEMPORALITY_DELTA,
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.aggregation_temporality == p::TEMPORALITY_DELTA
        }
        _ => false,
    }
}

/// A point's place in its stream.
enum Step {
    /// The stream's first point.
    New,
    /// A point after the stream's newest.
    Next,
    /// Dropped.
    Drop,
}

impl State {
    /// Make one delta metric cumulative; returns the points it has left.
    fn metric(&mut self, scope: u128, m: &mut p::Metric, now: Instant) -> usize {
        let mut id = scope.to_le_bytes().to_vec();
        put(&mut id, m.name.as_bytes());
        put(&mut id, m.unit.as_bytes());
        match &mut m.data {
            Some(metric::Data::Sum(s)) => {
                put(&mut id, if s.is_monotonic { b"sum+" } else { b"sum" });
                s.data_points.retain_mut(|dp| {
                    let key = self.key(&id, &dp.attributes);
                    let value = dp.value;
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        stale(dp.flags),
                        now,
                        |acc| {
                            Ok(match (acc, value) {
                                (Some(Acc::Int(a)), Some(number_data_point::Value::AsInt(b))) => {
                                    Acc::Int(a.wrapping_add(b))
                                }
                                (
                                    Some(Acc::Int(a)),
                                    Some(number_data_point::Value::AsDouble(b)),
                                ) => Acc::Double(*a as f64 + b),
                                (Some(Acc::Double(a)), v) => Acc::Double(a + as_f64(v)),
                                // A point with no value adds nothing.
                                (Some(Acc::Int(a)), None) => Acc::Int(*a),
                                (_, Some(number_data_point::Value::AsInt(b))) => Acc::Int(b),
                                (_, v) => Acc::Double(as_f64(v)),
                            })
                        },
                    );
                    match kept {
                        Some((start, acc)) => {
                            dp.start_time_unix_nano = start;
                            match acc {
                                Some(Acc::Int(v)) => {
                                    dp.value = Some(number_data_point::Value::AsInt(v))
                                }
                                Some(Acc::Double(v)) => {
                                    dp.value = Some(number_data_point::Value::AsDouble(v))
                                }
                                _ => {}
                            }
                            true
                        }
                        None => false,
                    }
                });
                s.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                s.data_points.len()
            }
            Some(metric::Data::Histogram(h)) => {
                put(&mut id, b"histogram");
                h.data_points.retain_mut(|dp| {
                    let key = self.key(&id, &dp.attributes);
                    let fresh = || Acc::Histogram {
                        bounds: dp.explicit_bounds.clone(),
                        counts: dp.bucket_counts.clone(),
                        count: dp.count,
                        sum: dp.sum,
                    };
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        stale(dp.flags),
                        now,
                        |acc| {
                            Ok(match acc {
                                Some(Acc::Histogram {
                                    bounds,
                                    counts,
                                    count,
                                    sum,
                                }) if *bounds == dp.explicit_bounds
                                    && counts.len() == dp.bucket_counts.len() =>
                                {
                                    Acc::Histogram {
                                        bounds: bounds.clone(),
                                        counts: counts
                                            .iter()
                                            .zip(&dp.bucket_counts)
                                            .map(|(a, b)| a.saturating_add(*b))
                                            .collect(),
                                        count: count.saturating_add(dp.count),
                                        sum: sum.zip(dp.sum).map(|(a, b)| a + b),
                                    }
                                }
                                Some(_) => return Err(fresh()),
                                None => fresh(),
                            })
                        },
                    );
                    match kept {
                        Some((start, acc)) => {
                            dp.start_time_unix_nano = start;
                            if let Some(Acc::Histogram {
                                bounds,
                                counts,
                                count,
                                sum,
                            }) = acc
                            {
                                dp.explicit_bounds = bounds;
                                dp.bucket_counts = counts;
                                dp.count = count;
                                dp.sum = sum;
                            }
                            true
                        }
                        None => false,
                    }
                });
                h.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                h.data_points.len()
            }
            Some(metric::Data::ExponentialHistogram(h)) => {
                put(&mut id, b"exponential");
                h.data_points.retain_mut(|dp| {
                    let key = self.key(&id, &dp.attributes);
                    let own = || Acc::Exponential(Box::new(first_exponential(dp)));
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        stale(dp.flags),
                        now,
                        |acc| {
                            Ok(match acc {
                                Some(Acc::Exponential(total)) => {
                                    Acc::Exponential(Box::new(add_exponential(total, dp)))
                                }
                                _ => own(),
                            })
                        },
                    );
                    match kept {
                        Some((start, acc)) => {
                            dp.start_time_unix_nano = start;
                            if let Some(Acc::Exponential(total)) = acc {
                                dp.count = total.count;
                                dp.sum = total.sum;
                                dp.scale = total.scale;
                                dp.zero_count = total.zero_count;
                                dp.zero_threshold = total.zero_threshold;
                                dp.positive = total.positive;
                                dp.negative = total.negative;
                            }
                            true
                        }
                        None => false,
                    }
                });
                h.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                h.data_points.len()
            }
            _ => 0,
        }
    }

    fn key(&self, id: &[u8], attrs: &[p::KeyValue]) -> u128 {
        let mut key = id.to_vec();
        put_attrs(&mut key, attrs);
        twox_hash::XxHash3_128::oneshot_with_seed(self.seed, &key)
    }

    /// Advance stream `key` by a point over `(start, t]`: `add` folds it into the stream's
    /// state (None for a new stream) and returns the new state, or `Err` with a state that
    /// starts the stream again from this point (a histogram whose bounds changed). Returns the
    /// stream's start and its state after the point (None for a point flagged as having no
    /// value, which passes through as it is), or None for a dropped point (counted).
    #[allow(clippy::type_complexity)]
    fn step(
        &mut self,
        key: u128,
        start: u64,
        t: u64,
        no_value: bool,
        now: Instant,
        add: impl FnOnce(Option<&Acc>) -> Result<Acc, Acc>,
    ) -> Option<(u64, Option<Acc>)> {
        let full = self.streams.len() >= MAX_STREAMS;
        let step = match self.streams.get_mut(&key) {
            None if full => Step::Drop,
            None => Step::New,
            Some(s) => {
                s.seen = now;
                if t <= s.last_ns || start < s.start_ns {
                    Step::Drop
                } else {
                    Step::Next
                }
            }
        };
        match step {
            Step::Drop => {
                self.dropped += 1;
                None
            }
            // A point with no recorded value (a staleness marker to be) adds nothing and
            // moves no stream on.
            Step::New if no_value => Some((start, None)),
            Step::New => {
                let acc = add(None).unwrap_or_else(|fresh| fresh);
                if self.bytes.saturating_add(acc.size()) > self.max_bytes {
                    self.dropped += 1;
                    return None;
                }
                self.bytes += acc.size();
                self.streams.insert(
                    key,
                    Stream {
                        start_ns: start,
                        last_ns: t,
                        seen: now,
                        acc: acc.clone(),
                    },
                );
                Some((start, Some(acc)))
            }
            Step::Next => {
                let s = self.streams.get_mut(&key)?;
                if no_value {
                    return Some((s.start_ns, None));
                }
                let before = s.acc.size();
                let (acc, restart) = match add(Some(&s.acc)) {
                    Ok(acc) => (acc, false),
                    Err(fresh) => (fresh, true),
                };
                // A stream's state may grow too (a histogram whose new bounds start it over):
                // bounded as new streams are. The point is dropped and so is the stream, whose
                // total no longer counts it: the next point starts it again, from its own
                // start time, as a reset a reader can see.
                let bytes = (self.bytes + acc.size()).saturating_sub(before);
                if acc.size() > before && bytes > self.max_bytes {
                    self.dropped += 1;
                    self.bytes = self.bytes.saturating_sub(before);
                    self.streams.remove(&key);
                    return None;
                }
                s.acc = acc;
                if restart {
                    s.start_ns = start;
                }
                self.bytes = bytes;
                s.last_ns = t;
                Some((s.start_ns, Some(s.acc.clone())))
            }
        }
    }
}

fn stale(flags: u32) -> bool {
    flags & p::FLAG_NO_RECORDED_VALUE != 0
}

fn as_f64(v: Option<number_data_point::Value>) -> f64 {
    match v {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => 0.0,
    }
}

/// Append `b` with its length, so parts cannot run into one another.
fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

/// Attributes as a set: in key order, whatever order they came in.
fn put_attrs(out: &mut Vec<u8>, attrs: &[p::KeyValue]) {
    let mut sorted: Vec<&p::KeyValue> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    for kv in sorted {
        put(out, &kv.encode_to_vec());
    }
}

/// The upper bound of exponential bucket `i` at `scale`: base^(i+1), base = 2^(2^-scale).
fn upper_bound(i: i64, scale: i32) -> f64 {
    ((i as f64 + 1.0) * (-f64::from(scale)).exp2()).exp2()
}

/// Widen `h`'s zero bucket to `threshold`: buckets whose range lies within it move into the
/// zero count; a bucket the threshold falls inside widens it to the bucket's upper bound and
/// moves too (OpenTelemetry's `WidenZero`).
fn widen_zero(h: &mut p::ExponentialHistogramDataPoint, threshold: f64) {
    let mut t = threshold.max(h.zero_threshold);
    let scale = h.scale;
    loop {
        let mut moved = false;
        for side in [&mut h.positive, &mut h.negative] {
            let Some(b) = side.as_mut() else { continue };
            // The leading buckets the threshold covers, found in one pass and moved at once.
            let mut k = 0;
            while k < b.bucket_counts.len() {
                let i = i64::from(b.offset) + k as i64;
                if upper_bound(i - 1, scale) >= t {
                    break;
                }
                t = t.max(upper_bound(i, scale));
                k += 1;
            }
            if k > 0 {
                let gone: u64 = b.bucket_counts.drain(..k).fold(0, u64::saturating_add);
                h.zero_count = h.zero_count.saturating_add(gone);
                b.offset = b
                    .offset
                    .saturating_add(i32::try_from(k).unwrap_or(i32::MAX));
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    h.zero_threshold = t;
}

/// The sum of two exponential histograms, at the coarser scale (coarser still while a side
/// spans more than [`MAX_BUCKETS`] buckets), their zero buckets widened to the wider one's.
fn add_exponential(
    a: &p::ExponentialHistogramDataPoint,
    b: &p::ExponentialHistogramDataPoint,
) -> p::ExponentialHistogramDataPoint {
    let (mut a, mut b) = (a.clone(), b.clone());
    if a.zero_threshold != b.zero_threshold {
        let t = a.zero_threshold.max(b.zero_threshold);
        widen_zero(&mut a, t);
        widen_zero(&mut b, a.zero_threshold);
        widen_zero(&mut a, b.zero_threshold);
    }
    let mut scale = a.scale.min(b.scale);
    let side = |x: &Option<p::Buckets>, from: i32, to: i32| -> Vec<(i32, u64)> {
        let Some(x) = x else { return Vec::new() };
        let down = (i64::from(from) - i64::from(to)).clamp(0, 31) as u32;
        x.bucket_counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (x.offset.saturating_add(i as i32) >> down, *c))
            .collect()
    };
    let mut pos: Vec<(i32, u64)> = side(&a.positive, a.scale, scale);
    pos.extend(side(&b.positive, b.scale, scale));
    let mut neg: Vec<(i32, u64)> = side(&a.negative, a.scale, scale);
    neg.extend(side(&b.negative, b.scale, scale));
    let span = |v: &[(i32, u64)]| -> usize {
        let lo = v.iter().map(|x| x.0).min();
        let hi = v.iter().map(|x| x.0).max();
        match (lo, hi) {
            (Some(lo), Some(hi)) => (i64::from(hi) - i64::from(lo) + 1) as usize,
            _ => 0,
        }
    };
    while span(&pos).max(span(&neg)) > MAX_BUCKETS {
        scale -= 1;
        for v in [&mut pos, &mut neg] {
            for x in v.iter_mut() {
                x.0 >>= 1;
            }
        }
    }
    let buckets = |v: &[(i32, u64)]| -> Option<p::Buckets> {
        let lo = v.iter().map(|x| x.0).min()?;
        let mut counts = vec![0u64; span(v)];
        for (i, c) in v {
            let at = (i - lo) as usize;
            counts[at] = counts[at].saturating_add(*c);
        }
        Some(p::Buckets {
            offset: lo,
            bucket_counts: counts,
        })
    };
    p::ExponentialHistogramDataPoint {
        count: a.count.saturating_add(b.count),
        sum: a.sum.zip(b.sum).map(|(x, y)| x + y),
        scale,
        zero_count: a.zero_count.saturating_add(b.zero_count),
        zero_threshold: a.zero_threshold.max(b.zero_threshold),
        positive: buckets(&pos),
        negative: buckets(&neg),
        // A running total: neither point's attributes or exemplars.
        attributes: Vec::new(),
        exemplars: Vec::new(),
        ..b
    }
}

/// A stream's first exponential histogram as it is kept: within [`MAX_BUCKETS`] a side
/// (made coarser, as a sum would be), without attributes or exemplars.
fn first_exponential(dp: &p::ExponentialHistogramDataPoint) -> p::ExponentialHistogramDataPoint {
    let empty = p::ExponentialHistogramDataPoint {
        scale: dp.scale,
        zero_threshold: dp.zero_threshold,
        ..Default::default()
    };
    add_exponential(&empty, dp)
}

#[cfg(test)]
mod tests;
