//! Pieces shared by both exposition parsers: a byte cursor, name classes, the label block
//! scanner (which validates everything `LabelIter` later relies on), Go-compatible float
//! parsing, unescaping and Go-style quoting for error messages.
//!
//! Nothing here indexes the input in a way that can panic: every access goes through `get`
//! or is guarded by a bounds check right before it.

use std::borrow::Cow;

/// The NaN bit pattern Go's `strconv.ParseFloat` returns (Prometheus's `value.NormalNaN`),
/// distinct from the staleness marker.
pub(super) const NORMAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

/// Character classes of the classic names, one bit each, looked up once per byte.
const METRIC_START: u8 = 1;
const METRIC_CHAR: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CHAR: u8 = 8;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        if alpha || b == b':' {
            t[c] |= METRIC_START | METRIC_CHAR;
        }
        if digit {
            t[c] |= METRIC_CHAR | LABEL_CHAR;
        }
        if alpha {
            t[c] |= LABEL_START | LABEL_CHAR;
        }
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_metric_start(c: u8) -> bool {
    CLASS[c as usize] & METRIC_START != 0
}

#[inline]
pub(super) fn is_metric_char(c: u8) -> bool {
    CLASS[c as usize] & METRIC_CHAR != 0
}

#[inline]
pub(super) fn is_label_start(c: u8) -> bool {
    CLASS[c as usize] & LABEL_START != 0
}

#[inline]
pub(super) fn is_label_char(c: u8) -> bool {
    CLASS[c as usize] & LABEL_CHAR != 0
}

