//! What each running provider last failed at, for the pages that list targets: a job with a
//! Kubernetes watch refused (403) or a file that does not parse must not look like a job that
//! simply found nothing. Providers report through a [`Reporter`]; a report clears once the
//! same part works again, and a job's reports go with the job.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

/// A provider's current failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The scrape job.
    pub job: String,
    /// The provider, as the config names it (`kubernetes_sd_configs[0] (role pod)`).
    pub provider: String,
    /// The part of it that failed (a watched resource, a file, the client).
    pub part: String,
    /// The error, as logged.
    pub error: String,
    /// When it first failed this way.
    pub since: SystemTime,
}

/// A reported failure: the error, since when, and until when it stands unless reported again
/// (`None`: until its part works).
struct Report {
    error: String,
    since: SystemTime,
    until: Option<Instant>,
}

#[derive(Default)]
struct State {
    /// (job, provider, part) -> the report.
    problems: BTreeMap<(String, String, String), Report>,
    /// Per job, the oldest generation of its providers still reporting: a provider of an
    /// older one (stopped by a restart of its job, but not yet dropped) is not heard.
    floor: HashMap<String, u64>,
}

/// Every running provider's current failures.
#[derive(Default)]
pub struct Health {
    state: Mutex<State>,
}

impl Health {
    /// The current failures, by job, provider and part.
    pub fn problems(&self) -> Vec<Problem> {
        let now = Instant::now();
        self.state
            .lock()
            .problems
            .iter()
            .filter(|(_, r)| r.until.is_none_or(|u| u > now))
            .map(|((job, provider, part), r)| Problem {
                job: job.clone(),
                provider: provider.clone(),
                part: part.clone(),
                error: r.error.clone(),
                since: r.since,
            })
            .collect()
    }

    /// Forget a job's reports: it stopped, or restarts with providers of `generation`, from
    /// which on only those are heard.
    pub fn forget(&self, job: &str, generation: u64) {
        let mut st = self.state.lock();
        st.problems.retain(|(j, _, _), _| j != job);
        let floor = st.floor.entry(job.to_string()).or_default();
        *floor = (*floor).max(generation);
    }
}

/// One provider's handle on [`Health`].
#[derive(Clone)]
pub struct Reporter {
    health: Arc<Health>,
    job: String,
    provider: String,
    generation: u64,
}

impl Reporter {
    /// A reporter for one provider of `job`, started as the job's `generation` (see
    /// [`Health::forget`]).
    pub fn new(health: Arc<Health>, job: &str, provider: String, generation: u64) -> Reporter {
        Reporter {
            health,
            job: job.to_string(),
            provider,
            generation,
        }
    }

    /// A reporter that keeps its reports to itself (tests, and callers with no page).
    pub fn detached() -> Reporter {
        Reporter::new(Arc::default(), "", String::new(), 0)
    }

    /// `part` fails with `error`, until it works (the first time of a run of the same error
    /// is kept).
    pub fn fail(&self, part: &str, error: impl std::fmt::Display) {
        self.report(part, error.to_string(), None);
    }

    /// `part` fails with `error`, and stands for `ttl` unless reported again: for a failure
    /// whose recovery is not seen (a Kubernetes watch that resumes sends nothing until an
    /// object changes), re-reported by each retry while it lasts.
    pub fn fail_for(&self, part: &str, error: impl std::fmt::Display, ttl: Duration) {
        self.report(part, error.to_string(), Some(Instant::now() + ttl));
    }

    /// The problems' key of `part`.
    fn key(&self, part: &str) -> (String, String, String) {
        (self.job.clone(), self.provider.clone(), part.to_string())
    }

    /// Whether this provider's job was restarted or removed since it started: a stopped
    /// provider's late reports and events must not touch its successor's.
    fn stopped(&self, st: &State) -> bool {
        st.floor
            .get(&self.job)
            .is_some_and(|&f| self.generation < f)
    }

    fn report(&self, part: &str, error: String, until: Option<Instant>) {
        let mut st = self.health.state.lock();
        if self.stopped(&st) {
            return;
        }
        let key = self.key(part);
        // The same error still standing keeps its first time; one that lapsed is new.
        let now = Instant::now();
        match st.problems.get_mut(&key) {
            Some(r) if r.error == error && r.until.is_none_or(|u| u > now) => r.until = until,
            _ => {
                st.problems.insert(
                    key,
                    Report {
                        error,
                        since: SystemTime::now(),
                        until,
                    },
                );
            }
        }
    }

    /// `part` works.
    /// `part` works. Called for every event a watch sees, so it builds no key while nothing
    /// is reported.
    pub fn ok(&self, part: &str) {
        let mut st = self.health.state.lock();
        if st.problems.is_empty() || self.stopped(&st) {
            return;
        }
        let key = self.key(part);
        st.problems.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_stays_until_its_part_works_or_its_job_goes() {
        let h = Arc::new(Health::default());
        let r = Reporter::new(
            h.clone(),
            "k8s",
            "kubernetes_sd_configs[0] (role pod)".into(),
            1,
        );
        r.fail("pods", "403 Forbidden");
        let first = h.problems()[0].since;
        r.fail("pods", "403 Forbidden");
        r.fail("nodes", "timeout");
        let p = h.problems();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].part, "pods");
        assert_eq!(p[1].since, first, "a repeat keeps the first time");
        r.ok("pods");
        assert_eq!(h.problems().len(), 1);
        // The job restarts as generation 2: the old provider, not yet stopped, is not heard.
        h.forget("k8s", 2);
        assert!(h.problems().is_empty());
        r.fail("nodes", "late report of a stopped provider");
        assert!(h.problems().is_empty());
        let r2 = Reporter::new(
            h.clone(),
            "k8s",
            "kubernetes_sd_configs[0] (role pod)".into(),
            2,
        );
        r2.fail("nodes", "timeout");
        assert_eq!(h.problems().len(), 1);
        r.ok("nodes");
        assert_eq!(h.problems().len(), 1, "the old provider cannot clear it");
    }

    #[test]
    fn a_failure_reported_for_a_while_lapses_unless_reported_again() {
        let h = Arc::new(Health::default());
        let r = Reporter::new(h.clone(), "k8s", "p".into(), 0);
        r.fail_for("pods", "watch failed", Duration::from_millis(50));
        assert_eq!(h.problems().len(), 1);
        std::thread::sleep(Duration::from_millis(80));
        assert!(h.problems().is_empty(), "lapsed");
        r.fail_for("pods", "watch failed", Duration::from_secs(60));
        assert_eq!(h.problems().len(), 1, "reported again");
        assert!(
            h.problems()[0].since.elapsed().unwrap() < Duration::from_millis(60),
            "a failure back after a lapse is dated anew"
        );
    }
}
