//! Runs the rule groups: loads `rule_files` at start and on every reload (a bad file fails the
//! reload and the running groups stay), one task per group on its own interval, state carried
//! over for groups and rules that survive a reload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use vigil_model::{Labels, STALE_NAN};
use vigil_promql::Engine;
use vigil_storage::Storage;

use crate::file;
use crate::group::{Group, now_ms};
use crate::notifier::Notifier;
use crate::rule::EvalEnv;

/// Settings from the config and flags that groups evaluate with.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `global.evaluation_interval`.
    pub default_interval: Duration,
    /// `global.rule_query_offset`.
    pub default_query_offset: Duration,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    /// `--rules.alert.for-outage-tolerance`.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`.
    pub grace_period: Duration,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            default_interval: Duration::from_secs(60),
            default_query_offset: Duration::ZERO,
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
            resend_delay: Duration::from_secs(60),
        }
    }
}

struct Running {
    file: String,
    name: String,
    /// What decides whether a reload leaves the group running untouched.
    spec: crate::file::GroupSpec,
    interval: Duration,
    query_offset: Duration,
    /// Locked for a whole evaluation (and by a reload replacing the group, which so waits for
    /// the evaluation in flight, as Prometheus does).
    group: Arc<Mutex<Group>>,
    /// What the API and pages read: a copy without the written-series sets, refreshed after
    /// each evaluation, so reading never waits for a slow evaluation.
    view: Arc<Mutex<Group>>,
    stop: tokio::sync::watch::Sender<bool>,
}

pub struct Manager {
    storage: Arc<dyn Storage>,
    engine: Engine,
    query_timeout: Duration,
    running: Mutex<Vec<Running>>,
    options: Mutex<Arc<Options>>,
    /// After the first successful load, new groups need no `for` state restore.
    loaded_once: AtomicBool,
    notifier: Mutex<Option<Arc<Notifier>>>,
    /// `concurrent-rule-eval`: the evaluation slots all groups share.
    slots: Option<crate::concurrency::Slots>,
    /// The `rule_files` globs that matched nothing at the last load.
    unmatched: Mutex<Vec<String>>,
}

