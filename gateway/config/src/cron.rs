//! Cron expressions as Prow's periodics accept them (robfig/cron semantics, evaluated in UTC):
//! five fields `minute hour day-of-month month day-of-week`, an optional leading seconds field,
//! `*`/`?`, lists, ranges, steps, month and weekday names, and the `@yearly`, `@annually`,
//! `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly` and `@every <duration>` descriptors.

use std::time::Duration;

use bosun_proto::duration::parse_go_duration;
use k8s_openapi::jiff::civil::DateTime;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan};

/// Set when a field was `*` or `?`: day-of-month and day-of-week then combine with AND.
const STAR: u64 = 1 << 63;

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Spec {
        second: u64,
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    Every(Duration),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    what: &'static str,
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    what: "second",
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    what: "minute",
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    what: "hour",
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    what: "day of month",
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    what: "month",
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    what: "day of week",
};

fn all(b: &Bounds) -> u64 {
    (b.min..=b.max).fold(0, |acc, i| acc | (1 << i)) | STAR
}

/// Parses a cron expression; the error says what is wrong, lowercase.
pub fn parse_cron(spec: &str) -> Result<CronSchedule, String> {
    let mut spec = spec.trim();
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            let Some((_, after)) = rest.split_once(char::is_whitespace) else {
                return Err("time zone prefix must be followed by a schedule".to_owned());
            };
            spec = after.trim();
        }
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        let (second, minute, hour, dom, month, dow) = match descriptor {
            "yearly" | "annually" => (1, 1, 1, 1 << 1, 1 << 1, all(&DOW)),
            "monthly" => (1, 1, 1, 1 << 1, all(&MONTHS), all(&DOW)),
            "weekly" => (1, 1, 1, all(&DOM), all(&MONTHS), 1),
            "daily" | "midnight" => (1, 1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
            "hourly" => (1, 1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
            other => {
                let Some(d) = other.strip_prefix("every ") else {
                    return Err(format!("unrecognized descriptor: @{other}"));
                };
                let d = parse_go_duration(d.trim())
                    .map_err(|e| format!("failed to parse duration @{other}: {e}"))?;
                let secs = d.as_secs().max(1);
                return Ok(CronSchedule {
                    kind: Kind::Every(Duration::from_secs(secs)),
                });
            }
        };
        return Ok(CronSchedule {
            kind: Kind::Spec {
                second,
                minute,
                hour,
                dom,
                month,
                dow,
            },
        });
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let fields: Vec<&str> = match fields.len() {
        5 => std::iter::once("0").chain(fields).collect(),
        6 => fields,
        n => return Err(format!("expected 5 to 6 fields, found {n}: {spec}")),
    };
    Ok(CronSchedule {
        kind: Kind::Spec {
            second: field(fields[0], &SECONDS)?,
            minute: field(fields[1], &MINUTES)?,
            hour: field(fields[2], &HOURS)?,
            dom: field(fields[3], &DOM)?,
            month: field(fields[4], &MONTHS)?,
            dow: field(fields[5], &DOW)?,
        },
    })
}

fn field(expr: &str, b: &Bounds) -> Result<u64, String> {
    let mut bits = 0;
    for part in expr.split(',') {
        bits |= range(part, b)?;
    }
    Ok(bits)
}

fn range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let mut range_and_step = expr.split('/');
    let range_part = range_and_step.next().unwrap_or("");
    let step_part = range_and_step.next();
    if range_and_step.next().is_some() {
        return Err(format!("too many slashes: {expr}"));
    }
    let mut low_high = range_part.split('-');
    let low = low_high.next().unwrap_or("");
    let high = low_high.next();
    if low_high.next().is_some() {
        return Err(format!("too many hyphens: {expr}"));
    }
    let (start, mut end, mut extra) = if low == "*" || low == "?" {
        if high.is_some() {
            return Err(format!("too many hyphens: {expr}"));
        }
        (b.min, b.max, STAR)
    } else {
        let start = value(low, b)?;
        let end = match high {
            Some(h) => value(h, b)?,
            None => start,
        };
        (start, end, 0)
    };
    let step = match step_part {
        None => 1,
        Some(s) => {
            let step: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            if high.is_none() && extra == 0 {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}) for {}: {expr}",
            b.min, b.what
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}) for {}: {expr}",
            b.max, b.what
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = extra;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        let Some(next) = i.checked_add(step) else {
            break;
        };
        i = next;
    }
    Ok(bits)
}

