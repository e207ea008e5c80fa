//! The per-target series cache.
//!
//! Keyed by the raw series text of the exposition (`name{labels}` exactly as scraped), so a
//! series seen before is found without parsing, sorting or relabeling its labels. It also
//! remembers which series were seen in which scrape, for staleness markers.

use vigil_model::Labels;
use vigil_storage::SeriesRef;

/// What the cache knows of one raw series.
pub struct Entry {
    /// Storage ref; 0 for series dropped by `metric_relabel_configs`.
    pub r: SeriesRef,
    /// Final labels (after target labels and metric relabeling); empty when dropped. The same
    /// allocation the storage holds, so this costs a pointer.
    pub labels: Labels,
    /// The scrape iteration that last saw this series.
    pub last_iter: u32,
    /// The iteration that saw it before `last_iter`, so a failed scrape can tell which series
    /// the previous successful scrape had.
    pub prev_iter: u32,
    /// Whether a disappearance writes a staleness marker (not for samples with explicit
    /// timestamps, as Prometheus).
    pub track_staleness: bool,
}

impl Entry {
    pub fn dropped(&self) -> bool {
        self.r == 0
    }
}

/// No slot (end of a chain, or a freed slot's link).
const NONE: u32 = u32::MAX;

/// A raw series text's 128-bit hash, which stands for the text: the cache keeps no text.
///
/// Two texts of one target would have to collide in 128 bits of a hash seeded at random per
/// cache for one series' samples to be taken for another's: about 10^-26 for a target of 10
/// million series. A target crafting such a collision would need the seed, and could only
/// mislabel samples of its own, which it writes anyway.
type Key = [u64; 2];

/// One slot of the cache: its key, its entry, and the slot that followed it in the last
/// scrape. 56 bytes: a cache holds one per series a target exposes, so its size is a large
/// part of memory per series (before keys replaced texts, each series also kept its text,
/// about 90 bytes in a typical exposition, plus the arena's spare room).
struct Slot {
    key: Key,
    next: u32,
    entry: Entry,
}

