//! One rule's evaluation, as Prometheus's `rules/recording.go` and `rules/alerting.go`:
//! recording rules name their result; alerting rules keep alerts through pending, firing and
//! resolved, and write `ALERTS` and `ALERTS_FOR_STATE`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use vigil_model::{Labels, LabelsBuilder};
use vigil_promql::{Engine, Value};
use vigil_storage::Storage;

use crate::file::{RuleKind, RuleSpec};
use crate::template::{self, AlertData, Env, QSample};

/// Resolved alerts are kept (and sent as resolved) this long.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    /// Final labels: the result's (without `__name__`), the rule's (templated), `alertname`.
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    /// Milliseconds.
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

/// What a rule's evaluation needs from outside.
pub struct EvalEnv<'a> {
    pub storage: &'a dyn Storage,
    pub engine: &'a Engine,
    /// `--query.timeout`, applied to each rule's query (and each template query).
    pub query_timeout: Option<Duration>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    /// With `concurrent-rule-eval`: the slots a group's independent rules run in side by
    /// side; `None`, every group's rules in file order.
    pub concurrency: Option<&'a crate::concurrency::Slots>,
}

/// A value a rule writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Float(f64),
    Histogram(vigil_promql::Hist),
}

impl EvalEnv<'_> {
    /// An instant query for templates (`query`): its vector, or its scalar as one sample.
    pub fn query(&self, q: &str, t: i64) -> Result<Vec<QSample>, String> {
        let e = vigil_promql::parse(q).map_err(|e| e.to_string())?;
        match self
            .engine()
            .instant(self.storage, &e, t)
            .map_err(|e| e.to_string())?
        {
            // A native histogram sample's `.Value` is the histogram; its float is 0, as in
            // Prometheus (2.52+).
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|(l, s)| QSample {
                    labels: to_map(&l),
                    value: if s.h.is_some() { 0.0 } else { s.v },
                    histogram: s.h,
                })
                .collect()),
            Value::Scalar(s) => Ok(vec![QSample {
                labels: BTreeMap::new(),
                value: s.v,
                histogram: None,
            }]),
            _ => Err("query result is not a vector or scalar".into()),
        }
    }

    /// The engine with this query's deadline.
    fn engine(&self) -> Engine {
        let mut e = self.engine.clone();
        e.deadline = self.query_timeout.map(|t| std::time::Instant::now() + t);
        e
    }
}

pub fn to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect()
}

/// A rule with what it remembers between evaluations.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock start of the last evaluation (ms since the epoch) and its duration.
    pub last_evaluation: Option<i64>,
    pub evaluation_time: Duration,
    /// Series written at the last evaluation: those missing next time get a staleness marker.
    pub previous: HashSet<Labels>,
    /// Alerting rules: alerts by their label set.
    pub active: HashMap<Labels, Alert>,
    /// `ALERTS` is written only once the `for` state was restored after a restart.
    pub restored: bool,
}

impl Rule {
    pub fn new(spec: RuleSpec, restored: bool) -> Rule {
        Rule {
            spec,
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            previous: HashSet::new(),
            active: HashMap::new(),
            restored,
        }
    }

