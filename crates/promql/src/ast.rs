//! The syntax tree, its types, and its canonical printing.

use std::fmt;

use vigil_model::labels::METRIC_NAME;
use vigil_storage::{MatchOp, Matcher};

/// The type of an expression's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    String,
    Vector,
    Matrix,
}

impl ValueType {
    pub fn name(&self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::String => "string",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
        }
    }
}

/// `@ <time>`, `@ start()`, `@ end()`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    Time(i64),
    Start,
    End,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VectorSelector {
    pub name: Option<String>,
    /// All matchers, including `__name__="<name>"` when a name was given.
    pub matchers: Vec<Matcher>,
    /// Milliseconds; negative for a negative offset.
    pub offset_ms: i64,
    pub at: Option<At>,
    /// Duration expressions its offset, or as a matrix selector its range, was written as.
    pub durs: Option<Box<Durations>>,
    /// `anchored` or `smoothed` (Prometheus's extended range selectors).
    pub extend: Extend,
}

/// The extended range selector modifiers: how a range's boundaries get their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Extend {
    #[default]
    None,
    /// The sample at or before each boundary (within the lookback delta), else the first or
    /// last one inside: no extrapolation.
    Anchored,
    /// Each boundary's value interpolated between the samples around it (within the lookback
    /// delta on either side).
    Smoothed,
}

impl Extend {
    pub fn word(self) -> &'static str {
        match self {
            Extend::None => "",
            Extend::Anchored => "anchored",
            Extend::Smoothed => "smoothed",
        }
    }

    /// The functions that take a range with this modifier, sorted (as Prometheus lists them).
    pub fn functions(self) -> &'static [&'static str] {
        match self {
            Extend::None => &[],
            Extend::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            Extend::Smoothed => &["delta", "increase", "rate"],
        }
    }
}

/// The duration expressions (`5m * 2`, `step()`, `min_of(range(), 1h)`) a range, subquery
/// step or offset was written as: kept for printing, and resolved when a query starts if they
/// read the query's step or range (else folded once, by the parser, into the milliseconds).
#[derive(Debug, Clone, Default)]
pub struct Durations {
    pub range: Option<DurExpr>,
    pub step: Option<DurExpr>,
    pub offset: Option<DurExpr>,
    /// Where each was written (byte offsets: start, end), for the messages of a query whose
    /// step or range gives one no valid value: range, step, offset.
    pub at: [(usize, usize); 3],
}

/// Positions never take part in equality (as [`Pos`]): the same query spelled with other
/// spacing is the same tree.
impl PartialEq for Durations {
    fn eq(&self, o: &Self) -> bool {
        self.range == o.range && self.step == o.step && self.offset == o.offset
    }
}

impl Durations {
    /// Whether any of them reads the query's step or range.
    pub fn dynamic(&self) -> bool {
        [&self.range, &self.step, &self.offset]
            .into_iter()
            .flatten()
            .any(DurExpr::dynamic)
    }
}

/// Why a duration expression has no value: its message, and for a division or modulo by
/// zero the byte offsets of the operation (as Prometheus's message gives them).
#[derive(Debug, Clone, PartialEq)]
pub struct DurError {
    pub msg: &'static str,
    pub at: Option<(usize, usize)>,
}

impl fmt::Display for DurError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some((a, b)) => write!(f, "{a}:{b}: {}", self.msg),
            None => f.write_str(self.msg),
        }
    }
}

/// A duration expression's operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl DurOp {
    fn as_str(self) -> &'static str {
        match self {
            DurOp::Add => "+",
            DurOp::Sub => "-",
            DurOp::Mul => "*",
            DurOp::Div => "/",
            DurOp::Mod => "%",
            DurOp::Pow => "^",
        }
    }
}

/// A duration expression, in seconds, as current Prometheus's grammar has them.
#[derive(Debug, Clone, PartialEq)]
pub enum DurExpr {
    /// A literal: seconds, and whether it was written as a duration (`5m`) or a number.
    Lit {
        secs: f64,
        duration: bool,
    },
    /// The query's step (0 for an instant query).
    Step,
    /// The query's range, end minus start (0 for an instant query).
    Range,
    MinOf(Box<DurExpr>, Box<DurExpr>),
    MaxOf(Box<DurExpr>, Box<DurExpr>),
    Neg(Box<DurExpr>),
    Paren(Box<DurExpr>),
    /// `at`: where the operator's left operand starts and its right one ends (byte offsets),
    /// for the messages of a division by zero.
    Bin {
        op: DurOp,
        lhs: Box<DurExpr>,
        rhs: Box<DurExpr>,
        at: (usize, usize),
    },
}

