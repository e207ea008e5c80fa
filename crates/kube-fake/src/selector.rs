//! Label and field selectors as the API server evaluates them (server side, as real clients
//! rely on).

use serde_json::Value;

enum Term {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A `labelSelector`: terms joined by `,` (commas inside `( )` belong to set terms).
pub struct Labels(Vec<Term>);

fn split_terms(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn set(v: &str) -> Result<Vec<String>, String> {
    let v = v.trim();
    let inner = v
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: expected ( ... ) in {v:?}"))?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).collect())
}

impl Labels {
    pub fn parse(s: &str) -> Result<Labels, String> {
        let mut terms = Vec::new();
        for t in split_terms(s) {
            terms.push(if let Some((k, v)) = t.split_once(" notin ") {
                Term::NotIn(k.trim().into(), set(v)?)
            } else if let Some((k, v)) = t.split_once(" in ") {
                Term::In(k.trim().into(), set(v)?)
            } else if let Some((k, v)) = t.split_once("!=") {
                Term::Ne(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once("==") {
                Term::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once('=') {
                Term::Eq(k.trim().into(), v.trim().into())
            } else if let Some(k) = t.strip_prefix('!') {
                Term::NotExists(k.trim().into())
            } else {
                Term::Exists(t)
            });
        }
        Ok(Labels(terms))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(|v| v.as_str());
        self.0.iter().all(|t| match t {
            Term::Eq(k, v) => get(k) == Some(v.as_str()),
            Term::Ne(k, v) => get(k) != Some(v.as_str()),
            Term::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Term::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Term::Exists(k) => get(k).is_some(),
            Term::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A `fieldSelector` over the fields real servers index for the served kinds.
pub struct Fields(Vec<(String, bool, String)>);

const FIELDS: [&str; 4] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
];

impl Fields {
    pub fn parse(s: &str) -> Result<Fields, String> {
        let mut out = Vec::new();
        for t in split_terms(s) {
            let (k, eq, v) = if let Some((k, v)) = t.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = t.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = t.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: {t:?}; can't understand '{t}'"));
            };
            let k = k.trim();
            if !FIELDS.contains(&k) {
                return Err(format!("field label not supported: {k}"));
            }
            out.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(Fields(out))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, v)| {
            let mut cur = obj;
            for part in path.split('.') {
                cur = &cur[part];
            }
            (cur.as_str().unwrap_or("") == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_as_the_api_server() {
        let o = json!({"metadata": {"name": "a", "labels": {"app": "x", "tier": "web"}},
                       "spec": {"nodeName": "n1"}});
        let m = |s: &str| Labels::parse(s).unwrap().matches(&o);
        assert!(m("app=x"));
        assert!(m("app==x,tier"));
        assert!(!m("app!=x"));
        assert!(m("app in (x, y),!missing"));
        assert!(!m("tier notin (web)"));
        let f = |s: &str| Fields::parse(s).unwrap().matches(&o);
        assert!(f("spec.nodeName=n1,metadata.name!=b"));
        assert!(!f("metadata.name=b"));
        assert!(Fields::parse("spec.foo=1").is_err());
    }
}
