//! The root cgroup's filesystems as cAdvisor lists them (`fs/fs.go`: `processMounts`,
//! `addSystemRootLabel`, `getDiskStatsMap`): the partitions behind `container_fs_usage_bytes`,
//! `_limit_bytes`, `_inodes_*` and the filesystem half of the disk I/O families for `id="/"`.
//!
//! Which mounts count, and under what `device` name:
//! - types `ext*`, `nfs*`, `btrfs`, `overlay`, `tmpfs`, `xfs` and `zfs`; nothing else;
//! - one entry per mount source, the first mount of it winning (bind mounts), except tmpfs,
//!   which is named by its mount point, and overlay, named `overlay_<major>-<minor>`;
//! - a btrfs mount whose `mountinfo` line says major 0 takes its numbers from its mount point;
//! - mounts under Docker's devicemapper `mnt` directory are left out;
//! - the mount on `/` is then entered under its own source whatever its type.
//!
//! Disk counters come from `/proc/diskstats` lines named like `sd*`, `vd*`, `xvd*` or `dm-*`,
//! matched by `/dev/<name>` or else by device numbers; other filesystems (tmpfs, overlay, NVMe
//! disks, which cAdvisor's pattern leaves out) get zeros, as in cAdvisor.

use std::collections::HashMap;
use std::path::Path;

/// One partition of the root's list.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// The `device` label.
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    pub major: u64,
    pub minor: u64,
}

/// A mount's fields of interest from one `mountinfo` line.
struct Mount {
    major: u64,
    minor: u64,
    mountpoint: String,
    fstype: String,
    source: String,
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        // `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let b: Vec<&str> = before.split(' ').collect();
        let a: Vec<&str> = after.split(' ').collect();
        if b.len() < 5 || a.len() < 2 {
            continue;
        }
        let Some((major, minor)) = b[2].split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        out.push(Mount {
            major,
            minor,
            mountpoint: crate::mounts::unescape(b[4]),
            fstype: a[0].to_string(),
            source: crate::mounts::unescape(a[1]),
        });
    }
    out
}

fn counted_type(t: &str) -> bool {
    t.starts_with("ext")
        || t.starts_with("nfs")
        || matches!(t, "btrfs" | "overlay" | "tmpfs" | "xfs" | "zfs")
}

/// The device numbers of the filesystem mounted at `mountpoint` (under `rootfs`), when
/// `source` is a block device: btrfs mounts show major 0 in `mountinfo`.
fn btrfs_numbers(rootfs: &Path, source: &str, mountpoint: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let dev = std::fs::metadata(rootfs.join(source.trim_start_matches('/'))).ok()?;
    if !dev.file_type().is_block_device() {
        return None;
    }
    let mp = std::fs::metadata(rootfs.join(mountpoint.trim_start_matches('/'))).ok()?;
    let d = mp.dev();
    Some((libc::major(d) as u64, libc::minor(d) as u64))
}

/// The root's partitions from a `mountinfo` text, in the order first seen; `rootfs` is where
/// the host's `/` is (for the btrfs look-up).
pub fn partitions(mountinfo: &str, rootfs: &Path) -> Vec<Partition> {
    let mounts = parse_mountinfo(mountinfo);
    let mut out: Vec<Partition> = Vec::new();
    let mut by_source: HashMap<String, usize> = HashMap::new();
    // A later mount of a key replaces the earlier in its place (a Go map's assignment).
    fn put(
        out: &mut Vec<Partition>,
        by_source: &mut HashMap<String, usize>,
        key: String,
        p: Partition,
    ) {
        match by_source.get(&key) {
            Some(&i) => out[i] = p,
            None => {
                by_source.insert(key, out.len());
                out.push(p);
            }
        }
    }
    for m in &mounts {
        if !counted_type(&m.fstype) {
            continue;
        }
        // A source seen before is a bind mount of it; tmpfs sources are all "tmpfs".
        if m.fstype != "tmpfs" && by_source.contains_key(&m.source) {
            continue;
        }
        if m.mountpoint.starts_with("/var/lib/docker/devicemapper/mnt") {
            continue;
        }
        let (mut major, mut minor) = (m.major, m.minor);
        if m.fstype == "btrfs"
            && major == 0
            && m.source.starts_with("/dev/")
            && let Some(n) = btrfs_numbers(rootfs, &m.source, &m.mountpoint)
        {
            (major, minor) = n;
        }
        let key = match m.fstype.as_str() {
            "tmpfs" => m.mountpoint.clone(),
            "overlay" => format!("{}_{}-{}", m.source, m.major, m.minor),
            _ => m.source.clone(),
        };
        let p = Partition {
            device: key.clone(),
            mountpoint: m.mountpoint.clone(),
            fstype: m.fstype.clone(),
            major,
            minor,
        };
        put(&mut out, &mut by_source, key, p);
    }
    if let Some(m) = mounts.iter().find(|m| m.mountpoint == "/") {
        let p = Partition {
            device: m.source.clone(),
            mountpoint: "/".into(),
            fstype: m.fstype.clone(),
            major: m.major,
            minor: m.minor,
        };
        put(&mut out, &mut by_source, m.source.clone(), p);
    }
    out
}

