//! The function table: names, argument types, return types.

use crate::ast::ValueType::{self, Matrix as M, Scalar as S, String as Str, Vector as V};

#[derive(Debug, PartialEq)]
pub struct Function {
    pub name: &'static str,
    pub args: &'static [ValueType],
    /// 0: exactly `args`; n > 0: up to n of the trailing args may be left out; -1: the last
    /// arg may repeat any number of times (including zero times).
    pub variadic: i32,
    pub ret: ValueType,
    /// Marked experimental upstream (behind a feature flag there).
    pub experimental: bool,
}

macro_rules! f {
    ($name:literal, [$($a:expr),*], $var:expr, $ret:expr) => {
        Function { name: $name, args: &[$($a),*], variadic: $var, ret: $ret, experimental: false }
    };
    ($name:literal, [$($a:expr),*], $var:expr, $ret:expr, exp) => {
        Function { name: $name, args: &[$($a),*], variadic: $var, ret: $ret, experimental: true }
    };
}

pub static FUNCTIONS: &[Function] = &[
    f!("abs", [V], 0, V),
    f!("absent", [V], 0, V),
    f!("absent_over_time", [M], 0, V),
    f!("acos", [V], 0, V),
    f!("acosh", [V], 0, V),
    f!("asin", [V], 0, V),
    f!("asinh", [V], 0, V),
    f!("atan", [V], 0, V),
    f!("atanh", [V], 0, V),
    f!("avg_over_time", [M], 0, V),
    f!("ceil", [V], 0, V),
    f!("changes", [M], 0, V),
    f!("clamp", [V, S, S], 0, V),
    f!("clamp_max", [V, S], 0, V),
    f!("clamp_min", [V, S], 0, V),
    f!("cos", [V], 0, V),
    f!("cosh", [V], 0, V),
    f!("count_over_time", [M], 0, V),
    f!("days_in_month", [V], 1, V),
    f!("day_of_month", [V], 1, V),
    f!("day_of_week", [V], 1, V),
    f!("day_of_year", [V], 1, V),
    f!("deg", [V], 0, V),
    f!("delta", [M], 0, V),
    f!("deriv", [M], 0, V),
    f!("double_exponential_smoothing", [M, S, S], 0, V, exp),
    f!("end", [], 0, S, exp),
    f!("exp", [V], 0, V),
    f!("first_over_time", [M], 0, V, exp),
    f!("histogram_quantiles", [V, Str, S], -1, V, exp),
    f!("floor", [V], 0, V),
    f!("histogram_avg", [V], 0, V),
    f!("histogram_count", [V], 0, V),
    f!("histogram_fraction", [S, S, V], 0, V),
    f!("histogram_quantile", [S, V], 0, V),
    f!("histogram_stddev", [V], 0, V),
    f!("histogram_stdvar", [V], 0, V),
    f!("histogram_sum", [V], 0, V),
    f!("holt_winters", [M, S, S], 0, V),
    f!("hour", [V], 1, V),
    f!("idelta", [M], 0, V),
    f!("increase", [M], 0, V),
    f!("irate", [M], 0, V),
    f!("label_join", [V, Str, Str, Str], -1, V),
    f!("label_replace", [V, Str, Str, Str, Str], 0, V),
    f!("last_over_time", [M], 0, V),
    f!("ln", [V], 0, V),
    f!("log10", [V], 0, V),
    f!("log2", [V], 0, V),
    f!("mad_over_time", [M], 0, V, exp),
    f!("max_of", [S, S], 0, S, exp),
    f!("min_of", [S, S], 0, S, exp),
    f!("range", [], 0, S, exp),
    f!("max_over_time", [M], 0, V),
    f!("min_over_time", [M], 0, V),
    f!("minute", [V], 1, V),
    f!("month", [V], 1, V),
    f!("pi", [], 0, S),
    f!("predict_linear", [M, S], 0, V),
    f!("present_over_time", [M], 0, V),
    f!("quantile_over_time", [S, M], 0, V),
    f!("rad", [V], 0, V),
    f!("rate", [M], 0, V),
    f!("resets", [M], 0, V),
    f!("round", [V, S], 1, V),
    f!("scalar", [V], 0, S),
    f!("sgn", [V], 0, V),
    f!("sin", [V], 0, V),
    f!("sinh", [V], 0, V),
    f!("sort", [V], 0, V),
    f!("sort_by_label", [V, Str], -1, V, exp),
    f!("start", [], 0, S, exp),
    f!("step", [], 0, S, exp),
    f!("sort_by_label_desc", [V, Str], -1, V, exp),
    f!("sort_desc", [V], 0, V),
    f!("sqrt", [V], 0, V),
    f!("stddev_over_time", [M], 0, V),
    f!("stdvar_over_time", [M], 0, V),
    f!("sum_over_time", [M], 0, V),
    f!("tan", [V], 0, V),
    f!("tanh", [V], 0, V),
    f!("time", [], 0, S),
    f!("timestamp", [V], 0, V),
    f!("ts_of_first_over_time", [M], 0, V, exp),
    f!("ts_of_last_over_time", [M], 0, V, exp),
    f!("ts_of_max_over_time", [M], 0, V, exp),
    f!("ts_of_min_over_time", [M], 0, V, exp),
    f!("vector", [S], 0, V),
    f!("year", [V], 1, V),
];

pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
