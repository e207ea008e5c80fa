//! The parser: tokens to [`Expr`], type-checked, with Prometheus's
//! `line:col: parse error: ...` messages.
//!
//! Precedence climbing over Prometheus's operator table (`or` < `and`/`unless` < comparisons
//! < `+ -` < `* / % atan2` < `^`, which is right-associative); unary minus binds like `*`.

use vigil_model::labels::METRIC_NAME;
use vigil_storage::{MatchOp, Matcher, MatcherError};

use crate::ast::{
    AggOp, At, BinOp, Card, DurExpr, DurOp, Durations, Expr, Extend, Fill, ValueType,
    VectorMatching, VectorSelector,
};
use crate::functions;
use crate::lexer::{Spanned, Tok, lex};
use crate::limits::{self, MAX_NESTING, MAX_NODES};

/// A parse error at a position of the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{line}:{col}: parse error: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

type R<T> = Result<T, ParseError>;

/// Prometheus's message for an `@` timestamp outside int64 seconds (Go's `%f`).
fn at_out_of_bounds(v: f64) -> String {
    let v = if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    };
    format!("timestamp out of bounds for @ modifier: {v}")
}

/// The parser's opt-in syntax, as Prometheus's `--enable-feature` flags switch it on.
/// Duration expressions and the `anchored`/`smoothed` modifiers are always on, as in current
/// Prometheus; experimental functions are always on in vigil.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `fill()`, `fill_left()`, `fill_right()` after a binary operator
    /// (`promql-binop-fill-modifiers`).
    pub binop_fill_modifiers: bool,
}

