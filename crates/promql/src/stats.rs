//! Query statistics, as Prometheus's API gives them with `stats=...`: how many samples a
//! query read from storage (in total, and per step with `promql-per-step-stats`), the most
//! it held at once, and where its time went.
//!
//! Samples are counted where Prometheus's engine counts them, per step of the query: a
//! vector selector's value at each step (1 a float, a histogram by its size), and the points
//! in each step's window of a range argument (a matrix selector's or a subquery's results;
//! what the subquery read itself is not counted again). A subquery or matrix selector at the
//! top of an instant query counts what it read. Counting is off unless a query asks for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use vigil_model::{FloatHistogram, HistogramSample, Sample};

use crate::value::Hist;

/// Which statistics a query collects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatsLevel {
    #[default]
    Off,
    /// Totals and timings.
    Totals,
    /// Also the samples read at each step.
    PerStep,
}

/// A histogram sample's weight, as Prometheus counts it (`HPoint.size()`): its size in bytes
/// (a fixed part and 8 bytes a span, bucket and custom bound) in 16-byte units.
pub(crate) fn hist_weight(h: &FloatHistogram) -> u64 {
    let parts = h.positive_spans.len()
        + h.negative_spans.len()
        + h.positive_buckets.len()
        + h.negative_buckets.len()
        + h.custom_values.len();
    ((176 + 8 * parts) / 16) as u64
}

/// The samples one evaluation (the query, or a subquery inside it) read, per step of that
/// evaluation; shareable with shard threads.
pub(crate) struct SampleStats {
    /// One counter a step; a subquery's child keeps one counter in all (only its total is
    /// read, and its steps can be many).
    per_step: Vec<AtomicU64>,
    single: bool,
    /// The most samples held at once (as counted against `--query.max-samples`), shared
    /// by a query and every subquery in it.
    peak: Arc<AtomicUsize>,
}

impl SampleStats {
    pub fn new(steps: usize) -> SampleStats {
        SampleStats {
            per_step: (0..steps).map(|_| AtomicU64::new(0)).collect(),
            single: false,
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The stats of a subquery: its own total, the query's peak.
    pub fn child(&self) -> SampleStats {
        SampleStats {
            per_step: vec![AtomicU64::new(0)],
            single: true,
            peak: self.peak.clone(),
        }
    }

    pub fn total(&self) -> u64 {
        self.per_step.iter().map(|x| x.load(Relaxed)).sum()
    }

    pub fn held(&self, now: usize) {
        self.peak.fetch_max(now, Relaxed);
    }

    pub fn add_at(&self, step: usize, n: u64) {
        let slot = if self.single { 0 } else { step };
        if let Some(x) = self.per_step.get(slot) {
            x.fetch_add(n, Relaxed);
        }
    }

    /// A selector's values, one slot a step: each value counts 1.
    pub fn add_present(&self, pts: &[Option<f64>], hs: &[Option<Hist>]) {
        for (k, p) in pts.iter().enumerate() {
            if p.is_some() || hs.get(k).is_some_and(Option::is_some) {
                self.add_at(k, 1);
            }
        }
    }

    /// A selector's values, one slot a step: each value counts, a histogram by its weight.
    pub fn add_values(&self, pts: &[Option<f64>], hs: &[Option<Hist>]) {
        for (k, p) in pts.iter().enumerate() {
            let n = match (p, hs.get(k).and_then(Option::as_ref)) {
                (_, Some(h)) => hist_weight(h),
                (Some(_), None) => 1,
                (None, None) => 0,
            };
            if n > 0 {
                self.add_at(k, n);
            }
        }
    }

    /// The points of one series inside each step's window `(end - range_ms, end]`.
    pub fn add_windows(
        &self,
        samples: &[Sample],
        hists: &[HistogramSample],
        ends: &[i64],
        range_ms: i64,
    ) {
        for (k, &end) in ends.iter().enumerate() {
            let lo = samples.partition_point(|x| x.t <= end - range_ms);
            let hi = samples.partition_point(|x| x.t <= end);
            let mut n = hi.saturating_sub(lo) as u64;
            if !hists.is_empty() {
                let lo = hists.partition_point(|x| x.t <= end - range_ms);
                let hi = hists.partition_point(|x| x.t <= end);
                n += hists[lo..hi.max(lo)]
                    .iter()
                    .map(|x| hist_weight(&x.h))
                    .sum::<u64>();
            }
            if n > 0 {
                self.add_at(k, n);
            }
        }
    }

    /// The counts so far, to [`SampleStats::restore`] if the work that follows is abandoned.
    pub fn snapshot(&self) -> Vec<u64> {
        self.per_step.iter().map(|x| x.load(Relaxed)).collect()
    }

    pub fn restore(&self, counts: &[u64]) {
        for (x, n) in self.per_step.iter().zip(counts) {
            x.store(*n, Relaxed);
        }
    }

    /// Each step's count with the step's time.
    pub fn per_step(&self, times: &[i64]) -> Vec<(i64, u64)> {
        times
            .iter()
            .zip(&self.per_step)
            .map(|(t, n)| (*t, n.load(Relaxed)))
            .collect()
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Relaxed)
    }
}

/// What a query's statistics report: `samples` as Prometheus's `querySamples`, times in
/// seconds as its `queryTimings` (the API adds the queue time, which it measures).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    pub total_samples: u64,
    /// The most samples held at once, as vigil counts them against `--query.max-samples`
    /// (samples loaded, subquery steps), which is not the same count as Prometheus's.
    pub peak_samples: u64,
    /// With [`StatsLevel::PerStep`]: each step's time (ms) and samples read for it.
    pub per_step: Option<Vec<(i64, u64)>>,
    pub eval_total_s: f64,
    pub inner_eval_s: f64,
    pub result_sort_s: f64,
    pub preparation_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_points_inside_left_open_ranges() {
        let s = SampleStats::new(3);
        let samples: Vec<Sample> = [10, 20, 30, 40]
            .iter()
            .map(|&t| Sample { t, v: 1.0 })
            .collect();
        // (0,20]: 10 20; (10,30]: 20 30; (30,50]: 40.
        s.add_windows(&samples, &[], &[20, 30, 50], 20);
        assert_eq!(s.per_step(&[20, 30, 50]), vec![(20, 2), (30, 2), (50, 1)]);
        assert_eq!(s.total(), 5);
        s.add_values(&[Some(1.0), None, Some(2.0)], &[]);
        assert_eq!(s.total(), 7);
        let c = s.child();
        c.held(42);
        c.add_at(4, 9);
        assert_eq!((s.peak(), s.total(), c.total()), (42, 7, 9));
    }

    #[test]
    fn a_histogram_weighs_by_its_size() {
        let mut h = FloatHistogram::default();
        // 176 bytes and none of the parts: 11.
        assert_eq!(hist_weight(&h), 11);
        h.positive_buckets = vec![1.0; 4];
        h.positive_spans = vec![Default::default()];
        // 176 + 5 * 8 = 216 bytes: 13.
        assert_eq!(hist_weight(&h), 13);
    }
}