impl DurExpr {
    pub fn dynamic(&self) -> bool {
        match self {
            DurExpr::Lit { .. } => false,
            DurExpr::Step | DurExpr::Range => true,
            DurExpr::Neg(e) | DurExpr::Paren(e) => e.dynamic(),
            DurExpr::MinOf(a, b) | DurExpr::MaxOf(a, b) | DurExpr::Bin { lhs: a, rhs: b, .. } => {
                a.dynamic() || b.dynamic()
            }
        }
    }

    /// The value in seconds for a query of this step and range (both seconds).
    pub fn eval(&self, step: f64, range: f64) -> Result<f64, DurError> {
        Ok(match self {
            DurExpr::Lit { secs, .. } => *secs,
            DurExpr::Step => step,
            DurExpr::Range => range,
            DurExpr::MinOf(a, b) => a.eval(step, range)?.min(b.eval(step, range)?),
            DurExpr::MaxOf(a, b) => a.eval(step, range)?.max(b.eval(step, range)?),
            DurExpr::Neg(e) => -e.eval(step, range)?,
            DurExpr::Paren(e) => e.eval(step, range)?,
            DurExpr::Bin { op, lhs, rhs, at } => {
                let (l, r) = (lhs.eval(step, range)?, rhs.eval(step, range)?);
                match op {
                    DurOp::Add => l + r,
                    DurOp::Sub => l - r,
                    DurOp::Mul => l * r,
                    DurOp::Div if r == 0.0 => {
                        return Err(DurError {
                            msg: "division by zero",
                            at: Some(*at),
                        });
                    }
                    DurOp::Div => l / r,
                    DurOp::Mod if r == 0.0 => {
                        return Err(DurError {
                            msg: "modulo by zero",
                            at: Some(*at),
                        });
                    }
                    DurOp::Mod => l % r,
                    DurOp::Pow => l.powf(r),
                }
            }
        })
    }

    /// The value as milliseconds, as Prometheus converts it (seconds times 1000, truncated);
    /// `positive` for a range or step, which must be above 0.
    pub fn millis(&self, step: f64, range: f64, positive: bool) -> Result<i64, DurError> {
        let secs = self.eval(step, range)?;
        let fail = |msg| Err(DurError { msg, at: None });
        if !secs.is_finite() || secs.abs() * 1000.0 > crate::limits::MAX_DURATION_MS as f64 {
            return fail("duration is out of range");
        }
        let ms = (secs * 1000.0) as i64;
        if positive && ms <= 0 {
            return fail("duration must be greater than 0");
        }
        Ok(ms)
    }
}

impl fmt::Display for DurExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurExpr::Lit { secs, duration } => {
                if *duration {
                    let ms = (secs * 1000.0).round() as i64;
                    if ms < 0 {
                        write!(f, "-{}", format_duration(-ms))
                    } else {
                        f.write_str(&format_duration(ms))
                    }
                } else {
                    f.write_str(&vigil_model::format_go_float(*secs))
                }
            }
            DurExpr::Step => f.write_str("step()"),
            DurExpr::Range => f.write_str("range()"),
            DurExpr::MinOf(a, b) => write!(f, "min_of({a}, {b})"),
            DurExpr::MaxOf(a, b) => write!(f, "max_of({a}, {b})"),
            DurExpr::Neg(e) => write!(f, "-{e}"),
            DurExpr::Paren(e) => write!(f, "({e})"),
            DurExpr::Bin { op, lhs, rhs, .. } => write!(f, "{lhs} {} {rhs}", op.as_str()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    /// `</` (keep observations below) and `>/` (above) of a native histogram.
    TrimUpper,
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Atan2 => "atan2",
            BinOp::Eq => "==",
            BinOp::Neq => "!=",
            BinOp::Gtr => ">",
            BinOp::Lss => "<",
            BinOp::Gte => ">=",
            BinOp::Lte => "<=",
            BinOp::TrimUpper => "</",
            BinOp::TrimLower => ">/",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }

    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Neq | BinOp::Gtr | BinOp::Lss | BinOp::Gte | BinOp::Lte
        )
    }

    /// The histogram trim operators: they filter no series and keep the metric name, yet
    /// are not comparisons (no `bool`).
    pub fn is_trim(&self) -> bool {
        matches!(self, BinOp::TrimUpper | BinOp::TrimLower)
    }

    pub fn is_set(&self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Binding strength; higher binds tighter.
    pub fn precedence(&self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq
            | BinOp::Neq
            | BinOp::Gtr
            | BinOp::Lss
            | BinOp::Gte
            | BinOp::Lte
            | BinOp::TrimUpper
            | BinOp::TrimLower => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Atan2 => 5,
            BinOp::Pow => 6,
        }
    }

    pub fn right_assoc(&self) -> bool {
        matches!(self, BinOp::Pow)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// `on`/`ignoring` and `group_left`/`group_right` of a binary operation between vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    pub card: Card,
    /// Labels of `on(...)` or `ignoring(...)`.
    pub labels: Vec<String>,
    /// `on` (true) or `ignoring` (false). Without either, `ignoring()` of nothing.
    pub on: bool,
    /// Whether `on`/`ignoring` was written (for printing).
    pub explicit: bool,
    /// Extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
    /// `fill(v)`, `fill_left(v)`, `fill_right(v)`: what a missing match is taken to be.
    pub fill: Fill,
}

