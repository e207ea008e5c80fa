//! The values evaluation passes around and the errors it raises: shared by the evaluator
//! (`eval`), the functions (`funcs`) and selection (`select`), which is why they live in this
//! leaf module rather than in any of them.

use std::sync::Arc;

use vigil_model::{FloatHistogram, Labels, Sample};
use vigil_storage::{Series, StorageError};

/// A query result, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Sample),
    String(i64, String),
    /// One sample per series at the evaluation time.
    Vector(Vec<(Labels, Point)>),
    /// Samples per series over a range.
    Matrix(Vec<Series>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(..) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// A native histogram value, shared between steps and series.
pub type Hist = Arc<FloatHistogram>;

/// One value of an instant result: a float `v`, or a native histogram `h` (then `v` is 0
/// and means nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub t: i64,
    pub v: f64,
    pub h: Option<Hist>,
}

impl Point {
    pub fn float(t: i64, v: f64) -> Point {
        Point { t, v, h: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Invalid(String),
    /// The query cannot run as written for this step and range (a duration expression with
    /// no valid value): Prometheus refuses such a query before running it, as a bad parameter.
    #[error("{0}")]
    BadQuery(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// Past `--query.max-bytes`: the series and samples loaded would take more memory.
    #[error(
        "query processing would load more than {0} bytes of series and samples into memory in query execution (--query.max-bytes)"
    )]
    TooManyBytes(usize),
    /// Past the engine's deadline (`--query.timeout` or the request's `timeout`).
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// Internal: a fused evaluation met data it does not handle (native histograms) and the
    /// caller evaluates the plain way instead. Never leaves the engine.
    #[error("internal: evaluate unfused")]
    Unfused,
}

pub(crate) type R<T> = Result<T, EvalError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> R<T> {
    Err(EvalError::Invalid(msg.into()))
}

/// One series of an instant-vector node: a slot per step. A step holds a float in `pts` or a
/// native histogram in `hs`, never both; `hs` is empty for series without histograms, so
/// float code never pays for them, and code that reads only `pts` skips histogram samples
/// (what most float functions do in Prometheus).
#[derive(Debug, Clone)]
pub(crate) struct Stepped {
    pub labels: Labels,
    pub pts: Vec<Option<f64>>,
    pub hs: Vec<Option<Hist>>,
    /// With delayed name removal (`promql-delayed-name-removal`): `__name__` is still in
    /// `labels` but goes when the query's result is assembled. Always false without it.
    pub drop_name: bool,
}

impl Stepped {
    pub fn floats(labels: Labels, pts: Vec<Option<f64>>) -> Stepped {
        Stepped {
            labels,
            pts,
            hs: Vec::new(),
            drop_name: false,
        }
    }

    /// The histogram at step `k`, if any.
    pub fn h(&self, k: usize) -> Option<&Hist> {
        self.hs.get(k).and_then(Option::as_ref)
    }

    /// Whether step `k` holds a value of either kind.
    pub fn present(&self, k: usize) -> bool {
        self.pts[k].is_some() || self.h(k).is_some()
    }

    /// Whether any step holds a value of either kind.
    pub fn any(&self) -> bool {
        self.pts.iter().any(Option::is_some) || self.hs.iter().any(Option::is_some)
    }

    /// Put histogram `h` at step `k` (of `n`).
    pub fn set_h(&mut self, k: usize, h: Option<Hist>) {
        if self.hs.is_empty() {
            if h.is_none() {
                return;
            }
            self.hs = vec![None; self.pts.len()];
        }
        self.hs[k] = h;
    }

    pub fn has_histograms(&self) -> bool {
        self.hs.iter().any(Option::is_some)
    }
}

/// A node's value across all steps.
#[derive(Debug, Clone)]
pub(crate) enum V {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Stepped>),
    /// Raw samples (only at the top of an instant query, e.g. `x[5m]`).
    Matrix(Vec<Series>),
}

/// Raw samples of a range argument and where its windows sit relative to each step.
pub(crate) struct RangeArg {
    pub series: Vec<Series>,
    pub range_ms: i64,
    /// Window end for step i.
    pub ends: Vec<i64>,
    /// A subquery's series whose metric name is pending removal (delayed name removal): a
    /// function over them drops it too, even one that keeps names.
    pub dropped: std::collections::HashSet<Labels>,
    /// A subquery's: the samples its inner evaluation read (for query statistics).
    pub inner_samples: u64,
}
