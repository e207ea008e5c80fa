//! Time in the API: Unix seconds as floats or RFC 3339 in, RFC 3339 and JSON numbers out.

use vigil_model::time::{civil_from_days, days_from_civil};

/// Parse an API time parameter into milliseconds: float Unix seconds or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    use vigil_promql::limits::{MAX_TIME_MS, clamp_time_ms};
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        // Clamped far beyond any data, so the engine's time arithmetic cannot overflow.
        return Ok(clamp_time_ms(f));
    }
    parse_rfc3339(s)
        .map(|t| t.clamp(-MAX_TIME_MS, MAX_TIME_MS))
        .ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut i = 19;
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        let padded: String = frac.chars().chain(std::iter::repeat('0')).take(3).collect();
        ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        b'+' | b'-' if i + 6 == b.len() => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            sign * (num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// RFC 3339 with nanoseconds in UTC, as Go's `time.RFC3339Nano` prints.
pub fn format_rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A step or timeout: float seconds or a Prometheus duration. Milliseconds.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
        && f >= 0.0
    {
        return Ok((f * 1000.0).round() as i64);
    }
    vigil_promql::lexer::parse_duration_ms(s)
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(
            parse_time("2015-07-01T22:10:51.781+02:00").unwrap(),
            1_435_781_451_781
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn formats_rfc3339() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_435_781_451_781);
        assert_eq!(format_rfc3339(t), "2015-07-01T20:10:51.781Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_param("15").unwrap(), 15_000);
        assert_eq!(parse_duration_param("1m").unwrap(), 60_000);
        assert!(parse_duration_param("-1").is_err());
    }
}
