//! A runner for Prometheus's PromQL `.test` files (format: `../shared/conformance/promql/FORMAT.md`).
//!
//! Each file runs against a fresh in-memory store; every `eval` is checked and reported as
//! passed or failed (with the reason); a load or expectation line the runner cannot read is a
//! failure too. As in
//! Prometheus's runner, an instant query passes only if its `@`-pinned variant (every selector
//! at the evaluation time) gives the same answer at other evaluation times too.

use std::collections::BTreeMap;

use vigil_model::histogram::{CounterResetHint, Span};
use vigil_model::{FloatHistogram, Labels, STALE_NAN};
use vigil_storage::{MemoryStorage, Storage};

use crate::ast::At;
use crate::{Engine, Expr, Features, Value};

/// Parse as Prometheus's test runner does: every opt-in syntax on.
fn parse(text: &str) -> Result<Expr, crate::ParseError> {
    crate::parse_with(text, Features::all())
}

#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    /// Line, expression and why, of every eval that did not pass.
    pub failed: Vec<(usize, String, String)>,
    /// Instant evals re-run with `@` pinned (as upstream's runner re-runs them).
    pub at_reruns: usize,
}

impl Report {
    pub fn total(&self) -> usize {
        self.passed + self.failed.len()
    }
}

/// Run vigil's own test file `name` (in `crates/promql/tests/testdata/`), and also with every
/// selection read in three shards when `sharded`: every eval must pass, at least `at_least`.
pub fn assert_own_file_passes(name: &str, at_least: usize, sharded: bool) {
    let path = format!("{}/tests/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut reports = vec![run(&text)];
    if sharded {
        reports.push(run_sharded(&text, 3));
    }
    for r in reports {
        assert!(r.failed.is_empty(), "{name} failed: {:#?}", r.failed);
        assert_eq!(r.passed, r.total());
        assert!(r.passed >= at_least, "{name}: {} passed", r.passed);
    }
}

fn parse_time(s: &str) -> Option<i64> {
    crate::lexer::parse_duration_ms(s)
        .or_else(|| s.parse::<f64>().ok().map(|f| (f * 1000.0).round() as i64))
}

/// One point of the values notation: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum TestValue {
    F(f64),
    H(FloatHistogram),
}

/// Expand a values notation of floats only (`1 2+3x4 _ stale _x2`) into optional values per
/// step (what `promtool test rules` input series use).
pub fn expand(vals: &str) -> Result<Vec<Option<f64>>, String> {
    expand_within(vals, usize::MAX)
}

/// As [`expand`], refusing a notation of more than `max` values before making them (a rule
/// test's `1x100000000000` must not take the machine's memory or time).
pub fn expand_within(vals: &str, max: usize) -> Result<Vec<Option<f64>>, String> {
    expand_values_within(vals, max)?
        .into_iter()
        .map(|p| match p {
            None => Ok(None),
            Some(TestValue::F(v)) => Ok(Some(v)),
            Some(TestValue::H(_)) => Err("native histograms are not supported here".to_string()),
        })
        .collect()
}

/// Split a values notation into items, keeping `{{...}}` literals (which hold blanks) whole.
fn items(vals: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let b = vals.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            if vals[i..].starts_with("{{") {
                let end = vals[i..]
                    .find("}}")
                    .ok_or_else(|| format!("unclosed histogram in {vals:?}"))?;
                i += end + 2;
            } else {
                i += 1;
            }
        }
        out.push(&vals[start..i]);
    }
    Ok(out)
}

/// Expand a values notation (`1 2+3x4 _ stale _x2 {{schema:0 sum:1 count:1}}x3`) into
/// optional values per step.
pub fn expand_values(vals: &str) -> Result<Vec<Option<TestValue>>, String> {
    expand_values_within(vals, usize::MAX)
}

