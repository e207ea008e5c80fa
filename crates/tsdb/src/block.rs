//! Immutable blocks: a directory per time range with `meta.json`, an `index` and chunk files.
//!
//! Format (vigil's own, versioned):
//! - `meta.json`: `{"ulid", "minTime", "maxTime" (exclusive), "stats": {numSamples, numSeries,
//!   numChunks}, "compaction": {"level", "sources"}, "version": 3}` (Prometheus's field names).
//! - `.vigil-block`: an empty marker created first, so an interrupted write (`<ulid>.tmp`) is
//!   known to be vigil's.
//! - `chunks/000001`: since version 3 a 16-byte header (`"VIGILCHK"`, the version as u32 LE,
//!   4 zero bytes), then chunk bytes back to back: since version 2 each float chunk is
//!   [`packed::encode_unseekable`]'s output (up to [`BLOCK_CHUNK_SAMPLES`] samples, the smaller
//!   of packed integers and XOR); since version 6 a series of more than that many samples has
//!   [`packed::encode`]'s instead (up to [`SEEKABLE_CHUNK_SAMPLES`], packed with seek points
//!   or XOR, XOR ones up to [`BLOCK_CHUNK_SAMPLES`]); version 1 blocks hold plain
//!   [`crate::chunk::XorChunk::bytes`]. Every version is still read.
//! - `index`: `"VIGILIDX"` (since version 3 followed by the version as u32 LE and 4 zero
//!   bytes), then sections, all integers uvarint unless noted:
//!   symbols (count, then length-prefixed strings, sorted); series (count, then per series
//!   sorted by labels: label count, (name sym, value sym)*, chunk count, (min t as varint,
//!   max t - min t, offset, length)*, and since version 4 the same again for its native
//!   histogram chunks, which hold Prometheus's histogram chunk encodings
//!   ([`crate::prometheus::histogram_chunk`]): the float one in version 4, and since version
//!   5 the integer or the float one, each entry followed by its encoding (2 or 3)); postings (count, then per label pair sorted: name sym,
//!   value sym, ref count, series-index deltas); and a footer of three `u64` LE section
//!   offsets plus a CRC32 of everything before it.
//!
//! Both files are read through `mmap`; opening a block decodes only the section tables.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use vigil_model::{HistogramSample, LabelRef, Labels, Sample};
use vigil_storage::{MatchOp, Matcher, Series};

use crate::chunk::XorIter;
use crate::encoding::{Dec, put_uvarint, put_varint};
use crate::packed;

/// Most samples in a chunk of a block before version 6, and in one that falls back to XOR
/// (which has no seek points, so a read from its middle decodes it from the start).
pub const BLOCK_CHUNK_SAMPLES: usize = 480;
/// Most samples in a seekable chunk (version 6 on): 32h of a 15s series, its header spread
/// over thousands of samples, while a window in its middle is reached from the seek point
/// before it ([`packed::SEEK_EVERY`] values apart).
pub const SEEKABLE_CHUNK_SAMPLES: usize = 7680;
/// The newest block format version, in `meta.json` and (since 3) in the header of `index`
/// and of `chunks/000001`; every earlier one is still read. Blocks are written at the lowest
/// version that holds their data: 3; 5 when they hold native histograms; 6 when a series
/// has more than [`BLOCK_CHUNK_SAMPLES`] samples (a merged block, or a 2h block of a
/// scrape interval under 15s). An older build skips (never deletes) a block of a version it
/// does not know, and still reads every other.
const VERSION: u32 = 6;
/// The version from which a series of more than [`BLOCK_CHUNK_SAMPLES`] samples has
/// seekable packed chunks of up to [`SEEKABLE_CHUNK_SAMPLES`].
const SEEKABLE_VERSION: u32 = 6;
/// The version from which series entries list native histogram chunks.
const HISTOGRAM_VERSION: u32 = 4;
/// The version from which each native histogram chunk's entry says its encoding: integer
/// chunks, as Prometheus keeps scraped histograms, take a fraction of the float ones' bytes.
/// Version 4's are all float chunks.
const HISTOGRAM_ENCODING_VERSION: u32 = 5;
/// The version every block write starts at (the first with file headers), raised as its
/// series need: to [`HISTOGRAM_ENCODING_VERSION`] for native histograms, to
/// [`SEEKABLE_VERSION`] for a series of more than [`BLOCK_CHUNK_SAMPLES`] samples.
const FLOAT_VERSION: u32 = 3;

const MAGIC: &[u8; 8] = b"VIGILIDX";
const CHUNKS_MAGIC: &[u8; 8] = b"VIGILCHK";
/// Since version 3 `index` and `chunks/000001` start with their magic, the format version
/// (u32 LE) and 4 reserved zero bytes, as the WAL's segments do: each file says what it is
/// and how to read it without its `meta.json`.
const FILE_HEADER_LEN: usize = 16;

fn file_header(magic: &[u8; 8], version: u32) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h
}

/// Check a version-3 file header against `meta.json`'s version; the error names the file.
fn check_header(b: &[u8], magic: &[u8; 8], want: u32) -> Result<(), String> {
    if b.len() < FILE_HEADER_LEN || &b[..8] != magic {
        return Err("bad magic".into());
    }
    let v = u32::from_le_bytes(b[8..12].try_into().unwrap_or_default());
    if v != want {
        return Err(format!("format version {v}, but meta.json says {want}"));
    }
    Ok(())
}

/// An empty file in every block directory vigil writes, created first.
pub const TMP_MARKER: &str = ".vigil-block";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// Native histogram samples (also in `num_samples`): vigil's blocks of version 4 and
    /// Prometheus's (2.40 and later) count them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_histogram_samples: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Compaction {
    pub level: u32,
    #[serde(default)]
    pub sources: Vec<String>,
    /// Prometheus's hints (`from-out-of-order` marks a block of out-of-order samples, which
    /// does not bound the in-order head).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

impl Compaction {
    /// A block of out-of-order samples only (Prometheus's `from-out-of-order` hint).
    pub fn out_of_order(&self) -> bool {
        self.hints.iter().any(|h| h == "from-out-of-order")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    /// Exclusive.
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: u32,
}

/// A new ULID: 48 bits of milliseconds and 80 bits of randomness, Crockford base32. ULIDs
/// made by this process increase, as oklog/ulid's monotonic `Make` does within a millisecond:
/// here the next one in the same millisecond, or after the clock stepped back, is the last
/// plus one. Merges find blocks written before a given one by ULID order (see
/// `Db::mergeable`), and blocks cut in one pass share their millisecond.
pub fn new_ulid() -> String {
    static LAST: parking_lot::Mutex<u128> = parking_lot::Mutex::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut seed = [0u8; 10];
    if let Ok(mut f) = File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut seed);
    }
    let mut v: u128 = (ms as u128 & ((1 << 48) - 1)) << 80;
    for (i, b) in seed.iter().enumerate() {
        v |= (*b as u128) << (8 * (9 - i));
    }
    let v = {
        let mut last = LAST.lock();
        if v >> 80 <= *last >> 80 {
            v = last.wrapping_add(1);
        }
        *last = v;
        v
    };
    const A: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .map(|i| A[((v >> (5 * (25 - i))) & 31) as usize] as char)
        .collect()
}

/// Chunk location in a block's chunk file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkMeta {
    pub min_t: i64,
    pub max_t: i64,
    pub offset: u64,
    pub len: u64,
    /// For a native histogram chunk of a vigil block, its encoding
    /// ([`crate::prometheus::histogram_chunk::ENC_HISTOGRAM`] or `ENC_FLOAT_HISTOGRAM`);
    /// Prometheus's chunks say their encoding in the chunk itself.
    pub histogram: Option<u8>,
}

/// Series to write into a block: labels, floats and native histograms, each in time order.
pub type SeriesSamples = Series;

/// Write a block of `series` (any order) covering `[min_time, max_time)`; returns its meta. A
/// failed write (a full disk) removes what it wrote, so retries do not fill the disk further.
pub fn write_block(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    series: Vec<impl Into<SeriesSamples>>,
    compaction: Compaction,
) -> std::io::Result<BlockMeta> {
    let mut series: Vec<SeriesSamples> = series.into_iter().map(Into::into).collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    write_block_sorted(
        parent,
        min_time,
        max_time,
        series.into_iter().map(Ok),
        compaction,
    )
}

/// [`write_block`] from series that come in label order, each label set once (an error
/// otherwise), taken one at a time (an `Err` from the source aborts the write, leaving
/// nothing): the writer keeps only labels and chunk locations, and
/// the chunks go to the file as they are encoded, so a block of any size is written in
/// memory for its index, not its samples.
pub fn write_block_sorted(
    parent: &Path,
    min_time: i64,
    max_time: i64,
    series: impl IntoIterator<Item = std::io::Result<impl Into<SeriesSamples>>>,
    compaction: Compaction,
) -> std::io::Result<BlockMeta> {
    let series = series.into_iter().map(|s| s.map(Into::into));
    write_new_block(parent, |tmp, ulid| {
        let range = (min_time, max_time);
        write_block_in(
            parent,
            tmp,
            ulid,
            range,
            series,
            compaction,
            (FLOAT_VERSION, true),
        )
    })
}