static FILL_MODIFIERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Features {
    /// Every opt-in syntax, as Prometheus's test runner parses its test files.
    pub fn all() -> Features {
        Features {
            binop_fill_modifiers: true,
        }
    }

    /// What [`parse`] accepts from now on in this process. Set once at start-up from the
    /// command line: rule files, API queries and templates must all read the same language,
    /// as Prometheus's process-wide parser options make them.
    pub fn install(self) {
        FILL_MODIFIERS.store(
            self.binop_fill_modifiers,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The features [`Features::install`] set (all off before).
    pub fn installed() -> Features {
        Features {
            binop_fill_modifiers: FILL_MODIFIERS.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

struct P<'a> {
    input: &'a str,
    features: Features,
    /// Line starts, for turning byte offsets into `line:col` without rescanning the input.
    lines: LineIndex,
    toks: Vec<Spanned>,
    i: usize,
    /// Current nesting of [`P::expr`] calls, bounded by [`MAX_NESTING`].
    nesting: usize,
    /// Nodes built so far, bounded by [`MAX_NODES`].
    nodes: usize,
    /// Nodes of the duration expression being parsed, bounded by [`MAX_DURATION_NODES`].
    dur_nodes: usize,
    /// Nesting of the duration expression being parsed (parentheses, signs, `^` chains),
    /// bounded by [`MAX_DURATION_NESTING`].
    dur_depth: usize,
}

/// Deepest nesting in one duration expression (its parser, evaluation and printing recurse).
const MAX_DURATION_NESTING: usize = 64;

/// Most nodes in one duration expression: its evaluation and printing recurse, and no real
/// range needs more than a few.
const MAX_DURATION_NODES: usize = 1000;

/// A duration expression and where it was written (byte offsets).
type WrittenDur = (DurExpr, (usize, usize));

/// What a range, step or offset may be written as, for "expected ..." in messages.
const DUR_EXPECTED: &str = "number, duration, step(), or range()";

/// A parsed sub-expression with its start offset and type, so the parser never walks a
/// subtree again to learn its type (which made long chains quadratic).
struct Node {
    e: Expr,
    start: usize,
    ty: ValueType,
}

/// Byte offsets to 1-based line and column (in characters), in logarithmic time: positions
/// are asked for every call and argument, and a 10 MB query must not rescan itself each time.
struct LineIndex {
    starts: Vec<usize>,
    ascii: bool,
}

impl LineIndex {
    fn new(input: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(input.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            ascii: input.is_ascii(),
        }
    }

    fn position(&self, input: &str, pos: usize) -> (usize, usize) {
        let pos = pos.min(input.len());
        let line = self.starts.partition_point(|&s| s <= pos);
        let ls = self.starts[line - 1];
        let col = if self.ascii {
            pos - ls
        } else {
            input.get(ls..pos).map_or(pos - ls, |t| t.chars().count())
        };
        (line, col + 1)
    }
}

fn binop(t: &Tok) -> Option<BinOp> {
    Some(match t {
        Tok::Add => BinOp::Add,
        Tok::Sub => BinOp::Sub,
        Tok::Mul => BinOp::Mul,
        Tok::Div => BinOp::Div,
        Tok::Mod => BinOp::Mod,
        Tok::Pow => BinOp::Pow,
        Tok::Eq => BinOp::Eq,
        Tok::Neq => BinOp::Neq,
        Tok::Gtr => BinOp::Gtr,
        Tok::Lss => BinOp::Lss,
        Tok::Gte => BinOp::Gte,
        Tok::Lte => BinOp::Lte,
        Tok::TrimUpper => BinOp::TrimUpper,
        Tok::TrimLower => BinOp::TrimLower,
        Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            "atan2" => BinOp::Atan2,
            _ => return None,
        },
        _ => return None,
    })
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
}

/// Words that cannot start a selector (they are operators or clause keywords).
fn reserved(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "and"
            | "or"
            | "unless"
            | "atan2"
            | "by"
            | "without"
            | "on"
            | "ignoring"
            | "group_left"
            | "group_right"
            | "bool"
            | "offset"
    )
}

impl P<'_> {
    fn peek(&self) -> &Spanned {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Spanned {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        let (line, col) = self.lines.position(self.input, pos);
        ParseError {
            line,
            col,
            msg: msg.into(),
        }
    }

    fn unexpected(&self, t: &Spanned, context: &str, expected: &str) -> ParseError {
        let what = if t.tok == Tok::Eof {
            "unexpected end of input".to_string()
        } else {
            format!("unexpected {}", t.tok.describe())
        };
        let ctx = if context.is_empty() {
            String::new()
        } else {
            format!(" in {context}")
        };
        let exp = if expected.is_empty() {
            String::new()
        } else {
            format!(", expected {expected}")
        };
        self.err(t.pos, format!("{what}{ctx}{exp}"))
    }

    fn expect(&mut self, tok: Tok, context: &str) -> R<Spanned> {
        let t = self.next();
        if t.tok == tok {
            Ok(t)
        } else {
            Err(self.unexpected(&t, context, &tok.describe()))
        }
    }

    /// Precedence climbing, one nesting level deeper.
    fn expr(&mut self, min_prec: u8) -> R<Node> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            let pos = self.peek().pos;
            return Err(self.err(
                pos,
                format!("expression nested too deeply: more than {MAX_NESTING} levels"),
            ));
        }
        let r = limits::deep(|| self.chain(min_prec));
        self.nesting -= 1;
        r
    }

    /// A duration written as a number of seconds, in milliseconds, bounded as durations are.
    fn seconds(&self, n: f64, pos: usize) -> R<i64> {
        let ms = (n * 1000.0).round();
        if ms.abs() > limits::MAX_DURATION_MS as f64 {
            return Err(self.err(pos, "duration out of range"));
        }
        Ok(ms as i64)
    }

    /// One more node; fails past [`MAX_NODES`].
    fn node(&mut self, pos: usize) -> R<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err(
                pos,
                format!("expression too large: more than {MAX_NODES} operators and operands"),
            ));
        }
        Ok(())
    }

    /// An operand followed by any number of binary operators: left-associative chains grow
    /// in this loop, not by recursion.
    fn chain(&mut self, min_prec: u8) -> R<Node> {
        let mut lhs = self.unary()?;
        while let Some(op) = binop(&self.peek().tok) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.next();
            let mut return_bool = false;
            if is_kw(&self.peek().tok, "bool") {
                self.next();
                if !op.is_comparison() {
                    return Err(self.err(
                        op_tok.pos,
                        "bool modifier can only be used on comparison operators",
                    ));
                }
                return_bool = true;
            }
            let matching = self.vector_matching(op)?;
            let next_min = if op.right_assoc() { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            self.node(op_tok.pos)?;
            lhs = self.binary(op, lhs, rhs, return_bool, matching, op_tok.pos)?;
        }
        Ok(lhs)
    }

    fn label_list(&mut self, context: &str) -> R<Vec<String>> {
        self.expect(Tok::LParen, context)?;
        let mut out = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::RParen => return Ok(out),
                Tok::Ident(s) => out.push(s),
                Tok::Str(s) if crate::lexer::is_name(&s) => out.push(s),
                Tok::Str(s) => {
                    return Err(self.err(
                        t.pos,
                        format!(
                            "invalid label name for grouping: {}",
                            crate::lexer::quote(&s)
                        ),
                    ));
                }
                _ => return Err(self.unexpected(&t, context, "label")),
            }
            let t = self.next();
            match t.tok {
                Tok::Comma => continue,
                Tok::RParen => return Ok(out),
                _ => return Err(self.unexpected(&t, context, "\",\" or \")\"")),
            }
        }
    }

    fn vector_matching(&mut self, op: BinOp) -> R<Option<VectorMatching>> {
        let mut m = VectorMatching::one_to_one();
        if op.is_set() {
            m.card = Card::ManyToMany;
        }
        let mut any = false;
        if is_kw(&self.peek().tok, "on") || is_kw(&self.peek().tok, "ignoring") {
            let t = self.next();
            m.on = is_kw(&t.tok, "on");
            m.explicit = true;
            m.labels = self.label_list("grouping opts")?;
            any = true;
            if is_kw(&self.peek().tok, "group_left") || is_kw(&self.peek().tok, "group_right") {
                let g = self.next();
                if op.is_set() {
                    return Err(self.err(
                        g.pos,
                        format!("no grouping allowed for \"{}\" operation", op.as_str()),
                    ));
                }
                m.card = if is_kw(&g.tok, "group_left") {
                    Card::ManyToOne
                } else {
                    Card::OneToMany
                };
                if self.peek().tok == Tok::LParen {
                    m.include = self.label_list("grouping opts")?;
                }
            }
        } else if is_kw(&self.peek().tok, "group_left") || is_kw(&self.peek().tok, "group_right") {
            let t = self.next();
            return Err(self.unexpected(&t, "", ""));
        }
        self.fill_modifiers(&mut m.fill)?;
        any |= m.fill.any();
        Ok(if any || op.is_set() { Some(m) } else { None })
    }

    /// `fill(v)`, or `fill_left(v)` and/or `fill_right(v)` in either order, last of a binary
    /// operator's modifiers. The words are keywords only right before `(`, so a metric named
    /// `fill` still reads as one.
    fn fill_modifiers(&mut self, fill: &mut Fill) -> R<()> {
        let mut written: Vec<&str> = Vec::new();
        loop {
            let t = self.peek().clone();
            let Tok::Ident(word) = &t.tok else {
                return Ok(());
            };
            let kw = match word.to_ascii_lowercase().as_str() {
                "fill" => "fill",
                "fill_left" => "fill_left",
                "fill_right" => "fill_right",
                _ => return Ok(()),
            };
            if self.toks.get(self.i + 1).map(|n| &n.tok) != Some(&Tok::LParen) {
                return Ok(());
            }
            // `fill` stands alone; `fill_left` and `fill_right` once each.
            if written.contains(&"fill")
                || (kw == "fill" && !written.is_empty())
                || written.contains(&kw)
            {
                return Err(self.unexpected(&t, "", ""));
            }
            self.next();
            self.next();
            let v = self.fill_value()?;
            match kw {
                "fill" => {
                    fill.lhs = Some(v);
                    fill.rhs = Some(v);
                }
                "fill_left" => fill.lhs = Some(v),
                _ => fill.rhs = Some(v),
            }
            written.push(kw);
        }
    }

    /// A fill modifier's value after its `(`: a number or duration (in seconds), optionally
    /// signed, then `)`.
    fn fill_value(&mut self) -> R<f64> {
        let mut sign = 1.0;
        if matches!(self.peek().tok, Tok::Add | Tok::Sub) && self.next().tok == Tok::Sub {
            sign = -1.0;
        }
        let t = self.next();
        let v = match t.tok {
            Tok::Number(v) => v,
            Tok::Duration(ms) => ms as f64 / 1000.0,
            _ => return Err(self.unexpected(&t, "fill modifier", "number or duration")),
        };
        self.expect(Tok::RParen, "fill modifier")?;
        Ok(sign * v)
    }

    fn binary(
        &self,
        op: BinOp,
        lhs: Node,
        rhs: Node,
        return_bool: bool,
        matching: Option<VectorMatching>,
        op_pos: usize,
    ) -> R<Node> {
        let start = lhs.start;
        let (lt, rt) = (lhs.ty, rhs.ty);
        for t in [lt, rt] {
            if t != ValueType::Scalar && t != ValueType::Vector {
                return Err(self.err(
                    start,
                    "binary expression must contain only scalar and instant vector types",
                ));
            }
        }
        if op.is_comparison() && !return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar
        {
            return Err(self.err(start, "comparisons between scalars must use BOOL modifier"));
        }
        if op.is_set() && (lt == ValueType::Scalar || rt == ValueType::Scalar) {
            return Err(self.err(
                start,
                format!(
                    "set operator \"{}\" not allowed in binary scalar expression",
                    op.as_str()
                ),
            ));
        }
        if let Some(m) = &matching {
            if m.fill.any() && !self.features.binop_fill_modifiers {
                return Err(self.err(
                    start,
                    "binop fill modifiers are experimental and not enabled",
                ));
            }
            if (m.explicit || m.card != Card::OneToOne && !op.is_set())
                && (lt != ValueType::Vector || rt != ValueType::Vector)
            {
                return Err(self.err(
                    start,
                    "vector matching only allowed between instant vectors",
                ));
            }
            if m.fill.any() && (lt != ValueType::Vector || rt != ValueType::Vector) {
                return Err(self.err(
                    start,
                    "filling in missing series only allowed between instant vectors",
                ));
            }
            if m.fill.any() && op.is_set() {
                return Err(self.err(
                    start,
                    "filling in missing series not allowed for set operators",
                ));
            }
            if m.on {
                for l in &m.include {
                    if m.labels.contains(l) {
                        return Err(self.err(
                            op_pos,
                            format!("label \"{l}\" must not occur in ON and GROUP clause at once"),
                        ));
                    }
                }
            }
        }
        // Scalar-vector and scalar-scalar operations have no vector matching.
        let matching = if lt == ValueType::Vector && rt == ValueType::Vector {
            Some(matching.unwrap_or_else(VectorMatching::one_to_one))
        } else {
            None
        };
        Ok(Node {
            e: Expr::Binary {
                op,
                lhs: Box::new(lhs.e),
                rhs: Box::new(rhs.e),
                return_bool,
                matching,
                pos: self.pos_of(start),
            },
            start,
            ty: if lt == ValueType::Scalar && rt == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            },
        })
    }

    fn unary(&mut self) -> R<Node> {
        let t = self.peek().clone();
        if t.tok == Tok::Sub || t.tok == Tok::Add {
            self.next();
            let n = self.expr(BinOp::Mul.precedence() + 1)?;
            let vt = n.ty;
            if vt != ValueType::Scalar && vt != ValueType::Vector {
                return Err(self.err(t.pos, format!("unary expression only allowed on expressions of type scalar or instant vector, got {:?}", vt.name())));
            }
            if t.tok == Tok::Add {
                return Ok(Node { start: t.pos, ..n });
            }
            self.node(t.pos)?;
            return Ok(Node {
                e: match n.e {
                    Expr::Number(v) => Expr::Number(-v),
                    e => Expr::Neg(Box::new(e)),
                },
                start: t.pos,
                ty: vt,
            });
        }
        let n = self.primary()?;
        self.postfix(n)
    }

    /// A duration expression of current Prometheus's grammar: `+ - * / % ^` (`^` binding
    /// tightest, right-associative; unary signs as tight as `*`) over number and duration
    /// literals, `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` and parentheses. Returns
    /// the expression and where it starts.
    fn dur_expr(&mut self, min_prec: u8, context: &str) -> R<(DurExpr, usize)> {
        self.dur_depth += 1;
        if self.dur_depth > MAX_DURATION_NESTING {
            let pos = self.peek().pos;
            return Err(self.err(
                pos,
                format!(
                    "duration expression nested too deeply: more than {MAX_DURATION_NESTING} levels"
                ),
            ));
        }
        let r = limits::deep(|| self.dur_expr_inner(min_prec, context));
        self.dur_depth -= 1;
        r
    }

    fn dur_expr_inner(&mut self, min_prec: u8, context: &str) -> R<(DurExpr, usize)> {
        let (mut lhs, start) = self.dur_unary(context)?;
        loop {
            let t = self.peek().clone();
            let (op, prec) = match t.tok {
                Tok::Add => (DurOp::Add, 1),
                Tok::Sub => (DurOp::Sub, 1),
                Tok::Mul => (DurOp::Mul, 2),
                Tok::Div => (DurOp::Div, 2),
                Tok::Mod => (DurOp::Mod, 2),
                Tok::Pow => (DurOp::Pow, 3),
                _ => return Ok((lhs, start)),
            };
            if prec < min_prec {
                return Ok((lhs, start));
            }
            self.next();
            // `^` is right-associative: its right side may hold another `^`.
            let next = if op == DurOp::Pow { prec } else { prec + 1 };
            let (rhs, _) = self.dur_expr(next, context)?;
            let end = self.toks[self.i.saturating_sub(1)].end;
            self.dur_node(t.pos)?;
            lhs = DurExpr::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                at: (start, end),
            };
        }
    }

    /// A signed operand: a sign binds as tight as `*` (`-2^2` is `-(2^2)`, `-2*3` is
    /// `(-2)*3`) and folds into a literal.
    fn dur_unary(&mut self, context: &str) -> R<(DurExpr, usize)> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Sub | Tok::Add => {
                self.next();
                self.dur_node(t.pos)?;
                let (e, _) = self.dur_expr(3, context)?;
                if t.tok == Tok::Add {
                    return Ok((e, t.pos));
                }
                Ok((
                    match e {
                        DurExpr::Lit { secs, duration } => DurExpr::Lit {
                            secs: -secs,
                            duration,
                        },
                        e => DurExpr::Neg(Box::new(e)),
                    },
                    t.pos,
                ))
            }
            _ => self.dur_atom(context),
        }
    }

    fn dur_atom(&mut self, context: &str) -> R<(DurExpr, usize)> {
        let t = self.next();
        self.dur_node(t.pos)?;
        let e = match &t.tok {
            Tok::Number(n) => {
                self.seconds(*n, t.pos)?;
                DurExpr::Lit {
                    secs: *n,
                    duration: false,
                }
            }
            Tok::Duration(ms) => DurExpr::Lit {
                secs: *ms as f64 / 1000.0,
                duration: true,
            },
            Tok::LParen => {
                let (e, _) = self.dur_expr(0, context)?;
                self.expect(Tok::RParen, context)?;
                DurExpr::Paren(Box::new(e))
            }
            Tok::Ident(w) if self.peek().tok == Tok::LParen => {
                match w.to_ascii_lowercase().as_str() {
                    "step" | "range" => {
                        self.next();
                        self.expect(Tok::RParen, context)?;
                        if w.eq_ignore_ascii_case("step") {
                            DurExpr::Step
                        } else {
                            DurExpr::Range
                        }
                    }
                    f @ ("min_of" | "max_of") => {
                        self.next();
                        let (a, _) = self.dur_expr(0, context)?;
                        self.expect(Tok::Comma, context)?;
                        let (b, _) = self.dur_expr(0, context)?;
                        self.expect(Tok::RParen, context)?;
                        if f == "min_of" {
                            DurExpr::MinOf(Box::new(a), Box::new(b))
                        } else {
                            DurExpr::MaxOf(Box::new(a), Box::new(b))
                        }
                    }
                    _ => return Err(self.unexpected(&t, context, DUR_EXPECTED)),
                }
            }
            _ => return Err(self.unexpected(&t, context, DUR_EXPECTED)),
        };
        Ok((e, t.pos))
    }

    fn dur_node(&mut self, pos: usize) -> R<()> {
        self.dur_nodes += 1;
        if self.dur_nodes > MAX_DURATION_NODES {
            return Err(self.err(
                pos,
                format!("duration expression too long: more than {MAX_DURATION_NODES} literals, operators and calls"),
            ));
        }
        Ok(())
    }

    /// A range or step: a single literal as before, else a duration expression. Returns the
    /// milliseconds (a placeholder of 1 when the expression reads the query's step or range,
    /// resolved when a query starts) and the expression.
    fn range_or_step(&mut self, context: &str) -> R<(i64, Option<WrittenDur>)> {
        let t = self.peek().clone();
        let single = matches!(
            self.toks.get(self.i + 1).map(|x| &x.tok),
            Some(Tok::RBracket | Tok::Colon)
        );
        match t.tok {
            Tok::Duration(ms) if single => {
                self.next();
                return Ok((ms, None));
            }
            Tok::Number(n) if single && n.is_finite() && n >= 0.0 => {
                self.next();
                return Ok((self.seconds(n, t.pos)?, None));
            }
            _ => {}
        }
        self.dur_nodes = 0;
        let (e, start) = self.dur_expr(0, context)?;
        let span = (start, self.toks[self.i.saturating_sub(1)].end);
        if e.dynamic() {
            return Ok((1, Some((e, span))));
        }
        let ms = e
            .millis(0.0, 0.0, true)
            .map_err(|d| self.err(d.at.map_or(start, |a| a.0), d.msg))?;
        Ok((ms, Some((e, span))))
    }

    /// An offset: a signed literal as before, else a signed `step()`, `range()`,
    /// `min_of`/`max_of` or parenthesised duration expression. Arithmetic needs the
    /// parentheses: after the atom the offset ends, so `x offset 5s - 8` is
    /// `(x offset 5s) - 8`, as in Prometheus.
    fn offset_dur(&mut self) -> R<(i64, Option<WrittenDur>)> {
        let context = "offset";
        let sign = match self.peek().tok {
            Tok::Sub => Some(self.next()),
            Tok::Add => {
                self.next();
                None
            }
            _ => None,
        };
        let t = self.peek().clone();
        let lit = match t.tok {
            Tok::Duration(ms) => Some(ms),
            Tok::Number(n) if n.is_finite() => Some(self.seconds(n, t.pos)?),
            _ => None,
        };
        if let Some(ms) = lit {
            self.next();
            return Ok((if sign.is_some() { -ms } else { ms }, None));
        }
        self.dur_nodes = 0;
        let (e, start) = self.dur_atom(context)?;
        let start = sign.as_ref().map_or(start, |s| s.pos);
        let e = match sign {
            Some(_) => DurExpr::Neg(Box::new(e)),
            None => e,
        };
        let span = (start, self.toks[self.i.saturating_sub(1)].end);
        if e.dynamic() {
            return Ok((0, Some((e, span))));
        }
        let ms = e
            .millis(0.0, 0.0, false)
            .map_err(|d| self.err(d.at.map_or(start, |a| a.0), d.msg))?;
        Ok((ms, Some((e, span))))
    }

    /// `[range]`, `[range:step]`, `offset`, `@` after an expression.
    fn postfix(&mut self, n: Node) -> R<Node> {
        let Node {
            mut e,
            start,
            mut ty,
        } = n;
        loop {
            let t = self.peek().clone();
            match &t.tok {
                Tok::LBracket => {
                    self.next();
                    let (range_ms, range_expr) =
                        self.range_or_step("subquery or range selector")?;
                    if self.peek().tok == Tok::Colon {
                        self.next();
                        let (step_ms, step_expr) = if self.peek().tok == Tok::RBracket {
                            (None, None)
                        } else {
                            let (ms, e) = self.range_or_step("subquery selector")?;
                            (Some(ms), e)
                        };
                        self.expect(Tok::RBracket, "subquery selector")?;
                        if ty != ValueType::Vector {
                            return Err(self.err(
                                start,
                                format!(
                                    "subquery is only allowed on instant vector, got {} instead",
                                    ty.name()
                                ),
                            ));
                        }
                        self.node(t.pos)?;
                        if matches!(e, Expr::VectorSelector(ref vs) if vs.offset_ms != 0 || vs.at.is_some())
                            || matches!(e, Expr::Subquery { .. })
                        {
                            // Allowed: modifiers inside apply to the inner expression.
                        }
                        let durs = (range_expr.is_some() || step_expr.is_some()).then(|| {
                            let at0 = range_expr.as_ref().map_or((0, 0), |r| r.1);
                            let at1 = step_expr.as_ref().map_or((0, 0), |r| r.1);
                            Box::new(Durations {
                                range: range_expr.map(|r| r.0),
                                step: step_expr.map(|r| r.0),
                                offset: None,
                                at: [at0, at1, (0, 0)],
                            })
                        });
                        e = Expr::Subquery {
                            expr: Box::new(e),
                            range_ms,
                            step_ms: step_ms.filter(|s| *s > 0),
                            offset_ms: 0,
                            at: None,
                            durs,
                        };
                        ty = ValueType::Matrix;
                    } else {
                        self.expect(Tok::RBracket, "range vector selector")?;
                        match &mut e {
                            Expr::VectorSelector(vs) => {
                                if vs.offset_ms != 0
                                    || vs.at.is_some()
                                    || vs.durs.as_ref().is_some_and(|d| d.offset.is_some())
                                {
                                    // `foo offset 5m [1m]` is not valid PromQL.
                                    return Err(self.err(
                                        t.pos,
                                        "no offset or @ modifiers allowed before range",
                                    ));
                                }
                                if range_ms == 0 {
                                    return Err(self.err(t.pos, "range must be greater than 0"));
                                }
                                if let Some((r, at)) = range_expr {
                                    let d = vs.durs.get_or_insert_with(Default::default);
                                    d.range = Some(r);
                                    d.at[0] = at;
                                }
                                let vs = std::mem::take(vs);
                                e = Expr::MatrixSelector { vs, range_ms };
                                ty = ValueType::Matrix;
                            }
                            _ => {
                                return Err(
                                    self.err(start, "ranges only allowed for vector selectors")
                                );
                            }
                        }
                    }
                }
                Tok::Ident(w)
                    if w.eq_ignore_ascii_case("anchored") || w.eq_ignore_ascii_case("smoothed") =>
                {
                    self.next();
                    let want = if w.eq_ignore_ascii_case("anchored") {
                        Extend::Anchored
                    } else {
                        Extend::Smoothed
                    };
                    let word = want.word();
                    let vs = match &mut e {
                        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => vs,
                        Expr::Subquery { .. } => {
                            return Err(self.err(
                                t.pos,
                                format!("{word} modifier is not supported for subqueries"),
                            ));
                        }
                        _ => {
                            return Err(self.err(t.pos, format!("{word} modifier not implemented")));
                        }
                    };
                    if vs.extend != Extend::None && vs.extend != want {
                        return Err(self.err(
                            t.pos,
                            "anchored and smoothed modifiers cannot be used together",
                        ));
                    }
                    vs.extend = want;
                }
                Tok::Ident(w) if w.eq_ignore_ascii_case("offset") => {
                    self.next();
                    let (ms, expr) = self.offset_dur()?;
                    let (slot, durs) = match &mut e {
                        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => {
                            (&mut vs.offset_ms, &mut vs.durs)
                        }
                        Expr::Subquery {
                            offset_ms, durs, ..
                        } => (offset_ms, durs),
                        _ => return Err(self.err(t.pos, "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery")),
                    };
                    if *slot != 0 || durs.as_ref().is_some_and(|d| d.offset.is_some()) {
                        return Err(self.err(t.pos, "offset may not be set multiple times"));
                    }
                    *slot = ms;
                    if let Some((x, at)) = expr {
                        let d = durs.get_or_insert_with(Default::default);
                        d.offset = Some(x);
                        d.at[2] = at;
                    }
                }
                Tok::At => {
                    self.next();
                    let a = self.next();
                    let at = match &a.tok {
                        Tok::Number(n) => {
                            if !n.is_finite() {
                                return Err(self.err(a.pos, at_out_of_bounds(*n)));
                            }
                            if n.abs() >= i64::MAX as f64 {
                                return Err(self.err(start, at_out_of_bounds(*n)));
                            }
                            At::Time(limits::clamp_time_ms(*n))
                        }
                        Tok::Sub | Tok::Add => {
                            let n = self.next();
                            match n.tok {
                                Tok::Number(v) if v.is_nan() || v.abs() >= i64::MAX as f64 => {
                                    let v = if a.tok == Tok::Sub { -v } else { v };
                                    return Err(self.err(start, at_out_of_bounds(v)));
                                }
                                Tok::Number(v) => {
                                    At::Time(limits::clamp_time_ms(if a.tok == Tok::Sub {
                                        -v
                                    } else {
                                        v
                                    }))
                                }
                                _ => return Err(self.unexpected(&n, "@ modifier", "number")),
                            }
                        }
                        Tok::Ident(w)
                            if (w == "start" || w == "end") && self.peek().tok == Tok::LParen =>
                        {
                            self.next();
                            self.expect(Tok::RParen, "@ modifier")?;
                            if w == "start" { At::Start } else { At::End }
                        }
                        _ => return Err(self.unexpected(&a, "@ modifier", "timestamp")),
                    };
                    let slot = match &mut e {
                        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => &mut vs.at,
                        Expr::Subquery { at, .. } => at,
                        _ => return Err(self.err(t.pos, "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery")),
                    };
                    if slot.is_some() {
                        return Err(self.err(t.pos, "@ <timestamp> may not be set multiple times"));
                    }
                    *slot = Some(at);
                }
                _ => return Ok(Node { e, start, ty }),
            }
        }
    }

    fn primary(&mut self) -> R<Node> {
        let t = self.next();
        let start = t.pos;
        self.node(start)?;
        let vector = |e| Node {
            e,
            start,
            ty: ValueType::Vector,
        };
        let e = match t.tok.clone() {
            Tok::Number(n) => {
                return Ok(Node {
                    e: Expr::Number(n),
                    start,
                    ty: ValueType::Scalar,
                });
            }
            Tok::Duration(ms) => {
                return Ok(Node {
                    e: Expr::Number(ms as f64 / 1000.0),
                    start,
                    ty: ValueType::Scalar,
                });
            }
            Tok::Str(s) => {
                return Ok(Node {
                    e: Expr::String(s),
                    start,
                    ty: ValueType::String,
                });
            }
            Tok::LParen => {
                let inner = self.expr(0)?;
                self.expect(Tok::RParen, "paren expression")?;
                return Ok(Node {
                    e: Expr::Paren(Box::new(inner.e)),
                    start,
                    ty: inner.ty,
                });
            }
            Tok::LBrace => {
                let matchers = self.matchers()?;
                self.selector(None, matchers, start)?
            }
            Tok::MetricIdent(name) => {
                let matchers = if self.peek().tok == Tok::LBrace {
                    self.next();
                    self.matchers()?
                } else {
                    vec![]
                };
                self.selector(Some(name), matchers, start)?
            }
            Tok::Ident(word) => {
                let next = self.peek().tok.clone();
                if let Some(op) = AggOp::parse(&word)
                    && (next == Tok::LParen || is_kw(&next, "by") || is_kw(&next, "without"))
                {
                    return Ok(vector(self.aggregation(op, start)?));
                }
                if next == Tok::LParen {
                    return self.call(&word, start);
                }
                if reserved(&word) || AggOp::parse(&word).is_some() {
                    return Err(self.unexpected(&t, "", ""));
                }
                let matchers = if next == Tok::LBrace {
                    self.next();
                    self.matchers()?
                } else {
                    vec![]
                };
                self.selector(Some(word), matchers, start)?
            }
            Tok::Eof => return Err(self.err(t.pos, "unexpected end of input")),
            _ => return Err(self.unexpected(&t, "", "")),
        };
        Ok(vector(e))
    }

    fn selector(&self, name: Option<String>, mut matchers: Vec<Matcher>, start: usize) -> R<Expr> {
        if let Some(n) = &name {
            if let Some(m) = matchers.iter().find(|m| m.name == METRIC_NAME) {
                return Err(self.err(
                    start,
                    format!(
                        "metric name must not be set twice: {:?} or {:?}",
                        n, m.value
                    ),
                ));
            }
            matchers.insert(0, Matcher::equal(METRIC_NAME, n.clone()));
        } else if matchers.iter().all(Matcher::matches_empty) {
            return Err(self.err(
                start,
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        let name = name.or_else(|| {
            matchers
                .iter()
                .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
                .map(|m| m.value.clone())
        });
        Ok(Expr::VectorSelector(VectorSelector {
            name,
            matchers,
            offset_ms: 0,
            at: None,
            durs: None,
            extend: Extend::None,
        }))
    }

    fn matchers(&mut self) -> R<Vec<Matcher>> {
        let mut out = Vec::new();
        loop {
            let t = self.next();
            let name = match t.tok {
                Tok::RBrace => return Ok(out),
                Tok::Ident(n) => n,
                Tok::Str(n) => {
                    // `{"metric_name"}` (Prometheus 3) is a name matcher.
                    if matches!(self.peek().tok, Tok::Comma | Tok::RBrace) {
                        out.push(Matcher::equal(METRIC_NAME, n));
                        if self.peek().tok == Tok::Comma {
                            self.next();
                        }
                        continue;
                    }
                    n
                }
                _ => return Err(self.unexpected(&t, "label matching", "label")),
            };
            let opt = self.next();
            let op = match opt.tok {
                Tok::Assign => MatchOp::Equal,
                Tok::Neq => MatchOp::NotEqual,
                Tok::EqRegex => MatchOp::Regex,
                Tok::NeqRegex => MatchOp::NotRegex,
                _ => {
                    return Err(self.unexpected(&opt, "label matching", "label matching operator"));
                }
            };
            let vt = self.next();
            let Tok::Str(value) = vt.tok else {
                return Err(self.unexpected(&vt, "label matching", "string"));
            };
            let m = Matcher::new(op, name, value).map_err(|e| match e {
                MatcherError::Regex(e) => self.err(vt.pos, format!("error parsing regexp: {e}")),
                e @ MatcherError::TooManyLarge { .. } => self.err(vt.pos, e.to_string()),
            })?;
            out.push(m);
            let sep = self.next();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RBrace => return Ok(out),
                _ => return Err(self.unexpected(&sep, "label matching", "\",\" or \"}\"")),
            }
        }
    }

    fn aggregation(&mut self, op: AggOp, start: usize) -> R<Expr> {
        let mut grouping = Vec::new();
        let mut without = false;
        let mut by_written = false;
        let modifier = |p: &mut Self,
                        grouping: &mut Vec<String>,
                        without: &mut bool,
                        by_written: &mut bool|
         -> R<()> {
            let t = p.peek().tok.clone();
            if is_kw(&t, "by") || is_kw(&t, "without") {
                p.next();
                *without = is_kw(&t, "without");
                *by_written = !*without;
                *grouping = p.label_list("grouping opts")?;
            }
            Ok(())
        };
        modifier(self, &mut grouping, &mut without, &mut by_written)?;
        self.expect(Tok::LParen, "aggregation")?;
        let mut args: Vec<Node> = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.expr(0)?);
                if self.peek().tok == Tok::Comma {
                    self.next();
                    if self.peek().tok == Tok::RParen {
                        break;
                    }
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "aggregation")?;
        if grouping.is_empty() && !by_written && !without {
            modifier(self, &mut grouping, &mut without, &mut by_written)?;
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            if args.is_empty() {
                return Err(self.err(start, "no arguments for aggregate expression provided"));
            }
            return Err(self.err(start, format!("wrong number of arguments for aggregate expression provided, expected {want}, got {}", args.len())));
        }
        let Some(expr) = args.pop() else {
            return Err(self.err(start, "no arguments for aggregate expression provided"));
        };
        let param_pos = self.pos_of(args.last().map_or(start, |a| a.start));
        if expr.ty != ValueType::Vector {
            return Err(self.err(
                expr.start,
                format!(
                    "expected type instant vector in aggregation expression, got {}",
                    expr.ty.name()
                ),
            ));
        }
        let expr_pos = self.pos_of(expr.start);
        let expr = expr.e;
        let param = args.pop().map(|p| {
            let want = if op == AggOp::CountValues {
                ValueType::String
            } else {
                ValueType::Scalar
            };
            if p.ty != want {
                return Err(self.err(
                    p.start,
                    format!(
                        "expected type {} in aggregation parameter, got {}",
                        want.name(),
                        p.ty.name()
                    ),
                ));
            }
            Ok(Box::new(p.e))
        });
        let param = match param {
            Some(r) => Some(r?),
            None => None,
        };
        Ok(Expr::Aggregate {
            op,
            expr: Box::new(expr),
            param,
            grouping,
            without,
            by_written,
            param_pos,
            pos: self.pos_of(start),
            expr_pos,
        })
    }

    fn pos_of(&self, offset: usize) -> crate::ast::Pos {
        let (line, col) = self.lines.position(self.input, offset);
        crate::ast::Pos {
            line: line as u32,
            col: col as u32,
        }
    }

    /// `info()`'s second argument: label matchers in braces alone, which may all match the
    /// empty string (they select info series' data labels, not series by themselves).
    fn info_labels(&mut self) -> R<Node> {
        let start = self.peek().pos;
        if self.peek().tok == Tok::LBrace {
            self.next();
            self.node(start)?;
            // No `name`: it prints back in braces, as written (a bare name is refused here).
            let vs = VectorSelector {
                matchers: self.matchers()?,
                ..Default::default()
            };
            return Ok(Node {
                e: Expr::VectorSelector(vs),
                start,
                ty: ValueType::Vector,
            });
        }
        let n = self.expr(0)?;
        Err(self.err(
            n.start,
            match (&n.e, n.ty) {
                (Expr::VectorSelector(_), _) => {
                    "expected label selectors only, got vector selector instead".to_string()
                }
                (_, ValueType::Vector) => "expected label selectors only".to_string(),
                (_, t) => format!(
                    "expected type instant vector in call to function \"info\", got {}",
                    t.name()
                ),
            },
        ))
    }

    fn call(&mut self, name: &str, start: usize) -> R<Node> {
        let Some(func) = functions::lookup(name) else {
            return Err(self.err(start, format!("unknown function with name {name:?}")));
        };
        self.expect(Tok::LParen, "function call")?;
        let mut args: Vec<Node> = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                if func.name == "info" && args.len() == 1 {
                    args.push(self.info_labels()?);
                } else {
                    args.push(self.expr(0)?);
                }
                if self.peek().tok == Tok::Comma {
                    self.next();
                    if self.peek().tok == Tok::RParen {
                        break;
                    }
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "function call")?;
        let n = func.args.len();
        let got = args.len();
        match func.variadic {
            0 if got != n => {
                return Err(self.err(
                    start,
                    format!(
                        "expected {n} argument(s) in call to {:?}, got {got}",
                        func.name
                    ),
                ));
            }
            v if v > 0 && (got + v as usize) < n => {
                return Err(self.err(
                    start,
                    format!(
                        "expected at least {} argument(s) in call to {:?}, got {got}",
                        n - v as usize,
                        func.name
                    ),
                ));
            }
            v if v > 0 && got > n => {
                return Err(self.err(
                    start,
                    format!(
                        "expected at most {n} argument(s) in call to {:?}, got {got}",
                        func.name
                    ),
                ));
            }
            -1 if got + 1 < n => {
                return Err(self.err(
                    start,
                    format!(
                        "expected at least {} argument(s) in call to {:?}, got {got}",
                        n - 1,
                        func.name
                    ),
                ));
            }
            _ => {}
        }
        for (i, a) in args.iter().enumerate() {
            let want = func.args[i.min(n - 1)];
            let have = a.ty;
            if have != want {
                return Err(self.err(
                    a.start,
                    format!(
                        "expected type {} in call to function {:?}, got {}",
                        want.name(),
                        func.name,
                        have.name()
                    ),
                ));
            }
        }
        let arg_pos = args.iter().map(|a| self.pos_of(a.start)).collect();
        Ok(Node {
            e: Expr::Call {
                func,
                args: args.into_iter().map(|a| a.e).collect(),
                pos: self.pos_of(start),
                arg_pos,
            },
            start,
            ty: func.ret,
        })
    }
}

