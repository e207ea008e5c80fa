//! The per-target series cache.
//!
//! Keyed by the raw series text of the exposition (`name{labels}` exactly as scraped), so a
//! series seen before costs one hash lookup: no label parsing, sorting or relabeling. It also
//! remembers which series were seen in which scrape, for staleness markers.

use vigil_model::Labels;
use vigil_storage::SeriesRef;

/// What the cache knows of one raw series.
pub struct Entry {
    /// Storage ref; 0 for series dropped by `metric_relabel_configs`.
    pub r: SeriesRef,
    /// Final labels (after target labels and metric relabeling); empty when dropped.
    pub labels: Labels,
    /// The scrape iteration that last saw this series.
    pub last_iter: u64,
    /// The iteration that saw it before `last_iter`, so a failed scrape can tell which series
    /// the previous successful scrape had.
    pub prev_iter: u64,
    /// Whether a disappearance writes a staleness marker (not for samples with explicit
    /// timestamps, as Prometheus).
    pub track_staleness: bool,
}

impl Entry {
    pub fn dropped(&self) -> bool {
        self.r == 0
    }
}

#[derive(Default)]
pub struct SeriesCache {
    /// foldhash: this is the per-sample lookup of every scrape.
    entries: foldhash::HashMap<Box<str>, Entry>,
    /// Incremented at the start of every scrape.
    pub iter: u64,
}

impl SeriesCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Start a new scrape iteration.
    pub fn begin(&mut self) -> u64 {
        self.iter += 1;
        self.iter
    }

    pub fn get_mut(&mut self, series: &str) -> Option<&mut Entry> {
        self.entries.get_mut(series)
    }

    pub fn insert(&mut self, series: &str, e: Entry) {
        self.entries.insert(series.into(), e);
    }

    /// Series seen in the previous iteration but not this one, which get staleness markers.
    pub fn vanished(&self) -> impl Iterator<Item = &Entry> {
        // Iterations start at 1; 0 means "never seen".
        let prev = self.iter.saturating_sub(1);
        self.entries
            .values()
            .filter(move |e| prev > 0 && e.last_iter == prev && !e.dropped() && e.track_staleness)
    }

    /// Every series seen in the current iteration (for end-of-run staleness).
    pub fn current(&self) -> impl Iterator<Item = &Entry> {
        let cur = self.iter;
        self.entries
            .values()
            .filter(move |e| e.last_iter == cur && !e.dropped() && e.track_staleness)
    }

    /// Mark `e` seen in the current iteration.
    #[inline]
    pub fn touch(e: &mut Entry, iter: u64) {
        if e.last_iter != iter {
            e.prev_iter = e.last_iter;
            e.last_iter = iter;
        }
    }

    /// Undo this iteration's sightings after a scrape failed and was rolled back.
    pub fn forget_current(&mut self) {
        let cur = self.iter;
        // Series first seen in the failed scrape were never stored: forget them.
        self.entries
            .retain(|_, e| !(e.last_iter == cur && e.prev_iter == 0));
        for e in self.entries.values_mut() {
            if e.last_iter == cur {
                e.last_iter = e.prev_iter;
            }
        }
    }

    /// Forget series not seen for two scrapes, so the cache tracks what the target exposes.
    pub fn sweep(&mut self) {
        let keep_from = self.iter.saturating_sub(1);
        self.entries.retain(|_, e| e.last_iter >= keep_from);
    }

    /// Forget everything (the metric relabel rules or target labels changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
