//! Golden logs (issue 6, suite 5): whole entity logs written by an earlier build, one per
//! policy, must replay to the state they were recorded with. `proto/golden/logs-v1.json` holds,
//! per entity, its event records as stored (hex) and the state they replay to (the entity and
//! its past events, as JSON) with the SHA-256 of that JSON.
//!
//! A build that adds a field to the state still passes: the replayed state is compared on the
//! fields the recorded one has. A build that replays an old log to different values fails: that
//! is a format change (keep the old decoder; never edit the vectors).
//!
//! Also checked on every golden log: a snapshot taken after any prefix, then the rest of the
//! log, replays to the same state as the whole log.
//!
//! To add logs for a new policy: `TICKLER_WRITE_GOLDEN=1 cargo test -p tickler-tests --test
//! golden_logs`, then review the diff (only additions are acceptable).

use std::collections::BTreeMap;
use std::path::PathBuf;
use tickler::{Evaluations as _, LearnerSchedules as _};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tickler::learner::Enrolment;
use tickler::store::Record;
use tickler::{
    AttrValue, Command, CourseSettings, CreateEntity, Entity, EntityId, PastEvent, Response,
    SiteSettings, Span, Timestamp, Zone, codec,
};
use tickler_tests::{Harness, at, id, reviewer_report};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto/golden/logs-v1.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Folds a log of stored records into the entity and its past events.
fn replay(id: &EntityId, records: &[Record]) -> (Entity, Vec<PastEvent>) {
    let events: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let event = codec::decode_event(record)
                .unwrap_or_else(|err| panic!("{id}: event {} does not decode: {err}", i + 1));
            (i as u64 + 1, record.recorded_at, event)
        })
        .collect();
    let (entity, past) = tickler::fold(id, None, events.iter().map(|(s, t, e)| (*s, *t, e)))
        .unwrap_or_else(|err| panic!("{id}: the log does not fold: {err}"));
    (entity.expect("a log with events folds to an entity"), past)
}

fn state_json(entity: &Entity, past: &[PastEvent]) -> Value {
    json!({ "entity": entity, "past_events": past })
}

/// `current`, keeping only the object keys `shape` has (recursively): the fields a state
/// recorded by an earlier build knows about.
fn project(current: &Value, shape: &Value) -> Value {
    match (current, shape) {
        (Value::Object(current), Value::Object(shape)) => Value::Object(
            shape
                .iter()
                .map(|(key, inner)| {
                    let value = current.get(key).map_or(Value::Null, |c| project(c, inner));
                    (key.clone(), value)
                })
                .collect(),
        ),
        (Value::Array(current), Value::Array(shape)) if current.len() == shape.len() => {
            Value::Array(
                current
                    .iter()
                    .zip(shape)
                    .map(|(c, s)| project(c, s))
                    .collect(),
            )
        }
        _ => current.clone(),
    }
}

fn sha256(value: &Value) -> String {
    hex(&Sha256::digest(serde_json::to_vec(value).unwrap()))
}

#[test]
fn every_golden_log_replays_to_its_recorded_state() {
    if std::env::var_os("TICKLER_WRITE_GOLDEN").is_some() {
        write_golden_logs();
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).unwrap()).unwrap();
    let logs = golden["logs"].as_object().unwrap();
    assert!(logs.len() >= 5, "a log per policy at least");
    for (entity, log) in logs {
        let id: EntityId = entity.parse().unwrap();
        let records: Vec<Record> = log["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hex| Record::decode(&unhex(hex.as_str().unwrap())).unwrap())
            .collect();
        let (state, past) = replay(&id, &records);
        let recorded = &log["state"];
        let replayed = project(&state_json(&state, &past), recorded);
        assert_eq!(
            &replayed, recorded,
            "{entity} replays to its recorded state"
        );
        assert_eq!(
            sha256(&replayed),
            log["state_sha256"].as_str().unwrap(),
            "{entity}: the recorded hash"
        );

        // Snapshot after any prefix, then the rest: the same state.
        for cut in 1..records.len() {
            let (head, _) = replay(&id, &records[..cut]);
            let snapshot = codec::encode_snapshot(&head, Timestamp::EPOCH);
            let from_snapshot = codec::decode_snapshot(&snapshot).expect("a snapshot decodes");
            assert_eq!(
                from_snapshot, head,
                "{entity}: snapshot round trip after {cut}"
            );
            let rest: Vec<_> = records[cut..]
                .iter()
                .enumerate()
                .map(|(i, record)| {
                    let event = codec::decode_event(record).unwrap();
                    ((cut + i) as u64 + 1, record.recorded_at, event)
                })
                .collect();
            let (tail_state, _) = tickler::fold(
                &id,
                Some(from_snapshot),
                rest.iter().map(|(s, t, e)| (*s, *t, e)),
            )
            .unwrap();
            assert_eq!(
                tail_state.as_ref(),
                Some(&state),
                "{entity}: snapshot after event {cut} + the rest"
            );
        }
    }
}