/// One `/proc/diskstats` line's device numbers and its eleven counters: reads completed,
/// reads merged, sectors read, ms reading, writes completed, writes merged, sectors written,
/// ms writing, I/Os in progress, ms doing I/O, weighted ms doing I/O.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskStats {
    pub major: u64,
    pub minor: u64,
    pub counters: [u64; 11],
}

/// cAdvisor's `^(?:(?:s|v|xv)d[a-z]+\d*|dm-\d+)$`.
fn counted_disk(name: &str) -> bool {
    if let Some(n) = name.strip_prefix("dm-") {
        return !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    }
    let rest = ["sd", "vd", "xvd"]
        .iter()
        .find_map(|p| name.strip_prefix(p));
    let Some(rest) = rest else { return false };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    letters > 0 && rest.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

/// `/proc/diskstats` by `/dev/<name>`, the lines cAdvisor keeps.
pub fn diskstats(text: &str) -> HashMap<String, DiskStats> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || !counted_disk(f[2]) {
            continue;
        }
        let (Ok(major), Ok(minor)) = (f[0].parse(), f[1].parse()) else {
            continue;
        };
        let mut counters = [0u64; 11];
        let mut ok = true;
        for (i, c) in counters.iter_mut().enumerate() {
            match f[3 + i].parse() {
                Ok(v) => *c = v,
                Err(_) => ok = false,
            }
        }
        if ok {
            out.insert(
                format!("/dev/{}", f[2]),
                DiskStats {
                    major,
                    minor,
                    counters,
                },
            );
        }
    }
    out
}

impl Partition {
    /// `statfs` of this partition's mount point under `root`, if that path still is this
    /// filesystem: a mount point unmounted since start (its directory left on the parent
    /// filesystem) or not visible under `root` would otherwise report another filesystem's
    /// sizes under this one's name. btrfs is not checked: each subvolume has a device number
    /// of its own, which `mountinfo` does not show.
    pub fn statfs(&self, root: &Path) -> std::io::Result<crate::mounts::Statfs> {
        use std::os::unix::fs::MetadataExt;
        let path = root.join(self.mountpoint.trim_start_matches('/'));
        let dev = std::fs::metadata(&path)?.dev();
        let (major, minor) = (libc::major(dev) as u64, libc::minor(dev) as u64);
        if self.fstype != "btrfs" && (major, minor) != (self.major, self.minor) {
            return Err(std::io::Error::other(format!(
                "{} is device {major}:{minor}, not {}:{} as mounted",
                path.display(),
                self.major,
                self.minor
            )));
        }
        crate::mounts::statfs(&path)
    }

