//! kube-state-metrics' custom resource state (`--custom-resource-state-config[-file]`): metrics
//! for any kind, custom resources included, described by a config of paths into the object.
//!
//! Semantics follow kube-state-metrics' `pkg/customresourcestate` (current main): paths walk
//! maps by key, arrays by index or `[key=value]` filter; gauges, state sets and info metrics;
//! `commonLabels`, `labelsFromPath` (with `*` expansions of whole maps), `labelFromKey`; the
//! `customresource_group`, `_version` and `_kind` labels on every sample; values converted as
//! its `toFloat64` does (booleans, `yes`/`no`, RFC 3339 times, quantities, percentages);
//! labels sorted by name on each line and samples sorted by their own labels. Fields proposed
//! upstream but in no kube-state-metrics release (`valueType`, `valueFrom` as an object with
//! `pathValueFrom` or CEL's `celExpr`) are refused when the config is read, by name: their
//! meaning may still change there. Wildcard versions and kinds are resolved through discovery
//! at start and again every rediscovery interval.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;

use super::text::{Family, Quantity, Rendered, sanitize};
use crate::exposition::{fmt_value, push_labels};

/// kube-state-metrics' default `metricNamePrefix`.
const DEFAULT_PREFIX: &str = "kube_customresource";

/// The config as written (`kind: CustomResourceStateMetrics` and unknown keys are ignored, as
/// kube-state-metrics' decoder ignores them). Every field may be missing or `null` (its
/// `generate` command writes `valueFrom: null`), and scalars are read as their text, as Go's
/// `[]string` reads them: an unquoted `True` in a state set's list stays `True`.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default, deserialize_with = "nullable")]
    spec: RawSpec,
}

/// `null` as the field's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct RawSpec {
    #[serde(default, deserialize_with = "nullable")]
    resources: Vec<RawResource>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Gvk {
    #[serde(default, deserialize_with = "nullable")]
    group: String,
    #[serde(default, deserialize_with = "nullable")]
    version: String,
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
}

type RawLabels = BTreeMap<String, Vec<String>>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawResource {
    #[serde(default, deserialize_with = "nullable")]
    group_version_kind: Gvk,
    #[serde(default, deserialize_with = "nullable")]
    resource_plural: String,
    /// Absent or null: the default prefix; `""`: no prefix.
    #[serde(default)]
    metric_name_prefix: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    common_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    labels_from_path: RawLabels,
    #[serde(default, deserialize_with = "nullable")]
    metrics: Vec<RawGenerator>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawGenerator {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    help: String,
    #[serde(default, deserialize_with = "nullable")]
    common_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    labels_from_path: RawLabels,
    #[serde(default, deserialize_with = "nullable")]
    each: RawEach,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawEach {
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    kind: String,
    #[serde(default)]
    gauge: Option<RawGauge>,
    #[serde(default)]
    state_set: Option<RawStateSet>,
    #[serde(default)]
    info: Option<RawInfo>,
}

/// `valueFrom`: a path, or (a form proposed upstream, kube-state-metrics PR #2868, in no
/// release) an object with `pathValueFrom` or `celExpr`, which vigil refuses by name.
#[derive(Default)]
enum RawValueFrom {
    #[default]
    None,
    Path(Vec<String>),
    Object(Vec<String>),
}

impl<'de> Deserialize<'de> for RawValueFrom {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawValueFrom;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path (a list of keys), or an object")
            }
            fn visit_unit<E>(self) -> Result<RawValueFrom, E> {
                Ok(RawValueFrom::None)
            }
            fn visit_none<E>(self) -> Result<RawValueFrom, E> {
                Ok(RawValueFrom::None)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawValueFrom, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = a.next_element::<String>()? {
                    out.push(s);
                }
                Ok(RawValueFrom::Path(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<RawValueFrom, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, _)) = a.next_entry::<String, serde::de::IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(RawValueFrom::Object(keys))
            }
        }
        d.deserialize_any(V)
    }
}

