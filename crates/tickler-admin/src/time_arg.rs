//! Instants as an operator types them on the command line: `2030-01-01T10:00:00Z` (RFC 3339)
//! as on the wire, and the shorthands `2030-01-01`, `2030-01-01T10:00` (local time in the
//! command's or the entity's zone, else UTC), `now`, `now+7d`, `now-1h` and `today` (the
//! daemon's clock, which may be a manual one). The client resolves them to RFC 3339 before a
//! request is sent: the protocol itself takes instants only.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use tickler_core::{Span, Timestamp, Zone};

/// An instant argument before it is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeArg {
    /// RFC 3339: the instant itself.
    At(Timestamp),
    /// A date, or a date and time without an offset: local time in a zone.
    Local(NaiveDateTime),
    /// `now`, `now+SPAN` or `now-SPAN`: the daemon's clock moved by the span.
    Now(Span),
    /// `today`: midnight starting the daemon's current day in a zone.
    Today,
}

/// What resolving a relative or local instant needs.
#[derive(Clone, Copy, Debug)]
pub struct TimeContext {
    /// The daemon's clock.
    pub now: Timestamp,
    /// The zone of local times: the command's `--zone`, the entity's, else UTC.
    pub zone: Zone,
}

impl TimeArg {
    /// Whether resolving needs the daemon's clock.
    pub fn needs_now(&self) -> bool {
        matches!(self, TimeArg::Now(_) | TimeArg::Today)
    }

    /// Whether resolving needs a zone.
    pub fn needs_zone(&self) -> bool {
        matches!(self, TimeArg::Local(_) | TimeArg::Today)
    }

    pub fn resolve(self, context: TimeContext) -> Timestamp {
        match self {
            TimeArg::At(at) => at,
            TimeArg::Local(local) => context.zone.resolve(local),
            TimeArg::Now(span) => context.now.saturating_add(span),
            TimeArg::Today => {
                let day = context.zone.local(context.now).date();
                context.zone.resolve(day.and_time(NaiveTime::MIN))
            }
        }
    }
}

/// Why an argument is not an instant, with the forms that are.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid instant {value:?}: expected 2030-01-01T10:00:00Z, 2030-01-01, 2030-01-01T10:00, \
     now, now+7d, now-1h or today"
)]
pub struct InvalidTime {
    pub value: String,
}

impl FromStr for TimeArg {
    type Err = InvalidTime;

    fn from_str(text: &str) -> Result<TimeArg, InvalidTime> {
        let text = text.trim();
        let invalid = || InvalidTime {
            value: text.to_owned(),
        };
        if let Ok(at) = Timestamp::parse(text) {
            return Ok(TimeArg::At(at));
        }
        match text {
            "now" => return Ok(TimeArg::Now(Span::from_millis(0))),
            "today" => return Ok(TimeArg::Today),
            _ => {}
        }
        if let Some(offset) = text.strip_prefix("now") {
            // `now+7d`, `now-1h`: the sign is the span's own.
            if !offset.starts_with(['+', '-']) {
                return Err(invalid());
            }
            return Span::parse(offset).map(TimeArg::Now).map_err(|_| invalid());
        }
        for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
            if let Ok(local) = NaiveDateTime::parse_from_str(text, format) {
                return Ok(TimeArg::Local(local));
            }
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(|day| TimeArg::Local(day.and_time(NaiveTime::MIN)))
            .map_err(|_| invalid())
    }
}

impl fmt::Display for TimeArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeArg::At(at) => write!(f, "{at}"),
            TimeArg::Local(local) => write!(f, "{}", local.format("%Y-%m-%dT%H:%M:%S")),
            TimeArg::Now(span) => {
                write!(f, "now{}{span}", if span.is_negative() { "" } else { "+" })
            }
            TimeArg::Today => f.write_str("today"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TimeContext {
        TimeContext {
            now: Timestamp::parse("2026-03-01T09:30:00Z").unwrap(),
            zone: Zone::parse("Europe/Paris").unwrap(),
        }
    }

    fn resolved(text: &str) -> String {
        text.parse::<TimeArg>()
            .unwrap()
            .resolve(context())
            .to_string()
    }

    #[test]
    fn rfc3339_is_taken_as_it_is() {
        assert_eq!(resolved("2030-01-01T10:00:00Z"), "2030-01-01T10:00:00Z");
    }

    #[test]
    fn a_date_or_a_local_time_is_read_in_the_zone() {
        assert_eq!(resolved("2030-01-01"), "2029-12-31T23:00:00Z");
        assert_eq!(resolved("2030-07-01T10:00"), "2030-07-01T08:00:00Z");
    }

    #[test]
    fn now_and_today_are_the_daemons_clock() {
        assert_eq!(resolved("now"), "2026-03-01T09:30:00Z");
        assert_eq!(resolved("now+7d"), "2026-03-08T09:30:00Z");
        assert_eq!(resolved("now-1h"), "2026-03-01T08:30:00Z");
        assert_eq!(resolved("today"), "2026-02-28T23:00:00Z");
    }

    #[test]
    fn anything_else_is_refused_listing_the_forms() {
        for text in ["tomorrow", "now7d", "2030-13-01", "10:00"] {
            let err = text.parse::<TimeArg>().unwrap_err().to_string();
            assert!(err.contains("now+7d"), "{err}");
        }
    }
}
