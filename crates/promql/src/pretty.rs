//! Multi-line formatting of an expression, as Prometheus's `format_query` answers: a node whose
//! one-line form is longer than 100 characters is split, its children indented two spaces per
//! level; anything that fits stays on one line.
//!
//! Output goes into one buffer and each node's one-line length is computed once, so the cost is
//! the size of the answer. That answer grows with the square of the nesting (every level is
//! indented), so it is capped at [`MAX_OUTPUT`] bytes; Prometheus has no cap.

use std::collections::HashMap;

use crate::ast::{Expr, aggregation_head, binary_modifiers, subquery_suffix};
use crate::limits::deep;

const MAX_LINE: usize = 100;

/// Longest formatted answer.
pub const MAX_OUTPUT: usize = 16 << 20;

/// The formatted query would be longer than [`MAX_OUTPUT`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the formatted query would be longer than {MAX_OUTPUT} bytes")]
pub struct TooLong;

/// `e` formatted over as many lines as it needs.
pub fn pretty(e: &Expr) -> Result<String, TooLong> {
    let mut p = Printer {
        out: String::new(),
        lens: HashMap::new(),
    };
    p.at(e, 0, false)?;
    Ok(p.out)
}

struct Printer {
    out: String,
    /// One-line length of each node seen, by address.
    lens: HashMap<*const Expr, usize>,
}

impl Printer {
    /// The length of `e` printed on one line (as `Display` prints it), computed once per node.
    fn len(&mut self, e: &Expr) -> usize {
        if let Some(&n) = self.lens.get(&(e as *const Expr)) {
            return n;
        }
        let n = deep(|| match e {
            Expr::Binary { .. } => {
                let (spine, bottom) = e.left_spine();
                let mut n = self.len(bottom);
                for b in spine.iter().rev() {
                    if let Expr::Binary {
                        op,
                        rhs,
                        return_bool,
                        matching,
                        ..
                    } = b
                    {
                        n += 2
                            + op.as_str().len()
                            + binary_modifiers(*return_bool, matching.as_ref()).len()
                            + self.len(rhs);
                        self.lens.insert(*b as *const Expr, n);
                    }
                }
                n
            }
            Expr::Paren(x) => 2 + self.len(x),
            Expr::Neg(x) => 1 + self.len(x),
            Expr::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
                at,
                durs,
            } => {
                self.len(expr)
                    + subquery_suffix(*range_ms, *step_ms, *offset_ms, at, durs.as_deref()).len()
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
                aggregation_head(*op, grouping, *without, *by_written).len()
                    + 2
                    + param.as_ref().map_or(0, |p| self.len(p) + 2)
                    + self.len(expr)
            }
            Expr::Call { func, args, .. } => {
                func.name.len()
                    + 2
                    + args.iter().map(|a| self.len(a)).sum::<usize>()
                    + 2 * args.len().saturating_sub(1)
            }
            Expr::Number(_)
            | Expr::String(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector { .. } => e.to_string().len(),
        });
        self.lens.insert(e as *const Expr, n);
        n
    }

    fn fits(&mut self, e: &Expr) -> bool {
        self.len(e) <= MAX_LINE
    }

    fn indent(&mut self, level: usize, skip: bool) {
        if !skip {
            for _ in 0..level {
                self.out.push_str("  ");
            }
        }
    }

    /// Print `e` at `level`; with `skip_indent` its first line is not indented (after a `-`).
    fn at(&mut self, e: &Expr, level: usize, skip_indent: bool) -> Result<(), TooLong> {
        if self.out.len() > MAX_OUTPUT || level.saturating_mul(2) > MAX_OUTPUT {
            return Err(TooLong);
        }
        deep(|| self.at_node(e, level, skip_indent))
    }

