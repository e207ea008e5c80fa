//! The disk collectors: diskstats (`/proc/diskstats` per block device, with `node_disk_info`
//! from udev's database where it has the device) and mdadm (`/proc/mdstat`).

use super::{Error, Node, Out, parse_f64, read};

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's sector size.
const SECTOR: f64 = 512.0;

/// The fields after the device name, in the kernel's order: family, help, scale, counter.
const FIELDS: [(&str, &str, f64, bool); 17] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        1.0,
        true,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        1.0,
        true,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        SECTOR,
        true,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        0.001,
        true,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        1.0,
        true,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        1.0,
        true,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        SECTOR,
        true,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        0.001,
        true,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        1.0,
        false,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        0.001,
        true,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        0.001,
        true,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        1.0,
        true,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        1.0,
        true,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        1.0,
        true,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        0.001,
        true,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        1.0,
        true,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        0.001,
        true,
    ),
];

pub fn diskstats(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("diskstats");
    let s = read(&path)?;
    for line in s.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 {
            return Err(Error::Parse {
                path,
                what: format!("a line with {} fields: {line:?}", f.len()),
            });
        }
        let (major, minor, dev) = (f[0], f[1], f[2]);
        if !super::device_wanted(&n.opts.disk_include, &n.opts.disk_exclude, dev) {
            continue;
        }
        let labels = [("device", dev)];
        for (i, v) in f[3..].iter().enumerate().take(FIELDS.len()) {
            let (name, help, scale, counter) = FIELDS[i];
            let v = parse_f64(&path, v)? * scale;
            if counter {
                out.counter(name, help, &labels, v);
            } else {
                out.gauge(name, help, &labels, v);
            }
        }
        let udev = read(&n.paths.udev_data.join(format!("b{major}:{minor}"))).unwrap_or_default();
        let prop = |key: &str| {
            udev.lines()
                .filter_map(|l| l.strip_prefix("E:"))
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .unwrap_or("")
        };
        if !prop("ID_FS_TYPE").is_empty() {
            out.gauge(
                "node_disk_filesystem_info",
                "Info about disk filesystem.",
                &[
                    ("device", dev),
                    ("type", prop("ID_FS_TYPE")),
                    ("usage", prop("ID_FS_USAGE")),
                    ("uuid", prop("ID_FS_UUID")),
                    ("version", prop("ID_FS_VERSION")),
                ],
                1.0,
            );
        }
        if !prop("DM_NAME").is_empty() {
            out.gauge(
                "node_disk_device_mapper_info",
                "Info about disk device mapper.",
                &[
                    ("device", dev),
                    ("lv_layer", prop("DM_LV_LAYER")),
                    ("lv_name", prop("DM_LV_NAME")),
                    ("name", prop("DM_NAME")),
                    ("uuid", prop("DM_UUID")),
                    ("vg_name", prop("DM_VG_NAME")),
                ],
                1.0,
            );
        }
        if !prop("ID_ATA").is_empty() {
            for (key, name, help) in [
                (
                    "ID_ATA_WRITE_CACHE",
                    "node_disk_ata_write_cache",
                    "ATA disk has a write cache.",
                ),
                (
                    "ID_ATA_WRITE_CACHE_ENABLED",
                    "node_disk_ata_write_cache_enabled",
                    "ATA disk has its write cache enabled.",
                ),
                (
                    "ID_ATA_ROTATION_RATE_RPM",
                    "node_disk_ata_rotation_rate_rpm",
                    "ATA disk rotation rate in RPMs (0 for SSDs).",
                ),
            ] {
                if let Ok(v) = prop(key).parse::<f64>() {
                    out.gauge(name, help, &labels, v);
                }
            }
        }
        out.gauge(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            &[
                ("device", dev),
                ("major", major),
                ("minor", minor),
                ("model", prop("ID_MODEL")),
                ("path", prop("ID_PATH")),
                ("revision", prop("ID_REVISION")),
                ("serial", prop("ID_SERIAL_SHORT")),
                ("wwn", prop("ID_WWN")),
            ],
            1.0,
        );
    }
    Ok(())
}

