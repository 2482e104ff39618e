//! Instants and spans.
//!
//! Every instant tickler stores is UTC milliseconds since the Unix epoch: a plain `i64` on disk,
//! so the order of keys on disk is the order of time. Human-readable encodings (JSON, TOML) use
//! RFC 3339 for instants and a compact `2d`, `-1h30m`, `500ms` form for spans; binary encodings
//! (postcard) use the integer. Local time only exists in `zone`, at the edge of planning.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: i64 = 7 * MS_PER_DAY;

/// The instants tickler accepts: years 1970 to 9999. Earlier or later values are almost always
/// a unit mistake (seconds given as milliseconds), so they are refused rather than stored.
pub const TIMESTAMP_MIN_MS: i64 = 0;
pub const TIMESTAMP_MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// An instant in UTC with millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The last instant tickler represents. The planner gives it to an occurrence that would
    /// fall after it (a local time or an offset past year 9999), which then ends with a record
    /// saying so rather than vanishing.
    pub const MAX: Timestamp = Timestamp(TIMESTAMP_MAX_MS);

    /// Milliseconds since the epoch; `None` outside 1970..=9999.
    pub fn from_millis(ms: i64) -> Option<Timestamp> {
        (TIMESTAMP_MIN_MS..=TIMESTAMP_MAX_MS)
            .contains(&ms)
            .then_some(Timestamp(ms))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Timestamp, Error> {
        let invalid = || Error::InvalidInstant {
            value: text.to_owned(),
        };
        let parsed = DateTime::parse_from_rfc3339(text.trim()).map_err(|_| invalid())?;
        Timestamp::from_millis(parsed.timestamp_millis()).ok_or_else(invalid)
    }

    pub fn to_chrono(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .expect("a Timestamp is always within chrono's range")
    }

    pub fn from_chrono<Z: TimeZone>(at: &DateTime<Z>) -> Option<Timestamp> {
        Timestamp::from_millis(at.timestamp_millis())
    }

    /// `self + span`, or `None` if that leaves the accepted range.
    pub fn checked_add(self, span: Span) -> Option<Timestamp> {
        self.0.checked_add(span.0).and_then(Timestamp::from_millis)
    }

    /// `self + span`, clamped to the accepted range.
    pub fn saturating_add(self, span: Span) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(span.0)
                .clamp(TIMESTAMP_MIN_MS, TIMESTAMP_MAX_MS),
        )
    }

    /// The signed span from `earlier` to `self`.
    pub fn since(self, earlier: Timestamp) -> Span {
        Span(self.0 - earlier.0)
    }

    /// The start of the UTC hour containing `self`.
    pub fn truncate_to_hour(self) -> Timestamp {
        Timestamp(self.0 - self.0.rem_euclid(MS_PER_HOUR))
    }

    /// `self` if it is on a whole UTC hour, else the next whole hour.
    pub fn ceil_to_hour(self) -> Timestamp {
        let truncated = self.truncate_to_hour();
        if truncated == self {
            self
        } else {
            Timestamp((truncated.0 + MS_PER_HOUR).min(TIMESTAMP_MAX_MS))
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_chrono()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Timestamp::parse(&text).map_err(D::Error::custom)
        } else {
            let ms = i64::deserialize(deserializer)?;
            Timestamp::from_millis(ms)
                .ok_or_else(|| D::Error::custom(format!("instant {ms} ms is out of range")))
        }
    }
}

/// A signed length of time in milliseconds: an offset from an anchor, a delay, a grace.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(i64);

impl Span {
    pub const ZERO: Span = Span(0);

    pub const fn from_millis(ms: i64) -> Span {
        Span(ms)
    }
    pub const fn seconds(n: i64) -> Span {
        Span(n.saturating_mul(MS_PER_SECOND))
    }
    pub const fn minutes(n: i64) -> Span {
        Span(n.saturating_mul(MS_PER_MINUTE))
    }
    pub const fn hours(n: i64) -> Span {
        Span(n.saturating_mul(MS_PER_HOUR))
    }
    pub const fn days(n: i64) -> Span {
        Span(n.saturating_mul(MS_PER_DAY))
    }
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    pub fn checked_mul(self, factor: i64) -> Option<Span> {
        self.0.checked_mul(factor).map(Span)
    }