/// A position in the input with its 1-based line number.
#[derive(Debug, Clone)]
pub(super) struct Cursor<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    pub line: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0, line: 1 }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    pub fn peek_at(&self, off: usize) -> Option<u8> {
        self.b.get(self.pos.wrapping_add(off)).copied()
    }

    #[inline]
    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    /// The bytes from `pos` on (empty at the end).
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    /// `b[s..e]`, or empty if out of range (never panics).
    #[inline]
    pub fn slice(&self, s: usize, e: usize) -> &'a [u8] {
        self.b.get(s..e).unwrap_or_default()
    }

    /// Skip spaces and tabs (the text format's whitespace).
    #[inline]
    pub fn skip_blank(&mut self) {
        while let Some(b' ' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Advance while `f` holds; returns the new position.
    #[inline]
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> usize {
        while let Some(c) = self.peek() {
            if !f(c) {
                break;
            }
            self.pos += 1;
        }
        self.pos
    }

    /// Position of the next `\n` at or after `pos`, or the end of input.
    #[inline]
    pub fn line_end(&self) -> usize {
        match self.rest().iter().position(|&c| c == b'\n') {
            Some(p) => self.pos + p,
            None => self.b.len(),
        }
    }

    /// Move to `end` (a line end from [`Cursor::line_end`]) and past its newline, if any.
    #[inline]
    pub fn finish_line(&mut self, end: usize) {
        self.pos = end;
        if self.peek() == Some(b'\n') {
            self.pos += 1;
            self.line += 1;
        }
    }
}

/// The input as `&str` if it is UTF-8.
#[inline]
pub(super) fn utf8(b: &[u8]) -> Option<&str> {
    std::str::from_utf8(b).ok()
}

/// Quote bytes the way Go's `%q` does, so messages read like Prometheus's.
pub(super) fn go_quote(b: &[u8]) -> String {
    crate::labels::quote_bytes(b)
}

/// A float as Prometheus reads one: Go's `strconv.ParseFloat(s, 64)` after rejecting `p`, `P`
/// and `_` ("pre-Go 1.13 float formats"). Decimal with optional exponent, `Inf`/`Infinity`
/// with optional sign and `NaN` without, case-insensitive. Out-of-range values are errors,
/// as in Go. NaN comes back as Go's NaN bit pattern.
pub(super) fn parse_float(s: &[u8]) -> Result<f64, String> {
    if s.iter().any(|&c| matches!(c, b'p' | b'P' | b'_')) {
        return Err("unsupported character in float".into());
    }
    let syntax = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    let (neg, signed, body) = match s.first() {
        Some(b'-') => (true, true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, true, s.get(1..).unwrap_or_default()),
        _ => (false, false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Ok(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if !signed && body.eq_ignore_ascii_case(b"nan") {
        return Ok(NORMAL_NAN);
    }
    // digits [ "." digits ] [ ("e"|"E") [sign] digits ], at least one mantissa digit.
    let mut i = 0;
    let mut digits = 0;
    while body.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        digits += 1;
    }
    if body.get(i) == Some(&b'.') {
        i += 1;
        while body.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return Err(syntax());
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(body.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let e0 = i;
        while body.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == e0 {
            return Err(syntax());
        }
    }
    if i != body.len() {
        return Err(syntax());
    }
    // Only ASCII digits, sign, '.', 'e' remain: valid UTF-8 and valid Rust float syntax.
    let v: f64 = utf8(s).and_then(|t| t.parse().ok()).ok_or_else(syntax)?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        ));
    }
    Ok(v)
}

/// Undo label-value escaping (`\\`, `\"`, `\n`; with `quotes` false only `\\` and `\n`, as
/// the text format's HELP). Unknown escapes are kept as written, as Go's replacer does.
pub(super) fn unescape(s: &str, quotes: bool) -> Cow<'_, str> {
    if !s.as_bytes().contains(&b'\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('\\') {
        out.push_str(rest.get(..p).unwrap_or_default());
        let after = rest.get(p + 1..).unwrap_or_default();
        match after.as_bytes().first() {
            Some(b'\\') => out.push('\\'),
            Some(b'n') => out.push('\n'),
            Some(b'"') if quotes => out.push('"'),
            _ => {
                out.push('\\');
                rest = after;
                continue;
            }
        }
        rest = after.get(1..).unwrap_or_default();
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Which grammar a label block follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Text 0.0.4: blanks between tokens, commas optional, trailing comma allowed, raw
    /// newlines allowed inside values.
    Text,
    /// OpenMetrics: no blanks, commas between labels, no trailing comma, no raw newlines.
    OpenMetrics,
    /// An OpenMetrics exemplar: as OpenMetrics, and values may not hold NUL bytes.
    Exemplar,
}

/// Token names as Prometheus's lexer calls them, for "got ..." in messages.
fn label_state_token(c: Option<u8>, d: Dialect) -> &'static str {
    match c {
        // The text parser sees an appended newline, which is INVALID inside braces.
        None if d == Dialect::Text => "INVALID",
        None => "EOF",
        Some(b'}') => "BCLOSE",
        Some(b',') => "COMMA",
        Some(b'=') => "EQUAL",
        Some(b'"') => "QSTRING",
        Some(c) if is_label_start(c) => "LNAME",
        Some(_) => "INVALID",
    }
}

/// Duplicate label name detection without allocating for up to 16 labels with plain names.
struct Seen<'a> {
    b: &'a [u8],
    named: bool,
    small: [(usize, usize); 16],
    n: usize,
    spill: Vec<Cow<'a, [u8]>>,
    /// A label named `__name__` was seen (a duplicate of a metric name given in the block).
    name_label: bool,
}

impl<'a> Seen<'a> {
    #[inline(always)]
    fn new(b: &'a [u8], named: bool) -> Self {
        Seen {
            b,
            named,
            small: [(0, 0); 16],
            n: 0,
            spill: Vec::new(),
            name_label: false,
        }
    }

    /// A name at `b[s..e]`, as written (a classic name, or a quoted one without escapes).
    #[inline(always)]
    fn add(&mut self, s: usize, e: usize) -> Result<(), String> {
        let name = self.b.get(s..e).unwrap_or_default();
        if name == b"__name__" {
            if self.named {
                return Err(dup(name));
            }
            self.name_label = true;
        }
        if self.n < self.small.len() {
            for &(a, z) in self.small.iter().take(self.n) {
                if self.b.get(a..z) == Some(name) {
                    return Err(dup(name));
                }
            }
            self.small[self.n] = (s, e);
            self.n += 1;
        } else {
            self.spill.push(Cow::Borrowed(name));
        }
        Ok(())
    }

