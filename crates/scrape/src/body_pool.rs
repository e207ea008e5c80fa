//! Buffers for scrape bodies, kept between scrapes.
//!
//! A large target's body (a 100,000-series exposition is 11.5 MB) would otherwise be a fresh
//! allocation every scrape: either pages the kernel maps and zeroes each time (about 2,900
//! page faults for that body), or memory of whichever thread's malloc arena ran the scrape,
//! which that arena then keeps. One pool, shared by every target as Prometheus shares its
//! scrape buffers, keeps a few large buffers: the process holds one body's worth per scrape
//! in flight, not one per thread. Bodies expected below [`MIN_KEPT`] come from malloc as
//! before: they are cheap and any arena reuses them.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Bodies expected smaller than this neither take nor leave a kept buffer.
pub const MIN_KEPT: usize = 1 << 20;
/// At most this many buffers are kept (scrapes in flight at once beyond it allocate).
const MAX_KEPT: usize = 4;
/// A buffer larger than this is not kept, so the pool holds at most 128 MiB.
const MAX_ONE_KEPT: usize = 32 << 20;
/// A buffer no scrape took back for this long is dropped (its large target went away).
const IDLE: Duration = Duration::from_secs(300);

/// A pool of body buffers.
pub struct BodyPool {
    free: Mutex<Vec<(Vec<u8>, Instant)>>,
}

/// The pool every scrape loop takes its bodies from.
pub static BODIES: BodyPool = BodyPool::new();

/// A body being read or parsed. Its buffer goes back to [`BODIES`] when dropped, on every
/// path: a parsed body, a failed read, a timeout dropping the fetch.
#[derive(Default)]
pub struct Body(Vec<u8>);

impl Body {
    /// An empty body with room for `want` bytes (see [`BodyPool::take`]).
    pub fn with_capacity(want: usize) -> Body {
        Body(BODIES.take(want))
    }
}

impl Deref for Body {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Body {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        BODIES.give(std::mem::take(&mut self.0));
    }
}

impl BodyPool {
    pub const fn new() -> Self {
        BodyPool {
            free: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer with room for `want` bytes. Below [`MIN_KEPT`], a new one. Else the
    /// smallest kept one that holds them, else a new one of `want` bytes (a kept buffer too
    /// small is left for a smaller body).
    pub fn take(&self, want: usize) -> Vec<u8> {
        if want < MIN_KEPT {
            return Vec::with_capacity(want);
        }
        let kept = {
            let mut free = self.free.lock();
            let now = Instant::now();
            free.retain(|(_, given)| now.duration_since(*given) < IDLE);
            free.iter()
                .enumerate()
                .filter(|(_, (b, _))| b.capacity() >= want)
                .min_by_key(|(_, (b, _))| b.capacity())
                .map(|(i, _)| i)
                .map(|i| free.swap_remove(i).0)
        };
        match kept {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(want),
        }
    }

    /// Hand a body's buffer back for a later scrape (dropped when small, outsized, or the
    /// pool is full).
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if !(MIN_KEPT..=MAX_ONE_KEPT).contains(&cap) {
            return;
        }
        buf.clear();
        let mut free = self.free.lock();
        let now = Instant::now();
        free.retain(|(_, given)| now.duration_since(*given) < IDLE);
        if free.len() >= MAX_KEPT {
            return;
        }
        free.push((buf, now));
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

    fn kept(pool: &BodyPool) -> Vec<usize> {
        pool.free.lock().iter().map(|(b, _)| b.capacity()).collect()
    }

    #[test]
    fn buffers_are_reused_within_bounds() {
        let pool = BodyPool::new();
        // Small and outsized buffers are not kept.
        pool.give(Vec::with_capacity(1024));
        pool.give(Vec::with_capacity(MAX_ONE_KEPT + 1));
        assert!(kept(&pool).is_empty());

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
        // A body expected small (or of unknown size) leaves the kept buffers alone.
        assert_eq!(pool.take(0).capacity(), 0);
        assert!(pool.take(MIN_KEPT - 1).capacity() < MIN_KEPT);
        assert_eq!(kept(&pool), vec![8 << 20]);
        // With none that fits, a new buffer: the kept one stays for a smaller body.
        assert!(pool.take(16 << 20).capacity() >= 16 << 20);
        assert_eq!(kept(&pool), vec![8 << 20]);

        // No more than MAX_KEPT buffers are kept.
        for _ in 0..MAX_KEPT + 2 {
            pool.give(Vec::with_capacity(MIN_KEPT));
        }
        assert_eq!(kept(&pool).len(), MAX_KEPT);

        // Buffers idle past IDLE are dropped at the next take or give.
        let pool = BodyPool::new();
        pool.give(Vec::with_capacity(2 << 20));
        pool.free.lock()[0].1 = Instant::now() - IDLE - Duration::from_secs(1);
        pool.give(Vec::with_capacity(3 << 20));
        assert_eq!(kept(&pool), vec![3 << 20]);
    }

    #[test]
    fn a_body_goes_back_when_dropped() {
        // The process-wide pool: only this test gives it a buffer of exactly this size.
        let want = MIN_KEPT + 12_345;
        let body = Body::with_capacity(want);
        let ptr = body.as_ptr();
        drop(body);
        let again = Body::with_capacity(want);
        assert_eq!(again.as_ptr(), ptr, "the dropped body's buffer is reused");
        assert!(again.is_empty());
    }
}