impl VectorMatching {
    /// Plain one-to-one matching on all labels but the name (no modifier written).
    pub fn one_to_one() -> VectorMatching {
        VectorMatching {
            card: Card::OneToOne,
            labels: vec![],
            on: false,
            explicit: false,
            include: vec![],
            fill: Fill::default(),
        }
    }
}

/// The values of the fill modifiers (`promql-binop-fill-modifiers`): a series of one side
/// with no match on the other is combined with this value in the other side's place.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fill {
    /// For a missing left-hand match (`fill_left`).
    pub lhs: Option<f64>,
    /// For a missing right-hand match (`fill_right`).
    pub rhs: Option<f64>,
}

impl Fill {
    pub fn any(&self) -> bool {
        self.lhs.is_some() || self.rhs.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggOp {
    pub fn parse(s: &str) -> Option<AggOp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "group" => AggOp::Group,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "count_values" => AggOp::CountValues,
            "quantile" => AggOp::Quantile,
            "limitk" => AggOp::Limitk,
            "limit_ratio" => AggOp::LimitRatio,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Avg => "avg",
            AggOp::Count => "count",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Group => "group",
            AggOp::Stddev => "stddev",
            AggOp::Stdvar => "stdvar",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
            AggOp::CountValues => "count_values",
            AggOp::Quantile => "quantile",
            AggOp::Limitk => "limitk",
            AggOp::LimitRatio => "limit_ratio",
        }
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(&self) -> bool {
        matches!(
            self,
            AggOp::Topk
                | AggOp::Bottomk
                | AggOp::CountValues
                | AggOp::Quantile
                | AggOp::Limitk
                | AggOp::LimitRatio
        )
    }
}

/// Where a node starts in the query text (1-based line and column), for the positions that
/// end annotation messages (`... (1:25)`). Positions never take part in equality: the same
/// query spelled with other spacing is the same tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl PartialEq for Pos {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    String(String),
    VectorSelector(VectorSelector),
    MatrixSelector {
        vs: VectorSelector,
        range_ms: i64,
    },
    Subquery {
        expr: Box<Expr>,
        range_ms: i64,
        step_ms: Option<i64>,
        offset_ms: i64,
        at: Option<At>,
        /// The duration expressions its range, step or offset was written as.
        durs: Option<Box<Durations>>,
    },
    Paren(Box<Expr>),
    /// Unary minus (`-x`); unary plus is dropped by the parser.
    Neg(Box<Expr>),
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        return_bool: bool,
        matching: Option<VectorMatching>,
        /// Where the expression starts (its left operand), for annotations.
        pos: Pos,
    },
    Aggregate {
        op: AggOp,
        expr: Box<Expr>,
        param: Option<Box<Expr>>,
        grouping: Vec<String>,
        without: bool,
        by_written: bool,
        /// Where the parameter starts (`topk(3, x)`: the `3`).
        param_pos: Pos,
        /// Where the aggregation and its aggregated expression start, for annotations.
        pos: Pos,
        expr_pos: Pos,
    },
    Call {
        func: &'static crate::functions::Function,
        args: Vec<Expr>,
        /// Where the call and each argument start.
        pos: Pos,
        arg_pos: Vec<Pos>,
    },
}

