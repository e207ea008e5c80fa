//! The write-ahead log: segmented files of checksummed records.
//!
//! Segment files are named by an 8-digit sequence number under `<dir>/wal/`. Each starts with
//! a 16-byte header, [`SEGMENT_MAGIC`] then the format version (u32 LE) and 4 reserved bytes,
//! so vigil's segments are told from Prometheus's (which share the names). Segments written
//! before the header existed start directly with a record and are still read. A record is
//! `len: u32 LE | crc32 of type+payload: u32 LE | type: u8 | payload`. With compression on
//! (`--storage.tsdb.wal-compression`, the default) a payload snappy makes smaller is stored
//! compressed and its type byte carries [`COMPRESSED`]; such segments say version 2, so a
//! build that cannot read them refuses them instead of misreading them. One commit writes one
//! batch of records with a single `write` call, so a commit that returned is in the kernel and
//! survives `kill -9` of the process.
//!
//! Opening for writing always starts a new segment, so nothing is ever appended after bytes
//! replay could not read. Replay of a segment stops at its first torn or corrupt record and
//! goes on with the next segment; only the newest segment's torn tail (a record running past the
//! end of the file) is cut off, and nothing else is ever truncated or deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use vigil_model::exposition::MetricType;
use vigil_model::histogram::{CounterResetHint, Span};
use vigil_model::{FloatHistogram, LabelRef, Labels};
use vigil_storage::{Exemplar, Metadata};

use crate::encoding::{Dec, put_str, put_uvarint, unzigzag, zigzag};

/// Segments are cut at this size unless told otherwise (`--storage.tsdb.wal-segment-size`).
pub const SEGMENT_SIZE: u64 = 128 << 20;
/// The largest segment size allowed (and the most a headerless segment's first record may be).
pub const MAX_SEGMENT_SIZE: u64 = 256 << 20;

/// The first bytes of every segment vigil writes.
pub const SEGMENT_MAGIC: &[u8; 8] = b"VIGILWAL";
/// The newest segment format this build reads: 1 (plain records), 2 (records may be
/// snappy-compressed), 3 (exemplar records too), 4 (native histogram records too), 5
/// (native histograms in the compact record, whole counts as varints), 6 (metadata records
/// too), 7 (float samples older than the head's start too), 8 (native histograms older
/// than the head's start too) and 9 (native histograms in the dense record, see
/// [`encode_histograms`]). Segments are written at the lowest version saying what they
/// may hold, so an older build still reads those of a server not using a newer feature, and
/// refuses the others.
pub const SEGMENT_VERSION: u32 = 9;
/// The segment version written once native histogram records may appear: the dense
/// record's (the records of versions 4 and 5 are still read).
pub const HISTOGRAM_VERSION: u32 = 9;
/// The segment version written with `--enable-feature=metadata-wal-records`: metadata
/// records may appear from the first segment on.
pub const METADATA_VERSION: u32 = 6;
/// The segment version once a late sample older than the head's start is logged (see
/// [`Record::OldSamples`]): what version 6 allows, and those records.
pub const OLD_SAMPLES_VERSION: u32 = 7;
/// The segment version once a native histogram older than the head's start is logged (see
/// [`Record::OldHistograms`]): what version 7 allows, and those records.
pub const OLD_HISTOGRAMS_VERSION: u32 = 8;
const HEADER_LEN: usize = 16;

/// The type-byte flag of a record whose payload is snappy-compressed.
pub const COMPRESSED: u8 = 0x80;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Payloads as encoded.
    None,
    /// Each payload snappy-compressed when that makes it smaller (Prometheus's default).
    #[default]
    Snappy,
}

/// How a log is written: `--storage.tsdb.wal-segment-size` and `--storage.tsdb.wal-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    pub segment_size: u64,
    pub compression: Compression,
    /// Exemplar records may be written (`--enable-feature=exemplar-storage`).
    pub exemplars: bool,
    /// Native histogram records may be written: set once the head has taken one (see
    /// [`Wal::allow_histograms`]).
    pub histograms: bool,
    /// Series' metadata records may be written (`--enable-feature=metadata-wal-records`).
    pub metadata: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            segment_size: SEGMENT_SIZE,
            compression: Compression::default(),
            exemplars: false,
            histograms: false,
            metadata: false,
        }
    }
}

impl WriteOptions {
    /// The version of the segments written: the lowest that says what they may hold, so a
    /// build that predates a feature still reads the segments of a server not using it.
    pub fn segment_version(&self) -> u32 {
        let base = match (self.exemplars, self.compression) {
            (true, _) => 3,
            (false, Compression::Snappy) => 2,
            (false, Compression::None) => 1,
        };
        let metadata = if self.metadata { METADATA_VERSION } else { 0 };
        let histograms = if self.histograms {
            HISTOGRAM_VERSION
        } else {
            0
        };
        base.max(metadata).max(histograms)
    }
}

fn segment_header(version: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h
}

/// Whether `b` (shorter than a header) is the start of a header vigil writes: a segment
/// whose creation was cut short, or whose header is still being written.
fn is_header_prefix(b: &[u8]) -> bool {
    b.len() < HEADER_LEN && (1..=SEGMENT_VERSION).any(|v| b == &segment_header(v)[..b.len()])
}

/// Whose a segment is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// vigil's, with the header: records start after it.
    Vigil,
    /// vigil's, written before segments had a header: its first record checks out.
    Legacy,
    /// No bytes at all: nothing to read, whoever created it.
    Empty,
    /// Not vigil's (Prometheus's segments are 32 KiB pages of records in another framing), or
    /// a vigil format newer than this build reads.
    Foreign,
}

