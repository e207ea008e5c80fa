//! Appending to the head: a transaction's samples and exemplars are checked as they come,
//! then logged in the WAL and applied together at commit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How far from 1970 a sample's time may be, in ms, either way (exclusive).
pub(crate) const TIME_BOUND: i64 = 1 << 62;

/// Whether `t` is within [`TIME_BOUND`].
pub(crate) fn in_time_bound(t: i64) -> bool {
    -TIME_BOUND < t && t < TIME_BOUND
}

use vigil_model::{FloatHistogram, Labels, Sample};
use vigil_storage::{AppendError, Appender, Exemplar, Metadata, SeriesRef, StorageError};

use super::{HISTOGRAM_MARK, Head, RefMap};
use crate::wal;

pub(super) struct HeadAppender<'a> {
    pub(super) head: &'a Head,
    /// Open until the appender is gone (see `Head::remove_empty`).
    pub(super) _txn: super::OpenTxn<'a>,
    pub(super) samples: Vec<(SeriesRef, i64, f64)>,
    /// Native histogram samples, logged after the floats and applied after them.
    pub(super) histograms: Vec<(SeriesRef, i64, Arc<FloatHistogram>)>,
    /// Earlier batches of this transaction: one is closed when a series switches between
    /// floats and histograms, so that within a batch each series has one kind and applying
    /// its floats before its histograms keeps every series in time order (in the commit
    /// and, batch by batch from the WAL, in replay).
    pub(super) batches: Vec<Batch>,
    /// Each series' newest sample in this transaction (a histogram's value is
    /// [`HISTOGRAM_MARK`], the histogram itself in `newest_histogram`).
    pub(super) newest: RefMap<Sample>,
    pub(super) newest_histogram: RefMap<Arc<FloatHistogram>>,
    /// Series this transaction gives their first sample: they count against the head series
    /// limit from now on.
    pub(super) new_live: usize,
    /// Exemplars checked on append, logged after the samples and stored at commit.
    pub(super) exemplars: Vec<(SeriesRef, Exemplar)>,
    /// Index into `exemplars` of each series' newest, for order checks within the
    /// transaction.
    pub(super) newest_exemplar: RefMap<usize>,
    /// Series' metadata that differs from what the head holds (`metadata-wal-records`),
    /// logged after the series records and applied at commit; a series' last one wins.
    pub(super) metadata: RefMap<Arc<Metadata>>,
    /// Samples older than the head's start that the out-of-order window admits (see
    /// `head::old`), with their series' labels: floats, and native histograms.
    pub(super) old: Vec<(Labels, i64, f64)>,
    pub(super) old_histograms: Vec<(Labels, i64, Arc<FloatHistogram>)>,
}

pub(super) type Batch = (
    Vec<(SeriesRef, i64, f64)>,
    Vec<(SeriesRef, i64, Arc<FloatHistogram>)>,
);

/// What the checks of an append found.
enum Admit {
    /// Take the sample into series `.0`; `.1` is the series' newest sample in this
    /// transaction, if any (a histogram's value is [`HISTOGRAM_MARK`]).
    Take(SeriesRef, Option<Sample>),
    /// Take the sample into series `.0` although it is older than the series' newest: the
    /// out-of-order window admits it.
    Late(SeriesRef),
    /// An exact repeat of the series' newest sample: nothing to do.
    Repeat(SeriesRef),
    /// Older than the head's start but within the out-of-order window: kept apart, and
    /// written out as a block of its own range (`head::old`).
    Old(SeriesRef),
}

