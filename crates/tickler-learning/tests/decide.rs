//! The pure decisions of learner schedules (`tickler_learning`): what an enrolment
//! becomes, and what a course change or a track change means for a schedule.

use std::collections::BTreeMap;

use tickler_core::{AttrValue, Entity, Event, Timestamp, Zone, fold};
use tickler_learning::{
    self as learner, Decision, Enrolment, course_change, deadline_days, decide_enrolment,
    highlight_weeks, track_change_basis,
};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A directory entity with these anchors and attributes, as the engine would hold it.
fn entity(id: &str, anchors: &[(&str, &str)], attributes: &[(&str, AttrValue)]) -> Entity {
    let created = Event::Created {
        policy: "p".into(),
        policy_version: 1,
        workflow: None,
        recipient: id.into(),
        zone: Zone::UTC,
        anchors: anchors
            .iter()
            .map(|(name, value)| (name.to_string(), at(value)))
            .collect(),
        attributes: attributes
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect(),
    };
    let id = id.parse().unwrap();
    fold(&id, None, [(1, at("2026-01-01T00:00:00Z"), &created)])
        .unwrap()
        .0
        .unwrap()
}

fn site(attributes: &[(&str, AttrValue)]) -> Entity {
    let mut all = vec![("create_schedules", AttrValue::Bool(true))];
    all.extend(attributes.iter().cloned());
    entity("site/demo", &[], &all)
}

fn course(attributes: &[(&str, AttrValue)]) -> Entity {
    let mut all = vec![
        ("site", AttrValue::Text("demo".into())),
        ("verified", AttrValue::Bool(true)),
    ];
    all.extend(attributes.iter().cloned());
    entity(
        "course/course-v1:X+Y+1",
        &[
            ("start", "2026-03-01T00:00:00Z"),
            ("end", "2026-06-01T00:00:00Z"),
        ],
        &all,
    )
}

fn enrolment(learner: &str, at_text: &str) -> Enrolment {
    Enrolment {
        learner: learner.into(),
        email: format!("{learner}@example.org"),
        name: String::new(),
        course: "course-v1:X+Y+1".into(),
        enrolled_at: Some(at(at_text)),
        zone: None,
        track: "audit".into(),
        delivery_time: None,
    }
}

