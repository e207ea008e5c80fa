//! PromQL tokens, with byte positions for error messages.

/// A token kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An identifier or keyword (`rate`, `sum`, `by`, `foo_bar`); keywords are decided by the
    /// parser from context, since label names may be keywords.
    Ident(String),
    /// An identifier containing `:` (recording-rule names): only valid as a metric name.
    MetricIdent(String),
    Str(String),
    Number(f64),
    /// A duration literal in milliseconds (`5m`, `1h30m`).
    Duration(i64),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    /// `=` (label matching)
    Assign,
    Eq,
    Neq,
    Lss,
    Lte,
    /// `</`: keep a native histogram's observations below the right-hand side.
    TrimUpper,
    /// `>/`: keep a native histogram's observations above the right-hand side.
    TrimLower,
    Gtr,
    Gte,
    EqRegex,
    NeqRegex,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eof,
}

impl Tok {
    /// How Prometheus names a token in "unexpected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => match s.to_ascii_lowercase().as_str() {
                k @ ("by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                | "bool" | "offset") => format!("<{k}>"),
                "and" | "or" | "unless" | "atan2" => format!("<op:{}>", s.to_ascii_lowercase()),
                k if crate::ast::AggOp::parse(k).is_some() => format!("<aggr:{k}>"),
                _ => format!("identifier {s:?}"),
            },
            Tok::MetricIdent(s) => format!("metric identifier {s:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Number(n) => format!("number {:?}", format_num(*n)),
            Tok::Duration(ms) => format!("duration {:?}", crate::ast::format_duration(*ms)),
            Tok::LBrace => "\"{\"".into(),
            Tok::RBrace => "\"}\"".into(),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::LBracket => "\"[\"".into(),
            Tok::RBracket => "\"]\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Colon => "\":\"".into(),
            Tok::At => "<@>".into(),
            Tok::Assign => "\"=\"".into(),
            Tok::Eq => "<op:==>".into(),
            Tok::Neq => "<op:!=>".into(),
            Tok::Lss => "<op:<>".into(),
            Tok::Lte => "<op:<=>".into(),
            Tok::TrimUpper => "<op:</>".into(),
            Tok::TrimLower => "<op:>/>".into(),
            Tok::Gtr => "<op:>>".into(),
            Tok::Gte => "<op:>=>".into(),
            Tok::EqRegex => "\"=~\"".into(),
            Tok::NeqRegex => "\"!~\"".into(),
            Tok::Add => "<op:+>".into(),
            Tok::Sub => "<op:->".into(),
            Tok::Mul => "<op:*>".into(),
            Tok::Div => "<op:/>".into(),
            Tok::Mod => "<op:%>".into(),
            Tok::Pow => "<op:^>".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

fn format_num(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{n}")
    }
}

/// A token and the byte range it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    pub tok: Tok,
    pub pos: usize,
    pub end: usize,
}

