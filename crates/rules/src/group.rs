//! A rule group: its rules evaluated in order at each slot, results written through the same
//! storage path as scrapes, staleness markers for series that stop, and the slot arithmetic
//! Prometheus uses (each group offset within its interval by a hash of file and name).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use vigil_model::{Labels, STALE_NAN, is_stale_nan};
use vigil_storage::{AppendError, Matcher, Storage};

use crate::file::GroupSpec;
use crate::notifier::Outgoing;
use crate::rule::{AlertState, EvalEnv, Health, Recorded, Rule};

#[derive(Debug, Clone)]
pub struct Group {
    pub file: String,
    pub name: String,
    pub spec: GroupSpec,
    pub interval: Duration,
    pub query_offset: Duration,
    pub rules: Vec<Rule>,
    /// Series of rules removed at a reload: marked stale at the next evaluation.
    pub stale: Vec<Labels>,
    /// Wall-clock start (ms since the epoch) and duration of the last evaluation.
    pub last_evaluation: Option<i64>,
    pub evaluation_time: Duration,
    pub stats: GroupStats,
    /// Set (under the group's lock) when a reload replaced or removed the group: an
    /// evaluation that was about to start does not run.
    pub stopped: bool,
    /// The rules' batches for concurrent evaluation, from what they read of each other.
    pub batches: Vec<Vec<usize>>,
}

/// Counters of `prometheus_rule_*`.
#[derive(Debug, Clone, Default)]
pub struct GroupStats {
    pub iterations: u64,
    pub missed: u64,
    pub evaluations: u64,
    pub failures: u64,
    pub last_samples: u64,
}

impl Group {
    pub fn new(
        file: &str,
        spec: GroupSpec,
        default_interval: Duration,
        default_offset: Duration,
        restored: bool,
    ) -> Group {
        let interval = spec.interval.unwrap_or(default_interval);
        let query_offset = spec.query_offset.unwrap_or(default_offset);
        Group {
            batches: crate::concurrency::batches(&spec.rules),
            file: file.to_string(),
            name: spec.name.clone(),
            rules: spec
                .rules
                .iter()
                .cloned()
                .map(|r| Rule::new(r, restored))
                .collect(),
            spec,
            interval,
            query_offset,
            stale: Vec::new(),
            last_evaluation: None,
            evaluation_time: Duration::ZERO,
            stats: GroupStats::default(),
            stopped: false,
        }
    }

    /// `file;name`, the `rule_group` label of the self-metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    /// Whether `other` is the same group, unchanged (it then keeps running as it is).
    pub fn same_as(&self, other: &Group) -> bool {
        self.file == other.file
            && self.spec == other.spec
            && self.interval == other.interval
            && self.query_offset == other.query_offset
    }

    /// Take over what `old` remembers: alerts and written series of rules matched by name
    /// and labels; series of old rules with no match go stale.
    pub fn copy_state(&mut self, old: &Group) {
        self.last_evaluation = old.last_evaluation;
        self.evaluation_time = old.evaluation_time;
        let mut by_key: std::collections::HashMap<String, Vec<&Rule>> = Default::default();
        for r in &old.rules {
            by_key.entry(r.key()).or_default().push(r);
        }
        for r in &mut self.rules {
            if let Some(list) = by_key.get_mut(&r.key())
                && !list.is_empty()
            {
                let o = list.remove(0);
                r.previous = o.previous.clone();
                r.active = o.active.clone();
                r.restored = o.restored;
            }
        }
        for list in by_key.values() {
            for o in list {
                self.stale.extend(o.previous.iter().cloned());
            }
        }
        self.stale.extend(old.stale.iter().cloned());
    }

    /// The slot at or before `now_ms`: multiples of the interval, shifted by the group's
    /// offset, as Prometheus's `EvalTimestamp` computes it in nanoseconds from the same hash
    /// of file and name, so a group evaluates at the same instants in vigil and Prometheus.
    pub fn slot(&self, now_ms: i64) -> i64 {
        let iv = (self.interval.as_nanos().max(1_000_000)) as i128;
        let offset = (group_hash(&self.file, &self.name) as i128) % iv;
        let adj = now_ms as i128 * 1_000_000 - offset;
        let slot_ns = adj - adj.rem_euclid(iv) + offset;
        // Samples carry milliseconds (Prometheus truncates the same way).
        slot_ns.div_euclid(1_000_000) as i64
    }

