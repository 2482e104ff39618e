//! The contact-cadence policy (Ona's bot scheduler), given / when / then: the plan's shape,
//! the seeded window draws and their spread, day 0, preferred times, zone changes, leaving the
//! group, and the distribution of drawn times over many contacts.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveTime, Timelike};
use tickler_core::plan::{Planned, plan};
use tickler_core::{
    AttrValue, Command, Context, CreateEntity, DeliveryPolicy, DeliveryResult, Entity, EntityId,
    Event, OccurrenceId, Policy, Rejection, Span, Timestamp, UnsentReason, Zone, decide, fold,
};

const POLICY: &str = include_str!("../../../config/policies/contact-cadence.toml");

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

/// A contact's log, grown one accepted command at a time (as in `due_date.rs`).
struct Contact {
    id: EntityId,
    policy: Policy,
    delivery: DeliveryPolicy,
    log: Vec<(u64, Timestamp, Event)>,
}

impl Contact {
    fn joined(key: &str, zone: &str, registered_at: &str) -> Contact {
        let mut contact = Contact {
            id: EntityId::parse(&format!("contact/karma/{key}")).unwrap(),
            policy: Policy::from_toml(POLICY).unwrap(),
            delivery: DeliveryPolicy::default(),
            log: Vec::new(),
        };
        let create = Command::Create(CreateEntity {
            policy: "contact-cadence".into(),
            workflow: None,
            recipient: format!("tel:+2547{key}"),
            zone: Zone::parse(zone).unwrap(),
            anchors: BTreeMap::from([("registered_at".to_owned(), at(registered_at))]),
            attributes: BTreeMap::new(),
        });
        contact.when(at(registered_at), create).unwrap();
        contact
    }

    fn state(&self) -> Entity {
        fold(&self.id, None, self.log.iter().map(|(s, t, e)| (*s, *t, e)))
            .unwrap()
            .0
            .unwrap()
    }

    fn when(&mut self, now: Timestamp, command: Command) -> Result<Vec<Event>, Rejection> {
        let state = fold(&self.id, None, self.log.iter().map(|(s, t, e)| (*s, *t, e)))
            .unwrap()
            .0;
        let ctx = Context {
            now,
            policy: &self.policy,
            delivery: &self.delivery,
            directory: &tickler_core::NO_DIRECTORY,
        };
        let events = decide(state.as_ref(), &self.id, &command, &ctx)?;
        for event in &events {
            let seq = self.log.len() as u64 + 1;
            self.log.push((seq, now, event.clone()));
        }
        Ok(events)
    }

    /// Pending occurrences by instant: (occurrence, instant).
    fn pending(&self) -> Vec<(String, Timestamp)> {
        let mut pending: Vec<_> = self
            .state()
            .active
            .values()
            .map(|r| (r.occurrence.to_string(), r.planned_at))
            .collect();
        pending.sort_by_key(|(_, t)| *t);
        pending
    }

    /// Fires and delivers the occurrence at its planned instant.
    fn send(&mut self, occurrence: &str) {
        let planned = self.state().active[&OccurrenceId::parse(occurrence).unwrap()].planned_at;
        let occurrence = OccurrenceId::parse(occurrence).unwrap();
        self.when(
            planned,
            Command::Wake {
                occurrence: occurrence.clone(),
            },
        )
        .unwrap();
        self.when(
            planned,
            Command::RecordDelivery {
                occurrence,
                attempt: 1,
                result: DeliveryResult::Delivered {
                    channel: "rapidpro".into(),
                    receipt: "HTTP 201".into(),
                },
            },
        )
        .unwrap();
    }
}

fn local(zone: &str, t: Timestamp) -> chrono::NaiveDateTime {
    Zone::parse(zone).unwrap().local(t)
}

fn in_window(time: NaiveTime) -> bool {
    time >= NaiveTime::from_hms_opt(9, 0, 0).unwrap()
        && time < NaiveTime::from_hms_opt(21, 0, 0).unwrap()
}