impl Expr {
    /// The type of the expression's value. Iterative: a binary expression is scalar only if
    /// every operand under it is, and chains of any length are checked without recursion.
    pub fn value_type(&self) -> ValueType {
        let mut operands = vec![self];
        let mut binary = false;
        while let Some(mut e) = operands.pop() {
            while let Expr::Paren(x) | Expr::Neg(x) = e {
                e = x;
            }
            let t = match e {
                Expr::Number(_) => ValueType::Scalar,
                Expr::String(_) => ValueType::String,
                Expr::VectorSelector(_) => ValueType::Vector,
                Expr::MatrixSelector { .. } | Expr::Subquery { .. } => ValueType::Matrix,
                Expr::Binary { lhs, rhs, .. } => {
                    binary = true;
                    operands.push(lhs);
                    operands.push(rhs);
                    continue;
                }
                Expr::Aggregate { .. } => ValueType::Vector,
                Expr::Call { func, .. } => func.ret,
                Expr::Paren(_) | Expr::Neg(_) => unreachable!("unwrapped above"),
            };
            if !binary {
                return t;
            }
            if t != ValueType::Scalar {
                return ValueType::Vector;
            }
        }
        ValueType::Scalar
    }

    /// Remove parentheses around `e`.
    pub fn unparen(&self) -> &Expr {
        let mut e = self;
        while let Expr::Paren(x) = e {
            e = x;
        }
        e
    }

    /// The left spine of a chain of binary operators: `self` (if binary) and every binary
    /// expression reached through left operands, outermost first, and the operand at the
    /// bottom. `a + b - c` gives `[(a + b) - c, a + b]` and `a`. Walkers use it to follow
    /// chains in a loop.
    pub fn left_spine(&self) -> (Vec<&Expr>, &Expr) {
        let mut spine = Vec::new();
        let mut e = self;
        while let Expr::Binary { lhs, .. } = e {
            spine.push(e);
            e = lhs;
        }
        (spine, e)
    }

    /// Move the direct children out (leaving cheap literals), for iterative dropping.
    fn take_children(&mut self, out: &mut Vec<Expr>) {
        let mut take = |b: &mut Box<Expr>| out.push(std::mem::replace(&mut **b, Expr::Number(0.0)));
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren(expr) | Expr::Neg(expr) => take(expr),
            Expr::Binary { lhs, rhs, .. } => {
                take(lhs);
                take(rhs);
            }
            Expr::Aggregate { expr, param, .. } => {
                take(expr);
                if let Some(p) = param {
                    take(p);
                }
            }
            Expr::Call { args, .. } => out.append(args),
            Expr::Number(_)
            | Expr::String(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector { .. } => {}
        }
    }

    /// Whether a child has children of its own (a tree deeper than two levels).
    fn has_grandchildren(&self) -> bool {
        let deep = |e: &Expr| {
            !matches!(
                e,
                Expr::Number(_)
                    | Expr::String(_)
                    | Expr::VectorSelector(_)
                    | Expr::MatrixSelector { .. }
            )
        };
        match self {
            Expr::Subquery { expr, .. } | Expr::Paren(expr) | Expr::Neg(expr) => deep(expr),
            Expr::Binary { lhs, rhs, .. } => deep(lhs) || deep(rhs),
            Expr::Aggregate { expr, param, .. } => deep(expr) || param.as_deref().is_some_and(deep),
            Expr::Call { args, .. } => args.iter().any(deep),
            Expr::Number(_)
            | Expr::String(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector { .. } => false,
        }
    }
}

/// Dropping is iterative: a tree as deep as the parser allows (or a chain as long) would
/// overflow the stack through the compiler's recursive drop glue.
impl Drop for Expr {
    fn drop(&mut self) {
        if !self.has_grandchildren() {
            return;
        }
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut e) = pending.pop() {
            e.take_children(&mut pending);
        }
    }
}

/// A duration as Prometheus prints it (`1h30m`, `0s`).
pub use vigil_model::time::format_duration_ms as format_duration;

/// A label name as PromQL writes it: quoted when outside the classic set.
pub(crate) fn label_name(n: &str) -> std::borrow::Cow<'_, str> {
    if vigil_model::names::is_legacy_label_name(n) {
        std::borrow::Cow::Borrowed(n)
    } else {
        std::borrow::Cow::Owned(crate::lexer::quote(n))
    }
}