    /// A quoted name holding backslash escapes: compared once unescaped, at the end of the
    /// block. Rare, so kept out of the common path.
    #[cold]
    #[inline(never)]
    fn add_escaped(&mut self, s: usize, e: usize) -> Result<(), String> {
        let raw = utf8(self.b.get(s..e).unwrap_or_default()).unwrap_or_default();
        let name = unescape(raw, true).into_owned().into_bytes();
        if name == b"__name__" {
            if self.named {
                return Err(dup(&name));
            }
            self.name_label = true;
        }
        self.spill.push(Cow::Owned(name));
        Ok(())
    }

    /// Names past the first 16 (or escaped ones) are checked once, sorted, at the end.
    fn finish(self) -> Result<(), String> {
        if self.spill.is_empty() {
            return Ok(());
        }
        let mut all: Vec<&[u8]> = self
            .small
            .iter()
            .take(self.n)
            .map(|&(a, z)| self.b.get(a..z).unwrap_or_default())
            .chain(self.spill.iter().map(|c| &**c))
            .collect();
        all.sort_unstable();
        match all.windows(2).find(|w| w[0] == w[1]) {
            Some(w) => Err(dup(w[0])),
            None => Ok(()),
        }
    }
}

fn dup(name: &[u8]) -> String {
    format!("duplicate label name {}", go_quote(name))
}

/// A scanned label block: the text between the braces, and where a metric name written
/// inside it (`{"my.metric",a="b"}`, Prometheus 3's form for names outside the classic set)
/// is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Block {
    pub start: usize,
    pub end: usize,
    /// The quoted metric name's text without its quotes, and whether it holds escapes.
    pub name: Option<(usize, usize, bool)>,
}

/// Scan and validate a label block. `c` is just past `{`; on success it is just past `}`.
/// Checks label name syntax (classic or quoted), quoting and escapes, UTF-8 of values and
/// names and (if `check_dups`) duplicate names; `named` says a metric name precedes the block,
/// so a `__name__` label, or a metric name inside, would repeat it. An exemplar's block may
/// quote label names but hold no metric name. `series` is where the series' text starts, for
/// messages that quote it.
pub(super) fn label_block(
    c: &mut Cursor<'_>,
    d: Dialect,
    named: bool,
    check_dups: bool,
    series: usize,
) -> Result<Block, String> {
    let text = d == Dialect::Text;
    let start = c.pos;
    let mut seen = Seen::new(c.b, named);
    let mut first = true;
    let mut after_comma = false;
    let mut metric: Option<(usize, usize, bool)> = None;
    loop {
        if text {
            c.skip_blank();
        }
        let quoted = match c.peek() {
            Some(b'}') if !after_comma || text => {
                let end = c.pos;
                c.pos += 1;
                if metric.is_some() && seen.name_label {
                    return Err(dup(b"__name__"));
                }
                seen.finish()?;
                return Ok(Block {
                    start,
                    end,
                    name: metric,
                });
            }
            Some(b'"') => true,
            Some(ch) if is_label_start(ch) => false,
            other => {
                let tok = label_state_token(other, d);
                return Err(if !text && first {
                    format!("expected label name or left brace, got \"{tok}\"")
                } else {
                    format!("expected label name, got \"{tok}\"")
                });
            }
        };
        let (ns, ne, escaped) = if quoted {
            let q = quoted_string(c, d)?;
            if q.0 == q.1 {
                return Err("empty quoted name".into());
            }
            q
        } else {
            let ns = c.pos;
            (ns, c.take_while(is_label_char), false)
        };
        if text {
            c.skip_blank();
        }
        if quoted && c.peek() != Some(b'=') {
            // A quoted string alone is the metric name (where a sample's block may hold one).
            if d == Dialect::Exemplar {
                let tok = label_state_token(c.peek(), d);
                return Err(format!("expected equal, got \"{tok}\""));
            }
            if named || metric.is_some() {
                return Err(format!(
                    "metric name already set while parsing: {}",
                    go_quote(c.slice(series, c.pos))
                ));
            }
            metric = Some((ns, ne, escaped));
        } else {
            if check_dups {
                if escaped {
                    seen.add_escaped(ns, ne)?;
                } else {
                    seen.add(ns, ne)?;
                }
            }
            if c.peek() != Some(b'=') {
                let tok = label_state_token(c.peek(), d);
                return Err(format!("expected equal, got \"{tok}\""));
            }
            c.pos += 1;
            if text {
                c.skip_blank();
            }
            label_value(c, d)?;
        }
        first = false;
        after_comma = false;
        if text {
            c.skip_blank();
            if c.peek() == Some(b',') {
                c.pos += 1;
            }
            continue;
        }
        match c.peek() {
            Some(b',') => {
                c.pos += 1;
                after_comma = true;
            }
            Some(b'}') => {}
            Some(ch) if is_label_start(ch) || ch == b'"' => {
                return Err(format!(
                    "expected comma, got \"{}\"",
                    label_state_token(Some(ch), d)
                ));
            }
            other => {
                let tok = label_state_token(other, d);
                return Err(format!("expected comma or left brace, got \"{tok}\""));
            }
        }
    }
}

