//! The database: the head plus the blocks on disk, as one [`Storage`].
//!
//! [`Db::maintain`] (run periodically by the server) cuts the head's old data into blocks,
//! truncates and checkpoints the head, compacts adjacent blocks into longer ranges and applies
//! retention. Blocks are shared with queries through `Arc`, and their files are mmap'd, so a
//! block compacted away or deleted by retention stays readable by a query that holds it.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use vigil_model::{Labels, Sample};
use vigil_storage::{
    Appender, Matcher, Querier, Series, SeriesExemplars, SeriesSet, Storage, StorageError,
};

use crate::block::{Block, Compaction, SeriesSamples, write_block};
pub use crate::datadir::OpenError;
use crate::datadir::{self, DirLock};
use crate::head::Head;

const HOUR_MS: i64 = 3_600_000;

/// Storage settings, from the `--storage.tsdb.*` flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--storage.tsdb.min-block-duration` (2h): the range the head is cut into.
    pub block_range_ms: i64,
    /// `--storage.tsdb.retention.time` (15d); 0 = no time limit.
    pub retention_ms: i64,
    /// `--storage.tsdb.retention.size`; 0 = no size limit.
    pub retention_bytes: u64,
    /// Longest block compaction builds: 10% of retention, at most 31d (as Prometheus).
    pub max_block_ms: i64,
    /// `--storage.tsdb.no-lockfile`: do not take `<dir>/lock`.
    pub no_lockfile: bool,
    /// `--storage.tsdb.wal-segment-size` and `--storage.tsdb.wal-compression`.
    pub wal: crate::wal::WriteOptions,
    /// `--storage.tsdb.block-format`: the format of blocks vigil writes.
    pub block_format: BlockFormat,
    /// `storage.exemplars.max_exemplars` with `--enable-feature=exemplar-storage`; 0 keeps
    /// none.
    pub max_exemplars: usize,
    /// `--storage.tsdb.delay-compact-file.path`: a JSON file listing the blocks uploaded
    /// (a Thanos sidecar's `thanos.shipper.json`); a level-1 block not listed there is not
    /// merged yet, nor any block after it. See [`uploaded_blocks`].
    pub delay_compact_file: Option<PathBuf>,
    /// `--enable-feature=delayed-compaction`: how long a head cut waits once it is due (drawn
    /// at random per process, up to `--storage.tsdb.delayed-compaction.max-percent` of the
    /// block range), so replicas started together do not all write blocks at once.
    pub head_cut_delay: std::time::Duration,
    /// `--enable-feature=memory-snapshot-on-shutdown`: the head is written whole at shutdown
    /// ([`Db::write_head_snapshot`]) and loaded at the next open instead of replaying the WAL
    /// (see `head::snapshot`).
    pub memory_snapshot: bool,
    /// `--storage.tsdb.allow-overlapping-compaction` (default true, as Prometheus): blocks
    /// whose time ranges overlap (a backfill, Prometheus's own blocks) are merged into one
    /// before any other compaction. Off, they are left for another component (Thanos,
    /// Mimir) to merge, and queries merge them as always.
    pub overlapping_compaction: bool,
}

/// The format vigil writes its blocks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockFormat {
    /// vigil's own (smaller: packed chunks of up to 480 samples, or seekable ones of up to 7,680
    /// for longer series).
    #[default]
    Vigil,
    /// Prometheus's (index v2, XOR chunks of 120 samples), for a Thanos sidecar or a way back.
    Prometheus,
}

impl Options {
    pub fn new(retention_ms: i64, retention_bytes: u64) -> Self {
        let block_range_ms = 2 * HOUR_MS;
        let max = if retention_ms > 0 {
            (retention_ms / 10).min(31 * 24 * HOUR_MS)
        } else {
            31 * 24 * HOUR_MS
        };
        Options {
            block_range_ms,
            retention_ms,
            retention_bytes,
            max_block_ms: max.max(block_range_ms),
            no_lockfile: false,
            wal: crate::wal::WriteOptions::default(),
            block_format: BlockFormat::Vigil,
            max_exemplars: 0,
            delay_compact_file: None,
            head_cut_delay: std::time::Duration::ZERO,
            memory_snapshot: false,
            overlapping_compaction: true,
        }
    }

    /// `--storage.tsdb.min-block-duration` and `--storage.tsdb.max-block-duration` (default:
    /// 10% of retention, at most 31d, never below the min).
    pub fn with_block_range(mut self, min_ms: i64, max_ms: Option<i64>) -> Self {
        let min_ms = min_ms.max(1);
        let default_max = if self.retention_ms > 0 {
            (self.retention_ms / 10).min(31 * 24 * HOUR_MS)
        } else {
            31 * 24 * HOUR_MS
        };
        self.block_range_ms = min_ms;
        self.max_block_ms = max_ms.unwrap_or(default_max).max(min_ms);
        self
    }
}

pub struct Db {
    dir: PathBuf,
    /// Shared with the journal's readers, which hand out its label sets.
    head: std::sync::Arc<Head>,
    blocks: RwLock<Vec<Arc<Block>>>,
    opts: Options,
    /// Serialises maintenance.
    maint: Mutex<()>,
    /// `<dir>/lock`, held while the database is open (unless `--storage.tsdb.no-lockfile`).
    _lock: Option<DirLock>,
    /// Opened by a tool: nothing in the directory is changed.
    read_only: bool,
    /// Retention (ms, bytes; 0 = none): changeable at runtime by a config reload.
    retention: RwLock<(i64, u64)>,
    /// Files found at open that vigil could not read, left as they were: (path, why).
    unreadable: Vec<(String, String)>,
    /// Blocks a rewrite would lose data of (chunks vigil cannot read): never compacted.
    unmergeable: Mutex<std::collections::HashSet<String>>,
    /// Block writes (head cuts and merges) and failed maintenance passes, for
    /// `prometheus_tsdb_compaction*`.
    compactions: CompactionStats,
    /// Since when a head cut has been due, while `head_cut_delay` holds it back.
    cut_due_since: Mutex<Option<std::time::Instant>>,
}