impl RawValueFrom {
    fn path(&self, what: &str) -> Result<Path, String> {
        match self {
            RawValueFrom::None => Ok(Path::default()),
            RawValueFrom::Path(p) => Path::compile(p, what),
            RawValueFrom::Object(keys) => Err(format!(
                "{what}: an object ({}) is a form proposed for kube-state-metrics (pathValueFrom, celExpr) that no release has; vigil does not accept it: give a path",
                keys.join(", ")
            )),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawGauge {
    #[serde(default, deserialize_with = "nullable")]
    path: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    labels_from_path: RawLabels,
    #[serde(default, deserialize_with = "nullable")]
    label_from_key: String,
    #[serde(default)]
    value_from: RawValueFrom,
    #[serde(default, deserialize_with = "nullable")]
    nil_is_zero: bool,
    #[serde(default, deserialize_with = "nullable")]
    value_type: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawStateSet {
    #[serde(default, deserialize_with = "nullable")]
    path: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    labels_from_path: RawLabels,
    #[serde(default, deserialize_with = "nullable")]
    label_name: String,
    #[serde(default)]
    value_from: RawValueFrom,
    #[serde(default, deserialize_with = "nullable")]
    list: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawInfo {
    #[serde(default, deserialize_with = "nullable")]
    path: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    labels_from_path: RawLabels,
    #[serde(default, deserialize_with = "nullable")]
    label_from_key: String,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    /// A map key, or an array index (negative: from the end).
    Key(String),
    /// `k=v`: in a map whose `k` is the string `v`, that value; else the key `k=v` itself.
    Eq(String, String, String),
    /// `[k=v]`: the first map in an array whose `k` matches `v`.
    Filter(String, String),
}

/// A compiled path into an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Path(Vec<Seg>);

impl Path {
    fn compile(raw: &[String], what: &str) -> Result<Path, String> {
        let mut out = Vec::with_capacity(raw.len());
        for s in raw {
            let s = s.clone();
            if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                let Some((k, v)) = inner.split_once('=') else {
                    return Err(format!(
                        "{what}: invalid list lookup {s:?} (want [key=value])"
                    ));
                };
                out.push(Seg::Filter(k.to_string(), v.to_string()));
            } else if let Some((k, v)) = s.split_once('=') {
                out.push(Seg::Eq(k.to_string(), v.to_string(), s.clone()));
            } else {
                out.push(Seg::Key(s));
            }
        }
        Ok(Path(out))
    }

    /// The value at the path; `None` where a step finds nothing (never an error, as in
    /// kube-state-metrics; an index past an array's end is nothing too).
    fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        if v.is_null() {
            return None;
        }
        let mut cur = v;
        for seg in &self.0 {
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.get(k)?,
                (Seg::Key(k), Value::Array(a)) => {
                    let i: i64 = k.parse().ok()?;
                    let i = if i < 0 { a.len() as i64 + i } else { i };
                    a.get(usize::try_from(i).ok()?)?
                }
                (Seg::Eq(k, want, whole), Value::Object(m)) => match m.get(k) {
                    Some(found @ Value::String(s)) if s == want => found,
                    _ => m.get(whole)?,
                },
                (Seg::Filter(k, want), Value::Array(a)) => a.iter().find(|e| {
                    e.as_object()
                        .and_then(|m| m.get(k))
                        .is_some_and(|x| filter_matches(x, want))
                })?,
                _ => return None,
            };
            if cur.is_null() {
                return None;
            }
        }
        Some(cur)
    }

    fn first_is(&self, key: &str) -> bool {
        matches!(self.0.first(), Some(Seg::Key(k)) if k == key)
    }

    /// The single key of a one-step path.
    fn single_key(&self) -> Option<&str> {
        match self.0.as_slice() {
            [Seg::Key(k)] => Some(k),
            _ => None,
        }
    }
}

/// `[k=v]`: the value equals `v` as text, or both convert to the same number, or `v` is a
/// boolean literal equal to a JSON boolean (kube-state-metrics' `compareValues`).
fn filter_matches(x: &Value, want: &str) -> bool {
    if let Value::String(s) = x
        && s == want
    {
        return true;
    }
    if let (Ok(a), Ok(b)) = (to_f64(x), to_f64(&Value::String(want.to_string())))
        && a == b
    {
        return true;
    }
    if let (Value::Bool(b), Some(w)) = (x, go_bool(want)) {
        return *b == w;
    }
    false
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// kube-state-metrics' `toFloat64` for a value that is there.
pub fn to_f64(v: &Value) -> Result<f64, String> {
    match v {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("expected number but was {n}")),
        Value::String(s) => {
            match s.to_ascii_lowercase().as_str() {
                "true" | "yes" => return Ok(1.0),
                "false" | "no" | "unknown" => return Ok(0.0),
                _ => {}
            }
            if let Ok(t) = s.parse::<jiff::Timestamp>()
                && looks_rfc3339(s)
            {
                return Ok(t.as_second() as f64);
            }
            if let Some(q) = Quantity::parse(s)
                && !s.trim().is_empty()
                && s.trim() == s
            {
                return Ok(q.approximate());
            }
            if let Some(n) = s.strip_suffix('%')
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
            {
                return n
                    .parse::<f64>()
                    .map(|x| x / 100.0)
                    .map_err(|e| format!("{s:?}: {e}"));
            }
            s.parse::<f64>()
                .map_err(|_| format!("expected number but was {s:?}"))
        }
        Value::Null => Err("got nil".into()),
        Value::Array(_) => Err(format!("expected number but was an array: {v}")),
        Value::Object(_) => Err(format!("expected number but was a map: {v}")),
    }
}

/// Go's `time.RFC3339` layout: a date, `T`, a time and a zone (`Z` or an offset); jiff also
/// reads forms Go's layout refuses (a space for `T`), which stay strings.
fn looks_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b't')
}

