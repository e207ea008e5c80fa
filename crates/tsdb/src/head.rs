//! The head: the in-memory part of the database, fed by appenders and backed by the WAL.
//!
//! Series are held once (labels, compressed chunks); postings map label name -> value -> the
//! sorted refs of series carrying it. A commit writes one WAL batch (new series, then samples)
//! and only then applies the samples, so what a query sees is always in the WAL.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::sync::Arc;

use vigil_model::labels::METRIC_NAME;
use vigil_model::{FloatHistogram, HistogramSample, Labels, Sample};
use vigil_storage::{
    Appender, Exemplar, ExemplarStore, MatchOp, Matcher, Querier, Series, SeriesExemplars,
    SeriesRef, SeriesSet, Storage, StorageError,
};

use crate::chunk::{SAMPLES_PER_CHUNK, XorChunk, XorIter};
use crate::prometheus::histogram_chunk::{self as hchunk, Full, HistogramChunk};
use crate::wal::{self, Record, Wal};

struct ClosedChunk {
    min_t: i64,
    max_t: i64,
    /// In memory until written to the head's chunk files (see [`mapped`]).
    data: mapped::ChunkBytes,
}

struct MemSeries {
    labels: Labels,
    /// The newest sample's time and value, when `has_last` (see [`MemSeries::last`]).
    last_t: i64,
    last_v: f64,
    /// The samples; none until the first is stored, and never in agent mode.
    chunks: Option<Box<Chunks>>,
    /// Found empty by the last truncation; removed by the next one if still empty, unless a
    /// transaction that began before that one ended is still open (see `Head::remove_empty`).
    /// An append clears it (under the index's read lock, hence atomic): the series is in use.
    doomed: AtomicBool,
    /// Beside `doomed` in what would be padding, where an `Option<Sample>` would add 8 bytes
    /// to every series.
    has_last: bool,
}

/// A series' compressed samples. Boxed apart from [`MemSeries`] so the series map's buckets
/// stay small: an agent's series (samples in the WAL only) and an empty one cost a pointer,
/// and the map's spare buckets (up to half of them after it grows) cost a third as much.
struct Chunks {
    closed: Vec<ClosedChunk>,
    open: XorChunk,
    open_min_t: i64,
    /// Native histograms and late samples, which few series have: one pointer for both, so a
    /// float series' chunks stay in a smaller allocation.
    extra: Option<Box<Extra>>,
}

#[derive(Default)]
struct Extra {
    /// Native histogram samples, apart from the floats (a series may switch kinds; no
    /// timestamp holds both).
    hist: Option<HistChunks>,
    /// Samples that came after a newer one (`storage.tsdb.out_of_order_time_window`, or a
    /// commit overtaken by another on the same series); none at the times the chunks hold.
    /// Boxed: a native histogram series without late samples pays a pointer for them.
    late: Option<Box<LateSamples>>,
}

impl Chunks {
    fn hist(&self) -> Option<&HistChunks> {
        self.extra.as_ref()?.hist.as_ref()
    }

    fn hist_mut(&mut self) -> Option<&mut HistChunks> {
        self.extra.as_mut()?.hist.as_mut()
    }

    fn set_hist(&mut self, h: Option<HistChunks>) {
        self.extra.get_or_insert_with(Default::default).hist = h;
        self.tidy();
    }

    fn late(&self) -> Option<&LateSamples> {
        self.extra.as_ref()?.late.as_deref()
    }

    fn late_or_new(&mut self) -> &mut LateSamples {
        self.extra
            .get_or_insert_with(Default::default)
            .late
            .get_or_insert_with(Default::default)
    }

    /// Drop the late samples before `before`.
    fn truncate_late(&mut self, before: i64) {
        if let Some(e) = self.extra.as_mut()
            && e.late.as_mut().is_some_and(|l| l.truncate_before(before))
        {
            e.late = None;
            self.tidy();
        }
    }

    /// No box is kept for nothing.
    fn tidy(&mut self) {
        if self
            .extra
            .as_ref()
            .is_some_and(|e| e.hist.is_none() && e.late.is_none())
        {
            self.extra = None;
        }
    }
}

/// A full native histogram chunk and its encoding (Prometheus's integer or float one).
struct ClosedHistChunk {
    min_t: i64,
    max_t: i64,
    encoding: u8,
    data: mapped::ChunkBytes,
}

/// A series' native histograms in Prometheus's histogram chunks: integer ones while the
/// counts are whole, as scraped ones are; float ones otherwise.
struct HistChunks {
    closed: Vec<ClosedHistChunk>,
    open: HistogramChunk,
    open_min_t: i64,
    /// The newest histogram appended: an append repeating it exactly at its time is not a
    /// conflict.
    last: Arc<FloatHistogram>,
}

/// `MemSeries::last`'s value when the newest sample is a native histogram (its time is what
/// the order checks need; the histogram itself is in [`HistChunks::last`]). A NaN no
/// exposition parser produces: a float append at the same time with these exact bits is
/// refused as a duplicate instead of being taken as a repeat.
pub(crate) const HISTOGRAM_MARK: u64 = 0x7ff0_0000_0000_0f1e;

impl HistChunks {
    fn samples(&self, mint: i64, maxt: i64) -> Vec<HistogramSample> {
        let mut out = Vec::new();
        let open = (!self.open.is_empty()).then(|| (self.open_min_t, self.open.bytes()));
        let chunks = self
            .closed
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
            .map(|c| (c.encoding, &c.data[..]));
        let open_c = open
            .as_ref()
            .filter(|(lo, _)| *lo <= maxt)
            .map(|(_, b)| (self.open.encoding(), &b[..]));
        for (enc, b) in chunks.chain(open_c) {
            // The head wrote these bytes itself and appends refuse what a chunk cannot
            // hold, so they decode; a failure would be a bug, said loudly.
            match hchunk::decode(enc, b) {
                Ok(d) => out.extend(
                    d.into_iter()
                        .filter(|(t, _)| *t >= mint && *t <= maxt)
                        .map(|(t, h)| HistogramSample { t, h: Arc::new(h) }),
                ),
                Err(e) => {
                    tracing::error!(err = %e, "A native histogram chunk of the head does not decode (a bug): its samples are missing from this read")
                }
            }
        }
        out
    }

    /// Returns whether a chunk was closed.
    fn push(&mut self, t: i64, h: &Arc<FloatHistogram>) -> bool {
        if self.open.is_empty() {
            self.open_min_t = t;
        }
        let mut closed = false;
        if let Err(why) = self.open.append(t, h) {
            closed = true;
            let full = std::mem::take(&mut self.open);
            self.closed.push(ClosedHistChunk {
                min_t: self.open_min_t,
                max_t: full.max_time().unwrap_or(t),
                encoding: full.encoding(),
                data: full.bytes().into(),
            });
            self.open_min_t = t;
            let mut first = (**h).clone();
            if why == Full::CounterReset {
                first.hint = vigil_model::histogram::CounterResetHint::CounterReset;
            }
            // A fresh chunk takes any first sample.
            let _ = self.open.append(t, &first);
        }
        self.last = h.clone();
        closed
    }

    /// Rebuilt from `samples` (time-ordered); None when there are none.
    fn from_samples(samples: &[HistogramSample]) -> Option<HistChunks> {
        let last = samples.last()?.h.clone();
        let mut c = HistChunks {
            closed: Vec::new(),
            open: HistogramChunk::new(),
            open_min_t: 0,
            last,
        };
        for s in samples {
            c.push(s.t, &s.h);
        }
        Some(c)
    }

    fn count(&self) -> u64 {
        self.closed.len() as u64 + u64::from(!self.open.is_empty())
    }
}

impl MemSeries {
    fn new(labels: Labels) -> Self {
        MemSeries {
            labels,
            last_t: 0,
            last_v: 0.0,
            chunks: None,
            doomed: AtomicBool::new(false),
            has_last: false,
        }
    }

    /// A transaction appends to the series: the next truncation must not remove it (its
    /// commit would find it gone). Under the index's read lock; a truncation holds it for
    /// writing.
    fn spare(&self) {
        if self.doomed.load(Ordering::Relaxed) {
            self.doomed.store(false, Ordering::Relaxed);
        }
    }

    /// The newest sample appended (kept through deletions: the order check is against it).
    fn last(&self) -> Option<Sample> {
        self.has_last.then_some(Sample {
            t: self.last_t,
            v: self.last_v,
        })
    }

    fn set_last(&mut self, l: Option<Sample>) {
        self.has_last = l.is_some();
        if let Some(l) = l {
            (self.last_t, self.last_v) = (l.t, l.v);
        }
    }

    /// Agent mode: only the newest sample is kept (for the order check); the samples
    /// themselves live in the WAL until remote write has sent them.
    fn note(&mut self, t: i64, v: f64) {
        *self.doomed.get_mut() = false;
        self.set_last(Some(Sample { t, v }));
    }

    fn chunks_mut(&mut self, t: i64) -> &mut Chunks {
        self.chunks.get_or_insert_with(|| {
            Box::new(Chunks {
                closed: Vec::new(),
                open: XorChunk::new(),
                open_min_t: t,
                extra: None,
            })
        })
    }

    /// Store a native histogram sample (newer than every sample of the series); returns
    /// whether a chunk was closed.
    fn push_histogram(&mut self, t: i64, h: &Arc<FloatHistogram>) -> bool {
        *self.doomed.get_mut() = false;
        let c = self.chunks_mut(t);
        let closed = match c.hist_mut() {
            Some(hc) => hc.push(t, h),
            None => {
                c.set_hist(HistChunks::from_samples(&[HistogramSample {
                    t,
                    h: h.clone(),
                }]));
                false
            }
        };
        self.set_last(Some(Sample {
            t,
            v: f64::from_bits(HISTOGRAM_MARK),
        }));
        closed
    }

    /// The newest histogram, when it is the series' newest sample.
    fn last_histogram(&self) -> Option<&Arc<FloatHistogram>> {
        let l = self.last()?;
        if l.v.to_bits() != HISTOGRAM_MARK {
            return None;
        }
        Some(&self.chunks.as_ref()?.hist()?.last)
    }

    fn histograms(&self, mint: i64, maxt: i64) -> Vec<HistogramSample> {
        let Some(c) = self.chunks.as_ref() else {
            return Vec::new();
        };
        let mut out = c.hist().map(|h| h.samples(mint, maxt)).unwrap_or_default();
        if let Some(l) = c.late() {
            let late = l.histograms(mint, maxt);
            if !late.is_empty() {
                out = merge_late_histograms(out, late);
            }
        }
        out
    }

    /// Store a float sample (newer than every sample of the series); returns whether a chunk
    /// was closed.
    fn push(&mut self, t: i64, v: f64, range: ChunkRange) -> bool {
        *self.doomed.get_mut() = false;
        let c = self.chunks_mut(t);
        let mut closed = false;
        if c.open.len() >= SAMPLES_PER_CHUNK as usize
            || (!c.open.is_empty() && !range.same(c.open_min_t, t))
        {
            let full = std::mem::replace(&mut c.open, XorChunk::new());
            c.closed.push(ClosedChunk {
                min_t: c.open_min_t,
                max_t: full.max_time().unwrap_or(t),
                data: full.bytes().into(),
            });
            closed = true;
        }
        if c.open.is_empty() {
            c.open_min_t = t;
        }
        c.open.append(t, v);
        self.set_last(Some(Sample { t, v }));
        closed
    }

    /// The closed chunks still in memory, floats then histograms, as (histogram kind, index,
    /// time range, bytes).
    fn heap_chunks(&self) -> impl Iterator<Item = (bool, usize, i64, i64, &[u8])> {
        let c = self.chunks.as_deref();
        let floats = c
            .into_iter()
            .flat_map(|c| c.closed.iter().enumerate())
            .filter(|(_, x)| x.data.is_heap())
            .map(|(i, x)| (false, i, x.min_t, x.max_t, &x.data[..]));
        let hists = c
            .and_then(|c| c.hist())
            .into_iter()
            .flat_map(|h| h.closed.iter().enumerate())
            .filter(|(_, x)| x.data.is_heap())
            .map(|(i, x)| (true, i, x.min_t, x.max_t, &x.data[..]));
        floats.chain(hists)
    }

    /// Put `m` in place of closed chunk `i` (a histogram one if `hist`), if that chunk is still
    /// in memory with time range and bytes `was` (else it is another chunk now).
    fn set_mapped(&mut self, hist: bool, i: usize, was: (i64, i64, &[u8]), m: mapped::Mapped) {
        let Some(c) = self.chunks.as_deref_mut() else {
            return;
        };
        let slot = if hist {
            c.hist_mut()
                .and_then(|h| h.closed.get_mut(i))
                .map(|x| (x.min_t, x.max_t, &mut x.data))
        } else {
            c.closed.get_mut(i).map(|x| (x.min_t, x.max_t, &mut x.data))
        };
        if let Some((min_t, max_t, d)) = slot
            && d.is_heap()
            && (min_t, max_t, &d[..]) == was
        {
            *d = mapped::ChunkBytes::Mapped(m);
        }
    }

    /// Chunks held (closed ones and a non-empty open one).
    fn chunk_count(&self) -> u64 {
        self.chunks.as_ref().map_or(0, |c| {
            c.closed.len() as u64
                + u64::from(!c.open.is_empty())
                + c.hist().map_or(0, |h| h.count())
                + c.late().map_or(0, |l| l.chunk_count())
        })
    }

    /// Whether the chunks (in order, of either kind) hold a sample at `t`.
    fn holds_in_order(&self, t: i64) -> bool {
        let Some(c) = self.chunks.as_ref() else {
            return false;
        };
        c.closed
            .iter()
            .filter(|x| x.min_t <= t && t <= x.max_t)
            .any(|x| {
                XorIter::from_bytes(&x.data)
                    .into_iter()
                    .flatten()
                    .any(|s| s.t == t)
            })
            || (!c.open.is_empty() && c.open_min_t <= t && c.open.iter().any(|s| s.t == t))
            || c.hist().is_some_and(|h| !h.samples(t, t).is_empty())
    }

    /// [`MemSeries::insert_late`] for a native histogram.
    fn insert_late_histogram(&mut self, t: i64, h: &Arc<FloatHistogram>) -> bool {
        if self.holds_in_order(t) {
            return false;
        }
        *self.doomed.get_mut() = false;
        self.chunks_mut(t).late_or_new().insert_histogram(t, h)
    }

