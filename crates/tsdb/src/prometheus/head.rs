//! Prometheus's head as it left it: the WAL (`wal/`: segments of 32 KiB pages, records in
//! fragments, optionally snappy- or zstd-compressed; `wal/checkpoint.N/`), the out-of-order WAL
//! (`wbl/`) and the memory-mapped head chunks (`chunks_head/`), read into series and samples.
//!
//! Nothing here writes. The caller persists what was read (blocks for complete ranges, vigil's
//! head and WAL for the newest), and only then removes the files, and only if everything in
//! them was carried over ([`Import::complete`]); otherwise they are kept, unchanged. A damaged
//! file is reported in [`Import::unreadable`] with what was read from it before the damage.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vigil_model::histogram::{CounterResetHint, FloatHistogram, Span};
use vigil_model::{HistogramSample, Label, LabelRef, Labels, Sample};
use vigil_storage::Exemplar;

use super::{Dec, HEAD_CHUNKS_MAGIC, crc};
use crate::chunk::{XorChunk, XorIter};

const PAGE: usize = 32 * 1024;
const FRAG_HEADER: usize = 7;

/// WAL record types (Prometheus's `record` package).
const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;
const REC_TOMBSTONES: u8 = 3;
const REC_EXEMPLARS: u8 = 4;
const REC_MMAP_MARKERS: u8 = 5;
const REC_METADATA: u8 = 6;
/// Native histograms, integer and float; 9 and 10 are the same layouts for custom buckets.
const REC_HISTOGRAMS: u8 = 7;
const REC_FLOAT_HISTOGRAMS: u8 = 8;
const REC_CUSTOM_HISTOGRAMS: u8 = 9;
const REC_CUSTOM_FLOAT_HISTOGRAMS: u8 = 10;
/// Current Prometheus's records with a start time per sample (written with its
/// start-timestamp storage on): floats, integer and float histograms.
const REC_SAMPLES_V2: u8 = 11;
const REC_HISTOGRAMS_V2: u8 = 12;
const REC_FLOAT_HISTOGRAMS_V2: u8 = 13;
/// The lower bound a checkpoint was cut at: only in checkpoints, and the checkpoint holds
/// nothing older, so there is nothing to carry.
const REC_MIN_VALID_TIME: u8 = 14;

/// What was read from a Prometheus head.
#[derive(Default)]
pub struct Import {
    /// Series (in no particular order) with their samples in time order, without duplicate
    /// label sets or timestamps: in-order samples at or after
    /// `min_valid`, out-of-order ones (`wbl/`, out-of-order head chunks) whatever their time,
    /// as Prometheus replays them.
    pub series: Vec<(Labels, Packed)>,
    /// Every Prometheus file and directory found (segments, checkpoint directories, head chunk
    /// files), read or not: what is moved out of vigil's way once the data is safe.
    pub files: Vec<PathBuf>,
    /// Files with damage: what is wrong. What came before the damage was read.
    pub unreadable: Vec<(PathBuf, String)>,
    pub samples: u64,
    /// Samples whose series record was not found (it was in a file that could not be read).
    pub orphan_samples: u64,
    /// Exemplars with their series' labels, in the order Prometheus logged them (each series'
    /// in time order, as its ring took them). Whether they are carried over is the caller's
    /// choice: only a head that keeps exemplars can.
    pub exemplars: Vec<(Labels, Exemplar)>,
    /// Exemplars whose series record was not found.
    pub orphan_exemplars: u64,
    /// Records vigil does not import: types it does not know, histograms of a schema it
    /// does not know, and samples with start times (which vigil does not keep).
    pub unsupported_records: u64,
}

/// A series' samples as an import keeps them: XOR chunks of up to [`PACKED_CHUNK`] samples
/// (a sample not after the last starts a new chunk), about 1-2 bytes a sample instead of 16,
/// so reading a long Prometheus head takes memory near what Prometheus's own replay takes.
/// Decoding gives the samples back in the order they were pushed.
/// Native histograms (far fewer than floats where Prometheus has them) are kept as decoded.
#[derive(Default)]
pub struct Packed {
    chunks: Vec<XorChunk>,
    first_t: i64,
    /// Every float sample after the one before it: already as `read` leaves a series.
    in_order: bool,
    /// Native histogram samples in the order pushed (`read` leaves them in time order).
    histograms: Vec<HistogramSample>,
    /// The newest float sample of the in-order head chunks read into this series: the WAL's
    /// samples up to it are the same samples again (see [`Gather::trust_chunks`]).
    chunks_upto: Option<i64>,
}

/// Samples per chunk of a [`Packed`] series.
const PACKED_CHUNK: usize = 240;

impl Packed {
    fn push(&mut self, s: Sample) {
        match self.last_float_t() {
            None => (self.first_t, self.in_order) = (s.t, true),
            Some(t) => self.in_order &= s.t > t,
        }
        match self.chunks.last_mut() {
            Some(c) if c.len() < PACKED_CHUNK && c.max_time().is_some_and(|t| s.t > t) => {
                c.append(s.t, s.v)
            }
            _ => {
                let mut c = XorChunk::new();
                c.append(s.t, s.v);
                self.chunks.push(c);
            }
        }
    }

    /// The samples of `v`, in their order.
    pub fn from_samples(v: &[Sample]) -> Packed {
        let mut p = Packed::default();
        for s in v {
            p.push(*s);
        }
        p
    }

    fn push_histogram(&mut self, s: HistogramSample) {
        self.histograms.push(s);
    }

    /// `other`'s samples after this one's.
    fn append(&mut self, mut other: Packed) {
        self.histograms.append(&mut other.histograms);
        self.chunks_upto = self.chunks_upto.max(other.chunks_upto);
        if self.chunks.is_empty() {
            (self.chunks, self.first_t, self.in_order) =
                (other.chunks, other.first_t, other.in_order);
            return;
        }
        if other.chunks.is_empty() {
            return;
        }
        self.in_order &= other.in_order && self.last_float_t().is_some_and(|t| other.first_t > t);
        self.chunks.append(&mut other.chunks);
    }

    /// Samples of both kinds.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(XorChunk::len).sum::<usize>() + self.histograms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.histograms.is_empty()
    }

    fn last_float_t(&self) -> Option<i64> {
        self.chunks.last()?.max_time()
    }

    /// The newest timestamp of either kind, of a series in time order (as `read` leaves
    /// every series).
    pub fn last_t(&self) -> Option<i64> {
        let h = self.histograms.last().map(|h| h.t);
        self.last_float_t().max(h)
    }

    /// The oldest timestamp of either kind, of a series in time order (as `read` leaves
    /// every series).
    pub fn first_t(&self) -> Option<i64> {
        let f = (!self.chunks.is_empty()).then_some(self.first_t);
        let h = self.histograms.first().map(|h| h.t);
        match (f, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The native histogram samples, in time order after `read`.
    pub fn histograms(&self) -> &[HistogramSample] {
        &self.histograms
    }

    /// Every sample, in the order pushed.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(self.len());
        for c in &self.chunks {
            out.extend(c.iter());
        }
        out
    }
}

impl Import {
    /// Whether everything in the files was carried over: only then may they be deleted;
    /// otherwise they are kept, unchanged, under `prometheus-unread/`.
    /// Exemplars are the caller's to count: they are carried over only where kept.
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty()
            && self.orphan_samples == 0
            && self.orphan_exemplars == 0
            && self.unsupported_records == 0
    }
}

/// Whether `dir` holds a Prometheus head: Prometheus-framed WAL segments, a `chunks_head/`
/// or a `wbl/` with files.
pub fn present(dir: &Path) -> std::io::Result<bool> {
    if dir.join(STAGING).exists() {
        return Ok(true);
    }
    for sub in ["chunks_head", "wbl"] {
        if has_files(&dir.join(sub))? {
            return Ok(true);
        }
    }
    Ok(!foreign_wal_files(&dir.join("wal"))?.is_empty())
}

/// Where Prometheus's head files wait, moved out of vigil's `wal/`, until what they hold is
/// safe in vigil's blocks and WAL.
pub const STAGING: &str = "prometheus-import";

/// Written (and synced) in [`STAGING`] once every Prometheus file is there: from then on a
/// Prometheus head in the data directory is another one, written since.
pub const STAGED: &str = ".staged";

/// Whether `root` holds a Prometheus head: WAL segments in its framing, or the numbered files
/// of head chunks or an out-of-order WAL (what staging moves).
fn holds_head(root: &Path) -> std::io::Result<bool> {
    Ok(!foreign_wal_files(&root.join("wal"))?.is_empty()
        || !segment_files(&root.join("chunks_head"))?.is_empty()
        || !segment_files(&root.join("wbl"))?.is_empty())
}

/// Whether a WAL segment (not vigil's format this build reads) is to be read as Prometheus's:
/// anything but a vigil segment of a newer format, which is refused, not read. A damaged
/// Prometheus segment is read up to the damage and kept.
fn is_prometheus_segment(b: &[u8]) -> bool {
    !b.starts_with(crate::wal::SEGMENT_MAGIC)
}

