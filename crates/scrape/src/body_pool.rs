//! Buffers for scrape bodies, kept between scrapes.
//!
//! A large target's body (a 100,000-series exposition is 11.5 MB) would otherwise be a fresh
//! allocation every scrape: either pages the kernel maps and zeroes each time (about 2,900
//! page faults for that body), or memory of whichever thread's malloc arena ran the scrape,
//! which that arena then keeps. One pool, shared by every target as Prometheus shares its
//! scrape buffers, keeps a few large buffers: the process holds one body's worth per scrape
//! in flight, not one per thread. Small bodies come from malloc as before: they are cheap and
//! any arena reuses them.

use parking_lot::Mutex;

/// Buffers smaller than this are not kept: malloc serves them without page faults.
const MIN_KEPT: usize = 1 << 20;
/// At most this many buffers are kept (scrapes in flight at once beyond it allocate).
const MAX_KEPT: usize = 4;
/// At most this many bytes are kept over all buffers.
const MAX_KEPT_BYTES: usize = 128 << 20;

/// A pool of body buffers.
pub struct BodyPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// The pool every scrape loop takes its bodies from.
pub static BODIES: BodyPool = BodyPool::new();

impl BodyPool {
    pub const fn new() -> Self {
        BodyPool {
            free: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer with room for `want` bytes: the smallest kept one that holds them,
    /// else the largest kept one grown to `want`, else a new one.
    pub fn take(&self, want: usize) -> Vec<u8> {
        let kept = {
            let mut free = self.free.lock();
            let fits = free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= want)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            let pick = fits.or_else(|| {
                free.iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.capacity())
                    .map(|(i, _)| i)
            });
            pick.map(|i| free.swap_remove(i))
        };
        match kept {
            Some(mut b) => {
                b.clear();
                b.reserve(want);
                b
            }
            None => Vec::with_capacity(want),
        }
    }

    /// Hand a body's buffer back for a later scrape (dropped when small or the pool is full).
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap < MIN_KEPT {
            return;
        }
        let mut free = self.free.lock();
        let kept: usize = free.iter().map(Vec::capacity).sum();
        if free.len() >= MAX_KEPT || kept + cap > MAX_KEPT_BYTES {
            return;
        }
        buf.clear();
        free.push(buf);
    }
}

impl Default for BodyPool {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_within_bounds() {
        let pool = BodyPool::new();
        // A small buffer is not kept.
        pool.give(Vec::with_capacity(1024));
        assert!(pool.free.lock().is_empty());

        // A large one is, and comes back empty for a body that fits, without reallocating.
        let mut b = pool.take(3 << 20);
        b.extend_from_slice(&[7; 100]);
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take(2 << 20);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.capacity() >= 3 << 20);

        // The best fit is taken: the smallest that holds the body.
        let small_ptr = again.as_ptr();
        pool.give(Vec::with_capacity(8 << 20));
        pool.give(again);
        let best = pool.take(2 << 20);
        assert_eq!(best.as_ptr(), small_ptr);
        // With none that fits, the largest is grown.
        assert!(pool.take(16 << 20).capacity() >= 16 << 20);
        assert!(pool.free.lock().is_empty());

        // No more than MAX_KEPT buffers, nor MAX_KEPT_BYTES, are kept.
        for _ in 0..MAX_KEPT + 2 {
            pool.give(Vec::with_capacity(MIN_KEPT));
        }
        assert_eq!(pool.free.lock().len(), MAX_KEPT);
        let pool = BodyPool::new();
        pool.give(Vec::with_capacity(MAX_KEPT_BYTES - MIN_KEPT));
        pool.give(Vec::with_capacity(2 * MIN_KEPT));
        assert_eq!(pool.free.lock().len(), 1);
    }
}
