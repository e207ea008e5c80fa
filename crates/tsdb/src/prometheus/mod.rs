//! Prometheus's on-disk formats, read and written (upstream documents them in
//! `tsdb/docs/format/`): a team's Prometheus data directory is served as it is, and
//! `vigil tsdb export --format=prometheus` (or `--storage.tsdb.block-format=prometheus`)
//! writes blocks Prometheus, promtool and Thanos read.
//!
//! - [`index`]: a block's `index` (format v1 and v2) into the tables [`crate::block::Block`]
//!   queries, and the v2 writer.
//! - [`chunks`]: a block's `chunks/NNNNNN` segment files (XOR chunks; histogram chunks are
//!   recognised and skipped until vigil stores native histograms).
//! - [`tombstones`]: a block's deleted ranges.
//! - [`head`]: Prometheus's head as it left it: the WAL (32 KiB pages, snappy-compressed
//!   records, checkpoints), the out-of-order WAL and the memory-mapped `chunks_head`.
//! - [`writer`]: a whole Prometheus-format block.
//!
//! Every integer read is bounds-checked and every checksum verified: a damaged file is an
//! error naming it, never a panic.

pub mod chunks;
pub mod head;
pub mod index;
pub mod tombstones;
pub mod writer;

/// Index magic (`0xBAAAD700`).
pub const INDEX_MAGIC: u32 = 0xBAAA_D700;
/// Block chunk segment magic.
pub const CHUNKS_MAGIC: u32 = 0x85BD_40DD;
/// Head chunk (`chunks_head/`) file magic.
pub const HEAD_CHUNKS_MAGIC: u32 = 0x0130_BC91;
/// Tombstones file magic.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;

/// CRC-32C (Castagnoli), the checksum of every Prometheus format.
pub fn crc(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// A bounds-checked reader over bytes: big-endian fixed widths (Prometheus's) and Go's
/// varints.
#[derive(Clone, Copy)]
pub struct Dec<'a> {
    pub b: &'a [u8],
    pub pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(b: &'a [u8], pos: usize) -> Self {
        Dec { b, pos }
    }

    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    pub fn be32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))
    }

    pub fn be64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.bytes(8)?.try_into().ok()?))
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let x = *self.b.get(self.pos + i)?;
            v |= ((x & 0x7f) as u64) << (7 * i);
            if x & 0x80 == 0 {
                self.pos += i + 1;
                return Some(v);
            }
        }
        None
    }

    pub fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// A uvarint-length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Option<&'a str> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
}

/// Writers of Prometheus's encodings.
pub fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

pub fn put_varint(b: &mut Vec<u8>, v: i64) {
    put_uvarint(b, ((v << 1) ^ (v >> 63)) as u64);
}

pub fn put_str(b: &mut Vec<u8>, s: &str) {
    put_uvarint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// Labels from a foreign file: sorted and unique as Prometheus writes them, or rebuilt.
pub fn labels_from(pairs: Vec<vigil_model::Label>) -> vigil_model::Labels {
    if pairs.windows(2).all(|w| w[0].name < w[1].name) && pairs.iter().all(|l| !l.value.is_empty())
    {
        vigil_model::Labels::from_sorted(pairs)
    } else {
        vigil_model::Labels::from_pairs(pairs.into_iter().map(|l| (l.name, l.value)))
    }
}