fn has_files(dir: &Path) -> std::io::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => Ok(rd.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Segment files (`NNNNNNNN`) of a WAL directory in order.
fn segment_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type()?.is_file()
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = name.parse()
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Everything in `wal/` that is not vigil's: segments not in vigil's format and checkpoint
/// directories without a vigil segment (an empty one included).
pub fn foreign_wal_files(wal: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (_, p) in segment_files(wal)? {
        if crate::wal::classify_file(&p)? == crate::wal::SegmentKind::Foreign {
            out.push(p);
        }
    }
    for (_, cp) in checkpoints(wal)? {
        let mut vigils = false;
        for (_, p) in segment_files(&cp)? {
            vigils |= matches!(
                crate::wal::classify_file(&p)?,
                crate::wal::SegmentKind::Vigil | crate::wal::SegmentKind::Legacy
            );
        }
        if !vigils {
            out.push(cp);
        }
    }
    Ok(out)
}

fn checkpoints(wal: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(wal) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_prefix("checkpoint.")
            && e.file_type()?.is_dir()
            && let Ok(n) = n.parse()
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// How a segment's reading ended.
enum End {
    Clean,
    /// The file ends inside a record: a write cut short.
    Torn(String),
    Damaged(String),
}

/// Record flags of the fragment type byte: the record is snappy- or zstd-compressed (newer
/// Prometheus releases write zstd with `--storage.tsdb.wal-compression-type=zstd`).
const SNAPPY: u8 = 0x08;
const ZSTD: u8 = 0x10;
/// A record is at most a segment: one claiming to unpack to more is damage.
const MAX_RECORD: usize = 256 << 20;

/// A zstd-compressed record unpacked (every frame in it, as Go's `DecodeAll` reads them); at
/// most `MAX_RECORD` bytes, however many the frames claim, so a hostile file cannot make the
/// read allocate without bound.
fn unzstd(rec: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut src = rec;
    let mut out = Vec::new();
    while !src.is_empty() {
        let decoder =
            ruzstd::decoding::StreamingDecoder::new(&mut src).map_err(|e| e.to_string())?;
        let room = (MAX_RECORD - out.len()) as u64 + 1;
        decoder
            .take(room)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        if out.len() > MAX_RECORD {
            return Err(format!("a record unpacks to over {MAX_RECORD} bytes"));
        }
    }
    Ok(out)
}

/// The records of one segment file, each passed to `f`.
fn read_segment(b: &[u8], mut f: impl FnMut(&[u8])) -> End {
    let mut rec: Vec<u8> = Vec::new();
    let mut in_record = false;
    let mut compression = 0;
    let mut pos = 0;
    while pos < b.len() {
        let page_end = (pos / PAGE + 1) * PAGE;
        if page_end - pos < FRAG_HEADER {
            pos = page_end;
            continue;
        }
        if b.len() - pos < FRAG_HEADER {
            return if b[pos..].iter().all(|&x| x == 0) && !in_record {
                End::Clean
            } else {
                End::Torn(format!("offset {pos}: a record header cut short"))
            };
        }
        let typ = b[pos];
        let kind = typ & 0x07;
        if kind == 0 {
            // The rest of the page is empty, as Prometheus checks.
            if !b[pos..page_end.min(b.len())].iter().all(|&x| x == 0) {
                return End::Damaged(format!("offset {pos}: a page's padding is not zero"));
            }
            pos = page_end;
            continue;
        }
        if typ & (SNAPPY | ZSTD) == SNAPPY | ZSTD {
            return End::Damaged(format!(
                "offset {pos}: a record flagged both snappy and zstd"
            ));
        }
        let len = u16::from_be_bytes([b[pos + 1], b[pos + 2]]) as usize;
        let want = u32::from_be_bytes([b[pos + 3], b[pos + 4], b[pos + 5], b[pos + 6]]);
        let start = pos + FRAG_HEADER;
        if start + len > page_end {
            return End::Damaged(format!("offset {pos}: a record fragment crosses its page"));
        }
        if start + len > b.len() {
            return End::Torn(format!("offset {pos}: a record cut short"));
        }
        let data = &b[start..start + len];
        if crc(data) != want {
            return End::Damaged(format!("offset {pos}: record checksum mismatch"));
        }
        match kind {
            1 | 2 => {
                if in_record {
                    return End::Damaged(format!("offset {pos}: a record starts inside another"));
                }
                rec.clear();
                rec.extend_from_slice(data);
                compression = typ & (SNAPPY | ZSTD);
                in_record = kind == 2;
            }
            3 | 4 if in_record => {
                rec.extend_from_slice(data);
                in_record = kind == 3;
            }
            _ => return End::Damaged(format!("offset {pos}: unexpected fragment type {typ}")),
        }
        pos = start + len;
        if !in_record {
            match compression {
                SNAPPY => {
                    // A record is at most a segment: a bigger claimed size is damage.
                    if snap::raw::decompress_len(&rec).map_or(true, |n| n > MAX_RECORD) {
                        return End::Damaged(format!("offset {pos}: a bad snappy length"));
                    }
                    match snap::raw::Decoder::new().decompress_vec(&rec) {
                        Ok(d) => f(&d),
                        Err(e) => {
                            return End::Damaged(format!("offset {pos}: snappy: {e}"));
                        }
                    }
                }
                ZSTD => match unzstd(&rec) {
                    Ok(d) => f(&d),
                    Err(e) => return End::Damaged(format!("offset {pos}: zstd: {e}")),
                },
                _ => f(&rec),
            }
        }
    }
    if in_record {
        End::Torn("the file ends inside a record".into())
    } else {
        End::Clean
    }
}

/// Series and samples gathered from records, by Prometheus's series refs.
/// Samples by series ref. Prometheus's refs are dense (counted up from 1), so most live in a
/// vector indexed by ref (no hashing, one memory access per sample); a ref far beyond the
/// series seen so far (churn, or a hostile file) goes to a map, so no record can make it
/// allocate more than the series it names.
#[derive(Default)]
struct RefSamples {
    dense: Vec<Packed>,
    sparse: foldhash::HashMap<u64, Packed>,
}

impl RefSamples {
    fn get(&mut self, id: u64, known_series: usize) -> &mut Packed {
        let limit = (known_series as u64)
            .saturating_mul(2)
            .saturating_add(1 << 16);
        if id < limit {
            let i = id as usize;
            if i >= self.dense.len() {
                self.dense.resize_with(i + 1, Packed::default);
            }
            // The bound only grows: a ref placed in the map before it was reached moves to
            // the vector on its first use there, so its samples stay in one place.
            if self.dense[i].is_empty()
                && !self.sparse.is_empty()
                && let Some(p) = self.sparse.remove(&id)
            {
                self.dense[i] = p;
            }
            &mut self.dense[i]
        } else {
            self.sparse.entry(id).or_default()
        }
    }

    /// The ref's samples when they are all in one part (no copy, nothing created).
    fn only_part(&self, id: u64) -> Option<&Packed> {
        let dense = self.dense.get(id as usize).filter(|p| !p.is_empty());
        let sparse = self.sparse.get(&id).filter(|p| !p.is_empty());
        match (dense, sparse) {
            (Some(p), None) | (None, Some(p)) => Some(p),
            _ => None,
        }
    }

    /// Whether the ref has no samples in either part.
    fn has_none(&self, id: u64) -> bool {
        self.dense.get(id as usize).is_none_or(|p| p.is_empty())
            && self.sparse.get(&id).is_none_or(|p| p.is_empty())
    }

    /// Both parts: a ref may have gone to the map before enough series were known to place
    /// it in the vector (the caller sorts and deduplicates).
    fn take(&mut self, id: u64) -> Packed {
        let mut v = self
            .dense
            .get_mut(id as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        if let Some(more) = self.sparse.remove(&id) {
            v.append(more);
        }
        v
    }

    fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.dense
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, _)| i as u64)
            .chain(self.sparse.keys().copied())
    }
}

#[derive(Default)]
struct Gather {
    labels: foldhash::HashMap<u64, Labels>,
    /// Series records read so far (the reader thread decodes them), or head chunks read,
    /// whichever is more: how far refs are dense. Never lowered, so a ref never moves.
    known: usize,
    /// Head chunks are read before the WAL, as Prometheus replays: when every head chunk
    /// file was read whole (or only its newest torn at the end, by a crash), a WAL sample
    /// no newer than its series' newest head chunk sample is already held and is skipped,
    /// instead of being packed again and sorted out.
    trust_chunks: bool,
    chunks_read: usize,
    samples: RefSamples,
    /// Out-of-order samples (`wbl/`, out-of-order head chunks): not bounded by `min_valid`.
    ooo: RefSamples,
    stones: HashMap<u64, Vec<(i64, i64)>>,
    /// Exemplars by series ref, in the order read.
    exemplars: Vec<(u64, Exemplar)>,
    /// Reading the out-of-order WAL.
    in_wbl: bool,
    unsupported: u64,
    /// Some sample came with a start time, which vigil does not keep.
    with_start_time: bool,
}

/// A start time marker of a version 2 record after its first entry: none, the previous
/// entry's, or a delta from the first entry's. Whether there was one.
fn start_time(d: &mut Dec) -> Option<bool> {
    match d.u8()? {
        0 => Some(false),
        1 => Some(true),
        2 => d.varint().map(|_| true),
        _ => None,
    }
}

/// One histogram as Prometheus's records write it: the counter reset hint, schema, zero
/// threshold, zero count, count, sum, positive and negative spans, positive and negative
/// buckets (integer ones as deltas from the bucket before, float ones as counts), then the
/// bounds of custom buckets.
fn decode_histogram(d: &mut Dec, float: bool) -> Option<FloatHistogram> {
    let hint = CounterResetHint::from_code(d.u8()?)?;
    let schema = i32::try_from(d.varint()?).ok()?;
    let zero_threshold = f64::from_bits(d.be64()?);
    let count = |d: &mut Dec| -> Option<f64> {
        if float {
            Some(f64::from_bits(d.be64()?))
        } else {
            Some(d.uvarint()? as f64)
        }
    };
    let zero_count = count(d)?;
    let total = count(d)?;
    let sum = f64::from_bits(d.be64()?);
    let spans = |d: &mut Dec| -> Option<Vec<Span>> {
        let n = d.uvarint()? as usize;
        let mut v = Vec::with_capacity(n.min(d.remaining() / 2));
        for _ in 0..n {
            let offset = i32::try_from(d.varint()?).ok()?;
            let length = u32::try_from(d.uvarint()?).ok()?;
            v.push(Span { offset, length });
        }
        Some(v)
    };
    let positive_spans = spans(d)?;
    let negative_spans = spans(d)?;
    let buckets = |d: &mut Dec| -> Option<Vec<f64>> {
        let n = d.uvarint()? as usize;
        // At least a byte a bucket (8 for float ones) must follow.
        let mut v = Vec::with_capacity(n.min(d.remaining() / if float { 8 } else { 1 }));
        let mut abs = 0i64;
        for _ in 0..n {
            v.push(if float {
                f64::from_bits(d.be64()?)
            } else {
                abs = abs.wrapping_add(d.varint()?);
                abs as f64
            });
        }
        Some(v)
    };
    let positive_buckets = buckets(d)?;
    let negative_buckets = buckets(d)?;
    let mut custom_values = Vec::new();
    if schema == vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA {
        let n = d.uvarint()? as usize;
        custom_values.reserve(n.min(d.remaining() / 8));
        for _ in 0..n {
            custom_values.push(f64::from_bits(d.be64()?));
        }
    }
    Some(FloatHistogram {
        hint,
        schema,
        zero_threshold,
        zero_count,
        count: total,
        sum,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        custom_values,
    })
}

