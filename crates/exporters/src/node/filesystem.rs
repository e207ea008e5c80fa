//! The filesystem collector: every mount in `/proc/1/mounts` not excluded by mount point or
//! type, with `statfs(2)`'s sizes. A `statfs` that hangs (a dead NFS server) is abandoned after
//! `--collector.filesystem.mount-timeout` and the mount is reported as erroring, and skipped,
//! until that call returns.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::{Error, Node, Out, read};

/// Mount points whose `statfs` has not returned yet.
#[derive(Default)]
pub struct State {
    stuck: Arc<Mutex<HashSet<String>>>,
}

struct Stats {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statfs(path: &std::path::Path) -> std::io::Result<Stats> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated string and `buf` a properly sized, writable
    // `statfs` struct that outlives the call; the kernel only writes into it.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bsize = buf.f_bsize as f64;
    Ok(Stats {
        size: buf.f_blocks as f64 * bsize,
        free: buf.f_bfree as f64 * bsize,
        avail: buf.f_bavail as f64 * bsize,
        files: buf.f_files as f64,
        files_free: buf.f_ffree as f64,
    })
}

/// `/proc/mounts` escapes space, tab, newline and backslash as three octal digits.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b[i + 1..].len() >= 3
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount point as the host names it: `--path.rootfs` taken off the front.
fn strip_rootfs(n: &Node, mp: &str) -> String {
    let root = n.paths.rootfs.to_string_lossy();
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return mp.to_string();
    }
    match mp.strip_prefix(root) {
        Some("") => "/".to_string(),
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        _ => mp.to_string(),
    }
}

pub fn filesystem(n: &Node, out: &mut Out) -> Result<(), Error> {
    let mounts = match read(&n.proc("1/mounts")) {
        Ok(s) => s,
        Err(_) => read(&n.proc("self/mounts"))?,
    };
    let mut seen = HashSet::new();
    let mut wanted = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let device = unescape(f[0]);
        let mountpoint = strip_rootfs(n, &unescape(f[1]));
        let fstype = f[2];
        if n.opts.fs_mount_points_exclude.is_match(&mountpoint)
            || n.opts.fs_types_exclude.is_match(fstype)
        {
            continue;
        }
        if !seen.insert((device.clone(), mountpoint.clone(), fstype.to_string())) {
            continue;
        }
        let readonly = f[3].split(',').any(|o| o == "ro");
        wanted.push((device, mountpoint, fstype.to_string(), readonly));
    }
    // Every statfs is started before any is waited for, against one deadline: a few hung
    // mounts cost a scrape one timeout, not one each.
    let pending: Vec<_> = wanted
        .iter()
        .map(|(_, mp, _, _)| start_statfs(n, mp))
        .collect();
    let deadline = std::time::Instant::now() + n.opts.fs_mount_timeout;
    for ((device, mountpoint, fstype, readonly), p) in wanted.iter().zip(pending) {
        let fstype = fstype.as_str();
        let readonly = *readonly;
        let labels = [
            ("device", device.as_str()),
            ("fstype", fstype),
            ("mountpoint", mountpoint.as_str()),
        ];
        out.gauge(
            "node_filesystem_readonly",
            "Filesystem read-only status.",
            &labels,
            if readonly { 1.0 } else { 0.0 },
        );
        let stats = p.and_then(|p| p.wait(n, mountpoint, deadline));
        out.gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            &labels,
            if stats.is_some() { 0.0 } else { 1.0 },
        );
        let Some(s) = stats else { continue };
        for (name, help, v) in [
            (
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                s.size,
            ),
            (
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                s.free,
            ),
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                s.avail,
            ),
            (
                "node_filesystem_files",
                "Filesystem total file nodes.",
                s.files,
            ),
            (
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                s.files_free,
            ),
        ] {
            out.gauge(name, help, &labels, v);
        }
    }
    Ok(())
}

