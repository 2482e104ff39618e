//! Golden vectors for the event payloads (`proto/event-payloads.md`): every event variant, a
//! past event and a snapshot, as the bytes this build writes. A log written by an earlier build
//! must keep decoding to the same values, so a change here is a format change: bump the format
//! version and keep the old decoder, never edit the vectors.
//!
//! To add vectors for a new variant: `TICKLER_WRITE_GOLDEN=1 cargo test -p tickler-engine --test
//! golden_events`, then review the diff (only additions are acceptable).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use tickler_core::{
    AttrValue, Bound, Cause, EntityId, Event, OccurrenceId, Outcome, PastEvent, PlanCause, Span,
    Timestamp, UnsentReason, Zone, evolve,
};
use tickler_engine::codec;
use tickler_store::Record;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto/golden/events-v1.json")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn occ(text: &str) -> OccurrenceId {
    text.parse().unwrap()
}

fn sample_events() -> Vec<Event> {
    vec![
        Event::Created {
            policy: "due-date".into(),
            policy_version: 1,
            workflow: Some("reviewer-report".into()),
            recipient: "reviewer@example.org".into(),
            zone: Zone::parse("Europe/Paris").unwrap(),
            anchors: BTreeMap::from([
                ("due_at".into(), at("2026-03-11T10:00:00Z")),
                ("originally_due_at".into(), at("2026-03-11T10:00:00Z")),
            ]),
            attributes: BTreeMap::from([
                (
                    "title".into(),
                    AttrValue::Text("Review of manuscript 42".into()),
                ),
                ("round".into(), AttrValue::Int(2)),
                ("upgraded".into(), AttrValue::Bool(false)),
                (
                    "sections".into(),
                    AttrValue::List(vec!["a".into(), "b".into()]),
                ),
            ]),
        },
        Event::AnchorMoved {
            anchor: "due_at".into(),
            from: Some(at("2026-03-11T10:00:00Z")),
            to: at("2026-03-20T10:00:00Z"),
        },
        Event::AttributeSet {
            name: "responded".into(),
            value: Some(AttrValue::Bool(true)),
        },
        Event::OccurrencePlanned {
            occurrence: occ("pre-due#1"),
            slot: 0,
            kind: "due-soon".into(),
            at: at("2026-03-18T10:00:00Z"),
            cause: PlanCause::AnchorMoved,
        },
        Event::OccurrenceRescheduled {
            occurrence: occ("first-late#0"),
            from: at("2026-03-13T10:00:00Z"),
            to: at("2026-03-22T10:00:00Z"),
        },
        Event::OccurrenceToggled {
            occurrence: occ("first-late#0"),
            enabled: false,
        },
        Event::DeliveryStarted {
            occurrence: occ("pre-due#0"),
            attempt: 1,
            lease_until: at("2026-03-09T10:01:00Z"),
        },
        Event::DeliveryFailed {
            occurrence: occ("pre-due#0"),
            attempt: 1,
            error: "503 Service Unavailable".into(),
            retry_at: at("2026-03-09T10:00:01.250Z"),
        },
        Event::OccurrenceSent {
            occurrence: occ("pre-due#0"),
            attempt: 2,
            channel: "file".into(),
            receipt: "outbox line 1".into(),
        },
        Event::OccurrenceUnsent {
            occurrence: occ("second-late#0"),
            reason: UnsentReason::Completed,
            detail: "the entity was completed first (review-submitted)".into(),
        },
        Event::Completed {
            reason: "review-submitted".into(),
        },
        Event::RecipientChanged {
            recipient: None,
            zone: Some(Zone::parse("America/Santiago").unwrap()),
        },
        Event::Replanned { policy_version: 2 },
        Event::RetryRequested {
            occurrence: occ("first-late#0"),
        },
        Event::FanOutStarted {
            occurrence: occ("reminder-every-1d#0"),
            attempt: 1,
            lease_until: at("2026-03-03T10:01:00Z"),
            recipients: vec!["a@example.org".into(), "b@example.org".into()],
        },
        Event::RecipientsReported {
            occurrence: occ("reminder-every-1d#0"),
            attempt: 1,
            delivered: vec![("a@example.org".into(), "250 queued".into())],
            refused: vec![("b@example.org".into(), "550 no such user".into())],
        },
        Event::RetryPlanned {
            occurrence: occ("first-late#2"),
            retry_of: occ("first-late#1"),
            key: occ("first-late#0"),
            at: at("2026-03-12T08:00:00Z"),
            reason: "the relay is back".into(),
        },
        Event::CauseRecorded {
            occurrence: occ("nudge-19d#0"),
            cause: Cause::Anchor {
                anchor: "course_end".into(),
                value: Some(at("2026-03-24T20:00:00Z")),
                changed_at: Some(at("2026-03-12T10:00:00Z")),
                bound: Bound::NotAfter,
                occurrence_at: at("2026-03-25T09:13:00Z"),
            },
        },
    ]
}