/// A series record's entries into `labels`: each label set is built from the record's own
/// bytes, without a string of its own per name and value.
fn series_record(
    labels: &mut foldhash::HashMap<u64, Labels>,
    d: &mut Dec,
    typ: u8,
) -> Result<(), String> {
    let bad = || format!("a truncated record of type {typ}");
    let mut pairs: Vec<LabelRef<'_>> = Vec::new();
    while d.remaining() > 0 {
        let id = d.be64().ok_or_else(bad)?;
        let n = d.uvarint().ok_or_else(bad)? as usize;
        pairs.clear();
        pairs.reserve(n.min(256));
        for _ in 0..n {
            let name = d.str().ok_or_else(bad)?;
            let value = d.str().ok_or_else(bad)?;
            pairs.push(LabelRef { name, value });
        }
        let set = super::index::labels_of_refs(&pairs);
        labels.insert(id, set);
    }
    Ok(())
}

impl Gather {
    fn record(&mut self, r: &[u8]) -> Result<(), String> {
        let Some((&typ, body)) = r.split_first() else {
            return Ok(());
        };
        let mut d = Dec::new(body, 0);
        let bad = || format!("a truncated record of type {typ}");
        match typ {
            REC_SERIES => series_record(&mut self.labels, &mut d, typ)?,
            REC_SAMPLES => {
                if d.remaining() == 0 {
                    return Ok(());
                }
                let id0 = d.be64().ok_or_else(bad)? as i64;
                let t0 = d.be64().ok_or_else(bad)? as i64;
                while d.remaining() > 0 {
                    let id = id0.wrapping_add(d.varint().ok_or_else(bad)?) as u64;
                    let t = t0.wrapping_add(d.varint().ok_or_else(bad)?);
                    let v = f64::from_bits(d.be64().ok_or_else(bad)?);
                    self.push_float(id, t, v);
                }
            }
            REC_TOMBSTONES => {
                while d.remaining() > 0 {
                    let id = d.be64().ok_or_else(bad)?;
                    let mint = d.varint().ok_or_else(bad)?;
                    let maxt = d.varint().ok_or_else(bad)?;
                    self.stones.entry(id).or_default().push((mint, maxt));
                }
            }
            // Laid out as samples are, each with its label set after the value.
            REC_EXEMPLARS => {
                if d.remaining() == 0 {
                    return Ok(());
                }
                let id0 = d.be64().ok_or_else(bad)? as i64;
                let t0 = d.be64().ok_or_else(bad)? as i64;
                while d.remaining() > 0 {
                    let id = id0.wrapping_add(d.varint().ok_or_else(bad)?) as u64;
                    let t = t0.wrapping_add(d.varint().ok_or_else(bad)?);
                    let value = f64::from_bits(d.be64().ok_or_else(bad)?);
                    let n = d.uvarint().ok_or_else(bad)? as usize;
                    let mut ls = Vec::with_capacity(n.min(64));
                    for _ in 0..n {
                        let name = d.str().ok_or_else(bad)?.to_string();
                        let value = d.str().ok_or_else(bad)?.to_string();
                        ls.push(Label { name, value });
                    }
                    let labels = super::labels_from(ls);
                    self.exemplars.push((id, Exemplar { labels, value, t }));
                }
            }
            REC_HISTOGRAMS
            | REC_FLOAT_HISTOGRAMS
            | REC_CUSTOM_HISTOGRAMS
            | REC_CUSTOM_FLOAT_HISTOGRAMS => {
                if d.remaining() == 0 {
                    return Ok(());
                }
                let float = matches!(typ, REC_FLOAT_HISTOGRAMS | REC_CUSTOM_FLOAT_HISTOGRAMS);
                let id0 = d.be64().ok_or_else(bad)? as i64;
                let t0 = d.be64().ok_or_else(bad)? as i64;
                while d.remaining() > 0 {
                    let id = id0.wrapping_add(d.varint().ok_or_else(bad)?) as u64;
                    let t = t0.wrapping_add(d.varint().ok_or_else(bad)?);
                    let h = decode_histogram(&mut d, float).ok_or_else(bad)?;
                    self.histogram(id, t, h)?;
                }
            }
            // Deltas from the previous entry's ref and the first entry's time, then a start
            // time marker: [`start_time`].
            REC_SAMPLES_V2 | REC_HISTOGRAMS_V2 | REC_FLOAT_HISTOGRAMS_V2 => {
                if d.remaining() == 0 {
                    return Ok(());
                }
                let (mut id, mut t0, mut first) = (0i64, 0i64, true);
                while d.remaining() > 0 {
                    let t = if first {
                        id = d.varint().ok_or_else(bad)?;
                        t0 = d.varint().ok_or_else(bad)?;
                        first = false;
                        let st = d.varint().ok_or_else(bad)?;
                        self.with_start_time |= st != 0;
                        t0
                    } else {
                        id = id.wrapping_add(d.varint().ok_or_else(bad)?);
                        let t = t0.wrapping_add(d.varint().ok_or_else(bad)?);
                        self.with_start_time |= start_time(&mut d).ok_or_else(bad)?;
                        t
                    };
                    if typ == REC_SAMPLES_V2 {
                        let v = f64::from_bits(d.be64().ok_or_else(bad)?);
                        self.push_float(id as u64, t, v);
                    } else {
                        let float = typ == REC_FLOAT_HISTOGRAMS_V2;
                        let h = decode_histogram(&mut d, float).ok_or_else(bad)?;
                        self.histogram(id as u64, t, h)?;
                    }
                }
            }
            // Memory-map markers and metadata: nothing vigil needs to rebuild the samples.
            REC_MMAP_MARKERS | REC_METADATA | REC_MIN_VALID_TIME => {}
            // Record types of later Prometheus releases: counted, and the files kept.
            _ => self.unsupported += 1,
        }
        Ok(())
    }

    /// A float sample of a WAL record, unless the head chunks already gave it.
    fn push_float(&mut self, id: u64, t: i64, v: f64) {
        let (n, trust, wbl) = (self.known, self.trust_chunks, self.in_wbl);
        let p = self.sink().get(id, n);
        if trust && !wbl && p.chunks_upto.is_some_and(|u| t <= u) {
            return;
        }
        p.push(Sample { t, v });
    }

    /// Where samples read now go: the out-of-order WAL's are not bounded by `min_valid`.
    fn sink(&mut self) -> &mut RefSamples {
        if self.in_wbl {
            &mut self.ooo
        } else {
            &mut self.samples
        }
    }

    /// One histogram of a record. Schemas finer than 8 (up to 52, which Prometheus reserves
    /// for finer resolutions) are reduced to 8, as Prometheus's replay reduces them; a schema
    /// outside those, or a histogram too wide for a chunk vigil reads back, is counted and
    /// keeps the files; a layout no Prometheus writes is damage.
    fn histogram(&mut self, id: u64, t: i64, mut h: FloatHistogram) -> Result<(), String> {
        use vigil_model::histogram::{MAX_SCHEMA, MIN_SCHEMA};
        if h.schema > MAX_SCHEMA && h.schema <= 52 {
            h.reduce_resolution(MAX_SCHEMA);
        }
        let known = (MIN_SCHEMA..=MAX_SCHEMA).contains(&h.schema) || h.uses_custom_buckets();
        if !known || !super::histogram_chunk::fits(&h) {
            self.unsupported += 1;
            return Ok(());
        }
        // A stale marker may come with any layout.
        if !vigil_model::histogram::valid_layout(&h) && !vigil_model::is_stale_nan(h.sum) {
            return Err(format!(
                "a native histogram at {t} whose buckets do not match its spans"
            ));
        }
        let n = self.known;
        self.sink().get(id, n).push_histogram(HistogramSample {
            t,
            h: std::sync::Arc::new(h),
        });
        Ok(())
    }

    /// The memory-mapped head chunks of one `chunks_head/` file.
    fn head_chunks(&mut self, b: &[u8]) -> End {
        if b.len() < 8
            || u32::from_be_bytes(b[..4].try_into().unwrap_or_default()) != HEAD_CHUNKS_MAGIC
        {
            return End::Damaged("bad magic".into());
        }
        let mut pos = 8;
        // Room for a chunk's fixed header (ref, mint, maxt, encoding) and a length byte.
        while b.len() - pos > 8 + 8 + 8 + 1 {
            let mut d = Dec::new(b, pos);
            let (Some(id), Some(_mint), Some(_maxt), Some(enc), Some(len)) =
                (d.be64(), d.be64(), d.be64(), d.u8(), d.uvarint())
            else {
                break;
            };
            if id == 0 && enc == 0 && len == 0 {
                // Zeroes past the last chunk written.
                return End::Clean;
            }
            let Some(data) = d.bytes(len as usize) else {
                return End::Torn(format!("offset {pos}: a chunk cut short"));
            };
            let Some(want) = d.be32() else {
                return End::Torn(format!("offset {pos}: a chunk cut short"));
            };
            if crc(&b[pos..d.pos - 4]) != want {
                return End::Damaged(format!("offset {pos}: chunk checksum mismatch"));
            }
            // The high bit marks an out-of-order chunk; the encoding is in the rest.
            match enc & 0x7f {
                super::chunks::ENC_XOR => {
                    let Some(it) = XorIter::from_bytes(data) else {
                        return End::Damaged(format!("offset {pos}: not a valid XOR chunk"));
                    };
                    self.chunks_read += 1;
                    self.known = self.known.max(self.chunks_read);
                    let in_order = enc & 0x80 == 0;
                    let m = if in_order {
                        &mut self.samples
                    } else {
                        &mut self.ooo
                    };
                    let p = m.get(id, self.known);
                    for x in it {
                        p.push(x);
                        if in_order {
                            p.chunks_upto = p.chunks_upto.max(Some(x.t));
                        }
                    }
                }
                kind @ (super::chunks::ENC_HISTOGRAM | super::chunks::ENC_FLOAT_HISTOGRAM) => {
                    let hs = match super::histogram_chunk::decode(kind, data) {
                        Ok(hs) => hs,
                        Err(e) => return End::Damaged(format!("offset {pos}: {e}")),
                    };
                    self.chunks_read += 1;
                    self.known = self.known.max(self.chunks_read);
                    let m = if enc & 0x80 != 0 {
                        &mut self.ooo
                    } else {
                        &mut self.samples
                    };
                    let p = m.get(id, self.known);
                    for (t, h) in hs {
                        p.push_histogram(HistogramSample {
                            t,
                            h: std::sync::Arc::new(h),
                        });
                    }
                }
                e => return End::Damaged(format!("offset {pos}: unknown chunk encoding {e}")),
            }
            pos = d.pos;
        }
        if b[pos..].iter().all(|&x| x == 0) {
            End::Clean
        } else {
            End::Torn(format!("offset {pos}: a chunk cut short"))
        }
    }
}