/// Run `f`, which reaches into the mount point `mountpoint`, on a thread of its own, giving
/// up after `--collector.filesystem.mount-timeout`: a mount that hangs (a dead NFS server, a
/// disk that stopped answering) then costs the scrape that long once, and is skipped, as the
/// filesystem collector skips it, until the call returns. `None` when skipped or given up.
pub(super) fn within_mount_timeout<T: Send + 'static>(
    n: &Node,
    mountpoint: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Option<std::io::Result<T>> {
    let stuck = n.fs_state.stuck.clone();
    if stuck.lock().contains(mountpoint) {
        tracing::debug!(mountpoint, "mount point is still unresponsive; skipped");
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let abandoned = Arc::new(AtomicBool::new(false));
    let (mp, gave_up, stuck_t) = (mountpoint.to_string(), abandoned.clone(), stuck.clone());
    let spawned = std::thread::Builder::new()
        .name("mount-probe".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let r = f();
            let mut stuck = stuck_t.lock();
            if gave_up.load(Ordering::Relaxed) {
                stuck.remove(&mp);
            } else {
                let _ = tx.send(r);
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(mountpoint, "cannot start a thread for the mount: {e}");
        return None;
    }
    match rx.recv_timeout(n.opts.fs_mount_timeout) {
        Ok(r) => Some(r),
        // The probe ended without an answer (it panicked): nothing hangs, nothing to skip.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            let mut stuck = stuck.lock();
            match rx.try_recv() {
                Ok(r) => Some(r),
                Err(_) => {
                    abandoned.store(true, Ordering::Relaxed);
                    stuck.insert(mountpoint.to_string());
                    tracing::warn!(
                        mountpoint,
                        "the mount point did not answer in time; it is skipped until it does"
                    );
                    None
                }
            }
        }
    }
}

/// A `statfs` running on a thread of its own.
struct Pending {
    rx: std::sync::mpsc::Receiver<std::io::Result<Stats>>,
    abandoned: Arc<AtomicBool>,
}

/// Start `statfs` of the mount point under `--path.rootfs`; `None` while an earlier call on it
/// is still hung, or when no thread can be started.
fn start_statfs(n: &Node, mountpoint: &str) -> Option<Pending> {
    let stuck = n.fs_state.stuck.clone();
    if stuck.lock().contains(mountpoint) {
        tracing::debug!(mountpoint, "mount point is still unresponsive; skipped");
        return None;
    }
    let path: PathBuf = n.paths.rootfs.join(mountpoint.trim_start_matches('/'));
    let (tx, rx) = std::sync::mpsc::channel();
    let abandoned = Arc::new(AtomicBool::new(false));
    let (mp, gave_up) = (mountpoint.to_string(), abandoned.clone());
    // One short-lived thread per mount; statfs needs little stack, and a node with hundreds
    // of pod volume mounts starts hundreds of these per scrape.
    let spawned = std::thread::Builder::new()
        .name("statfs".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let r = statfs(&path);
            // Under the lock, so the scrape either takes this answer or has marked the mount
            // stuck, never neither.
            let mut stuck = stuck.lock();
            if gave_up.load(Ordering::Relaxed) {
                stuck.remove(&mp);
            } else {
                let _ = tx.send(r);
            }
        });
    match spawned {
        Ok(_) => Some(Pending { rx, abandoned }),
        Err(e) => {
            tracing::debug!(mountpoint, "cannot start a thread for statfs: {e}");
            None
        }
    }
}

impl Pending {
    /// The answer by `deadline`; `None` on error or timeout (the mount is then skipped until
    /// the call returns).
    fn wait(self, n: &Node, mountpoint: &str, deadline: std::time::Instant) -> Option<Stats> {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let answer = match self.rx.recv_timeout(left) {
            Ok(r) => r,
            Err(_) => {
                let mut stuck = n.fs_state.stuck.lock();
                match self.rx.try_recv() {
                    Ok(r) => r,
                    Err(_) => {
                        self.abandoned.store(true, Ordering::Relaxed);
                        stuck.insert(mountpoint.to_string());
                        tracing::warn!(
                            mountpoint,
                            "statfs timed out; the mount point is skipped until it answers"
                        );
                        return None;
                    }
                }
            }
        };
        answer
            .map_err(|e| tracing::debug!(mountpoint, "statfs failed: {e}"))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_unescaped_as_the_kernel_escapes_them() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("/x\\134y"), "/x\\y");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
    }
}
