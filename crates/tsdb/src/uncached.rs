//! `--enable-feature=use-uncached-io`: the files of a block vigil writes are dropped from the
//! page cache once they are on disk, so a head cut or a compaction does not fill the cache (and
//! a container's memory, which counts it) with data no query has asked for.
//!
//! Prometheus writes its chunks with direct I/O for this. vigil writes through the cache and,
//! once the files are synced, tells the kernel it will not need those pages
//! (`posix_fadvise(POSIX_FADV_DONTNEED)`, the alternative Prometheus's proposal names): the
//! same pages leave the cache without direct I/O's alignment rules. Queries read what they
//! need back in through their mmaps.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(false);

/// Set once at start-up, from the feature flag.
pub fn set(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// With the feature on, drop the pages of block `dir`'s `index` and chunk files from the page
/// cache. Call after they are synced (only clean pages can go). Never fails the write: a file
/// the kernel will not advise about stays cached, which is logged.
pub(crate) fn forget_block(dir: &Path) {
    if !enabled() {
        return;
    }
    let chunks = std::fs::read_dir(dir.join("chunks"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    for path in std::iter::once(dir.join("index")).chain(chunks) {
        if let Err(e) = forget(&path) {
            tracing::debug!(path = %path.display(), err = %e, "A block file stays in the page cache");
        }
    }
}

fn forget(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: a valid descriptor for the call's duration; the call only advises the kernel.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// How many of `path`'s pages are in the page cache, and how many it has (tests).
#[cfg(test)]
pub(crate) fn resident_pages(path: &Path) -> (usize, usize) {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: a read-only map of a file no one writes while it is looked at.
    let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let pages = map.len().div_ceil(page);
    let mut v = vec![0u8; pages];
    // SAFETY: `v` holds a byte for each page of the mapping.
    let rc = unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, map.len(), v.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore");
    (v.iter().filter(|b| *b & 1 == 1).count(), pages)
}
