//! Metric and label names as current Prometheus defines them: which names are valid under
//! each validation scheme, and how a name is escaped for a reader that only takes the classic
//! (legacy) names, and unescaped again.
//!
//! Prometheus 3 takes any non-empty UTF-8 name (`utf8`, the default) unless a scrape config
//! asks for the classic rules (`legacy`: `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names,
//! `[a-zA-Z_][a-zA-Z0-9_]*` for label names). A reader that does not ask for UTF-8 names
//! (no `escaping=allow-utf-8` in its Accept header) gets them escaped: `underscores` by default,
//! or `dots` / `values` when it asks. In the text formats, a name that is not a classic one is
//! written quoted: `{"my.metric","label.name"="v"} 1`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Which names a scrape accepts (`metric_name_validation_scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// Any non-empty UTF-8 name (Prometheus 3's default).
    #[default]
    Utf8,
    /// The classic character sets only.
    Legacy,
}

impl NameValidation {
    /// From the config's spelling (`utf8`, `legacy`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "utf8" => Some(NameValidation::Utf8),
            "legacy" => Some(NameValidation::Legacy),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NameValidation::Utf8 => "utf8",
            NameValidation::Legacy => "legacy",
        }
    }

    pub fn metric_name_ok(self, s: &str) -> bool {
        match self {
            NameValidation::Utf8 => !s.is_empty(),
            NameValidation::Legacy => is_legacy_metric_name(s),
        }
    }

    pub fn label_name_ok(self, s: &str) -> bool {
        match self {
            NameValidation::Utf8 => !s.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(s),
        }
    }
}

/// How names that are not classic ones are presented to a reader that does not take them
/// (`metric_name_escaping_scheme`, and the `escaping=` term of a media type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameEscaping {
    /// Names as they are (`allow-utf-8`).
    AllowUtf8,
    /// Every character outside the classic set becomes `_` (`underscores`).
    Underscores,
    /// `.` becomes `_dot_`, `_` becomes `__`, other characters outside the set `__` (`dots`).
    Dots,
    /// `U__` and the name with `_` doubled and other characters as `_<hex code point>_`
    /// (`values`): the one scheme that can be undone exactly.
    Values,
}

impl NameEscaping {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow-utf-8" => Some(NameEscaping::AllowUtf8),
            "underscores" => Some(NameEscaping::Underscores),
            "dots" => Some(NameEscaping::Dots),
            "values" => Some(NameEscaping::Values),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NameEscaping::AllowUtf8 => "allow-utf-8",
            NameEscaping::Underscores => "underscores",
            NameEscaping::Dots => "dots",
            NameEscaping::Values => "values",
        }
    }
}

/// A classic metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_legacy_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.iter().enumerate().all(|(i, &c)| legacy_metric_byte(c, i))
}

/// A classic label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn legacy_metric_byte(c: u8, i: usize) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || (i > 0 && c.is_ascii_digit())
}

fn legacy_metric_char(c: char, i: usize) -> bool {
    c.is_ascii() && legacy_metric_byte(c as u8, i)
}