/// Split `input` into tokens. Errors carry the byte offset.
pub fn lex(input: &str) -> Result<Vec<Spanned>, (usize, String)> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut out: Vec<Spanned> = Vec::new();
    let mut brace_depth = 0i32;
    let mut paren_depth = 0i32;
    let mut bracket_depth = 0i32;
    while i < b.len() {
        if out.len() >= crate::limits::MAX_TOKENS {
            return Err((
                i,
                format!(
                    "expression too long: more than {} tokens",
                    crate::limits::MAX_TOKENS
                ),
            ));
        }
        let c = b[i];
        let start = i;
        let push = |out: &mut Vec<Spanned>, tok: Tok, end: usize| {
            out.push(Spanned {
                tok,
                pos: start,
                end,
            })
        };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'{' => {
                brace_depth += 1;
                if brace_depth > 1 {
                    return Err((start, "unexpected left brace '{'".into()));
                }
                i += 1;
                push(&mut out, Tok::LBrace, i);
                continue;
            }
            b'}' => {
                brace_depth -= 1;
                if brace_depth < 0 {
                    return Err((start, "unexpected right brace '}'".into()));
                }
                i += 1;
                push(&mut out, Tok::RBrace, i);
                continue;
            }
            b'(' => {
                paren_depth += 1;
                i += 1;
                push(&mut out, Tok::LParen, i);
                continue;
            }
            b')' => {
                paren_depth -= 1;
                if paren_depth < 0 {
                    return Err((start, "unexpected right parenthesis ')'".into()));
                }
                i += 1;
                push(&mut out, Tok::RParen, i);
                continue;
            }
            b'[' => {
                bracket_depth += 1;
                i += 1;
                push(&mut out, Tok::LBracket, i);
                continue;
            }
            b']' => {
                bracket_depth -= 1;
                if bracket_depth < 0 {
                    return Err((start, "unexpected right bracket ']'".into()));
                }
                i += 1;
                push(&mut out, Tok::RBracket, i);
                continue;
            }
            b',' => {
                i += 1;
                push(&mut out, Tok::Comma, i);
                continue;
            }
            b':' if bracket_depth > 0 => {
                i += 1;
                push(&mut out, Tok::Colon, i);
                continue;
            }
            b'@' => {
                i += 1;
                push(&mut out, Tok::At, i);
                continue;
            }
            b'"' | b'\'' | b'`' => {
                let (s, end) = lex_string(input, i)?;
                i = end;
                push(&mut out, Tok::Str(s), i);
                continue;
            }
            _ => {}
        }
        let two = b.get(i + 1).copied();
        let op = match (c, two) {
            (b'=', Some(b'=')) => Some((Tok::Eq, 2)),
            (b'=', Some(b'~')) => Some((Tok::EqRegex, 2)),
            (b'=', _) => Some((Tok::Assign, 1)),
            (b'!', Some(b'=')) => Some((Tok::Neq, 2)),
            (b'!', Some(b'~')) => Some((Tok::NeqRegex, 2)),
            (b'!', _) => return Err((start, "unexpected character after '!'".into())),
            (b'<', Some(b'=')) => Some((Tok::Lte, 2)),
            (b'<', Some(b'/')) => Some((Tok::TrimUpper, 2)),
            (b'>', Some(b'/')) => Some((Tok::TrimLower, 2)),
            (b'<', _) => Some((Tok::Lss, 1)),
            (b'>', Some(b'=')) => Some((Tok::Gte, 2)),
            (b'>', _) => Some((Tok::Gtr, 1)),
            (b'+', _) => Some((Tok::Add, 1)),
            (b'-', _) => Some((Tok::Sub, 1)),
            (b'*', _) => Some((Tok::Mul, 1)),
            (b'/', _) => Some((Tok::Div, 1)),
            (b'%', _) => Some((Tok::Mod, 1)),
            (b'^', _) => Some((Tok::Pow, 1)),
            _ => None,
        };
        if let Some((tok, len)) = op {
            i += len;
            push(&mut out, tok, i);
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let mut colon = false;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                colon |= b[i] == b':';
                i += 1;
            }
            let word = &input[start..i];
            let tok = match word.to_ascii_lowercase().as_str() {
                "inf" => Tok::Number(f64::INFINITY),
                "nan" => Tok::Number(f64::NAN),
                _ if colon => Tok::MetricIdent(word.to_string()),
                _ => Tok::Ident(word.to_string()),
            };
            push(&mut out, tok, i);
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i = scan_number(b, i);
            let word = &input[start..i];
            if vigil_model::time::duration_out_of_range(word) {
                return Err((start, "duration out of range".to_string()));
            }
            let tok = if let Some(ms) = parse_duration_ms(word) {
                Tok::Duration(ms)
            } else if let Some(n) = parse_number(word) {
                Tok::Number(n)
            } else {
                return Err((start, format!("bad number or duration syntax: {word:?}")));
            };
            push(&mut out, tok, i);
            continue;
        }
        let ch = input[start..].chars().next().unwrap_or('?');
        return Err((start, format!("unexpected character: {ch:?}")));
    }
    if brace_depth > 0 {
        return Err((input.len(), "unclosed left brace".into()));
    }
    if paren_depth > 0 {
        return Err((input.len(), "unclosed left parenthesis".into()));
    }
    if bracket_depth > 0 {
        return Err((input.len(), "unclosed left bracket".into()));
    }
    out.push(Spanned {
        tok: Tok::Eof,
        pos: input.len(),
        end: input.len(),
    });
    Ok(out)
}