/// Classify a segment from its bytes (the whole file, or at least its first record).
pub fn classify(b: &[u8]) -> SegmentKind {
    if b.is_empty() {
        return SegmentKind::Empty;
    }
    // The start of vigil's header and nothing else: a creation cut short (no records).
    if is_header_prefix(b) {
        return SegmentKind::Vigil;
    }
    if b.len() >= HEADER_LEN && &b[..8] == SEGMENT_MAGIC {
        let v = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
        return if v <= SEGMENT_VERSION {
            SegmentKind::Vigil
        } else {
            SegmentKind::Foreign
        };
    }
    // A headerless segment is vigil's only if its first record is whole and its CRC and
    // type check out: a chance of about 2^-32 for anyone else's bytes.
    let Some(hdr) = b.get(..9) else {
        return SegmentKind::Foreign;
    };
    let len = u32::from_le_bytes(hdr[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(hdr[4..8].try_into().unwrap_or_default());
    match b.get(8..8usize.saturating_add(len)) {
        Some(body)
            if len > 0
                && matches!(body[0], REC_SERIES | REC_SAMPLES | REC_TOMBSTONES)
                && crc32fast::hash(body) == crc =>
        {
            SegmentKind::Legacy
        }
        _ => SegmentKind::Foreign,
    }
}

/// Classify the segment file at `path`, reading no more than its first record.
pub fn classify_file(path: &Path) -> io::Result<SegmentKind> {
    let mut f = File::open(path)?;
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut f).take(HEADER_LEN as u64).read_to_end(&mut head)?;
    if head.len() < HEADER_LEN || &head[..8] == SEGMENT_MAGIC {
        return Ok(classify(&head));
    }
    // Possibly headerless: read the whole first record (at most a segment).
    let len = u32::from_le_bytes(head[0..4].try_into().unwrap_or_default()) as u64;
    if len == 0 || len > MAX_SEGMENT_SIZE {
        return Ok(SegmentKind::Foreign);
    }
    f.take((8 + len).saturating_sub(head.len() as u64))
        .read_to_end(&mut head)?;
    Ok(classify(&head))
}

/// Create segment `n` with its header. A segment with records is never overwritten; an
/// empty one, or one holding only vigil's header (a creation cut short by a full disk or a
/// crash), is written again.
pub(crate) fn create_segment(dir: &Path, n: u64, version: u32) -> io::Result<File> {
    let path = segment_path(dir, n);
    let open = || OpenOptions::new().create_new(true).append(true).open(&path);
    let mut f = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let len = std::fs::metadata(&path)?.len();
            let ours_and_empty = len == 0
                || (len <= HEADER_LEN as u64 && classify_file(&path)? == SegmentKind::Vigil);
            if !ours_and_empty {
                return Err(e);
            }
            std::fs::remove_file(&path)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = f.write_all(&segment_header(version)) {
        // Out of space before the header was whole: leave no half-made segment behind.
        drop(f);
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(f)
}

const REC_SERIES: u8 = 1;
const REC_SAMPLES: u8 = 2;
const REC_TOMBSTONES: u8 = 3;
const REC_EXEMPLARS: u8 = 4;
const REC_HISTOGRAMS: u8 = 5;
const REC_HISTOGRAMS_COMPACT: u8 = 6;
/// Only in a head snapshot (`head::snapshot`), never in a WAL segment.
const REC_HEAD_CHUNKS: u8 = 7;
/// Series' metadata (Prometheus numbers its record 6, which vigil's compact histograms
/// took first).
const REC_METADATA: u8 = 8;
/// Late samples older than the head's start, series named by labels.
const REC_OLD_SAMPLES: u8 = 9;
/// Native histograms older than the head's start, series by labels (version 8).
const REC_OLD_HISTOGRAMS: u8 = 10;
/// Native histograms in the dense record (version 9).
const REC_HISTOGRAMS_DENSE: u8 = 11;

/// A decoded record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// New series with their refs.
    Series(Vec<(u64, Labels)>),
    /// Samples: series ref, timestamp ms, value.
    Samples(Vec<(u64, i64, f64)>),
    /// Deletions: series ref and the inclusive time range deleted.
    Tombstones(Vec<(u64, i64, i64)>),
    /// Exemplars of series by ref, logged after the samples of their commit.
    Exemplars(Vec<(u64, Exemplar)>),
    /// Native histogram samples: series ref, timestamp ms, histogram (only in segments of
    /// version 4 and later; written in the dense form, version 9).
    Histograms(Vec<(u64, i64, Arc<FloatHistogram>)>),
    /// A head snapshot's series chunks, in the snapshot's own encoding (read by
    /// `head::snapshot`); never written to the WAL.
    HeadChunks(Vec<u8>),
    /// Series' metadata by ref, logged after the series records of its commit and before
    /// its samples (only in segments of version 6 and later).
    Metadata(Vec<(u64, Arc<Metadata>)>),
    /// Float samples older than the head's start that the out-of-order window admitted:
    /// each series by its labels (not a ref: its series in the head may be gone, empty, by the
    /// time a checkpoint writes them again) with its samples. They go to the head's store of
    /// old samples, which writes them out as blocks (only in segments of version 7 and later).
    OldSamples(Vec<(Labels, Vec<(i64, f64)>)>),
    /// As [`Record::OldSamples`] for native histograms (only in segments of version 8).
    OldHistograms(OldHistograms),
}

/// Native histograms older than the head's start, by series: labels, then (time, histogram).
pub type OldHistograms = Vec<(Labels, Vec<(i64, Arc<FloatHistogram>)>)>;

/// Encoding buffers larger than this are not kept for the next record: a scrape's samples
/// (about 11 bytes each) and an import's batches (2^18 samples, about 3 MB) fit, while the
/// series records of a large first scrape are let go instead of held for the process's life.
const KEEP_BUFFER: usize = 4 << 20;

thread_local! {
    /// A record's plain payload and snappy's encoder, kept between records: a big commit (an
    /// import's million samples) would otherwise map fresh pages for both every time.
    static SCRATCH: std::cell::RefCell<(Vec<u8>, snap::raw::Encoder)> =
        std::cell::RefCell::new((Vec::new(), snap::raw::Encoder::new()));
}

/// Build a payload with `fill` in the scratch buffer and frame it onto `out`.
fn encode_with(out: &mut Vec<u8>, typ: u8, c: Compression, fill: impl FnOnce(&mut Vec<u8>)) {
    SCRATCH.with(|s| {
        let (payload, enc) = &mut *s.borrow_mut();
        payload.clear();
        fill(payload);
        frame(out, typ, payload, c, enc);
        if payload.capacity() > KEEP_BUFFER {
            *payload = Vec::new();
        }
    })
}

/// Encode a record, framed, onto `out`.
pub fn encode(out: &mut Vec<u8>, rec: &Record, c: Compression) {
    match rec {
        Record::Series(s) => encode_series(out, s, c),
        Record::Samples(s) => encode_samples(out, s, c),
        Record::Tombstones(t) => encode_with(out, REC_TOMBSTONES, c, |payload| {
            put_uvarint(payload, t.len() as u64);
            for &(r, lo, hi) in t {
                put_uvarint(payload, r);
                put_uvarint(payload, zigzag(lo));
                put_uvarint(payload, zigzag(hi));
            }
        }),
        Record::Exemplars(e) => encode_exemplars(out, e, c),
        Record::Histograms(h) => encode_histograms(out, h, c),
        // Chunks are compressed already: framed as they are.
        Record::HeadChunks(p) => frame_raw(out, REC_HEAD_CHUNKS, p),
        Record::Metadata(m) => encode_metadata(out, m, c),
        Record::OldSamples(o) => encode_old_samples(out, o, c),
        Record::OldHistograms(o) => encode_old_histograms(out, o, c),
    }
}

/// Encode an old histograms record: count of series, then per series its labels (as in an
/// old samples record), its sample count, and per sample the time (zigzag varint) and the
/// histogram as the compact histograms record writes it.
pub fn encode_old_histograms(out: &mut Vec<u8>, o: &OldHistograms, c: Compression) {
    for o in o.chunks(SERIES_PER_RECORD) {
        encode_with(out, REC_OLD_HISTOGRAMS, c, |p| {
            put_uvarint(p, o.len() as u64);
            for (labels, samples) in o {
                put_labels(p, labels);
                put_uvarint(p, samples.len() as u64);
                for (t, h) in samples {
                    put_uvarint(p, zigzag(*t));
                    put_histogram(p, h);
                }
            }
        })
    }
}

/// Encode an old samples record: count of series, then per series its labels (count, then
/// name and value strings, sorted), its sample count, and per sample the time (zigzag varint)
/// and value (f64 bits, LE).
pub fn encode_old_samples(out: &mut Vec<u8>, o: &[(Labels, Vec<(i64, f64)>)], c: Compression) {
    for o in o.chunks(SERIES_PER_RECORD) {
        encode_with(out, REC_OLD_SAMPLES, c, |p| {
            put_uvarint(p, o.len() as u64);
            for (labels, samples) in o {
                put_labels(p, labels);
                put_uvarint(p, samples.len() as u64);
                for &(t, v) in samples {
                    put_uvarint(p, zigzag(t));
                    p.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
        })
    }
}

/// Encode a version 4 native histograms record (what builds before the compact record
/// wrote): count, then per sample its series ref, time (varint), and the histogram: hint
/// (byte), schema (varint), zero threshold, zero count, count and sum (f64 bits, LE),
/// positive spans (count, then offset varint and length each) and buckets (count, then
/// f64s), the same for the negative side, and custom bounds (count, f64s).
#[cfg(test)]
fn encode_histograms_v4(out: &mut Vec<u8>, hs: &[(u64, i64, Arc<FloatHistogram>)], c: Compression) {
    encode_with(out, REC_HISTOGRAMS, c, |p| {
        put_uvarint(p, hs.len() as u64);
        for (r, t, h) in hs {
            put_uvarint(p, *r);
            put_uvarint(p, zigzag(*t));
            p.push(h.hint.code());
            put_uvarint(p, zigzag(h.schema as i64));
            for v in [h.zero_threshold, h.zero_count, h.count, h.sum] {
                put_f64(p, v);
            }
            for (spans, buckets) in [
                (&h.positive_spans, &h.positive_buckets),
                (&h.negative_spans, &h.negative_buckets),
            ] {
                put_spans(p, spans);
                put_uvarint(p, buckets.len() as u64);
                for &b in buckets.iter() {
                    put_f64(p, b);
                }
            }
            put_uvarint(p, h.custom_values.len() as u64);
            for &v in &h.custom_values {
                put_f64(p, v);
            }
        }
    })
}

/// An f64's bits, little-endian, as histogram records write floats.
fn put_f64(p: &mut Vec<u8>, v: f64) {
    p.extend_from_slice(&v.to_bits().to_le_bytes());
}

/// A histogram side's spans as histogram records write them: count, then offset (zigzag)
/// and length each.
fn put_spans(p: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(p, spans.len() as u64);
    for sp in spans {
        put_uvarint(p, zigzag(sp.offset as i64));
        put_uvarint(p, sp.length as u64);
    }
}

/// Encode a dense native histograms record, what a scrape's histograms cost least as: count,
/// then (if any) the first sample's series ref (uvarint) and time (varint), then per
/// sample its ref and time as differences (varints) from the sample before it and from the
/// first one (a scrape's samples share a time and have nearby refs: a byte each), a flags
/// byte ([`DenseFlags`]), schema (varint) and zero threshold (f64) unless the same as the
/// sample before it, zero count and count (uvarints when whole, else f64s), sum (f64), the
/// layout (positive and negative spans as [`put_spans`] writes them, custom bounds as count
/// and f64s) unless the same as the sample before it, and the buckets of each side: as many
/// as the spans say (unless [`DenseFlags::COUNTED`], when a count comes first), each the
/// difference from the bucket before it as a varint when whole, else f64s.
pub fn encode_histograms(
    out: &mut Vec<u8>,
    hs: &[(u64, i64, Arc<FloatHistogram>)],
    c: Compression,
) {
    encode_with(out, REC_HISTOGRAMS_DENSE, c, |p| {
        put_uvarint(p, hs.len() as u64);
        let Some((r0, t0, _)) = hs.first() else {
            return;
        };
        put_uvarint(p, *r0);
        put_uvarint(p, zigzag(*t0));
        let mut prev_ref = *r0;
        let mut prev: Option<&FloatHistogram> = None;
        for (r, t, h) in hs {
            put_uvarint(p, zigzag((*r as i64).wrapping_sub(prev_ref as i64)));
            put_uvarint(p, zigzag(t.wrapping_sub(*t0)));
            prev_ref = *r;
            put_dense(p, h, prev);
            prev = Some(h);
        }
    })
}

/// The flags byte of a dense record's histogram: the counter reset hint in the low two bits.
struct DenseFlags;

impl DenseFlags {
    const HINT: u8 = 0b11;
    /// Counts are whole: written as varints.
    const WHOLE: u8 = 1 << 2;
    /// Schema and zero threshold are the previous sample's: not written.
    const SAME_SCALE: u8 = 1 << 3;
    /// Spans and custom bounds are the previous sample's: not written.
    const SAME_LAYOUT: u8 = 1 << 4;
    /// Each side's bucket count is written (the spans do not say it: a stale marker's).
    const COUNTED: u8 = 1 << 5;
    const KNOWN: u8 =
        Self::HINT | Self::WHOLE | Self::SAME_SCALE | Self::SAME_LAYOUT | Self::COUNTED;
}

/// The number of buckets `spans` say a side has.
fn spanned(spans: &[Span]) -> u64 {
    spans.iter().map(|s| s.length as u64).sum()
}

/// One histogram of a dense record, `prev` the one written before it in the record.
fn put_dense(p: &mut Vec<u8>, h: &FloatHistogram, prev: Option<&FloatHistogram>) {
    let whole = crate::prometheus::histogram_chunk::integer_counts(h);
    let same_scale = prev.is_some_and(|q| {
        q.schema == h.schema && q.zero_threshold.to_bits() == h.zero_threshold.to_bits()
    });
    let same_layout = prev.is_some_and(|q| crate::prometheus::histogram_chunk::same_buckets(q, h));
    let counted = spanned(&h.positive_spans) != h.positive_buckets.len() as u64
        || spanned(&h.negative_spans) != h.negative_buckets.len() as u64;
    let mut flags = h.hint.code() & DenseFlags::HINT;
    for (on, bit) in [
        (whole, DenseFlags::WHOLE),
        (same_scale, DenseFlags::SAME_SCALE),
        (same_layout, DenseFlags::SAME_LAYOUT),
        (counted, DenseFlags::COUNTED),
    ] {
        if on {
            flags |= bit;
        }
    }
    p.push(flags);
    if !same_scale {
        put_uvarint(p, zigzag(h.schema as i64));
        put_f64(p, h.zero_threshold);
    }
    for v in [h.zero_count, h.count] {
        match whole {
            true => put_uvarint(p, v as u64),
            false => put_f64(p, v),
        }
    }
    put_f64(p, h.sum);
    if !same_layout {
        put_spans(p, &h.positive_spans);
        put_spans(p, &h.negative_spans);
        put_f64s(p, &h.custom_values);
    }
    for buckets in [&h.positive_buckets, &h.negative_buckets] {
        if counted {
            put_uvarint(p, buckets.len() as u64);
        }
        put_buckets(p, buckets, whole);
    }
}

/// A side's buckets as histogram records write them: each bucket's difference from the one
/// before it (from 0) as a zigzag varint when `whole`, else its f64 bits.
fn put_buckets(p: &mut Vec<u8>, buckets: &[f64], whole: bool) {
    let mut prev = 0i64;
    for &b in buckets {
        match whole {
            true => {
                put_uvarint(p, zigzag((b as i64).wrapping_sub(prev)));
                prev = b as i64;
            }
            false => put_f64(p, b),
        }
    }
}

/// `n` buckets as [`put_buckets`] writes them, refused if the payload cannot hold that many
/// (a span may claim billions: damage is not an allocation).
fn get_buckets(d: &mut Dec<'_>, n: u64, whole: bool) -> Option<Vec<f64>> {
    if n > (d.remaining() / if whole { 1 } else { 8 }) as u64 {
        return None;
    }
    let mut prev = 0i64;
    (0..n)
        .map(|_| match whole {
            true => {
                prev = prev.wrapping_add(unzigzag(d.uvarint()?));
                Some(prev as f64)
            }
            false => Some(f64::from_bits(d.le64()?)),
        })
        .collect()
}

/// f64s as histogram records write custom bounds: count, then each one's bits.
fn put_f64s(p: &mut Vec<u8>, vs: &[f64]) {
    put_uvarint(p, vs.len() as u64);
    for &v in vs {
        put_f64(p, v);
    }
}

/// f64s as [`put_f64s`] writes them, the count bounded by what is left.
fn get_f64s(d: &mut Dec<'_>) -> Option<Vec<f64>> {
    let n = d.uvarint()? as usize;
    if n > d.remaining() / 8 {
        return None;
    }
    (0..n).map(|_| Some(f64::from_bits(d.le64()?))).collect()
}

/// A decoded histogram, if its layout is one Prometheus defines (stale markers carry none).
fn checked(h: FloatHistogram) -> Option<FloatHistogram> {
    (vigil_model::is_stale_nan(h.sum) || vigil_model::histogram::valid_layout(&h)).then_some(h)
}

/// Decode a dense record's payload after its count (see [`encode_histograms`]).
fn decode_dense(d: &mut Dec<'_>, n: usize) -> Option<Vec<(u64, i64, Arc<FloatHistogram>)>> {
    // Each takes at least 12 bytes (ref, time, flags, two counts, an f64 sum): damage is
    // not an allocation.
    let mut out = Vec::with_capacity(n.min(d.remaining() / 12));
    if n == 0 {
        return Some(out);
    }
    let r0 = d.uvarint()?;
    let t0 = unzigzag(d.uvarint()?);
    let mut prev_ref = r0;
    let mut prev: Option<Arc<FloatHistogram>> = None;
    // Spans and bounds copied from the histogram before cost no bytes of their own: a
    // damaged record of one histogram with thousands of empty spans, then thousands that
    // repeat its layout, must not become a copy of them each. A scrape's record copies a
    // few per histogram, each histogram taking a dozen bytes or more.
    let mut copies = 8 * d.remaining() + 4096;
    for _ in 0..n {
        let r = (prev_ref as i64).wrapping_add(unzigzag(d.uvarint()?)) as u64;
        let t = t0.wrapping_add(unzigzag(d.uvarint()?));
        prev_ref = r;
        let h = Arc::new(get_dense(d, prev.as_deref(), &mut copies)?);
        out.push((r, t, h.clone()));
        prev = Some(h);
    }
    Some(out)
}

/// One histogram of a dense record, `prev` the one read before it in the record.
fn get_dense(
    d: &mut Dec<'_>,
    prev: Option<&FloatHistogram>,
    copies: &mut usize,
) -> Option<FloatHistogram> {
    let flags = d.u8()?;
    if flags & !DenseFlags::KNOWN != 0 {
        return None;
    }
    let hint = CounterResetHint::from_code(flags & DenseFlags::HINT)?;
    let whole = flags & DenseFlags::WHOLE != 0;
    let counted = flags & DenseFlags::COUNTED != 0;
    let f = |d: &mut Dec<'_>| Some(f64::from_bits(d.le64()?));
    let (schema, zero_threshold) = match flags & DenseFlags::SAME_SCALE != 0 {
        // "Same as before" with nothing before is damage.
        true => prev.map(|q| (q.schema, q.zero_threshold))?,
        false => (i32::try_from(unzigzag(d.uvarint()?)).ok()?, f(d)?),
    };
    // A whole count: written from an f64 that holds it exactly, so it converts back exactly.
    let count = |d: &mut Dec<'_>| match whole {
        true => Some(d.uvarint()? as f64),
        false => f(d),
    };
    let (zero_count, count, sum) = (count(d)?, count(d)?, f(d)?);
    let (positive_spans, negative_spans, custom_values) = match flags & DenseFlags::SAME_LAYOUT != 0
    {
        true => {
            let q = prev?;
            let n = q.positive_spans.len() + q.negative_spans.len() + q.custom_values.len();
            *copies = copies.checked_sub(n)?;
            (
                q.positive_spans.clone(),
                q.negative_spans.clone(),
                q.custom_values.clone(),
            )
        }
        false => (get_spans(d)?, get_spans(d)?, get_f64s(d)?),
    };
    let side = |d: &mut Dec<'_>, spans: &[Span]| {
        let n = match counted {
            true => d.uvarint()?,
            false => spanned(spans),
        };
        get_buckets(d, n, whole)
    };
    let positive_buckets = side(d, &positive_spans)?;
    let negative_buckets = side(d, &negative_spans)?;
    checked(FloatHistogram {
        hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        custom_values,
    })
}

/// A side's spans as [`put_spans`] writes them, the count bounded by what is left.
fn get_spans(d: &mut Dec<'_>) -> Option<Vec<Span>> {
    let n = d.uvarint()? as usize;
    if n > d.remaining() / 2 {
        return None;
    }
    (0..n)
        .map(|_| {
            let offset = i32::try_from(unzigzag(d.uvarint()?)).ok()?;
            let length = u32::try_from(d.uvarint()?).ok()?;
            Some(Span { offset, length })
        })
        .collect()
}

/// Encode a compact native histograms record (version 5's, still what old histograms
/// records hold each histogram as): count, then per sample its series ref, time
/// (varint), and the histogram as [`put_histogram`] writes it.
#[cfg(test)]
fn encode_histograms_compact(
    out: &mut Vec<u8>,
    hs: &[(u64, i64, Arc<FloatHistogram>)],
    c: Compression,
) {
    encode_with(out, REC_HISTOGRAMS_COMPACT, c, |p| {
        put_uvarint(p, hs.len() as u64);
        for (r, t, h) in hs {
            put_uvarint(p, *r);
            put_uvarint(p, zigzag(*t));
            put_histogram(p, h);
        }
    })
}

/// One histogram as the compact record holds it: hint (byte), schema (varint), a byte saying
/// whether its counts are whole (1) or not (0), zero threshold (f64 bits, LE), then zero
/// count and count (uvarints when whole, else f64s), sum (f64), positive spans (count, then
/// offset varint and length each) and buckets (count, then each bucket's difference from the
/// one before it as a varint when whole, else f64s), the same for the negative side, and
/// custom bounds (count, f64s). Scraped histograms' counts are whole: a bucket then takes a
/// byte or two instead of eight, as in Prometheus's own integer histogram records.
pub(crate) fn put_histogram(p: &mut Vec<u8>, h: &FloatHistogram) {
    p.push(h.hint.code());
    put_uvarint(p, zigzag(h.schema as i64));
    let whole = crate::prometheus::histogram_chunk::integer_counts(h);
    p.push(whole as u8);
    put_f64(p, h.zero_threshold);
    for v in [h.zero_count, h.count] {
        match whole {
            true => put_uvarint(p, v as u64),
            false => put_f64(p, v),
        }
    }
    put_f64(p, h.sum);
    for (spans, buckets) in [
        (&h.positive_spans, &h.positive_buckets),
        (&h.negative_spans, &h.negative_buckets),
    ] {
        put_spans(p, spans);
        put_uvarint(p, buckets.len() as u64);
        put_buckets(p, buckets, whole);
    }
    put_f64s(p, &h.custom_values);
}

/// One histogram of a version 4 record, or of a compact one (`compact`).
pub(crate) fn decode_histogram(d: &mut Dec<'_>, compact: bool) -> Option<FloatHistogram> {
    let hint = CounterResetHint::from_code(d.u8()?)?;
    let schema = i32::try_from(unzigzag(d.uvarint()?)).ok()?;
    let whole = match compact {
        true => match d.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        },
        false => false,
    };
    let f = |d: &mut Dec<'_>| Some(f64::from_bits(d.le64()?));
    // A whole count: written from an f64 that holds it exactly, so it converts back exactly.
    let count = |d: &mut Dec<'_>| match whole {
        true => Some(d.uvarint()? as f64),
        false => f(d),
    };
    let (zero_threshold, zero_count, count, sum) = match compact {
        true => (f(d)?, count(d)?, count(d)?, f(d)?),
        false => (f(d)?, f(d)?, f(d)?, f(d)?),
    };
    // Counts bounded by what the payload can still hold: damage is not an allocation.
    let side = |d: &mut Dec<'_>| -> Option<(Vec<Span>, Vec<f64>)> {
        let spans = get_spans(d)?;
        let n = d.uvarint()?;
        Some((spans, get_buckets(d, n, whole)?))
    };
    let (positive_spans, positive_buckets) = side(d)?;
    let (negative_spans, negative_buckets) = side(d)?;
    checked(FloatHistogram {
        hint,
        schema,
        zero_threshold,
        zero_count,
        count,
        sum,
        positive_spans,
        positive_buckets,
        negative_spans,
        negative_buckets,
        custom_values: get_f64s(d)?,
    })
}

