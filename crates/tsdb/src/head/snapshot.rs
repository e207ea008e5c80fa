//! The head written whole at shutdown (`--enable-feature=memory-snapshot-on-shutdown`), so the
//! next start loads its chunks instead of replaying every sample from the WAL.
//!
//! A snapshot only saves time; it never replaces the WAL. At shutdown the WAL segment is cut
//! and synced (under the WAL lock, as a checkpoint cuts it) and the head is written to
//! `<data>/head-snapshot.<last segment>/`: segments in the WAL's own framing (checksummed
//! records) holding the series (and their metadata, with `metadata-wal-records`), each
//! series' chunks as they are in memory (closed chunks' bytes, the open float chunk's
//! appender state), its late samples, the exemplar ring and the old samples held
//! (`head::old`), then `meta.json`. Nothing is deleted or truncated because a snapshot exists. The next
//! start loads it and replays only the segments after the one it covers; it is used only if
//! it still describes the WAL ([`usable`]: the same block range, no checkpoint newer than it,
//! the WAL's newest segment the one its cut began, the covered segment's length unchanged,
//! its own segments all there) and reads back whole ([`install`]'s checks, and every record
//! it was written with); otherwise the WAL is replayed. Once a server's writable open has
//! replayed (or with the feature off) it is deleted: it is vigil's own file, and the WAL
//! moves past it from then on.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use vigil_model::{Labels, Sample};

use super::{
    Applied, ChunkRange, Chunks, ClosedChunk, ClosedHistChunk, Extra, Head, HistChunks, Index,
    MemSeries,
};
use crate::chunk::{SAMPLES_PER_CHUNK, XorChunk, XorIter};
use crate::encoding::{Dec, put_uvarint, put_varint};
use crate::prometheus::histogram_chunk::{self as hchunk, HistogramChunk};
use crate::wal::{self, Record};

/// A snapshot's directory is this followed by the last WAL segment it covers (8 digits).
pub(crate) const PREFIX: &str = "head-snapshot.";
const META: &str = "meta.json";
/// The layout of the records below; another is not read (the WAL is replayed instead).
const VERSION: u32 = 1;

/// Flags of a series in a chunks record.
const HAS_LAST: u8 = 1;
/// The series holds chunks (float ones, perhaps empty, and what hangs off them).
const CHUNKS: u8 = 2;
const HISTOGRAMS: u8 = 4;

/// A chunks record is framed once it holds this much.
const RECORD_BYTES: usize = 1 << 20;

/// `meta.json`: what the snapshot covers and what it was written with.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Meta {
    pub version: u32,
    /// The last WAL segment whose records the snapshot holds; replay goes on after it.
    pub wal_last_segment: u64,
    /// The head's next series ref (refs are never handed out twice while segments name them).
    pub next_ref: u64,
    /// The block range the chunks were cut at (`--storage.tsdb.min-block-duration`).
    pub chunk_range_ms: i64,
    pub series: u64,
    /// The snapshot's own segments (`00000000` on) and the records in them: a load that
    /// finds fewer (a segment lost, one cut short at a record's end) does not use it.
    pub segments: u64,
    pub records: u64,
    /// WAL segment `wal_last_segment`'s length at the cut: a WAL replaced since is told apart.
    pub wal_last_segment_bytes: u64,
    /// The head's oldest sample time when written (deleted samples included, as replay
    /// counts them).
    pub min_time: i64,
}

/// What a snapshot write did.
#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
    pub series: u64,
    pub bytes: u64,
}

/// A snapshot found at open, and whether it can be used with the WAL as it is.
pub(crate) struct Found {
    pub dir: PathBuf,
    pub meta: Meta,
}

