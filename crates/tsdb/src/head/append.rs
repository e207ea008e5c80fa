//! Appending to the head: a transaction's samples and exemplars are checked as they come,
//! then logged in the WAL and applied together at commit.

use std::sync::atomic::Ordering;

use vigil_model::{Labels, Sample};
use vigil_storage::{AppendError, Appender, Exemplar, SeriesRef, StorageError};

use super::{Head, RefMap};
use crate::wal;

pub(super) struct HeadAppender<'a> {
    pub(super) head: &'a Head,
    pub(super) samples: Vec<(SeriesRef, i64, f64)>,
    pub(super) newest: RefMap<Sample>,
    /// Series this transaction gives their first sample: they count against the head series
    /// limit from now on.
    pub(super) new_live: usize,
    /// Exemplars checked on append, logged after the samples and stored at commit.
    pub(super) exemplars: Vec<(SeriesRef, Exemplar)>,
    /// Index into `exemplars` of each series' newest, for order checks within the
    /// transaction.
    pub(super) newest_exemplar: RefMap<usize>,
}

impl Appender for HeadAppender<'_> {
    fn append(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
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
                let r = *idx.by_labels.get(labels)?;
                Some((r, idx.series.get(&r)?))
            });
            match found {
                Some((r, s)) => (r, s.last, idx.live()),
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
            match idx.by_labels.get(labels) {
                Some(&r) => (r, idx.live()),
                None => {
                    // A new series takes a sample now, so the live check below applies
                    // before it is created; and empty series (left by refused transactions),
                    // which the limit does not count, are bounded by twice the limit in all.
                    if max > 0
                        && ((idx.live() + self.new_live) as u64 >= max
                            || idx.series.len() as u64 >= max.saturating_mul(2))
                    {
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
        if t < self.head.min_valid.load(Ordering::Relaxed) {
            return Err(AppendError::OutOfBounds);
        }
        match self.newest.get(&r).copied().or(last) {
            Some(last) => {
                if t < last.t {
                    self.head.stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                    return Err(AppendError::OutOfOrder);
                }
                if t == last.t {
                    return if last.v.to_bits() == v.to_bits() {
                        Ok(r)
                    } else {
                        Err(AppendError::DuplicateTimestamp)
                    };
                }
            }
            None => {
                // The series' first sample. Concurrent transactions each see the others'
                // committed series only, so the limit can be passed by what is in flight.
                if max > 0 && (live + self.new_live) as u64 >= max {
                    return refuse(max);
                }
                self.new_live += 1;
            }
        }
        self.samples.push((r, t, v));
        self.newest.insert(r, Sample { t, v });
        Ok(r)
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
            if idx.series.contains_key(&r) {
                r
            } else {
                match idx.by_labels.get(labels) {
                    Some(&r) => r,
                    None => {
                        return Err(AppendError::InvalidLabels(format!(
                            "{labels}: unknown series when adding an exemplar"
                        )));
                    }
                }
            }
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
            Some((_, p)) if *p == e => return Ok(()),
            Some((_, p)) if e.t <= p.t => {
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

    fn commit(self: Box<Self>) -> Result<(), StorageError> {
        // The WAL lock is held until the samples are in the head, so a checkpoint (which takes
        // it first) never sees a record in the WAL that the head does not have yet.
        let mut wal = self.head.wal.lock();
        let mut guard = self.head.index.write();
        let idx = &mut *guard;
        // Samples that fell behind a block cut since they were appended are out of bounds now.
        let min_valid = self.head.min_valid.load(Ordering::Relaxed);
        let samples: Vec<(SeriesRef, i64, f64)> = self
            .samples
            .into_iter()
            .filter(|(_, t, _)| *t >= min_valid)
            .collect();
        let exemplars = self.exemplars;
        if samples.is_empty() && exemplars.is_empty() {
            // Nothing to acknowledge; unlogged series wait for a commit with samples.
            return Ok(());
        }
        let series_records = std::mem::take(&mut idx.unlogged);
        if let Some(w) = wal.as_mut()
            && let Err(e) = w.log(|out, c| {
                if !series_records.is_empty() {
                    wal::encode_series(out, &series_records, c);
                }
                if !samples.is_empty() {
                    wal::encode_samples(out, &samples, c);
                }
                if !exemplars.is_empty() {
                    wal::encode_exemplars(out, &exemplars, c);
                }
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
        let n = samples.len() as u64;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (r, t, v) in samples {
            if let Some(s) = idx.series.get_mut(&r)
                && s.last.is_none_or(|l| l.t < t)
            {
                if s.last.is_none() {
                    idx.empty -= 1;
                }
                if self.head.wal_only {
                    s.note(t, v);
                } else {
                    s.push(t, v);
                }
                lo = lo.min(t);
                hi = hi.max(t);
            }
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
        drop(guard);
        for (labels, e) in exemplars {
            // Checked when appended; one a concurrent commit overtook is dropped, as in
            // Prometheus.
            let _ = self.head.exemplars.add(&labels, e);
        }
        drop(wal);
        self.head.note_range(lo, hi);
        self.head
            .stats
            .samples_appended
            .fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn rollback(self: Box<Self>) {
        // Series this transaction created stay in the head, empty, and in the unlogged list:
        // another transaction may already hold their refs. Empty series do not count against
        // the series limit, and truncation removes those that stay empty.
    }
}