/// A series' float chunks as a block of `version` holds them, in `out` (emptied first): up to
/// [`BLOCK_CHUNK_SAMPLES`] samples in one chunk as before version 6 (what most series of a
/// 2h block need; in version 6 too, so that such a chunk is the same as in earlier
/// versions), else seekable chunks, which split the samples evenly (7,681 samples make two chunks of about 3,840,
/// not one of 7,680 and a lone sample whose header is most of its bytes); a part whose
/// samples come out smaller as XOR is cut again into chunks of [`BLOCK_CHUNK_SAMPLES`], so
/// no read has to decode thousands of XOR samples to reach a window.
fn float_chunks(samples: &[Sample], version: u32, out: &mut Vec<((i64, i64), Vec<u8>)>) {
    out.clear();
    let span = |p: &[Sample]| (p[0].t, p[p.len() - 1].t);
    if version < SEEKABLE_VERSION || samples.len() <= BLOCK_CHUNK_SAMPLES {
        for part in samples.chunks(BLOCK_CHUNK_SAMPLES) {
            let b = if version >= 2 {
                packed::encode_unseekable(part)
            } else {
                let mut x = crate::chunk::XorChunk::new();
                part.iter().for_each(|s| x.append(s.t, s.v));
                x.bytes()
            };
            out.push((span(part), b));
        }
        return;
    }
    let parts = samples.len().div_ceil(SEEKABLE_CHUNK_SAMPLES);
    for part in samples.chunks(samples.len().div_ceil(parts.max(1)).max(1)) {
        let b = packed::encode(part);
        if packed::is_xor(&b) && part.len() > BLOCK_CHUNK_SAMPLES {
            let pieces = part.len().div_ceil(BLOCK_CHUNK_SAMPLES);
            for piece in part.chunks(part.len().div_ceil(pieces)) {
                out.push((span(piece), packed::encode(piece)));
            }
        } else {
            out.push((span(part), b));
        }
    }
}

/// Run `write` on a fresh `<ulid>.tmp` directory under `parent`; if it fails (a full disk),
/// remove what it wrote, so retries do not fill the disk further.
pub(crate) fn write_new_block(
    parent: &Path,
    write: impl FnOnce(&Path, String) -> std::io::Result<BlockMeta>,
) -> std::io::Result<BlockMeta> {
    let ulid = new_ulid();
    let tmp = parent.join(format!("{ulid}.tmp"));
    let res = write(&tmp, ulid);
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res
}

/// Write a block in format `version` ([`FLOAT_VERSION`] everywhere but in the tests, which
/// also write the earlier versions to prove they are still read), raised to
/// [`HISTOGRAM_ENCODING_VERSION`] if a series has native histograms (a test may ask for
/// [`HISTOGRAM_VERSION`], whose histogram chunks are all float ones), and with `seekable` to
/// [`SEEKABLE_VERSION`] when a series has more than [`BLOCK_CHUNK_SAMPLES`] samples.
fn write_block_in(
    parent: &Path,
    tmp: &Path,
    ulid: String,
    (min_time, max_time): (i64, i64),
    series: impl IntoIterator<Item = std::io::Result<SeriesSamples>>,
    compaction: Compaction,
    (version, seekable): (u32, bool),
) -> std::io::Result<BlockMeta> {
    std::fs::create_dir_all(tmp.join("chunks"))?;
    // Marks the directory as vigil's from its first moment: only such `.tmp` directories are
    // removed after a crash (Prometheus's older releases also wrote `<ulid>.tmp`).
    File::create(tmp.join(TMP_MARKER))?;

    // Chunks, written as each series comes; only its labels and chunk locations are kept.
    let mut chunk_file =
        std::io::BufWriter::with_capacity(1 << 20, File::create(tmp.join("chunks/000001"))?);
    let mut offset = 0;
    if version >= 3 {
        chunk_file.write_all(&file_header(CHUNKS_MAGIC, version))?;
        // Chunk offsets are from the start of the file, header included.
        offset = FILE_HEADER_LEN as u64;
    }
    let mut labels_in_order: Vec<Labels> = Vec::new();
    // Each series' chunk lists, encoded as the index will hold them (floats, then native
    // histograms), one buffer for all: a vector of chunk structs per series was the largest
    // thing a cut of ten million series held. `ends` has each series' end of floats and end
    // of histograms (equal when it has none).
    let mut chunk_lists: Vec<u8> = Vec::new();
    let mut ends: Vec<(usize, usize)> = Vec::new();
    let mut stats = BlockStats::default();
    let mut version = version;
    // One series' float chunks at a time: (min t, max t) and bytes.
    let mut encoded: Vec<((i64, i64), Vec<u8>)> = Vec::new();
    for item in series {
        // A source's error (damage found while reading) stops the write before the rename.
        let Series {
            labels,
            samples,
            histograms,
        } = item?;
        if samples.is_empty() && histograms.is_empty() {
            continue;
        }
        if labels_in_order.last().is_some_and(|prev| *prev >= labels) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("block series out of label order at {labels:?}"),
            ));
        }
        // Each chunk goes to the file as it is encoded; its entry in the index is kept.
        let mut put = |list: &mut Vec<u8>, min_t, max_t: i64, b: &[u8]| -> std::io::Result<()> {
            put_varint(list, min_t);
            put_uvarint(list, (max_t - min_t) as u64);
            put_uvarint(list, offset);
            put_uvarint(list, b.len() as u64);
            chunk_file.write_all(b)?;
            offset += b.len() as u64;
            stats.num_chunks += 1;
            Ok(())
        };
        if seekable && samples.len() > BLOCK_CHUNK_SAMPLES {
            version = version.max(SEEKABLE_VERSION);
        }
        float_chunks(&samples, version, &mut encoded);
        put_uvarint(&mut chunk_lists, encoded.len() as u64);
        for (part, b) in encoded.drain(..) {
            put(&mut chunk_lists, part.0, part.1, &b)?;
        }
        let floats_end = chunk_lists.len();
        stats.num_samples += samples.len() as u64;
        if !histograms.is_empty() {
            if version < HISTOGRAM_VERSION {
                if version < FLOAT_VERSION {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("block format {version} cannot hold native histograms"),
                    ));
                }
                version = HISTOGRAM_ENCODING_VERSION;
            }
            use crate::prometheus::histogram_chunk as hc;
            // The histogram encoding is settled here: the version only goes up from 5 (to 6,
            // which encodes histograms as 5 does).
            let encoded = match version >= HISTOGRAM_ENCODING_VERSION {
                true => hc::encode_all(&histograms),
                false => hc::encode_all_float(&histograms),
            };
            put_uvarint(&mut chunk_lists, encoded.len() as u64);
            for c in encoded {
                put(&mut chunk_lists, c.min_t, c.max_t, &c.bytes)?;
                if version >= HISTOGRAM_ENCODING_VERSION {
                    put_uvarint(&mut chunk_lists, c.encoding as u64);
                }
            }
            stats.num_samples += histograms.len() as u64;
            stats.num_histogram_samples += histograms.len() as u64;
        }
        ends.push((floats_end, chunk_lists.len()));
        labels_in_order.push(labels);
    }
    let mut chunk_file = chunk_file.into_inner().map_err(|e| e.into_error())?;
    if version >= HISTOGRAM_VERSION {
        // The header went out saying the version the block started with.
        use std::io::{Seek, SeekFrom};
        chunk_file.seek(SeekFrom::Start(0))?;
        chunk_file.write_all(&file_header(CHUNKS_MAGIC, version))?;
    }
    drop(chunk_file);
    stats.num_series = labels_in_order.len() as u64;
    let series = labels_in_order;

    // Symbols: deduplicated through a set first (names repeat in every series).
    let mut syms: Vec<&str> = series
        .iter()
        .flat_map(|l| l.iter().flat_map(|x| [x.name, x.value]))
        .collect::<foldhash::HashSet<&str>>()
        .into_iter()
        .collect();
    syms.sort_unstable();
    let sym_id: foldhash::HashMap<&str, u64> = syms
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u64))
        .collect();
    let mut idx = IndexOut::create(&tmp.join("index"))?;
    match version >= 3 {
        true => idx.buf.extend_from_slice(&file_header(MAGIC, version)),
        false => idx.buf.extend_from_slice(MAGIC),
    }
    let sym_off = idx.pos();
    put_uvarint(&mut idx.buf, syms.len() as u64);
    for s in &syms {
        put_uvarint(&mut idx.buf, s.len() as u64);
        idx.buf.extend_from_slice(s.as_bytes());
        idx.spill()?;
    }
    // Series.
    let series_off = idx.pos();
    put_uvarint(&mut idx.buf, series.len() as u64);
    let too_many = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a block holds fewer than 2^32 series and symbols",
        )
    };
    let n = u32::try_from(series.len()).map_err(|_| too_many())?;
    u32::try_from(syms.len()).map_err(|_| too_many())?;
    let mut postings: foldhash::HashMap<(u32, u32), Vec<u32>> = Default::default();
    let mut start = 0;
    for ((labels, &(floats_end, end)), i) in series.iter().zip(&ends).zip(0..n) {
        put_uvarint(&mut idx.buf, labels.len() as u64);
        for l in labels.iter() {
            let (n, v) = (sym_id[l.name], sym_id[l.value]);
            put_uvarint(&mut idx.buf, n);
            put_uvarint(&mut idx.buf, v);
            postings.entry((n as u32, v as u32)).or_default().push(i);
        }
        idx.buf.extend_from_slice(&chunk_lists[start..floats_end]);
        if version >= HISTOGRAM_VERSION {
            match end > floats_end {
                true => idx.buf.extend_from_slice(&chunk_lists[floats_end..end]),
                false => put_uvarint(&mut idx.buf, 0),
            }
        }
        start = end;
        idx.spill()?;
    }
    drop(chunk_lists);
    // Postings.
    let postings_off = idx.pos();
    let mut postings: Vec<((u32, u32), Vec<u32>)> = postings.into_iter().collect();
    postings.sort_unstable_by_key(|(k, _)| *k);
    put_uvarint(&mut idx.buf, postings.len() as u64);
    for ((n, v), refs) in &postings {
        put_uvarint(&mut idx.buf, *n as u64);
        put_uvarint(&mut idx.buf, *v as u64);
        put_uvarint(&mut idx.buf, refs.len() as u64);
        let mut prev = 0;
        for &r in refs {
            put_uvarint(&mut idx.buf, (r - prev) as u64);
            prev = r;
        }
        idx.spill()?;
    }
    for off in [sym_off, series_off, postings_off] {
        idx.buf.extend_from_slice(&off.to_le_bytes());
    }
    idx.finish()?;

    let meta = BlockMeta {
        ulid: ulid.clone(),
        min_time,
        max_time,
        stats,
        compaction,
        version,
    };
    std::fs::write(
        tmp.join("meta.json"),
        serde_json::to_vec_pretty(&meta).map_err(std::io::Error::other)?,
    )?;
    for f in ["index", "chunks/000001", "meta.json"] {
        File::open(tmp.join(f))?.sync_all()?;
    }
    File::open(tmp.join("chunks"))?.sync_all()?;
    File::open(tmp)?.sync_all()?;
    crate::uncached::forget_block(tmp);
    // The rename makes the block appear whole or not at all; syncing the parent puts the
    // rename on disk before callers delete what the block replaces (sources of a merge, the
    // head's cut range).
    std::fs::rename(tmp, parent.join(&ulid))?;
    File::open(parent)?.sync_all()?;
    Ok(meta)
}