    /// Keep a float sample older than the series' newest; false (nothing kept) if the series
    /// holds a sample at `t` already: the first one stays, as in Prometheus.
    fn insert_late(&mut self, t: i64, v: f64) -> bool {
        if self.holds_in_order(t) {
            return false;
        }
        *self.doomed.get_mut() = false;
        self.chunks_mut(t).late_or_new().insert(t, v)
    }

    /// The time of the series' oldest sample of either kind, if it holds any.
    fn first_t(&self) -> Option<i64> {
        let c = self.chunks.as_ref()?;
        let f = c
            .closed
            .first()
            .map(|x| x.min_t)
            .or((!c.open.is_empty()).then_some(c.open_min_t));
        let h = c.hist().and_then(|h| {
            h.closed
                .first()
                .map(|x| x.min_t)
                .or((!h.open.is_empty()).then_some(h.open_min_t))
        });
        let l = c.late().and_then(|l| l.first_t());
        [f, h, l].into_iter().flatten().min()
    }

    /// Drop every sample before `before`: whole chunks are dropped as they are, and only a
    /// chunk straddling `before` is re-encoded (float chunks end at block ranges, so at a cut
    /// only native histogram chunks do). Returns whether the series is now empty.
    fn truncate_before(&mut self, before: i64) -> bool {
        self.truncate_noting(before).0
    }

    /// As [`MemSeries::truncate_before`], and whether a closed chunk was re-encoded (it is
    /// then in memory, to be written out).
    fn truncate_noting(&mut self, before: i64) -> (bool, bool) {
        let mut rebuilt = false;
        let Some(c) = self.chunks.as_mut() else {
            return (true, false);
        };
        c.truncate_late(before);
        if let Some(h) = c.hist_mut() {
            let gone = h.closed.iter().take_while(|c| c.max_t < before).count();
            h.closed.drain(..gone);
            // A chunk straddling the cut (or the open one): its samples from `before` on,
            // re-encoded.
            let straddles = h
                .closed
                .first()
                .map_or(!h.open.is_empty() && h.open_min_t < before, |c| {
                    c.min_t < before
                });
            if straddles {
                let keep = h.samples(before, i64::MAX);
                let last = h.last.clone();
                c.set_hist(HistChunks::from_samples(&keep).map(|mut fresh| {
                    fresh.last = last;
                    fresh
                }));
                rebuilt = c.hist().is_some_and(|h| !h.closed.is_empty());
            }
        }
        let gone = c.closed.iter().take_while(|c| c.max_t < before).count();
        c.closed.drain(..gone);
        if let Some(first) = c.closed.first_mut()
            && first.min_t < before
        {
            let mut fresh = XorChunk::new();
            let mut min_t = None;
            if let Some(it) = XorIter::from_bytes(&first.data) {
                for x in it.filter(|x| x.t >= before) {
                    min_t.get_or_insert(x.t);
                    fresh.append(x.t, x.v);
                }
            }
            match min_t {
                Some(m) => {
                    first.min_t = m;
                    first.data = fresh.bytes().into();
                    rebuilt = true;
                }
                None => {
                    c.closed.remove(0);
                }
            }
        }
        if c.closed.is_empty() && !c.open.is_empty() && c.open_min_t < before {
            let mut fresh = XorChunk::new();
            let mut min_t = 0;
            for x in c.open.iter().filter(|x| x.t >= before) {
                if fresh.is_empty() {
                    min_t = x.t;
                }
                fresh.append(x.t, x.v);
            }
            c.open = fresh;
            c.open_min_t = min_t;
        }
        let empty = c.closed.is_empty() && c.open.is_empty() && c.extra.is_none();
        if empty {
            self.chunks = None;
        }
        (empty, rebuilt && !empty)
    }

    /// Remove samples in `[lo, hi]` (re-encoding the chunks that held them).
    fn delete_range(&mut self, lo: i64, hi: i64, range: ChunkRange) {
        let keep: Vec<Sample> = self
            .samples(i64::MIN, i64::MAX)
            .into_iter()
            .filter(|s| s.t < lo || s.t > hi)
            .collect();
        let keep_h: Vec<HistogramSample> = self
            .histograms(i64::MIN, i64::MAX)
            .into_iter()
            .filter(|s| s.t < lo || s.t > hi)
            .collect();
        let last_h = self
            .chunks
            .as_ref()
            .and_then(|c| Some(c.hist()?.last.clone()));
        let mut fresh = MemSeries::new(std::mem::take(&mut self.labels));
        for x in keep {
            fresh.push(x.t, x.v, range);
        }
        if let Some(mut h) = HistChunks::from_samples(&keep_h) {
            if let Some(l) = last_h {
                h.last = l;
            }
            fresh.chunks_mut(keep_h[0].t).set_hist(Some(h));
        }
        // Keep the order check against the newest sample ever appended, deleted or not.
        let last = self.last();
        *self = fresh;
        self.set_last(last);
    }

    /// Whether the series has data in `[mint, maxt]`, decoding as little as it can: a closed
    /// chunk overlapping the range counts (a gap inside it may hold none), the open chunk (at
    /// most a chunk's samples) is read; native histograms and late samples, which few series
    /// have, are read whole. Never false where there is a sample.
    fn has_samples_in(&self, mint: i64, maxt: i64) -> bool {
        let Some(chunks) = self.chunks.as_ref() else {
            return false;
        };
        if chunks.extra.is_some() {
            return !self.samples(mint, maxt).is_empty() || !self.histograms(mint, maxt).is_empty();
        }
        if chunks
            .closed
            .iter()
            .any(|c| c.max_t >= mint && c.min_t <= maxt)
        {
            return true;
        }
        !chunks.open.is_empty()
            && chunks.open_min_t <= maxt
            && chunks.open.iter().any(|s| s.t >= mint && s.t <= maxt)
    }

    fn samples(&self, mint: i64, maxt: i64) -> Vec<Sample> {
        let Some(chunks) = self.chunks.as_ref() else {
            return Vec::new();
        };
        let closed = || {
            chunks
                .closed
                .iter()
                .filter(move |c| c.max_t >= mint && c.min_t <= maxt)
        };
        let open = !chunks.open.is_empty() && chunks.open_min_t <= maxt;
        // Sized once: growing the vector sample by sample was a tenth of a block cut.
        let mut out = Vec::with_capacity(
            closed().map(|c| XorIter::count_of(&c.data)).sum::<usize>()
                + if open { chunks.open.len() } else { 0 },
        );
        for c in closed() {
            if let Some(it) = XorIter::from_bytes(&c.data) {
                if c.min_t >= mint && c.max_t <= maxt {
                    out.extend(it);
                } else {
                    out.extend(it.filter(|s| s.t >= mint && s.t <= maxt));
                }
            }
        }
        if open {
            out.extend(chunks.open.iter().filter(|s| s.t >= mint && s.t <= maxt));
        }
        if let Some(l) = chunks.late() {
            let late = l.samples(mint, maxt);
            if !late.is_empty() {
                // No time is in both (see `insert_late`).
                out.extend(late);
                out.sort_by_key(|s| s.t);
            }
        }
        out
    }
}

/// A series' in-order histograms and its late ones (no time in both), in time order. A
/// counter reset hint says how a sample compares with the one before it in its chunk: an
/// in-order sample that now follows a late one has its hint made unknown (a gauge stays a
/// gauge), so a reader compares the two itself, as Prometheus's merge of chunks does. Late
/// samples' own hints are unknown already.
fn merge_late_histograms(
    in_order: Vec<HistogramSample>,
    late: Vec<HistogramSample>,
) -> Vec<HistogramSample> {
    use vigil_model::histogram::CounterResetHint as Hint;
    let mut out = Vec::with_capacity(in_order.len() + late.len());
    let mut late = late.into_iter().peekable();
    let mut after_late = false;
    for s in in_order {
        while let Some(l) = late.next_if(|l| l.t < s.t) {
            out.push(l);
            after_late = true;
        }
        if after_late && matches!(s.h.hint, Hint::CounterReset | Hint::NotCounterReset) {
            out.push(HistogramSample {
                t: s.t,
                h: Arc::new(FloatHistogram {
                    hint: Hint::Unknown,
                    ..(*s.h).clone()
                }),
            });
        } else {
            out.push(s);
        }
        after_late = false;
    }
    out.extend(late);
    out
}

/// What [`apply_floats`] applied: how many samples, how many of them late, and their time
/// range.
#[derive(Clone, Copy)]
struct Applied {
    n: u64,
    late: u64,
    lo: i64,
    hi: i64,
}

impl Applied {
    const NONE: Applied = Applied {
        n: 0,
        late: 0,
        lo: i64::MAX,
        hi: i64::MIN,
    };

    /// A sample at `t` was applied (`late`: as a late one).
    fn took(&mut self, t: i64, late: bool) {
        self.n += 1;
        self.late += u64::from(late);
        self.lo = self.lo.min(t);
        self.hi = self.hi.max(t);
    }

