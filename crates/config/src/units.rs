//! Durations and sizes as Prometheus writes them in YAML.

use std::time::Duration;

/// Prometheus's `model.ParseDuration`: `1y2w3d4h5m6s7ms`, units from largest to smallest,
/// each at most once; `0` alone is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match s {
        "0" => Ok(Duration::ZERO),
        "" => Err("empty duration string".into()),
        // Prometheus's `model.ParseDuration` refuses what Go's `time.Duration` cannot hold
        // (about 292 years); vigil's scrape loop divides by such intervals too.
        _ if vigil_model::time::duration_out_of_range(s) => {
            Err(format!("duration out of range: {s:?}"))
        }
        _ => vigil_model::time::parse_duration_ms(s)
            .map(|ms| Duration::from_millis(ms as u64))
            .ok_or_else(|| format!("not a valid duration string: {s:?}")),
    }
}

/// Prometheus's duration formatting (`1m30s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    vigil_model::time::format_duration_ms(d.as_millis() as i64)
}

pub use vigil_model::size::{format_size, parse_size};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_base2bytes() {
        assert_eq!(parse_size("512MB").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5GB").unwrap(), 1536 << 20);
        assert_eq!(parse_size("1GB512MB").unwrap(), (1 << 30) + (512 << 20));
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["512", "512mb", "1kB", "1XB", "", "GB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size((1 << 30) + 1), "1GiB1B");
        assert_eq!(format_size(0), "0B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        // Go's time.Duration holds up to about 292 years, as Prometheus checks.
        assert_eq!(
            parse_duration("292y").unwrap(),
            Duration::from_secs(292 * 31_536_000)
        );
        for far in ["293y", "288230376151711744ms", "9223372036854775807ms"] {
            assert_eq!(
                parse_duration(far).unwrap_err(),
                format!("duration out of range: {far:?}")
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("15MB").unwrap(), 15 << 20);
        assert!(parse_size("100").is_err());
        assert!(parse_size("-1GB").is_err());
    }
}
