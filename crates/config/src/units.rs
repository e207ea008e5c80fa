//! Durations and sizes as Prometheus writes them in YAML.

use std::time::Duration;

/// Prometheus's `model.ParseDuration`: `1y2w3d4h5m6s7ms`, units from largest to smallest,
/// each at most once; `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match s {
        "0" => Ok(Duration::ZERO),
        "" => Err("empty duration string".into()),
        _ => vigil_model::time::parse_duration_ms(s)
            .map(|ms| Duration::from_millis(ms as u64))
            .ok_or_else(|| format!("not a valid duration string: {s:?}")),
    }
}

/// Prometheus's duration formatting (`1m30s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    vigil_model::time::format_duration_ms(d.as_millis() as i64)
}

/// A byte size with a unit (`B`, `KB`, `MB`, `GB`, `TB`, `PB`, `EB`; powers of 1024), as
/// Prometheus's `units.Base2Bytes`; a unit is required.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("units: invalid size {s:?}"));
    }
    let mult: u64 = match unit {
        "B" => 1,
        "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        "TB" | "TiB" => 1 << 40,
        "PB" | "PiB" => 1 << 50,
        "EB" | "EiB" => 1 << 60,
        u => return Err(format!("units: unknown unit {u} in {s}")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("units: invalid size {s:?}"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("units: size out of range {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("15MB").unwrap(), 15 << 20);
        assert!(parse_size("100").is_err());
        assert!(parse_size("-1GB").is_err());
    }
}