/// The end of a number or duration starting at `i`: digits, a fraction, an exponent (with
/// its sign), hex digits, and duration units.
fn scan_number(b: &[u8], mut i: usize) -> usize {
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        return i;
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' {
            // An exponent may carry a sign: 1e-3.
            if (c == b'e' || c == b'E')
                && matches!(b.get(i + 1), Some(b'+' | b'-'))
                && b.get(i + 2).is_some_and(u8::is_ascii_digit)
            {
                i += 2;
                continue;
            }
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn parse_number(s: &str) -> Option<f64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    if s.contains('_') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// A string literal can spell bytes that are not UTF-8 (`"a\xc5z"`: a Go string holds any
/// bytes), which a Rust string cannot hold. Each such byte is kept as the character
/// `RAW_BYTE_BASE + byte`; literals may not spell those characters themselves, so the string
/// stays unequal to every string a query can otherwise write, [`quote`] prints it back as
/// `\xc5` as Go does, and it is never a valid name.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// The byte a character of the reserved range stands for (only bytes 0x80 and up are ever kept
/// this way: lower ones are always UTF-8).
fn raw_byte(c: char) -> Option<u8> {
    let v = (c as u32).checked_sub(RAW_BYTE_BASE)?;
    (0x80..=0xff).contains(&v).then_some(v as u8)
}

/// Why a literal may not hold `c` (one of the characters standing for bytes).
fn reserved(c: char) -> String {
    format!(
        "U+{:X}: the characters U+10FF80 to U+10FFFF are reserved in string literals",
        c as u32
    )
}

/// A literal's bytes as a string: valid UTF-8 as it is, each byte outside it as the character
/// standing for it.
fn from_go_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(
            chunk
                .invalid()
                .iter()
                .filter_map(|&x| char::from_u32(RAW_BYTE_BASE + u32::from(x))),
        );
    }
    out
}

