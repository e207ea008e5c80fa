//! The `btrfs` collector: each btrfs filesystem's allocation from sysfs `fs/btrfs/<uuid>/`, and,
//! for those mounted (in `/proc/1/mounts`) and reachable under `--path.rootfs`, each device's
//! size, unused bytes and error counts by ioctl, as node_exporter 1.5 reads them (procfs's
//! sysfs reader with its error handling, dennwc/btrfs's ioctls). A filesystem that cannot be
//! asked by ioctl gets its devices' sizes from sysfs instead.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{Error, Node, Out, read_bounded_bytes, sysread};

/// procfs's sysfs reader: an absent file reads as empty, any other failure is kept (a later
/// one replaces it) and makes every number read after it 0.
struct Reader {
    dir: PathBuf,
    err: Option<std::io::Error>,
}

impl Reader {
    fn new(dir: PathBuf) -> Self {
        Reader { dir, err: None }
    }

    fn text(&mut self, rel: &str) -> String {
        match sysread(&self.dir.join(rel)) {
            Ok(s) => s,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    self.err = Some(e);
                }
                String::new()
            }
        }
    }

    /// A decimal u64 as Go's `ParseUint` leaves it with its error ignored: too large is the
    /// largest u64, anything else not digits 0, as is everything after a failure.
    fn number(&mut self, rel: &str) -> u64 {
        let s = self.text(rel);
        if self.err.is_some() || s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return 0;
        }
        s.parse().unwrap_or(u64::MAX)
    }

    /// A directory's entries in name order, each with whether it is a directory (a link is
    /// not). A directory that cannot be listed is a failure, even an absent one.
    fn list(&mut self, rel: &str) -> Vec<(String, bool)> {
        match std::fs::read_dir(self.dir.join(rel)) {
            Ok(d) => {
                let mut v: Vec<(String, bool)> = d
                    .flatten()
                    .map(|e| {
                        let dir = e.file_type().is_ok_and(|t| t.is_dir());
                        (e.file_name().to_string_lossy().into_owned(), dir)
                    })
                    .collect();
                v.sort();
                v
            }
            Err(e) => {
                self.err = Some(e);
                Vec::new()
            }
        }
    }
}

/// One block group type's (data, metadata, system) reservation and profiles.
struct Alloc {
    kind: &'static str,
    reserved: u64,
    /// (profile, used bytes, total bytes, ratio)
    layouts: Vec<(String, u64, u64, f64)>,
}

struct Fs {
    uuid: String,
    label: String,
    global_rsv_size: u64,
    allocs: Vec<Alloc>,
    /// sysfs's devices: (name, bytes)
    devices: Vec<(String, u64)>,
}

/// The bytes a profile stores per byte of data (0 for one procfs does not know, such as
/// raid1c3), RAID5/6 by the devices sysfs lists.
fn ratio(profile: &str, devices: usize) -> f64 {
    let n = devices as f64;
    let r = match profile {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    };
    // No devices listed gives -0, which Go prints as 0.
    r + 0.0
}

/// One filesystem's directory, read in procfs's order. procfs keeps a failure only until the
/// next block group type is read, so only one under `allocation/system` (or its absence)
/// fails the filesystem; an earlier one just zeroes the numbers read after it (a missing
/// `features` or `devices` directory zeroes the global reserve).
fn read_fs(dir: &Path) -> std::io::Result<Fs> {
    let mut r = Reader::new(dir.to_path_buf());
    let devices: Vec<(String, u64)> = r
        .list("devices")
        .into_iter()
        .map(|(name, _)| {
            // In 512-byte sectors, whatever the device's block size.
            let size = r.number(&format!("devices/{name}/size"));
            (name, size.wrapping_mul(512))
        })
        .collect();
    let label = r.text("label");
    let uuid = r.text("metadata_uuid");
    r.list("features");
    // Read only for their failures, which zero what follows.
    for f in [
        "clone_alignment",
        "nodesize",
        "quota_override",
        "sectorsize",
        "allocation/global_rsv_reserved",
    ] {
        r.number(f);
    }
    let global_rsv_size = r.number("allocation/global_rsv_size");
    let mut allocs = Vec::new();
    for kind in ["data", "metadata", "system"] {
        let mut a = Reader::new(dir.join("allocation").join(kind));
        for f in ["bytes_may_use", "bytes_pinned", "bytes_readonly"] {
            a.number(f);
        }
        let reserved = a.number("bytes_reserved");
        for f in [
            "bytes_used",
            "disk_used",
            "disk_total",
            "flags",
            "total_bytes",
            "total_bytes_pinned",
        ] {
            a.number(f);
        }
        let mut layouts = Vec::new();
        for (profile, is_dir) in a.list("") {
            if !is_dir {
                continue;
            }
            let total = a.number(&format!("{profile}/total_bytes"));
            let used = a.number(&format!("{profile}/used_bytes"));
            let rat = ratio(&profile, devices.len());
            layouts.push((profile, used, total, rat));
        }
        // Replaces the filesystem's failure, even with none, as procfs does.
        r.err = a.err;
        allocs.push(Alloc {
            kind,
            reserved,
            layouts,
        });
    }
    if let Some(e) = r.err {
        return Err(e);
    }
    // Kernels before 5.0 have no metadata_uuid: the directory's name is the UUID.
    let uuid = if uuid.is_empty() {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        uuid
    };
    Ok(Fs {
        uuid,
        label,
        global_rsv_size,
        allocs,
        devices,
    })
}

