//! The storage seam: what writers (scrape, rules, remote-write receiver) and readers (PromQL,
//! federation, remote read) see of the database.
//!
//! - [`Appender`]: one transaction; samples become visible on [`Appender::commit`] all at once.
//! - [`Querier`]: select series by label [`Matcher`]s over a time range.
//! - [`Storage`]: hands out both.
//! - [`memory::MemoryStorage`]: a simple in-memory implementation for the tests, the PromQL
//!   `.test` runner and `vigil test rules`; the server runs on the durable TSDB (`crates/tsdb`)
//!   behind the same traits.
//!
//! This crate must never depend on a concrete engine; engines depend on it.

pub mod exemplar;
pub mod matcher;
pub mod memory;

pub use exemplar::{Exemplar, ExemplarError, ExemplarStats, ExemplarStore, SeriesExemplars};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use memory::MemoryStorage;

use vigil_model::{FloatHistogram, HistogramSample, Labels, Sample};

/// Opaque handle of a series inside one storage; 0 means "unknown, resolve by labels".
pub type SeriesRef = u64;

/// Why a single sample was not appended. These are per-sample outcomes that a scrape counts
/// and carries on from, as Prometheus does; they never abort a transaction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateTimestamp,
    #[error("out of bounds")]
    OutOfBounds,
    /// Older than the out-of-order window allows (Prometheus's error when a window is set).
    #[error("too old sample")]
    TooOld,
    #[error("invalid series labels: {0}")]
    InvalidLabels(String),
    /// The storage holds as many series as it may (`--storage.tsdb.max-head-series`).
    #[error("head series limit of {0} reached: new series are refused until old ones go")]
    SeriesLimit(u64),
    /// This storage cannot keep what was appended (native histograms where they are not
    /// supported yet): refused by name, never dropped silently.
    #[error("{0} are not supported by this storage")]
    Unsupported(&'static str),
    /// A native histogram whose layout Prometheus does not define (schema, zero threshold,
    /// spans and bucket counts that disagree).
    #[error("invalid native histogram: {0}")]
    InvalidHistogram(String),
    /// An exemplar was refused; the sample it came with is stored.
    #[error(transparent)]
    Exemplar(#[from] ExemplarError),
}

/// A series' metric metadata, as the scrape (or a remote write 2.0 sender) last gave it:
/// what `--enable-feature=metadata-wal-records` logs per series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Metadata {
    pub kind: vigil_model::exposition::MetricType,
    pub unit: String,
    pub help: String,
}

/// Errors of the storage as a whole (I/O, corruption).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Other(String),
}

/// One transaction. Nothing is visible to queriers before `commit`; `rollback` (or drop)
/// discards everything appended.
pub trait Appender: Send {
    /// Append `(t, v)` to the series `r` if known (non-zero, from an earlier append of this
    /// storage), else to the series named by `labels`, creating it. Returns the series ref to
    /// use next time. `labels` must include `__name__` for new series.
    fn append(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError>;

    /// Append a native histogram sample, as [`Appender::append`] appends a float. Storages
    /// that cannot keep histograms refuse it.
    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: FloatHistogram,
    ) -> Result<SeriesRef, AppendError> {
        let _ = (r, labels, t, h);
        Err(AppendError::Unsupported("native histograms"))
    }

    /// Prometheus's created-timestamp zero sample: before a sample at `t` whose counts started
    /// at `start`, a 0 at `start` (for a native histogram, `template`'s layout with no
    /// observations and a counter reset hint), when `start` is before `t` and after the
    /// series' newest sample. Otherwise nothing is appended, and nothing is counted: it is a
    /// best effort whose refusal (the usual case, every scrape after a series' first) is no
    /// error. Returns the series ref, as `append` does. Storages without it append nothing.
    fn append_start_zero(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        start: i64,
        t: i64,
        template: Option<&FloatHistogram>,
    ) -> Result<SeriesRef, AppendError> {
        let _ = (labels, start, t, template);
        Ok(r)
    }

    /// Attach `e` to the series `r` that [`Appender::append`] returned for `labels`. It is
    /// checked now (its label set's length, order against the series' newest exemplar) and
    /// stored with the transaction's samples at commit. A storage that keeps no exemplars
    /// (exemplar storage off, as Prometheus without `--enable-feature=exemplar-storage`)
    /// accepts and drops it, as Prometheus does.
    fn append_exemplar(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        e: Exemplar,
    ) -> Result<(), AppendError>;

