//! Exemplars: a sample's pointer to a trace (`# {trace_id="..."} 0.3 1700000000.123` after an
//! OpenMetrics sample), kept in a bounded ring as Prometheus's exemplar storage keeps them
//! (`--enable-feature=exemplar-storage`, `storage.exemplars.max_exemplars`).
//!
//! The ring holds at most `max` exemplars over all series; a new one overwrites the oldest of
//! all. Each series' exemplars are linked oldest to newest through the ring, so a query walks
//! only the series it matches. Validation follows Prometheus: per series, an exemplar equal to
//! the newest is a silent no-op, one not newer than it is out of order, and an exemplar's
//! label set may hold at most 128 UTF-8 characters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use vigil_model::Labels;

use crate::Matcher;

/// Prometheus's `exemplar.ExemplarMaxLabelSetLength`: UTF-8 characters of all names and values.
pub const MAX_LABEL_SET_CHARS: usize = 128;

/// One exemplar.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds.
    pub t: i64,
}

impl Exemplar {
    /// Prometheus's `Exemplar.Equals`: same labels, value and time (values compared bit for
    /// bit, so a NaN value repeats too).
    pub fn same(&self, o: &Exemplar) -> bool {
        self.t == o.t && self.value.to_bits() == o.value.to_bits() && self.labels == o.labels
    }

    /// Whether `self` may not follow `newest` in its series: older, or at the same time with a
    /// smaller value, or the same value and labels that order first. A native histogram's
    /// exemplars share a timestamp, so ties are allowed in the order a scrape sorts them
    /// ([`Exemplar::order`]), as Prometheus allows them.
    pub fn precedes(&self, newest: &Exemplar) -> bool {
        self.order(newest) == std::cmp::Ordering::Less
    }

    /// Time, then value, then labels: the order a scrape appends a sample's exemplars in.
    pub fn order(&self, o: &Exemplar) -> std::cmp::Ordering {
        self.t
            .cmp(&o.t)
            .then(self.value.total_cmp(&o.value))
            .then_with(|| self.labels.cmp(&o.labels))
    }
}

/// A series' exemplars in a query's range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub series: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Why an exemplar was not stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExemplarError {
    /// Not newer than the series' newest exemplar.
    #[error("out of order exemplar")]
    OutOfOrder,
    #[error("label length for exemplar exceeds maximum of {MAX_LABEL_SET_CHARS} UTF-8 characters")]
    LabelsTooLong,
}

/// Check what does not depend on the ring: the label set's length.
pub fn check_labels(e: &Exemplar) -> Result<(), ExemplarError> {
    let chars: usize = e
        .labels
        .iter()
        .map(|l| l.name.chars().count() + l.value.chars().count())
        .sum();
    if chars > MAX_LABEL_SET_CHARS {
        return Err(ExemplarError::LabelsTooLong);
    }
    Ok(())
}

struct Slot {
    series: Labels,
    ex: Exemplar,
    /// The series' next (newer) exemplar's slot.
    next: Option<usize>,
}

/// A series' oldest and newest slots.
#[derive(Clone, Copy)]
struct Span {
    oldest: usize,
    newest: usize,
}

#[derive(Default)]
struct Ring {
    slots: Vec<Option<Slot>>,
    /// Where the next exemplar goes; the ring is full once `slots` is `max` long.
    next: usize,
    max: usize,
    series: HashMap<Labels, Span>,
}

impl Ring {
    fn newest(&self, series: &Labels) -> Option<&Exemplar> {
        let span = self.series.get(series)?;
        Some(&self.slots[span.newest].as_ref()?.ex)
    }

    /// `Ok(false)`: a repeat of the newest, not stored.
    fn validate(&self, series: &Labels, e: &Exemplar) -> Result<bool, ExemplarError> {
        check_labels(e)?;
        match self.newest(series) {
            Some(n) if n.same(e) => Ok(false),
            Some(n) if e.precedes(n) => Err(ExemplarError::OutOfOrder),
            _ => Ok(true),
        }
    }

    /// Put `e` in the next slot, evicting the ring's oldest exemplar when full.
    fn push(&mut self, series: &Labels, e: Exemplar) {
        if self.max == 0 {
            return;
        }
        let i = self.next;
        if i == self.slots.len() {
            self.slots.push(None);
        } else if let Some(old) = self.slots[i].take() {
            // The evicted exemplar is the oldest of its series.
            match old.next {
                Some(n) => {
                    if let Some(span) = self.series.get_mut(&old.series) {
                        span.oldest = n;
                    }
                }
                None => {
                    self.series.remove(&old.series);
                }
            }
        }
        match self.series.get_mut(series) {
            Some(span) => {
                if let Some(prev) = self.slots[span.newest].as_mut() {
                    prev.next = Some(i);
                }
                span.newest = i;
            }
            None => {
                self.series.insert(
                    series.clone(),
                    Span {
                        oldest: i,
                        newest: i,
                    },
                );
            }
        }
        self.slots[i] = Some(Slot {
            series: series.clone(),
            ex: e,
            next: None,
        });
        self.next = (i + 1) % self.max;
    }

