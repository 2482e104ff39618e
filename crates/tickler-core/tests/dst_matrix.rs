//! The DST matrix: a daily reminder at a local time, planned over two years in zones with every
//! kind of transition, must fire exactly once per local day that exists, at that local time; in
//! a gap (the time does not exist that day) at the first instant after it, and in an overlap
//! (the time happens twice) at the earlier one.
//!
//! The expected instant is computed by an oracle written independently of `zone.rs`: ask
//! chrono-tz for the local time; if it does not exist, walk forward a minute at a time until a
//! local time exists.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use tickler_core::plan::plan;
use tickler_core::{EntityId, Event, Policy, Timestamp, Zone, evolve};

const ZONES: [&str; 7] = [
    "America/New_York",
    "Europe/London",
    "Europe/Paris",
    // A 30-minute DST shift.
    "Australia/Lord_Howe",
    // Transitions at midnight: 00:30 does not exist on the spring-forward day.
    "America/Santiago",
    // Skipped 2011-12-30 entirely when it crossed the date line.
    "Pacific/Apia",
    "UTC",
];
const TIMES: [&str; 4] = ["00:30", "01:30", "02:30", "23:59"];
/// Two-year windows: one around Apia's skipped day, one recent.
const WINDOWS: [(i32, u32, u32); 2] = [(2011, 1, 1), (2025, 1, 1)];
const DAYS: i64 = 730;

fn policy(time: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
        name = "daily"
        version = 1
        entity_kind = "daily"
        [anchors.start]
        [[rules]]
        name = "daily"
        kind = "daily"
        anchor = "start"
        every = "1d"
        count = {DAYS}
        at = {{ mode = "local", time = "{time}" }}
        template = "t"
        "#
    ))
    .unwrap()
}

/// The instant a reminder at local `time` on local `date` should fire, or `None` when the date
/// does not exist in the zone.
fn oracle(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<chrono::DateTime<chrono::Utc>> {
    let mut local = NaiveDateTime::new(date, time);
    for _ in 0..(26 * 60) {
        if local.date() != date {
            return None;
        }
        match tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(at) => return Some(at.to_utc()),
            chrono::LocalResult::Ambiguous(earlier, later) => {
                return Some(earlier.to_utc().min(later.to_utc()));
            }
            chrono::LocalResult::None => local += Duration::minutes(1),
        }
    }
    None
}

/// The local dates a daily reminder anchored at local noon covers in `days` 24-hour steps: every date that exists in the zone (Apia has no 2011-12-30).
fn expected_dates(tz: Tz, anchor: Timestamp, days: i64) -> Vec<NaiveDate> {
    (0..days)
        .map(|n| {
            let base = anchor.to_chrono() + Duration::days(n);
            base.with_timezone(&tz).date_naive()
        })
        .collect()
}

#[test]
fn a_daily_local_time_fires_once_per_existing_local_day_in_every_zone_for_two_years() {
    let mut checked = 0;
    let mut gaps = 0;
    let mut overlaps = 0;
    for zone_name in ZONES {
        let tz: Tz = zone_name.parse().unwrap();
        for (year, month, day) in WINDOWS {
            let first = NaiveDate::from_ymd_opt(year, month, day).unwrap();
            // Anchored at local noon, far from any transition, so each 24-hour step lands on
            // the next local day.
            let noon = tz
                .from_local_datetime(&first.and_hms_opt(12, 0, 0).unwrap())
                .single()
                .unwrap();
            let anchor = Timestamp::from_millis(noon.timestamp_millis()).unwrap();
            let dates = expected_dates(tz, anchor, DAYS);
            for time_text in TIMES {
                let policy = policy(time_text);
                let id = EntityId::parse("daily/1").unwrap();
                let created = Event::Created {
                    policy: "daily".into(),
                    policy_version: 1,
                    workflow: None,
                    recipient: "r@example.org".into(),
                    zone: Zone::parse(zone_name).unwrap(),
                    anchors: BTreeMap::from([("start".to_owned(), anchor)]),
                    attributes: BTreeMap::new(),
                };
                let entity = evolve(None, &id, &created, anchor, 1).unwrap();
                let planned: Vec<Timestamp> = plan(&policy, &entity).iter().map(|p| p.at).collect();
                assert_eq!(planned.len() as i64, DAYS, "{zone_name} {time_text}");
                let time = NaiveTime::parse_from_str(time_text, "%H:%M").unwrap();
                for (index, (at, date)) in planned.iter().zip(&dates).enumerate() {
                    let expected = oracle(tz, *date, time)
                        .unwrap_or_else(|| panic!("{zone_name}: {date} exists"));
                    assert_eq!(
                        at.to_chrono(),
                        expected,
                        "{zone_name} {time_text}, occurrence {index} on {date}"
                    );
                    match tz.from_local_datetime(&NaiveDateTime::new(*date, time)) {
                        chrono::LocalResult::None => gaps += 1,
                        chrono::LocalResult::Ambiguous(..) => overlaps += 1,
                        chrono::LocalResult::Single(_) => {}
                    }
                    checked += 1;
                }
                // Exactly one per local day: consecutive dates, none twice, and only Apia's
                // missing day skipped.
                for pair in dates.windows(2) {
                    let step = (pair[1] - pair[0]).num_days();
                    let skipped_apia = zone_name == "Pacific/Apia"
                        && pair[0] == NaiveDate::from_ymd_opt(2011, 12, 29).unwrap();
                    assert_eq!(
                        step,
                        if skipped_apia { 2 } else { 1 },
                        "{zone_name} {pair:?}"
                    );
                }
            }
        }
    }
    // The matrix did meet gaps and overlaps (it would pass vacuously otherwise).
    assert!(gaps >= 10, "{gaps} gaps");
    assert!(overlaps >= 20, "{overlaps} overlaps");
    assert_eq!(
        checked,
        ZONES.len() * WINDOWS.len() * TIMES.len() * DAYS as usize
    );
}
