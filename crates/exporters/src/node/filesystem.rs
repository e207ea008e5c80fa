//! The filesystem collector: every mount in `/proc/1/mounts` not excluded by mount point or
//! type, with `statfs(2)`'s sizes. A `statfs` that hangs (a dead NFS server) is abandoned after
//! `--collector.filesystem.mount-timeout` and the mount is reported as erroring, and skipped,
//! until that call returns.

use std::collections::HashSet;

use crate::mounts::{Hung, statfs, unescape};

use super::{Error, Node, Out, read};

/// Mount points whose `statfs` has not returned yet.
#[derive(Default)]
pub struct State {
    hung: Hung,
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
        .map(|(_, mp, _, _)| {
            let path = n.paths.rootfs.join(mp.trim_start_matches('/'));
            // statfs needs little stack, and a node with hundreds of pod volume mounts
            // starts hundreds of these per scrape.
            n.fs_state.hung.start(mp, 64 * 1024, move || statfs(&path))
        })
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
        let stats = p.and_then(|p| p.wait(deadline)).and_then(|r| {
            r.map_err(|e| tracing::debug!(mountpoint, "statfs failed: {e}"))
                .ok()
        });
        out.gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            &labels,
            if stats.is_some() { 0.0 } else { 1.0 },
        );
        let Some(s) = stats else { continue };
        // node_exporter multiplies by the block size, not the fragment size.
        let bsize = s.bsize as f64;
        for (name, help, v) in [
            (
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                s.blocks as f64 * bsize,
            ),
            (
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                s.bfree as f64 * bsize,
            ),
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                s.bavail as f64 * bsize,
            ),
            (
                "node_filesystem_files",
                "Filesystem total file nodes.",
                s.files as f64,
            ),
            (
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                s.ffree as f64,
            ),
        ] {
            out.gauge(name, help, &labels, v);
        }
    }
    Ok(())
}

/// Run `f`, which reaches into the mount point `mountpoint`, on a thread of its own, giving
/// up after `--collector.filesystem.mount-timeout`: a mount that hangs then costs the scrape
/// that long once, and is skipped, as the filesystem collector skips it, until the call
/// returns. `None` when skipped or given up.
pub(super) fn within_mount_timeout<T: Send + 'static>(
    n: &Node,
    mountpoint: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Option<std::io::Result<T>> {
    let deadline = std::time::Instant::now() + n.opts.fs_mount_timeout;
    n.fs_state
        .hung
        .start(mountpoint, 256 * 1024, f)?
        .wait(deadline)
}
