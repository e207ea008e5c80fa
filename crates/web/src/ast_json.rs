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

pub fn translate(e: &Expr) -> Json {
    match e {
        Expr::Number(v) => json!({"type": "numberLiteral", "val": number(*v)}),
        Expr::String(s) => json!({"type": "stringLiteral", "val": s}),
        Expr::Paren(x) => json!({"type": "parenExpr", "expr": translate(x)}),
        // `-1` is a literal in Prometheus's tree as well.
        Expr::Neg(x) => match x.as_ref() {
            Expr::Number(v) => json!({"type": "numberLiteral", "val": number(-v)}),
            _ => json!({"type": "unaryExpr", "op": "-", "expr": translate(x)}),
        },
        Expr::VectorSelector(vs) => {
            let (ts, soe) = at_fields(&vs.at);
            json!({
                "type": "vectorSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "offset": vs.offset_ms,
                "matchers": matchers(vs),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::MatrixSelector { vs, range_ms } => {
            let (ts, soe) = at_fields(&vs.at);
            json!({
                "type": "matrixSelector",
                "name": vs.name.clone().unwrap_or_default(),
                "range": range_ms,
                "offset": vs.offset_ms,
                "matchers": matchers(vs),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Subquery {
            expr,
            range_ms,
            step_ms,
            offset_ms,
            at,
        } => {
            let (ts, soe) = at_fields(at);
            json!({
                "type": "subquery",
                "expr": translate(expr),
                "range": range_ms,
                "offset": offset_ms,
                "step": step_ms.unwrap_or(0),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Aggregate {
            op,
            expr,
            param,
            grouping,
            without,
            ..
        } => json!({
            "type": "aggregation",
            "op": op.as_str(),
            "expr": translate(expr),
            "param": param.as_ref().map(|p| translate(p)).unwrap_or(Json::Null),
            "grouping": grouping,
            "without": without,
        }),
        Expr::Call { func, args, .. } => json!({
            "type": "call",
            "func": {
                "name": func.name,
                "argTypes": func.args.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                "variadic": func.variadic,
                "returnType": value_type(func.ret),
            },
            "args": args.iter().map(translate).collect::<Vec<_>>(),
        }),
        Expr::Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching,
        } => {
            // Prometheus attaches vector matching to every operation between two vectors.
            let vectors =
                lhs.value_type() == ValueType::Vector && rhs.value_type() == ValueType::Vector;
            let matching = match (matching, vectors) {
                (Some(m), _) => json!({
                    "card": card(m.card),
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
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
                }),
                (None, false) => Json::Null,
            };
            json!({
                "type": "binaryExpr",
                "op": op.as_str(),
                "lhs": translate(lhs),
                "rhs": translate(rhs),
                "matching": matching,
                "bool": return_bool,
            })
        }
    }
}

fn card(c: Card) -> &'static str {
    match c {
        Card::OneToOne => "one-to-one",
        Card::ManyToOne => "many-to-one",
        Card::OneToMany => "one-to-many",
        Card::ManyToMany => "many-to-many",
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
        let j = translate(&e);
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
}