/// An index file written as it is built, in pieces of about a megabyte, with its length and
/// CRC kept as it goes: at ten million series the whole index in memory took a gigabyte while
/// a block was written.
struct IndexOut {
    file: File,
    crc: crc32fast::Hasher,
    written: u64,
    /// What is not written yet; callers append here.
    buf: Vec<u8>,
}

impl IndexOut {
    const PIECE: usize = 1 << 20;

    fn create(path: &Path) -> std::io::Result<IndexOut> {
        Ok(IndexOut {
            file: File::create(path)?,
            crc: crc32fast::Hasher::new(),
            written: 0,
            buf: Vec::with_capacity(2 * Self::PIECE),
        })
    }

    /// The offset in the file of the next byte appended to `buf`.
    fn pos(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Write `buf` out once it holds a piece.
    fn spill(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= Self::PIECE {
            self.write_buf()?;
        }
        Ok(())
    }

    fn write_buf(&mut self) -> std::io::Result<()> {
        self.crc.update(&self.buf);
        self.file.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Write the rest and the CRC of everything before it.
    fn finish(mut self) -> std::io::Result<()> {
        self.write_buf()?;
        let crc = self.crc.finalize();
        self.file.write_all(&crc.to_le_bytes())
    }
}

fn corrupt(dir: &Path, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("block {}: {what}", dir.display()),
    )
}

/// Whose format a block is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vigil,
    /// Prometheus's, with the index format version (1 or 2).
    Prometheus(u8),
}

/// A block index's tables, in memory once the block is open (both formats give the same).
/// They are what an open block costs beyond its mapped files, for every block the server
/// keeps: per series only its entry's offset, per symbol only where it lies.
pub(crate) struct Tables {
    /// (start, len) of each symbol's bytes in the index.
    pub symbols: Vec<(usize, usize)>,
    pub sym_index: SymIndex,
    /// Byte offset of each series entry in the index, ascending.
    pub series_offsets: Offsets,
    /// (name sym, value sym) -> byte offset of its postings list.
    pub postings: HashMap<(u32, u32), usize>,
    /// name sym -> value syms, for label listings and regex matchers.
    pub values: HashMap<u32, Vec<u32>>,
}

/// How a symbol's id is found from its text.
pub(crate) enum SymIndex {
    /// The table is in strictly ascending byte order, as both formats write it: a binary
    /// search over the mapped text, with nothing more in memory. (A map of every symbol's
    /// text, which this replaced, cost about 80 MB a block at ten million series.)
    Sorted,
    /// A table out of order (written by neither vigil nor Prometheus): each symbol's text
    /// mapped to its id, the last of equal ones winning.
    Map(HashMap<Box<str>, u32>),
}

impl SymIndex {
    /// The index for `symbols`, ranges of `index` already checked to be UTF-8.
    pub(crate) fn of(index: &[u8], symbols: &[(usize, usize)]) -> SymIndex {
        let text = |&(s, l): &(usize, usize)| index.get(s..s + l).unwrap_or_default();
        if symbols.windows(2).all(|w| text(&w[0]) < text(&w[1])) {
            return SymIndex::Sorted;
        }
        SymIndex::Map(
            symbols
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let s = std::str::from_utf8(text(r)).unwrap_or_default();
                    (Box::from(s), i as u32)
                })
                .collect(),
        )
    }

    /// The id of symbol `s` among `symbols`, ranges of `index`.
    pub(crate) fn find(&self, index: &[u8], symbols: &[(usize, usize)], s: &str) -> Option<u32> {
        match self {
            SymIndex::Sorted => symbols
                .binary_search_by(|&(at, l)| {
                    index.get(at..at + l).unwrap_or_default().cmp(s.as_bytes())
                })
                .ok()
                .map(|i| i as u32),
            SymIndex::Map(m) => m.get(s).copied(),
        }
    }
}

/// Series entries' byte offsets, ascending: four bytes each while the index is under 4 GiB
/// (an open block keeps one per series, so this halves it).
pub(crate) enum Offsets {
    Small(Vec<u32>),
    Large(Vec<usize>),
}

impl Offsets {
    /// Room for `n` offsets into an index of `len` bytes.
    pub(crate) fn for_index(len: usize, n: usize) -> Offsets {
        if u32::try_from(len).is_ok() {
            Offsets::Small(Vec::with_capacity(n))
        } else {
            Offsets::Large(Vec::with_capacity(n))
        }
    }