/// As [`expand_values`], refusing a notation of more than `max` values before making them.
pub fn expand_values_within(vals: &str, max: usize) -> Result<Vec<Option<TestValue>>, String> {
    let mut out = Vec::new();
    // Whether `more` values fit beside those made so far.
    let room = |made: usize, more: usize| {
        if made.saturating_add(more) > max {
            Err(format!("more than {max} values"))
        } else {
            Ok(())
        }
    };
    for item in items(vals)? {
        if item == "_" {
            room(out.len(), 1)?;
            out.push(None);
            continue;
        }
        if item == "stale" {
            room(out.len(), 1)?;
            out.push(Some(TestValue::F(STALE_NAN)));
            continue;
        }
        if let Some(n) = item.strip_prefix("_x") {
            let n: usize = n.parse().map_err(|_| format!("bad item {item}"))?;
            room(out.len(), n)?;
            out.extend(std::iter::repeat_n(None, n));
            continue;
        }
        if item.starts_with("{{") {
            room(out.len(), 1)?;
            out.extend(expand_histogram_item(item, max - out.len())?);
            continue;
        }
        if let Some((head, times)) = item.rsplit_once('x')
            && let Ok(times) = times.parse::<usize>()
        {
            // `a+bxn`, `a-bxn`, `axn`
            let split = head
                .char_indices()
                .skip(1)
                .find(|(_, c)| *c == '+' || *c == '-')
                .filter(|(i, _)| {
                    let prev = head.as_bytes()[i - 1];
                    prev != b'e' && prev != b'E'
                });
            let (start, step) = match split {
                Some((i, _)) => (num(&head[..i])?, num(&head[i..])?),
                None => (num(head)?, 0.0),
            };
            room(out.len(), times.saturating_add(1))?;
            // By repeated addition, as upstream (not start + k * step: the last bits differ).
            let mut cur = start;
            for _ in 0..=times {
                out.push(Some(TestValue::F(cur)));
                cur += step;
            }
            continue;
        }
        room(out.len(), 1)?;
        out.push(Some(TestValue::F(num(item)?)));
    }
    Ok(out)
}

/// `{{a}}`, `{{a}}xN`, `{{a}}+{{b}}xN` or `{{a}}-{{b}}xN`: N+1 histograms, each `b` more
/// (or less) than the one before.
fn expand_histogram_item(item: &str, max: usize) -> Result<Vec<Option<TestValue>>, String> {
    let fits = |n: usize| {
        if n.saturating_add(1) > max {
            Err(format!("more than {max} values"))
        } else {
            Ok(())
        }
    };
    let end = item.find("}}").ok_or("unclosed histogram")? + 2;
    let first = parse_histogram(&item[2..end - 2])?;
    let rest = &item[end..];
    if rest.is_empty() {
        return Ok(vec![Some(TestValue::H(first))]);
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n: usize = n.parse().map_err(|_| format!("bad item {item}"))?;
        fits(n)?;
        return Ok(vec![Some(TestValue::H(first)); n + 1]);
    }
    let sign = match rest.as_bytes()[0] {
        b'+' => 1.0,
        b'-' => -1.0,
        _ => return Err(format!("bad item {item}")),
    };
    let rest = &rest[1..];
    let (inc, n) = rest
        .strip_prefix("{{")
        .and_then(|r| r.split_once("}}"))
        .ok_or_else(|| format!("bad item {item}"))?;
    let n: usize = n
        .strip_prefix('x')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("bad item {item}"))?;
    fits(n)?;
    let inc = parse_histogram(inc)?;
    let mut out = vec![Some(TestValue::H(first.clone()))];
    let mut cur = first;
    for _ in 0..n {
        let mut next = if sign > 0.0 {
            cur.add(&inc)
        } else {
            cur.sub(&inc)
        }
        .map_err(|e| format!("{item}: {e}"))?;
        next.hint = cur.hint;
        out.push(Some(TestValue::H(next.clone())));
        cur = next;
    }
    Ok(out)
}

/// The body of a `{{...}}` histogram literal: `key:value` properties, lists in brackets.
pub fn parse_histogram(body: &str) -> Result<FloatHistogram, String> {
    let mut h = FloatHistogram::default();
    let (mut buckets, mut n_buckets) = (Vec::new(), Vec::new());
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = body.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once(':')
            .ok_or_else(|| format!("bad histogram property in {body:?}"))?;
        let key = key.trim();
        let after = after.trim_start();
        let (val, next) = if let Some(list) = after.strip_prefix('[') {
            let (l, n) = list
                .split_once(']')
                .ok_or_else(|| format!("unclosed list in {body:?}"))?;
            (l, n)
        } else {
            after.split_at(after.find(char::is_whitespace).unwrap_or(after.len()))
        };
        rest = next.trim_start();
        let list = || -> Result<Vec<f64>, String> { val.split_whitespace().map(num).collect() };
        match key {
            "schema" => h.schema = val.parse().map_err(|_| format!("bad schema {val}"))?,
            "sum" => h.sum = num(val)?,
            "count" => h.count = num(val)?,
            "z_bucket" => h.zero_count = num(val)?,
            "z_bucket_w" => h.zero_threshold = num(val)?,
            "buckets" => buckets = list()?,
            "n_buckets" => n_buckets = list()?,
            "offset" => offset = val.parse().map_err(|_| format!("bad offset {val}"))?,
            "n_offset" => n_offset = val.parse().map_err(|_| format!("bad offset {val}"))?,
            "custom_values" => h.custom_values = list()?,
            "counter_reset_hint" => {
                h.hint = match val {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    _ => return Err(format!("bad counter_reset_hint {val}")),
                }
            }
            _ => return Err(format!("unknown histogram property {key}")),
        }
    }
    // One span per list, zero buckets kept, as upstream's parser builds them.
    let span = |offset: i32, n: usize| {
        if n == 0 {
            vec![]
        } else {
            vec![Span {
                offset,
                length: n as u32,
            }]
        }
    };
    h.positive_spans = span(offset, buckets.len());
    h.positive_buckets = buckets;
    h.negative_spans = span(n_offset, n_buckets.len());
    h.negative_buckets = n_buckets;
    Ok(h)
}