    fn and(self, o: Applied) -> Applied {
        Applied {
            n: self.n + o.n,
            late: self.late + o.late,
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }
}

/// Apply float samples to their series (commit and replay alike). One not newer than its
/// series' newest is late: admitted by the out-of-order window, or overtaken by a concurrent
/// commit on the same series. It is in the WAL, so it is kept (replay keeps it too), unless
/// the series holds a sample at its time already (a repeat, as replay meets from a
/// checkpoint) or this is the agent's head, which keeps no samples.
fn apply_floats(
    idx: &mut Index,
    wal_only: bool,
    fs: impl IntoIterator<Item = (SeriesRef, i64, f64)>,
) -> Applied {
    let mut a = Applied::NONE;
    let range = idx.chunk_range;
    for (r, t, v) in fs {
        let Some(s) = idx.series.get_mut(&r) else {
            continue;
        };
        if s.last().is_none_or(|l| l.t < t) {
            if s.last().is_none() {
                idx.empty -= 1;
            }
            if wal_only {
                s.note(t, v);
            } else if s.push(t, v, range) {
                idx.closed_chunk(r);
            }
            a.took(t, false);
        } else if !wal_only && s.insert_late(t, v) {
            a.took(t, true);
        }
    }
    idx.map_if_due();
    a
}

/// [`apply_floats`] for native histograms.
fn apply_histograms(
    idx: &mut Index,
    wal_only: bool,
    hs: impl IntoIterator<Item = (SeriesRef, i64, Arc<FloatHistogram>)>,
) -> Applied {
    let mut a = Applied::NONE;
    for (r, t, h) in hs {
        let Some(s) = idx.series.get_mut(&r) else {
            continue;
        };
        if s.last().is_none_or(|l| l.t < t) {
            if s.last().is_none() {
                idx.empty -= 1;
            }
            if wal_only {
                s.note(t, f64::from_bits(HISTOGRAM_MARK));
            } else if s.push_histogram(t, &h) {
                idx.closed_chunk(r);
            }
            a.took(t, false);
        } else if !wal_only && s.insert_late_histogram(t, &h) {
            a.took(t, true);
        }
    }
    idx.map_if_due();
    a
}

/// One batch of a commit: floats, then histograms (a batch holds one kind per series).
fn apply_batch(
    idx: &mut Index,
    wal_only: bool,
    fs: Vec<(SeriesRef, i64, f64)>,
    hs: Vec<(SeriesRef, i64, Arc<FloatHistogram>)>,
) -> Applied {
    apply_floats(idx, wal_only, fs).and(apply_histograms(idx, wal_only, hs))
}

/// foldhash maps: these are on the append path of every sample.
type FastMap<K, V> = foldhash::HashMap<K, V>;

/// Posting lists and value maps removed from the index, freed after its lock is let go (see
/// `Index::unpost`).
#[derive(Default)]
struct Trash {
    lists: Vec<(String, Vec<SeriesRef>)>,
    maps: Vec<(String, PostingValues)>,
}

/// The label pairs of removed series, each with the refs (sorted) whose posting it was:
/// borrowed from the labels, where copying two strings per pair cost most of a removal.
fn pairs_of(gone: &[(SeriesRef, MemSeries)]) -> FastMap<(&str, &str), Vec<SeriesRef>> {
    let mut pairs: FastMap<(&str, &str), Vec<SeriesRef>> = FastMap::default();
    for (r, s) in gone {
        for l in s.labels.iter() {
            pairs.entry((l.name, l.value)).or_default().push(*r);
        }
    }
    for refs in pairs.values_mut() {
        refs.sort_unstable();
    }
    pairs
}

/// Maps keyed by series ref. Refs are handed out in sequence, and scrapes, commits and WAL
/// replay visit series in about the order they were created; this hash keeps a ref's low bits
/// as the bucket index so those visits walk the table in memory order instead of missing the
/// cache on every series (the top 7 bits, hashbrown's tag, are mixed).
type RefMap<V> = std::collections::HashMap<SeriesRef, V, std::hash::BuildHasherDefault<RefHash>>;

#[derive(Default)]
struct RefHash(u64);

impl std::hash::Hasher for RefHash {
    fn finish(&self) -> u64 {
        let r = self.0;
        (r & ((1 << 57) - 1)) | ((r.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57) << 57)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[derive(Default)]
struct Index {
    series: RefMap<MemSeries>,
    by_labels: LabelIndex,
    postings: Postings,
    /// Series without a sample yet (`last` is `None`): the head series limit counts only the
    /// others, so empty series left by a refused scrape do not use it up.
    empty: usize,
    /// Series in the head whose record is not in the WAL yet. Whichever commit comes next logs
    /// them ahead of its samples, so a sample is never logged before its series, even when
    /// one appender created the series and another appended to it first.
    unlogged: Vec<(SeriesRef, Labels)>,
    /// Agent mode: nothing is queried, so no postings are kept (selections, which only tools
    /// and tests make there, scan the series instead).
    no_postings: bool,
    chunk_range: ChunkRange,
    /// Each series' metadata as last logged (`metadata-wal-records`; empty without it), so a
    /// commit logs only changes and a checkpoint keeps the latest. Removed with its series.
    metadata: RefMap<Arc<vigil_storage::Metadata>>,
    /// Where full chunks are written out (see [`mapped`]); None for a head in memory only.
    mapped: Option<Arc<mapped::ChunkFiles>>,
    /// Writes happen as chunks close (replay, before the index is shared).
    write_inline: bool,
    /// Series that closed a chunk since the last write-out (a series may be listed twice),
    /// written out together once [`mapped::BATCH_BYTES`] are due.
    to_map: Vec<SeriesRef>,
    to_map_chunks: usize,
}

impl Index {
    /// Series `r` closed a chunk in memory.
    fn closed_chunk(&mut self, r: SeriesRef) {
        if self.mapped.is_some() {
            self.to_map.push(r);
            self.to_map_chunks += 1;
        }
    }

    /// Whether enough closed chunks are listed for a write-out (about 200 bytes a chunk).
    fn map_due(&self) -> bool {
        self.mapped.is_some() && self.to_map_chunks * 200 >= mapped::BATCH_BYTES
    }

    /// Write out the chunks listed once enough are due, here and now if this index is not
    /// shared yet (replay); a running head's commits leave it to [`Head::write_chunks`],
    /// outside the lock.
    fn map_if_due(&mut self) {
        if self.write_inline && self.map_due() {
            let w = self.take_listed();
            self.write_now(w);
        }
    }

    /// The in-memory closed chunks of the series listed since the last time, copied out.
    fn take_listed(&mut self) -> ToWrite {
        let mut refs = std::mem::take(&mut self.to_map);
        self.to_map_chunks = 0;
        refs.sort_unstable();
        refs.dedup();
        self.copy_out(refs.into_iter())
    }

    /// Write out every closed chunk held in memory (a snapshot's, at open), in batches.
    fn map_all(&mut self) {
        if self.mapped.is_none() {
            return;
        }
        let refs: Vec<SeriesRef> = self.series.keys().copied().collect();
        for batch in refs.chunks(4096) {
            let w = self.copy_out(batch.iter().copied());
            self.write_now(w);
        }
        self.to_map.clear();
        self.to_map_chunks = 0;
    }

    /// Write `w` and put the places in (an index no one else reads yet).
    fn write_now(&mut self, w: ToWrite) {
        if let Some(files) = self.mapped.clone()
            && let Some(placed) = files.store(&w.buf, &w.lens)
        {
            self.install(w, placed);
        }
    }

    /// The in-memory closed chunks of `refs` (each listed once): bytes back to back, and
    /// where each was.
    fn copy_out(&self, refs: impl Iterator<Item = SeriesRef>) -> ToWrite {
        let mut w = ToWrite::default();
        for r in refs {
            let Some(s) = self.series.get(&r) else {
                continue;
            };
            for (hist, i, min_t, max_t, bytes) in s.heap_chunks() {
                w.buf.extend_from_slice(bytes);
                w.lens.push(bytes.len() as u32);
                w.at.push((r, hist, i, min_t, max_t));
            }
        }
        w
    }

    /// Put each written chunk's place in for the chunk it was copied from, where that chunk is
    /// still there, in memory, with the same range and the very bytes written (a truncation
    /// or deletion in between may have dropped or rebuilt it; it then stays as it is).
    fn install(&mut self, w: ToWrite, placed: Vec<mapped::Mapped>) {
        let mut from = 0usize;
        for ((r, hist, i, min_t, max_t), (m, len)) in
            w.at.into_iter().zip(placed.into_iter().zip(w.lens))
        {
            let bytes = &w.buf[from..from + len as usize];
            from += len as usize;
            if let Some(s) = self.series.get_mut(&r) {
                s.set_mapped(hist, i, (min_t, max_t, bytes), m);
            }
        }
    }
}

/// Closed chunks copied out of the head to be written to its chunk files: their bytes back
/// to back, each one's length, and where each was (series, histogram kind, index, time range).
#[derive(Default)]
struct ToWrite {
    buf: Vec<u8>,
    lens: Vec<u32>,
    at: Vec<(SeriesRef, bool, usize, i64, i64)>,
}

/// Head chunks end at multiples of this range (the block range), as Prometheus's do: a block
/// cut then takes whole chunks and its truncation drops them, with no chunk re-encoded (at
/// ten million series, re-encoding the chunk across the cut was a tenth of every cut).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkRange(i64);

impl ChunkRange {
    /// Chunks end at multiples of `ms`; with 0 or less, only when full (and where timestamps
    /// cross from negative to zero).
    pub(crate) fn new(ms: i64) -> ChunkRange {
        ChunkRange(if ms > 0 { ms } else { i64::MAX })
    }

    fn same(self, a: i64, b: i64) -> bool {
        a.div_euclid(self.0) == b.div_euclid(self.0)
    }
}

impl Default for ChunkRange {
    fn default() -> Self {
        ChunkRange::new(0)
    }
}

/// Label set -> ref. It holds refs only and compares label sets through the series map, which
/// holds them anyway: 8 bytes a series instead of a second label-set handle and its ref (16
/// more, a fifth of an agent's series). Every ref in it is in the series map.
#[derive(Default)]
struct LabelIndex(hashbrown::HashTable<SeriesRef>);

impl LabelIndex {
    fn get(&self, labels: &Labels, series: &RefMap<MemSeries>) -> Option<SeriesRef> {
        self.0
            .find(labels.cached_hash(), |r| {
                series.get(r).is_some_and(|s| s.labels == *labels)
            })
            .copied()
    }

    /// Map the labels of `r`, which the series map holds, to `r`.
    fn insert(&mut self, r: SeriesRef, series: &RefMap<MemSeries>) {
        let Some(s) = series.get(&r) else { return };
        self.0.insert_unique(s.labels.cached_hash(), r, |x| {
            series.get(x).map_or(0, |s| s.labels.cached_hash())
        });
    }

    /// Unmap `labels` if they name `r` (a replay may have left two refs with one label set).
    fn remove(&mut self, labels: &Labels, r: SeriesRef) {
        if let Ok(e) = self.0.find_entry(labels.cached_hash(), |x| *x == r) {
            e.remove();
        }
    }

    fn reserve(&mut self, n: usize, series: &RefMap<MemSeries>) {
        self.0
            .reserve(n, |x| series.get(x).map_or(0, |s| s.labels.cached_hash()));
    }
}

/// hashbrown's `entry_ref` finds or adds a key from a borrowed `&str` with one hash, where
/// std's map needs a lookup and then an owned key.
type Postings = hashbrown::HashMap<String, PostingValues, foldhash::fast::RandomState>;
type PostingValues = hashbrown::HashMap<String, Vec<SeriesRef>, foldhash::fast::RandomState>;

/// Add series `r` to the posting list of each of its label pairs.
fn add_postings(postings: &mut Postings, r: SeriesRef, labels: &Labels) {
    for l in labels.iter() {
        // One hash per name and value; keys are allocated only when new.
        let list = postings
            .entry_ref(l.name)
            .or_default()
            .entry_ref(l.value)
            .or_default();
        // Refs are handed out in increasing order, so pushing keeps lists sorted; replay
        // of an older WAL may not, so insert in place when needed.
        match list.last() {
            Some(&last) if last > r => {
                if let Err(i) = list.binary_search(&r) {
                    list.insert(i, r);
                }
            }
            _ => list.push(r),
        }
    }
}

impl Index {
    fn insert(&mut self, r: SeriesRef, labels: Labels) {
        self.insert_replayed(r, labels);
        self.by_labels.insert(r, &self.series);
    }

    /// The series with exactly these labels.
    fn find(&self, labels: &Labels) -> Option<SeriesRef> {
        self.by_labels.get(labels, &self.series)
    }

    /// As [`Index::insert`] without the label-set map, which WAL replay builds on its reading
    /// thread.
    fn insert_replayed(&mut self, r: SeriesRef, labels: Labels) {
        if !self.no_postings {
            add_postings(&mut self.postings, r, &labels);
        }
        self.series.insert(r, MemSeries::new(labels));
        self.empty += 1;
    }

    /// As [`Index::insert`] without the postings, which the caller adds itself.
    fn insert_unposted(&mut self, r: SeriesRef, labels: Labels) {
        self.series.insert(r, MemSeries::new(labels));
        self.empty += 1;
        self.by_labels.insert(r, &self.series);
    }

    /// Series holding at least one sample.
    fn live(&self) -> usize {
        self.series.len() - self.empty
    }

    /// Remove series and their postings in one hold (see [`Head::remove_series`] for the
    /// one that lets commits in).
    #[cfg(test)]
    fn remove_many(&mut self, dead: &[SeriesRef]) {
        let mut gone = Vec::new();
        let _ = self.unlink(dead, &mut gone, |_| true);
        if !self.no_postings {
            for ((name, value), refs) in pairs_of(&gone) {
                self.unpost(name, value, &refs, &mut Trash::default());
            }
        }
    }

    /// Take those of series `refs` that are `still` to go out of the series and label-set
    /// maps, into `gone` (their labels are for [`Index::unpost`]; the caller frees them
    /// without the lock, see [`Index::unpost`] on glibc's frees). Until then
    /// their posting lists still name them, which selections skip (a ref not in the series
    /// map).
    /// Returns the lowest of `refs` whose series stays.
    fn unlink(
        &mut self,
        refs: &[SeriesRef],
        gone: &mut Vec<(SeriesRef, MemSeries)>,
        mut still: impl FnMut(&mut MemSeries) -> bool,
    ) -> Option<SeriesRef> {
        let mut stays = None;
        for &r in refs {
            let Some(s) = self.series.get_mut(&r) else {
                continue;
            };
            if !still(s) {
                stays = Some(stays.map_or(r, |x: SeriesRef| x.min(r)));
                continue;
            }
            let Some(s) = self.series.remove(&r) else {
                continue;
            };
            if s.last().is_none() {
                self.empty -= 1;
            }
            self.by_labels.remove(&s.labels, r);
            self.metadata.remove(&r);
            gone.push((r, s));
        }
        // In the same hold: the next commit logs what is in `unlogged`, and a series record
        // logged after its series went would bring it back on replay.
        if !self.unlogged.is_empty() {
            let series = &self.series;
            self.unlogged.retain(|(r, _)| series.contains_key(r));
        }
        stays
    }

    /// Remove `refs` (sorted) from the posting list of `name`=`value`, and the value and the
    /// name when nothing is left: one merge pass over the list. Returns the list's length
    /// before, the work done. Lists and value maps left empty go to `trash`, for the caller
    /// to free without the lock: a free can set off glibc's consolidation of every small
    /// chunk freed before it, which after a million series went took 0.7 s (`cut_stall`).
    fn unpost(&mut self, name: &str, value: &str, refs: &[SeriesRef], trash: &mut Trash) -> usize {
        let Some(vals) = self.postings.get_mut(name) else {
            return 0;
        };
        let mut len = 0;
        if let Some(list) = vals.get_mut(value) {
            len = list.len();
            // Both sorted: walk them together.
            let mut i = 0;
            list.retain(|x| {
                while i < refs.len() && refs[i] < *x {
                    i += 1;
                }
                !(i < refs.len() && refs[i] == *x)
            });
            if list.is_empty()
                && let Some(entry) = vals.remove_entry(value)
            {
                trash.lists.push(entry);
            }
        }
        if vals.is_empty()
            && let Some(entry) = self.postings.remove_entry(name)
        {
            trash.maps.push(entry);
        }
        len
    }

    /// Refs matching all matchers, sorted.
    fn select(&self, ms: &[Matcher]) -> Vec<SeriesRef> {
        if self.no_postings {
            let mut all: Vec<SeriesRef> = self
                .series
                .iter()
                .filter(|(_, s)| ms.iter().all(|m| m.matches(s.labels.get_or_empty(&m.name))))
                .map(|(r, _)| *r)
                .collect();
            all.sort_unstable();
            return all;
        }
        let mut sets: Vec<Vec<SeriesRef>> = Vec::new();
        for m in ms.iter().filter(|m| !m.matches_empty()) {
            let Some(values) = self.postings.get(&m.name) else {
                return Vec::new();
            };
            let mut refs: Vec<SeriesRef> = match m.op {
                MatchOp::Equal => values.get(&m.value).cloned().unwrap_or_default(),
                _ => values
                    .iter()
                    .filter(|(v, _)| m.matches(v))
                    .flat_map(|(_, l)| l.iter().copied())
                    .collect(),
            };
            refs.sort_unstable();
            refs.dedup();
            sets.push(refs);
        }
        let mut refs: Vec<SeriesRef> = match sets.is_empty() {
            true => {
                let mut all: Vec<SeriesRef> = self.series.keys().copied().collect();
                all.sort_unstable();
                all
            }
            false => {
                sets.sort_by_key(Vec::len);
                let mut acc = sets.swap_remove(0);
                for s in &sets {
                    acc.retain(|r| s.binary_search(r).is_ok());
                }
                acc
            }
        };
        // Matchers that also match the empty value are checked on the series' labels. Refs
        // may name series a removal in progress has taken (their postings go a moment later):
        // callers look each ref up and skip those.
        let rest: Vec<&Matcher> = ms.iter().filter(|m| m.matches_empty()).collect();
        if !rest.is_empty() {
            refs.retain(|r| {
                self.series.get(r).is_some_and(|s| {
                    rest.iter()
                        .all(|m| m.matches(s.labels.get_or_empty(&m.name)))
                })
            });
        }
        refs
    }
}

/// Counters the server exports as `prometheus_tsdb_*`.
#[derive(Default)]
pub struct HeadStats {
    pub samples_appended: AtomicU64,
    pub out_of_order: AtomicU64,
    /// Samples refused as older than the out-of-order window allows
    /// (`prometheus_tsdb_too_old_samples_total`).
    pub too_old: AtomicU64,
    /// Samples before the head's range (already in blocks): refused when appended, or dropped
    /// at commit when a cut overtook their transaction, as Prometheus drops and counts them
    /// (`prometheus_tsdb_out_of_bound_samples_total`); with a window, samples within it go to
    /// `head::old` instead.
    pub out_of_bounds: AtomicU64,
    /// Samples (of either kind) stored although older than their series' newest: taken by
    /// the out-of-order window, or overtaken by a concurrent commit on the same series
    /// (`prometheus_tsdb_head_out_of_order_samples_appended_total`).
    pub late_appended: AtomicU64,
    pub wal_corruptions: AtomicU64,
    /// Head snapshots found usable at open that did not load (`memory-snapshot-on-shutdown`;
    /// the WAL was replayed instead): `prometheus_tsdb_snapshot_replay_error_total`.
    pub snapshot_replay_errors: AtomicU64,
    /// Whether this head was loaded from a head snapshot.
    pub snapshot_loaded: AtomicBool,
    pub series_created: AtomicU64,
    /// Commits refused because the WAL could not be written (`prometheus_tsdb_wal_writes_failed_total`).
    pub wal_writes_failed: AtomicU64,
    /// Whether the last WAL write failed: appends are refused (nothing unlogged is
    /// acknowledged) until one succeeds again.
    pub appends_failing: std::sync::atomic::AtomicBool,
    /// New series refused at the head series limit.
    pub series_refused: AtomicU64,
    /// The head series limit (0: none).
    pub max_series: AtomicU64,
}

/// See the module docs.
pub struct Head {
    index: RwLock<Index>,
    wal: Mutex<Option<Wal>>,
    /// Held by a checkpoint while it streams the head, and by deletions: a tombstone logged
    /// after the checkpoint's cut must not meet, on replay, samples the checkpoint read after
    /// that tombstone was applied (it would delete them again).
    checkpointing: Mutex<()>,
    next_ref: AtomicU64,
    /// Every ref below this has no series left (a truncation's walk found them gone, and a
    /// running head never hands a ref out twice; an import at open, which claims refs before
    /// it inserts their series, runs before any truncation): walks by ref start here, so refs
    /// of series long gone (churn adds up over the life of a data directory) cost them
    /// nothing.
    live_from: AtomicU64,
    /// Transactions (appenders) are numbered as they begin; the numbers of those open.
    txn_seq: AtomicU64,
    open_txns: Mutex<std::collections::BTreeSet<u64>>,
    /// The number the next transaction got when the last truncation walk ended.
    walked_at: AtomicU64,
    pub stats: HeadStats,
    dir: Option<PathBuf>,
    /// Oldest and newest sample timestamps in the head (MAX/MIN when empty).
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// The head's start: samples before it are out of bounds (their range is already in
    /// blocks), except floats within the out-of-order window, which go to `head::old`.
    min_valid: AtomicI64,
    /// `storage.tsdb.out_of_order_time_window` in milliseconds (0: none): a sample older than
    /// its series' newest is taken if it is no older than the head's newest time less this
    /// (into the head within its range, into `head::old` before it).
    late_window: AtomicI64,
    /// The oldest sample committed since a truncation began its walk (MAX then): the walk
    /// lets commits in between its holds, and the head's new minimum must count what they
    /// brought to series it had already passed.
    committed_low: AtomicI64,
    /// Agent mode (`--agent`): samples are logged to the WAL only, never kept in memory.
    wal_only: bool,
    /// What WAL and checkpoint records are encoded with.
    compression: wal::Compression,
    /// How checkpoint segments are written (their version).
    wal_opts: wal::WriteOptions,
    /// The exemplar ring (`--enable-feature=exemplar-storage`); keeps none when its size is 0.
    pub exemplars: ExemplarStore,
    /// The agent's newest exemplar logged per series: a client repeats its exemplar on every
    /// scrape until it records a new one, and only new ones are logged.
    agent_exemplars: Mutex<RefMap<Exemplar>>,
    /// Whether native histograms were ever appended or replayed: checkpoints then may hold
    /// them, and their segments say so.
    has_histograms: std::sync::atomic::AtomicBool,
    /// The newest sample or histogram time the latest checkpoint holds: `i64::MIN` if it holds
    /// none (or there is none), `i64::MAX` if unknown (one found at open).
    checkpoint_newest: AtomicI64,
    /// Late samples older than the head's start (see [`old`]).
    old: RwLock<old::OldStore>,
    /// Selections being read, decoded as they go (see [`lazy_select`]).
    lazy_reads: lazy_select::LazyReads,
}

/// Where a head's state is read from at open, and how.
struct ReplayPlan<'a> {
    wal_dir: &'a Path,
    checkpoint: Option<&'a Path>,
    checkpoint_seg: Option<u64>,
    min_valid: i64,
    writable: bool,
    wal_only: bool,
    max_exemplars: usize,
    chunk_range: ChunkRange,
    /// `metadata-wal-records`: series' metadata records are applied (else skipped, so a run
    /// without the feature holds and sends none from an earlier run's segments).
    metadata: bool,
    /// Where full chunks go as replay closes them (so a start does not hold the whole head
    /// in memory first); None: they stay in memory.
    mapped: Option<&'a Arc<mapped::ChunkFiles>>,
}

/// A head's state as replay left it.
struct Replayed {
    index: Index,
    max_ref: u64,
    histograms: bool,
    lo: i64,
    hi: i64,
    exemplars: ExemplarStore,
    stats: HeadStats,
    /// Old samples replayed (see [`old`]).
    old: Option<Arc<Head>>,
}

impl ReplayPlan<'_> {
    /// Replay the latest checkpoint and the segments after it, or (`snapshot`) the snapshot
    /// and the segments after the one it covers. None if the snapshot did not read back
    /// whole (the caller replays without it).
    fn replay(&self, snapshot: Option<&snapshot::Found>) -> std::io::Result<Option<Replayed>> {
        let ReplayPlan {
            wal_dir,
            checkpoint,
            checkpoint_seg,
            min_valid,
            writable,
            wal_only,
            max_exemplars,
            chunk_range,
            metadata,
            mapped,
        } = *self;
        // Series of one family share one handle, as they do when scraped.
        let mut distinct_meta: std::collections::HashSet<Arc<vigil_storage::Metadata>> =
            std::collections::HashSet::new();
        let exemplars = ExemplarStore::new(max_exemplars);
        let snapshot_bad = std::cell::Cell::new(false);
        // Chunks records are read from a snapshot only.
        let in_snapshot = std::cell::Cell::new(false);
        let mut index = Index {
            no_postings: wal_only,
            chunk_range,
            mapped: mapped.cloned(),
            write_inline: true,
            ..Index::default()
        };
        // Old samples (see [`old`]): a store of their own, whatever the head's start.
        let mut old_index = Index::default();
        let mut old_next = 1u64;
        let (mut old_lo, mut old_hi) = (i64::MAX, i64::MIN);
        let mut old_histograms = false;
        // Refs below the snapshot's next one may be named by the segments after it.
        let mut max_ref = snapshot.map_or(0, |f| f.meta.next_ref.saturating_sub(1));
        let mut samples = 0u64;
        let mut histograms = false;
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        // The label-set map is built on the WAL's reading thread (hashing whole label sets
        // was a large part of the applying thread's work): each label set to its newest ref.
        let mut by_labels: FastMap<Labels, SeriesRef> = FastMap::default();
        let mut seen: RefMap<()> = RefMap::default();
        let mut pre = |rec: &Record| {
            if let Record::Series(s) = rec {
                for (r, labels) in s {
                    if seen.insert(*r, ()).is_none() {
                        // The newest ref of a label set is the one in use: a segment kept
                        // past a checkpoint may still name a removed series' older ref after
                        // the checkpoint named the new one.
                        let e = by_labels.entry(labels.clone()).or_insert(*r);
                        *e = (*e).max(*r);
                    }
                }
            }
        };
        let mut apply = |rec: Record| match rec {
            // Deletions replay where they were logged: they remove what came before them.
            Record::Tombstones(t) => {
                for (r, lo, hi) in t {
                    if let Some(ms) = index.series.get_mut(&r) {
                        ms.delete_range(lo, hi, chunk_range);
                        // The series' old samples logged before the deletion go too.
                        if let Some(o) = old_index.find(&ms.labels)
                            && let Some(os) = old_index.series.get_mut(&o)
                        {
                            os.delete_range(lo, hi, ChunkRange::default());
                        }
                    }
                }
            }
            Record::OldSamples(o) => {
                let (lo, hi, _) = old::apply(&mut old_index, &mut old_next, o, Vec::new());
                old_lo = old_lo.min(lo);
                old_hi = old_hi.max(hi);
            }
            Record::OldHistograms(h) => {
                old_histograms |= !h.is_empty();
                let (lo, hi, _) = old::apply(&mut old_index, &mut old_next, Vec::new(), h);
                old_lo = old_lo.min(lo);
                old_hi = old_hi.max(hi);
            }
            Record::Series(s) => {
                for (r, labels) in s {
                    max_ref = max_ref.max(r);
                    if !index.series.contains_key(&r) {
                        index.insert_replayed(r, labels);
                    }
                }
            }
            // The newest of a series wins; one of a series not (or no longer) in the head is
            // of no use.
            Record::Metadata(m) => {
                for (r, meta) in m {
                    if metadata && index.series.contains_key(&r) {
                        let meta = match distinct_meta.get(&meta) {
                            Some(m) => m.clone(),
                            None => {
                                distinct_meta.insert(meta.clone());
                                meta
                            }
                        };
                        index.metadata.insert(r, meta);
                    }
                }
            }
            // Replayed into the ring as they were logged; the agent keeps none.
            Record::Exemplars(e) => {
                for (r, ex) in e {
                    if let Some(ms) = index.series.get(&r) {
                        let _ = exemplars.add(&ms.labels, ex);
                    }
                }
            }
            Record::Samples(s) => {
                let a = apply_floats(
                    &mut index,
                    wal_only,
                    s.into_iter().filter(|x| x.1 >= min_valid),
                );
                samples += a.n;
                lo = lo.min(a.lo);
                hi = hi.max(a.hi);
            }
            Record::Histograms(s) => {
                let a = apply_histograms(
                    &mut index,
                    wal_only,
                    s.into_iter().filter(|x| x.1 >= min_valid),
                );
                samples += a.n;
                histograms |= a.n > 0;
                lo = lo.min(a.lo);
                hi = hi.max(a.hi);
            }
            // Only in a snapshot: whole series' chunks, installed as they were.
            Record::HeadChunks(_) if !in_snapshot.get() => {
                tracing::error!(
                    "A head snapshot's chunks record outside a snapshot (in the WAL or a checkpoint): ignored"
                );
            }
            Record::HeadChunks(p) => match snapshot::install(&mut index, &p, min_valid) {
                Some(i) => {
                    samples += i.applied.n;
                    histograms |= i.histograms;
                    lo = lo.min(i.applied.lo);
                    hi = hi.max(i.applied.hi);
                }
                None => snapshot_bad.set(true),
            },
        };
        let stats = HeadStats::default();
        let mut rep = wal::ReplayReport::default();
        let mut first = checkpoint_seg.map(|n| n + 1).unwrap_or(0);
        if let Some(f) = snapshot {
            in_snapshot.set(true);
            let r = wal::replay_from_with(&f.dir, 0, false, &mut pre, &mut apply)?;
            in_snapshot.set(false);
            // Every record it was written with, each read back: else the WAL alone.
            if r.corrupt_segments > 0 || snapshot_bad.get() || r.records != f.meta.records {
                return Ok(None);
            }
            first = f.meta.wal_last_segment + 1;
        } else if wal_dir.is_dir()
            && let Some(cp) = &checkpoint
        {
            let r = wal::replay_from_with(cp, 0, false, &mut pre, &mut apply)?;
            stats
                .wal_corruptions
                .fetch_add(r.corrupt_segments, Ordering::Relaxed);
        }
        if wal_dir.is_dir() {
            rep = wal::replay_from_with(wal_dir, first, writable, &mut pre, &mut apply)?;
        }
        // The head's oldest time as replay counts it (deleted samples included).
        if let Some(t) = snapshot
            .map(|f| f.meta.min_time)
            .filter(|&t| t >= min_valid)
        {
            lo = lo.min(t);
        }
        index.by_labels.reserve(by_labels.len(), &index.series);
        for r in by_labels.into_values() {
            index.by_labels.insert(r, &index.series);
        }
        stats
            .wal_corruptions
            .fetch_add(rep.corrupt_segments, Ordering::Relaxed);
        tracing::info!(
            series = index.series.len(),
            samples,
            records = rep.records,
            "WAL replay completed"
        );
        let old = (!old_index.series.is_empty())
            .then(|| old::from_index(old_index, old_next, old_lo, old_hi, old_histograms));
        Ok(Some(Replayed {
            index,
            max_ref,
            histograms,
            lo,
            hi,
            exemplars,
            stats,
            old,
        }))
    }
}

impl Head {
    /// A head without a WAL (tests, backfill).
    pub fn in_memory() -> Self {
        Head {
            index: RwLock::new(Index::default()),
            wal: Mutex::new(None),
            checkpointing: Mutex::new(()),
            next_ref: AtomicU64::new(1),
            live_from: AtomicU64::new(1),
            txn_seq: AtomicU64::new(0),
            open_txns: Mutex::new(Default::default()),
            walked_at: AtomicU64::new(0),
            stats: HeadStats::default(),
            dir: None,
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid: AtomicI64::new(i64::MIN),
            late_window: AtomicI64::new(0),
            committed_low: AtomicI64::new(i64::MAX),
            wal_only: false,
            compression: wal::Compression::None,
            wal_opts: wal::WriteOptions::default(),
            exemplars: ExemplarStore::new(0),
            agent_exemplars: Mutex::new(RefMap::default()),
            has_histograms: std::sync::atomic::AtomicBool::new(false),
            checkpoint_newest: AtomicI64::new(i64::MIN),
            old: RwLock::new(old::OldStore::default()),
            lazy_reads: Default::default(),
        }
    }