impl HeadAppender<'_> {
    /// The series (by ref, else by labels) and its newest sample, in this transaction or
    /// stored; None for a series the head does not have.
    fn newest(&self, r: SeriesRef, labels: &Labels) -> Option<(SeriesRef, Option<Sample>)> {
        let idx = self.head.index.read();
        let r = if idx.series.contains_key(&r) {
            r
        } else {
            idx.find(labels)?
        };
        let last = self
            .newest
            .get(&r)
            .copied()
            .or_else(|| idx.series.get(&r)?.last());
        Some((r, last))
    }

    /// Whether the series limit `max` (0: none) refuses a sample that makes a series live,
    /// given the index's `live` and `held` series; `creating` a series also counts the held
    /// ones: empty series (left by refused transactions), which the limit does not count, are
    /// bounded by twice the limit in all.
    fn limit_refuses(&self, max: u64, live: usize, held: usize, creating: bool) -> bool {
        max > 0
            && ((live + self.new_live) as u64 >= max
                || (creating && held as u64 >= max.saturating_mul(2)))
    }

    /// Whether the series (by ref, else by labels) has a histogram as its newest sample, in
    /// this transaction or stored.
    fn newest_is_histogram(&self, r: SeriesRef, labels: &Labels) -> bool {
        self.newest(r, labels)
            .and_then(|(_, last)| last)
            .is_some_and(|l| l.v.to_bits() == HISTOGRAM_MARK)
    }

    fn close_batch(&mut self) {
        let b = (
            std::mem::take(&mut self.samples),
            std::mem::take(&mut self.histograms),
        );
        self.batches.push(b);
    }

    /// The checks every append makes (series found or created within the series limit, time
    /// in bounds and in order, or late within the out-of-order window); `histogram` tells the
    /// sample's kind, and `repeat` whether a sample at the newest one's time repeats it
    /// exactly.
    fn admit(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        histogram: bool,
        repeat: impl FnOnce(&Self, SeriesRef, Sample) -> bool,
    ) -> Result<Admit, AppendError> {
        // Times 2^62 ms or more either side of 1970 (146 million years) are out of bounds,
        // before a series is made for them: any two times the head keeps then differ by less
        // than an i64 holds, so its spans and block ranges never overflow. (Prometheus takes
        // them; its arithmetic wraps.)
        if !in_time_bound(t) {
            self.head
                .stats
                .out_of_bounds
                .fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::OutOfBounds);
        }
        let max = self.head.stats.max_series.load(Ordering::Relaxed);
        let refuse = |max: u64| {
            self.head
                .stats
                .series_refused
                .fetch_add(1, Ordering::Relaxed);
            Err(AppendError::SeriesLimit(max))
        };
        let (r, last, live) = {
            let idx = self.head.index.read();
            let found = idx.series.get(&r).map(|s| (r, s)).or_else(|| {
                let r = idx.find(labels)?;
                Some((r, idx.series.get(&r)?))
            });
            match found {
                Some((r, s)) => {
                    s.spare();
                    (r, s.last(), idx.live())
                }
                None => (0, None, 0),
            }
        };
        let (r, live) = if r == 0 {
            if labels.metric_name().is_none() {
                return Err(AppendError::InvalidLabels(format!(
                    "{labels}: missing metric name"
                )));
            }
            let mut idx = self.head.index.write();
            match idx.find(labels) {
                Some(r) => {
                    if let Some(s) = idx.series.get(&r) {
                        s.spare();
                    }
                    (r, idx.live())
                }
                None => {
                    // A new series takes a sample now, so the live check below applies
                    // before it is created.
                    if self.limit_refuses(max, idx.live(), idx.series.len(), true) {
                        return refuse(max);
                    }
                    let r = self.head.next_ref.fetch_add(1, Ordering::Relaxed);
                    idx.insert(r, labels.clone());
                    idx.unlogged.push((r, labels.clone()));
                    self.head
                        .stats
                        .series_created
                        .fetch_add(1, Ordering::Relaxed);
                    (r, idx.live())
                }
            }
        } else {
            (r, live)
        };
        // Prometheus's rule: with a window, late samples from the head's newest time less the
        // window on are taken, and anything older is "too old" (not out of order or out of
        // bounds). A sample in the window but before the head's range (already in blocks) is
        // kept apart (`head::old`). The agent
        // (samples in the WAL only) counts the window back from the series' newest sample,
        // exclusive, and refuses the rest as out of order, as Prometheus's agent does.
        let window = self.head.late_window.load(Ordering::Relaxed);
        let agent = self.head.wal_only;
        // The head's newest time is read only with a window (this is every append's path).
        let too_old = |t: i64| {
            window > 0
                && !agent
                && t < self
                    .head
                    .max_time
                    .load(Ordering::Relaxed)
                    .saturating_sub(window)
        };
        if t < self.head.min_valid.load(Ordering::Relaxed) {
            if too_old(t) {
                self.head.stats.too_old.fetch_add(1, Ordering::Relaxed);
                return Err(AppendError::TooOld);
            }
            // Within the window (Prometheus's rule: no older than the head's newest time less
            // the window, whatever the head's start).
            if window > 0 && !agent {
                return Ok(Admit::Old(r));
            }
            self.head
                .stats
                .out_of_bounds
                .fetch_add(1, Ordering::Relaxed);
            return Err(AppendError::OutOfBounds);
        }
        let pending = self.newest.get(&r).copied();
        match pending.or(last) {
            Some(last) => {
                if t < last.t {
                    let in_window = window > 0
                        && if agent {
                            t > last.t.saturating_sub(window)
                        } else {
                            !too_old(t)
                        };
                    // Of the kind of the series' newest sample: a batch holds one kind per
                    // series (see `batches`).
                    if in_window && (last.v.to_bits() == HISTOGRAM_MARK) == histogram {
                        return Ok(Admit::Late(r));
                    }
                    if too_old(t) {
                        self.head.stats.too_old.fetch_add(1, Ordering::Relaxed);
                        return Err(AppendError::TooOld);
                    }
                    self.head.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                    return Err(AppendError::OutOfOrder);
                }
                if t == last.t {
                    return if repeat(self, r, last) {
                        Ok(Admit::Repeat(r))
                    } else if agent
                        && window > 0
                        && (last.v.to_bits() == HISTOGRAM_MARK) == histogram
                    {
                        // Prometheus's agent refuses only what is a window or more behind.
                        Ok(Admit::Late(r))
                    } else {
                        Err(AppendError::DuplicateTimestamp)
                    };
                }
            }
            None => {
                // The series' first sample. Concurrent transactions each see the others'
                // committed series only, so the limit can be passed by what is in flight.
                if self.limit_refuses(max, live, 0, false) {
                    return refuse(max);
                }
                self.new_live += 1;
            }
        }
        Ok(Admit::Take(r, pending))
    }
}

