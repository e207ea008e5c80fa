//! The ground floor of vigil: the data model every other crate speaks.
//!
//! - [`labels`]: label sets (sorted by name, unique names) and the well-known label names.
//! - [`sample`]: samples, the staleness marker.
//! - [`histogram`]: native histograms (float counts) and their arithmetic.
//! - [`exposition`]: zero-copy parsers for the Prometheus text format 0.0.4 and OpenMetrics 1.0.
//! - [`time`]: calendar arithmetic on Unix days.
//! - [`names`]: which metric and label names are valid, and how they are escaped.
//! - [`relabel`]: compiled relabel rules and their application, with Prometheus's semantics.
//! - [`budget`]: a byte budget shared by buffers that grow with what a peer sends.
//!
//! This crate does no I/O and knows nothing of config files, storage or HTTP.

pub mod budget;
pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod names;
pub mod relabel;
pub mod sample;
pub mod size;
pub mod time;

pub use histogram::{FloatHistogram, HistogramSample};
pub use labels::{Label, LabelRef, Labels, LabelsBuilder};
pub use sample::{STALE_NAN, Sample, is_stale_nan};

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: shortest digits, exponent form (`1.5e+09`)
/// when the decimal exponent is below -4 or at least 6; how Go programs print values that
/// vigil must print or read the same way.
pub fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    // The decimal exponent of the shortest representation, as Go decides with it.
    let sci = format!("{v:e}");
    let (m, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    format!("{v}")
}