    /// Open the head under `dir`, replaying the latest checkpoint and then `dir/wal`.
    /// Samples before `min_valid` (already in blocks), or before the checkpoint's cut, are
    /// skipped.
    pub fn open(dir: &Path, min_valid: i64) -> std::io::Result<Self> {
        Self::open_mode(
            dir,
            min_valid,
            true,
            wal::WriteOptions::default(),
            0,
            0,
            false,
        )
    }

    /// As [`Head::open`]; with `writable` false nothing in `dir` is created or changed (no WAL
    /// repair, no new segment) and the head takes no appends: for tools reading a directory a
    /// server may be writing. The exemplar ring holds up to `max_exemplars` (0: none kept).
    /// Chunks end at multiples of `block_range_ms`, where the database cuts blocks (0: only
    /// when full). With `use_snapshot` (`memory-snapshot-on-shutdown`) a writable open loads
    /// the head snapshot the last shutdown wrote, if it still describes the WAL (see
    /// [`snapshot`]); any snapshot is deleted once a writable open has replayed.
    #[allow(clippy::too_many_arguments)]
    pub fn open_mode(
        dir: &Path,
        min_valid: i64,
        writable: bool,
        wal: wal::WriteOptions,
        max_exemplars: usize,
        block_range_ms: i64,
        use_snapshot: bool,
    ) -> std::io::Result<Self> {
        let range = ChunkRange::new(block_range_ms);
        Self::open_inner(
            dir,
            min_valid,
            writable,
            wal,
            false,
            max_exemplars,
            range,
            use_snapshot,
        )
    }

