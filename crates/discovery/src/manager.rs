//! The discovery manager: one task per SD config, their groups merged per job, published
//! debounced on a `watch` channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil_config::{FileSdConfig, KubernetesSdConfig, ScrapeConfig, StaticConfig};

use crate::health::{Health, Reporter};
use crate::{TargetGroup, file_sd, kubernetes, metrics, static_sd};

/// Updates reach the scrape side at most this often (as Prometheus's `updatert`). The first
/// change after a quiet period goes out at once, so a new job starts without waiting.
pub const DEBOUNCE: Duration = Duration::from_secs(5);

/// All target groups, by job name. Every configured job is present, possibly with no groups.
pub type TargetSets = Arc<BTreeMap<String, Vec<TargetGroup>>>;

/// The discovery part of one scrape config. Jobs whose `JobSd` is unchanged across a reload
/// keep their providers (and their targets) running.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobSd {
    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
}

impl JobSd {
    pub fn from_scrape_config(sc: &ScrapeConfig) -> Self {
        JobSd {
            static_configs: sc.static_configs.clone(),
            file_sd_configs: sc.file_sd_configs.clone(),
            kubernetes_sd_configs: sc.kubernetes_sd_configs.clone(),
        }
    }
}

enum Msg {
    /// A job was (re)started with a new generation: forget its old groups.
    Reset {
        job: String,
        generation: u64,
    },
    Remove {
        job: String,
    },
    Groups {
        job: String,
        generation: u64,
        provider: usize,
        groups: Vec<TargetGroup>,
    },
}

enum Provider {
    File(FileSdConfig),
    Kubernetes(Box<KubernetesSdConfig>),
}

struct RunningJob {
    sd: JobSd,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// See the module docs. Dropping the manager stops every provider.
pub struct Manager {
    msgs: mpsc::UnboundedSender<Msg>,
    health: Arc<Health>,
    jobs: Mutex<HashMap<String, RunningJob>>,
    generation: Mutex<u64>,
    aggregator: JoinHandle<()>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.aggregator.abort();
    }
}

impl Manager {
    /// Start the manager; the receiver sees every published [`TargetSets`].
    pub fn new() -> (Manager, watch::Receiver<TargetSets>) {
        Self::with_interval(DEBOUNCE)
    }

    /// As [`Manager::new`], publishing at most every `interval`
    /// (`--scrape.discovery-reload-interval`).
    pub fn with_interval(interval: Duration) -> (Manager, watch::Receiver<TargetSets>) {
        let (tx, rx) = watch::channel(TargetSets::default());
        let (msgs, mrx) = mpsc::unbounded_channel();
        let aggregator = tokio::spawn(aggregate(mrx, tx, interval));
        (
            Manager {
                msgs,
                health: Arc::default(),
                jobs: Mutex::new(HashMap::new()),
                generation: Mutex::new(0),
                aggregator,
            },
            rx,
        )
    }

    /// What the running providers last failed at (see [`Health`]).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Make the running providers match `jobs`: unchanged jobs keep running, changed ones
    /// restart, missing ones stop.
    pub fn apply(&self, jobs: Vec<(String, JobSd)>) {
        let mut running = self.jobs.lock();
        let wanted: HashMap<String, JobSd> = jobs.into_iter().collect();
        running.retain(|name, job| {
            let keep = wanted.get(name) == Some(&job.sd);
            if !keep {
                let _ = self.msgs.send(Msg::Remove { job: name.clone() });
                // Past every generation so far: none of its providers is heard again.
                self.health.forget(name, *self.generation.lock() + 1);
            }
            keep
        });
        for (name, sd) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let generation = {
                let mut g = self.generation.lock();
                *g += 1;
                *g
            };
            let _ = self.msgs.send(Msg::Reset {
                job: name.clone(),
                generation,
            });
            self.health.forget(&name, generation);
            let mut tasks = Vec::new();
            let mut provider = 0;
            if !sd.static_configs.is_empty() {
                let _ = self.msgs.send(Msg::Groups {
                    job: name.clone(),
                    generation,
                    provider,
                    groups: static_sd::groups(&sd.static_configs),
                });
                provider += 1;
            }
            let providers = sd
                .file_sd_configs
                .iter()
                .enumerate()
                .map(|(i, fc)| (format!("file_sd_configs[{i}]"), Provider::File(fc.clone())))
                .chain(sd.kubernetes_sd_configs.iter().enumerate().map(|(i, kc)| {
                    (
                        format!("kubernetes_sd_configs[{i}] (role {})", kc.role.as_str()),
                        Provider::Kubernetes(Box::new(kc.clone())),
                    )
                }));
            for (what, p) in providers {
                let (tx, mut rx) = mpsc::channel(1);
                let health = Reporter::new(self.health.clone(), &name, what, generation);
                tasks.push(match p {
                    Provider::File(fc) => tokio::spawn(file_sd::run(fc, tx, health)),
                    Provider::Kubernetes(kc) => tokio::spawn(kubernetes::run(*kc, tx, health)),
                });
                let msgs = self.msgs.clone();
                let job = name.clone();
                tasks.push(tokio::spawn(async move {
                    while let Some(groups) = rx.recv().await {
                        let m = Msg::Groups {
                            job: job.clone(),
                            generation,
                            provider,
                            groups,
                        };
                        if msgs.send(m).is_err() {
                            return;
                        }
                    }
                }));
                provider += 1;
            }
            running.insert(name, RunningJob { sd, tasks });
        }
    }
}