#[test]
fn the_plan_is_sixteen_interactions_three_days_apart_with_b_on_every_fourth() {
    let contact = Contact::joined("001", "Africa/Nairobi", "2026-03-02T05:00:00Z"); // 08:00 local
    let pending = contact.pending();
    assert_eq!(pending.len(), 16);
    let registered = local("Africa/Nairobi", at("2026-03-02T05:00:00Z")).date();
    let days: Vec<(i64, &str)> = pending
        .iter()
        .map(|(occurrence, t)| {
            let day = (local("Africa/Nairobi", *t).date() - registered).num_days();
            (
                day,
                if occurrence.starts_with("conversation-a") {
                    "A"
                } else {
                    "B"
                },
            )
        })
        .collect();
    let expected: Vec<(i64, &str)> = (0..16)
        .map(|n| (3 * n, if n % 4 == 3 { "B" } else { "A" }))
        .collect();
    assert_eq!(days, expected);
    // B falls on days 9, 21, 33 and 45.
    let b_days: Vec<i64> = days
        .iter()
        .filter(|(_, c)| *c == "B")
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(b_days, [9, 21, 33, 45]);
}

#[test]
fn the_windows_hours_are_each_used_once_before_any_repeats() {
    for key in ["002", "003", "004"] {
        let contact = Contact::joined(key, "Africa/Nairobi", "2026-03-02T04:00:00Z");
        let hours: Vec<u32> = contact
            .pending()
            .iter()
            .map(|(_, t)| local("Africa/Nairobi", *t).hour())
            .collect();
        let first_twelve: BTreeSet<u32> = hours[..12].iter().copied().collect();
        assert_eq!(first_twelve, (9..21).collect(), "{key}: {hours:?}");
        let last_four: BTreeSet<u32> = hours[12..].iter().copied().collect();
        assert_eq!(
            last_four.len(),
            4,
            "{key}: the repeats are four different hours: {hours:?}"
        );
    }
}

#[test]
fn every_instant_is_inside_the_contacts_local_window_across_dst_changes() {
    // New York springs forward on 2026-03-08, London on 03-29, and falls back on 10-25/11-01.
    for (zone, registered) in [
        ("America/New_York", "2026-03-01T13:00:00Z"),
        ("Europe/London", "2026-03-20T10:00:00Z"),
        ("Europe/London", "2026-10-10T10:00:00Z"),
        ("Australia/Lord_Howe", "2026-09-20T00:00:00Z"),
        ("America/Santiago", "2026-08-20T14:00:00Z"),
    ] {
        let contact = Contact::joined(&format!("dst-{zone}"), zone, registered);
        for (occurrence, t) in contact.pending() {
            let time = local(zone, t).time();
            assert!(in_window(time), "{zone}: {occurrence} at {time} local");
        }
    }
}

#[test]
fn day_zero_draws_from_what_is_left_of_that_days_window() {
    // Registered at 15:10 local: day 0's interaction is later that day.
    let contact = Contact::joined("005", "Europe/Paris", "2026-03-02T14:10:00Z");
    let (_, first) = contact.pending()[0];
    let first = local("Europe/Paris", first);
    assert_eq!(first.date().to_string(), "2026-03-02");
    assert!(
        first.time() >= NaiveTime::from_hms_opt(15, 10, 0).unwrap(),
        "{first}"
    );
    // Registered at 21:30 local: nothing is left of day 0's window; it moves to the next day.
    let contact = Contact::joined("006", "Europe/Paris", "2026-03-02T20:30:00Z");
    let first = local("Europe/Paris", contact.pending()[0].1);
    assert_eq!(first.date().to_string(), "2026-03-03");
    assert!(in_window(first.time()));
}

