//! A Prometheus block's `index` (`tsdb/docs/format/index.md`), format v1 and v2.
//!
//! Reading builds the same tables vigil's own index gives [`crate::block::Block`]: symbols,
//! where each series entry starts, the postings list of each label pair and the values of
//! each name. Entries are decoded on demand. Version 2 refers to symbols by their position
//! in the table and to series by `offset / 16`; version 1 uses byte offsets for both.

use std::collections::HashMap;

use vigil_model::{LabelRef, Labels};

use super::{Dec, crc, put_str, put_uvarint, put_varint};
use crate::block::{ChunkMeta, Offsets, SymIndex, Tables};

/// What differs between the versions once the tables are built.
pub struct Info {
    pub version: u8,
    /// Version 1: the byte offset of each symbol -> its position in the table.
    pub sym_at: HashMap<u32, u32>,
}

/// A chunk's place in the index: time range and `segment << 32 | offset` reference.
pub type ChunkRef = (i64, i64, u64);

fn toc(b: &[u8]) -> Result<[u64; 6], String> {
    if b.len() < 5 + 52 {
        return Err(format!("index of {} bytes is too short", b.len()));
    }
    let t = &b[b.len() - 52..];
    let want = u32::from_be_bytes(t[48..52].try_into().unwrap_or_default());
    if crc(&t[..48]) != want {
        return Err("index table of contents: checksum mismatch".into());
    }
    let mut out = [0u64; 6];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u64::from_be_bytes(t[8 * i..8 * i + 8].try_into().unwrap_or_default());
    }
    if out.iter().any(|&o| o as usize >= b.len()) {
        return Err("index table of contents points past the end of the file".into());
    }
    Ok(out)
}

/// A `len <4b> | content | CRC32 <4b>` section at `off`: its content, checksum verified.
fn section<'a>(b: &'a [u8], off: usize, what: &str) -> Result<&'a [u8], String> {
    let mut d = Dec::new(b, off);
    let len = d
        .be32()
        .ok_or_else(|| format!("{what} at offset {off}: truncated"))? as usize;
    let body = d
        .bytes(len)
        .ok_or_else(|| format!("{what} at offset {off}: truncated"))?;
    let want = d
        .be32()
        .ok_or_else(|| format!("{what} at offset {off}: truncated"))?;
    if crc(body) != want {
        return Err(format!("{what} at offset {off}: checksum mismatch"));
    }
    Ok(body)
}

