//! Go-style durations as Prow serialises them.
//!
//! Prow uses two encodings (reference §1.12):
//! - [`ProwDuration`] (`prowapi.Duration`, decoration `timeout` / `grace_period`): decodes a
//!   JSON integer as nanoseconds or a Go duration string, always encodes a Go duration string.
//! - [`MetaDuration`] (`metav1.Duration`, everything else): Go duration string only.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Error returned when a Go duration string cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

/// Parses a Go duration string such as `2h`, `15m0s`, `1.5s`, `300ms` or `0`.
///
/// Negative durations are refused: no Prow setting means anything with them.
pub fn parse_go_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let err = |reason| ParseDurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.strip_prefix('+').unwrap_or(input);
    if s.starts_with('-') {
        return Err(err("negative durations are not allowed"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(err("empty duration"));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total_nanos: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &s[start..i];
        if number.is_empty() || number == "." {
            return Err(err("expected a number"));
        }
        let unit_start = i;
        while i < bytes.len() && !(bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(err("missing unit (use ns, us, ms, s, m or h)")),
            _ => return Err(err("unknown unit (use ns, us, ms, s, m or h)")),
        };
        let (int_part, frac_part) = match number.split_once('.') {
            Some((a, b)) => (a, b),
            None => (number, ""),
        };
        if frac_part.contains('.') {
            return Err(err("more than one decimal point"));
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err("number too large"))?
        };
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| err("duration too large"))?;
        if !frac_part.is_empty() {
            let mut scale = unit_nanos;
            for digit in frac_part.bytes().take(30) {
                scale /= 10;
                nanos += u128::from(digit - b'0') * scale;
            }
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| err("duration too large"))?;
    }
    if total_nanos > i64::MAX as u128 {
        return Err(err("duration too large"));
    }
    let secs = (total_nanos / 1_000_000_000) as u64;
    let nanos = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration the way Go's `time.Duration.String()` does (`2h0m0s`, `1.5s`, `300ms`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000_000_000 {
        let (value, unit, scale) = if nanos < 1_000 {
            return format!("{nanos}ns");
        } else if nanos < 1_000_000 {
            (nanos, "µs", 1_000u128)
        } else {
            (nanos, "ms", 1_000_000u128)
        };
        return format!("{}{unit}", fraction(value, scale));
    }
    let total_secs = d.as_secs();
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let s_nanos = u128::from(total_secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos());
    let secs = fraction(s_nanos, 1_000_000_000);
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn fraction(value: u128, scale: u128) -> String {
    let int = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return int.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

macro_rules! duration_newtype {
    ($(#[$doc:meta])* $name:ident, accepts_integer = $int:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub Duration);

        impl $name {
            /// The wrapped duration.
            pub fn get(self) -> Duration {
                self.0
            }
        }

        impl From<Duration> for $name {
            fn from(d: Duration) -> Self {
                Self(d)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&format_go_duration(self.0))
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseDurationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_go_duration(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&format_go_duration(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        if $int {
                            f.write_str("a Go duration string like \"2h0m0s\" or integer nanoseconds")
                        } else {
                            f.write_str("a Go duration string like \"10m0s\"")
                        }
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        parse_go_duration(v).map($name).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        if $int {
                            Ok($name(Duration::from_nanos(v)))
                        } else {
                            Err(E::invalid_type(de::Unexpected::Unsigned(v), &self))
                        }
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        if $int && v >= 0 {
                            Ok($name(Duration::from_nanos(v as u64)))
                        } else {
                            Err(E::invalid_type(de::Unexpected::Signed(v), &self))
                        }
                    }
                }
                deserializer.deserialize_any(V)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "String".into()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                String::json_schema(generator)
            }
            fn inline_schema() -> bool {
                true
            }
        }
    };
}

duration_newtype!(
    /// `prowapi.Duration`: reads integer nanoseconds or a Go duration string, writes a string.
    ProwDuration,
    accepts_integer = true
);
duration_newtype!(
    /// `metav1.Duration`: a Go duration string.
    MetaDuration,
    accepts_integer = false
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases = [
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::from_secs(15), "15s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(900), "15m0s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_micros(2), "2µs"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::ZERO, "0s"),
            (Duration::from_secs(48 * 3600), "48h0m0s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go_duration(d), want);
        }
    }

    #[test]
    fn parses_like_go() {
        let cases = [
            ("2h", Duration::from_secs(7200)),
            ("2h0m0s", Duration::from_secs(7200)),
            ("1.5h", Duration::from_secs(5400)),
            ("300ms", Duration::from_millis(300)),
            ("1m30s", Duration::from_secs(90)),
            ("0", Duration::ZERO),
            ("10us", Duration::from_micros(10)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "5", "1x", "-1s", "h", "1..5s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn prow_duration_accepts_nanoseconds() {
        let d: ProwDuration = serde_json::from_str("7200000000000").expect("integer ns");
        assert_eq!(d.0, Duration::from_secs(7200));
        assert_eq!(serde_json::to_string(&d).expect("ser"), "\"2h0m0s\"");
        assert!(serde_json::from_str::<MetaDuration>("5").is_err());
    }
}