    /// The agent's head (`--agent`): series and each one's newest sample only, every sample
    /// in the WAL (replayed the same way), truncated by [`Head::truncate_agent`].
    pub fn open_agent(dir: &Path, wal: wal::WriteOptions) -> std::io::Result<Self> {
        Self::open_inner(
            dir,
            i64::MIN,
            true,
            wal,
            true,
            0,
            ChunkRange::default(),
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn open_inner(
        dir: &Path,
        min_valid: i64,
        writable: bool,
        wal_opts: wal::WriteOptions,
        wal_only: bool,
        max_exemplars: usize,
        chunk_range: ChunkRange,
        use_snapshot: bool,
    ) -> std::io::Result<Self> {
        let wal_dir = dir.join("wal");
        if writable {
            std::fs::create_dir_all(&wal_dir)?;
        }
        let (checkpoint_seg, checkpoint) = match wal_dir.is_dir() {
            true => wal::latest_checkpoint(&wal_dir)?,
            false => (None, None),
        };
        // Nothing before the head's last cut is the head's, even where no block says so.
        let min_valid = min_valid.max(
            checkpoint
                .as_deref()
                .and_then(wal::checkpoint_cut)
                .unwrap_or(i64::MIN),
        );
        // The head written at the last shutdown, if asked for and it still describes the WAL.
        let found = match (use_snapshot, writable, wal_only) {
            (true, true, false) => snapshot::find(dir)?.filter(|f| {
                snapshot::usable(f, &wal_dir, chunk_range)
                    .map_err(|why| {
                        tracing::warn!(dir = %f.dir.display(), %why, "Head snapshot not used: the WAL is replayed")
                    })
                    .is_ok()
            }),
            _ => None,
        };
        // Full chunks go to files from the start on, replay's too (the previous run's files
        // removed first).
        let files = match writable && !wal_only {
            true => match mapped::ChunkFiles::open(dir) {
                Ok(f) => Some(Arc::new(f)),
                Err(e) => {
                    tracing::warn!(dir = %dir.join(mapped::DIR).display(), err = %e, "Head chunks stay in memory: their directory cannot be used");
                    None
                }
            },
            false => None,
        };
        let plan = ReplayPlan {
            wal_dir: &wal_dir,
            checkpoint: checkpoint.as_deref(),
            checkpoint_seg,
            min_valid,
            writable,
            wal_only,
            max_exemplars,
            chunk_range,
            metadata: wal_opts.metadata,
            mapped: files.as_ref(),
        };
        let loaded = match &found {
            Some(f) => {
                let t = std::time::Instant::now();
                let r = plan.replay(Some(f));
                match &r {
                    Ok(Some(r)) => {
                        tracing::info!(dir = %f.dir.display(), series = r.index.series.len(), elapsed = ?t.elapsed(), "Head snapshot loaded; WAL replayed after it")
                    }
                    Ok(None) => {
                        tracing::error!(dir = %f.dir.display(), "Head snapshot damaged: not used, the WAL is replayed")
                    }
                    Err(err) => {
                        tracing::error!(dir = %f.dir.display(), %err, "Head snapshot unreadable: not used, the WAL is replayed")
                    }
                }
                r.ok().flatten()
            }
            None => None,
        };
        let checkpoint_found = checkpoint.is_some();
        let snapshot_failed = found.is_some() && loaded.is_none();
        let Replayed {
            mut index,
            max_ref,
            histograms,
            lo,
            hi,
            exemplars,
            stats,
            old,
        } = match loaded {
            Some(r) => r,
            None => plan
                .replay(None)?
                .ok_or_else(|| std::io::Error::other("WAL replay reported a snapshot failure"))?,
        };
        if snapshot_failed {
            stats.snapshot_replay_errors.fetch_add(1, Ordering::Relaxed);
        }
        stats
            .snapshot_loaded
            .store(found.is_some() && !snapshot_failed, Ordering::Relaxed);
        // Used or not, a snapshot no longer describes the WAL once appends go on (vigil's own
        // files; a read-only open leaves them).
        if writable && !wal_only {
            snapshot::remove_all(dir);
        }
        // A snapshot's chunks (and the last few replay closed) to their files too; from here
        // on, commits leave the writing to `write_chunks`, outside the lock.
        index.map_all();
        index.write_inline = false;
        Ok(Head {
            index: RwLock::new(index),
            wal: Mutex::new(if writable {
                // A head that held histograms goes on writing segments that may hold them.
                Some(Wal::open_with(
                    &wal_dir,
                    wal::WriteOptions {
                        histograms,
                        ..wal_opts
                    },
                )?)
            } else {
                None
            }),
            checkpointing: Mutex::new(()),
            next_ref: AtomicU64::new(max_ref + 1),
            live_from: AtomicU64::new(1),
            txn_seq: AtomicU64::new(0),
            open_txns: Mutex::new(Default::default()),
            walked_at: AtomicU64::new(0),
            stats,
            dir: Some(dir.to_path_buf()),
            min_time: AtomicI64::new(lo),
            max_time: AtomicI64::new(hi),
            min_valid: AtomicI64::new(min_valid),
            late_window: AtomicI64::new(0),
            committed_low: AtomicI64::new(i64::MAX),
            wal_only,
            compression: wal_opts.compression,
            wal_opts,
            exemplars,
            agent_exemplars: Mutex::new(RefMap::default()),
            has_histograms: std::sync::atomic::AtomicBool::new(histograms),
            checkpoint_newest: AtomicI64::new(if checkpoint_found { i64::MAX } else { i64::MIN }),
            // The WAL may hold old samples records the start did not replay (a snapshot
            // covers segments it does not drop): a deletion must then checkpoint.
            old: RwLock::new(old::OldStore::with_live(
                old,
                writable && wal::may_hold(&wal_dir, wal::OLD_SAMPLES_VERSION)?,
            )),
            lazy_reads: Default::default(),
        })
    }

    /// Make room for `n` more series in one step (an import at open, before its
    /// [`Head::bulk_load`] batches): growing the maps batch by batch rehashed every series
    /// about twenty times, and the label-set map's rehash looks each one up again.
    pub(crate) fn reserve_series(&self, n: usize) {
        let mut idx = self.index.write();
        let idx = &mut *idx;
        idx.series.reserve(n);
        idx.by_labels.reserve(n, &idx.series);
    }

    /// Load whole series at once (an import at open, before anything else appends): each
    /// series' samples must be sorted by time without repeats. A sample not newer than its
    /// series' last, or before `min_valid`, is refused, as in a commit; so are the samples of
    /// a series that would pass the head series limit. The head takes the samples on this
    /// thread while a second one logs the same records to the WAL, series first (refs are
    /// handed out up front, so both know them); the WAL is synced before this returns.
    /// Checkpoints wait for it, as they wait for a commit. Returns (appended, refused), where
    /// a sample the head already holds exactly is neither.
    pub(crate) fn bulk_load(
        &self,
        series: &[(Labels, Vec<Sample>)],
    ) -> std::io::Result<(u64, u64)> {
        // A checkpoint must not cut the WAL between this load's records and the head
        // taking them (it would drop the segment without the samples).
        let _no_checkpoint = self.checkpointing.lock();
        let min_valid = self.min_valid.load(Ordering::Relaxed);
        let max = self.stats.max_series.load(Ordering::Relaxed);
        // Per series: its ref (0: refused), whether it is new, and the first sample taken.
        let mut plan: Vec<(SeriesRef, bool, usize)> = Vec::with_capacity(series.len());
        let mut refused = 0u64;
        let unlogged = {
            let mut idx = self.index.write();
            idx.series.reserve(series.len());
            let idx = &mut *idx;
            idx.by_labels.reserve(series.len(), &idx.series);
            // This load's new series, claimed here so a repeat later in `series` finds it;
            // they enter the head (and its label map) when applied. Nothing else appends
            // during an import at open, so no appender looks for them in between.
            // Sized up front: growing them by doubling through a million-series import
            // rehashed every entry about twenty times.
            let mut claimed: FastMap<&Labels, SeriesRef> =
                FastMap::with_capacity_and_hasher(series.len(), Default::default());
            let mut live = idx.live() as u64;
            // The newest planned sample of each series this load creates or fills: a label
            // set that comes twice (two Prometheus refs of one series) continues after it.
            let mut planned: FastMap<SeriesRef, i64> =
                FastMap::with_capacity_and_hasher(series.len(), Default::default());
            for (labels, samples) in series {
                let existing = idx.find(labels).or_else(|| claimed.get(labels).copied());
                let last = existing.and_then(|r| {
                    planned
                        .get(&r)
                        .copied()
                        .or_else(|| idx.series.get(&r)?.last().map(|l| l.t))
                });
                let from =
                    samples.partition_point(|x| x.t < min_valid || last.is_some_and(|l| x.t <= l));
                let takes = from < samples.len();
                // A series counts against the limit once it holds a sample.
                let becomes_live = takes && last.is_none();
                if (existing.is_none() && labels.metric_name().is_none())
                    || (becomes_live && max > 0 && live >= max)
                {
                    refused += samples.len() as u64;
                    plan.push((0, false, samples.len()));
                    continue;
                }
                let (r, new) = match existing {
                    Some(r) => (r, false),
                    None => {
                        let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
                        claimed.insert(labels, r);
                        (r, true)
                    }
                };
                live += u64::from(becomes_live);
                // Of the samples not newer than the series' last, those the head already
                // holds (same time, same value bits: an import run again after it was cut
                // short) are carried over already; only the others are refused.
                let mut held = 0;
                if let Some(s) = existing.and_then(|r| idx.series.get(&r)) {
                    let cand = &samples[samples[..from].partition_point(|x| x.t < min_valid)..from];
                    if let (Some(a), Some(b)) = (cand.first(), cand.last()) {
                        let have = s.samples(a.t, b.t);
                        held = cand
                            .iter()
                            .filter(|x| {
                                have.binary_search_by_key(&x.t, |h| h.t)
                                    .is_ok_and(|i| have[i].v.to_bits() == x.v.to_bits())
                            })
                            .count();
                    }
                }
                refused += (from - held) as u64;
                if let Some(x) = samples[from..].last() {
                    planned.insert(r, x.t);
                }
                plan.push((r, new, from));
            }
            // Series created by earlier appenders and not logged yet go first, as a commit
            // would log them.
            std::mem::take(&mut idx.unlogged)
        };
        let log_samples = |w: &mut Wal, batch: &[(u64, i64, f64)]| -> std::io::Result<()> {
            w.log(|out, c| wal::encode_samples(out, batch, c))?;
            w.note_newest(batch.iter().map(|x| x.1).max().unwrap_or(i64::MIN));
            Ok(())
        };
        let log = || -> std::io::Result<()> {
            let mut wal = self.wal.lock();
            let Some(w) = wal.as_mut() else {
                return Ok(());
            };
            let fresh: Vec<(u64, Labels)> = unlogged
                .iter()
                .cloned()
                .chain(
                    series
                        .iter()
                        .zip(&plan)
                        .filter(|(_, (_, new, _))| *new)
                        .map(|((l, _), (r, _, _))| (*r, l.clone())),
                )
                .collect();
            for batch in fresh.chunks(10_000) {
                w.log(|out, c| wal::encode_series(out, batch, c))?;
            }
            let mut batch = Vec::with_capacity(1 << 18);
            for ((_, samples), &(r, _, from)) in series.iter().zip(&plan) {
                if r == 0 {
                    continue;
                }
                batch.extend(samples[from..].iter().map(|x| (r, x.t, x.v)));
                if batch.len() >= 1 << 18 {
                    log_samples(w, &batch)?;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                log_samples(w, &batch)?;
            }
            w.sync()
        };
        let plan = &plan;
        let (logged, n) = std::thread::scope(|sc| {
            let logger = sc.spawn(log);
            let mut idx = self.index.write();
            let range = idx.chunk_range;
            // The new series' postings are built on a third thread meanwhile (a third of
            // this loop's time alone), and put back before the lock is let go.
            let postings = (!idx.no_postings).then(|| {
                let mut p = std::mem::take(&mut idx.postings);
                sc.spawn(move || {
                    for ((labels, _), &(r, new, _)) in series.iter().zip(plan) {
                        if r != 0 && new {
                            add_postings(&mut p, r, labels);
                        }
                    }
                    p
                })
            });
            let (mut n, mut lo, mut hi) = (0u64, i64::MAX, i64::MIN);
            for ((labels, samples), &(r, new, from)) in series.iter().zip(plan) {
                if r == 0 {
                    continue;
                }
                if new {
                    idx.insert_unposted(r, labels.clone());
                    self.stats.series_created.fetch_add(1, Ordering::Relaxed);
                }
                let Some(s) = idx.series.get_mut(&r) else {
                    continue;
                };
                let was_empty = s.last().is_none();
                for x in &samples[from..] {
                    // The order was planned; never let a chunk take a sample out of it.
                    if s.last().is_some_and(|l| x.t <= l.t) {
                        continue;
                    }
                    if self.wal_only {
                        s.note(x.t, x.v);
                    } else {
                        s.push(x.t, x.v, range);
                    }
                    n += 1;
                    lo = lo.min(x.t);
                    hi = hi.max(x.t);
                }
                if was_empty && s.last().is_some() {
                    idx.empty -= 1;
                }
            }
            if let Some(p) = postings {
                // An index without its postings must never be served: a panic there is
                // carried on, as if it had happened here.
                idx.postings = p.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            }
            // Under the index lock, as a commit's (see `HeadAppender::commit`).
            self.note_range(lo, hi);
            drop(idx);
            (logger.join(), n)
        });
        logged.map_err(|_| std::io::Error::other("the WAL writer of an import panicked"))??;
        self.stats.samples_appended.fetch_add(n, Ordering::Relaxed);
        Ok((n, refused))
    }

    /// `storage.tsdb.out_of_order_time_window` in milliseconds (0 or less: late samples are
    /// refused); a reload may change it.
    pub fn set_out_of_order_window(&self, ms: i64) {
        self.late_window.store(ms.max(0), Ordering::Relaxed);
    }

    /// Move the head's start to `t`: samples before it are out of bounds from now on (floats
    /// within the out-of-order window go to `head::old`).
    pub fn raise_min_valid(&self, t: i64) {
        self.min_valid.fetch_max(t, Ordering::Relaxed);
    }

    fn note_range(&self, lo: i64, hi: i64) {
        if lo <= hi {
            self.committed_low.fetch_min(lo, Ordering::Relaxed);
            self.min_time.fetch_min(lo, Ordering::Relaxed);
            self.max_time.fetch_max(hi, Ordering::Relaxed);
        }
    }

    /// Oldest and newest sample in the head, if any.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (lo, hi) = (
            self.min_time.load(Ordering::Relaxed),
            self.max_time.load(Ordering::Relaxed),
        );
        (lo <= hi).then_some((lo, hi))
    }

    /// The series with samples in `[mint, maxt)`, in label order, each decoded only when the
    /// iterator reaches it (the index is locked per series, not for the whole range): writing
    /// a range to a block holds one series' samples at a time, not the range's.
    pub fn series_in_sorted(&self, mint: i64, maxt: i64) -> impl Iterator<Item = Series> + '_ {
        let mut refs: Vec<(Labels, SeriesRef)> = self
            .labels_by_ref()
            .into_iter()
            .map(|(r, l)| (l, r))
            .collect();
        refs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // One label set may have two refs (a WAL replay can leave both): joined into one
        // series, as a block lists each label set once.
        let mut refs = refs.into_iter().peekable();
        std::iter::from_fn(move || {
            loop {
                let (labels, r) = refs.next()?;
                let read = |r: &SeriesRef| {
                    self.index
                        .read()
                        .series
                        .get(r)
                        .map(|s| (s.samples(mint, maxt - 1), s.histograms(mint, maxt - 1)))
                };
                let (mut samples, mut histograms) = read(&r).unwrap_or_default();
                let mut parts = Vec::new();
                while let Some((_, r2)) = refs.next_if(|(l, _)| *l == labels) {
                    if let Some((f, h)) = read(&r2) {
                        samples.extend(f);
                        parts.push(h);
                    }
                }
                if !parts.is_empty() {
                    vigil_storage::time_order(&mut samples);
                    parts.insert(0, histograms);
                    histograms = vigil_storage::merge_histograms(parts);
                }
                if !samples.is_empty() || !histograms.is_empty() {
                    return Some(Series {
                        labels,
                        samples,
                        histograms,
                    });
                }
            }
        })
    }

