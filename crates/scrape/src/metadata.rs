//! Metric metadata (`# TYPE`, `# HELP`, `# UNIT`) as each target last exposed it, for
//! `/api/v1/metadata` and `/api/v1/targets/metadata`, and, with `metadata-wal-records`, for
//! the storage: which families changed since the last scrape that succeeded, and their
//! metadata as the storage takes it.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_model::exposition::MetricType;

/// One metric family's metadata from one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    pub family: String,
    /// `counter`, `gauge`, `histogram`, `summary`, `unknown`, ... (Prometheus's names).
    pub kind: &'static str,
    pub help: String,
    pub unit: String,
}

/// Tracks a target's metadata across scrapes and publishes a snapshot only when it changed,
/// so the scrape path allocates nothing for metadata in the steady state.
#[derive(Debug, Default)]
pub struct MetadataTracker {
    map: HashMap<Box<str>, Tracked>,
    iter: u64,
    /// A change not yet published: kept across failed scrapes, so a change first seen by a
    /// scrape that failed is still published (and logged) by the next one that succeeds.
    changed: bool,
    /// The last scrape that succeeded ([`MetadataTracker::finish`]).
    ok_iter: u64,
}

#[derive(Debug)]
struct Tracked {
    meta: MetricMetadata,
    kind: MetricType,
    /// The scrape that first exposed the family, the one that last exposed it, and the one
    /// that last changed it.
    born: u64,
    seen: u64,
    changed: u64,
    /// The family's metadata as the storage takes it, made once per change
    /// (`metadata-wal-records`).
    shared: Option<Arc<vigil_storage::Metadata>>,
}

impl MetadataTracker {
    /// A new scrape starts.
    pub fn begin(&mut self) {
        self.iter += 1;
    }

    fn entry(&mut self, family: &str) -> &mut Tracked {
        let iter = self.iter;
        if !self.map.contains_key(family) {
            self.changed = true;
            self.map.insert(
                family.into(),
                Tracked {
                    meta: MetricMetadata {
                        family: family.to_string(),
                        kind: MetricType::Unknown.as_str(),
                        help: String::new(),
                        unit: String::new(),
                    },
                    kind: MetricType::Unknown,
                    born: iter,
                    seen: 0,
                    changed: iter,
                    shared: None,
                },
            );
        }
        let e = self.map.get_mut(family).expect("inserted above");
        e.seen = iter;
        e
    }

    /// Note a change of the family's entry.
    fn changed(&mut self, family: &str) {
        self.changed = true;
        let iter = self.iter;
        if let Some(e) = self.map.get_mut(family) {
            e.changed = iter;
            e.shared = None;
        }
    }

    pub fn help(&mut self, family: &str, help: &str) {
        let e = self.entry(family);
        if e.meta.help != help {
            e.meta.help = help.to_string();
            self.changed(family);
        }
    }

    pub fn kind(&mut self, family: &str, kind: MetricType) {
        let e = self.entry(family);
        if e.kind != kind {
            e.kind = kind;
            e.meta.kind = kind.as_str();
            self.changed(family);
        }
    }

    pub fn unit(&mut self, family: &str, unit: &str) {
        let e = self.entry(family);
        if e.meta.unit != unit {
            e.meta.unit = unit.to_string();
            self.changed(family);
        }
    }

    /// For `metadata-wal-records`: whether `family` changed (first seen, or another type,
    /// help or unit) since the last scrape that succeeded, so its series' metadata is still
    /// to be given to the storage.
    pub fn pending(&self, family: &str) -> bool {
        self.map
            .get(family)
            .is_some_and(|e| e.changed > self.ok_iter)
    }

    /// For `metadata-wal-records`: the metadata of `family` (the one the body last declared)
    /// for a series named `name`, if the series belongs to it (by Prometheus's rule, which
    /// guards against bodies whose `# TYPE` lines are missing or out of place). One handle
    /// per change of the family, shared by its series.
    pub fn for_series(&mut self, family: &str, name: &str) -> Option<Arc<vigil_storage::Metadata>> {
        let e = self.map.get_mut(family)?;
        if !vigil_model::exposition::belongs_to_family(name, family, e.kind) {
            return None;
        }
        let shared = e.shared.get_or_insert_with(|| {
            Arc::new(vigil_storage::Metadata {
                kind: e.kind,
                unit: e.meta.unit.clone(),
                help: e.meta.help.clone(),
            })
        });
        Some(shared.clone())
    }

    /// The scrape failed: forget the families first exposed since the last scrape that
    /// succeeded (a target whose scrapes keep failing with new family names each time would
    /// otherwise grow the map without bound; Prometheus flushes its cache for the same
    /// reason). Changes to families already known are kept until a scrape succeeds.
    pub fn failed(&mut self) {
        let ok = self.ok_iter;
        self.map.retain(|_, e| e.born <= ok);
        // Forgotten families were never published: only a change to a kept one is pending.
        self.changed = self.map.values().any(|e| e.changed > ok);
    }

    /// The scrape succeeded: forget families it no longer exposes; a new snapshot (sorted by
    /// family) if anything changed.
    pub fn finish(&mut self) -> Option<Arc<Vec<MetricMetadata>>> {
        let iter = self.iter;
        self.ok_iter = iter;
        let before = self.map.len();
        self.map.retain(|_, e| e.seen == iter);
        if !self.changed && self.map.len() == before {
            return None;
        }
        self.changed = false;
        let mut v: Vec<MetricMetadata> = self.map.values().map(|e| e.meta.clone()).collect();
        v.sort_by(|a, b| a.family.cmp(&b.family));
        Some(Arc::new(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_only_on_change_and_drops_vanished_families() {
        let mut t = MetadataTracker::default();
        t.begin();
        t.kind("a", MetricType::Counter);
        t.help("a", "A things.");
        t.help("b", "B.");
        let s = t.finish().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].kind, s[0].help.as_str()), ("counter", "A things."));
        assert_eq!(s[1].kind, "unknown");
        t.begin();
        t.kind("a", MetricType::Counter);
        t.help("a", "A things.");
        t.help("b", "B.");
        assert!(t.finish().is_none(), "unchanged");
        t.begin();
        t.kind("a", MetricType::Counter);
        let s = t.finish().unwrap();
        assert_eq!(s.len(), 1, "b vanished");
        assert_eq!(
            s[0].help, "A things.",
            "help kept while the family is exposed"
        );
    }

    /// Failed scrapes naming new families each time leave nothing behind; a change to a known
    /// family seen by a failed scrape is still published by the next good one.
    #[test]
    fn failed_scrapes_do_not_grow_the_map() {
        let mut t = MetadataTracker::default();
        t.begin();
        t.help("a", "A.");
        assert!(t.finish().is_some());
        for i in 0..1000 {
            t.begin();
            t.help("a", "A changed.");
            t.help(&format!("new_{i}"), "x");
            t.failed();
            assert_eq!(t.map.len(), 1, "scrape {i}");
        }
        t.begin();
        t.help("a", "A changed.");
        let s = t.finish().expect("the change is published");
        assert_eq!((s.len(), s[0].help.as_str()), (1, "A changed."));
    }
}