/// One device of a mounted filesystem, as the ioctls give it.
struct Dev {
    /// The last part of its path (`/dev/mapper/x` is `x`).
    name: String,
    uuid: String,
    total: u64,
    used: u64,
    /// In [`ERROR_TYPES`] order.
    errors: [u64; 5],
}

const ERROR_TYPES: [&str; 5] = ["write", "read", "flush", "corruption", "generation"];

/// `BTRFS_IOC_FS_INFO`, `_IOR(0x94, 31)` of a 1024-byte struct.
const FS_INFO: u32 = 0x8400_941f;
/// `BTRFS_IOC_DEV_INFO`, `_IOWR(0x94, 30)` of a 4096-byte struct.
const DEV_INFO: u32 = 0xd000_941e;
/// `BTRFS_IOC_GET_DEV_STATS`, `_IOWR(0x94, 52)` of a 1032-byte struct.
const GET_DEV_STATS: u32 = 0xc408_9434;

/// An ioctl's argument struct as bytes, aligned as its u64 fields need.
#[repr(C, align(8))]
struct Args<const N: usize>([u8; N]);

impl<const N: usize> Args<N> {
    fn new() -> Self {
        Args([0; N])
    }

    fn get(&self, at: usize) -> u64 {
        let mut b = [0; 8];
        b.copy_from_slice(&self.0[at..at + 8]);
        u64::from_ne_bytes(b)
    }