fn num(s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => return Ok(f64::INFINITY),
        "-inf" => return Ok(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        _ => {}
    }
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16)
            .map(|v| v as f64)
            .map_err(|e| e.to_string());
    }
    s.parse::<f64>().map_err(|_| format!("bad number {s:?}"))
}

/// Split `metric{labels} rest` into the series part and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let line = line.trim();
    let (mut depth, mut quote) = (0i32, None::<char>);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q && prev != '\\' => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '{') => depth += 1,
            (None, '}') => depth -= 1,
            (None, c) if c.is_whitespace() && depth == 0 => return (&line[..i], line[i..].trim()),
            _ => {}
        }
        prev = c;
    }
    (line, "")
}

/// The labels of a series written as a selector (`up{job="a"}`).
pub fn series_labels(s: &str) -> Result<Labels, String> {
    match &parse(s).map_err(|e| format!("{s}: {e}"))? {
        Expr::VectorSelector(vs) => Ok(Labels::from_pairs(
            vs.matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone())),
        )),
        _ => Err(format!("not a series: {s}")),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let tol = 1e-6;
    (a - b).abs() <= tol * a.abs().max(b.abs()) || (a - b).abs() < 1e-300
}

/// An expected annotation's text.
#[derive(Debug)]
enum AnnotationExpect {
    Msg(String),
    Regex(regex::Regex),
}

impl AnnotationExpect {
    fn matches(&self, got: &str) -> bool {
        match self {
            AnnotationExpect::Msg(m) => m == got,
            AnnotationExpect::Regex(r) => r.is_match(got),
        }
    }
}

/// As the format says: with `expect <kind>` lines, at least one annotation of that kind must
/// come back, each line with text must match one, and every one returned must match a line;
/// with `no_<kind>`, none may come back.
fn check_annotations(
    kind: &str,
    expect: &[Option<AnnotationExpect>],
    none: bool,
    got: &[String],
) -> Result<(), String> {
    if none && !got.is_empty() {
        return Err(format!("expected no {kind}, got {got:?}"));
    }
    if expect.is_empty() {
        return Ok(());
    }
    if got.is_empty() {
        return Err(format!("expected a {kind} annotation, got none"));
    }
    for e in expect.iter().flatten() {
        if !got.iter().any(|g| e.matches(g)) {
            return Err(format!("expected {kind} {e:?}, got {got:?}"));
        }
    }
    for g in got {
        if !expect
            .iter()
            .any(|e| e.as_ref().is_none_or(|e| e.matches(g)))
        {
            return Err(format!("unexpected {kind} {g:?}"));
        }
    }
    Ok(())
}

struct Eval {
    line: usize,
    expr: String,
    range: Option<(i64, i64, i64)>,
    at: i64,
    fail: Option<(String, String)>,
    expect_fail: bool,
    ordered: bool,
    /// `expect warn|info [msg|regex]: text` lines; `None` text matches any annotation.
    warn: Vec<Option<AnnotationExpect>>,
    info: Vec<Option<AnnotationExpect>>,
    no_warn: bool,
    no_info: bool,
    expect_string: Option<String>,
    /// `expect range vector from A to B step S` of an instant query.
    range_vector: Option<(i64, i64)>,
    expected: Vec<(Option<Labels>, Vec<Option<TestValue>>)>,
}

/// Run one `.test` file's text.
pub fn run(text: &str) -> Report {
    run_sharded(text, 1)
}