    /// This partition's disk counters: by its device name, else by its device numbers;
    /// zeros when neither finds a line.
    pub fn disk(&self, stats: &HashMap<String, DiskStats>) -> [u64; 11] {
        stats
            .get(&self.device)
            .or_else(|| {
                stats
                    .values()
                    .find(|s| s.major == self.major && s.minor == self.minor)
            })
            .map_or([0; 11], |s| s.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A node's mountinfo: ext4 root, a bind mount of it, proc and cgroups, stacked tmpfs,
    // two overlays, NFS, xfs, an NVMe partition, a btrfs subvolume and Docker's devicemapper.
    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683772k
27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,discard
28 27 254:1 /var/lib/x /srv/x rw,relatime - ext4 /dev/vda1 rw
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=1024k
31 23 0:28 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
40 27 0:40 / /run/containerd/a/rootfs rw - overlay overlay rw,lowerdir=/l
41 27 0:41 / /run/containerd/b/rootfs rw - overlay overlay rw,lowerdir=/l
42 27 0:42 / /mnt/nfs rw - nfs4 server:/export rw
43 27 253:0 / /var/lib/kubelet rw - xfs /dev/mapper/vg-kubelet rw
44 27 259:2 / /data rw - ext4 /dev/nvme0n1p2 rw
45 27 0:50 / /var/lib/docker/devicemapper/mnt/abc rw - xfs /dev/mapper/docker-abc rw
46 27 0:51 / /my\\040dir rw - tmpfs tmpfs rw
";

    #[test]
    fn partitions_as_cadvisor_lists_them() {
        let got = partitions(MOUNTINFO, Path::new("/nonexistent"));
        let names: Vec<&str> = got.iter().map(|p| p.device.as_str()).collect();
        assert_eq!(
            names,
            [
                "/dev/shm",
                "/dev/vda1",
                "overlay_0-40",
                "overlay_0-41",
                "server:/export",
                "/dev/mapper/vg-kubelet",
                "/dev/nvme0n1p2",
                "/my dir",
            ]
        );
        // The stacked tmpfs: the later mount of the mount point is the one kept.
        assert_eq!((got[0].major, got[0].minor), (0, 27));
        let vda = &got[1];
        assert_eq!(
            (vda.mountpoint.as_str(), vda.major, vda.minor),
            ("/", 254, 1)
        );
    }

    #[test]
    fn the_root_mount_is_entered_whatever_its_type() {
        let text = "\
1 0 0:30 / / rw - overlay overlay rw,lowerdir=/l
2 1 0:21 / /proc rw - proc proc rw
";
        let got = partitions(text, Path::new("/nonexistent"));
        let names: Vec<&str> = got.iter().map(|p| p.device.as_str()).collect();
        assert_eq!(names, ["overlay_0-30", "overlay"]);
        let text = "1 0 0:30 / / rw - 9p hostroot rw\n";
        let got = partitions(text, Path::new("/nonexistent"));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].device, "hostroot");
    }

    const DISKSTATS: &str = "\
   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 809899 34698 67916042 2307431 193665 157229 95545216 412476 0 125764 2734274 84352 33 298941008 12629 39143 1737
 254       1 vda1 800000 34000 67000000 2300000 190000 150000 95000000 410000 2 120000 2700000
 253       0 dm-0 10 11 12 13 14 15 16 17 18 19 20
 259       2 nvme0n1p2 5 5 5 5 5 5 5 5 5 5 5
   8      16 sdb 1 2 3
";

    #[test]
    fn disk_counters_by_name_then_numbers() {
        let stats = diskstats(DISKSTATS);
        let mut keys: Vec<&String> = stats.keys().collect();
        keys.sort();
        // loop and NVMe devices are not counted, nor a line too short.
        assert_eq!(keys, ["/dev/dm-0", "/dev/vda", "/dev/vda1"]);
        let parts = partitions(MOUNTINFO, Path::new("/nonexistent"));
        let find = |d: &str| parts.iter().find(|p| p.device == d).unwrap().disk(&stats);
        assert_eq!(
            find("/dev/vda1"),
            [
                800000, 34000, 67000000, 2300000, 190000, 150000, 95000000, 410000, 2, 120000,
                2700000
            ]
        );
        // /dev/mapper/vg-kubelet is dm-0 by its numbers.
        assert_eq!(
            find("/dev/mapper/vg-kubelet"),
            [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
        );
        assert_eq!(find("/dev/nvme0n1p2"), [0; 11]);
        assert_eq!(find("/dev/shm"), [0; 11]);
    }

    #[test]
    fn disk_names_as_cadvisor_matches_them() {
        for n in ["sda", "sda1", "vdb", "xvda12", "dm-0", "dm-12", "sdaa3"] {
            assert!(counted_disk(n), "{n}");
        }
        for n in [
            "sd", "sd1", "nvme0n1", "loop0", "dm-", "dm-x", "mmcblk0", "sda1b", "Sda",
        ] {
            assert!(!counted_disk(n), "{n}");
        }
    }
}
