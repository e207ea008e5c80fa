//! PromQL over the storage `Querier`.
//!
//! - [`lexer`], [`parser`], [`ast`]: our own parser of Prometheus's grammar, with positions
//!   and Prometheus's error wording; [`functions`] is the function table.
//! - [`eval`]: the engine. Every query runs as a range of steps; selectors walk each series
//!   once across all steps. What it shares with the functions and selection is in two leaf
//!   modules: [`value`] (values and errors) and [`context`] (engine settings, the
//!   per-query [`context::EvalContext`]).
//! - `funcs`: function implementations, by job (window functions, statistics kernels,
//!   histograms, sorting); `call` for the rest.
//! - [`pretty`]: multi-line formatting as Prometheus's `format_query`.
//! - `select`: reading a selector's series in shards on several threads, streamed.
//! - [`stats`]: what a query read and held, and its timings (the API's `stats=`).
//! - [`promqltest`]: the runner for Prometheus's `.test` files.
//!
//! The engine never knows which storage implementation is behind the querier.

pub mod ast;
pub mod context;
pub mod durations;
pub mod eval;
mod funcs;
pub mod functions;
pub mod lexer;
pub mod limits;
pub mod parser;
pub mod pretty;
pub mod promqltest;
mod select;
pub mod stats;
pub mod value;

pub use ast::Expr;
pub use context::Engine;
pub use eval::QueryResult;
pub use parser::{Features, ParseError, parse, parse_with};
pub use stats::{QueryStats, StatsLevel};
pub use value::{EvalError, Hist, Point, Value};
