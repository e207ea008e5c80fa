//! Mount points as the node and container exporters read them: the kernel's escaping in
//! `/proc/*/mounts` and `mountinfo`, `statfs(2)`, and calls into a mount point that may hang
//! (a dead NFS server, a disk that stopped answering) made on a thread of their own, so a
//! scrape waits for a hung mount once and then skips it until the call returns.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::Instant;

use parking_lot::Mutex;

/// `statfs(2)`'s answer, in the kernel's units: each exporter multiplies as the program it
/// imitates does (node_exporter by `f_bsize`, cAdvisor by `f_frsize`).
#[derive(Debug, Clone, Copy)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub bsize: u64,
    pub frsize: u64,
    pub files: u64,
    pub ffree: u64,
}

pub fn statfs(path: &Path) -> std::io::Result<Statfs> {
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
    Ok(Statfs {
        blocks: buf.f_blocks as u64,
        bfree: buf.f_bfree as u64,
        bavail: buf.f_bavail as u64,
        bsize: buf.f_bsize as u64,
        frsize: buf.f_frsize as u64,
        files: buf.f_files as u64,
        ffree: buf.f_ffree as u64,
    })
}

/// `/proc/mounts` and `mountinfo` escape space, tab, newline and backslash as three octal
/// digits.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Three octal digits making a byte (the first at most 3).
        if b[i] == b'\\'
            && b[i + 1..].len() >= 3
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
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

/// Mount points whose last call has not returned: they are skipped until it does.
#[derive(Default, Clone)]
pub struct Hung(Arc<Mutex<HashSet<String>>>);

/// A call into a mount point running on a thread of its own.
pub struct Pending<T> {
    rx: Receiver<std::io::Result<T>>,
    abandoned: Arc<AtomicBool>,
    mountpoint: String,
    hung: Hung,
}

impl Hung {
    /// Start `f`, which reaches into `mountpoint`, on a thread of `stack` bytes; `None` while
    /// an earlier call on that mount point is still hung, or when no thread can be started.
    pub fn start<T: Send + 'static>(
        &self,
        mountpoint: &str,
        stack: usize,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Option<Pending<T>> {
        if self.0.lock().contains(mountpoint) {
            tracing::debug!(mountpoint, "mount point is still unresponsive; skipped");
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let (mp, gave_up, hung) = (mountpoint.to_string(), abandoned.clone(), self.clone());
        let spawned = std::thread::Builder::new()
            .name("mount-probe".into())
            .stack_size(stack)
            .spawn(move || {
                // A call that panics ends like one that answered: the mark goes.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                // Under the lock, so the waiter either takes this answer or has marked the
                // mount point hung, never neither.
                let mut hung = hung.0.lock();
                if gave_up.load(Ordering::Relaxed) {
                    hung.remove(&mp);
                } else if let Ok(r) = r {
                    let _ = tx.send(r);
                } else {
                    // Under the lock too: the waiter sees the end, never an empty channel.
                    drop(tx);
                }
            });
        match spawned {
            Ok(_) => Some(Pending {
                rx,
                abandoned,
                mountpoint: mountpoint.to_string(),
                hung: self.clone(),
            }),
            Err(e) => {
                tracing::debug!(mountpoint, "cannot start a thread for the mount point: {e}");
                None
            }
        }
    }
}

impl<T> Pending<T> {
    /// The call's answer by `deadline`; `None` when it has not answered by then (the mount
    /// point is then skipped until it does) or its thread ended without an answer.
    pub fn wait(self, deadline: Instant) -> Option<std::io::Result<T>> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(r) => Some(r),
            // The call panicked: nothing hangs, so nothing is skipped later.
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let mut hung = self.hung.0.lock();
                match self.rx.try_recv() {
                    Ok(r) => Some(r),
                    Err(TryRecvError::Disconnected) => None,
                    Err(TryRecvError::Empty) => {
                        self.abandoned.store(true, Ordering::Relaxed);
                        hung.insert(self.mountpoint.clone());
                        tracing::warn!(
                            mountpoint = %self.mountpoint,
                            "the mount point did not answer in time; it is skipped until it does"
                        );
                        None
                    }
                }
            }
        }
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
        assert_eq!(unescape("/big\\777"), "/big\\777");
    }

    #[test]
    fn a_call_that_panics_leaves_no_mark() {
        let hung = Hung::default();
        let p = hung
            // A stack the panic hook can print a backtrace on.
            .start("/boom", 1 << 20, || -> std::io::Result<u8> {
                panic!("probe")
            })
            .unwrap();
        assert!(
            p.wait(Instant::now() + std::time::Duration::from_secs(10))
                .is_none()
        );
        let q = hung.start("/boom", 64 * 1024, || Ok(1)).unwrap();
        assert_eq!(
            q.wait(Instant::now() + std::time::Duration::from_secs(10))
                .unwrap()
                .unwrap(),
            1
        );
    }

    #[test]
    fn a_hung_call_is_skipped_until_it_returns() {
        let hung = Hung::default();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let p = hung
            .start("/stuck", 64 * 1024, move || {
                let _ = gate.recv();
                Ok(1)
            })
            .unwrap();
        assert!(p.wait(Instant::now()).is_none());
        // Skipped while the first call hangs.
        assert!(hung.start("/stuck", 64 * 1024, || Ok(2)).is_none());
        // Other mount points are not.
        let q = hung.start("/fine", 64 * 1024, || Ok(3)).unwrap();
        assert_eq!(
            q.wait(Instant::now() + std::time::Duration::from_secs(10))
                .unwrap()
                .unwrap(),
            3
        );
        release.send(()).unwrap();
        // Once the hung call returns, the mount point is asked again.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(p) = hung.start("/stuck", 64 * 1024, || Ok(4)) {
                assert_eq!(p.wait(deadline).unwrap().unwrap(), 4);
                break;
            }
            assert!(Instant::now() < deadline, "the mount point stayed skipped");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
