//! `vigil test rules`: promtool's rule unit tests. Input series in the PromQL test notation,
//! the rule files evaluated every `evaluation_interval` from time 0, alerts and expressions
//! checked at given times; failures reported as promtool reports them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use vigil_model::Labels;
use vigil_model::labels::quote;
use vigil_model::time::format_duration_ms;
use vigil_promql::{Engine, Value};
use vigil_storage::{MemoryStorage, Storage};

use crate::file;
use crate::group::Group;
use crate::rule::{AlertState, EvalEnv};
use crate::template::gofmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    group_eval_order: Vec<String>,
    #[serde(default)]
    tests: Vec<TestGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestGroup {
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    external_labels: BTreeMap<String, String>,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    series: String,
    values: Scalar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertTest {
    eval_time: Scalar,
    #[serde(default)]
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExprTest {
    expr: String,
    eval_time: Scalar,
    #[serde(default)]
    exp_samples: Vec<ExpSample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpSample {
    #[serde(default)]
    labels: String,
    value: f64,
}

/// A YAML scalar read as its text (`values: 0x10` is the notation "0x10", not 16).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_string(V)
    }
}

/// Points one input series may expand to (a unit test is the user's own file, but `1x1e12`
/// must not take the machine's memory).
const MAX_POINTS: usize = 10_000_000;

/// What one file's tests found: `Ok(())` or promtool's error texts.
///
/// `engine`: the evaluation settings of the features asked for on the command line
/// (`promql-delayed-name-removal`, `type-and-unit-labels`), as promtool takes them; the
/// evaluation interval is the test file's.
pub fn run_file(path: &Path, engine: &Engine) -> Result<(), Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{shown}: {e}")])?;
    let tf: TestFile = serde_saphyr::from_str(&text).map_err(|e| vec![yaml_error(&e)])?;
    let interval = match tf.evaluation_interval.as_deref() {
        None => Duration::from_secs(60),
        Some(s) => vigil_config::parse_duration(s).map_err(|e| vec![e])?,
    };
    if interval.is_zero() {
        return Err(vec!["evaluation_interval must be positive".into()]);
    }
    let mut seen = std::collections::HashSet::new();
    for g in &tf.group_eval_order {
        if !seen.insert(g) {
            return Err(vec![format!(
                "group name repeated in evaluation order: {g}"
            )]);
        }
    }
    // Rule files, relative to the test file.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for rf in &tf.rule_files {
        let pattern = clean(&dir.join(rf));
        let found: Vec<PathBuf> = glob::glob(&pattern.display().to_string())
            .map(|g| g.filter_map(Result::ok).collect())
            .unwrap_or_default();
        if found.is_empty() {
            eprintln!("  WARNING: no file match pattern {rf}");
        }
        files.extend(found.into_iter().map(|p| clean(&p)));
    }
    let mut rule_files = Vec::new();
    let mut load_errs = Vec::new();
    for f in &files {
        match file::load(f) {
            Ok(rf) => rule_files.push(rf),
            Err(e) => load_errs.extend(e),
        }
    }
    let mut errs = Vec::new();
    for tg in &tf.tests {
        if !load_errs.is_empty() {
            errs.extend(load_errs.iter().cloned());
            continue;
        }
        errs.extend(run_group(tg, &tf, &rule_files, interval, engine));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Go's `filepath.Clean` of a joined path (drops `./`).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn run_group(
    tg: &TestGroup,
    tf: &TestFile,
    rule_files: &[file::RuleFile],
    eval_interval: Duration,
    features: &Engine,
) -> Vec<String> {
    let mut errs = Vec::new();
    let step = match tg.interval.as_deref() {
        // Current Prometheus: the evaluation interval (2.42 used 0).
        None => eval_interval,
        Some(s) => match vigil_config::parse_duration(s) {
            Ok(d) => d,
            Err(e) => return vec![e],
        },
    };
    let step_ms = step.as_millis() as i64;
    // Input series.
    let storage = MemoryStorage::default();
    {
        let mut app = storage.appender();
        for s in &tg.input_series {
            let labels = match vigil_promql::promqltest::series_labels(&s.series) {
                Ok(l) => l,
                Err(e) => return vec![e],
            };
            let values = match vigil_promql::promqltest::expand_within(&s.values.0, MAX_POINTS) {
                Ok(v) => v,
                Err(e) => return vec![format!("{}: {e}", s.series)],
            };
            let mut r = 0;
            for (i, v) in values.into_iter().enumerate() {
                if let Some(v) = v {
                    // Repeated timestamps (interval 0) keep the first, as promtool's loader.
                    if let Ok(got) = app.append(r, &labels, i as i64 * step_ms, v) {
                        r = got;
                    }
                }
            }
        }
        if let Err(e) = app.commit() {
            return vec![e.to_string()];
        }
    }
    // Rule groups in evaluation order: those named first, then the rest as in their files.
    let mut groups: Vec<Group> = rule_files
        .iter()
        .flat_map(|rf| {
            rf.groups
                .iter()
                .map(|g| Group::new(&rf.path, g.clone(), eval_interval, Duration::ZERO, true))
        })
        .collect();
    groups.sort_by_key(|g| {
        tf.group_eval_order
            .iter()
            .position(|n| *n == g.name)
            .unwrap_or(usize::MAX)
    });
    let engine = Engine {
        subquery_step_ms: eval_interval.as_millis() as i64,
        ..features.clone()
    };
    let ext = tg.external_labels.clone();
    let env = EvalEnv {
        storage: &storage,
        engine: &engine,
        query_timeout: None,
        external_labels: &ext,
        external_url: &tg.external_url,
        concurrency: None,
    };
    let name_line = if tg.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", tg.name)
    };
    let mut alert_tests: BTreeMap<i64, Vec<&AlertTest>> = BTreeMap::new();
    let mut max_t = 0i64;
    for at in &tg.alert_rule_test {
        let t = match duration_ms(&at.eval_time.0) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        if at.alertname.is_empty() {
            let within = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            errs.push(format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{within}",
                format_duration_ms(t)
            ));
            continue;
        }
        alert_tests.entry(t).or_default().push(at);
        max_t = max_t.max(t);
    }
    let mut expr_times = Vec::new();
    for et in &tg.promql_expr_test {
        match duration_ms(&et.eval_time.0) {
            Ok(t) => {
                expr_times.push(t);
                max_t = max_t.max(t);
            }
            Err(e) => return vec![e],
        }
    }
    let iv = eval_interval.as_millis().min(i64::MAX as u128) as i64;
    if iv <= 0 {
        return vec![format!(
            "{name_line}    evaluation_interval must be positive, not {}",
            format_duration_ms(iv)
        )];
    }
    // The groups are evaluated at every interval up to the last eval_time: bounded as the
    // input series are, so a far eval_time is an error, not hours of work.
    if max_t / iv > MAX_POINTS as i64 {
        return vec![format!(
            "{name_line}    eval_time {} is more than {MAX_POINTS} evaluation intervals of {} away",
            format_duration_ms(max_t),
            format_duration_ms(iv)
        )];
    }
    let mut ts = 0i64;
    while ts <= max_t {
        // A rule that fails stops the group's tests with that error alone, as in promtool.
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            g.eval(&env, ts, Duration::from_secs(60));
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errs.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.spec.name,
                        go_duration(ts)
                    ));
                }
            }
        }
        if !eval_errs.is_empty() {
            return eval_errs;
        }
        // Alert tests due in [ts, ts + interval).
        for (&t, tests) in alert_tests.range(ts..ts.saturating_add(iv)) {
            for at in tests {
                let mut got: Vec<(Labels, BTreeMap<String, String>)> = groups
                    .iter()
                    .flat_map(|g| g.rules.iter())
                    .filter(|r| r.spec.name == at.alertname && r.spec.is_alert())
                    .flat_map(|r| r.active_alerts())
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| (a.labels.clone(), a.annotations.clone()))
                    .collect();
                let mut exp: Vec<(Labels, BTreeMap<String, String>)> = at
                    .exp_alerts
                    .iter()
                    .map(|e| {
                        let mut l = e.exp_labels.clone();
                        l.insert("alertname".into(), at.alertname.clone());
                        (Labels::from_pairs(l), e.exp_annotations.clone())
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    errs.push(format!(
                        "{name_line}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        at.alertname,
                        format_duration_ms(t),
                        indent(&alerts_string(&exp), "            "),
                        indent(&alerts_string(&got), "            "),
                    ));
                }
            }
        }
        ts = ts.saturating_add(iv);
        if ts == i64::MAX {
            break;
        }
    }
    for (et, &t) in tg.promql_expr_test.iter().zip(&expr_times) {
        let got = match vigil_promql::parse(&et.expr)
            .map_err(|e| e.to_string())
            .and_then(|e| engine.instant(&storage, &e, t).map_err(|e| e.to_string()))
        {
            Ok(Value::Vector(v)) => v.into_iter().map(|(l, s)| (l, s.v)).collect::<Vec<_>>(),
            Ok(Value::Scalar(s)) => vec![(Labels::empty(), s.v)],
            Ok(_) => {
                errs.push(format!(
                    "    expr: {:?}, time: {}, err: query result is not a vector or scalar",
                    et.expr,
                    format_duration_ms(t)
                ));
                continue;
            }
            Err(e) => {
                errs.push(format!(
                    "    expr: {:?}, time: {}, err: {e}",
                    et.expr,
                    format_duration_ms(t)
                ));
                continue;
            }
        };
        let mut exp = Vec::new();
        let mut bad = None;
        for s in &et.exp_samples {
            let l = if s.labels.trim().is_empty() {
                Ok(Labels::empty())
            } else {
                vigil_promql::promqltest::series_labels(&s.labels)
            };
            match l {
                Ok(l) => exp.push((l, s.value)),
                Err(e) => {
                    bad = Some(format!(
                        "    expr: {:?}, time: {}, err: labels {:?}: {e}",
                        et.expr,
                        format_duration_ms(t),
                        s.labels
                    ));
                    break;
                }
            }
        }
        if let Some(b) = bad {
            errs.push(b);
            continue;
        }
        let mut got = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        exp.sort_by(|a, b| a.0.cmp(&b.0));
        // Exactly equal, as promtool compares (NaN is never equal).
        let same =
            got.len() == exp.len() && got.iter().zip(&exp).all(|(g, e)| g.0 == e.0 && g.1 == e.1);
        if !same {
            errs.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                et.expr,
                format_duration_ms(t),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    errs
}

/// A time in a test: a Prometheus duration or plain seconds (`0`, `5m`, `1d`).
fn duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(v) = s.parse::<f64>() {
        return Ok((v * 1000.0).round() as i64);
    }
    vigil_config::parse_duration(s)
        .map(|d| d.as_millis() as i64)
        .map_err(|e| format!("not a valid duration string: {s:?}: {e}"))
}

