//! A scrape pool: the targets of one job and their loops.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_config::ScrapeConfig;
use vigil_discovery::TargetGroup;
use vigil_model::Labels;
use vigil_storage::Storage;

use crate::client::Scraper;
use crate::metrics;
use crate::scrape_loop::{PoolContext, ScrapeLoop, Stop};
use crate::target::{ActiveTarget, Populated, SharedTarget, TargetStatus, populate};

struct Running {
    target: SharedTarget,
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

/// A target that relabeling dropped or that could not be built.
#[derive(Debug, Clone)]
pub struct DroppedTarget {
    pub discovered: Labels,
    /// Why, when it was an error rather than a relabel rule.
    pub error: Option<String>,
}

/// Which stopped loop a new one waits for after a reload: the one writing the same series.
/// The target's public labels, not its full set: a reload that changes the job's interval,
/// timeout or histogram settings changes the `__` labels of every target, and the new loop
/// must still wait for the old one's scrape in flight (else both write one scrape's series).
fn handoff_key(t: &crate::Target) -> Labels {
    t.public_labels()
}

pub struct ScrapePool {
    pub name: String,
    ctx: PoolContext,
    /// Keyed by the target's full labels (internal ones included), which fix its URL.
    loops: HashMap<Labels, Running>,
    /// Loops stopped by a reload, awaited by their replacements; keyed by [`handoff_key`].
    retiring: HashMap<Labels, JoinHandle<()>>,
    dropped: Vec<DroppedTarget>,
    groups: Vec<TargetGroup>,
}

impl ScrapePool {
    /// A pool with its client built beforehand (a reload builds every client first: see
    /// `ScrapeManager::prepare`).
    pub fn with_scraper(cfg: ScrapeConfig, storage: Arc<dyn Storage>, scraper: Scraper) -> Self {
        ScrapePool {
            name: cfg.job_name.clone(),
            ctx: PoolContext {
                cfg: Arc::new(cfg),
                scraper: Arc::new(scraper),
                storage,
                forced_error: Arc::new(Mutex::new(None)),
            },
            loops: HashMap::new(),
            retiring: HashMap::new(),
            dropped: Vec::new(),
            groups: Vec::new(),
        }
    }

    pub fn config(&self) -> &ScrapeConfig {
        &self.ctx.cfg
    }

    /// Take a changed config with its client built beforehand: every loop is replaced by one
    /// under the new config, without staleness markers, so series carry on without a gap.
    pub fn reload_with(&mut self, cfg: ScrapeConfig, scraper: Scraper) {
        metrics::POOL_RELOADS.inc();
        for (_, r) in self.loops.drain() {
            let _ = r.stop.send(Stop::Replaced);
            self.retiring.insert(handoff_key(&r.target.target), r.task);
        }
        self.ctx = PoolContext {
            cfg: Arc::new(cfg),
            scraper: Arc::new(scraper),
            storage: self.ctx.storage.clone(),
            forced_error: Arc::new(Mutex::new(None)),
        };
        let groups = std::mem::take(&mut self.groups);
        self.sync(groups);
    }