/// A value as a label value: Go's `%v` of the decoded JSON.
fn go_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => fmt_value(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Null => "<nil>".into(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_text).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut parts: Vec<(&String, String)> =
                m.iter().map(|(k, v)| (k, go_text(v))).collect();
            parts.sort();
            let parts: Vec<String> = parts.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

type LabelPaths = Vec<(String, Path)>;

fn compile_labels(raw: &RawLabels, what: &str) -> Result<LabelPaths, String> {
    raw.iter()
        .map(|(k, p)| Ok((k.clone(), Path::compile(p, &format!("{what}.{k}"))?)))
        .collect()
}

/// Resolve label paths against `v` into `out`: keys starting or ending with `*` copy a whole
/// map first (in name order), named keys after them win.
fn add_path_labels(v: &Value, paths: &LabelPaths, out: &mut BTreeMap<String, String>) {
    let star = |k: &str| k.starts_with('*') || k.ends_with('*');
    let mut stars: Vec<&(String, Path)> = paths.iter().filter(|(k, _)| star(k)).collect();
    stars.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, path) in stars {
        if let Some(Value::Object(m)) = path.get(v) {
            for (k, x) in m {
                let name = match key.strip_suffix('*') {
                    Some(prefix) => format!("{prefix}{k}"),
                    None => k.clone(),
                };
                out.insert(sanitize(&name), go_text(x));
            }
        }
    }
    for (key, path) in paths.iter().filter(|(k, _)| !star(k)) {
        if let Some(x) = path.get(v) {
            out.insert(sanitize(key), go_text(x));
        }
    }
}

#[derive(Debug, Clone)]
enum Each {
    Gauge {
        path: Path,
        labels: LabelPaths,
        label_from_key: String,
        value_from: Path,
        nil_is_zero: bool,
    },
    StateSet {
        path: Path,
        labels: LabelPaths,
        label_name: String,
        value_from: Path,
        list: Vec<String>,
    },
    Info {
        path: Path,
        labels: LabelPaths,
        label_from_key: String,
    },
}