/// `name` as `scheme` presents it. As Prometheus, the test for "needs escaping" is the
/// metric-name one for label names too (so a label name with `:` passes unchanged), and `dots`
/// rewrites even classic names (their `_` doubles) so it can be undone.
pub fn escape_name(name: &str, scheme: NameEscaping) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(name);
    }
    match scheme {
        NameEscaping::AllowUtf8 => Cow::Borrowed(name),
        NameEscaping::Underscores => {
            if is_legacy_metric_name(name) {
                return Cow::Borrowed(name);
            }
            Cow::Owned(
                name.chars()
                    .enumerate()
                    .map(|(i, c)| if legacy_metric_char(c, i) { c } else { '_' })
                    .collect(),
            )
        }
        NameEscaping::Dots => {
            let mut out = String::with_capacity(name.len() + 8);
            for (i, c) in name.chars().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if legacy_metric_char(c, i) => out.push(c),
                    _ => out.push_str("__"),
                }
            }
            Cow::Owned(out)
        }
        NameEscaping::Values => {
            if is_legacy_metric_name(name) {
                return Cow::Borrowed(name);
            }
            let mut out = String::with_capacity(name.len() + 8);
            out.push_str("U__");
            for (i, c) in name.chars().enumerate() {
                match c {
                    '_' => out.push_str("__"),
                    c if legacy_metric_char(c, i) => out.push(c),
                    c => {
                        let _ = write!(out, "_{:x}_", c as u32);
                    }
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Undo [`escape_name`] where the scheme allows: `dots` and `values` (a `values` name without
/// its `U__` prefix, or not well formed, comes back as it is, as Prometheus does).
pub fn unescape_name(name: &str, scheme: NameEscaping) -> Cow<'_, str> {
    match scheme {
        NameEscaping::AllowUtf8 | NameEscaping::Underscores => Cow::Borrowed(name),
        NameEscaping::Dots => {
            if !name.contains('_') {
                return Cow::Borrowed(name);
            }
            Cow::Owned(name.replace("_dot_", ".").replace("__", "_"))
        }
        NameEscaping::Values => match name.strip_prefix("U__") {
            Some(rest) => match unescape_values(rest) {
                Some(s) => Cow::Owned(s),
                None => Cow::Borrowed(name),
            },
            None => Cow::Borrowed(name),
        },
    }
}

fn unescape_values(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next()? {
                '_' => break,
                h if h.is_ascii_hexdigit() && hex.len() < 6 => hex.push(h),
                _ => return None,
            }
        }
        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
    }
    Some(out)
}

/// A label name as the text formats and PromQL write it: as it is when classic, else quoted.
pub fn write_label_name(out: &mut String, name: &str) {
    if is_legacy_label_name(name) {
        out.push_str(name);
    } else {
        out.push_str(&crate::labels::quote(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        use NameValidation::*;
        for ok in ["a", "a_b:c", "_x", ":x", "x1"] {
            assert!(Legacy.metric_name_ok(ok), "{ok}");
        }
        for bad in ["", "1x", "a.b", "é", "a-b"] {
            assert!(!Legacy.metric_name_ok(bad), "{bad}");
        }
        assert!(!Legacy.label_name_ok("a:b"));
        assert!(Legacy.label_name_ok("_a1"));
        assert!(
            Utf8.metric_name_ok("a.b") && Utf8.label_name_ok("é ü") && Utf8.label_name_ok("__x")
        );
        assert!(!Utf8.metric_name_ok("") && !Utf8.label_name_ok(""));
    }

    #[test]
    fn escaping_as_prometheus_common() {
        let e = |n, s| escape_name(n, s).into_owned();
        use NameEscaping::*;
        assert_eq!(e("my.metric", Underscores), "my_metric");
        assert_eq!(e("1abc", Underscores), "_abc");
        assert_eq!(e("héllo", Underscores), "h_llo");
        assert_eq!(e("a:b", Underscores), "a:b");
        assert_eq!(e("no_change", Underscores), "no_change");
        assert_eq!(e("my.metric_x", Dots), "my_dot_metric__x");
        assert_eq!(e("no_change", Dots), "no__change");
        assert_eq!(e("a-b", Dots), "a__b");
        assert_eq!(e("no_change", Values), "no_change");
        assert_eq!(e("my.metric_x", Values), "U__my_2e_metric__x");
        assert_eq!(e("é", Values), "U___e9_");
        assert_eq!(e("1a", Values), "U___31_a");
        assert_eq!(e("x.y", AllowUtf8), "x.y");
        assert_eq!(e("", Values), "");
    }

    #[test]
    fn values_and_dots_round_trip() {
        for n in ["my.metric_x", "é ü", "a__b", "1a", "日本語.x", "plain"] {
            for s in [NameEscaping::Values, NameEscaping::Dots] {
                let esc = escape_name(n, s);
                // `dots` cannot tell a written `__` from an escaped character.
                let dots_exact = n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    && !n.starts_with(|c: char| c.is_ascii_digit());
                if s == NameEscaping::Dots && !dots_exact {
                    continue;
                }
                assert_eq!(unescape_name(&esc, s), n, "{n} {s:?}");
            }
        }
        // Not well formed: returned as given.
        for bad in ["U__a_", "U__a_zz_", "U__a_1234567_", "U__a_d800_"] {
            assert_eq!(unescape_name(bad, NameEscaping::Values), bad);
        }
        assert_eq!(unescape_name("a_2e_b", NameEscaping::Values), "a_2e_b");
        assert_eq!(unescape_name("U__A_2E_b", NameEscaping::Values), "A.b");
    }
}
