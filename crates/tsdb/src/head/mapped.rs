//! Full head chunks written out to files of the data directory and read back through mmap,
//! as Prometheus keeps its `chunks_head/`: a closed chunk's bytes then live in the page cache,
//! which the kernel can reclaim and read again, instead of the process's heap. A head
//! carrying two or three hours of samples holds most of them in closed chunks.
//!
//! The files (`<data>/head-chunks/NNNNNNNN`, each starting with [`MAGIC`]) are scratch: the
//! WAL is what the head is rebuilt from, so a start removes vigil's files there (and leaves
//! any other) and a crash while one is written loses nothing. A segment's file is removed when
//! the last chunk in it is dropped (a truncation after a block cut) and the writer has moved
//! on. A chunk that cannot be written (a full disk) stays in memory: the head never fails an
//! append for it.

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::Mmap;
use parking_lot::Mutex;

/// The directory under the data directory.
pub(crate) const DIR: &str = "head-chunks";
/// The first bytes of every segment file (then 8 bytes of zeros).
const MAGIC: &[u8; 8] = b"VIGILHCK";
const HEADER: u64 = 16;
/// Each segment file's size (sparse: only what is written takes disk space).
const SEGMENT_BYTES: u64 = 64 << 20;
/// Chunks waiting to be written are written together once they reach this.
pub(crate) const BATCH_BYTES: usize = 256 << 10;

/// A closed chunk's bytes: in the process's memory, or in a segment file.
pub(crate) enum ChunkBytes {
    Heap(Box<[u8]>),
    Mapped(Mapped),
}

impl ChunkBytes {
    pub(crate) fn is_heap(&self) -> bool {
        matches!(self, ChunkBytes::Heap(_))
    }
}

impl Deref for ChunkBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ChunkBytes::Heap(b) => b,
            ChunkBytes::Mapped(m) => m.bytes(),
        }
    }
}

impl From<Vec<u8>> for ChunkBytes {
    fn from(v: Vec<u8>) -> Self {
        ChunkBytes::Heap(v.into_boxed_slice())
    }
}

impl From<Box<[u8]>> for ChunkBytes {
    fn from(b: Box<[u8]>) -> Self {
        ChunkBytes::Heap(b)
    }
}

impl From<&[u8]> for ChunkBytes {
    fn from(b: &[u8]) -> Self {
        ChunkBytes::Heap(b.into())
    }
}

/// A chunk in a segment file. It keeps its segment (and so the mapping) alive.
pub(crate) struct Mapped {
    seg: Arc<Segment>,
    off: u32,
    len: u32,
}

impl Mapped {
    fn bytes(&self) -> &[u8] {
        let (off, len) = (self.off as usize, self.len as usize);
        assert!(
            off + len <= self.seg.map.len(),
            "a chunk's place past its segment"
        );
        // SAFETY: `off..off + len` lies within the mapping (checked above), which lives as
        // long as `self.seg`; those bytes were written before this place was handed out and
        // are never written again (the writer only appends past every place handed out).
        // Only this range is borrowed, not the whole mapping, whose unwritten tail the writer
        // fills meanwhile.
        unsafe { std::slice::from_raw_parts(self.seg.map.as_ptr().add(off), len) }
    }
}

/// One segment file, mapped whole for reading.
struct Segment {
    map: Mmap,
    path: PathBuf,
}

impl Drop for Segment {
    fn drop(&mut self) {
        // No chunk is in it any more, and the writer has moved past it.
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.path.display(), err = %e, "A head chunk file could not be removed");
        }
    }
}

/// The segment being written.
struct Writer {
    seg: Arc<Segment>,
    file: File,
    at: u64,
}

/// The head's chunk files.
pub(crate) struct ChunkFiles {
    dir: PathBuf,
    writer: Mutex<(Option<Writer>, u64)>,
    /// A write failed; logged once until one works again.
    failing: AtomicBool,
}

/// Whether `path` is a segment file vigil wrote (a regular file, not a link, its name eight
/// digits, its first bytes [`MAGIC`] or a prefix of them, as a creation cut short leaves it).
fn is_ours(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 8 && n.bytes().all(|b| b.is_ascii_digit()));
    // Not opened unless a regular file: a FIFO would block the start, a link leads elsewhere.
    let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    if !named || !regular {
        return false;
    }
    let mut head = [0u8; 8];
    let n = File::open(path)
        .and_then(|f| f.read_at(&mut head, 0))
        .unwrap_or(usize::MAX);
    n != usize::MAX && head[..n] == MAGIC[..n]
}