/// Read the index in `b` into tables (every section's checksum verified).
pub(crate) fn read(b: &[u8]) -> Result<(Tables, Info), String> {
    if b.len() < 5
        || u32::from_be_bytes(b[..4].try_into().unwrap_or_default()) != super::INDEX_MAGIC
    {
        return Err("index: bad magic".into());
    }
    let version = b[4];
    if version != 1 && version != 2 {
        return Err(format!("index: unknown format version {version}"));
    }
    let [sym_off, series_off, li_off, lot_off, p_off, pot_off] =
        toc(b).map_err(|e| format!("index: {e}"))?;

    // Symbols.
    let mut symbols = Vec::new();
    let mut sym_at = HashMap::new();
    if sym_off != 0 {
        let body = section(b, sym_off as usize, "index symbol table")?;
        let base = sym_off as usize + 4;
        let mut d = Dec::new(body, 0);
        let n = d.be32().ok_or("index symbol table: truncated")? as usize;
        symbols.reserve(n.min(1 << 24));
        for i in 0..n {
            let at = d.pos;
            let len = d.uvarint().ok_or("index symbol table: truncated")? as usize;
            let start = d.pos;
            std::str::from_utf8(d.bytes(len).ok_or("index symbol table: truncated")?)
                .map_err(|_| "index symbol table: a symbol is not UTF-8")?;
            symbols.push((base + start, len));
            if version == 1 {
                sym_at.insert((base + at) as u32, i as u32);
            }
        }
    }

    let sym_index = SymIndex::of(b, &symbols);

    // Series: entries from the series section to the next section, zero padding between.
    let mut series_offsets = Offsets::for_index(b.len(), 0);
    if series_off != 0 {
        let end = [li_off, lot_off, p_off, pot_off]
            .into_iter()
            .filter(|&o| o != 0 && o >= series_off)
            .min()
            .unwrap_or((b.len() - 52) as u64) as usize;
        let mut pos = series_off as usize;
        while pos < end {
            if b[pos] == 0 {
                pos += 1;
                continue;
            }
            let start = pos;
            let mut d = Dec::new(&b[..end], pos);
            let bad = || format!("index series entry at offset {start}: truncated");
            let len = d.uvarint().ok_or_else(bad)? as usize;
            let body = d.bytes(len).ok_or_else(bad)?;
            let want = d.be32().ok_or_else(bad)?;
            if crc(body) != want {
                return Err(format!(
                    "index series entry at offset {start}: checksum mismatch"
                ));
            }
            series_offsets.push(start);
            pos = d.pos;
        }
    }

    // Postings offset table: (name, value) -> postings list; each list checked once here.
    let mut postings = HashMap::new();
    let mut values: HashMap<u32, Vec<u32>> = HashMap::new();
    if pot_off != 0 {
        let body = section(b, pot_off as usize, "index postings offset table")?;
        let mut d = Dec::new(body, 0);
        let n = d.be32().ok_or("index postings offset table: truncated")?;
        // Each list's checksum once, however many entries point at it (a crafted table of
        // a million entries at one large list would otherwise check it a million times).
        let mut checked: std::collections::HashSet<usize> = Default::default();
        for _ in 0..n {
            let bad = "index postings offset table: truncated";
            let k = d.uvarint().ok_or(bad)?;
            if k != 2 {
                return Err(format!(
                    "index postings offset table: an entry of {k} strings (2 expected)"
                ));
            }
            let name = d.str().ok_or(bad)?;
            let value = d.str().ok_or(bad)?;
            let off = d.uvarint().ok_or(bad)? as usize;
            if checked.insert(off) {
                section(b, off, "index postings list")?;
            }
            if name.is_empty() && value.is_empty() {
                continue; // every series: vigil lists them from the series section
            }
            let (Some(n), Some(v)) = (
                sym_index.find(b, &symbols, name),
                sym_index.find(b, &symbols, value),
            ) else {
                return Err(format!(
                    "index postings offset table: label {name}={value:?} is not in the symbol table"
                ));
            };
            postings.insert((n, v), off);
            values.entry(n).or_default().push(v);
        }
    }
    Ok((
        Tables {
            symbols,
            sym_index,
            series_offsets,
            postings,
            values,
        },
        Info { version, sym_at },
    ))
}

/// The series (their positions in `series_offsets`) of the postings list at `off`.
pub(crate) fn postings(b: &[u8], off: usize, series_offsets: &Offsets, info: &Info) -> Vec<u32> {
    let mut d = Dec::new(b, off + 4);
    let n = d.be32().unwrap_or(0);
    let mut out = Vec::with_capacity((n as usize).min(d.remaining() / 4));
    for _ in 0..n {
        let Some(id) = d.be32() else { break };
        let at = if info.version == 2 {
            id as usize * 16
        } else {
            id as usize
        };
        if let Some(i) = series_offsets.position(at) {
            out.push(i as u32);
        }
    }
    out
}

/// The series ID Prometheus gives the entry at `offset` (what tombstones refer to).
pub fn series_id(offset: usize, info: &Info) -> u64 {
    if info.version == 2 {
        offset as u64 / 16
    } else {
        offset as u64
    }
}

/// A series entry: its (name, value) symbol positions, then its chunks.
pub type SeriesEntry = (Vec<(u32, u32)>, Vec<ChunkMeta>);

