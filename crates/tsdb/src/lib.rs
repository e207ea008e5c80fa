//! vigil's time-series database.
//!
//! - [`block`]: immutable on-disk blocks (meta, index, chunks) read through mmap.
//! - [`chunk`]: Gorilla-style compressed chunks: delta-of-delta timestamps, XOR'd values.
//! - [`encoding`]: varints and a bounds-checked byte reader, shared by both block formats.
//! - [`wal`]: the write-ahead log: segmented, checksummed records with a format header,
//!   replay that cuts only the newest segment's torn tail.
//! - [`head`]: series, postings and chunks in memory, with WAL-backed commits; implements `Storage`.
//! - [`db`]: head + blocks as one `Storage`; cutting, compaction, retention.
//! - [`datadir`]: what a data directory holds and whose it is (vigil never touches files it
//!   did not write and could not read), and the lock on it.
//! - [`prometheus`]: Prometheus's formats: its blocks read and written, its head (WAL,
//!   checkpoints, head chunks) read.

pub mod backfill;
pub mod block;
pub mod chunk;
pub mod datadir;
pub mod db;
pub mod encoding;
pub mod head;
pub mod journal;
pub mod packed;
pub mod prometheus;
pub mod tools;
pub mod uncached;
pub mod wal;
