//! Storage and fabric devices this machine lacks, built as the kernel shows them in sysfs and
//! procfs, for the node exporter's comparison with node_exporter 1.5 (bcache, btrfs,
//! fibrechannel, infiniband, nvme, tapestats, xfs, zfs). Values were chosen so that each
//! collector's parsing quirks are exercised; node_exporter reading the same tree is the referee.

use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Write every storage fixture under `root` (`proc/`, `sys/`).
pub fn write_all(root: &Path) {
    let (p, s) = ("proc", "sys");
    // bcache: a cache set with one backing and one cache device.
    {
        // bcache: one cache set with a backing disk (sdb) and an NVMe cache device, linked from
        // /sys/fs/bcache/<set uuid>/bdev0 and cache0 into the block devices as the kernel links
        // them, sizes as bcache writes them (bch_hprint's "20.4G", which procfs reads as
        // (20 + 4/10.24) GiB). The set's own stats_* and the backing device's differ, so
        // reporting one for the other shows; cache_readaheads is 0, which 1.5 still reports.
        // register* are the bcache control files beside the sets.
        {
            let bc = format!("{s}/fs/bcache");
            let set = format!("{bc}/deaddd54-c735-46d5-868e-f331c5fd7c74");
            write(root, &format!("{bc}/register"), "");
            write(root, &format!("{bc}/register_quiet"), "");
            for (k, v) in [
                ("average_key_size", "24.7k"),
                ("btree_cache_size", "118.5M"),
                ("cache_available_percent", "88"),
                ("congested", "0"),
                ("root_usage_percent", "3"),
                ("tree_depth", "2"),
                ("block_size", "0.5k"),
                ("bucket_size", "512.0k"),
                ("errors", "[unregister] panic"),
                ("internal/active_journal_entries", "1"),
                ("internal/btree_nodes", "7468"),
                ("internal/btree_read_average_duration_us", "3182"),
                ("internal/cache_read_races", "11"),
                ("internal/btree_used_percent", "15"),
            ] {
                write(root, &format!("{set}/{k}"), &format!("{v}\n"));
            }
            let bdev = format!(
                "{s}/devices/pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0/block/sdb/bcache"
            );
            let stats = [
                "bypassed",
                "cache_bypass_hits",
                "cache_bypass_misses",
                "cache_hits",
                "cache_miss_collisions",
                "cache_misses",
                "cache_readaheads",
                "cache_hit_ratio",
            ];
            for (dir, values) in [
                (
                    format!("{set}/stats_total"),
                    [
                        "1.1T", "1730553", "41258", "77316532", "1262", "9876543", "0", "88",
                    ],
                ),
                (
                    format!("{set}/stats_five_minute"),
                    ["511.9M", "112", "3", "40533", "0", "5020", "0", "88"],
                ),
                (
                    format!("{bdev}/stats_total"),
                    [
                        "1.0T", "1730001", "41200", "77000111", "1200", "9800000", "0", "88",
                    ],
                ),
                (
                    format!("{bdev}/stats_five_minute"),
                    ["500.2M", "110", "2", "40000", "0", "5000", "0", "88"],
                ),
            ] {
                for (k, v) in stats.into_iter().zip(values) {
                    write(root, &format!("{dir}/{k}"), &format!("{v}\n"));
                }
            }
            for (k, v) in [
                ("dirty_data", "20.4G"),
                ("state", "dirty"),
                ("cache_mode", "writethrough [writeback] writearound none"),
                ("sequential_cutoff", "4.0M"),
                (
                    "writeback_rate_debug",
                    "rate:\t\t1.2G/sec\ndirty:\t\t20.4G\ntarget:\t\t19.3G\nproportional:\t27.5M\nintegral:\t-1.3M\nchange:\t\t-38.6M/sec\nnext io:\t-2133ms",
                ),
            ] {
                write(root, &format!("{bdev}/{k}"), &format!("{v}\n"));
            }
            let cache = format!(
                "{s}/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1/bcache"
            );
            for (k, v) in [
                ("io_errors", "0"),
                ("metadata_written", "25.3G"),
                ("written", "1.6T"),
                ("btree_written", "24.9G"),
                ("cache_replacement_policy", "[lru] fifo random"),
                (
                    "priority_stats",
                    "Unused:\t\t7%\nClean:\t\t72%\nDirty:\t\t20%\nMetadata:\t1%\nAverage:\t525\nSectors per Q:\t61008512\nQuantiles:\t[28 60 92 124 156 188 220 252 284 316 348 380 412 451 503 539 571 603 635 667 699 731 763 795 827 859 891 923 955 987 1019]",
                ),
            ] {
                write(root, &format!("{cache}/{k}"), &format!("{v}\n"));
            }
            for (link, target) in [("bdev0", &bdev), ("cache0", &cache)] {
                std::os::unix::fs::symlink(
                    format!("../../..{}", target.strip_prefix(s).unwrap()),
                    root.join(format!("{set}/{link}")),
                )
                .unwrap();
            }
        }
    }
    // btrfs: a two-device filesystem mid-conversion (data single and raid1), and an older kernel's.
    {
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/label"),
            "vigil data\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/metadata_uuid"),
            "0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/nodesize"),
            "16384\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/sectorsize"),
            "4096\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/clone_alignment"),
            "4096\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/quota_override"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/generation"),
            "10412\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/commit_stats"),
            "commits 1207\ncur_commit_ms 0\nlast_commit_ms 12\nmax_commit_ms 460\ntotal_commit_ms 38125\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/features/extended_iref"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/features/free_space_tree"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/features/no_holes"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/features/skinny_metadata"),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/global_rsv_size"
            ),
            "16777216\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/global_rsv_reserved"
            ),
            "16711680\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/bytes_may_use"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/bytes_readonly"
            ),
            "65536\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/bytes_reserved"
            ),
            "4096\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/bytes_used"
            ),
            "6442450944\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/disk_used"),
            "9663676416\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/disk_total"
            ),
            "13958643712\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/flags"),
            "1\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/total_bytes"
            ),
            "8589934592\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/single/total_bytes"
            ),
            "4294967296\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/single/used_bytes"
            ),
            "3221225472\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/raid1/total_bytes"
            ),
            "4294967296\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/data/raid1/used_bytes"
            ),
            "3221225472\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/bytes_may_use"
            ),
            "12582912\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/bytes_readonly"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/bytes_reserved"
            ),
            "98304\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/bytes_used"
            ),
            "412073984\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/disk_used"
            ),
            "824147968\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/disk_total"
            ),
            "2147483648\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/flags"),
            "4\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/total_bytes"
            ),
            "1073741824\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/raid1/total_bytes"
            ),
            "1073741824\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/metadata/raid1/used_bytes"
            ),
            "412073984\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/bytes_may_use"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/bytes_readonly"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/bytes_reserved"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/bytes_used"
            ),
            "16384\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/disk_used"
            ),
            "32768\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/disk_total"
            ),
            "16777216\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/flags"),
            "2\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/total_bytes"
            ),
            "8388608\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/raid1/total_bytes"
            ),
            "8388608\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/allocation/system/raid1/used_bytes"
            ),
            "16384\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devinfo/1/error_stats"),
            "write_errs 0\nread_errs 3\nflush_errs 0\ncorruption_errs 1\ngeneration_errs 0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devinfo/2/error_stats"),
            "write_errs 0\nread_errs 0\nflush_errs 0\ncorruption_errs 0\ngeneration_errs 0\n",
        );
        write(
            root,
            &format!("{s}/devices/virtual/block/sdx/size"),
            "209715200\n",
        );
        write(
            root,
            &format!("{s}/devices/virtual/block/sdy/size"),
            "419430400\n",
        );
        write(
            root,
            &format!("{s}/devices/virtual/block/nvx0n1p3/size"),
            "97656250\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/label"),
            "\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/nodesize"),
            "16384\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/sectorsize"),
            "4096\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/clone_alignment"),
            "4096\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/quota_override"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/features/extended_iref"),
            "0\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/features/skinny_metadata"),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/global_rsv_size"
            ),
            "3670016\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/global_rsv_reserved"
            ),
            "3670016\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/bytes_may_use"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/bytes_readonly"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/bytes_reserved"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/bytes_used"
            ),
            "1234567168\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/disk_used"),
            "1234567168\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/disk_total"
            ),
            "2155872256\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/flags"),
            "1\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/total_bytes"
            ),
            "2155872256\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/single/total_bytes"
            ),
            "2155872256\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/data/single/used_bytes"
            ),
            "1234567168\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/bytes_may_use"
            ),
            "3670016\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/bytes_readonly"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/bytes_reserved"
            ),
            "16384\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/bytes_used"
            ),
            "60030976\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/disk_used"
            ),
            "120061952\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/disk_total"
            ),
            "536870912\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/flags"),
            "4\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/total_bytes"
            ),
            "268435456\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/dup/total_bytes"
            ),
            "268435456\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/metadata/dup/used_bytes"
            ),
            "60030976\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/bytes_may_use"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/bytes_readonly"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/bytes_reserved"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/bytes_used"
            ),
            "16384\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/disk_used"
            ),
            "32768\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/disk_total"
            ),
            "16777216\n",
        );
        write(
            root,
            &format!("{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/flags"),
            "2\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/total_bytes"
            ),
            "8388608\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/total_bytes_pinned"
            ),
            "0\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/dup/total_bytes"
            ),
            "8388608\n",
        );
        write(
            root,
            &format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/allocation/system/dup/used_bytes"
            ),
            "16384\n",
        );
        write(root, &format!("{s}/fs/btrfs/features/compress_zstd"), "0\n");
        write(
            root,
            &format!("{s}/fs/btrfs/features/free_space_tree"),
            "0\n",
        );
        write(root, &format!("{s}/fs/btrfs/features/metadata_uuid"), "0\n");
        write(root, &format!("{s}/fs/btrfs/features/raid1c34"), "0\n");
        std::fs::create_dir_all(root.join(format!(
            "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devices"
        )))
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../../devices/virtual/block/sdx",
            root.join(format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devices/sdx"
            )),
        )
        .unwrap();
        std::fs::create_dir_all(root.join(format!(
            "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devices"
        )))
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../../devices/virtual/block/sdy",
            root.join(format!(
                "{s}/fs/btrfs/0c9a5d3e-7b61-4f2a-9e2d-5b8e41c7a1f0/devices/sdy"
            )),
        )
        .unwrap();
        std::fs::create_dir_all(root.join(format!(
            "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/devices"
        )))
        .unwrap();
        std::os::unix::fs::symlink(
            "../../../../devices/virtual/block/nvx0n1p3",
            root.join(format!(
                "{s}/fs/btrfs/e4b7c2a9-1d3f-4c8b-a6e5-92f0d1b3c4a7/devices/nvx0n1p3"
            )),
        )
        .unwrap();
    }
    // fibrechannel: fc hosts with their statistics.
    {
        // Fibre Channel hosts: an online one with hex counters (dumped_frames all ones, as firmware
        // writes a counter it does not implement: left out), driver counters that are not
        // reported and the write-only reset_statistics; a down one whose driver lacks most
        // counters (reported as 0) and writes some in decimal and octal (`010` is eight). The
        // names and port ID lose their first two characters (`0x`).
        for (h, f, v) in [
            ("host0", "speed", "16 Gbit"),
            ("host0", "port_state", "Online"),
            ("host0", "port_type", "NPort (fabric via point-to-point)"),
            ("host0", "node_name", "0x20000090fa8e1b2c"),
            ("host0", "port_id", "0x010e00"),
            ("host0", "port_name", "0x10000090fa8e1b2c"),
            ("host0", "fabric_name", "0x100050eb1a2b3c4d"),
            ("host0", "dev_loss_tmo", "30"),
            (
                "host0",
                "symbolic_name",
                "Emulex LPe16002B-M6 FV12.8.340.8 DV12.8.0.5 HN:node1 OS:Linux",
            ),
            ("host0", "supported_classes", "Class 3"),
            ("host0", "supported_speeds", "4 Gbit, 8 Gbit, 16 Gbit"),
            ("host0", "tgtid_bind_type", "wwpn (World Wide Port Name)"),
            ("host0", "power/control", "auto"),
            ("host0", "statistics/dumped_frames", "0xffffffffffffffff"),
            ("host0", "statistics/error_frames", "0x0"),
            ("host0", "statistics/fcp_packet_aborts", "0x1a"),
            ("host0", "statistics/invalid_crc_count", "0x2"),
            ("host0", "statistics/invalid_tx_word_count", "0x8"),
            ("host0", "statistics/link_failure_count", "0x9"),
            ("host0", "statistics/loss_of_signal_count", "0x11"),
            ("host0", "statistics/loss_of_sync_count", "0x10"),
            ("host0", "statistics/nos_count", "0x12"),
            ("host0", "statistics/rx_frames", "0x3f1e2d"),
            ("host0", "statistics/rx_words", "0x1a2b3c4d5e"),
            ("host0", "statistics/seconds_since_last_reset", "0x7f3a"),
            ("host0", "statistics/tx_frames", "0x2c1b0a"),
            ("host0", "statistics/tx_words", "0xfedcba98"),
            ("host0", "statistics/lip_count", "0x1"),
            ("host0", "statistics/fcp_input_megabytes", "0x1d4c"),
            (
                "host0",
                "statistics/fcp_input_requests",
                "0xffffffffffffffff",
            ),
            ("host0", "statistics/reset_statistics", ""),
            ("host1", "speed", "unknown"),
            ("host1", "port_state", "Linkdown"),
            ("host1", "port_type", "Unknown"),
            ("host1", "node_name", "0x20000090fa8e1b2d"),
            ("host1", "port_id", "0x000000"),
            ("host1", "port_name", "0x10000090fa8e1b2d"),
            ("host1", "fabric_name", "0x0"),
            ("host1", "dev_loss_tmo", "30"),
            (
                "host1",
                "symbolic_name",
                "Emulex LPe16002B-M6 FV12.8.340.8 DV12.8.0.5 HN:node1 OS:Linux",
            ),
            ("host1", "supported_classes", "Class 3"),
            ("host1", "supported_speeds", "4 Gbit, 8 Gbit, 16 Gbit"),
            ("host1", "power/control", "auto"),
            ("host1", "statistics/dumped_frames", "0"),
            ("host1", "statistics/error_frames", "12"),
            ("host1", "statistics/invalid_crc_count", "010"),
            ("host1", "statistics/link_failure_count", "0x0"),
            ("host1", "statistics/rx_frames", "0x0"),
            ("host1", "statistics/tx_frames", "0x0"),
            ("host1", "statistics/seconds_since_last_reset", "0x15180"),
        ] {
            write(
                root,
                &format!("{s}/class/fc_host/{h}/{f}"),
                &format!("{v}\n"),
            );
        }
    }
    // infiniband: an mlx5 HCA with two ports and an mlx4 one.
    {
        // InfiniBand: a ConnectX-5 (mlx5_0, its class entry a link into the PCI device as the
        // kernel makes it) with an active EDR port and a disabled one, its RDMA hw_counters
        // (which node_exporter 1.5 does not read), and a ConnectX-3 (mlx4_0) as kernels before
        // 4.5 expose it: 64-bit counters in counters_ext, one counter "N/A (no PMA)" (skipped),
        // a port_rcv_discards counter and an initialising 1X SDR port. Every counter has its own value, so one reported under
        // another's name shows; port_*_data are in 4-byte words, reported times 4.
        {
            let ib5 = format!("{s}/devices/pci0000:00/0000:00:02.0/0000:3b:00.0/infiniband/mlx5_0");
            for (k, v) in [
                ("board_id", "MT_0000000008"),
                ("fw_ver", "16.35.2000"),
                ("hca_type", "MT4119"),
                ("node_type", "1: CA"),
                ("node_guid", "9803:9b03:0067:26f8"),
            ] {
                write(root, &format!("{ib5}/{k}"), &format!("{v}\n"));
            }
            let ib5_counters = [
                ("VL15_dropped", 101),
                ("excessive_buffer_overrun_errors", 102),
                ("link_downed", 103),
                ("link_error_recovery", 104),
                ("local_link_integrity_errors", 105),
                ("multicast_rcv_packets", 1473),
                ("multicast_xmit_packets", 1107),
                ("port_rcv_constraint_errors", 106),
                ("port_rcv_data", 4312904471040u64),
                ("port_rcv_errors", 107),
                ("port_rcv_packets", 10839277461),
                ("port_rcv_remote_physical_errors", 108),
                ("port_rcv_switch_relay_errors", 109),
                ("port_xmit_constraint_errors", 110),
                ("port_xmit_data", 4308419182694),
                ("port_xmit_discards", 111),
                ("port_xmit_packets", 10834629210),
                ("port_xmit_wait", 3405628),
                ("symbol_error", 112),
                ("unicast_rcv_packets", 10837804002),
                ("unicast_xmit_packets", 10834629197),
            ];
            for (port, state, phys, rate, active) in [
                (1, "4: ACTIVE", "5: LinkUp", "100 Gb/sec (4X EDR)", true),
                (2, "1: DOWN", "3: Disabled", "10 Gb/sec (4X SDR)", false),
            ] {
                let d = format!("{ib5}/ports/{port}");
                write(root, &format!("{d}/state"), &format!("{state}\n"));
                write(root, &format!("{d}/phys_state"), &format!("{phys}\n"));
                write(root, &format!("{d}/rate"), &format!("{rate}\n"));
                write(root, &format!("{d}/link_layer"), "InfiniBand\n");
                for (i, (k, v)) in ib5_counters.into_iter().enumerate() {
                    // The down port's counters: small, and still distinct.
                    let v = if active { v } else { 200 + i as u64 };
                    write(root, &format!("{d}/counters/{k}"), &format!("{v}\n"));
                }
                for (k, v) in [
                    ("out_of_buffer", 5),
                    ("rnr_nak_retry_err", 6),
                    ("np_cnp_sent", 7),
                ] {
                    write(root, &format!("{d}/hw_counters/{k}"), &format!("{v}\n"));
                }
            }
            std::fs::create_dir_all(root.join(format!("{s}/class/infiniband"))).unwrap();
            std::os::unix::fs::symlink(
                "../../devices/pci0000:00/0000:00:02.0/0000:3b:00.0/infiniband/mlx5_0",
                root.join(format!("{s}/class/infiniband/mlx5_0")),
            )
            .unwrap();
            let ib4 = format!("{s}/class/infiniband/mlx4_0");
            for (k, v) in [
                ("board_id", "MT_1090120019"),
                ("fw_ver", "2.42.5000"),
                ("hca_type", "MT4099"),
            ] {
                write(root, &format!("{ib4}/{k}"), &format!("{v}\n"));
            }
            for (k, v) in [
                ("state", "4: ACTIVE"),
                ("phys_state", "5: LinkUp"),
                ("rate", "56 Gb/sec (4X FDR)"),
                ("counters/VL15_dropped", "N/A (no PMA)"),
                ("counters/link_downed", "3"),
                ("counters/port_rcv_discards", "4"),
                ("counters/port_rcv_data", "1000"),
                ("counters/port_xmit_data", "2000"),
                ("counters_ext/port_multicast_rcv_packets", "301"),
                ("counters_ext/port_multicast_xmit_packets", "302"),
                ("counters_ext/port_rcv_data_64", "3030303030"),
                ("counters_ext/port_rcv_packets_64", "304"),
                ("counters_ext/port_unicast_rcv_packets", "305"),
                ("counters_ext/port_unicast_xmit_packets", "306"),
                ("counters_ext/port_xmit_data_64", "3070707070"),
                ("counters_ext/port_xmit_packets_64", "308"),
            ] {
                write(root, &format!("{ib4}/ports/1/{k}"), &format!("{v}\n"));
            }
            for (k, v) in [
                ("state", "2: INIT"),
                ("phys_state", "5: LinkUp"),
                ("rate", "2.5 Gb/sec (1X SDR)"),
                ("counters/symbol_error", "0"),
            ] {
                write(root, &format!("{ib4}/ports/2/{k}"), &format!("{v}\n"));
            }
        }
    }
    // nvme: two controllers.
    {
        // NVMe controllers, the model and serial padded with spaces as the kernel pads them (the
        // controller ID, transport and namespaces are there but not read by 1.5).
        for (dev, firmware, model, serial, state, cntlid) in [
            (
                "nvme0",
                "2B2QEXM7",
                "Samsung SSD 970 EVO Plus 1TB",
                "S4EWNX0R123456A",
                "live",
                "4",
            ),
            (
                "nvme1",
                "GPJA0B3Q",
                "KXG60ZNV512G TOSHIBA",
                "Y9SS10DYTYYT",
                "connecting",
                "1",
            ),
        ] {
            let d = format!("{s}/class/nvme/{dev}");
            write(root, &format!("{d}/firmware_rev"), &format!("{firmware}\n"));
            write(root, &format!("{d}/model"), &format!("{model:<40}\n"));
            write(root, &format!("{d}/serial"), &format!("{serial:<20}\n"));
            write(root, &format!("{d}/state"), &format!("{state}\n"));
            write(root, &format!("{d}/cntlid"), &format!("{cntlid}\n"));
            write(root, &format!("{d}/transport"), "pcie\n");
            write(root, &format!("{d}/{dev}n1/size"), "1953525168\n");
        }
    }
    // tapestats: tape drives with their mode devices.
    {
        // SCSI tape drives (times in ns). The no-rewind and mode devices of each drive (nst0,
        // st0a, st0l, st0m, nst0a) repeat its counters and are not read.
        for (t, stats) in [
            (
                "st0",
                [
                    ("in_flight", "1"),
                    ("io_ns", "9247011087720"),
                    ("other_cnt", "1409"),
                    ("read_byte_cnt", "979383912"),
                    ("read_cnt", "3741"),
                    ("read_ns", "33788355744"),
                    ("resid_cnt", "19"),
                    ("write_byte_cnt", "1496259056"),
                    ("write_cnt", "53772916"),
                    ("write_ns", "5233597394395"),
                ],
            ),
            (
                "st1",
                [
                    ("in_flight", "0"),
                    ("io_ns", "0"),
                    ("other_cnt", "2"),
                    ("read_byte_cnt", "0"),
                    ("read_cnt", "0"),
                    ("read_ns", "0"),
                    ("resid_cnt", "0"),
                    ("write_byte_cnt", "65536"),
                    ("write_cnt", "1"),
                    ("write_ns", "123456789"),
                ],
            ),
        ] {
            for (f, v) in stats {
                write(
                    root,
                    &format!("{s}/class/scsi_tape/{t}/stats/{f}"),
                    &format!("{v}\n"),
                );
                for alias in [
                    format!("n{t}"),
                    format!("{t}a"),
                    format!("{t}l"),
                    format!("{t}m"),
                    format!("n{t}a"),
                ] {
                    write(
                        root,
                        &format!("{s}/class/scsi_tape/{alias}/stats/{f}"),
                        "7\n",
                    );
                }
            }
            write(root, &format!("{s}/class/scsi_tape/{t}/options"), "0x1\n");
        }
    }
    // xfs: two filesystems, and the host-wide files node_exporter 1.5 does not read.
    {
        write(
            root,
            &format!("{s}/fs/xfs/sda1/stats/stats"),
            "extent_alloc 4736 31835 120 977\nabt 11 22 33 44\nblk_map 5967 9771 4566 9213 154 34002 7\nbmbt 101 102 103 104\ndir 5589 5590 17 2\ntrans 2 23952 0\nig 5590 12 3 5578 1 5589 42\nlog 58 3524 2 10 3\npush_ail 23954 0 1016 289 0 1 0 175 0 1\nxstrat 4566 0\nrw 5066 4294967295\nattr 5510 0 0 0\nicluster 0 178 5590\nvnodes 1 201 202 203 5589 5588 5587 9\nbuf 47636 302 47337 42691 0 299 0 0 40\nabtb2 4803 5339 35 36 0 0 0 0 0 0 0 0 0 0 160\nabtc2 18117 15358 4735 4736 0 0 0 0 0 0 0 0 0 0 1000\nbmbt2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nibt2 5679 21628 89 0 0 0 0 0 0 0 0 0 0 0 0\nfibt2 6771 6682 89 86 0 0 0 0 0 0 0 0 0 0 0\nrmapbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrefcntbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrmapbt_mem 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrcbagbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nqm 0 0 0 0 0 0 0 0\nxpc 127148032 116069481 18446744073709551615\ndefer_relog 0\ndebug 0\n",
        );
        write(root, &format!("{s}/fs/xfs/sda1/stats/stats_clear"), "0\n");
        write(
            root,
            &format!("{s}/fs/xfs/sda1/log/log_head_lsn"),
            "1:1130\n",
        );
        write(
            root,
            &format!("{s}/fs/xfs/dm-0/stats/stats"),
            "extent_alloc 1000001 1000002 1000003 1000004\nabt 2000001 2000002 2000003 2000004\nblk_map 3000001 3000002 3000003 3000004 3000005 3000006 3000007\nbmbt 4000001 4000002 4000003 4000004\ndir 5000001 5000002 5000003 5000004\ntrans 6000001 6000002 6000003\nig 7000001 7000002 7000003 7000004 7000005 7000006 7000007\nlog 8000001 8000002 8000003 8000004 8000005\npush_ail 1 2 3 4 5 6 7 8 9 10\nxstrat 11 12\nrw 9000001 9000002\nattr 13 14 15 16\nicluster 17 18 19\nvnodes 9100001 9100002 9100003 9100004 9100005 9100006 9100007\nbuf 1 2 3 4 5 6 7 8 9\nabtb2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\nabtc2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\nbmbt2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\nibt2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\nqm 1 2 3 4 5 6 7 8 9\nxpc 1 2 3\ndebug 0\n",
        );
        write(
            root,
            &format!("{s}/fs/xfs/stats/stats"),
            "extent_alloc 777777 31835 120 977\nabt 11 22 33 44\nblk_map 5967 9771 4566 9213 154 34002 7\nbmbt 101 102 103 104\ndir 5589 5590 17 2\ntrans 2 23952 0\nig 5590 12 3 5578 1 5589 42\nlog 58 3524 2 10 3\npush_ail 23954 0 1016 289 0 1 0 175 0 1\nxstrat 4566 0\nrw 5066 4294967295\nattr 5510 0 0 0\nicluster 0 178 5590\nvnodes 1 201 202 203 5589 5588 5587 9\nbuf 47636 302 47337 42691 0 299 0 0 40\nabtb2 4803 5339 35 36 0 0 0 0 0 0 0 0 0 0 160\nabtc2 18117 15358 4735 4736 0 0 0 0 0 0 0 0 0 0 1000\nbmbt2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nibt2 5679 21628 89 0 0 0 0 0 0 0 0 0 0 0 0\nfibt2 6771 6682 89 86 0 0 0 0 0 0 0 0 0 0 0\nrmapbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrefcntbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrmapbt_mem 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrcbagbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nqm 0 0 0 0 0 0 0 0\nxpc 127148032 116069481 18446744073709551615\ndefer_relog 0\ndebug 0\n",
        );
        write(root, &format!("{s}/fs/xfs/stats/stats_clear"), "0\n");
        write(
            root,
            &format!("{p}/fs/xfs/stat"),
            "extent_alloc 777777 31835 120 977\nabt 11 22 33 44\nblk_map 5967 9771 4566 9213 154 34002 7\nbmbt 101 102 103 104\ndir 5589 5590 17 2\ntrans 2 23952 0\nig 5590 12 3 5578 1 5589 42\nlog 58 3524 2 10 3\npush_ail 23954 0 1016 289 0 1 0 175 0 1\nxstrat 4566 0\nrw 5066 4294967295\nattr 5510 0 0 0\nicluster 0 178 5590\nvnodes 1 201 202 203 5589 5588 5587 9\nbuf 47636 302 47337 42691 0 299 0 0 40\nabtb2 4803 5339 35 36 0 0 0 0 0 0 0 0 0 0 160\nabtc2 18117 15358 4735 4736 0 0 0 0 0 0 0 0 0 0 1000\nbmbt2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nibt2 5679 21628 89 0 0 0 0 0 0 0 0 0 0 0 0\nfibt2 6771 6682 89 86 0 0 0 0 0 0 0 0 0 0 0\nrmapbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrefcntbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrmapbt_mem 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nrcbagbt 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\nqm 0 0 0 0 0 0 0 0\nxpc 127148032 116069481 18446744073709551615\ndefer_relog 0\ndebug 0\n",
        );
    }
    // zfs: the module-wide kstats and pool tank.
    {
        // OpenZFS kstats (0.8-style, with a pool's `io`): rows of types 1 and 3 (int32, int64),
        // which node_exporter 1.5 skips, `fm`'s dashed names, and two datasets of pool tank.
        write(
            root,
            &format!("{p}/spl/kstat/zfs/arcstats"),
            "13 1 0x01 17 4624 8574199648 1117448290683735\nname                            type data\nhits                            4    8772612\nmisses                          4    604635\ndemand_data_hits                4    7221032\ndemand_data_misses              4    73300\ndemand_metadata_hits            4    1464353\ndemand_metadata_misses          4    498170\nprefetch_data_hits              4    3615\nprefetch_data_misses            4    17094\nsize                            4    1603939792\nc                               4    1610612736\nc_min                           4    33554432\nc_max                           4    8338591744\narc_no_grow                     4    0\narc_need_free                   1    0\nmemory_available_bytes          3    -71856128\narc_meta_used                   4    325154784\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/abdstats"),
            "31 1 0x01 3 816 8574199648 1117448290683735\nname                            type data\nstruct_size                     4    2123456\nlinear_cnt                      4    62\nscatter_cnt                     4    21\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/dbufstats"),
            "32 1 0x01 2 544 8574199648 1117448290683735\nname                            type data\ncache_count                     4    8\ncache_size_bytes                4    21504\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/dmu_tx"),
            "5 1 0x01 3 816 8574199648 1117448290683735\nname                            type data\ndmu_tx_assigned                 4    3532844\ndmu_tx_delay                    4    0\ndmu_tx_error                    4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/dnodestats"),
            "33 1 0x01 2 544 8574199648 1117448290683735\nname                            type data\ndnode_hold_dbuf_hold            4    0\ndnode_hold_alloc_hits           4    3347\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/fm"),
            "0 1 0x01 4 1088 8574199648 1117448290683735\nname                            type data\nerpt-dropped                    4    18\nerpt-set-failed                 4    0\nfmri-set-failed                 4    0\npayload-set-failed              4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/vdev_cache_stats"),
            "8 1 0x01 3 816 8574199648 1117448290683735\nname                            type data\ndelegations                     4    40\nhits                            4    0\nmisses                          4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/vdev_mirror_stats"),
            "18 1 0x01 2 544 8574199648 1117448290683735\nname                            type data\npreferred_found                 4    0\npreferred_not_found             4    94\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/xuio_stats"),
            "2 1 0x01 2 544 8574199648 1117448290683735\nname                            type data\nonloan_read_buf                 4    32\nonloan_write_buf                4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/zfetchstats"),
            "3 1 0x01 3 816 8574199648 1117448290683735\nname                            type data\nhits                            4    7067992\nmisses                          4    11\nmax_streams                     4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/zil"),
            "7 1 0x01 3 816 8574199648 1117448290683735\nname                            type data\nzil_commit_count                4    10\nzil_commit_writer_count         4    0\nzil_itx_count                   4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/tank/io"),
            "12 3 0x00 1 80 2245385329 1117448307254413\nnread    nwritten reads    writes   wtime    wlentime wupdate  rtime    rlentime rupdate  wcnt     rcnt\n1884160  3206144  22       132      7155162  104112268 8164395700 7155162  104112268 8164395700 0        0\n",
        );
        write(root, &format!("{p}/spl/kstat/zfs/tank/state"), "ONLINE\n");
        write(
            root,
            &format!("{p}/spl/kstat/zfs/tank/objset-0x36"),
            "49 1 0x01 7 2160 5214787391 74985436356\nname                            type data\ndataset_name                    7    tank\nwrites                          4    8855\nnwritten                        4    140553\nreads                           4    28\nnread                           4    67\nnunlinks                        4    0\nnunlinked                       4    0\n",
        );
        write(
            root,
            &format!("{p}/spl/kstat/zfs/tank/objset-0x8c"),
            "50 1 0x01 7 2160 5214788401 74985436356\nname                            type data\ndataset_name                    7    tank/home\nwrites                          4    31\nnwritten                        4    4096\nreads                           4    4\nnread                           4    1024\nnunlinks                        4    3\nnunlinked                       4    2\n",
        );
    }
}