/// One metric of a resource.
#[derive(Debug, Clone)]
struct Metric {
    family: Family,
    common: BTreeMap<String, String>,
    labels: LabelPaths,
    each: Each,
}

/// One configured resource: what to watch and how to render its objects.
#[derive(Debug, Clone)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    /// Listed across the cluster only, never per namespace (from discovery).
    pub cluster_scoped: bool,
    /// A named kind discovery did not list: its plural is the configured or English one, and
    /// its scope namespaced, until rediscovery finds its CRD.
    pub guessed: bool,
    common: BTreeMap<String, String>,
    labels: LabelPaths,
    metrics: Vec<Metric>,
}

/// A version or kind that stands for any (`*`, or left empty).
fn wild(x: &str) -> bool {
    x.is_empty() || x == "*"
}

/// A sample before the base labels join it: its own labels and its value.
type Sample = (BTreeMap<String, String>, f64);

impl Resource {
    /// `group/version` as the API names it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the version or the kind is a wildcard (`*` or empty): [`resolve`] turns it into
    /// the kinds the API server serves.
    pub fn is_wildcard(&self) -> bool {
        wild(&self.version) || wild(&self.kind)
    }

    pub fn families(&self) -> Vec<Family> {
        self.metrics.iter().map(|m| m.family).collect()
    }

    /// One object's lines, family by family.
    pub fn render(&self, obj: &Value) -> Rendered {
        let mut out = Rendered::new(self.metrics.len());
        for (i, m) in self.metrics.iter().enumerate() {
            let mut base = self.common.clone();
            base.extend(m.common.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut paths = self.labels.clone();
            for (k, p) in &m.labels {
                paths.retain(|(x, _)| x != k);
                paths.push((k.clone(), p.clone()));
            }
            add_path_labels(obj, &paths, &mut base);
            let mut samples = m.each.samples(obj, m.family.name);
            // Ordered by each sample's own labels, as kube-state-metrics sorts them.
            samples.sort_by(|a, b| cmp_labels(&a.0, &b.0));
            for (own, v) in samples {
                let mut all = base.clone();
                all.extend(own);
                let line = &mut out.per_family[i];
                line.push_str(m.family.name);
                push_labels(line, all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let _ = writeln!(line, " {}", fmt_value(v));
            }
        }
        out
    }
}

/// Names used as label names as they are written (`commonLabels` keys, `labelFromKey`,
/// `labelName`) must be valid ones.
fn label_names<'a>(what: &str, names: impl IntoIterator<Item = &'a String>) -> Result<(), String> {
    for n in names {
        if !vigil_model::names::is_legacy_label_name(n) {
            return Err(format!("{what}: {n:?} is not a valid label name"));
        }
    }
    Ok(())
}

/// An `each.<part>` that `type` names: it must be there.
fn required<'a, T>(part: &'a Option<T>, mw: &str, name: &str) -> Result<&'a T, String> {
    part.as_ref()
        .ok_or_else(|| format!("{mw}: expected each.{name} to not be nil"))
}

/// An `each.<part>`'s path and `labelsFromPath`, compiled with the part named in errors.
fn part_paths(
    mw: &str,
    name: &str,
    path: &[String],
    labels: &RawLabels,
) -> Result<(Path, LabelPaths), String> {
    Ok((
        Path::compile(path, &format!("{mw}: each.{name}.path"))?,
        compile_labels(labels, &format!("{mw}: each.{name}.labelsFromPath"))?,
    ))
}

