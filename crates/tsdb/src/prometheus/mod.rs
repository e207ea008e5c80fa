//! Prometheus's on-disk formats, read and written (upstream documents them in
//! `tsdb/docs/format/`): a team's Prometheus data directory is served as it is, and
//! `vigil tsdb export --format=prometheus` (or `--storage.tsdb.block-format=prometheus`)
//! writes blocks Prometheus, promtool and Thanos read.
//!
//! - [`index`]: a block's `index` (format v1 and v2) into the tables [`crate::block::Block`]
//!   queries, and the v2 writer.
//! - [`chunks`]: a block's `chunks/NNNNNN` segment files (XOR and histogram chunks).
//! - [`histogram_chunk`]: native histogram chunks (integer and float) decoded into float
//!   histograms: served from Prometheus's blocks and remote read answers.
//! - [`tombstones`]: a block's deleted ranges.
//! - [`head`]: Prometheus's head as it left it: the WAL (32 KiB pages, snappy-compressed
//!   records, checkpoints), the out-of-order WAL and the memory-mapped `chunks_head`.
//! - [`writer`]: a whole Prometheus-format block.
//!
//! Every integer read is bounds-checked and every checksum verified: a damaged file is an
//! error naming it, never a panic.

pub mod chunks;
pub mod head;
pub mod histogram_chunk;
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

pub use crate::encoding::{Dec, put_str, put_uvarint, put_varint};

/// Labels from a foreign file: sorted and unique as Prometheus writes them, or rebuilt.
pub fn labels_from(pairs: Vec<vigil_model::Label>) -> vigil_model::Labels {
    if pairs.windows(2).all(|w| w[0].name < w[1].name) && pairs.iter().all(|l| !l.value.is_empty())
    {
        vigil_model::Labels::from_sorted(pairs)
    } else {
        vigil_model::Labels::from_pairs(pairs.into_iter().map(|l| (l.name, l.value)))
    }
}
