//! What each running provider last failed at, for the pages that list targets: a job with a
//! Kubernetes watch refused (403) or a file that does not parse must not look like a job that
//! simply found nothing. Providers report through a [`Reporter`]; a report clears once the
//! same part works again, and a job's reports go with the job.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

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

/// (job, provider, part) -> (error, since).
type Problems = BTreeMap<(String, String, String), (String, SystemTime)>;

/// Every running provider's current failures.
#[derive(Default)]
pub struct Health {
    problems: Mutex<Problems>,
}

impl Health {
    /// The current failures, by job, provider and part.
    pub fn problems(&self) -> Vec<Problem> {
        self.problems
            .lock()
            .iter()
            .map(|((job, provider, part), (error, since))| Problem {
                job: job.clone(),
                provider: provider.clone(),
                part: part.clone(),
                error: error.clone(),
                since: *since,
            })
            .collect()
    }

    /// Forget a job's reports (it stopped, or restarts with new providers).
    pub fn forget(&self, job: &str) {
        self.problems.lock().retain(|(j, _, _), _| j != job);
    }
}

/// One provider's handle on [`Health`].
#[derive(Clone)]
pub struct Reporter {
    health: Arc<Health>,
    job: String,
    provider: String,
}

impl Reporter {
    pub fn new(health: Arc<Health>, job: &str, provider: String) -> Reporter {
        Reporter {
            health,
            job: job.to_string(),
            provider,
        }
    }

    /// A reporter that keeps its reports to itself (tests, and callers with no page).
    pub fn detached() -> Reporter {
        Reporter::new(Arc::default(), "", String::new())
    }

    /// `part` fails with `error` (the first time of a run of the same error is kept).
    pub fn fail(&self, part: &str, error: impl std::fmt::Display) {
        let error = error.to_string();
        let key = (self.job.clone(), self.provider.clone(), part.to_string());
        let mut p = self.health.problems.lock();
        match p.get_mut(&key) {
            Some((e, _)) if *e == error => {}
            _ => {
                p.insert(key, (error, SystemTime::now()));
            }
        }
    }

    /// `part` works.
    pub fn ok(&self, part: &str) {
        let key = (self.job.clone(), self.provider.clone(), part.to_string());
        let mut p = self.health.problems.lock();
        if !p.is_empty() {
            p.remove(&key);
        }
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
        h.forget("k8s");
        assert!(h.problems().is_empty());
    }
}