/// Runs one scenario per policy on a manual clock and writes every resulting log.
fn write_golden_logs() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let h = Harness::in_memory(dir.path()).await;
            let engine = &h.engine;

            // Due date: toggled, moved, chased, completed.
            let review = id("due/review-42");
            engine.create(&review, reviewer_report(None)).await.unwrap();
            engine
                .execute(
                    &review,
                    Command::Toggle {
                        occurrence: "first-late#0".parse().unwrap(),
                        enabled: false,
                    },
                )
                .await
                .unwrap();

            // Contact cadence: joined, a preferred time.
            let contact = tickler_tests::join_karma_contact(engine).await;

            // Evaluation: daily reminders to three students, one answers.
            let evaluation = id("eval/course-101");
            let students = ["a@example.org", "b@example.org", "c@example.org"];
            engine
                .create(
                    &evaluation,
                    CreateEntity {
                        policy: "evaluation".into(),
                        workflow: None,
                        recipient: "owner@example.org".into(),
                        zone: Zone::parse("Europe/Paris").unwrap(),
                        anchors: BTreeMap::from([
                            ("start".to_owned(), at("2026-03-02T08:00:00Z")),
                            ("due".to_owned(), at("2026-03-06T17:00:00Z")),
                            ("view_instructors".to_owned(), at("2026-03-07T08:00:00Z")),
                        ]),
                        attributes: BTreeMap::from([
                            ("title".to_owned(), AttrValue::Text("Course 101".into())),
                            (
                                "owner".to_owned(),
                                AttrValue::Text("owner@example.org".into()),
                            ),
                            (
                                "students".to_owned(),
                                AttrValue::List(students.map(String::from).to_vec()),
                            ),
                            (
                                "instructors".to_owned(),
                                AttrValue::List(vec!["prof@example.org".into()]),
                            ),
                            ("reminder".to_owned(), AttrValue::Text("every-1d".into())),
                        ]),
                    },
                )
                .await
                .unwrap();

            // Learner schedule (and its digest): a self-paced course with a verified track.
            engine
                .set_site(&SiteSettings {
                    site: "demo".into(),
                    create_schedules: Some(true),
                    default_zone: Some(Zone::parse("America/New_York").unwrap()),
                    delivery_time: Some("09:00".into()),
                    lms_url: Some("https://lms.demo.example".into()),
                    ..SiteSettings::default()
                })
                .await
                .unwrap();
            engine
                .set_course(&CourseSettings {
                    course: "course-v1:Demo+Py101+2026".into(),
                    site: Some("demo".into()),
                    name: Some("Python 101".into()),
                    org: Some("Demo".into()),
                    pacing: Some("self".into()),
                    start: Some(at("2026-03-01T00:00:00Z")),
                    end: Some(at("2026-06-01T00:00:00Z")),
                    verified: Some(true),
                    ..CourseSettings::default()
                })
                .await
                .unwrap();
            engine
                .enroll(&Enrolment {
                    learner: "ana".into(),
                    email: "ana@example.org".into(),
                    name: "Ana".into(),
                    course: "course-v1:Demo+Py101+2026".into(),
                    enrolled_at: None,
                    zone: None,
                    track: "audit".into(),
                    delivery_time: None,
                })
                .await
                .unwrap();

            engine.advance(Span::days(3)).await.unwrap();
            engine
                .record_response(&evaluation, "b@example.org", Response::Submitted)
                .await
                .unwrap();
            engine
                .execute(
                    &contact,
                    Command::SetAttribute {
                        name: "preferred_time".into(),
                        value: Some(AttrValue::Text("18:30".into())),
                    },
                )
                .await
                .unwrap();
            engine
                .execute(
                    &review,
                    Command::MoveAnchor {
                        anchor: "due_at".into(),
                        to: at("2026-03-20T10:00:00Z"),
                    },
                )
                .await
                .unwrap();
            engine.advance(Span::days(12)).await.unwrap();
            engine
                .execute(
                    &review,
                    Command::Complete {
                        reason: "review-submitted".into(),
                    },
                )
                .await
                .unwrap();
            engine.leave_group("karma", "c-1").await.unwrap();
            engine.advance(Span::days(10)).await.unwrap();

            let mut logs = serde_json::Map::new();
            for entity in h.store.entities_after(None, usize::MAX).unwrap() {
                let records: Vec<Record> = h
                    .store
                    .read_events(&entity, 0)
                    .unwrap()
                    .into_iter()
                    .map(|stored| stored.record)
                    .collect();
                let (state, past) = replay(&entity, &records);
                let state = state_json(&state, &past);
                logs.insert(
                    entity.to_string(),
                    json!({
                        "records": records.iter().map(|r| hex(&r.encode())).collect::<Vec<_>>(),
                        "state_sha256": sha256(&state),
                        "state": state,
                    }),
                );
            }
            let golden = json!({
                "format": "tickler golden logs v1: per entity, its event records as stored \
                           (hex, proto/record-format.md) and the state they replay to",
                "logs": logs,
            });
            std::fs::write(
                golden_path(),
                serde_json::to_string_pretty(&golden).unwrap() + "\n",
            )
            .unwrap();
            h.stop().await;
        });
}