    /// Record `meta` as the metadata of the series `r` (else the one named by `labels`), which
    /// must exist. Storages that keep metadata per series (`metadata-wal-records`) log it at
    /// commit when it differs from what they hold; the others ignore it.
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &std::sync::Arc<Metadata>,
    ) -> Result<SeriesRef, AppendError> {
        let _ = (labels, meta);
        Ok(r)
    }

    /// A hint that about `n` samples follow (a scrape passes about what its target's last
    /// good scrape appended), so a storage can size its transaction's buffers once instead of
    /// growing them sample by sample. Storages may ignore it.
    fn reserve(&mut self, n: usize) {
        let _ = n;
    }

    /// Make every appended sample durable and visible, atomically.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Discard every appended sample.
    fn rollback(self: Box<Self>);
}

/// One series as read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: Labels,
    /// Samples in time order, within the querier's range; staleness markers included.
    pub samples: Vec<Sample>,
    /// Native histogram samples in time order, apart from the floats: most series have
    /// none, and float code paths stay as they were. A timestamp is in at most one of the two.
    pub histograms: Vec<HistogramSample>,
}

impl Series {
    /// A float series.
    pub fn new(labels: Labels, samples: Vec<Sample>) -> Series {
        Series {
            labels,
            samples,
            histograms: Vec::new(),
        }
    }
}

/// A float-only series from its labels and samples.
impl From<(Labels, Vec<Sample>)> for Series {
    fn from((labels, samples): (Labels, Vec<Sample>)) -> Series {
        Series::new(labels, samples)
    }
}

/// A sample of either kind, by its time.
pub trait Timed {
    fn t(&self) -> i64;
}

impl Timed for Sample {
    fn t(&self) -> i64 {
        self.t
    }
}

impl Timed for HistogramSample {
    fn t(&self) -> i64 {
        self.t
    }
}

/// Put samples merged from several sources (or overlapping chunks) back in time order where
/// they are not, keeping the first of equal times: sources are merged in priority order.
pub fn time_order<T: Timed>(v: &mut Vec<T>) {
    if !v.windows(2).all(|w| w[0].t() < w[1].t()) {
        v.sort_by_key(T::t);
        v.dedup_by_key(|x| x.t());
    }
}

/// Native histograms of one series from several sources (each in time order, in priority
/// order), in time order with one per time (the first source's). A sample whose predecessor
/// now comes from another source has its counter-reset hint made unknown (a gauge's stays),
/// as Prometheus's merging iterator makes it: a hint says how a sample follows the one before
/// it in its own chunk, which need not be the one before it now (an old sample between two
/// of a block's, say), so a reset is told by the values instead.
pub fn merge_histograms(mut parts: Vec<Vec<HistogramSample>>) -> Vec<HistogramSample> {
    use vigil_model::histogram::CounterResetHint as Hint;
    parts.retain(|p| !p.is_empty());
    if parts.len() <= 1 {
        let mut v = parts.pop().unwrap_or_default();
        time_order(&mut v);
        return v;
    }
    let mut tagged: Vec<(usize, HistogramSample)> = parts
        .into_iter()
        .enumerate()
        .flat_map(|(i, p)| p.into_iter().map(move |s| (i, s)))
        .collect();
    // Stable: at equal times the earlier source's sample comes first and stays.
    tagged.sort_by_key(|(_, s)| s.t);
    tagged.dedup_by_key(|(_, s)| s.t);
    let mut prev = None;
    tagged
        .into_iter()
        .map(|(src, mut s)| {
            if prev.is_some_and(|p| p != src) && !matches!(s.h.hint, Hint::Gauge | Hint::Unknown) {
                std::sync::Arc::make_mut(&mut s.h).hint = Hint::Unknown;
            }
            prev = Some(src);
            s
        })
        .collect()
}

/// Series streamed out of a querier, sorted by labels.
pub type SeriesSet<'a> = Box<dyn Iterator<Item = Series> + Send + 'a>;

/// A read view over `[mint, maxt]` (milliseconds, inclusive).
pub trait Querier: Send + Sync {
    /// Series matching all `matchers`, with their samples in the querier's range.
    fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>, StorageError>;
    /// As [`Querier::select`], only the series of shard `shard` of `of` (by
    /// [`vigil_model::Labels::shard`]): readers split a large selection into shards read on
    /// separate threads. Sources that can skip other shards' series before decoding their
    /// samples override this filter.
    fn select_shard(
        &self,
        matchers: &[Matcher],
        shard: usize,
        of: usize,
    ) -> Result<SeriesSet<'_>, StorageError> {
        let all = self.select(matchers)?;
        if of <= 1 {
            return Ok(all);
        }
        Ok(Box::new(all.filter(move |s| s.labels.shard(of) == shard)))
    }
    /// How many shards a reader should split a large selection into: 1 where splitting
    /// gains nothing (the default).
    fn shards(&self) -> usize {
        1
    }
    /// What went wrong without failing the read (a remote source that did not answer):
    /// the query answers with what it has and these as warnings, as Prometheus does.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Label names of series that match all of `matchers` (all series when empty), sorted.
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
    /// Values of label `name` among series matching all of `matchers`, sorted.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError>;
}

