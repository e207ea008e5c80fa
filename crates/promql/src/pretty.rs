//! Multi-line formatting of an expression, as Prometheus's `format_query` answers: a node whose
//! one-line form is longer than 100 characters is split, its children indented two spaces per
//! level; anything that fits stays on one line.

use crate::ast::{Expr, aggregation_head, binary_modifiers, subquery_suffix};

const MAX_LINE: usize = 100;

/// `e` formatted over as many lines as it needs.
pub fn pretty(e: &Expr) -> String {
    at(e, 0)
}

fn pad(level: usize) -> String {
    "  ".repeat(level)
}

fn needs_split(e: &Expr) -> bool {
    e.to_string().len() > MAX_LINE
}

fn at(e: &Expr, level: usize) -> String {
    let ind = pad(level);
    if !needs_split(e) {
        // Prometheus prints a subquery that fits without its indentation; so does vigil, so
        // the two answers stay identical.
        return match e {
            Expr::Subquery { .. } => e.to_string(),
            _ => format!("{ind}{e}"),
        };
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
            let mut s = format!(
                "{ind}{}(\n",
                aggregation_head(*op, grouping, *without, *by_written)
            );
            if let Some(p) = param {
                s.push_str(&at(p, level + 1));
                s.push_str(",\n");
            }
            s.push_str(&at(expr, level + 1));
            s.push('\n');
            s.push_str(&ind);
            s.push(')');
            s
        }
        Expr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => format!(
            "{}\n{ind}{}{}\n{}",
            at(lhs, level + 1),
            op.as_str(),
            binary_modifiers(*return_bool, matching.as_ref()),
            at(rhs, level + 1)
        ),
        Expr::Call { func, args, .. } => {
            let args: Vec<String> = args.iter().map(|a| at(a, level + 1)).collect();
            format!("{ind}{}(\n{}\n{ind})", func.name, args.join(",\n"))
        }
        Expr::Paren(x) => format!("{ind}(\n{}\n{ind})", at(x, level + 1)),
        Expr::Neg(x) => format!("{ind}-{}", at(x, level).trim()),
        Expr::Subquery {
            expr,
            range_ms,
            step_ms,
            offset_ms,
            at: at_mod,
        } => format!(
            "{}{}",
            at(expr, level),
            subquery_suffix(*range_ms, *step_ms, *offset_ms, at_mod)
        ),
        // Selectors and literals cannot be split.
        _ => format!("{ind}{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn fmt(q: &str) -> String {
        pretty(&parse(q).expect("parses"))
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