    /// Bring the loops in line with `groups`: new targets start, vanished ones stop (with
    /// staleness markers), unchanged ones keep running untouched.
    pub fn sync(&mut self, groups: Vec<TargetGroup>) {
        let cfg = self.ctx.cfg.clone();
        let mut wanted: HashMap<Labels, crate::Target> = HashMap::new();
        let mut dropped = Vec::new();
        for g in &groups {
            for t in &g.targets {
                match populate(&g.labels, t, &cfg) {
                    Ok(Populated::Keep(t)) => {
                        wanted.entry(t.labels.clone()).or_insert(t);
                    }
                    Ok(Populated::Dropped(discovered)) => dropped.push(DroppedTarget {
                        discovered,
                        error: None,
                    }),
                    Err(e) => {
                        tracing::warn!(scrape_pool = %self.name, target = %t, err = %e, "Creating target failed");
                        let discovered = Labels::from_pairs(
                            g.labels.iter().chain(t.iter()).map(|l| (l.name, l.value)),
                        );
                        dropped.push(DroppedTarget {
                            discovered,
                            error: Some(e),
                        });
                    }
                }
            }
        }
        self.groups = groups;
        if cfg.keep_dropped_targets > 0 {
            dropped.truncate(cfg.keep_dropped_targets as usize);
        }
        self.dropped = dropped;

        // target_limit: over it, every target reports the error instead of scraping.
        let over = cfg.target_limit > 0 && wanted.len() as u64 > cfg.target_limit;
        *self.ctx.forced_error.lock() = over.then(|| {
            metrics::TARGET_LIMIT.inc();
            format!(
                "target_limit exceeded (number of targets: {}, limit: {})",
                wanted.len(),
                cfg.target_limit
            )
        });

        self.loops.retain(|k, r| {
            let keep = wanted.contains_key(k);
            if !keep {
                let _ = r.stop.send(Stop::Gone);
            }
            keep
        });
        for (k, t) in wanted {
            if self.loops.contains_key(&k) {
                continue;
            }
            let target = Arc::new(ActiveTarget {
                pool: self.name.clone(),
                target: t,
                status: Mutex::new(TargetStatus::default()),
            });
            let (stop, rx) = watch::channel(Stop::Running);
            let lp = ScrapeLoop::new(self.ctx.clone(), target.clone());
            let previous = self.retiring.remove(&handoff_key(&target.target));
            let task = tokio::spawn(lp.run(rx, previous));
            self.loops.insert(k, Running { target, stop, task });
        }
        // Retired loops without a successor finish their scrape on their own.
        self.retiring.clear();
        metrics::POOL_TARGETS
            .get_or_create(&vec![("scrape_job".to_string(), self.name.clone())])
            .set(self.loops.len() as i64);
    }

    /// Stop every loop; `gone` writes staleness markers (the job was removed).
    pub fn stop(&mut self, gone: bool) {
        for (_, r) in self.loops.drain() {
            let _ = r.stop.send(if gone { Stop::Gone } else { Stop::Replaced });
        }
        metrics::POOL_TARGETS.remove(&vec![("scrape_job".to_string(), self.name.clone())]);
    }

    pub fn active(&self) -> Vec<SharedTarget> {
        self.loops.values().map(|r| r.target.clone()).collect()
    }

    pub fn dropped(&self) -> &[DroppedTarget] {
        &self.dropped
    }
}

impl Drop for ScrapePool {
    fn drop(&mut self) {
        for (_, r) in self.loops.drain() {
            let _ = r.stop.send(Stop::Replaced);
        }
    }
}

#[cfg(test)]
mod handoff_tests {
    use super::*;
    use crate::target::{Populated, populate};

    /// A reload that only changes the job's interval hands each target's loop to its
    /// successor: the key ignores the `__` labels that changed.
    #[test]
    fn a_target_keeps_its_handoff_key_when_its_interval_changes() {
        let parse = |interval: &str| {
            let y = format!(
                "scrape_configs:\n  - job_name: j\n    scrape_interval: {interval}\n    static_configs: [{{targets: ['a:1']}}]\n"
            );
            vigil_config::Config::parse(&y, std::path::Path::new("."))
                .unwrap()
                .scrape_configs[0]
                .clone()
        };
        let target = |cfg: &vigil_config::ScrapeConfig| match populate(
            &Labels::empty(),
            &Labels::from_pairs([("__address__", "a:1")]),
            cfg,
        )
        .unwrap()
        {
            Populated::Keep(t) => t,
            Populated::Dropped(l) => panic!("dropped: {l}"),
        };
        let (a, b) = (target(&parse("15s")), target(&parse("30s")));
        assert_ne!(a.labels, b.labels, "the interval is among the full labels");
        assert_eq!(handoff_key(&a), handoff_key(&b));
    }
}
