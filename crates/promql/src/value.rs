//! The values evaluation passes around and the errors it raises: shared by the evaluator
//! (`eval`), the functions (`funcs`) and selection (`select`), which is why they live in this
//! leaf module rather than in any of them.

use vigil_model::{Labels, Sample};
use vigil_storage::{Series, StorageError};

/// A query result, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Sample),
    String(i64, String),
    /// One sample per series at the evaluation time.
    Vector(Vec<(Labels, Sample)>),
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

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Invalid(String),
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
}

pub(crate) type R<T> = Result<T, EvalError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> R<T> {
    Err(EvalError::Invalid(msg.into()))
}

/// One series of an instant-vector node: a slot per step.
#[derive(Debug, Clone)]
pub(crate) struct Stepped {
    pub labels: Labels,
    pub pts: Vec<Option<f64>>,
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
}
