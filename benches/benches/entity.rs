//! The entity's own costs: replaying a 1,000-event log from its stored records (the whole log,
//! and from a snapshot plus its tail), and planning one learner's schedule (the enrolment
//! decision and the schedule's creation, as the core does them, with the shipped policy).
//!
//! Run: `cargo bench -p tickler-benches --bench entity`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickler::codec;
use tickler::learner::{Decision, Enrolment, decide_enrolment};
use tickler::store::Record;
use tickler::{
    AttrValue, Command, CreateEntity, DeliveryPolicy, Entity, EntityId, Event, Policy, Timestamp,
    Zone, fold,
};
use tickler_core::{Context, NO_DIRECTORY, decide};

const EVENTS: usize = 1_000;
/// The shipped snapshot interval: a restarted actor replays at most this many events.
const SNAPSHOT_EVERY: usize = 64;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn policy(name: &str) -> Policy {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/policies")
        .join(format!("{name}.toml"));
    Policy::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A due date created, then toggled 999 times: a 1,000-event log of real events, as records.
fn thousand_event_log() -> (EntityId, Vec<Record>) {
    let policy = policy("due-date");
    let delivery = DeliveryPolicy::default();
    let id: EntityId = "due/bench".parse().unwrap();
    let now = at("2026-03-01T09:30:00Z");
    let ctx = Context {
        now,
        policy: &policy,
        delivery: &delivery,
        directory: &NO_DIRECTORY,
    };
    let create = Command::Create(CreateEntity {
        policy: "due-date".into(),
        workflow: Some("reviewer-report".into()),
        recipient: "reviewer@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: BTreeMap::new(),
        attributes: BTreeMap::from([("title".to_owned(), AttrValue::Text("Review".into()))]),
    });
    let mut entity: Option<Entity> = None;
    let mut records = Vec::new();
    let mut command = create;
    let mut toggle = false;
    while records.len() < EVENTS {
        let events = decide(entity.as_ref(), &id, &command, &ctx).unwrap();
        let base = records.len() as u64;
        let numbered: Vec<(u64, Timestamp, &Event)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (base + 1 + i as u64, now, e))
            .collect();
        entity = fold(&id, entity, numbered.iter().map(|(s, t, e)| (*s, *t, *e)))
            .unwrap()
            .0;
        records.extend(events.iter().map(|e| codec::encode_event(e, now)));
        command = Command::Toggle {
            occurrence: "pre-due#0".parse().unwrap(),
            enabled: toggle,
        };
        toggle = !toggle;
    }
    records.truncate(EVENTS);
    (id, records)
}

fn replay_records(
    id: &EntityId,
    start: Option<Entity>,
    records: &[Record],
    first_seq: u64,
) -> Entity {
    let events: Vec<(u64, Timestamp, Event)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                first_seq + i as u64,
                r.recorded_at,
                codec::decode_event(r).unwrap(),
            )
        })
        .collect();
    fold(id, start, events.iter().map(|(s, t, e)| (*s, *t, e)))
        .unwrap()
        .0
        .unwrap()
}

fn replay(c: &mut Criterion) {
    let (id, records) = thousand_event_log();
    let bytes: Vec<Vec<u8>> = records.iter().map(Record::encode).collect();
    let cut = EVENTS - SNAPSHOT_EVERY;
    let head = replay_records(&id, None, &records[..cut], 1);
    let snapshot = codec::encode_snapshot(&head, at("2026-03-01T09:30:00Z")).encode();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(1));
    group.bench_function("1000_events_whole_log", |b| {
        b.iter(|| {
            let records: Vec<Record> = bytes.iter().map(|b| Record::decode(b).unwrap()).collect();
            black_box(replay_records(&id, None, &records, 1))
        })
    });
    group.bench_function("1000_events_snapshot_and_64_tail", |b| {
        b.iter(|| {
            let snapshot = codec::decode_snapshot(&Record::decode(&snapshot).unwrap()).unwrap();
            let tail: Vec<Record> = bytes[cut..]
                .iter()
                .map(|b| Record::decode(b).unwrap())
                .collect();
            black_box(replay_records(&id, Some(snapshot), &tail, cut as u64 + 1))
        })
    });
    group.finish();
}

fn directory_entity(
    id: &str,
    anchors: &[(&str, &str)],
    attributes: &[(&str, AttrValue)],
) -> Entity {
    let created = Event::Created {
        policy: "directory".into(),
        policy_version: 1,
        workflow: None,
        recipient: id.into(),
        zone: Zone::UTC,
        anchors: anchors
            .iter()
            .map(|(n, v)| (n.to_string(), at(v)))
            .collect(),
        attributes: attributes
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect(),
    };
    let id = id.parse().unwrap();
    fold(&id, None, [(1, at("2026-01-01T00:00:00Z"), &created)])
        .unwrap()
        .0
        .unwrap()
}

fn planning(c: &mut Criterion) {
    let schedule_policy = policy("learner-schedule");
    let delivery = DeliveryPolicy::default();
    let site = directory_entity(
        "site/demo",
        &[],
        &[
            ("create_schedules", AttrValue::Bool(true)),
            ("default_zone", AttrValue::Text("America/New_York".into())),
            ("delivery_time", AttrValue::Text("09:00".into())),
        ],
    );
    let highlights = AttrValue::Table(
        (1..=8)
            .map(|week| {
                BTreeMap::from([
                    ("section".to_owned(), format!("Week {week}")),
                    ("highlights".to_owned(), "Reading\nExercises".to_owned()),
                ])
            })
            .collect(),
    );
    let course = directory_entity(
        "course/course-v1:Demo+Py101+2026",
        &[
            ("start", "2026-03-01T00:00:00Z"),
            ("end", "2026-06-01T00:00:00Z"),
        ],
        &[
            ("site", AttrValue::Text("demo".into())),
            ("verified", AttrValue::Bool(true)),
            ("pacing", AttrValue::Text("self".into())),
            ("highlights", highlights),
        ],
    );
    let enrolment = Enrolment {
        learner: "ana".into(),
        email: "ana@example.org".into(),
        name: "Ana".into(),
        course: "course-v1:Demo+Py101+2026".into(),
        enrolled_at: Some(at("2026-03-02T14:00:00Z")),
        zone: Some(Zone::parse("Europe/Paris").unwrap()),
        track: "audit".into(),
        delivery_time: None,
    };
    let ctx = Context {
        now: at("2026-03-02T14:00:00Z"),
        policy: &schedule_policy,
        delivery: &delivery,
        directory: &NO_DIRECTORY,
    };
    // What is measured: an enrolment becoming a schedule with its whole plan (the upgrade
    // reminder and eight weekly highlights: a course with highlights sends no nudges).
    let Decision::Schedule { id, create } =
        decide_enrolment(&site, &course, &enrolment, schedule_policy.seed, false).unwrap()
    else {
        panic!("a schedule is created");
    };
    let planned = decide(None, &id, &Command::Create(create), &ctx).unwrap();
    let occurrences = planned
        .iter()
        .filter(|e| matches!(e, Event::OccurrencePlanned { .. }))
        .count();
    assert_eq!(occurrences, 9, "{planned:?}");
    let mut group = c.benchmark_group("planning");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_learner_schedule", |b| {
        b.iter(|| {
            let Decision::Schedule { id, create } = decide_enrolment(
                &site,
                &course,
                black_box(&enrolment),
                schedule_policy.seed,
                false,
            )
            .unwrap() else {
                panic!("a schedule is created");
            };
            black_box(decide(None, &id, &Command::Create(create), &ctx).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, replay, planning);
criterion_main!(benches);