fn table(rows: &[&[(&str, &str)]]) -> AttrValue {
    AttrValue::Table(
        rows.iter()
            .map(|row| {
                row.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect(),
    )
}

#[test]
fn deadline_days_come_from_the_course_then_its_org_then_the_site_then_21() {
    let orgs = table(&[&[("org", "MITx"), ("days", "14")]]);
    let s = site(&[
        ("deadline_days", AttrValue::Int(30)),
        ("org_deadline_days", orgs),
    ]);
    assert_eq!(
        deadline_days(&s, &course(&[("deadline_days", AttrValue::Int(7))])),
        Some(7)
    );
    assert_eq!(
        deadline_days(&s, &course(&[("org", AttrValue::Text("MITx".into()))])),
        Some(14)
    );
    assert_eq!(
        deadline_days(&s, &course(&[("org", AttrValue::Text("HarvardX".into()))])),
        Some(30)
    );
    assert_eq!(deadline_days(&site(&[]), &course(&[])), Some(21));
    assert_eq!(
        deadline_days(&s, &course(&[("deadline_opt_out", AttrValue::Bool(true))])),
        None
    );
}

#[test]
fn weekly_highlights_count_the_leading_sections_that_have_some() {
    let highlights = table(&[
        &[("section", "1"), ("highlights", "a")],
        &[("section", "2"), ("highlights", "b\nc")],
        &[("section", "3"), ("highlights", "  ")],
        &[("section", "4"), ("highlights", "d")],
    ]);
    assert_eq!(highlight_weeks(&course(&[("highlights", highlights)])), 2);
    assert_eq!(highlight_weeks(&course(&[])), 0);
}

#[test]
fn the_hold_back_draw_is_the_same_for_a_learner_and_course_on_every_run() {
    let s = site(&[("hold_back_ratio", AttrValue::Text("0.3".into()))]);
    let c = course(&[]);
    let mut held = 0;
    let mut held_among_first_40 = Vec::new();
    for n in 0..1000 {
        let e = enrolment(&format!("l{n}"), "2026-03-02T00:00:00Z");
        let first = decide_enrolment(&s, &c, &e, 7, false).unwrap();
        assert_eq!(first, decide_enrolment(&s, &c, &e, 7, false).unwrap());
        let Decision::Schedule { create, .. } = first else {
            panic!("schedules are on")
        };
        if create.attributes["held_back"] == AttrValue::Bool(true) {
            held += 1;
            if n < 40 {
                held_among_first_40.push(n);
            }
        }
    }
    // Pinned: who is held back must not change with a release, or a learner re-enrolled after
    // an upgrade would change group.
    assert_eq!(
        held_among_first_40,
        [0, 6, 10, 11, 14, 17, 20, 26, 28, 30, 32, 34, 35, 37, 39]
    );
    // A 0.3 ratio over 1,000 learners: well within five standard deviations (~72).
    assert!((230..=370).contains(&held), "{held}");
    // An invalid ratio is refused naming it.
    let bad = site(&[("hold_back_ratio", AttrValue::Text("30%".into()))]);
    let err =
        decide_enrolment(&bad, &c, &enrolment("x", "2026-03-02T00:00:00Z"), 7, false).unwrap_err();
    assert!(err.to_string().contains("\"30%\""), "{err}");
}

#[test]
fn a_course_change_touches_only_what_differs_and_keeps_the_start_basis() {
    let s = site(&[]);
    let c = course(&[]);
    let Decision::Schedule { create, id } =
        decide_enrolment(&s, &c, &enrolment("ana", "2026-02-20T00:00:00Z"), 7, false).unwrap()
    else {
        panic!("schedules are on")
    };
    assert_eq!(id.as_str(), "schedule/course-v1:X+Y+1/ana");
    assert_eq!(
        create.anchors["start"],
        at("2026-03-01T00:00:00Z"),
        "not before the course"
    );
    let created = Event::Created {
        policy: create.policy.clone(),
        policy_version: 1,
        workflow: None,
        recipient: create.recipient.clone(),
        zone: create.zone,
        anchors: create.anchors.clone(),
        attributes: create.attributes.clone(),
    };
    let schedule = fold(&id, None, [(1, at("2026-02-20T00:00:00Z"), &created)])
        .unwrap()
        .0
        .unwrap();
    assert_eq!(
        course_change(&schedule, &s, &c).unwrap(),
        (BTreeMap::new(), BTreeMap::new())
    );
    let moved = entity(
        "course/course-v1:X+Y+1",
        &[
            ("start", "2026-02-01T00:00:00Z"),
            ("end", "2026-06-01T00:00:00Z"),
        ],
        &[
            ("site", AttrValue::Text("demo".into())),
            ("verified", AttrValue::Bool(true)),
        ],
    );
    let (anchors, attributes) = course_change(&schedule, &s, &moved).unwrap();
    // Enrolled 02-20, the course now starts 02-01: the schedule starts at the enrolment.
    assert_eq!(
        anchors,
        BTreeMap::from([
            ("start".to_owned(), at("2026-02-20T00:00:00Z")),
            ("upgrade_deadline".to_owned(), at("2026-03-13T00:00:00Z")),
        ])
    );
    assert!(attributes.is_empty());
    assert_eq!(
        track_change_basis(&schedule, "audit", at("2026-04-01T00:00:00Z")),
        at("2026-02-20T00:00:00Z")
    );
    assert_eq!(
        track_change_basis(&schedule, "verified", at("2026-04-01T00:00:00Z")),
        at("2026-04-01T00:00:00Z")
    );
}

#[test]
fn ids_refuse_slashes_that_would_mix_courses_up() {
    assert!(learner::course_id("edX/DemoX/2014").is_err());
    assert!(learner::schedule_id("course-v1:X+Y+1", "a/b").is_err());
    assert_eq!(
        learner::schedule_prefix("course-v1:X+Y+1"),
        "schedule/course-v1:X+Y+1/"
    );
}

// Issue 19: a learner's email leaves within their delivery hour. The plan of thousands of
// schedules, with the shipped policies: each message planned at the delivery time plus the
// learner's spread, its digest leaving the digest rule's offset after it.

const SCHEDULE: &str = include_str!("../../../config/policies/learner-schedule.toml");
const DIGEST: &str = include_str!("../../../config/policies/learner-digest.toml");

/// Local `time` on `date` in `zone`, with chrono-tz alone: a DST gap moves to its end, an
/// ambiguous time takes the earlier instant.
fn resolve_local(zone: chrono_tz::Tz, date: chrono::NaiveDate, time: chrono::NaiveTime) -> i64 {
    use chrono::TimeZone;
    let mut local = date.and_time(time);
    loop {
        match zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => return t.timestamp_millis(),
            chrono::LocalResult::Ambiguous(earlier, _) => return earlier.timestamp_millis(),
            chrono::LocalResult::None => local += chrono::Duration::minutes(1),
        }
    }
}

/// The latest start of the learner's delivery hour at or before `at` (that day's or the day
/// before's).
fn delivery_hour_start(zone: chrono_tz::Tz, time: chrono::NaiveTime, at: Timestamp) -> i64 {
    let day = at.to_chrono().with_timezone(&zone).date_naive();
    [day.pred_opt().unwrap(), day]
        .into_iter()
        .map(|date| resolve_local(zone, date, time))
        .filter(|start| *start <= at.as_millis())
        .max()
        .unwrap()
}

/// A self-paced schedule starting at `start`, as an enrolment creates it.
fn schedule(n: usize, zone: &str, time: &str, start: Timestamp) -> Entity {
    let created = Event::Created {
        policy: "learner-schedule".into(),
        policy_version: 1,
        workflow: None,
        recipient: format!("l{n}@example.org"),
        zone: Zone::parse(zone).unwrap(),
        anchors: BTreeMap::from([
            ("enrolled_at".to_owned(), start),
            ("start_basis".to_owned(), start),
            ("start".to_owned(), start),
            ("course_end".to_owned(), at("2027-12-31T00:00:00Z")),
        ]),
        attributes: BTreeMap::from([
            ("learner".to_owned(), AttrValue::Text(format!("l{n}"))),
            ("pacing".to_owned(), AttrValue::Text("self".into())),
            ("experience".to_owned(), AttrValue::Text("default".into())),
            ("delivery_time".to_owned(), AttrValue::Text(time.into())),
        ]),
    };
    let id = format!("schedule/course-v1:X+Y+1/l{n}").parse().unwrap();
    fold(&id, None, [(1, start, &created)]).unwrap().0.unwrap()
}

#[test]
fn thousands_of_learners_messages_leave_within_their_delivery_hour_on_dst_change_days() {
    let policy = tickler_core::Policy::from_toml(SCHEDULE).unwrap();
    let digest = tickler_core::Policy::from_toml(DIGEST).unwrap();
    let collecting = digest.rules.iter().find(|r| r.collects.is_some()).unwrap();
    let zones = [
        "America/New_York",
        "Europe/Paris",
        "Australia/Sydney",
        "America/Santiago",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "Europe/London",
        "America/Los_Angeles",
        "Asia/Kathmandu",
    ];
    // Each learner's first nudge (3 days after the start) falls on a day of one of 2026's
    // transitions (US 03-08 and 11-01, EU 03-29 and 10-25, south 04-05 and 10-04), at a delivery
    // time every ten minutes of the day: in each zone's DST gap and overlap too.
    let transitions = [
        "2026-03-08",
        "2026-03-29",
        "2026-04-05",
        "2026-10-04",
        "2026-10-25",
        "2026-11-01",
    ];
    let mut messages = 0;
    let mut learners = 0;
    for zone in zones {
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        for transition in transitions {
            let day = chrono::NaiveDate::parse_from_str(transition, "%Y-%m-%d").unwrap();
            let noon = chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap();
            let start =
                Timestamp::from_millis(resolve_local(tz, day, noon) - 3 * 86_400_000).unwrap();
            for minute in (0..1440).step_by(10) {
                let time = format!("{:02}:{:02}", minute / 60, minute % 60);
                let local = chrono::NaiveTime::parse_from_str(&time, "%H:%M").unwrap();
                let entity = schedule(learners, zone, &time, start);
                learners += 1;
                for planned in tickler_core::plan::plan(&policy, &entity) {
                    let leaves = planned.at.saturating_add(collecting.offset);
                    let hour = delivery_hour_start(tz, local, planned.at);
                    assert!(
                        leaves.as_millis() < hour + 3_600_000,
                        "{zone} at {time}: {} planned at {}, its digest leaves at {leaves}, \
                         after the hour",
                        planned.rule,
                        planned.at
                    );
                    messages += 1;
                }
            }
        }
    }
    assert_eq!(learners, 9 * 6 * 144);
    assert_eq!(messages, learners * 3, "three nudges each");
}