/// Parse a PromQL expression.
///
/// Inputs beyond [`limits::MAX_TOKENS`] tokens, [`MAX_NODES`] nodes or [`MAX_NESTING`] levels
/// of nesting are refused with a parse error.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with(input, Features::installed())
}

/// [`parse`] with the given opt-in syntax instead of the process's.
pub fn parse_with(input: &str, features: Features) -> Result<Expr, ParseError> {
    let lines = LineIndex::new(input);
    let toks = lex(input).map_err(|(pos, msg)| {
        let (line, col) = lines.position(input, pos);
        ParseError { line, col, msg }
    })?;
    let mut p = P {
        input,
        features,
        lines,
        toks,
        i: 0,
        nesting: 0,
        nodes: 0,
        dur_nodes: 0,
        dur_depth: 0,
    };
    if p.peek().tok == Tok::Eof {
        return Err(p.err(0, "no expression found in input"));
    }
    let n = p.expr(0)?;
    let t = p.next();
    if t.tok != Tok::Eof {
        return Err(p.unexpected(&t, "", ""));
    }
    Ok(n.e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).to_string()
    }

    fn err(s: &str) -> String {
        parse(s)
            .map(|e| format!("parsed as {e}"))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn trim_operators_parse_as_comparisons_do_but_take_no_bool() {
        // Same precedence as comparisons: `h </ 1 + 2` trims at 3.
        let Expr::Binary { op, rhs, .. } = &parse("h </ 1 + 2").unwrap() else {
            panic!()
        };
        assert_eq!(*op, BinOp::TrimUpper);
        assert!(matches!(**rhs, Expr::Binary { op: BinOp::Add, .. }));
        let Expr::Binary { op, .. } = parse("h >/ on(a) x").unwrap() else {
            panic!()
        };
        assert_eq!(op, BinOp::TrimLower);
        assert!(parse("h </ bool 1").is_err());
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(ok("1 + 2 * 3"), "1 + 2 * 3");
        let Expr::Binary { op, .. } = parse("a or b and c").unwrap() else {
            panic!()
        };
        assert_eq!(op, BinOp::Or);
        let Expr::Binary { op, rhs, .. } = &parse("2 ^ 3 ^ 2").unwrap() else {
            panic!()
        };
        assert_eq!(*op, BinOp::Pow);
        assert!(
            matches!(**rhs, Expr::Binary { op: BinOp::Pow, .. }),
            "right-associative"
        );
        let Expr::Neg(inner) = &parse("-a ^ 2").unwrap() else {
            panic!("unary minus binds looser than ^")
        };
        assert!(matches!(**inner, Expr::Binary { op: BinOp::Pow, .. }));
        let Expr::Binary { op: BinOp::Mul, .. } = parse("-a * 2").unwrap() else {
            panic!("unary minus binds like *")
        };
    }

    #[test]
    fn selectors_functions_aggregations() {
        assert_eq!(
            ok(r#"up{job="vigil", instance=~"local.*"}"#),
            r#"up{job="vigil", instance=~"local.*"}"#
        );
        assert_eq!(
            ok("rate(http_requests_total[5m] offset 1m)"),
            "rate(http_requests_total[5m] offset 1m)"
        );
        assert_eq!(
            ok("sum by (job) (rate(x[1m]))"),
            "sum by (job) (rate(x[1m]))"
        );
        assert_eq!(
            ok("sum(rate(x[1m])) by (job)"),
            "sum by (job) (rate(x[1m]))"
        );
        assert_eq!(ok("topk(3, x)"), "topk(3, x)");
        assert_eq!(
            ok("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"),
            "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))"
        );
        // As Prometheus prints modifiers (checked against 2.42's `format_query`).
        assert_eq!(
            ok("a / on(job) group_left(x) b"),
            "a / on (job) group_left (x) b"
        );
        assert_eq!(ok("x[10m:1m] @ 100"), "x[10m:1m] @ 100.000");
        assert_eq!(ok("a > bool 1"), "a > bool 1");
        assert_eq!(ok("x @ start()"), "x @ start()");
        assert_eq!(ok("-1"), "-1");
    }

    /// Prometheus 3's quoted names: a quoted string alone in braces is the metric name, quoted
    /// label names match and group, and printing quotes what is outside the classic set so
    /// the text parses back to the same query.
    #[test]
    fn utf8_names_parse_and_print_back() {
        for (q, want) in [
            (r#"{"my.metric"}"#, r#"{"my.metric"}"#),
            (
                r#"{"my.metric", "a.b"="c", d!~"e"}"#,
                r#"{"my.metric", "a.b"="c", d!~"e"}"#,
            ),
            (r#"{"my_metric", x="1"}"#, r#"my_metric{x="1"}"#),
            (r#"sum by ("a.b", job) (x)"#, r#"sum by ("a.b", job) (x)"#),
            (
                r#"a + on ("service.name") group_left ("équipe") b"#,
                r#"a + on ("service.name") group_left ("équipe") b"#,
            ),
            (
                r#"rate({"http.requests", "k8s.pod"=~"web-.*"}[5m])"#,
                r#"rate({"http.requests", "k8s.pod"=~"web-.*"}[5m])"#,
            ),
        ] {
            let printed = ok(q);
            assert_eq!(printed, want, "{q}");
            assert_eq!(ok(&printed), printed, "{q} does not print back");
        }
        assert_eq!(
            err(r#"foo{"bar"}"#),
            r#"1:1: parse error: metric name must not be set twice: "foo" or "bar""#
        );
        assert!(err(r#"sum by ("") (x)"#).contains("invalid label name for grouping: \"\""));
    }

    #[test]
    fn errors_as_prometheus() {
        assert_eq!(
            err(r#"foo{a="b" bar}"#),
            r#"1:11: parse error: unexpected identifier "bar" in label matching, expected "," or "}""#
        );
        assert_eq!(
            err("{}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher"
        );
        assert_eq!(err(""), "1:1: parse error: no expression found in input");
        assert_eq!(
            err("rate(x)"),
            r#"1:6: parse error: expected type range vector in call to function "rate", got instant vector"#
        );
        assert_eq!(
            err("foo(x)"),
            r#"1:1: parse error: unknown function with name "foo""#
        );
        assert_eq!(
            err("abs(x, y)"),
            r#"1:1: parse error: expected 1 argument(s) in call to "abs", got 2"#
        );
        assert_eq!(
            err("x[5m] + 1"),
            "1:1: parse error: binary expression must contain only scalar and instant vector types"
        );
        assert_eq!(
            err("1 > 2"),
            "1:1: parse error: comparisons between scalars must use BOOL modifier"
        );
        assert_eq!(
            err("a + bool b"),
            "1:3: parse error: bool modifier can only be used on comparison operators"
        );
        assert_eq!(
            err("rate(x[5m])[1m]"),
            "1:1: parse error: ranges only allowed for vector selectors"
        );
        assert_eq!(err("sum(x"), "1:6: parse error: unclosed left parenthesis");
        assert!(err(r#"x{a=~"("}"#).starts_with("1:6: parse error: error parsing regexp"));
    }
}