    /// Evaluate every rule at slot `ts` (ms) and write the results. Returns the alerts due to
    /// be sent. In file order; with `env.concurrency`, in the batches of
    /// [`crate::concurrency::batches`], each batch's rules side by side as slots allow.
    pub fn eval(&mut self, env: &EvalEnv, ts: i64, resend_delay: Duration) -> Vec<Outgoing> {
        let started = Instant::now();
        self.last_evaluation = Some(now_ms());
        self.stats.iterations += 1;
        let at = RuleSlot {
            ts,
            offset_ms: self.query_offset.as_millis() as i64,
            interval_ms: self.interval.as_millis() as i64,
            resend_delay_ms: resend_delay.as_millis() as i64,
            limit: self.spec.limit,
            group: &self.name,
        };
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(self.rules.len());
        match env.concurrency {
            None => {
                for rule in &mut self.rules {
                    outcomes.push(Some(eval_rule(rule, env, &at)));
                }
            }
            Some(slots) => {
                outcomes.resize_with(self.rules.len(), || None);
                // Each rule is in one batch: taken from here once.
                let mut refs: Vec<Option<&mut Rule>> = self.rules.iter_mut().map(Some).collect();
                for batch in &self.batches {
                    let picked: Vec<(usize, &mut Rule)> = batch
                        .iter()
                        .filter_map(|&i| Some((i, refs.get_mut(i)?.take()?)))
                        .collect();
                    let at = &at;
                    // The batch ends before the next starts: its results are committed
                    // for the rules that read them.
                    let done: Vec<(usize, Outcome)> = std::thread::scope(|sc| {
                        let mut running = Vec::new();
                        let mut done = Vec::new();
                        for (i, rule) in picked {
                            match (batch.len() > 1).then(|| slots.try_take()).flatten() {
                                Some(slot) => running.push((
                                    i,
                                    sc.spawn(move || {
                                        let _slot = slot;
                                        eval_rule(rule, env, at)
                                    }),
                                )),
                                None => done.push((i, eval_rule(rule, env, at))),
                            }
                        }
                        for (i, h) in running {
                            match h.join() {
                                Ok(o) => done.push((i, o)),
                                Err(p) => std::panic::resume_unwind(p),
                            }
                        }
                        done
                    });
                    for (i, o) in done {
                        outcomes[i] = Some(o);
                    }
                }
            }
        }
        let mut samples_total = 0u64;
        let mut to_send = Vec::new();
        // Alerts in file order, however the rules ran.
        for o in outcomes.into_iter().flatten() {
            self.stats.evaluations += 1;
            self.stats.failures += o.failures;
            samples_total += o.samples;
            to_send.extend(o.to_send);
        }
        let at = ts - self.query_offset.as_millis() as i64;
        if !self.stale.is_empty() {
            let mut app = env.storage.appender();
            for l in &self.stale {
                let _ = app.append(0, l, at, STALE_NAN);
            }
            if app.commit().is_ok() {
                self.stale.clear();
            }
        }
        self.stats.last_samples = samples_total;
        self.evaluation_time = started.elapsed();
        to_send
    }

    /// After a restart: alerts that were pending or firing before keep their `for` progress,
    /// read back from `ALERTS_FOR_STATE` (as Prometheus's `RestoreForState`).
    pub fn restore_for_state(
        &mut self,
        storage: &dyn Storage,
        now: i64,
        outage_tolerance: Duration,
        grace: Duration,
    ) {
        let mint = now - outage_tolerance.as_millis() as i64;
        let grace_ms = grace.as_millis() as i64;
        for rule in &mut self.rules {
            let crate::file::RuleKind::Alerting { for_, .. } = &rule.spec.kind else {
                continue;
            };
            let hold = for_.as_millis() as i64;
            if hold < grace_ms {
                rule.restored = true;
                continue;
            }
            let Ok(q) = storage.querier(mint, now) else {
                rule.restored = true;
                continue;
            };
            for a in rule.active.values_mut() {
                let mut ms = vec![Matcher::equal("__name__", "ALERTS_FOR_STATE")];
                for l in a.labels.iter() {
                    ms.push(Matcher::equal(l.name, l.value));
                }
                let Ok(set) = q.select(&ms) else { continue };
                let Some(series) = set
                    .into_iter()
                    .find(|s| s.labels.len() == a.labels.len() + 1)
                else {
                    continue;
                };
                let Some(last) = series.samples.last() else {
                    continue;
                };
                if is_stale_nan(last.v) {
                    continue;
                }
                let down_at = last.t / 1000 * 1000;
                // A hostile value (written by anyone with write access) must not overflow.
                if !last.v.is_finite() || last.v.abs() > 1e13 {
                    continue;
                }
                let restored_active = (last.v as i64).saturating_mul(1000);
                let remaining = hold - (down_at - restored_active);
                a.active_at = if remaining <= 0 {
                    restored_active
                } else if remaining < grace_ms {
                    now + grace_ms - hold
                } else {
                    restored_active + (now - down_at)
                };
                if a.state == AlertState::Firing && a.active_at + hold > now {
                    a.state = AlertState::Pending;
                    a.fired_at = None;
                }
            }
            rule.restored = true;
        }
    }
}