/// A quoted name at `c` (a `"`): on success `c` is past the closing quote and the result is
/// the text between the quotes and whether it holds escapes. The same rules as a label value.
#[inline(never)]
pub(super) fn quoted_string(
    c: &mut Cursor<'_>,
    d: Dialect,
) -> Result<(usize, usize, bool), String> {
    let vs = c.pos + 1;
    let escaped = label_value(c, d)?;
    Ok((vs, c.pos - 1, escaped))
}

/// Bytes a label value's scan must look at: the closing quote, a backslash, a newline, NUL
/// (refused in exemplars) and the first byte of non-ASCII (checked as UTF-8 at the end).
static VALUE_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x80;
    while i < 256 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'\n' as usize] = true;
    t[0] = true;
    t
};

/// A quoted label value at `c`; on success `c` is past the closing quote. Whether it holds
/// backslash escapes. Inlined: it is most of a label block's work.
#[inline(always)]
fn label_value(c: &mut Cursor<'_>, d: Dialect) -> Result<bool, String> {
    let invalid = |c: &Cursor<'_>| {
        let tok = if c.at_end() && d != Dialect::Text {
            "EOF"
        } else {
            "INVALID"
        };
        format!("expected label value, got \"{tok}\"")
    };
    if c.peek() != Some(b'"') {
        return Err(invalid(c));
    }
    let open = c.pos;
    let vs = open + 1;
    let mut i = vs;
    let mut non_ascii = false;
    let mut newlines = 0;
    let mut escaped = false;
    loop {
        // Most bytes of a value are plain: skip them with one table lookup each.
        while c.b.get(i).is_some_and(|&x| !VALUE_SPECIAL[x as usize]) {
            i += 1;
        }
        match c.b.get(i) {
            None => return Err(invalid(c)),
            Some(b'"') => break,
            Some(b'\\') => match c.b.get(i + 1) {
                None | Some(b'\n') => return Err(invalid(c)),
                Some(0) if d == Dialect::Exemplar => return Err(invalid(c)),
                Some(&x) => {
                    non_ascii |= x >= 0x80;
                    escaped = true;
                    i += 2;
                }
            },
            Some(b'\n') if d != Dialect::Text => return Err(invalid(c)),
            Some(b'\n') => {
                newlines += 1;
                i += 1;
            }
            Some(0) if d == Dialect::Exemplar => return Err(invalid(c)),
            Some(&x) => {
                non_ascii |= x >= 0x80;
                i += 1;
            }
        }
    }
    if non_ascii && utf8(c.slice(vs, i)).is_none() {
        return Err("invalid UTF-8 label value".into());
    }
    c.pos = i + 1;
    c.line += newlines;
    Ok(escaped)
}

