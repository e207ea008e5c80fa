//! Relabeling with Prometheus's semantics: rules applied in order to a label set, each able
//! to rewrite it or drop it.

use md5::{Digest, Md5};
use regex::Regex;

use crate::labels::{Labels, LabelsBuilder};
use crate::names::NameValidation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    /// Case-insensitive, as Prometheus accepts it.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            _ => return None,
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// A regex anchored at both ends, as Prometheus anchors relabel regexes; keeps its source.
///
/// The pattern is RE2 syntax as Prometheus (Go) reads it; where Rust's `regex` differs, the
/// source is translated first (see [`go_compatible`]): `\d`, `\w`, `\s`, `\b` are ASCII
/// classes as in Go, `\Q...\E` quotes, and a `[` inside a class is a literal.
#[derive(Clone)]
pub struct RelabelRegex {
    src: String,
    re: Regex,
}

impl RelabelRegex {
    pub fn new(src: &str) -> Result<Self, regex::Error> {
        Ok(RelabelRegex {
            src: src.to_string(),
            re: Regex::new(&format!("^(?s:{})$", go_compatible(src)))?,
        })
    }

    /// Write `template` to `dst` with `$1`, `${1}`, `$name`, `${name}` replaced by the
    /// captures of `caps`, exactly as Go's `Regexp.ExpandString`: a name is the longest run
    /// of letters, digits and `_` (`$1x` is the group named `1x`), `$$` is a `$`, a number
    /// with a leading zero is a name, unknown or unmatched groups expand to nothing, and a `$`
    /// not followed by a valid reference is kept.
    pub fn expand(&self, caps: &regex::Captures<'_>, template: &str, dst: &mut String) {
        let mut rest = template;
        while let Some(i) = rest.find('$') {
            dst.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('$') {
                dst.push('$');
                rest = r;
                continue;
            }
            let Some((name, after)) = template_ref(rest) else {
                dst.push('$');
                continue;
            };
            rest = after;
            let group = match template_number(name) {
                Some(n) => caps.get(n),
                None => self
                    .re
                    .capture_names()
                    .position(|n| n == Some(name))
                    .and_then(|i| caps.get(i)),
            };
            if let Some(m) = group {
                dst.push_str(m.as_str());
            }
        }
        dst.push_str(rest);
    }

    pub fn as_str(&self) -> &str {
        &self.src
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    pub fn regex(&self) -> &Regex {
        &self.re
    }
}

/// The reference at the start of `s` (just after a `$`): its name and the text after it,
/// as Go's `regexp.extract`.
fn template_ref(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    if braced {
        let after = body[end..].strip_prefix('}')?;
        Some((name, after))
    } else {
        Some((name, &body[end..]))
    }
}

/// A reference's group number: ASCII digits without a leading zero (Go's rule).
fn template_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let n: usize = name.parse().ok()?;
    (n < 100_000_000).then_some(n)
}