/// An md array's line and the status lines after it in `/proc/mdstat`.
struct MdArray {
    name: String,
    state: &'static str,
    total: f64,
    active: f64,
    failed: f64,
    spare: f64,
    blocks: f64,
    synced: f64,
}

fn parse_mdstat(path: &std::path::Path, s: &str) -> Result<Vec<MdArray>, Error> {
    let bad = |what: String| Error::Parse {
        path: path.to_path_buf(),
        what,
    };
    let lines: Vec<&str> = s.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((name, rest)) = line.split_once(" : ") else {
            continue;
        };
        let name = name.trim();
        if !name.starts_with("md") {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        let mut state = match f.first() {
            Some(&"active") => "active",
            Some(&"inactive") => "inactive",
            _ => return Err(bad(format!("unknown state of {name}: {line:?}"))),
        };
        // Member devices: `sda1[0]`, `sdb1[1](F)` failed, `sdc1[2](S)` spare.
        let members: Vec<&&str> = f.iter().filter(|x| x.contains('[')).collect();
        let failed = members.iter().filter(|m| m.ends_with("(F)")).count() as f64;
        let spare = members.iter().filter(|m| m.ends_with("(S)")).count() as f64;
        let status = lines.get(i + 1).copied().unwrap_or("");
        let blocks = status
            .split_whitespace()
            .zip(status.split_whitespace().skip(1))
            .find(|(_, w)| *w == "blocks")
            .and_then(|(n, _)| n.parse::<f64>().ok())
            .unwrap_or(0.0);
        // `[2/1]`: devices the array has, and those active; without it (raid0, linear, an
        // inactive array) every listed member that has not failed counts.
        let counts = status
            .split_whitespace()
            .filter_map(|w| w.strip_prefix('[')?.strip_suffix(']')?.split_once('/'))
            .find_map(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)));
        let (total, active) = match counts {
            Some(c) => c,
            None => {
                let n = members.len() as f64 - failed - spare;
                (n, n)
            }
        };
        // A recovery, resync or check in progress, with the blocks done: `(123/456)`.
        let mut synced = blocks;
        // The array's own lines end at the blank line before the next array.
        for l in lines
            .iter()
            .skip(i + 2)
            .take_while(|l| !l.trim().is_empty())
        {
            let kind = if l.contains("recovery") {
                Some("recovering")
            } else if l.contains("resync") {
                Some("resync")
            } else if l.contains("check") {
                Some("check")
            } else {
                None
            };
            let Some(kind) = kind else { continue };
            state = kind;
            // `resync=PENDING` / `resync=DELAYED`: nothing synced yet.
            if l.contains("PENDING") || l.contains("DELAYED") {
                synced = 0.0;
                break;
            }
            if let Some(done) = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix('(')?.strip_suffix(')')?.split_once('/'))
                .and_then(|(a, _)| a.parse::<f64>().ok())
            {
                synced = done;
            }
            break;
        }
        out.push(MdArray {
            name: name.to_string(),
            state,
            total,
            active,
            failed,
            spare,
            blocks,
            synced,
        });
    }
    Ok(out)
}

/// `/proc/mdstat`: software RAID arrays, their state and disks.
pub fn mdadm(n: &Node, out: &mut Out) -> Result<(), Error> {
    let path = n.proc("mdstat");
    let s = super::read_optional(&path)?;
    for md in parse_mdstat(&path, &s)? {
        let dev = [("device", md.name.as_str())];
        for state in ["active", "inactive", "recovering", "resync", "check"] {
            out.gauge(
                "node_md_state",
                "Indicates the state of md-device.",
                &[("device", &md.name), ("state", state)],
                if md.state == state { 1.0 } else { 0.0 },
            );
        }
        for (state, v) in [
            ("active", md.active),
            ("failed", md.failed),
            ("spare", md.spare),
        ] {
            out.gauge(
                "node_md_disks",
                "Number of active/failed/spare disks of device.",
                &[("device", &md.name), ("state", state)],
                v,
            );
        }
        out.gauge(
            "node_md_disks_required",
            "Total number of disks of device.",
            &dev,
            md.total,
        );
        out.gauge(
            "node_md_blocks",
            "Total number of blocks on device.",
            &dev,
            md.blocks,
        );
        out.gauge(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
            &dev,
            md.synced,
        );
    }
    Ok(())
}
