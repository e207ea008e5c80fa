//! Late samples older than the head's start: what `storage.tsdb.out_of_order_time_window`
//! admits past the range already cut into blocks (Prometheus keeps these in its out-of-order
//! head and writes out-of-order blocks).
//!
//! They are kept apart from the head's series, in in-memory heads of their own, so nothing of
//! the head (its range, truncation, cuts) changes: the head's `min_valid` still guards its
//! cuts. The WAL logs them as records of their own (`wal::Record::OldSamples` and
//! `OldHistograms`, series by labels), which replay puts back here whatever the head's start; checkpoints and head
//! snapshots write what is held here the same way, so a checkpoint dropping the segments
//! that logged them loses nothing. Each maintenance pass writes them out as blocks of their
//! block ranges (`Db::flush_old`), which overlap blocks already written; queries merge those,
//! and compaction merges overlapping blocks first. Until those blocks are in place the store
//! being written stays queryable (`flushing`), so a sample is never out of sight.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use vigil_model::Labels;

use super::{Head, Index, apply_floats, apply_histograms};
use crate::wal;

/// What the head holds of old samples: the store taking them, and the one being written out.
#[derive(Default)]
pub(crate) struct OldStore {
    live: Option<Arc<Head>>,
    flushing: Option<Arc<Head>>,
    /// The WAL may hold old samples records (logged, or replayed, since the last whole
    /// checkpoint): a deletion must then checkpoint, or a replay would bring them back.
    pub(super) in_wal: bool,
}

/// Old samples grouped by series, as the WAL logs them.
pub(crate) type OldSamples = Vec<(Labels, Vec<(i64, f64)>)>;

/// Old native histograms grouped by series, as the WAL logs them.
pub(crate) use crate::wal::OldHistograms;

/// The store's series of `labels`, created if new.
fn series_ref(idx: &mut Index, next_ref: &mut u64, labels: Labels) -> u64 {
    match idx.find(&labels) {
        Some(r) => r,
        None => {
            let r = *next_ref;
            *next_ref += 1;
            idx.insert(r, labels);
            r
        }
    }
}

/// Put `o` and `h` into the store `idx` (a replay's, or a live store's under its lock);
/// returns the range taken (`lo > hi` when nothing was) and how many were (a repeat of a
/// time held is not). A series may hold both kinds: each is kept at its own times, as late
/// samples in the head are.
pub(super) fn apply(
    idx: &mut Index,
    next_ref: &mut u64,
    o: OldSamples,
    h: OldHistograms,
) -> (i64, i64, u64) {
    let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0);
    for (labels, samples) in o {
        let r = series_ref(idx, next_ref, labels);
        let a = apply_floats(idx, false, samples.into_iter().map(|(t, v)| (r, t, v)));
        lo = lo.min(a.lo);
        hi = hi.max(a.hi);
        n += a.n;
    }
    for (labels, samples) in h {
        let r = series_ref(idx, next_ref, labels);
        let a = apply_histograms(idx, false, samples.into_iter().map(|(t, h)| (r, t, h)));
        lo = lo.min(a.lo);
        hi = hi.max(a.hi);
        n += a.n;
    }
    (lo, hi, n)
}

/// An in-memory head holding `idx` (a replay's store), its refs below `next_ref`;
/// `histograms`: it holds native histograms.
pub(super) fn from_index(
    idx: Index,
    next_ref: u64,
    lo: i64,
    hi: i64,
    histograms: bool,
) -> Arc<Head> {
    let h = Head::in_memory();
    h.has_histograms.store(histograms, Ordering::Relaxed);
    *h.index.write() = idx;
    h.next_ref.store(next_ref, Ordering::Relaxed);
    h.note_range(lo, hi);
    Arc::new(h)
}

impl OldStore {
    /// A store taking old samples in `live` (a replay's), if any; `in_wal`: the WAL may hold
    /// old samples records besides.
    pub(super) fn with_live(live: Option<Arc<Head>>, in_wal: bool) -> OldStore {
        OldStore {
            in_wal: in_wal || live.is_some(),
            live,
            flushing: None,
        }
    }

    /// Whether no store holds a sample.
    pub(super) fn is_empty(&self) -> bool {
        self.live
            .iter()
            .chain(self.flushing.iter())
            .all(|h| h.time_range().is_none())
    }
}

impl Head {
    /// Take old samples a commit logged (called under the WAL lock, after the commit's own
    /// samples, so a checkpoint cut or a flush never misses one logged before it).
    pub(super) fn apply_old(&self, o: OldSamples, h: OldHistograms) -> u64 {
        let live = {
            let mut st = self.old.write();
            st.in_wal = true;
            st.live
                .get_or_insert_with(|| Arc::new(Head::in_memory()))
                .clone()
        };
        let mut idx = live.index.write();
        let mut next = live.next_ref.load(Ordering::Relaxed);
        if !h.is_empty() {
            live.has_histograms.store(true, Ordering::Relaxed);
        }
        let (lo, hi, n) = apply(&mut idx, &mut next, o, h);
        live.next_ref.store(next, Ordering::Relaxed);
        live.note_range(lo, hi);
        n
    }