/// Translate an RE2 pattern (Go's `regexp`) into Rust `regex` syntax with the same meaning:
/// Perl classes and word boundaries are ASCII-only in Go but Unicode-aware in Rust; `\Q...\E`
/// exists only in Go; inside a bracket class Go reads `[` (except `[:name:]`), `&&` and `~~`
/// literally where Rust would nest or combine classes.
pub fn go_compatible(src: &str) -> String {
    const DIGIT: &str = "0-9";
    const WORD: &str = "0-9A-Za-z_";
    const SPACE: &str = "\\t\\n\\x0C\\r ";
    let mut out = String::with_capacity(src.len() + 16);
    let mut in_class = false;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (n, in_class) {
                    ('d', false) => out.push_str(&format!("[{DIGIT}]")),
                    ('D', false) => out.push_str(&format!("[^{DIGIT}]")),
                    ('w', false) => out.push_str(&format!("[{WORD}]")),
                    ('W', false) => out.push_str(&format!("[^{WORD}]")),
                    ('s', false) => out.push_str(&format!("[{SPACE}]")),
                    ('S', false) => out.push_str(&format!("[^{SPACE}]")),
                    ('d', true) => out.push_str(DIGIT),
                    ('w', true) => out.push_str(WORD),
                    ('s', true) => out.push_str(SPACE),
                    // Negated classes inside a class: Rust nests classes (a union).
                    ('D', true) => out.push_str(&format!("[^{DIGIT}]")),
                    ('W', true) => out.push_str(&format!("[^{WORD}]")),
                    ('S', true) => out.push_str(&format!("[^{SPACE}]")),
                    ('b', false) => out.push_str("(?-u:\\b)"),
                    ('B', false) => out.push_str("(?-u:\\B)"),
                    ('Q', _) => {
                        let mut lit = String::new();
                        while let Some(q) = chars.next() {
                            if q == '\\' && chars.peek() == Some(&'E') {
                                chars.next();
                                break;
                            }
                            lit.push(q);
                        }
                        if in_class {
                            for q in lit.chars() {
                                out.push_str(&regex::escape(&q.to_string()));
                            }
                        } else {
                            out.push_str(&regex::escape(&lit));
                        }
                    }
                    (n, _) => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` first in the class is a literal in both dialects.
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' => {
                if chars.peek() == Some(&':') {
                    // `[:alpha:]`: the same in both; copy through `:]`.
                    out.push('[');
                    let mut prev = ' ';
                    for q in chars.by_ref() {
                        out.push(q);
                        if prev == ':' && q == ']' {
                            break;
                        }
                        prev = q;
                    }
                } else {
                    out.push_str("\\[");
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class && chars.peek() == Some(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new("(.*)").unwrap_or_else(|_| unreachable!("constant regex"))
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, o: &Self) -> bool {
        self.src == o.src
    }
}

impl std::fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.src)
    }
}

/// One compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
    /// Which names a `replace` may write: an expanded target outside them leaves the set
    /// as it is (the scrape config's `metric_name_validation_scheme`).
    pub validation: NameValidation,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: vec![],
            separator: ";".into(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".into(),
            action: Action::Replace,
            validation: NameValidation::Utf8,
        }
    }
}

fn source_value(lb: &LabelsBuilder, rule: &RelabelConfig) -> String {
    let mut out = String::new();
    for (i, n) in rule.source_labels.iter().enumerate() {
        if i > 0 {
            out.push_str(&rule.separator);
        }
        out.push_str(lb.get(n).unwrap_or(""));
    }
    out
}

/// Go's `strings.ToLower`: one rune for one rune (simple case mapping). Rust's full mapping
/// differs only where one character lowers to several (`İ`), where Go keeps the first.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

/// Go's `strings.ToUpper`: one rune for one rune; characters whose uppercase is several
/// characters (`ß`, ligatures) have no simple mapping and stay as they are, as in Go.
fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// Apply one rule; false when the label set is to be dropped.
pub fn apply(lb: &mut LabelsBuilder, rule: &RelabelConfig) -> bool {
    let val = source_value(lb, rule);
    match rule.action {
        Action::Drop => {
            if rule.regex.is_match(&val) {
                return false;
            }
        }
        Action::Keep => {
            if !rule.regex.is_match(&val) {
                return false;
            }
        }
        Action::DropEqual => {
            if lb.get(&rule.target_label).unwrap_or("") == val {
                return false;
            }
        }
        Action::KeepEqual => {
            if lb.get(&rule.target_label).unwrap_or("") != val {
                return false;
            }
        }
        Action::Replace => {
            // Prometheus's fast path: nothing to match or expand, so set (or, with an empty
            // replacement, delete) the target as written.
            if val.is_empty()
                && rule.regex.as_str() == "(.*)"
                && !rule.target_label.contains('$')
                && !rule.replacement.contains('$')
            {
                lb.set(rule.target_label.clone(), rule.replacement.clone());
                return true;
            }
            let Some(caps) = rule.regex.regex().captures(&val) else {
                return true;
            };
            let mut target = String::new();
            rule.regex.expand(&caps, &rule.target_label, &mut target);
            if !rule.validation.label_name_ok(&target) {
                return true;
            }
            let mut res = String::new();
            rule.regex.expand(&caps, &rule.replacement, &mut res);
            if res.is_empty() {
                lb.del(&target);
            } else {
                lb.set(target, res);
            }
        }
        Action::Lowercase => {
            lb.set(rule.target_label.clone(), go_lower(&val));
        }
        Action::Uppercase => {
            lb.set(rule.target_label.clone(), go_upper(&val));
        }
        Action::HashMod => {
            let digest = Md5::digest(val.as_bytes());
            let mut last8 = [0u8; 8];
            last8.copy_from_slice(&digest[8..16]);
            let m = if rule.modulus == 0 {
                0
            } else {
                u64::from_be_bytes(last8) % rule.modulus
            };
            lb.set(rule.target_label.clone(), m.to_string());
        }
        Action::LabelMap => {
            let add: Vec<(String, String)> = lb
                .iter()
                .filter_map(|l| {
                    let caps = rule.regex.regex().captures(&l.name)?;
                    let mut n = String::new();
                    rule.regex.expand(&caps, &rule.replacement, &mut n);
                    Some((n, l.value.clone()))
                })
                .collect();
            for (n, v) in add {
                lb.set(n, v);
            }
        }
        Action::LabelDrop => {
            lb.retain(|l| !rule.regex.is_match(&l.name));
        }
        Action::LabelKeep => {
            lb.retain(|l| rule.regex.is_match(&l.name));
        }
    }
    true
}

/// Apply all rules in order; `None` when dropped.
pub fn process(labels: &Labels, rules: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = labels.builder();
    for r in rules {
        if !apply(&mut lb, r) {
            return None;
        }
    }
    Some(lb.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(p.iter().copied())
    }

    fn rule(action: Action, src: &[&str], regex: &str, target: &str, repl: &str) -> RelabelConfig {
        RelabelConfig {
            source_labels: src.iter().map(|s| s.to_string()).collect(),
            regex: RelabelRegex::new(regex).unwrap(),
            target_label: target.into(),
            replacement: repl.into(),
            action,
            ..Default::default()
        }
    }

    #[test]
    fn replace_expands_and_deletes() {
        let base = l(&[("a", "foo"), ("b", "bar")]);
        let r = rule(
            Action::Replace,
            &["a", "b"],
            "f(.*);(.*)r",
            "c",
            "ch${1}-$2",
        );
        assert_eq!(process(&base, &[r]).unwrap().get("c"), Some("choo-ba"));
        // No match: unchanged.
        let r = rule(Action::Replace, &["a"], "x.*", "c", "$1");
        assert_eq!(process(&base, &[r]).unwrap(), base);
        // Empty result deletes the target.
        let r = rule(Action::Replace, &["missing"], "(.*)", "a", "$1");
        assert_eq!(process(&base, &[r]).unwrap().get("a"), None);
        // `$1x` names group "1x", which does not exist: empty.
        let r = rule(Action::Replace, &["a"], "(.*)", "c", "$1x");
        assert_eq!(process(&base, &[r]).unwrap().get("c"), None);
        // Target label from a capture; names outside the rule's validation scheme are
        // skipped: under legacy names `1bar`, under UTF-8 (Prometheus 3's default) only "".
        let r = rule(Action::Replace, &["a"], "(.*)", "t_$1", "v");
        assert_eq!(process(&base, &[r]).unwrap().get("t_foo"), Some("v"));
        let mut r = rule(Action::Replace, &["b"], "(.*)", "1$1", "v");
        assert_eq!(process(&base, &[r.clone()]).unwrap().get("1bar"), Some("v"));
        r.validation = NameValidation::Legacy;
        assert_eq!(process(&base, &[r]).unwrap(), base);
        let r = rule(Action::Replace, &["missing"], "(.*)", "$1", "v");
        assert_eq!(process(&base, &[r]).unwrap(), base);
        // Regexes are anchored.
        let r = rule(Action::Replace, &["a"], "o+", "c", "x");
        assert_eq!(process(&base, &[r]).unwrap().get("c"), None);
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let base = l(&[("a", "foo"), ("b", "foo"), ("c", "x")]);
        assert!(process(&base, &[rule(Action::Keep, &["a"], "f.*", "", "")]).is_some());
        assert!(process(&base, &[rule(Action::Keep, &["a"], "x.*", "", "")]).is_none());
        assert!(process(&base, &[rule(Action::Drop, &["a"], "f.*", "", "")]).is_none());
        assert!(
            process(&base, &[rule(Action::Keep, &["missing"], "", "", "")]).is_some(),
            "missing label matches empty"
        );
        assert!(process(&base, &[rule(Action::KeepEqual, &["a"], "", "b", "")]).is_some());
        assert!(process(&base, &[rule(Action::KeepEqual, &["a"], "", "c", "")]).is_none());
        assert!(process(&base, &[rule(Action::DropEqual, &["a"], "", "b", "")]).is_none());
        assert!(process(&base, &[rule(Action::DropEqual, &["a"], "", "c", "")]).is_some());
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // python3: int.from_bytes(hashlib.md5(b"foo").digest()[8:], "big") % 1000 == 696
        let base = l(&[("a", "foo")]);
        let mut r = rule(Action::HashMod, &["a"], "", "h", "");
        r.modulus = 1000;
        assert_eq!(process(&base, &[r]).unwrap().get("h"), Some("696"));
    }

    #[test]
    fn hashmod_more_known_values() {
        // python3: int.from_bytes(hashlib.md5(v).digest()[8:], "big") % m
        //   b""              % 8     == 6
        //   b"10.1.0.5:9113" % 8     == 4
        //   b"a;b"           % 2**63 == 2420134994223480074
        let base = l(&[("a", "a"), ("b", "b"), ("addr", "10.1.0.5:9113")]);
        for (src, m, want) in [
            (vec!["missing"], 8, "6"),
            (vec!["addr"], 8, "4"),
            (vec!["a", "b"], 1 << 63, "2420134994223480074"),
        ] {
            let mut r = rule(Action::HashMod, &src, "", "h", "");
            r.modulus = m;
            assert_eq!(
                process(&base, &[r]).unwrap().get("h"),
                Some(want),
                "{src:?}"
            );
        }
    }

    #[test]
    fn expansion_follows_go() {
        let re = RelabelRegex::new("(?P<first>a)(b)?(c)").unwrap();
        let caps = re.regex().captures("ac").unwrap();
        let exp = |t: &str| {
            let mut s = String::new();
            re.expand(&caps, t, &mut s);
            s
        };
        assert_eq!(exp("${1}x"), "ax");
        assert_eq!(exp("$1x"), "", "group named 1x");
        assert_eq!(exp("$first-$3"), "a-c");
        assert_eq!(exp("${first}"), "a");
        assert_eq!(exp("$2"), "", "unmatched group");
        assert_eq!(exp("$9"), "", "no such group");
        assert_eq!(exp("$$1"), "$1");
        assert_eq!(exp("$01"), "", "a leading zero makes a name");
        assert_eq!(exp("x$"), "x$");
        assert_eq!(exp("$-"), "$-");
        assert_eq!(exp("${1"), "${1", "unclosed brace is literal");
        assert_eq!(exp("${a-b}"), "${a-b}", "invalid name is literal");
    }

    #[test]
    fn regexes_mean_what_they_mean_in_go() {
        let m = |re: &str, s: &str| RelabelRegex::new(re).unwrap().is_match(s);
        // Perl classes are ASCII in RE2.
        assert!(m(r"\d+", "42"));
        assert!(!m(r"\d", "\u{663}"), "Arabic-Indic three is not \\d in Go");
        assert!(!m(r"\w", "\u{e9}"));
        assert!(m(r"[\w.]+", "a_b.c"));
        assert!(m(r"[^\d]", "x") && !m(r"[^\d]", "7"));
        assert!(m(r"\s", "\t") && !m(r"\s", "\u{a0}"));
        // ASCII word boundary: `é` is not a word character in Go, so `foo` starts a word.
        assert!(m(r".*\bfoo\b.*", "a foo b") && m(r".*\bfoo\b.*", "\u{e9}foo"));
        assert!(!m(r".*\bfoo\b.*", "xfoo"));
        // Go-only syntax and Go literals inside classes.
        assert!(m(r"\Qa.b\E", "a.b") && !m(r"\Qa.b\E", "axb"));
        assert!(m(r"[[]", "["));
        assert!(m(r"[a&&b]", "&"));
        assert!(m(r"[[:alpha:]]+", "abc"));
        assert!(m(r"[]a]", "]"));
        // Anchored, and `.` crosses newlines as Prometheus's `(?s:...)` makes it.
        assert!(m("a.b", "a\nb") && !m("a", "ba"));
        // The kiamol chapter 14 port rule.
        let re = RelabelRegex::new(r"true;([^:]+)(?::\d+)?;(\d+)").unwrap();
        let caps = re.regex().captures("true;10.1.0.5:80;9113").unwrap();
        let mut s = String::new();
        re.expand(&caps, "$1:$2", &mut s);
        assert_eq!(s, "10.1.0.5:9113");
    }

    #[test]
    fn replace_fast_path_and_case_mapping_like_go() {
        let base = l(&[("a", "x")]);
        // Empty source value, default regex, no `$`: set as written (even an empty source).
        let r = rule(Action::Replace, &[], "(.*)", "static", "value");
        assert_eq!(process(&base, &[r]).unwrap().get("static"), Some("value"));
        let r = rule(Action::Replace, &[], "(.*)", "a", "");
        assert_eq!(
            process(&base, &[r]).unwrap().get("a"),
            None,
            "empty deletes"
        );
        let b = l(&[("s", "\u{130}STANBUL stra\u{df}e")]);
        let lo = process(&b, &[rule(Action::Lowercase, &["s"], "", "t", "")]).unwrap();
        assert_eq!(lo.get("t"), Some("istanbul stra\u{df}e"));
        let up = process(&b, &[rule(Action::Uppercase, &["s"], "", "t", "")]).unwrap();
        assert_eq!(
            up.get("t"),
            Some("\u{130}STANBUL STRA\u{df}E"),
            "ß has no simple uppercase"
        );
    }

    #[test]
    fn label_name_actions_and_case() {
        let base = l(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_x", "y"),
            ("keep_me", "1"),
        ]);
        let r = rule(
            Action::LabelMap,
            &[],
            "__meta_kubernetes_pod_label_(.+)",
            "",
            "$1",
        );
        let out = process(&base, &[r]).unwrap();
        assert_eq!(out.get("app"), Some("web"));
        assert_eq!(
            out.get("__meta_kubernetes_pod_label_app"),
            Some("web"),
            "labelmap keeps the original"
        );
        let out = process(&base, &[rule(Action::LabelDrop, &[], "__meta_.*", "", "")]).unwrap();
        assert_eq!(out, l(&[("keep_me", "1")]));
        let out = process(
            &base,
            &[rule(Action::LabelKeep, &[], "__meta_x|keep_me", "", "")],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        let b2 = l(&[("a", "MiXeD")]);
        assert_eq!(
            process(&b2, &[rule(Action::Lowercase, &["a"], "", "lo", "")])
                .unwrap()
                .get("lo"),
            Some("mixed")
        );
        assert_eq!(
            process(&b2, &[rule(Action::Uppercase, &["a"], "", "up", "")])
                .unwrap()
                .get("up"),
            Some("MIXED")
        );
    }
}
