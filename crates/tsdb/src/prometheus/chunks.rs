//! A block's chunk segment files (`chunks/000001`, ...; `tsdb/docs/format/chunks.md`): an
//! 8-byte header, then chunks as `len <uvarint> | encoding <1b> | data | CRC32 <4b>`, each
//! referred to by `segment index << 32 | offset`.

use std::io::Write;
use std::path::Path;

use memmap2::Mmap;

use super::{CHUNKS_MAGIC, Dec, crc, put_uvarint};

/// Chunk encodings (Prometheus's `chunkenc`).
pub const ENC_XOR: u8 = 1;
pub const ENC_HISTOGRAM: u8 = 2;
pub const ENC_FLOAT_HISTOGRAM: u8 = 3;

/// A segment is cut before it would pass this size, as Prometheus does.
pub const SEGMENT_SIZE: u64 = 512 << 20;

/// Why a chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk {0:#x}: no such segment or offset")]
    OutOfRange(u64),
    #[error("chunk {0:#x}: checksum mismatch")]
    Checksum(u64),
    #[error("chunk {0:#x}: truncated")]
    Truncated(u64),
}

/// Map the segment files of `dir` in order, each header checked.
pub fn open(dir: &Path) -> std::io::Result<Vec<Mmap>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    names.sort_by_key(|n| n.parse::<u64>().unwrap_or(u64::MAX));
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let f = std::fs::File::open(dir.join(&n))?;
        // SAFETY: block files are immutable once in place; nothing in vigil writes them.
        let m = unsafe { Mmap::map(&f)? };
        if m.len() < 8 || u32::from_be_bytes(m[..4].try_into().unwrap_or_default()) != CHUNKS_MAGIC
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("chunks/{n}: bad magic"),
            ));
        }
        out.push(m);
    }
    Ok(out)
}

/// The chunk at `r`: its encoding and data, checksum verified.
pub fn get(files: &[Mmap], r: u64) -> Result<(u8, &[u8]), ChunkError> {
    let seg = files
        .get((r >> 32) as usize)
        .ok_or(ChunkError::OutOfRange(r))?;
    let off = (r & 0xffff_ffff) as usize;
    if off < 8 || off >= seg.len() {
        return Err(ChunkError::OutOfRange(r));
    }
    let mut d = Dec::new(seg, off);
    let len = usize::try_from(d.uvarint().ok_or(ChunkError::Truncated(r))?)
        .map_err(|_| ChunkError::Truncated(r))?;
    let start = d.pos;
    let enc_data = d
        .bytes(len.checked_add(1).ok_or(ChunkError::Truncated(r))?)
        .ok_or(ChunkError::Truncated(r))?;
    let want = d.be32().ok_or(ChunkError::Truncated(r))?;
    if crc(enc_data) != want {
        return Err(ChunkError::Checksum(r));
    }
    Ok((seg[start], &enc_data[1..]))
}

/// Writes chunk segments into a directory, cutting them at [`SEGMENT_SIZE`].
pub struct Writer {
    dir: std::path::PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    seq: u32,
    off: u64,
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(dir: &Path) -> std::io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        Ok(Writer {
            dir: dir.to_path_buf(),
            file: None,
            seq: 0,
            off: 0,
            buf: Vec::new(),
        })
    }

    fn cut(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            finish_file(f)?;
            self.seq += 1;
        }
        let f = std::fs::File::create(self.dir.join(format!("{:06}", self.seq + 1)))?;
        let mut f = std::io::BufWriter::with_capacity(1 << 20, f);
        f.write_all(&CHUNKS_MAGIC.to_be_bytes())?;
        f.write_all(&[1, 0, 0, 0])?;
        self.file = Some(f);
        self.off = 8;
        Ok(())
    }

    /// Append a chunk; its reference.
    pub fn add(&mut self, enc: u8, data: &[u8]) -> std::io::Result<u64> {
        self.buf.clear();
        put_uvarint(&mut self.buf, data.len() as u64);
        let crc_from = self.buf.len();
        self.buf.push(enc);
        self.buf.extend_from_slice(data);
        let c = crc(&self.buf[crc_from..]);
        self.buf.extend_from_slice(&c.to_be_bytes());
        if self.file.is_none() || self.off + self.buf.len() as u64 > SEGMENT_SIZE {
            self.cut()?;
        }
        let r = (self.seq as u64) << 32 | self.off;
        self.file
            .as_mut()
            .expect("cut opened a file")
            .write_all(&self.buf)?;
        self.off += self.buf.len() as u64;
        Ok(r)
    }

    /// Flush and fsync the segments (a block with no chunks still gets one, empty).
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.cut()?;
        }
        finish_file(self.file.take().expect("a file is open"))
    }
}

fn finish_file(f: std::io::BufWriter<std::fs::File>) -> std::io::Result<()> {
    let f = f.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}