/// Entries live in a slab, found through a hash table of slot numbers (4 bytes a bucket;
/// the key's first word is the table's hash, the whole key tells entries apart). A target
/// exposes its series in the same order every scrape, so the cache also remembers, per slot,
/// which slot came next last time: a lookup first compares the expected slot's key, which
/// walks the slab front to back as the body is read, and only probes the table when the
/// order changed. After a scrape the slab gives back what growth left spare once it passes
/// half its length (keeping a quarter), as a target's series count is then known.
pub struct SeriesCache {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    index: hashbrown::HashTable<u32>,
    seed: u64,
    /// All ones; tests narrow it to force equal table hashes.
    hash_mask: u64,
    /// The slot matched first in the latest scrape: where the next scrape starts guessing.
    head: u32,
    /// The slot matched last in this scrape (NONE at its start).
    prev: u32,
    /// The slot expected next: the successor of `prev` in the previous scrape.
    guess: u32,
    /// Incremented at the start of every scrape.
    pub iter: u32,
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SeriesCache {
    pub fn new() -> Self {
        use std::hash::BuildHasher;
        SeriesCache {
            slots: Vec::new(),
            free: Vec::new(),
            index: hashbrown::HashTable::new(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64),
            hash_mask: u64::MAX,
            head: NONE,
            prev: NONE,
            guess: NONE,
            iter: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start a new scrape iteration.
    pub fn begin(&mut self) -> u32 {
        // Iterations are u32 to keep slots small; after 2^32 scrapes (136 years at 1s) the
        // cache starts over rather than wrap into "never seen".
        if self.iter == u32::MAX {
            self.clear();
            self.iter = 0;
        }
        self.iter += 1;
        self.prev = NONE;
        self.iter
    }

    fn key(&self, series: &str) -> Key {
        let h = twox_hash::XxHash3_128::oneshot_with_seed(self.seed, series.as_bytes());
        [h as u64, (h >> 64) as u64]
    }

    /// The table's hash of a slot's key.
    fn table_hash(mask: u64, k: &Key) -> u64 {
        k[0] & mask
    }

    /// The table's hash of the slot a table entry names, for its growing and shrinking
    /// (borrowing the slab apart from the table being changed).
    fn rehash(slots: &[Option<Slot>], mask: u64) -> impl Fn(&u32) -> u64 + '_ {
        move |&j| {
            slots[j as usize]
                .as_ref()
                .map_or(0, |s| Self::table_hash(mask, &s.key))
        }
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: &Key) -> Option<u32> {
        let g = self.guess;
        if let Some(Some(s)) = self.slots.get(g as usize)
            && s.key == *key
        {
            return Some(g);
        }
        let slots = &self.slots;
        self.index
            .find(Self::table_hash(self.hash_mask, key), |&i| {
                slots[i as usize].as_ref().is_some_and(|s| s.key == *key)
            })
            .copied()
    }

    /// Record that slot `i` was just matched: link it after the previous match, and expect
    /// its old successor next.
    fn matched(&mut self, i: u32) {
        if self.prev == NONE {
            self.head = i;
        } else if let Some(Some(p)) = self.slots.get_mut(self.prev as usize) {
            p.next = i;
        }
        self.prev = i;
        self.guess = self.slots[i as usize].as_ref().map_or(NONE, |s| s.next);
    }

    pub fn get_mut(&mut self, series: &str) -> Option<&mut Entry> {
        if self.prev == NONE {
            self.guess = self.head;
        }
        let i = self.find(&self.key(series))?;
        self.matched(i);
        self.slots[i as usize].as_mut().map(|s| &mut s.entry)
    }

    pub fn insert(&mut self, series: &str, e: Entry) {
        if self.prev == NONE {
            self.guess = self.head;
        }
        let key = self.key(series);
        if let Some(i) = self.find(&key) {
            if let Some(s) = self.slots[i as usize].as_mut() {
                s.entry = e;
            }
            self.matched(i);
            return;
        }
        let slot = Slot {
            key,
            next: NONE,
            entry: e,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        let h = Self::table_hash(self.hash_mask, &key);
        self.index
            .insert_unique(h, i, Self::rehash(&self.slots, self.hash_mask));
        self.matched(i);
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten().map(|s| &s.entry)
    }

    /// Series seen in the previous iteration but not this one, which get staleness markers.
    pub fn vanished(&self) -> impl Iterator<Item = &Entry> {
        // Iterations start at 1; 0 means "never seen".
        let prev = self.iter.saturating_sub(1);
        self.entries()
            .filter(move |e| prev > 0 && e.last_iter == prev && !e.dropped() && e.track_staleness)
    }

    /// Every series seen in the current iteration (for end-of-run staleness).
    pub fn current(&self) -> impl Iterator<Item = &Entry> {
        let cur = self.iter;
        self.entries()
            .filter(move |e| e.last_iter == cur && !e.dropped() && e.track_staleness)
    }

    /// Mark `e` seen in the current iteration.
    #[inline]
    pub fn touch(e: &mut Entry, iter: u32) {
        if e.last_iter != iter {
            e.prev_iter = e.last_iter;
            e.last_iter = iter;
        }
    }

    /// Remove the slots `gone` says to, keeping the others where they are.
    fn remove_where(&mut self, gone: impl Fn(&Entry) -> bool) {
        for i in 0..self.slots.len() as u32 {
            let Some(s) = self.slots[i as usize].take_if(|s| gone(&s.entry)) else {
                continue;
            };
            let h = Self::table_hash(self.hash_mask, &s.key);
            if let Ok(found) = self.index.find_entry(h, |&j| j == i) {
                found.remove();
            }
            self.free.push(i);
        }
    }

    /// Undo this iteration's sightings after a scrape failed and was rolled back.
    pub fn forget_current(&mut self) {
        let cur = self.iter;
        // Series first seen in the failed scrape were never stored: forget them.
        self.remove_where(|e| e.last_iter == cur && e.prev_iter == 0);
        for s in self.slots.iter_mut().flatten() {
            if s.entry.last_iter == cur {
                s.entry.last_iter = s.entry.prev_iter;
            }
        }
    }

    /// Forget series not seen for two scrapes, so the cache tracks what the target exposes.
    pub fn sweep(&mut self) {
        let keep_from = self.iter.saturating_sub(1);
        self.remove_where(|e| e.last_iter < keep_from);
        // The target's series count is known now: give back the room growth left spare,
        // keeping a quarter for new series. Only past half again the length, so a target that
        // adds a few series every scrape copies its cache once in many scrapes, not each time.
        let spare = |cap: usize, len: usize| cap > len + len / 2 + 64;
        if spare(self.slots.capacity(), self.slots.len()) {
            self.slots
                .shrink_to(self.slots.len() + self.slots.len() / 4);
        }
        let live = self.index.len();
        if self.index.capacity() > 4 * live + 64 {
            self.index
                .shrink_to(live + live / 4, Self::rehash(&self.slots, self.hash_mask));
        }
    }

    /// Forget everything (the metric relabel rules or target labels changed).
    pub fn clear(&mut self) {
        *self = Self {
            iter: self.iter,
            hash_mask: self.hash_mask,
            ..Self::new()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(r: SeriesRef, iter: u32) -> Entry {
        Entry {
            r,
            labels: Labels::empty(),
            last_iter: iter,
            prev_iter: 0,
            track_staleness: true,
        }
    }

    /// A slot is part of every cached series' cost: keep it from growing unnoticed.
    #[test]
    fn slots_stay_small() {
        assert!(std::mem::size_of::<Option<Slot>>() <= 56);
    }

    /// Every lookup finds its own entry whatever the order of the scrape, across removals and
    /// slot reuse (the order hint must never return another series' entry).
    #[test]
    fn lookups_follow_any_order_and_survive_removal() {
        lookups_with_mask(u64::MAX);
    }

    /// The same with only four distinct table hashes: every lookup that misses the order hint walks
    /// a chain of equal hashes, and removals unlink from the middle of chains.
    #[test]
    fn lookups_through_equal_hashes() {
        lookups_with_mask(3);
    }

    fn lookups_with_mask(mask: u64) {
        let mut c = SeriesCache::new();
        c.hash_mask = mask;
        let names: Vec<String> = (0..50).map(|i| format!("m{{i=\"{i}\"}}")).collect();
        let it = c.begin();
        for (i, n) in names.iter().enumerate() {
            assert!(c.get_mut(n).is_none());
            c.insert(n, entry(i as u64 + 1, it));
        }
        let mut x: u64 = 7;
        for round in 0..20 {
            let it = c.begin();
            // Mostly the same order, sometimes shuffled, sometimes a series missing.
            let mut order: Vec<usize> = (0..names.len()).collect();
            if round % 3 == 1 {
                for i in (1..order.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    order.swap(i, (x % (i as u64 + 1)) as usize);
                }
            }
            for &i in &order {
                if round >= 5 && i % 7 == 3 {
                    continue; // stops being exposed: swept two scrapes later
                }
                match c.get_mut(&names[i]) {
                    Some(e) => {
                        assert_eq!(e.r, i as u64 + 1, "round {round}: {}", names[i]);
                        SeriesCache::touch(e, it);
                    }
                    None => {
                        assert!(round >= 7 && i % 7 == 3, "round {round}: lost {}", names[i]);
                        c.insert(&names[i], entry(i as u64 + 1, it));
                    }
                }
            }
            c.sweep();
        }
        let gone = names.iter().enumerate().filter(|(i, _)| i % 7 == 3).count();
        assert_eq!(c.len(), names.len() - gone);
        c.begin();
        for (i, n) in names.iter().enumerate().filter(|(i, _)| i % 7 != 3) {
            assert_eq!(c.get_mut(n).map(|e| e.r), Some(i as u64 + 1), "{n}");
        }
        // New series reuse freed slots and are found; the old ones stay gone.
        let it = c.begin();
        for i in 0..10 {
            c.insert(&format!("new{i}"), entry(1000 + i, it));
        }
        for i in 0..10 {
            assert_eq!(c.get_mut(&format!("new{i}")).map(|e| e.r), Some(1000 + i));
        }
        assert!(c.get_mut(&names[3]).is_none());
        assert_eq!(c.get_mut(&names[4]).map(|e| e.r), Some(5));
    }
}
