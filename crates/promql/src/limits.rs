//! Bounds on one query's text, so that no input can exhaust the stack or memory.
//!
//! - Every recursive walk over the syntax tree (parser, evaluator, printers, the API's tree
//!   translation) goes through [`deep`]: when the thread's stack runs low it continues on a
//!   fresh heap-allocated segment, so nesting costs memory, never a stack overflow.
//!   [`MAX_NESTING`] bounds that memory.
//! - Chains of binary operators (`a + b + c + ...`, generated `x or y or ...` lists) parse in
//!   a loop and every walker follows their left spine in a loop, so their length is bounded
//!   only by [`MAX_NODES`], like the rest of the tree's size.
//! - [`MAX_TOKENS`] bounds the lexer's output before any tree is built.
//!
//! Dropping a tree is iterative (see `impl Drop for Expr`), as is [`crate::Expr::value_type`].

/// Deepest nesting the parser accepts: parentheses, function and aggregation arguments,
/// unary operators, subqueries and the right operand of a binary operator each add a level.
/// Prometheus sets no limit (its parser and evaluator grow their stacks until the Go runtime's
/// 1 GB limit ends the process); this one is far beyond any real query and keeps a query's
/// stack below about 40 MB in the release build.
pub const MAX_NESTING: usize = 20_000;

/// Most syntax tree nodes (operators, operands, calls, literals, selectors) in one query.
pub const MAX_NODES: usize = 250_000;

/// Most tokens in one query.
pub const MAX_TOKENS: usize = 1_000_000;

/// Timestamps (`@`, and the API's `time`, `start`, `end`) are clamped to +-2^61 ms (73 million
/// years), beyond any data: offsets, ranges and the lookback can then be added without
/// overflowing. Prometheus converts them unchecked.
pub const MAX_TIME_MS: i64 = 1 << 61;

/// Durations (ranges, offsets, steps) as Prometheus bounds them: what fits in Go's
/// `time.Duration` (int64 nanoseconds, about 292 years).
pub const MAX_DURATION_MS: i64 = i64::MAX / 1_000_000;

/// A timestamp in seconds to milliseconds, clamped to [`MAX_TIME_MS`].
pub fn clamp_time_ms(seconds: f64) -> i64 {
    ((seconds * 1000.0).round() as i64).clamp(-MAX_TIME_MS, MAX_TIME_MS)
}

/// Stack that must be left for the code between two guarded calls (debug builds have frames of
/// tens of kilobytes).
const RED_ZONE: usize = 256 * 1024;
/// Size of each extra stack segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Run `f`, on a new stack segment if this thread's stack is nearly used up.
#[inline]
pub fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
