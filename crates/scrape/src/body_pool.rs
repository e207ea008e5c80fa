//! Buffers for scrape bodies, kept between scrapes.
//!
//! A large target's body (a 100,000-series exposition is 11.5 MB) would otherwise be a fresh
//! allocation every scrape: either pages the kernel maps and zeroes each time (about 2,800
//! page faults for that body), or memory of whichever thread's malloc arena ran the scrape,
//! which that arena then keeps. One pool, shared by every target as Prometheus shares its
//! scrape buffers, keeps a few large buffers: the process holds one body's worth per scrape
//! in flight, not one per thread. Bodies expected below [`MIN_KEPT`] come from malloc as
//! before: they are cheap and any arena reuses them.

use std::ops::Deref;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use vigil_model::budget::ByteBudget;
pub use vigil_model::budget::OverBudget;

/// Bodies expected smaller than this do not take a kept buffer, and buffers smaller than
/// this are not kept (a body expected small that grew past it is).
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
    /// How many buffers `free` holds: read without the lock, so the scrapes of small bodies
    /// look at the pool (to drop idle buffers) only when it holds any.
    kept: AtomicUsize,
}

/// The pool every scrape loop takes its bodies from.
pub static BODIES: BodyPool = BodyPool::new();

/// The bytes every body being read or parsed holds (their buffers' capacity), and the most
/// they may hold together. Without a `body_size_limit` nothing else bounds a body: a target
/// that sends without end, or a small gzip body that expands to gigabytes, would take the
/// process's memory before its scrape timeout. Past the budget, or past half of it for one
/// body, the scrape that would grow fails instead ([`OverBudget`]) and the server goes on.
static BUDGET: ByteBudget = ByteBudget::new();

/// Set the most all bodies in flight may hold (the server: a quarter of its memory).
pub fn set_budget(bytes: usize) {
    BUDGET.set(bytes.max(MIN_KEPT));
}

/// The budget of all bodies in flight, bytes.
pub fn budget() -> usize {
    BUDGET.budget()
}

/// The bytes all bodies in flight hold now.
pub fn held() -> usize {
    BUDGET.held()
}

/// A body being read or parsed. Its buffer goes back to [`BODIES`] when dropped, on every
/// path: a parsed body, a failed read, a timeout dropping the fetch. Its capacity is counted
/// against the budget of all bodies in flight while it lives.
#[derive(Default)]
pub struct Body {
    buf: Vec<u8>,
    /// The capacity counted in [`BUDGET`].
    charged: usize,
}

impl Body {
    /// An empty body with room for `want` bytes (see [`BodyPool::take`]); the room is
    /// counted against the budget (none if that would pass it, or half of it: the body then
    /// grows, and is counted, as bytes arrive).
    pub fn with_capacity(want: usize) -> Body {
        let buf = BODIES.take(want);
        if buf.capacity() <= budget() / 2 && BUDGET.charge(buf.capacity()) {
            let charged = buf.capacity();
            return Body { buf, charged };
        }
        BODIES.give(buf);
        Body::default()
    }

    /// Append `bytes`, growing the buffer only within the budget of all bodies in flight
    /// (see [`ByteBudget::reserve`]), so one target cannot take every other target's room.
    pub fn extend_within_budget(&mut self, bytes: &[u8]) -> Result<(), OverBudget> {
        BUDGET.reserve(&mut self.buf, &mut self.charged, bytes.len())?;
        self.buf.extend_from_slice(bytes);
        Ok(())
    }
}

impl Deref for Body {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.buf
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        BUDGET.release(self.charged);
        BODIES.give(std::mem::take(&mut self.buf));
    }
}

impl BodyPool {
    pub const fn new() -> Self {
        BodyPool {
            free: Mutex::new(Vec::new()),
            kept: AtomicUsize::new(0),
        }
    }

    /// An empty buffer with room for `want` bytes. Below [`MIN_KEPT`], a new one. Else the
    /// smallest kept one that holds them, else a new one an eighth larger than `want` (up to
    /// [`MAX_ONE_KEPT`], so it can be kept), so a body that grows a little still fits next
    /// time (a kept buffer too small is left for a smaller body).
    pub fn take(&self, want: usize) -> Vec<u8> {
        if want < MIN_KEPT {
            self.expire_idle();
            return Vec::with_capacity(want);
        }
        // Idle buffers are freed after the lock is let go.
        let (kept, _idle) = {
            let mut free = self.free.lock();
            let idle = Self::drop_idle(&mut free);
            let fit = free
                .iter()
                .enumerate()
                .filter(|(_, (b, _))| b.capacity() >= want)
                .min_by_key(|(_, (b, _))| b.capacity())
                .map(|(i, _)| i)
                .map(|i| free.swap_remove(i).0);
            self.kept.store(free.len(), Ordering::Relaxed);
            (fit, idle)
        };
        match kept {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity((want + want / 8).min(MAX_ONE_KEPT).max(want)),
        }
    }