/// Values added after the first vectors, each under its own name: a digest's collected items
/// (attribute value variant 4, a table).
fn sample_extra_events() -> Vec<(String, Event)> {
    let cause = |name: &str, cause: Cause| {
        (
            format!("event cause-recorded {name}"),
            Event::CauseRecorded {
                occurrence: occ("first-late#0"),
                cause,
            },
        )
    };
    let mut extra = vec![
        cause(
            "attribute",
            Cause::Attribute {
                name: "highlight_weeks".into(),
                value: Some(AttrValue::Int(2)),
                changed_at: None,
            },
        ),
        cause(
            "passed-when-planned",
            Cause::PassedWhenPlanned {
                at: at("2026-03-01T10:00:00Z"),
            },
        ),
        cause(
            "beyond-grace",
            Cause::BeyondGrace {
                processed_at: at("2026-03-05T10:00:00Z"),
                late: Span::days(3),
                grace: Span::days(1),
            },
        ),
        cause(
            "past-staleness",
            Cause::PastStaleness {
                processed_at: at("2026-03-05T10:00:00Z"),
                anchor: "due".into(),
                value: at("2026-03-04T10:00:00Z"),
                offset: Span::hours(-2),
                cutoff: at("2026-03-04T08:00:00Z"),
            },
        ),
        cause(
            "condition",
            Cause::Condition {
                condition: "attribute-not-true".into(),
                subject: "upgraded".into(),
                value: Some("true".into()),
            },
        ),
    ];
    extra.push(cause(
        "beyond-range",
        Cause::BeyondRange {
            anchor: "due_at".into(),
            value: at("9999-12-31T20:00:00Z"),
        },
    ));
    for bound in [
        Bound::Until,
        Bound::UntilExclusive,
        Bound::MovedIntoPast,
        Bound::Cleared,
    ] {
        extra.push(cause(
            &format!("anchor {bound:?}"),
            Cause::Anchor {
                anchor: "due".into(),
                value: None,
                changed_at: None,
                bound,
                occurrence_at: at("2026-03-05T10:00:00Z"),
            },
        ));
    }
    let mut first = vec![(
        "event attribute-set table".into(),
        Event::AttributeSet {
            name: "items".into(),
            value: Some(AttrValue::Table(vec![BTreeMap::from([
                ("key".into(), "eval/97".into()),
                ("subject".into(), "Reminder: Course evaluation".into()),
            ])])),
        },
    )];
    first.extend(extra);
    first
}

fn sample_past_event() -> PastEvent {
    let entity = EntityId::parse("due/review-42").unwrap();
    PastEvent {
        occurrence: occ("pre-due#0"),
        idempotency_key: occ("pre-due#0").idempotency_key(&entity),
        entity,
        rule: "pre-due".parse().unwrap(),
        kind: "due-soon".into(),
        slot: 0,
        planned_at: at("2026-03-09T10:00:00Z"),
        closed_at: at("2026-03-09T10:00:02Z"),
        outcome: Outcome::Sent {
            channel: "file".into(),
            receipt: "outbox line 1".into(),
            attempts: 2,
        },
        seq: 9,
    }
}

