//! Rule files, as current Prometheus reads and checks them (`model/rulefmt`): groups of
//! recording and alerting rules. Every problem is reported, each worded as Prometheus words
//! it, with the file and the line:column of the value at fault.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use vigil_model::names::NameValidation;
use vigil_promql::Expr;

use crate::template;

/// One rule file, checked.
#[derive(Debug, Clone)]
pub struct RuleFile {
    pub path: String,
    pub groups: Vec<GroupSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// `None`: the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// `None`: the global `rule_query_offset`.
    pub query_offset: Option<Duration>,
    pub limit: usize,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Recording,
    Alerting {
        for_: Duration,
        keep_firing_for: Duration,
        annotations: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// `record` or `alert`.
    pub name: String,
    pub kind: RuleKind,
    pub expr: Expr,
    /// Group labels, then the rule's own (which win).
    pub labels: BTreeMap<String, String>,
}

impl RuleSpec {
    pub fn is_alert(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: String,
    interval: Option<String>,
    query_offset: Option<String>,
    #[serde(default)]
    limit: i64,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    record: Option<Spanned<String>>,
    alert: Option<Spanned<String>>,
    expr: Option<Spanned<ExprText>>,
    #[serde(rename = "for")]
    for_: Option<String>,
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// `expr:` may be written as a number (`expr: 1`), as Prometheus's YAML allows.
struct ExprText(String);

impl<'de> Deserialize<'de> for ExprText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ExprText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a PromQL expression")
            }
            fn visit_str<E>(self, v: &str) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<ExprText, E> {
                Ok(ExprText(v.to_string()))
            }
        }
        d.deserialize_string(V)
    }
}

fn pos<T>(s: &Option<Spanned<T>>) -> String {
    match s {
        Some(s) if s.referenced.line() > 0 => {
            format!("{}:{}", s.referenced.line(), s.referenced.column())
        }
        _ => "0:0".into(),
    }
}

/// Read and check a rule file. Errors come each on its own, prefixed with the file.
pub fn load(path: &Path) -> Result<RuleFile, Vec<String>> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{shown}: {e}")])?;
    parse(&text, &shown)
}

/// Check rule file text (`file` names it in errors), names by Prometheus 3's default UTF-8
/// rules.
pub fn parse(text: &str, file: &str) -> Result<RuleFile, Vec<String>> {
    parse_with(text, file, NameValidation::Utf8)
}

/// Check rule file text with the given name validation (`legacy` holds label, annotation
/// and recording rule names to the classic character sets).
pub fn parse_with(text: &str, file: &str, names: NameValidation) -> Result<RuleFile, Vec<String>> {
    if text.trim().is_empty() {
        return Ok(RuleFile {
            path: file.to_string(),
            groups: Vec::new(),
        });
    }
    let raw: RawFile =
        serde_saphyr::from_str(text).map_err(|e| vec![format!("{file}: {}", yaml_error(&e))])?;
    let mut errs = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    for g in &raw.groups {
        let at = format!("{}:{}", g.referenced.line(), g.referenced.column());
        let g_ref = &g.value;
        if g_ref.name.is_empty() {
            errs.push(format!("{file}: {at}: Groupname must not be empty"));
        } else if !seen.insert(g_ref.name.clone()) {
            errs.push(format!(
                "{file}: {at}: groupname: \"{}\" is repeated in the same file",
                g_ref.name
            ));
        }
        let dur = |what: &str, v: &Option<String>, errs: &mut Vec<String>| -> Option<Duration> {
            let t = v.as_deref()?;
            match vigil_config::parse_duration(t) {
                Ok(d) => Some(d),
                Err(e) => {
                    errs.push(format!("{file}: group {:?}: {what}: {e}", g_ref.name));
                    None
                }
            }
        };
        let interval = dur("interval", &g_ref.interval, &mut errs).filter(|d| !d.is_zero());
        let query_offset = dur("query_offset", &g_ref.query_offset, &mut errs);
        if g_ref.limit < 0 {
            errs.push(format!(
                "{file}: group {:?}: limit must not be negative",
                g_ref.name
            ));
        }
        for (k, v) in &g_ref.labels {
            if !label_name_ok(k, names) {
                errs.push(format!(
                    "{file}: group {:?}: invalid label name: {k}",
                    g_ref.name
                ));
            }
            let _ = v;
        }
        let mut rules = Vec::new();
        for (i, r) in g_ref.rules.iter().enumerate() {
            match rule(r, &g_ref.labels, names) {
                Ok(spec) => rules.push(spec),
                Err(list) => {
                    let name = r
                        .alert
                        .as_ref()
                        .or(r.record.as_ref())
                        .map(|s| s.value.clone())
                        .unwrap_or_default();
                    for (at, msg) in list {
                        let at = at.map(|a| format!("{a}: ")).unwrap_or_default();
                        errs.push(format!(
                            "{file}: {at}group {:?}, rule {}, {:?}: {msg}",
                            g_ref.name,
                            i + 1,
                            name
                        ));
                    }
                }
            }
        }
        groups.push(GroupSpec {
            name: g_ref.name.clone(),
            interval,
            query_offset,
            limit: g_ref.limit.max(0) as usize,
            labels: g_ref.labels.clone(),
            rules,
        });
    }
    if errs.is_empty() {
        Ok(RuleFile {
            path: file.to_string(),
            groups,
        })
    } else {
        Err(errs)
    }
}

