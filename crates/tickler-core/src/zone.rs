//! IANA time zones and the local-time rules of PRODUCT.md.
//!
//! A local time that does not exist (the hour skipped by a spring-forward) moves forward to the
//! first valid instant after the gap; an ambiguous one (the hour repeated in autumn) takes the
//! earlier instant. Both are deliberate, tested choices, not chrono's defaults by accident.

use std::fmt;
use std::str::FromStr;

use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{Error, Timestamp};

/// The longest DST gap in tzdata is 1 h (Lord Howe's is 30 min); 24 h also covers a skipped day
/// such as Pacific/Apia on 2011-12-30, whose local dates vanish entirely.
const GAP_SEARCH_MINUTES_MAX: u32 = 24 * 60 + 1;

/// The zone name closest to a mistyped one: the same name in other case (`europe/paris`),
/// else the nearest within three edits (`Europe/Pari`), else none.
pub fn closest_zone(typed: &str) -> Option<&'static str> {
    let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
    if let Some(name) = names.clone().find(|name| name.eq_ignore_ascii_case(typed)) {
        return Some(name);
    }
    let typed = typed.to_ascii_lowercase();
    names
        .map(|name| (edit_distance(&typed, &name.to_ascii_lowercase()), name))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, name)| name)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// An IANA time zone, written by name (`Europe/Paris`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Zone(Tz);

/// Written as its name, exactly as a `String` is, without allocating one.
impl Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    pub fn parse(name: &str) -> Result<Zone, Error> {
        name.parse::<Tz>()
            .map(Zone)
            .map_err(|_| Error::InvalidZone {
                value: name.to_owned(),
                hint: match closest_zone(name) {
                    Some(zone) => format!("did you mean {zone}?"),
                    None => "expected an IANA name such as Europe/Paris".into(),
                },
            })
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The local wall-clock time of `at` in this zone.
    pub fn local(&self, at: Timestamp) -> NaiveDateTime {
        at.to_chrono().with_timezone(&self.0).naive_local()
    }

    /// The UTC instant of a local date and time: a gap moves forward to the first valid minute,
    /// an overlap takes the earlier instant.
    pub fn resolve(&self, local: NaiveDateTime) -> Timestamp {
        let mut probe = local;
        for _ in 0..GAP_SEARCH_MINUTES_MAX {
            match self.0.from_local_datetime(&probe) {
                LocalResult::Single(at) => return to_timestamp(&at),
                LocalResult::Ambiguous(earlier, _later) => return to_timestamp(&earlier),
                LocalResult::None => {
                    // Inside a gap: step to the next whole minute. Gaps start and end on whole
                    // minutes in every zone of tzdata, so the first valid minute is the gap's end.
                    let next = probe + chrono::Duration::minutes(1);
                    probe = next
                        .with_second(0)
                        .and_then(|t| t.with_nanosecond(0))
                        .unwrap_or(next);
                }
            }
        }
        unreachable!(
            "no valid local time within a day of {local} in {}",
            self.name()
        )
    }

    /// The UTC instant of `time` on local `date`.
    pub fn at_local(&self, date: NaiveDate, time: NaiveTime) -> Timestamp {
        self.resolve(date.and_time(time))
    }
}

/// The instant, clamped to the accepted range: a local time on 9999-12-31 in a zone behind UTC
/// is after the last instant (the planner then records its occurrence as beyond the range).
fn to_timestamp(at: &chrono::DateTime<Tz>) -> Timestamp {
    Timestamp::from_chrono(at).unwrap_or(if at.timestamp_millis() < 0 {
        Timestamp::EPOCH
    } else {
        Timestamp::MAX
    })
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl TryFrom<String> for Zone {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Zone::parse(&value)
    }
}

impl From<Zone> for String {
    fn from(zone: Zone) -> String {
        zone.name().to_owned()
    }
}

impl FromStr for Zone {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::parse(s)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn utc(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    /// Issue 22: a mistyped zone gets the closest real one.
    #[test]
    fn an_unknown_zone_suggests_the_closest_name() {
        let hint = |typed: &str| Zone::parse(typed).unwrap_err().to_string();
        assert!(hint("europe/paris").contains("did you mean Europe/Paris?"));
        assert!(hint("America/New_Yrok").contains("did you mean America/New_York?"));
        assert!(hint("Mars/Olympus").contains("expected an IANA name"));
    }

    #[test]
    fn a_local_time_in_the_spring_gap_moves_to_the_end_of_the_gap() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        // 2026-03-29 02:30 does not exist in Paris: clocks jump from 02:00 to 03:00 (01:00Z).
        assert_eq!(
            paris.resolve(local("2026-03-29 02:30")),
            utc("2026-03-29T01:00:00Z")
        );
        let lord_howe = Zone::parse("Australia/Lord_Howe").unwrap();
        // Lord Howe skips 02:00-02:30 on 2026-10-04 (UTC+10:30 -> +11).
        assert_eq!(
            lord_howe.resolve(local("2026-10-04 02:15")),
            utc("2026-10-03T15:30:00Z")
        );
    }

    #[test]
    fn an_ambiguous_local_time_takes_the_earlier_instant() {
        let new_york = Zone::parse("America/New_York").unwrap();
        // 2026-11-01 01:30 happens twice in New York: first at EDT (05:30Z), then EST (06:30Z).
        assert_eq!(
            new_york.resolve(local("2026-11-01 01:30")),
            utc("2026-11-01T05:30:00Z")
        );
    }

    #[test]
    fn a_skipped_day_resolves_to_the_next_day() {
        let apia = Zone::parse("Pacific/Apia").unwrap();
        // Samoa skipped 2011-12-30 entirely; that date's 09:00 becomes 2011-12-31 00:00 local.
        let at = apia.resolve(local("2011-12-30 09:00"));
        assert_eq!(apia.local(at), local("2011-12-31 00:00"));
    }

    #[test]
    fn unknown_zones_are_refused_naming_the_value() {
        let err = Zone::parse("Mars/Olympus_Mons").unwrap_err();
        assert!(err.to_string().contains("\"Mars/Olympus_Mons\""), "{err}");
    }
}