/// The text of a quoted string starting at `s` (a `"`) of a validated block: the text
/// between the quotes and what follows the closing quote.
fn take_quoted(s: &str) -> (&str, bool, &str) {
    let b = s.as_bytes();
    let mut i = 1;
    let mut escaped = false;
    while let Some(&c) = b.get(i) {
        if c == b'"' {
            break;
        }
        if c == b'\\' {
            escaped = true;
            i += 1;
        }
        i += 1;
    }
    let raw = s.get(1..i.min(b.len())).unwrap_or_default();
    (raw, escaped, s.get(i + 1..).unwrap_or_default())
}

fn unescaped(raw: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        unescape(raw, true)
    } else {
        Cow::Borrowed(raw)
    }
}

/// A quoted family name after `# HELP`, `# TYPE` or `# UNIT` (at `c`, a `"`), within the line
/// ending at `end`: its text without quotes (escapes kept, as Prometheus keeps them there)
/// and where it ends.
pub(super) fn quoted_family<'a>(
    c: &mut Cursor<'a>,
    d: Dialect,
    end: usize,
) -> Result<(&'a str, usize), String> {
    let (s, e, _) = quoted_string(c, d)?;
    if c.pos > end || s == e {
        return Err("invalid quoted metric name".into());
    }
    Ok((utf8(c.slice(s, e)).unwrap_or_default(), c.pos))
}

/// A sample line's series text `[ns, se)`, its metric name (written before the braces, ending
/// at `ne`, or quoted inside them at `inside`) and where its label block `labels` is in it.
#[inline(always)]
pub(super) fn series_parts<'a>(
    c: &Cursor<'a>,
    (ns, ne, se): (usize, usize, usize),
    labels: (usize, usize),
    inside: Option<(usize, usize, bool)>,
) -> Result<(&'a str, Cow<'a, str>, super::TextSpan), String> {
    // Names and blanks are ASCII and label values were checked, so this cannot fail.
    let Some(series) = utf8(c.slice(ns, se)) else {
        return Err("invalid UTF-8 label value".into());
    };
    // A quoted name may stand anywhere in the braces (`{a="b","my.metric"}`).
    let name = match inside {
        Some(at) => block_name(c, at),
        None => Cow::Borrowed(series.get(..ne - ns).unwrap_or_default()),
    };
    if series.len() > u32::MAX as usize {
        return Err("series text longer than 4 GiB".into());
    }
    let labels_raw = super::TextSpan::within(
        series,
        series.get(labels.0 - ns..labels.1 - ns).unwrap_or_default(),
    );
    Ok((series, name, labels_raw))
}

/// The metric name a block found (`Block::name`), unescaped; borrowed unless it has escapes.
pub(super) fn block_name<'a>(c: &Cursor<'a>, at: (usize, usize, bool)) -> Cow<'a, str> {
    let raw = utf8(c.slice(at.0, at.1)).unwrap_or_default();
    unescaped(raw, at.2)
}

/// The metric name a series' text gives first inside its braces (`{"my.metric",...}`), unescaped.
pub(super) fn quoted_metric_name(series: &str) -> Cow<'_, str> {
    let Some(rest) = series.strip_prefix('{') else {
        return Cow::Borrowed("");
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    if !rest.starts_with('"') {
        return Cow::Borrowed("");
    }
    let (raw, escaped, _) = take_quoted(rest);
    unescaped(raw, escaped)
}