    /// Parses `2d`, `-2d`, `1h30m`, `90s`, `500ms`, `1w`: one or more number–unit pairs with an
    /// optional leading sign. A bare number is refused: its unit would be a guess.
    pub fn parse(text: &str) -> Result<Span, Error> {
        let invalid = |reason: &str| Error::InvalidSpan {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim();
        let (negative, mut rest) = match trimmed.as_bytes().first() {
            Some(b'-') => (true, &trimmed[1..]),
            Some(b'+') => (false, &trimmed[1..]),
            _ => (false, trimmed),
        };
        if rest.is_empty() {
            return Err(invalid("expected a number and a unit, e.g. 2d or 90s"));
        }
        let mut total: i64 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid("expected a number"));
            }
            let number: i64 = rest[..digits]
                .parse()
                .map_err(|_| invalid("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" => MS_PER_SECOND,
                "m" => MS_PER_MINUTE,
                "h" => MS_PER_HOUR,
                "d" => MS_PER_DAY,
                "w" => MS_PER_WEEK,
                "" => return Err(invalid("missing unit (one of ms, s, m, h, d, w)")),
                _ => return Err(invalid("unknown unit (expected ms, s, m, h, d or w)")),
            };
            rest = &rest[unit_len..];
            total = number
                .checked_mul(unit)
                .and_then(|ms| total.checked_add(ms))
                .ok_or_else(|| invalid("too large"))?;
        }
        Ok(Span(if negative { -total } else { total }))
    }
}

impl fmt::Display for Span {
    /// The canonical form: largest units first, e.g. `-1d2h`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let mut rest = self.0.unsigned_abs();
        for (unit, name) in [
            (MS_PER_DAY as u64, "d"),
            (MS_PER_HOUR as u64, "h"),
            (MS_PER_MINUTE as u64, "m"),
            (MS_PER_SECOND as u64, "s"),
            (1, "ms"),
        ] {
            if rest >= unit {
                write!(f, "{}{}", rest / unit, name)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Span {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Span::parse(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Span::parse(&text).map_err(D::Error::custom)
        } else {
            i64::deserialize(deserializer).map(Span)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn instants_print_as_rfc3339_utc_and_parse_back() {
        let t = at("2026-03-05T10:00:00+01:00");
        assert_eq!(t.to_string(), "2026-03-05T09:00:00Z");
        assert_eq!(at(&t.to_string()), t);
        assert_eq!(
            at("2026-03-05T09:00:00.250Z").to_string(),
            "2026-03-05T09:00:00.250Z"
        );
    }

    #[test]
    fn invalid_instants_are_refused_with_the_value_named() {
        for bad in [
            "yesterday",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn hour_rounding() {
        assert_eq!(
            at("2026-03-05T09:59:59Z").truncate_to_hour(),
            at("2026-03-05T09:00:00Z")
        );
        assert_eq!(
            at("2026-03-05T09:00:01Z").ceil_to_hour(),
            at("2026-03-05T10:00:00Z")
        );
        assert_eq!(
            at("2026-03-05T09:00:00Z").ceil_to_hour(),
            at("2026-03-05T09:00:00Z")
        );
    }

    #[test]
    fn spans_parse_and_print_canonically() {
        for (text, ms, canonical) in [
            ("2d", 2 * MS_PER_DAY, "2d"),
            ("-2d", -2 * MS_PER_DAY, "-2d"),
            ("+1h30m", 90 * MS_PER_MINUTE, "1h30m"),
            ("90s", 90_000, "1m30s"),
            ("500ms", 500, "500ms"),
            ("1w", MS_PER_WEEK, "7d"),
            ("0s", 0, "0s"),
        ] {
            let span = Span::parse(text).unwrap();
            assert_eq!(span.as_millis(), ms, "{text}");
            assert_eq!(span.to_string(), canonical, "{text}");
            assert_eq!(Span::parse(canonical).unwrap(), span);
        }
    }

    #[test]
    fn bad_spans_name_the_value() {
        for bad in ["", "-", "10", "3 days", "2y", "d", "99999999999999999999d"] {
            let err = Span::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn binary_encoding_is_the_integer_and_text_encoding_is_rfc3339() {
        let t = at("2026-03-05T09:00:00Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-03-05T09:00:00Z\""
        );
        let bytes = postcard::to_stdvec(&t).unwrap();
        let back: Timestamp = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, t);
        let raw: i64 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(raw, t.as_millis());
    }
}
