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
    /// A function over the windows of its range-vector argument (evaluated window by window
    /// by `funcs::windowed`); `None` for every other function (`funcs::call`).
    pub window: Option<Window>,
    /// Its result depends on the evaluation time even when its arguments do not (Prometheus's
    /// `AtModifierUnsafeFunctions`, plus the experimental functions of the query's own
    /// times): the upstream test runner does not re-run queries using it with `@`.
    pub reads_eval_time: bool,
}

#[derive(Debug, PartialEq, Clone, Copy)]
pub struct Window {
    /// The result keeps the metric name (`last_over_time`, `first_over_time`).
    pub keeps_name: bool,
}

impl Function {
    /// Which argument is the range vector a window function reads.
    pub fn window_arg(&self) -> Option<usize> {
        self.window?;
        self.args.iter().position(|a| *a == ValueType::Matrix)
    }
}

/// A row's flags: `Exp` experimental upstream; `Win` a window function; `WinKeep` one that
/// keeps the metric name; `Now` its result depends on the evaluation time.
#[derive(Clone, Copy)]
enum Flag {
    Exp,
    Win,
    WinKeep,
    Now,
}

const fn has(flags: &[Flag], f: Flag) -> bool {
    let mut i = 0;
    while i < flags.len() {
        if flags[i] as u8 == f as u8 {
            return true;
        }
        i += 1;
    }
    false
}

const fn window(flags: &[Flag]) -> Option<Window> {
    if has(flags, Flag::WinKeep) {
        Some(Window { keeps_name: true })
    } else if has(flags, Flag::Win) {
        Some(Window { keeps_name: false })
    } else {
        None
    }
}

macro_rules! f {
    ($name:literal, [$($a:expr),*], $var:expr, $ret:expr $(, $flag:ident)*) => {
        Function {
            name: $name,
            args: &[$($a),*],
            variadic: $var,
            ret: $ret,
            experimental: has(&[$(Flag::$flag),*], Flag::Exp),
            window: window(&[$(Flag::$flag),*]),
            reads_eval_time: has(&[$(Flag::$flag),*], Flag::Now),
        }
    };
}

/// Every PromQL function: the parser checks calls against it, the evaluator finds window
/// functions by it, and the UI's completion lists its names (served in the page). Adding a
/// function is a row here and an arm in `funcs::windowed` (window functions) or `funcs::call`.
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
    f!("avg_over_time", [M], 0, V, Win),
    f!("ceil", [V], 0, V),
    f!("changes", [M], 0, V, Win),
    f!("clamp", [V, S, S], 0, V),
    f!("clamp_max", [V, S], 0, V),
    f!("clamp_min", [V, S], 0, V),
    f!("cos", [V], 0, V),
    f!("cosh", [V], 0, V),
    f!("count_over_time", [M], 0, V, Win),
    f!("days_in_month", [V], 1, V, Now),
    f!("day_of_month", [V], 1, V, Now),
    f!("day_of_week", [V], 1, V, Now),
    f!("day_of_year", [V], 1, V, Now),
    f!("deg", [V], 0, V),
    f!("delta", [M], 0, V, Win),
    f!("deriv", [M], 0, V, Win),
    f!("double_exponential_smoothing", [M, S, S], 0, V, Exp, Win),
    f!("end", [], 0, S, Exp, Now),
    f!("exp", [V], 0, V),
    f!("first_over_time", [M], 0, V, Exp, WinKeep),
    f!("histogram_quantiles", [V, Str, S], -1, V, Exp),
    f!("floor", [V], 0, V),
    f!("histogram_avg", [V], 0, V),
    f!("histogram_count", [V], 0, V),
    f!("histogram_fraction", [S, S, V], 0, V),
    f!("histogram_quantile", [S, V], 0, V),
    f!("histogram_stddev", [V], 0, V),
    f!("histogram_stdvar", [V], 0, V),
    f!("histogram_sum", [V], 0, V),
    f!("holt_winters", [M, S, S], 0, V, Win),
    f!("hour", [V], 1, V, Now),
    f!("idelta", [M], 0, V, Win),
    f!("increase", [M], 0, V, Win),
    // `Now`: as in Prometheus, the info series are valued at each evaluation step, not at the
    // time an `@` on the first argument names.
    f!("info", [V, V], 1, V, Exp, Now),
    f!("irate", [M], 0, V, Win),
    f!("label_join", [V, Str, Str, Str], -1, V),
    f!("label_replace", [V, Str, Str, Str, Str], 0, V),
    f!("last_over_time", [M], 0, V, WinKeep),
    f!("ln", [V], 0, V),
    f!("log10", [V], 0, V),
    f!("log2", [V], 0, V),
    f!("mad_over_time", [M], 0, V, Exp, Win),
    f!("max_of", [S, S], 0, S, Exp),
    f!("min_of", [S, S], 0, S, Exp),
    f!("range", [], 0, S, Exp, Now),
    f!("max_over_time", [M], 0, V, Win),
    f!("min_over_time", [M], 0, V, Win),
    f!("minute", [V], 1, V, Now),
    f!("month", [V], 1, V, Now),
    f!("pi", [], 0, S),
    f!("predict_linear", [M, S], 0, V, Win, Now),
    f!("present_over_time", [M], 0, V, Win),
    f!("quantile_over_time", [S, M], 0, V, Win),
    f!("rad", [V], 0, V),
    f!("rate", [M], 0, V, Win),
    f!("resets", [M], 0, V, Win),
    f!("round", [V, S], 1, V),
    f!("scalar", [V], 0, S),
    f!("sgn", [V], 0, V),
    f!("sin", [V], 0, V),
    f!("sinh", [V], 0, V),
    f!("sort", [V], 0, V),
    f!("sort_by_label", [V, Str], -1, V, Exp),
    f!("start", [], 0, S, Exp, Now),
    f!("step", [], 0, S, Exp, Now),
    f!("sort_by_label_desc", [V, Str], -1, V, Exp),
    f!("sort_desc", [V], 0, V),
    f!("sqrt", [V], 0, V),
    f!("stddev_over_time", [M], 0, V, Win),
    f!("stdvar_over_time", [M], 0, V, Win),
    f!("sum_over_time", [M], 0, V, Win),
    f!("tan", [V], 0, V),
    f!("tanh", [V], 0, V),
    f!("time", [], 0, S, Now),
    f!("timestamp", [V], 0, V, Now),
    f!("ts_of_first_over_time", [M], 0, V, Exp, Win),
    f!("ts_of_last_over_time", [M], 0, V, Exp, Win),
    f!("ts_of_max_over_time", [M], 0, V, Exp, Win),
    f!("ts_of_min_over_time", [M], 0, V, Exp, Win),
    f!("vector", [S], 0, V),
    f!("year", [V], 1, V, Now),
];

pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}
