//! Time arithmetic shared across vigil: Prometheus duration strings (`1h30m`), used by the
//! config, PromQL and the API; and calendar arithmetic on Unix days (proleptic Gregorian, UTC)
//! for RFC 3339, PromQL's date functions and snapshot names (Howard Hinnant's algorithms).

const UNITS: [(&str, i64); 7] = [
    ("y", 31_536_000_000),
    ("w", 604_800_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// A Prometheus duration (`5m`, `1h30m`, `250ms`) in milliseconds: units from largest to
/// smallest, each at most once. `None` if malformed or out of range.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (rank, (unit, mult)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        if last.is_some_and(|l| rank <= l) {
            return None;
        }
        last = Some(rank);
        total = total.checked_add(n.checked_mul(*mult)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// Whether `s` is a well-formed duration too long for Go's `time.Duration` (int64
/// nanoseconds, about 292 years), which Prometheus refuses as "duration out of range".
pub fn duration_out_of_range(s: &str) -> bool {
    const MAX_MS: i128 = (i64::MAX / 1_000_000) as i128;
    let mut rest = s;
    let mut total: i128 = 0;
    let mut last: Option<usize> = None;
    if s.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        // Saturate: anything with more than 30 digits is out of range anyway.
        let n: i128 = rest[..digits.min(30)]
            .parse()
            .unwrap_or(i128::MAX / 1_000_000_000_000);
        rest = &rest[digits..];
        let Some((rank, (unit, mult))) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
        else {
            return false;
        };
        if last.is_some_and(|l| rank <= l) {
            return false;
        }
        last = Some(rank);
        total = total.saturating_add(n.saturating_mul(*mult as i128));
        rest = &rest[unit.len()..];
    }
    total > MAX_MS
}

/// Milliseconds as Prometheus prints a duration (`1h30m`, `0s`, `-5m`).
pub fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, len) in UNITS {
        let len = len as u64;
        // As Prometheus's `model.Duration`: years and weeks only when nothing is left over
        // (`90d`, not `12w6d`; `15d`, not `2w1d`).
        if matches!(unit, "y" | "w") && !rest.is_multiple_of(len) {
            continue;
        }
        if rest >= len {
            out.push_str(&format!("{}{}", rest / len, unit));
            rest %= len;
        }
    }
    out
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month 1-12, day 1-31)` of a day since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("30m1h"), None);
        assert_eq!(parse_duration_ms("5"), None);
        assert_eq!(format_duration_ms(90_000), "1m30s");
        assert_eq!(format_duration_ms(-300_000), "-5m");
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(15 * 86_400_000), "15d");
        assert_eq!(format_duration_ms(14 * 86_400_000), "2w");
        assert_eq!(format_duration_ms(365 * 86_400_000 + 1000), "365d1s");
    }

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for d in [-800_000, -1, 0, 59, 60, 11_016, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