/// Encode an exemplars record: count, then per exemplar its series ref, time (varint), value
/// (f64 bits, LE) and labels (count, then name and value strings).
pub fn encode_exemplars(out: &mut Vec<u8>, e: &[(u64, Exemplar)], c: Compression) {
    encode_with(out, REC_EXEMPLARS, c, |payload| {
        put_uvarint(payload, e.len() as u64);
        for (r, ex) in e {
            put_uvarint(payload, *r);
            put_uvarint(payload, zigzag(ex.t));
            payload.extend_from_slice(&ex.value.to_bits().to_le_bytes());
            put_labels(payload, &ex.labels);
        }
    })
}

/// The field names of a metadata record's entries, as Prometheus's record writes them.
const META_UNIT: &str = "UNIT";
const META_HELP: &str = "HELP";

/// Encode a metadata record: count, then per series its ref, type (a byte, numbered as
/// Prometheus's record numbers it), the number of fields (2), and the fields as name and value
/// strings: `UNIT` then `HELP`. After the count this is Prometheus's layout of an entry.
/// Entries go in records of at most [`SERIES_PER_RECORD`], as series do (a first scrape of a
/// million series would otherwise be one record of about 100 MB, past what a segment holds).
pub fn encode_metadata(out: &mut Vec<u8>, m: &[(u64, Arc<Metadata>)], c: Compression) {
    for m in m.chunks(SERIES_PER_RECORD) {
        metadata_record(out, m, c);
    }
}

fn metadata_record(out: &mut Vec<u8>, m: &[(u64, Arc<Metadata>)], c: Compression) {
    encode_with(out, REC_METADATA, c, |payload| {
        put_uvarint(payload, m.len() as u64);
        for (r, meta) in m {
            put_uvarint(payload, *r);
            payload.push(meta.kind.code());
            put_uvarint(payload, 2);
            put_str(payload, META_UNIT);
            put_str(payload, &meta.unit);
            put_str(payload, META_HELP);
            put_str(payload, &meta.help);
        }
    })
}

/// Series per series record: a first scrape's thousands of new series are logged as several
/// records of about 250 KB, so the payload buffer stays that small and the framed commit grows
/// by compressed records, not by one worst-case reservation for all of them (together the
/// largest thing a big target's first scrape allocated).
const SERIES_PER_RECORD: usize = 2048;

/// Encode series records from borrowed series (the commit path's are not cloned).
pub fn encode_series(out: &mut Vec<u8>, s: &[(u64, Labels)], c: Compression) {
    if s.is_empty() {
        return series_record(out, s, c);
    }
    for s in s.chunks(SERIES_PER_RECORD) {
        series_record(out, s, c);
    }
}

fn series_record(out: &mut Vec<u8>, s: &[(u64, Labels)], c: Compression) {
    encode_with(out, REC_SERIES, c, |payload| {
        put_uvarint(payload, s.len() as u64);
        for (r, labels) in s {
            put_uvarint(payload, *r);
            put_labels(payload, labels);
        }
    })
}

/// Encode a samples record without an owned `Record` (the commit path's batch is borrowed).
pub fn encode_samples(out: &mut Vec<u8>, s: &[(u64, i64, f64)], c: Compression) {
    encode_with(out, REC_SAMPLES, c, |payload| samples_payload(payload, s))
}

