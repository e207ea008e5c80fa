//! A series' out-of-order samples (`storage.tsdb.out_of_order_time_window`): samples older
//! than the series' newest, kept beside its in-order chunks until the head is cut.
//!
//! Late samples are few and mostly arrive in runs that are in order among themselves (a
//! sender catching up), so the newest ones are kept as a sorted list, and every
//! [`RUN_SAMPLES`] of them are compressed into a run (an XOR chunk). Runs never overlap in
//! time: one that would is merged with the others and all are cut again, so finding a time
//! decodes one run, however shuffled the samples came. Late native histograms are kept as
//! they are, in a sorted list. No time is held twice, by either kind: an insert at a time already held is refused,
//! as Prometheus's out-of-order head refuses it.

use std::sync::Arc;

use vigil_model::histogram::CounterResetHint;
use vigil_model::{FloatHistogram, HistogramSample, Sample};

use crate::chunk::{XorChunk, XorIter};

/// Samples kept uncompressed before they are compressed into a run (Prometheus keeps 32 in
/// its out-of-order head chunk; a run here is a whole chunk's worth).
const RUN_SAMPLES: usize = 120;

/// A compressed run of late samples.
struct Run {
    min_t: i64,
    max_t: i64,
    data: Box<[u8]>,
}

impl Run {
    /// A run of `samples` (sorted by time, at least one).
    fn of(samples: &[Sample]) -> Run {
        let mut c = XorChunk::new();
        for s in samples {
            c.append(s.t, s.v);
        }
        Run {
            min_t: samples[0].t,
            max_t: samples[samples.len() - 1].t,
            data: c.bytes().into(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = Sample> + '_ {
        XorIter::from_bytes(&self.data).into_iter().flatten()
    }
}

#[derive(Default)]
pub(super) struct LateSamples {
    /// Sorted by time, times unique.
    recent: Vec<Sample>,
    /// Sorted by time, none overlapping another.
    runs: Vec<Run>,
    /// Late native histograms, sorted by time, times unique.
    hists: Vec<HistogramSample>,
}

impl LateSamples {
    /// Whether a sample at `t` is held.
    pub(super) fn holds(&self, t: i64) -> bool {
        self.recent.binary_search_by_key(&t, |s| s.t).is_ok()
            || self.hists.binary_search_by_key(&t, |s| s.t).is_ok()
            || self
                .runs
                .get(self.runs.partition_point(|r| r.max_t < t))
                .is_some_and(|r| r.min_t <= t && r.iter().any(|s| s.t == t))
    }

    /// Keep `(t, v)`; false (and nothing kept) if a sample at `t` is held already.
    pub(super) fn insert(&mut self, t: i64, v: f64) -> bool {
        if self.holds(t) {
            return false;
        }
        let at = self.recent.partition_point(|s| s.t < t);
        self.recent.insert(at, Sample { t, v });
        if self.recent.len() >= RUN_SAMPLES {
            let fresh = std::mem::take(&mut self.recent);
            let (lo, hi) = (fresh[0].t, fresh[fresh.len() - 1].t);
            if self.runs.iter().any(|r| r.min_t <= hi && lo <= r.max_t) {
                // Shuffled arrivals: cut everything again into runs that do not overlap.
                let mut all: Vec<Sample> = self.runs.iter().flat_map(Run::iter).collect();
                all.extend(fresh);
                all.sort_unstable_by_key(|s| s.t);
                self.runs = all.chunks(RUN_SAMPLES).map(Run::of).collect();
            } else {
                let at = self.runs.partition_point(|r| r.max_t < lo);
                self.runs.insert(at, Run::of(&fresh));
            }
        }
        true
    }

    /// Keep the native histogram `h` at `t`; false (and nothing kept) if a sample at `t` is
    /// held already. Its counter reset hint becomes "unknown" (a gauge stays a gauge): the
    /// sample it was made against is not the one before it any more.
    pub(super) fn insert_histogram(&mut self, t: i64, h: &Arc<FloatHistogram>) -> bool {
        if self.holds(t) {
            return false;
        }
        let h = match h.hint {
            CounterResetHint::Unknown | CounterResetHint::Gauge => h.clone(),
            _ => Arc::new(FloatHistogram {
                hint: CounterResetHint::Unknown,
                ..(**h).clone()
            }),
        };
        let at = self.hists.partition_point(|s| s.t < t);
        self.hists.insert(at, HistogramSample { t, h });
        true
    }

    /// The native histograms in `[mint, maxt]`, in time order.
    pub(super) fn histograms(&self, mint: i64, maxt: i64) -> Vec<HistogramSample> {
        let from = self.hists.partition_point(|s| s.t < mint);
        let to = self.hists.partition_point(|s| s.t <= maxt);
        self.hists[from..to.max(from)].to_vec()
    }

    /// The samples in `[mint, maxt]`, in time order.
    pub(super) fn samples(&self, mint: i64, maxt: i64) -> Vec<Sample> {
        let mut out: Vec<Sample> = self
            .runs
            .iter()
            .filter(|r| r.max_t >= mint && r.min_t <= maxt)
            .flat_map(Run::iter)
            .chain(self.recent.iter().copied())
            .filter(|s| s.t >= mint && s.t <= maxt)
            .collect();
        // Runs are in time order, and they and the list hold no time twice between them (see
        // `insert`); the list's samples may fall between runs'.
        if !self.runs.is_empty() && !self.recent.is_empty() {
            out.sort_unstable_by_key(|s| s.t);
        }
        out
    }

    /// Drop the samples before `before`; true if none is left.
    pub(super) fn truncate_before(&mut self, before: i64) -> bool {
        let keep = self.samples(before, i64::MAX);
        self.runs.clear();
        self.recent.clear();
        for s in keep {
            self.insert(s.t, s.v);
        }
        self.hists
            .drain(..self.hists.partition_point(|s| s.t < before));
        self.is_empty()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.recent.is_empty() && self.runs.is_empty() && self.hists.is_empty()
    }

    /// The oldest time held.
    pub(super) fn first_t(&self) -> Option<i64> {
        let r = self.runs.iter().map(|r| r.min_t).min();
        let l = self.recent.first().map(|s| s.t);
        let h = self.hists.first().map(|s| s.t);
        [r, l, h].into_iter().flatten().min()
    }

    /// Chunks held: the runs and each non-empty list.
    pub(super) fn chunk_count(&self) -> u64 {
        self.runs.len() as u64
            + u64::from(!self.recent.is_empty())
            + u64::from(!self.hists.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_time_order_across_runs_and_refuses_repeats() {
        let mut l = LateSamples::default();
        // Three interleaved descending sweeps: runs overlap one another.
        let mut want = Vec::new();
        for sweep in 0..3i64 {
            for i in (0..150i64).rev() {
                let t = i * 3 + sweep;
                assert!(l.insert(t, t as f64 / 2.0));
                want.push(t);
            }
        }
        want.sort_unstable();
        assert!(l.chunk_count() > 2, "runs were cut");
        assert!(
            l.runs.windows(2).all(|w| w[0].max_t < w[1].min_t),
            "runs do not overlap"
        );
        let got: Vec<i64> = l.samples(i64::MIN, i64::MAX).iter().map(|s| s.t).collect();
        assert_eq!(got, want);
        assert!(l.samples(100, 110).iter().all(|s| s.v == s.t as f64 / 2.0));
        // Every time held refuses a second sample, in a run or in the list.
        for t in [0, 1, 2, 200, 449] {
            assert!(l.holds(t));
            assert!(!l.insert(t, 99.0), "{t} taken twice");
        }
        assert!(!l.holds(450));
        assert_eq!(l.first_t(), Some(0));
        assert!(!l.truncate_before(300));
        assert_eq!(l.first_t(), Some(300));
        assert_eq!(l.samples(i64::MIN, i64::MAX).len(), 150);
        assert!(l.truncate_before(1000));
    }

    #[test]
    fn histograms_share_the_times_with_floats_and_lose_their_reset_hint() {
        let mut l = LateSamples::default();
        let h = |hint| {
            Arc::new(FloatHistogram {
                count: 1.0,
                hint,
                ..Default::default()
            })
        };
        assert!(l.insert(10, 1.0));
        assert!(!l.insert_histogram(10, &h(CounterResetHint::Unknown)));
        assert!(l.insert_histogram(30, &h(CounterResetHint::NotCounterReset)));
        assert!(l.insert_histogram(20, &h(CounterResetHint::Gauge)));
        assert!(!l.insert(20, 2.0));
        let got: Vec<(i64, CounterResetHint)> = l
            .histograms(i64::MIN, i64::MAX)
            .iter()
            .map(|s| (s.t, s.h.hint))
            .collect();
        assert_eq!(
            got,
            [
                (20, CounterResetHint::Gauge),
                (30, CounterResetHint::Unknown)
            ]
        );
        assert_eq!(l.histograms(21, 29).len(), 0);
        assert_eq!(l.first_t(), Some(10));
        assert!(!l.truncate_before(25));
        assert_eq!(l.first_t(), Some(30));
    }
}
