//! Cron schedules as CronJobs write them, and the next run after a time, by the rules of the
//! cron library kube-state-metrics uses for `kube_cronjob_next_schedule_time` (robfig/cron's
//! standard parser): five fields (minute, hour, day of month, month, day of week) with `*`,
//! `?`, lists, ranges, steps and month/day names; `@yearly` … `@hourly` and `@every 90m`; a
//! `CRON_TZ=` (or `TZ=`) prefix or the CronJob's `timeZone`, else this process's zone.

use jiff::tz::TimeZone;
use jiff::{ToSpan, Zoned};

#[derive(Debug)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
}

#[derive(Debug)]
enum Kind {
    Fields(Fields),
    /// `@every`: a fixed delay in whole seconds (at least one).
    Every(i64),
}

#[derive(Debug)]
struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day of month or of week written as `*`/`?`: then both must match, else either.
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field: its bits, and whether it was a bare `*`/`?`.
fn field(
    expr: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in expr.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                Some(
                    st.parse::<u32>()
                        .map_err(|_| format!("bad step {st:?} in {expr:?}"))?,
                ),
            ),
            None => (part, None),
        };
        let value = |v: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
                return Ok(i as u32 + name_base);
            }
            v.parse::<u32>()
                .map_err(|_| format!("{v:?} is not a number in {expr:?}"))
        };
        let (mut lo, mut hi, bare) = if range == "*" || range == "?" {
            (min, max, true)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?, false)
        } else {
            let v = value(range)?;
            (v, v, false)
        };
        if let Some(st) = step {
            // Newer kube-state-metrics (go-cron) refuses steps the field cannot take, where
            // robfig/cron quietly ran once per range.
            if st == 0 || st > max {
                return Err(format!("step {st} out of range in {expr:?}"));
            }
            // `5/15` means from 5 to the end, every 15.
            if !bare && !range.contains('-') {
                hi = max;
            }
        }
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let st = step.unwrap_or(1);
        star |= bare && st <= 1;
        while lo <= hi {
            bits |= 1 << lo;
            lo += st;
        }
    }
    Ok((bits, star))
}

