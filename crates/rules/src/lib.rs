//! Recording and alerting rules, as Prometheus evaluates them.
//!
//! - [`file`]: rule files read and checked (current Prometheus's format and messages).
//! - [`template`]: Go's text/template with Prometheus's functions, for alert labels and
//!   annotations.
//! - [`rule`]: one rule's evaluation; alert states.
//! - [`concurrency`]: `concurrent-rule-eval`: a group's rules batched by what they read of
//!   each other, and the evaluation slots all groups share.
//! - [`group`]: a group's evaluation at a slot: results and staleness markers written through
//!   the storage's appender, `for` state restored after a restart.
//! - [`manager`]: the groups running, replaced on reload with their state carried over.
//! - [`notifier`]: alerts sent to Alertmanager (discovery, relabeling, a bounded queue).
//! - [`api`]: the rules, alerts and self-metrics as Prometheus's API shows them.
//! - [`unittest`]: `vigil test rules`, promtool's rule unit tests.
//!
//! Rules sit above `promql` and `storage`: they query through the engine and write through
//! the same appender as scrapes.

pub mod api;
pub mod concurrency;
pub mod file;
pub mod group;
pub mod manager;
pub mod notifier;
pub mod rule;
pub mod template;
pub mod unittest;

pub use manager::{Manager, Options};
