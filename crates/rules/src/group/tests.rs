//! Rule groups evaluated against an in-memory storage, checked sample by sample.

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_model::{Labels, is_stale_nan};
use vigil_promql::Engine;
use vigil_storage::{Matcher, MemoryStorage, Storage};

use super::*;
use crate::file;

fn put(s: &MemoryStorage, labels: &[(&str, &str)], t: i64, v: f64) {
    let mut app = s.appender();
    app.append(0, &Labels::from_pairs(labels.iter().copied()), t, v)
        .unwrap();
    app.commit().unwrap();
}

fn series(s: &MemoryStorage, name: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = s.querier(i64::MIN, i64::MAX).unwrap();
    q.select(&[Matcher::equal("__name__", name)])
        .unwrap()
        .map(|s| (s.labels, s.samples.iter().map(|x| (x.t, x.v)).collect()))
        .collect()
}

fn group(yaml: &str) -> Group {
    let rf = file::parse(yaml, "rules.yml").unwrap();
    Group::new(
        "rules.yml",
        rf.groups[0].clone(),
        Duration::from_secs(60),
        Duration::ZERO,
        true,
    )
}

fn eval(g: &mut Group, s: &MemoryStorage, ts: i64) -> Vec<crate::notifier::Outgoing> {
    eval_with(g, s, ts, None)
}

#[test]
fn recording_rules_write_named_series_and_mark_vanished_ones_stale() {
    let s = MemoryStorage::default();
    put(
        &s,
        &[("__name__", "up"), ("job", "a"), ("instance", "1")],
        0,
        1.0,
    );
    put(
        &s,
        &[("__name__", "up"), ("job", "b"), ("instance", "2")],
        0,
        0.0,
    );
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels:\n      source: rule\n",
    );
    eval(&mut g, &s, 60_000);
    let got = series(&s, "job:up:sum");
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].0,
        Labels::from_pairs([("__name__", "job:up:sum"), ("job", "a"), ("source", "rule")])
    );
    assert_eq!(got[0].1, vec![(60_000, 1.0)]);
    assert_eq!(g.rules[0].health, crate::rule::Health::Ok);
    // job b's only sample is older than the lookback at 10m: its series goes stale.
    put(
        &s,
        &[("__name__", "up"), ("job", "a"), ("instance", "1")],
        590_000,
        1.0,
    );
    eval(&mut g, &s, 600_000);
    let got = series(&s, "job:up:sum");
    assert_eq!(got[0].1, vec![(60_000, 1.0), (600_000, 1.0)]);
    assert_eq!(got[1].1.len(), 2);
    assert!(is_stale_nan(got[1].1[1].1));
    assert_eq!(g.stats.evaluations, 2);
}

#[test]
fn recording_rule_errors_are_the_rules_health() {
    let s = MemoryStorage::default();
    put(&s, &[("__name__", "up"), ("job", "a")], 0, 1.0);
    put(&s, &[("__name__", "up"), ("job", "b")], 0, 1.0);
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: up\n  - record: same\n    expr: sum without (job) (up) or up * 0\n",
    );
    eval(&mut g, &s, 1_000);
    assert_eq!(g.rules[0].health, crate::rule::Health::Err);
    assert_eq!(
        g.rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 series")
    );
    assert_eq!(
        g.stats.failures, 2,
        "the limit applies to every rule of the group"
    );
    assert!(series(&s, "r").is_empty());
}