/// Decode the series entry at `off`.
pub fn series(b: &[u8], off: usize, info: &Info) -> Option<SeriesEntry> {
    let mut d = Dec::new(b, off);
    let len = d.uvarint()? as usize;
    let mut d = Dec::new(&b[..d.pos.checked_add(len)?.min(b.len())], d.pos);
    let sym = |r: u64| -> Option<u32> {
        if info.version == 2 {
            u32::try_from(r).ok()
        } else {
            info.sym_at.get(&u32::try_from(r).ok()?).copied()
        }
    };
    let nl = d.uvarint()? as usize;
    let mut labels = Vec::with_capacity(nl.min(256));
    for _ in 0..nl {
        let n = sym(d.uvarint()?)?;
        let v = sym(d.uvarint()?)?;
        labels.push((n, v));
    }
    let nc = d.uvarint()? as usize;
    let mut chunks = Vec::with_capacity(nc.min(1 << 16));
    let (mut prev_max, mut prev_ref) = (0i64, 0u64);
    for i in 0..nc {
        let (min_t, max_t, r) = if i == 0 {
            let min_t = d.varint()?;
            let max_t = min_t.checked_add(d.uvarint()? as i64)?;
            (min_t, max_t, d.uvarint()?)
        } else {
            let min_t = prev_max.checked_add(d.uvarint()? as i64)?;
            let max_t = min_t.checked_add(d.uvarint()? as i64)?;
            (min_t, max_t, prev_ref.wrapping_add(d.varint()? as u64))
        };
        chunks.push(ChunkMeta {
            min_t,
            max_t,
            offset: r,
            len: 0,
            histogram: None,
        });
        prev_max = max_t;
        prev_ref = r;
    }
    Some((labels, chunks))
}

/// Names and values of resolved symbol positions.
pub fn label_refs<'a>(pairs: &[(u32, u32)], sym: impl Fn(u32) -> &'a str) -> Vec<LabelRef<'a>> {
    pairs
        .iter()
        .map(|&(n, v)| LabelRef {
            name: sym(n),
            value: sym(v),
        })
        .collect()
}

/// Whether pairs are a set as Prometheus writes it (sorted, unique, no empty value), which is
/// packed as it is read; anything else goes through the builder's rules.
pub fn tidy(refs: &[LabelRef<'_>]) -> bool {
    refs.windows(2).all(|w| w[0].name < w[1].name) && refs.iter().all(|l| !l.value.is_empty())
}

/// Labels from resolved symbol positions.
pub fn labels<'a>(pairs: &[(u32, u32)], sym: impl Fn(u32) -> &'a str) -> Labels {
    labels_of_refs(&label_refs(pairs, sym))
}

/// Labels from borrowed pairs as Prometheus wrote them: packed as they are when [`tidy`],
/// else through the builder's rules (sorted, later duplicates win, empty values dropped).
pub fn labels_of_refs(refs: &[LabelRef<'_>]) -> Labels {
    if tidy(refs) {
        Labels::from_sorted_refs(refs.iter().copied())
    } else {
        Labels::from_pairs(refs.iter().map(|l| (l.name, l.value)))
    }
}

fn pad(b: &mut Vec<u8>, align: usize) {
    while !b.len().is_multiple_of(align) {
        b.push(0);
    }
}

/// Append `len <4b> | body | CRC32 <4b>`.
fn put_section(b: &mut Vec<u8>, body: &[u8]) {
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&crc(body).to_be_bytes());
}

/// Write an index, format v2, of `series` sorted by labels with their chunks in time order.
pub fn write_v2(series: &[(Labels, Vec<ChunkRef>)]) -> Vec<u8> {
    write(series, 2)
}

