//! OpenMetrics 1.0 text, as Prometheus's `openmetricsparse` reads it.
//!
//! Stricter than the text format: no blank lines, exactly one space between tokens, commas
//! between labels (no trailing comma), `# HELP|TYPE|UNIT name text` with the text running to
//! the newline, other comments are errors, and the input must end with `# EOF` (an optional
//! newline after it, nothing else). Timestamps are float seconds, truncated to milliseconds
//! as Prometheus does. Exemplars (` # {labels} value [timestamp]`) are accepted on samples
//! whose name ends in `_total` or `_bucket` (Prometheus 2.42's rule).

use super::lex::{
    self, Cursor, Dialect, go_quote, is_metric_char, is_metric_start, parse_float, unescape, utf8,
};
use super::{Entry, Exemplar, Format, MetricType, SampleEntry};

const EOF_MISSING: &str = "data does not end with # EOF";

fn start_token_error(c: Option<u8>) -> String {
    // Prometheus quotes the byte as a rune (and a blank past the end of input).
    let ch = c.map(char::from).unwrap_or(' ');
    format!(
        "\"INVALID\" {} is not a valid start token",
        go_quote(ch.to_string().as_bytes())
    )
}

/// The next entry, `None` after `# EOF`, or an error message.
pub(super) fn next<'a>(c: &mut Cursor<'a>) -> Result<Option<Entry<'a>>, String> {
    match c.peek() {
        None => Err(EOF_MISSING.into()),
        Some(b'#') => meta(c),
        Some(ch) if is_metric_start(ch) || ch == b'{' => sample(c).map(|s| Some(Entry::Sample(s))),
        other => Err(start_token_error(other)),
    }
}

fn meta<'a>(c: &mut Cursor<'a>) -> Result<Option<Entry<'a>>, String> {
    c.pos += 1; // '#'
    if c.peek() != Some(b' ') {
        return Err(start_token_error(c.peek()));
    }
    c.pos += 1;
    let r = c.rest();
    let kw = ["HELP", "TYPE", "UNIT"]
        .into_iter()
        .find(|k| r.starts_with(k.as_bytes()) && r.get(4) == Some(&b' '));
    let Some(kw) = kw else {
        if r.starts_with(b"EOF") {
            c.pos += 3;
            if c.peek() == Some(b'\n') {
                c.pos += 1;
                c.line += 1;
            }
            if !c.at_end() {
                return Err("unexpected data after # EOF".into());
            }
            return Ok(None);
        }
        // Where the keyword stopped matching.
        let k = ["HELP ", "TYPE ", "UNIT ", "EOF"]
            .iter()
            .map(|k| k.bytes().zip(r).take_while(|(a, b)| a == *b).count())
            .max()
            .unwrap_or(0);
        return Err(start_token_error(r.get(k).copied()));
    };
    c.pos += 5;
    let end = c.line_end();
    let (family, ne) = match c.peek() {
        Some(b'"') => lex::quoted_family(c, Dialect::OpenMetrics, end)?,
        Some(ch) if is_metric_start(ch) => {
            let ns = c.pos;
            let ne = c.take_while(is_metric_char);
            (utf8(c.slice(ns, ne)).unwrap_or_default(), ne)
        }
        _ => {
            let tok = if c.at_end() { "EOF" } else { "INVALID" };
            return Err(format!("expected metric name after {kw}, got \"{tok}\""));
        }
    };
    if c.peek() != Some(b' ') || c.b.get(end) != Some(&b'\n') {
        return Err(format!("expected text in {kw}"));
    }
    let family_b = family.as_bytes();
    let text = c.slice(ne + 1, end);
    let e = match kw {
        "HELP" => {
            let Some(t) = utf8(text) else {
                return Err("help text is not a valid utf8 string".into());
            };
            Entry::Help {
                family,
                help: unescape(t, true),
            }
        }
        "TYPE" => match utf8(text).and_then(|t| MetricType::parse(t, Format::OpenMetrics)) {
            Some(kind) => Entry::Type { family, kind },
            None => return Err(format!("invalid metric type {}", go_quote(text))),
        },
        _ => {
            if !text.is_empty() {
                let ok = family_b.len() > text.len()
                    && family_b.ends_with(text)
                    && family_b.get(family_b.len() - text.len() - 1) == Some(&b'_');
                if !ok {
                    return Err(format!(
                        "unit not a suffix of metric {}",
                        go_quote(family_b)
                    ));
                }
            }
            Entry::Unit {
                family,
                unit: utf8(text).unwrap_or_default(),
            }
        }
    };
    c.finish_line(end);
    Ok(Some(e))
}

/// What follows a value: Prometheus's lexer states `sTimestamp` / `sETimestamp`.
enum After<'a> {
    Eof,
    Linebreak,
    Exemplar,
    Timestamp(&'a [u8]),
    Invalid,
}

impl After<'_> {
    fn name(&self) -> &'static str {
        match self {
            After::Eof => "EOF",
            After::Linebreak => "LINEBREAK",
            After::Exemplar => "COMMENT",
            After::Timestamp(_) => "TIMESTAMP",
            After::Invalid => "INVALID",
        }
    }
}