fn samples_payload(payload: &mut Vec<u8>, s: &[(u64, i64, f64)]) {
    payload.reserve(16 + s.len() * 11);
    put_uvarint(payload, s.len() as u64);
    // Delta-encode refs and timestamps against the first sample: a scrape's samples share a
    // timestamp and have nearby refs, so most deltas are one byte.
    let (r0, t0) = s.first().map(|&(r, t, _)| (r, t)).unwrap_or((0, 0));
    payload.extend_from_slice(&r0.to_le_bytes());
    payload.extend_from_slice(&t0.to_le_bytes());
    for &(r, t, v) in s {
        put_uvarint(payload, zigzag((r as i64).wrapping_sub(r0 as i64)));
        put_uvarint(payload, zigzag(t.wrapping_sub(t0)));
        payload.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Payloads shorter than this are stored as they are: snappy gains nothing on them.
const COMPRESS_MIN: usize = 64;

/// Frame a payload: length, CRC32 of type and payload, type, payload (compressed when asked
/// and smaller, straight into `out`).
fn frame(out: &mut Vec<u8>, typ: u8, payload: &[u8], c: Compression, enc: &mut snap::raw::Encoder) {
    if c == Compression::Snappy && payload.len() >= COMPRESS_MIN {
        let start = out.len();
        out.resize(start + 9 + snap::raw::max_compress_len(payload.len()), 0);
        if let Ok(n) = enc.compress(payload, &mut out[start + 9..])
            && n < payload.len()
        {
            out.truncate(start + 9 + n);
            let typ = typ | COMPRESSED;
            out[start + 8] = typ;
            let crc = crc32fast::hash(&out[start + 8..]);
            out[start..start + 4].copy_from_slice(&((n + 1) as u32).to_le_bytes());
            out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            return;
        }
        out.truncate(start);
    }
    frame_raw(out, typ, payload)
}

fn frame_raw(out: &mut Vec<u8>, typ: u8, payload: &[u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&[typ]);
    h.update(payload);
    out.extend_from_slice(&((payload.len() + 1) as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(typ);
    out.extend_from_slice(payload);
}

/// A label set as records write it: the count, then name and value strings.
fn put_labels(p: &mut Vec<u8>, labels: &Labels) {
    put_uvarint(p, labels.len() as u64);
    for l in labels.iter() {
        put_str(p, l.name);
        put_str(p, l.value);
    }
}

/// A label set as [`put_labels`] writes it. vigil writes names sorted; anything else is
/// sorted once and a repeated name collapsed to one.
fn decode_labels(d: &mut Dec<'_>) -> Option<Labels> {
    let nl = d.uvarint()? as usize;
    let mut ls = Vec::with_capacity(nl.min(64));
    for _ in 0..nl {
        ls.push(LabelRef {
            name: d.str()?,
            value: d.str()?,
        });
    }
    if !ls.windows(2).all(|w| w[0].name < w[1].name) {
        ls.sort();
        ls.dedup_by(|a, b| a.name == b.name);
    }
    Some(Labels::from_sorted_refs(ls))
}

/// Decode a record's body (type byte and payload, CRC already checked).
fn decode_body(body: &[u8]) -> Option<Record> {
    let (&typ, p) = body.split_first()?;
    if typ & COMPRESSED == 0 {
        return decode_payload(typ, p);
    }
    // snappy expands at most 64 bytes per 2-byte copy: anything claiming more is damage, and
    // must not become a huge allocation.
    let n = snap::raw::decompress_len(p).ok()?;
    if n > p.len().saturating_mul(32).saturating_add(1024) {
        return None;
    }
    let plain = snap::raw::Decoder::new().decompress_vec(p).ok()?;
    decode_payload(typ & !COMPRESSED, &plain)
}

fn decode_payload(typ: u8, p: &[u8]) -> Option<Record> {
    let mut d = Dec::new(p, 0);
    match typ {
        REC_SERIES => {
            let n = d.uvarint()? as usize;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let r = d.uvarint()?;
                out.push((r, decode_labels(&mut d)?));
            }
            Some(Record::Series(out))
        }
        REC_SAMPLES => {
            let n = d.uvarint()? as usize;
            let r0 = d.le64()?;
            let t0 = d.le64()? as i64;
            let mut out = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                let r = (r0 as i64).wrapping_add(unzigzag(d.uvarint()?)) as u64;
                let t = t0.wrapping_add(unzigzag(d.uvarint()?));
                let v = f64::from_bits(d.le64()?);
                out.push((r, t, v));
            }
            Some(Record::Samples(out))
        }
        REC_TOMBSTONES => {
            let n = d.uvarint()? as usize;
            let mut out = Vec::with_capacity(n.min(1 << 20));
            for _ in 0..n {
                out.push((d.uvarint()?, unzigzag(d.uvarint()?), unzigzag(d.uvarint()?)));
            }
            Some(Record::Tombstones(out))
        }
        REC_EXEMPLARS => {
            let n = d.uvarint()? as usize;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let r = d.uvarint()?;
                let t = unzigzag(d.uvarint()?);
                let value = f64::from_bits(d.le64()?);
                let labels = decode_labels(&mut d)?;
                out.push((r, Exemplar { labels, value, t }));
            }
            Some(Record::Exemplars(out))
        }
        REC_HISTOGRAMS => {
            let n = d.uvarint()? as usize;
            // Each takes at least 41 bytes (hint, four f64s, five counts): damage is not an
            // allocation.
            let mut out = Vec::with_capacity(n.min(d.remaining() / 41));
            for _ in 0..n {
                let r = d.uvarint()?;
                let t = unzigzag(d.uvarint()?);
                out.push((r, t, Arc::new(decode_histogram(&mut d, false)?)));
            }
            Some(Record::Histograms(out))
        }
        REC_HISTOGRAMS_COMPACT => {
            let n = d.uvarint()? as usize;
            // Each takes at least 25 bytes (hint, whole, two f64s, seven counts).
            let mut out = Vec::with_capacity(n.min(d.remaining() / 25));
            for _ in 0..n {
                let r = d.uvarint()?;
                let t = unzigzag(d.uvarint()?);
                out.push((r, t, Arc::new(decode_histogram(&mut d, true)?)));
            }
            Some(Record::Histograms(out))
        }
        REC_HISTOGRAMS_DENSE => {
            let n = d.uvarint()? as usize;
            Some(Record::Histograms(decode_dense(&mut d, n)?))
        }
        REC_HEAD_CHUNKS => Some(Record::HeadChunks(p.to_vec())),
        REC_METADATA => {
            let n = d.uvarint()? as usize;
            // Each takes at least 3 bytes (ref, type, field count, no field).
            let mut out = Vec::with_capacity(n.min(d.remaining() / 3));
            for _ in 0..n {
                let r = d.uvarint()?;
                // A type this build does not know reads as unknown, as Prometheus reads it.
                let kind = MetricType::from_code(d.u8()?.into()).unwrap_or(MetricType::Unknown);
                let fields = d.uvarint()?;
                let (mut unit, mut help) = (String::new(), String::new());
                for _ in 0..fields {
                    // Fields this build does not know are skipped.
                    match (d.str()?, d.str()?) {
                        (META_UNIT, v) => unit = v.to_string(),
                        (META_HELP, v) => help = v.to_string(),
                        _ => {}
                    }
                }
                out.push((r, Arc::new(Metadata { kind, unit, help })));
            }
            Some(Record::Metadata(out))
        }
        REC_OLD_SAMPLES => {
            let n = d.uvarint()? as usize;
            let mut out = Vec::with_capacity(n.min(d.remaining() / 2));
            for _ in 0..n {
                let labels = decode_labels(&mut d)?;
                let k = d.uvarint()? as usize;
                // Each takes at least 9 bytes: damage is not an allocation.
                let mut samples = Vec::with_capacity(k.min(d.remaining() / 9));
                for _ in 0..k {
                    let t = unzigzag(d.uvarint()?);
                    samples.push((t, f64::from_bits(d.le64()?)));
                }
                out.push((labels, samples));
            }
            Some(Record::OldSamples(out))
        }
        REC_OLD_HISTOGRAMS => {
            let n = d.uvarint()? as usize;
            let mut out = Vec::with_capacity(n.min(d.remaining() / 2));
            for _ in 0..n {
                let labels = decode_labels(&mut d)?;
                let k = d.uvarint()? as usize;
                // Each takes at least 26 bytes (time, and a compact histogram's 25).
                let mut samples = Vec::with_capacity(k.min(d.remaining() / 26));
                for _ in 0..k {
                    let t = unzigzag(d.uvarint()?);
                    samples.push((t, Arc::new(decode_histogram(&mut d, true)?)));
                }
                out.push((labels, samples));
            }
            Some(Record::OldHistograms(out))
        }
        _ => None,
    }
}

pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Segment numbers present in `dir`, sorted.
pub fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Whether a segment of `dir` or of its latest checkpoint says it may hold records of segment
/// `version` (reading only their headers).
pub fn may_hold(dir: &Path, version: u32) -> io::Result<bool> {
    let mut dirs = vec![dir.to_path_buf()];
    if let (_, Some(cp)) = latest_checkpoint(dir)? {
        dirs.push(cp);
    }
    for d in dirs {
        for n in segments(&d)? {
            let mut head = Vec::with_capacity(HEADER_LEN);
            File::open(segment_path(&d, n))?
                .take(HEADER_LEN as u64)
                .read_to_end(&mut head)?;
            if head.len() == HEADER_LEN
                && &head[..8] == SEGMENT_MAGIC
                && u32::from_le_bytes(head[8..12].try_into().unwrap_or_default()) >= version
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The newest complete checkpoint: `(last segment it covers, its directory)`.
pub fn latest_checkpoint(dir: &Path) -> io::Result<(Option<u64>, Option<PathBuf>)> {
    let mut best: Option<u64> = None;
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("checkpoint."))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        best = best.max(Some(n));
    }
    Ok((best, best.map(|n| dir.join(format!("checkpoint.{n:08}")))))
}

/// A checkpoint being written: records are streamed into `checkpoint.<last>.tmp` and the
/// directory appears under its final name only when [`CheckpointWriter::finish`] succeeds.
pub struct CheckpointWriter {
    dir: PathBuf,
    last: u64,
    tmp: PathBuf,
    file: std::io::BufWriter<File>,
    /// The version its header says.
    version: u32,
    /// The head's cut when it was written (see [`CheckpointWriter::set_cut`]).
    cut: Option<i64>,
}

/// The file in a checkpoint's directory that says the head's cut (decimal milliseconds).
const CUT_FILE: &str = "cut";

/// The head's cut a checkpoint was written at, if it says: nothing before it is the head's
/// (it is in blocks), whatever the segments after the checkpoint still hold.
pub fn checkpoint_cut(cp: &Path) -> Option<i64> {
    std::fs::read_to_string(cp.join(CUT_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Remove checkpoint directory `d` if vigil wrote it (its first segment vigil's, or none);
/// one of another program's (Prometheus's own `checkpoint.N.tmp`, same naming) is an error
/// and stays as it is.
fn remove_checkpoint_dir(d: &Path) -> io::Result<()> {
    if !d.exists() {
        return Ok(());
    }
    match classify_file(&d.join("00000000")) {
        Ok(SegmentKind::Vigil | SegmentKind::Legacy | SegmentKind::Empty) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(SegmentKind::Foreign) => {
            return Err(io::Error::other(format!(
                "{}: a checkpoint vigil did not write, in the way of its own (left untouched)",
                d.display()
            )));
        }
    }
    std::fs::remove_dir_all(d)
}

impl CheckpointWriter {
    /// Start checkpoint `last` (covering segments up to and including it); its records are
    /// encoded with `c`.
    pub fn create(dir: &Path, last: u64, o: WriteOptions) -> io::Result<Self> {
        let tmp = dir.join(format!("checkpoint.{last:08}.tmp"));
        remove_checkpoint_dir(&tmp)?;
        std::fs::create_dir_all(&tmp)?;
        let version = o.segment_version();
        let seg = create_segment(&tmp, 0, version)?;
        let file = std::io::BufWriter::with_capacity(1 << 20, seg);
        Ok(CheckpointWriter {
            dir: dir.to_path_buf(),
            last,
            tmp,
            file,
            version,
            cut: None,
        })
    }

    /// Record that the head was cut at `t` (its samples before `t` are in blocks): replay then
    /// skips what the segments after the checkpoint hold before it, even with no block left
    /// to say so (retention may delete them all).
    pub fn set_cut(&mut self, t: i64) {
        self.cut = Some(t);
    }

    /// Make the checkpoint's header say it may hold native histogram records (before the
    /// first is written): a head's first histogram can be committed while a checkpoint that
    /// started without any is being written. The file is still `.tmp`, so its header is
    /// rewritten in place.
    pub fn allow_histograms(&mut self) -> io::Result<()> {
        self.allow(HISTOGRAM_VERSION)
    }

    /// As [`CheckpointWriter::allow_histograms`] for the records of segment `version`.
    pub fn allow(&mut self, version: u32) -> io::Result<()> {
        if self.version >= version {
            return Ok(());
        }
        self.file.flush()?;
        // The segment is open for appending; the header is written through another handle.
        use std::os::unix::fs::FileExt;
        let f = OpenOptions::new()
            .write(true)
            .open(segment_path(&self.tmp, 0))?;
        f.write_all_at(&version.to_le_bytes(), 8)?;
        self.version = version;
        Ok(())
    }

    /// Append framed records.
    pub fn write(&mut self, framed: &[u8]) -> io::Result<()> {
        self.file.write_all(framed)
    }

    /// Sync and publish the checkpoint, then delete the segments it covers and older
    /// checkpoints.
    pub fn finish(self) -> io::Result<()> {
        let CheckpointWriter {
            dir,
            last,
            tmp,
            file,
            cut,
            ..
        } = self;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        if let Some(t) = cut {
            let mut f = File::create(tmp.join(CUT_FILE))?;
            f.write_all(t.to_string().as_bytes())?;
            f.sync_all()?;
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        let fin = dir.join(format!("checkpoint.{last:08}"));
        remove_checkpoint_dir(&fin)?;
        std::fs::rename(&tmp, &fin)?;
        // The rename must be on disk before what it replaces is deleted: after a power loss
        // the segments must not be gone while the checkpoint is still `.tmp`.
        std::fs::File::open(&dir)?.sync_all()?;
        // Older checkpoints first: one left by a crash here would outlive the segments that
        // tell a reader it is vigil's (and may be of another segment version). An older
        // `checkpoint.N.tmp` is removed only if it is vigil's (empty, or its segment is
        // vigil's: left by a crash or a failed write); failing to remove one is logged, never
        // a reason to keep the segments.
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|s| s.strip_prefix("checkpoint.")) else {
                continue;
            };
            if let Some(n) = rest.strip_suffix(".tmp") {
                let mine = match classify_file(&e.path().join("00000000")) {
                    Ok(SegmentKind::Vigil | SegmentKind::Legacy | SegmentKind::Empty) => true,
                    Err(err) if err.kind() == io::ErrorKind::NotFound => true,
                    _ => false,
                };
                if mine
                    && n.parse::<u64>().is_ok_and(|n| n < last)
                    && let Err(err) = std::fs::remove_dir_all(e.path())
                {
                    tracing::warn!(dir = %e.path().display(), %err, "Cannot remove an unfinished checkpoint");
                }
                continue;
            }
            if let Ok(n) = rest.parse::<u64>()
                && n < last
                && let Err(err) = remove_checkpoint_dir(&e.path())
            {
                // Another program's (or unreadable): left, and the segments still go, as
                // this checkpoint supersedes them.
                tracing::warn!(dir = %e.path().display(), %err, "Cannot remove an older checkpoint");
            }
        }
        for seg in segments(&dir)?.into_iter().filter(|&s| s <= last) {
            std::fs::remove_file(segment_path(&dir, seg))?;
        }
        Ok(())
    }
}

/// Replay the segments numbered `first` and up.
pub fn replay_from(dir: &Path, first: u64, f: impl FnMut(Record)) -> io::Result<ReplayReport> {
    replay_filtered(dir, first, true, &mut |_: &Record| {}, f)
}

/// As [`replay_from`], also calling `pre` with each record on the reading thread, before `f`
/// gets it on this one: work that needs only the records themselves moves off the applying
/// thread. `pre` sees exactly the records `f` will get, in the same order.
/// With `repair` false nothing is written (a read-only open: tools on a live directory).
pub fn replay_from_with(
    dir: &Path,
    first: u64,
    repair: bool,
    pre: &mut (dyn FnMut(&Record) + Send),
    f: impl FnMut(Record),
) -> io::Result<ReplayReport> {
    replay_filtered(dir, first, repair, pre, f)
}

/// What replay found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub records: u64,
    /// `Some((segment, offset))` of the first torn or corrupt record.
    pub corruption: Option<(u64, u64)>,
    /// Segments with a torn or corrupt record (the rest of each was skipped).
    pub corrupt_segments: u64,
}

/// Read every record in `dir` in order, calling `f` for each. A bad record ends its segment's
/// replay; if it is in the newest segment, the torn tail from it on is cut off.
pub fn replay(dir: &Path, f: impl FnMut(Record)) -> io::Result<ReplayReport> {
    replay_filtered(dir, 0, true, &mut |_: &Record| {}, f)
}

fn replay_filtered(
    dir: &Path,
    first: u64,
    repair: bool,
    pre: &mut (dyn FnMut(&Record) + Send),
    mut f: impl FnMut(Record),
) -> io::Result<ReplayReport> {
    let segs: Vec<u64> = segments(dir)?.into_iter().filter(|&s| s >= first).collect();
    // Reading, checking and decoding run on a second thread while this one applies records:
    // restart time is replay time, and the two halves cost about the same.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(64);
    let scan = std::thread::scope(|sc| {
        let reader = sc.spawn(|| read_segments(dir, &segs, pre, tx));
        let mut records = 0u64;
        for rec in rx {
            f(rec);
            records += 1;
        }
        reader.join().map(|r| r.map(|bad| (records, bad)))
    });
    let (records, bad) = scan.map_err(|_| io::Error::other("WAL reader thread panicked"))??;
    let rep = ReplayReport {
        records,
        corruption: bad.first().map(|&(i, off, _)| (segs[i], off as u64)),
        corrupt_segments: bad.len() as u64,
    };
    for &(i, off, torn) in &bad {
        let seg = segs[i];
        let newest = i + 1 == segs.len();
        // Only a torn tail is cut: a whole record that fails its checksum is damage to keep
        // for inspection (writing starts a new segment anyway, never after it).
        if newest && torn && repair {
            // The torn tail of the newest segment (a write cut short by a crash) is cut off,
            // only after every good record before it was applied.
            tracing::warn!(
                segment = seg,
                offset = off,
                "WAL: truncating the torn tail of the newest segment after its last good record"
            );
            OpenOptions::new()
                .write(true)
                .open(segment_path(dir, seg))?
                .set_len(off as u64)?;
        } else {
            // Inside the log: left as it is (later segments were replayed); the checkpoint
            // that covers it deletes it as it deletes every older segment.
            tracing::error!(
                segment = seg,
                offset = off,
                torn,
                "WAL corruption: a record is torn or fails its checksum; the rest of this segment was skipped and left on disk"
            );
        }
    }
    Ok(rep)
}

/// Send every good record of `segs` in order; where each segment's first bad frame is, and
/// whether it is torn (runs past the end of the file) rather than whole but wrong.
fn read_segments(
    dir: &Path,
    segs: &[u64],
    pre: &mut (dyn FnMut(&Record) + Send),
    tx: std::sync::mpsc::SyncSender<Record>,
) -> io::Result<Vec<(usize, usize, bool)>> {
    // One buffer for every segment: a fresh one per segment page-faulted in each time.
    let mut buf = Vec::new();
    let mut bad = Vec::new();
    'segments: for (i, &seg) in segs.iter().enumerate() {
        buf.clear();
        File::open(segment_path(dir, seg))?.read_to_end(&mut buf)?;
        let mut off = match classify(&buf) {
            SegmentKind::Vigil => HEADER_LEN,
            SegmentKind::Legacy | SegmentKind::Empty => 0,
            // The data directory's inspection refuses these before replay; never touch one.
            SegmentKind::Foreign => {
                return Err(io::Error::other(format!(
                    "{}: not a vigil WAL segment (left untouched)",
                    segment_path(dir, seg).display()
                )));
            }
        };
        while off < buf.len() {
            let Some(hdr) = buf.get(off..off + 9) else {
                bad.push((i, off, true));
                continue 'segments;
            };
            let len = u32::from_le_bytes(hdr[0..4].try_into().unwrap_or_default()) as usize;
            let crc = u32::from_le_bytes(hdr[4..8].try_into().unwrap_or_default());
            if len == 0 {
                bad.push((i, off, false));
                continue 'segments;
            }
            let Some(body) = buf.get(off + 8..off + 8 + len) else {
                // Runs past the end of the file: a write cut short.
                bad.push((i, off, true));
                continue 'segments;
            };
            if crc32fast::hash(body) != crc {
                bad.push((i, off, false));
                continue 'segments;
            }
            match decode_body(body) {
                Some(r) => {
                    pre(&r);
                    if tx.send(r).is_err() {
                        return Ok(bad);
                    }
                }
                None => {
                    bad.push((i, off, false));
                    continue 'segments;
                }
            }
            off += 8 + len;
        }
    }
    Ok(bad)
}

/// A place in the log: a segment and the byte offset of the next record in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// What [`Follower::poll`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FollowReport {
    pub records: usize,
    /// Segments that were gone (deleted by a checkpoint) before they were read.
    pub segments_missed: u64,
    /// Segments whose rest was skipped at a torn or corrupt record, once a newer one existed.
    pub segments_cut_short: u64,
}

/// Reads the log as it is written, for readers that follow it (remote write): each
/// [`Follower::poll`] hands over the complete records written since the last, each with the
/// position after it. It never writes: a record still being written is waited for, and a bad
/// one is skipped only once the writer has moved to a newer segment.
pub struct Follower {
    dir: PathBuf,
    pos: Position,
    file: Option<File>,
    /// Bytes of the current segment read; those from `taken` on (at `pos.offset`) are not
    /// handed over yet.
    pending: Vec<u8>,
    /// How much of `pending` was handed over. Consumed bytes are dropped only once they are
    /// half the buffer: dropping them after every poll shifted the whole rest of a segment
    /// each time, quadratic when catching up on a segment of many small records.
    taken: usize,
    /// Whether the current segment's header (if any) has been checked.
    header_seen: bool,
}

impl Follower {
    /// Follow `dir` (a `wal` directory) from `pos`.
    pub fn new(dir: &Path, pos: Position) -> Self {
        Follower {
            dir: dir.to_path_buf(),
            pos,
            file: None,
            pending: Vec::new(),
            taken: 0,
            header_seen: pos.offset > 0,
        }
    }

    /// The position after the last record handed over.
    pub fn position(&self) -> Position {
        self.pos
    }

    /// Hand over up to `max` complete records (fewer when the log has no more yet).
    pub fn poll(
        &mut self,
        max: usize,
        mut f: impl FnMut(Record, Position),
    ) -> io::Result<FollowReport> {
        let mut rep = FollowReport::default();
        while rep.records < max {
            if self.file.is_none() {
                let missed = rep.segments_missed;
                if !self.open(&mut rep)? {
                    return Ok(rep);
                }
                if rep.segments_missed > missed {
                    // A gap: the caller learns of it before any record after it.
                    return Ok(rep);
                }
            }
            if let Some(file) = self.file.as_mut() {
                file.read_to_end(&mut self.pending)?;
            }
            let progressed = self.parse(max, &mut rep, &mut f)?;
            if rep.records >= max {
                break;
            }
            if progressed {
                continue;
            }
            // Nothing more in this segment now. If the writer has moved on, read once more
            // (the last write may have landed after our read) and then go to the next one.
            let newer = segments(&self.dir)?
                .into_iter()
                .any(|s| s > self.pos.segment);
            if !newer {
                return Ok(rep);
            }
            if let Some(file) = self.file.as_mut() {
                file.read_to_end(&mut self.pending)?;
            }
            if self.parse(max, &mut rep, &mut f)? {
                continue;
            }
            if self.pending.len() > self.taken {
                tracing::warn!(
                    segment = self.pos.segment,
                    offset = self.pos.offset,
                    "WAL follower: a torn or corrupt record ends this segment; going on with the next"
                );
                rep.segments_cut_short += 1;
            }
            self.next_segment();
        }
        Ok(rep)
    }

    fn next_segment(&mut self) {
        self.pos = Position {
            segment: self.pos.segment + 1,
            offset: 0,
        };
        self.file = None;
        self.pending.clear();
        self.taken = 0;
        self.header_seen = false;
    }

    /// Open the current segment (or the oldest one after it, if it is gone); false when
    /// there is none yet.
    fn open(&mut self, rep: &mut FollowReport) -> io::Result<bool> {
        let path = segment_path(&self.dir, self.pos.segment);
        match File::open(&path) {
            Ok(mut f) => {
                use std::io::Seek;
                f.seek(io::SeekFrom::Start(self.pos.offset))?;
                self.file = Some(f);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(next) = segments(&self.dir)?
                    .into_iter()
                    .find(|&s| s > self.pos.segment)
                else {
                    return Ok(false);
                };
                // Deleted by a checkpoint before it was read: those records are gone.
                rep.segments_missed += next - self.pos.segment;
                tracing::warn!(
                    from = self.pos.segment,
                    to = next,
                    "WAL follower: segments were removed before they were read; their samples are not sent"
                );
                self.pos = Position {
                    segment: next,
                    offset: 0,
                };
                self.pending.clear();
                self.taken = 0;
                self.header_seen = false;
                self.open(rep)
            }
            Err(e) => Err(e),
        }
    }

    /// Decode the whole records in `pending`; whether any progress was made.
    fn parse(
        &mut self,
        max: usize,
        rep: &mut FollowReport,
        f: &mut impl FnMut(Record, Position),
    ) -> io::Result<bool> {
        let mut off = self.taken;
        if !self.header_seen {
            if self.pending.is_empty() || is_header_prefix(&self.pending) {
                // Empty, or the header is still being written.
                return Ok(false);
            }
            match classify(&self.pending) {
                SegmentKind::Vigil => off = HEADER_LEN,
                SegmentKind::Legacy | SegmentKind::Empty => {}
                SegmentKind::Foreign => {
                    return Err(io::Error::other(format!(
                        "{}: not a vigil WAL segment",
                        segment_path(&self.dir, self.pos.segment).display()
                    )));
                }
            }
            self.header_seen = true;
        }
        let start = off;
        while rep.records < max {
            let Some(hdr) = self.pending.get(off..off + 8) else {
                break;
            };
            let len = u32::from_le_bytes(hdr[0..4].try_into().unwrap_or_default()) as usize;
            let crc = u32::from_le_bytes(hdr[4..8].try_into().unwrap_or_default());
            if len == 0 || len as u64 > MAX_SEGMENT_SIZE {
                break;
            }
            let Some(body) = self.pending.get(off + 8..off + 8 + len) else {
                break;
            };
            if crc32fast::hash(body) != crc {
                break;
            }
            let Some(rec) = decode_body(body) else {
                break;
            };
            off += 8 + len;
            rep.records += 1;
            f(
                rec,
                Position {
                    segment: self.pos.segment,
                    offset: self.pos.offset + (off - self.taken) as u64,
                },
            );
        }
        self.pos.offset += (off - self.taken) as u64;
        self.taken = off;
        if self.taken == self.pending.len() {
            self.pending.clear();
            self.taken = 0;
        } else if self.taken > self.pending.len() / 2 {
            self.pending.drain(..self.taken);
            self.taken = 0;
        }
        Ok(off > start)
    }
}

/// Appends record batches to the newest segment.
pub struct Wal {
    dir: PathBuf,
    seg: u64,
    file: File,
    size: u64,
    segment_size: u64,
    compression: Compression,
    /// The version new segments get.
    version: u32,
    /// Records of one [`Wal::log`] call, kept for the next (see `SCRATCH`).
    buf: Vec<u8>,
    /// fsyncs closed segments, one at a time, off the caller's thread (see [`Wal::cut`]);
    /// started at the first cut.
    syncer: Option<Syncer>,
    /// An fsync done in [`Wal::cut`] itself (no syncer thread) that failed, for the next sync.
    inline_sync_err: Option<io::Error>,
    /// Tests hold each of the syncer's fsyncs here, to see what does and does not wait.
    #[cfg(test)]
    sync_gate: Option<Arc<std::sync::Barrier>>,
    /// What the segments this process wrote hold in time (see [`Wal::droppable_before`]).
    times: SegmentTimes,
}

/// What each segment written since the log was opened holds in time, so that a checkpoint can
/// drop the segments whose samples are all in blocks, keeping only the head's series, instead
/// of rewriting every sample the head holds (as Prometheus's checkpoints keep only what the
/// dropped segments hold past the cut).
#[derive(Default)]
struct SegmentTimes {
    /// The first segment this process wrote: of older ones nothing is known.
    first_own: u64,
    /// The newest sample, histogram or exemplar time logged in each segment that has any.
    newest: BTreeMap<u64, i64>,
    /// Segments holding a record that must outlive them (a deletion's tombstone).
    pinned: BTreeSet<u64>,
}

/// What the syncer thread is asked to do.
enum SyncJob {
    /// fsync a closed segment (its path is for the log).
    Segment(File, PathBuf),
    /// Answer with the first error since the last flush, once every job before is done.
    Flush(std::sync::mpsc::SyncSender<Option<io::Error>>),
}

/// A thread that fsyncs closed segments in the order they were closed (as Prometheus's WAL
/// does on its own goroutine). Dropping it waits for the fsyncs queued.
struct Syncer {
    tx: Option<std::sync::mpsc::Sender<SyncJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// `gate`: tests hold each fsync there (always `None` outside them).
    fn start(gate: Option<Arc<std::sync::Barrier>>) -> io::Result<Syncer> {
        let (tx, rx) = std::sync::mpsc::channel::<SyncJob>();
        let thread = std::thread::Builder::new()
            .name("wal-fsync".into())
            .spawn(move || {
                let mut failed: Option<io::Error> = None;
                for job in rx {
                    match job {
                        SyncJob::Segment(f, path) => {
                            if let Some(g) = &gate {
                                g.wait();
                            }
                            if let Err(e) = f.sync_data() {
                                tracing::error!(err = %e, segment = %path.display(), "fsync of a closed WAL segment failed");
                                failed.get_or_insert(e);
                            }
                        }
                        SyncJob::Flush(reply) => {
                            let _ = reply.send(failed.take());
                        }
                    }
                }
            })?;
        Ok(Syncer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queue `f`'s fsync; gives the file back if the thread is gone.
    fn queue(&self, f: File, path: PathBuf) -> Result<(), File> {
        let tx = self
            .tx
            .as_ref()
            .expect("the sender lives as long as the syncer");
        tx.send(SyncJob::Segment(f, path)).map_err(|e| match e.0 {
            SyncJob::Segment(f, _) => f,
            SyncJob::Flush(_) => unreachable!("a segment was sent"),
        })
    }

    /// Wait for every fsync queued so far; the first error among them since the last flush.
    fn flush(&self) -> io::Result<()> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let gone = || io::Error::other("the WAL's fsync thread is gone");
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        tx.send(SyncJob::Flush(reply)).map_err(|_| gone())?;
        match answer.recv().map_err(|_| gone())? {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Wal {
    /// Open for appending after [`replay`] has run: starts a new segment after the last one
    /// (never appends to a segment written before, whose tail may be torn).
    pub fn open(dir: &Path) -> io::Result<Wal> {
        Self::open_with(dir, WriteOptions::default())
    }

    /// As [`Wal::open`], cutting segments at `o.segment_size` bytes; `o.compression` is what
    /// the records written to it are encoded with (it sets the new segments' version).
    pub fn open_with(dir: &Path, o: WriteOptions) -> io::Result<Wal> {
        let WriteOptions {
            segment_size,
            compression,
            ..
        } = o;
        let version = o.segment_version();
        std::fs::create_dir_all(dir)?;
        // After the last segment, and after the last checkpoint too: replay starts after the
        // checkpoint, so a segment numbered at or below it (all later segments removed by
        // hand) would never be read back.
        let after_segments = segments(dir)?.last().map_or(0, |s| s + 1);
        let after_checkpoint = latest_checkpoint(dir)?.0.map_or(0, |c| c + 1);
        let seg = after_segments.max(after_checkpoint);
        let file = create_segment(dir, seg, version)?;
        let size = HEADER_LEN as u64;
        Ok(Wal {
            dir: dir.to_path_buf(),
            seg,
            file,
            size,
            segment_size,
            compression,
            version,
            buf: Vec::new(),
            syncer: None,
            inline_sync_err: None,
            #[cfg(test)]
            sync_gate: None,
            times: SegmentTimes {
                first_own: seg,
                ..SegmentTimes::default()
            },
        })
    }

    /// Note that the records just written hold sample (histogram, exemplar) times up to `t`.
    pub fn note_newest(&mut self, t: i64) {
        let e = self.times.newest.entry(self.seg).or_insert(t);
        *e = (*e).max(t);
    }

    /// Note that the records just written must outlive their segment (tombstones): a
    /// checkpoint that would drop it writes the whole head instead.
    pub fn pin_segment(&mut self) {
        self.times.pinned.insert(self.seg);
    }

    /// The newest closed segment such that it and every segment before it were written by this
    /// process, hold no pinned record and only times before `before`: what a checkpoint may
    /// drop keeping just the head's series. `None` if the oldest segment is not such a one.
    pub fn droppable_before(&self, before: i64) -> io::Result<Option<u64>> {
        let mut last = None;
        for s in segments(&self.dir)?
            .into_iter()
            .take_while(|&s| s < self.seg)
        {
            if s < self.times.first_own
                || last.is_some_and(|l| s != l + 1)
                || self.times.pinned.contains(&s)
                || self.times.newest.get(&s).is_some_and(|&t| t >= before)
            {
                break;
            }
            last = Some(s);
        }
        Ok(last)
    }

    /// Forget what is known of the segments up to `n` (a checkpoint dropped them).
    pub fn forget_through(&mut self, n: u64) {
        self.times.newest = self.times.newest.split_off(&(n + 1));
        self.times.pinned = self.times.pinned.split_off(&(n + 1));
    }

    /// Encode records with `fill` (given this log's compression) and write them in one call.
    pub fn log(&mut self, fill: impl FnOnce(&mut Vec<u8>, Compression)) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        fill(&mut buf, self.compression);
        let r = self.write(&buf);
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        r
    }

    /// Make the segments from here on say they may hold native histogram records: the
    /// segment being written is closed first if it is of an older version, so a build that
    /// predates them still reads everything before the first histogram and refuses the rest
    /// instead of misreading it.
    pub fn allow_histograms(&mut self) -> io::Result<()> {
        self.allow(HISTOGRAM_VERSION)
    }

    /// As [`Wal::allow_histograms`] for the records of segment `version` (and below).
    pub fn allow(&mut self, version: u32) -> io::Result<()> {
        if self.version >= version {
            return Ok(());
        }
        let old = self.version;
        self.version = version;
        let r = self.cut();
        if r.is_err() {
            // Still writing the old segment: no record of `version` may go into it.
            self.version = old;
        }
        r
    }

    /// Whether native histogram records may be written to the current segment.
    pub fn histograms_allowed(&self) -> bool {
        self.version >= HISTOGRAM_VERSION
    }

    /// What records written to this log must be encoded with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Write framed records in one call. Returns once the kernel has them.
    pub fn write(&mut self, framed: &[u8]) -> io::Result<()> {
        if self.size > HEADER_LEN as u64 && self.size + framed.len() as u64 > self.segment_size {
            self.cut()?;
        }
        if let Err(e) = self.file.write_all(framed) {
            // Cut off whatever part was written, so later records do not follow a torn one
            // (replay would stop there and drop everything after it).
            let _ = self.file.set_len(self.size);
            return Err(e);
        }
        self.size += framed.len() as u64;
        Ok(())
    }

    /// Start a new segment. The closed one is fsynced by the syncer thread: a cut happens
    /// under the head's WAL lock (a full segment in a commit, every checkpoint and agent
    /// truncation), and waiting there for a loaded disk stalled every scrape's commit, while
    /// `kill -9` safety never needed the fsync. [`Wal::sync`] waits for it.
    pub fn cut(&mut self) -> io::Result<()> {
        let next = create_segment(&self.dir, self.seg + 1, self.version)?;
        let closed = std::mem::replace(&mut self.file, next);
        let path = segment_path(&self.dir, self.seg);
        self.seg += 1;
        self.size = HEADER_LEN as u64;
        if self.syncer.is_none() {
            #[cfg(test)]
            let gate = self.sync_gate.clone();
            #[cfg(not(test))]
            let gate = None;
            // No thread to be had: the fsync is done here, as before.
            self.syncer = Syncer::start(gate).ok();
        }
        let unqueued = match &self.syncer {
            Some(s) => s.queue(closed, path.clone()).err(),
            None => Some(closed),
        };
        if let Some(f) = unqueued
            && let Err(e) = f.sync_data()
        {
            // The cut itself is done; the error waits for the next sync, as the thread's do.
            tracing::error!(err = %e, segment = %path.display(), "fsync of a closed WAL segment failed");
            self.inline_sync_err.get_or_insert(e);
        }
        Ok(())
    }

    /// Make everything written so far durable: the closed segments' fsyncs still queued (an
    /// error of any since the last sync is returned), then the segment being written.
    pub fn sync(&mut self) -> io::Result<()> {
        if let Some(s) = &self.syncer {
            s.flush()?;
        }
        if let Some(e) = self.inline_sync_err.take() {
            return Err(e);
        }
        self.file.sync_data()
    }

    pub fn current_segment(&self) -> u64 {
        self.seg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn records() -> Vec<Record> {
        vec![
            Record::Series(vec![
                (1, Labels::from_pairs([("__name__", "up"), ("job", "a")])),
                (2, Labels::from_pairs([("__name__", "x")])),
            ]),
            Record::Samples(vec![(1, 1000, 1.0), (2, 1000, f64::NAN), (1, 2000, -3.5)]),
            Record::Samples(vec![]),
            Record::Tombstones(vec![(1, -5, 1500)]),
        ]
    }

    /// A cut does not wait for the closed segment's fsync (it runs under the head's WAL lock,
    /// where a slow disk would stall every commit): writing goes on while it runs, and only an
    /// explicit sync waits for it. What was written before and after reads back.
    #[test]
    fn a_cut_leaves_the_closed_segments_fsync_to_a_thread() {
        use std::sync::mpsc::RecvTimeoutError;
        let d = tmp("cut-fsync");
        let mut w = Wal::open(&d).unwrap();
        let gate = Arc::new(std::sync::Barrier::new(2));
        w.sync_gate = Some(gate.clone());
        let mut buf = Vec::new();
        encode(&mut buf, &records()[1], Compression::None);
        w.write(&buf).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let w = std::thread::scope(|sc| {
            let cutter = sc.spawn(move || {
                w.cut().unwrap();
                // Writing goes on while the closed segment's fsync is held.
                w.write(&buf).unwrap();
                tx.send(()).unwrap();
                w
            });
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => {
                    // Let the cut finish so the scope can end, then fail.
                    gate.wait();
                    panic!("cut() waited for the closed segment's fsync");
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the cut or the write failed"),
            }
            cutter.join().unwrap()
        });
        let mut w = w;
        let syncer = std::thread::spawn(move || {
            w.sync().unwrap();
            w
        });
        // sync() waits for the held fsync: it is still running a while later, and completes
        // once the fsync is let through.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !syncer.is_finished(),
            "sync() returned before the held fsync"
        );
        gate.wait();
        drop(syncer.join().unwrap());
        let mut got = Vec::new();
        replay(&d, |r| got.push(r)).unwrap();
        let samples: usize = got
            .iter()
            .map(|r| match r {
                Record::Samples(s) => s.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(samples, 6);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Histogram records round-trip bit for bit, whole counts or not, go only into version-9
    /// segments (the first one closes an older segment), and a damaged layout fails the
    /// record; version 4's and 5's records are still read alike.
    #[test]
    fn histogram_records_round_trip_in_version_9_segments() {
        use vigil_model::histogram::Span;
        let d = tmp("histograms");
        let mut w = Wal::open(&d).unwrap();
        let first = w.current_segment();
        let mut buf = Vec::new();
        encode(&mut buf, &records()[1], Compression::Snappy);
        w.write(&buf).unwrap();
        let h = FloatHistogram {
            hint: CounterResetHint::Gauge,
            schema: 3,
            zero_threshold: 1e-3,
            zero_count: 2.0,
            count: 9.5,
            sum: -1.25,
            positive_spans: vec![Span {
                offset: -3,
                length: 2,
            }],
            positive_buckets: vec![3.0, 4.5],
            negative_spans: vec![Span {
                offset: 1,
                length: 0,
            }],
            ..Default::default()
        };
        let whole = FloatHistogram {
            hint: CounterResetHint::NotCounterReset,
            zero_count: 3.0,
            count: 1e15 + 20.0,
            positive_buckets: vec![7.0, 1e15, 2.0],
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            negative_buckets: vec![8.0],
            negative_spans: vec![Span {
                offset: 2,
                length: 1,
            }],
            ..h.clone()
        };
        let rec = Record::Histograms(vec![
            (7, -5, Arc::new(h.clone())),
            (
                9,
                1000,
                Arc::new(FloatHistogram {
                    sum: vigil_model::sample::STALE_NAN,
                    ..Default::default()
                }),
            ),
            (11, 2000, Arc::new(whole.clone())),
        ]);
        assert!(!w.histograms_allowed());
        w.allow_histograms().unwrap();
        assert!(w.histograms_allowed());
        assert_eq!(w.current_segment(), first + 1);
        buf.clear();
        encode(&mut buf, &rec, Compression::Snappy);
        w.write(&buf).unwrap();
        let head = std::fs::read(segment_path(&d, first + 1)).unwrap();
        assert_eq!(u32::from_le_bytes(head[8..12].try_into().unwrap()), 9);
        let head0 = std::fs::read(segment_path(&d, first)).unwrap();
        assert_eq!(u32::from_le_bytes(head0[8..12].try_into().unwrap()), 2);
        let mut got = Vec::new();
        replay(&d, |r| got.push(r)).unwrap();
        assert_eq!(got.len(), 2);
        let Record::Histograms(hs) = &got[1] else {
            panic!("{:?}", got[1]);
        };
        assert_eq!((hs[0].0, hs[0].1), (7, -5));
        assert_eq!(*hs[0].2, h);
        assert!(vigil_model::is_stale_nan(hs[1].2.sum));
        assert_eq!((hs[2].0, hs[2].1), (11, 2000));
        assert_eq!(*hs[2].2, whole);
        // The same histograms in version 4's record read the same; whole counts take fewer
        // bytes (a bucket of a scraped histogram one or two instead of eight; here some
        // counts are 1e15).
        let Record::Histograms(orig) = &rec else {
            unreachable!()
        };
        let (mut v4, mut v5) = (Vec::new(), Vec::new());
        encode_histograms_v4(&mut v4, orig, Compression::None);
        assert_eq!(decode_body(&v4[8..]), Some(rec.clone()));
        encode_histograms_compact(&mut v5, orig, Compression::None);
        assert_eq!(decode_body(&v5[8..]), Some(rec.clone()));
        v5.clear();
        encode_histograms_compact(&mut v5, &orig[2..], Compression::None);
        v4.clear();
        encode_histograms_v4(&mut v4, &orig[2..], Compression::None);
        assert!(v5.len() < v4.len(), "{} vs {} bytes", v5.len(), v4.len());
        // Spans announcing more buckets than it has: not a histogram, the record refused.
        let mut bad = Vec::new();
        let mut broken = h.clone();
        broken.positive_buckets.pop();
        encode(
            &mut bad,
            &Record::Histograms(vec![(1, 1, Arc::new(broken))]),
            Compression::None,
        );
        assert_eq!(decode_body(&bad[8..]), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A scrape's histograms: nearby refs, one time, most sharing schema, zero threshold and
    /// layout with the one before, some not (float counts, custom buckets, a stale marker, a
    /// layout that changes, a counter reset hint each). The dense record reads back bit for
    /// bit, and is smaller than the compact record of version 5 on the same histograms.
    #[test]
    fn dense_histogram_records_read_back_bit_for_bit_and_take_less() {
        use vigil_model::histogram::Span;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let exp = |len: u32, k: u64| FloatHistogram {
            hint: CounterResetHint::NotCounterReset,
            schema: 3,
            zero_threshold: 2.938735877055719e-39,
            zero_count: k as f64,
            count: (k * (len as u64 + 1)) as f64,
            sum: k as f64 * 1.5,
            positive_spans: vec![
                Span {
                    offset: -2,
                    length: len - 2,
                },
                Span {
                    offset: 3,
                    length: 2,
                },
            ],
            positive_buckets: (0..len as u64).map(|j| (k + j) as f64).collect(),
            ..Default::default()
        };
        let mut hs = Vec::new();
        for i in 0..400u64 {
            let k = 1 + next(1000);
            let mut h = exp(8 + (next(4) == 0) as u32, k);
            h.hint = CounterResetHint::from_code(next(4) as u8).unwrap();
            match next(12) {
                0 => h.positive_buckets[1] += 0.25,
                1 => h.zero_threshold = 1e-3,
                2 => {
                    h.schema = -53;
                    h.zero_threshold = 0.0;
                    h.zero_count = 0.0;
                    h.positive_spans = vec![Span {
                        offset: 0,
                        length: 3,
                    }];
                    h.positive_buckets.truncate(3);
                    h.custom_values = vec![0.1, 0.5, 2.5];
                }
                3 => {
                    h = FloatHistogram {
                        sum: vigil_model::sample::STALE_NAN,
                        ..Default::default()
                    }
                }
                4 => {
                    h.negative_spans = vec![Span {
                        offset: 1,
                        length: 1,
                    }];
                    h.negative_buckets = vec![k as f64];
                }
                _ => {}
            }
            hs.push((
                100 + i + next(3),
                1_700_000_000_000 + next(2) as i64,
                Arc::new(h),
            ));
        }
        let same = |a: &[(u64, i64, Arc<FloatHistogram>)],
                    b: &[(u64, i64, Arc<FloatHistogram>)]| {
            a.len() == b.len()
                && a.iter().zip(b).all(|(x, y)| {
                    (x.0, x.1) == (y.0, y.1)
                        && x.2.sum.to_bits() == y.2.sum.to_bits()
                        && FloatHistogram {
                            sum: 0.0,
                            ..(*x.2).clone()
                        } == FloatHistogram {
                            sum: 0.0,
                            ..(*y.2).clone()
                        }
                })
        };
        for c in [Compression::None, Compression::Snappy] {
            let mut dense = Vec::new();
            encode_histograms(&mut dense, &hs, c);
            let Some(Record::Histograms(got)) = decode_body(&dense[8..]) else {
                panic!("the dense record did not read back ({c:?})");
            };
            assert!(same(&got, &hs), "{c:?}");
            let mut compact = Vec::new();
            encode_histograms_compact(&mut compact, &hs, c);
            assert!(
                dense.len() * 10 < compact.len() * 9,
                "{c:?}: dense {} bytes, compact {}",
                dense.len(),
                compact.len()
            );
        }
        // One sample, and none.
        for n in [0, 1] {
            let mut one = Vec::new();
            encode_histograms(&mut one, &hs[..n], Compression::None);
            let Some(Record::Histograms(got)) = decode_body(&one[8..]) else {
                panic!("{n} histograms did not read back");
            };
            assert!(same(&got, &hs[..n]));
        }
    }

    /// Damage to a dense record is a refused record, never a misread or a huge allocation:
    /// "same as before" on the first histogram, flags this build does not know, spans that
    /// claim billions of buckets, a layout repeated past what the payload could carry, and
    /// every cut of a good record.
    #[test]
    fn damaged_dense_histogram_records_are_refused() {
        use vigil_model::histogram::Span;
        let h = FloatHistogram {
            schema: 0,
            count: 3.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1.0, 2.0],
            ..Default::default()
        };
        let hs = vec![(5, 10, Arc::new(h.clone())), (6, 10, Arc::new(h))];
        let mut good = Vec::new();
        encode_histograms(&mut good, &hs, Compression::None);
        let payload = good[9..].to_vec();
        assert_eq!(
            decode_payload(REC_HISTOGRAMS_DENSE, &payload),
            Some(Record::Histograms(hs.clone()))
        );
        for cut in 0..payload.len() {
            assert_eq!(
                decode_payload(REC_HISTOGRAMS_DENSE, &payload[..cut]),
                None,
                "cut {cut}"
            );
        }
        // count 1, ref 5, time 10, ref delta 0, time delta 0, then the flags byte.
        let flags_at = 5;
        assert_eq!(payload[flags_at] & DenseFlags::SAME_SCALE, 0);
        for bad_flags in [
            payload[flags_at] | DenseFlags::SAME_SCALE,
            payload[flags_at] | DenseFlags::SAME_LAYOUT,
            payload[flags_at] | 0x40,
            payload[flags_at] | 0x80,
        ] {
            let mut p = payload.clone();
            p[0] = 1;
            p[flags_at] = bad_flags;
            assert_eq!(
                decode_payload(REC_HISTOGRAMS_DENSE, &p),
                None,
                "flags {bad_flags:#x}"
            );
        }
        let mut huge = FloatHistogram {
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: u32::MAX,
                };
                4
            ],
            ..Default::default()
        };
        huge.positive_buckets = vec![1.0];
        let mut p = Vec::new();
        encode_histograms(&mut p, &[(1, 1, Arc::new(huge))], Compression::None);
        // Written with its bucket count (the spans do not say it); cleared, the spans claim
        // 17 billion buckets of a few bytes.
        let mut body = p[9..].to_vec();
        assert_ne!(body[flags_at] & DenseFlags::COUNTED, 0);
        body[flags_at] &= !DenseFlags::COUNTED;
        assert_eq!(decode_payload(REC_HISTOGRAMS_DENSE, &body), None);
        // One histogram with 2,000 empty spans (a layout Prometheus allows), then 2,000
        // repeating it at 13 bytes each: refused, not 4 million spans copied from 30 KB.
        let empty = FloatHistogram {
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 0,
                };
                2_000
            ],
            ..Default::default()
        };
        let many: Vec<_> = (0..2_000)
            .map(|i| (i, 1, Arc::new(empty.clone())))
            .collect();
        let mut p = Vec::new();
        encode_histograms(&mut p, &many, Compression::None);
        assert!(
            decode_body(&p[8..]).is_none(),
            "a layout repeated past the payload"
        );
        // A scrape's layout (ten runs of buckets) repeated by every histogram of a big
        // record reads back.
        let scraped = FloatHistogram {
            count: 20.0,
            positive_spans: (0..10)
                .map(|_| Span {
                    offset: 1,
                    length: 2,
                })
                .collect(),
            positive_buckets: vec![1.0; 20],
            ..Default::default()
        };
        let fine: Vec<_> = (0..20_000)
            .map(|i| (i, 1, Arc::new(scraped.clone())))
            .collect();
        p.clear();
        encode_histograms(&mut p, &fine, Compression::None);
        assert!(decode_body(&p[8..]) == Some(Record::Histograms(fine)));
    }

    /// A metadata record reads back as written, compressed or not; after its count each entry
    /// is Prometheus's layout (ref, type byte, field count, `UNIT` and `HELP` strings). A type
    /// this build does not know reads as unknown and fields it does not know are skipped, as
    /// Prometheus reads them; a record cut short is refused.
    #[test]
    fn metadata_records_read_back_and_read_as_prometheus_reads_them() {
        use vigil_model::exposition::MetricType;
        let m = |kind, unit: &str, help: &str| {
            Arc::new(Metadata {
                kind,
                unit: unit.into(),
                help: help.into(),
            })
        };
        let rec = Record::Metadata(vec![
            (1, m(MetricType::Counter, "", "Requests served.")),
            (300, m(MetricType::Histogram, "seconds", &"x".repeat(500))),
            (7, m(MetricType::Unknown, "", "")),
        ]);
        for c in [Compression::None, Compression::Snappy] {
            let mut framed = Vec::new();
            encode(&mut framed, &rec, c);
            assert_eq!(decode_body(&framed[8..]), Some(rec.clone()));
        }
        let mut framed = Vec::new();
        encode(
            &mut framed,
            &Record::Metadata(vec![(5, m(MetricType::Gauge, "bytes", "Free."))]),
            Compression::None,
        );
        let mut entry = vec![REC_METADATA, 1, 5, 2, 2];
        for s in ["UNIT", "bytes", "HELP", "Free."] {
            entry.push(s.len() as u8);
            entry.extend_from_slice(s.as_bytes());
        }
        assert_eq!(&framed[8..], &entry[..]);
        let mut odd = vec![REC_METADATA, 1, 5, 42, 3];
        for s in ["UNIT", "s", "EXTRA", "x", "HELP", "h"] {
            odd.push(s.len() as u8);
            odd.extend_from_slice(s.as_bytes());
        }
        assert_eq!(
            decode_body(&odd),
            Some(Record::Metadata(vec![(
                5,
                m(MetricType::Unknown, "s", "h")
            )]))
        );
        assert_eq!(decode_body(&odd[..odd.len() - 1]), None);
    }

    /// Many new series in one commit are logged as several bounded records, which replay
    /// reads back as every series once, in order.
    #[test]
    fn many_series_are_logged_in_bounded_records() {
        let d = tmp("many-series");
        let mut w = Wal::open(&d).unwrap();
        let series: Vec<(u64, Labels)> = (1..=5000u64)
            .map(|r| {
                (
                    r,
                    Labels::from_pairs([("__name__", "m".to_string()), ("i", r.to_string())]),
                )
            })
            .collect();
        let mut buf = Vec::new();
        encode_series(&mut buf, &series, Compression::Snappy);
        w.write(&buf).unwrap();
        drop(w);
        let mut records = 0;
        let mut got = Vec::new();
        replay(&d, |r| {
            if let Record::Series(s) = r {
                records += 1;
                assert!(s.len() <= SERIES_PER_RECORD);
                got.extend(s);
            }
        })
        .unwrap();
        assert_eq!(records, 5000usize.div_ceil(SERIES_PER_RECORD));
        assert!(got == series, "series differ after replay");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A checkpoint directory another program wrote at the number vigil's next checkpoint
    /// takes is refused and left as it is; vigil's own unfinished one is replaced.
    #[test]
    fn a_checkpoint_never_removes_one_it_did_not_write() {
        let d = tmp("foreign-checkpoint");
        std::fs::create_dir_all(&d).unwrap();
        // Prometheus's own unfinished checkpoint at the number vigil's next one takes: its
        // segment is 32 KiB pages of Prometheus's framing, not vigil's.
        let theirs = d.join("checkpoint.00000005.tmp");
        std::fs::create_dir_all(&theirs).unwrap();
        let mut page = vec![0u8; 32 << 10];
        page[0] = 1; // a full record's type, then its length and CRC: not vigil's framing
        page[2] = 4;
        std::fs::write(theirs.join("00000000"), &page).unwrap();
        assert!(matches!(
            classify_file(&theirs.join("00000000")).unwrap(),
            SegmentKind::Foreign
        ));
        let err = CheckpointWriter::create(&d, 5, WriteOptions::default())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("did not write"), "{err}");
        assert_eq!(std::fs::read(theirs.join("00000000")).unwrap(), page);
        // vigil's own unfinished one is replaced as before.
        let mine = d.join("checkpoint.00000006.tmp");
        std::fs::create_dir_all(&mine).unwrap();
        create_segment(&mine, 0, WriteOptions::default().segment_version()).unwrap();
        let cp = CheckpointWriter::create(&d, 6, WriteOptions::default()).unwrap();
        drop(cp);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// With a checkpoint but no segment after it, new writes go after the checkpoint, where
    /// replay reads them.
    #[test]
    fn a_new_segment_follows_the_latest_checkpoint() {
        let d = tmp("after-checkpoint");
        std::fs::create_dir_all(d.join("checkpoint.00000007")).unwrap();
        let w = Wal::open(&d).unwrap();
        assert_eq!(w.current_segment(), 8);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// Small polls over many records: each handed over once, in order, at a position a new
    /// follower resumes from exactly.
    #[test]
    fn follower_in_small_polls_hands_over_every_record_once_at_its_position() {
        let d = tmp("follow-small");
        let mut w = Wal::open(&d).unwrap();
        let seg = w.current_segment();
        let recs: Vec<Record> = (0..200)
            .map(|i| Record::Samples(vec![(i, i as i64 * 1000, i as f64)]))
            .collect();
        let mut buf = Vec::new();
        for r in &recs {
            encode(&mut buf, r, Compression::Snappy);
        }
        w.write(&buf).unwrap();
        let mut f = Follower::new(
            &d,
            Position {
                segment: seg,
                offset: 0,
            },
        );
        let mut got: Vec<(Record, Position)> = Vec::new();
        // Three at a time: most polls leave consumed bytes in the buffer behind unread ones.
        while f.poll(3, |r, p| got.push((r, p))).unwrap().records > 0 {}
        assert_eq!(got.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), recs);
        assert_eq!(f.position(), got.last().unwrap().1);
        // Every position handed over is exactly where the next record starts.
        for (i, (_, p)) in got.iter().enumerate().step_by(17) {
            let mut again = Follower::new(&d, *p);
            let mut rest = Vec::new();
            while again.poll(5, |r, _| rest.push(r)).unwrap().records > 0 {}
            assert_eq!(rest, recs[i + 1..], "resuming after record {i}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The follower hands over records as they are written, waits for a record still being
    /// written, follows segment cuts, and never changes a file.
    #[test]
    fn follower_reads_what_is_written_as_it_is_written() {
        let d = tmp("follow");
        let mut w = Wal::open(&d).unwrap();
        let mut f = Follower::new(
            &d,
            Position {
                segment: w.current_segment(),
                offset: 0,
            },
        );
        let mut got: Vec<(Record, Position)> = Vec::new();
        assert_eq!(f.poll(100, |r, p| got.push((r, p))).unwrap().records, 0);
        let mut buf = Vec::new();
        encode(&mut buf, &records()[0], Compression::Snappy);
        encode(&mut buf, &records()[1], Compression::Snappy);
        w.write(&buf).unwrap();
        f.poll(100, |r, p| got.push((r, p))).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, records()[0]);
        assert!(got[0].1 < got[1].1, "positions grow");
        // Half a record on disk: not handed over until the rest is there.
        let mut next = Vec::new();
        encode(
            &mut next,
            &Record::Samples(vec![(1, 3000, 7.0)]),
            Compression::Snappy,
        );
        let seg = segment_path(&d, w.current_segment());
        let before = std::fs::read(&seg).unwrap();
        {
            let mut file = OpenOptions::new().append(true).open(&seg).unwrap();
            file.write_all(&next[..next.len() / 2]).unwrap();
        }
        assert_eq!(f.poll(100, |r, p| got.push((r, p))).unwrap().records, 0);
        {
            let mut file = OpenOptions::new().append(true).open(&seg).unwrap();
            file.write_all(&next[next.len() / 2..]).unwrap();
        }
        f.poll(100, |r, p| got.push((r, p))).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].0, Record::Samples(vec![(1, 3000, 7.0)]));
        assert_eq!(
            std::fs::read(&seg).unwrap().len(),
            before.len() + next.len()
        );
        // A cut: the follower finishes the old segment and goes on in the new one.
        w.cut().unwrap();
        let mut more = Vec::new();
        encode(
            &mut more,
            &Record::Samples(vec![(2, 4000, 8.0)]),
            Compression::Snappy,
        );
        w.write(&more).unwrap();
        f.poll(100, |r, p| got.push((r, p))).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].1.segment, w.current_segment());
        assert_eq!(got[3].0, Record::Samples(vec![(2, 4000, 8.0)]));
        // A new follower from a saved position resumes after it.
        let mut again = Follower::new(&d, got[2].1);
        let mut rest = Vec::new();
        again.poll(100, |r, _| rest.push(r)).unwrap();
        assert_eq!(rest, vec![Record::Samples(vec![(2, 4000, 8.0)])]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn records_roundtrip_through_segments() {
        let d = tmp("rt");
        let mut w = Wal::open(&d).unwrap();
        let mut buf = Vec::new();
        for r in records() {
            encode(&mut buf, &r, Compression::Snappy);
        }
        w.write(&buf).unwrap();
        drop(w);
        let mut got = Vec::new();
        let rep = replay(&d, |r| got.push(r)).unwrap();
        assert!(rep.corruption.is_none());
        assert_eq!(got.len(), 4);
        assert_eq!(got[3], records()[3]);
        assert_eq!(got[0], records()[0]);
        let Record::Samples(s) = &got[1] else {
            panic!()
        };
        assert_eq!((s[2].0, s[2].1, s[2].2), (1, 2000, -3.5));
        assert!(s[1].2.is_nan());
    }

    #[test]
    fn torn_tail_is_truncated_and_reported() {
        let d = tmp("torn");
        let mut w = Wal::open(&d).unwrap();
        let mut buf = Vec::new();
        encode(&mut buf, &records()[0], Compression::Snappy);
        let good = HEADER_LEN + buf.len();
        encode(&mut buf, &records()[1], Compression::Snappy);
        w.write(&buf).unwrap();
        drop(w);
        let seg = d.join("00000000");
        let full = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &full[..full.len() - 3]).unwrap();
        let mut n = 0;
        let rep = replay(&d, |_| n += 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(rep.corruption, Some((0, good as u64)));
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good as u64);
        // A flipped bit is caught by the checksum: reported, and the segment is left as it
        // is even though it is the newest (a whole record that is wrong is not a torn tail).
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[HEADER_LEN + 12] ^= 0x40;
        std::fs::write(&seg, &bytes).unwrap();
        let rep = replay(&d, |_| {}).unwrap();
        assert_eq!(rep.corruption, Some((0, HEADER_LEN as u64)));
        assert_eq!(std::fs::read(&seg).unwrap(), bytes);
    }

    /// Corruption inside the log (not the newest segment) costs only the rest of that segment:
    /// later segments are replayed, and nothing is truncated or deleted.
    #[test]
    fn corruption_inside_the_log_keeps_later_segments_and_changes_nothing() {
        let d = tmp("middle");
        let mut w = Wal::open(&d).unwrap();
        for r in records() {
            let mut buf = Vec::new();
            encode(&mut buf, &r, Compression::Snappy);
            w.write(&buf).unwrap();
            w.cut().unwrap();
        }
        drop(w);
        let seg1 = d.join("00000001");
        let mut bytes = std::fs::read(&seg1).unwrap();
        bytes[HEADER_LEN + 9] ^= 0x01;
        std::fs::write(&seg1, &bytes).unwrap();
        let before: Vec<Vec<u8>> = segments(&d)
            .unwrap()
            .iter()
            .map(|&n| std::fs::read(segment_path(&d, n)).unwrap())
            .collect();
        let mut got = Vec::new();
        let rep = replay(&d, |r| got.push(r)).unwrap();
        assert_eq!(rep.corruption, Some((1, HEADER_LEN as u64)));
        assert_eq!(rep.corrupt_segments, 1);
        assert_eq!(got.len(), 3, "records of segments 0, 2 and 3");
        let after: Vec<Vec<u8>> = segments(&d)
            .unwrap()
            .iter()
            .map(|&n| std::fs::read(segment_path(&d, n)).unwrap())
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn a_foreign_segment_is_an_error_and_stays_untouched() {
        let d = tmp("foreign");
        std::fs::create_dir_all(&d).unwrap();
        // Prometheus's framing: a 7-byte record header (type, big-endian length and CRC).
        let prom = [1u8, 0, 4, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4];
        std::fs::write(d.join("00000000"), prom).unwrap();
        assert_eq!(classify(&prom), SegmentKind::Foreign);
        // A header cut short is vigil's (and holds no records); other short files are not.
        assert_eq!(classify(&segment_header(1)[..5]), SegmentKind::Vigil);
        assert_eq!(classify(b"VIGXX"), SegmentKind::Foreign);
        assert_eq!(
            classify_file(&d.join("00000000")).unwrap(),
            SegmentKind::Foreign
        );
        let err = replay(&d, |_| {}).unwrap_err();
        assert!(err.to_string().contains("not a vigil WAL segment"), "{err}");
        assert_eq!(std::fs::read(d.join("00000000")).unwrap(), prom);
    }

    #[test]
    fn headerless_segments_of_earlier_versions_are_still_read() {
        let d = tmp("legacy");
        std::fs::create_dir_all(&d).unwrap();
        let mut buf = Vec::new();
        for r in records() {
            encode(&mut buf, &r, Compression::None);
        }
        std::fs::write(d.join("00000000"), &buf).unwrap();
        assert_eq!(
            classify_file(&d.join("00000000")).unwrap(),
            SegmentKind::Legacy
        );
        let mut n = 0;
        let rep = replay(&d, |_| n += 1).unwrap();
        assert_eq!((n, rep.corruption), (4, None));
        // Writing goes on in a new segment, with the header.
        let w = Wal::open(&d).unwrap();
        assert_eq!(w.current_segment(), 1);
        assert_eq!(std::fs::read(d.join("00000000")).unwrap(), buf);
        assert_eq!(
            classify_file(&d.join("00000001")).unwrap(),
            SegmentKind::Vigil
        );
    }

    /// A scrape's worth of series and samples: big enough for snappy to pay.
    fn big_records() -> Vec<Record> {
        let series = (1..=500u64)
            .map(|r| {
                let pod = format!("pod-{r}");
                (
                    r,
                    Labels::from_pairs([
                        ("__name__", "http_requests_total"),
                        ("job", "app"),
                        ("pod", pod.as_str()),
                    ]),
                )
            })
            .collect();
        let samples = (1..=500u64)
            .map(|r| (r, 1_700_000_000_000, (r * 17) as f64))
            .collect();
        vec![
            Record::Series(series),
            Record::Samples(samples),
            Record::Tombstones(vec![(3, 0, 10)]),
            Record::Exemplars(
                (1..=300u64)
                    .map(|r| {
                        let id = format!("{r:032x}");
                        let labels = Labels::from_pairs([("trace_id", id.as_str())]);
                        (
                            r,
                            Exemplar {
                                labels,
                                value: r as f64 / 8.0,
                                t: -(r as i64),
                            },
                        )
                    })
                    .collect(),
            ),
        ]
    }

    /// Compressed records read back as written, by replay and by the follower, in segments
    /// marked version 2; with compression off nothing is compressed and segments stay
    /// version 1 (what builds before compression read).
    #[test]
    fn compressed_records_roundtrip_and_mark_their_segments() {
        for (c, exemplars, version) in [
            (Compression::Snappy, false, 2u32),
            (Compression::None, false, 1),
            (Compression::Snappy, true, 3),
        ] {
            let d = tmp(&format!("compress-{version}"));
            let mut w = Wal::open_with(
                &d,
                WriteOptions {
                    segment_size: SEGMENT_SIZE,
                    compression: c,
                    exemplars,
                    histograms: false,
                    metadata: false,
                },
            )
            .unwrap();
            let mut framed = Vec::new();
            for r in big_records() {
                encode(&mut framed, &r, c);
            }
            let mut plain = Vec::new();
            for r in big_records() {
                encode(&mut plain, &r, Compression::None);
            }
            match c {
                Compression::Snappy => assert!(framed.len() * 2 < plain.len()),
                Compression::None => assert_eq!(framed, plain),
            }
            w.write(&framed).unwrap();
            drop(w);
            let seg = std::fs::read(d.join("00000000")).unwrap();
            assert_eq!(&seg[..8], SEGMENT_MAGIC);
            assert_eq!(u32::from_le_bytes(seg[8..12].try_into().unwrap()), version);
            // The first record's type byte says whether it is compressed.
            assert_eq!(
                seg[HEADER_LEN + 8] & COMPRESSED != 0,
                c == Compression::Snappy
            );
            let mut got = Vec::new();
            let rep = replay(&d, |r| got.push(r)).unwrap();
            assert_eq!((rep.corruption, got), (None, big_records()));
            let mut followed = Vec::new();
            Follower::new(&d, Position::default())
                .poll(100, |r, _| followed.push(r))
                .unwrap();
            assert_eq!(followed, big_records());
        }
    }

    /// A payload snappy cannot shrink (random values) is stored plain, unflagged, and a
    /// compressed one framed after it in the same buffer still reads back.
    #[test]
    fn an_incompressible_payload_is_stored_plain() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<(u64, i64, f64)> = (0..200)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (
                    x >> (i % 7),
                    x.rotate_left(29) as i64,
                    f64::from_bits(x.rotate_left(41)),
                )
            })
            .collect();
        let mut out = Vec::new();
        encode_samples(&mut out, &random, Compression::Snappy);
        assert_eq!(out[8] & COMPRESSED, 0);
        let first = out.len();
        encode(&mut out, &big_records()[1], Compression::Snappy);
        assert_ne!(out[first + 8] & COMPRESSED, 0);
        let d = tmp("incompressible");
        let mut w = Wal::open(&d).unwrap();
        w.write(&out).unwrap();
        drop(w);
        let mut got = Vec::new();
        replay(&d, |r| got.push(r)).unwrap();
        assert_eq!(got, vec![Record::Samples(random), big_records()[1].clone()]);
    }

    /// A compressed record that claims to expand past what snappy can is damage: it ends its
    /// segment like any corrupt record, without a huge allocation.
    #[test]
    fn a_compressed_record_claiming_a_huge_size_is_corrupt() {
        let mut body = vec![REC_SAMPLES | COMPRESSED];
        // snappy's preamble: the decompressed length as a varint (here 2^40).
        crate::encoding::put_uvarint(&mut body, 1 << 40);
        body.extend_from_slice(&[0; 8]);
        assert_eq!(decode_body(&body), None);
        // A newer segment version than this build reads is refused, not misread.
        assert_eq!(
            classify(&segment_header(SEGMENT_VERSION + 1)),
            SegmentKind::Foreign
        );
    }
}
