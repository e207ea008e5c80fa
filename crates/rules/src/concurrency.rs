//! Concurrent rule evaluation (`--enable-feature=concurrent-rule-eval`), as Prometheus does it:
//! a group's rules are split by what they read of each other into batches run one after the
//! other, the rules of a batch side by side while evaluation slots are free
//! (`--rules.max-concurrent-evals`, shared by every group; a rule that finds none runs in the
//! group's own thread, in its turn).
//!
//! A rule depends on the rules whose name (a recording rule's series, an alert's name) one of
//! its selectors' `__name__` matchers matches; `ALERTS`/`ALERTS_FOR_STATE` with an
//! `alertname` matcher depend on the rules that matcher matches. A selector with no name, or
//! `ALERTS` without `alertname`, could read any rule: the group then runs in file order.

use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_promql::Expr;

use crate::file::RuleSpec;

/// Each rule's dependency class: no rule it reads (`independent`), no rule reads it (`leaf`).
/// `None`: some rule could read any other.
fn classes(rules: &[RuleSpec]) -> Option<Vec<(bool, bool)>> {
    let n = rules.len();
    if n <= 1 {
        return Some(vec![(true, true); n]);
    }
    let mut reads = vec![false; n];
    let mut read = vec![false; n];
    for (i, r) in rules.iter().enumerate() {
        for (j, other) in rules.iter().enumerate() {
            if i == j {
                continue;
            }
            if reads_rule(&r.expr, &other.name)? {
                reads[i] = true;
                read[j] = true;
            }
        }
    }
    Some(reads.into_iter().zip(read).map(|(a, b)| (!a, !b)).collect())
}

/// Whether `expr` may read the output of a rule named `name`; `None` when it could read any.
fn reads_rule(expr: &Expr, name: &str) -> Option<bool> {
    let mut any = false;
    for vs in expr.selectors() {
        let metric = vs.matchers.iter().find(|m| m.name == "__name__")?;
        let alerts = ["ALERTS", "ALERTS_FOR_STATE"]
            .iter()
            .any(|a| metric.matches(a));
        let alertname = if alerts {
            Some(vs.matchers.iter().find(|m| m.name == "alertname")?)
        } else {
            None
        };
        any |= metric.matches(name) || alertname.is_some_and(|m| m.matches(name));
    }
    Some(any)
}

