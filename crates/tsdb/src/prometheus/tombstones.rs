//! A block's `tombstones` file (`tsdb/docs/format/tombstones.md`): a 5-byte header, then
//! `series ref <uvarint> | mint <varint> | maxt <varint>` entries, then a CRC32 of them.

use std::collections::HashMap;
use std::path::Path;

use super::{Dec, TOMBSTONES_MAGIC, crc};

/// Deleted ranges (inclusive) by series ID. A block without the file has none.
pub fn read(path: &Path) -> Result<HashMap<u64, Vec<(i64, i64)>>, String> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("tombstones: {e}")),
    };
    if b.len() < 9 || u32::from_be_bytes(b[..4].try_into().unwrap_or_default()) != TOMBSTONES_MAGIC
    {
        return Err("tombstones: bad magic".into());
    }
    if b[4] != 1 {
        return Err(format!("tombstones: unknown format version {}", b[4]));
    }
    let body = &b[5..b.len() - 4];
    let want = u32::from_be_bytes(b[b.len() - 4..].try_into().unwrap_or_default());
    if crc(body) != want {
        return Err("tombstones: checksum mismatch".into());
    }
    let mut out: HashMap<u64, Vec<(i64, i64)>> = HashMap::new();
    let mut d = Dec::new(body, 0);
    while d.remaining() > 0 {
        let bad = "tombstones: truncated entry";
        let r = d.uvarint().ok_or(bad)?;
        let mint = d.varint().ok_or(bad)?;
        let maxt = d.varint().ok_or(bad)?;
        out.entry(r).or_default().push((mint, maxt));
    }
    Ok(out)
}

/// An empty tombstones file, as Prometheus writes in every block.
pub fn empty() -> Vec<u8> {
    let mut b = TOMBSTONES_MAGIC.to_be_bytes().to_vec();
    b.push(1);
    b.extend_from_slice(&crc(&[]).to_be_bytes());
    b
}

/// Deleted ranges sorted and merged, so a sample is tested by one binary search (a file of many
/// ranges must not cost samples x ranges).
pub fn normalize(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.retain(|(a, b)| a <= b);
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether `t` is inside one of `ranges` (as [`normalize`] returns them).
pub fn deleted(ranges: &[(i64, i64)], t: i64) -> bool {
    let i = ranges.partition_point(|&(a, _)| a <= t);
    i > 0 && ranges[i - 1].1 >= t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_lookups_match_a_scan() {
        let raw = vec![(10, 20), (15, 30), (40, 40), (50, 45), (-5, 0), (31, 35)];
        let n = normalize(raw.clone());
        assert_eq!(n, vec![(-5, 0), (10, 35), (40, 40)]);
        for t in -10..60 {
            let scan = raw.iter().any(|&(a, b)| a <= b && t >= a && t <= b);
            assert_eq!(deleted(&n, t), scan, "t={t}");
        }
    }
}
