//! An in-memory [`Storage`]: every series with its samples in a `Vec`, behind one lock.
//!
//! For the tests, the PromQL `.test` runner and `vigil test rules`, where nothing needs to
//! outlive the process. It keeps the TSDB's rules (per-series time order, duplicate
//! timestamps, atomic commits), so callers see the same behaviour on either.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;
use std::sync::Arc;
use vigil_model::labels::METRIC_NAME;

use vigil_model::{FloatHistogram, HistogramSample, Labels, Sample};

use crate::{
    AppendError, Appender, Exemplar, ExemplarStore, Matcher, Querier, Series, SeriesExemplars,
    SeriesRef, SeriesSet, Storage, StorageError,
};

struct MemSeries {
    labels: Labels,
    samples: Vec<Sample>,
    histograms: Vec<HistogramSample>,
}

impl MemSeries {
    /// The newest timestamp of either kind, for order checks.
    fn newest(&self) -> Option<i64> {
        let f = self.samples.last().map(|s| s.t);
        let h = self.histograms.last().map(|s| s.t);
        f.max(h)
    }
}

/// The counter-reset hint a histogram reads back with, as the TSDB's chunks give it: gauge
/// for gauges; for counters "not a reset" when it follows a histogram of the same series
/// without a reset, else unknown (the first sample of a chunk).
fn read_back_hint(series: &MemSeries, h: Arc<FloatHistogram>) -> Arc<FloatHistogram> {
    use vigil_model::histogram::CounterResetHint as Hint;
    let prev = series
        .histograms
        .last()
        .filter(|p| series.samples.last().is_none_or(|f| f.t < p.t) && !p.is_stale());
    let hint = if h.hint == Hint::Gauge {
        Hint::Gauge
    } else {
        match prev {
            Some(p) if p.h.hint != Hint::Gauge => {
                let mut probe = (*h).clone();
                probe.hint = Hint::Unknown;
                if probe.detect_reset(&p.h) {
                    Hint::Unknown
                } else {
                    Hint::NotCounterReset
                }
            }
            _ => Hint::Unknown,
        }
    };
    if hint == h.hint {
        return h;
    }
    let mut h = (*h).clone();
    h.hint = hint;
    Arc::new(h)
}