    /// Every exemplar, oldest first.
    fn drain_in_order(&mut self) -> Vec<(Labels, Exemplar)> {
        let n = self.slots.len();
        let start = if n < self.max { 0 } else { self.next };
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            if let Some(s) = self.slots[(start + k) % n].take() {
                out.push((s.series, s.ex));
            }
        }
        self.slots.clear();
        self.series.clear();
        self.next = 0;
        out
    }
}

/// The exemplar ring with Prometheus's `prometheus_tsdb_exemplar_*` counts. Queries share
/// the lock; an append holds it alone only to link one slot.
#[derive(Default)]
pub struct ExemplarStore {
    ring: RwLock<Ring>,
    appended: AtomicU64,
    out_of_order: AtomicU64,
}

/// The store's figures for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExemplarStats {
    pub max: usize,
    pub in_storage: usize,
    pub series: usize,
    pub appended_total: u64,
    pub out_of_order_total: u64,
    /// The oldest exemplar still held, ms (Prometheus's `last_exemplars_timestamp`: how far
    /// back the ring reaches); 0 when empty.
    pub oldest_t: i64,
}

impl ExemplarStore {
    /// A ring of at most `max` exemplars; 0 stores none.
    pub fn new(max: usize) -> Self {
        let s = ExemplarStore::default();
        s.ring.write().max = max;
        s
    }

    /// Whether exemplars are kept at all.
    pub fn enabled(&self) -> bool {
        self.ring.read().max > 0
    }

    /// Check `e` against `series`' newest exemplar without storing it: `Ok(false)` for a
    /// repeat of it (stored as a no-op, as Prometheus does).
    pub fn validate(&self, series: &Labels, e: &Exemplar) -> Result<bool, ExemplarError> {
        self.ring.read().validate(series, e)
    }