    /// Hand a body's buffer back for a later scrape. Small and outsized buffers are dropped;
    /// with the pool full, it takes the place of the smallest kept one if it is larger.
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if !(MIN_KEPT..=MAX_ONE_KEPT).contains(&cap) {
            self.expire_idle();
            return;
        }
        buf.clear();
        let now = Instant::now();
        // What is dropped here is freed after the lock is let go.
        let _out = {
            let mut free = self.free.lock();
            let idle = Self::drop_idle(&mut free);
            let out = if free.len() < MAX_KEPT {
                free.push((buf, now));
                None
            } else {
                let smallest = (0..free.len()).min_by_key(|&i| free[i].0.capacity());
                match smallest {
                    Some(i) if free[i].0.capacity() < cap => {
                        Some(std::mem::replace(&mut free[i], (buf, now)))
                    }
                    _ => Some((buf, now)),
                }
            };
            self.kept.store(free.len(), Ordering::Relaxed);
            (idle, out)
        };
    }

    /// Drop buffers no scrape took back for [`IDLE`]: called by every take and give, so a
    /// pool whose large targets went away empties while small ones are still scraped.
    fn expire_idle(&self) {
        if self.kept.load(Ordering::Relaxed) == 0 {
            return;
        }
        let _idle = {
            let mut free = self.free.lock();
            let idle = Self::drop_idle(&mut free);
            self.kept.store(free.len(), Ordering::Relaxed);
            idle
        };
    }

    /// Take the idle buffers out of `free` (for the caller to drop after unlocking).
    fn drop_idle(free: &mut Vec<(Vec<u8>, Instant)>) -> Vec<(Vec<u8>, Instant)> {
        let now = Instant::now();
        let mut idle = Vec::new();
        let mut i = 0;
        while i < free.len() {
            if now.duration_since(free[i].1) >= IDLE {
                idle.push(free.swap_remove(i));
            } else {
                i += 1;
            }
        }
        idle
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
        let mut v: Vec<usize> = pool.free.lock().iter().map(|(b, _)| b.capacity()).collect();
        v.sort_unstable();
        v
    }

    /// Make every kept buffer look idle past [`IDLE`].
    fn age(pool: &BodyPool) {
        for (_, given) in pool.free.lock().iter_mut() {
            if let Some(old) = given.checked_sub(IDLE + Duration::from_secs(1)) {
                *given = old;
            }
        }
    }

    #[test]
    fn buffers_are_reused_within_bounds() {
        let pool = BodyPool::new();
        // Small and outsized buffers are not kept.
        pool.give(Vec::with_capacity(1024));
        pool.give(Vec::with_capacity(MAX_ONE_KEPT + 1));
        assert!(kept(&pool).is_empty());

        // A new large buffer has room to grow; given back, it comes back empty for a body
        // that fits, without reallocating.
        let mut b = pool.take(3 << 20);
        assert_eq!(b.capacity(), (3 << 20) + (3 << 20) / 8);
        b.extend_from_slice(&[7; 100]);
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take((3 << 20) + 100);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr);

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
        // With none that fits, a new buffer: the kept one stays for a smaller body. Its room
        // to grow stops where it could no longer be kept.
        assert!(pool.take(16 << 20).capacity() >= 16 << 20);
        assert_eq!(pool.take(MAX_ONE_KEPT - 1).capacity(), MAX_ONE_KEPT);
        assert_eq!(pool.take(MAX_ONE_KEPT + 1).capacity(), MAX_ONE_KEPT + 1);
        assert_eq!(kept(&pool), vec![8 << 20]);

        // At most MAX_KEPT buffers; a full pool swaps its smallest for a larger one.
        for _ in 0..MAX_KEPT + 2 {
            pool.give(Vec::with_capacity(MIN_KEPT));
        }
        assert_eq!(kept(&pool), vec![MIN_KEPT, MIN_KEPT, MIN_KEPT, 8 << 20]);
        pool.give(Vec::with_capacity(4 << 20));
        assert_eq!(kept(&pool), vec![MIN_KEPT, MIN_KEPT, 4 << 20, 8 << 20]);
    }

    #[test]
    fn idle_buffers_are_dropped_by_any_scrape() {
        let pool = BodyPool::new();
        // By a large body's give, or by the scrape of a small body (its take or its give).
        for small_scrape in [None, Some(true), Some(false)] {
            pool.give(Vec::with_capacity(2 << 20));
            age(&pool);
            match small_scrape {
                None => {
                    pool.give(Vec::with_capacity(3 << 20));
                    assert_eq!(kept(&pool), vec![3 << 20]);
                    age(&pool);
                    pool.give(Vec::with_capacity(10));
                }
                Some(true) => drop(pool.take(10)),
                Some(false) => pool.give(Vec::with_capacity(10)),
            }
            assert!(kept(&pool).is_empty());
        }
    }

    #[test]
    fn a_body_goes_back_when_dropped() {
        let body = Body::with_capacity(MIN_KEPT + 12_345);
        let ptr = body.as_ptr();
        drop(body);
        assert!(
            BODIES.free.lock().iter().any(|(b, _)| b.as_ptr() == ptr),
            "the dropped body's buffer is in the pool"
        );
    }
}