/// A value waiting in a transaction.
#[derive(Clone)]
enum Pending {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

impl Pending {
    fn same(&self, other: &Pending) -> bool {
        match (self, other) {
            (Pending::Float(a), Pending::Float(b)) => a.to_bits() == b.to_bits(),
            (Pending::Histogram(a), Pending::Histogram(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Index `i` holds the series with ref `i + 1`; `None` once truncated away.
    series: Vec<Option<MemSeries>>,
    by_labels: HashMap<Labels, SeriesRef>,
    /// Postings for `__name__`, the matcher nearly every query has.
    by_name: HashMap<String, BTreeSet<SeriesRef>>,
}

impl Inner {
    fn get(&self, r: SeriesRef) -> Option<&MemSeries> {
        self.series.get((r as usize).checked_sub(1)?)?.as_ref()
    }

    fn get_or_create(&mut self, labels: &Labels) -> SeriesRef {
        if let Some(&r) = self.by_labels.get(labels) {
            return r;
        }
        self.series.push(Some(MemSeries {
            labels: labels.clone(),
            samples: Vec::new(),
            histograms: Vec::new(),
        }));
        let r = self.series.len() as SeriesRef;
        self.by_labels.insert(labels.clone(), r);
        if let Some(n) = labels.metric_name() {
            self.by_name.entry(n.to_string()).or_default().insert(r);
        }
        r
    }

    /// Refs of candidate series for `matchers`, narrowed by a `__name__="x"` matcher if present.
    fn candidates(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let by_name = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == crate::MatchOp::Equal)
            .map(|m| m.value.as_str());
        let refs: Vec<SeriesRef> = match by_name {
            Some(n) => self
                .by_name
                .get(n)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
            None => (1..=self.series.len() as SeriesRef).collect(),
        };
        refs.into_iter()
            .filter(|&r| {
                self.get(r).is_some_and(|s| {
                    matchers
                        .iter()
                        .all(|m| m.matches(s.labels.get_or_empty(&m.name)))
                })
            })
            .collect()
    }
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryStorage {
    inner: RwLock<Inner>,
    /// What its queriers answer to [`Querier::shards`] (0 or 1: no sharding).
    shards: usize,
    /// Keeps none unless made by [`MemoryStorage::with_exemplars`].
    exemplars: ExemplarStore,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose queriers ask readers to split selections into `shards` shards, so
    /// tests run the evaluator's sharded reading on small data.
    pub fn with_shards(shards: usize) -> Self {
        MemoryStorage {
            shards,
            ..Self::default()
        }
    }

    /// A store keeping up to `max` exemplars (for tests of exemplars).
    pub fn with_exemplars(max: usize) -> Self {
        MemoryStorage {
            exemplars: ExemplarStore::new(max),
            ..Self::default()
        }
    }

    /// Drop samples older than `mint`, and series left without samples: retention for a
    /// long-running memory store.
    pub fn truncate_before(&self, mint: i64) {
        let mut g = self.inner.write();
        let inner = &mut *g;
        for (i, slot) in inner.series.iter_mut().enumerate() {
            let Some(s) = slot else { continue };
            let keep_from = s.samples.partition_point(|x| x.t < mint);
            s.samples.drain(..keep_from);
            let keep_from = s.histograms.partition_point(|x| x.t < mint);
            s.histograms.drain(..keep_from);
            if s.samples.is_empty() && s.histograms.is_empty() {
                let r = i as SeriesRef + 1;
                inner.by_labels.remove(&s.labels);
                if let Some(n) = s.labels.metric_name()
                    && let Some(set) = inner.by_name.get_mut(n)
                {
                    set.remove(&r);
                }
                *slot = None;
            }
        }
    }

    /// Number of live series.
    pub fn num_series(&self) -> usize {
        self.inner.read().by_labels.len()
    }
}

impl Storage for MemoryStorage {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(MemAppender {
            store: self,
            pending: Vec::new(),
            newest: HashMap::new(),
            exemplars: Vec::new(),
        })
    }

    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        Ok(self.exemplars.select(mint, maxt, sets))
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(MemQuerier {
            store: self,
            mint,
            maxt,
        }))
    }
}

struct MemAppender<'a> {
    store: &'a MemoryStorage,
    pending: Vec<(SeriesRef, i64, Pending)>,
    /// Newest pending value per series, for order checks within the transaction.
    newest: HashMap<SeriesRef, (i64, Pending)>,
    exemplars: Vec<(Labels, Exemplar)>,
}

impl MemAppender<'_> {
    fn add(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: Pending,
    ) -> Result<SeriesRef, AppendError> {
        // Resolve the ref first under a read lock; create under the write lock only when new.
        let (r, last) = {
            let g = self.store.inner.read();
            match g
                .get(r)
                .or_else(|| g.by_labels.get(labels).and_then(|&r| g.get(r)))
            {
                Some(s) => {
                    let last = s.newest().map(|t| {
                        let f = s
                            .samples
                            .last()
                            .filter(|x| x.t == t)
                            .map(|x| Pending::Float(x.v));
                        let h = s
                            .histograms
                            .last()
                            .filter(|x| x.t == t)
                            .map(|x| Pending::Histogram(x.h.clone()));
                        (t, f.or(h).expect("the newest sample"))
                    });
                    (g.by_labels[&s.labels], last)
                }
                None => (0, None),
            }
        };
        let r = if r == 0 {
            if labels.is_empty() || labels.metric_name().is_none() {
                return Err(AppendError::InvalidLabels(format!(
                    "{labels}: missing metric name"
                )));
            }
            self.store.inner.write().get_or_create(labels)
        } else {
            r
        };
        // The newest sample is the committed one or one pending in this transaction.
        let last = self.newest.get(&r).cloned().or(last);
        if let Some((lt, lv)) = last {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt {
                if lv.same(&v) {
                    return Ok(r); // an exact repeat is silently ignored, as Prometheus does
                }
                return Err(AppendError::DuplicateTimestamp);
            }
        }
        self.pending.push((r, t, v.clone()));
        self.newest.insert(r, (t, v));
        Ok(r)
    }
}