#[test]
fn alerts_go_pending_then_firing_then_resolve() {
    let s = MemoryStorage::default();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 2m\n    labels:\n      severity: page\n      instance: '{{ $labels.instance }}-x'\n    annotations:\n      summary: '{{ $labels.instance }} of {{ $externalLabels.cluster }} is down ({{ $value }})'\n",
    );
    for t in [0, 60_000, 120_000, 180_000] {
        put(&s, &[("__name__", "up"), ("instance", "h:1")], t, 0.0);
    }
    eval(&mut g, &s, 0);
    let r = &g.rules[0];
    assert_eq!(r.state(), crate::rule::AlertState::Pending);
    let a = r.active_alerts()[0].clone();
    assert_eq!(
        a.labels,
        Labels::from_pairs([
            ("alertname", "Down"),
            ("instance", "h:1-x"),
            ("severity", "page")
        ])
    );
    assert_eq!(a.annotations["summary"], "h:1 of c1 is down (0)");
    assert!(
        eval(&mut g, &s, 60_000).is_empty(),
        "pending alerts are not sent"
    );
    let sent = eval(&mut g, &s, 120_000);
    assert_eq!(g.rules[0].state(), crate::rule::AlertState::Firing);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at, 120_000);
    assert_eq!(
        sent[0].ends_at,
        120_000 + 4 * 60_000,
        "valid for four resend delays"
    );
    assert_eq!(
        sent[0].generator_url,
        "http://vigil:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
    );
    // ALERTS and ALERTS_FOR_STATE as Prometheus writes them.
    let alerts = series(&s, "ALERTS");
    let states: Vec<&str> = alerts
        .iter()
        .map(|(l, _)| l.get("alertstate").unwrap())
        .collect();
    assert_eq!(states, ["firing", "pending"]);
    let fs = series(&s, "ALERTS_FOR_STATE");
    assert_eq!(fs[0].1.last(), Some(&(120_000, 0.0)));
    // The target comes back: resolved, sent as resolved, ALERTS goes stale.
    put(&s, &[("__name__", "up"), ("instance", "h:1")], 240_000, 1.0);
    let sent = eval(&mut g, &s, 240_000);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at, 240_000, "sent as resolved");
    assert!(g.rules[0].active_alerts().is_empty());
    let firing = series(&s, "ALERTS")
        .into_iter()
        .find(|(l, _)| l.get("alertstate") == Some("firing"))
        .unwrap();
    assert!(is_stale_nan(firing.1.last().unwrap().1));
}

#[test]
fn keep_firing_for_holds_an_alert_after_its_condition_clears() {
    let s = MemoryStorage::default();
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Flap\n    expr: x > 0\n    keep_firing_for: 2m\n",
    );
    put(&s, &[("__name__", "x")], 0, 1.0);
    eval(&mut g, &s, 0);
    assert_eq!(g.rules[0].state(), crate::rule::AlertState::Firing);
    put(&s, &[("__name__", "x")], 50_000, 0.0);
    eval(&mut g, &s, 60_000);
    assert_eq!(g.rules[0].state(), crate::rule::AlertState::Firing);
    assert_eq!(
        g.rules[0].active_alerts()[0].keep_firing_since,
        Some(60_000)
    );
    eval(&mut g, &s, 180_000);
    assert!(g.rules[0].active_alerts().is_empty());
}

#[test]
fn for_progress_is_restored_from_alerts_for_state() {
    let s = MemoryStorage::default();
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30m\n";
    // Before the restart: pending since t=0, last written at 10m.
    put(
        &s,
        &[
            ("__name__", "ALERTS_FOR_STATE"),
            ("alertname", "Down"),
            ("job", "a"),
        ],
        600_000,
        0.0,
    );
    for t in (0..=2_100_000).step_by(60_000) {
        put(&s, &[("__name__", "up"), ("job", "a")], t, 0.0);
    }
    let rf = file::parse(yaml, "rules.yml").unwrap();
    let mut g = Group::new(
        "rules.yml",
        rf.groups[0].clone(),
        Duration::from_secs(60),
        Duration::ZERO,
        false,
    );
    // Back at 15m: 5m down; 20m of the 30m were left.
    eval(&mut g, &s, 900_000);
    assert!(
        series(&s, "ALERTS").is_empty(),
        "ALERTS waits for the restore"
    );
    g.restore_for_state(
        &s,
        900_000,
        Duration::from_secs(3600),
        Duration::from_secs(600),
    );
    let a = g.rules[0].active_alerts()[0].clone();
    assert_eq!(a.active_at, 300_000, "the 5m of outage do not count");
    eval(&mut g, &s, 2_040_000);
    assert_eq!(g.rules[0].state(), crate::rule::AlertState::Pending);
    eval(&mut g, &s, 2_100_000);
    assert_eq!(g.rules[0].state(), crate::rule::AlertState::Firing);
}