impl ChunkFiles {
    /// The chunk files under `data`, the previous run's removed (vigil's only: a file that is
    /// not is left, and its name is not used).
    pub(crate) fn open(data: &Path) -> io::Result<ChunkFiles> {
        let dir = data.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let mut next = 0u64;
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            if is_ours(&path) {
                std::fs::remove_file(&path)?;
            } else if let Some(n) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
        }
        Ok(ChunkFiles {
            dir,
            writer: Mutex::new((None, next)),
            failing: AtomicBool::new(false),
        })
    }

    fn new_segment(&self, n: u64) -> io::Result<Writer> {
        let path = self.dir.join(format!("{n:08}"));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let made = (|| {
            file.write_all_at(MAGIC, 0)?;
            file.set_len(SEGMENT_BYTES)?;
            // SAFETY: the file is vigil's own, created here (`create_new`) and only ever
            // written at offsets past those already handed out; it is never truncated (it is
            // removed, which leaves a mapping valid, only when no chunk refers to it). Readers
            // borrow only written ranges (`Mapped::bytes`).
            unsafe { Mmap::map(&file) }
        })();
        match made {
            Ok(map) => Ok(Writer {
                seg: Arc::new(Segment { map, path }),
                file,
                at: HEADER,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Write `buf` (chunks back to back, `lens` their lengths) and return each chunk's place,
    /// in order; None for all of them if the write failed (they stay in memory).
    pub(crate) fn store(&self, buf: &[u8], lens: &[u32]) -> Option<Vec<Mapped>> {
        let r = self.store_inner(buf, lens);
        match &r {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("Head chunks are written to their files again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(dir = %self.dir.display(), err = %e, "Head chunks cannot be written to their files: they stay in memory until they can");
                }
            }
        }
        r.ok()
    }

    fn store_inner(&self, buf: &[u8], lens: &[u32]) -> io::Result<Vec<Mapped>> {
        let mut out = Vec::with_capacity(lens.len());
        let mut g = self.writer.lock();
        let (writer, next) = &mut *g;
        let mut from = 0usize;
        let mut k = 0usize;
        while k < lens.len() {
            if writer.is_none() {
                // The number is used up either way: a name taken (by a file not ours) is not
                // tried again.
                let n = *next;
                *next += 1;
                *writer = Some(self.new_segment(n)?);
            }
            let w = writer.as_mut().expect("made above");
            // As many of the chunks as fit in this segment, written at once.
            let (start_k, start_from, start_at) = (k, from, w.at);
            let mut at = w.at;
            while k < lens.len() && at + u64::from(lens[k]) <= SEGMENT_BYTES {
                at += u64::from(lens[k]);
                from += lens[k] as usize;
                k += 1;
            }
            if k == start_k {
                if w.at == HEADER {
                    return Err(io::Error::other("a chunk larger than a segment"));
                }
                // This one is full: the next chunk goes to a new one.
                *writer = None;
                continue;
            }
            w.file.write_all_at(&buf[start_from..from], start_at)?;
            let mut off = start_at;
            for &len in &lens[start_k..k] {
                out.push(Mapped {
                    seg: w.seg.clone(),
                    off: off as u32,
                    len,
                });
                off += u64::from(len);
            }
            w.at = at;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-mapped-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Chunks read back as written, across segments; a segment's file goes with its last
    /// chunk once the writer moved on; a start removes vigil's files and leaves others.
    #[test]
    fn chunks_read_back_and_files_go_with_them() {
        let d = tmp("files");
        let files = ChunkFiles::open(&d).unwrap();
        let chunk = |i: u32| -> Vec<u8> { (0..1000u32).map(|k| (k * 7 + i) as u8).collect() };
        let mut held: Vec<(u32, ChunkBytes)> = Vec::new();
        // Enough to fill more than one segment, in batches.
        let per_batch = 200u32;
        let batches = (SEGMENT_BYTES / 1000) as u32 / per_batch + 2;
        for b in 0..batches {
            let ids: Vec<u32> = (b * per_batch..(b + 1) * per_batch).collect();
            let buf: Vec<u8> = ids.iter().flat_map(|&i| chunk(i)).collect();
            let lens = vec![1000u32; ids.len()];
            let placed = files.store(&buf, &lens).expect("written");
            held.extend(
                ids.into_iter()
                    .zip(placed.into_iter().map(ChunkBytes::Mapped)),
            );
        }
        for (i, c) in &held {
            assert_eq!(&c[..], &chunk(*i)[..], "chunk {i}");
        }
        let first = d.join(DIR).join("00000000");
        assert!(first.exists());
        assert!(d.join(DIR).join("00000001").exists());
        // Drop every chunk of the first segment: its file goes.
        held.retain(|(_, c)| match c {
            ChunkBytes::Mapped(m) => m.seg.path != first,
            ChunkBytes::Heap(_) => true,
        });
        assert!(!first.exists());
        for (i, c) in &held {
            assert_eq!(&c[..], &chunk(*i)[..], "chunk {i}");
        }
        drop(held);
        // Someone else's file, and one of ours left by a crash (a header cut short); a link
        // to a file that looks like ours, and a directory, are not ours either.
        std::fs::write(d.join(DIR).join("00000007"), b"not vigil's").unwrap();
        std::fs::write(d.join(DIR).join("00000003"), &MAGIC[..3]).unwrap();
        std::fs::write(d.join("elsewhere"), MAGIC).unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join(DIR).join("00000004")).unwrap();
        std::fs::create_dir(d.join(DIR).join("00000005")).unwrap();
        drop(files);
        let files = ChunkFiles::open(&d).unwrap();
        assert!(!d.join(DIR).join("00000003").exists());
        assert!(d.join(DIR).join("00000007").exists());
        assert!(d.join(DIR).join("00000004").exists() && d.join("elsewhere").exists());
        assert!(d.join(DIR).join("00000005").is_dir());
        // New segments are numbered past the file left alone.
        let placed = files.store(&chunk(1), &[1000]).unwrap();
        assert_eq!(placed[0].seg.path, d.join(DIR).join("00000008"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