/// Walks a label block validated by [`label_block`] (the text between the braces), skipping
/// a metric name written inside it.
pub(super) fn next_label<'a>(s: &mut &'a str) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    loop {
        let t = s.trim_start_matches([' ', '\t', ',']);
        let (name, rest) = if t.starts_with('"') {
            let (raw, escaped, rest) = take_quoted(t);
            let rest = rest.trim_start_matches([' ', '\t']);
            if !rest.starts_with('=') {
                // The metric name.
                *s = rest;
                if rest.is_empty() {
                    return None;
                }
                continue;
            }
            (unescaped(raw, escaped), rest)
        } else {
            let b = t.as_bytes();
            let mut i = 0;
            while b.get(i).is_some_and(|&c| is_label_char(c)) {
                i += 1;
            }
            (
                Cow::Borrowed(t.get(..i).unwrap_or_default()),
                t.get(i..).unwrap_or_default(),
            )
        };
        let rest = rest.trim_start_matches([' ', '\t', '=']);
        if name.is_empty() || !rest.starts_with('"') {
            *s = "";
            return None;
        }
        let (raw, escaped, rest) = take_quoted(rest);
        *s = rest;
        return Some((name, unescaped(raw, escaped)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Result<f64, String> {
        parse_float(s.as_bytes())
    }

    #[test]
    fn floats_follow_go() {
        assert_eq!(f("1"), Ok(1.0));
        assert_eq!(f("-1.5e3"), Ok(-1500.0));
        assert_eq!(f("+.5"), Ok(0.5));
        assert_eq!(f("1."), Ok(1.0));
        assert_eq!(f("1.e2"), Ok(100.0));
        assert_eq!(f("007"), Ok(7.0));
        assert_eq!(f("1E-2"), Ok(0.01));
        assert_eq!(f("+Inf"), Ok(f64::INFINITY));
        assert_eq!(f("-inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(f("Infinity"), Ok(f64::INFINITY));
        assert_eq!(f("-INFINITY"), Ok(f64::NEG_INFINITY));
        assert_eq!(f("NaN").map(f64::to_bits), Ok(NORMAL_NAN.to_bits()));
        assert_eq!(f("nan").map(f64::to_bits), Ok(NORMAL_NAN.to_bits()));
        assert_eq!(f("-0").map(f64::to_bits), Ok((-0.0f64).to_bits()));
        assert_eq!(f("1e-400"), Ok(0.0));
        for bad in [
            "", "+", "-", ".", "e1", "1e", "1e+", "abc", "1.2.3", "--1", "+nan", "-NaN", "infx",
            "in", "0x10", "1 ", " 1", "1\t2", "true", "١",
        ] {
            assert!(
                f(bad).unwrap_err().contains("invalid syntax"),
                "{bad:?}: {:?}",
                f(bad)
            );
        }
        for bad in ["1_000", "0x1p-3", "0x1P3"] {
            assert_eq!(f(bad), Err("unsupported character in float".into()));
        }
        assert_eq!(
            f("1e400"),
            Err("strconv.ParseFloat: parsing \"1e400\": value out of range".into())
        );
        assert_eq!(
            f("true"),
            Err("strconv.ParseFloat: parsing \"true\": invalid syntax".into())
        );
    }

    #[test]
    fn character_classes_are_the_classic_names() {
        for c in 0..=255u8 {
            let alpha = c.is_ascii_alphabetic() || c == b'_';
            assert_eq!(is_metric_start(c), alpha || c == b':', "{c}");
            assert_eq!(
                is_metric_char(c),
                alpha || c == b':' || c.is_ascii_digit(),
                "{c}"
            );
            assert_eq!(is_label_start(c), alpha, "{c}");
            assert_eq!(is_label_char(c), alpha || c.is_ascii_digit(), "{c}");
        }
    }

    #[test]
    fn go_quoting() {
        assert_eq!(
            go_quote(b"a\"b\\c\n\t\x00\xff\x7f"),
            r#""a\"b\\c\n\t\x00\xff\x7f""#
        );
        assert_eq!(go_quote("é".as_bytes()), "\"é\"");
    }

    #[test]
    fn unescaping() {
        assert_eq!(unescape(r#"a\\b\"c\nd\te\"#, true), "a\\b\"c\nd\\te\\");
        assert_eq!(unescape(r#"a\\b\"c\nd"#, false), "a\\b\\\"c\nd");
        assert!(matches!(unescape("plain", true), Cow::Borrowed("plain")));
        assert_eq!(unescape(r"\\n", true), "\\n");
    }

    #[test]
    fn label_walk_survives_garbage() {
        for s in [
            "", "a", "a=", "a=\"", "a=\"\\", "=\"x\"", ",,,", "a=\"é\\", "é",
        ] {
            let mut r = s;
            while next_label(&mut r).is_some() {}
        }
    }
}