impl Appender for HeadAppender<'_> {
    fn append(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        // A staleness marker for a series whose newest sample is a histogram is a histogram
        // stale marker, as Prometheus's head makes it: the series keeps one kind.
        if vigil_model::is_stale_nan(v) && self.newest_is_histogram(r, labels) {
            let stale = FloatHistogram {
                sum: v,
                ..Default::default()
            };
            return self.append_histogram(r, labels, t, stale);
        }
        let r = match self.admit(r, labels, t, false, |_, _, last| {
            last.v.to_bits() == v.to_bits() && v.to_bits() != HISTOGRAM_MARK
        })? {
            Admit::Repeat(r) => return Ok(r),
            Admit::Old(r) => {
                self.old.push((labels.clone(), t, v));
                return Ok(r);
            }
            Admit::Late(r) => {
                // Applied after the newer samples of its batch, as a late sample; the
                // series' newest stays what it was.
                self.samples.push((r, t, v));
                return Ok(r);
            }
            Admit::Take(r, pending) => {
                if pending.is_some_and(|l| l.v.to_bits() == HISTOGRAM_MARK) {
                    self.close_batch();
                }
                r
            }
        };
        self.samples.push((r, t, v));
        self.newest.insert(r, Sample { t, v });
        Ok(r)
    }

    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: FloatHistogram,
    ) -> Result<SeriesRef, AppendError> {
        // A stale marker is taken with any layout; anything else must have one Prometheus
        // defines, and fit a chunk.
        let valid = vigil_model::histogram::valid_layout(&h)
            && crate::prometheus::histogram_chunk::fits(&h);
        if !(valid || vigil_model::is_stale_nan(h.sum)) {
            return Err(AppendError::InvalidHistogram(format!(
                "{labels}: schema {}, zero threshold {}, {} positive and {} negative spans for {} and {} buckets",
                h.schema,
                h.zero_threshold,
                h.positive_spans.len(),
                h.negative_spans.len(),
                h.positive_buckets.len(),
                h.negative_buckets.len()
            )));
        }
        let r = match self.admit(r, labels, t, true, |me, r, last| {
            if last.v.to_bits() != HISTOGRAM_MARK {
                return false;
            }
            let prev = me.newest_histogram.get(&r).cloned().or_else(|| {
                let idx = me.head.index.read();
                idx.series.get(&r)?.last_histogram().cloned()
            });
            prev.is_some_and(|p| p.same_as(&h))
        })? {
            Admit::Repeat(r) => return Ok(r),
            Admit::Old(r) => {
                self.old_histograms.push((labels.clone(), t, Arc::new(h)));
                return Ok(r);
            }
            Admit::Late(r) => {
                // Applied after the newer samples of its batch, as a late sample; the
                // series' newest stays what it was.
                self.histograms.push((r, t, Arc::new(h)));
                return Ok(r);
            }
            Admit::Take(r, pending) => {
                if pending.is_some_and(|l| l.v.to_bits() != HISTOGRAM_MARK) {
                    self.close_batch();
                }
                r
            }
        };
        let h = Arc::new(h);
        self.histograms.push((r, t, h.clone()));
        self.newest.insert(
            r,
            Sample {
                t,
                v: f64::from_bits(HISTOGRAM_MARK),
            },
        );
        self.newest_histogram.insert(r, h);
        Ok(r)
    }

    fn append_start_zero(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        start: i64,
        t: i64,
        template: Option<&FloatHistogram>,
    ) -> Result<SeriesRef, AppendError> {
        if start >= t
            || start < self.head.min_valid.load(Ordering::Relaxed)
            || !in_time_bound(start)
        {
            return Ok(r);
        }
        // Checked here, so the usual refusal (not after the newest sample) is not counted as
        // an out-of-order sample.
        let known = self.newest(r, labels);
        if let Some((r, Some(last))) = known
            && start <= last.t
        {
            return Ok(r);
        }
        // A series the limit would refuse: the sample's own append refuses it, and counts it
        // once.
        let max = self.head.stats.max_series.load(Ordering::Relaxed);
        if known.is_none_or(|k| k.1.is_none()) {
            let idx = self.head.index.read();
            if self.limit_refuses(max, idx.live(), idx.series.len(), known.is_none()) {
                return Ok(r);
            }
        }
        let r = known.map_or(r, |k| k.0);
        match template {
            None => self.append(r, labels, start, 0.0),
            Some(h) => {
                let zero = FloatHistogram {
                    schema: h.schema,
                    zero_threshold: h.zero_threshold,
                    custom_values: h.custom_values.clone(),
                    hint: vigil_model::histogram::CounterResetHint::CounterReset,
                    ..Default::default()
                };
                self.append_histogram(r, labels, start, zero)
            }
        }
    }

    fn append_exemplar(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        mut e: Exemplar,
    ) -> Result<(), AppendError> {
        let head = self.head;
        // Neither kept nor logged without the feature (the server's ring or the agent's WAL).
        if !head.wal_opts.exemplars || (!head.wal_only && !head.exemplars.enabled()) {
            return Ok(());
        }
        // The series by ref, or by labels (a receiver names it by labels only).
        let r = {
            let idx = head.index.read();
            let r = if idx.series.contains_key(&r) {
                r
            } else {
                match idx.find(labels) {
                    Some(r) => r,
                    None => {
                        return Err(AppendError::InvalidLabels(format!(
                            "{labels}: unknown series when adding an exemplar"
                        )));
                    }
                }
            };
            // The commit stores the exemplar for this series: it must still be there.
            if let Some(s) = idx.series.get(&r) {
                s.spare();
            }
            r
        };
        // Prometheus drops an exemplar's empty-valued labels.
        if e.labels.iter().any(|l| l.value.is_empty()) {
            let mut b = e.labels.builder();
            b.retain(|l| !l.value.is_empty());
            e.labels = b.build();
        }
        vigil_storage::exemplar::check_labels(&e)?;
        if head.wal_only {
            // The agent logs each new exemplar for remote write; a repeat of the last is not.
            let mut last = head.agent_exemplars.lock();
            if last.get(&r).is_some_and(|l| *l == e) {
                return Ok(());
            }
            last.insert(r, e.clone());
            self.exemplars.push((r, e));
            return Ok(());
        }
        // Against the series' newest: stored, or pending in this transaction.
        let pending = self
            .newest_exemplar
            .get(&r)
            .and_then(|&i| self.exemplars.get(i));
        match pending {
            Some((_, p)) if p.same(&e) => return Ok(()),
            Some((_, p)) if e.precedes(p) => {
                return Err(vigil_storage::ExemplarError::OutOfOrder.into());
            }
            Some(_) => {}
            None => {
                if !head.exemplars.validate(labels, &e)? {
                    return Ok(());
                }
            }
        }
        self.newest_exemplar.insert(r, self.exemplars.len());
        self.exemplars.push((r, e));
        Ok(())
    }

    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &Arc<Metadata>,
    ) -> Result<SeriesRef, AppendError> {
        if !self.head.wal_opts.metadata {
            return Ok(r);
        }
        let idx = self.head.index.read();
        let r = if idx.series.contains_key(&r) {
            r
        } else {
            idx.find(labels).ok_or_else(|| {
                AppendError::InvalidLabels(format!("{labels}: unknown series when adding metadata"))
            })?
        };
        // The commit records it for this series: it must still be there.
        if let Some(s) = idx.series.get(&r) {
            s.spare();
        }
        // Against this transaction's, else the head's: only a change is logged.
        let held = self.metadata.get(&r).or_else(|| idx.metadata.get(&r));
        if held.is_none_or(|h| **h != **meta) {
            self.metadata.insert(r, meta.clone());
        }
        Ok(r)
    }

    fn reserve(&mut self, n: usize) {
        self.samples.reserve(n.saturating_sub(self.samples.len()));
        self.newest.reserve(n.saturating_sub(self.newest.len()));
    }

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        // The WAL lock is held until the samples are in the head, so a checkpoint (which takes
        // it first) never sees a record in the WAL that the head does not have yet.
        let mut wal = self.head.wal.lock();
        let mut guard = self.head.index.write();
        let idx = &mut *guard;
        // Samples that fell behind a block cut since they were appended: floats within the
        // window are old samples now (as Prometheus's commit checks them again), the rest out
        // of bounds.
        let min_valid = self.head.min_valid.load(Ordering::Relaxed);
        let mut batches = self.batches;
        batches.push((self.samples, self.histograms));
        let before: usize = batches.iter().map(|(fs, hs)| fs.len() + hs.len()).sum();
        let window = self.head.late_window.load(Ordering::Relaxed);
        let oldest = self
            .head
            .max_time
            .load(Ordering::Relaxed)
            .saturating_sub(window);
        let mut old_samples = self.old;
        let mut old_histograms = self.old_histograms;
        let (mut moved, mut too_old) = (0, 0);
        // Whether a sample behind the cut is kept as an old one, or counted too old.
        let mut behind = |t: i64| -> bool {
            if window > 0 && !self.head.wal_only {
                if t < oldest {
                    // Counted as Prometheus's commit counts it with a window.
                    too_old += 1;
                    return false;
                }
                return true;
            }
            false
        };
        for (fs, hs) in batches.iter_mut() {
            fs.retain(|&(r, t, v)| {
                if t >= min_valid {
                    return true;
                }
                if behind(t)
                    && let Some(s) = idx.series.get(&r)
                {
                    old_samples.push((s.labels.clone(), t, v));
                    moved += 1;
                }
                false
            });
            hs.retain(|(r, t, h)| {
                if *t >= min_valid {
                    return true;
                }
                if behind(*t)
                    && let Some(s) = idx.series.get(r)
                {
                    old_histograms.push((s.labels.clone(), *t, h.clone()));
                    moved += 1;
                }
                false
            });
        }
        if too_old > 0 {
            self.head
                .stats
                .too_old
                .fetch_add(too_old as u64, Ordering::Relaxed);
        }
        let before = before - moved - too_old;
        let kept: usize = batches.iter().map(|(fs, hs)| fs.len() + hs.len()).sum();
        if kept < before {
            self.head
                .stats
                .out_of_bounds
                .fetch_add((before - kept) as u64, Ordering::Relaxed);
        }
        batches.retain(|(fs, hs)| !fs.is_empty() || !hs.is_empty());
        let exemplars = self.exemplars;
        // Of series still in the head (a truncation may have taken one since), by ref.
        let mut metadata: Vec<(SeriesRef, Arc<Metadata>)> = self
            .metadata
            .into_iter()
            .filter(|(r, _)| idx.series.contains_key(r))
            .collect();
        metadata.sort_unstable_by_key(|(r, _)| *r);
        // Old samples by series, as the WAL logs them (a scrape gives each one once; a remote
        // write several).
        let old: super::old::OldSamples = by_series(old_samples);
        let old_h: super::old::OldHistograms = by_series(old_histograms);
        if batches.is_empty()
            && exemplars.is_empty()
            && metadata.is_empty()
            && old.is_empty()
            && old_h.is_empty()
        {
            // Nothing to acknowledge; unlogged series wait for a commit with samples.
            return Ok(());
        }
        let any_histograms = batches.iter().any(|(_, hs)| !hs.is_empty());
        // The newest time this commit logs, for the segment it goes to (a checkpoint drops
        // segments whose times are all in blocks).
        let newest = batches
            .iter()
            .flat_map(|(fs, hs)| fs.iter().map(|x| x.1).chain(hs.iter().map(|x| x.1)))
            .chain(exemplars.iter().map(|(_, e)| e.t))
            .max()
            .unwrap_or(i64::MIN);
        let series_records = std::mem::take(&mut idx.unlogged);
        if let Some(w) = wal.as_mut()
            && let Err(e) = (if any_histograms {
                // Segments that may hold histograms say so (an older build refuses them).
                w.allow_histograms()
            } else {
                Ok(())
            })
            .and_then(|()| match (old.is_empty(), old_h.is_empty()) {
                (true, true) => Ok(()),
                (false, true) => w.allow(wal::OLD_SAMPLES_VERSION),
                (_, false) => w.allow(wal::OLD_HISTOGRAMS_VERSION),
            })
            .and_then(|()| {
                w.log(|out, c| {
                    if !series_records.is_empty() {
                        wal::encode_series(out, &series_records, c);
                    }
                    // After the series it names, before the samples (as Prometheus logs it).
                    if !metadata.is_empty() {
                        wal::encode_metadata(out, &metadata, c);
                    }
                    for (fs, hs) in &batches {
                        if !fs.is_empty() {
                            wal::encode_samples(out, fs, c);
                        }
                        if !hs.is_empty() {
                            wal::encode_histograms(out, hs, c);
                        }
                    }
                    if !exemplars.is_empty() {
                        wal::encode_exemplars(out, &exemplars, c);
                    }
                    if !old.is_empty() {
                        wal::encode_old_samples(out, &old, c);
                    }
                    if !old_h.is_empty() {
                        wal::encode_old_histograms(out, &old_h, c);
                    }
                })?;
                w.note_newest(newest);
                Ok(())
            })
        {
            // The series stay in the head, still to be logged by the next commit.
            let mut rest = series_records;
            rest.append(&mut idx.unlogged);
            idx.unlogged = rest;
            let st = &self.head.stats;
            st.wal_writes_failed.fetch_add(1, Ordering::Relaxed);
            if !st.appends_failing.swap(true, Ordering::Relaxed) {
                // Once per episode: every scrape would repeat it.
                tracing::error!(
                    err = %e,
                    "Storage cannot write its WAL: appends are refused (nothing is acknowledged that is not logged) until the disk has room again; queries and the UI go on"
                );
            }
            return Err(StorageError::Other(format!("write to WAL: {e}")));
        }
        if self
            .head
            .stats
            .appends_failing
            .swap(false, Ordering::Relaxed)
        {
            tracing::warn!("Storage writes its WAL again: appends resumed");
        }
        if any_histograms {
            self.head.has_histograms.store(true, Ordering::Relaxed);
        }
        for (r, m) in metadata {
            idx.metadata.insert(r, m);
        }
        let mut n = 0u64;
        let mut late = 0u64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (fs, hs) in batches {
            n += (fs.len() + hs.len()) as u64;
            let a = super::apply_batch(idx, self.head.wal_only, fs, hs);
            late += a.late;
            lo = lo.min(a.lo);
            hi = hi.max(a.hi);
        }
        // Under the index lock: a truncation sets the head's range from what it found under
        // that lock, and must not overwrite a minimum lowered by samples it did not see.
        self.head.note_range(lo, hi);
        // Under the WAL lock, which a flush's swap of the store and a checkpoint's cut take.
        if !old.is_empty() || !old_h.is_empty() {
            let k = self.head.apply_old(old, old_h);
            n += k;
            late += k;
        }
        // The ring takes the exemplars outside the index lock (a query of the ring must not
        // stall every append), still under the WAL lock, so a checkpoint cutting the WAL
        // finds them in the ring.
        let exemplars: Vec<(Labels, Exemplar)> = if self.head.wal_only {
            Vec::new()
        } else {
            exemplars
                .into_iter()
                .filter_map(|(r, e)| Some((idx.series.get(&r)?.labels.clone(), e)))
                .collect()
        };
        let write_due = guard.map_due();
        drop(guard);
        for (labels, e) in exemplars {
            // Checked when appended; one a concurrent commit overtook is dropped, as in
            // Prometheus.
            let _ = self.head.exemplars.add(&labels, e);
        }
        drop(wal);
        // Full chunks to their files, with no lock held, once enough are due.
        if write_due {
            self.head.write_chunks(false);
        }
        self.head
            .stats
            .samples_appended
            .fetch_add(n, Ordering::Relaxed);
        self.head
            .stats
            .late_appended
            .fetch_add(late, Ordering::Relaxed);
        Ok(())
    }

    fn rollback(self: Box<Self>) {
        // Series this transaction created stay in the head, empty, and in the unlogged list:
        // another transaction may already hold their refs. Empty series do not count against
        // the series limit, and truncation removes those that stay empty.
    }
}

/// Samples grouped by series in the order their series first came, as the WAL logs old
/// samples (a scrape gives each series one; a remote write several).
fn by_series<V>(samples: Vec<(Labels, i64, V)>) -> Vec<(Labels, Vec<(i64, V)>)> {
    let mut at: foldhash::HashMap<Labels, usize> = Default::default();
    let mut out: Vec<(Labels, Vec<(i64, V)>)> = Vec::new();
    for (labels, t, v) in samples {
        let i = *at.entry(labels.clone()).or_insert_with(|| {
            out.push((labels, Vec::new()));
            out.len() - 1
        });
        out[i].1.push((t, v));
    }
    out
}
