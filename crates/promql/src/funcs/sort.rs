//! Ordering: `sort`, `sort_desc`, `sort_by_label` (natural order), and the heap behind
//! `topk`/`bottomk`.

use super::*;

/// Result order of instant queries whose outermost function sorts.
pub(crate) fn order_instant(expr: &Expr, out: &mut [(Labels, crate::value::Point)]) {
    if let Expr::Aggregate { op, .. } = expr.unparen() {
        match op {
            crate::ast::AggOp::Topk => {
                out.sort_by(|a, b| cmp_desc(a.1.v, b.1.v).then_with(|| a.0.cmp(&b.0)))
            }
            crate::ast::AggOp::Bottomk => {
                out.sort_by(|a, b| cmp_val(a.1.v, b.1.v).then_with(|| a.0.cmp(&b.0)))
            }
            _ => {}
        }
        return;
    }
    let Expr::Call { func, args, .. } = expr.unparen() else {
        return;
    };
    match func.name {
        "sort" => out.sort_by(|a, b| cmp_val(a.1.v, b.1.v)),
        "sort_desc" => out.sort_by(|a, b| cmp_desc(a.1.v, b.1.v)),
        "sort_by_label" | "sort_by_label_desc" => {
            let names: Vec<String> = args[1..]
                .iter()
                .filter_map(|a| {
                    if let Expr::String(s) = a {
                        Some(s.clone())
                    } else {
                        None
                    }
                })
                .collect();
            out.sort_by(|a, b| {
                let mut o = std::cmp::Ordering::Equal;
                for n in &names {
                    o = natural_cmp(a.0.get_or_empty(n), b.0.get_or_empty(n));
                    if o != std::cmp::Ordering::Equal {
                        break;
                    }
                }
                let o = o.then_with(|| a.0.cmp(&b.0));
                if func.name == "sort_by_label_desc" {
                    o.reverse()
                } else {
                    o
                }
            });
        }
        _ => {}
    }
}

/// Ascending by value, NaN last.
pub(crate) fn cmp_val(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Descending by value, NaN last (a total order, unlike reversing `cmp_val`).
pub(crate) fn cmp_desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

/// Compare strings with digit runs compared numerically.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        if x[0].is_ascii_digit() && y[0].is_ascii_digit() {
            let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
            let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
            let (dx, dy) = (&x[..nx], &y[..ny]);
            let tx = dx.iter().skip_while(|c| **c == b'0').count();
            let ty = dy.iter().skip_while(|c| **c == b'0').count();
            let o = tx.cmp(&ty).then_with(|| dx[nx - tx..].cmp(&dy[ny - ty..]));
            if o != std::cmp::Ordering::Equal {
                return o;
            }
            x = &x[nx..];
            y = &y[ny..];
        } else {
            if x[0] != y[0] {
                return x[0].cmp(&y[0]);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len())
}

/// The `k` series `topk` (or `bottomk`) keeps from `vals` (series index, value) in input order.
///
/// Which of several equal values survive is observable, so this follows Prometheus's algorithm
/// rather than a sort: a binary min-heap (max-heap for `bottomk`) of at most `k` entries, where
/// NaN orders below everything, a new value replaces the root only if strictly better, and the
/// heap is restored by the textbook sift-down/sift-up.
pub fn heap_select(vals: &[(usize, f64)], k: usize, top: bool) -> Vec<usize> {
    // `less(a, b)`: a belongs nearer the root (is evicted first).
    let less = |a: f64, b: f64| {
        if a.is_nan() {
            return true;
        }
        if top { a < b } else { a > b }
    };
    let mut h: Vec<(usize, f64)> = Vec::with_capacity(k.min(vals.len()));
    let sift_down = |h: &mut Vec<(usize, f64)>, mut i: usize| {
        let n = h.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let mut c = l;
            if l + 1 < n && less(h[l + 1].1, h[l].1) {
                c = l + 1;
            }
            if !less(h[c].1, h[i].1) {
                break;
            }
            h.swap(i, c);
            i = c;
        }
    };
    for &(i, v) in vals {
        if h.len() < k {
            h.push((i, v));
            let mut j = h.len() - 1;
            while j > 0 {
                let p = (j - 1) / 2;
                if !less(h[j].1, h[p].1) {
                    break;
                }
                h.swap(p, j);
                j = p;
            }
        } else if k > 0 {
            let root = h[0].1;
            let better = if top { root < v } else { root > v };
            if better || (root.is_nan() && !v.is_nan()) {
                h[0] = (i, v);
                if k > 1 {
                    sift_down(&mut h, 0);
                }
            }
        }
    }
    h.into_iter().map(|(i, _)| i).collect()
}