    /// Drop every sample before `before` (now in a block); series left empty are removed.
    /// Then checkpoint the WAL so replay starts from what the head still holds.
    pub fn truncate(&self, before: i64) -> std::io::Result<()> {
        // Selections being read may not have the block now holding what goes: they get it
        // from the head first.
        self.lazy_reads.settle(self, before);
        self.min_valid.fetch_max(before, Ordering::Relaxed);
        self.committed_low.store(i64::MAX, Ordering::Relaxed);
        // The oldest sample left may lie far past the cut (a gap in the data, e.g. samples
        // from 1970 written beside today's): the head's range starts there, or the next cuts
        // walk the gap one empty block range at a time, a checkpoint each.
        let mut oldest = i64::MAX;
        // Series whose closed chunks the cut re-encoded (a chunk across it), in memory now:
        // written out after the walk (only where chunks go to files).
        let mapping = self.index.read().mapped.is_some();
        let mut rebuilt = Vec::new();
        let idx = self.remove_empty(|r, s| {
            let (empty, re_encoded) = s.truncate_noting(before);
            if let Some(t) = s.first_t() {
                oldest = oldest.min(t);
            }
            if mapping && re_encoded {
                rebuilt.push(r);
            }
            empty
        });
        // Still under the walk's last hold, which commits note their range under: commits
        // went on between the walk's holds, and what they brought to series the walk had
        // passed is in `committed_low`, so the minimum is never raised past a sample the head
        // holds.
        self.min_time.fetch_max(before, Ordering::Relaxed);
        if self.max_time.load(Ordering::Relaxed) < before {
            self.min_time.store(i64::MAX, Ordering::Relaxed);
            self.max_time.store(i64::MIN, Ordering::Relaxed);
        } else {
            let low = oldest.min(self.committed_low.load(Ordering::Relaxed));
            if low != i64::MAX {
                self.min_time.fetch_max(low, Ordering::Relaxed);
            }
        }
        drop(idx);
        // The chunks listed that stay (those a cut took are gone, not written), and those the
        // cut re-encoded.
        self.write_chunks(true);
        self.write_series_chunks(rebuilt);
        self.checkpoint(before)
    }

    /// Write the closed chunks listed to the head's chunk files, once enough are due (or
    /// `all` of them), outside the index lock: a write can wait on the disk, and appends and
    /// queries must not wait with it. Copied out under the lock, written, then each one's
    /// place is put in under the lock again where its chunk is still the one copied.
    pub(crate) fn write_chunks(&self, all: bool) {
        let (files, w) = {
            let mut idx = self.index.write();
            let Some(files) = idx.mapped.clone() else {
                return;
            };
            if idx.to_map.is_empty() || !(all || idx.map_due()) {
                return;
            }
            (files, idx.take_listed())
        };
        if w.lens.is_empty() {
            return;
        }
        if let Some(placed) = files.store(&w.buf, &w.lens) {
            self.index.write().install(w, placed);
        }
    }

    /// Write out the in-memory closed chunks of `refs` (series a cut or a deletion rebuilt),
    /// a batch at a time: each copied out under a short hold of the index lock, written with
    /// no lock held, and installed under another short hold, so appends never wait for more
    /// than one batch's copy however many series there are. Kept off the commits' list, so
    /// no commit ends up writing them.
    fn write_series_chunks(&self, refs: Vec<SeriesRef>) {
        let Some(files) = self.index.read().mapped.clone() else {
            return;
        };
        for batch in refs.chunks(WRITE_SERIES_PER_HOLD) {
            let w = self.index.read().copy_out(batch.iter().copied());
            if w.lens.is_empty() {
                continue;
            }
            let Some(placed) = files.store(&w.buf, &w.lens) else {
                // The disk refuses: the rest stays in memory too (see `mapped`).
                return;
            };
            self.index.write().install(w, placed);
        }
    }

    /// Agent mode: drop the WAL segments before `keep_from` (every remote write queue is past
    /// them, or they are older than the agent's retention), keeping the series of the head in
    /// a checkpoint, and forget series with no sample since `inactive_before` (two-phase, as
    /// [`Head::truncate`]). The segment being written is closed first, so a quiet agent's WAL
    /// shrinks too. Returns the last segment dropped, if any.
    pub fn truncate_agent(
        &self,
        keep_from: u64,
        inactive_before: i64,
    ) -> std::io::Result<Option<u64>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        drop(self.remove_empty(|_, s| s.last().is_none_or(|l| l.t < inactive_before)));
        {
            let idx = self.index.read();
            self.agent_exemplars
                .lock()
                .retain(|r, _| idx.series.contains_key(r));
        }
        let wal_dir = dir.join("wal");
        let _no_deletes = self.checkpointing.lock();
        let last = {
            let mut wal = self.wal.lock();
            let Some(w) = wal.as_mut() else {
                return Ok(None);
            };
            let current = w.current_segment();
            // Always close the segment being written (as Prometheus's agent does), so what
            // it holds can go at a later truncation even on a quiet agent.
            w.cut()?;
            if keep_from == 0 {
                return Ok(None);
            }
            (keep_from - 1).min(current)
        };
        let (done, _) = wal::latest_checkpoint(&wal_dir)?;
        if done.is_some_and(|d| d >= last) || !wal::segments(&wal_dir)?.iter().any(|&s| s <= last) {
            return Ok(None);
        }
        // Series only: the agent keeps no samples, and what the dropped segments held has
        // been sent (or outlived the retention).
        let mut cp = wal::CheckpointWriter::create(&wal_dir, last, self.wal_opts)?;
        self.checkpoint_series(&mut cp)?;
        cp.finish()?;
        if let Some(w) = self.wal.lock().as_mut() {
            w.forget_through(last);
        }
        Ok(Some(last))
    }

