//! The `xfs` collector: each mounted XFS filesystem's statistics from sysfs
//! `fs/xfs/<device>/stats/stats`, as node_exporter 1.5 reads them through procfs (the same
//! families, help texts, checks and device names). The host-wide totals (`fs/xfs/stats/stats`,
//! `/proc/fs/xfs/stat`) are not read.

use std::collections::HashMap;

use super::{Error, Node, Out, read_bounded_bytes};

/// The families, each a counter labelled `device`: (line, position on it, name, help).
const FAMILIES: [(&str, usize, &str, &str); 39] = [
    (
        "extent_alloc",
        0,
        "node_xfs_extent_allocation_extents_allocated_total",
        "Number of extents allocated for a filesystem.",
    ),
    (
        "extent_alloc",
        1,
        "node_xfs_extent_allocation_blocks_allocated_total",
        "Number of blocks allocated for a filesystem.",
    ),
    (
        "extent_alloc",
        2,
        "node_xfs_extent_allocation_extents_freed_total",
        "Number of extents freed for a filesystem.",
    ),
    (
        "extent_alloc",
        3,
        "node_xfs_extent_allocation_blocks_freed_total",
        "Number of blocks freed for a filesystem.",
    ),
    (
        "abt",
        0,
        "node_xfs_allocation_btree_lookups_total",
        "Number of allocation B-tree lookups for a filesystem.",
    ),
    (
        "abt",
        1,
        "node_xfs_allocation_btree_compares_total",
        "Number of allocation B-tree compares for a filesystem.",
    ),
    (
        "abt",
        2,
        "node_xfs_allocation_btree_records_inserted_total",
        "Number of allocation B-tree records inserted for a filesystem.",
    ),
    (
        "abt",
        3,
        "node_xfs_allocation_btree_records_deleted_total",
        "Number of allocation B-tree records deleted for a filesystem.",
    ),
    (
        "blk_map",
        0,
        "node_xfs_block_mapping_reads_total",
        "Number of block map for read operations for a filesystem.",
    ),
    (
        "blk_map",
        1,
        "node_xfs_block_mapping_writes_total",
        "Number of block map for write operations for a filesystem.",
    ),
    (
        "blk_map",
        2,
        "node_xfs_block_mapping_unmaps_total",
        "Number of block unmaps (deletes) for a filesystem.",
    ),
    (
        "blk_map",
        3,
        "node_xfs_block_mapping_extent_list_insertions_total",
        "Number of extent list insertions for a filesystem.",
    ),
    (
        "blk_map",
        4,
        "node_xfs_block_mapping_extent_list_deletions_total",
        "Number of extent list deletions for a filesystem.",
    ),
    (
        "blk_map",
        5,
        "node_xfs_block_mapping_extent_list_lookups_total",
        "Number of extent list lookups for a filesystem.",
    ),
    (
        "blk_map",
        6,
        "node_xfs_block_mapping_extent_list_compares_total",
        "Number of extent list compares for a filesystem.",
    ),
    (
        "bmbt",
        0,
        "node_xfs_block_map_btree_lookups_total",
        "Number of block map B-tree lookups for a filesystem.",
    ),
    (
        "bmbt",
        1,
        "node_xfs_block_map_btree_compares_total",
        "Number of block map B-tree compares for a filesystem.",
    ),
    (
        "bmbt",
        2,
        "node_xfs_block_map_btree_records_inserted_total",
        "Number of block map B-tree records inserted for a filesystem.",
    ),
    (
        "bmbt",
        3,
        "node_xfs_block_map_btree_records_deleted_total",
        "Number of block map B-tree records deleted for a filesystem.",
    ),
    (
        "dir",
        0,
        "node_xfs_directory_operation_lookup_total",
        "Number of file name directory lookups which miss the operating systems directory name lookup cache.",
    ),
    (
        "dir",
        1,
        "node_xfs_directory_operation_create_total",
        "Number of times a new directory entry was created for a filesystem.",
    ),
    (
        "dir",
        2,
        "node_xfs_directory_operation_remove_total",
        "Number of times an existing directory entry was created for a filesystem.",
    ),
    (
        "dir",
        3,
        "node_xfs_directory_operation_getdents_total",
        "Number of times the directory getdents operation was performed for a filesystem.",
    ),
    (
        "ig",
        0,
        "node_xfs_inode_operation_attempts_total",
        "Number of times the OS looked for an XFS inode in the inode cache.",
    ),
    (
        "ig",
        1,
        "node_xfs_inode_operation_found_total",
        "Number of times the OS looked for and found an XFS inode in the inode cache.",
    ),
    (
        "ig",
        2,
        "node_xfs_inode_operation_recycled_total",
        "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.",
    ),
    (
        "ig",
        3,
        "node_xfs_inode_operation_missed_total",
        "Number of times the OS looked for an XFS inode in the cache, but did not find it.",
    ),
    (
        "ig",
        4,
        "node_xfs_inode_operation_duplicates_total",
        "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.",
    ),
    (
        "ig",
        5,
        "node_xfs_inode_operation_reclaims_total",
        "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.",
    ),
    (
        "ig",
        6,
        "node_xfs_inode_operation_attribute_changes_total",
        "Number of times the OS explicitly changed the attributes of an XFS inode.",
    ),
    // The kernel writes the write count first.
    (
        "rw",
        1,
        "node_xfs_read_calls_total",
        "Number of read(2) system calls made to files in a filesystem.",
    ),
    (
        "rw",
        0,
        "node_xfs_write_calls_total",
        "Number of write(2) system calls made to files in a filesystem.",
    ),
    (
        "vnodes",
        0,
        "node_xfs_vnode_active_total",
        "Number of vnodes not on free lists for a filesystem.",
    ),
    (
        "vnodes",
        1,
        "node_xfs_vnode_allocate_total",
        "Number of times vn_alloc called for a filesystem.",
    ),
    (
        "vnodes",
        2,
        "node_xfs_vnode_get_total",
        "Number of times vn_get called for a filesystem.",
    ),
    (
        "vnodes",
        3,
        "node_xfs_vnode_hold_total",
        "Number of times vn_hold called for a filesystem.",
    ),
    (
        "vnodes",
        4,
        "node_xfs_vnode_release_total",
        "Number of times vn_rele called for a filesystem.",
    ),
    (
        "vnodes",
        5,
        "node_xfs_vnode_reclaim_total",
        "Number of times vn_reclaim called for a filesystem.",
    ),
    (
        "vnodes",
        6,
        "node_xfs_vnode_remove_total",
        "Number of times vn_remove called for a filesystem.",
    ),
];