#[test]
fn slots_are_spread_by_group_and_aligned_to_the_interval() {
    let g = group("groups:\n- name: g\n  interval: 1m\n  rules:\n  - record: r\n    expr: '1'\n");
    let s0 = g.slot(1_000_000_000);
    assert!(s0 <= 1_000_000_000 && 1_000_000_000 - s0 < 60_000);
    // The slot is computed in nanoseconds and carried in milliseconds (truncated), so the
    // millisecond after it is the first that is surely past it.
    assert_eq!(g.slot(s0 + 1), s0);
    assert_eq!(g.slot(s0 + 59_999), s0);
    assert_eq!(g.slot(s0 + 60_001), s0 + 60_000);
}

#[test]
fn templated_labels_and_values_of_alerts() {
    let s = MemoryStorage::default();
    put(&s, &[("__name__", "load"), ("host", "a")], 0, 1234567.0);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - alert: Load\n    expr: load > 0\n    annotations:\n      v: '{{ $value }} {{ $value | humanize }} {{ .Value | printf \"%.1f\" }}'\n      bad: '{{ .Nope }}'\n",
    );
    eval(&mut g, &s, 0);
    let a = g.rules[0].active_alerts()[0].clone();
    assert_eq!(a.annotations["v"], "1.234567e+06 1.235M 1234567.0");
    assert!(a.annotations["bad"].starts_with("<error expanding template: error executing template __alert_Load: template: __alert_Load:1:115: executing \"__alert_Load\" at <.Nope>: can't evaluate field Nope"));
}

/// A recording rule whose result is native histograms records them, and an alerting rule over
/// them alerts with the value 0 and the histogram as its templates' `$value` (as Prometheus
/// 2.52+ does).
#[test]
fn recording_rules_record_native_histograms() {
    use vigil_model::FloatHistogram;
    use vigil_model::histogram::Span;
    let s = MemoryStorage::default();
    let h = |k: f64| FloatHistogram {
        schema: 0,
        count: 3.0 * k,
        sum: k,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![k, 2.0 * k],
        ..Default::default()
    };
    for (job, k) in [("a", 1.0), ("b", 2.0)] {
        let mut app = s.appender();
        app.append_histogram(
            0,
            &Labels::from_pairs([("__name__", "rt_seconds"), ("job", job)]),
            0,
            h(k),
        )
        .unwrap();
        app.commit().unwrap();
    }
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: rt_seconds:sum\n    expr: sum(rt_seconds)\n  - alert: Big\n    expr: rt_seconds\n    annotations:\n      d: '{{ $value }}'\n",
    );
    eval(&mut g, &s, 60_000);
    assert_eq!(g.rules[0].health, crate::rule::Health::Ok);
    let q = s.querier(i64::MIN, i64::MAX).unwrap();
    let got: Vec<_> = q
        .select(&[Matcher::equal("__name__", "rt_seconds:sum")])
        .unwrap()
        .collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].samples.is_empty());
    assert_eq!(got[0].histograms.len(), 1);
    assert_eq!(got[0].histograms[0].t, 60_000);
    assert!(
        got[0].histograms[0].h.same_as(&h(3.0)),
        "{:?}",
        got[0].histograms[0]
    );
    // An alert on histogram samples: one per series, value 0, as in Prometheus; the
    // description sees the histogram.
    assert_eq!(
        g.rules[1].health,
        crate::rule::Health::Ok,
        "{:?}",
        g.rules[1].last_error
    );
    let mut alerts: Vec<(String, f64, String)> = g.rules[1]
        .active_alerts()
        .iter()
        .map(|a| {
            (
                a.labels.get_or_empty("job").to_string(),
                a.value,
                a.annotations.get("d").cloned().unwrap_or_default(),
            )
        })
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        alerts,
        [
            (
                "a".to_string(),
                0.0,
                "{count:3, sum:1, (0.5,1]:1, (1,2]:2}".to_string()
            ),
            (
                "b".to_string(),
                0.0,
                "{count:6, sum:2, (0.5,1]:2, (1,2]:4}".to_string()
            ),
        ]
    );
}