/// Write an index in format `version`: 2, or 1 (symbols and series referred to by their byte
/// offsets, as Prometheus before 2.1 wrote; kept to test the reader of old blocks).
pub fn write(series: &[(Labels, Vec<ChunkRef>)], version: u8) -> Vec<u8> {
    let mut syms: Vec<&str> = series
        .iter()
        .flat_map(|(l, _)| l.iter().flat_map(|x| [x.name, x.value]))
        .collect::<foldhash::HashSet<&str>>()
        .into_iter()
        .collect();
    syms.sort_unstable();

    let mut b = Vec::with_capacity(64 + series.len() * 48);
    b.extend_from_slice(&super::INDEX_MAGIC.to_be_bytes());
    b.push(version);

    let sym_off = b.len();
    let mut body = Vec::new();
    body.extend_from_slice(&(syms.len() as u32).to_be_bytes());
    let mut sym_id: foldhash::HashMap<&str, u32> = Default::default();
    for (i, s) in syms.iter().enumerate() {
        // v1 refers to a symbol by its offset in the file (after the section's 4-byte length).
        let id = if version == 1 {
            (sym_off + 4 + body.len()) as u32
        } else {
            i as u32
        };
        sym_id.insert(s, id);
        put_str(&mut body, s);
    }
    put_section(&mut b, &body);

    // Series, each at a multiple of 16; its ID is the offset / 16 (v1: the offset).
    pad(&mut b, 16);
    let series_off = b.len();
    let mut postings: std::collections::BTreeMap<(&str, &str), Vec<u32>> = Default::default();
    let mut all = Vec::with_capacity(series.len());
    for (labels, chunks) in series {
        pad(&mut b, 16);
        let id = if version == 1 {
            b.len() as u32
        } else {
            (b.len() / 16) as u32
        };
        all.push(id);
        body.clear();
        put_uvarint(&mut body, labels.len() as u64);
        for l in labels.iter() {
            put_uvarint(&mut body, sym_id[l.name] as u64);
            put_uvarint(&mut body, sym_id[l.value] as u64);
            postings.entry((l.name, l.value)).or_default().push(id);
        }
        put_uvarint(&mut body, chunks.len() as u64);
        let (mut prev_max, mut prev_ref) = (0i64, 0u64);
        for (i, &(min_t, max_t, r)) in chunks.iter().enumerate() {
            if i == 0 {
                put_varint(&mut body, min_t);
                put_uvarint(&mut body, (max_t - min_t) as u64);
                put_uvarint(&mut body, r);
            } else {
                put_uvarint(&mut body, (min_t - prev_max) as u64);
                put_uvarint(&mut body, (max_t - min_t) as u64);
                put_varint(&mut body, r as i64 - prev_ref as i64);
            }
            prev_max = max_t;
            prev_ref = r;
        }
        put_uvarint(&mut b, body.len() as u64);
        b.extend_from_slice(&body);
        b.extend_from_slice(&crc(&body).to_be_bytes());
    }

    // Label indices (no longer read by Prometheus, still written by it): values per name.
    let mut names: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for &(n, v) in postings.keys() {
        names.entry(n).or_default().push(v);
    }
    pad(&mut b, 4);
    let li_off = b.len();
    let mut li = Vec::with_capacity(names.len());
    for (name, vals) in &names {
        pad(&mut b, 4);
        li.push((*name, b.len()));
        body.clear();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&(vals.len() as u32).to_be_bytes());
        for v in vals {
            body.extend_from_slice(&sym_id[v].to_be_bytes());
        }
        put_section(&mut b, &body);
    }
    let lot_off = b.len();
    body.clear();
    body.extend_from_slice(&(li.len() as u32).to_be_bytes());
    for (name, off) in &li {
        put_uvarint(&mut body, 1);
        put_str(&mut body, name);
        put_uvarint(&mut body, *off as u64);
    }
    put_section(&mut b, &body);

    // Postings: every series under ("", ""), then each label pair in order.
    pad(&mut b, 4);
    let p_off = b.len();
    let mut pot = Vec::with_capacity(postings.len() + 1);
    for ((n, v), ids) in
        std::iter::once(((&"", &""), &all)).chain(postings.iter().map(|(k, v)| ((&k.0, &k.1), v)))
    {
        pad(&mut b, 4);
        pot.push((*n, *v, b.len()));
        body.clear();
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids.iter() {
            body.extend_from_slice(&id.to_be_bytes());
        }
        put_section(&mut b, &body);
    }
    let pot_off = b.len();
    body.clear();
    body.extend_from_slice(&(pot.len() as u32).to_be_bytes());
    for (n, v, off) in &pot {
        put_uvarint(&mut body, 2);
        put_str(&mut body, n);
        put_str(&mut body, v);
        put_uvarint(&mut body, *off as u64);
    }
    put_section(&mut b, &body);

    let toc_start = b.len();
    for off in [sym_off, series_off, li_off, lot_off, p_off, pot_off] {
        b.extend_from_slice(&(off as u64).to_be_bytes());
    }
    let c = crc(&b[toc_start..]);
    b.extend_from_slice(&c.to_be_bytes());
    b
}
