//! The scrape manager: one pool per job of the current config, fed by discovery.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use vigil_config::ScrapeConfig;
use vigil_discovery::TargetSets;
use vigil_storage::Storage;

use crate::pool::{DroppedTarget, ScrapePool};
use crate::target::SharedTarget;

/// What the API shows of the targets, taken at one moment.
pub struct TargetsSnapshot {
    pub active: Vec<SharedTarget>,
    /// `(pool, dropped target)`.
    pub dropped: Vec<(String, DroppedTarget)>,
}

/// Why a config could not be applied: the job whose client could not be built, and why.
/// Nothing changed (every new client is built before any pool is swapped).
#[derive(Debug, thiserror::Error)]
#[error("job {job:?}: {err}")]
pub struct ApplyError {
    pub job: String,
    #[source]
    pub err: crate::client::ClientError,
}

impl ApplyError {
    fn new(c: &ScrapeConfig, err: crate::client::ClientError) -> Self {
        ApplyError {
            job: c.job_name.clone(),
            err,
        }
    }
}

/// Scrape clients built for a config and not yet in use (see [`ScrapeManager::prepare`]).
pub struct Prepared {
    configs: Vec<ScrapeConfig>,
    scrapers: HashMap<String, crate::client::Scraper>,
}

pub struct ScrapeManager {
    storage: Arc<dyn Storage>,
    pools: Mutex<BTreeMap<String, ScrapePool>>,
    /// The last target sets from discovery, applied to pools created by a later reload.
    last_sets: Mutex<TargetSets>,
}

impl ScrapeManager {
    pub fn new(storage: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(ScrapeManager {
            storage,
            pools: Mutex::new(BTreeMap::new()),
            last_sets: Mutex::new(TargetSets::default()),
        })
    }

    /// Build the client of every pool `configs` would start or change, changing nothing: a
    /// reload does this before it changes any part of the server, so a job whose CA file
    /// cannot be read leaves remote write and the rest as they were, and [`Self::commit`]
    /// then cannot fail (no file is read again in between).
    pub fn prepare(&self, configs: &[ScrapeConfig]) -> Result<Prepared, ApplyError> {
        let pools = self.pools.lock();
        let mut scrapers = HashMap::new();
        for c in configs {
            if pools.get(&c.job_name).is_some_and(|p| p.config() == c) {
                continue;
            }
            let s = crate::client::Scraper::new(c).map_err(|e| ApplyError::new(c, e))?;
            scrapers.insert(c.job_name.clone(), s);
        }
        Ok(Prepared {
            configs: configs.to_vec(),
            scrapers,
        })
    }

    /// Make the pools match a prepared config: removed ones stop, changed ones take their new
    /// client, new ones start with theirs.
    pub fn commit(&self, prepared: Prepared) {
        let Prepared {
            configs,
            mut scrapers,
        } = prepared;
        let mut pools = self.pools.lock();
        let sets = self.last_sets.lock().clone();
        let wanted: std::collections::HashSet<&str> =
            configs.iter().map(|c| c.job_name.as_str()).collect();
        pools.retain(|name, p| {
            let keep = wanted.contains(name.as_str());
            if !keep {
                p.stop(true);
            }
            keep
        });
        for c in configs.iter() {
            let Some(scraper) = scrapers.remove(&c.job_name) else {
                // Unchanged since it was prepared (reloads run one at a time).
                continue;
            };
            match pools.get_mut(&c.job_name) {
                Some(p) => p.reload_with(c.clone(), scraper),
                None => {
                    let mut p = ScrapePool::with_scraper(c.clone(), self.storage.clone(), scraper);
                    if let Some(g) = sets.get(&p.name) {
                        p.sync(g.clone());
                    }
                    pools.insert(p.name.clone(), p);
                }
            }
        }
    }

    /// Follow discovery until its channel closes.
    pub async fn run(self: Arc<Self>, mut rx: watch::Receiver<TargetSets>) {
        loop {
            let sets = rx.borrow_and_update().clone();
            *self.last_sets.lock() = sets.clone();
            {
                let mut pools = self.pools.lock();
                for (job, groups) in sets.iter() {
                    if let Some(p) = pools.get_mut(job) {
                        p.sync(groups.clone());
                    }
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn targets(&self) -> TargetsSnapshot {
        let pools = self.pools.lock();
        let mut active = Vec::new();
        let mut dropped = Vec::new();
        for (name, p) in pools.iter() {
            active.extend(p.active());
            dropped.extend(p.dropped().iter().map(|d| (name.clone(), d.clone())));
        }
        TargetsSnapshot { active, dropped }
    }

    /// Names of the scrape pools, sorted.
    pub fn pool_names(&self) -> Vec<String> {
        self.pools.lock().keys().cloned().collect()
    }

    /// Stop every loop (shutdown); no staleness markers are written.
    pub fn stop(&self) {
        for (_, mut p) in std::mem::take(&mut *self.pools.lock()) {
            p.stop(false);
        }
    }
}