fn eval_with(
    g: &mut Group,
    s: &dyn Storage,
    ts: i64,
    slots: Option<&crate::concurrency::Slots>,
) -> Vec<crate::notifier::Outgoing> {
    let ext = BTreeMap::from([("cluster".to_string(), "c1".to_string())]);
    let engine = Engine::default();
    let env = EvalEnv {
        storage: s,
        engine: &engine,
        query_timeout: None,
        external_labels: &ext,
        external_url: "http://vigil:9090",
        concurrency: slots,
    };
    g.eval(&env, ts, Duration::from_secs(60))
}

/// With concurrent evaluation a rule that reads a later, independent rule sees its result
/// of the same evaluation (the independent rules run first, as Prometheus batches them);
/// in file order it reads nothing at the first evaluation.
#[test]
fn concurrent_batches_run_what_others_read_first() {
    let yaml = "groups:\n- name: g\n  rules:\n  - record: doubled\n    expr: base * 2\n  - record: base\n    expr: vector(21)\n";
    let slots = crate::concurrency::Slots::new(4);
    for (concurrent, want) in [(false, vec![]), (true, vec![(60_000, 42.0)])] {
        let s = MemoryStorage::default();
        let mut g = group(yaml);
        eval_with(&mut g, &s, 60_000, concurrent.then_some(&slots));
        let got: Vec<(i64, f64)> = series(&s, "doubled")
            .into_iter()
            .flat_map(|(_, v)| v)
            .collect();
        assert_eq!(got, want, "concurrent: {concurrent}");
        assert_eq!(series(&s, "base")[0].1, vec![(60_000, 21.0)]);
        assert_eq!(g.stats.evaluations, 2);
    }
    assert_eq!(slots.in_use(), 0);
}

/// A storage whose first querier waits for a second to be opened: rules evaluated side by
/// side meet (`met`); one alone gives up after `patience` (so a failing test ends).
struct Rendezvous {
    inner: MemoryStorage,
    opened: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
    met: std::sync::atomic::AtomicBool,
}

impl Storage for Rendezvous {
    fn appender(&self) -> Box<dyn vigil_storage::Appender + '_> {
        self.inner.appender()
    }
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> Result<Box<dyn vigil_storage::Querier + '_>, vigil_storage::StorageError> {
        let mut n = self.opened.lock().unwrap();
        *n += 1;
        self.cv.notify_all();
        if *n == 1 {
            let (n, _) = self
                .cv
                .wait_timeout_while(n, Duration::from_secs(20), |n| *n < 2)
                .unwrap();
            self.met
                .store(*n >= 2, std::sync::atomic::Ordering::Release);
        }
        self.inner.querier(mint, maxt)
    }
    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<vigil_storage::SeriesExemplars>, vigil_storage::StorageError> {
        self.inner.exemplars(mint, maxt, sets)
    }
}

/// Two independent rules run side by side: each one's query waits for the other's.
#[test]
fn independent_rules_run_side_by_side() {
    let s = Rendezvous {
        inner: MemoryStorage::default(),
        opened: Default::default(),
        cv: Default::default(),
        met: Default::default(),
    };
    put(&s.inner, &[("__name__", "x")], 50_000, 1.0);
    put(&s.inner, &[("__name__", "y")], 50_000, 2.0);
    let mut g = group(
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: x\n  - record: b\n    expr: y\n",
    );
    let slots = crate::concurrency::Slots::new(4);
    eval_with(&mut g, &s, 60_000, Some(&slots));
    assert!(s.met.load(std::sync::atomic::Ordering::Acquire));
    for r in &g.rules {
        assert_eq!(r.last_error, None, "{}", r.spec.name);
    }
    assert_eq!(series(&s.inner, "a")[0].1, vec![(60_000, 1.0)]);
    assert_eq!(series(&s.inner, "b")[0].1, vec![(60_000, 2.0)]);
}
