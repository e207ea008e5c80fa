//! `static_configs`: target groups straight from the config file.

use vigil_config::StaticConfig;
use vigil_model::labels::ADDRESS;
use vigil_model::{Labels, LabelsBuilder};

use crate::TargetGroup;

/// The groups of a job's `static_configs`; sources are their indexes, as in Prometheus.
pub fn groups(configs: &[StaticConfig]) -> Vec<TargetGroup> {
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| TargetGroup {
            source: i.to_string(),
            targets: c.targets.iter().map(|t| address_labels(t)).collect(),
            labels: c.labels.clone(),
        })
        .collect()
}

pub(crate) fn address_labels(addr: &str) -> Labels {
    let mut b = LabelsBuilder::with_capacity(1);
    b.set(ADDRESS, addr);
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_static_config() {
        let cfg = vec![
            StaticConfig {
                targets: vec!["a:1".into(), "b:2".into()],
                labels: Labels::from_pairs([("env", "x")]),
            },
            StaticConfig {
                targets: vec!["c:3".into()],
                labels: Labels::empty(),
            },
        ];
        let g = groups(&cfg);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].source, "0");
        assert_eq!(g[0].targets[1].get(ADDRESS), Some("b:2"));
        assert_eq!(g[0].labels.get("env"), Some("x"));
        assert_eq!(g[1].source, "1");
    }
}