    fn set(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    fn ioctl(&mut self, f: &File, request: u32) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        // The request number encodes the size of the struct the kernel reads and writes.
        debug_assert_eq!(((request >> 16) & 0x3fff) as usize, N);
        // SAFETY: the buffer is N writable bytes, the size each request number encodes and so
        // all the kernel reads or writes through the pointer; `f` stays open for the call.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), request as _, self.0.as_mut_ptr()) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A UUID as dennwc/btrfs prints one: dashed lower-case hex, all zeros as `<zero>`.
fn uuid_text(b: &[u8]) -> String {
    if b.iter().all(|&x| x == 0) {
        return "<zero>".into();
    }
    use std::fmt::Write;
    let mut s = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

const BTRFS_MAGIC: u32 = 0x9123_683e;

/// dennwc/btrfs's `Open`: the root of a subvolume (inode 256, on a filesystem with btrfs's
/// magic), opened read-only without touching its access time, which only its owner or root
/// may do, so an unprivileged exporter falls back to sysfs.
fn open_btrfs(path: &Path) -> std::io::Result<File> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let not_btrfs = || std::io::Error::other("not a btrfs subvolume");
    let md = std::fs::metadata(path)?;
    if md.ino() != 256 || !md.is_dir() {
        return Err(not_btrfs());
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `statfs` is plain integers, for which all zeros is a valid value.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `buf` a writable `statfs` that outlives the call.
    if unsafe { libc::statfs(c.as_ptr(), &mut buf) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if buf.f_type as u32 != BTRFS_MAGIC {
        return Err(not_btrfs());
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        // A directory only, and never waiting: a path swapped for a FIFO since the checks
        // above fails here instead of blocking.
        .custom_flags(libc::O_NOATIME | libc::O_DIRECTORY | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_dir() {
        return Err(not_btrfs());
    }
    Ok(f)
}

/// The highest device id, the number of devices and the FSID (32 hex digits).
fn fs_info(f: &File) -> std::io::Result<(u64, u64, String)> {
    let mut a = Args::<1024>::new();
    a.ioctl(f, FS_INFO)?;
    let fsid = a.0[16..32].iter().map(|b| format!("{b:02x}")).collect();
    Ok((a.get(0), a.get(8), fsid))
}

/// Device ids probed beyond the device count before giving up.
const MAX_MISSING_IDS: u64 = 4096;

/// Each device by id, up to `max_id` or until `count` are found (ids need not start at 0 nor
/// be contiguous: a missing one is skipped); any other failure fails them all.
fn devices(f: &File, max_id: u64, count: u64) -> std::io::Result<Vec<Dev>> {
    let mut devs = Vec::new();
    for id in 0..=max_id {
        // Ids come from the filesystem's metadata: a crafted or much-reshaped one could send
        // this loop through billions of empty ids. Far more than any real filesystem leaves.
        if id > count.saturating_add(MAX_MISSING_IDS) {
            return Err(std::io::Error::other(format!(
                "device ids up to {max_id} for {count} devices: too sparse to probe"
            )));
        }
        let mut info = Args::<4096>::new();
        info.set(0, id);
        match info.ioctl(f, DEV_INFO) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => continue,
            r => r?,
        }
        let mut stats = Args::<1032>::new();
        stats.set(0, id);
        // nr_items: the kernel fills in only as many counts as asked for.
        stats.set(8, ERROR_TYPES.len() as u64);
        stats.ioctl(f, GET_DEV_STATS)?;
        let path = &info.0[3072..];
        let start = path.iter().position(|&b| b != 0).unwrap_or(path.len());
        let end = path.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
        let path = String::from_utf8_lossy(&path[start..end]);
        devs.push(Dev {
            name: path.rsplit('/').next().unwrap_or_default().to_string(),
            uuid: uuid_text(&info.0[8..24]),
            used: info.get(24),
            total: info.get(32),
            errors: [0, 1, 2, 3, 4].map(|i| stats.get(24 + 8 * i)),
        });
        if devs.len() as u64 == count {
            break;
        }
    }
    Ok(devs)
}

/// node_exporter's mount list: (device, mount point, type) from `/proc/1/mounts`, else
/// `/proc/mounts`; a line of fewer than four fields fails it all.
fn mounts(n: &Node) -> Result<Vec<(String, String, String)>, String> {
    let bytes = match read_bounded_bytes(&n.proc("1/mounts")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => read_bounded_bytes(&n.proc("mounts")),
        r => r,
    }
    .map_err(|e| format!("reading the mounts: {e}"))?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                return Err(format!("malformed mount point information: {line:?}"));
            }
            // Only these two escapes are undone, as node_exporter undoes them.
            let mp = f[1].replace("\\040", " ").replace("\\011", "\t");
            Ok((f[0].to_string(), mp, f[2].to_string()))
        })
        .collect()
}

/// A mount point under `--path.rootfs`: the rootfs prefix taken off as text, the rest joined
/// on, as node_exporter does.
fn under_rootfs(n: &Node, mp: &str) -> PathBuf {
    let root = n.paths.rootfs.to_string_lossy();
    let rel = if root == "/" {
        mp
    } else {
        mp.strip_prefix(root.as_ref()).unwrap_or(mp)
    };
    n.paths.rootfs.join(rel.trim_start_matches('/'))
}

/// The devices of each mounted btrfs filesystem by FSID, from its mount points in order; a
/// filesystem (or mounted device) already done is skipped, and a mount point that cannot be
/// opened or asked is passed over for the next.
fn mounted(n: &Node) -> Result<HashMap<String, Vec<Dev>>, String> {
    let mut done = HashSet::new();
    let mut by_fsid = HashMap::new();
    for (device, mp, fstype) in mounts(n)? {
        if fstype != "btrfs" || done.contains(&device) {
            continue;
        }
        let path = under_rootfs(n, &mp);
        let at = path.clone();
        // Path lookups and the device ioctls can block on a hung mount or disk: bounded by
        // the filesystem collector's mount timeout, and skipped while that mount is stuck.
        let asked = super::filesystem::within_mount_timeout(n, &mp, move || {
            let f = open_btrfs(&at)?;
            let (max_id, count, fsid) = fs_info(&f)?;
            Ok((fsid, devices(&f, max_id, count)?))
        });
        match asked {
            // A filesystem mounted twice: its first mount point answers for it.
            Some(Ok((fsid, devs))) => {
                if let std::collections::hash_map::Entry::Vacant(e) = by_fsid.entry(fsid) {
                    done.insert(device);
                    e.insert(devs);
                }
            }
            Some(Err(e)) => {
                tracing::debug!(mount = %path.display(), "cannot ask the btrfs mount: {e}");
            }
            // Hung (or still hung): the device's other mount points would hang the same way,
            // each for a whole timeout.
            None => {
                done.insert(device);
            }
        }
    }
    Ok(by_fsid)
}

/// Every `fs/btrfs/*-*` entry in name order (the module's `features` directory has no dash);
/// one that cannot be read fails the collector. No btrfs filesystem is success with no
/// samples, as node_exporter reports it.
pub(super) fn btrfs(n: &Node, out: &mut Out) -> Result<(), Error> {
    let root = n.sys("fs/btrfs");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains('-'))
        .collect();
    names.sort();
    let mut all = Vec::new();
    for name in names {
        let dir = root.join(&name);
        all.push(read_fs(&dir).map_err(|source| Error::Read { path: dir, source })?);
    }
    let by_fsid = mounted(n).unwrap_or_else(|e| {
        tracing::debug!("btrfs device stats by ioctl: {e}");
        HashMap::new()
    });
    for fs in &all {
        let uuid = fs.uuid.as_str();
        out.gauge(
            "node_btrfs_info",
            "Filesystem information",
            &[("label", fs.label.as_str()), ("uuid", uuid)],
            1.0,
        );
        out.gauge(
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            &[("uuid", uuid)],
            fs.global_rsv_size as f64,
        );
        for a in &fs.allocs {
            out.gauge(
                "node_btrfs_reserved_bytes",
                "Amount of space reserved for a data type",
                &[("block_group_type", a.kind), ("uuid", uuid)],
                a.reserved as f64,
            );
            for (profile, used, total, rat) in &a.layouts {
                let l = [
                    ("block_group_type", a.kind),
                    ("mode", profile.as_str()),
                    ("uuid", uuid),
                ];
                out.gauge(
                    "node_btrfs_used_bytes",
                    "Amount of used space by a layout/data type",
                    &l,
                    *used as f64,
                );
                out.gauge(
                    "node_btrfs_size_bytes",
                    "Amount of space allocated for a layout/data type",
                    &l,
                    *total as f64,
                );
                out.gauge(
                    "node_btrfs_allocation_ratio",
                    "Data allocation ratio for a layout/data type",
                    &l,
                    *rat,
                );
            }
        }
        // The ioctls' FSID matched against sysfs's UUID without dashes.
        let Some(devs) = by_fsid.get(&fs.uuid.replace('-', "")) else {
            for (dev, size) in &fs.devices {
                out.gauge(
                    "node_btrfs_device_size_bytes",
                    "Size of a device that is part of the filesystem.",
                    &[("device", dev.as_str()), ("uuid", uuid)],
                    *size as f64,
                );
            }
            continue;
        };
        for d in devs {
            let l = [
                ("btrfs_dev_uuid", d.uuid.as_str()),
                ("device", d.name.as_str()),
                ("uuid", uuid),
            ];
            out.gauge(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                &l,
                d.total as f64,
            );
            out.gauge(
                "node_btrfs_device_unused_bytes",
                "Unused bytes unused on a device that is part of the filesystem.",
                &l,
                d.total.wrapping_sub(d.used) as f64,
            );
            for (t, v) in ERROR_TYPES.iter().zip(d.errors) {
                out.counter(
                    "node_btrfs_device_errors_total",
                    "Errors reported for the device",
                    &[
                        ("btrfs_dev_uuid", d.uuid.as_str()),
                        ("device", d.name.as_str()),
                        ("type", *t),
                        ("uuid", uuid),
                    ],
                    v as f64,
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_uuids_as_node_exporter_prints_them() {
        assert_eq!(ratio("raid1", 2), 2.0);
        assert_eq!(ratio("raid5", 3), 1.5);
        assert_eq!(ratio("raid6", 2), f64::INFINITY);
        assert_eq!(ratio("raid1c3", 3), 0.0);
        assert!(ratio("raid5", 0).is_sign_positive());
        assert_eq!(uuid_text(&[0; 16]), "<zero>");
        assert_eq!(
            uuid_text(&[
                0x77, 0, 0x6c, 0x79, 0xb6, 0x3b, 0x48, 0x6e, 0x8f, 0x61, 0xed, 0xfd, 0xbc, 0xef,
                0x5f, 0xa2
            ]),
            "77006c79-b63b-486e-8f61-edfdbcef5fa2"
        );
    }
}