    /// Append `off`, which lies inside the index this was made for.
    pub(crate) fn push(&mut self, off: usize) {
        match self {
            Offsets::Small(v) => v.push(off as u32),
            Offsets::Large(v) => v.push(off),
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<usize> {
        match self {
            Offsets::Small(v) => v.get(i).map(|&o| o as usize),
            Offsets::Large(v) => v.get(i).copied(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Offsets::Small(v) => v.len(),
            Offsets::Large(v) => v.len(),
        }
    }

    /// The position of the entry at byte `off`.
    pub(crate) fn position(&self, off: usize) -> Option<usize> {
        match self {
            Offsets::Small(v) => v.binary_search(&u32::try_from(off).ok()?).ok(),
            Offsets::Large(v) => v.binary_search(&off).ok(),
        }
    }
}

impl Tables {
    /// The id of symbol `s`; `index` is the index these tables were read from.
    pub(crate) fn sym_id(&self, index: &[u8], s: &str) -> Option<u32> {
        self.sym_index.find(index, &self.symbols, s)
    }
}

/// What a Prometheus block needs beyond the tables.
struct PromParts {
    info: crate::prometheus::index::Info,
    /// Deleted ranges by series position.
    tombstones: HashMap<u32, Vec<(i64, i64)>>,
    /// Native histogram chunks read (`vigil_tsdb_histogram_chunks_read_total`).
    histogram_chunks: std::sync::atomic::AtomicU64,
}

/// Bytes of block label sets all blocks of the process may keep for queries. Building a
/// series' label set costs an allocation (and, across query threads, allocator lock waits: a
/// quarter of the time of a count over 10,000 series of one block), so queries keep the sets
/// they built; but kept for every series a query ever read, a cache grew with each block to
/// several times the head's own label memory at ten million series, and it was the larger part
/// of a merge's memory. Past the budget, sets are built for each query and dropped, as
/// Prometheus does; merges and exports never fill it.
const LABEL_CACHE_BUDGET: usize = 128 << 20;
static LABEL_CACHE_USED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One block's kept label sets by series position, in shards so that query threads reading
/// the block do not wait on one lock.
#[derive(Default)]
struct LabelCache {
    shards: [parking_lot::RwLock<hashbrown::HashMap<u32, Labels, foldhash::fast::RandomState>>; 16],
    /// This block's part of [`LABEL_CACHE_USED`], given back when the block is dropped.
    bytes: std::sync::atomic::AtomicUsize,
}

impl LabelCache {
    /// What one kept set costs: its allocation and its map entry.
    fn cost(l: &Labels) -> usize {
        l.heap_bytes() + 24
    }

    fn get(&self, i: u32) -> Option<Labels> {
        self.shards[i as usize % 16].read().get(&i).cloned()
    }

    /// Keep `l` for series `i` if the budget allows.
    fn keep(&self, i: u32, l: &Labels) {
        self.keep_within(i, l, LABEL_CACHE_BUDGET)
    }

    fn keep_within(&self, i: u32, l: &Labels, budget: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let cost = Self::cost(l);
        if LABEL_CACHE_USED.fetch_add(cost, Relaxed) + cost > budget {
            LABEL_CACHE_USED.fetch_sub(cost, Relaxed);
            return;
        }
        match self.shards[i as usize % 16].write().entry(i) {
            // Another thread kept it first: its set stays (handed out already), counted once.
            hashbrown::hash_map::Entry::Occupied(_) => {
                LABEL_CACHE_USED.fetch_sub(cost, Relaxed);
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(l.clone());
                self.bytes.fetch_add(cost, Relaxed);
            }
        }
    }
}

impl Drop for LabelCache {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        LABEL_CACHE_USED.fetch_sub(*self.bytes.get_mut(), Relaxed);
    }
}

/// A series entry's label pairs (vigil's format: a count, then name and value symbol ids),
/// read from `c` as the entry is walked.
struct PairRefs<'a, 'c> {
    block: &'a Block,
    c: &'c mut Dec<'a>,
    left: u64,
    short: bool,
}

impl<'a, 'c> PairRefs<'a, 'c> {
    /// The pairs of the entry at `c`; None if even its count cannot be read.
    fn new(block: &'a Block, c: &'c mut Dec<'a>) -> Option<Self> {
        let left = c.uvarint()?;
        Some(PairRefs {
            block,
            c,
            left,
            short: false,
        })
    }

    /// The next pair's symbol ids.
    fn next_ids(&mut self) -> Option<(u32, u32)> {
        if self.left == 0 {
            return None;
        }
        match (self.c.uvarint(), self.c.uvarint()) {
            (Some(n), Some(v)) => {
                self.left -= 1;
                Some((n as u32, v as u32))
            }
            _ => {
                self.short = true;
                self.left = 0;
                None
            }
        }
    }

    /// The pairs as symbol ids.
    fn ids(&mut self) -> impl Iterator<Item = (u32, u32)> + '_ {
        std::iter::from_fn(|| self.next_ids())
    }

    /// Whether every pair was read (none left, the entry not cut short).
    fn whole(&self) -> bool {
        self.left == 0 && !self.short
    }
}

impl<'a> Iterator for PairRefs<'a, '_> {
    type Item = LabelRef<'a>;
    fn next(&mut self) -> Option<LabelRef<'a>> {
        let (n, v) = self.next_ids()?;
        Some(LabelRef {
            name: self.block.sym(n),
            value: self.block.sym(v),
        })
    }
}

