//! A head selection decoded as it is read: the matching series are listed (label set, ref and
//! the newest sample's time) under the index lock, and their samples decoded a few series at
//! a time as the reader asks for them, so a query over every series of a large head holds a
//! few series' samples, not all of them, before `--query.max-samples` can stop it.
//!
//! A head cut truncates the head after serving the block that holds what it drops. A reader
//! listed before that block was served may not have it among its blocks, so a truncation first
//! decodes whatever its listed readers of the range it cuts have not read yet
//! ([`LazyReads::settle`]); readers listed after it see the block (`DbQuerier` lists blocks
//! after the head). A truncation never waits for a reader to go on reading: it decodes in the
//! reader's place.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLockReadGuard};
use vigil_model::Labels;
use vigil_storage::{Series, SeriesRef};

use super::{Head, Index, SELECT_SERIES_PER_HOLD};

/// Series decoded under one hold of the index's read lock as a reader asks for more.
const DECODE_PER_HOLD: usize = 64;

/// What a selection still has to hand out.
struct Pending {
    /// Series not decoded yet, in label order: label set, ref, and the newest sample's time
    /// when listed (what is read is capped there, so a commit between two holds is seen whole
    /// or not at all).
    todo: VecDeque<(Labels, SeriesRef, i64)>,
    /// Decoded ahead by a truncation: they come before everything in `todo`.
    settled: VecDeque<Series>,
}

/// One selection's shared state: the reader's, and the truncation's when it settles it.
pub(super) struct Selection {
    pending: Mutex<Pending>,
    mint: i64,
    maxt: i64,
}

impl Selection {
    /// Decode the next few series of `todo` (all of them if `all`) into `out`, in order,
    /// leaving out those with nothing in range (gone, or emptied meanwhile).
    fn decode(&self, head: &Head, p: &mut Pending, all: bool, out: &mut VecDeque<Series>) {
        let n = if all {
            p.todo.len()
        } else {
            DECODE_PER_HOLD.min(p.todo.len())
        };
        let mut idx = head.index.read();
        for (i, (labels, r, cap)) in p.todo.drain(..n).enumerate() {
            if i % SELECT_SERIES_PER_HOLD == SELECT_SERIES_PER_HOLD - 1 {
                // A commit waiting for the write lock gets it now (see `select_shard`).
                RwLockReadGuard::bump(&mut idx);
            }
            if let Some(s) = decode_one(&idx, labels, r, cap, self.mint, self.maxt) {
                out.push_back(s);
            }
        }
    }
}

fn decode_one(
    idx: &Index,
    labels: Labels,
    r: SeriesRef,
    cap: i64,
    mint: i64,
    maxt: i64,
) -> Option<Series> {
    let s = idx.series.get(&r)?;
    let maxt = maxt.min(cap);
    let samples = s.samples(mint, maxt);
    let histograms = s.histograms(mint, maxt);
    (!samples.is_empty() || !histograms.is_empty()).then_some(Series {
        labels,
        samples,
        histograms,
    })
}

/// The head's selections being read, for a truncation to settle.
#[derive(Default)]
pub(super) struct LazyReads {
    live: Mutex<Vec<Weak<Selection>>>,
}

impl LazyReads {
    /// List a selection: `todo` in label order.
    fn register(
        &self,
        todo: VecDeque<(Labels, SeriesRef, i64)>,
        mint: i64,
        maxt: i64,
    ) -> Arc<Selection> {
        let sel = Arc::new(Selection {
            pending: Mutex::new(Pending {
                todo,
                settled: VecDeque::new(),
            }),
            mint,
            maxt,
        });
        let mut live = self.live.lock();
        // Readers dropped since are forgotten here, so the list stays as long as the reads
        // in flight.
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&sel));
        sel
    }

    /// Decode what every listed selection reading from before `before` has not read yet,
    /// before a truncation drops the samples before it: their readers may not have the block
    /// that now holds them. (That is what every selection held before reads were lazy; it
    /// is rare, a cut landing while a selection of the range it cuts is read.)
    pub(super) fn settle(&self, head: &Head, before: i64) {
        let live: Vec<Arc<Selection>> = {
            let mut live = self.live.lock();
            live.retain(|w| w.strong_count() > 0);
            live.iter()
                .filter_map(Weak::upgrade)
                .filter(|sel| sel.mint < before)
                .collect()
        };
        for sel in live {
            // The reader is gone (only this list holds it now): nothing to keep.
            if Arc::strong_count(&sel) == 1 {
                continue;
            }
            let mut p = sel.pending.lock();
            if p.todo.is_empty() {
                continue;
            }
            let mut settled = std::mem::take(&mut p.settled);
            sel.decode(head, &mut p, true, &mut settled);
            p.settled = settled;
        }
    }
}

/// A head selection's series, decoded as they are read.
pub(super) struct HeadSeries<'a> {
    head: &'a Head,
    sel: Arc<Selection>,
    buf: VecDeque<Series>,
}

impl<'a> HeadSeries<'a> {
    /// The series listed in `todo` (label order), read from `head` between `mint` and
    /// `maxt`. Listed for truncations to settle, so call it once the list is made.
    pub(super) fn new(
        head: &'a Head,
        todo: VecDeque<(Labels, SeriesRef, i64)>,
        mint: i64,
        maxt: i64,
    ) -> Self {
        HeadSeries {
            head,
            sel: head.lazy_reads.register(todo, mint, maxt),
            buf: VecDeque::new(),
        }
    }
}

impl Iterator for HeadSeries<'_> {
    type Item = Series;

    fn next(&mut self) -> Option<Series> {
        loop {
            if let Some(s) = self.buf.pop_front() {
                return Some(s);
            }
            let mut p = self.sel.pending.lock();
            if !p.settled.is_empty() {
                std::mem::swap(&mut self.buf, &mut p.settled);
                continue;
            }
            if p.todo.is_empty() {
                return None;
            }
            self.sel.decode(self.head, &mut p, false, &mut self.buf);
        }
    }
}