/// The batches of a group's rules (indices, each in file order): every rule that reads no
/// other; then one by one, those that read others and are read; then those no rule reads.
/// When a rule could read any other: each rule alone, in file order.
pub fn batches(rules: &[RuleSpec]) -> Vec<Vec<usize>> {
    let Some(classes) = classes(rules) else {
        return (0..rules.len()).map(|i| vec![i]).collect();
    };
    let mut first = Vec::new();
    let mut middle = Vec::new();
    let mut last = Vec::new();
    for (i, &(independent, leaf)) in classes.iter().enumerate() {
        if independent {
            first.push(i);
        } else if leaf {
            last.push(i);
        } else {
            middle.push(vec![i]);
        }
    }
    let mut out = Vec::new();
    if !first.is_empty() {
        out.push(first);
    }
    out.extend(middle);
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// The evaluation slots every group shares (`--rules.max-concurrent-evals`).
#[derive(Debug)]
pub struct Slots {
    max: usize,
    used: AtomicUsize,
}

/// A slot taken; given back when dropped (a panicking rule gives it back too).
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slots {
    pub fn new(max: usize) -> Slots {
        Slots {
            max,
            used: AtomicUsize::new(0),
        }
    }

    /// A free slot, if any (never waits).
    pub fn try_take(&self) -> Option<Slot<'_>> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u < self.max).then_some(u + 1)
            })
            .ok()
            .map(|_| Slot(self))
    }

    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::RuleKind;

    fn rules(list: &[(&str, &str)]) -> Vec<RuleSpec> {
        list.iter()
            .map(|(name, expr)| RuleSpec {
                name: name.to_string(),
                kind: RuleKind::Recording,
                expr: vigil_promql::parse(expr).unwrap(),
                labels: Default::default(),
            })
            .collect()
    }

    /// Upstream's `rules_chain.yaml` and its expected batches.
    #[test]
    fn a_chain_runs_its_links_in_turn() {
        let r = rules(&[
            (
                "job:http_requests:rate1m",
                "sum by (job)(rate(http_requests_total[1m]))",
            ),
            (
                "job:http_requests:rate5m",
                "sum by (job)(rate(http_requests_total[1m]))",
            ),
            (
                "job1:http_requests:rate1m",
                r#"job:http_requests:rate1m{job="job1"}"#,
            ),
            (
                "job1_cluster1:http_requests:rate1m",
                r#"job1:http_requests:rate1m{cluster="cluster1"}"#,
            ),
            (
                "job1_cluster2:http_requests:rate1m",
                r#"job1:http_requests:rate1m{cluster="cluster2"}"#,
            ),
            (
                "job1_cluster1_namespace1:http_requests:rate1m",
                r#"job1_cluster1:http_requests:rate1m{namespace="namespace1"}"#,
            ),
            (
                "job1_cluster1_namespace2:http_requests:rate1m",
                r#"job1_cluster1:http_requests:rate1m{namespace="namespace2"}"#,
            ),
        ]);
        assert_eq!(
            batches(&r),
            vec![vec![0, 1], vec![2], vec![3], vec![4, 5, 6]]
        );
    }

    /// Upstream's `rules_multiple_dependents_on_base.yaml`: reordering runs the bases first.
    #[test]
    fn dependents_of_two_bases_run_together_after_them() {
        let mut list = Vec::new();
        for w in ["1m", "5m"] {
            list.push((
                format!("job:http_requests:rate{w}"),
                format!("sum by (job)(rate(http_requests_total[{w}]))"),
            ));
            for j in 1..=3 {
                list.push((
                    format!("job{j}:http_requests:rate{w}"),
                    format!("job:http_requests:rate{w}{{job=\"job{j}\"}}"),
                ));
            }
        }
        let refs: Vec<(&str, &str)> = list.iter().map(|(a, b)| (&a[..], &b[..])).collect();
        assert_eq!(
            batches(&rules(&refs)),
            vec![vec![0, 4], vec![1, 2, 3, 5, 6, 7]]
        );
    }

    #[test]
    fn a_selector_without_a_name_or_alertname_keeps_file_order() {
        for odd in [r#"{job="job1"}"#, "count(ALERTS)", "ALERTS_FOR_STATE"] {
            let r = rules(&[
                ("a", "sum(rate(x[1m]))"),
                ("b", "sum(rate(y[5m]))"),
                ("c", odd),
            ]);
            assert_eq!(batches(&r), vec![vec![0], vec![1], vec![2]], "{odd}");
        }
        // With an alertname: it reads the rule of that name only.
        let r = rules(&[
            ("a", "sum(rate(x[1m]))"),
            ("b", "sum(rate(y[5m]))"),
            ("c", r#"count(ALERTS{alertname="b"})"#),
        ]);
        assert_eq!(batches(&r), vec![vec![0, 1], vec![2]]);
        // A regex on the name reads every rule it matches.
        let r = rules(&[
            ("first_a", "vector(1)"),
            ("first_b", "vector(2)"),
            ("c", r#"{__name__=~"first.*"}"#),
        ]);
        assert_eq!(batches(&r), vec![vec![0, 1], vec![2]]);
    }

    #[test]
    fn slots_are_shared_and_given_back() {
        let s = Slots::new(2);
        let a = s.try_take().unwrap();
        let b = s.try_take().unwrap();
        assert!(s.try_take().is_none());
        drop(a);
        assert_eq!(s.in_use(), 1);
        assert!(s.try_take().is_some());
        drop(b);
        assert_eq!(s.in_use(), 0);
    }
}