/// An open block.
pub struct Block {
    pub dir: PathBuf,
    pub meta: BlockMeta,
    pub format: Format,
    index: Mmap,
    chunks: Vec<Mmap>,
    t: Tables,
    prom: Option<PromParts>,
    /// Label sets queries built, kept within the process's budget (see [`LabelCache`]).
    labels: LabelCache,
    pub size_bytes: u64,
    /// Chunks and series entries found damaged when read (either format): skipped, counted,
    /// the first logged. A rewrite (merge, deletion) compares this before and after reading,
    /// so it never replaces a block whose damage it could not carry over.
    bad_chunks: std::sync::atomic::AtomicU64,
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

impl Block {
    pub fn open(dir: &Path) -> std::io::Result<Block> {
        let meta: BlockMeta = serde_json::from_slice(&std::fs::read(dir.join("meta.json"))?)
            .map_err(|e| corrupt(dir, &format!("meta.json: {e}")))?;
        let fi = File::open(dir.join("index"))?;
        // SAFETY: block files are immutable once renamed into place; vigil never writes them.
        let index = unsafe { Mmap::map(&fi)? };
        if index.len() >= 4
            && u32::from_be_bytes(index[..4].try_into().unwrap_or_default())
                == crate::prometheus::INDEX_MAGIC
        {
            return Self::open_prometheus(dir, meta, index);
        }
        if meta.version == 0 || meta.version > VERSION {
            return Err(corrupt(
                dir,
                &format!("meta.json: unknown block version {}", meta.version),
            ));
        }
        let fc = File::open(dir.join("chunks/000001"))?;
        // SAFETY: as the index above: a block's files never change once renamed into place.
        let chunks = unsafe { Mmap::map(&fc)? };
        let size_bytes = index.len() as u64 + chunks.len() as u64;
        let n = index.len();
        if meta.version >= 3 {
            check_header(&index, MAGIC, meta.version)
                .map_err(|e| corrupt(dir, &format!("index: {e}")))?;
            check_header(&chunks, CHUNKS_MAGIC, meta.version)
                .map_err(|e| corrupt(dir, &format!("chunks/000001: {e}")))?;
        }
        let header_len = if meta.version >= 3 {
            FILE_HEADER_LEN
        } else {
            8
        };
        if n < header_len + 28 || &index[..8] != MAGIC {
            return Err(corrupt(dir, "index: bad magic"));
        }
        let crc = u32::from_le_bytes(
            index[n - 4..]
                .try_into()
                .map_err(|_| corrupt(dir, "index"))?,
        );
        if crc32fast::hash(&index[..n - 4]) != crc {
            return Err(corrupt(dir, "index: checksum mismatch"));
        }
        let off = |i: usize| {
            u64::from_le_bytes(
                index[n - 28 + 8 * i..n - 20 + 8 * i]
                    .try_into()
                    .unwrap_or_default(),
            ) as usize
        };
        let (sym_off, series_off, postings_off) = (off(0), off(1), off(2));
        let bad = || corrupt(dir, "index: truncated section");
        let mut c = Dec {
            b: &index,
            pos: sym_off,
        };
        let ns = c.uvarint().ok_or_else(bad)? as usize;
        let mut symbols = Vec::with_capacity(ns.min(1 << 24));
        for _ in 0..ns {
            let len = c.uvarint().ok_or_else(bad)? as usize;
            let start = c.pos;
            std::str::from_utf8(c.bytes(len).ok_or_else(bad)?)
                .map_err(|_| corrupt(dir, "index: symbol not UTF-8"))?;
            symbols.push((start, len));
        }
        let sym_index = SymIndex::of(&index, &symbols);
        let mut c = Dec {
            b: &index,
            pos: series_off,
        };
        let nser = c.uvarint().ok_or_else(bad)? as usize;
        let mut series_offsets = Offsets::for_index(index.len(), nser.min(1 << 26));
        for _ in 0..nser {
            series_offsets.push(c.pos);
            let nl = c.uvarint().ok_or_else(bad)?;
            for _ in 0..nl * 2 {
                c.uvarint().ok_or_else(bad)?;
            }
            let lists = if meta.version >= HISTOGRAM_VERSION {
                2
            } else {
                1
            };
            for list in 0..lists {
                let fields = match list == 1 && meta.version >= HISTOGRAM_ENCODING_VERSION {
                    true => 5,
                    false => 4,
                };
                let nc = c.uvarint().ok_or_else(bad)?;
                for _ in 0..nc * fields {
                    c.uvarint().ok_or_else(bad)?;
                }
            }
        }
        let mut c = Dec {
            b: &index,
            pos: postings_off,
        };
        let np = c.uvarint().ok_or_else(bad)? as usize;
        let mut postings = HashMap::with_capacity(np.min(1 << 24));
        let mut values: HashMap<u32, Vec<u32>> = HashMap::new();
        for _ in 0..np {
            let name = c.uvarint().ok_or_else(bad)? as u32;
            let value = c.uvarint().ok_or_else(bad)? as u32;
            postings.insert((name, value), c.pos);
            values.entry(name).or_default().push(value);
            let cnt = c.uvarint().ok_or_else(bad)?;
            for _ in 0..cnt {
                c.uvarint().ok_or_else(bad)?;
            }
        }
        let t = Tables {
            symbols,
            sym_index,
            series_offsets,
            postings,
            values,
        };
        Ok(Self::assemble(
            dir,
            meta,
            Format::Vigil,
            index,
            vec![chunks],
            t,
            None,
            size_bytes,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        meta: BlockMeta,
        format: Format,
        index: Mmap,
        chunks: Vec<Mmap>,
        t: Tables,
        prom: Option<PromParts>,
        size_bytes: u64,
    ) -> Block {
        Block {
            dir: dir.to_path_buf(),
            meta,
            format,
            index,
            chunks,
            t,
            prom,
            labels: LabelCache::default(),
            size_bytes,
            bad_chunks: Default::default(),
        }
    }

    /// A block Prometheus wrote: its index, chunk segments and tombstones, each checked.
    fn open_prometheus(dir: &Path, meta: BlockMeta, index: Mmap) -> std::io::Result<Block> {
        use crate::prometheus::{chunks, index as pindex, tombstones};
        if meta.version != 1 {
            return Err(corrupt(
                dir,
                &format!(
                    "meta.json: unknown Prometheus block version {}",
                    meta.version
                ),
            ));
        }
        let (t, info) = pindex::read(&index).map_err(|e| corrupt(dir, &e))?;
        let chunks = chunks::open(&dir.join("chunks")).map_err(|e| corrupt(dir, &e.to_string()))?;
        let stones = tombstones::read(&dir.join("tombstones")).map_err(|e| corrupt(dir, &e))?;
        let mut by_pos = HashMap::new();
        for (id, ranges) in stones {
            let ranges = tombstones::normalize(ranges);
            let off = if info.version == 2 {
                id.saturating_mul(16)
            } else {
                id
            } as usize;
            if let Some(i) = t.series_offsets.position(off) {
                by_pos.insert(i as u32, ranges);
            }
        }
        let format = Format::Prometheus(info.version);
        let prom = PromParts {
            info,
            tombstones: by_pos,
            histogram_chunks: Default::default(),
        };
        let size = dir_size(dir);
        Ok(Self::assemble(
            dir,
            meta,
            format,
            index,
            chunks,
            t,
            Some(prom),
            size,
        ))
    }

    /// Chunks read: (native histogram chunks of a Prometheus block, damaged chunks or series
    /// entries skipped, which a rewrite cannot carry).
    pub fn skipped_chunks(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let hist = self
            .prom
            .as_ref()
            .map_or(0, |p| p.histogram_chunks.load(Relaxed));
        (hist, self.bad_chunks.load(Relaxed))
    }

    /// Count a damaged chunk or series entry; the first is logged.
    fn damaged(&self, file: &Path, err: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.bad_chunks.fetch_add(1, Relaxed) == 0 {
            tracing::error!(block = %self.dir.display(), file = %file.display(), %err, "Skipping unreadable chunk (later ones in this block are counted, not logged)");
        }
    }

    fn sym(&self, id: u32) -> &str {
        self.t
            .symbols
            .get(id as usize)
            .and_then(|&(s, l)| self.index.get(s..s + l))
            // SAFETY: every symbol was checked to be UTF-8 when the block was opened (both
            // formats' tables refuse one that is not), and block files are never written once
            // in place. Checking again here cost 3% of a query reading every series.
            .map(|b| unsafe { std::str::from_utf8_unchecked(b) })
            .unwrap_or("")
    }

    fn postings_list(&self, name: u32, value: u32) -> Vec<u32> {
        let Some(&pos) = self.t.postings.get(&(name, value)) else {
            return Vec::new();
        };
        if let Some(p) = &self.prom {
            return crate::prometheus::index::postings(
                &self.index,
                pos,
                &self.t.series_offsets,
                &p.info,
            );
        }
        let mut c = Dec {
            b: &self.index,
            pos,
        };
        let n = c.uvarint().unwrap_or(0);
        let mut out = Vec::with_capacity(n as usize);
        let mut cur = 0u64;
        for _ in 0..n {
            let Some(d) = c.uvarint() else { break };
            cur += d;
            out.push(cur as u32);
        }
        out
    }

    /// Series indexes matching all matchers, sorted.
    fn select_ids(&self, ms: &[Matcher]) -> Vec<u32> {
        let mut sets: Vec<Vec<u32>> = Vec::new();
        for m in ms.iter().filter(|m| !m.matches_empty()) {
            let Some(name) = self.t.sym_id(&self.index, &m.name) else {
                return Vec::new();
            };
            let vals = self.t.values.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            let mut ids: Vec<u32> = match m.op {
                MatchOp::Equal => match self.t.sym_id(&self.index, &m.value) {
                    Some(v) => self.postings_list(name, v),
                    None => Vec::new(),
                },
                _ => vals
                    .iter()
                    .filter(|&&v| m.matches(self.sym(v)))
                    .flat_map(|&v| self.postings_list(name, v))
                    .collect(),
            };
            ids.sort_unstable();
            ids.dedup();
            sets.push(ids);
        }
        let mut ids: Vec<u32> = if sets.is_empty() {
            (0..self.t.series_offsets.len() as u32).collect()
        } else {
            sets.sort_by_key(Vec::len);
            let mut acc = sets.swap_remove(0);
            for s in &sets {
                acc.retain(|r| s.binary_search(r).is_ok());
            }
            acc
        };
        let rest: Vec<&Matcher> = ms.iter().filter(|m| m.matches_empty()).collect();
        if !rest.is_empty() {
            // Read from the entry's pairs, building no label set (each query thread filters
            // every series, not only its shard's).
            ids.retain(|&i| {
                let Some(pairs) = self.pairs_of(i) else {
                    return true; // damaged: the read reports it
                };
                rest.iter().all(|m| {
                    // As the built set would have it: the last pair of that name, or "".
                    let v = pairs
                        .iter()
                        .rev()
                        .find(|&&(n, _)| self.sym(n) == m.name)
                        .map_or("", |&(_, v)| self.sym(v));
                    m.matches(v)
                })
            });
        }
        ids
    }

    /// Series `i`'s label pairs as symbol ids, in the order stored.
    fn pairs_of(&self, i: u32) -> Option<Vec<(u32, u32)>> {
        let off = self.t.series_offsets.get(i as usize)?;
        if let Some(p) = &self.prom {
            return Some(crate::prometheus::index::series(&self.index, off, &p.info)?.0);
        }
        let mut c = Dec {
            b: &self.index,
            pos: off,
        };
        let mut refs = PairRefs::new(self, &mut c)?;
        let pairs: Vec<(u32, u32)> = refs.ids().collect();
        refs.whole().then_some(pairs)
    }

    /// Which of `of` shards series `i` is in ([`Labels::shard`]), read without building its
    /// label set: the threads reading a block each build only their own shard's.
    fn shard_of(&self, i: u32, of: usize) -> Option<usize> {
        let off = self.t.series_offsets.get(i as usize)?;
        if let Some(p) = &self.prom {
            let (pairs, _) = crate::prometheus::index::series(&self.index, off, &p.info)?;
            let refs = crate::prometheus::index::label_refs(&pairs, |s| self.sym(s));
            return Some(if crate::prometheus::index::tidy(&refs) {
                Labels::shard_of_refs(refs, of)
            } else {
                crate::prometheus::index::labels(&pairs, |s| self.sym(s)).shard(of)
            });
        }
        let mut c = Dec {
            b: &self.index,
            pos: off,
        };
        let mut pairs = PairRefs::new(self, &mut c)?;
        let shard = Labels::shard_of_refs(&mut pairs, of);
        pairs.whole().then_some(shard)
    }

    /// Series `i`'s labels and chunks, the labels `cached` if the caller found them kept;
    /// with `keep`, a label set built is kept in the block's label cache (queries keep them,
    /// rewrites, reading every series once, do not).
    fn series_entry(
        &self,
        i: u32,
        keep: bool,
        cached: Option<Labels>,
    ) -> Option<(Labels, Vec<ChunkMeta>)> {
        if let Some(p) = &self.prom {
            let off = self.t.series_offsets.get(i as usize)?;
            let (pairs, cms) = crate::prometheus::index::series(&self.index, off, &p.info)?;
            let labels = match cached {
                Some(l) => l,
                None => {
                    let l = crate::prometheus::index::labels(&pairs, |s| self.sym(s));
                    if keep {
                        self.labels.keep(i, &l);
                    }
                    l
                }
            };
            return Some((labels, cms));
        }
        let mut c = Dec {
            b: &self.index,
            pos: self.t.series_offsets.get(i as usize)?,
        };
        let built = cached.is_none();
        let mut pairs = PairRefs::new(self, &mut c)?;
        let labels = match cached {
            Some(l) => {
                pairs.by_ref().for_each(drop);
                l
            }
            // Names and values go from the mapped symbol table straight into the set's one
            // allocation.
            None => Labels::from_sorted_refs(&mut pairs),
        };
        if !pairs.whole() {
            return None;
        }
        let mut cms = Vec::new();
        for histogram in [false, true] {
            if histogram && self.meta.version < HISTOGRAM_VERSION {
                break;
            }
            let nc = c.uvarint()?;
            cms.reserve(nc.min(1 << 20) as usize);
            for _ in 0..nc {
                let min_t = c.varint()?;
                let max_t = min_t.checked_add(c.uvarint()? as i64)?;
                let (offset, len) = (c.uvarint()?, c.uvarint()?);
                use crate::prometheus::histogram_chunk::ENC_FLOAT_HISTOGRAM;
                let encoding = match histogram {
                    false => None,
                    true if self.meta.version >= HISTOGRAM_ENCODING_VERSION => {
                        Some(u8::try_from(c.uvarint()?).ok()?)
                    }
                    true => Some(ENC_FLOAT_HISTOGRAM),
                };
                cms.push(ChunkMeta {
                    min_t,
                    max_t,
                    offset,
                    len,
                    histogram: encoding,
                });
            }
        }
        // Kept only once the whole entry read well: a damaged one is never served.
        if keep && built {
            self.labels.keep(i, &labels);
        }
        Some((labels, cms))
    }

    /// The label sets of the series matching `ms` with a chunk overlapping `[mint, maxt]`,
    /// from the index alone: no chunk is read (the label endpoints' `match[]` over a month's
    /// block must not decode its samples). A chunk's range stands for its samples, as
    /// Prometheus answers these endpoints from the index too: a gap inside a chunk, or a
    /// Prometheus block's tombstones not yet compacted away, do not hide a series here.
    pub fn select_labels(&self, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        self.select_ids(ms)
            .into_iter()
            .filter_map(|i| {
                let cached = self.labels.get(i);
                let Some((labels, cms)) = self.series_entry(i, true, cached) else {
                    self.damaged(
                        &self.dir.join("index"),
                        &format!("series entry {i} is damaged"),
                    );
                    return None;
                };
                cms.iter()
                    .any(|c| c.max_t >= mint && c.min_t <= maxt)
                    .then_some(labels)
            })
            .collect()
    }

    /// Series matching `ms` with their samples in `[mint, maxt]`, sorted by labels.
    pub fn select(&self, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        self.select_iter(ms, mint, maxt, 0, 1).collect()
    }

    /// The series of shard `shard` of `of` matching `ms`, in label order, each decoded only
    /// when the iterator reaches it (a reader streaming a selection holds one series at a time).
    pub fn select_iter<'a>(
        &'a self,
        ms: &[Matcher],
        mint: i64,
        maxt: i64,
        shard: usize,
        of: usize,
    ) -> impl Iterator<Item = Series> + Send + 'a {
        self.series_iter(self.select_ids(ms), mint, maxt, shard, of, true)
    }

