//! What one evaluation runs with: the engine's settings ([`Engine`]), the per-query context
//! every node is evaluated in ([`EvalContext`]: storage, time range, limits, annotations),
//! and the querier that files storage warnings as annotations. A leaf like `value`: the
//! evaluator, functions and selection all take an `EvalContext`.

use std::sync::atomic::AtomicUsize;

use vigil_storage::Storage;

/// Evaluation settings (`--query.lookback-delta`, `--query.max-samples`).
#[derive(Debug, Clone)]
pub struct Engine {
    pub lookback_ms: i64,
    /// Step of subqueries written without one (`x[5m:]`): the global evaluation interval.
    pub subquery_step_ms: i64,
    pub max_samples: usize,
    /// Bytes of series labels and samples one query may load (`--query.max-bytes`; 0: no
    /// limit). Labels can outweigh samples by far (a thousand-byte label set per one-sample
    /// series), which `max_samples` alone does not see.
    pub max_bytes: usize,
    /// Evaluation stops with [`EvalError::Timeout`] once past this instant. Checked as each
    /// node is evaluated and as samples are loaded; set per query on a copy of the engine.
    pub deadline: Option<std::time::Instant>,
    /// `promql-delayed-name-removal`: functions and operators that drop `__name__` mark their
    /// results instead, and the name goes when the query's result is assembled, so
    /// `label_replace` and `by (__name__)` still see it on the way.
    pub delayed_name_removal: bool,
    /// `type-and-unit-labels`: `rate` and `increase` judge whether a series is a counter by
    /// its `__type__` label rather than its name's suffix.
    pub type_and_unit_labels: bool,
    /// `promql-per-step-stats`: a query asking for `stats=all` gets its samples per step.
    pub per_step_stats: bool,
    /// The statistics this query collects (set per query, on a copy of the engine).
    pub stats: crate::stats::StatsLevel,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            lookback_ms: 5 * 60 * 1000,
            subquery_step_ms: 60_000,
            max_samples: 50_000_000,
            max_bytes: 0,
            deadline: None,
            delayed_name_removal: false,
            type_and_unit_labels: false,
            per_step_stats: false,
            stats: Default::default(),
        }
    }
}

impl Engine {
    /// This engine with a deadline `timeout` from now.
    pub fn with_timeout(&self, timeout: std::time::Duration) -> Engine {
        Engine {
            deadline: Some(std::time::Instant::now() + timeout),
            ..self.clone()
        }
    }
}

/// The context one query (or subquery) is evaluated in.
pub(crate) struct EvalContext<'a> {
    pub storage: &'a dyn Storage,
    pub engine: &'a Engine,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// Query start/end for `@ start()`/`@ end()` (differ from start/end inside subqueries).
    pub q_start: i64,
    pub q_end: i64,
    /// The query's step (0 for an instant query), for `step()`.
    pub q_step: i64,
    /// Warnings and infos gathered while evaluating (shared with subquery contexts).
    pub notes: &'a std::cell::RefCell<Notes>,
    /// Samples loaded so far (shared with shard threads through [`EvalContext::budget`]).
    pub samples: AtomicUsize,
    /// Bytes of series and samples loaded so far (against `max_bytes`).
    pub bytes: AtomicUsize,
    /// Inside a subquery: each series' per-step slots count as samples too, so a tiny step
    /// over a long range (`x[1y:1ms]`) fails as too many samples instead of allocating them.
    pub count_steps: bool,
    /// Selectors read only histograms' count and sum (under `histogram_count`, `_sum`,
    /// `_avg`): as Prometheus's stats iterator, an unknown counter-reset hint is then resolved
    /// against the sample read before it. Observable through the warnings it enables.
    pub stats_only: std::cell::Cell<bool>,
    /// Samples read, when the query collects statistics (a subquery has its own).
    pub stats: Option<&'a crate::stats::SampleStats>,
}

/// A querier that hands its warnings to the query's annotations when done. Shard threads
/// borrow the inner querier (this wrapper stays on the evaluating thread).
pub(crate) struct NotedQuerier<'a> {
    pub(crate) q: Box<dyn vigil_storage::Querier + 'a>,
    pub(crate) notes: &'a std::cell::RefCell<Notes>,
}

impl<'a> std::ops::Deref for NotedQuerier<'a> {
    type Target = dyn vigil_storage::Querier + 'a;
    fn deref(&self) -> &Self::Target {
        &*self.q
    }
}

impl Drop for NotedQuerier<'_> {
    fn drop(&mut self) {
        let mut n = self.notes.borrow_mut();
        for w in self.q.warnings() {
            if !n.warnings.contains(&w) {
                n.warnings.push(w);
            }
        }
    }
}

/// Annotations of one query, each message once, in the order first raised.
#[derive(Debug, Default)]
pub struct Notes {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}
