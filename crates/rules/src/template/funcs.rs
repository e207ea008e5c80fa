//! Go's template builtins and Prometheus's template functions, with their output formats.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::gofmt;
use super::value::{QSample, Value};

/// What a template's functions need from outside: instant queries (at the evaluation time)
/// and the external URL.
pub struct Env<'a> {
    pub query: &'a dyn Fn(&str) -> Result<Vec<QSample>, String>,
    pub external_url: &'a str,
    /// Evaluation time in Unix seconds (`now`).
    pub now: f64,
}

/// A function's failure: `Call` errors are reported as `error calling NAME: ...`, `Args`
/// (wrong count or type) as they are.
#[derive(Debug, Clone)]
pub enum FnError {
    Call(String),
    Args(String),
}

type F = Result<Value, FnError>;

pub const BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge", "call",
];

pub const PROMETHEUS: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "args",
    "reReplaceAll",
    "safeHtml",
    "match",
    "title",
    "toUpper",
    "toLower",
    "graphLink",
    "tableLink",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toDuration",
    "now",
    "pathPrefix",
    "externalURL",
    "parseDuration",
    "stripPort",
    "stripDomain",
    "urlQueryEscape",
];

/// Every function name a template may use (checked when it is parsed).
pub fn names() -> &'static HashSet<&'static str> {
    static N: OnceLock<HashSet<&'static str>> = OnceLock::new();
    N.get_or_init(|| BUILTINS.iter().chain(PROMETHEUS).copied().collect())
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FnError> {
    if args.len() != n {
        return Err(FnError::Args(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn want_str(v: &Value) -> Result<String, FnError> {
    match v {
        Value::Str(s) | Value::Html(s) => Ok(s.clone()),
        other => Err(FnError::Args(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

fn want_sample(v: &Value) -> Result<Arc<QSample>, FnError> {
    match v {
        Value::Sample(s) => Ok(s.clone()),
        other => Err(FnError::Args(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        ))),
    }
}

fn want_query(v: &Value) -> Result<Arc<Vec<Arc<QSample>>>, FnError> {
    match v {
        Value::Query(q) => Ok(q.clone()),
        other => Err(FnError::Args(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        ))),
    }
}

/// Prometheus's `ConvertToFloat`.
fn to_float(v: &Value) -> Result<f64, FnError> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Uint(u) => Ok(*u as f64),
        Value::Duration(ns) => Ok(*ns as f64 / 1e9),
        Value::Str(s) | Value::Html(s) => parse_go_float(s).map_err(FnError::Call),
        other => Err(FnError::Call(format!(
            "can't convert {} to float",
            other.type_name()
        ))),
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, with its error texts.
pub fn parse_go_float(s: &str) -> Result<f64, String> {
    let bad = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    let t = s.replace('_', "");
    let lower = t.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, lower.strip_prefix('+').unwrap_or(&lower)),
    };
    match body {
        "inf" | "infinity" => return Ok(sign * f64::INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'))
    {
        return Err(bad());
    }
    let v: f64 = body.parse().map_err(|_| bad())?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {s:?}: value out of range"
        ));
    }
    Ok(sign * v)
}

/// `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Value| matches!(v, Value::Str(_) | Value::Html(_));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

/// The comparison class of a basic value.
enum Basic {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
}

fn basic(v: &Value) -> Option<Basic> {
    Some(match v {
        Value::Bool(b) => Basic::Bool(*b),
        Value::Int(i) => Basic::Int(*i as i128),
        Value::Uint(u) => Basic::Int(*u as i128),
        Value::Float(f) => Basic::Float(*f),
        Value::Str(s) | Value::Html(s) => Basic::Str(s.clone()),
        _ => return None,
    })
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        other => other.type_name(),
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, FnError> {
    use std::cmp::Ordering;
    let (Some(x), Some(y)) = (basic(a), basic(b)) else {
        return Err(FnError::Call("invalid type for comparison".into()));
    };
    match (x, y) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x.cmp(&y)),
        (Basic::Float(x), Basic::Float(y)) => Ok(x.partial_cmp(&y).unwrap_or(Ordering::Less)),
        (Basic::Str(x), Basic::Str(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (Basic::Bool(x), Basic::Bool(y)) => {
            if x == y {
                Ok(Ordering::Equal)
            } else {
                Err(FnError::Call("invalid type for comparison".into()))
            }
        }
        _ => Err(FnError::Call(format!(
            "incompatible types for comparison: {} and {}",
            kind_name(a),
            kind_name(b)
        ))),
    }
}

/// Whether two histograms, or two query samples, are one (`None` unless both are of one of
/// those kinds).
fn same_pointer(a: &Value, b: &Value) -> Option<bool> {
    match (a, b) {
        (Value::Histogram(x), Value::Histogram(y)) => Some(Arc::ptr_eq(x, y)),
        (Value::Sample(x), Value::Sample(y)) => Some(Arc::ptr_eq(x, y)),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, FnError> {
    // Go: a missing value is never an error to compare; it equals only another.
    let invalid = |v: &Value| matches!(v, Value::Nil | Value::Missing);
    if invalid(a) || invalid(b) {
        return Ok(invalid(a) && invalid(b));
    }
    // Go compares two histogram or sample pointers by identity: `eq $value $value` is true,
    // two that only look alike are not.
    if let Some(same) = same_pointer(a, b) {
        return Ok(same);
    }
    match (basic(a), basic(b)) {
        (Some(Basic::Bool(x)), Some(Basic::Bool(y))) => Ok(x == y),
        (Some(Basic::Float(x)), Some(Basic::Float(y))) => Ok(x == y),
        (Some(_), Some(_)) => Ok(compare(a, b)? == std::cmp::Ordering::Equal),
        _ => Err(FnError::Call(format!(
            "incompatible types for comparison: {} and {}",
            kind_name(a),
            kind_name(b)
        ))),
    }
}

/// Call function `name` with evaluated arguments.
/// The error of a function whose result would pass the executor's output bound: refused
/// before it is built (the executor measures only what a function returns).
fn too_long() -> FnError {
    FnError::Call(format!(
        "result longer than {} bytes",
        super::exec::MAX_OUTPUT
    ))
}

/// The length `caps.expand(r, ..)` adds, by the regex crate's rules: `$$` is a `$`, `$name`
/// the longest run of `[_0-9A-Za-z]` after it, `${name}` anything up to the `}`, a number
/// names a group by index, an unknown group is empty, and a `$` that starts no reference is
/// itself.
fn expanded_len(caps: &regex::Captures<'_>, r: &str) -> usize {
    let b = r.as_bytes();
    let group = |name: &str| match name.parse::<usize>() {
        Ok(i) => caps.get(i).map_or(0, |m| m.len()),
        Err(_) => caps.name(name).map_or(0, |m| m.len()),
    };
    let (mut n, mut i) = (0, 0);
    while i < b.len() {
        if b[i] != b'$' {
            n += 1;
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            n += 1;
            i += 2;
            continue;
        }
        if b.get(i + 1) == Some(&b'{') {
            if let Some(close) = b[i + 2..].iter().position(|&c| c == b'}') {
                // Both ends are ASCII bytes, so the name is a whole UTF-8 slice.
                n += group(&r[i + 2..i + 2 + close]);
                i += close + 3;
            } else {
                n += 1;
                i += 1;
            }
            continue;
        }
        let end = b[i + 1..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .map_or(b.len(), |p| i + 1 + p);
        if end == i + 1 {
            n += 1;
            i += 1;
        } else {
            n += group(&r[i + 1..end]);
            i = end;
        }
    }
    n
}

/// About the length of `args` printed one after another.
pub(crate) fn printed_len(args: &[Value]) -> usize {
    args.iter()
        .map(|a| match a {
            Value::Str(s) | Value::Html(s) => s.len() + 1,
            other => other.print().len() + 1,
        })
        .sum()
}

pub fn call(name: &str, args: Vec<Value>, env: &Env) -> F {
    let s = |v: String| Ok(Value::Str(v));
    // Functions that join their arguments: many copies of one long variable would build a
    // string of any size before the executor could see it.
    if matches!(name, "print" | "println" | "html" | "js" | "urlquery")
        && printed_len(&args) > super::exec::MAX_OUTPUT
    {
        return Err(too_long());
    }
    match name {
        "not" => {
            arity(name, &args, 1)?;
            Ok(Value::Bool(!args[0].truth()))
        }
        "len" => {
            arity(name, &args, 1)?;
            Ok(Value::Int(match &args[0] {
                Value::Str(s) | Value::Html(s) => s.len(),
                Value::StrMap(m) => m.len(),
                Value::AnyMap(m) => m.len(),
                Value::List(l) => l.len(),
                Value::Query(q) => q.len(),
                other => {
                    return Err(FnError::Call(format!("len of type {}", other.type_name())));
                }
            } as i64))
        }
        "index" => {
            if args.is_empty() {
                return Err(FnError::Args(
                    "wrong number of args for index: want at least 1 got 0".into(),
                ));
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match (&v, k) {
                    (Value::StrMap(m), Value::Str(k)) => {
                        Value::Str(m.get(k).cloned().unwrap_or_default())
                    }
                    (Value::AnyMap(m), Value::Str(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Missing)
                    }
                    (Value::StrMap(_) | Value::AnyMap(_), k) => {
                        return Err(FnError::Call(format!(
                            "value has type {}; should be string",
                            k.type_name()
                        )));
                    }
                    (Value::List(_) | Value::Query(_) | Value::Str(_), Value::Int(i)) => {
                        let i = *i;
                        let len = match &v {
                            Value::List(l) => l.len(),
                            Value::Query(q) => q.len(),
                            Value::Str(s) => s.len(),
                            _ => 0,
                        } as i64;
                        if i < 0 || i >= len {
                            return Err(FnError::Call(format!("index out of range: {i}")));
                        }
                        match &v {
                            Value::List(l) => l[i as usize].clone(),
                            Value::Query(q) => Value::Sample(q[i as usize].clone()),
                            Value::Str(s) => Value::Int(s.as_bytes()[i as usize] as i64),
                            _ => Value::Missing,
                        }
                    }
                    (Value::Missing | Value::Nil, _) => {
                        return Err(FnError::Call("index of untyped nil".into()));
                    }
                    (other, _) => {
                        return Err(FnError::Call(format!(
                            "can't index item of type {}",
                            other.type_name()
                        )));
                    }
                };
            }
            Ok(v)
        }
        "slice" => {
            if args.is_empty() {
                return Err(FnError::Args(
                    "wrong number of args for slice: want at least 1 got 0".into(),
                ));
            }
            let idx: Vec<usize> = args[1..]
                .iter()
                .map(|a| match a {
                    Value::Int(i) if *i >= 0 => Ok(*i as usize),
                    _ => Err(FnError::Call("cannot index slice/array with nil".into())),
                })
                .collect::<Result<_, _>>()?;
            match &args[0] {
                Value::Str(st) => {
                    let (i, j) = (
                        idx.first().copied().unwrap_or(0),
                        idx.get(1).copied().unwrap_or(st.len()),
                    );
                    if i > j || j > st.len() || !st.is_char_boundary(i) || !st.is_char_boundary(j) {
                        return Err(FnError::Call(format!("index out of range: {j}")));
                    }
                    s(st[i..j].to_string())
                }
                other => Err(FnError::Call(format!(
                    "can't slice item of type {}",
                    other.type_name()
                ))),
            }
        }
        "print" => s(sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::print).collect();
            s(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let Some(f) = args.first() else {
                return Err(FnError::Args(
                    "wrong number of args for printf: want at least 1 got 0".into(),
                ));
            };
            let f = want_str(f)?;
            s(
                super::printf::sprintf_within(&f, &args[1..], super::exec::MAX_OUTPUT)
                    .ok_or_else(too_long)?,
            )
        }
        "html" => {
            let t = sprint(&args);
            let mut out = String::new();
            for c in t.chars() {
                match c {
                    '"' => out.push_str("&#34;"),
                    '\'' => out.push_str("&#39;"),
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '\0' => out.push('\u{FFFD}'),
                    c => out.push(c),
                }
            }
            s(out)
        }
        "js" => {
            let t = sprint(&args);
            let mut out = String::new();
            for c in t.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\'' => out.push_str("\\'"),
                    '"' => out.push_str("\\\""),
                    '<' => out.push_str("\\u003C"),
                    '>' => out.push_str("\\u003E"),
                    '&' => out.push_str("\\u0026"),
                    '=' => out.push_str("\\u003D"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
                    c => out.push(c),
                }
            }
            s(out)
        }
        "urlquery" => s(query_escape(&sprint(&args))),
        "eq" => {
            if args.len() < 2 {
                return Err(FnError::Call("missing argument for comparison".into()));
            }
            for b in &args[1..] {
                if equal(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            arity(name, &args, 2)?;
            use std::cmp::Ordering::*;
            if name == "ne" {
                return Ok(Value::Bool(!equal(&args[0], &args[1])?));
            }
            let o = compare(&args[0], &args[1])?;
            // NaN compares false every way, as in Go.
            let nan = matches!((&args[0], &args[1]), (Value::Float(a), Value::Float(b)) if a.is_nan() || b.is_nan());
            Ok(Value::Bool(
                !nan && match name {
                    "lt" => o == Less,
                    "le" => o != Greater,
                    "gt" => o == Greater,
                    _ => o != Less,
                },
            ))
        }
        "call" => Err(FnError::Call("call of nil".into())),
        // Prometheus's functions.
        "query" => {
            arity(name, &args, 1)?;
            let q = want_str(&args[0])?;
            let res = (env.query)(&q).map_err(FnError::Call)?;
            Ok(Value::Query(Arc::new(
                res.into_iter().map(Arc::new).collect(),
            )))
        }
        "first" => {
            arity(name, &args, 1)?;
            let q = want_query(&args[0])?;
            match q.first() {
                Some(s) => Ok(Value::Sample(s.clone())),
                None => Err(FnError::Call(
                    "first() called on vector with no elements".into(),
                )),
            }
        }
        "label" => {
            arity(name, &args, 2)?;
            let l = want_str(&args[0])?;
            let smp = want_sample(&args[1])?;
            s(smp.labels.get(&l).cloned().unwrap_or_default())
        }
        "value" => {
            arity(name, &args, 1)?;
            Ok(want_sample(&args[0])?.value())
        }
        "strvalue" => {
            arity(name, &args, 1)?;
            let smp = want_sample(&args[0])?;
            s(smp.labels.get("__value__").cloned().unwrap_or_default())
        }
        "args" => {
            let m: BTreeMap<String, Value> = args
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("arg{i}"), v))
                .collect();
            Ok(Value::AnyMap(Arc::new(m)))
        }
        "reReplaceAll" => {
            arity(name, &args, 3)?;
            let (p, r, t) = (
                want_str(&args[0])?,
                want_str(&args[1])?,
                want_str(&args[2])?,
            );
            let re = regex::Regex::new(&p).map_err(|e| {
                FnError::Call(format!(
                    "regexp: Compile({}): {}",
                    backquote(&p),
                    regex_err(&e)
                ))
            })?;
            // Go's ReplaceAllString, `$1` expansions included, each piece measured before it
            // is written: an empty pattern matches at every character, and one replacement
            // of many `$0`s expands to a string of any size.
            let mut out = String::new();
            let mut last = 0;
            for caps in re.captures_iter(&t) {
                let m = caps.get(0).expect("group 0 is the match");
                let add = (m.start() - last) + expanded_len(&caps, &r);
                if out.len() + add > super::exec::MAX_OUTPUT {
                    return Err(too_long());
                }
                out.push_str(&t[last..m.start()]);
                caps.expand(&r, &mut out);
                last = m.end();
            }
            out.push_str(&t[last..]);
            s(out)
        }
        "match" => {
            arity(name, &args, 2)?;
            let (p, t) = (want_str(&args[0])?, want_str(&args[1])?);
            let re = regex::Regex::new(&p).map_err(|e| FnError::Call(regex_err(&e)))?;
            Ok(Value::Bool(re.is_match(&t)))
        }
        "safeHtml" => {
            arity(name, &args, 1)?;
            Ok(Value::Html(want_str(&args[0])?))
        }
        "title" => {
            arity(name, &args, 1)?;
            s(title(&want_str(&args[0])?))
        }
        "toUpper" => {
            arity(name, &args, 1)?;
            s(want_str(&args[0])?.to_uppercase())
        }
        "toLower" => {
            arity(name, &args, 1)?;
            s(want_str(&args[0])?.to_lowercase())
        }
        "graphLink" | "tableLink" => {
            arity(name, &args, 1)?;
            let e = want_str(&args[0])?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            s(format!("/graph?g0.expr={}&g0.tab={tab}", query_escape(&e)))
        }
        "urlQueryEscape" => {
            arity(name, &args, 1)?;
            s(query_escape(&want_str(&args[0])?))
        }
        "sortByLabel" => {
            arity(name, &args, 2)?;
            let l = want_str(&args[0])?;
            let q = want_query(&args[1])?;
            let mut v: Vec<Arc<QSample>> = q.as_ref().clone();
            v.sort_by(|a, b| {
                a.labels
                    .get(&l)
                    .map(String::as_str)
                    .unwrap_or("")
                    .cmp(b.labels.get(&l).map(String::as_str).unwrap_or(""))
            });
            Ok(Value::Query(Arc::new(v)))
        }
        "humanize" => {
            arity(name, &args, 1)?;
            s(humanize(to_float(&args[0])?))
        }
        "humanize1024" => {
            arity(name, &args, 1)?;
            s(humanize1024(to_float(&args[0])?))
        }
        "humanizeDuration" => {
            arity(name, &args, 1)?;
            s(humanize_duration(to_float(&args[0])?))
        }
        "humanizePercentage" => {
            arity(name, &args, 1)?;
            let v = to_float(&args[0])?;
            s(format!("{}%", gofmt::format_g(v * 100.0, Some(4))))
        }
        "humanizeTimestamp" => {
            arity(name, &args, 1)?;
            let v = to_float(&args[0])?;
            if !v.is_finite() {
                return s(gofmt::format_g(v, Some(4)));
            }
            Ok(Value::Str(super::value::format_time(timestamp_ns(v)?)))
        }
        "toTime" => {
            arity(name, &args, 1)?;
            let v = to_float(&args[0])?;
            if !v.is_finite() {
                return Err(FnError::Call("value is NaN or Inf".into()));
            }
            Ok(Value::Time(timestamp_ns(v)?))
        }
        "toDuration" => {
            arity(name, &args, 1)?;
            let v = to_float(&args[0])?;
            Ok(Value::Duration((v * 1e9) as i64))
        }
        "now" => {
            arity(name, &args, 0)?;
            Ok(Value::Float(env.now))
        }
        "pathPrefix" => {
            arity(name, &args, 0)?;
            s(url_path(env.external_url))
        }
        "externalURL" => {
            arity(name, &args, 0)?;
            s(env.external_url.to_string())
        }
        "parseDuration" => {
            arity(name, &args, 1)?;
            let d = want_str(&args[0])?;
            if d.is_empty() {
                return Err(FnError::Call("empty duration string".into()));
            }
            match vigil_config::parse_duration(&d) {
                Ok(v) => Ok(Value::Float(v.as_secs_f64())),
                Err(_) => Err(FnError::Call(format!("not a valid duration string: {d:?}"))),
            }
        }
        "stripPort" => {
            arity(name, &args, 1)?;
            let h = want_str(&args[0])?;
            s(match split_host_port(&h) {
                Some((host, _)) => host,
                None => h,
            })
        }
        "stripDomain" => {
            arity(name, &args, 1)?;
            let hp = want_str(&args[0])?;
            let (host, port) = match split_host_port(&hp) {
                Some((h, p)) => (h, Some(p)),
                None => (hp.clone(), None),
            };
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(hp);
            }
            let short = host.split('.').next().unwrap_or("").to_string();
            s(match port {
                Some(p) if short.contains(':') => format!("[{short}]:{p}"),
                Some(p) => format!("{short}:{p}"),
                None => short,
            })
        }
        _ => Err(FnError::Call(format!("function {name:?} not defined"))),
    }
}

/// Methods of `toTime` and `toDuration` values.
pub fn method(v: &Value, name: &str, args: &[Value]) -> Result<Value, String> {
    let none = |args: &[Value]| {
        if args.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    match (v, name) {
        (Value::Time(ns), "Unix") => none(args).map(|_| Value::Int(ns.div_euclid(1_000_000_000))),
        (Value::Time(ns), "UnixMilli") => none(args).map(|_| Value::Int(ns.div_euclid(1_000_000))),
        (Value::Time(ns), "UnixMicro") => none(args).map(|_| Value::Int(ns.div_euclid(1_000))),
        (Value::Time(ns), "UnixNano") => none(args).map(|_| Value::Int(*ns)),
        (Value::Time(_), "UTC" | "Local") => none(args).map(|_| v.clone()),
        (Value::Time(ns), "String") => {
            none(args).map(|_| Value::Str(super::value::format_time(*ns)))
        }
        (Value::Time(ns), "Add") => match args {
            [Value::Duration(d)] => Ok(Value::Time(ns.saturating_add(*d))),
            [Value::Int(d)] => Ok(Value::Time(ns.saturating_add(*d))),
            _ => Err("wrong type for value; expected time.Duration".into()),
        },
        (Value::Time(ns), "Sub") => match args {
            [Value::Time(o)] => Ok(Value::Duration(ns.saturating_sub(*o))),
            _ => Err("wrong type for value; expected time.Time".into()),
        },
        (Value::Duration(ns), "Seconds") => none(args).map(|_| Value::Float(*ns as f64 / 1e9)),
        (Value::Duration(ns), "Minutes") => none(args).map(|_| Value::Float(*ns as f64 / 6e10)),
        (Value::Duration(ns), "Hours") => none(args).map(|_| Value::Float(*ns as f64 / 3.6e12)),
        (Value::Duration(ns), "Milliseconds") => none(args).map(|_| Value::Int(ns / 1_000_000)),
        (Value::Duration(ns), "Nanoseconds") => none(args).map(|_| Value::Int(*ns)),
        (Value::Duration(ns), "String") => {
            none(args).map(|_| Value::Str(super::value::format_duration(*ns)))
        }
        _ => Err(format!(
            "can't evaluate field {name} in type {} (vigil implements Unix, UnixMilli, UnixMicro, UnixNano, UTC, String, Add and Sub on times and Seconds, Minutes, Hours, Milliseconds, Nanoseconds and String on durations)",
            v.type_name()
        )),
    }
}

fn timestamp_ns(v: f64) -> Result<i64, FnError> {
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(FnError::Call(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            gofmt::format_g(ns, None)
        )));
    }
    // Truncated to milliseconds, as model.TimeFromUnixNano.
    let ns = ns as i64;
    Ok(ns / 1_000_000 * 1_000_000)
}

fn backquote(p: &str) -> String {
    if !p.contains('`') && !p.chars().any(|c| c.is_control() && c != '\t') {
        format!("`{p}`")
    } else {
        vigil_model::labels::quote(p)
    }
}

fn regex_err(e: &regex::Error) -> String {
    let msg = e.to_string();
    format!(
        "error parsing regexp: {}",
        msg.lines()
            .last()
            .unwrap_or(&msg)
            .trim()
            .trim_start_matches("error: ")
    )
}

fn url_path(u: &str) -> String {
    let after_scheme = u.split_once("://").map(|(_, r)| r).unwrap_or(u);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..]
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .to_string(),
        None => String::new(),
    }
}

/// Go's `net.SplitHostPort`, `None` where it errors.
fn split_host_port(hp: &str) -> Option<(String, String)> {
    if let Some(rest) = hp.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if port.contains(':') {
            return None;
        }
        return Some((host.to_string(), port.to_string()));
    }
    let (host, port) = hp.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host.to_string(), port.to_string()))
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower)`: the first letter of each word
/// upper-cased, the rest left as it is.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            start = false;
        } else {
            out.push(c);
            start = c.is_whitespace() || (!c.is_alphanumeric() && c != '\'');
        }
    }
    out
}

const BIG: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in BIG {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in SMALL {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", gofmt::format_g(v, Some(4)))
}

pub fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return gofmt::format_g(v, Some(4));
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let a = v.abs();
        let d = a as i64;
        let (days, hours, minutes, seconds) = (d / 86_400, d / 3600 % 24, d / 60 % 60, d % 60);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", gofmt::format_g(a, Some(4)))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", gofmt::format_g(v, Some(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanize_family_as_prometheus() {
        for (v, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (1234567.0, "1.235M"),
            (0.12, "120m"),
            (-1.0, "-1"),
            (999.0, "999"),
            (1000.0, "1k"),
            (1234.0, "1.234k"),
            (999999.0, "1000k"),
            (123.456, "123.5"),
            (0.0015, "1.5m"),
            (0.000123, "123u"),
            (-0.5, "-500m"),
            (1e27, "1000Y"),
            (1e30, "1e+06Y"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(humanize(v), want, "humanize({v})");
        }
        for (v, want) in [
            (0.0, "0"),
            (1048576.0, "1Mi"),
            (0.12, "0.12"),
            (1234567.0, "1.177Mi"),
            (1023.0, "1023"),
            (1024.0, "1ki"),
            (-2048.0, "-2ki"),
            (1e12, "931.3Gi"),
        ] {
            assert_eq!(humanize1024(v), want, "humanize1024({v})");
        }
        for (v, want) in [
            (0.0, "0s"),
            (1.0, "1s"),
            (60.0, "1m 0s"),
            (3600.0, "1h 0m 0s"),
            (86400.0, "1d 0h 0m 0s"),
            (899.99, "14m 59s"),
            (0.1, "100ms"),
            (0.0001, "100us"),
            (0.12345, "123.5ms"),
            (60.5, "1m 0s"),
            (1.2345, "1.234s"),
            (12.345, "12.35s"),
            (-1.0, "-1s"),
            (1234567.0, "14d 6h 56m 7s"),
            (3661.0, "1h 1m 1s"),
            (59.9, "59.9s"),
            (1e-10, "100ps"),
        ] {
            assert_eq!(humanize_duration(v), want, "humanizeDuration({v})");
        }
    }

    #[test]
    fn hosts_and_urls() {
        assert_eq!(
            split_host_port("foo.example.com:12345").unwrap().0,
            "foo.example.com"
        );
        assert!(split_host_port("2001:0DB8::1").is_none());
        assert_eq!(
            split_host_port("[2001:0DB8::1]:12345").unwrap().0,
            "2001:0DB8::1"
        );
        assert!(split_host_port("[2001:0DB8::1]::12345").is_none());
        assert_eq!(query_escape("rate(x[5m]) > 0"), "rate%28x%5B5m%5D%29+%3E+0");
        assert_eq!(url_path("http://testhost:9090/path/prefix"), "/path/prefix");
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(
            parse_go_float("one").unwrap_err(),
            "strconv.ParseFloat: parsing \"one\": invalid syntax"
        );
    }

    /// The measured length equals what the regex crate's expansion writes, reference forms
    /// and malformed ones alike.
    #[test]
    fn expanded_len_is_the_expansion_s() {
        let re = regex::Regex::new("(?P<w>a)(b)?(é)").unwrap();
        let caps = re.captures("xabé").unwrap();
        for r in [
            "",
            "$0",
            "$1",
            "${1}",
            "$2",
            "$3",
            "$4",
            "$$",
            "$",
            "a$",
            "$w",
            "${w}",
            "$wx",
            "${x}",
            "$1a",
            "${1}a",
            "${",
            "${1",
            "${}",
            "$-",
            "é$3é",
            "$$1",
            "$0$0$0",
            "$_",
            "${w}${w}$",
            "$01",
        ] {
            let mut out = String::new();
            caps.expand(r, &mut out);
            assert_eq!(expanded_len(&caps, r), out.len(), "{r:?} -> {out:?}");
        }
    }
}