    /// Every series of the block with all its samples, in label order, for a rewrite (a
    /// merge, an export): as [`Block::select_iter`], but the label sets built are not kept
    /// (each is read once).
    pub fn read_all(&self) -> impl Iterator<Item = Series> + Send + '_ {
        self.series_iter(self.select_ids(&[]), i64::MIN, i64::MAX, 0, 1, false)
    }

    fn series_iter(
        &self,
        ids: Vec<u32>,
        mint: i64,
        maxt: i64,
        shard: usize,
        of: usize,
        keep: bool,
    ) -> impl Iterator<Item = Series> + Send + '_ {
        ids.into_iter().filter_map(move |i| {
            let cached = if keep { self.labels.get(i) } else { None };
            let mut theirs = None;
            if of > 1 {
                theirs = match &cached {
                    Some(l) => Some(l.shard(of)),
                    None => self.shard_of(i, of),
                };
                if theirs.is_some_and(|s| s != shard) {
                    return None;
                }
            }
            let Some((labels, cms)) = self.series_entry(i, keep, cached) else {
                // Counted once: by its own shard's read, or (its labels unreadable, its shard
                // unknown) by the first shard's.
                if shard == 0 || theirs.is_some() {
                    self.damaged(
                        &self.dir.join("index"),
                        &format!("series entry {i} is damaged"),
                    );
                }
                return None;
            };
            let mut samples = Vec::new();
            let mut histograms = Vec::new();
            for c in cms.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt) {
                if let Some(p) = &self.prom {
                    self.read_prometheus_chunk(
                        p,
                        c.offset,
                        mint,
                        maxt,
                        &mut samples,
                        &mut histograms,
                    );
                    continue;
                }
                // A damaged chunk is skipped and counted, not the whole series dropped: a
                // rewrite sees the count and refuses, a query gets what is readable.
                let decoded = c
                    .offset
                    .checked_add(c.len)
                    .and_then(|end| self.chunks[0].get(c.offset as usize..end as usize))
                    .and_then(|bytes| {
                        if let Some(enc) = c.histogram {
                            use crate::prometheus::histogram_chunk as hc;
                            let hs = hc::decode(enc, bytes).ok()?;
                            histograms.extend(
                                hs.into_iter()
                                    .filter(|(t, _)| *t >= mint && *t <= maxt)
                                    .map(|(t, h)| HistogramSample {
                                        t,
                                        h: std::sync::Arc::new(h),
                                    }),
                            );
                            Some(())
                        } else if self.meta.version >= 2 {
                            packed::decode_into(bytes, mint, maxt, &mut samples)
                        } else {
                            let it = XorIter::from_bytes(bytes)?;
                            samples.extend(it.filter(|s| s.t >= mint && s.t <= maxt));
                            Some(())
                        }
                    });
                if decoded.is_none() {
                    self.damaged(
                        &self.dir.join("chunks").join("000001"),
                        &format!("chunk at {}+{} is damaged", c.offset, c.len),
                    );
                }
            }
            if let Some(p) = &self.prom {
                if let Some(stones) = p.tombstones.get(&i) {
                    use crate::prometheus::tombstones::deleted;
                    samples.retain(|s| !deleted(stones, s.t));
                    histograms.retain(|s: &HistogramSample| !deleted(stones, s.t));
                }
                // Prometheus's blocks may hold overlapping chunks of one series.
                vigil_storage::time_order(&mut samples);
                vigil_storage::time_order(&mut histograms);
            }
            (!samples.is_empty() || !histograms.is_empty()).then_some(Series {
                labels,
                samples,
                histograms,
            })
        })
    }

    /// Decode one of a Prometheus block's chunks into `out` (floats) or `hout` (native
    /// histograms, counted); damaged ones are skipped, counted, and the first logged.
    fn read_prometheus_chunk(
        &self,
        p: &PromParts,
        r: u64,
        mint: i64,
        maxt: i64,
        out: &mut Vec<Sample>,
        hout: &mut Vec<HistogramSample>,
    ) {
        use crate::prometheus::chunks;
        use std::sync::atomic::Ordering::Relaxed;
        let err = match chunks::get(&self.chunks, r) {
            Ok((chunks::ENC_XOR, data)) => match XorIter::from_bytes(data) {
                Some(it) => {
                    out.extend(it.filter(|s| s.t >= mint && s.t <= maxt));
                    return;
                }
                None => format!("chunk {r:#x}: not a valid XOR chunk"),
            },
            Ok((enc @ (chunks::ENC_HISTOGRAM | chunks::ENC_FLOAT_HISTOGRAM), data)) => {
                match crate::prometheus::histogram_chunk::decode(enc, data) {
                    Ok(hs) => {
                        p.histogram_chunks.fetch_add(1, Relaxed);
                        hout.extend(
                            hs.into_iter()
                                // Stale markers end a series in queries; here they are data.
                                .filter(|(t, _)| *t >= mint && *t <= maxt)
                                .map(|(t, h)| HistogramSample {
                                    t,
                                    h: std::sync::Arc::new(h),
                                }),
                        );
                        return;
                    }
                    Err(e) => format!("chunk {r:#x}: {e}"),
                }
            }
            Ok((enc, _)) => format!("chunk {r:#x}: unknown encoding {enc}"),
            Err(e) => e.to_string(),
        };
        self.damaged(
            &self
                .dir
                .join("chunks")
                .join(format!("{:06}", (r >> 32) + 1)),
            &err,
        );
    }

    #[cfg(test)]
    pub(crate) fn num_series_for_test(&self) -> u32 {
        self.t.series_offsets.len() as u32
    }

    #[cfg(test)]
    pub(crate) fn entry_for_test(&self, i: u32) -> (Labels, Vec<ChunkMeta>) {
        self.series_entry(i, false, None).expect("an entry")
    }

    /// Prometheus's IDs of the series matching `ms` (tests write tombstones with them).
    #[cfg(test)]
    pub(crate) fn series_ids_for_test(&self, ms: &[Matcher]) -> Vec<u64> {
        let p = self.prom.as_ref().expect("a Prometheus block");
        self.select_ids(ms)
            .into_iter()
            .map(|i| {
                crate::prometheus::index::series_id(
                    self.t.series_offsets.get(i as usize).expect("a series"),
                    &p.info,
                )
            })
            .collect()
    }

    /// Every series with all its samples, or an error if any of them cannot be read (damaged
    /// chunks or series entries): what a rewrite (compaction, deletion) reads, so it never
    /// drops what it skipped.
    pub fn all_series_strict(&self) -> Result<Vec<Series>, String> {
        let before = self.skipped_chunks().1;
        let all = self.all_series();
        if self.skipped_chunks().1 != before {
            return Err(format!(
                "block {} has chunks vigil cannot read (damage)",
                self.meta.ulid
            ));
        }
        Ok(all)
    }

    /// Every series with all its samples (for rewrites and tools: nothing kept).
    pub fn all_series(&self) -> Vec<Series> {
        self.read_all().collect()
    }

    pub fn label_names(&self) -> Vec<String> {
        self.t
            .values
            .keys()
            .map(|&n| self.sym(n).to_string())
            .collect()
    }

    pub fn label_values(&self, name: &str) -> Vec<String> {
        let Some(n) = self.t.sym_id(&self.index, name) else {
            return Vec::new();
        };
        self.t
            .values
            .get(&n)
            .map(|vs| vs.iter().map(|&v| self.sym(v).to_string()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-block-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_then_read_back() {
        let d = tmp("rw");
        let mut series = Vec::new();
        for i in 0..50 {
            let l = Labels::from_pairs([
                ("__name__", if i % 2 == 0 { "a" } else { "b" }.to_string()),
                ("i", i.to_string()),
            ]);
            let s: Vec<Sample> = (0..300)
                .map(|k| Sample {
                    t: k * 1000,
                    v: (i * k) as f64,
                })
                .collect();
            series.push((l, s));
        }
        let meta = write_block(
            &d,
            0,
            300_000,
            series,
            Compaction {
                level: 1,
                sources: vec![],
                hints: vec![],
            },
        )
        .unwrap();
        assert_eq!(meta.stats.num_series, 50);
        assert_eq!(meta.stats.num_samples, 15_000);
        assert_eq!(meta.stats.num_chunks, 50);
        let b = Block::open(&d.join(&meta.ulid)).unwrap();
        let got = b.select(&[Matcher::equal("__name__", "a")], 0, i64::MAX);
        assert_eq!(got.len(), 25);
        assert_eq!(got.iter().map(|s| s.samples.len()).sum::<usize>(), 25 * 300);
        let got = b.select(&[Matcher::equal("i", "7")], 10_000, 12_000);
        assert_eq!(
            got[0].samples,
            vec![
                Sample { t: 10_000, v: 70.0 },
                Sample { t: 11_000, v: 77.0 },
                Sample { t: 12_000, v: 84.0 }
            ]
        );
        let re = Matcher::new(MatchOp::Regex, "i", "1.").unwrap();
        assert_eq!(b.select(&[re], 0, i64::MAX).len(), 10);
        // Matchers that match an empty value are checked on each entry's pairs.
        let count = |ms: &[Matcher]| b.select(ms, 0, i64::MAX).len();
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        assert_eq!(count(&[m(MatchOp::NotEqual, "i", "7")]), 49);
        assert_eq!(count(&[m(MatchOp::Equal, "absent", "")]), 50);
        assert_eq!(count(&[m(MatchOp::Regex, "i", "1.|")]), 10);
        assert_eq!(count(&[m(MatchOp::NotRegex, "__name__", "a|")]), 25);
        assert_eq!(
            count(&[
                Matcher::equal("__name__", "b"),
                m(MatchOp::NotRegex, "i", "1.*")
            ]),
            19
        );
        let mut v = b.label_values("__name__");
        v.sort();
        assert_eq!(v, ["a", "b"]);
    }

    /// Queries keep the label sets they built (a second query gets the same allocation);
    /// sharded reads build and keep only their own shard's; a rewrite's read keeps nothing;
    /// nothing is kept past the budget.
    #[test]
    fn queries_keep_label_sets_rewrites_do_not() {
        let d = tmp("keep");
        let series: Vec<(Labels, Vec<Sample>)> = (0..200)
            .map(|i| {
                let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                (l, vec![Sample { t: 1000, v: 1.0 }])
            })
            .collect();
        let meta = write_block(&d, 0, 2000, series.clone(), Compaction::default()).unwrap();
        let b = Block::open(&d.join(&meta.ulid)).unwrap();
        let kept = || b.labels.bytes.load(std::sync::atomic::Ordering::Relaxed);

        let all = b.read_all().collect::<Vec<_>>();
        assert_eq!(all.len(), 200);
        assert_eq!(kept(), 0, "a rewrite's read keeps nothing");

        let mut shards: Vec<Series> = (0..3)
            .flat_map(|k| b.select_iter(&[], 0, 2000, k, 3).collect::<Vec<_>>())
            .collect();
        shards.sort_by(|a, b| a.labels.cmp(&b.labels));
        let want: Vec<Labels> = all.iter().map(|s| s.labels.clone()).collect();
        let got: Vec<Labels> = shards.iter().map(|s| s.labels.clone()).collect();
        assert_eq!(got, want, "the shards together are every series once");
        for s in &shards {
            assert!(s.labels.shard(3) < 3);
        }
        let cost: usize = want.iter().map(LabelCache::cost).sum();
        assert_eq!(kept(), cost, "each series kept once");

        let again = b.select(&[], 0, 2000);
        assert!(
            again
                .iter()
                .zip(&shards)
                .all(|(a, s)| a.labels.same(&s.labels))
        );
        assert_eq!(kept(), cost);

        let fresh = LabelCache::default();
        fresh.keep_within(0, &want[0], 0);
        assert!(fresh.get(0).is_none(), "nothing past the budget");
        assert_eq!(fresh.bytes.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    /// Symbols are found by binary search when the table is sorted (as both formats write
    /// it), and through a map of their text when it is not; offsets take four bytes each
    /// under 4 GiB and find their entries either way.
    #[test]
    fn symbol_ids_and_offsets_in_both_shapes() {
        let sorted = b"abcc";
        let ranges = [(0, 1), (1, 1), (2, 2)];
        let si = SymIndex::of(sorted, &ranges);
        assert!(matches!(si, SymIndex::Sorted));
        assert_eq!(si.find(sorted, &ranges, "b"), Some(1));
        assert_eq!(si.find(sorted, &ranges, "cc"), Some(2));
        assert_eq!(si.find(sorted, &ranges, "c"), None);
        let unsorted = b"bab";
        let ranges = [(0, 1), (1, 1), (2, 1)];
        let si = SymIndex::of(unsorted, &ranges);
        assert!(matches!(si, SymIndex::Map(_)));
        assert_eq!(si.find(unsorted, &ranges, "a"), Some(1));
        assert_eq!(
            si.find(unsorted, &ranges, "b"),
            Some(2),
            "the last of equal ones"
        );
        assert_eq!(si.find(unsorted, &ranges, "z"), None);

        let mut small = Offsets::for_index(1 << 20, 3);
        let mut large = Offsets::for_index(5 << 30, 3);
        assert!(matches!(small, Offsets::Small(_)) && matches!(large, Offsets::Large(_)));
        for o in [16, 48, 4096] {
            small.push(o);
            large.push(o << 20);
        }
        assert_eq!(
            (small.len(), small.get(2), small.get(3)),
            (3, Some(4096), None)
        );
        assert_eq!(small.position(48), Some(1));
        assert_eq!(small.position(47), None);
        assert_eq!(small.position(1 << 40), None);
        assert_eq!(large.position(4096 << 20), Some(2));
        assert_eq!(large.get(0), Some(16 << 20));
    }

    #[test]
    fn damaged_index_is_an_error_not_a_panic() {
        let d = tmp("bad");
        let meta = write_block(
            &d,
            0,
            10,
            vec![(
                Labels::from_pairs([("__name__", "x")]),
                vec![Sample { t: 1, v: 1.0 }],
            )],
            Compaction::default(),
        )
        .unwrap();
        let p = d.join(&meta.ulid).join("index");
        let good = std::fs::read(&p).unwrap();
        let mut b = good.clone();
        b[FILE_HEADER_LEN + 2] ^= 1;
        std::fs::write(&p, &b).unwrap();
        let e = Block::open(&d.join(&meta.ulid)).err().unwrap().to_string();
        assert!(e.ends_with("index: checksum mismatch"), "{e}");
        // A file of another version than meta.json's is refused by name.
        let mut b = good.clone();
        b[8] = 9;
        std::fs::write(&p, &b).unwrap();
        let e = Block::open(&d.join(&meta.ulid)).err().unwrap().to_string();
        assert!(
            e.ends_with("index: format version 9, but meta.json says 3"),
            "{e}"
        );
        std::fs::write(&p, &good).unwrap();
        let c = d.join(&meta.ulid).join("chunks/000001");
        let mut b = std::fs::read(&c).unwrap();
        b[0] = b'X';
        std::fs::write(&c, &b).unwrap();
        let e = Block::open(&d.join(&meta.ulid)).err().unwrap().to_string();
        assert!(e.ends_with("chunks/000001: bad magic"), "{e}");
    }

    /// Blocks of every earlier format version are read with the same answers.
    #[test]
    fn earlier_versions_are_read() {
        let d = tmp("versions");
        let mut series: Vec<(Labels, Vec<Sample>)> = (0..20)
            .map(|i| {
                let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                let s = (0..700)
                    .map(|k| Sample {
                        t: k * 15_000 + i,
                        v: (k * i) as f64 / 4.0,
                    })
                    .collect();
                (l, s)
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let mut answers = Vec::new();
        for version in 1..=VERSION {
            let meta = write_new_block(&d, |tmp, ulid| {
                let src = series.iter().cloned().map(|s| Ok(Series::from(s)));
                let range = (0, 700 * 15_000);
                let seekable = version == SEEKABLE_VERSION;
                let c = Compaction::default();
                write_block_in(&d, tmp, ulid, range, src, c, (version, seekable))
            })
            .unwrap();
            let on_disk: BlockMeta = serde_json::from_slice(
                &std::fs::read(d.join(&meta.ulid).join("meta.json")).unwrap(),
            )
            .unwrap();
            assert_eq!(on_disk.version, version);
            let head = std::fs::read(d.join(&meta.ulid).join("chunks/000001")).unwrap();
            assert_eq!(head.starts_with(CHUNKS_MAGIC), version >= 3);
            let b = Block::open(&d.join(&meta.ulid)).unwrap();
            answers.push(b.select(&[Matcher::equal("__name__", "m")], 30_000, 9_000_000));
        }
        assert_eq!(answers[0].len(), 20);
        assert!(answers.iter().all(|a| *a == answers[0]));
    }

    /// Version 6: a long series is cut evenly into few seekable chunks; samples that come out
    /// smaller as XOR (which has no seek points) are cut again into chunks of 480; every window
    /// reads back what was written. A block whose series all fit one 480-sample chunk stays
    /// at version 3, which older builds read.
    #[test]
    fn long_series_make_few_seekable_chunks() {
        let d = tmp("seekable");
        let short = vec![(
            Labels::from_pairs([("__name__", "s".to_string())]),
            (0..480)
                .map(|k| Sample {
                    t: k * 15_000,
                    v: k as f64,
                })
                .collect::<Vec<_>>(),
        )];
        let meta = write_block(&d, 0, 480 * 15_000, short, Compaction::default()).unwrap();
        assert_eq!(meta.version, FLOAT_VERSION);
        let series: Vec<(Labels, Vec<Sample>)> = [("a", 20_000usize), ("b", 2_000)]
            .into_iter()
            .map(|(name, n)| {
                let l = Labels::from_pairs([("__name__", name.to_string())]);
                let s = (0..n as i64)
                    .map(|k| Sample {
                        t: k * 15_000 + k % 7,
                        // "a": a counter; "b": a value with no short decimal form whose top
                        // mantissa bit flips, which XOR keeps in a few bits and packed
                        // differences in 53.
                        v: match name {
                            "a" => (k * 13 % 20 + k * 10) as f64,
                            _ => f64::from_bits((1.0f64 / 3.0).to_bits() ^ (k as u64 % 2) << 51),
                        },
                    })
                    .collect();
                (l, s)
            })
            .collect();
        let meta = write_block(
            &d,
            0,
            20_000 * 15_000,
            series.clone(),
            Compaction::default(),
        )
        .unwrap();
        assert_eq!(meta.version, SEEKABLE_VERSION);
        // 20,000 samples: three chunks of about 6,667 (not 7,680, 7,680 and 4,640); 2,000
        // samples of XOR: five chunks of 400.
        assert_eq!(meta.stats.num_chunks, 3 + 5);
        let b = Block::open(&d.join(&meta.ulid)).unwrap();
        let chunks = |i| b.series_entry(i, false, None).unwrap().1;
        assert_eq!(chunks(0).len(), 3);
        assert_eq!(chunks(1).len(), 5);
        for (l, want) in &series {
            let name = l.get("__name__").unwrap();
            for (lo, hi) in [
                (0, i64::MAX),
                (want[6_000.min(want.len() - 1)].t, want[want.len() - 1].t),
                (want[1_234].t - 1, want[1_234].t + 300_000),
                (want[want.len() / 2].t, want[want.len() / 2].t),
            ] {
                let got = b.select(&[Matcher::equal("__name__", name)], lo, hi);
                let want: Vec<Sample> = want
                    .iter()
                    .copied()
                    .filter(|s| s.t >= lo && s.t <= hi)
                    .collect();
                assert_eq!(got[0].samples, want, "{name} {lo}..={hi}");
            }
        }
    }

    /// Native histograms: version 4's blocks (float chunks only) are still read, with the
    /// answers of version 5's, whose whole counts go into integer chunks and take fewer
    /// bytes; fractions stay float chunks.
    #[test]
    fn histogram_blocks_of_version_4_and_5_answer_alike() {
        use vigil_model::FloatHistogram;
        use vigil_model::histogram::Span;
        let d = tmp("hist-versions");
        let h = |k: i64, frac: f64| FloatHistogram {
            count: (6 * k) as f64 + frac,
            sum: k as f64 * 0.1,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![k as f64, (2 * k) as f64 + frac, (3 * k) as f64],
            ..Default::default()
        };
        let series: Vec<Series> = [0.0, 0.5]
            .iter()
            .enumerate()
            .map(|(i, &frac)| Series {
                labels: Labels::from_pairs([("__name__", "h".to_string()), ("i", i.to_string())]),
                samples: Vec::new(),
                histograms: (0..500)
                    .map(|k| HistogramSample {
                        t: k * 15_000,
                        h: std::sync::Arc::new(h(k, frac)),
                    })
                    .collect(),
            })
            .collect();
        let mut answers = Vec::new();
        let mut encodings = Vec::new();
        for version in [HISTOGRAM_VERSION, HISTOGRAM_ENCODING_VERSION] {
            let meta = write_new_block(&d, |tmp, ulid| {
                let src = series.iter().cloned().map(Ok);
                let range = (0, 500 * 15_000);
                write_block_in(
                    &d,
                    tmp,
                    ulid,
                    range,
                    src,
                    Compaction::default(),
                    (version, false),
                )
            })
            .unwrap();
            assert_eq!(meta.version, version);
            let b = Block::open(&d.join(&meta.ulid)).unwrap();
            let mut encs: Vec<Option<u8>> = (0..2)
                .flat_map(|i| b.series_entry(i, false, None).unwrap().1)
                .map(|c| c.histogram)
                .collect();
            encs.dedup();
            encodings.push(encs);
            let got = b.select(&[Matcher::equal("__name__", "h")], 0, i64::MAX);
            assert_eq!(got.len(), 2);
            for (g, want) in got.iter().zip(&series) {
                assert_eq!(g.histograms.len(), 500);
                for (x, y) in g.histograms.iter().zip(&want.histograms) {
                    assert_eq!(x.t, y.t);
                    assert!(x.h.same_as(&y.h), "{:?} vs {:?}", x.h, y.h);
                }
            }
            answers.push((
                got,
                std::fs::metadata(d.join(&meta.ulid).join("chunks/000001"))
                    .unwrap()
                    .len(),
            ));
        }
        use crate::prometheus::histogram_chunk::{ENC_FLOAT_HISTOGRAM, ENC_HISTOGRAM};
        assert_eq!(encodings[0], [Some(ENC_FLOAT_HISTOGRAM)]);
        assert_eq!(
            encodings[1],
            [Some(ENC_HISTOGRAM), Some(ENC_FLOAT_HISTOGRAM)]
        );
        let (v4, v5) = (answers[0].1, answers[1].1);
        assert!(v5 < v4, "version 5 chunks {v5} bytes, version 4 {v4}");
    }

    #[test]
    fn ulids_are_26_chars_and_sort_by_time() {
        let a = new_ulid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_ulid();
        assert_eq!(a.len(), 26);
        assert!(a < b);
        // Made within one millisecond too (a cut writes several blocks in one).
        let many: Vec<String> = (0..1000).map(|_| new_ulid()).collect();
        assert!(many.windows(2).all(|w| w[0] < w[1]), "not increasing");
        assert!(b < many[0]);
    }
}
