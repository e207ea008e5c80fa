//! Go's `time.ParseDuration`, which robfig/cron applies to `@every` schedules: `1h30m`, `2.5s`,
//! `-300ms`,
//! `1µs`, `0`. Units are `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h`; there are no days,
//! and every number needs a unit except a bare `0`. The sum is whole nanoseconds in an `i64`,
//! as Go's, so a value past about 292 years is an error there and here.

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // U+00B5 micro sign
    ("\u{3bc}s", 1_000), // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The duration in nanoseconds, or Go's message for what is wrong with it.
pub fn parse_nanos(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part; more than fits in 63 bits is an error, as in Go.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &d in &b[..int_len] {
            v = v
                .checked_mul(10)
                .and_then(|x| x.checked_add(u64::from(d - b'0')))
                .filter(|&x| x <= 1 << 63)
                .ok_or_else(invalid)?;
        }
        s = &s[int_len..];
        let pre = int_len > 0;
        // The fraction: its digits are kept while they fit, the rest only checked.
        let (mut frac, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let rb = rest.as_bytes();
            let n = rb.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &d in &rb[..n] {
                if overflow {
                    continue;
                }
                match frac
                    .checked_mul(10)
                    .and_then(|x| x.checked_add(u64::from(d - b'0')))
                    .filter(|&x| x <= 1 << 63)
                {
                    Some(x) => {
                        frac = x;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
            post = n > 0;
            s = &rest[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let u = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == u) else {
            return Err(format!("time: unknown unit {u:?} in duration {orig:?}"));
        };
        if v > (1 << 63) / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go adds float64(frac) * (float64(unit) / scale), truncated.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > 1 << 63 {
                return Err(invalid());
            }
        }
        total = total
            .checked_add(v)
            .filter(|&x| x <= 1 << 63)
            .ok_or_else(invalid)?;
    }
    if neg {
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > i64::MAX as u64 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// The duration in seconds, as Go's `Duration.Seconds` gives it.
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let d = parse_nanos(s)?;
    let (sec, nsec) = (d / 1_000_000_000, d % 1_000_000_000);
    Ok(sec as f64 + nsec as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_accepts_these() {
        // Cases from Go's time package documentation and its parse tests' kinds.
        for (s, ns) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("-5s", -5_000_000_000),
            ("+5s", 5_000_000_000),
            ("-0.5s", -500_000_000),
            ("1.5h", 5_400_000_000_000),
            ("1h30m45s", 5_445_000_000_000),
            ("300ms", 300_000_000),
            ("-1.5h", -5_400_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("1ns", 1),
            ("1us", 1_000),
            ("1\u{b5}s", 1_000),
            ("1\u{3bc}s", 1_000),
            (".5s", 500_000_000),
            ("5.s", 5_000_000_000),
            ("1.004s", 1_004_000_000),
            ("1.0040s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns5s", 5_000_000_010),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", 360_000_000_000),
        ] {
            assert_eq!(parse_nanos(s), Ok(ns), "{s}");
        }
        assert_eq!(parse_seconds("1m30.5s"), Ok(90.5));
        assert_eq!(parse_seconds("-1.25s"), Ok(-1.25));
    }

    #[test]
    fn go_refuses_these() {
        for s in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "1.5x",
            "\u{b5}s",
            "3000000h",
            "9223372036854775808ns",
            "1h-5m",
            " 1s",
            "1s ",
        ] {
            assert!(parse_nanos(s).is_err(), "{s:?} should fail");
        }
        assert_eq!(
            parse_nanos("3"),
            Err("time: missing unit in duration \"3\"".into())
        );
        assert_eq!(
            parse_nanos("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(parse_nanos("x"), Err("time: invalid duration \"x\"".into()));
    }
}