/// kube-state-metrics' order of two label sets: pair by pair in name order, the name first,
/// then the value; a set that is a prefix of the other first.
fn cmp_labels(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> std::cmp::Ordering {
    for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
        let o = ka.cmp(kb).then_with(|| va.cmp(vb));
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

impl Each {
    fn samples(&self, obj: &Value, family: &str) -> Vec<Sample> {
        let mut out = Vec::new();
        match self {
            Each::Gauge {
                path,
                labels,
                label_from_key,
                value_from,
                nil_is_zero,
            } => {
                let v = path.get(obj);
                match v {
                    Some(Value::Object(map)) => {
                        for (key, child) in map {
                            let value = if value_from.single_key() == Some(key.as_str()) {
                                match to_f64(child) {
                                    Ok(x) => Some(x),
                                    Err(_) if child.is_null() && *nil_is_zero => Some(0.0),
                                    Err(e) => {
                                        tracing::debug!(family, key, error = %e, "kube-state: custom resource value");
                                        None
                                    }
                                }
                            } else {
                                // A value that does not convert is left out quietly here, as
                                // kube-state-metrics does for maps.
                                match value_from.get(child) {
                                    Some(x) => to_f64(x).ok(),
                                    None => nil_is_zero.then_some(0.0),
                                }
                            };
                            let Some(value) = value else { continue };
                            let mut own = BTreeMap::new();
                            if !label_from_key.is_empty() && !key.is_empty() {
                                own.insert(label_from_key.clone(), key.clone());
                            }
                            add_path_labels(child, labels, &mut own);
                            add_path_labels(v.unwrap_or(&Value::Null), labels, &mut own);
                            out.push((own, value));
                        }
                    }
                    Some(Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            let value = match value_from.get(item) {
                                Some(x) => match to_f64(x) {
                                    Ok(x) => x,
                                    Err(e) => {
                                        tracing::debug!(family, index = i, error = %e, "kube-state: custom resource value");
                                        continue;
                                    }
                                },
                                None if *nil_is_zero => 0.0,
                                None => continue,
                            };
                            let mut own = BTreeMap::new();
                            add_path_labels(item, labels, &mut own);
                            out.push((own, value));
                        }
                    }
                    _ => {
                        let value = match v.and_then(|x| value_from.get(x)) {
                            Some(x) => match to_f64(x) {
                                Ok(x) => Some(x),
                                Err(e) => {
                                    tracing::debug!(family, error = %e, "kube-state: custom resource value");
                                    None
                                }
                            },
                            None if *nil_is_zero => Some(0.0),
                            None => None,
                        };
                        if let Some(value) = value {
                            let mut own = BTreeMap::new();
                            if let Some(x) = v {
                                add_path_labels(x, labels, &mut own);
                            }
                            out.push((own, value));
                        }
                    }
                }
            }
            Each::StateSet {
                path,
                labels,
                label_name,
                value_from,
                list,
            } => {
                let v = path.get(obj);
                let elems: Vec<Option<&Value>> = match v {
                    Some(Value::Array(a)) => a.iter().map(Some).collect(),
                    other => vec![other],
                };
                for elem in elems {
                    let current = elem.and_then(|e| value_from.get(e));
                    let Some(Value::String(current)) = current else {
                        // An object without a status yet is common; anything else is worth
                        // a word in the log.
                        if !path.first_is("status") {
                            tracing::debug!(
                                family,
                                "kube-state: custom resource state set value is not a string"
                            );
                        }
                        continue;
                    };
                    for state in list {
                        let mut own = BTreeMap::new();
                        own.insert(label_name.clone(), state.clone());
                        if let Some(e) = elem {
                            add_path_labels(e, labels, &mut own);
                        }
                        out.push((own, if current == state { 1.0 } else { 0.0 }));
                    }
                }
            }
            Each::Info {
                path,
                labels,
                label_from_key,
            } => {
                let info = |x: &Value, out: &mut Vec<Sample>| {
                    let mut own = BTreeMap::new();
                    add_path_labels(x, labels, &mut own);
                    if !own.is_empty() {
                        out.push((own, 1.0));
                    }
                };
                match path.get(obj) {
                    None => {}
                    Some(Value::Array(a)) => a.iter().for_each(|e| info(e, &mut out)),
                    Some(m @ Value::Object(map)) => {
                        info(m, &mut out);
                        for (key, child) in map {
                            let mut own = BTreeMap::new();
                            if !label_from_key.is_empty() && !key.is_empty() {
                                own.insert(label_from_key.clone(), key.clone());
                            }
                            add_path_labels(child, labels, &mut own);
                            if !own.is_empty() {
                                out.push((own, 1.0));
                            }
                        }
                    }
                    Some(x) => info(x, &mut out),
                }
            }
        }
        out
    }
}

/// The configured resources as the API server serves them (at start, and again for kinds
/// that appear later): a named kind gets
/// its plural and scope from discovery (when discovery does not list it, it stays as
/// configured and namespaced, which is logged); a wildcard version or kind becomes one resource
/// per listable kind of the group that matches, with its `customresource_version` and `_kind`
/// labels, as kube-state-metrics expands it from the CRDs it sees. A kind named by an entry is
/// that entry's; of two wildcards matching one kind, the first has it. A group the server does
/// not list is logged and left out; any other discovery failure, after retries, is an error
/// (a kind silently watched at the wrong path would be worse than not starting). Named
/// entries come first in the result, then the wildcards' kinds. Kinds added to the cluster
/// later are found by running this again (`KubeState::follow_custom`).
pub async fn resolve(
    client: &kube::Client,
    resources: Vec<Resource>,
) -> Result<Vec<Resource>, String> {
    resolve_logged(client, resources, true).await
}

/// [`resolve`] again, as it runs every rediscovery interval: what it finds is logged by the
/// caller only when it is new.
pub async fn resolve_quietly(
    client: &kube::Client,
    resources: Vec<Resource>,
) -> Result<Vec<Resource>, String> {
    resolve_logged(client, resources, false).await
}

async fn resolve_logged(
    client: &kube::Client,
    resources: Vec<Resource>,
    log: bool,
) -> Result<Vec<Resource>, String> {
    let (wildcards, named): (Vec<Resource>, Vec<Resource>) =
        resources.into_iter().partition(Resource::is_wildcard);
    let mut out: Vec<Resource> = Vec::new();
    for mut r in named {
        // The plural and scope as kube-state-metrics takes them from the kind's CRD.
        let gvk = kube::api::GroupVersionKind::gvk(&r.group, &r.version, &r.kind);
        let what = format!("{}/{} {}", r.group, r.version, r.kind);
        match discovered(&what, || kube::discovery::pinned_kind(client, &gvk)).await? {
            Some((ar, caps)) => {
                r.plural = ar.plural;
                r.cluster_scoped = caps.scope == kube::discovery::Scope::Cluster;
                r.guessed = false;
            }
            None => {
                r.guessed = true;
                if log {
                    tracing::warn!(group = %r.group, version = %r.version, kind = %r.kind, plural = %r.plural, "kube-state: the API server does not list this custom kind; watching it, as namespaced, by the configured or English plural");
                }
            }
        }
        out.push(r);
    }
    for r in wildcards {
        let what = format!("group {:?}", r.group);
        let Some(group) = discovered(&what, || kube::discovery::group(client, &r.group)).await?
        else {
            if log {
                tracing::warn!(group = %r.group, version = %r.version, kind = %r.kind, "kube-state: the API server does not serve this group; its wildcard entry watches nothing until the group appears");
            }
            continue;
        };
        let mut found = 0;
        for v in group.versions() {
            if !wild(&r.version) && v != r.version {
                continue;
            }
            for (ar, caps) in group.versioned_resources(v) {
                let listable = caps.supports_operation(kube::discovery::verbs::LIST)
                    && caps.supports_operation(kube::discovery::verbs::WATCH);
                if !listable || (!wild(&r.kind) && ar.kind != r.kind) {
                    continue;
                }
                if out
                    .iter()
                    .any(|o| o.group == ar.group && o.version == ar.version && o.kind == ar.kind)
                {
                    continue;
                }
                let mut one = r.clone();
                one.version = ar.version.clone();
                one.kind = ar.kind.clone();
                one.plural = ar.plural.clone();
                one.cluster_scoped = caps.scope == kube::discovery::Scope::Cluster;
                one.common
                    .insert("customresource_version".into(), ar.version.clone());
                one.common
                    .insert("customresource_kind".into(), ar.kind.clone());
                out.push(one);
                found += 1;
            }
        }
        if log {
            tracing::info!(group = %r.group, version = %r.version, kind = %r.kind, kinds = found, "kube-state: wildcard custom resource resolved at start");
        }
    }
    Ok(out)
}

/// A discovery call, with failures other than "not served" (a 404, a group or kind the server
/// does not list) retried for about 30 s and then an error naming `what`: `Ok(None)` when the
/// server does not serve it.
async fn discovered<T, F, Fut>(what: &str, mut call: F) -> Result<Option<T>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    use kube::error::DiscoveryError as D;
    let mut tries = 0;
    loop {
        match call().await {
            Ok(x) => return Ok(Some(x)),
            Err(kube::Error::Discovery(
                D::MissingApiGroup(_) | D::MissingKind(_) | D::MissingResource(_),
            )) => return Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
            Err(e) if tries >= 4 => {
                return Err(format!("custom resource state: discovering {what}: {e}"));
            }
            Err(e) => {
                tries += 1;
                tracing::warn!(what, error = %e, "kube-state: discovery failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1 << tries)).await;
            }
        }
    }
}

/// A kind's plural as kubebuilder names it (flect's common rules): what kube-state-metrics
/// falls back to when neither `resourcePlural` nor a CRD gives one.
pub fn pluralize(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    let consonant_y = k.len() >= 2
        && k.ends_with('y')
        && !matches!(k.as_bytes()[k.len() - 2], b'a' | b'e' | b'i' | b'o' | b'u');
    if consonant_y {
        format!("{}ies", &k[..k.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"].iter().any(|s| k.ends_with(s)) {
        format!("{k}es")
    } else {
        format!("{k}s")
    }
}

fn leak(s: String) -> &'static str {
    // Names and help texts come from the config read once at start; they live as long as the
    // families that print them.
    Box::leak(s.into_boxed_str())
}

/// Read a custom resource state config (YAML); every resource compiled, or an error naming
/// the resource and field at fault.
pub fn parse(yaml: &str) -> Result<Vec<Resource>, String> {
    if yaml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let raw: RawConfig =
        serde_saphyr::from_str(yaml).map_err(|e| format!("custom resource state config: {e}"))?;
    let mut out: Vec<Resource> = Vec::new();
    for (i, r) in raw.spec.resources.into_iter().enumerate() {
        let gvk = &r.group_version_kind;
        let what = format!(
            "spec.resources[{i}] ({}/{} {})",
            gvk.group, gvk.version, gvk.kind
        );
        if gvk.group.is_empty() || gvk.group == "*" {
            return Err(format!("{what}: groupVersionKind.group is required"));
        }
        let plural = if r.resource_plural.is_empty() {
            pluralize(&gvk.kind)
        } else {
            r.resource_plural.clone()
        };
        if !wild(&gvk.version)
            && !wild(&gvk.kind)
            && out
                .iter()
                .any(|o| o.group == gvk.group && o.version == gvk.version && o.kind == gvk.kind)
        {
            return Err(format!("{what}: the same kind is configured twice"));
        }
        let prefix = r
            .metric_name_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        let mut common: BTreeMap<String, String> = r
            .common_labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        label_names(&format!("{what}: commonLabels"), common.keys())?;
        common.insert("customresource_group".into(), gvk.group.clone());
        common.insert("customresource_version".into(), gvk.version.clone());
        common.insert("customresource_kind".into(), gvk.kind.clone());
        let labels = compile_labels(&r.labels_from_path, &format!("{what}: labelsFromPath"))?;
        let mut metrics = Vec::new();
        for (j, g) in r.metrics.iter().enumerate() {
            let mw = format!("{what}: metrics[{j}] ({})", g.name);
            if g.name.is_empty() {
                return Err(format!("{mw}: name is required"));
            }
            let name = if prefix.is_empty() {
                g.name.clone()
            } else {
                format!("{prefix}_{}", g.name)
            };
            // A name Prometheus cannot read would spoil the whole page, built-in families too.
            if !vigil_model::names::is_legacy_metric_name(&name) {
                return Err(format!("{mw}: {name:?} is not a valid metric name"));
            }
            label_names(&format!("{mw}: commonLabels"), g.common_labels.keys())?;
            let each = match g.each.kind.to_ascii_lowercase().as_str() {
                "gauge" => {
                    let x = required(&g.each.gauge, &mw, "gauge")?;
                    if !x.value_type.is_empty() {
                        return Err(format!(
                            "{mw}: each.gauge.valueType {:?}: a field proposed for kube-state-metrics that no release has; vigil does not accept it",
                            x.value_type
                        ));
                    }
                    let (path, labels) = part_paths(&mw, "gauge", &x.path, &x.labels_from_path)?;
                    Each::Gauge {
                        path,
                        labels,
                        label_from_key: x.label_from_key.clone(),
                        value_from: x.value_from.path(&format!("{mw}: each.gauge.valueFrom"))?,
                        nil_is_zero: x.nil_is_zero,
                    }
                }
                "stateset" => {
                    let x = required(&g.each.state_set, &mw, "stateSet")?;
                    let (path, labels) = part_paths(&mw, "stateSet", &x.path, &x.labels_from_path)?;
                    Each::StateSet {
                        path,
                        labels,
                        label_name: x.label_name.clone(),
                        value_from: x
                            .value_from
                            .path(&format!("{mw}: each.stateSet.valueFrom"))?,
                        list: x.list.clone(),
                    }
                }
                "info" => {
                    let x = required(&g.each.info, &mw, "info")?;
                    let (path, labels) = part_paths(&mw, "info", &x.path, &x.labels_from_path)?;
                    Each::Info {
                        path,
                        labels,
                        label_from_key: x.label_from_key.clone(),
                    }
                }
                other => return Err(format!("{mw}: unknown metric type {other:?}")),
            };
            match &each {
                Each::Gauge { label_from_key, .. } | Each::Info { label_from_key, .. }
                    if !label_from_key.is_empty() =>
                {
                    label_names(&format!("{mw}: labelFromKey"), [label_from_key])?;
                }
                Each::StateSet { label_name, .. } => {
                    label_names(&format!("{mw}: each.stateSet.labelName"), [label_name])?;
                }
                _ => {}
            }
            metrics.push(Metric {
                // Text format: kube-state-metrics writes info and state set families as
                // gauges there (OpenMetrics keeps their own types).
                family: Family {
                    name: leak(name),
                    kind: "gauge",
                    help: leak(crate::exposition::escape_help(&g.help).into_owned()),
                },
                common: g
                    .common_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                labels: compile_labels(&g.labels_from_path, &format!("{mw}: labelsFromPath"))?,
                each,
            });
        }
        out.push(Resource {
            group: gvk.group.clone(),
            version: gvk.version.clone(),
            kind: gvk.kind.clone(),
            plural,
            cluster_scoped: false,
            guessed: false,
            common,
            labels,
            metrics,
        });
    }
    Ok(out)
}

#[cfg(test)]
impl Path {
    fn of(segs: &[&str]) -> Path {
        let raw: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
        Path::compile(&raw, "test").unwrap()
    }
}

#[cfg(test)]
mod tests;