/// Consume the next token after a value; ` # {` is an exemplar start only if `exemplar`.
fn after<'a>(c: &mut Cursor<'a>, exemplar: bool) -> After<'a> {
    match c.peek() {
        None => After::Eof,
        Some(b'\n') => {
            c.pos += 1;
            c.line += 1;
            After::Linebreak
        }
        Some(b' ') if exemplar && c.rest().starts_with(b" # {") => {
            c.pos += 4;
            After::Exemplar
        }
        Some(b' ') => match value_token(c) {
            Some(t) => After::Timestamp(t),
            None => After::Invalid,
        },
        Some(_) => After::Invalid,
    }
}

/// ` ` followed by a run of bytes other than blank and newline (`{S}[^ \n]+`).
fn value_token<'a>(c: &mut Cursor<'a>) -> Option<&'a [u8]> {
    if c.peek() != Some(b' ') || matches!(c.peek_at(1), None | Some(b' ' | b'\n')) {
        return None;
    }
    c.pos += 1;
    let s = c.pos;
    let e = c.take_while(|ch| ch != b' ' && ch != b'\n');
    Some(c.slice(s, e))
}

fn timestamp(t: &[u8], invalid: &str) -> Result<i64, String> {
    let f = parse_float(t)?;
    if !f.is_finite() {
        return Err(invalid.into());
    }
    // Go's int64(ts * 1000): truncation (saturating here where Go's is undefined).
    Ok((f * 1000.0) as i64)
}

fn sample<'a>(c: &mut Cursor<'a>) -> Result<SampleEntry<'a>, String> {
    let ns = c.pos;
    let ne = c.take_while(is_metric_char);
    let (mut se, mut labels, mut inside) = (ne, (ne, ne), None);
    if c.peek() == Some(b'{') {
        c.pos += 1;
        let b = lex::label_block(c, Dialect::OpenMetrics, ne > ns, true, ns)?;
        labels = (b.start, b.end);
        inside = b.name;
        se = c.pos;
    }
    if ne == ns && inside.is_none() {
        return Err(format!(
            "metric name not set while parsing: {}",
            go_quote(c.slice(ns, se))
        ));
    }
    let Some(v) = value_token(c) else {
        let tok = match c.peek() {
            None => "EOF",
            Some(b'{') => "BOPEN",
            Some(_) => "INVALID",
        };
        return Err(format!("expected value after metric, got \"{tok}\""));
    };
    let value = parse_float(v)?;
    let (series, name, labels_raw) = lex::series_parts(c, (ns, ne, se), labels, inside)?;
    let mut timestamp_ms = None;
    let mut ex = None;
    match after(c, true) {
        After::Eof => return Err(EOF_MISSING.into()),
        After::Linebreak => {}
        After::Exemplar => ex = Some(exemplar(c, &name)?),
        After::Timestamp(t) => {
            timestamp_ms = Some(timestamp(t, "invalid timestamp")?);
            match after(c, true) {
                After::Linebreak => {}
                After::Exemplar => ex = Some(exemplar(c, &name)?),
                other => {
                    return Err(format!(
                        "expected next entry after timestamp, got \"{}\"",
                        other.name()
                    ));
                }
            }
        }
        After::Invalid => return Err("expected timestamp or # symbol, got \"INVALID\"".into()),
    }
    Ok(SampleEntry {
        series,
        name,
        value,
        timestamp_ms,
        created_ms: None,
        exemplar: ex,
        labels_raw,
    })
}

/// An exemplar after ` # {`, through the end of the line.
fn exemplar<'a>(c: &mut Cursor<'a>, name: &str) -> Result<Exemplar<'a>, String> {
    if !(name.ends_with("_total") || name.ends_with("_bucket")) {
        return Err(format!("metric name {name} does not support exemplars"));
    }
    let at = c.pos;
    let b = lex::label_block(c, Dialect::Exemplar, false, false, at)?;
    let labels_raw = utf8(c.slice(b.start, b.end)).unwrap_or_default();
    let Some(v) = value_token(c) else {
        let tok = if c.at_end() { "EOF" } else { "INVALID" };
        return Err(format!(
            "expected value after exemplar labels, got \"{tok}\""
        ));
    };
    let value = parse_float(v)?;
    let timestamp_ms = match after(c, false) {
        After::Eof => return Err(EOF_MISSING.into()),
        After::Linebreak => None,
        After::Timestamp(t) => {
            let ts = timestamp(t, "invalid exemplar timestamp")?;
            match after(c, false) {
                After::Linebreak => {}
                other => {
                    return Err(format!(
                        "expected next entry after exemplar timestamp, got \"{}\"",
                        other.name()
                    ));
                }
            }
            Some(ts)
        }
        other => {
            return Err(format!(
                "expected timestamp or comment, got \"{}\"",
                other.name()
            ));
        }
    };
    Ok(Exemplar {
        value,
        timestamp_ms,
        labels_raw,
    })
}