/// A string as PromQL prints it (Go's `strconv.Quote`), the bytes a literal spelled outside
/// UTF-8 as `\xNN`.
pub fn quote(s: &str) -> String {
    if !s.chars().any(|c| raw_byte(c).is_some()) {
        return vigil_model::labels::quote(s);
    }
    let mut bytes = Vec::with_capacity(s.len());
    for c in s.chars() {
        match raw_byte(c) {
            Some(b) => bytes.push(b),
            None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    vigil_model::labels::quote_bytes(&bytes)
}

/// A valid metric or label name for PromQL (`count_values`, `label_replace`, grouping): any
/// non-empty UTF-8, as in Prometheus 3. A literal that spelled bytes outside UTF-8 is not.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| raw_byte(c).is_some())
}

/// Prometheus duration literal (`5m`, `1h30m`, `250ms`) in milliseconds.
pub use vigil_model::time::parse_duration_ms;

fn lex_string(input: &str, start: usize) -> Result<(String, usize), (usize, String)> {
    let b = input.as_bytes();
    let q = b[start];
    if q == b'`' {
        return match input[start + 1..].find('`') {
            Some(off) => {
                let body = &input[start + 1..start + 1 + off];
                match body.chars().find(|c| raw_byte(*c).is_some()) {
                    Some(c) => Err((start, reserved(c))),
                    None => Ok((body.to_string(), start + off + 2)),
                }
            }
            None => Err((start, "unterminated raw string".into())),
        };
    }
    let body = start + 1;
    // Bytes, as Go's unquoting builds them: `\x` and octal escapes are bytes, which need
    // not form UTF-8 (see `RAW_BYTE_BASE`).
    let mut out: Vec<u8> = Vec::new();
    let mut chars = input[body..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            c if c as u32 == q as u32 => return Ok((from_go_bytes(&out), body + off + 1)),
            '\n' => return Err((start, "unterminated quoted string".into())),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let push = |out: &mut Vec<u8>, c: char| {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes())
                };
                match e {
                    'n' => push(&mut out, '\n'),
                    't' => push(&mut out, '\t'),
                    'r' => push(&mut out, '\r'),
                    'a' => push(&mut out, '\x07'),
                    'b' => push(&mut out, '\x08'),
                    'f' => push(&mut out, '\x0c'),
                    'v' => push(&mut out, '\x0b'),
                    '\\' => push(&mut out, '\\'),
                    '"' | '\'' if e as u32 == q as u32 => push(&mut out, e),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match chars.next().and_then(|(_, c)| c.to_digit(8)) {
                                Some(d) => v = v * 8 + d,
                                None => return Err((start, "invalid escape sequence".into())),
                            }
                        }
                        // A byte, as in Go (`\377` at most).
                        match u8::try_from(v) {
                            Ok(b) => out.push(b),
                            Err(_) => return Err((start, "invalid escape sequence".into())),
                        }
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        // Hex digits only: `from_str_radix` would also take a sign.
                        let v = u32::from_str_radix(&hex, 16).ok().filter(|_| {
                            hex.len() == n && hex.bytes().all(|b| b.is_ascii_hexdigit())
                        });
                        match (e, v.map(|v| (v, char::from_u32(v)))) {
                            ('x', Some((b, _))) => out.push(b as u8),
                            (_, Some((_, Some(ch)))) if raw_byte(ch).is_none() => {
                                push(&mut out, ch)
                            }
                            _ => {
                                return Err((start, format!("invalid escape sequence \\{e}{hex}")));
                            }
                        }
                    }
                    _ => return Err((start, "unknown escape sequence".into())),
                }
            }
            c if raw_byte(c).is_some() => return Err((start, reserved(c))),
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Err((start, "unterminated quoted string".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|s| s.tok).collect()
    }

    #[test]
    fn escapes_are_bytes_as_in_go() {
        let s = |q: &str| match lex(q).unwrap().remove(0).tok {
            Tok::Str(s) => s,
            t => panic!("{t:?}"),
        };
        // Bytes that form UTF-8 are that character, whichever escape spelled them.
        assert_eq!(s(r#""\xc3\x85""#), "Å");
        assert_eq!(s(r#""\303\205""#), "Å");
        assert_eq!(s(r#""\u00c5""#), "Å");
        assert_eq!(s(r#""\101""#), "A");
        // A byte that does not stays apart from every valid string, and quotes back as Go
        // quotes it.
        let bad = s(r#""a\xc5z""#);
        assert_ne!(bad, "aÅz");
        assert_eq!(quote(&bad), r#""a\xc5z""#);
        assert!(!is_name(&bad) && is_name("a.é"));
        assert!(lex(r#""\400""#).is_err());
        assert!(lex(r#""\ud800""#).is_err());
        assert!(lex(r#""\x+f""#).is_err());
        // The reserved characters cannot be spelled, so no literal equals one that was not
        // UTF-8; outside PromQL's own printing they are ordinary characters.
        assert!(lex(r#""\U0010FFC5""#).is_err());
        assert!(lex("\"a\u{10FFC5}z\"").is_err());
        assert!(lex("`a\u{10FFC5}z`").is_err());
        assert_eq!(quote("a\u{10FFC5}"), r#""a\xc5""#);
        assert_eq!(vigil_model::labels::quote("a\u{10FFC5}"), "\"a\u{10FFC5}\"");
    }

    /// Printing a query (format_query, rule text) gives back what parses to the same query,
    /// bytes outside UTF-8 spelled as Go spells them, in matchers and strings alike.
    #[test]
    fn byte_escapes_print_back_as_they_were_written() {
        for q in [
            r#"m{a="\xc5"}"#,
            r#"count_values("a\xc5z", m)"#,
            r#"label_replace(m, "x", "\xff\xfe", "y", "(.*)")"#,
        ] {
            let e = crate::parser::parse(q).unwrap();
            let printed = e.to_string();
            assert!(printed.contains(r"\x"), "{q} printed {printed}");
            assert_eq!(crate::parser::parse(&printed).unwrap().to_string(), printed);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("30m1h"), None);
        assert_eq!(parse_duration_ms("5"), None);
    }

    #[test]
    fn lexes_selector_and_operators() {
        assert_eq!(
            toks(r#"up{job=~"a.*",x!="y\n"} >= 1e-3"#),
            vec![
                Tok::Ident("up".into()),
                Tok::LBrace,
                Tok::Ident("job".into()),
                Tok::EqRegex,
                Tok::Str("a.*".into()),
                Tok::Comma,
                Tok::Ident("x".into()),
                Tok::Neq,
                Tok::Str("y\n".into()),
                Tok::RBrace,
                Tok::Gte,
                Tok::Number(1e-3),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("x[5m:1m]")[2..6],
            [
                Tok::Duration(300_000),
                Tok::Colon,
                Tok::Duration(60_000),
                Tok::RBracket
            ]
        );
        assert_eq!(toks("0x1F")[0], Tok::Number(31.0));
        assert_eq!(toks("a:b")[0], Tok::MetricIdent("a:b".into()));
    }
}
