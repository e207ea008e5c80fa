//! The Prometheus text format 0.0.4, as Prometheus's `promparse` reads it.
//!
//! Blanks (spaces, tabs) may separate any two tokens; blank lines and comments are skipped;
//! `# HELP` and `# TYPE` need a blank after the keyword; commas between labels are optional
//! and a trailing one is allowed; a label value may even hold a raw newline; the value is the
//! next run of bytes other than `{`, blank or newline (so `a{b="c"}1` is a sample); the
//! timestamp is decimal digits (milliseconds). A NUL byte where a line's first token would
//! start ends the input, as in Prometheus's lexer.

use super::lex::{
    self, Cursor, Dialect, go_quote, is_metric_char, is_metric_start, parse_float, unescape, utf8,
};
use super::{Entry, Format, MetricType, SampleEntry};

/// The next entry, `None` at the end of input, or an error message (the line is the cursor's).
pub(super) fn next<'a>(c: &mut Cursor<'a>) -> Result<Option<Entry<'a>>, String> {
    loop {
        c.skip_blank();
        match c.peek() {
            None | Some(0) => return Ok(None),
            Some(b'\n') => {
                c.pos += 1;
                c.line += 1;
            }
            Some(b'#') => {
                if let Some(e) = meta(c)? {
                    return Ok(Some(e));
                }
            }
            Some(ch) if is_metric_start(ch) || ch == b'{' => {
                return sample(c).map(|s| Some(Entry::Sample(s)));
            }
            Some(_) => return Err("\"INVALID\" is not a valid start token".into()),
        }
    }
}

/// `# HELP name text`, `# TYPE name type`, or a comment (skipped: `Ok(None)`).
fn meta<'a>(c: &mut Cursor<'a>) -> Result<Option<Entry<'a>>, String> {
    let end = c.line_end();
    c.pos += 1; // '#'
    let kw = if matches!(c.peek(), Some(b' ' | b'\t')) {
        c.skip_blank();
        let r = c.rest();
        let kw = if r.starts_with(b"HELP") {
            "HELP"
        } else if r.starts_with(b"TYPE") {
            "TYPE"
        } else {
            ""
        };
        if !kw.is_empty() && matches!(c.peek_at(4), Some(b' ' | b'\t')) {
            c.pos += 4;
            c.skip_blank();
            Some(kw)
        } else {
            None
        }
    } else {
        None
    };
    let Some(kw) = kw else {
        c.finish_line(end);
        return Ok(None);
    };
    let (family, ne) = match c.peek() {
        Some(b'"') => lex::quoted_family(c, Dialect::Text, end)?,
        Some(ch) if is_metric_start(ch) => {
            let ns = c.pos;
            let ne = c.take_while(is_metric_char);
            (utf8(c.slice(ns, ne)).unwrap_or_default(), ne)
        }
        _ => return Err(format!("expected metric name after {kw}, got \"INVALID\"")),
    };
    // Prometheus takes the rest of the line and drops its first byte (normally the blank).
    let rest = c.slice(ne, end);
    let text = rest.get(1..).unwrap_or_default();
    let e = if kw == "HELP" {
        let Some(t) = utf8(text) else {
            return Err("help text is not a valid utf8 string".into());
        };
        Entry::Help {
            family,
            help: unescape(t, false),
        }
    } else {
        match utf8(text).and_then(|t| MetricType::parse(t, Format::Text)) {
            Some(kind) => Entry::Type { family, kind },
            None => return Err(format!("invalid metric type {}", go_quote(text))),
        }
    };
    c.finish_line(end);
    Ok(Some(e))
}

/// The token name Prometheus's lexer gives what follows a metric name or label block.
fn value_state_token(c: Option<u8>) -> &'static str {
    match c {
        Some(b'{') => "BOPEN",
        _ => "INVALID",
    }
}

fn sample<'a>(c: &mut Cursor<'a>) -> Result<SampleEntry<'a>, String> {
    let ns = c.pos;
    let ne = c.take_while(is_metric_char);
    c.skip_blank();
    let (mut se, mut labels, mut inside) = (ne, (ne, ne), None);
    if c.peek() == Some(b'{') {
        c.pos += 1;
        let b = lex::label_block(c, Dialect::Text, ne > ns, true, ns)?;
        labels = (b.start, b.end);
        inside = b.name;
        se = c.pos;
        c.skip_blank();
    }
    if ne == ns && inside.is_none() {
        return Err(format!(
            "metric name not set while parsing: {}",
            go_quote(c.slice(ns, se))
        ));
    }
    let vs = c.pos;
    let ve = c.take_while(|ch| !matches!(ch, b'{' | b' ' | b'\t' | b'\n'));
    if ve == vs {
        return Err(format!(
            "expected value after metric, got \"{}\"",
            value_state_token(c.peek())
        ));
    }
    let value = parse_float(c.slice(vs, ve))?;
    c.skip_blank();
    let timestamp_ms = match c.peek() {
        None | Some(b'\n') => None,
        Some(ch) if ch.is_ascii_digit() => {
            let ts = c.pos;
            let te = c.take_while(|ch| ch.is_ascii_digit());
            let digits = c.slice(ts, te);
            let t = utf8(digits)
                .and_then(|d| d.parse::<i64>().ok())
                .ok_or_else(|| {
                    format!(
                        "strconv.ParseInt: parsing {}: value out of range",
                        go_quote(digits)
                    )
                })?;
            c.skip_blank();
            if !matches!(c.peek(), None | Some(b'\n')) {
                return Err("expected next entry after timestamp, got \"INVALID\"".into());
            }
            Some(t)
        }
        Some(_) => return Err("expected timestamp or new record, got \"INVALID\"".into()),
    };
    let (series, name, labels_raw) = lex::series_parts(c, (ns, ne, se), labels, inside)?;
    let end = c.pos;
    c.finish_line(end);
    Ok(SampleEntry {
        series,
        name,
        value,
        timestamp_ms,
        created_ms: None,
        exemplar: None,
        labels_raw,
    })
}
