//! Service discovery: turns the `*_sd_configs` and `static_configs` of each scrape job into
//! [`TargetGroup`]s and hands the scrape side one merged, debounced view of them.
//!
//! - [`TargetGroup`]: label sets for targets plus labels common to the group.
//! - [`static_sd`], [`file_sd`] and [`kubernetes`]: the providers; [`health`]: what each
//!   running provider last failed at, for the pages that list targets.
//! - [`Manager`]: runs one provider task per SD config, merges their groups per job and
//!   publishes them on a `watch` channel at most every [`DEBOUNCE`].
//!
//! Discovery never touches scraping or storage: its only output is the watch channel.

pub mod file_sd;
pub mod health;
pub mod kubernetes;
pub mod manager;
pub mod metrics;
pub mod static_sd;

pub use manager::{DEBOUNCE, JobSd, Manager, TargetSets};

use vigil_model::Labels;

/// A set of targets sharing common labels, identified by its `source` within a provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetGroup {
    /// Identifies the group within its provider (e.g. `file.json:0`); a later group with the
    /// same source replaces it.
    pub source: String,
    /// One label set per target, each with at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels applied to every target of the group (targets' own labels win).
    pub labels: Labels,
}