    /// Identity across reloads: name and labels, as Prometheus matches rules to carry state.
    pub fn key(&self) -> String {
        let labels: Vec<String> = self
            .spec
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.spec.name, labels.join(", "))
    }

    /// The highest state of the rule's alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Pending, firing and kept-firing alerts (resolved ones are kept only for sending).
    pub fn active_alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self
            .active
            .values()
            .filter(|a| a.resolved_at.is_none())
            .collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Evaluate at `ts` (ms; the query runs at `ts - offset`): the samples to write.
    pub fn eval(
        &mut self,
        env: &EvalEnv,
        ts: i64,
        offset_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, Recorded)>, String> {
        let qts = ts - offset_ms;
        let result: Vec<(Labels, Recorded)> =
            match env.engine().instant(env.storage, &self.spec.expr, qts) {
                Ok(Value::Vector(v)) => v
                    .into_iter()
                    .map(|(l, s)| match s.h {
                        Some(h) => (l, Recorded::Histogram(h)),
                        None => (l, Recorded::Float(s.v)),
                    })
                    .collect(),
                Ok(Value::Scalar(s)) => vec![(Labels::empty(), Recorded::Float(s.v))],
                Ok(_) => return Err("rule result is not a vector or scalar".into()),
                Err(e) => return Err(e.to_string()),
            };
        match self.spec.kind.clone() {
            RuleKind::Recording => self.record(result, limit),
            RuleKind::Alerting {
                for_,
                keep_firing_for,
                annotations,
            } => {
                // An alert on a native histogram sample has the value 0, as in Prometheus;
                // its templates see the histogram as `$value`.
                let samples = result
                    .into_iter()
                    .map(|(l, v)| match v {
                        Recorded::Float(v) => (l, v, None),
                        Recorded::Histogram(h) => (l, 0.0, Some(h)),
                    })
                    .collect();
                let out = self.alert(
                    env,
                    samples,
                    ts,
                    qts,
                    for_,
                    keep_firing_for,
                    &annotations,
                    limit,
                )?;
                Ok(out
                    .into_iter()
                    .map(|(l, v)| (l, Recorded::Float(v)))
                    .collect())
            }
        }
    }

    fn record(
        &self,
        result: Vec<(Labels, Recorded)>,
        limit: usize,
    ) -> Result<Vec<(Labels, Recorded)>, String> {
        let mut out = Vec::with_capacity(result.len());
        let mut seen = HashSet::with_capacity(result.len());
        for (l, v) in result {
            let mut b: LabelsBuilder = l.builder();
            b.set("__name__", self.spec.name.clone());
            for (k, val) in &self.spec.labels {
                if val.is_empty() {
                    b.del(k);
                } else {
                    b.set(k.clone(), val.clone());
                }
            }
            let l = b.build();
            if !seen.insert(l.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            out.push((l, v));
        }
        if limit > 0 && out.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                out.len()
            ));
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &mut self,
        env: &EvalEnv,
        result: Vec<(Labels, f64, Option<vigil_promql::Hist>)>,
        ts: i64,
        qts: i64,
        for_: Duration,
        keep_firing_for: Duration,
        annotations: &BTreeMap<String, String>,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let name = self.spec.name.clone();
        let query = |q: &str| env.query(q, ts);
        let tenv = Env {
            query: &query,
            external_url: env.external_url,
            now: ts as f64 / 1000.0,
        };
        let mut current: HashMap<Labels, Alert> = HashMap::new();
        for (l, v, histogram) in result {
            let data = AlertData {
                labels: to_map(&l),
                external_labels: env.external_labels.clone(),
                external_url: env.external_url.to_string(),
                value: v,
                histogram,
            };
            let mut b = l.builder();
            b.del("__name__");
            for (k, t) in &self.spec.labels {
                let val = template::expand_alert(&name, t, &data, &tenv);
                if val.is_empty() {
                    b.del(k);
                } else {
                    b.set(k.clone(), val);
                }
            }
            b.set("alertname", name.clone());
            let labels = b.build();
            let ann: BTreeMap<String, String> = annotations
                .iter()
                .map(|(k, t)| (k.clone(), template::expand_alert(&name, t, &data, &tenv)))
                .collect();
            if current.contains_key(&labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations: ann,
                    state: AlertState::Pending,
                    value: v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }
        // Merge: a known, unresolved alert keeps its labels and start; value and annotations
        // follow the latest evaluation.
        let found: HashSet<Labels> = current.keys().cloned().collect();
        for (k, a) in current {
            match self.active.get_mut(&k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(k, a);
                }
            }
        }
        let keep_ms = keep_firing_for.as_millis() as i64;
        let for_ms = for_.as_millis() as i64;
        let mut out = Vec::new();
        let mut pending_or_firing = 0usize;
        let mut gone = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if !found.contains(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    gone.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            pending_or_firing += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                let mut b = a.labels.builder();
                b.set("__name__", "ALERTS");
                b.set("alertstate", a.state.as_str());
                out.push((b.build(), 1.0));
                let mut b = a.labels.builder();
                b.set("__name__", "ALERTS_FOR_STATE");
                out.push((b.build(), (a.active_at / 1000) as f64));
            }
        }
        for k in gone {
            self.active.remove(&k);
        }
        if limit > 0 && pending_or_firing > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {pending_or_firing} alerts"
            ));
        }
        let _ = qts;
        Ok(out)
    }

    /// Alerts due to be sent at `ts` (firing ones every `resend_delay`, resolved ones once).
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.state == AlertState::Pending {
                continue;
            }
            let due = match (a.resolved_at, a.last_sent_at) {
                (Some(r), Some(s)) if r > s => true,
                (Some(_), None) => true,
                _ => a.last_sent_at.is_none_or(|s| s + resend_delay_ms < ts),
            };
            if !due {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
            out.push(a.clone());
        }
        out
    }
}