    /// The stores of old samples to read from: one being written (committed earlier), then
    /// the one taking them, so at a time both hold the earlier commit's sample wins, as after
    /// the flush and in replay.
    pub fn old_stores(&self) -> Vec<Arc<Head>> {
        let st = self.old.read();
        st.flushing.iter().chain(st.live.iter()).cloned().collect()
    }

    /// Whether any old sample is held.
    pub fn holds_old(&self) -> bool {
        !self.old.read().is_empty()
    }

    /// The segment version that holds what the stores hold: old histograms need a later one
    /// than old floats.
    pub(super) fn old_version(&self) -> u32 {
        let histograms = self
            .old_stores()
            .iter()
            .any(|h| h.has_histograms.load(Ordering::Relaxed));
        match histograms {
            true => wal::OLD_HISTOGRAMS_VERSION,
            false => wal::OLD_SAMPLES_VERSION,
        }
    }

    /// Whether the WAL may hold old samples records (see [`OldStore::in_wal`]).
    pub fn old_in_wal(&self) -> bool {
        self.old.read().in_wal
    }

    /// The store to write out as blocks, and whether it is one a failed write left (the live
    /// one is then still to be written), else the live one (a new one takes what comes
    /// next). None if nothing is held. The swap happens under the WAL lock, which commits
    /// hold until their old samples are in the live store.
    pub fn begin_old_flush(&self) -> Option<(Arc<Head>, bool)> {
        let _wal = self.wal.lock();
        let mut st = self.old.write();
        if let Some(f) = &st.flushing {
            return Some((f.clone(), true));
        }
        st.flushing = st.live.take().filter(|h| h.time_range().is_some());
        st.flushing.clone().map(|f| (f, false))
    }

    /// The store being written is in blocks now (which queries read from here on).
    pub fn end_old_flush(&self) {
        self.old.write().flushing = None;
    }

    /// Every old sample held, as old samples and old histograms records framed into `write` (a
    /// checkpoint's or a head snapshot's segments of `version`, what [`Head::old_version`] gave
    /// once the WAL they cover was cut). Below [`wal::OLD_HISTOGRAMS_VERSION`] no histogram is
    /// written, below [`wal::OLD_SAMPLES_VERSION`] nothing: what is seen now of a kind the
    /// version did not allow came with a commit after that cut (a commit marks the store before
    /// applying, under the WAL lock), so the segments kept after the cut log it, and a segment
    /// of an older version must not hold its record.
    pub(super) fn write_old(
        &self,
        version: u32,
        write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if version < wal::OLD_SAMPLES_VERSION {
            return Ok(());
        }
        let with_histograms = version >= wal::OLD_HISTOGRAMS_VERSION;
        let mut framed = Vec::new();
        for store in self.old_stores() {
            let mut batch: OldSamples = Vec::new();
            let mut hbatch: OldHistograms = Vec::new();
            let mut pending = 0;
            let mut flush = |batch: &mut OldSamples, hbatch: &mut OldHistograms| {
                for rec in [
                    wal::Record::OldSamples(std::mem::take(batch)),
                    wal::Record::OldHistograms(std::mem::take(hbatch)),
                ] {
                    let empty = match &rec {
                        wal::Record::OldSamples(b) => b.is_empty(),
                        wal::Record::OldHistograms(b) => b.is_empty(),
                        _ => true,
                    };
                    if !empty {
                        framed.clear();
                        wal::encode(&mut framed, &rec, self.compression);
                        write(&framed)?;
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            for s in store.series_in_sorted(i64::MIN, i64::MAX) {
                pending += s.samples.len() + s.histograms.len();
                if with_histograms && !s.histograms.is_empty() {
                    let hs = s.histograms.iter().map(|x| (x.t, x.h.clone())).collect();
                    hbatch.push((s.labels.clone(), hs));
                }
                if !s.samples.is_empty() {
                    batch.push((s.labels, s.samples.iter().map(|x| (x.t, x.v)).collect()));
                }
                // Records as a whole checkpoint's: written once about 100,000 samples are
                // pending (a series of more goes with those before it).
                if batch.len() + hbatch.len() >= 1_000 || pending >= 100_000 {
                    pending = 0;
                    flush(&mut batch, &mut hbatch)?;
                }
            }
            flush(&mut batch, &mut hbatch)?;
        }
        Ok(())
    }
}