/// Label names joined as a grouping clause lists them.
pub(crate) fn label_list(ns: &[String]) -> String {
    ns.iter()
        .map(|n| label_name(n))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_matchers(f: &mut fmt::Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let ms: Vec<&Matcher> = vs
        .matchers
        .iter()
        .filter(|m| !(vs.name.is_some() && m.name == METRIC_NAME && m.op == MatchOp::Equal))
        .collect();
    // A name outside the classic set goes quoted inside the braces (`{"my.metric"}`).
    let mut first = true;
    match &vs.name {
        Some(n) if vigil_model::names::is_legacy_metric_name(n) => {
            f.write_str(n)?;
            if ms.is_empty() {
                return Ok(());
            }
            f.write_str("{")?;
        }
        Some(n) => {
            write!(f, "{{{}", crate::lexer::quote(n))?;
            first = false;
        }
        None => f.write_str("{")?,
    }
    for m in ms {
        if !first {
            f.write_str(", ")?;
        }
        first = false;
        // The value as PromQL prints strings (bytes a literal spelled outside UTF-8 as \xNN).
        write!(
            f,
            "{}{}{}",
            label_name(&m.name),
            m.op.as_str(),
            crate::lexer::quote(&m.value)
        )?;
    }
    f.write_str("}")
}

/// ` anchored` or ` smoothed`, printed before `@` and `offset` as Prometheus prints a range.
fn fmt_extend(f: &mut fmt::Formatter<'_>, e: Extend) -> fmt::Result {
    if e != Extend::None {
        write!(f, " {}", e.word())?;
    }
    Ok(())
}

fn fmt_mods(
    f: &mut fmt::Formatter<'_>,
    at: &Option<At>,
    offset_ms: i64,
    durs: Option<&Durations>,
) -> fmt::Result {
    match at {
        Some(At::Time(t)) => write!(f, " @ {}", fmt_at(*t))?,
        Some(At::Start) => f.write_str(" @ start()")?,
        Some(At::End) => f.write_str(" @ end()")?,
        None => {}
    }
    if let Some(e) = durs.and_then(|d| d.offset.as_ref()) {
        write!(f, " offset {e}")?;
    } else if offset_ms != 0 {
        write!(f, " offset {}", format_duration(offset_ms))?;
    }
    Ok(())
}

/// A range or step as written: its duration expression, or the milliseconds.
fn dur_text(ms: i64, e: Option<&DurExpr>) -> String {
    match e {
        Some(e) => e.to_string(),
        None => format_duration(ms),
    }
}

/// What follows a binary operator: ` bool`, ` on (a, b)` / ` ignoring (a)`, ` group_left (c)`,
/// spaced as Prometheus prints them.
pub(crate) fn binary_modifiers(return_bool: bool, matching: Option<&VectorMatching>) -> String {
    let mut s = String::new();
    if return_bool {
        s.push_str(" bool");
    }
    if let Some(m) = matching {
        if m.explicit || !m.labels.is_empty() {
            let tag = if m.on { "on" } else { "ignoring" };
            s.push_str(&format!(" {tag} ({})", label_list(&m.labels)));
        }
        match m.card {
            Card::ManyToOne => s.push_str(&format!(" group_left ({})", label_list(&m.include))),
            Card::OneToMany => s.push_str(&format!(" group_right ({})", label_list(&m.include))),
            _ => {}
        }
        // As Prometheus prints them: one `fill` when both values are the same number (so
        // never for NaN), else each side's own.
        let v = vigil_model::format_go_float;
        match (m.fill.lhs, m.fill.rhs) {
            (Some(l), Some(r)) if l == r => s.push_str(&format!(" fill ({})", v(l))),
            (l, r) => {
                if let Some(l) = l {
                    s.push_str(&format!(" fill_left ({})", v(l)));
                }
                if let Some(r) = r {
                    s.push_str(&format!(" fill_right ({})", v(r)));
                }
            }
        }
    }
    s
}

/// What follows a subquery's expression: `[range:step]` and its `@` and `offset`.
pub(crate) fn subquery_suffix(
    range_ms: i64,
    step_ms: Option<i64>,
    offset_ms: i64,
    at: &Option<At>,
    durs: Option<&Durations>,
) -> String {
    struct Mods<'a>(&'a Option<At>, i64, Option<&'a Durations>);
    impl fmt::Display for Mods<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt_mods(f, self.0, self.1, self.2)
        }
    }
    let step = match durs.and_then(|d| d.step.as_ref()) {
        Some(e) => e.to_string(),
        None => step_ms.map(format_duration).unwrap_or_default(),
    };
    format!(
        "[{}:{}]{}",
        dur_text(range_ms, durs.and_then(|d| d.range.as_ref())),
        step,
        Mods(at, offset_ms, durs)
    )
}