/// Expand `rule_files` patterns (already resolved against the config's directory). A pattern
/// without wildcards that names no file is an error, as promtool reports it.
pub fn expand(patterns: &[String]) -> Result<Vec<String>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for p in patterns {
        let wild = p.contains(['*', '?', '[']);
        match glob::glob(p) {
            Ok(paths) => {
                let mut found: Vec<String> = paths
                    .filter_map(Result::ok)
                    .map(|p| p.display().to_string())
                    .collect();
                found.sort();
                if found.is_empty() && !wild {
                    errs.push(format!("{p:?} does not point to an existing file"));
                }
                out.extend(found);
            }
            Err(e) => errs.push(format!("invalid rule file pattern {p:?}: {e}")),
        }
    }
    // Overlapping patterns name a file once (its groups must not run twice).
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The `rule_files` patterns with wildcards that match no file when called (the server records
/// them at each load, see [`Manager::set_unmatched`]). Prometheus loads nothing
/// from them without a word; vigil names them (on the rules pages and in `check config`), as a
/// ConfigMap mounted at another path, or files with another extension, look just like a
/// configuration with no rules.
pub fn unmatched(patterns: &[String]) -> Vec<String> {
    patterns
        .iter()
        .filter(|p| p.contains(['*', '?', '[']))
        // As `expand` counts a match: any path.
        .filter(|p| glob::glob(p).is_ok_and(|mut paths| !paths.any(|x| x.is_ok())))
        .cloned()
        .collect()
}

/// Read and check every rule file; all problems together.
pub fn load_files(files: &[String]) -> Result<Vec<file::RuleFile>, Vec<String>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match file::load(Path::new(f)) {
            Ok(rf) => out.push(rf),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

impl Manager {
    pub fn new(storage: Arc<dyn Storage>, engine: Engine, query_timeout: Duration) -> Manager {
        Manager {
            storage,
            engine,
            query_timeout,
            running: Mutex::new(Vec::new()),
            options: Mutex::new(Arc::new(Options::default())),
            loaded_once: AtomicBool::new(false),
            notifier: Mutex::new(None),
            slots: None,
            unmatched: Mutex::new(Vec::new()),
        }
    }

    /// Evaluate the rules of each group that read none of each other side by side, in up to
    /// `max` evaluations at once across all groups (`concurrent-rule-eval` and
    /// `--rules.max-concurrent-evals`).
    pub fn with_concurrent_evals(mut self, max: usize) -> Manager {
        self.slots = Some(crate::concurrency::Slots::new(max));
        self
    }

    /// Where alerts due to be sent go.
    pub fn set_notifier(&self, n: Arc<Notifier>) {
        *self.notifier.lock() = Some(n);
    }

    /// The `rule_files` globs that matched no file at the last load (see [`unmatched`]), for
    /// the rules pages: what was loaded, not what the disk holds now.
    pub fn set_unmatched(&self, patterns: Vec<String>) {
        *self.unmatched.lock() = patterns;
    }

    /// What [`Manager::set_unmatched`] last recorded.
    pub fn unmatched(&self) -> Vec<String> {
        self.unmatched.lock().clone()
    }

    /// Check `patterns`' rule files without applying them.
    pub fn check(patterns: &[String]) -> Result<Vec<file::RuleFile>, Vec<String>> {
        load_files(&expand(patterns)?)
    }

    /// Replace the running groups with those of `files` (already checked). Must be called
    /// inside the tokio runtime. Never waits for an evaluation in flight: a replaced group's
    /// state is taken over, and a removed group's series marked stale, by tasks that do.
    pub fn apply(self: &Arc<Self>, files: Vec<file::RuleFile>, opts: Options) {
        let opts = Arc::new(opts);
        let restored = self.loaded_once.swap(true, Ordering::Relaxed);
        let opts_changed = **self.options.lock() != *opts;
        *self.options.lock() = opts.clone();
        let mut running = self.running.lock();
        let mut old: Vec<Running> = std::mem::take(&mut *running);
        let mut new_running = Vec::new();
        for rf in files {
            for spec in rf.groups {
                let g = Group::new(
                    &rf.path,
                    spec,
                    opts.default_interval,
                    opts.default_query_offset,
                    restored,
                );
                let prev = old
                    .iter()
                    .position(|r| r.file == g.file && r.name == g.name);
                match prev {
                    Some(i) => {
                        let r = old.remove(i);
                        let same = !opts_changed
                            && r.spec == g.spec
                            && r.interval == g.interval
                            && r.query_offset == g.query_offset;
                        if same {
                            new_running.push(r);
                            continue;
                        }
                        let _ = r.stop.send(true);
                        new_running.push(self.start(g, Some(r.group.clone()), false));
                    }
                    None => new_running.push(self.start(g, None, !restored)),
                }
            }
        }
        for r in old {
            let _ = r.stop.send(true);
            self.retire(r.group.clone());
        }
        *running = new_running;
    }

    /// A removed group: once its evaluation in flight is done it is stopped, and two intervals
    /// later its series are marked stale at the time it was removed (as Prometheus: a group
    /// renamed or moved to another file writes the same series meanwhile, and the late marker
    /// is then refused as out of order instead of cutting them).
    fn retire(self: &Arc<Self>, group: Arc<Mutex<Group>>) {
        let me = self.clone();
        let at = now_ms();
        tokio::spawn(async move {
            let taken = tokio::task::spawn_blocking(move || {
                let mut g = group.lock();
                g.stopped = true;
                let series: Vec<Labels> = g
                    .rules
                    .iter()
                    .flat_map(|r| r.previous.iter().cloned())
                    .chain(g.stale.iter().cloned())
                    .collect();
                (series, g.query_offset, g.interval)
            })
            .await;
            let Ok((series, offset, interval)) = taken else {
                return;
            };
            if series.is_empty() {
                return;
            }
            tokio::time::sleep(interval * 2).await;
            let _ = tokio::task::spawn_blocking(move || {
                let mut app = me.storage.appender();
                for l in &series {
                    let _ = app.append(0, l, at - offset.as_millis() as i64, STALE_NAN);
                }
                let _ = app.commit();
            })
            .await;
        });
    }

    /// Run `g` on its own task. With `predecessor`, the task first takes over its state
    /// (waiting for its evaluation in flight, off the caller's thread).
    fn start(
        self: &Arc<Self>,
        g: Group,
        predecessor: Option<Arc<Mutex<Group>>>,
        should_restore: bool,
    ) -> Running {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (file, name) = (g.file.clone(), g.name.clone());
        let (spec, interval, query_offset) = (g.spec.clone(), g.interval, g.query_offset);
        let view = Arc::new(Mutex::new(g.view()));
        let group = Arc::new(Mutex::new(g));
        let me = self.clone();
        let g2 = group.clone();
        let v2 = view.clone();
        tokio::spawn(async move {
            let mut should_restore = should_restore;
            if let Some(old) = predecessor {
                let (g3, v3) = (g2.clone(), v2.clone());
                let owed = tokio::task::spawn_blocking(move || {
                    let mut o = old.lock();
                    o.stopped = true;
                    let mut g = g3.lock();
                    g.copy_state(&o);
                    *v3.lock() = g.view();
                    // A group replaced before its first restore still owes one.
                    g.rules.iter().any(|r| r.spec.is_alert() && !r.restored)
                })
                .await;
                should_restore = owed.unwrap_or(false);
            }
            let (interval_ms, first) = {
                let g = g2.lock();
                let iv = g.interval.as_millis().max(1) as i64;
                (iv, g.slot(now_ms()) + iv)
            };
            let mut next = first;
            let mut done = 0u64;
            loop {
                let wait = (next - now_ms()).max(0) as u64;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                    _ = stopped.changed() => return,
                }
                if *stopped.borrow() {
                    return;
                }
                let ts = next;
                let me2 = me.clone();
                let g3 = g2.clone();
                let v3 = v2.clone();
                let restore_now = should_restore && done == 1;
                let res =
                    tokio::task::spawn_blocking(move || me2.eval_group(&g3, &v3, ts, restore_now))
                        .await;
                if let Err(e) = res {
                    tracing::error!(err = %e, "Rule group evaluation panicked");
                }
                done += 1;
                let missed = (now_ms() - ts) / interval_ms - 1;
                if missed > 0 {
                    let mut g = g2.lock();
                    g.stats.missed += missed as u64;
                    g.stats.iterations += missed as u64;
                    *v2.lock() = g.view();
                }
                next = ts + (missed.max(0) + 1) * interval_ms;
            }
        });
        Running {
            file,
            name,
            spec,
            interval,
            query_offset,
            group,
            view,
            stop,
        }
    }

    fn eval_group(&self, group: &Mutex<Group>, view: &Mutex<Group>, ts: i64, restore: bool) {
        let opts = self.options.lock().clone();
        let env = EvalEnv {
            storage: self.storage.as_ref(),
            engine: &self.engine,
            query_timeout: Some(self.query_timeout),
            external_labels: &opts.external_labels,
            external_url: &opts.external_url,
            concurrency: self.slots.as_ref(),
        };
        let mut g = group.lock();
        if g.stopped {
            return;
        }
        let to_send = g.eval(&env, ts, opts.resend_delay);
        if restore {
            g.restore_for_state(
                self.storage.as_ref(),
                now_ms(),
                opts.outage_tolerance,
                opts.grace_period,
            );
        }
        *view.lock() = g.view();
        drop(g);
        if !to_send.is_empty()
            && let Some(n) = self.notifier.lock().clone()
        {
            n.send(to_send);
        }
    }

    /// Every group as last evaluated, ordered by file then name (for the API, pages and
    /// metrics).
    pub fn groups(&self) -> Vec<Group> {
        let mut v: Vec<Group> = self
            .running
            .lock()
            .iter()
            .map(|r| r.view.lock().clone())
            .collect();
        v.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
        v
    }

    pub fn options(&self) -> Arc<Options> {
        self.options.lock().clone()
    }

    /// Stop every group (at shutdown).
    pub fn stop(&self) {
        for r in self.running.lock().drain(..) {
            let _ = r.stop.send(true);
        }
    }
}

impl Group {
    /// A copy for reading: everything but the written-series sets.
    fn view(&self) -> Group {
        Group {
            file: self.file.clone(),
            name: self.name.clone(),
            spec: self.spec.clone(),
            interval: self.interval,
            query_offset: self.query_offset,
            rules: self.rules.iter().map(crate::rule::Rule::view).collect(),
            stale: Vec::new(),
            last_evaluation: self.last_evaluation,
            evaluation_time: self.evaluation_time,
            stats: self.stats.clone(),
            stopped: self.stopped,
            batches: self.batches.clone(),
        }
    }
}

impl crate::rule::Rule {
    /// A copy for reading: everything but the written-series set.
    fn view(&self) -> crate::rule::Rule {
        crate::rule::Rule {
            spec: self.spec.clone(),
            health: self.health,
            last_error: self.last_error.clone(),
            last_evaluation: self.last_evaluation,
            evaluation_time: self.evaluation_time,
            previous: Default::default(),
            active: self.active.clone(),
            restored: self.restored,
        }
    }
}
