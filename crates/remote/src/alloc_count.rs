//! Tests only: the heap one thread's work takes at its peak, counted by a global allocator
//! that wraps the system's. For bounds stated in bytes (what a decoded request may hold),
//! measured rather than worked out from type sizes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static NOW: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

pub struct Counting;

fn moved(by: isize) {
    // `try_with`: a thread being torn down has no counters left, and is not measured.
    let _ = NOW.try_with(|now| {
        now.set(now.get() + by);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now.get())));
    });
}

// SAFETY: every call goes to the system allocator with the caller's own arguments; the
// counting touches only const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires of it.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            moved(l.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from this allocator, which got it from the system's, with `l`.
        unsafe { System.dealloc(p, l) };
        moved(-(l.size() as isize));
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as `dealloc`: `p` is the system's, allocated with `l`.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            // Old and new both live while the bytes are copied.
            moved(new as isize);
            moved(-(l.size() as isize));
        }
        q
    }
}

/// `f`'s result and the most heap (bytes) it held at once beyond what the thread held before.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = NOW.with(|n| n.get());
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(|p| p.get());
    (r, (peak - start).max(0) as usize)
}