/// The lines procfs knows, with the counts it accepts on each: any other count fails the
/// whole collector, even on lines that are not reported.
const COUNTS: [(&str, &[usize]); 22] = [
    ("extent_alloc", &[4]),
    ("abt", &[4]),
    ("blk_map", &[7]),
    ("bmbt", &[4]),
    ("dir", &[4]),
    ("trans", &[3]),
    ("ig", &[7]),
    ("log", &[5]),
    ("push_ail", &[10]),
    ("xstrat", &[2]),
    ("rw", &[2]),
    ("attr", &[4]),
    ("icluster", &[3]),
    // Older kernels write one count fewer here and on `qm`.
    ("vnodes", &[7, 8]),
    ("buf", &[9]),
    ("xpc", &[3]),
    ("abtb2", &[15]),
    ("abtc2", &[15]),
    ("bmbt2", &[15]),
    ("ibt2", &[15]),
    ("qm", &[8, 9]),
    ("debug", &[1]),
];

/// A count as Go's `ParseUint(s, 10, bits)` takes it: decimal digits only (no sign), at most
/// `max`.
fn count(s: &str, max: u64) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("parsing {s:?}: invalid syntax"));
    }
    s.parse::<u64>()
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| format!("parsing {s:?}: value out of range"))
}

/// Each line's counts by its label, the last line of a label winning. Every count must be a
/// u32 (the extended precision `xpc` line's u64s), on every line, known or not.
fn parse(text: &str) -> Result<HashMap<&str, Vec<u64>>, String> {
    let mut lines = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A label alone, or an empty line, is skipped.
        let [label, values @ ..] = f.as_slice() else {
            continue;
        };
        if values.is_empty() {
            continue;
        }
        let max = if *label == "xpc" {
            u64::MAX
        } else {
            u32::MAX.into()
        };
        let v = values
            .iter()
            .map(|s| count(s, max))
            .collect::<Result<Vec<u64>, String>>()?;
        if let Some((_, ok)) = COUNTS.iter().find(|(l, _)| l == label)
            && !ok.contains(&v.len())
        {
            return Err(format!(
                "incorrect number of values for XFS {label} stats: {}",
                v.len()
            ));
        }
        lines.insert(*label, v);
    }
    Ok(lines)
}

/// Every `fs/xfs/*/stats/stats` in name order, as a glob finds them (the entry need only
/// exist: one that cannot be read fails the collector). No XFS filesystem is success with no
/// samples, as node_exporter reports it; one file that fails to parse fails them all.
pub(super) fn xfs(n: &Node, out: &mut Out) -> Result<(), Error> {
    let root = n.sys("fs/xfs");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut all = Vec::new();
    for dev in names {
        let path = root.join(&dev).join("stats/stats");
        // Not a filesystem's directory (the module's own `stats`, say).
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        let bytes = read_bounded_bytes(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let lines = parse(&text).map_err(|what| Error::Parse {
            path: path.clone(),
            what: format!("failed to retrieve XFS stats: {what}"),
        })?;
        // Only what the families need, so `text` can go.
        let values: Vec<u64> = FAMILIES
            .iter()
            .map(|(line, pos, _, _)| {
                lines
                    .get(line)
                    .and_then(|v| v.get(*pos))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        all.push((dev, values));
    }
    for (dev, values) in &all {
        for ((_, _, name, help), v) in FAMILIES.iter().zip(values) {
            out.counter(name, help, &[("device", dev.as_str())], *v as f64);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_checked_as_procfs_checks_them() {
        let ok = "extent_alloc 1 2 3 4\nrw 5 6\nvnodes 1 2 3 4 5 6 7\nqm 1 2 3 4 5 6 7 8 9\n\
                  fibt2 1 2 3\nfoo\n\nxpc 1 2 18446744073709551615\nrw 7 8\n";
        let l = parse(ok).unwrap();
        assert_eq!(l["rw"], vec![7, 8]);
        assert_eq!(l["xpc"][2], u64::MAX);
        for bad in [
            "rw 1 2 3\n",
            "vnodes 1 2 3 4 5 6\n",
            "qm 1 2 3 4 5 6 7\n",
            "abtb2 1 2\n",
            "debug 0 1\n",
            "defer_relog x\n",
            "defer_relog 4294967296\n",
            "rw +1 2\n",
            "rw 1 -0\n",
            "xpc 1 2 18446744073709551616\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