/// The newest finished snapshot in `data` that this build reads, if any.
pub(crate) fn find(data: &Path) -> std::io::Result<Option<Found>> {
    let entries = match std::fs::read_dir(data) {
        Ok(e) => e,
        Err(err) => {
            tracing::warn!(dir = %data.display(), %err, "Cannot list the data directory for a head snapshot: the WAL is replayed");
            return Ok(None);
        }
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_prefix(PREFIX)?
                .parse::<u64>()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort_by_key(|x| std::cmp::Reverse(x.0));
    // The newest that reads; one that does not (another's, damaged, a newer build's) is
    // passed over, not a reason to skip the others.
    for (n, dir) in found {
        match std::fs::read(dir.join(META))
            .ok()
            .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
        {
            Some(meta) if meta.version == VERSION && meta.wal_last_segment == n => {
                return Ok(Some(Found { dir, meta }));
            }
            _ => {
                tracing::warn!(dir = %dir.display(), "Head snapshot not readable by this build: passed over")
            }
        }
    }
    Ok(None)
}

/// Whether `found` still describes the WAL in `wal_dir`: written at this block range, no
/// checkpoint since (one would have dropped segments it covers the later part of), and the
/// segment its cut began still there (segments are numbered on, never reused).
pub(crate) fn usable(found: &Found, wal_dir: &Path, range: ChunkRange) -> Result<(), String> {
    let m = &found.meta;
    if m.chunk_range_ms != range.0 {
        return Err(format!(
            "written with a block range of {}ms, not {}ms",
            m.chunk_range_ms, range.0
        ));
    }
    let checkpoint = wal::latest_checkpoint(wal_dir)
        .map_err(|e| e.to_string())?
        .0;
    if let Some(k) = checkpoint
        && k > m.wal_last_segment
    {
        return Err(format!(
            "the WAL was checkpointed through segment {k} since it was written"
        ));
    }
    // The cut began segment N + 1, and every writable open since would have begun another:
    // anything else means a run (of a build without the feature, or one that could not remove
    // the snapshot) or a hand went on from it.
    let newest = wal::segments(wal_dir)
        .map_err(|e| e.to_string())?
        .last()
        .copied();
    if newest != Some(m.wal_last_segment + 1) {
        return Err(format!(
            "the WAL's newest segment is {}, not {} (begun when it was written)",
            newest.map_or("none".to_string(), |n| n.to_string()),
            m.wal_last_segment + 1
        ));
    }
    let len = std::fs::metadata(wal::segment_path(wal_dir, m.wal_last_segment)).map(|x| x.len());
    if len.as_ref().ok() != Some(&m.wal_last_segment_bytes) {
        return Err(format!(
            "WAL segment {} is not as it was when it was written",
            m.wal_last_segment
        ));
    }
    let own = wal::segments(&found.dir).map_err(|e| e.to_string())?;
    // Compared without building the expected list: the count comes from a file, and a huge
    // one must be a stale snapshot, not an allocation that fails.
    let consecutive = own.iter().enumerate().all(|(i, &s)| s == i as u64);
    if own.len() as u64 != m.segments || !consecutive {
        return Err(format!(
            "it holds segments {own:?}, not the {} it was written with",
            m.segments
        ));
    }
    Ok(())
}

/// Delete every snapshot directory of vigil's in `data` (finished or left half-written):
/// recognised by name and by holding nothing but a segment in vigil's format and its meta.
pub(crate) fn remove_all(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_str().is_some_and(|s| s.starts_with(PREFIX)) {
            continue;
        }
        let path = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) || !is_ours(&path) {
            tracing::warn!(dir = %path.display(), "Not removing a directory named like a head snapshot that holds other files");
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(dir = %path.display(), "Head snapshot removed"),
            Err(err) => {
                tracing::error!(dir = %path.display(), %err, "Cannot remove a head snapshot")
            }
        }
    }
}

/// Whether `dir` is a snapshot vigil wrote (finished, or left half-written by a crash): named
/// `head-snapshot.<digits>` (`.tmp`), holding nothing but segments in vigil's format and a
/// `meta.json` that reads as one.
fn is_ours(dir: &Path) -> bool {
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PREFIX))
        .map(|n| n.strip_suffix(".tmp").unwrap_or(n))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    named
        && entries.flatten().all(|e| {
            let name = e.file_name();
            match name.to_str() {
                // Any content: a damaged or newer build's meta must not keep the directory
                // (the head's size on disk) forever; the name and segments say whose it is.
                Some(META) => true,
                Some(n) if n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()) => matches!(
                    wal::classify_file(&e.path()),
                    Ok(wal::SegmentKind::Vigil | wal::SegmentKind::Empty)
                ),
                _ => false,
            }
        })
}

/// The snapshot's segments: records are never split, and a segment is cut after this many
/// bytes, so loading reads one at a time instead of the whole head at once.
#[cfg(not(test))]
const SEGMENT_BYTES: u64 = 64 << 20;
/// Small in tests, so every test's snapshot spans several segments.
#[cfg(test)]
const SEGMENT_BYTES: u64 = 2 << 10;

struct Segments {
    dir: PathBuf,
    version: u32,
    n: u64,
    out: std::io::BufWriter<std::fs::File>,
    size: u64,
    total: u64,
    records: u64,
}

impl Segments {
    fn create(dir: &Path, version: u32) -> std::io::Result<Segments> {
        let f = wal::create_segment(dir, 0, version)?;
        Ok(Segments {
            dir: dir.to_path_buf(),
            version,
            n: 0,
            out: std::io::BufWriter::with_capacity(1 << 20, f),
            size: 0,
            total: 0,
            records: 0,
        })
    }

    fn write(&mut self, framed: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + framed.len() as u64 > SEGMENT_BYTES {
            self.n += 1;
            let next = wal::create_segment(&self.dir, self.n, self.version)?;
            let full = std::mem::replace(
                &mut self.out,
                std::io::BufWriter::with_capacity(1 << 20, next),
            );
            full.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            self.size = 0;
        }
        self.out.write_all(framed)?;
        // `framed` may hold several records (a series batch is split into a few).
        let mut off = 0;
        while let Some(h) = framed.get(off..off + 4) {
            off += 8 + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            self.records += 1;
        }
        self.size += framed.len() as u64;
        self.total += framed.len() as u64;
        Ok(())
    }

    /// Synced; the bytes of records written, the segments and the records.
    fn finish(self) -> std::io::Result<(u64, u64, u64)> {
        self.out
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok((self.total, self.n + 1, self.records))
    }
}