/// A rule's label name as Prometheus 3 checks it: a name of the scheme but `__name__`.
fn label_name_ok(n: &str, names: NameValidation) -> bool {
    names.label_name_ok(n) && n != "__name__"
}

/// A recording rule's name: a metric name of the scheme without braces, which
/// [`record_name_error`] names.
fn record_name_ok(n: &str, names: NameValidation) -> bool {
    names.metric_name_ok(n) && !n.contains(['{', '}'])
}

/// Prometheus 3's message for a recording rule name it refuses.
fn record_name_error(n: &str) -> String {
    if n.contains(['{', '}']) {
        format!("braces present in the recording rule name; should it be in expr?: {n}")
    } else {
        format!("invalid recording rule name: {n}")
    }
}

type RuleErrs = Vec<(Option<String>, String)>;

fn rule(
    r: &RawRule,
    group_labels: &BTreeMap<String, String>,
    names: NameValidation,
) -> Result<RuleSpec, RuleErrs> {
    let mut errs: RuleErrs = Vec::new();
    match (&r.record, &r.alert) {
        (Some(_), Some(_)) => errs.push((
            Some(format!("{}: {}", pos(&r.record), pos(&r.alert))),
            "only one of 'record' and 'alert' must be set".into(),
        )),
        (None, None) => errs.push((
            Some("0:0".into()),
            "one of 'record' or 'alert' must be set".into(),
        )),
        _ => {}
    }
    let expr = match &r.expr {
        Some(e) if !e.value.0.trim().is_empty() => match vigil_promql::parse(&e.value.0) {
            Ok(x) => Some(x),
            Err(pe) => {
                errs.push((
                    Some(pos(&r.expr)),
                    format!("could not parse expression: {pe}"),
                ));
                None
            }
        },
        _ => {
            errs.push((
                Some(pos(&r.expr)),
                "field 'expr' must be set in rule".into(),
            ));
            None
        }
    };
    let dur = |v: &Option<String>, what: &str, errs: &mut RuleErrs| -> Duration {
        match v.as_deref() {
            None => Duration::ZERO,
            Some(t) => vigil_config::parse_duration(t).unwrap_or_else(|e| {
                errs.push((None, format!("{what}: {e}")));
                Duration::ZERO
            }),
        }
    };
    let for_ = dur(&r.for_, "for", &mut errs);
    let keep = dur(&r.keep_firing_for, "keep_firing_for", &mut errs);
    if let Some(rec) = &r.record {
        let at = Some(pos(&r.record));
        if !r.annotations.is_empty() {
            errs.push((
                at.clone(),
                "invalid field 'annotations' in recording rule".into(),
            ));
        }
        if r.for_.is_some() {
            errs.push((at.clone(), "invalid field 'for' in recording rule".into()));
        }
        if r.keep_firing_for.is_some() {
            errs.push((
                at.clone(),
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
        if !record_name_ok(&rec.value, names) {
            errs.push((at.clone(), record_name_error(&rec.value)));
        }
    }
    for k in r.labels.keys() {
        if !label_name_ok(k, names) {
            errs.push((None, format!("invalid label name: {k}")));
        }
    }
    for k in r.annotations.keys() {
        if !names.label_name_ok(k) {
            errs.push((None, format!("invalid annotation name: {k}")));
        }
    }
    if let Some(a) = &r.alert {
        for (k, v) in &r.labels {
            if let Err(e) = template::check_alert(&a.value, v) {
                errs.push((None, format!("label {k:?}: {e}")));
            }
        }
        for (k, v) in &r.annotations {
            if let Err(e) = template::check_alert(&a.value, v) {
                errs.push((None, format!("annotation {k:?}: {e}")));
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut labels = group_labels.clone();
    labels.extend(r.labels.clone());
    let (name, kind) = match (&r.record, &r.alert) {
        (Some(rec), None) => (rec.value.clone(), RuleKind::Recording),
        (None, Some(a)) => (
            a.value.clone(),
            RuleKind::Alerting {
                for_,
                keep_firing_for: keep,
                annotations: r.annotations.clone(),
            },
        ),
        _ => unreachable!("checked above"),
    };
    Ok(RuleSpec {
        name,
        kind,
        expr: expr.expect("checked above"),
        labels,
    })
}

/// A YAML error as Prometheus prints it: `yaml: unmarshal errors:\n  line N: field X not
/// found in type rulefmt.RuleGroup` for an unknown field.
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
        let ty = if has("record") || has("expr") {
            "rulefmt.Rule"
        } else if has("rules") {
            "rulefmt.RuleGroup"
        } else {
            "rulefmt.RuleGroups"
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

    fn conformance(name: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/rules");
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    /// Upstream's rule-file vectors, with current Prometheus's verdicts (UTF-8 names by
    /// default; `legacy_*` files are checked with legacy names, as upstream's tests check
    /// them). Where 2.42 differs: it refuses the `utf-8_*` files and calls a name with braces
    /// an "invalid recording rule name".
    #[test]
    fn upstream_rule_file_vectors() {
        let cases = [
            (
                "bad_expr.bad.yaml",
                "5:15: group \"yolo\", rule 1, \"yolo\": could not parse expression: 1:6: parse error: expected type range vector in call to function \"rate\", got instant vector",
            ),
            (
                "bad_field.bad.yaml",
                "yaml: unmarshal errors:\n  line 8: field annotation not found in type rulefmt.Rule",
            ),
            (
                "duplicate_grp.bad.yaml",
                "3:5: groupname: \"yolo\" is repeated in the same file",
            ),
            (
                "invalid_label_name.bad.yaml",
                "group \"yolo\", rule 1, \"hola\": invalid label name: __name__",
            ),
            (
                "invalid_record_name.bad.yaml",
                "4:17: group \"yolo\", rule 1, \"strawberry{flavor=\\\"sweet\\\"}\": braces present in the recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}",
            ),
            (
                "legacy_validation_annotation.bad.yaml",
                "group \"yolo\", rule 1, \"hola\": invalid annotation name: ins-tance",
            ),
            (
                "no_rec_alert.bad.yaml",
                "0:0: group \"yolo\", rule 1, \"\": one of 'record' or 'alert' must be set",
            ),
            (
                "noexpr.bad.yaml",
                "0:0: group \"yolo\", rule 1, \"ylo\": field 'expr' must be set in rule",
            ),
            (
                "record_and_alert.bad.yaml",
                "4:17: 5:16: group \"yolo\", rule 1, \"Hello\": only one of 'record' and 'alert' must be set",
            ),
            (
                "record_and_for.bad.yaml",
                "4:17: group \"yolo\", rule 1, \"Hello\": invalid field 'for' in recording rule",
            ),
            (
                "record_and_keep_firing_for.bad.yaml",
                "4:17: group \"yolo\", rule 1, \"Hello\": invalid field 'keep_firing_for' in recording rule",
            ),
        ];
        for (f, want) in cases {
            let names = match f.starts_with("legacy_") {
                true => NameValidation::Legacy,
                false => NameValidation::Utf8,
            };
            let errs = parse_with(&conformance(f), "F", names).expect_err(f);
            assert_eq!(errs, vec![format!("F: {want}")], "{f}");
        }
        for f in [
            "test.yaml",
            "test_aliases.yaml",
            "legacy_validation_annotation.good.yaml",
            // Prometheus 3 takes UTF-8 label and annotation names.
            "utf-8_annotation.good.yaml",
            "utf-8_lname.good.yaml",
        ] {
            let rf = parse(&conformance(f), "F").unwrap_or_else(|e| panic!("{f}: {e:?}"));
            assert!(!rf.groups.is_empty(), "{f}");
        }
    }

    #[test]
    fn fields_of_current_prometheus_load() {
        let rf = parse(
            "groups:\n- name: g\n  interval: 30s\n  query_offset: 1m\n  limit: 10\n  labels:\n    team: a\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 10m\n    labels:\n      severity: page\n      team: b\n    annotations:\n      summary: '{{ $labels.instance }} down'\n  - record: job:up:sum\n    expr: sum by (job) (up)\n",
            "F",
        )
        .unwrap();
        let g = &rf.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(g.limit, 10);
        assert_eq!(g.rules[0].labels["team"], "b");
        assert_eq!(g.rules[1].labels["team"], "a");
        assert!(matches!(
            &g.rules[0].kind,
            RuleKind::Alerting { for_, keep_firing_for, .. }
                if *for_ == Duration::from_secs(300) && *keep_firing_for == Duration::from_secs(600)
        ));
    }

    #[test]
    fn bad_templates_and_durations_are_named() {
        let errs = parse(
            "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: up\n    for: 5 minutes\n    annotations:\n      a: '{{ $label.x }}'\n",
            "F",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].contains("group \"g\", rule 1, \"X\": for: "),
            "{errs:?}"
        );
        assert_eq!(
            errs[1],
            "F: group \"g\", rule 1, \"X\": annotation \"a\": template: __alert_X:1: undefined variable \"$label\""
        );
        assert!(parse("", "F").unwrap().groups.is_empty());
    }

    /// `expr:` is the scalar's text, as Go's YAML gives a string field: `y` and `yes` are
    /// metric names (not YAML 1.1 booleans), numbers keep their spelling.
    #[test]
    fn expr_is_the_scalar_text() {
        let rf = parse(
            "groups:\n- name: g\n  rules:\n  - record: a\n    expr: y\n  - record: b\n    expr: yes\n  - record: c\n    expr: 0x1F\n  - record: d\n    expr: 7\n",
            "r.yml",
        )
        .unwrap();
        let got: Vec<String> = rf.groups[0]
            .rules
            .iter()
            .map(|r| r.expr.to_string())
            .collect();
        assert_eq!(got, ["y", "yes", "31", "7"]);
    }
}