/// What every rule of one group evaluation shares.
struct RuleSlot<'a> {
    ts: i64,
    offset_ms: i64,
    interval_ms: i64,
    resend_delay_ms: i64,
    limit: usize,
    group: &'a str,
}

/// One rule's evaluation, for the group's counters and notifications.
struct Outcome {
    samples: u64,
    failures: u64,
    to_send: Vec<Outgoing>,
}

/// Evaluate `rule` at the group's slot and write its results (and staleness markers for
/// series it no longer has) in a commit of its own.
fn eval_rule(rule: &mut Rule, env: &EvalEnv, at: &RuleSlot<'_>) -> Outcome {
    let rule_start = Instant::now();
    rule.last_evaluation = Some(now_ms());
    let mut out = Outcome {
        samples: 0,
        failures: 0,
        to_send: Vec::new(),
    };
    let write_at = at.ts - at.offset_ms;
    match rule.eval(env, at.ts, at.offset_ms, at.limit) {
        Err(e) => {
            rule.health = Health::Err;
            rule.last_error = Some(e.clone());
            out.failures += 1;
            tracing::warn!(group = %at.group, rule = %rule.spec.name, err = %e, "Evaluating rule failed");
        }
        Ok(samples) => {
            rule.health = Health::Ok;
            rule.last_error = None;
            out.samples = samples.len() as u64;
            if rule.spec.is_alert() {
                let expr = rule.spec.expr.to_string();
                out.to_send.extend(
                    rule.alerts_to_send(at.ts, at.resend_delay_ms, at.interval_ms)
                        .iter()
                        .map(|a| Outgoing::from_alert(a, &expr, env.external_url)),
                );
            }
            let now: HashSet<Labels> = samples.iter().map(|(l, _)| l.clone()).collect();
            let mut app = env.storage.appender();
            let mut dropped = 0usize;
            let mut last_err = None;
            for (l, v) in &samples {
                let r = match v {
                    Recorded::Float(v) => app.append(0, l, write_at, *v),
                    Recorded::Histogram(h) => app.append_histogram(0, l, write_at, (**h).clone()),
                };
                if let Err(e) = r {
                    dropped += 1;
                    last_err = Some(e);
                }
            }
            for l in rule.previous.difference(&now) {
                // Out of order and the like are expected here (the series may have been
                // written by something else since); nothing to report.
                let _ = app.append(0, l, write_at, STALE_NAN);
            }
            match app.commit() {
                Ok(()) => rule.previous = now,
                Err(e) => {
                    rule.health = Health::Err;
                    rule.last_error = Some(e.to_string());
                    out.failures += 1;
                }
            }
            if let Some(e) = last_err {
                rule.health = Health::Err;
                rule.last_error = Some(append_error_text(&e));
                tracing::warn!(group = %at.group, rule = %rule.spec.name, num_dropped = dropped, err = %e, "Error on ingesting results from rule evaluation");
            }
        }
    }
    rule.evaluation_time = rule_start.elapsed();
    out
}

fn append_error_text(e: &AppendError) -> String {
    match e {
        AppendError::OutOfOrder => "out of order sample".into(),
        AppendError::DuplicateTimestamp => "duplicate sample for timestamp".into(),
        other => other.to_string(),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Prometheus's hash of a group: xxhash64 of the label set `{file=..., name=...}` as its
/// `labels.Hash` lays it out (name, 0xff, value, 0xff for each label in order).
fn group_hash(file: &str, name: &str) -> u64 {
    let mut b = Vec::with_capacity(file.len() + name.len() + 12);
    for (k, v) in [("file", file), ("name", name)] {
        b.extend_from_slice(k.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    twox_hash::XxHash64::oneshot(0, &b)
}

#[cfg(test)]
mod tests;