/// A byte string ordered as the label sets are (name, 0, value, 0, ...: no string holds a 0
/// byte; far cheaper to compare than the labels); empty if one does, and the caller sorts on
/// the labels themselves.
pub fn order_key(l: &Labels) -> Vec<u8> {
    let mut k = Vec::with_capacity(64);
    for x in l.iter() {
        if x.name.as_bytes().contains(&0) || x.value.as_bytes().contains(&0) {
            return Vec::new();
        }
        k.extend_from_slice(x.name.as_bytes());
        k.push(0);
        k.extend_from_slice(x.value.as_bytes());
        k.push(0);
    }
    k.push(1); // never empty, even for an empty set
    k
}

/// The segments of one WAL directory to read: (path, whether it is the newest non-empty one).
fn wal_sources(
    dir: &Path,
    after: Option<u64>,
    out: &mut Vec<(PathBuf, bool, bool)>,
    wbl: bool,
    imp: &mut Import,
) -> std::io::Result<()> {
    let mut segs = Vec::new();
    for (n, p) in segment_files(dir)? {
        let kind = crate::wal::classify_file(&p)?;
        if matches!(
            kind,
            crate::wal::SegmentKind::Vigil | crate::wal::SegmentKind::Legacy
        ) {
            continue; // vigil's own: its head replays it
        }
        // Only its first bytes and its length: a segment is read whole later, after the
        // size check (a huge file must not be read into memory here).
        let len = std::fs::metadata(&p)?.len();
        let mut b = Vec::with_capacity(crate::wal::SEGMENT_MAGIC.len());
        {
            use std::io::Read;
            std::fs::File::open(&p)?
                .take(crate::wal::SEGMENT_MAGIC.len() as u64)
                .read_to_end(&mut b)?;
        }
        if !is_prometheus_segment(&b) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: a WAL segment of a newer vigil, which this build does not read: left untouched; start the vigil that wrote it",
                    p.display()
                ),
            ));
        }
        imp.files.push(p.clone());
        // Segments a checkpoint covers are superseded by it, as Prometheus replays.
        if after.is_some_and(|c| n <= c) {
            continue;
        }
        segs.push((p, len == 0));
    }
    let newest = segs.iter().rposition(|(_, empty)| !empty);
    for (i, (p, _)) in segs.into_iter().enumerate() {
        out.push((p, Some(i) == newest, wbl));
    }
    Ok(())
}

/// Prometheus cuts WAL segments at 256 MiB at most and head chunk files at 128 MiB (a single
/// huge record may pass that): a file far larger is not read whole into memory, it is kept.
const MAX_FILE: u64 = 1 << 30;

fn too_big(path: &Path) -> std::io::Result<Option<String>> {
    let n = std::fs::metadata(path)?.len();
    Ok((n > MAX_FILE).then(|| {
        format!("{n} bytes, more than any segment Prometheus writes ({MAX_FILE}): not read")
    }))
}

