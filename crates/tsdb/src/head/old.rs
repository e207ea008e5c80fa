//! Late samples older than the head's start: what `storage.tsdb.out_of_order_time_window`
//! admits past the range already cut into blocks (Prometheus keeps these in its out-of-order
//! head and writes out-of-order blocks).
//!
//! They are kept apart from the head's series, in in-memory heads of their own, so nothing of
//! the head (its range, truncation, cuts) changes: the head's `min_valid` still guards its
//! cuts. The WAL logs them as records of their own (`wal::Record::OldSamples`, series by
//! labels), which replay puts back here whatever the head's start; checkpoints and head
//! snapshots write what is held here the same way, so a checkpoint dropping the segments
//! that logged them loses nothing. Each maintenance pass writes them out as blocks of their
//! block ranges (`Db::flush_old`), which overlap blocks already written; queries merge those,
//! and compaction merges overlapping blocks first. Until those blocks are in place the store
//! being written stays queryable (`flushing`), so a sample is never out of sight.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use vigil_model::Labels;

use super::{Head, Index, apply_floats};
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

/// Put `o` into the store `idx` (a replay's, or a live store's under its lock); returns the
/// range taken (`lo > hi` when nothing was) and how many were (a repeat of a time held is
/// not).
pub(super) fn apply(idx: &mut Index, next_ref: &mut u64, o: OldSamples) -> (i64, i64, u64) {
    let (mut lo, mut hi, mut n) = (i64::MAX, i64::MIN, 0);
    for (labels, samples) in o {
        let r = match idx.find(&labels) {
            Some(r) => r,
            None => {
                let r = *next_ref;
                *next_ref += 1;
                idx.insert(r, labels);
                r
            }
        };
        let a = apply_floats(idx, false, samples.into_iter().map(|(t, v)| (r, t, v)));
        lo = lo.min(a.lo);
        hi = hi.max(a.hi);
        n += a.n;
    }
    (lo, hi, n)
}

/// An in-memory head holding `idx` (a replay's store), its refs below `next_ref`.
pub(super) fn from_index(idx: Index, next_ref: u64, lo: i64, hi: i64) -> Arc<Head> {
    let h = Head::in_memory();
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
    pub(super) fn apply_old(&self, o: OldSamples) -> u64 {
        let live = {
            let mut st = self.old.write();
            st.in_wal = true;
            st.live
                .get_or_insert_with(|| Arc::new(Head::in_memory()))
                .clone()
        };
        let mut idx = live.index.write();
        let mut next = live.next_ref.load(Ordering::Relaxed);
        let (lo, hi, n) = apply(&mut idx, &mut next, o);
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

    /// Every old sample held, as old samples records framed into `write` (a checkpoint's or a
    /// head snapshot's segments, which must allow [`wal::OLD_SAMPLES_VERSION`]).
    pub(super) fn write_old(
        &self,
        write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut framed = Vec::new();
        for store in self.old_stores() {
            let mut batch: OldSamples = Vec::new();
            let mut pending = 0;
            for s in store.series_in_sorted(i64::MIN, i64::MAX) {
                pending += s.samples.len();
                batch.push((s.labels, s.samples.iter().map(|x| (x.t, x.v)).collect()));
                // Records as a whole checkpoint's: written once about 100,000 samples are
                // pending (a series of more goes with those before it).
                if batch.len() >= 1_000 || pending >= 100_000 {
                    pending = 0;
                    framed.clear();
                    wal::encode(
                        &mut framed,
                        &wal::Record::OldSamples(std::mem::take(&mut batch)),
                        self.compression,
                    );
                    write(&framed)?;
                }
            }
            if !batch.is_empty() {
                framed.clear();
                wal::encode(
                    &mut framed,
                    &wal::Record::OldSamples(batch),
                    self.compression,
                );
                write(&framed)?;
            }
        }
        Ok(())
    }
}
