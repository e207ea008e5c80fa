//! Duration expressions that read the query's step or range (`x[step() * 2]`,
//! `x offset range()`), resolved when a query starts, as Prometheus's `PreprocessExpr` does:
//! `step()` is the query's step and `range()` its end minus start, both 0 for an instant
//! query. Expressions without them were folded by the parser.

use crate::ast::{Durations, Expr};
use crate::value::EvalError;

/// Whether any range, step or offset of `e` reads the query's step or range. Iterative: a
/// tree as deep as the parser allows must not overflow the stack.
pub fn dynamic(e: &Expr) -> bool {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => {
                if vs.durs.as_ref().is_some_and(|d| d.dynamic()) {
                    return true;
                }
            }
            Expr::Subquery { expr, durs, .. } => {
                if durs.as_ref().is_some_and(|d| d.dynamic()) {
                    return true;
                }
                stack.push(expr);
            }
            Expr::Paren(x) | Expr::Neg(x) => stack.push(x),
            Expr::Binary { lhs, rhs, .. } => {
                stack.push(lhs);
                stack.push(rhs);
            }
            Expr::Aggregate { expr, param, .. } => {
                stack.push(expr);
                if let Some(p) = param {
                    stack.push(p);
                }
            }
            Expr::Call { args, .. } => stack.extend(args.iter()),
            Expr::Number(_) | Expr::String(_) => {}
        }
    }
    false
}

/// `e` with every range, step and offset computed for a query of `step_ms` and `range_ms`.
/// Recursive on a fresh stack segment where the thread's runs low (see [`crate::limits`]).
pub fn resolved(e: &Expr, step_ms: i64, range_ms: i64) -> Result<Expr, EvalError> {
    crate::limits::deep(|| resolve(e, step_ms as f64 / 1000.0, range_ms as f64 / 1000.0))
}

fn resolve(e: &Expr, step: f64, range: f64) -> Result<Expr, EvalError> {
    let sub = |x: &Expr| crate::limits::deep(|| resolve(x, step, range)).map(Box::new);
    // Prometheus's message names where the expression was written when it has no other place.
    let fail = |at: (usize, usize)| {
        move |mut d: crate::ast::DurError| {
            d.at.get_or_insert(at);
            EvalError::BadQuery(d.to_string())
        }
    };
    // The offset and range a selector's expressions give now.
    let selector = |vs: &crate::ast::VectorSelector| -> Result<_, EvalError> {
        let mut vs = vs.clone();
        let mut range_ms = None;
        if let Some(d) = vs.durs.as_deref() {
            if let Some(o) = &d.offset {
                vs.offset_ms = o.millis(step, range, false).map_err(fail(d.at[2]))?;
            }
            if let Some(r) = &d.range {
                range_ms = Some(r.millis(step, range, true).map_err(fail(d.at[0]))?);
            }
        }
        Ok((vs, range_ms))
    };
    Ok(match e {
        Expr::VectorSelector(vs) => Expr::VectorSelector(selector(vs)?.0),
        Expr::MatrixSelector { vs, range_ms } => {
            let (vs, r) = selector(vs)?;
            Expr::MatrixSelector {
                vs,
                range_ms: r.unwrap_or(*range_ms),
            }
        }
        Expr::Subquery {
            expr,
            range_ms,
            step_ms,
            offset_ms,
            at,
            durs,
        } => {
            let d: Option<&Durations> = durs.as_deref();
            let get = |k: usize, positive| {
                let x = d.and_then(|d| [&d.range, &d.step, &d.offset][k].as_ref());
                let at = d.map_or((0, 0), |d| d.at[k]);
                x.map(|x| x.millis(step, range, positive).map_err(fail(at)))
                    .transpose()
            };
            Expr::Subquery {
                expr: sub(expr)?,
                range_ms: get(0, true)?.unwrap_or(*range_ms),
                step_ms: match get(1, true)? {
                    Some(s) => Some(s),
                    None => *step_ms,
                },
                offset_ms: get(2, false)?.unwrap_or(*offset_ms),
                at: *at,
                durs: durs.clone(),
            }
        }
        Expr::Paren(x) => Expr::Paren(sub(x)?),
        Expr::Neg(x) => Expr::Neg(sub(x)?),
        Expr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
            pos,
        } => Expr::Binary {
            op: *op,
            lhs: sub(lhs)?,
            rhs: sub(rhs)?,
            return_bool: *return_bool,
            matching: matching.clone(),
            pos: *pos,
        },
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
            by_written,
            param_pos,
            pos,
            expr_pos,
        } => Expr::Aggregate {
            op: *op,
            expr: sub(expr)?,
            param: param.as_deref().map(sub).transpose()?,
            grouping: grouping.clone(),
            without: *without,
            by_written: *by_written,
            param_pos: *param_pos,
            pos: *pos,
            expr_pos: *expr_pos,
        },
        Expr::Call {
            func,
            args,
            pos,
            arg_pos,
        } => Expr::Call {
            func,
            args: args
                .iter()
                .map(|a| crate::limits::deep(|| resolve(a, step, range)))
                .collect::<Result<_, _>>()?,
            pos: *pos,
            arg_pos: arg_pos.clone(),
        },
        Expr::Number(n) => Expr::Number(*n),
        Expr::String(s) => Expr::String(s.clone()),
    })
}
