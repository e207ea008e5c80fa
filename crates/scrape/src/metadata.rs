//! Metric metadata (`# TYPE`, `# HELP`, `# UNIT`) as each target last exposed it, for
//! `/api/v1/metadata` and `/api/v1/targets/metadata`.

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
    map: HashMap<Box<str>, (MetricMetadata, u64)>,
    iter: u64,
    changed: bool,
}

impl MetadataTracker {
    /// A new scrape starts.
    pub fn begin(&mut self) {
        self.iter += 1;
        self.changed = false;
    }

    fn entry(&mut self, family: &str) -> &mut MetricMetadata {
        if !self.map.contains_key(family) {
            self.changed = true;
            self.map.insert(
                family.into(),
                (
                    MetricMetadata {
                        family: family.to_string(),
                        kind: MetricType::Unknown.as_str(),
                        help: String::new(),
                        unit: String::new(),
                    },
                    0,
                ),
            );
        }
        let iter = self.iter;
        let e = self.map.get_mut(family).expect("inserted above");
        e.1 = iter;
        &mut e.0
    }

    pub fn help(&mut self, family: &str, help: &str) {
        let e = self.entry(family);
        if e.help != help {
            e.help = help.to_string();
            self.changed = true;
        }
    }

    pub fn kind(&mut self, family: &str, kind: MetricType) {
        let e = self.entry(family);
        if e.kind != kind.as_str() {
            e.kind = kind.as_str();
            self.changed = true;
        }
    }

    pub fn unit(&mut self, family: &str, unit: &str) {
        let e = self.entry(family);
        if e.unit != unit {
            e.unit = unit.to_string();
            self.changed = true;
        }
    }

    /// The scrape succeeded: forget families it no longer exposes; a new snapshot (sorted by
    /// family) if anything changed.
    pub fn finish(&mut self) -> Option<Arc<Vec<MetricMetadata>>> {
        let iter = self.iter;
        let before = self.map.len();
        self.map.retain(|_, (_, seen)| *seen == iter);
        if !self.changed && self.map.len() == before {
            return None;
        }
        let mut v: Vec<MetricMetadata> = self.map.values().map(|(m, _)| m.clone()).collect();
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
}