/// As [`run`], with the store asking the engine to read selections in `shards` shards.
pub fn run_sharded(text: &str, shards: usize) -> Report {
    // As Prometheus's test runner: delayed name removal on.
    let engine = Engine {
        delayed_name_removal: true,
        ..Engine::default()
    };
    let mut rep = Report::default();
    let mut store = MemoryStorage::with_shards(shards);
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body = |i: &mut usize| -> Vec<(usize, &str)> {
            let mut out = Vec::new();
            while *i < lines.len() && (lines[*i].starts_with(' ') || lines[*i].starts_with('\t')) {
                if !lines[*i].trim().is_empty() && !lines[*i].trim().starts_with('#') {
                    out.push((*i + 1, lines[*i].trim()));
                }
                *i += 1;
            }
            out
        };
        if line == "clear" {
            store = MemoryStorage::with_shards(shards);
            continue;
        }
        if let Some(rest) = line
            .strip_prefix("load_with_nhcb ")
            .or_else(|| line.strip_prefix("load "))
        {
            let is_nhcb = line.starts_with("load_with_nhcb");
            let interval = parse_time(rest.trim()).unwrap_or(60_000);
            // A series listed twice: the later values win at equal timestamps, as upstream.
            let mut points_by_series: BTreeMap<Labels, BTreeMap<i64, TestValue>> = BTreeMap::new();
            let load_line = i;
            for (n, l) in body(&mut i) {
                let (series, vals) = split_series(l);
                // A line the runner cannot read is a failure, never data quietly left out.
                let parsed = series_labels(series)
                    .and_then(|labels| expand_values(vals).map(|p| (labels, p)));
                let (labels, points) = match parsed {
                    Ok(x) => x,
                    Err(e) => {
                        rep.failed.push((n, l.to_string(), format!("load: {e}")));
                        continue;
                    }
                };
                let slot = points_by_series.entry(labels).or_default();
                for (k, p) in points.into_iter().enumerate() {
                    if let Some(v) = p {
                        slot.insert(k as i64 * interval, v);
                    }
                }
            }
            if is_nhcb {
                nhcb::add_custom_bucket_histograms(&mut points_by_series);
            }
            let mut app = store.appender();
            for (labels, pts) in points_by_series {
                for (t, v) in pts {
                    let r = match v {
                        TestValue::F(v) => app.append(0, &labels, t, v),
                        TestValue::H(h) => app.append_histogram(0, &labels, t, h),
                    };
                    if let Err(e) = r {
                        rep.failed.push((
                            load_line,
                            format!("{labels} at {t}"),
                            format!("load: {e}"),
                        ));
                    }
                }
            }
            if let Err(e) = app.commit() {
                rep.failed
                    .push((load_line, "load".into(), format!("commit: {e}")));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("eval") {
            let eval_line = i;
            let (variant, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut ev = Eval {
                line: eval_line,
                expr: String::new(),
                range: None,
                at: 0,
                fail: None,
                expect_fail: variant == "_fail",
                ordered: variant == "_ordered",
                warn: if variant == "_warn" {
                    vec![None]
                } else {
                    vec![]
                },
                info: if variant == "_info" {
                    vec![None]
                } else {
                    vec![]
                },
                no_warn: false,
                no_info: false,
                expect_string: None,
                range_vector: None,
                expected: vec![],
            };
            let rest = rest.trim();
            if let Some(r) = rest.strip_prefix("instant at ") {
                let (t, e) = r.split_once(' ').unwrap_or((r, ""));
                ev.at = parse_time(t).unwrap_or(0);
                ev.expr = e.trim().to_string();
            } else if let Some(r) = rest.strip_prefix("range from ") {
                let parts: Vec<&str> = r.splitn(6, ' ').collect();
                if parts.len() == 6 {
                    ev.range = Some((
                        parse_time(parts[0]).unwrap_or(0),
                        parse_time(parts[2]).unwrap_or(0),
                        parse_time(parts[4]).unwrap_or(1),
                    ));
                    ev.expr = parts[5].trim().to_string();
                }
            }
            // What the runner could not read in the eval's lines: the eval fails with it.
            let mut bad: Option<String> = None;
            for (_, l) in body(&mut i) {
                if let Some(x) = l.strip_prefix("expect ") {
                    let (kind, msg) = x
                        .split_once(':')
                        .map(|(a, b)| (a.trim(), Some(b.trim())))
                        .unwrap_or((x.trim(), None));
                    let mut kw = kind.split_whitespace();
                    match kw.next() {
                        Some("fail") => {
                            ev.expect_fail = true;
                            if let (Some(m), Some(how)) = (msg, kw.next()) {
                                ev.fail = Some((how.to_string(), m.to_string()));
                            }
                        }
                        Some("ordered") => ev.ordered = true,
                        Some(k @ ("warn" | "info")) => {
                            let e = match (kw.next(), msg) {
                                (Some("msg"), Some(m)) => {
                                    Some(AnnotationExpect::Msg(m.to_string()))
                                }
                                (Some("regex"), Some(m)) => match regex::Regex::new(m) {
                                    Ok(r) => Some(AnnotationExpect::Regex(r)),
                                    Err(e) => {
                                        bad = Some(format!("bad regex {m:?}: {e}"));
                                        None
                                    }
                                },
                                _ => None,
                            };
                            if k == "warn" {
                                ev.warn.push(e);
                            } else {
                                ev.info.push(e);
                            }
                        }
                        Some("no_warn") => ev.no_warn = true,
                        Some("no_info") => ev.no_info = true,
                        Some("string") => {
                            ev.expect_string = Some(
                                x["string".len()..]
                                    .trim()
                                    .trim_matches(|c| c == '"' || c == '`')
                                    .to_string(),
                            )
                        }
                        Some("range") => {
                            let w: Vec<&str> = x.split_whitespace().collect();
                            if let (Some(f), Some(st)) = (
                                w.get(3).and_then(|t| parse_time(t)),
                                w.get(7).and_then(|t| parse_time(t)),
                            ) {
                                ev.range_vector = Some((f, st));
                            } else {
                                bad = Some(format!("cannot read {l:?}"));
                            }
                        }
                        _ => bad = Some(format!("unknown expectation {l:?}")),
                    }
                    continue;
                }
                let (series, vals) = split_series(l);
                if vals.is_empty() {
                    // A bare scalar.
                    ev.expected.push((
                        None,
                        expand_values(series).unwrap_or_else(|e| {
                            bad = Some(format!("expected value: {e}"));
                            Vec::new()
                        }),
                    ));
                } else {
                    ev.expected.push((
                        series_labels(series).ok(),
                        expand_values(vals).unwrap_or_else(|e| {
                            bad = Some(format!("expected values: {e}"));
                            Vec::new()
                        }),
                    ));
                }
            }
            if let Some(why) = bad {
                rep.failed.push((ev.line, ev.expr.clone(), why));
                continue;
            }
            match check(&engine, &store, &ev, &mut rep.at_reruns) {
                Ok(()) => rep.passed += 1,
                Err(why) => rep.failed.push((ev.line, ev.expr.clone(), why)),
            }
        }
    }
    rep
}

/// Give every selector and subquery outside subqueries that has no `@` the modifier `@ t`, as
/// Prometheus's runner does; false if the expression calls a function that reads the
/// evaluation time (`Function::reads_eval_time`).
fn pin_at(e: &mut Expr, t: i64) -> bool {
    match e {
        Expr::Number(_) | Expr::String(_) => true,
        // A numeric `@` stays; `@ start()`/`@ end()` become the evaluation time, as in
        // Prometheus's runner (which only keeps timestamps already resolved).
        Expr::VectorSelector(vs) | Expr::MatrixSelector { vs, .. } => {
            if !matches!(vs.at, Some(At::Time(_))) {
                vs.at = Some(At::Time(t));
            }
            true
        }
        // Its inner selectors keep their own times (the subquery's `@` moves them).
        Expr::Subquery { at, .. } => {
            if !matches!(at, Some(At::Time(_))) {
                *at = Some(At::Time(t));
            }
            true
        }
        Expr::Paren(x) | Expr::Neg(x) => pin_at(x, t),
        Expr::Binary { lhs, rhs, .. } => pin_at(lhs, t) & pin_at(rhs, t),
        Expr::Aggregate { expr, param, .. } => {
            pin_at(expr, t) & param.as_deref_mut().is_none_or(|p| pin_at(p, t))
        }
        Expr::Call { func, args, .. } => {
            let mut safe = !func.reads_eval_time;
            for a in args {
                safe &= pin_at(a, t);
            }
            safe
        }
    }
}

/// The evaluation times at which the `@`-pinned variant of an instant query at `t` must give
/// the same answer (Prometheus's runner's choice).
fn at_variant_times(t: i64) -> Vec<i64> {
    if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    }
}

fn check(
    engine: &Engine,
    store: &dyn Storage,
    ev: &Eval,
    at_reruns: &mut usize,
) -> Result<(), String> {
    check_one(engine, store, ev, &ev.expr, None)?;
    if let Ok(e) = parse(&ev.expr) {
        range_mode(engine, store, ev, &e, ev.at)?;
    }
    // Instant queries again with `@` pinned at the evaluation time, evaluated at other times
    // (those expected to fail must fail alike).
    if ev.range.is_none()
        && let Ok(mut pinned) = parse(&ev.expr)
        && pin_at(&mut pinned, ev.at)
    {
        for t in at_variant_times(ev.at) {
            *at_reruns += 1;
            check_one(engine, store, ev, &ev.expr, Some((&pinned, t)))
                .and_then(|()| range_mode(engine, store, ev, &pinned, t))
                .map_err(|e| format!("with @ {} evaluated at {t}: {e}", ev.at))?;
        }
    }
    Ok(())
}

/// As upstream's runner: an instant eval is also run as a range query from a minute before
/// to a minute after its time, and the range result's points at that time must equal the
/// expectation. Not for evals that expect a failure, a string or a range vector, nor for
/// queries that read the query's range (`start()`, `end()`, `range()`, `step()`).
fn range_mode(
    engine: &Engine,
    store: &dyn Storage,
    ev: &Eval,
    expr: &Expr,
    t: i64,
) -> Result<(), String> {
    let text: String = ev
        .expr
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    let reads_range = ["start()", "end()", "range()", "step()"]
        .iter()
        .any(|f| text.contains(f))
        || crate::durations::dynamic(expr);
    if ev.range.is_some()
        || ev.range_vector.is_some()
        || ev.expect_string.is_some()
        || ev.expect_fail
        || reads_range
    {
        return Ok(());
    }
    let res = engine
        .range_query(store, expr, t - 60_000, t + 60_000, 60_000)
        .map_err(|e| format!("as a range query: {e}"))?;
    if ev.ordered {
        return Ok(());
    }
    let Value::Matrix(m) = res.value else {
        return Err("as a range query: not a matrix".into());
    };
    let points: Vec<(Labels, crate::Point)> = m
        .into_iter()
        .filter_map(|s| {
            let f = s
                .samples
                .iter()
                .find(|p| p.t == t)
                .map(|p| crate::Point::float(t, p.v));
            let h = s
                .histograms
                .iter()
                .find(|p| p.t == t)
                .map(|p| crate::Point {
                    t,
                    v: 0.0,
                    h: Some(p.h.clone()),
                });
            f.or(h).map(|p| (s.labels, p))
        })
        .collect();
    compare(ev, Value::Vector(points), false).map_err(|e| format!("as a range query: {e}"))
}

/// Check one evaluation: `ev` as written, or (`variant`) an `@`-pinned expression evaluated at
/// another time, whose annotations are not compared (their positions refer to other text).
fn check_one(
    engine: &Engine,
    store: &dyn Storage,
    ev: &Eval,
    text: &str,
    variant: Option<(&Expr, i64)>,
) -> Result<(), String> {
    let parsed;
    let (expr, at) = match variant {
        Some((e, t)) => (e, t),
        None => {
            parsed = parse(text);
            match &parsed {
                Ok(e) => (e, ev.at),
                Err(e) => {
                    return if ev.expect_fail {
                        matches_fail(ev, &e.to_string())
                    } else {
                        Err(format!("parse error: {e}"))
                    };
                }
            }
        }
    };
    let res = match ev.range {
        Some((s, e, st)) => engine.range_query(store, expr, s, e, st),
        None => engine.instant_query(store, expr, at),
    };
    let res = match res {
        Err(e) => {
            return if ev.expect_fail {
                matches_fail(ev, &e.to_string())
            } else {
                Err(format!("eval error: {e}"))
            };
        }
        Ok(_) if ev.expect_fail => return Err("expected failure, got a result".into()),
        Ok(r) => r,
    };
    if variant.is_none() {
        check_annotations("warning", &ev.warn, ev.no_warn, &res.warnings)?;
        check_annotations("info", &ev.info, ev.no_info, &res.infos)?;
    }
    compare(ev, res.value, ev.ordered)
}

/// Compare a query's value with the eval's expectation (in order if `ordered`).
fn compare(ev: &Eval, v: Value, ordered: bool) -> Result<(), String> {
    if let Some(s) = &ev.expect_string {
        return match v {
            Value::String(_, got) if &got == s => Ok(()),
            other => Err(format!("expected string {s:?}, got {other:?}")),
        };
    }
    let got: Vec<(Labels, Vec<Option<TestValue>>)> = match v {
        Value::Scalar(s) => vec![(Labels::empty(), vec![Some(TestValue::F(s.v))])],
        Value::Vector(v) => v
            .into_iter()
            .map(|(l, p)| {
                let x = match p.h {
                    Some(h) => TestValue::H((*h).clone()),
                    None => TestValue::F(p.v),
                };
                (l, vec![Some(x)])
            })
            .collect(),
        Value::Matrix(m) => {
            let (s, st) = match (ev.range, ev.range_vector) {
                (Some((s, _, st)), _) => (s, st),
                (None, Some((s, st))) => (s, st),
                _ => (0, 1),
            };
            m.into_iter()
                .map(|x| {
                    // Place values by step so gaps line up with `_` in the expectation.
                    let mut by_t: BTreeMap<i64, TestValue> = BTreeMap::new();
                    for p in x.samples {
                        by_t.insert(p.t, TestValue::F(p.v));
                    }
                    for p in x.histograms {
                        by_t.insert(p.t, TestValue::H((*p.h).clone()));
                    }
                    let mut vals = Vec::new();
                    for (t, v) in by_t {
                        let k = ((t - s) / st.max(1)) as usize;
                        while vals.len() < k {
                            vals.push(None);
                        }
                        vals.push(Some(v));
                    }
                    (x.labels, vals)
                })
                .collect()
        }
        Value::String(_, s) => return Err(format!("unexpected string {s:?}")),
    };
    let want: Vec<(Labels, &Vec<Option<TestValue>>)> = ev
        .expected
        .iter()
        .map(|(l, v)| (l.clone().unwrap_or_default(), v))
        .collect();
    if got.len() != want.len() {
        return Err(format!(
            "expected {} series, got {}: {:?}",
            want.len(),
            got.len(),
            got.iter().map(|g| g.0.to_string()).collect::<Vec<_>>()
        ));
    }
    let by_labels: BTreeMap<&Labels, &Vec<Option<TestValue>>> =
        got.iter().map(|(l, v)| (l, v)).collect();
    for (idx, (l, w)) in want.iter().enumerate() {
        let g = if ordered {
            if &got[idx].0 != l {
                return Err(format!(
                    "order: position {idx} expected {l}, got {}",
                    got[idx].0
                ));
            }
            &got[idx].1
        } else {
            match by_labels.get(l) {
                Some(g) => *g,
                None => {
                    return Err(format!(
                        "missing series {l}; got {:?}",
                        got.iter().map(|g| g.0.to_string()).collect::<Vec<_>>()
                    ));
                }
            }
        };
        let mut w: Vec<Option<TestValue>> = (*w).clone();
        while w.last() == Some(&None) {
            w.pop();
        }
        if w.len() != g.len() || !w.iter().zip(g).all(|(a, b)| same_value(a, b)) {
            return Err(format!("{l}: expected {w:?}, got {g:?}"));
        }
    }
    Ok(())
}

/// Expected and actual values agree: floats within the tolerance, histograms field by
/// field within it (buckets compared after dropping empty ones; the hint is compared only
/// where the expectation states one other than unknown... see `same_histogram`).
fn same_value(a: &Option<TestValue>, b: &Option<TestValue>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(TestValue::F(a)), Some(TestValue::F(b))) => close(*a, *b),
        (Some(TestValue::H(a)), Some(TestValue::H(b))) => same_histogram(a, b),
        _ => false,
    }
}