    /// Remove the series `empty` finds empty, two-phase: one found empty is removed at the next
    /// call if it is still empty, so a transaction open right now can still commit to it.
    ///
    /// The series are walked by ref in holds of `TRUNCATE_SERIES_PER_HOLD`, letting waiting
    /// commits in between: `empty` may re-encode a chunk per series (a cut through it), and
    /// one hold over millions of series stalled every scrape's commit for seconds.
    ///
    /// A transaction that began before the previous walk ended may have appended to a series
    /// before that walk doomed it (a later append spares it) and still commit into it: while
    /// one is open, nothing is removed (long transactions across back-to-back truncations,
    /// as when the head catches up on several block ranges, used to lose their samples).
    ///
    /// Returns the walk's last hold, for the caller to finish under.
    fn remove_empty(
        &self,
        mut empty: impl FnMut(SeriesRef, &mut MemSeries) -> bool,
    ) -> parking_lot::RwLockWriteGuard<'_, Index> {
        let may_remove = self
            .open_txns
            .lock()
            .first()
            .is_none_or(|&oldest| oldest >= self.walked_at.load(Ordering::Relaxed));
        // Refs are handed out in order, so every series has one below `next_ref`; series
        // made during the walk are new, and not its business.
        let end = self.next_ref.load(Ordering::Relaxed);
        let mut dead = Vec::new();
        // The lowest ref that keeps its series.
        let mut kept_from = end;
        let mut idx = self.index.write();
        let mut r = self.live_from.load(Ordering::Relaxed);
        while r < end {
            // A hold ends after so many series, or (refs of removed series are never reused,
            // so after churn most refs have none) after sixteen times as many refs looked up.
            let to = (r + 16 * TRUNCATE_SERIES_PER_HOLD).min(end);
            let mut found = 0;
            let mut next = r;
            while next < to && found < TRUNCATE_SERIES_PER_HOLD {
                let x = next;
                next += 1;
                let Some(s) = idx.series.get_mut(&x) else {
                    continue;
                };
                found += 1;
                let is_empty = empty(x, s);
                let doomed = s.doomed.get_mut();
                if is_empty && *doomed && may_remove {
                    dead.push(x);
                    continue;
                }
                *doomed = is_empty;
                kept_from = kept_from.min(x);
            }
            r = next;
            if r < end {
                let_appends_through(&mut idx);
            }
        }
        // One spared since the walk saw it stays (the walks must still find it).
        if let Some(r) = self.remove_series(&mut idx, dead) {
            kept_from = kept_from.min(r);
        }
        self.live_from.store(kept_from, Ordering::Relaxed);
        let txns = self.open_txns.lock();
        self.walked_at
            .store(self.txn_seq.load(Ordering::Relaxed), Ordering::Relaxed);
        drop(txns);
        idx
    }

    /// Remove series `dead` and their postings under `idx`, yielding it to waiting commits
    /// every `REMOVE_WORK_PER_HOLD` series or posting entries: removing a million series in
    /// one hold kept every commit waiting for seconds (`cut_stall`). Series go first; their
    /// postings are cleaned after, list by list (a selection skips a ref whose series is gone
    /// meanwhile).
    /// Returns the lowest ref of `dead` whose series stays.
    fn remove_series(
        &self,
        idx: &mut RwLockWriteGuard<'_, Index>,
        dead: Vec<SeriesRef>,
    ) -> Option<SeriesRef> {
        if dead.is_empty() {
            return None;
        }
        // Large allocations made without the lock too (glibc may consolidate on them).
        let mut gone = RwLockWriteGuard::unlocked_fair(idx, || Vec::with_capacity(dead.len()));
        let mut stays: Option<SeriesRef> = None;
        for batch in dead.chunks(REMOVE_WORK_PER_HOLD) {
            // An append since the walk spares a series (clears `doomed`), a commit gives it
            // samples (which clears it too): it stays.
            if let Some(r) = idx.unlink(batch, &mut gone, |s| *s.doomed.get_mut()) {
                stays = Some(stays.map_or(r, |x| x.min(r)));
            }
            let_appends_through(idx);
        }
        if !idx.no_postings {
            // Gathered with the lock let go: a million series' pairs take most of a second.
            let (pairs, mut trash) = RwLockWriteGuard::unlocked_fair(idx, || {
                let pairs = pairs_of(&gone);
                let names: std::collections::HashSet<&str> =
                    pairs.keys().map(|(n, _)| *n).collect();
                let trash = Trash {
                    lists: Vec::with_capacity(pairs.len()),
                    maps: Vec::with_capacity(names.len()),
                };
                (pairs, trash)
            });
            let mut work = 0;
            // By reference: each list of refs freed here could set off a consolidation.
            for ((name, value), refs) in &pairs {
                work += refs.len() + idx.unpost(name, value, refs, &mut trash);
                if work >= REMOVE_WORK_PER_HOLD {
                    work = 0;
                    let_appends_through(idx);
                }
            }
            RwLockWriteGuard::unlocked_fair(idx, || drop((trash, pairs)));
        }
        // The series (and the list of them) are freed with the lock let go.
        RwLockWriteGuard::unlocked_fair(idx, || drop((gone, dead)));
        stays
    }

    /// Write every series of the head (ref and labels) to `cp`, sorted by ref (replay then
    /// appends to posting lists instead of inserting into their middle, which is quadratic);
    /// returns them for the samples pass.
    fn checkpoint_series(
        &self,
        cp: &mut wal::CheckpointWriter,
    ) -> std::io::Result<Vec<(u64, Labels)>> {
        let series = self.labels_by_ref();
        self.write_series(&series, &mut |b| cp.write(b))?;
        Ok(series)
    }

    /// Series records of `series`, each batch followed by the metadata the head holds for
    /// them (`metadata-wal-records`), framed into `write` (a checkpoint's or a head
    /// snapshot's segments).
    fn write_series(
        &self,
        series: &[(u64, Labels)],
        write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut framed = Vec::new();
        let mut meta = Vec::new();
        for batch in series.chunks(10_000) {
            framed.clear();
            wal::encode(
                &mut framed,
                &Record::Series(batch.to_vec()),
                self.compression,
            );
            if self.wal_opts.metadata {
                {
                    let idx = self.index.read();
                    meta.extend(
                        batch
                            .iter()
                            .filter_map(|(r, _)| Some((*r, idx.metadata.get(r)?.clone()))),
                    );
                }
                if !meta.is_empty() {
                    wal::encode(
                        &mut framed,
                        &Record::Metadata(std::mem::take(&mut meta)),
                        self.compression,
                    );
                }
            }
            write(&framed)?;
        }
        Ok(())
    }

    /// The metadata the head holds for series `r` (`metadata-wal-records`).
    #[cfg(test)]
    pub(crate) fn series_metadata(&self, r: SeriesRef) -> Option<Arc<vigil_storage::Metadata>> {
        self.index.read().metadata.get(&r).cloned()
    }

    /// Every series' ref and labels, by ref, read in short holds of the index's read lock
    /// (one hold over millions of series kept commits, and with them every append, waiting):
    /// the series there when the walk began, and any made during it below its end.
    fn labels_by_ref(&self) -> Vec<(SeriesRef, Labels)> {
        // Sized before the lock: a large allocation under it can set off glibc's consolidation.
        let n = self.index.read().series.len();
        let mut out = Vec::with_capacity(n + 1024);
        let mut idx = self.index.read();
        // Read under the lock: a series made before it is taken is in the index with a ref
        // below `end` (a ref is taken and its series inserted in one write hold).
        let end = self.next_ref.load(Ordering::Relaxed);
        let from = self.live_from.load(Ordering::Relaxed);
        let mut r = from;
        while r < end {
            let to = (r + LABEL_COPY_REFS_PER_HOLD).min(end);
            out.extend((r..to).filter_map(|x| Some((x, idx.series.get(&x)?.labels.clone()))));
            r = to;
            RwLockReadGuard::bump(&mut idx);
        }
        out
    }

    /// Whether appended exemplars are kept (a server's head with the feature and a ring); an
    /// agent only logs them, and without the feature they are dropped.
    pub(crate) fn keeps_exemplars(&self) -> bool {
        !self.wal_only && self.wal_opts.exemplars && self.exemplars.enabled()
    }

    /// Make everything committed so far durable on disk (fsync the WAL segment and its
    /// directory), beyond the `kill -9` safety every commit has.
    pub fn sync_wal(&self) -> std::io::Result<()> {
        if let Some(w) = self.wal.lock().as_mut() {
            w.sync()?;
        }
        if let Some(d) = self.dir() {
            std::fs::File::open(d.join("wal"))?.sync_all()?;
        }
        Ok(())
    }

    /// Replace each label set with the head's own for the same ref where they are equal, so
    /// the caller keeps a shared handle instead of a copy (the journal's readers).
    /// The index is read a batch at a time: a checkpoint's 100k series must not hold off the
    /// commits waiting to create series (the lock is fair).
    pub(crate) fn share_labels(&self, series: &mut [(u64, Labels)]) {
        for batch in series.chunks_mut(10_000) {
            let idx = self.index.read();
            for (r, l) in batch.iter_mut() {
                if let Some(s) = idx.series.get(r)
                    && s.labels == *l
                {
                    *l = s.labels.clone();
                }
            }
        }
    }

    /// As [`Head::share_labels`] for metadata: each series' handle replaced with the head's
    /// where they are equal, so remote write's queues hold no copy of every series' help.
    pub(crate) fn share_metadata(&self, meta: &mut [(u64, Arc<vigil_storage::Metadata>)]) {
        for batch in meta.chunks_mut(10_000) {
            let idx = self.index.read();
            for (r, m) in batch.iter_mut() {
                if let Some(held) = idx.metadata.get(r)
                    && *held == *m
                {
                    *m = held.clone();
                }
            }
        }
    }

    /// Whether this is the agent's head (samples in the WAL only).
    pub fn is_wal_only(&self) -> bool {
        self.wal_only
    }

    /// A whole checkpoint now (see [`Head::checkpoint_whole`]): every segment so far dropped
    /// for what the head holds.
    pub(crate) fn checkpoint_all(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let _no_deletes = self.checkpointing.lock();
        let empty = !self.holds_old();
        self.checkpoint_whole(&dir.join("wal"))?;
        // Every segment so far went: old samples records remain only if some were held
        // (the checkpoint wrote them) or came since, which a commit logs and applies under the
        // WAL lock, taken here.
        let _wal = self.wal.lock();
        let mut st = self.old.write();
        if empty && st.is_empty() {
            st.in_wal = false;
        }
        Ok(())
    }

    /// Write everything the head holds as a checkpoint and drop the WAL segments it covers.
    ///
    /// Only the segment cut happens under the WAL lock. Commits hold that lock until their
    /// samples are in the head, so everything logged in the covered segments is in the head
    /// when it is read below. The head is then read a batch of series at a time under short
    /// read locks and streamed to disk, so ingestion is never stalled for the whole dump and
    /// the dump never sits in memory. Commits made meanwhile land in later segments and may
    /// also be in the checkpoint; replay ignores such repeats (known refs, samples not newer
    /// than a series' last).
    fn checkpoint_whole(&self, wal_dir: &Path) -> std::io::Result<()> {
        let last = {
            let mut wal = self.wal.lock();
            let Some(w) = wal.as_mut() else { return Ok(()) };
            let last = w.current_segment();
            w.cut()?;
            last
        };
        let opts = self.checkpoint_opts();
        let mut cp = wal::CheckpointWriter::create(wal_dir, last, opts)?;
        let series = self.checkpoint_series(&mut cp)?;
        let mut framed = Vec::new();
        let mut samples = Vec::new();
        let mut hists = Vec::new();
        // A series' floats and histograms are both in time order, but the kinds may
        // interleave: each kind goes in its own records, floats first, and a series whose
        // histograms came before some of its floats has them written in a record of their
        // own before those floats (replay applies records in order).
        let mut flush = |samples: &mut Vec<(u64, i64, f64)>,
                         hists: &mut Vec<(u64, i64, Arc<FloatHistogram>)>,
                         cp: &mut wal::CheckpointWriter|
         -> std::io::Result<()> {
            if !hists.is_empty() {
                cp.allow_histograms()?;
            }
            for rec in [
                (!samples.is_empty()).then(|| Record::Samples(std::mem::take(samples))),
                (!hists.is_empty()).then(|| Record::Histograms(std::mem::take(hists))),
            ]
            .into_iter()
            .flatten()
            {
                framed.clear();
                wal::encode(&mut framed, &rec, self.compression);
                cp.write(&framed)?;
            }
            Ok(())
        };
        for batch in series.chunks(1_000) {
            {
                let idx = self.index.read();
                for (r, _) in batch {
                    if let Some(s) = idx.series.get(r) {
                        let fs = s.samples(i64::MIN, i64::MAX);
                        let hs = s.histograms(i64::MIN, i64::MAX);
                        if let (Some(f), Some(h)) = (fs.last(), hs.first())
                            && h.t < f.t
                        {
                            // Kinds interleave: this series' samples in time order, each
                            // run of one kind flushed before the next.
                            flush(&mut samples, &mut hists, &mut cp)?;
                            let mut fi = fs.into_iter().peekable();
                            let mut hi = hs.into_iter().peekable();
                            loop {
                                match (fi.peek(), hi.peek()) {
                                    (Some(f), Some(h)) if f.t < h.t => {
                                        if !hists.is_empty() {
                                            flush(&mut samples, &mut hists, &mut cp)?;
                                        }
                                        samples.push((*r, f.t, f.v));
                                        fi.next();
                                    }
                                    (_, Some(_)) => {
                                        let h = hi.next().expect("peeked");
                                        if !samples.is_empty() {
                                            flush(&mut samples, &mut hists, &mut cp)?;
                                        }
                                        hists.push((*r, h.t, h.h));
                                    }
                                    (Some(_), None) => {
                                        let f = fi.next().expect("peeked");
                                        if !hists.is_empty() {
                                            flush(&mut samples, &mut hists, &mut cp)?;
                                        }
                                        samples.push((*r, f.t, f.v));
                                    }
                                    (None, None) => break,
                                }
                            }
                            flush(&mut samples, &mut hists, &mut cp)?;
                            continue;
                        }
                        samples.extend(fs.into_iter().map(|x| (*r, x.t, x.v)));
                        hists.extend(hs.into_iter().map(|x| (*r, x.t, x.h)));
                    }
                }
            }
            if samples.len() >= 100_000 || hists.len() >= 10_000 {
                flush(&mut samples, &mut hists, &mut cp)?;
            }
        }
        flush(&mut samples, &mut hists, &mut cp)?;
        self.write_exemplars(&mut |b| cp.write(b))?;
        self.write_old_to(&mut cp)?;
        cp.set_cut(self.min_valid.load(Ordering::Relaxed));
        // Unknown while it replaces the previous one: a finish that fails part way may leave
        // it in place with the segments it covers gone.
        self.checkpoint_newest.store(i64::MAX, Ordering::Relaxed);
        cp.finish()?;
        if let Some(w) = self.wal.lock().as_mut() {
            w.forget_through(last);
        }
        // Read after the dump: no sample in it is newer.
        self.checkpoint_newest
            .store(self.max_time.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(())
    }

    /// The old samples held, into checkpoint `cp` (its header made to allow them first).
    fn write_old_to(&self, cp: &mut wal::CheckpointWriter) -> std::io::Result<()> {
        if !self.holds_old() {
            return Ok(());
        }
        let version = self.old_version();
        cp.allow(version)?;
        self.write_old(version, &mut |b| cp.write(b))
    }

    /// How a checkpoint's segment is written: as the WAL, allowing histograms once the head
    /// has had any.
    fn checkpoint_opts(&self) -> wal::WriteOptions {
        wal::WriteOptions {
            histograms: self.has_histograms.load(Ordering::Relaxed),
            ..self.wal_opts
        }
    }

    /// The ring's exemplars of the series kept, oldest first, so a restart has them (replay
    /// refuses those a kept segment logs again, as repeats or out of order), framed into
    /// `write` (a checkpoint's or a head snapshot's segments).
    fn write_exemplars(
        &self,
        write: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let kept: Vec<(u64, Exemplar)> = {
            let all = self.exemplars.all();
            let idx = self.index.read();
            all.into_iter()
                .filter_map(|(l, e)| Some((idx.find(&l)?, e)))
                .collect()
        };
        let mut framed = Vec::new();
        for batch in kept.chunks(10_000) {
            framed.clear();
            wal::encode(
                &mut framed,
                &Record::Exemplars(batch.to_vec()),
                self.compression,
            );
            write(&framed)?;
        }
        Ok(())
    }

    /// Checkpoint the WAL after a truncation at `before`.
    ///
    /// When the oldest segments hold only times before `before` (all in blocks now) and
    /// nothing else a replay needs but series, the checkpoint is the head's series, its
    /// exemplar ring, and what the previous checkpoint holds from `before` on; those segments
    /// are dropped and the later ones stay as they are. This is what Prometheus's checkpoints
    /// keep (what the dropped segments hold past the cut). Rewriting every sample the head
    /// holds, as the whole checkpoint does, was a fifth of a block cut's work at ten million
    /// series. Otherwise (a segment this process did not write, a deletion logged in one, or
    /// no closed segment old enough) the whole head is written.
    fn checkpoint(&self, before: i64) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let wal_dir = dir.join("wal");
        let _no_deletes = self.checkpointing.lock();
        let droppable = match self.wal.lock().as_ref() {
            Some(w) => w.droppable_before(before)?,
            None => return Ok(()),
        };
        let (previous_n, previous) = wal::latest_checkpoint(&wal_dir)?;
        // A segment at or below the latest checkpoint (one a failed deletion left) is covered
        // by it already; a checkpoint numbered below it would never be read.
        let Some(last) = droppable.filter(|&n| previous_n.is_none_or(|p| n > p)) else {
            return self.checkpoint_whole(&wal_dir);
        };
        let opts = self.checkpoint_opts();
        let mut cp = wal::CheckpointWriter::create(&wal_dir, last, opts)?;
        self.checkpoint_series(&mut cp)?;
        let mut newest = i64::MIN;
        if let Some(prev) = previous
            && self.checkpoint_newest.load(Ordering::Relaxed) >= before
        {
            match self.carry_checkpoint(&prev, before, &mut cp)? {
                Some(t) => newest = t,
                // The previous checkpoint does not read back whole: the head, which replay
                // filled from what could be read, is written instead, and nothing is dropped
                // that a replay could still have read.
                None => {
                    drop(cp);
                    return self.checkpoint_whole(&wal_dir);
                }
            }
        }
        self.write_exemplars(&mut |b| cp.write(b))?;
        self.write_old_to(&mut cp)?;
        cp.set_cut(before);
        self.checkpoint_newest.store(i64::MAX, Ordering::Relaxed);
        cp.finish()?;
        if let Some(w) = self.wal.lock().as_mut() {
            w.forget_through(last);
        }
        self.checkpoint_newest.store(newest, Ordering::Relaxed);
        Ok(())
    }

    /// Copy into `cp` the samples and histograms of checkpoint `prev` from `before` on (those
    /// of a whole checkpoint that no kept segment holds). Returns the newest time copied
    /// (`i64::MIN` if none), or `None` if `prev` does not read back whole.
    fn carry_checkpoint(
        &self,
        prev: &Path,
        before: i64,
        cp: &mut wal::CheckpointWriter,
    ) -> std::io::Result<Option<i64>> {
        let mut newest = i64::MIN;
        let mut failed = None;
        let mut framed = Vec::new();
        let report = wal::replay_from_with(prev, 0, false, &mut |_: &Record| {}, |rec| {
            if failed.is_some() {
                return;
            }
            let rec = match rec {
                Record::Samples(mut s) => {
                    s.retain(|x| x.1 >= before);
                    let Some(t) = s.iter().map(|x| x.1).max() else {
                        return;
                    };
                    newest = newest.max(t);
                    Record::Samples(s)
                }
                Record::Histograms(mut h) => {
                    h.retain(|x| x.1 >= before);
                    let Some(t) = h.iter().map(|x| x.1).max() else {
                        return;
                    };
                    if let Err(e) = cp.allow_histograms() {
                        failed = Some(e);
                        return;
                    }
                    newest = newest.max(t);
                    Record::Histograms(h)
                }
                // Series come from the head, exemplars from its ring; a whole checkpoint
                // holds no tombstones (it is the head after its deletions).
                _ => return,
            };
            framed.clear();
            wal::encode(&mut framed, &rec, self.compression);
            if let Err(e) = cp.write(&framed) {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if report.corrupt_segments > 0 {
            tracing::warn!(checkpoint = %prev.display(), "A WAL checkpoint does not read back whole; writing the whole head instead");
            return Ok(None);
        }
        Ok(Some(newest))
    }

    /// Delete the samples in `[mint, maxt]` of every series matching any of `sets`; logged in
    /// the WAL so a restart does not bring them back. Returns how many series were touched.
    pub fn delete(&self, sets: &[Vec<Matcher>], mint: i64, maxt: i64) -> std::io::Result<usize> {
        let _no_checkpoint = self.checkpointing.lock();
        let mut wal = self.wal.lock();
        let mut idx = self.index.write();
        let mut refs: Vec<SeriesRef> = sets.iter().flat_map(|ms| idx.select(ms)).collect();
        refs.sort_unstable();
        refs.dedup();
        // Series a removal in progress has taken get no tombstone and are not counted.
        refs.retain(|r| idx.series.contains_key(r));
        if refs.is_empty() {
            return Ok(0);
        }
        if let Some(w) = wal.as_mut() {
            let mut framed = Vec::new();
            wal::encode(
                &mut framed,
                &Record::Tombstones(refs.iter().map(|&r| (r, mint, maxt)).collect()),
                self.compression,
            );
            w.write(&framed)?;
            w.pin_segment();
        }
        let range = idx.chunk_range;
        for r in &refs {
            if let Some(s) = idx.series.get_mut(r) {
                s.delete_range(mint, maxt, range);
            }
        }
        drop(idx);
        drop(wal);
        drop(_no_checkpoint);
        // Rebuilt in memory: their full chunks go back to the files.
        let n = refs.len();
        self.write_series_chunks(refs);
        Ok(n)
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn num_series(&self) -> usize {
        self.index.read().series.len()
    }
}

/// Series whose rebuilt chunks [`Head::write_series_chunks`] copies out under one hold.
const WRITE_SERIES_PER_HOLD: usize = 1024;

/// Series a head query decodes under one hold of the index's read lock before it lets a waiting
/// writer (a scrape's commit) in.
const SELECT_SERIES_PER_HOLD: usize = 256;

struct HeadQuerier<'a> {
    head: &'a Head,
    mint: i64,
    maxt: i64,
}

impl HeadQuerier<'_> {
    /// The label sets of the series matching `matchers` with data in the querier's range (a
    /// chunk overlapping it: see `MemSeries::has_samples_in`), their samples not decoded (the label endpoints' `match[]`: a selection of every series
    /// must not hold every sample). The index's read lock is let go as `select_shard` does.
    fn select_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let mut idx = self.head.index.read();
        let refs = idx.select(matchers);
        let mut out = Vec::new();
        for (i, r) in refs.into_iter().enumerate() {
            if i % SELECT_SERIES_PER_HOLD == SELECT_SERIES_PER_HOLD - 1 {
                RwLockReadGuard::bump(&mut idx);
            }
            if let Some(s) = idx.series.get(&r)
                && s.has_samples_in(self.mint, self.maxt)
            {
                out.push(s.labels.clone());
            }
        }
        out
    }
}