    fn at_node(&mut self, e: &Expr, level: usize, skip: bool) -> Result<(), TooLong> {
        use std::fmt::Write;
        if self.fits(e) {
            // Prometheus prints a subquery that fits without its indentation; so does vigil, so
            // the two answers stay identical.
            if !matches!(e, Expr::Subquery { .. }) {
                self.indent(level, skip);
            }
            let _ = write!(self.out, "{e}");
            return Ok(());
        }
        match e {
            Expr::Aggregate {
                op,
                expr,
                param,
                grouping,
                without,
                by_written,
                ..
            } => {
                self.indent(level, skip);
                self.out
                    .push_str(&aggregation_head(*op, grouping, *without, *by_written));
                self.out.push_str("(\n");
                if let Some(p) = param {
                    self.at(p, level + 1, false)?;
                    self.out.push_str(",\n");
                }
                self.at(expr, level + 1, false)?;
                self.out.push('\n');
                self.indent(level, false);
                self.out.push(')');
            }
            Expr::Binary { .. } => {
                // The chain's nodes that do not fit form its top (lengths only grow upwards);
                // the lowest of them prints its left operand first, each level one deeper.
                let (spine, bottom) = e.left_spine();
                let mut split = 1;
                while split < spine.len() && !self.fits(spine[split]) {
                    split += 1;
                }
                let first = spine.get(split).copied().unwrap_or(bottom);
                self.at(first, level + split, skip)?;
                for (i, b) in spine[..split].iter().enumerate().rev() {
                    if let Expr::Binary {
                        op,
                        rhs,
                        return_bool,
                        matching,
                        ..
                    } = b
                    {
                        self.out.push('\n');
                        self.indent(level + i, false);
                        self.out.push_str(op.as_str());
                        self.out
                            .push_str(&binary_modifiers(*return_bool, matching.as_ref()));
                        self.out.push('\n');
                        self.at(rhs, level + i + 1, false)?;
                    }
                }
            }
            Expr::Call { func, args, .. } => {
                self.indent(level, skip);
                self.out.push_str(func.name);
                self.out.push_str("(\n");
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(",\n");
                    }
                    self.at(a, level + 1, false)?;
                }
                self.out.push('\n');
                self.indent(level, false);
                self.out.push(')');
            }
            Expr::Paren(x) => {
                self.indent(level, skip);
                self.out.push_str("(\n");
                self.at(x, level + 1, false)?;
                self.out.push('\n');
                self.indent(level, false);
                self.out.push(')');
            }
            Expr::Neg(x) => {
                self.indent(level, skip);
                self.out.push('-');
                self.at(x, level, true)?;
            }
            Expr::Subquery {
                expr,
                range_ms,
                step_ms,
                offset_ms,
                at,
                durs,
            } => {
                self.at(expr, level, skip)?;
                self.out.push_str(&subquery_suffix(
                    *range_ms,
                    *step_ms,
                    *offset_ms,
                    at,
                    durs.as_deref(),
                ));
            }
            // Selectors and literals cannot be split.
            _ => {
                self.indent(level, skip);
                let _ = write!(self.out, "{e}");
            }
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(TooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn fmt(q: &str) -> String {
        let e = parse(q).expect("parses");
        let mut p = Printer {
            out: String::new(),
            lens: HashMap::new(),
        };
        // The one-line lengths agree with `Display` for every node.
        assert_eq!(p.len(&e), e.to_string().len(), "{q}");
        pretty(&e).expect("fits")
    }

    #[test]
    fn short_queries_stay_on_one_line() {
        assert_eq!(
            fmt("sum by(job)(rate(x[5m]))"),
            "sum by (job) (rate(x[5m]))"
        );
        assert_eq!(fmt("a / on(x) group_left b"), "a / on (x) group_left () b");
    }

    /// Expected layouts as Debian's Prometheus 2.42 answers `format_query` for the same text
    /// (matchers without a sort, as current Prometheus prints them).
    #[test]
    fn long_queries_split_as_prometheus() {
        assert_eq!(
            fmt(
                r#"histogram_quantile(0.99, sum by (le, job) (rate(apiserver_request_duration_seconds_bucket{job="apiserver", verb!="WATCH"}[5m])))"#
            ),
            r#"histogram_quantile(
  0.99,
  sum by (le, job) (
    rate(apiserver_request_duration_seconds_bucket{job="apiserver", verb!="WATCH"}[5m])
  )
)"#
        );
        let m = r#"a_very_long_metric_name_for_testing_total{label_one="value one", label_two="value two"}"#;
        assert_eq!(
            fmt(&format!("(sum(rate({m}[5m])) > 10) and on (job) up == 1")),
            format!(
                "  (\n      sum(\n        rate({m}[5m])\n      )\n    >\n      10\n  )\nand on (job)\n  up == 1"
            )
        );
        assert_eq!(
            fmt(&format!("-sum(rate({m}[5m]) + 1)")),
            format!("-sum(\n    rate({m}[5m])\n  +\n    1\n)")
        );
        assert_eq!(
            fmt(&format!(
                "max_over_time(sum by (job) (rate({m}[5m]))[1h:5m] offset 1d)"
            )),
            format!("max_over_time(\n  sum by (job) (\n    rate({m}[5m])\n  )[1h:5m] offset 1d\n)")
        );
        let short = r#"a_very_long_metric_name_for_testing_total{label_one="value one"}"#;
        assert_eq!(
            fmt(&format!("{short} > bool on(job) group_right(x) {short}")),
            format!("  {short}\n> bool on (job) group_right (x)\n  {short}")
        );
        assert_eq!(
            fmt(&format!("({short} + {short})")),
            format!("(\n    {short}\n  +\n    {short}\n)")
        );
    }
}
