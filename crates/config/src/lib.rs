//! `prometheus.yml`: parsed as current Prometheus parses it, validated, with defaults and
//! global inheritance applied.
//!
//! - [`raw`]: the YAML as written (strict serde structs; unknown fields and duplicate keys
//!   are errors).
//! - `types`: the resolved types other crates use ([`Config`], [`ScrapeConfig`], ...).
//! - `load`: reading a file and resolving it section by section, each section checked by
//!   its own module (`scrape`, `discovery`, `relabel`, `http`, `remote`, `alerting`,
//!   `storage`), with errors ([`ConfigError`], built in `error`, `context` and
//!   `yaml_error`) that name the field path and, where the YAML parser knows it, the line.
//! - `unimplemented`: fields accepted but not acted on, reported by name.
//! - `mask`: configs and URLs without their secrets, for display.
//! - [`units`]: Prometheus's durations and sizes (one parser for flags and config).
//!
//! This crate reads files (the config, `scrape_config_files`) but starts nothing.

pub mod raw;
pub mod reserialize;
pub mod units;

mod alerting;
mod context;
mod discovery;
mod error;
mod http;
mod load;
mod mask;
mod otlp;
mod relabel;
mod remote;
mod scrape;
mod storage;
mod types;
mod unimplemented;
mod yaml_error;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_model::Labels;
pub use vigil_model::names::{NameEscaping, NameValidation};
use vigil_model::relabel::{Action, RelabelConfig, RelabelRegex};

pub use error::ConfigError;
pub use mask::mask_url;
pub use types::*;
pub use unimplemented::Unimplemented;
pub use units::{format_duration, parse_duration, parse_size};

use raw::*;
use {
    alerting::*, context::*, discovery::*, http::*, relabel::*, remote::*, scrape::*, storage::*,
    unimplemented::*, yaml_error::*,
};

#[cfg(test)]
mod field_table_tests;
#[cfg(test)]
mod tests;