fn value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(b.min + i as u32);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}"))
}

impl CronSchedule {
    /// An `@every <duration>` schedule (Prow starts these pre-triggered: they fire at the
    /// first sync).
    pub fn is_every(&self) -> bool {
        matches!(self.kind, Kind::Every(_))
    }

    /// The first time strictly after `after` at which the schedule fires (UTC), or `None`
    /// when it never fires within five years (e.g. February 31st).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let Kind::Spec {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
        } = self.kind
        else {
            let Kind::Every(d) = self.kind else {
                return None;
            };
            let secs = after
                .as_second()
                .checked_add(i64::try_from(d.as_secs()).ok()?)?;
            return Timestamp::from_second(secs).ok();
        };
        let utc = TimeZone::UTC;
        let start = Timestamp::from_second(after.as_second().checked_add(1)?).ok()?;
        let mut t = utc.to_datetime(start);
        let limit_year = t.year() + 5;
        let has = |bits: u64, v: i8| bits & (1 << v as u32) != 0;
        let day_matches = |t: &DateTime| {
            let dom_match = has(dom, t.day());
            let dow_match = has(dow, t.weekday().to_sunday_zero_offset());
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_match && dow_match
            } else {
                dom_match || dow_match
            }
        };
        'wrap: while t.year() <= limit_year {
            while !has(month, t.month()) {
                t = DateTime::new(t.year(), t.month(), 1, 0, 0, 0, 0)
                    .ok()?
                    .checked_add(1.month())
                    .ok()?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&t) {
                let m = t.month();
                t = t
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(k8s_openapi::jiff::civil::Time::midnight());
                if t.month() != m {
                    continue 'wrap;
                }
            }
            while !has(hour, t.hour()) {
                let d = t.day();
                t = DateTime::new(t.year(), t.month(), t.day(), t.hour(), 0, 0, 0)
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                if t.day() != d {
                    continue 'wrap;
                }
            }
            while !has(minute, t.minute()) {
                let h = t.hour();
                t = DateTime::new(t.year(), t.month(), t.day(), t.hour(), t.minute(), 0, 0)
                    .ok()?
                    .checked_add(1.minute())
                    .ok()?;
                if t.hour() != h {
                    continue 'wrap;
                }
            }
            while !has(second, t.second()) {
                let m = t.minute();
                t = t.checked_add(1.second()).ok()?;
                if t.minute() != m {
                    continue 'wrap;
                }
            }
            return utc.to_timestamp(t).ok();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn parses_prow_examples() {
        for ok in [
            "00 00 31 2 1",
            "*/5 * * * *",
            "0 */2 * * MON-FRI",
            "30 0 9 * * ?",
            "@daily",
            "@every 1h30m",
            "0 12 1,15 jan,jul *",
            "TZ=UTC 0 0 * * *",
            "*/4294967295 * * * *",
        ] {
            assert!(parse_cron(ok).is_ok(), "{ok}");
        }
        for bad in [
            "* * * *",
            "61 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "@often",
            "5-1 * * * *",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_firing() {
        let s = parse_cron("30 2 * * *").expect("cron");
        assert_eq!(
            s.next_after(ts("2024-01-01T00:00:00Z")),
            Some(ts("2024-01-01T02:30:00Z"))
        );
        assert_eq!(
            s.next_after(ts("2024-01-01T02:30:00Z")),
            Some(ts("2024-01-02T02:30:00Z"))
        );
        let s = parse_cron("0 0 29 2 *").expect("cron");
        assert_eq!(
            s.next_after(ts("2023-03-01T00:00:00Z")),
            Some(ts("2024-02-29T00:00:00Z"))
        );
        let never = parse_cron("0 0 31 2 *").expect("cron");
        assert_eq!(never.next_after(ts("2024-01-01T00:00:00Z")), None);
        let every = parse_cron("@every 90s").expect("cron");
        assert_eq!(
            every.next_after(ts("2024-01-01T00:00:00Z")),
            Some(ts("2024-01-01T00:01:30Z"))
        );
        // day-of-month OR day-of-week when both are restricted (robfig semantics)
        let either = parse_cron("0 0 31 2 1").expect("cron");
        assert_eq!(
            either.next_after(ts("2024-01-31T00:00:00Z")),
            Some(ts("2024-02-05T00:00:00Z"))
        );
    }
}