/// A database: appenders for writers, queriers for readers.
pub trait Storage: Send + Sync {
    fn appender(&self) -> Box<dyn Appender + '_>;
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError>;
    /// Exemplars in `[mint, maxt]` of the series matching any of `sets`, series sorted by
    /// labels (none where the storage keeps no exemplars).
    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StorageError>;
}

/// A place in a [`Journal`]; later places compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct JournalPos {
    pub segment: u64,
    pub offset: u64,
}

/// One record of committed writes.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalRecord {
    /// Series first seen, with the refs later samples use.
    Series(Vec<(SeriesRef, Labels)>),
    /// Samples: series ref, timestamp ms, value.
    Samples(Vec<(SeriesRef, i64, f64)>),
    /// Exemplars of series by ref.
    Exemplars(Vec<(SeriesRef, Exemplar)>),
    /// Native histogram samples: series ref, timestamp ms, histogram.
    Histograms(Vec<(SeriesRef, i64, std::sync::Arc<FloatHistogram>)>),
    /// Series' metadata, logged when it changed (`metadata-wal-records`).
    Metadata(Vec<(SeriesRef, std::sync::Arc<Metadata>)>),
    /// The log was truncated through `segment`: of the series named at or before it, only
    /// these are still live (no later sample refers to the others), so readers may forget
    /// the rest. Sent once the reader is past every segment that existed when the
    /// truncation was found.
    Live {
        segment: u64,
        series: Vec<SeriesRef>,
    },
}

/// The durable log of committed writes, followed by readers that ship them elsewhere
/// (remote write). Reading it never changes it.
pub trait Journal: Send + Sync {
    /// A reader from the oldest record still kept: first the series a checkpoint holds
    /// (their samples are already in the log's past and are not repeated), then every record
    /// in commit order.
    fn follow(&self) -> Result<Box<dyn JournalReader>, StorageError>;
}

/// What one [`JournalReader::poll`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JournalPoll {
    pub records: usize,
    /// Parts of the log removed before they were read (their samples are not delivered).
    pub gaps: u64,
}

pub trait JournalReader: Send {
    /// Hand over up to `max` records written so far, each with the position after it; fewer
    /// (or none) when the reader has caught up with the writer.
    fn poll(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(JournalRecord, JournalPos),
    ) -> Result<JournalPoll, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::histogram::CounterResetHint as Hint;

    fn h(t: i64, count: f64, hint: Hint) -> HistogramSample {
        HistogramSample {
            t,
            h: std::sync::Arc::new(FloatHistogram {
                count,
                hint,
                ..Default::default()
            }),
        }
    }

    /// Merged in time order, the first source's at an equal time; a hint is made unknown
    /// where the sample before it came from another source, except a gauge's; one source is
    /// left as it is.
    #[test]
    fn merged_histograms_forget_hints_across_sources() {
        let a = vec![
            h(10, 1.0, Hint::CounterReset),
            h(30, 2.0, Hint::NotCounterReset),
            h(40, 3.0, Hint::NotCounterReset),
        ];
        let b = vec![
            h(20, 9.0, Hint::NotCounterReset),
            h(30, 7.0, Hint::NotCounterReset),
            h(50, 1.0, Hint::Gauge),
        ];
        let got: Vec<(i64, f64, Hint)> = merge_histograms(vec![a.clone(), b])
            .iter()
            .map(|s| (s.t, s.h.count, s.h.hint))
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 1.0, Hint::CounterReset),
                (20, 9.0, Hint::Unknown),
                (30, 2.0, Hint::Unknown),
                (40, 3.0, Hint::NotCounterReset),
                (50, 1.0, Hint::Gauge),
            ]
        );
        let alone = merge_histograms(vec![Vec::new(), a.clone()]);
        assert_eq!(
            alone.iter().map(|s| s.h.hint).collect::<Vec<_>>(),
            a.iter().map(|s| s.h.hint).collect::<Vec<_>>()
        );
    }
}
