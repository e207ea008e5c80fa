//! The rules and alerts as Prometheus's HTTP API shows them (`/api/v1/rules`,
//! `/api/v1/alerts`), and the `prometheus_rule_*` self-metrics.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use serde_json::{Value, json};
use vigil_model::exposition::escape_label_value as esc;

use crate::file::RuleKind;
use crate::group::Group;
use crate::rule::{Alert, Rule, to_map};
use crate::template::gofmt;

/// `/api/v1/rules` filters.
#[derive(Debug, Default)]
pub struct Filter {
    /// `type=alert|record`.
    pub kind: Option<String>,
    pub rule_name: HashSet<String>,
    pub rule_group: HashSet<String>,
    pub file: HashSet<String>,
    pub exclude_alerts: bool,
    /// `match[]`: a rule is shown when its configured labels satisfy any one set.
    pub matchers: Vec<Vec<vigil_storage::Matcher>>,
    /// `group_limit`: at most this many groups, then a `groupNextToken`.
    pub group_limit: Option<usize>,
    /// `group_next_token`: the page starts at the group this token names.
    pub group_next_token: Option<String>,
}

impl Filter {
    /// Check `type` as Prometheus does.
    pub fn check(&self) -> Result<(), String> {
        match self.kind.as_deref() {
            None | Some("") | Some("alert") | Some("record") => Ok(()),
            Some(other) => Err(format!(
                "invalid parameter \"type\": not supported value {other:?}"
            )),
        }
    }
}

/// RFC 3339 with nanoseconds, UTC (`0001-01-01T00:00:00Z` for never).
pub fn rfc3339(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".into();
    };
    // Years 0001 to 9999 print as RFC 3339 can; anything else is clamped to them.
    let ms = ms.clamp(-62_135_596_800_000, 253_402_300_799_999);
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let t = crate::template::value::format_time(secs * 1_000_000_000);
    // "2015-06-23 13:19:44 +0000 UTC" -> "2015-06-23T13:19:44"
    let base = &t[..19];
    let base = base.replacen(' ', "T", 1);
    if frac == 0 {
        format!("{base}Z")
    } else {
        let f = format!("{frac:03}");
        format!("{base}.{}Z", f.trim_end_matches('0'))
    }
}

fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "labels": to_map(&a.labels),
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(Some(a.active_at)),
        "value": gofmt::format_lower_e_shortest(a.value),
    });
    if let Some(k) = a.keep_firing_since {
        v["keepFiringSince"] = json!(rfc3339(Some(k)));
    }
    v
}

/// A number as Go's `encoding/json` writes a float64: whole numbers without a fraction
/// (`60`, not `60.0`), which clients comparing JSON see.
fn go_num(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

fn rule_json(r: &Rule, exclude_alerts: bool) -> Value {
    let query = r.spec.expr.to_string();
    let common_eval = (
        r.health.as_str(),
        go_num(r.evaluation_time.as_secs_f64()),
        rfc3339(r.last_evaluation),
    );
    match &r.spec.kind {
        RuleKind::Recording => {
            let mut v = json!({
                "name": r.spec.name,
                "query": query,
                "health": common_eval.0,
                "evaluationTime": common_eval.1,
                "lastEvaluation": common_eval.2,
                "type": "recording",
            });
            // `omitempty` in Prometheus: a recording rule without labels has no `labels`.
            if !r.spec.labels.is_empty() {
                v["labels"] = json!(r.spec.labels);
            }
            if let Some(e) = &r.last_error {
                v["lastError"] = json!(e);
            }
            v
        }
        RuleKind::Alerting {
            for_,
            keep_firing_for,
            annotations,
        } => {
            let alerts: Vec<Value> = r.active_alerts().into_iter().map(alert_json).collect();
            let state = if r.health == crate::rule::Health::Unknown && r.active.is_empty() {
                "unknown"
            } else {
                r.state().as_str()
            };
            let mut v = json!({
                "state": state,
                "name": r.spec.name,
                "query": query,
                "duration": go_num(for_.as_secs_f64()),
                "keepFiringFor": go_num(keep_firing_for.as_secs_f64()),
                "labels": r.spec.labels,
                "annotations": annotations,
                "alerts": if exclude_alerts { Value::Null } else { json!(alerts) },
                "health": common_eval.0,
                "evaluationTime": common_eval.1,
                "lastEvaluation": common_eval.2,
                "type": "alerting",
            });
            if let Some(e) = &r.last_error {
                v["lastError"] = json!(e);
            }
            v
        }
    }
}

/// The opaque page token naming one group (a hash of its file and name, so a token from
/// before a reload that removed the group is refused rather than silently restarting).
pub fn next_token(file: &str, group: &str) -> String {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash64::with_seed(0);
    h.write(file.as_bytes());
    h.write(b";");
    h.write(group.as_bytes());
    format!("{:016x}", h.finish())
}

fn labels_match(sets: &[Vec<vigil_storage::Matcher>], labels: &BTreeMap<String, String>) -> bool {
    sets.is_empty()
        || sets.iter().any(|set| {
            set.iter()
                .all(|m| m.matches(labels.get(&m.name).map_or("", String::as_str)))
        })
}

/// The `data` of `/api/v1/rules`, or the message of a bad `group_next_token`.
pub fn rules(groups: &[Group], f: &Filter) -> Result<Value, String> {
    let mut out = Vec::new();
    let mut next = None;
    // Paginating from a token: skip the groups before the one it names.
    let mut found = f.group_limit.is_none() || f.group_next_token.is_none();
    for g in groups {
        if !found {
            if f.group_next_token.as_deref() != Some(next_token(&g.file, &g.name).as_str()) {
                continue;
            }
            found = true;
        }
        if !f.rule_group.is_empty() && !f.rule_group.contains(&g.name) {
            continue;
        }
        if !f.file.is_empty() && !f.file.contains(&g.file) {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| match f.kind.as_deref() {
                Some("alert") => r.spec.is_alert(),
                Some("record") => !r.spec.is_alert(),
                _ => true,
            })
            .filter(|r| f.rule_name.is_empty() || f.rule_name.contains(&r.spec.name))
            .filter(|r| labels_match(&f.matchers, &r.spec.labels))
            .map(|r| rule_json(r, f.exclude_alerts))
            .collect();
        let filtered = f.kind.is_some() || !f.rule_name.is_empty() || !f.matchers.is_empty();
        if rules.is_empty() && filtered {
            continue;
        }
        if f.group_limit.is_some_and(|l| out.len() == l) {
            // One group more than the page holds: there is a next page, starting here.
            next = Some(next_token(&g.file, &g.name));
            break;
        }
        out.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules,
            "interval": go_num(g.interval.as_secs_f64()),
            "limit": g.spec.limit,
            "evaluationTime": go_num(g.evaluation_time.as_secs_f64()),
            "lastEvaluation": rfc3339(g.last_evaluation),
        }));
    }
    if !found {
        return Err(format!(
            "invalid parameter \"group_next_token\": invalid group_next_token {:?}. were rule groups changed?",
            f.group_next_token.as_deref().unwrap_or("")
        ));
    }
    let mut data = json!({ "groups": out });
    if let Some(t) = next {
        data["groupNextToken"] = json!(t);
    }
    Ok(data)
}