/// Go's `labels.Labels.String()`: `{a="b", c="d"}`.
fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={}", x.name, quote(x.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn map_string(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    format!("{{{}}}", parts.join(", "))
}

fn alerts_string(list: &[(Labels, BTreeMap<String, String>)]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let one = |(l, a): &(Labels, BTreeMap<String, String>)| {
        format!("Labels:{}\nAnnotations:{}", labels_string(l), map_string(a))
    };
    let mut s = format!("[\n0:{}", indent(&format!("\n{}", one(&list[0])), "  "));
    for (i, x) in list[1..].iter().enumerate() {
        s.push_str(&format!(
            ",\n{}:{}",
            i + 1,
            indent(&format!("\n{}", one(x)), "  ")
        ));
    }
    s.push_str("\n]");
    s
}

/// promtool's `indentLines`: every line after the first gets `indent`.
fn indent(text: &str, indent: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push_str(indent);
        }
        out.push_str(l);
        if i != lines.len() - 1 {
            out.push('\n');
        }
    }
    out
}

fn samples_string(s: &[(Labels, f64)]) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v)| {
            format!(
                "{} {}",
                labels_string(l),
                gofmt::format_upper_e_shortest(*v)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `time.Duration` text of milliseconds: `0s`, `1m0s`, `1h0m0s`, `1.5s`.
fn go_duration(ms: i64) -> String {
    crate::template::value::format_duration(ms.saturating_mul(1_000_000))
}

fn yaml_error(e: &serde_saphyr::Error) -> String {
    let msg = e
        .without_snippet()
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let line = e.location().map(|l| l.line()).unwrap_or(0);
    if let Some(rest) = msg.split("unknown field `").nth(1)
        && let Some((name, tail)) = rest.split_once('`')
    {
        let expected = tail.split(" at line ").next().unwrap_or(tail);
        let has = |f: &str| expected.split([' ', ',', '`']).any(|w| w == f);
        let ty = if has("rule_files") {
            "main.unitTestFile"
        } else if has("input_series") {
            "main.testGroup"
        } else if has("exp_samples") {
            "main.promqlTestCase"
        } else if has("exp_alerts") {
            "main.alertTestCase"
        } else if has("exp_labels") {
            "main.alert"
        } else if has("value") {
            "main.sample"
        } else {
            "main.series"
        };
        return format!(
            "yaml: unmarshal errors:\n  line {line}: field {name} not found in type {ty}"
        );
    }
    format!("yaml: line {line}: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_and_prometheus() {
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(86_400_000), "1d");
        assert_eq!(format_duration_ms(90_000), "1m30s");
        assert_eq!(format_duration_ms(604_800_000), "1w");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(60_000), "1m0s");
    }

    /// Series notations and eval times past the bound are errors before any work: no
    /// allocation of a hundred billion values, no years of evaluation rounds.
    #[test]
    fn huge_series_and_eval_times_are_refused_up_front() {
        let dir = std::env::temp_dir().join(format!("vigil-unittest-huge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("r.yml"),
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n",
        )
        .unwrap();
        let run = |values: &str, eval: &str, interval: &str| -> Vec<String> {
            let f = dir.join("t.yml");
            std::fs::write(
                &f,
                format!(
                    "rule_files: [r.yml]\nevaluation_interval: {interval}\ntests:\n  - interval: 1m\n    input_series:\n      - series: 'up{{job=\"a\"}}'\n        values: '{values}'\n    alert_rule_test:\n      - eval_time: {eval}\n        alertname: A\n"
                ),
            )
            .unwrap();
            run_file(&f, &Engine::default()).err().unwrap_or_default()
        };
        for values in [
            "1x100000000000",
            "_x100000000000",
            "1x18446744073709551615",
            "1+1x18446744073709551615",
            "0 _x18446744073709551615",
        ] {
            let errs = run(values, "1m", "1m");
            assert!(
                errs.iter().any(|e| e.contains("more than 10000000 values")),
                "{values}: {errs:?}"
            );
        }
        let errs = run("0x10", "1e12", "1m");
        assert!(
            errs.iter().any(|e| e.contains("evaluation intervals")),
            "{errs:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
