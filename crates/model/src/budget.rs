//! A byte budget shared by buffers that grow with what a peer sends.
//!
//! A body read whole (a scrape, a probe) is bounded by nothing else when no size limit is
//! configured: a peer that sends without end, or a small gzip body that expands to gigabytes,
//! would take the process's memory before any timeout. Every such buffer charges its capacity
//! here as it grows; past the budget, or past half of it for one buffer (so one peer cannot
//! take every other's room), the growth is refused and the caller fails that one read.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes held by every buffer charged to it, and the most they may hold together.
pub struct ByteBudget {
    held: AtomicUsize,
    budget: AtomicUsize,
}

/// A buffer would grow past its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// The budget, bytes.
    pub budget: usize,
    /// The buffer's length had it grown.
    pub wanted: usize,
}

impl Default for ByteBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteBudget {
    /// No bound until [`ByteBudget::set`] gives one.
    pub const fn new() -> Self {
        ByteBudget {
            held: AtomicUsize::new(0),
            budget: AtomicUsize::new(usize::MAX),
        }
    }

    /// Set the most all charged buffers may hold together.
    pub fn set(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
    }

    /// The budget, bytes.
    pub fn budget(&self) -> usize {
        self.budget.load(Ordering::Relaxed)
    }

    /// The bytes charged now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Count `bytes` more as held, unless that passes the budget.
    pub fn charge(&self, bytes: usize) -> bool {
        let budget = self.budget();
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |h| {
                h.checked_add(bytes).filter(|&n| n <= budget)
            })
            .is_ok()
    }

    /// Give back `bytes` an earlier charge counted.
    pub fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Make room in `buf` for `more` bytes past its length, growing it as a `Vec` grows (at
    /// least doubling, less where the budget has less left) only while everything charged
    /// stays within the budget and this buffer within half of it. `charged` is what this
    /// buffer has counted so far; it is updated to the buffer's new capacity.
    pub fn reserve(
        &self,
        buf: &mut Vec<u8>,
        charged: &mut usize,
        more: usize,
    ) -> Result<(), OverBudget> {
        let need = buf.len().saturating_add(more);
        if need <= buf.capacity() {
            return Ok(());
        }
        let budget = self.budget();
        let over = OverBudget {
            budget,
            wanted: need,
        };
        if need > budget / 2 {
            return Err(over);
        }
        let grown = need.max(buf.capacity().saturating_mul(2)).min(budget / 2);
        // As much of the doubled size as is left, and at least what is needed.
        let left = budget.saturating_sub(self.held());
        let target = grown.min(charged.saturating_add(left)).max(need);
        if !self.charge(target - *charged) {
            return Err(over);
        }
        buf.reserve_exact(target - buf.len());
        // The allocator may round up: count what the buffer holds.
        let now = buf.capacity();
        if now > target {
            self.held.fetch_add(now - target, Ordering::AcqRel);
        }
        *charged = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_stops_at_half_the_budget_for_one_buffer_and_the_budget_for_all() {
        let b = ByteBudget::new();
        b.set(1000);
        let (mut one, mut c1) = (Vec::new(), 0);
        b.reserve(&mut one, &mut c1, 400).unwrap();
        one.resize(400, 0);
        assert_eq!(b.held(), c1);
        // Past half the budget for one buffer: refused, nothing more charged.
        let err = b.reserve(&mut one, &mut c1, 200).unwrap_err();
        assert_eq!(
            err,
            OverBudget {
                budget: 1000,
                wanted: 600
            }
        );
        assert_eq!(b.held(), c1);
        // A second buffer gets what is left and no more.
        let (mut two, mut c2) = (Vec::new(), 0);
        b.reserve(&mut two, &mut c2, 450).unwrap();
        two.resize(450, 0);
        assert_eq!(b.held(), c1 + c2);
        assert!(b.held() <= 1000);
        let (mut three, mut c3) = (Vec::new(), 0);
        let left = 1000 - b.held();
        assert!(b.reserve(&mut three, &mut c3, left + 1).is_err());
        b.release(c1);
        b.release(c2);
        assert_eq!(b.held(), c3);
    }

    #[test]
    fn no_growth_needed_charges_nothing() {
        let b = ByteBudget::new();
        b.set(100);
        let mut buf = Vec::with_capacity(10);
        let mut charged = 10;
        assert!(b.charge(10));
        b.reserve(&mut buf, &mut charged, 10).unwrap();
        assert_eq!((b.held(), charged), (10, 10));
    }
}