/// An aggregation up to its opening parenthesis: `sum`, `sum by (a) `, `max without (b) `.
pub(crate) fn aggregation_head(op: AggOp, grouping: &[String], without: bool, by: bool) -> String {
    if without {
        format!("{} without ({}) ", op.as_str(), label_list(grouping))
    } else if by || !grouping.is_empty() {
        format!("{} by ({}) ", op.as_str(), label_list(grouping))
    } else {
        op.as_str().to_string()
    }
}

/// Prints the expression as Prometheus's `String()` does (used by `format_query` and
/// annotations).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::limits::deep(|| self.fmt_node(f))
    }
}

impl Expr {
    /// Every vector selector in the expression (those of range selectors and subqueries too),
    /// in source order: Prometheus's `ExtractSelectors`, which `/api/v1/query_exemplars`
    /// reads. Iterative, so no nesting depth can exhaust the stack.
    pub fn selectors(&self) -> Vec<&VectorSelector> {
        let mut out = Vec::new();
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            match e {
                Expr::Number(_) | Expr::String(_) => {}
                Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => out.push(vs),
                Expr::Subquery { expr, .. } | Expr::Paren(expr) | Expr::Neg(expr) => {
                    todo.push(expr)
                }
                Expr::Binary { lhs, rhs, .. } => {
                    todo.push(rhs);
                    todo.push(lhs);
                }
                Expr::Aggregate { expr, param, .. } => {
                    todo.push(expr);
                    if let Some(p) = param {
                        todo.push(p);
                    }
                }
                Expr::Call { args, .. } => todo.extend(args.iter().rev()),
            }
        }
        out
    }

    fn fmt_node(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Number(n) => {
                if n.is_nan() {
                    f.write_str("NaN")
                } else if n.is_infinite() {
                    f.write_str(if *n > 0.0 { "Inf" } else { "-Inf" })
                } else {
                    write!(f, "{n}")
                }
            }
            Expr::String(s) => f.write_str(&crate::lexer::quote(s)),
            Expr::VectorSelector(vs) => {
                fmt_matchers(f, vs)?;
                // As Prometheus prints an instant selector: `x @ t smoothed offset d`.
                let d = vs.durs.as_deref();
                fmt_mods(f, &vs.at, 0, None)?;
                fmt_extend(f, vs.extend)?;
                fmt_mods(f, &None, vs.offset_ms, d)
            }
            Expr::MatrixSelector { vs, range_ms } => {
                fmt_matchers(f, vs)?;
                let d = vs.durs.as_deref();
                write!(
                    f,
                    "[{}]",
                    dur_text(*range_ms, d.and_then(|d| d.range.as_ref()))
                )?;
                fmt_extend(f, vs.extend)?;
                fmt_mods(f, &vs.at, vs.offset_ms, d)
            }
            Expr::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
                at,
                durs,
            } => write!(
                f,
                "{expr}{}",
                subquery_suffix(*range_ms, *step_ms, *offset_ms, at, durs.as_deref())
            ),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Neg(e) => write!(f, "-{e}"),
            Expr::Binary { .. } => {
                let (spine, bottom) = self.left_spine();
                write!(f, "{bottom}")?;
                for b in spine.iter().rev() {
                    if let Expr::Binary {
                        op,
                        rhs,
                        return_bool,
                        matching,
                        ..
                    } = b
                    {
                        write!(
                            f,
                            " {}{} {rhs}",
                            op.as_str(),
                            binary_modifiers(*return_bool, matching.as_ref())
                        )?;
                    }
                }
                Ok(())
            }
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
                by_written,
                ..
            } => {
                f.write_str(&aggregation_head(*op, grouping, *without, *by_written))?;
                f.write_str("(")?;
                if let Some(p) = param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{expr})")
            }
            Expr::Call { func, args, .. } => {
                write!(f, "{}(", func.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// `@` timestamps print with millisecond precision.
pub fn fmt_at(t: i64) -> String {
    format!("{}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))
}