impl Head {
    /// Write the head as a snapshot (see the module docs) and delete older ones. Meant for
    /// shutdown, once appends have stopped; an append racing it lands in the segment after
    /// the cut, which the next start replays. Nothing for an agent's head or one without a
    /// directory.
    pub fn write_snapshot(&self) -> std::io::Result<Option<Written>> {
        let Some(data) = self.dir.clone() else {
            return Ok(None);
        };
        if self.wal_only {
            return Ok(None);
        }
        // No checkpoint or deletion in between: both rewrite what the dump reads.
        let _held = self.checkpointing.lock();
        let last = {
            let mut wal = self.wal.lock();
            let Some(w) = wal.as_mut() else {
                return Ok(None);
            };
            let last = w.current_segment();
            w.cut()?;
            // Segment N durable before a snapshot that says it covers it, and N + 1 there.
            w.sync()?;
            last
        };
        let wal_dir = data.join("wal");
        std::fs::File::open(&wal_dir)?.sync_all()?;
        let last_bytes = std::fs::metadata(wal::segment_path(&wal_dir, last))?.len();
        let tmp = data.join(format!("{PREFIX}{last:08}.tmp"));
        if tmp.exists() {
            if !is_ours(&tmp) {
                return Err(std::io::Error::other(format!(
                    "{} holds files vigil did not write: not writing a head snapshot there",
                    tmp.display()
                )));
            }
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        match self.dump(&data, &tmp, last, last_bytes) {
            Ok(w) => Ok(Some(w)),
            Err(e) => {
                // Nothing half-written is left to take the disk's space until the next start.
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    fn dump(
        &self,
        data: &Path,
        tmp: &Path,
        last: u64,
        last_bytes: u64,
    ) -> std::io::Result<Written> {
        let mut version = self.checkpoint_opts().segment_version();
        if self.holds_old() {
            version = version.max(self.old_version());
        }
        let mut out = Segments::create(tmp, version)?;
        // Series no commit has logged yet hold no samples (a commit logs its series before
        // applying anything): left out, as the WAL leaves them out, so a later commit still
        // logs them first. Their refs stay taken through `next_ref`.
        let series: Vec<(u64, Labels)> = {
            let all = self.labels_by_ref();
            let idx = self.index.read();
            let unlogged: std::collections::HashSet<u64> =
                idx.unlogged.iter().map(|(r, _)| *r).collect();
            drop(idx);
            all.into_iter()
                .filter(|(r, _)| !unlogged.contains(r))
                .collect()
        };
        self.write_series(&series, &mut |b| out.write(b))?;
        let mut framed = Vec::new();
        let mut payload = Vec::new();
        let mut count = 0u64;
        let mut late = Vec::new();
        let mut late_hists = Vec::new();
        let mut flush = |payload: &mut Vec<u8>, count: &mut u64, out: &mut Segments| {
            if *count == 0 {
                return Ok(());
            }
            let mut body = Vec::with_capacity(payload.len() + 10);
            put_uvarint(&mut body, *count);
            body.extend_from_slice(payload);
            framed.clear();
            wal::encode(&mut framed, &Record::HeadChunks(body), self.compression);
            payload.clear();
            *count = 0;
            out.write(&framed)
        };
        for batch in series.chunks(1_000) {
            {
                let idx = self.index.read();
                for (r, _) in batch {
                    let Some(s) = idx.series.get(r) else { continue };
                    put_series(&mut payload, *r, s);
                    count += 1;
                    if let Some(l) = s.chunks.as_ref().and_then(|c| c.late()) {
                        late.extend(
                            l.samples(i64::MIN, i64::MAX)
                                .into_iter()
                                .map(|x| (*r, x.t, x.v)),
                        );
                        late_hists.extend(
                            l.histograms(i64::MIN, i64::MAX)
                                .into_iter()
                                .map(|x| (*r, x.t, x.h)),
                        );
                    }
                }
            }
            if payload.len() >= RECORD_BYTES {
                flush(&mut payload, &mut count, &mut out)?;
            }
        }
        flush(&mut payload, &mut count, &mut out)?;
        // Late samples after every series' chunks: replay takes them as late, as it takes
        // the WAL's.
        for b in late.chunks(100_000) {
            framed.clear();
            wal::encode(&mut framed, &Record::Samples(b.to_vec()), self.compression);
            out.write(&framed)?;
        }
        for b in late_hists.chunks(10_000) {
            framed.clear();
            wal::encode(
                &mut framed,
                &Record::Histograms(b.to_vec()),
                self.compression,
            );
            out.write(&framed)?;
        }
        self.write_exemplars(&mut |b| out.write(b))?;
        // Late samples older than the head's start, which the WAL segments it covers logged.
        self.write_old(version, &mut |b| out.write(b))?;
        let (bytes, segments, records) = out.finish()?;
        let meta = Meta {
            version: VERSION,
            wal_last_segment: last,
            next_ref: self.next_ref.load(Ordering::Relaxed),
            chunk_range_ms: self.index.read().chunk_range.0,
            series: series.len() as u64,
            segments,
            records,
            wal_last_segment_bytes: last_bytes,
            min_time: self.min_time.load(Ordering::Relaxed),
        };
        let mut f = std::fs::File::create(tmp.join(META))?;
        f.write_all(&serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::File::open(tmp)?.sync_all()?;
        // Older snapshots first (they no longer describe the WAL), then this one published.
        remove_all_but(data, tmp);
        let fin = data.join(format!("{PREFIX}{last:08}"));
        std::fs::rename(tmp, &fin)?;
        // Published: a failed sync of the directory now is no reason to say it was not
        // written (a power loss may still lose the rename; the WAL has everything).
        if let Err(err) = std::fs::File::open(data).and_then(|d| d.sync_all()) {
            tracing::warn!(dir = %data.display(), %err, "Cannot sync the data directory after writing the head snapshot");
        }
        Ok(Written {
            dir: fin,
            series: series.len() as u64,
            bytes,
        })
    }
}

fn remove_all_but(data: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path == keep || !is_ours(&path) {
            continue;
        }
        if let Err(err) = std::fs::remove_dir_all(&path) {
            tracing::error!(dir = %path.display(), %err, "Cannot remove an older head snapshot");
        }
    }
}

/// One series' entry in a chunks record: ref, flags, newest sample, float chunks (closed
/// ones' times and bytes, the open one's start and appender state), histogram chunks
/// (closed ones' times, encodings and bytes, the open one's start, encoding and bytes, and
/// the newest histogram appended).
fn put_series(p: &mut Vec<u8>, r: u64, s: &MemSeries) {
    put_uvarint(p, r);
    let hist = s.chunks.as_ref().and_then(|c| c.hist());
    let mut flags = 0;
    if s.has_last {
        flags |= HAS_LAST;
    }
    if s.chunks.is_some() {
        flags |= CHUNKS;
    }
    if hist.is_some() {
        flags |= HISTOGRAMS;
    }
    p.push(flags);
    if s.has_last {
        put_varint(p, s.last_t);
        p.extend_from_slice(&s.last_v.to_bits().to_le_bytes());
    }
    if let Some(c) = &s.chunks {
        put_uvarint(p, c.closed.len() as u64);
        for x in &c.closed {
            put_varint(p, x.min_t);
            put_varint(p, x.max_t);
            put_uvarint(p, x.data.len() as u64);
            p.extend_from_slice(&x.data);
        }
        put_varint(p, c.open_min_t);
        c.open.put_state(p);
    }
    if let Some(h) = hist {
        put_uvarint(p, h.closed.len() as u64);
        for x in &h.closed {
            put_varint(p, x.min_t);
            put_varint(p, x.max_t);
            p.push(x.encoding);
            put_uvarint(p, x.data.len() as u64);
            p.extend_from_slice(&x.data);
        }
        put_varint(p, h.open_min_t);
        let open = h.open.bytes();
        p.push(h.open.encoding());
        put_uvarint(
            p,
            if h.open.is_empty() {
                0
            } else {
                open.len() as u64
            },
        );
        if !h.open.is_empty() {
            p.extend_from_slice(&open);
        }
        wal::put_histogram(p, &h.last);
    }
}

/// What a chunks record installed: the samples (and their range) as replay counts them,
/// and whether any were native histograms.
pub(super) struct Installed {
    pub applied: Applied,
    pub histograms: bool,
}

/// Install a chunks record's series into `idx` (their series records came first). Samples
/// before `min_valid` are dropped, and the newest sample kept only from it on, as replay
/// drops them from records. None if anything in it does not read back as the head wrote it:
/// the snapshot is then not used.
pub(super) fn install(idx: &mut Index, p: &[u8], min_valid: i64) -> Option<Installed> {
    let mut d = Dec::new(p, 0);
    let n = d.uvarint()?;
    let mut a = Applied::NONE;
    let mut histograms = false;
    for _ in 0..n {
        let r = d.uvarint()?;
        let flags = d.u8()?;
        if flags & !(HAS_LAST | CHUNKS | HISTOGRAMS) != 0 {
            return None;
        }
        let last = match flags & HAS_LAST {
            0 => None,
            _ => Some(Sample {
                t: d.varint()?,
                v: f64::from_bits(d.le64()?),
            }),
        };
        let mut newest = i64::MIN;
        let mut chunks = match flags & CHUNKS {
            0 => None,
            _ => Some(read_floats(&mut d, &mut newest)?),
        };
        if flags & HISTOGRAMS != 0 {
            let h = read_histograms(&mut d, &mut newest)?;
            histograms = true;
            chunks.as_mut()?.extra = Some(Box::new(Extra {
                hist: Some(h),
                late: None,
            }));
        }
        // The newest sample is the newest of everything held (deletions keep it, so it may
        // be newer than what is left).
        if newest > last.map_or(i64::MIN, |l| l.t) {
            return None;
        }
        let s = idx.series.get_mut(&r)?;
        // Each series once, onto a fresh one.
        if s.has_last || s.chunks.is_some() {
            return None;
        }
        s.chunks = chunks.map(Box::new);
        if s.first_t().is_some_and(|f| f < min_valid) {
            s.truncate_before(min_valid);
        }
        // Replay applies only samples from `min_valid` on: its newest is this one if it is
        // among them, and there is none otherwise.
        let last = last.filter(|l| l.t >= min_valid);
        s.set_last(last);
        if let Some(l) = last {
            idx.empty -= 1;
            a.hi = a.hi.max(l.t);
        }
        if let Some(c) = s.chunks.as_deref() {
            a.n += count(c);
        }
        if let Some(f) = s.first_t() {
            a.lo = a.lo.min(f);
        }
        // Its full chunks to the head's chunk files as the snapshot is read, so a start from
        // one does not hold the whole head in memory first.
        if s.heap_chunks().next().is_some() {
            idx.closed_chunk(r);
            idx.map_if_due();
        }
    }
    (d.remaining() == 0).then_some(Installed {
        applied: a,
        histograms,
    })
}

/// The samples a series' chunks hold (late ones come apart, as records).
fn count(c: &Chunks) -> u64 {
    let f = c
        .closed
        .iter()
        .map(|x| XorIter::count_of(&x.data) as u64)
        .sum::<u64>()
        + c.open.len() as u64;
    let h = c.hist().map_or(0, |h| {
        h.closed
            .iter()
            .map(|x| u64::from(u16::from_be_bytes([x.data[0], x.data[1]])))
            .sum::<u64>()
            + h.open.len() as u64
    });
    f + h
}

/// Float chunks, checked to be what the head writes: at most a chunk's samples each, in
/// time order, none overlapping. `newest` is raised to the newest time they hold.
fn read_floats(d: &mut Dec<'_>, newest: &mut i64) -> Option<Chunks> {
    let n = usize::try_from(d.uvarint()?).ok()?;
    let mut closed = Vec::with_capacity(n.min(d.remaining() / 4));
    let mut prev = i64::MIN;
    for _ in 0..n {
        let min_t = d.varint()?;
        let max_t = d.varint()?;
        let len = usize::try_from(d.uvarint()?).ok()?;
        let data: Box<[u8]> = d.bytes(len)?.into();
        let k = XorIter::count_of(&data);
        if k == 0 || k > usize::from(SAMPLES_PER_CHUNK) || min_t > max_t || min_t <= prev {
            return None;
        }
        prev = max_t;
        closed.push(ClosedChunk {
            min_t,
            max_t,
            data: data.into(),
        });
    }
    let open_min_t = d.varint()?;
    let open = XorChunk::read_state(d)?;
    if let Some(t) = open.max_time() {
        if open.len() > usize::from(SAMPLES_PER_CHUNK) || open_min_t <= prev || t < open_min_t {
            return None;
        }
        prev = t;
    }
    *newest = (*newest).max(prev);
    Some(Chunks {
        closed,
        open,
        open_min_t,
        extra: None,
    })
}

/// Histogram chunks, checked as [`read_floats`] checks floats.
fn read_histograms(d: &mut Dec<'_>, newest: &mut i64) -> Option<HistChunks> {
    let n = usize::try_from(d.uvarint()?).ok()?;
    let mut closed = Vec::with_capacity(n.min(d.remaining() / 4));
    let mut prev = i64::MIN;
    let known = |e: u8| e == hchunk::ENC_HISTOGRAM || e == hchunk::ENC_FLOAT_HISTOGRAM;
    for _ in 0..n {
        let min_t = d.varint()?;
        let max_t = d.varint()?;
        let encoding = d.u8()?;
        let len = usize::try_from(d.uvarint()?).ok()?;
        let data: Box<[u8]> = d.bytes(len)?.into();
        let k = usize::from(u16::from_be_bytes(data.get(..2)?.try_into().ok()?));
        if !known(encoding)
            || k == 0
            || k > hchunk::MAX_CHUNK_SAMPLES
            || min_t > max_t
            || min_t <= prev
        {
            return None;
        }
        prev = max_t;
        closed.push(ClosedHistChunk {
            min_t,
            max_t,
            encoding,
            data: data.into(),
        });
    }
    let open_min_t = d.varint()?;
    let encoding = d.u8()?;
    let len = usize::try_from(d.uvarint()?).ok()?;
    let bytes = d.bytes(len)?;
    let last = Arc::new(wal::decode_histogram(d, true)?);
    if !known(encoding) {
        return None;
    }
    // The open chunk is appended again from its samples: its appender state is not kept
    // apart from its bytes, and histograms are few.
    let mut h = HistChunks {
        closed,
        open: HistogramChunk::new(),
        open_min_t,
        last: last.clone(),
    };
    if len > 0 {
        let samples = hchunk::decode(encoding, bytes).ok()?;
        if samples.first()?.0 != open_min_t || open_min_t <= prev {
            return None;
        }
        for (t, x) in samples {
            if t <= prev {
                return None;
            }
            prev = t;
            h.push(t, &Arc::new(x));
        }
        // Appended again it must come out as it was: one chunk, in the same encoding.
        if h.closed.len() != n || h.open.encoding() != encoding {
            return None;
        }
    }
    *newest = (*newest).max(prev);
    h.last = last;
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::{FloatHistogram, Labels};
    use vigil_storage::{Exemplar, Matcher, Storage};

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-snap-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn open(d: &Path, snapshot: bool) -> Head {
        let opts = wal::WriteOptions {
            exemplars: true,
            metadata: true,
            ..wal::WriteOptions::default()
        };
        Head::open_mode(d, i64::MIN, true, opts, 100, 10_000, snapshot).unwrap()
    }

    /// Every series' samples and histograms (values by bits), exemplars, and head range.
    type Dump = (
        Vec<(Labels, Vec<(i64, u64)>, Vec<(i64, FloatHistogram)>)>,
        String,
    );

    fn dump(h: &Head) -> Dump {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        let mut out: Vec<_> = q
            .select(&[Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".+").unwrap()])
            .unwrap()
            .map(|s| {
                (
                    s.labels.clone(),
                    s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
                    s.histograms.iter().map(|x| (x.t, (*x.h).clone())).collect(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let ex = h
            .exemplars(
                i64::MIN,
                i64::MAX,
                &[vec![
                    Matcher::new(vigil_storage::MatchOp::Regex, "__name__", ".+").unwrap(),
                ]],
            )
            .unwrap();
        (out, format!("{ex:?} {:?}", h.time_range()))
    }

    fn hist(n: f64) -> FloatHistogram {
        FloatHistogram {
            count: n,
            sum: n * 0.5,
            zero_count: n,
            zero_threshold: 0.001,
            ..Default::default()
        }
    }

    /// A head of floats over several chunks (an open one mid-way), integer and float
    /// histograms with a counter reset, late samples, a deletion and exemplars.
    fn fill(h: &Head, from: i64, to: i64) {
        h.set_out_of_order_window(1_000_000);
        let a = Labels::from_pairs([("__name__", "a"), ("job", "x")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let hs = Labels::from_pairs([("__name__", "h")]);
        let hf = Labels::from_pairs([("__name__", "hf")]);
        for t in (from..to).step_by(100) {
            let mut app = h.appender();
            app.append(0, &a, t, (t as f64 * 1.5).sin()).unwrap();
            app.append(0, &b, t, (t / 1000) as f64).unwrap();
            // A reset every 7,000 ms.
            app.append_histogram(0, &hs, t, hist(((t % 7_000) / 100) as f64))
                .unwrap();
            app.append_histogram(0, &hf, t, hist(t as f64 / 3.0))
                .unwrap();
            if t % 1_000 == 0 {
                app.append_exemplar(
                    0,
                    &a,
                    Exemplar {
                        labels: Labels::from_pairs([("trace_id", t.to_string())]),
                        value: 1.0,
                        t,
                    },
                )
                .unwrap();
            }
            app.commit().unwrap();
        }
        // Late ones, of both kinds, between the in-order ones.
        let mut app = h.appender();
        for t in (from + 50..to).step_by(700) {
            app.append(0, &a, t, -1.0).unwrap();
            app.append_histogram(0, &hs, t, hist(1.0)).unwrap();
        }
        app.commit().unwrap();
    }

    /// A head loaded from its snapshot answers exactly as one replayed from the WAL (series'
    /// metadata included), and goes on appending to its open chunks as if it had never
    /// stopped.
    #[test]
    fn a_snapshot_loads_the_head_the_wal_replays() {
        let d = tmp("roundtrip");
        let meta = std::sync::Arc::new(vigil_storage::Metadata {
            kind: vigil_model::exposition::MetricType::Gauge,
            unit: "bytes".into(),
            help: "Bytes.".into(),
        });
        let c = Labels::from_pairs([("__name__", "c")]);
        let rc = {
            let h = open(&d, true);
            fill(&h, 0, 25_050);
            let mut app = h.appender();
            let rc = app.append(0, &c, 25_060, 1.0).unwrap();
            app.update_metadata(rc, &c, &meta).unwrap();
            app.commit().unwrap();
            h.delete(&[vec![Matcher::equal("__name__", "b")]], 3_000, 4_000)
                .unwrap();
            let w = h.write_snapshot().unwrap().unwrap();
            assert_eq!(w.series, 5);
            assert!(wal::segment_path(&w.dir, 2).exists(), "several segments");
            // An append after the snapshot (its cut) lands after it and is replayed.
            let mut app = h.appender();
            app.append(0, &c, 30_000, 1.0).unwrap();
            app.commit().unwrap();
            rc
        };
        // The same directory replayed without the snapshot, as reference.
        let plain = tmp("roundtrip-plain");
        std::fs::create_dir_all(plain.join("wal")).unwrap();
        for e in std::fs::read_dir(d.join("wal")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), plain.join("wal").join(e.file_name())).unwrap();
        }
        let want = open(&plain, false);
        let h = open(&d, true);
        assert!(h.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(dump(&h), dump(&want));
        assert!(!dump(&h).0.is_empty());
        assert_eq!(h.series_metadata(rc), Some(meta.clone()));
        assert_eq!(want.series_metadata(rc), Some(meta));
        // Used once, then gone.
        assert!(find(&d).unwrap().is_none());
        // Appending goes on from the restored open chunks as from replayed ones.
        fill(&h, 25_050, 40_000);
        fill(&want, 25_050, 40_000);
        assert_eq!(dump(&h), dump(&want));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&plain);
    }

    /// Every framed record of a snapshot's segments: (segment, offset, type).
    fn records(dir: &Path) -> Vec<(u64, usize, u8)> {
        let mut out = Vec::new();
        for seg in wal::segments(dir).unwrap() {
            let b = std::fs::read(wal::segment_path(dir, seg)).unwrap();
            let mut off = 16;
            while off + 9 <= b.len() {
                let len = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
                out.push((seg, off, b[off + 8] & 0x7f));
                off += 8 + len;
            }
        }
        out
    }

    /// Snapshots that are damaged, or no longer describe the WAL, are not used: the WAL is
    /// replayed, and the head is whole.
    #[test]
    fn a_stale_or_damaged_snapshot_falls_back_to_the_wal() {
        let d = tmp("stale");
        let mut want = {
            let h = open(&d, true);
            fill(&h, 0, 12_000);
            h.write_snapshot().unwrap().unwrap();
            dump(&h)
        };
        let write = |d: &Path| {
            let h = open(d, true);
            assert!(!h.stats.snapshot_loaded.load(Ordering::Relaxed));
            h.write_snapshot().unwrap().unwrap().dir
        };
        let fell_back = |h: &Head| {
            !h.stats.snapshot_loaded.load(Ordering::Relaxed)
                && h.stats.snapshot_replay_errors.load(Ordering::Relaxed) == 1
        };
        // A chunks record that passes its checksum but does not read back (a flag no build
        // writes, the checksum made right again): `install` refuses it.
        let snap = find(&d).unwrap().unwrap().dir;
        let (seg, off, _) = *records(&snap)
            .iter()
            .find(|r| r.2 == 7)
            .expect("a chunks record");
        let path = wal::segment_path(&snap, seg);
        let mut b = std::fs::read(&path).unwrap();
        let len = u32::from_le_bytes(b[off..off + 4].try_into().unwrap()) as usize;
        assert_eq!(b[off + 8], 7, "stored plain");
        // Payload: series count, then the first series' ref and flags.
        let mut p = off + 9;
        for _ in 0..2 {
            while b[p] & 0x80 != 0 {
                p += 1;
            }
            p += 1;
        }
        b[p] = 0xf0;
        let crc = crc32fast::hash(&b[off + 8..off + 8 + len]);
        b[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let h = open(&d, true);
        assert!(fell_back(&h));
        assert_eq!(dump(&h), want);
        assert!(find(&d).unwrap().is_none(), "removed once replayed");
        drop(h);
        // A checksum that fails.
        let snap = write(&d);
        let (seg, off, _) = records(&snap)[1];
        let path = wal::segment_path(&snap, seg);
        let mut b = std::fs::read(&path).unwrap();
        b[off + 12] ^= 0x40;
        std::fs::write(&path, &b).unwrap();
        let h = open(&d, true);
        assert!(fell_back(&h));
        assert_eq!(dump(&h).0, want.0);
        drop(h);
        // Its last segment lost: every record read back is whole, but not every one is there.
        let snap = write(&d);
        let last = *wal::segments(&snap).unwrap().last().unwrap();
        assert!(last > 0);
        std::fs::remove_file(wal::segment_path(&snap, last)).unwrap();
        let f = find(&d).unwrap().unwrap();
        assert!(usable(&f, &d.join("wal"), ChunkRange::new(10_000)).is_err());
        let h = open(&d, true);
        assert!(!h.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(dump(&h).0, want.0);
        drop(h);
        // A run that did not remove it (a build without the feature) went on from it: it is
        // kept aside here and put back, and the WAL's newest segment says it is stale.
        let snap = write(&d);
        let aside = d.with_extension("aside");
        std::fs::rename(&snap, &aside).unwrap();
        {
            let h = open(&d, false);
            let mut app = h.appender();
            app.append(0, &Labels::from_pairs([("__name__", "b")]), 50_000, 7.0)
                .unwrap();
            app.commit().unwrap();
        }
        std::fs::rename(&aside, &snap).unwrap();
        let f = find(&d).unwrap().unwrap();
        assert!(usable(&f, &d.join("wal"), ChunkRange::new(10_000)).is_err());
        let h = open(&d, true);
        assert!(!h.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(h.stats.snapshot_replay_errors.load(Ordering::Relaxed), 0);
        let b = dump(&h)
            .0
            .into_iter()
            .find(|s| s.0.get("__name__") == Some("b"));
        assert_eq!(b.unwrap().1.last(), Some(&(50_000, 7f64.to_bits())));
        want = dump(&h);
        drop(h);
        // Another block range.
        write(&d);
        let f = find(&d).unwrap().unwrap();
        assert!(usable(&f, &d.join("wal"), ChunkRange::new(20_000)).is_err());
        let other = Head::open_mode(
            &d,
            i64::MIN,
            true,
            wal::WriteOptions::default(),
            100,
            20_000,
            true,
        )
        .unwrap();
        assert!(!other.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(dump(&other).0, want.0);
        drop(other);
        // The feature off: not read, and removed.
        write(&d);
        let h = open(&d, false);
        assert!(!h.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(dump(&h).0, want.0);
        assert!(find(&d).unwrap().is_none());
        // A checkpoint after the snapshot: it no longer describes the WAL.
        h.write_snapshot().unwrap().unwrap();
        let f = find(&d).unwrap().unwrap();
        h.checkpoint(i64::MIN).unwrap();
        assert!(usable(&f, &d.join("wal"), ChunkRange::new(10_000)).is_err());
        drop(h);
        // Replayed from the checkpoint either way (the checkpoint holds the late histogram
        // merged in order, so its hint is not the snapshot's).
        let h = open(&d, true);
        assert!(!h.stats.snapshot_loaded.load(Ordering::Relaxed));
        let got = dump(&h);
        assert!(find(&d).unwrap().is_none());
        assert_eq!(got, dump(&open(&d, false)));
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Samples before the head's start (a block written meanwhile) are dropped from a
    /// snapshot's chunks as replay drops them from the WAL's records.
    #[test]
    fn a_snapshot_keeps_nothing_before_the_heads_start() {
        let d = tmp("min-valid");
        {
            let h = open(&d, true);
            fill(&h, 0, 30_000);
            h.write_snapshot().unwrap().unwrap();
        }
        let plain = tmp("min-valid-plain");
        std::fs::create_dir_all(plain.join("wal")).unwrap();
        for e in std::fs::read_dir(d.join("wal")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), plain.join("wal").join(e.file_name())).unwrap();
        }
        let opts = wal::WriteOptions {
            exemplars: true,
            ..wal::WriteOptions::default()
        };
        let at = |dir: &Path, snap: bool| {
            Head::open_mode(dir, 12_345, true, opts, 100, 10_000, snap).unwrap()
        };
        let loaded = at(&d, true);
        assert!(loaded.stats.snapshot_loaded.load(Ordering::Relaxed));
        let got = dump(&loaded);
        assert!(got.0.iter().all(|s| s.1.iter().all(|x| x.0 >= 12_345)));
        let want = dump(&at(&plain, false));
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&plain);
    }

    /// A series created by a transaction that never committed is not in the WAL, and not in
    /// the snapshot: a sample appended to it after the load is logged with its series, so a
    /// replay of the WAL alone has it.
    #[test]
    fn a_series_never_logged_is_left_out_and_logged_when_used() {
        let d = tmp("unlogged");
        let x = Labels::from_pairs([("__name__", "x")]);
        {
            let h = open(&d, true);
            fill(&h, 0, 2_000);
            let mut app = h.appender();
            app.append(0, &x, 1_000, 1.0).unwrap();
            app.rollback(); // the series stays in the head, unlogged
            h.write_snapshot().unwrap().unwrap();
        }
        {
            let h = open(&d, true);
            assert!(h.stats.snapshot_loaded.load(Ordering::Relaxed));
            let mut app = h.appender();
            app.append(0, &x, 5_000, 2.0).unwrap();
            app.commit().unwrap();
        }
        let h = open(&d, false);
        let got = dump(&h).0.into_iter().find(|s| s.0 == x);
        assert_eq!(got.unwrap().1, vec![(5_000, 2f64.to_bits())]);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Damaged chunks records (every byte in turn changed, and cut short at every length)
    /// are refused or installed without a panic, and whatever is installed reads.
    #[test]
    fn damaged_chunks_records_never_panic() {
        // Closed and open chunks of both kinds (150 samples a series, a reset every 70).
        let h = Head::in_memory();
        fill(&h, 0, 15_000);
        let (series, payload) = {
            let idx = h.index.read();
            let mut refs: Vec<u64> = idx.series.keys().copied().collect();
            refs.sort_unstable();
            let mut p = Vec::new();
            put_uvarint(&mut p, refs.len() as u64);
            for r in &refs {
                put_series(&mut p, *r, &idx.series[r]);
            }
            let series: Vec<(u64, Labels)> = refs
                .iter()
                .map(|r| (*r, idx.series[r].labels.clone()))
                .collect();
            (series, p)
        };
        // Installed, each series read, appended to, and read again.
        let try_one = |p: &[u8], min_valid: i64| {
            let mut idx = Index::default();
            for (r, l) in &series {
                idx.insert(*r, l.clone());
            }
            if install(&mut idx, p, min_valid).is_some() {
                let range = idx.chunk_range;
                for s in idx.series.values_mut() {
                    let _ = s.samples(i64::MIN, i64::MAX);
                    let _ = s.histograms(i64::MIN, i64::MAX);
                    let t = s.last().map_or(0, |l| l.t.saturating_add(1));
                    if s.last_histogram().is_some() {
                        s.push_histogram(t, &Arc::new(hist(1.0)));
                    } else {
                        s.push(t, 1.0, range);
                    }
                    let _ = s.samples(i64::MIN, i64::MAX);
                    let _ = s.histograms(i64::MIN, i64::MAX);
                }
            }
        };
        assert!({
            let mut idx = Index::default();
            for (r, l) in &series {
                idx.insert(*r, l.clone());
            }
            install(&mut idx, &payload, i64::MIN).is_some()
        });
        // Each byte changed (its top bit, or all of it), the record cut short at every
        // length, with the head's start before the data or in the middle of it.
        for i in 0..payload.len() {
            let mut p = payload.clone();
            p[i] ^= if i % 2 == 0 { 0x80 } else { 0xff };
            let min_valid = if i % 3 == 0 { 7_050 } else { i64::MIN };
            try_one(&p, min_valid);
            try_one(&payload[..i], min_valid);
        }
    }

    /// Thousands of series (their series records split, the snapshot over many segments)
    /// load as the WAL replays them.
    #[test]
    fn many_series_load_from_a_snapshot() {
        let d = tmp("many");
        let want = {
            let h = open(&d, true);
            for t in 0..3 {
                let mut app = h.appender();
                for i in 0..5_000 {
                    let l =
                        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                    app.append(0, &l, t * 1_000, (i * t) as f64).unwrap();
                }
                app.commit().unwrap();
            }
            h.write_snapshot().unwrap().unwrap();
            dump(&h)
        };
        let h = open(&d, true);
        assert!(h.stats.snapshot_loaded.load(Ordering::Relaxed));
        assert_eq!(h.num_series(), 5_000);
        assert_eq!(dump(&h), want);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A directory named like a snapshot that holds anything else is left alone.
    #[test]
    fn only_vigils_snapshots_are_removed() {
        let d = tmp("foreign");
        let other = d.join(format!("{PREFIX}00000003"));
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("notes.txt"), b"mine").unwrap();
        drop(open(&d, false));
        assert!(other.join("notes.txt").exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
