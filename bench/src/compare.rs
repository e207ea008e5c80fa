//! Compare two Prometheus query API answers: same result type, same series (label sets), same
//! timestamps and values equal within a relative tolerance (NaN equal to NaN).

use std::collections::BTreeMap;

use serde_json::Value;

/// Relative tolerance for values (sums in a different order, Kahan summation).
pub const REL_TOLERANCE: f64 = 1e-9;

fn parse_value(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

pub fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let scale = a.abs().max(b.abs());
    (a - b).abs() <= REL_TOLERANCE * scale || (a - b).abs() < 1e-12
}

fn key(metric: &Value) -> String {
    let m: BTreeMap<String, String> = metric
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(","))
}

/// Points of one series: `[[t, "v"], ...]` or a single `[t, "v"]`.
fn points(v: &Value) -> Vec<(f64, f64)> {
    let one = |p: &Value| -> Option<(f64, f64)> {
        let a = p.as_array()?;
        Some((a.first()?.as_f64()?, parse_value(a.get(1)?)?))
    };
    match v.as_array() {
        Some(a) if a.first().is_some_and(|x| x.is_array()) => a.iter().filter_map(one).collect(),
        _ => one(v).into_iter().collect(),
    }
}

/// What an answer holds, for comparison.
#[derive(Debug)]
pub enum Answer {
    Error(String),
    Data {
        kind: String,
        /// Series in answer order: key and points.
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
}

pub fn parse(body: &str) -> Answer {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Answer::Error(format!("not JSON ({e}): {body:.200}")),
    };
    if v["status"] != "success" {
        return Answer::Error(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["error"].as_str().unwrap_or("?")
        ));
    }
    let kind = v["data"]["resultType"].as_str().unwrap_or("").to_string();
    let r = &v["data"]["result"];
    let series = match kind.as_str() {
        "vector" | "matrix" => r
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let pts = if kind == "vector" {
                            points(&s["value"])
                        } else {
                            points(&s["values"])
                        };
                        (key(&s["metric"]), pts)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![(String::new(), points(r))],
    };
    Answer::Data { kind, series }
}

/// `Ok` if the answers agree; otherwise what differs. `ordered` compares series order too.
pub fn compare(a: &str, b: &str, ordered: bool) -> Result<(), String> {
    match (parse(a), parse(b)) {
        (Answer::Error(_), Answer::Error(_)) => Ok(()),
        (Answer::Error(e), _) => Err(format!("only the first failed: {e}")),
        (_, Answer::Error(e)) => Err(format!("only the second failed: {e}")),
        (
            Answer::Data {
                kind: ka,
                series: sa,
            },
            Answer::Data {
                kind: kb,
                series: sb,
            },
        ) => {
            if ka != kb {
                return Err(format!("result types {ka} vs {kb}"));
            }
            if ordered {
                let oa: Vec<&String> = sa.iter().map(|s| &s.0).collect();
                let ob: Vec<&String> = sb.iter().map(|s| &s.0).collect();
                if oa != ob {
                    return Err(format!("order differs: {oa:?} vs {ob:?}"));
                }
            }
            let ma: BTreeMap<&String, &Vec<(f64, f64)>> = sa.iter().map(|(k, p)| (k, p)).collect();
            let mb: BTreeMap<&String, &Vec<(f64, f64)>> = sb.iter().map(|(k, p)| (k, p)).collect();
            if ma.len() != sa.len() || mb.len() != sb.len() {
                return Err("duplicate series in an answer".into());
            }
            let only_a: Vec<&&String> = ma.keys().filter(|k| !mb.contains_key(*k)).collect();
            let only_b: Vec<&&String> = mb.keys().filter(|k| !ma.contains_key(*k)).collect();
            if !only_a.is_empty() || !only_b.is_empty() {
                return Err(format!(
                    "series only in the first: {only_a:?}; only in the second: {only_b:?}"
                ));
            }
            for (k, pa) in &ma {
                let pb = mb[k];
                if pa.len() != pb.len() {
                    return Err(format!("{k}: {} points vs {}", pa.len(), pb.len()));
                }
                for (x, y) in pa.iter().zip(pb.iter()) {
                    if x.0 != y.0 {
                        return Err(format!("{k}: timestamp {} vs {}", x.0, y.0));
                    }
                    if !close(x.1, y.1) {
                        return Err(format!("{k} at {}: {} vs {}", x.0, x.1, y.1));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Compare only the values at each timestamp (as sorted multisets), not which series hold
/// them: for `topk`/`bottomk`, where which of several equal values is kept is unspecified and
/// differs between Prometheus versions.
pub fn compare_values(a: &str, b: &str) -> Result<(), String> {
    let by_time = |ans: Answer| -> Result<BTreeMap<i64, Vec<f64>>, String> {
        match ans {
            Answer::Error(e) => Err(e),
            Answer::Data { series, .. } => {
                let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (_, pts) in series {
                    for (t, v) in pts {
                        m.entry((t * 1000.0).round() as i64).or_default().push(v);
                    }
                }
                for vs in m.values_mut() {
                    vs.sort_by(|x, y| x.total_cmp(y));
                }
                Ok(m)
            }
        }
    };
    match (by_time(parse(a)), by_time(parse(b))) {
        (Err(_), Err(_)) => Ok(()),
        (Err(e), _) => Err(format!("only the first failed: {e}")),
        (_, Err(e)) => Err(format!("only the second failed: {e}")),
        (Ok(ma), Ok(mb)) => {
            if ma.keys().ne(mb.keys()) {
                return Err("different timestamps".into());
            }
            for (t, va) in &ma {
                let vb = &mb[t];
                if va.len() != vb.len() || va.iter().zip(vb).any(|(x, y)| !close(*x, *y)) {
                    return Err(format!("at {t} ms: values {va:?} vs {vb:?}"));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_answers_in_any_order_agree_and_differences_are_named() {
        let a = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[10,"1.5"]},{"metric":{"a":"2"},"value":[10,"NaN"]}]}}"#;
        let b = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"2"},"value":[10,"NaN"]},{"metric":{"a":"1"},"value":[10,"1.5000000000001"]}]}}"#;
        assert!(compare(a, b, false).is_ok());
        assert!(compare(a, b, true).unwrap_err().contains("order"));
        let c = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[10,"1.6"]},{"metric":{"a":"2"},"value":[10,"NaN"]}]}}"#;
        assert!(compare(a, c, false).unwrap_err().contains("1.5 vs 1.6"));
        let e = r#"{"status":"error","errorType":"bad_data","error":"x"}"#;
        assert!(compare(a, e, false).is_err());
        assert!(compare(e, e, false).is_ok());
    }
}
