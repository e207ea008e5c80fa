//! The ground floor of vigil: the data model every other crate speaks.
//!
//! - [`labels`]: label sets (sorted by name, unique names) and the well-known label names.
//! - [`sample`]: samples, the staleness marker.
//! - [`histogram`]: native histograms (float counts) and their arithmetic.
//! - [`exposition`]: zero-copy parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//! - [`time`]: calendar arithmetic on Unix days.
//! - [`relabel`]: compiled relabel rules and their application, with Prometheus's semantics.
//!
//! This crate does no I/O and knows nothing of config files, storage or HTTP.

pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod relabel;
pub mod sample;
pub mod time;

pub use histogram::{FloatHistogram, HistogramSample};
pub use labels::{Label, LabelRef, Labels, LabelsBuilder};
pub use sample::{STALE_NAN, Sample, is_stale_nan};
