//! Where queries run: a fixed pool of threads, one per core, at the lowest CPU priority.
//!
//! Scrapes run on the async runtime's worker threads. With queries on tokio's blocking pool
//! (up to `--query.max-concurrency` at once, each with its shard threads), forty CPU-bound
//! threads shared two cores with the workers, and a scrape's many small reads each waited a
//! full scheduling round: under a burst of queries vigil kept 28 of 120 scrapes. Here at most
//! one query per core runs (the rest wait their turn, within their timeout), and the pool's
//! threads run 19 nice steps below the process (nice 19 from nice 0), so the kernel gives scrapes (nice 0, about 70 times the weight) the
//! CPU whenever they want it: queries cost latency, never data. Threads a query starts (shard
//! readers) inherit the priority.

use std::sync::mpsc;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub struct QueryPool {
    tx: parking_lot::Mutex<mpsc::Sender<Job>>,
    threads: usize,
}

/// How far below the process's priority query threads run, in nice steps: to nice 19 from a
/// process at nice 0 or above.
pub const QUERY_NICE: i32 = 19;

/// How far below the process's priority the storage's maintenance thread (block cuts, merges,
/// retention) runs: below scrapes, which must never wait for a block write, and above
/// queries, so a burst of them cannot hold off the cuts that keep the head's memory bounded.
/// (Relative, so a server started at nice 8 or less keeps the same order; above that,
/// maintenance reaches 19 and ties with queries.)
pub const MAINTENANCE_NICE: i32 = 10;

/// The calling thread's nice value (Linux: nice is per thread).
#[cfg(target_os = "linux")]
pub fn thread_nice() -> i32 {
    // SAFETY: getpriority on the calling thread's own id has no memory-safety preconditions.
    // It cannot fail for the caller's own thread, so its -1 is always a nice value.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

/// Lower the calling thread's CPU priority by `by` nice steps, to at most 19.
fn lower_priority(by: i32) {
    #[cfg(target_os = "linux")]
    {
        let nice = (thread_nice() + by).min(19);
        // SAFETY: setpriority on the calling thread's own id; it has no memory-safety
        // preconditions, and failure (e.g. forbidden by policy) only leaves the priority as
        // it was.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
                tracing::warn!(nice, "could not lower a thread's CPU priority");
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = by;
}

impl QueryPool {
    /// `threads` threads (at least one), `nice` steps below the caller's priority.
    pub fn new(threads: usize, nice: i32) -> QueryPool {
        QueryPool::named("vigil-query", threads, nice)
    }

    /// As [`QueryPool::new`], the threads named `name-N`: the same pool runs the storage's
    /// maintenance at its own priority.
    pub fn named(name: &str, threads: usize, nice: i32) -> QueryPool {
        let threads = threads.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(parking_lot::Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        let job = rx.lock().recv();
                        match job {
                            // A job that panics is reported to its caller (its result channel
                            // closes); the thread goes on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning a query thread");
        }
        QueryPool {
            tx: parking_lot::Mutex::new(tx),
            threads,
        }
    }

    /// One thread per core the process may use.
    pub fn per_core() -> QueryPool {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        QueryPool::new(n, QUERY_NICE)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f` on the pool; its result, or `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        if self.tx.lock().send(job).is_err() {
            return None;
        }
        rx.await.ok()
    }
}

/// Start `f` on a thread of its own at the queries' priority: for a request that may wait on
/// its client as it answers (a streamed remote read sends as the client takes), which would
/// hold one of the pool's few threads from every query meanwhile. Callers bound how many run
/// at once.
pub fn spawn_at_query_priority(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_priority(QUERY_NICE);
            f()
        })
        .map(|_| ())
}

/// [`spawn_at_query_priority`], awaiting `f`'s result: `None` if the thread could not start
/// or `f` panicked.
pub async fn run_on_own_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if let Err(e) = spawn_at_query_priority(name, move || {
        let _ = tx.send(f());
    }) {
        tracing::warn!(err = %e, "could not start a thread for a request");
        return None;
    }
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_at_low_priority_and_survives_panics() {
        let pool = QueryPool::new(2, 10);
        #[cfg(target_os = "linux")]
        {
            // Relative to the caller's (tests may run under `nice`).
            let base = thread_nice();
            assert_eq!(pool.run(thread_nice).await, Some((base + 10).min(19)));
        }
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7));
    }

    #[tokio::test]
    async fn own_thread_runs_at_query_priority_and_survives_panics() {
        #[cfg(target_os = "linux")]
        {
            let base = thread_nice();
            let got = run_on_own_thread("t", thread_nice).await;
            assert_eq!(got, Some((base + QUERY_NICE).min(19)));
        }
        assert_eq!(
            run_on_own_thread("t", || -> u8 { panic!("boom") }).await,
            None
        );
        assert_eq!(run_on_own_thread("t", || 7).await, Some(7));
    }
}