impl Appender for MemAppender<'_> {
    fn append(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        self.add(r, labels, t, Pending::Float(v))
    }

    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: FloatHistogram,
    ) -> Result<SeriesRef, AppendError> {
        self.add(r, labels, t, Pending::Histogram(Arc::new(h)))
    }

    fn append_exemplar(
        &mut self,
        _r: SeriesRef,
        labels: &Labels,
        e: Exemplar,
    ) -> Result<(), AppendError> {
        let store = &self.store.exemplars;
        if !store.enabled() {
            return Ok(());
        }
        if store.validate(labels, &e)? {
            self.exemplars.push((labels.clone(), e));
        }
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        for (series, e) in self.exemplars {
            // Checked when appended; one overtaken since is dropped, as in Prometheus.
            let _ = self.store.exemplars.add(&series, e);
        }
        let mut g = self.store.inner.write();
        for (r, t, v) in self.pending {
            if let Some(Some(series)) = g.series.get_mut(r as usize - 1) {
                // A concurrent transaction may have moved the series past `t`; keep order.
                if series.newest().is_none_or(|l| l < t) {
                    match v {
                        Pending::Float(v) => series.samples.push(Sample { t, v }),
                        Pending::Histogram(h) => {
                            let h = read_back_hint(series, h);
                            series.histograms.push(HistogramSample { t, h })
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

struct MemQuerier<'a> {
    store: &'a MemoryStorage,
    mint: i64,
    maxt: i64,
}

impl Querier for MemQuerier<'_> {
    fn shards(&self) -> usize {
        self.store.shards.max(1)
    }

    fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>, StorageError> {
        let g = self.store.inner.read();
        let mut out: Vec<Series> = g
            .candidates(matchers)
            .into_iter()
            .filter_map(|r| {
                let s = g.get(r)?;
                let lo = s.samples.partition_point(|x| x.t < self.mint);
                let hi = s.samples.partition_point(|x| x.t <= self.maxt);
                let hlo = s.histograms.partition_point(|x| x.t < self.mint);
                let hhi = s.histograms.partition_point(|x| x.t <= self.maxt);
                (lo < hi || hlo < hhi).then(|| Series {
                    labels: s.labels.clone(),
                    samples: s.samples[lo..hi].to_vec(),
                    histograms: s.histograms[hlo..hhi].to_vec(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Box::new(out.into_iter()))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let names: BTreeSet<String> = self
            .select(matchers)?
            .flat_map(|s| s.labels.into_vec().into_iter().map(|l| l.name))
            .collect();
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let vals: BTreeSet<String> = self
            .select(matchers)?
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        Ok(vals.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchOp;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn commit_makes_samples_visible_and_rollback_discards() {
        let st = MemoryStorage::new();
        let up = l(&[("__name__", "up"), ("job", "a")]);
        let mut app = st.appender();
        let r = app.append(0, &up, 1000, 1.0).unwrap();
        assert_ne!(r, 0);
        let q = st.querier(0, 10_000).unwrap();
        assert!(
            q.select(&[Matcher::equal("__name__", "up")])
                .unwrap()
                .next()
                .is_none(),
            "visible before commit"
        );
        drop(q);
        app.commit().unwrap();
        let mut app = st.appender();
        app.append(r, &Labels::empty(), 2000, 2.0).unwrap();
        app.rollback();
        let q = st.querier(0, 10_000).unwrap();
        let got: Vec<Series> = q
            .select(&[Matcher::equal("__name__", "up")])
            .unwrap()
            .collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![Sample { t: 1000, v: 1.0 }]);
    }

    #[test]
    fn out_of_order_and_duplicates_are_rejected() {
        let st = MemoryStorage::new();
        let s = l(&[("__name__", "x")]);
        let mut app = st.appender();
        let r = app.append(0, &s, 2000, 1.0).unwrap();
        assert_eq!(app.append(r, &s, 1000, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            app.append(r, &s, 2000, 5.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(app.append(r, &s, 2000, 1.0), Ok(r));
        app.commit().unwrap();
        let mut app = st.appender();
        assert_eq!(app.append(r, &s, 1500, 1.0), Err(AppendError::OutOfOrder));
    }

    #[test]
    fn select_filters_by_matchers_and_range() {
        let st = MemoryStorage::new();
        let mut app = st.appender();
        for (i, job) in ["a", "b", "c"].iter().enumerate() {
            let s = l(&[("__name__", "up"), ("job", job)]);
            app.append(0, &s, 1000 * (i as i64 + 1), 1.0).unwrap();
        }
        app.append(0, &l(&[("__name__", "other")]), 1000, 1.0)
            .unwrap();
        app.commit().unwrap();
        let q = st.querier(1500, 5000).unwrap();
        let m = [
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::NotEqual, "job", "c").unwrap(),
        ];
        let got: Vec<String> = q
            .select(&m)
            .unwrap()
            .map(|s| s.labels.get_or_empty("job").to_string())
            .collect();
        assert_eq!(got, ["b"]);
        assert_eq!(q.label_values("job", &[]).unwrap(), ["b", "c"]);
        assert!(
            q.label_names(&[])
                .unwrap()
                .contains(&"__name__".to_string())
        );
    }

    #[test]
    fn truncate_drops_old_samples_and_empty_series() {
        let st = MemoryStorage::new();
        let mut app = st.appender();
        app.append(0, &l(&[("__name__", "a")]), 1000, 1.0).unwrap();
        app.append(0, &l(&[("__name__", "b")]), 5000, 1.0).unwrap();
        app.commit().unwrap();
        st.truncate_before(2000);
        assert_eq!(st.num_series(), 1);
    }

    #[test]
    fn histograms_are_kept_apart_from_floats_with_the_hints_chunks_give() {
        use vigil_model::FloatHistogram;
        use vigil_model::histogram::CounterResetHint as Hint;
        let st = MemoryStorage::new();
        let lh = l(&[("__name__", "h")]);
        let h = |count: f64| {
            let mut h = FloatHistogram {
                count,
                ..Default::default()
            };
            h.set_positive(&[(1, count)]);
            h
        };
        let mut app = st.appender();
        app.append_histogram(0, &lh, 1000, h(1.0)).unwrap();
        app.append_histogram(0, &lh, 2000, h(2.0)).unwrap();
        // A float at a histogram's timestamp is a duplicate, as in Prometheus.
        assert_eq!(
            app.append(0, &lh, 2000, 5.0),
            Err(AppendError::DuplicateTimestamp)
        );
        app.append_histogram(0, &lh, 3000, h(1.0)).unwrap(); // a counter reset
        app.append(0, &lh, 4000, 7.0).unwrap();
        app.commit().unwrap();
        let q = st.querier(0, 10_000).unwrap();
        let s: Vec<Series> = q
            .select(&[Matcher::equal("__name__", "h")])
            .unwrap()
            .collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].samples, vec![Sample { t: 4000, v: 7.0 }]);
        let hints: Vec<(i64, Hint)> = s[0].histograms.iter().map(|x| (x.t, x.h.hint)).collect();
        // First of a chunk: unknown; then not a reset; after a reset: unknown again.
        assert_eq!(
            hints,
            vec![
                (1000, Hint::Unknown),
                (2000, Hint::NotCounterReset),
                (3000, Hint::Unknown)
            ]
        );
    }
}
