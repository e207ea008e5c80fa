//! What a data directory holds, whose it is, and the lock that keeps it to one process.
//!
//! vigil never truncates, rewrites or deletes a file it did not write. Before anything in the
//! directory is touched, [`inspect`] reads (only reads) what is there and tells vigil's files
//! from others by their format markers: WAL and checkpoint segments start with
//! [`crate::wal::SEGMENT_MAGIC`] (or, written before the marker existed, with a record whose
//! CRC checks out in vigil's framing), block indexes with `VIGILIDX`. Prometheus's files are
//! recognised by their own: `chunks_head/`, `wbl/`, WAL segments of 32 KiB pages, index files
//! with magic `0xBAAAD700`. The server reads them (`crate::prometheus`); the agent, which reads
//! no blocks, refuses to start on them ([`crate::db::Db::open_agent`]).
//!
//! The lock is an exclusive `flock` on `<dir>/lock`, the file Prometheus locks the same way, so
//! a vigil and a Prometheus (or two vigils) never share a directory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::wal;

/// Why the database could not be opened; callers tell a foreign directory and a lock held by
/// another process from other I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Foreign(Foreign),
    #[error(
        "the storage directory {dir} is in use by another process (a vigil or Prometheus holds the lock on {dir}/lock): {source}. Stop it, or give this one another --storage.tsdb.path (--storage.tsdb.no-lockfile turns the lock off)"
    )]
    Locked { dir: String, source: std::io::Error },
    #[error(
        "the storage directory {dir} is not writable ({source}); vigil needs to write its WAL and blocks there: make it writable, or give another --storage.tsdb.path"
    )]
    NotWritable { dir: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Files of another format found in the directory: what they are, and what to do.
#[derive(Debug)]
pub struct Foreign {
    pub dir: PathBuf,
    /// `(path relative to dir, what it is)`.
    pub found: Vec<(String, String)>,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = self.dir.display();
        write!(
            f,
            "the storage directory {dir} holds data vigil did not write, which agent mode does not read: "
        )?;
        for (i, (path, what)) in self.found.iter().take(5).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{path} ({what})")?;
        }
        if self.found.len() > 5 {
            write!(f, "; and {} more", self.found.len() - 5)?;
        }
        write!(
            f,
            ". vigil has not changed anything in it. Give the agent an empty --storage.agent.path \
             (move this directory aside, or keep it for Prometheus); vigil's server mode reads \
             a Prometheus directory as it is"
        )
    }
}

/// Prometheus's index magic (`tsdb/docs/format/index.md`).
const PROMETHEUS_INDEX_MAGIC: [u8; 4] = [0xBA, 0xAA, 0xD7, 0x00];

/// Look at `dir` without changing anything; `Err` lists what vigil did not write.
pub fn inspect(dir: &Path) -> std::io::Result<Result<(), Foreign>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(())),
        Err(e) => return Err(e),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let path = e.path();
        let is_dir = e.file_type()?.is_dir();
        match name.as_str() {
            "chunks_head" if is_dir => {
                found.push((name, "Prometheus's memory-mapped head chunks".to_string()))
            }
            "wbl" if is_dir => found.push((name, "Prometheus's out-of-order WAL".to_string())),
            "wal" if is_dir => inspect_wal(&path, "wal", &mut found)?,
            _ if is_dir && is_block_dir(&name) => {
                if let Some(what) = foreign_block(&path)? {
                    found.push((name, what));
                }
            }
            _ => {}
        }
    }
    found.sort();
    Ok(if found.is_empty() {
        Ok(())
    } else {
        Err(Foreign {
            dir: dir.to_path_buf(),
            found,
        })
    })
}

/// A block directory's name: a ULID (26 characters of Crockford base32).
fn is_block_dir(name: &str) -> bool {
    name.len() == 26 && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `Some(what)` if the block at `path` is not vigil's.
fn foreign_block(path: &Path) -> std::io::Result<Option<String>> {
    let mut magic = [0u8; 8];
    let n = match File::open(path.join("index")) {
        Ok(mut f) => read_up_to(&mut f, &mut magic)?,
        // No index: not a complete block of anyone's; vigil skips it without touching it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if n == 8 && &magic == b"VIGILIDX" {
        return Ok(None);
    }
    Ok(Some(if n >= 4 && magic[..4] == PROMETHEUS_INDEX_MAGIC {
        "a Prometheus block".to_string()
    } else {
        "a block whose index vigil does not recognise".to_string()
    }))
}

fn inspect_wal(dir: &Path, rel: &str, found: &mut Vec<(String, String)>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        let path = e.path();
        if e.file_type()?.is_dir() {
            if name.starts_with("checkpoint.") {
                inspect_wal(&path, &format!("{rel}/{name}"), found)?;
            }
            continue;
        }
        if name.len() != 8 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if wal::classify_file(&path)? == wal::SegmentKind::Foreign {
            found.push((
                format!("{rel}/{name}"),
                "a WAL segment not in vigil's format (Prometheus writes 32 KiB pages)".to_string(),
            ));
        }
    }
    Ok(())
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The exclusive lock on `<dir>/lock`, held while the file stays open.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Take the directory's lock, failing at once if another process holds it.
pub fn lock(dir: &Path) -> Result<DirLock, OpenError> {
    let path = dir.join("lock");
    // Never truncate: Prometheus's lock file may be there (it is empty, and stays as it is).
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| not_writable(dir, source))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            dir: dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the lock is held by another process",
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(OpenError::Io(e)),
    }
}

/// A permission or read-only error as [`OpenError::NotWritable`]; others as I/O errors.
pub fn not_writable(dir: &Path, source: std::io::Error) -> OpenError {
    let read_only = source.kind() == std::io::ErrorKind::PermissionDenied
        || source.kind() == std::io::ErrorKind::ReadOnlyFilesystem;
    if read_only {
        OpenError::NotWritable {
            dir: dir.display().to_string(),
            source,
        }
    } else {
        OpenError::Io(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-datadir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn prometheus_files_are_found_and_named() {
        let d = tmp("prom");
        std::fs::create_dir_all(d.join("chunks_head")).unwrap();
        std::fs::create_dir_all(d.join("wal")).unwrap();
        // A Prometheus WAL page header: record type "full" (1), length, CRC (big-endian).
        std::fs::write(
            d.join("wal/00000000"),
            [1u8, 0, 3, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3],
        )
        .unwrap();
        let b = d.join("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("index"), [0xBA, 0xAA, 0xD7, 0x00, 2, 0, 0, 0]).unwrap();
        let f = inspect(&d).unwrap().unwrap_err();
        let msg = f.to_string();
        assert!(
            msg.contains("chunks_head (Prometheus's memory-mapped head chunks)"),
            "{msg}"
        );
        assert!(
            msg.contains("wal/00000000 (a WAL segment not in vigil's format"),
            "{msg}"
        );
        assert!(
            msg.contains("01ARZ3NDEKTSV4RRFFQ69G5FAV (a Prometheus block)"),
            "{msg}"
        );
        assert!(msg.contains("has not changed anything"), "{msg}");
    }

    #[test]
    fn an_empty_or_missing_directory_is_fine() {
        let d = tmp("empty");
        assert!(inspect(&d).unwrap().is_ok());
        assert!(inspect(&d.join("missing")).unwrap().is_ok());
    }

    #[test]
    fn a_second_lock_on_the_directory_fails() {
        let d = tmp("lock");
        let first = lock(&d).unwrap();
        let err = lock(&d).unwrap_err();
        assert!(matches!(err, OpenError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("in use by another process"));
        drop(first);
        lock(&d).unwrap();
    }
}
