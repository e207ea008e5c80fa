//! The config re-serialised: YAML read into an ordered tree and written back, so what is
//! shown (`/api/v1/status/config`) carries the values and their order but none of the file's
//! comments, which can hold credentials. Secrets are masked in the text before this runs.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A YAML value with mapping order kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Node::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = a.next_entry()? {
            v.push((k, x));
        }
        Ok(Node::Map(v))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::UInt(u) => s.serialize_u64(*u),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(t) => s.serialize_str(t),
            Node::Seq(v) => {
                let mut q = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    q.serialize_element(x)?;
                }
                q.end()
            }
            Node::Map(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    m.serialize_entry(k, x)?;
                }
                m.end()
            }
        }
    }
}

/// `text` read and written back as YAML: same values and order, no comments.
pub fn reserialize(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    // Only `true`/`false` are booleans, as the configuration reads its fields (`env: yes`
    // is the label value "yes", and is shown so).
    let mut opts = serde_saphyr::Options::default();
    opts.strict_booleans = true;
    let node: Node = serde_saphyr::from_str_with_options(text, opts).map_err(|e| e.to_string())?;
    if node == Node::Null {
        return Ok(String::new());
    }
    serde_saphyr::to_string(&node).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_booleans_stay_words() {
        let out = reserialize("global:\n  external_labels:\n    env: yes\n    on: n\n  x: true\n")
            .unwrap();
        assert!(
            out.contains("env: 'yes'") || out.contains("env: \"yes\""),
            "{out}"
        );
        assert!(!out.contains("env: true"), "{out}");
        assert!(out.contains("x: true"), "{out}");
    }

    #[test]
    fn comments_go_values_and_order_stay() {
        let y = "# password: hunter2 in a comment\nglobal:\n  scrape_interval: 15s # why\nscrape_configs:\n  - job_name: b\n    static_configs: [{targets: ['a:1']}]\n  - job_name: a\n    honor_labels: true\n";
        let out = reserialize(y).unwrap();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains('#'), "{out}");
        assert!(
            out.find("job_name: b").unwrap() < out.find("job_name: a").unwrap(),
            "{out}"
        );
        let back: Node = serde_saphyr::from_str(&out).unwrap();
        let orig: Node = serde_saphyr::from_str(y).unwrap();
        assert_eq!(back, orig);
    }
}
