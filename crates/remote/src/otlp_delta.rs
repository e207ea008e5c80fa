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
pub const MAX_STREAMS: usize = 1_000_000;
/// The most buckets a side of an exponential histogram's sum may span (the processor's).
const MAX_BUCKETS: usize = 160;

/// The running state of every delta stream seen.
pub struct DeltaToCumulative {
    state: Mutex<State>,
    max_stale: Duration,
}

struct State {
    streams: HashMap<Vec<u8>, Stream>,
    swept: Instant,
}

struct Stream {
    start_ns: u64,
    last_ns: u64,
    seen: Instant,
    acc: Acc,
}

enum Acc {
    Sum(f64),
    Histogram(p::HistogramDataPoint),
    Exponential(p::ExponentialHistogramDataPoint),
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

impl Default for DeltaToCumulative {
    fn default() -> Self {
        Self::new(MAX_STALE)
    }
}

impl DeltaToCumulative {
    pub fn new(max_stale: Duration) -> Self {
        DeltaToCumulative {
            state: Mutex::new(State {
                streams: HashMap::new(),
                swept: Instant::now(),
            }),
            max_stale,
        }
    }

    /// Streams held.
    pub fn streams(&self) -> usize {
        self.state.lock().streams.len()
    }

    /// Make every delta metric of `req` cumulative, in place; returns how many points were
    /// dropped. A metric left with no point (all dropped) is removed rather than failing the
    /// request as an empty metric would.
    pub fn convert(&self, req: &mut p::ExportMetricsServiceRequest) -> usize {
        let mut st = self.state.lock();
        let now = Instant::now();
        if now.duration_since(st.swept) >= SWEEP_EVERY.min(self.max_stale) {
            let stale = self.max_stale;
            st.streams.retain(|_, s| now.duration_since(s.seen) < stale);
            st.swept = now;
        }
        let mut dropped = 0;
        for rm in &mut req.resource_metrics {
            let mut base = Vec::new();
            put_attrs(
                &mut base,
                rm.resource.as_ref().map_or(&[][..], |r| &r.attributes),
            );
            for sm in &mut rm.scope_metrics {
                let mut scope = base.clone();
                match &sm.scope {
                    Some(s) => {
                        put(&mut scope, s.name.as_bytes());
                        put(&mut scope, s.version.as_bytes());
                        put_attrs(&mut scope, &s.attributes);
                    }
                    None => put(&mut scope, b"-"),
                }
                sm.metrics.retain_mut(|m| {
                    let (before, after) = st.metric(&scope, m, now, &mut dropped);
                    before == 0 || after > 0
                });
            }
        }
        dropped
    }
}

impl State {
    /// Convert one metric if it is of delta temporality: (points before, points after).
    fn metric(
        &mut self,
        scope: &[u8],
        m: &mut p::Metric,
        now: Instant,
        dropped: &mut usize,
    ) -> (usize, usize) {
        let mut id = scope.to_vec();
        put(&mut id, m.name.as_bytes());
        put(&mut id, m.unit.as_bytes());
        match &mut m.data {
            Some(metric::Data::Sum(s)) if s.aggregation_temporality == p::TEMPORALITY_DELTA => {
                put(&mut id, if s.is_monotonic { b"sum+" } else { b"sum" });
                let before = s.data_points.len();
                s.data_points.retain_mut(|dp| {
                    let key = point_key(&id, &dp.attributes);
                    let v = match dp.value {
                        Some(number_data_point::Value::AsDouble(v)) => v,
                        Some(number_data_point::Value::AsInt(v)) => v as f64,
                        None => 0.0,
                    };
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        now,
                        |acc| match acc {
                            Some(Acc::Sum(total)) => {
                                *total += v;
                                Acc::Sum(*total)
                            }
                            _ => Acc::Sum(v),
                        },
                    );
                    match kept {
                        Some((start, Acc::Sum(total))) => {
                            dp.start_time_unix_nano = start;
                            dp.value = Some(number_data_point::Value::AsDouble(total));
                            true
                        }
                        _ => {
                            *dropped += 1;
                            false
                        }
                    }
                });
                s.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                (before, s.data_points.len())
            }
            Some(metric::Data::Histogram(h))
                if h.aggregation_temporality == p::TEMPORALITY_DELTA =>
            {
                put(&mut id, b"histogram");
                let before = h.data_points.len();
                h.data_points.retain_mut(|dp| {
                    let key = point_key(&id, &dp.attributes);
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        now,
                        |acc| {
                            match acc {
                                Some(Acc::Histogram(total))
                                    if total.explicit_bounds == dp.explicit_bounds
                                        && total.bucket_counts.len() == dp.bucket_counts.len() =>
                                {
                                    for (a, b) in
                                        total.bucket_counts.iter_mut().zip(&dp.bucket_counts)
                                    {
                                        *a = a.saturating_add(*b);
                                    }
                                    total.count = total.count.saturating_add(dp.count);
                                    total.sum = total.sum.zip(dp.sum).map(|(a, b)| a + b);
                                    Acc::Histogram(total.clone())
                                }
                                // The first point, or bounds that changed: a new start.
                                _ => Acc::Histogram(dp.clone()),
                            }
                        },
                    );
                    match kept {
                        Some((start, Acc::Histogram(total))) => {
                            dp.start_time_unix_nano = start;
                            dp.count = total.count;
                            dp.sum = total.sum;
                            dp.bucket_counts = total.bucket_counts;
                            dp.explicit_bounds = total.explicit_bounds;
                            true
                        }
                        _ => {
                            *dropped += 1;
                            false
                        }
                    }
                });
                h.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                (before, h.data_points.len())
            }
            Some(metric::Data::ExponentialHistogram(h))
                if h.aggregation_temporality == p::TEMPORALITY_DELTA =>
            {
                put(&mut id, b"exponential");
                let before = h.data_points.len();
                h.data_points.retain_mut(|dp| {
                    let key = point_key(&id, &dp.attributes);
                    let kept = self.step(
                        key,
                        dp.start_time_unix_nano,
                        dp.time_unix_nano,
                        now,
                        |acc| match acc {
                            Some(Acc::Exponential(total)) => {
                                *total = add_exponential(total, dp);
                                Acc::Exponential(total.clone())
                            }
                            _ => Acc::Exponential(dp.clone()),
                        },
                    );
                    match kept {
                        Some((start, Acc::Exponential(total))) => {
                            dp.start_time_unix_nano = start;
                            dp.count = total.count;
                            dp.sum = total.sum;
                            dp.scale = total.scale;
                            dp.zero_count = total.zero_count;
                            dp.zero_threshold = total.zero_threshold;
                            dp.positive = total.positive;
                            dp.negative = total.negative;
                            true
                        }
                        _ => {
                            *dropped += 1;
                            false
                        }
                    }
                });
                h.aggregation_temporality = p::TEMPORALITY_CUMULATIVE;
                (before, h.data_points.len())
            }
            _ => (0, 0),
        }
    }

    /// Advance stream `key` by a point over `(start, t]`: `add` folds it into the stream's
    /// state (None for a new stream) and returns the new state. Returns the stream's start and
    /// its state after the point, or None for a dropped point.
    fn step(
        &mut self,
        key: Vec<u8>,
        start: u64,
        t: u64,
        now: Instant,
        add: impl FnOnce(Option<&mut Acc>) -> Acc,
    ) -> Option<(u64, Acc)> {
        let step = match self.streams.get(&key) {
            None if self.streams.len() >= MAX_STREAMS => Step::Drop,
            None => Step::New,
            Some(s) if t <= s.last_ns || (start != 0 && start < s.start_ns) => Step::Drop,
            Some(_) => Step::Next,
        };
        match step {
            Step::Drop => None,
            Step::New => {
                let acc = add(None);
                let out = (start, clone_acc(&acc));
                self.streams.insert(
                    key,
                    Stream {
                        start_ns: start,
                        last_ns: t,
                        seen: now,
                        acc,
                    },
                );
                Some(out)
            }
            Step::Next => {
                let s = self.streams.get_mut(&key)?;
                let acc = add(Some(&mut s.acc));
                s.acc = clone_acc(&acc);
                s.last_ns = t;
                s.seen = now;
                Some((s.start_ns, acc))
            }
        }
    }
}

fn clone_acc(a: &Acc) -> Acc {
    match a {
        Acc::Sum(v) => Acc::Sum(*v),
        Acc::Histogram(h) => Acc::Histogram(h.clone()),
        Acc::Exponential(h) => Acc::Exponential(h.clone()),
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

fn point_key(id: &[u8], attrs: &[p::KeyValue]) -> Vec<u8> {
    let mut key = id.to_vec();
    put_attrs(&mut key, attrs);
    key
}

/// The sum of two exponential histograms, at the coarser scale (coarser still while a side
/// spans more than [`MAX_BUCKETS`] buckets).
fn add_exponential(
    a: &p::ExponentialHistogramDataPoint,
    b: &p::ExponentialHistogramDataPoint,
) -> p::ExponentialHistogramDataPoint {
    let mut scale = a.scale.min(b.scale);
    let side = |x: &Option<p::Buckets>, from: i32, to: i32| -> Vec<(i32, u64)> {
        let Some(x) = x else { return Vec::new() };
        let down = (from - to).clamp(0, 31) as u32;
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
        ..b.clone()
    }
}

#[cfg(test)]
mod tests;