/// Read Prometheus's head in `dir` (and in `dir/prometheus-import/`, where an interrupted
/// import left it): in-order samples at or after `min_valid` (older ones are in blocks, as
/// Prometheus's own replay assumes), out-of-order ones whatever their time.
pub fn read(dir: &Path, min_valid: i64) -> std::io::Result<Import> {
    // Prometheus run again after an import was cut short starts its refs at 1 again: the
    // two heads' refs overlap, and read together one's samples would be filed under the
    // other's series. Refused before anything is written, naming both.
    // Only once staging finished (its marker written): a crash in the middle of staging
    // leaves one head split between the two places, whose refs agree, read as one.
    let staging = dir.join(STAGING);
    if staging.join(STAGED).exists() && holds_head(dir)? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} holds Prometheus's head from an import cut short, and {} holds another Prometheus head written since (Prometheus ran here again): their series refs overlap, so they cannot be read together; move one of them (its wal/, chunks_head/ and wbl/) out of the directory and start again. Nothing was changed",
                staging.display(),
                dir.display()
            ),
        ));
    }
    let mut g = Gather::default();
    let mut imp = Import::default();
    let mut sources: Vec<(PathBuf, bool, bool)> = Vec::new(); // (segment, newest, wbl)
    let mut heads = Vec::new();
    for root in [dir.join(STAGING), dir.to_path_buf()] {
        let wal = root.join("wal");
        // Prometheus's checkpoints (vigil's are its head's): the newest is read, older ones
        // are superseded.
        let foreign = foreign_wal_files(&wal)?;
        let cps: Vec<(u64, PathBuf)> = checkpoints(&wal)?
            .into_iter()
            .filter(|(_, p)| foreign.contains(p))
            .collect();
        imp.files.extend(cps.iter().map(|(_, p)| p.clone()));
        if let Some((_, cp)) = cps.last() {
            for (_, p) in segment_files(cp)? {
                sources.push((p, false, false));
            }
        }
        wal_sources(
            &wal,
            cps.last().map(|(n, _)| *n),
            &mut sources,
            false,
            &mut imp,
        )?;
        wal_sources(&root.join("wbl"), None, &mut sources, true, &mut imp)?;
        let hc = segment_files(&root.join("chunks_head"))?;
        imp.files.extend(hc.iter().map(|(_, p)| p.clone()));
        heads.push(hc);
    }
    // Head chunks first, as Prometheus replays (see `Gather::trust_chunks`). Chunk files in
    // both places are one head split by a crash while staging: which of its files was the
    // newest (the one a crash may tear) is not known per place, so nothing is skipped then.
    let mut whole = heads.iter().filter(|h| !h.is_empty()).count() <= 1;
    for hc in heads {
        let n = hc.len();
        // A file missing between others (Prometheus removes them only from the start) may
        // have held a chunk from the middle of a series' history: the WAL fills it in.
        if hc.windows(2).any(|w| w[1].0 != w[0].0 + 1) {
            whole = false;
        }
        for (i, (_, path)) in hc.into_iter().enumerate() {
            if let Some(why) = too_big(&path)? {
                imp.unreadable.push((path, why));
                whole = false;
                continue;
            }
            let b = std::fs::read(&path)?;
            match g.head_chunks(&b) {
                End::Clean => {}
                End::Torn(why) if i + 1 == n => {
                    tracing::warn!(file = %path.display(), %why, "Prometheus head chunk file ends in a torn chunk: read up to it");
                }
                End::Torn(why) | End::Damaged(why) => {
                    imp.unreadable.push((path, why));
                    whole = false;
                }
            }
        }
    }

    g.trust_chunks = whole;
    // Files are read, checked and decompressed on a second thread, which also decodes the
    // series records (label sets: allocation-heavy), while this one decodes the rest (the
    // samples): start-up on a big WAL is this loop, and the halves cost about the same.
    // Records reach this thread in file order, so a ref's series record has been decoded
    // before its samples arrive (`known` sizes the dense ref vector from that).
    enum Msg {
        Records(Vec<Vec<u8>>, usize),
        /// A damaged series record: the file's records after it are not sent.
        RecordError(String),
        Done(End),
        TooBig(String),
        Failed(std::io::Error),
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(16);
    let paths: Vec<PathBuf> = sources.iter().map(|(p, _, _)| p.clone()).collect();
    g.labels = std::thread::scope(|sc| -> std::io::Result<foldhash::HashMap<u64, Labels>> {
        let reader = sc.spawn(move || {
            let mut labels: foldhash::HashMap<u64, Labels> = Default::default();
            for path in paths {
                let b = match too_big(&path).and_then(|big| match big {
                    Some(why) => Ok(Err(why)),
                    None => std::fs::read(&path).map(Ok),
                }) {
                    Ok(Ok(b)) => b,
                    Ok(Err(why)) => {
                        if tx.send(Msg::TooBig(why)).is_err() {
                            return labels;
                        }
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return labels;
                    }
                };
                let mut batch = Vec::new();
                // Stopped: the receiver went away, or a series record was damaged.
                let (mut gone, mut stopped) = (false, false);
                let end = read_segment(&b, |r| {
                    if gone || stopped {
                        return;
                    }
                    if r.first() == Some(&REC_SERIES) {
                        let mut d = Dec::new(&r[1..], 0);
                        if let Err(e) = series_record(&mut labels, &mut d, REC_SERIES) {
                            let n = labels.len();
                            gone = (!batch.is_empty()
                                && tx
                                    .send(Msg::Records(std::mem::take(&mut batch), n))
                                    .is_err())
                                || tx.send(Msg::RecordError(e)).is_err();
                            stopped = true;
                        }
                        return;
                    }
                    batch.push(r.to_vec());
                    if batch.len() >= 64 {
                        let n = labels.len();
                        gone = tx
                            .send(Msg::Records(std::mem::take(&mut batch), n))
                            .is_err();
                    }
                });
                let n = labels.len();
                if gone
                    || (!batch.is_empty() && tx.send(Msg::Records(batch, n)).is_err())
                    || tx.send(Msg::Done(end)).is_err()
                {
                    return labels;
                }
            }
            labels
        });
        // Owned here: dropped on any way out, so a reader blocked on a full channel stops.
        let rx = rx;
        for (path, newest, wbl) in sources {
            g.in_wbl = wbl;
            let mut rec_err = None;
            let end = loop {
                match rx.recv() {
                    Ok(Msg::Records(rs, known)) => {
                        g.known = g.known.max(known);
                        for r in rs {
                            if rec_err.is_none()
                                && let Err(e) = g.record(&r)
                            {
                                rec_err = Some(e);
                            }
                        }
                    }
                    Ok(Msg::RecordError(e)) => {
                        rec_err.get_or_insert(e);
                    }
                    Ok(Msg::Done(end)) => break Some(end),
                    Ok(Msg::TooBig(why)) => {
                        imp.unreadable.push((path.clone(), why));
                        break None;
                    }
                    Ok(Msg::Failed(e)) => return Err(e),
                    Err(_) => return Err(std::io::Error::other("the WAL reader stopped")),
                }
            };
            let Some(end) = end else { continue };
            match (end, rec_err) {
                (_, Some(e)) => imp.unreadable.push((path, e)),
                (End::Clean, None) => {}
                (End::Torn(why), None) if newest => {
                    tracing::warn!(file = %path.display(), %why, "Prometheus WAL segment ends in a torn record (a write cut short by the crash): read up to it, as Prometheus's repair would");
                }
                (End::Torn(why) | End::Damaged(why), None) => imp.unreadable.push((path, why)),
            }
        }
        drop(rx);
        reader
            .join()
            .map_err(|_| std::io::Error::other("the WAL reader failed"))
    })?;
    g.known = g.known.max(g.labels.len());
    // One label set may have had several refs over the head's life: merged by labels (their
    // hash is cached). Not sorted: vigil's head takes series in any order, and only the part
    // written as blocks is sorted, there.
    let mut ids: Vec<u64> = g.samples.ids().chain(g.ooo.ids()).collect();
    ids.sort_unstable();
    ids.dedup();
    // Refs grouped by label set, in order of their first ref: each label set's samples are
    // unpacked, cleaned, sorted and packed again alone, so only one series is ever unpacked.
    // The map borrows the label sets, and only the rare later refs of a label set get a
    // list: a million-series import spent a third of a second cloning, dropping and
    // allocating here.
    let mut at: foldhash::HashMap<&Labels, usize> = Default::default();
    at.reserve(ids.len());
    let mut firsts: Vec<(u64, Labels)> = Vec::with_capacity(ids.len());
    let mut more: foldhash::HashMap<usize, Vec<u64>> = Default::default();
    for id in ids {
        let Some(labels) = g.labels.get(&id) else {
            // Its series record was in a file that could not be read (Prometheus drops a
            // series' samples with its record only after they are in a block).
            let p = g.samples.take(id);
            let kept = p.samples().iter().filter(|s| s.t >= min_valid).count()
                + p.histograms.iter().filter(|s| s.t >= min_valid).count();
            imp.orphan_samples += (kept + g.ooo.take(id).len()) as u64;
            continue;
        };
        match at.entry(labels) {
            std::collections::hash_map::Entry::Occupied(e) => {
                more.entry(*e.get()).or_default().push(id)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(firsts.len());
                firsts.push((id, labels.clone()));
            }
        }
    }
    drop(at);
    let mut series: Vec<(Labels, Packed)> = Vec::with_capacity(firsts.len());
    for (i, (first, labels)) in firsts.into_iter().enumerate() {
        let more = more.remove(&i);
        // Most series: one ref, in time order, nothing out of order, deleted or too old to
        // keep; kept packed as they are.
        if more.is_none() {
            let id = first;
            let plain =
                g.samples.only_part(id).is_some_and(|p| {
                    p.in_order && p.first_t >= min_valid && p.histograms.is_empty()
                }) && g.ooo.has_none(id)
                    && !g.stones.contains_key(&id);
            if plain {
                series.push((labels, g.samples.take(id)));
                continue;
            }
        }
        let ids = std::iter::once(first).chain(more.into_iter().flatten());
        let mut all: Vec<Sample> = Vec::new();
        let mut hists: Vec<HistogramSample> = Vec::new();
        for id in ids {
            let (p, o) = (g.samples.take(id), g.ooo.take(id));
            let mut samples = p.samples();
            samples.retain(|s| s.t >= min_valid);
            samples.extend(o.samples());
            let mut h = p.histograms;
            h.retain(|s| s.t >= min_valid);
            h.extend(o.histograms);
            if let Some(stones) = g.stones.remove(&id) {
                let stones = super::tombstones::normalize(stones);
                samples.retain(|s| !super::tombstones::deleted(&stones, s.t));
                h.retain(|s| !super::tombstones::deleted(&stones, s.t));
            }
            all.extend(samples);
            hists.extend(h);
        }
        if !all.is_sorted_by_key(|x| x.t) {
            all.sort_by_key(|x| x.t);
        }
        all.dedup_by_key(|x| x.t);
        if !hists.is_sorted_by_key(|x| x.t) {
            hists.sort_by_key(|x| x.t);
        }
        hists.dedup_by_key(|x| x.t);
        // A float and a histogram at one time (refs of one label set that disagree): the
        // float, as a query picks, the same for blocks and the head.
        if !all.is_empty() {
            hists.retain(|h| all.binary_search_by_key(&h.t, |x| x.t).is_err());
        }
        if !all.is_empty() || !hists.is_empty() {
            let mut p = Packed::from_samples(&all);
            p.histograms = hists;
            series.push((labels, p));
        }
    }
    imp.series = series;
    imp.samples = imp.series.iter().map(|(_, s)| s.len() as u64).sum();
    // A label set named by several refs over the head's life keeps its exemplars under one.
    for (id, e) in std::mem::take(&mut g.exemplars) {
        match g.labels.get(&id) {
            Some(l) => imp.exemplars.push((l.clone(), e)),
            None => imp.orphan_exemplars += 1,
        }
    }
    imp.unsupported_records = g.unsupported;
    if g.with_start_time {
        // Carried without them: the files are kept, so nothing is lost.
        imp.unsupported_records += 1;
    }
    Ok(imp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame records as Prometheus's WAL does: 32 KiB pages, fragments with CRC-32C.
    pub(crate) fn frame(records: &[Vec<u8>], compress: bool) -> Vec<u8> {
        frame_as(records, if compress { SNAPPY } else { 0 })
    }

    /// `frame` with each record compressed as `flag` says (0, `SNAPPY` or `ZSTD`).
    pub(crate) fn frame_as(records: &[Vec<u8>], flag: u8) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        for r in records {
            let data = match flag {
                SNAPPY => snap::raw::Encoder::new().compress_vec(r).unwrap(),
                ZSTD => ruzstd::encoding::compress_to_vec(
                    &r[..],
                    ruzstd::encoding::CompressionLevel::Fastest,
                ),
                _ => r.clone(),
            };
            let mut rest = &data[..];
            let mut first = true;
            loop {
                let left = PAGE - out.len() % PAGE;
                if left < FRAG_HEADER + 1 {
                    out.resize(out.len() + left, 0);
                    continue;
                }
                let n = rest.len().min(left - FRAG_HEADER);
                let last = n == rest.len();
                let kind = match (first, last) {
                    (true, true) => 1,
                    (true, false) => 2,
                    (false, false) => 3,
                    (false, true) => 4,
                };
                out.push(kind | flag);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.extend_from_slice(&crc(&rest[..n]).to_be_bytes());
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                first = false;
                if last {
                    break;
                }
            }
        }
        out
    }

    pub(crate) fn series_rec(id: u64, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut b = vec![REC_SERIES];
        b.extend_from_slice(&id.to_be_bytes());
        put_labels(&mut b, pairs);
        b
    }

    /// A label set as records write one: count, then name and value of each.
    fn put_labels(b: &mut Vec<u8>, pairs: &[(&str, &str)]) {
        super::super::put_uvarint(b, pairs.len() as u64);
        for (n, v) in pairs {
            super::super::put_str(b, n);
            super::super::put_str(b, v);
        }
    }

    pub(crate) fn samples_rec(s: &[(u64, i64, f64)]) -> Vec<u8> {
        let mut b = vec![REC_SAMPLES];
        b.extend_from_slice(&s[0].0.to_be_bytes());
        b.extend_from_slice(&s[0].1.to_be_bytes());
        for &(id, t, v) in s {
            super::super::put_varint(&mut b, id as i64 - s[0].0 as i64);
            super::super::put_varint(&mut b, t - s[0].1);
            b.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        b
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-promhead-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("wal")).unwrap();
        d
    }

    #[test]
    fn records_across_pages_compressed_or_not_are_read() {
        for flag in [0, SNAPPY, ZSTD] {
            let d = tmp(&format!("pages-{flag}"));
            // A series record bigger than a page, so it is split into fragments.
            let big = "x".repeat(40_000);
            let mut recs = vec![
                series_rec(1, &[("__name__", "up"), ("job", "a")]),
                series_rec(2, &[("__name__", "big"), ("v", &big)]),
            ];
            for k in 0..2000i64 {
                recs.push(samples_rec(&[(1, k * 1000, k as f64), (2, k * 1000, 1.0)]));
            }
            std::fs::write(d.join("wal/00000000"), frame_as(&recs, flag)).unwrap();
            assert!(present(&d).unwrap());
            let imp = read(&d, 5_000).unwrap();
            assert!(imp.unreadable.is_empty(), "{:?}", imp.unreadable);
            assert_eq!(imp.series.len(), 2);
            let up = imp
                .series
                .iter()
                .find(|(l, _)| l.metric_name() == Some("up"))
                .unwrap();
            assert_eq!(up.1.len(), 1995);
            assert_eq!(up.1.samples()[0], Sample { t: 5000, v: 5.0 });
            assert!(imp.complete());
            assert_eq!(imp.files.len(), 1);
        }
    }

    fn db_open(d: &Path) -> crate::db::Db {
        let opts = crate::db::Options::new(0, 0).with_block_range(10_000, Some(10_000));
        crate::db::Db::open(d, opts).unwrap()
    }

    fn count(db: &crate::db::Db) -> usize {
        use vigil_storage::Storage;
        let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
        q.select(&[vigil_storage::Matcher::equal("__name__", "up")])
            .unwrap()
            .map(|s| s.samples.len())
            .sum()
    }

    #[test]
    fn an_import_persists_blocks_and_the_newest_range_then_removes_the_files() {
        let d = tmp("import");
        let mut recs = vec![series_rec(1, &[("__name__", "up"), ("job", "a")])];
        for k in 0..50i64 {
            recs.push(samples_rec(&[(1, k * 1000, k as f64)]));
        }
        std::fs::write(d.join("wal/00000000"), frame(&recs, true)).unwrap();
        // An out-of-order sample in the wbl, older than everything else.
        std::fs::create_dir_all(d.join("wbl")).unwrap();
        std::fs::write(
            d.join("wbl/00000000"),
            frame(&[samples_rec(&[(1, -5000, 9.0)])], false),
        )
        .unwrap();
        {
            let db = db_open(&d);
            assert_eq!(count(&db), 51);
            // Complete 10s ranges became blocks; the newest (40s..50s) is in vigil's head.
            assert_eq!(db.blocks().len(), 5);
            assert_eq!(db.head().time_range(), Some((40_000, 49_000)));
        }
        assert!(!d.join(STAGING).exists());
        assert!(!d.join("wbl").exists());
        assert!(!d.join("prometheus-unread").exists());
        for p in std::fs::read_dir(d.join("wal")).unwrap() {
            let b = std::fs::read(p.unwrap().path()).unwrap();
            assert!(b.starts_with(crate::wal::SEGMENT_MAGIC));
        }
        // Restarted: the same, from vigil's own blocks and WAL.
        let db = db_open(&d);
        assert_eq!(count(&db), 51);
    }

    /// An import cut short after vigil's WAL was synced and before Prometheus's staged files
    /// went: run again, every sample is already in the head, so the files go (not kept under
    /// `prometheus-unread/` as if something could not be carried over) and nothing doubles.
    #[test]
    fn an_import_run_again_after_it_was_cut_short_finishes() {
        let d = tmp("rerun");
        let mut recs = vec![series_rec(1, &[("__name__", "up"), ("job", "a")])];
        for k in 0..8i64 {
            recs.push(samples_rec(&[(1, 100_000 + k * 1000, k as f64)]));
        }
        let seg = frame(&recs, true);
        std::fs::write(d.join("wal/00000000"), &seg).unwrap();
        assert_eq!(count(&db_open(&d)), 8);
        // The staged copy, as the crash left it.
        std::fs::create_dir_all(d.join(STAGING).join("wal")).unwrap();
        std::fs::write(d.join(STAGING).join("wal/00000000"), &seg).unwrap();
        assert_eq!(count(&db_open(&d)), 8);
        assert!(!d.join(STAGING).exists());
        assert!(!d.join("prometheus-unread").exists());
    }

    /// A crash in the middle of staging leaves one head split between `prometheus-import/`
    /// and the data directory, without staging's marker: read as the one head it is.
    #[test]
    fn a_head_split_by_a_crash_while_staging_is_read_as_one() {
        let d = tmp("split");
        let mut first = vec![series_rec(1, &[("__name__", "up"), ("job", "a")])];
        let mut second = Vec::new();
        for k in 0..8i64 {
            let r = samples_rec(&[(1, 100_000 + k * 1000, k as f64)]);
            if k < 4 { first.push(r) } else { second.push(r) }
        }
        std::fs::create_dir_all(d.join(STAGING).join("wal")).unwrap();
        std::fs::write(d.join(STAGING).join("wal/00000000"), frame(&first, true)).unwrap();
        std::fs::write(d.join("wal/00000001"), frame(&second, true)).unwrap();
        assert_eq!(count(&db_open(&d)), 8);
        assert!(!d.join(STAGING).exists());
        assert!(!d.join("prometheus-unread").exists());
        assert_eq!(count(&db_open(&d)), 8);
    }

    /// Head chunk files split between the two places by a crash while staging: a torn file
    /// in `prometheus-import/` is not known to be the newest, so the WAL fills in anyway.
    #[test]
    fn split_head_chunks_skip_nothing_from_the_wal() {
        let d = tmp("split-chunks");
        let pts = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..=to).map(|k| (k * 1000, k as f64)).collect()
        };
        let mut recs = vec![series_rec(1, &[("__name__", "up")])];
        for (t, v) in pts(1, 8) {
            recs.push(samples_rec(&[(1, t, v)]));
        }
        std::fs::write(d.join("wal/00000000"), frame(&recs, true)).unwrap();
        let staged = d.join(STAGING).join("chunks_head");
        std::fs::create_dir_all(&staged).unwrap();
        let mut torn = head_chunk_file(&[(1, pts(1, 3))]);
        torn.truncate(torn.len() - 3);
        std::fs::write(staged.join("000001"), &torn).unwrap();
        std::fs::create_dir_all(d.join("chunks_head")).unwrap();
        std::fs::write(
            d.join("chunks_head/000002"),
            head_chunk_file(&[(1, pts(4, 5))]),
        )
        .unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        let want: Vec<Sample> = pts(1, 8)
            .into_iter()
            .map(|(t, v)| Sample { t, v })
            .collect();
        assert_eq!(imp.series[0].1.samples(), want);
    }

    /// A read-only open (what the tools do) of a directory where an import was cut short
    /// reads vigil's own WAL as well as Prometheus's staged head.
    #[test]
    fn a_read_only_open_reads_vigils_wal_beside_a_staged_head() {
        use vigil_storage::Storage;
        let d = tmp("readonly");
        {
            let db = db_open(&d);
            let mut app = db.head().appender();
            let b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
            for k in 0..3i64 {
                app.append(0, &b, 100_000 + k * 1000, 1.0).unwrap();
            }
            app.commit().unwrap();
        }
        let staged = d.join(STAGING).join("wal");
        std::fs::create_dir_all(&staged).unwrap();
        let mut recs = vec![series_rec(1, &[("__name__", "up"), ("job", "a")])];
        for k in 0..50i64 {
            recs.push(samples_rec(&[(1, k * 1000, k as f64)]));
        }
        std::fs::write(staged.join("00000000"), frame(&recs, true)).unwrap();
        let db = crate::db::Db::open_read_only(&d).unwrap();
        assert_eq!(count(&db), 53);
    }

    #[test]
    fn a_ref_seen_before_and_after_many_series_keeps_all_its_samples() {
        let d = tmp("refsplit");
        // Ref 200000 gets samples while few series are known (kept in the map), then again
        // after 100,000 more series records (the vector then covers it).
        let mut recs = vec![
            series_rec(200_000, &[("__name__", "up")]),
            samples_rec(&[(200_000, 1000, 1.0)]),
        ];
        for i in 1..=100_000u64 {
            recs.push(series_rec(i, &[("__name__", "x"), ("i", &i.to_string())]));
        }
        recs.push(samples_rec(&[(200_000, 2000, 2.0)]));
        std::fs::write(d.join("wal/00000000"), frame(&recs, false)).unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        let up = imp
            .series
            .iter()
            .find(|(l, _)| l.metric_name() == Some("up"))
            .unwrap();
        assert_eq!(
            up.1.samples(),
            vec![Sample { t: 1000, v: 1.0 }, Sample { t: 2000, v: 2.0 }]
        );
    }

    #[test]
    fn an_out_of_order_block_does_not_bound_the_in_order_head() {
        let d = tmp("oooblock");
        // Prometheus's out-of-order block reaching past the head's in-order samples.
        let late = vec![(
            Labels::from_pairs([("__name__", "up"), ("job", "late")]),
            vec![Sample { t: 1000, v: 7.0 }],
        )];
        let c = crate::block::Compaction {
            level: 1,
            sources: vec![],
            hints: vec!["from-out-of-order".into()],
        };
        super::super::writer::write_block(&d, 0, 20_000, late, c).unwrap();
        let mut recs = vec![series_rec(1, &[("__name__", "up"), ("job", "a")])];
        for k in 0..5i64 {
            recs.push(samples_rec(&[(1, 5000 + k * 1000, k as f64)]));
        }
        std::fs::write(d.join("wal/00000000"), frame(&recs, false)).unwrap();
        let db = db_open(&d);
        assert_eq!(
            count(&db),
            6,
            "the head's samples inside the out-of-order block's range"
        );
        assert!(!d.join("prometheus-unread").exists());
    }

    #[test]
    fn files_holding_what_vigil_cannot_store_are_kept() {
        let d = tmp("keep");
        let recs = vec![
            series_rec(1, &[("__name__", "up")]),
            samples_rec(&[(1, 1000, 1.0)]),
            // A record type of a later Prometheus.
            vec![200, 0, 0, 0, 0, 0, 0, 0, 1],
        ];
        let seg = frame(&recs, false);
        std::fs::write(d.join("wal/00000000"), &seg).unwrap();
        {
            let db = db_open(&d);
            assert_eq!(count(&db), 1);
        }
        let kept: Vec<_> = std::fs::read_dir(d.join("prometheus-unread"))
            .unwrap()
            .collect();
        assert_eq!(kept.len(), 1);
        let p = kept[0].as_ref().unwrap().path().join("wal/00000000");
        assert_eq!(std::fs::read(p).unwrap(), seg);
        let db = db_open(&d);
        assert_eq!(count(&db), 1);
    }

    /// One histogram as Prometheus's records write it (integer buckets as deltas).
    fn put_histogram(b: &mut Vec<u8>, h: &FloatHistogram, float: bool) {
        use super::super::{put_uvarint, put_varint};
        b.push(h.hint.code());
        put_varint(b, h.schema as i64);
        b.extend_from_slice(&h.zero_threshold.to_bits().to_be_bytes());
        for c in [h.zero_count, h.count] {
            if float {
                b.extend_from_slice(&c.to_bits().to_be_bytes());
            } else {
                put_uvarint(b, c as u64);
            }
        }
        b.extend_from_slice(&h.sum.to_bits().to_be_bytes());
        for spans in [&h.positive_spans, &h.negative_spans] {
            put_uvarint(b, spans.len() as u64);
            for sp in spans.iter() {
                put_varint(b, sp.offset as i64);
                put_uvarint(b, sp.length as u64);
            }
        }
        for buckets in [&h.positive_buckets, &h.negative_buckets] {
            put_uvarint(b, buckets.len() as u64);
            let mut prev = 0i64;
            for &c in buckets.iter() {
                if float {
                    b.extend_from_slice(&c.to_bits().to_be_bytes());
                } else {
                    put_varint(b, c as i64 - prev);
                    prev = c as i64;
                }
            }
        }
        if h.schema == vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA {
            put_uvarint(b, h.custom_values.len() as u64);
            for v in &h.custom_values {
                b.extend_from_slice(&v.to_bits().to_be_bytes());
            }
        }
    }

    /// A histogram samples record of version 1 (types 7 to 10): laid out as a samples record.
    fn histograms_rec(typ: u8, e: &[(u64, i64, FloatHistogram)]) -> Vec<u8> {
        let mut b = vec![typ];
        b.extend_from_slice(&e[0].0.to_be_bytes());
        b.extend_from_slice(&e[0].1.to_be_bytes());
        for (id, t, h) in e {
            super::super::put_varint(&mut b, *id as i64 - e[0].0 as i64);
            super::super::put_varint(&mut b, t - e[0].1);
            put_histogram(&mut b, h, matches!(typ, 8 | 10));
        }
        b
    }

    /// A version 2 record (types 11 to 13) of floats or histograms with start times `st`.
    fn v2_rec(typ: u8, e: &[(u64, i64, i64, Result<f64, FloatHistogram>)]) -> Vec<u8> {
        use super::super::put_varint;
        let mut b = vec![typ];
        for (k, (id, t, st, x)) in e.iter().enumerate() {
            if k == 0 {
                put_varint(&mut b, *id as i64);
                put_varint(&mut b, *t);
                put_varint(&mut b, *st);
            } else {
                put_varint(&mut b, *id as i64 - e[k - 1].0 as i64);
                put_varint(&mut b, t - e[0].1);
                match *st {
                    0 => b.push(0),
                    st if st == e[k - 1].2 => b.push(1),
                    st => {
                        b.push(2);
                        put_varint(&mut b, st - e[0].2);
                    }
                }
            }
            match x {
                Ok(v) => b.extend_from_slice(&v.to_bits().to_be_bytes()),
                Err(h) => put_histogram(&mut b, h, typ == 13),
            }
        }
        b
    }

    fn nh(k: u32, float: bool) -> FloatHistogram {
        let c = k as f64;
        let frac = if float { 0.5 } else { 0.0 };
        FloatHistogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: c + frac,
            count: 4.0 * c + 1.0 + frac,
            sum: 10.0 * c,
            positive_spans: vec![Span {
                offset: -1,
                length: 2,
            }],
            positive_buckets: vec![c, 2.0 * c],
            negative_spans: vec![Span {
                offset: 2,
                length: 1,
            }],
            negative_buckets: vec![c + 1.0],
            ..Default::default()
        }
    }

    fn histograms_of(db: &crate::db::Db, name: &str) -> Vec<(i64, FloatHistogram)> {
        use vigil_storage::Storage;
        let q = db.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
        q.select(&[vigil_storage::Matcher::equal("__name__", name)])
            .unwrap()
            .flat_map(|s| s.histograms)
            .map(|s| (s.t, (*s.h).clone()))
            .collect()
    }

    /// Native histograms of every record layout (integer, float, custom buckets, version 2)
    /// and of head chunks are carried into vigil's blocks and head with their values, and
    /// the files then go; records with start times, which vigil does not keep, keep them.
    #[test]
    fn native_histograms_of_the_head_are_carried_over() {
        let d = tmp("histograms");
        let mut recs = vec![
            series_rec(1, &[("__name__", "int_h")]),
            series_rec(2, &[("__name__", "float_h")]),
            series_rec(3, &[("__name__", "custom_h")]),
            series_rec(4, &[("__name__", "v2_h")]),
            series_rec(5, &[("__name__", "up")]),
            series_rec(6, &[("__name__", "v2_g")]),
        ];
        let custom = |k: u32| FloatHistogram {
            schema: vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA,
            count: 3.0 * k as f64,
            sum: k as f64,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![k as f64, 2.0 * k as f64],
            custom_values: vec![0.5],
            ..Default::default()
        };
        let mut want: HashMap<&str, Vec<(i64, FloatHistogram)>> = HashMap::new();
        // Chunks as the head memory-mapped them, then the newer samples in the WAL.
        let mut chunk = super::super::histogram_chunk::HistogramChunk::new();
        for k in 0..10u32 {
            let t = k as i64 * 1000;
            chunk.append(t, &nh(k, true)).unwrap();
            want.entry("float_h").or_default().push((t, nh(k, true)));
        }
        for k in 10..35u32 {
            let t = k as i64 * 1000;
            recs.push(histograms_rec(7, &[(1, t, nh(k, false))]));
            recs.push(histograms_rec(8, &[(2, t, nh(k, true))]));
            recs.push(histograms_rec(9, &[(3, t, custom(k))]));
            recs.push(v2_rec(
                13,
                &[(4, t, 0, Err(nh(k, true))), (6, t, 0, Err(nh(k + 1, true)))],
            ));
            recs.push(v2_rec(
                11,
                &[(5, t, 0, Ok(k as f64)), (5, t + 500, 0, Ok(k as f64 + 0.5))],
            ));
            for (name, h) in [("int_h", nh(k, false)), ("float_h", nh(k, true))] {
                want.entry(name).or_default().push((t, h));
            }
            want.entry("custom_h").or_default().push((t, custom(k)));
            want.entry("v2_h").or_default().push((t, nh(k, true)));
            want.entry("v2_g").or_default().push((t, nh(k + 1, true)));
        }
        std::fs::write(d.join("wal/00000000"), frame(&recs, true)).unwrap();
        std::fs::create_dir_all(d.join("chunks_head")).unwrap();
        let mut file = super::super::HEAD_CHUNKS_MAGIC.to_be_bytes().to_vec();
        file.extend_from_slice(&[1, 0, 0, 0]);
        let start = file.len();
        let data = chunk.bytes();
        file.extend_from_slice(&2u64.to_be_bytes());
        file.extend_from_slice(&0i64.to_be_bytes());
        file.extend_from_slice(&9000i64.to_be_bytes());
        file.push(chunk.encoding());
        super::super::put_uvarint(&mut file, data.len() as u64);
        file.extend_from_slice(&data);
        let sum = crc(&file[start..]);
        file.extend_from_slice(&sum.to_be_bytes());
        std::fs::write(d.join("chunks_head/000001"), &file).unwrap();
        {
            let db = db_open(&d);
            // Complete 10s ranges went to blocks, the newest to the head.
            assert_eq!(db.blocks().len(), 3);
            assert_eq!(count(&db), 50);
            for (name, w) in &want {
                let got = histograms_of(&db, name);
                assert_eq!(got.len(), w.len(), "{name}");
                for ((gt, g), (wt, w)) in got.iter().zip(w) {
                    assert_eq!(gt, wt, "{name}");
                    assert!(g.same_as(w), "{name} at {gt}: {g:?} != {w:?}");
                }
            }
        }
        assert!(!d.join(STAGING).exists());
        assert!(!d.join("prometheus-unread").exists());
        assert!(!d.join("chunks_head").exists());
        // Restarted: the same, from vigil's own blocks and WAL.
        let db = db_open(&d);
        for (name, w) in &want {
            assert_eq!(histograms_of(&db, name).len(), w.len(), "{name}");
        }
        assert_eq!(count(&db), 50);

        // A start time, which vigil does not keep: the samples are served, the files kept.
        let d = tmp("histograms-st");
        let recs = vec![
            series_rec(1, &[("__name__", "up")]),
            v2_rec(11, &[(1, 1000, 0, Ok(1.0)), (1, 2000, 500, Ok(2.0))]),
        ];
        std::fs::write(d.join("wal/00000000"), frame(&recs, false)).unwrap();
        let db = db_open(&d);
        assert_eq!(count(&db), 2);
        assert!(d.join("prometheus-unread").exists());
    }

    /// (series ref, time, value, labels).
    type RawExemplar<'a> = (u64, i64, f64, &'a [(&'a str, &'a str)]);

    /// An exemplars record as Prometheus writes it: (ref, time) deltas from the first as in
    /// a samples record, then the value and the label set.
    pub(crate) fn exemplars_rec(e: &[RawExemplar]) -> Vec<u8> {
        let mut b = vec![REC_EXEMPLARS];
        b.extend_from_slice(&e[0].0.to_be_bytes());
        b.extend_from_slice(&e[0].1.to_be_bytes());
        for &(id, t, v, pairs) in e {
            super::super::put_varint(&mut b, id as i64 - e[0].0 as i64);
            super::super::put_varint(&mut b, t - e[0].1);
            b.extend_from_slice(&v.to_bits().to_be_bytes());
            put_labels(&mut b, pairs);
        }
        b
    }

    /// A WAL with exemplars: carried into the ring and vigil's WAL where the head keeps them
    /// (those of a series whose samples all went to blocks dropped, as Prometheus's next
    /// truncation drops them), the files then removed; without the feature they are kept.
    #[test]
    fn exemplars_are_carried_over_where_the_head_keeps_them() {
        use vigil_storage::Storage;
        let recs = vec![
            series_rec(1, &[("__name__", "up"), ("job", "a")]),
            series_rec(2, &[("__name__", "gone")]),
            samples_rec(&[(1, 100_000, 1.0), (2, 1000, 1.0)]),
            samples_rec(&[(1, 101_000, 2.0)]),
            exemplars_rec(&[
                (1, 100_000, 0.5, &[("trace_id", "a")]),
                (2, 1000, 0.5, &[("trace_id", "g")]),
            ]),
            exemplars_rec(&[
                (1, 101_000, 0.7, &[("trace_id", "b")]),
                // Older than the series' newest: the replay drops it.
                (1, 99_000, 0.1, &[("trace_id", "old")]),
            ]),
        ];
        let seg = frame(&recs, true);
        let up = [vigil_storage::Matcher::equal("__name__", "up")];
        let on = |d: &Path| {
            let mut opts = crate::db::Options::new(0, 0).with_block_range(10_000, Some(10_000));
            opts.wal.exemplars = true;
            opts.max_exemplars = 100;
            crate::db::Db::open(d, opts).unwrap()
        };
        let d = tmp("exemplars");
        std::fs::write(d.join("wal/00000000"), &seg).unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert_eq!(imp.exemplars.len(), 4);
        assert!(imp.complete());
        let traces = |db: &crate::db::Db| -> Vec<String> {
            db.exemplars(0, i64::MAX, &[up.to_vec()])
                .unwrap()
                .iter()
                .flat_map(|s| s.exemplars.iter())
                .map(|e| e.labels.get("trace_id").unwrap_or_default().to_string())
                .collect()
        };
        {
            let db = on(&d);
            assert_eq!(traces(&db), ["a", "b"]);
        }
        assert!(!d.join(STAGING).exists());
        assert!(!d.join("prometheus-unread").exists());
        // From vigil's own WAL after a restart.
        assert_eq!(traces(&on(&d)), ["a", "b"]);

        // Without the feature: the samples come in, the files are kept, unchanged.
        let d = tmp("exemplars-off");
        std::fs::write(d.join("wal/00000000"), &seg).unwrap();
        {
            let db = db_open(&d);
            assert_eq!(count(&db), 2);
        }
        let kept: Vec<_> = std::fs::read_dir(d.join("prometheus-unread"))
            .unwrap()
            .collect();
        assert_eq!(kept.len(), 1);
        let p = kept[0].as_ref().unwrap().path().join("wal/00000000");
        assert_eq!(std::fs::read(p).unwrap(), seg);
    }

    #[test]
    fn a_damaged_segment_is_reported_and_what_came_before_is_kept() {
        let d = tmp("damaged");
        let recs = vec![
            series_rec(1, &[("__name__", "up")]),
            samples_rec(&[(1, 1000, 1.0)]),
            samples_rec(&[(1, 2000, 2.0)]),
        ];
        let mut b = frame(&recs, false);
        let n = b.len();
        b[n - 3] ^= 0xff; // inside the last record's value
        std::fs::write(d.join("wal/00000000"), &b).unwrap();
        std::fs::write(
            d.join("wal/00000001"),
            frame(&[samples_rec(&[(1, 3000, 3.0)])], false),
        )
        .unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert_eq!(imp.unreadable.len(), 1);
        assert!(
            imp.unreadable[0].1.contains("checksum"),
            "{}",
            imp.unreadable[0].1
        );
        assert_eq!(
            imp.series[0].1.samples(),
            vec![Sample { t: 1000, v: 1.0 }, Sample { t: 3000, v: 3.0 }]
        );
        // The newest segment cut inside a record: a crash, read up to it.
        let mut b = frame(&[samples_rec(&[(1, 4000, 4.0)])], false);
        b.truncate(b.len() - 2);
        std::fs::write(d.join("wal/00000002"), &b).unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert_eq!(imp.unreadable.len(), 1);
        assert_eq!(imp.files.len(), 3);
        assert!(!imp.complete());
    }

    /// Series records are decoded on the reading thread: a damaged one still ends its file's
    /// reading where it is (what came before kept, what comes after in that file not read),
    /// and an untidy label set is tidied as any other.
    #[test]
    fn a_damaged_series_record_ends_its_file_where_it_is() {
        let d = tmp("damaged-series");
        let recs = vec![
            series_rec(1, &[("job", "a"), ("__name__", "up"), ("empty", "")]),
            samples_rec(&[(1, 1000, 1.0)]),
            // Checksummed, but cut inside its first entry's ref.
            vec![REC_SERIES, 0, 0, 0],
            series_rec(2, &[("__name__", "after")]),
            samples_rec(&[(1, 2000, 2.0), (2, 2000, 2.0)]),
        ];
        std::fs::write(d.join("wal/00000000"), frame(&recs, false)).unwrap();
        std::fs::write(
            d.join("wal/00000001"),
            frame(&[samples_rec(&[(1, 3000, 3.0)])], false),
        )
        .unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert_eq!(imp.unreadable.len(), 1);
        assert!(
            imp.unreadable[0].1.contains("a truncated record of type 1"),
            "{}",
            imp.unreadable[0].1
        );
        assert_eq!(imp.series.len(), 1);
        assert_eq!(
            imp.series[0].0,
            Labels::from_pairs([("__name__", "up"), ("job", "a")])
        );
        assert_eq!(
            imp.series[0].1.samples(),
            vec![Sample { t: 1000, v: 1.0 }, Sample { t: 3000, v: 3.0 }]
        );
        assert!(!imp.complete());
    }

    /// A `chunks_head/` file of XOR chunks: (series ref, samples) each.
    fn head_chunk_file(chunks: &[(u64, Vec<(i64, f64)>)]) -> Vec<u8> {
        let mut file = super::super::HEAD_CHUNKS_MAGIC.to_be_bytes().to_vec();
        file.extend_from_slice(&[1, 0, 0, 0]);
        for (id, samples) in chunks {
            let mut c = XorChunk::new();
            for &(t, v) in samples {
                c.append(t, v);
            }
            let data = c.bytes();
            let start = file.len();
            file.extend_from_slice(&id.to_be_bytes());
            file.extend_from_slice(&samples[0].0.to_be_bytes());
            file.extend_from_slice(&samples[samples.len() - 1].0.to_be_bytes());
            file.push(super::super::chunks::ENC_XOR);
            super::super::put_uvarint(&mut file, data.len() as u64);
            file.extend_from_slice(&data);
            let sum = crc(&file[start..]);
            file.extend_from_slice(&sum.to_be_bytes());
        }
        file
    }

    /// Head chunks are read before the WAL: the WAL's samples a chunk holds are skipped and
    /// the series stays in order. When a chunk file is damaged (a chunk in the middle of a
    /// series' history may be lost) nothing is skipped, so the WAL fills the gap.
    #[test]
    fn the_wal_fills_in_only_what_head_chunks_do_not_hold() {
        let pts = |from: i64, to: i64| -> Vec<(i64, f64)> {
            (from..=to).map(|k| (k * 1000, k as f64)).collect()
        };
        let mut recs = vec![series_rec(1, &[("__name__", "up")])];
        for (t, v) in pts(1, 8) {
            recs.push(samples_rec(&[(1, t, v)]));
        }
        let want: Vec<Sample> = pts(1, 8)
            .into_iter()
            .map(|(t, v)| Sample { t, v })
            .collect();

        let d = tmp("chunks-first");
        std::fs::write(d.join("wal/00000000"), frame(&recs, true)).unwrap();
        std::fs::create_dir_all(d.join("chunks_head")).unwrap();
        std::fs::write(
            d.join("chunks_head/000001"),
            head_chunk_file(&[(1, pts(1, 3))]),
        )
        .unwrap();
        std::fs::write(
            d.join("chunks_head/000002"),
            head_chunk_file(&[(1, pts(4, 5))]),
        )
        .unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert!(imp.complete());
        assert_eq!(imp.series.len(), 1);
        assert!(
            imp.series[0].1.in_order,
            "the WAL's repeats were packed again"
        );
        assert_eq!(imp.series[0].1.samples(), want);

        // The older chunk file damaged: its chunk is lost, the WAL still has its samples.
        let mut bad = head_chunk_file(&[(1, pts(1, 3))]);
        let n = bad.len();
        bad[n - 6] ^= 0xff;
        std::fs::write(d.join("chunks_head/000001"), &bad).unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert_eq!(imp.unreadable.len(), 1);
        assert_eq!(imp.series[0].1.samples(), want);

        // A file missing between two others: its chunk may be from the middle of a series'
        // history, so nothing is skipped.
        std::fs::remove_file(d.join("chunks_head/000001")).unwrap();
        std::fs::write(
            d.join("chunks_head/000001"),
            head_chunk_file(&[(1, pts(1, 3))]),
        )
        .unwrap();
        std::fs::remove_file(d.join("chunks_head/000002")).unwrap();
        std::fs::write(
            d.join("chunks_head/000003"),
            head_chunk_file(&[(1, pts(6, 7))]),
        )
        .unwrap();
        let imp = read(&d, i64::MIN).unwrap();
        assert!(imp.unreadable.is_empty());
        assert_eq!(imp.series[0].1.samples(), want);
    }

    /// Prometheus run again after an import was cut short (staging done): two heads whose
    /// refs overlap are refused together, before anything is written.
    #[test]
    fn two_prometheus_heads_are_refused_together() {
        let d = tmp("two-heads");
        let seg = frame(
            &[
                series_rec(1, &[("__name__", "up")]),
                samples_rec(&[(1, 1000, 1.0)]),
            ],
            false,
        );
        std::fs::write(d.join("wal/00000000"), &seg).unwrap();
        std::fs::create_dir_all(d.join(STAGING).join("wal")).unwrap();
        std::fs::write(d.join(STAGING).join("wal/00000000"), &seg).unwrap();
        // Without the marker, staging was cut short: one head split in two, read as one.
        assert_eq!(read(&d, i64::MIN).unwrap().series.len(), 1);
        std::fs::write(d.join(STAGING).join(STAGED), b"").unwrap();
        let e = read(&d, i64::MIN).err().expect("refused");
        assert!(e.to_string().contains("cannot be read together"), "{e}");
        assert_eq!(std::fs::read(d.join("wal/00000000")).unwrap(), seg);
        // Either one alone is read.
        std::fs::remove_dir_all(d.join(STAGING)).unwrap();
        assert_eq!(read(&d, i64::MIN).unwrap().series.len(), 1);
    }

    #[test]
    fn a_damaged_compressed_record_is_reported_by_name() {
        for (flags, says) in [(ZSTD, "zstd:"), (SNAPPY | ZSTD, "both snappy and zstd")] {
            let d = tmp(&format!("bad-zstd-{flags}"));
            let mut b = frame(&[series_rec(1, &[("__name__", "up")])], false);
            b[0] |= flags; // the checksum covers the data, not the flags: only decoding fails
            std::fs::write(d.join("wal/00000000"), &b).unwrap();
            let imp = read(&d, i64::MIN).unwrap();
            assert_eq!(imp.unreadable.len(), 1, "{flags}");
            assert!(
                imp.unreadable[0].1.contains(says),
                "{}",
                imp.unreadable[0].1
            );
        }
    }

    #[test]
    fn packed_samples_come_back_in_push_order_at_a_fraction_of_the_size() {
        let mut v: Vec<Sample> = (0..1000)
            .map(|k| Sample {
                t: k * 15_000,
                v: (k % 7) as f64,
            })
            .collect();
        // Out of order and repeated timestamps start new chunks but keep their order.
        v.push(Sample { t: 5, v: 1.5 });
        v.push(Sample { t: 5, v: 2.5 });
        v.push(Sample {
            t: 20_000_000,
            v: f64::NAN,
        });
        let p = Packed::from_samples(&v);
        assert_eq!(p.len(), v.len());
        let back = p.samples();
        assert_eq!(back.len(), v.len());
        for (a, b) in back.iter().zip(&v) {
            assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()));
        }
        assert_eq!(p.last_t(), Some(20_000_000));
        let bytes: usize = p.chunks.iter().map(|c| c.bytes().len()).sum();
        assert!(
            bytes * 4 < v.len() * 16,
            "{bytes} bytes for {} samples",
            v.len()
        );
    }

    #[test]
    fn packed_parts_joined_keep_their_first_time_and_order() {
        let part = |ts: &[i64]| {
            Packed::from_samples(&ts.iter().map(|&t| Sample { t, v: 1.0 }).collect::<Vec<_>>())
        };
        // A ref whose samples are all in the sparse part: taken whole, first time kept.
        let mut p = Packed::default();
        p.append(part(&[-5000, 1000]));
        assert_eq!(
            (p.first_t(), p.last_t(), p.in_order),
            (Some(-5000), Some(1000), true)
        );
        p.append(part(&[2000]));
        assert!(p.in_order);
        p.append(part(&[1500]));
        assert!(!p.in_order, "a part older than what came before");
        assert_eq!(p.first_t(), Some(-5000));
        let mut r = RefSamples::default();
        r.get(1 << 20, 0).push(Sample { t: -7, v: 1.0 });
        let taken = r.take(1 << 20);
        assert_eq!((taken.first_t(), taken.in_order), (Some(-7), true));
    }
}