fn same_histogram(want: &FloatHistogram, got: &FloatHistogram) -> bool {
    let buckets_close = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
        let a: Vec<_> = a.into_iter().filter(|x| x.1 != 0.0).collect();
        let b: Vec<_> = b.into_iter().filter(|x| x.1 != 0.0).collect();
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0 && close(x.1, y.1))
    };
    want.schema == got.schema
        && close(want.zero_threshold, got.zero_threshold)
        && close(want.zero_count, got.zero_count)
        && close(want.count, got.count)
        && close(want.sum, got.sum)
        && want.custom_values == got.custom_values
        && buckets_close(want.positive(), got.positive())
        && buckets_close(want.negative(), got.negative())
        && (want.hint == CounterResetHint::Unknown || want.hint == got.hint)
}

fn matches_fail(ev: &Eval, got: &str) -> Result<(), String> {
    match &ev.fail {
        None => Ok(()),
        Some((how, want)) if how == "msg" => {
            if got == want {
                Ok(())
            } else {
                Err(format!("error {got:?}, expected {want:?}"))
            }
        }
        Some((_, re)) => match regex::Regex::new(re) {
            Ok(r) if r.is_match(got) => Ok(()),
            _ => Err(format!("error {got:?} does not match {re:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_pinning_follows_prometheus_runner() {
        let pinned = |q: &str| {
            let mut e = parse(q).unwrap();
            let safe = pin_at(&mut e, 5000);
            (safe, format!("{e:?}"))
        };
        let (safe, e) = pinned("sum(rate(x[5m])) + on() y offset 1m");
        assert!(safe);
        assert_eq!(e.matches("at: Some(Time(5000))").count(), 2, "{e}");
        // A subquery gets the time; the selectors inside it keep theirs.
        let (_, e) = pinned("max_over_time(x[5m:1m])");
        assert_eq!(e.matches("at: Some(Time(5000))").count(), 1, "{e}");
        assert_eq!(e.matches("at: None").count(), 1, "{e}");
        // An existing `@` is left alone.
        let (_, e) = pinned("x @ 100");
        assert!(
            e.contains("at: Some(Time(100000))") && !e.contains("5000"),
            "{e}"
        );
        // Time-dependent functions make the variants meaningless.
        assert!(!pinned("time() - x").0);
        assert!(!pinned("sum(timestamp(x))").0);
        assert_eq!(at_variant_times(0), [-1000, 0, 1000]);
        assert_eq!(at_variant_times(100), [-1000, 0, 20, 100, 1000]);
    }

    #[test]
    fn expands_notation() {
        assert_eq!(
            expand("1 2+3x2 _ 5-1x1").unwrap(),
            vec![
                Some(1.0),
                Some(2.0),
                Some(5.0),
                Some(8.0),
                None,
                Some(5.0),
                Some(4.0)
            ]
        );
        assert_eq!(
            expand("_x2 1x1").unwrap(),
            vec![None, None, Some(1.0), Some(1.0)]
        );
        assert_eq!(
            expand("1e3 -2 0x2").unwrap(),
            vec![Some(1000.0), Some(-2.0), Some(0.0), Some(0.0), Some(0.0)],
            "0x2 repeats 0, as upstream"
        );
    }
}

/// `load_with_nhcb`: classic histograms (`_bucket`, `_count`, `_sum` series) also loaded as
/// native histograms with custom buckets, as upstream's runner converts them.
mod nhcb {
    use std::collections::BTreeMap;

    use vigil_model::histogram::CUSTOM_BUCKETS_SCHEMA;
    use vigil_model::labels::METRIC_NAME;
    use vigil_model::{FloatHistogram, Labels};

    use super::TestValue;

    #[derive(Default)]
    struct At {
        /// (le, cumulative count), sorted by le when converted.
        buckets: Vec<(f64, f64)>,
        count: Option<f64>,
        sum: Option<f64>,
    }

    /// Add to `series` one custom-bucket histogram series per classic family and label set.
    pub(super) fn add_custom_bucket_histograms(
        series: &mut BTreeMap<Labels, BTreeMap<i64, TestValue>>,
    ) {
        let mut targets: BTreeMap<Labels, BTreeMap<i64, At>> = BTreeMap::new();
        for (labels, pts) in series.iter() {
            let name = labels.metric_name().unwrap_or("");
            let (base, kind) = if let Some(b) = name.strip_suffix("_bucket") {
                (b, 0)
            } else if let Some(b) = name.strip_suffix("_count") {
                (b, 1)
            } else if let Some(b) = name.strip_suffix("_sum") {
                (b, 2)
            } else {
                continue;
            };
            let le = if kind == 0 {
                match labels.get("le").and_then(crate::funcs::parse_le) {
                    Some(le) if !le.is_nan() => Some(le),
                    _ => continue,
                }
            } else {
                None
            };
            let mut b = labels.builder();
            b.del("le");
            b.set(METRIC_NAME.to_string(), base.to_string());
            let target = targets.entry(b.build()).or_default();
            for (&t, v) in pts {
                let TestValue::F(v) = v else { continue };
                let at = target.entry(t).or_default();
                match le {
                    Some(le) => {
                        if !at.buckets.iter().any(|b| b.0 == le) {
                            at.buckets.push((le, *v));
                        }
                    }
                    None if kind == 1 => at.count = Some(*v),
                    None => at.sum = Some(*v),
                }
            }
        }
        for (labels, by_t) in targets {
            let mut pts = BTreeMap::new();
            for (t, mut at) in by_t {
                at.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                let Some(count) = at.count.or_else(|| at.buckets.last().map(|b| b.1)) else {
                    continue;
                };
                if at.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                    at.buckets.push((f64::INFINITY, count));
                }
                let mut h = FloatHistogram {
                    schema: CUSTOM_BUCKETS_SCHEMA,
                    count,
                    sum: at.sum.unwrap_or(0.0),
                    custom_values: at
                        .buckets
                        .iter()
                        .map(|b| b.0)
                        .filter(|le| le.is_finite())
                        .collect(),
                    ..Default::default()
                };
                let mut prev = 0.0;
                let pairs: Vec<(i32, f64)> = at
                    .buckets
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, c))| {
                        let d = c - prev;
                        prev = c;
                        (i as i32, d)
                    })
                    .collect();
                h.set_positive(&pairs);
                pts.insert(t, TestValue::H(h));
            }
            if !pts.is_empty() {
                series.entry(labels).or_default().extend(pts);
            }
        }
    }
}