/// Upper bounds (seconds) of `prometheus_tsdb_compaction_duration_seconds`'s buckets, as
/// Prometheus sets them (1s doubling 14 times); a last, unbounded bucket follows.
pub const COMPACTION_BUCKETS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// How many block writes ran, how long each took and how many maintenance passes failed.
/// Prometheus counts every block write as a compaction, head cut or merge, whether it
/// succeeded or not; so do we, so that its dashboards' compaction panels read the same.
#[derive(Default)]
pub struct CompactionStats {
    failed: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last is past every bound.
    buckets: [AtomicU64; COMPACTION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// A reading of [`CompactionStats`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionSnapshot {
    pub ran: u64,
    pub failed: u64,
    pub buckets: [u64; COMPACTION_BUCKETS.len() + 1],
    pub sum_seconds: f64,
}

impl CompactionStats {
    fn observe(&self, took: std::time::Duration) {
        let s = took.as_secs_f64();
        let i = COMPACTION_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(COMPACTION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> CompactionSnapshot {
        let buckets: [u64; COMPACTION_BUCKETS.len() + 1] =
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        CompactionSnapshot {
            // The count is the buckets' sum, so a reading taken during an observation
            // still has `+Inf` equal to the count.
            ran: buckets.iter().sum(),
            failed: self.failed.load(Ordering::Relaxed),
            buckets,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Load the blocks; with `writable`, also clean up what vigil's own interrupted writes left.
fn load_blocks(
    dir: &Path,
    writable: bool,
    unreadable: &mut Vec<(String, String)>,
) -> std::io::Result<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if !e.file_type()?.is_dir() || name == "wal" {
            continue;
        }
        if let Some(ulid) = name.strip_suffix(".tmp") {
            // A block write of vigil's interrupted by a crash: never complete, remove it.
            // Only vigil's own (marked when created); anything else stays as it is.
            if writable && ulid.len() == 26 && e.path().join(crate::block::TMP_MARKER).exists() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                tracing::warn!(dir = %name, "Leaving an unfinished block directory vigil did not write");
            }
            continue;
        }
        if name.len() != 26 {
            continue;
        }
        match Block::open(&e.path()) {
            Ok(b) => out.push(Arc::new(b)),
            Err(err) => {
                tracing::error!(block = %name, %err, "Skipping unreadable block (left as it is)");
                unreadable.push((e.path().display().to_string(), err.to_string()));
            }
        }
    }
    // A crash between writing a compacted block and deleting its sources leaves both: the
    // sources are superseded, remove them. Only where the merged block covers the source's
    // whole time range too: a block copied in (or crafted) that merely names other blocks in
    // its `sources` must not get them deleted.
    let effective = |b: &Block| -> Vec<String> {
        if b.meta.compaction.sources.is_empty() {
            vec![b.meta.ulid.clone()]
        } else {
            b.meta.compaction.sources.clone()
        }
    };
    let superseded: Vec<bool> = out
        .iter()
        .map(|b| {
            let mine = effective(b);
            out.iter().any(|a| {
                a.meta.ulid != b.meta.ulid
                    && a.meta.compaction.level > b.meta.compaction.level
                    && a.meta.min_time <= b.meta.min_time
                    && a.meta.max_time >= b.meta.max_time
                    && {
                        let theirs = effective(a);
                        mine.iter().all(|u| theirs.contains(u))
                    }
            })
        })
        .collect();
    let (gone, kept): (Vec<_>, Vec<_>) = out
        .into_iter()
        .zip(superseded)
        .partition(|(_, s)| *s && writable);
    let gone: Vec<Arc<Block>> = gone.into_iter().map(|(b, _)| b).collect();
    let kept: Vec<Arc<Block>> = kept.into_iter().map(|(b, _)| b).collect();
    for b in gone {
        tracing::warn!(ulid = %b.meta.ulid, "Removing block left behind by an interrupted compaction");
        std::fs::remove_dir_all(&b.dir)?;
    }
    let mut out = kept;
    sort_blocks(&mut out);
    Ok(out)
}

/// A block's `compaction.hints`: Prometheus's mark of an out-of-order block, or none.
fn hints(out_of_order: bool) -> Vec<String> {
    if out_of_order {
        vec!["from-out-of-order".into()]
    } else {
        vec![]
    }
}

/// The end of the newest in-order block (out-of-order blocks do not bound the head).
fn in_order_end(blocks: &[Arc<Block>]) -> i64 {
    blocks
        .iter()
        .filter(|b| !b.meta.compaction.out_of_order())
        .map(|b| b.meta.max_time)
        .max()
        .unwrap_or(i64::MIN)
}

/// Blocks in the order queries and merges read them: by start time, then by ULID (the
/// older block first), so that where overlapping blocks hold a sample at the same time the
/// same one wins every time.
fn sort_blocks(blocks: &mut [Arc<Block>]) {
    blocks.sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
}

/// The blocks a Thanos sidecar lists as uploaded in its meta file (`{"version": 1,
/// "uploaded": [ULID, ...]}`), read at each compaction. A file that cannot be read or parsed
/// holds nothing back (logged), as in Prometheus; a file without the list holds back every
/// level-1 block.
pub fn uploaded_blocks(path: &Path) -> Option<std::collections::HashSet<String>> {
    #[derive(serde::Deserialize)]
    struct UploadMeta {
        #[serde(default)]
        uploaded: Option<Vec<String>>,
    }
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "Cannot open the TSDB upload meta file (--storage.tsdb.delay-compact-file.path): blocks are merged without waiting for their upload");
            return None;
        }
    };
    match serde_json::from_slice::<Option<UploadMeta>>(&text) {
        Ok(m) => Some(
            m.and_then(|m| m.uploaded)
                .unwrap_or_default()
                .into_iter()
                .collect(),
        ),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "Cannot parse the TSDB upload meta file (--storage.tsdb.delay-compact-file.path): blocks are merged without waiting for their upload");
            None
        }
    }
}

/// Append `series` to `head` (see [`Head::bulk_load`]); (appended, refused: samples the head
/// did not take and does not hold, e.g. out of bounds).
fn append_all(head: &Head, series: &[(Labels, Vec<Sample>)]) -> std::io::Result<(u64, u64)> {
    head.bulk_load(series)
}

/// Hard-link (or copy) every file under `from` into `to`, keeping the layout.
fn link_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type()?.is_dir() {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst).or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))?;
        }
    }
    Ok(())
}

/// Write a block of `series` in `format`.
pub fn write_block_as(
    format: BlockFormat,
    parent: &Path,
    mint: i64,
    maxt: i64,
    series: Vec<Series>,
    compaction: Compaction,
) -> std::io::Result<crate::block::BlockMeta> {
    match format {
        BlockFormat::Vigil => write_block(parent, mint, maxt, series, compaction),
        BlockFormat::Prometheus => {
            crate::prometheus::writer::write_block(parent, mint, maxt, series, compaction)
        }
    }
}

/// [`write_block_as`] from series in label order, taken one at a time and streamed to disk
/// in either format.
fn write_block_sorted_as(
    format: BlockFormat,
    parent: &Path,
    mint: i64,
    maxt: i64,
    series: impl IntoIterator<Item = std::io::Result<SeriesSamples>>,
    compaction: Compaction,
) -> std::io::Result<crate::block::BlockMeta> {
    match format {
        BlockFormat::Vigil => {
            crate::block::write_block_sorted(parent, mint, maxt, series, compaction)
        }
        BlockFormat::Prometheus => {
            crate::prometheus::writer::write_block_sorted(parent, mint, maxt, series, compaction)
        }
    }
}

/// Label-ordered series from several label-ordered sources (blocks), joined: a label set in
/// several sources gets all their samples in time order, one per timestamp, the earlier
/// source's sample winning at equal times (as the merge always kept it). A source that is
/// not in strict label order, or whose reading skipped chunks (`check`, asked once all are
/// read), ends the stream with an error, which stops the block's write before its rename;
/// `refused` says which source.
struct MergeSeries<'a> {
    sources: Vec<Box<dyn Iterator<Item = Series> + 'a>>,
    /// Each source's next series, read ahead.
    heads: Vec<Option<Series>>,
    /// Each source's last label set taken, to check its order.
    last: Vec<Option<Labels>>,
    /// Whether source `i` read everything it holds (no chunk skipped).
    check: Box<dyn Fn(usize) -> bool + 'a>,
    refused: &'a std::cell::Cell<Option<(usize, &'static str)>>,
    done: bool,
}

impl<'a> MergeSeries<'a> {
    fn new(
        mut sources: Vec<Box<dyn Iterator<Item = Series> + 'a>>,
        check: Box<dyn Fn(usize) -> bool + 'a>,
        refused: &'a std::cell::Cell<Option<(usize, &'static str)>>,
    ) -> Self {
        let heads = sources.iter_mut().map(|s| s.next()).collect();
        let last = vec![None; sources.len()];
        MergeSeries {
            sources,
            heads,
            last,
            check,
            refused,
            done: false,
        }
    }

    /// Source `i`'s next series, reading the one after it ahead; `None` if the source is out
    /// of label order.
    fn take(&mut self, i: usize) -> Option<Series> {
        let s = self.heads[i].take()?;
        if self.last[i].as_ref().is_some_and(|l| *l >= s.labels) {
            return None;
        }
        self.last[i] = Some(s.labels.clone());
        self.heads[i] = self.sources[i].next();
        Some(s)
    }

    fn fail(&mut self, i: usize, why: &'static str) -> Option<std::io::Result<SeriesSamples>> {
        self.done = true;
        self.refused.set(Some((i, why)));
        Some(Err(std::io::Error::other(why)))
    }
}

impl Iterator for MergeSeries<'_> {
    type Item = std::io::Result<SeriesSamples>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // The first source holding the smallest label set.
        let Some(first) = (0..self.heads.len())
            .filter_map(|i| Some((i, &self.heads[i].as_ref()?.labels)))
            .min_by(|a, b| a.1.cmp(b.1))
            .map(|(i, _)| i)
        else {
            self.done = true;
            return match (0..self.sources.len()).find(|&i| !(self.check)(i)) {
                Some(i) => self.fail(i, "chunks vigil cannot read (damage)"),
                None => None,
            };
        };
        let Some(Series {
            labels,
            mut samples,
            histograms,
        }) = self.take(first)
        else {
            return self.fail(first, "series not in label order");
        };
        let mut parts = vec![histograms];
        for i in first + 1..self.heads.len() {
            if self.heads[i].as_ref().is_some_and(|s| s.labels == labels) {
                let Some(more) = self.take(i) else {
                    return self.fail(i, "series not in label order");
                };
                samples.extend(more.samples);
                parts.push(more.histograms);
            }
        }
        // Stable: at equal times the earlier source's sample comes first and stays.
        vigil_storage::time_order(&mut samples);
        let histograms = vigil_storage::merge_histograms(parts);
        Some(Ok(Series {
            labels,
            samples,
            histograms,
        }))
    }
}

