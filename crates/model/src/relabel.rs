//! Relabeling with Prometheus's semantics: rules applied in order to a label set, each able
//! to rewrite it or drop it.

use md5::{Digest, Md5};
use regex::Regex;

use crate::labels::{Labels, LabelsBuilder, is_valid_label_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Case-insensitive, as Prometheus accepts it.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// A regex anchored at both ends, as Prometheus anchors relabel regexes; keeps its source.
#[derive(Clone)]
pub struct RelabelRegex {
    src: String,
    re: Regex,
}

impl RelabelRegex {
    pub fn new(src: &str) -> Result<Self, regex::Error> {
        Ok(RelabelRegex {
            src: src.to_string(),
            re: Regex::new(&format!("^(?s:{src})$"))?,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    pub fn regex(&self) -> &Regex {
        &self.re
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new("(.*)").unwrap_or_else(|_| unreachable!("constant regex"))
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl std::fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: vec![],
            separator: ";".into(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".into(),
            action: Action::Replace,
        }
    }
}

fn source_value(lb: &LabelsBuilder, rule: &RelabelConfig) -> String {
    let mut out = String::new();
    for (i, n) in rule.source_labels.iter().enumerate() {
        if i > 0 {
            out.push_str(&rule.separator);
        }
        out.push_str(lb.get(n).unwrap_or(""));
    }
    out
}

/// Apply one rule; false when the label set is to be dropped.
pub fn apply(lb: &mut LabelsBuilder, rule: &RelabelConfig) -> bool {
    let val = source_value(lb, rule);
    match rule.action {
        Action::Drop => {
            if rule.regex.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !rule.regex.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if lb.get(&rule.target_label).unwrap_or("") == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if lb.get(&rule.target_label).unwrap_or("") != val {
                return false;
            }
        }
        Action::Replace => {
            let Some(caps) = rule.regex.regex().captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&rule.target_label, &mut target);
            if !is_valid_label_name(&target) {
                return true;
            }
            let mut res = String::new();
            caps.expand(&rule.replacement, &mut res);
            if res.is_empty() {
                lb.del(&target);
            } else {
                lb.set(target, res);
            }
        }
        Action::Lowercase => {
            lb.set(rule.target_label.clone(), val.to_lowercase());
        }
        Action::Uppercase => {
            lb.set(rule.target_label.clone(), val.to_uppercase());
        }
        Action::HashMod => {
            let digest = Md5::digest(val.as_bytes());
            let mut last8 = [0u8; 8];
            last8.copy_from_slice(&digest[8..16]);
            let m = if rule.modulus == 0 {
                0
            } else {
                u64::from_be_bytes(last8) % rule.modulus
            };
            lb.set(rule.target_label.clone(), m.to_string());
        }
        Action::LabelMap => {
            let add: Vec<(String, String)> = lb
                .iter()
                .filter_map(|l| {
                    let caps = rule.regex.regex().captures(&l.name)?;
                    let mut n = String::new();
                    caps.expand(&rule.replacement, &mut n);
                    Some((n, l.value.clone()))
                })
                .collect();
            for (n, v) in add {
                lb.set(n, v);
            }
        }
        Action::LabelDrop => {
            lb.retain(|l| !rule.regex.is_match(&l.name));
        }
        Action::LabelKeep => {
            lb.retain(|l| rule.regex.is_match(&l.name));
        }
    }
    true
}

/// Apply all rules in order; `None` when dropped.
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = labels.builder();
    for r in rules {
        if !apply(&mut lb, r) {
            return None;
        }
    }
    Some(lb.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(p.iter().copied())
    }

    fn rule(action: Action, src: &[&str], regex: &str, target: &str, repl: &str) -> RelabelConfig {
        RelabelConfig {
            source_labels: src.iter().map(|s| s.to_string()).collect(),
            regex: RelabelRegex::new(regex).unwrap(),
            target_label: target.into(),
            replacement: repl.into(),
            action,
            ..Default::default()
        }
    }

    #[test]
    fn replace_expands_and_deletes() {
        let base = l(&[("a", "foo"), ("b", "bar")]);
        let r = rule(
            Action::Replace,
            &["a", "b"],
            "f(.*);(.*)r",
            "c",
            "ch${1}-$2",
        );
        assert_eq!(process(&base, &[r]).unwrap().get("c"), Some("choo-ba"));
        // No match: unchanged.
        let r = rule(Action::Replace, &["a"], "x.*", "c", "$1");
        assert_eq!(process(&base, &[r]).unwrap(), base);
        // Empty result deletes the target.
        let r = rule(Action::Replace, &["missing"], "(.*)", "a", "$1");
        assert_eq!(process(&base, &[r]).unwrap().get("a"), None);
        // `$1x` names group "1x", which does not exist: empty.
        let r = rule(Action::Replace, &["a"], "(.*)", "c", "$1x");
        assert_eq!(process(&base, &[r]).unwrap().get("c"), None);
        // Target label from a capture; invalid names are skipped.
        let r = rule(Action::Replace, &["a"], "(.*)", "t_$1", "v");
        assert_eq!(process(&base, &[r]).unwrap().get("t_foo"), Some("v"));
        let r = rule(Action::Replace, &["b"], "(.*)", "1$1", "v");
        assert_eq!(process(&base, &[r]).unwrap(), base);
        // Regexes are anchored.
        let r = rule(Action::Replace, &["a"], "o+", "c", "x");
        assert_eq!(process(&base, &[r]).unwrap().get("c"), None);
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let base = l(&[("a", "foo"), ("b", "foo"), ("c", "x")]);
        assert!(process(&base, &[rule(Action::Keep, &["a"], "f.*", "", "")]).is_some());
        assert!(process(&base, &[rule(Action::Keep, &["a"], "x.*", "", "")]).is_none());
        assert!(process(&base, &[rule(Action::Drop, &["a"], "f.*", "", "")]).is_none());
        assert!(
            process(&base, &[rule(Action::Keep, &["missing"], "", "", "")]).is_some(),
            "missing label matches empty"
        );
        assert!(process(&base, &[rule(Action::KeepEqual, &["a"], "", "b", "")]).is_some());
        assert!(process(&base, &[rule(Action::KeepEqual, &["a"], "", "c", "")]).is_none());
        assert!(process(&base, &[rule(Action::DropEqual, &["a"], "", "b", "")]).is_none());
        assert!(process(&base, &[rule(Action::DropEqual, &["a"], "", "c", "")]).is_some());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // python3: int.from_bytes(hashlib.md5(b"foo").digest()[8:], "big") % 1000 == 696
        let base = l(&[("a", "foo")]);
        let mut r = rule(Action::HashMod, &["a"], "", "h", "");
        r.modulus = 1000;
        assert_eq!(process(&base, &[r]).unwrap().get("h"), Some("696"));
    }

    #[test]
    fn label_name_actions_and_case() {
        let base = l(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_x", "y"),
            ("keep_me", "1"),
        ]);
        let r = rule(
            Action::LabelMap,
            &[],
            "__meta_kubernetes_pod_label_(.+)",
            "",
            "$1",
        );
        let out = process(&base, &[r]).unwrap();
        assert_eq!(out.get("app"), Some("web"));
        assert_eq!(
            out.get("__meta_kubernetes_pod_label_app"),
            Some("web"),
            "labelmap keeps the original"
        );
        let out = process(&base, &[rule(Action::LabelDrop, &[], "__meta_.*", "", "")]).unwrap();
        assert_eq!(out, l(&[("keep_me", "1")]));
        let out = process(
            &base,
            &[rule(Action::LabelKeep, &[], "__meta_x|keep_me", "", "")],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        let b2 = l(&[("a", "MiXeD")]);
        assert_eq!(
            process(&b2, &[rule(Action::Lowercase, &["a"], "", "lo", "")])
                .unwrap()
                .get("lo"),
            Some("mixed")
        );
        assert_eq!(
            process(&b2, &[rule(Action::Uppercase, &["a"], "", "up", "")])
                .unwrap()
                .get("up"),
            Some("MIXED")
        );
    }
}