async fn aggregate(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    tx: watch::Sender<TargetSets>,
    interval: Duration,
) {
    // job -> (generation, provider -> groups)
    let mut state: State = BTreeMap::new();
    let mut dirty = false;
    let mut last_publish: Option<Instant> = None;
    loop {
        let deadline = last_publish.map(|t| t + interval);
        let msg = if dirty {
            match deadline {
                Some(d) if d > Instant::now() => tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(d) => {
                        publish(&state, &tx);
                        last_publish = Some(Instant::now());
                        dirty = false;
                        continue;
                    }
                },
                _ => {
                    publish(&state, &tx);
                    last_publish = Some(Instant::now());
                    dirty = false;
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(msg) = msg else { return };
        dirty |= handle(&mut state, msg);
        // Take everything already queued (one `apply` sends several messages) before a
        // leading-edge publish, so a reload is published whole.
        while let Ok(m) = rx.try_recv() {
            dirty |= handle(&mut state, m);
        }
    }
}

type State = BTreeMap<String, (u64, BTreeMap<usize, Vec<TargetGroup>>)>;

/// Apply one message; whether anything changed.
fn handle(state: &mut State, msg: Msg) -> bool {
    match msg {
        Msg::Reset { job, generation } => {
            state.insert(job, (generation, BTreeMap::new()));
        }
        Msg::Remove { job } => {
            state.remove(&job);
        }
        Msg::Groups {
            job,
            generation,
            provider,
            groups,
        } => match state.get_mut(&job) {
            Some((g, providers)) if *g == generation => {
                providers.insert(provider, groups);
            }
            _ => return false, // from a provider that has since been stopped
        },
    }
    true
}

fn publish(state: &State, tx: &watch::Sender<TargetSets>) {
    let sets: BTreeMap<String, Vec<TargetGroup>> = state
        .iter()
        .map(|(job, (_, providers))| (job.clone(), providers.values().flatten().cloned().collect()))
        .collect();
    for (job, groups) in &sets {
        let n: usize = groups.iter().map(|g| g.targets.len()).sum();
        metrics::DISCOVERED_TARGETS
            .get_or_create(&vec![("config".to_string(), job.clone())])
            .set(n as i64);
    }
    // Jobs that were published before and are gone now lose their gauge.
    for job in tx.borrow().keys().filter(|j| !sets.contains_key(*j)) {
        metrics::DISCOVERED_TARGETS.remove(&vec![("config".to_string(), job.clone())]);
    }
    metrics::UPDATES_SENT.inc();
    tx.send_replace(Arc::new(sets));
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::Labels;

    fn static_job(targets: &[&str]) -> JobSd {
        JobSd {
            static_configs: vec![StaticConfig {
                targets: targets.iter().map(|s| s.to_string()).collect(),
                labels: Labels::empty(),
            }],
            file_sd_configs: vec![],
            kubernetes_sd_configs: vec![],
        }
    }

    #[tokio::test]
    async fn publishes_first_update_at_once_and_follows_reloads() {
        let (m, mut rx) = Manager::new();
        m.apply(vec![
            ("a".into(), static_job(&["x:1"])),
            ("empty".into(), JobSd::default()),
        ]);
        tokio::time::timeout(Duration::from_secs(2), rx.changed())
            .await
            .unwrap()
            .unwrap();
        let sets = rx.borrow_and_update().clone();
        assert_eq!(sets["a"][0].targets.len(), 1);
        assert!(
            sets["empty"].is_empty(),
            "jobs without targets are still present"
        );

        m.apply(vec![("a".into(), static_job(&["x:1", "y:2"]))]);
        tokio::time::timeout(DEBOUNCE * 2, rx.changed())
            .await
            .unwrap()
            .unwrap();
        let sets = rx.borrow_and_update().clone();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets["a"][0].targets.len(), 2);
    }

    /// `--scrape.discovery-reload-interval`: after the first update, changes reach the pools
    /// no more often than the interval (virtual time: no wall-clock assertion).
    #[tokio::test(start_paused = true)]
    async fn publishes_no_more_often_than_the_interval() {
        let (m, mut rx) = Manager::with_interval(Duration::from_secs(30));
        m.apply(vec![("a".into(), static_job(&["x:1"]))]);
        rx.changed().await.unwrap();
        rx.borrow_and_update();
        let start = tokio::time::Instant::now();
        m.apply(vec![("a".into(), static_job(&["x:1", "y:2"]))]);
        rx.changed().await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_secs(29),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(rx.borrow_and_update()["a"][0].targets.len(), 2);
    }
}