/// Persist the complete block ranges of Prometheus's head as blocks (one per aligned range
/// that holds samples); returns them and where the newest range starts: from there on the
/// series go to vigil's head (so samples after the last block are accepted, as in Prometheus,
/// and a late sample does not have to wait for a block). When blocks are written the series
/// are left sorted by labels. Each block is streamed, one series unpacked at a time.
fn persist_prometheus_blocks(
    dir: &Path,
    opts: &Options,
    imp: &mut crate::prometheus::head::Import,
    blocks_end: i64,
) -> std::io::Result<(Vec<Arc<Block>>, i64)> {
    let r = opts.block_range_ms.max(1);
    let Some(hi) = imp.series.iter().filter_map(|(_, s)| s.last_t()).max() else {
        return Ok((Vec::new(), i64::MIN));
    };
    // Never below the existing blocks' end: the head refuses what is older (out-of-order
    // samples there go into blocks). Never past now either, as head cuts count (see
    // `cut_due`): a sample from the future would have the present range written as a block,
    // and the head would refuse the samples still to come in it.
    let hi = hi.min(wall_ms());
    let tail_start = hi.div_euclid(r).saturating_mul(r).max(blocks_end);
    let mut ranges = std::collections::BTreeSet::new();
    for (_, p) in &imp.series {
        let (Some(lo), Some(hi)) = (p.first_t(), p.last_t()) else {
            continue;
        };
        if lo.div_euclid(r) == hi.div_euclid(r) {
            // All in one range (most series of a short head): no need to unpack them.
            if lo < tail_start {
                ranges.insert(lo.div_euclid(r));
            }
            continue;
        }
        for t in p
            .samples()
            .iter()
            .map(|x| x.t)
            .chain(p.histograms().iter().map(|x| x.t))
        {
            if t < tail_start {
                ranges.insert(t.div_euclid(r));
            }
        }
    }
    if ranges.is_empty() {
        // Everything goes to the head, which takes series in any order.
        return Ok((Vec::new(), tail_start));
    }
    // Blocks list series in label order: sorted once here, on cheap keys where possible.
    let mut keyed: Vec<(Vec<u8>, (Labels, crate::prometheus::head::Packed))> =
        std::mem::take(&mut imp.series)
            .into_iter()
            .map(|x| (crate::prometheus::head::order_key(&x.0), x))
            .collect();
    if keyed.iter().all(|(k, _)| !k.is_empty()) {
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    } else {
        keyed.sort_unstable_by(|a, b| a.1.0.cmp(&b.1.0));
    }
    imp.series = keyed.into_iter().map(|(_, x)| x).collect();
    // The keys order as the labels do for every label set Prometheus writes; should one not,
    // the labels decide (the block writer refuses series out of order).
    if !imp.series.windows(2).all(|w| w[0].0 < w[1].0) {
        imp.series.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut out = Vec::new();
    for k in ranges {
        let start = k.saturating_mul(r);
        // Never past the newest range's start: the head takes samples from there on.
        let end = start
            .saturating_add(r)
            .min(tail_start.max(start.saturating_add(1)));
        let series = imp.series.iter().filter_map(|(l, p)| {
            // Series with nothing in the range are passed over without unpacking.
            if p.last_t().is_none_or(|t| t < start) || p.first_t().is_none_or(|t| t >= end) {
                return None;
            }
            let s = p.samples();
            let a = s.partition_point(|x| x.t < start);
            let b = s.partition_point(|x| x.t < end);
            let h = p.histograms();
            let (ha, hb) = (
                h.partition_point(|x| x.t < start),
                h.partition_point(|x| x.t < end),
            );
            (a < b || ha < hb).then(|| {
                Ok(Series {
                    labels: l.clone(),
                    samples: s[a..b].to_vec(),
                    histograms: h[ha..hb].to_vec(),
                })
            })
        });
        let meta = write_block_sorted_as(
            opts.block_format,
            dir,
            start,
            end,
            series,
            Compaction {
                level: 1,
                sources: vec![],
                hints: vec![],
            },
        )?;
        out.push(Arc::new(Block::open(&dir.join(&meta.ulid))?));
    }
    // The blocks' renames are durable before anything they replace moves.
    File::open(dir)?.sync_all()?;
    Ok((out, tail_start))
}

/// Append the samples at or after `from` of the import's series to `head`, a batch of series
/// at a time (each batch unpacked only while the head takes it); (appended, refused).
/// Series holding native histograms go through the head's appender, both kinds in time
/// order; the bulk load takes the (many) others.
fn append_imported(
    head: &Head,
    series: &[(Labels, crate::prometheus::head::Packed)],
    from: i64,
) -> std::io::Result<(u64, u64)> {
    let (mut n, mut refused) = (0, 0);
    head.reserve_series(
        series
            .iter()
            .filter(|(_, p)| p.last_t().is_some_and(|t| t >= from))
            .count(),
    );
    for batch in series.chunks(8192) {
        let unpacked: Vec<(Labels, Vec<Sample>)> = batch
            .iter()
            .filter_map(|(l, p)| {
                if p.last_t().is_none_or(|t| t < from) || !p.histograms().is_empty() {
                    return None;
                }
                let mut s = p.samples();
                let cut = s.partition_point(|x| x.t < from);
                s.drain(..cut);
                (!s.is_empty()).then(|| (l.clone(), s))
            })
            .collect();
        let (a, b) = append_all(head, &unpacked)?;
        n += a;
        refused += b;
    }
    let mut app = head.appender();
    let mut pending = 0;
    for (l, p) in series {
        if p.histograms().is_empty() || p.last_t().is_none_or(|t| t < from) {
            continue;
        }
        let floats = p.samples();
        let (mut f, mut h) = (
            floats.partition_point(|x| x.t < from),
            p.histograms().partition_point(|x| x.t < from),
        );
        let hs = p.histograms();
        let mut r = 0;
        while f < floats.len() || h < hs.len() {
            let float_first = h == hs.len() || (f < floats.len() && floats[f].t < hs[h].t);
            let res = if float_first {
                f += 1;
                app.append(r, l, floats[f - 1].t, floats[f - 1].v)
            } else {
                h += 1;
                app.append_histogram(r, l, hs[h - 1].t, (*hs[h - 1].h).clone())
            };
            match res {
                Ok(x) => {
                    r = x;
                    n += 1;
                }
                Err(_) => refused += 1,
            }
            pending += 1;
            if pending >= 8192 {
                app.commit()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                app = head.appender();
                pending = 0;
            }
        }
    }
    app.commit()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((n, refused))
}

/// What became of an imported head's exemplars.
#[derive(Default)]
struct ImportedExemplars {
    kept: u64,
    /// Older than their series' newest: Prometheus's replay drops them too.
    out_of_order: u64,
    /// Of series whose samples all went to blocks, so not in vigil's head (whose ring and WAL
    /// name exemplars by head series). A Prometheus restarted on its files would serve them
    /// until its next head truncation's checkpoint dropped them with their series; vigil does
    /// not carry them over, and says how many in the import's log line.
    no_series: u64,
}

/// Carry an imported head's exemplars into vigil's ring and WAL, as Prometheus's own replay
/// does.
fn append_imported_exemplars(
    head: &Head,
    exemplars: &[(Labels, vigil_storage::Exemplar)],
) -> std::io::Result<ImportedExemplars> {
    let mut n = ImportedExemplars::default();
    for batch in exemplars.chunks(8192) {
        let mut app = head.appender();
        for (labels, e) in batch {
            match app.append_exemplar(0, labels, e.clone()) {
                Ok(()) => n.kept += 1,
                Err(vigil_storage::AppendError::InvalidLabels(_)) => n.no_series += 1,
                Err(_) => n.out_of_order += 1,
            }
        }
        app.commit()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    Ok(n)
}

/// Move Prometheus's head files out of vigil's way, unchanged, under `prometheus-import/`
/// (their relative paths kept), where a restart finds them if the import is cut short.
fn stage_prometheus_files(
    dir: &Path,
    imp: &crate::prometheus::head::Import,
) -> std::io::Result<()> {
    let staging = dir.join(crate::prometheus::head::STAGING);
    for p in &imp.files {
        if p.starts_with(&staging) || !p.exists() {
            continue;
        }
        let rel = p.strip_prefix(dir).unwrap_or(p);
        let to = staging.join(rel);
        if to.exists() {
            // Prometheus ran here again after an import was cut short: never overwrite.
            return Err(std::io::Error::other(format!(
                "{} would overwrite {} left by an earlier import: move one of them aside",
                p.display(),
                to.display()
            )));
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(p, &to)?;
    }
    // The renames are durable before vigil's head takes `wal/`.
    for sub in ["", "wal", "wbl", "chunks_head"] {
        if let Ok(f) = File::open(staging.join(sub)) {
            f.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()?;
    if dir.join("wal").exists() {
        File::open(dir.join("wal"))?.sync_all()?;
    }
    // Staging is whole: a Prometheus head in the data directory from now on is another one.
    let marker = staging.join(crate::prometheus::head::STAGED);
    if !marker.exists() && staging.exists() {
        File::create(&marker)?.sync_all()?;
        File::open(&staging)?.sync_all()?;
    }
    Ok(())
}

/// The import is safe (blocks written, the newest range in vigil's WAL): remove Prometheus's
/// files if everything in them was carried over, else keep them, unchanged, under
/// `prometheus-unread/<time>/`; and the directories only Prometheus's head used, once empty.
fn finish_prometheus_import(
    dir: &Path,
    imp: &crate::prometheus::head::Import,
    all_appended: bool,
) -> std::io::Result<()> {
    let staging = dir.join(crate::prometheus::head::STAGING);
    if staging.exists() {
        if imp.complete() && all_appended {
            // Renamed first, so a removal cut short is never read again as Prometheus's data.
            let done = dir.join(format!("{}.done", crate::prometheus::head::STAGING));
            std::fs::rename(&staging, &done)?;
            File::open(dir)?.sync_all()?;
            std::fs::remove_dir_all(&done)?;
        } else {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let to = dir.join("prometheus-unread").join(ms.to_string());
            std::fs::create_dir_all(dir.join("prometheus-unread"))?;
            std::fs::rename(&staging, &to)?;
            tracing::warn!(to = %to.display(), unreadable = imp.unreadable.len(), orphan_samples = imp.orphan_samples, orphan_exemplars = imp.orphan_exemplars, exemplars = imp.exemplars.len(), unsupported_records = imp.unsupported_records, "Prometheus head files kept, unchanged: not everything in them could be carried over (damaged files, samples or exemplars of series whose record was lost, records of a later Prometheus, histograms of a schema vigil does not know, samples with start times, or exemplars without --enable-feature=exemplar-storage)");
        }
    }
    for sub in ["chunks_head", "wbl"] {
        let _ = std::fs::remove_dir(dir.join(sub));
    }
    File::open(dir)?.sync_all()
}

impl Db {
    /// Open (creating) the database in `dir`, taking `<dir>/lock`. Prometheus's blocks are
    /// served as they are; Prometheus's head (WAL, head chunks) is persisted at open.
    pub fn open(dir: &Path, opts: Options) -> Result<Db, OpenError> {
        Self::open_mode(dir, opts, true, false)
    }

    /// Open `dir` for reading only, as a tool does next to a running server: no lock, nothing
    /// created, repaired or removed, and no appends.
    pub fn open_read_only(dir: &Path) -> Result<Db, OpenError> {
        Self::open_mode(dir, Options::new(0, 0), false, false)
    }

    /// Open (creating) an agent's storage in `dir` (`--agent`): a WAL and the series it
    /// names, no samples in memory, no blocks written or read, no retention run; the WAL is
    /// truncated through [`Db::truncate_agent`] once remote write has sent it.
    pub fn open_agent(dir: &Path, opts: Options) -> Result<Db, OpenError> {
        Self::open_mode(dir, opts, true, true)
    }

    fn open_mode(dir: &Path, opts: Options, writable: bool, agent: bool) -> Result<Db, OpenError> {
        // The agent reads no blocks and has no use for another's head: it refuses them.
        if agent && let Err(foreign) = datadir::inspect(dir)? {
            return Err(OpenError::Foreign(foreign));
        }
        let lock = if writable {
            std::fs::create_dir_all(dir).map_err(|e| datadir::not_writable(dir, e))?;
            (!opts.no_lockfile)
                .then(|| datadir::lock(dir))
                .transpose()?
        } else {
            None
        };
        if writable {
            // Writable, not just lockable: a read-only mount refuses start-up here, clearly.
            let probe = dir.join(".vigil-write-test");
            std::fs::write(&probe, b"").map_err(|e| datadir::not_writable(dir, e))?;
            let _ = std::fs::remove_file(&probe);
        }
        let mut unreadable = Vec::new();
        let mut blocks = if agent {
            Vec::new()
        } else {
            load_blocks(dir, writable, &mut unreadable)?
        };
        // Where the in-order head starts: after the newest block that is not Prometheus's
        // out-of-order block (as Prometheus's own start-up reckons it).
        let max_block = |blocks: &[Arc<Block>]| in_order_end(blocks);
        // What an import's removal cut short left: already carried over, never read again.
        let done = dir.join(format!("{}.done", crate::prometheus::head::STAGING));
        if writable && done.exists() {
            std::fs::remove_dir_all(&done)?;
        }
        // Prometheus's head (WAL, head chunks): read; a writable open persists it (complete
        // ranges as blocks, the newest range into vigil's head and WAL).
        let mut imported = None;
        let mut tail = None;
        if !agent && crate::prometheus::head::present(dir)? {
            let t = std::time::Instant::now();
            let mut imp = crate::prometheus::head::read(dir, max_block(&blocks))?;
            tracing::info!(series = imp.series.len(), samples = imp.samples, elapsed = ?t.elapsed(), "Prometheus head read");
            for (path, why) in &imp.unreadable {
                tracing::error!(file = %path.display(), %why, "Prometheus head file damaged: read up to the damage, the file is kept as it is");
                unreadable.push((path.display().to_string(), why.clone()));
            }
            if writable {
                let end = max_block(&blocks);
                let (new_blocks, tail_start) =
                    persist_prometheus_blocks(dir, &opts, &mut imp, end)?;
                tracing::info!(blocks = new_blocks.len(), elapsed = ?t.elapsed(), "Prometheus head's complete ranges persisted as blocks");
                blocks.extend(new_blocks);
                sort_blocks(&mut blocks);
                stage_prometheus_files(dir, &imp)?;
                tail = Some((imp, tail_start, t));
            } else {
                imported = Some(imp);
            }
        }
        let min_valid = max_block(&blocks);
        let head = if agent {
            Head::open_agent(dir, opts.wal)?
        } else if let Some(imp) = imported {
            // A tool reading a directory that holds Prometheus's head, in memory only. If
            // `wal/` is vigil's (an import cut short left Prometheus's files staged), vigil's
            // WAL is replayed too, read-only, and Prometheus's head is loaded on top.
            let wal_is_vigils =
                crate::prometheus::head::foreign_wal_files(&dir.join("wal"))?.is_empty();
            let head = if wal_is_vigils {
                Head::open_mode(
                    dir,
                    min_valid,
                    false,
                    opts.wal,
                    opts.max_exemplars,
                    opts.block_range_ms,
                    false,
                )?
            } else {
                Head::in_memory()
            };
            append_imported(&head, &imp.series, i64::MIN)?;
            head
        } else {
            Head::open_mode(
                dir,
                min_valid,
                writable,
                opts.wal,
                opts.max_exemplars,
                opts.block_range_ms,
                opts.memory_snapshot,
            )?
        };
        if let Some((imp, tail_start, t)) = tail {
            let (n, refused) = append_imported(&head, &imp.series, tail_start)?;
            // Exemplars only where the ring keeps them; without the feature the files are kept,
            // as for anything else not carried over.
            let ex = if head.keeps_exemplars() {
                append_imported_exemplars(&head, &imp.exemplars)?
            } else {
                if !imp.exemplars.is_empty() {
                    tracing::warn!(
                        exemplars = imp.exemplars.len(),
                        "Prometheus's WAL holds exemplars, kept only with --enable-feature=exemplar-storage: not carried over, and its files are kept, unchanged, under prometheus-unread/"
                    );
                }
                ImportedExemplars::default()
            };
            // Durable on disk, not only in the kernel, before Prometheus's copy goes.
            head.sync_wal()?;
            // Refused samples (out of bounds, or older than what the head holds and not held
            // themselves) keep the files, to be safe; samples the head already holds (an import
            // cut short and run again) do not.
            let carried = refused == 0 && (head.keeps_exemplars() || imp.exemplars.is_empty());
            finish_prometheus_import(dir, &imp, carried)?;
            tracing::info!(
                samples = imp.samples,
                into_head = n,
                refused,
                exemplars = ex.kept,
                exemplars_out_of_order = ex.out_of_order,
                exemplars_of_series_in_blocks_only = ex.no_series,
                elapsed = ?t.elapsed(),
                "Prometheus head (WAL and head chunks) read and persisted (blocks, and the newest range in vigil's head and WAL)"
            );
        }
        Ok(Db {
            dir: dir.to_path_buf(),
            head: std::sync::Arc::new(head),
            blocks: RwLock::new(blocks),
            retention: RwLock::new((opts.retention_ms, opts.retention_bytes)),
            opts,
            maint: Mutex::new(()),
            _lock: lock,
            read_only: !writable,
            unreadable,
            unmergeable: Default::default(),
            compactions: CompactionStats::default(),
            cut_due_since: Mutex::new(None),
        })
    }

    /// Write the head as a snapshot for the next start (`memory-snapshot-on-shutdown`; see
    /// `head::snapshot`): at shutdown, once nothing appends. Nothing without the feature, in
    /// agent mode or read-only.
    pub fn write_head_snapshot(&self) -> std::io::Result<Option<crate::head::SnapshotWritten>> {
        if !self.opts.memory_snapshot || self.read_only {
            return Ok(None);
        }
        let _maint = self.maint.lock();
        self.head.write_snapshot()
    }

    /// Files found at open that vigil could not read (left as they were): (path, why).
    pub fn unreadable(&self) -> &[(String, String)] {
        &self.unreadable
    }

    /// Chunks of blocks read: (native histogram chunks of Prometheus's blocks, damaged chunks
    /// skipped, which a rewrite cannot carry).
    pub fn skipped_chunks(&self) -> (u64, u64) {
        self.blocks()
            .iter()
            .map(|b| b.skipped_chunks())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Write a block in the configured format.
    fn write_block(
        &self,
        parent: &Path,
        mint: i64,
        maxt: i64,
        series: Vec<Series>,
        compaction: Compaction,
    ) -> std::io::Result<crate::block::BlockMeta> {
        write_block_as(
            self.opts.block_format,
            parent,
            mint,
            maxt,
            series,
            compaction,
        )
    }

    /// Change retention (the config's `storage.tsdb.retention` on reload); applied at the next
    /// maintenance run.
    pub fn set_retention(&self, retention_ms: i64, retention_bytes: u64) {
        *self.retention.write() = (retention_ms, retention_bytes);
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// Write out late samples older than the head's start, cut head blocks, compact, apply
    /// retention. Safe to call at any time.
    pub fn maintain(&self) -> std::io::Result<()> {
        if self.read_only || self.head.is_wal_only() {
            return Ok(());
        }
        let _g = self.maint.lock();
        // A failed write of old samples (retried at the next pass) holds back nothing else.
        let flushed = self.flush_old();
        if let Err(e) = &flushed {
            tracing::error!(err = %e, "Writing out-of-order blocks failed; retried at the next pass");
        }
        let r = self
            .cut_head_blocks()
            .and_then(|()| self.compact())
            .and_then(|()| self.apply_retention())
            .and(flushed);
        if r.is_err() {
            self.compactions.failed.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Write the late samples older than the head's start (`head::old`) out as blocks of
    /// their block ranges, marked `from-out-of-order` as Prometheus marks its own: they may
    /// overlap blocks written before, which queries merge and compaction merges first. Each
    /// block is served as soon as it is written; the store stays queryable until all are.
    /// A write that fails is tried again whole at the next pass (a range then written twice
    /// holds equal samples, which compaction merges).
    fn flush_old(&self) -> std::io::Result<()> {
        // A store a failed write left first, then the live one.
        loop {
            let Some((store, leftover)) = self.head.begin_old_flush() else {
                return Ok(());
            };
            self.write_old(&store)?;
            self.head.end_old_flush();
            if !leftover {
                return Ok(());
            }
        }
    }

    /// [`Db::flush_old`]'s blocks of one store.
    fn write_old(&self, store: &Head) -> std::io::Result<()> {
        let r = self.opts.block_range_ms;
        let ranges: std::collections::BTreeSet<i64> = store
            .series_in_sorted(i64::MIN, i64::MAX)
            .flat_map(|s| {
                let hs: Vec<i64> = s.histograms.iter().map(|x| x.t).collect();
                s.samples.into_iter().map(|x| x.t).chain(hs)
            })
            .map(|t| t.div_euclid(r))
            .collect();
        for k in ranges {
            let mint = k.saturating_mul(r);
            let maxt = mint.saturating_add(r);
            self.write_level1(mint, maxt, store.series_in_sorted(mint, maxt).map(Ok), true)?;
        }
        Ok(())
    }

    /// Write `series` as a level-1 block of `[mint, maxt)` (`out_of_order`: marked
    /// `from-out-of-order`), counted as a compaction, and serve it.
    fn write_level1(
        &self,
        mint: i64,
        maxt: i64,
        series: impl IntoIterator<Item = std::io::Result<SeriesSamples>>,
        out_of_order: bool,
    ) -> std::io::Result<()> {
        let t = std::time::Instant::now();
        let written = write_block_sorted_as(
            self.opts.block_format,
            &self.dir,
            mint,
            maxt,
            series,
            Compaction {
                level: 1,
                sources: vec![],
                hints: hints(out_of_order),
            },
        );
        let took = t.elapsed();
        self.compactions.observe(took);
        let meta = written?;
        let b = Arc::new(Block::open(&self.dir.join(&meta.ulid))?);
        let what = if out_of_order {
            "Out-of-order block written"
        } else {
            "Head block written"
        };
        tracing::info!(ulid = %meta.ulid, mint, maxt, series = meta.stats.num_series, elapsed = ?took, "{what}");
        let mut blocks = self.blocks.write();
        blocks.push(b);
        sort_blocks(&mut blocks);
        Ok(())
    }

    /// Block writes so far (head cuts, out-of-order blocks and merges), their durations and
    /// failed maintenance.
    pub fn compactions(&self) -> CompactionSnapshot {
        self.compactions.snapshot()
    }

    /// Agent mode: drop WAL segments before `keep_from` and series idle since
    /// `inactive_before` (see [`Head::truncate_agent`]).
    pub fn truncate_agent(
        &self,
        keep_from: u64,
        inactive_before: i64,
    ) -> std::io::Result<Option<u64>> {
        let _g = self.maint.lock();
        self.head.truncate_agent(keep_from, inactive_before)
    }

    /// The WAL's segments with their last-modified times (oldest first): what the agent's
    /// retention looks at.
    pub fn wal_segments(&self) -> std::io::Result<Vec<(u64, std::time::SystemTime)>> {
        let wal_dir = self.dir.join("wal");
        let mut out = Vec::new();
        for n in crate::wal::segments(&wal_dir)? {
            let m = std::fs::metadata(crate::wal::segment_path(&wal_dir, n))?.modified()?;
            out.push((n, m));
        }
        Ok(out)
    }

    /// While the head spans more than 1.5 block ranges, persist its oldest range.
    fn cut_head_blocks(&self) -> std::io::Result<()> {
        let r = self.opts.block_range_ms;
        // As Prometheus's delayed compaction: the delay counts from the first pass that finds
        // a cut due, and starts again once the cut is done or no cut is due (a cut that failed
        // is retried at the next pass, not delayed again).
        if !self.opts.head_cut_delay.is_zero() {
            let due = self
                .head
                .time_range()
                .is_some_and(|(lo, hi)| cut_due(lo, hi, r, wall_ms()));
            let mut since = self.cut_due_since.lock();
            if !due {
                *since = None;
                return Ok(());
            }
            if since.get_or_insert_with(std::time::Instant::now).elapsed()
                < self.opts.head_cut_delay
            {
                return Ok(());
            }
        }
        while let Some((lo, hi)) = self.head.time_range() {
            if !cut_due(lo, hi, r, wall_ms()) {
                break;
            }
            // In i128: the range holding a sample near i64::MIN starts below it.
            let start = i128::from(lo).div_euclid(i128::from(r)) * i128::from(r);
            let mint = i64::try_from(start).unwrap_or(i64::MIN);
            let maxt = i64::try_from(start + i128::from(r)).unwrap_or(i64::MAX);
            // From here on, appends below `maxt` are out of bounds (or old samples, written
            // out as blocks of their own): nothing can land in the head's range between
            // reading it and truncating it.
            self.head.raise_min_valid(maxt);
            let mut series = self.head.series_in_sorted(mint, maxt).map(Ok).peekable();
            if series.peek().is_some() {
                self.write_level1(mint, maxt, series, false)?;
            }
            self.head.truncate(maxt)?;
        }
        // Cut: the next due cut waits a delay of its own (a failed one returned above and is
        // retried at the next pass without one).
        *self.cut_due_since.lock() = None;
        Ok(())
    }

    /// Merge each run of overlapping blocks into one first (see [`Db::overlapping`]), then
    /// groups of blocks that together fill an aligned range of 3x, 9x, ... the block range (up
    /// to `max_block_ms`).
    fn compact(&self) -> std::io::Result<()> {
        let uploaded = self
            .opts
            .delay_compact_file
            .as_deref()
            .and_then(uploaded_blocks);
        if self.opts.overlapping_compaction {
            while let Some(group) = self.overlapping(uploaded.as_ref()) {
                let mint = group.iter().map(|b| b.meta.min_time).min().unwrap_or(0);
                let maxt = group.iter().map(|b| b.meta.max_time).max().unwrap_or(0);
                // Each pass merges the run, or (damage found) marks a block unmergeable, which
                // the next pass leaves out.
                self.merge(mint, maxt, &group)?;
            }
        }
        let mut range = self.opts.block_range_ms * 3;
        while range <= self.opts.max_block_ms {
            loop {
                let blocks = self.mergeable(uploaded.as_ref());
                // In-order blocks only: a merged block must not end past the in-order data
                // (out-of-order blocks may reach beyond it).
                let newest = in_order_end(&blocks);
                let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
                for b in &blocks {
                    // In i128: a block from before the time bound (an older WAL, another
                    // tool's block) may start near i64::MIN; one whose aligned range does not
                    // fit in i64 is not merged.
                    let (lo, hi, r) = (
                        i128::from(b.meta.min_time),
                        i128::from(b.meta.max_time),
                        i128::from(range),
                    );
                    let start = lo.div_euclid(r) * r;
                    if hi <= start + r
                        && hi - lo < r
                        && let (Ok(s), Ok(_)) = (i64::try_from(start), i64::try_from(start + r))
                    {
                        groups.entry(s).or_default().push(b.clone());
                    }
                }
                // Only ranges that are complete (newer data exists beyond them).
                let Some((start, group)) = groups
                    .into_iter()
                    .find(|(s, g)| g.len() > 1 && s + range <= newest)
                else {
                    break;
                };
                self.merge(start, start + range, &group)?;
            }
            range *= 3;
        }
        Ok(())
    }

    /// The first run of blocks whose time ranges overlap, as Prometheus's planner finds it
    /// (blocks by start time; a block starting before the run's end so far joins it), of the
    /// blocks a merge may take (uploaded, when a delay file asks, and readable in full).
    fn overlapping(
        &self,
        uploaded: Option<&std::collections::HashSet<String>>,
    ) -> Option<Vec<Arc<Block>>> {
        let mut blocks = self.mergeable(uploaded);
        // As the level pass: nothing past the in-order data (an out-of-order block may reach
        // beyond it, and a merge without its mark would move the head's start past samples
        // only the WAL holds).
        let newest = in_order_end(&blocks);
        blocks.retain(|b| !b.meta.compaction.out_of_order() || b.meta.max_time <= newest);
        sort_blocks(&mut blocks);
        let mut run: Vec<Arc<Block>> = Vec::new();
        let mut end = i64::MIN;
        for b in blocks {
            if run.is_empty() || b.meta.min_time >= end {
                if run.len() > 1 {
                    break;
                }
                run.clear();
                end = b.meta.max_time;
                run.push(b);
            } else {
                end = end.max(b.meta.max_time);
                run.push(b);
            }
        }
        (run.len() > 1).then_some(run)
    }

    /// The blocks a merge may take: readable in full, and, when a delay file lists the
    /// uploaded ones, written before the first level-1 block not uploaded yet (ULIDs sort by
    /// time), as Prometheus plans, so merges never leave a gap behind them.
    fn mergeable(&self, uploaded: Option<&std::collections::HashSet<String>>) -> Vec<Arc<Block>> {
        let mut blocks = self.blocks();
        if let Some(up) = uploaded
            && let Some(first) = blocks
                .iter()
                .filter(|b| b.meta.compaction.level <= 1 && !up.contains(&b.meta.ulid))
                .map(|b| b.meta.ulid.clone())
                .min()
        {
            blocks.retain(|b| b.meta.ulid < first);
        }
        let unmergeable = self.unmergeable.lock();
        blocks.retain(|b| !unmergeable.contains(&b.meta.ulid));
        blocks
    }

    /// Merge `group` into one block of `[mint, maxt)`. The blocks are read series by series in
    /// label order and the new block written as they come, so a merge holds one series'
    /// samples at a time (plus every series' labels), not the blocks' contents: merging a
    /// day of a large head took memory in proportion to its samples before.
    fn merge(&self, mint: i64, maxt: i64, group: &[Arc<Block>]) -> std::io::Result<()> {
        // Served as they are, never rewritten: a merge would drop what vigil skips.
        let refuse = |b: &Arc<Block>, why: String| {
            tracing::warn!(%why, "Not compacting a block vigil cannot read in full");
            self.unmergeable.lock().insert(b.meta.ulid.clone());
        };
        // Damaged chunks found while merging stop it (counted before and after).
        let skipped_before: Vec<u64> = group.iter().map(|b| b.skipped_chunks().1).collect();
        let level = group
            .iter()
            .map(|b| b.meta.compaction.level)
            .max()
            .unwrap_or(1)
            + 1;
        let sources = group
            .iter()
            .flat_map(|b| {
                if b.meta.compaction.sources.is_empty() {
                    vec![b.meta.ulid.clone()]
                } else {
                    b.meta.compaction.sources.clone()
                }
            })
            .collect();
        let refused = std::cell::Cell::new(None);
        let t = std::time::Instant::now();
        let series = MergeSeries::new(
            group
                .iter()
                .map(|b| Box::new(b.read_all()) as Box<dyn Iterator<Item = Series> + '_>)
                .collect(),
            Box::new(|i| group[i].skipped_chunks().1 == skipped_before[i]),
            &refused,
        );
        let written = write_block_sorted_as(
            self.opts.block_format,
            &self.dir,
            mint,
            maxt,
            series,
            Compaction {
                level,
                sources,
                // Out-of-order blocks merged among themselves stay marked: they do not bound
                // the head.
                hints: hints(group.iter().all(|b| b.meta.compaction.out_of_order())),
            },
        );
        let took = t.elapsed();
        self.compactions.observe(took);
        // Damage found while reading, or a block whose index does not list its series in
        // label order (not one vigil or Prometheus wrote): the write stopped before its
        // rename, and that block is kept as it is rather than merged wrongly.
        if let Some((i, why)) = refused.get() {
            refuse(&group[i], format!("block {}: {why}", group[i].meta.ulid));
            return Ok(());
        }
        let meta = written?;
        let nb = Arc::new(Block::open(&self.dir.join(&meta.ulid))?);
        tracing::info!(ulid = %meta.ulid, mint, maxt, merged = group.len(), elapsed = ?took, "Compacted blocks");
        {
            let mut blocks = self.blocks.write();
            blocks.retain(|b| !group.iter().any(|g| g.meta.ulid == b.meta.ulid));
            blocks.push(nb);
            sort_blocks(&mut blocks);
        }
        for b in group {
            std::fs::remove_dir_all(&b.dir)?;
        }
        Ok(())
    }

    /// Delete whole blocks past the retention time or beyond the retention size.
    fn apply_retention(&self) -> std::io::Result<()> {
        let blocks = self.blocks();
        // Counted back from the newest block's end, as Prometheus counts it (not from the
        // head's newest sample, which one sample from the future would move: every block
        // would then be past retention), and never from later than now, so a block reaching
        // into the future (written from such samples) does not doom the others either.
        let newest = blocks
            .iter()
            .map(|b| b.meta.max_time)
            .max()
            .unwrap_or(i64::MIN)
            .min(wall_ms());
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        let (retention_ms, retention_bytes) = *self.retention.read();
        if retention_ms > 0 {
            doomed.extend(
                blocks
                    .iter()
                    .filter(|b| b.meta.max_time <= newest - retention_ms)
                    .cloned(),
            );
        }
        if retention_bytes > 0 {
            let mut total: u64 = blocks.iter().map(|b| b.size_bytes).sum::<u64>()
                + self.wal_size()
                + self.head_chunks_size();
            for b in &blocks {
                if total <= retention_bytes {
                    break;
                }
                total = total.saturating_sub(b.size_bytes);
                if !doomed.iter().any(|d| d.meta.ulid == b.meta.ulid) {
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.blocks
            .write()
            .retain(|b| !doomed.iter().any(|d| d.meta.ulid == b.meta.ulid));
        for b in doomed {
            tracing::info!(ulid = %b.meta.ulid, "Deleting block past retention");
            std::fs::remove_dir_all(&b.dir)?;
        }
        Ok(())
    }

    /// Delete the samples in `[mint, maxt]` of every series matching any of `sets`: logged in
    /// the head's WAL, and blocks holding such samples are rewritten without them at once (so
    /// `clean_tombstones` has nothing left to do). Returns the number of series touched.
    pub fn delete_series(
        &self,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> std::io::Result<usize> {
        let _g = self.maint.lock();
        let mut touched = self.head.delete(sets, mint, maxt)?;
        // Old samples (`head::old`) are deleted from their blocks: written out first, and a
        // whole checkpoint drops the WAL's records of them (which a replay would bring back,
        // series the head no longer has getting no tombstone) before the blocks are rewritten.
        if self.head.old_in_wal() || self.head.holds_old() {
            self.flush_old()?;
            self.head.checkpoint_all()?;
        }
        for b in self.blocks() {
            if b.meta.max_time <= mint || b.meta.min_time > maxt {
                continue;
            }
            let hit: std::collections::BTreeSet<Labels> = sets
                .iter()
                .flat_map(|ms| b.select(ms, mint, maxt))
                .map(|s| s.labels)
                .collect();
            if hit.is_empty() {
                continue;
            }
            touched += hit.len();
            let series: Vec<Series> = b
                .all_series_strict()
                .map_err(|why| {
                    std::io::Error::other(format!(
                        "cannot delete from {why}: rewriting it would lose what vigil cannot read"
                    ))
                })?
                .into_iter()
                .map(|mut s| {
                    if hit.contains(&s.labels) {
                        s.samples.retain(|x| x.t < mint || x.t > maxt);
                        s.histograms.retain(|x| x.t < mint || x.t > maxt);
                    }
                    s
                })
                .collect();
            let compaction = Compaction {
                level: b.meta.compaction.level,
                sources: b.meta.compaction.sources.clone(),
                hints: b.meta.compaction.hints.clone(),
            };
            let meta = self.write_block(
                &self.dir,
                b.meta.min_time,
                b.meta.max_time,
                series,
                compaction,
            )?;
            let nb = Arc::new(Block::open(&self.dir.join(&meta.ulid))?);
            {
                let mut blocks = self.blocks.write();
                blocks.retain(|x| x.meta.ulid != b.meta.ulid);
                blocks.push(nb);
                sort_blocks(&mut blocks);
            }
            std::fs::remove_dir_all(&b.dir)?;
        }
        Ok(touched)
    }

    /// Copy the database into `<dir>/snapshots/<name>`: blocks hard-linked, plus (unless
    /// `skip_head`) the head written as a block. Returns the snapshot's name.
    pub fn snapshot(&self, skip_head: bool) -> std::io::Result<String> {
        let _g = self.maint.lock();
        // Late samples older than the head's start are in blocks before the copy.
        self.flush_old()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "{}-{}",
            format_snapshot_time(now.as_secs() as i64),
            &crate::block::new_ulid()[10..26].to_ascii_lowercase()
        );
        let dest = self.dir.join("snapshots").join(&name);
        std::fs::create_dir_all(&dest)?;
        for b in self.blocks() {
            link_tree(&b.dir, &dest.join(&b.meta.ulid))?;
        }
        if !skip_head && let Some((lo, hi)) = self.head.time_range() {
            let series = self.head.series_in_sorted(lo, hi + 1).map(Ok);
            write_block_sorted_as(
                self.opts.block_format,
                &dest,
                lo,
                hi + 1,
                series,
                Compaction {
                    level: 1,
                    sources: vec![],
                    hints: vec![],
                },
            )?;
        }
        Ok(name)
    }

    /// Disk space used by the head's chunk files (allocated blocks: the files are sparse), as
    /// Prometheus counts its `chunks_head/` in size-based retention.
    pub fn head_chunks_size(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(self.dir.join(crate::head::CHUNK_FILES_DIR))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.blocks() * 512)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Bytes used by the WAL directory.
    pub fn wal_size(&self) -> u64 {
        fn du(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| match e.file_type() {
                            Ok(t) if t.is_dir() => du(&e.path()),
                            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        du(&self.dir.join("wal"))
    }
}

/// A query over the blocks, the head's stores of late samples older than its start and the
/// head. Each answer reads the head first, then also the blocks served since the querier was
/// made (`DbQuerier::later_blocks`): a head cut serves its block before it truncates the
/// head, so a range moving from the head to a block meanwhile is read twice (the merge keeps
/// one copy), never not at all. (Reading only the blocks of when the querier was made lost
/// the range of a cut made before its first read.)
struct DbQuerier<'a> {
    db: &'a Db,
    head: Box<dyn Querier + 'a>,
    blocks: Vec<Arc<Block>>,
    /// The head's stores of late samples older than its start (`head::old`), taken before the
    /// blocks (see `Db::querier`); their series go after the blocks' in the merge.
    old: Vec<Arc<Head>>,
    mint: i64,
    maxt: i64,
}

impl DbQuerier<'_> {
    /// Blocks in the query's range served since the querier was made (a head cut's, a
    /// merge's), to be read after the head (usually none).
    fn later_blocks(&self) -> Vec<Arc<Block>> {
        self.db
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta.max_time > self.mint && b.meta.min_time <= self.maxt)
            .filter(|b| !self.blocks.iter().any(|x| x.meta.ulid == b.meta.ulid))
            .cloned()
            .collect()
    }

    /// The blocks of when the querier was made, then those served since.
    fn all_blocks(&self) -> Vec<Arc<Block>> {
        self.blocks
            .iter()
            .cloned()
            .chain(self.later_blocks())
            .collect()
    }

    /// Each old samples store's answer to `f` (they are small: read whole).
    fn each_old<T>(
        &self,
        f: impl Fn(&dyn Querier) -> Result<T, StorageError>,
    ) -> Result<Vec<T>, StorageError> {
        self.old
            .iter()
            .filter(|h| {
                h.time_range()
                    .is_some_and(|(lo, hi)| hi >= self.mint && lo <= self.maxt)
            })
            .map(|h| f(&*h.querier(self.mint, self.maxt)?))
            .collect()
    }
}

/// A source's next series in the merge heap, ordered by (labels, source index) reversed so
/// the max-heap pops the smallest first.
struct Next {
    labels: Labels,
    src: usize,
    samples: Vec<Sample>,
    histograms: Vec<vigil_model::HistogramSample>,
}

impl PartialEq for Next {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src && self.labels == o.labels
    }
}
impl Eq for Next {}
impl PartialOrd for Next {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Next {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (&o.labels, o.src).cmp(&(&self.labels, self.src))
    }
}

/// A k-way merge of label-sorted series lists; equal label sets are joined, their samples in
/// source (time) order.
struct MergedSeries<'a> {
    sources: Vec<Box<dyn Iterator<Item = Series> + Send + 'a>>,
    heap: std::collections::BinaryHeap<Next>,
}

impl<'a> MergedSeries<'a> {
    fn new(sources: Vec<Box<dyn Iterator<Item = Series> + Send + 'a>>) -> Self {
        let mut m = MergedSeries {
            heap: std::collections::BinaryHeap::with_capacity(sources.len()),
            sources,
        };
        for i in 0..m.sources.len() {
            m.refill(i);
        }
        m
    }

    fn refill(&mut self, src: usize) {
        if let Some(s) = self.sources[src].next() {
            self.heap.push(Next {
                labels: s.labels,
                src,
                samples: s.samples,
                histograms: s.histograms,
            });
        }
    }
}

impl Iterator for MergedSeries<'_> {
    type Item = Series;
    fn next(&mut self) -> Option<Series> {
        let Next {
            labels,
            src,
            mut samples,
            histograms,
        } = self.heap.pop()?;
        self.refill(src);
        let mut parts = vec![histograms];
        let mut more_samples = Vec::new();
        while self.heap.peek().is_some_and(|n| n.labels == labels) {
            let more = self.heap.pop().expect("peeked");
            more_samples.push(more.samples);
            parts.push(more.histograms);
            self.refill(more.src);
        }
        // Grown once to the whole series (a series spanning blocks was copied at each
        // doubling).
        samples.reserve_exact(more_samples.iter().map(Vec::len).sum());
        for more in more_samples {
            samples.extend(more);
        }
        // Blocks may overlap (backfill, out-of-order compaction): restore order if needed.
        vigil_storage::time_order(&mut samples);
        let histograms = vigil_storage::merge_histograms(parts);
        Some(Series {
            labels,
            samples,
            histograms,
        })
    }
}

impl Querier for DbQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>, StorageError> {
        // Each source (blocks by start then ULID, then the stores of old samples, then the
        // head) yields series sorted by labels;
        // they are merged lazily, a series' pieces appended in time order. The head is listed
        // first (see `DbQuerier`).
        let head: Vec<Series> = self.head.select(matchers)?.collect();
        let later: Vec<Vec<Series>> = self
            .later_blocks()
            .iter()
            .map(|b| b.select(matchers, self.mint, self.maxt))
            .collect();
        let per_block: Vec<Vec<Series>> = if self.blocks.len() < 2 {
            self.blocks
                .iter()
                .map(|b| b.select(matchers, self.mint, self.maxt))
                .collect()
        } else {
            // Blocks decode independently: spread them over the cores, keeping their order.
            let threads = std::thread::available_parallelism()
                .map_or(1, |p| p.get().min(8))
                .min(self.blocks.len());
            let chunk = self.blocks.len().div_ceil(threads);
            std::thread::scope(|sc| {
                let workers: Vec<_> = self
                    .blocks
                    .chunks(chunk)
                    .map(|bs| {
                        sc.spawn(move || {
                            bs.iter()
                                .map(|b| b.select(matchers, self.mint, self.maxt))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().expect("block reader panicked"))
                    .collect()
            })
        };
        let mut sources: Vec<Box<dyn Iterator<Item = Series> + Send + '_>> = per_block
            .into_iter()
            .chain(later)
            .filter(|v| !v.is_empty())
            .map(|v| Box::new(v.into_iter()) as _)
            .collect();
        for old in self.each_old(|q| Ok(q.select(matchers)?.collect::<Vec<Series>>()))? {
            if !old.is_empty() {
                sources.push(Box::new(old.into_iter()));
            }
        }
        if !head.is_empty() {
            sources.push(Box::new(head.into_iter()));
        }
        if sources.len() == 1 {
            return Ok(sources.pop().expect("one source"));
        }
        Ok(Box::new(MergedSeries::new(sources)))
    }

    fn select_shard(
        &self,
        matchers: &[Matcher],
        shard: usize,
        of: usize,
    ) -> Result<SeriesSet<'_>, StorageError> {
        // Lazy: each block decodes a series when the merge reaches it, and the head a few
        // series at a time, so a reader streaming the selection holds a few series per source
        // (the small stores of old samples, and the rare block served since the querier was
        // made, are read whole). The head's series are listed first (see `DbQuerier`; a head
        // truncation decodes what a listed selection has not read yet).
        let head = self.head.select_shard(matchers, shard, of)?;
        let mut sources: Vec<Box<dyn Iterator<Item = Series> + Send + '_>> = self
            .blocks
            .iter()
            .map(|b| Box::new(b.select_iter(matchers, self.mint, self.maxt, shard, of)) as _)
            .collect();
        for b in self.later_blocks() {
            let v: Vec<Series> = b
                .select_iter(matchers, self.mint, self.maxt, shard, of)
                .collect();
            sources.push(Box::new(v.into_iter()));
        }
        for old in self.each_old(|q| {
            Ok(q.select_shard(matchers, shard, of)?
                .collect::<Vec<Series>>())
        })? {
            sources.push(Box::new(old.into_iter()));
        }
        sources.push(head);
        Ok(Box::new(MergedSeries::new(sources)))
    }

    fn shards(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
    }

    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        let mut set: std::collections::BTreeSet<String> =
            self.head.label_names(matchers)?.into_iter().collect();
        let blocks = self.all_blocks();
        set.extend(
            self.each_old(|q| q.label_names(matchers))?
                .into_iter()
                .flatten(),
        );
        for b in &blocks {
            if matchers.is_empty() {
                set.extend(b.label_names());
            } else {
                set.extend(
                    b.select_labels(matchers, self.mint, self.maxt)
                        .into_iter()
                        .flat_map(|l| l.into_vec().into_iter().map(|l| l.name)),
                );
            }
        }
        Ok(set.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, StorageError> {
        // Gathered, then sorted and deduplicated once (the head's come sorted and unique),
        // rather than a set's insert per value.
        let mut all = self.head.label_values(name, matchers)?;
        let blocks = self.all_blocks();
        let old = self.each_old(|q| q.label_values(name, matchers))?;
        let merge = !blocks.is_empty() || !old.is_empty();
        all.extend(old.into_iter().flatten());
        for b in &blocks {
            if matchers.is_empty() {
                all.extend(b.label_values(name));
            } else {
                all.extend(
                    b.select_labels(matchers, self.mint, self.maxt)
                        .iter()
                        .filter_map(|l| l.get(name).map(str::to_string)),
                );
            }
        }
        if merge {
            all.sort_unstable();
            all.dedup();
        }
        Ok(all)
    }
}

impl Storage for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.head.appender()
    }

    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        // Before the blocks: a flush finishing in between then shows its samples twice (the
        // merge keeps one), never not at all.
        let old = self.head.old_stores();
        let blocks = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta.max_time > mint && b.meta.min_time <= maxt)
            .cloned()
            .collect();
        Ok(Box::new(DbQuerier {
            db: self,
            head: self.head.querier(mint, maxt)?,
            blocks,
            old,
            mint,
            maxt,
        }))
    }

    fn exemplars(
        &self,
        mint: i64,
        maxt: i64,
        sets: &[Vec<Matcher>],
    ) -> Result<Vec<SeriesExemplars>, StorageError> {
        self.head.exemplars(mint, maxt, sets)
    }
}

/// `YYYYMMDDTHHMMSSZ`, as Prometheus names snapshots.
fn format_snapshot_time(secs: i64) -> String {
    let (y, m, d) = vigil_model::time::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The WAL as a [`vigil_storage::Journal`]: the latest checkpoint's series, then the segments
/// after it, read by a [`wal::Follower`] that never writes.
impl vigil_storage::Journal for Db {
    fn follow(&self) -> Result<Box<dyn vigil_storage::JournalReader>, StorageError> {
        crate::journal::follow_sharing(&self.dir.join("wal"), std::sync::Arc::downgrade(&self.head))
    }
}

/// The wall clock in Unix milliseconds.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether a head holding samples from `lo` to `hi` is due a cut of its oldest range (of
/// `range` ms): when it spans more than 1.5 ranges, as Prometheus decides. The span counts
/// to `hi` no later than half a range past `now`: a sample far in the future (remote write
/// takes any time) would otherwise have every pass cut the range holding the present, and
/// each cut refuses samples older than its end. So a cut range always ends before `now`;
/// a future sample waits in the head until the clock nears it. Computed in i128: samples at
/// the ends of i64 would overflow the span and stop cuts for good.
fn cut_due(lo: i64, hi: i64, range: i64, now: i64) -> bool {
    let hi = i128::from(hi).min(i128::from(now) + i128::from(range) / 2);
    hi - i128::from(lo) > i128::from(range) * 3 / 2
}

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod tests;