    /// Store `e` for `series` if it validates. Out-of-order exemplars are counted.
    pub fn add(&self, series: &Labels, e: Exemplar) -> Result<(), ExemplarError> {
        let mut ring = self.ring.write();
        if ring.max == 0 {
            return Ok(());
        }
        match ring.validate(series, &e) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(err) => {
                if err == ExemplarError::OutOfOrder {
                    self.out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                return Err(err);
            }
        }
        ring.push(series, e);
        self.appended.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Change the ring's size, keeping the newest exemplars that fit (Prometheus's `Resize`
    /// on a configuration reload).
    pub fn resize(&self, max: usize) {
        let mut ring = self.ring.write();
        if ring.max == max {
            return;
        }
        let all = ring.drain_in_order();
        ring.max = max;
        let keep = all.len().saturating_sub(max);
        for (series, e) in all.into_iter().skip(keep) {
            ring.push(&series, e);
        }
    }

    /// Exemplars in `[mint, maxt]` of the series matching any of `sets`, series sorted by
    /// labels, each series' exemplars oldest first.
    pub fn select(&self, mint: i64, maxt: i64, sets: &[Vec<Matcher>]) -> Vec<SeriesExemplars> {
        let ring = self.ring.read();
        let mut out = Vec::new();
        for (series, span) in &ring.series {
            if !sets.iter().any(|ms| {
                ms.iter()
                    .all(|m| m.matches(series.get(&m.name).unwrap_or("")))
            }) {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut at = Some(span.oldest);
            while let Some(i) = at {
                let Some(slot) = ring.slots[i].as_ref() else {
                    break;
                };
                if slot.ex.t > maxt {
                    break;
                }
                if slot.ex.t >= mint {
                    exemplars.push(slot.ex.clone());
                }
                at = slot.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    series: series.clone(),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }

    /// Every exemplar held, oldest first (a WAL checkpoint writes them).
    pub fn all(&self) -> Vec<(Labels, Exemplar)> {
        let ring = self.ring.read();
        let n = ring.slots.len();
        let start = if n < ring.max { 0 } else { ring.next };
        (0..n)
            .filter_map(|k| ring.slots[(start + k) % n].as_ref())
            .map(|s| (s.series.clone(), s.ex.clone()))
            .collect()
    }

    pub fn stats(&self) -> ExemplarStats {
        let ring = self.ring.read();
        // Every slot is filled once pushed: the oldest is the next to be overwritten when the
        // ring is full, else the first.
        let n = ring.slots.len();
        let oldest = if n < ring.max { 0 } else { ring.next };
        ExemplarStats {
            max: ring.max,
            in_storage: n,
            series: ring.series.len(),
            appended_total: self.appended.load(Ordering::Relaxed),
            out_of_order_total: self.out_of_order.load(Ordering::Relaxed),
            oldest_t: ring
                .slots
                .get(oldest)
                .and_then(|s| s.as_ref())
                .map_or(0, |s| s.ex.t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(t: i64, v: f64, id: &str) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", id.to_string())]),
            value: v,
            t,
        }
    }

    fn series(name: &str) -> Labels {
        Labels::from_pairs([("__name__", name.to_string())])
    }

    fn all_of(s: &ExemplarStore) -> Vec<SeriesExemplars> {
        let any = Matcher::new(crate::MatchOp::Regex, "__name__", ".+").unwrap();
        s.select(i64::MIN, i64::MAX, &[vec![any]])
    }

    #[test]
    fn validates_as_prometheus() {
        let s = ExemplarStore::new(10);
        let a = series("a");
        s.add(&a, ex(10, 1.0, "x")).unwrap();
        // A repeat of the newest is a no-op; older ones, and at an equal time ones that order
        // before it (smaller value, or equal value and smaller labels), are out of order and
        // counted, as in current Prometheus (a native histogram's exemplars share a time).
        s.add(&a, ex(10, 1.0, "x")).unwrap();
        assert_eq!(s.add(&a, ex(10, 0.5, "x")), Err(ExemplarError::OutOfOrder));
        assert_eq!(s.add(&a, ex(10, 1.0, "w")), Err(ExemplarError::OutOfOrder));
        let b = series("b");
        s.add(&b, ex(10, 1.0, "x")).unwrap();
        s.add(&b, ex(10, 2.0, "x")).unwrap();
        s.add(&b, ex(10, 2.0, "y")).unwrap();
        assert_eq!(s.add(&a, ex(5, 1.0, "y")), Err(ExemplarError::OutOfOrder));
        let long = Exemplar {
            labels: Labels::from_pairs([("trace_id", "é".repeat(121))]),
            value: 1.0,
            t: 20,
        };
        assert_eq!(s.add(&a, long), Err(ExemplarError::LabelsTooLong));
        // 8 + 120 characters is the limit exactly: accepted.
        let edge = Exemplar {
            labels: Labels::from_pairs([("trace_id", "é".repeat(120))]),
            value: 1.0,
            t: 20,
        };
        s.add(&a, edge).unwrap();
        let st = s.stats();
        assert_eq!((st.appended_total, st.out_of_order_total), (5, 3));
        assert_eq!((st.in_storage, st.series, st.oldest_t), (5, 2, 10));
    }

    #[test]
    fn the_ring_evicts_the_oldest_of_all_series() {
        let s = ExemplarStore::new(3);
        let (a, b) = (series("a"), series("b"));
        s.add(&a, ex(1, 1.0, "1")).unwrap();
        s.add(&b, ex(2, 2.0, "2")).unwrap();
        s.add(&a, ex(3, 3.0, "3")).unwrap();
        s.add(&b, ex(4, 4.0, "4")).unwrap(); // evicts a@1
        s.add(&b, ex(5, 5.0, "5")).unwrap(); // evicts b@2
        let got = all_of(&s);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].series, a);
        assert_eq!(got[0].exemplars, vec![ex(3, 3.0, "3")]);
        assert_eq!(got[1].exemplars, vec![ex(4, 4.0, "4"), ex(5, 5.0, "5")]);
        s.add(&b, ex(6, 6.0, "6")).unwrap(); // evicts a@3: a has none left
        let got = all_of(&s);
        assert_eq!(got.len(), 1);
        assert_eq!((s.stats().series, s.stats().oldest_t), (1, 4));
        // Ranges and matchers.
        let got = s.select(5, 5, &[vec![Matcher::equal("__name__", "b")]]);
        assert_eq!(got[0].exemplars, vec![ex(5, 5.0, "5")]);
        assert!(
            s.select(0, 10, &[vec![Matcher::equal("__name__", "a")]])
                .is_empty()
        );
    }

    #[test]
    fn resize_keeps_the_newest() {
        let s = ExemplarStore::new(4);
        let a = series("a");
        for t in 1..=6 {
            s.add(&a, ex(t, t as f64, "t")).unwrap();
        }
        s.resize(2);
        let got = all_of(&s);
        assert_eq!(got[0].exemplars, vec![ex(5, 5.0, "t"), ex(6, 6.0, "t")]);
        s.resize(5);
        s.add(&a, ex(7, 7.0, "t")).unwrap();
        assert_eq!(all_of(&s)[0].exemplars.len(), 3);
        assert_eq!(s.all().last().map(|(_, e)| e.t), Some(7));
        s.resize(0);
        assert!(!s.enabled());
        assert!(all_of(&s).is_empty());
        s.add(&a, ex(8, 8.0, "t")).unwrap();
        assert!(all_of(&s).is_empty());
    }
}