impl Querier for HeadQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>, StorageError> {
        self.select_shard(matchers, 0, 1)
    }

    fn select_shard(
        &self,
        matchers: &[Matcher],
        shard: usize,
        of: usize,
    ) -> Result<SeriesSet<'_>, StorageError> {
        // Each series' newest sample at the first hold: what later holds read is capped
        // there, so a commit landing between two holds, or while the reader decodes the
        // series (`lazy_select`), is seen whole or not at all (appends are in time order), as
        // one hold of the lock would have it. Late samples (the out-of-order window) are the
        // exception: a commit of them may be seen in part, for as long as the selection is
        // being read.
        let mut idx = self.head.index.read();
        let refs = idx.select(matchers);
        let caps: Vec<i64> = refs
            .iter()
            .map(|r| {
                idx.series
                    .get(r)
                    .and_then(MemSeries::last)
                    .map_or(i64::MIN, |l| l.t)
            })
            .collect();
        let mut todo = Vec::with_capacity(refs.len());
        for (i, (r, cap)) in refs.into_iter().zip(caps).enumerate() {
            if i % SELECT_SERIES_PER_HOLD == SELECT_SERIES_PER_HOLD - 1 {
                // A commit waiting for the write lock gets it now, not after the whole
                // listing: query threads run at a lower priority, and a scrape stalled behind
                // one would miss its interval. A series cut meanwhile is simply not found.
                RwLockReadGuard::bump(&mut idx);
            }
            let Some(s) = idx.series.get(&r) else {
                continue;
            };
            if of > 1 && s.labels.shard(of) != shard {
                continue;
            }
            if self.maxt.min(cap) < self.mint {
                continue;
            }
            todo.push((s.labels.clone(), r, cap));
        }
        drop(idx);
        todo.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Box::new(lazy_select::HeadSeries::new(
            self.head,
            todo.into(),
            self.mint,
            self.maxt,
        )))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = if matchers.is_empty() && !self.head.wal_only {
            self.head.index.read().postings.keys().cloned().collect()
        } else {
            let set: std::collections::BTreeSet<String> = self
                .select_labels(matchers)
                .into_iter()
                .flat_map(|l| l.into_vec().into_iter().map(|l| l.name))
                .collect();
            set.into_iter().collect()
        };
        names.sort();
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut vals: Vec<String> = if matchers.is_empty() && !self.head.wal_only {
            self.head.values_of(name)
        } else {
            let set: std::collections::BTreeSet<String> = self
                .select_labels(matchers)
                .iter()
                .filter_map(|l| l.get(name).map(str::to_string))
                .collect();
            set.into_iter().collect()
        };
        vals.sort_unstable();
        Ok(vals)
    }
}

impl Storage for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(append::HeadAppender {
            head: self,
            _txn: OpenTxn::begin(self),
            samples: Vec::new(),
            histograms: Vec::new(),
            batches: Vec::new(),
            newest: RefMap::default(),
            newest_histogram: RefMap::default(),
            new_live: 0,
            exemplars: Vec::new(),
            newest_exemplar: RefMap::default(),
            metadata: RefMap::default(),
            old: Vec::new(),
            old_histograms: Vec::new(),
        })
    }

    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        Ok(self.exemplars.select(mint, maxt, sets))
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Ok(Box::new(HeadQuerier {
            head: self,
            mint,
            maxt,
        }))
    }
}

/// A transaction of the head, numbered as it begins and listed among the open ones until it
/// is dropped (see [`Head::remove_empty`]).
struct OpenTxn<'a> {
    head: &'a Head,
    seq: u64,
}

impl<'a> OpenTxn<'a> {
    fn begin(head: &'a Head) -> Self {
        // Numbered and listed in one hold, so a walk never misses an older one not listed yet.
        let mut open = head.open_txns.lock();
        let seq = head.txn_seq.fetch_add(1, Ordering::Relaxed);
        open.insert(seq);
        OpenTxn { head, seq }
    }
}

impl Drop for OpenTxn<'_> {
    fn drop(&mut self) {
        self.head.open_txns.lock().remove(&self.seq);
    }
}

/// What `/api/v1/status/tsdb` reports of the head.
#[derive(Debug, Clone, Default)]
pub struct Cardinality {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// One candidate of a top list: a count and a name, borrowed from the index (a pair's name
/// is `name=value`, compared as that text without building it).
#[derive(PartialEq, Eq)]
struct Ranked<'a> {
    count: u64,
    name: &'a str,
    value: Option<&'a str>,
}

impl Ranked<'_> {
    fn text(&self) -> impl Iterator<Item = u8> + '_ {
        let value = self.value.map(str::as_bytes).unwrap_or_default();
        self.name
            .bytes()
            .chain(self.value.map(|_| b'='))
            .chain(value.iter().copied())
    }

    fn render(&self) -> String {
        match self.value {
            Some(v) => format!("{}={v}", self.name),
            None => self.name.to_string(),
        }
    }
}

/// Greater is better: a higher count, then the earlier name.
impl Ord for Ranked<'_> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.count
            .cmp(&o.count)
            .then_with(|| o.text().cmp(self.text()))
    }
}

impl PartialOrd for Ranked<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// The `limit` best candidates seen, kept in a heap whose top is the worst of them: choosing
/// costs no allocation per candidate, so a walk over a million label pairs under the index
/// lock stays short.
struct Top<'a> {
    limit: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked<'a>>>,
}

impl<'a> Top<'a> {
    fn new(limit: usize) -> Self {
        Top {
            limit,
            heap: std::collections::BinaryHeap::with_capacity(limit.min(1 << 16) + 1),
        }
    }

    fn offer(&mut self, count: u64, name: &'a str, value: Option<&'a str>) {
        let c = Ranked { count, name, value };
        if self.heap.len() < self.limit {
            self.heap.push(std::cmp::Reverse(c));
        } else if self.heap.peek().is_some_and(|w| c > w.0) {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(c));
        }
    }

    /// Best first, names copied out.
    fn finish(self) -> Vec<(String, u64)> {
        let mut v: Vec<Ranked> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.iter().map(|r| (r.render(), r.count)).collect()
    }
}

/// Refs looked up per hold of the index lock while counting chunks for the status page.
const CHUNK_COUNT_REFS_PER_HOLD: u64 = 4096;
/// Series a truncation walks per hold of the index's write lock (see `Head::remove_empty`):
/// about a millisecond of re-encoding.
const TRUNCATE_SERIES_PER_HOLD: u64 = 1024;
/// Series whose labels are copied per hold of the index's read lock (see
/// `Head::labels_by_ref`).
const LABEL_COPY_REFS_PER_HOLD: u64 = 16_384;
/// How long a walk over the whole index leaves the write lock to appends between two holds.
const WALK_PAUSE: std::time::Duration = std::time::Duration::from_micros(200);

/// Let appends run between two holds of a walk over the whole index (truncation, removal).
/// A bump alone hands the lock to the threads waiting at that moment, and the walk takes it
/// again at once: an append reads the index once per sample, so a scrape's transaction got
/// one sample in per hold and waited out the whole walk (about 3 s at 2M series in the
/// `scale` benchmark; `cut_stall` with 10,000-sample transactions). Pausing lets each
/// transaction make some hundreds of appends between holds.
fn let_appends_through(idx: &mut RwLockWriteGuard<'_, Index>) {
    RwLockWriteGuard::unlocked_fair(idx, || std::thread::sleep(WALK_PAUSE));
}
/// Series removed, or posting entries walked to remove them, per hold of the index's write
/// lock (see `Head::remove_series`).
const REMOVE_WORK_PER_HOLD: usize = 16_384;

/// Best first: the highest counts, ties by name.
fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

impl Head {
    /// The values label `name` has in the head, each with its count of series, unsorted. A
    /// name can have millions of values and commits wait for the read lock: under it they are
    /// only copied into one buffer (`cut_stall` measured the longest commit during the values
    /// of a million-value label at 138 ms with a string allocated per value under the lock,
    /// 49-63 ms this way); what callers make of them is done after it.
    fn copy_values(&self, name: &str) -> ValueCopy {
        // The buffers are allocated without the lock, sized from a first glance (a large
        // allocation can set off glibc's consolidation of every small chunk freed before it,
        // which under the lock held commits off for 100 ms and more in `cut_stall`); pages
        // not written cost nothing.
        let n = self.index.read().postings.get(name).map_or(0, |v| v.len());
        if n == 0 {
            return ValueCopy::default();
        }
        let mut ends = Vec::with_capacity(n + n / 8);
        let mut text = String::with_capacity((n + n / 8) * 32);
        let idx = self.index.read();
        let Some(vals) = idx.postings.get(name) else {
            return ValueCopy::default();
        };
        for (v, refs) in vals {
            text.push_str(v);
            ends.push((text.len(), refs.len() as u64));
        }
        ValueCopy { text, ends }
    }

    /// The values label `name` has in the head, unsorted (see [`Head::copy_values`]).
    fn values_of(&self, name: &str) -> Vec<String> {
        let copy = self.copy_values(name);
        copy.iter().map(|(v, _)| v.to_string()).collect()
    }

    /// Cardinality statistics from the postings, top `limit` of each list. It runs on the
    /// query pool, at low priority, while commits wait on the index lock it reads under; so
    /// chunks are counted by ranges of refs, yielding the lock to a waiting commit between
    /// them, and each label name's values are copied out in one short hold and ranked after
    /// it (ranking under the lock compared every tied value's text there: the longest commit
    /// waited 151 ms for a million-value label in `cut_stall`, 50-76 ms now).
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        let mut c = Cardinality::default();
        let names: Vec<String> = {
            let idx = self.index.read();
            c.num_series = idx.series.len() as u64;
            idx.postings.keys().cloned().collect()
        };
        // Refs are handed out in order, so every series has one below `next_ref`.
        let end = self.next_ref.load(Ordering::Relaxed);
        let mut idx = self.index.read();
        let mut r = self.live_from.load(Ordering::Relaxed);
        while r < end {
            let to = (r + CHUNK_COUNT_REFS_PER_HOLD).min(end);
            c.chunk_count += (r..to)
                .filter_map(|x| idx.series.get(&x))
                .map(MemSeries::chunk_count)
                .sum::<u64>();
            r = to;
            RwLockReadGuard::bump(&mut idx);
        }
        drop(idx);
        let (mut values, mut memory) = (Vec::new(), Vec::new());
        let (mut by_name, mut pairs) = (Vec::new(), Vec::new());
        for name in names {
            let vals = self.copy_values(&name);
            if vals.ends.is_empty() {
                continue;
            }
            c.num_label_pairs += vals.ends.len() as u64;
            values.push((name.clone(), vals.ends.len() as u64));
            let room = limit.min(vals.ends.len());
            let mut names_top = Top::new(if name == METRIC_NAME { room } else { 0 });
            let mut pairs_top = Top::new(room);
            let mut bytes = 0u64;
            for (v, n) in vals.iter() {
                bytes += v.len() as u64 * n;
                if name == METRIC_NAME {
                    names_top.offer(n, v, None);
                }
                pairs_top.offer(n, &name, Some(v));
            }
            by_name.extend(names_top.finish());
            pairs.extend(pairs_top.finish());
            memory.push((name.clone(), bytes));
        }
        c.series_count_by_metric_name = top(by_name, limit);
        c.label_value_count_by_label_name = top(values, limit);
        c.memory_in_bytes_by_label_name = top(memory, limit);
        c.series_count_by_label_value_pair = top(pairs, limit);
        c
    }
}

/// A label's values back to back in one string, each with where it ends and its count of
/// series (see [`Head::copy_values`]).
#[derive(Default)]
struct ValueCopy {
    text: String,
    ends: Vec<(usize, u64)>,
}

impl ValueCopy {
    fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let mut start = 0;
        self.ends.iter().map(move |&(end, n)| {
            let v = &self.text[start..end];
            start = end;
            (v, n)
        })
    }
}

/// `__name__` is the label nearly every selector has; expose its values cheaply.
pub fn metric_names(head: &Head) -> Vec<String> {
    let mut v = head.values_of(METRIC_NAME);
    v.sort_unstable();
    v
}

mod append;
#[cfg(test)]
pub(crate) use append::TIME_BOUND;
pub(crate) use append::in_time_bound;
mod lazy_select;
mod mapped;
/// Where a server's head writes its full chunks (under the data directory).
pub(crate) const CHUNK_FILES_DIR: &str = mapped::DIR;
mod old;
mod ooo;
pub(crate) mod snapshot;
use ooo::LateSamples;
pub use snapshot::Written as SnapshotWritten;
#[cfg(test)]
mod tests;