impl Schedule {
    pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let mut spec = spec.trim();
        let mut tz_name = time_zone.map(str::to_string);
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = spec.strip_prefix(prefix) {
                // kube-state-metrics prepends the CronJob's zone, so a schedule naming its own
                // as well has one field too many there.
                if time_zone.is_some() {
                    return Err("a time zone in both the schedule and spec.timeZone".into());
                }
                let (name, sched) = rest
                    .split_once(char::is_whitespace)
                    .ok_or("a time zone and no schedule")?;
                tz_name = Some(name.to_string());
                spec = sched.trim();
            }
        }
        let tz = match &tz_name {
            Some(n) => TimeZone::get(n).map_err(|e| format!("time zone {n:?}: {e}"))?,
            None => TimeZone::system(),
        };
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            s if s.starts_with("@every ") => {
                let secs = super::go_duration::parse_seconds(&s["@every ".len()..])?;
                return Ok(Schedule {
                    // Whole seconds, at least one, the fraction dropped, as robfig/cron does.
                    kind: Kind::Every((secs.trunc() as i64).max(1)),
                    tz,
                });
            }
            s if s.starts_with('@') => return Err(format!("unknown descriptor {s:?}")),
            s => s,
        };
        let f: Vec<&str> = expanded.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {expanded:?}",
                f.len()
            ));
        }
        let (minute, _) = field(f[0], 0, 59, &[], 0)?;
        let (hour, _) = field(f[1], 0, 23, &[], 0)?;
        let (dom, dom_star) = field(f[2], 1, 31, &[], 0)?;
        let (month, _) = field(f[3], 1, 12, &MONTHS, 1)?;
        let (dow, dow_star) = field(f[4], 0, 6, &DAYS, 0)?;
        Ok(Schedule {
            kind: Kind::Fields(Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                dom_star,
                dow_star,
            }),
            tz,
        })
    }

    /// The first run strictly after `after` (unix seconds), or `None` when there is none within
    /// five years (`0 0 30 2 *`).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let f = match &self.kind {
            Kind::Every(d) => return after.checked_add(*d),
            Kind::Fields(f) => f,
        };
        let bit = |set: u64, v: i8| set & (1u64 << v) != 0;
        let day_matches = |t: &Zoned| {
            let d = bit(f.dom, t.day());
            let w = bit(f.dow, t.weekday().to_sunday_zero_offset());
            if f.dom_star || f.dow_star {
                d && w
            } else {
                d || w
            }
        };
        let mut t = jiff::Timestamp::from_second(after.checked_add(1)?)
            .ok()?
            .to_zoned(self.tz.clone());
        let year_limit = t.year() + 5;
        // Each unit is moved forward until it matches; moving one wraps the next larger
        // unit, so every check starts over (as robfig/cron does). The first move also
        // truncates the smaller units.
        let mut truncated = false;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            // Whole months and days move to the next one's first instant, re-read in the zone
            // each time: adding calendar days keeps the clock time, and a day whose midnight a
            // daylight-saving change skips starts at 01:00, which must not stick to the days
            // after it.
            while !bit(f.month, t.month()) {
                truncated = true;
                t = t
                    .first_of_month()
                    .ok()?
                    .checked_add(1.month())
                    .ok()?
                    .start_of_day()
                    .ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&t) {
                truncated = true;
                t = t.tomorrow().ok()?.start_of_day().ok()?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !bit(f.hour, t.hour()) {
                if !truncated {
                    truncated = true;
                    t = t
                        .with()
                        .minute(0)
                        .second(0)
                        .subsec_nanosecond(0)
                        .build()
                        .ok()?;
                }
                t = t.checked_add(1.hour()).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !bit(f.minute, t.minute()) {
                if !truncated {
                    truncated = true;
                    t = t.with().second(0).subsec_nanosecond(0).build().ok()?;
                }
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            while t.second() != 0 {
                truncated = true;
                t = t.checked_add(1.second()).ok()?;
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t.timestamp().as_second());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(spec: &str, tz: Option<&str>, after: i64) -> Option<i64> {
        Schedule::parse(spec, tz).unwrap().next_after(after)
    }

    #[test]
    fn next_runs_as_kube_state_metrics_computes_them() {
        // kube-state-metrics' TestGetNextScheduledTime and cronjob_test cases.
        assert_eq!(
            next("0 */6 * * *", Some("UTC"), 1520742896),
            Some(1520748000)
        );
        assert_eq!(
            next("0 */6 * * *", Some("Asia/Shanghai"), 1520742896),
            Some(1520762400)
        );
        assert_eq!(
            next("CRON_TZ=Asia/Shanghai 0 */6 * * *", None, 1520742896),
            Some(1520762400)
        );
        assert_eq!(
            next("25 * * * *", Some("UTC"), 1520766296),
            Some(1520767500)
        );
        // A run exactly at `after` is not the next one.
        assert_eq!(next("0 * * * *", Some("UTC"), 1520748000), Some(1520751600));
        assert_eq!(next("@hourly", Some("UTC"), 1520748000), Some(1520751600));
        assert_eq!(next("@every 90m", Some("UTC"), 100), Some(100 + 5400));
        // Day of month or day of week when both are restricted; both when one is `*`.
        // 2018-03-11 is a Sunday.
        assert_eq!(
            next("0 0 13 * 1", Some("UTC"), 1520742896),
            Some(1520812800)
        ); // Mon 12th
        assert_eq!(
            next("0 0 13 * *", Some("UTC"), 1520742896),
            Some(1520899200)
        ); // Tue 13th
        assert_eq!(
            next("0 0 * * MON", Some("UTC"), 1520742896),
            Some(1520812800)
        );
        assert_eq!(
            next("0 12 * JAN-FEB *", Some("UTC"), 1520742896),
            Some(1546344000)
        ); // 2019-01-01
        assert_eq!(next("0 0 30 2 *", Some("UTC"), 1520742896), None);
        // A midnight that a daylight-saving change skips (Santiago, 2024-09-08) does not push
        // later midnights to 01:00.
        let at = |s: &str| s.parse::<Zoned>().unwrap().timestamp().as_second();
        assert_eq!(
            next(
                "0 0 10 * *",
                Some("America/Santiago"),
                at("2024-09-07T12:00:00[America/Santiago]")
            ),
            Some(at("2024-09-10T00:00:00[America/Santiago]"))
        );
        assert_eq!(
            next(
                "0 0 * * *",
                Some("America/Santiago"),
                at("2024-09-07T12:00:00[America/Santiago]")
            ),
            // As robfig/cron: counting hours from noon steps over the missing midnight.
            Some(at("2024-09-09T00:00:00[America/Santiago]"))
        );
        assert_eq!(next("@every 1.6s", Some("UTC"), 100), Some(101));
        // Go's ParseDuration takes `0`, signs and the Greek mu; robfig/cron raises anything
        // under a second to one.
        assert_eq!(next("@every 0", Some("UTC"), 100), Some(101));
        assert_eq!(next("@every -5s", Some("UTC"), 100), Some(101));
        assert_eq!(next("@every 1\u{3bc}s", Some("UTC"), 100), Some(101));
        // Across a daylight-saving change: 02:30 does not exist on 2018-03-11 in New York.
        assert_eq!(
            next("30 2 * * *", Some("America/New_York"), 1520742896),
            Some(1520836200) // 2018-03-12 02:30 EDT
        );
    }

    #[test]
    fn bad_schedules_are_errors() {
        for (s, tz) in [
            ("*/120 4-22 * * *", None),
            ("0 1 */32,1-7 * 3", None),
            ("0 */6 * * *", Some("Invalid/Zone")),
            ("CRON_TZ=UTC 0 */6 * * *", Some("UTC")),
            ("* * * *", None),
            ("61 * * * *", None),
            ("@fortnightly", None),
            ("*/0 * * * *", None),
            ("5-1 * * * *", None),
            // Go's time.ParseDuration: no days, and a number needs its unit.
            ("@every 1d", None),
            ("@every 90", None),
            ("@every  5s", None),
            ("@every 3000000h", None),
        ] {
            assert!(Schedule::parse(s, tz).is_err(), "{s:?} {tz:?}");
        }
    }
}