/// (name, record, the decoded value as JSON) for every vector.
fn samples() -> Vec<(String, Record, Value)> {
    let recorded_at = at("2026-03-09T10:00:00Z");
    let mut samples: Vec<_> = sample_events()
        .into_iter()
        .map(|event| {
            let record = codec::encode_event(&event, recorded_at);
            (
                format!("event {}", event.name()),
                record,
                serde_json::to_value(&event).unwrap(),
            )
        })
        .collect();
    for (name, event) in sample_extra_events() {
        samples.push((
            name,
            codec::encode_event(&event, recorded_at),
            serde_json::to_value(&event).unwrap(),
        ));
    }
    let past = sample_past_event();
    samples.push((
        "past event".into(),
        codec::encode_past_event(&past),
        serde_json::to_value(&past).unwrap(),
    ));
    let id = EntityId::parse("due/review-42").unwrap();
    let entity = evolve(None, &id, &sample_events()[0], recorded_at, 1).unwrap();
    samples.push((
        "snapshot".into(),
        codec::encode_snapshot(&entity, recorded_at),
        serde_json::to_value(&entity).unwrap(),
    ));
    samples
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

#[test]
fn every_golden_vector_decodes_to_its_value_and_this_build_writes_the_same_bytes() {
    let samples = samples();
    let existing: Value = std::fs::read_to_string(golden_path())
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let retired: Vec<Value> = existing["retired"].as_array().cloned().unwrap_or_default();
    if std::env::var_os("TICKLER_WRITE_GOLDEN").is_some() {
        let vectors: Vec<Value> = samples
            .iter()
            .map(|(name, record, value)| {
                json!({
                    "name": name,
                    "format_version": record.format_version,
                    "event_type": record.event_type,
                    "hex": hex(&record.encode()),
                    "value": value,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&json!({
            "format": "tickler event payloads v1 (see proto/event-payloads.md)",
            "vectors": vectors,
            "retired": retired,
        }))
        .unwrap();
        std::fs::write(golden_path(), text + "\n").unwrap();
    }
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).unwrap()).unwrap();
    let vectors = golden["vectors"].as_array().unwrap();
    assert_eq!(
        vectors.len(),
        samples.len(),
        "a vector per sample (add vectors, never remove them)"
    );
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let bytes = unhex(vector["hex"].as_str().unwrap());
        let record = Record::decode(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        let decoded = match name {
            "past event" => {
                serde_json::to_value(codec::decode_past_event(&record).unwrap()).unwrap()
            }
            "snapshot" => {
                serde_json::to_value(codec::decode_snapshot(&record).expect("the snapshot decodes"))
                    .unwrap()
            }
            _ => serde_json::to_value(
                codec::decode_event(&record).unwrap_or_else(|err| panic!("{name}: {err}")),
            )
            .unwrap(),
        };
        assert_eq!(
            decoded, vector["value"],
            "{name} decodes to its recorded value"
        );
        let (_, sample, _) = samples.iter().find(|(n, _, _)| n == name).unwrap();
        assert_eq!(
            hex(&sample.encode()),
            vector["hex"].as_str().unwrap(),
            "{name}: this build writes different bytes"
        );
    }
}

/// Snapshots of an older format are caches this build no longer reads: they must be ignored
/// (the log is replayed instead), never misread.
#[test]
fn retired_snapshot_vectors_are_ignored_not_misread() {
    let golden: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).unwrap()).unwrap();
    let retired = golden["retired"].as_array().cloned().unwrap_or_default();
    assert!(
        retired.len() >= 2,
        "the v1 and v2 snapshots are kept as retired vectors"
    );
    for vector in retired {
        let bytes = unhex(vector["hex"].as_str().unwrap());
        let record = Record::decode(&bytes).unwrap();
        assert!(
            codec::decode_snapshot(&record).is_none(),
            "{}",
            vector["name"]
        );
    }
}

#[test]
fn every_event_variant_has_a_vector() {
    let codes: std::collections::BTreeSet<u16> =
        sample_events().iter().map(Event::type_code).collect();
    assert_eq!(codes, (1..=Event::TYPE_CODE_MAX).collect());
}

#[test]
fn unknown_or_mislabelled_event_records_are_refused() {
    let mut record = codec::encode_event(&sample_events()[1], at("2026-03-09T10:00:00Z"));
    record.event_type = Event::TYPE_CODE_MAX + 1;
    assert!(
        codec::decode_event(&record)
            .unwrap_err()
            .contains("unknown event type")
    );
    record.event_type = 5; // the payload is an anchor-moved (2)
    assert!(
        codec::decode_event(&record)
            .unwrap_err()
            .contains("says event type 5")
    );
    record.format_version = 2;
    assert!(
        codec::decode_event(&record)
            .unwrap_err()
            .contains("format version 2")
    );
}