#[test]
fn contacts_of_one_group_get_different_times_and_the_same_contact_the_same() {
    let a = Contact::joined("007", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    let b = Contact::joined("008", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    let again = Contact::joined("007", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    assert_ne!(a.pending(), b.pending());
    assert_eq!(a.pending(), again.pending());
}

#[test]
fn a_preferred_time_moves_future_occurrences_and_clearing_it_brings_back_the_draws() {
    let mut contact = Contact::joined("009", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    let drawn = contact.pending();
    contact.send("conversation-a#0");
    let sent_past = contact.log.len();
    let prefer = |value: Option<&str>| Command::SetAttribute {
        name: "preferred_time".into(),
        value: value.map(|v| AttrValue::Text(v.into())),
    };
    let now = at("2026-03-03T12:00:00Z");
    let events = contact.when(now, prefer(Some("18:30"))).unwrap();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::OccurrencePlanned { .. })),
        "nothing re-armed: {events:?}"
    );
    let pending = contact.pending();
    assert_eq!(pending.len(), 15);
    for (occurrence, t) in &pending {
        let time = local("Africa/Nairobi", *t).time();
        assert_eq!(
            time,
            NaiveTime::from_hms_opt(18, 30, 0).unwrap(),
            "{occurrence}"
        );
    }
    // The sent one is untouched.
    assert!(matches!(
        contact.log[sent_past - 1].2,
        Event::OccurrenceSent { .. }
    ));
    contact.when(now, prefer(None)).unwrap();
    assert_eq!(
        contact.pending(),
        drawn[1..].to_vec(),
        "the same seeded draws as before"
    );
}

#[test]
fn a_new_time_zone_replans_pending_occurrences_in_the_recipients_new_local_time() {
    let mut contact = Contact::joined("010", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    let events = contact
        .when(
            at("2026-03-02T04:30:00Z"),
            Command::ChangeRecipient {
                recipient: None,
                zone: Some(Zone::parse("America/Lima").unwrap()),
            },
        )
        .unwrap();
    assert!(matches!(events[0], Event::RecipientChanged { .. }));
    assert_eq!(contact.state().zone.name(), "America/Lima");
    for (occurrence, t) in contact.pending() {
        assert!(in_window(local("America/Lima", t).time()), "{occurrence}");
    }
}

#[test]
fn leaving_the_group_cancels_what_is_pending() {
    let mut contact = Contact::joined("011", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    contact.send("conversation-a#0");
    let events = contact
        .when(
            at("2026-03-04T00:00:00Z"),
            Command::Complete {
                reason: "left-group".into(),
            },
        )
        .unwrap();
    let unsent: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::OccurrenceUnsent { reason, detail, .. } => Some((*reason, detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(unsent.len(), 15);
    assert!(
        unsent
            .iter()
            .all(|(r, d)| *r == UnsentReason::Completed && d.contains("left-group"))
    );
}

#[test]
fn two_occurrences_of_one_contact_are_never_closer_than_the_minimum_gap() {
    // Two rules on the same day, in one short window: the second is pushed past the gap.
    let policy = Policy::from_toml(
        r#"
        name = "gap"
        version = 1
        entity_kind = "contact"
        seed = 1
        min_gap = "3h"
        [anchors.registered_at]
        [[rules]]
        name = "morning"
        kind = "a"
        anchor = "registered_at"
        at = { mode = "window", start = "09:00", end = "13:00" }
        template = "t"
        [[rules]]
        name = "also-morning"
        kind = "b"
        anchor = "registered_at"
        at = { mode = "window", start = "09:00", end = "13:00" }
        template = "t"
        "#,
    )
    .unwrap();
    for n in 0..200 {
        let id = EntityId::parse(&format!("contact/gap-{n}")).unwrap();
        let created = Event::Created {
            policy: "gap".into(),
            policy_version: 1,
            workflow: None,
            recipient: "r".into(),
            zone: Zone::UTC,
            anchors: BTreeMap::from([("registered_at".to_owned(), at("2026-03-02T00:00:00Z"))]),
            attributes: BTreeMap::new(),
        };
        let entity =
            tickler_core::evolve(None, &id, &created, at("2026-03-02T00:00:00Z"), 1).unwrap();
        let mut instants: Vec<Timestamp> = plan(&policy, &entity).iter().map(|p| p.at).collect();
        instants.sort();
        assert!(
            instants[1].since(instants[0]) >= Span::hours(3),
            "{id}: {instants:?}"
        );
        // Pushed later within the window when there is room, else into the next day's window.
        let window = |t: Timestamp| Zone::UTC.local(t).time();
        assert!(window(instants[0]) < NaiveTime::from_hms_opt(13, 0, 0).unwrap());
        assert!(
            window(instants[1]) < NaiveTime::from_hms_opt(13, 0, 0).unwrap(),
            "{id}: {instants:?}"
        );
    }
}

/// Chi-square of the drawn minutes over the window, for 10,000 contacts at a fixed seed, in
/// 72 ten-minute buckets. With 71 degrees of freedom the 0.1 % critical value is 112.3.
#[test]
fn drawn_times_are_spread_evenly_over_the_window_and_respect_the_gap() {
    const CONTACTS: usize = 10_000;
    const BUCKETS: usize = 72;
    let policy = Policy::from_toml(POLICY).unwrap();
    let zone = Zone::parse("Africa/Nairobi").unwrap();
    let mut counts = [0u64; BUCKETS];
    let mut draws = 0u64;
    for n in 0..CONTACTS {
        let id = EntityId::parse(&format!("contact/karma/{n:05}")).unwrap();
        let created = Event::Created {
            policy: policy.name.clone(),
            policy_version: 1,
            workflow: None,
            recipient: "r".into(),
            zone,
            // Registered before the window opens, so day 0 is not cut short.
            anchors: BTreeMap::from([("registered_at".to_owned(), at("2026-03-02T04:00:00Z"))]),
            attributes: BTreeMap::new(),
        };
        let entity =
            tickler_core::evolve(None, &id, &created, at("2026-03-02T04:00:00Z"), 1).unwrap();
        let mut planned: Vec<Planned> = plan(&policy, &entity);
        planned.sort_by_key(|p| p.at);
        assert_eq!(planned.len(), 16);
        for pair in planned.windows(2) {
            assert!(
                pair[1].at.since(pair[0].at) >= Span::hours(12),
                "{id}: {pair:?}"
            );
        }
        for p in &planned {
            let time = zone.local(p.at).time();
            assert!(in_window(time), "{id}: {time}");
            let minute = (time.hour() * 60 + time.minute() - 9 * 60) as usize;
            counts[minute / 10] += 1;
            draws += 1;
        }
    }
    let expected = draws as f64 / BUCKETS as f64;
    let chi_square: f64 = counts
        .iter()
        .map(|&observed| (observed as f64 - expected).powi(2) / expected)
        .sum();
    println!("chi-square {chi_square:.1} over {BUCKETS} buckets of {draws} draws");
    assert!(
        chi_square < 112.3,
        "chi-square {chi_square:.1} over {BUCKETS} buckets: {counts:?}"
    );
}

#[test]
fn a_plan_edited_in_the_policy_replans_only_what_is_pending() {
    let mut contact = Contact::joined("012", "Africa/Nairobi", "2026-03-02T04:00:00Z");
    contact.send("conversation-a#0");
    let sent_at = contact.log.len();
    // Version 2 of the policy: the cadence runs to day 57 (20 interactions) in a 10:00-18:00 window.
    contact.policy = Policy::from_toml(
        &POLICY
            .replace("version = 1", "version = 2")
            .replace("count = 16", "count = 20")
            .replace("end = \"21:00\"", "end = \"18:00\"")
            .replace("start = \"09:00\"", "start = \"10:00\""),
    )
    .unwrap();
    let events = contact
        .when(at("2026-03-03T00:00:00Z"), Command::Replan)
        .unwrap();
    assert_eq!(events[0], Event::Replanned { policy_version: 2 });
    let pending = contact.pending();
    assert_eq!(
        pending.len(),
        19,
        "20 interactions, one of them already sent"
    );
    for (occurrence, t) in &pending {
        let hour = local("Africa/Nairobi", *t).hour();
        assert!((10..18).contains(&hour), "{occurrence} at {hour}h");
    }
    assert_eq!(contact.state().policy_version, 2);
    // What was sent is untouched, and a second re-plan changes nothing.
    assert!(matches!(
        contact.log[sent_at - 1].2,
        Event::OccurrenceSent { .. }
    ));
    assert!(
        contact
            .when(at("2026-03-03T00:00:00Z"), Command::Replan)
            .unwrap()
            .is_empty()
    );
}
