//! The PromQL syntax tree as `/api/v1/parse_query` returns it (the shape Prometheus's UI tree
//! view reads): one object per node with a `type` and the node's fields, durations in ms.

use serde_json::{Value as Json, json};
use vigil_promql::Expr;
use vigil_promql::ast::{At, BinOp, Card, ValueType, VectorSelector};

fn value_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
    }
}

/// A range, step or offset in ms, or 0 while a duration expression reading the query's step
/// or range leaves it unknown (as Prometheus's tree before the query resolves it).
fn known(ms: i64, e: Option<&vigil_promql::ast::DurExpr>) -> i64 {
    if e.is_some_and(|e| e.dynamic()) {
        0
    } else {
        ms
    }
}

fn at_fields(at: &Option<At>) -> (Json, Json) {
    match at {
        Some(At::Time(t)) => (json!(t), Json::Null),
        Some(At::Start) => (Json::Null, json!("start")),
        Some(At::End) => (Json::Null, json!("end")),
        None => (Json::Null, Json::Null),
    }
}

fn matchers(vs: &VectorSelector) -> Json {
    Json::Array(
        vs.matchers
            .iter()
            .map(|m| json!({"name": m.name, "value": m.value, "type": m.op.as_str()}))
            .collect(),
    )
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Display is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

/// The tree as JSON text. Written straight into one string (no intermediate JSON tree, whose
/// recursive drop and serialisation a deep query would overflow), on a fresh stack segment
/// when the thread's runs low, and chains of binary operators in a loop.
pub fn translate(e: &Expr) -> String {
    let mut out = String::new();
    node(&mut out, e);
    out
}

fn put(out: &mut String, v: Json) {
    out.push_str(&v.to_string());
}

/// Write `e`; returns its value type (binary operations need their operands').
fn node(out: &mut String, e: &Expr) -> ValueType {
    vigil_promql::limits::deep(|| node_inner(out, e))
}

fn node_inner(out: &mut String, e: &Expr) -> ValueType {
    match e {
        Expr::Number(v) => put(out, json!({"type": "numberLiteral", "val": number(*v)})),
        Expr::String(s) => put(out, json!({"type": "stringLiteral", "val": s})),
        Expr::Paren(x) => {
            out.push_str(r#"{"type":"parenExpr","expr":"#);
            let t = node(out, x);
            out.push('}');
            return t;
        }
        // `-1` is a literal in Prometheus's tree as well.
        Expr::Neg(x) => match x.as_ref() {
            Expr::Number(v) => put(out, json!({"type": "numberLiteral", "val": number(-v)})),
            _ => {
                out.push_str(r#"{"type":"unaryExpr","op":"-","expr":"#);
                let t = node(out, x);
                out.push('}');
                return t;
            }
        },
        Expr::VectorSelector(vs) => {
            let (ts, soe) = at_fields(&vs.at);
            let d = vs.durs.as_deref();
            put(
                out,
                json!({
                    "type": "vectorSelector",
                    "name": vs.name.clone().unwrap_or_default(),
                    "offset": known(vs.offset_ms, d.and_then(|d| d.offset.as_ref())),
                    "matchers": matchers(vs),
                    "timestamp": ts,
                    "startOrEnd": soe,
                    "anchored": vs.extend == vigil_promql::ast::Extend::Anchored,
                    "smoothed": vs.extend == vigil_promql::ast::Extend::Smoothed,
                }),
            )
        }
        Expr::MatrixSelector { vs, range_ms } => {
            let (ts, soe) = at_fields(&vs.at);
            put(
                out,
                json!({
                    "type": "matrixSelector",
                    "name": vs.name.clone().unwrap_or_default(),
                    "range": known(*range_ms, vs.durs.as_deref().and_then(|d| d.range.as_ref())),
                    "offset": known(vs.offset_ms, vs.durs.as_deref().and_then(|d| d.offset.as_ref())),
                    "matchers": matchers(vs),
                    "timestamp": ts,
                    "startOrEnd": soe,
                    "anchored": vs.extend == vigil_promql::ast::Extend::Anchored,
                    "smoothed": vs.extend == vigil_promql::ast::Extend::Smoothed,
                }),
            )
        }
        Expr::Subquery {
            expr,
            range_ms,
            step_ms,
            offset_ms,
            at,
            durs,
        } => {
            let (ts, soe) = at_fields(at);
            let d = durs.as_deref();
            let mut fields = json!({
                "type": "subquery",
                "range": known(*range_ms, d.and_then(|d| d.range.as_ref())),
                "offset": known(*offset_ms, d.and_then(|d| d.offset.as_ref())),
                "step": known(step_ms.unwrap_or(0), d.and_then(|d| d.step.as_ref())),
                "timestamp": ts,
                "startOrEnd": soe,
            })
            .to_string();
            fields.pop();
            out.push_str(&fields);
            out.push_str(r#","expr":"#);
            node(out, expr);
            out.push('}');
        }
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
            ..
        } => {
            let mut fields = json!({
                "type": "aggregation",
                "op": op.as_str(),
                "grouping": grouping,
                "without": without,
            })
            .to_string();
            fields.pop();
            out.push_str(&fields);
            out.push_str(r#","expr":"#);
            node(out, expr);
            out.push_str(r#","param":"#);
            match param {
                Some(p) => {
                    node(out, p);
                }
                None => out.push_str("null"),
            }
            out.push('}');
        }
        Expr::Call { func, args, .. } => {
            let mut fields = json!({
                "type": "call",
                "func": {
                    "name": func.name,
                    "argTypes": func.args.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                    "variadic": func.variadic,
                    "returnType": value_type(func.ret),
                },
            })
            .to_string();
            fields.pop();
            out.push_str(&fields);
            out.push_str(r#","args":["#);
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                node(out, a);
            }
            out.push_str("]}");
        }
        Expr::Binary { .. } => {
            let (spine, bottom) = e.left_spine();
            for b in &spine {
                if let Expr::Binary { op, .. } = b {
                    out.push_str(r#"{"type":"binaryExpr","op":"#);
                    put(out, json!(op.as_str()));
                    out.push_str(r#","lhs":"#);
                }
            }
            let mut lt = node(out, bottom);
            for b in spine.iter().rev() {
                if let Expr::Binary {
                    op,
                    rhs,
                    return_bool,
                    matching,
                    ..
                } = b
                {
                    out.push_str(r#","rhs":"#);
                    let rt = node(out, rhs);
                    // Prometheus attaches vector matching to every operation between two vectors.
                    let vectors = lt == ValueType::Vector && rt == ValueType::Vector;
                    let matching = match (matching, vectors) {
                        (Some(m), _) => json!({
                            "card": card(m.card),
                            "labels": m.labels,
                            "on": m.on,
                            "include": m.include,
                            "fillValues": {"lhs": fill_value(m.fill.lhs), "rhs": fill_value(m.fill.rhs)},
                        }),
                        (None, true) => json!({
                            "card": if matches!(op, BinOp::And | BinOp::Or | BinOp::Unless) {
                                "many-to-many"
                            } else {
                                "one-to-one"
                            },
                            "labels": [],
                            "on": false,
                            "include": [],
                            "fillValues": {"lhs": null, "rhs": null},
                        }),
                        (None, false) => Json::Null,
                    };
                    out.push_str(r#","matching":"#);
                    put(out, matching);
                    out.push_str(r#","bool":"#);
                    out.push_str(if *return_bool { "true" } else { "false" });
                    out.push('}');
                    lt = if lt == ValueType::Scalar && rt == ValueType::Scalar {
                        ValueType::Scalar
                    } else {
                        ValueType::Vector
                    };
                }
            }
            return lt;
        }
    }
    e.value_type()
}

fn card(c: Card) -> &'static str {
    match c {
        Card::OneToOne => "one-to-one",
        Card::ManyToOne => "many-to-one",
        Card::OneToMany => "one-to-many",
        Card::ManyToMany => "many-to-many",
    }
}

/// A fill modifier's value as Prometheus's UI reads it: a number, null when not written, and
/// JSON's missing NaN and infinities as the strings Go prints for them.
fn fill_value(v: Option<f64>) -> Json {
    match v {
        None => Json::Null,
        Some(x) if x.is_finite() => json!(x),
        Some(x) => json!(vigil_model::format_go_float(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_translates_to_prometheus_node_shapes() {
        let e = vigil_promql::parse(
            "sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m] offset 1m)) / on (job) group_left count by (job) (up) + -1",
        )
        .unwrap();
        let j: Json = serde_json::from_str(&translate(&e)).unwrap();
        assert_eq!(j["type"], "binaryExpr");
        assert_eq!(j["op"], "+");
        assert_eq!(j["matching"], Json::Null, "vector + scalar has no matching");
        assert_eq!(j["rhs"], json!({"type": "numberLiteral", "val": "-1"}));
        let div = &j["lhs"];
        assert_eq!(div["op"], "/");
        assert_eq!(div["matching"]["card"], "many-to-one");
        assert_eq!(div["matching"]["labels"], json!(["job"]));
        assert_eq!(div["matching"]["on"], true);
        let agg = &div["lhs"];
        assert_eq!(agg["type"], "aggregation");
        assert_eq!(agg["grouping"], json!(["job"]));
        let call = &agg["expr"];
        assert_eq!(call["func"]["name"], "rate");
        assert_eq!(call["func"]["argTypes"], json!(["matrix"]));
        let ms = &call["args"][0];
        assert_eq!(ms["type"], "matrixSelector");
        assert_eq!(ms["range"], 300_000);
        assert_eq!(ms["offset"], 60_000);
        assert_eq!(ms["name"], "http_requests_total");
        assert!(
            ms["matchers"]
                .as_array()
                .unwrap()
                .contains(&json!({"name": "code", "value": "5..", "type": "=~"}))
        );
    }

    #[test]
    fn extended_ranges_and_fill_values_are_shown() {
        let e = vigil_promql::parse_with(
            "rate(x[5m] anchored) + fill_left(1) y smoothed",
            vigil_promql::Features::all(),
        )
        .unwrap();
        let j: Json = serde_json::from_str(&translate(&e)).unwrap();
        assert_eq!(j["lhs"]["args"][0]["anchored"], true);
        assert_eq!(j["lhs"]["args"][0]["smoothed"], false);
        assert_eq!(j["rhs"]["smoothed"], true);
        assert_eq!(
            j["matching"]["fillValues"],
            json!({"lhs": 1.0, "rhs": null})
        );
    }
}
