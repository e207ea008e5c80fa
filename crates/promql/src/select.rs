//! Reading a selector's series for the evaluator: the selection is split into the shards the
//! querier suggests, each read and turned into per-series results on its own thread as it is
//! decoded, so a query uses every core and never holds all raw samples of a selector at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use vigil_model::Labels;
use vigil_storage::{Matcher, Querier, SeriesSet};

use crate::stats::SampleStats;
use crate::value::{EvalError, R};

/// The query's limits, shareable with shard threads.
#[derive(Clone, Copy)]
pub(crate) struct Budget<'a> {
    pub samples: &'a AtomicUsize,
    pub max_samples: usize,
    pub bytes: &'a AtomicUsize,
    pub max_bytes: usize,
    pub deadline: Option<Instant>,
    /// Where the samples read are counted, when the query collects statistics.
    pub stats: Option<&'a SampleStats>,
}

/// What a loaded sample (timestamp and value) costs against `--query.max-bytes`.
const SAMPLE_BYTES: usize = 16;

impl Budget<'_> {
    /// Account for `n` samples loaded; fails past `--query.max-samples`,
    /// `--query.max-bytes` or the deadline.
    pub fn count(&self, n: usize) -> R<()> {
        let total = self.samples.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(s) = self.stats {
            s.held(total);
        }
        if total > self.max_samples {
            return Err(EvalError::TooManySamples);
        }
        self.count_bytes(n * SAMPLE_BYTES)?;
        self.check_deadline()
    }

    /// Give back `n` samples counted by [`Budget::count`] that are no longer held: a range
    /// function's input once its per-step results are computed. `--query.max-samples` then
    /// bounds the samples held at once, as Prometheus's engine counts them (its
    /// `currentSamples`), not all samples read over the query.
    pub fn release(&self, n: usize) {
        self.samples.fetch_sub(n, Ordering::Relaxed);
    }

    /// Account for one series read from storage: its labels and its `n` samples. Labels
    /// shared with storage (the head's, handed out as a reference) cost only their handle.
    pub fn count_series(&self, labels: &Labels, n: usize) -> R<()> {
        let heap = if labels.is_shared() {
            0
        } else {
            labels.heap_bytes()
        };
        self.count_bytes(heap + std::mem::size_of::<Labels>())?;
        self.count(n)
    }

    fn count_bytes(&self, b: usize) -> R<()> {
        let total = self.bytes.fetch_add(b, Ordering::Relaxed) + b;
        if self.max_bytes > 0 && total > self.max_bytes {
            return Err(EvalError::TooManyBytes(self.max_bytes));
        }
        Ok(())
    }

    pub fn check_deadline(&self) -> R<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(EvalError::Timeout),
            _ => Ok(()),
        }
    }
}

/// Run `work` on each shard of the series matching `matchers`, shards on their own threads
/// (one shard runs on this thread); results in shard order, the first error wins.
pub(crate) fn for_shards<T: Send>(
    q: &dyn Querier,
    matchers: &[Matcher],
    work: impl Fn(SeriesSet<'_>) -> R<T> + Sync,
) -> R<Vec<T>> {
    let of = q.shards();
    if of <= 1 {
        // The one-shard form, not `select`: sources that stream per shard (the TSDB) then
        // decode a series only when `work` asks for it, so the budget stops a heavy selector
        // before it is all in memory.
        return Ok(vec![work(q.select_shard(matchers, 0, 1)?)?]);
    }
    let work = &work;
    std::thread::scope(|sc| {
        // Shard 0 runs on this thread: one thread fewer to start and wait for.
        let workers: Vec<_> = (1..of)
            .map(|i| sc.spawn(move || work(q.select_shard(matchers, i, of)?)))
            .collect();
        let mut out = vec![
            q.select_shard(matchers, 0, of)
                .map_err(EvalError::from)
                .and_then(&work),
        ];
        out.extend(
            workers
                .into_iter()
                .map(|w| w.join().expect("shard reader panicked")),
        );
        out.into_iter().collect()
    })
}

/// Merge per-shard lists, each sorted by `key`, into one list in `key` order: the order one
/// unsharded selection yields.
pub(crate) fn merge_sorted<T>(parts: Vec<Vec<T>>, key: impl Fn(&T) -> &Labels) -> Vec<T> {
    let total = parts.iter().map(Vec::len).sum();
    let mut its: Vec<std::vec::IntoIter<T>> = parts.into_iter().map(Vec::into_iter).collect();
    let mut heads: Vec<Option<T>> = its.iter_mut().map(Iterator::next).collect();
    let mut out = Vec::with_capacity(total);
    // Few shards: a linear scan for the smallest head beats a heap.
    loop {
        let mut best: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            let Some(x) = h else { continue };
            if best.is_none_or(|b| heads[b].as_ref().is_some_and(|y| key(x) < key(y))) {
                best = Some(i);
            }
        }
        let Some(b) = best else { return out };
        let next = its[b].next();
        out.push(std::mem::replace(&mut heads[b], next).expect("a head"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_label_order() {
        let l = |v: &str| Labels::from_pairs([("a", v.to_string())]);
        let parts = vec![
            vec![l("1"), l("4"), l("5")],
            vec![l("2"), l("3")],
            vec![],
            vec![l("0"), l("6")],
        ];
        let got: Vec<String> = merge_sorted(parts, |x| x)
            .iter()
            .map(|x| x.get_or_empty("a").to_string())
            .collect();
        assert_eq!(got, ["0", "1", "2", "3", "4", "5", "6"]);
    }
}
