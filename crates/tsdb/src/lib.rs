//! vigil's time-series database (work in progress; not wired into the server yet).
//!
//! - [`block`]: immutable on-disk blocks (meta, index, chunks) read through mmap.
//! - [`chunk`]: Gorilla-style compressed chunks: delta-of-delta timestamps, XOR'd values.
//! - [`wal`]: the write-ahead log: segmented, checksummed records, replay with torn-tail repair.
//! - [`head`]: series, postings and chunks in memory, with WAL-backed commits; implements `Storage`.
//! - [`db`]: head + blocks as one `Storage`; cutting, compaction, retention.

pub mod backfill;
pub mod block;
pub mod chunk;
pub mod db;
pub mod head;
pub mod packed;
pub mod tools;
pub mod wal;