/// The `data` of `/api/v1/alerts`.
pub fn alerts(groups: &[Group]) -> Value {
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.active_alerts())
        .map(alert_json)
        .collect();
    json!({ "alerts": alerts })
}

/// `prometheus_rule_*` in the text exposition format.
pub fn metrics(groups: &[Group]) -> String {
    let mut out = String::new();
    type Get = fn(&Group) -> f64;
    let families: [(&str, &str, &str, Get); 9] = [
        (
            "prometheus_rule_evaluations_total",
            "counter",
            "The total number of rule evaluations.",
            |g| g.stats.evaluations as f64,
        ),
        (
            "prometheus_rule_evaluation_failures_total",
            "counter",
            "The total number of rule evaluation failures.",
            |g| g.stats.failures as f64,
        ),
        (
            "prometheus_rule_group_iterations_total",
            "counter",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            |g| g.stats.iterations as f64,
        ),
        (
            "prometheus_rule_group_iterations_missed_total",
            "counter",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            |g| g.stats.missed as f64,
        ),
        (
            "prometheus_rule_group_interval_seconds",
            "gauge",
            "The interval of a rule group.",
            |g| g.interval.as_secs_f64(),
        ),
        (
            "prometheus_rule_group_last_duration_seconds",
            "gauge",
            "The duration of the last rule group evaluation.",
            |g| g.evaluation_time.as_secs_f64(),
        ),
        (
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "The timestamp of the last rule group evaluation in seconds.",
            |g| {
                g.last_evaluation
                    .map(|ms| ms as f64 / 1000.0)
                    .unwrap_or(0.0)
            },
        ),
        (
            "prometheus_rule_group_last_evaluation_samples",
            "gauge",
            "The number of samples returned during the last rule group evaluation.",
            |g| g.stats.last_samples as f64,
        ),
        (
            "prometheus_rule_group_rules",
            "gauge",
            "The number of rules.",
            |g| g.rules.len() as f64,
        ),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for g in groups {
            let _ = writeln!(
                out,
                "{name}{{rule_group=\"{}\"}} {}",
                esc(&g.key()),
                gofmt::format_g(get(g), None)
            );
        }
    }
    out
}

/// Rule names per group, for the UI's counts.
pub fn counts(groups: &[Group]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for g in groups {
        for r in &g.rules {
            *m.entry(if r.spec.is_alert() {
                "alerting"
            } else {
                "recording"
            })
            .or_default() += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_marshals_them() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(1_435_065_584_128)), "2015-06-23T13:19:44.128Z");
        assert_eq!(rfc3339(Some(1_435_065_584_100)), "2015-06-23T13:19:44.1Z");
    }
}
