//! Cases about the event log: appends, versions, past events, atomicity, corruption.

use super::{
    Fixture, all_timers, append, at, entity, occurrence, payloads, record, records, timer, view,
};
use crate::{CommitBatch, CommitReceipt, Error, Record, Snapshot, Store};

pub fn an_empty_store_reads_as_empty(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/nothing");
    assert_eq!(store.last_seq(&e).unwrap(), 0);
    assert_eq!(store.read_events(&e, 0).unwrap(), vec![]);
    assert_eq!(store.snapshot(&e).unwrap(), None);
    assert_eq!(store.past_events(&e).unwrap(), vec![]);
    assert_eq!(store.past_event(&e, &occurrence("late#0")).unwrap(), None);
    assert_eq!(all_timers(store), vec![]);
    assert_eq!(store.entities_after(None, 10).unwrap(), vec![]);
    let stats = store.stats().unwrap();
    assert_eq!(
        (
            stats.entities,
            stats.events,
            stats.past_events,
            stats.timers,
            stats.snapshots
        ),
        (0, 0, 0, 0, 0)
    );
    store.flush().unwrap();
}

pub fn append_and_read_back_in_order(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/a");
    let receipt = append(store, "due/a", 0, &["one", "two", "three"]);
    assert_eq!(receipt, CommitReceipt { last_seq: 3 });
    append(store, "due/a", 3, &["four", "five"]);
    let events = store.read_events(&e, 0).unwrap();
    assert_eq!(
        payloads(&events),
        [
            (1, "one"),
            (2, "two"),
            (3, "three"),
            (4, "four"),
            (5, "five")
        ]
        .map(|(seq, text)| (seq, text.to_owned()))
    );
    // Records come back field for field, not just payloads.
    assert_eq!(events[0].record, record(1, "one"));
    let odd = Record {
        format_version: 7,
        event_type: 65_535,
        recorded_at: at(253_402_300_799_999),
        payload: vec![0, 255, 1, 254],
    };
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 5,
            events: vec![odd.clone()],
            ..CommitBatch::default()
        })
        .unwrap();
    assert_eq!(store.read_events(&e, 5).unwrap()[0].record, odd);
}

pub fn sequence_numbers_start_at_one_without_gaps(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/seq");
    let mut last = 0;
    for size in [1usize, 3, 2, 1] {
        let texts: Vec<String> = (0..size).map(|i| format!("{last}-{i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let receipt = append(store, "due/seq", last, &texts);
        assert_eq!(receipt.last_seq, last + size as u64);
        last = receipt.last_seq;
        assert_eq!(store.last_seq(&e).unwrap(), last);
    }
    let seqs: Vec<u64> = store
        .read_events(&e, 0)
        .unwrap()
        .iter()
        .map(|event| event.seq)
        .collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>());
    // Another entity's log starts at 1 on its own.
    assert_eq!(append(store, "due/other", 0, &["x"]).last_seq, 1);
}

pub fn read_events_after_seq_skips_earlier_events(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/after");
    append(store, "due/after", 0, &["1", "2", "3", "4", "5"]);
    let seqs = |after| -> Vec<u64> {
        store
            .read_events(&e, after)
            .unwrap()
            .iter()
            .map(|event| event.seq)
            .collect()
    };
    assert_eq!(seqs(0), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(2), [3, 4, 5]);
    assert_eq!(seqs(4), [5]);
    assert_eq!(seqs(5), Vec::<u64>::new());
    assert_eq!(seqs(9), Vec::<u64>::new());
    assert_eq!(seqs(u64::MAX), Vec::<u64>::new());
}

pub fn a_version_conflict_is_rejected_and_nothing_written(fixture: &dyn Fixture) {
    let store = fixture.store();
    append(store, "due/v", 0, &["1", "2"]);
    let before = view(store, "due/v");
    for expected_seq in [0, 1, 3, 10] {
        let err = store
            .commit(CommitBatch {
                entity: Some(entity("due/v")),
                expected_seq,
                events: records(&["late"]),
                past_events: vec![(occurrence("late#0"), record(2, "sent"))],
                timers_insert: vec![timer(1_000, "due/v", "late#1")],
                snapshot: Some(Snapshot {
                    seq: expected_seq,
                    record: record(3, "state"),
                }),
                ..CommitBatch::default()
            })
            .unwrap_err();
        assert_eq!(
            err,
            Error::VersionConflict {
                entity: entity("due/v"),
                expected: expected_seq,
                actual: 2
            }
        );
        assert!(err.to_string().contains("due/v"), "{err}");
    }
    assert_eq!(view(store, "due/v"), before);
    // A new entity is at 0.
    let err = append_err(store, "due/new", 1);
    assert!(
        matches!(err, Error::VersionConflict { actual: 0, .. }),
        "{err}"
    );
}

fn append_err(store: &dyn Store, entity_id: &str, expected_seq: u64) -> Error {
    store
        .commit(CommitBatch {
            entity: Some(entity(entity_id)),
            expected_seq,
            events: records(&["x"]),
            ..CommitBatch::default()
        })
        .unwrap_err()
}

pub fn a_batch_without_events_still_checks_the_version(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/t");
    let reschedule = |expected_seq| CommitBatch {
        entity: Some(e.clone()),
        expected_seq,
        timers_insert: vec![timer(5_000, "due/t", "late#0")],
        ..CommitBatch::default()
    };
    assert!(matches!(
        store.commit(reschedule(1)),
        Err(Error::VersionConflict { .. })
    ));
    assert_eq!(all_timers(store), vec![]);
    assert_eq!(store.commit(reschedule(0)).unwrap().last_seq, 0);
    assert_eq!(all_timers(store), vec![timer(5_000, "due/t", "late#0")]);
    // No events: no head, so the entity is not listed and its log is still empty.
    assert_eq!(store.last_seq(&e).unwrap(), 0);
    assert_eq!(store.entities_after(None, 10).unwrap(), vec![]);
    // Without an entity, timers of any entity may change and nothing is checked.
    let receipt = store
        .commit(CommitBatch {
            timers_remove: vec![timer(5_000, "due/t", "late#0")],
            timers_insert: vec![timer(6_000, "due/u", "late#0")],
            ..CommitBatch::default()
        })
        .unwrap();
    assert_eq!(receipt.last_seq, 0);
    assert_eq!(all_timers(store), vec![timer(6_000, "due/u", "late#0")]);
}

pub fn past_events_are_write_once(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/p");
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 0,
            events: records(&["armed"]),
            past_events: vec![(occurrence("pre-due#0"), record(9, "first"))],
            ..CommitBatch::default()
        })
        .unwrap();
    let before = view(store, "due/p");
    let err = store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 1,
            events: records(&["again"]),
            past_events: vec![
                (occurrence("late#0"), record(9, "new")),
                (occurrence("pre-due#0"), record(9, "second")),
            ],
            timers_insert: vec![timer(1, "due/p", "late#1")],
            snapshot: Some(Snapshot {
                seq: 2,
                record: record(3, "state"),
            }),
            ..CommitBatch::default()
        })
        .unwrap_err();
    assert_eq!(
        err,
        Error::PastEventExists {
            entity: e.clone(),
            occurrence: occurrence("pre-due#0")
        }
    );
    assert!(err.to_string().contains("pre-due#0"), "{err}");
    assert_eq!(
        store
            .past_event(&e, &occurrence("pre-due#0"))
            .unwrap()
            .map(|r| r.payload),
        Some(b"first".to_vec())
    );
    assert_eq!(view(store, "due/p"), before);
    assert_eq!(store.past_event(&e, &occurrence("late#0")).unwrap(), None);
}

pub fn past_events_are_read_back_by_occurrence(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/q");
    let written = ["late#10", "aa#0", "late#2", "b#5"];
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            past_events: written
                .iter()
                .map(|occ| (occurrence(occ), record(1, occ)))
                .collect(),
            ..CommitBatch::default()
        })
        .unwrap();
    // Key order: rule names shorter first, then bytewise; indexes numerically.
    let listed: Vec<String> = store
        .past_events(&e)
        .unwrap()
        .into_iter()
        .map(|(occ, record)| {
            assert_eq!(record.payload, occ.to_string().into_bytes());
            occ.to_string()
        })
        .collect();
    assert_eq!(listed, ["b#5", "aa#0", "late#2", "late#10"]);
    assert_eq!(
        store.past_event(&e, &occurrence("late#2")).unwrap(),
        Some(record(1, "late#2"))
    );
    assert_eq!(store.past_event(&e, &occurrence("late#3")).unwrap(), None);
    // Another entity's past events are separate, even one whose id extends this one.
    assert_eq!(store.past_events(&entity("due/qq")).unwrap(), vec![]);
}

pub fn a_failing_batch_changes_nothing(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/atomic");
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 0,
            events: records(&["1", "2"]),
            past_events: vec![(occurrence("pre-due#0"), record(9, "sent"))],
            timers_insert: vec![timer(10, "due/atomic", "late#0")],
            snapshot: Some(Snapshot {
                seq: 2,
                record: record(3, "state at 2"),
            }),
            ..CommitBatch::default()
        })
        .unwrap();
    let before = view(store, "due/atomic");
    let everything = |expected_seq, past: &str, snapshot_seq, timer_entity: &str| CommitBatch {
        entity: Some(e.clone()),
        expected_seq,
        events: records(&["3", "4"]),
        past_events: vec![(occurrence(past), record(9, "x"))],
        timers_remove: vec![timer(10, "due/atomic", "late#0")],
        timers_insert: vec![timer(20, timer_entity, "late#1")],
        snapshot: Some(Snapshot {
            seq: snapshot_seq,
            record: record(3, "state at 4"),
        }),
        index_remove: Vec::new(),
        index_insert: vec![crate::IndexEntry {
            index: super::TEST_INDEX.to_owned(),
            member: "due/atomic#late#0".to_owned(),
        }],
    };
    let failing = [
        ("version conflict", everything(1, "late#0", 3, "due/atomic")),
        (
            "past event exists",
            everything(2, "pre-due#0", 4, "due/atomic"),
        ),
        ("snapshot ahead", everything(2, "late#0", 5, "due/atomic")),
        ("foreign timer", everything(2, "late#0", 4, "due/other")),
    ];
    for (case, batch) in failing {
        assert!(store.commit(batch).is_err(), "{case}");
        assert_eq!(view(store, "due/atomic"), before, "{case}");
    }
    // The same batch, made valid, applies whole.
    store
        .commit(everything(2, "late#0", 4, "due/atomic"))
        .unwrap();
    let after = view(store, "due/atomic");
    assert_eq!(after.last_seq, 4);
    assert_eq!(after.past_events.len(), 2);
    assert_eq!(after.timers, vec![timer(20, "due/atomic", "late#1")]);
    assert_eq!(after.snapshot.map(|s| s.seq), Some(4));
    assert_eq!(after.index, ["due/atomic#late#0"]);
}

pub fn invalid_batches_are_refused(fixture: &dyn Fixture) {
    let store = fixture.store();
    let invalid = |batch: CommitBatch, needle: &str| {
        let err = store.commit(batch).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidBatch { reason } if reason.contains(needle)),
            "expected {needle:?} in {err}"
        );
    };
    invalid(
        CommitBatch {
            events: records(&["x"]),
            ..CommitBatch::default()
        },
        "entity",
    );
    invalid(
        CommitBatch {
            past_events: vec![(occurrence("late#0"), record(1, "x"))],
            ..CommitBatch::default()
        },
        "entity",
    );
    invalid(
        CommitBatch {
            expected_seq: 3,
            ..CommitBatch::default()
        },
        "expected_seq 3",
    );
    invalid(
        CommitBatch {
            entity: Some(entity("due/i")),
            events: records(&["x"]),
            snapshot: Some(Snapshot {
                seq: 2,
                record: record(1, "s"),
            }),
            ..CommitBatch::default()
        },
        "snapshot at seq 2",
    );
    invalid(
        CommitBatch {
            entity: Some(entity("due/i")),
            timers_remove: vec![timer(1, "due/j", "late#0")],
            ..CommitBatch::default()
        },
        "due/j",
    );
    invalid(
        CommitBatch {
            entity: Some(entity("due/i")),
            past_events: vec![
                (occurrence("late#0"), record(1, "x")),
                (occurrence("late#0"), record(1, "y")),
            ],
            ..CommitBatch::default()
        },
        "appears twice",
    );
    invalid(
        CommitBatch {
            entity: Some(entity("due/i")),
            events: vec![Record {
                payload: vec![0; crate::RECORD_PAYLOAD_LEN_MAX + 1],
                ..record(1, "")
            }],
            ..CommitBatch::default()
        },
        "exceeds the limit",
    );
    invalid(
        CommitBatch {
            entity: Some(entity("due/i")),
            events: vec![record(1, ""); crate::BATCH_ENTRIES_MAX + 1],
            ..CommitBatch::default()
        },
        "entries exceed",
    );
    assert_eq!(store.last_seq(&entity("due/i")).unwrap(), 0);
    assert_eq!(all_timers(store), vec![]);
}

pub fn a_corrupt_record_is_reported_with_entity_and_seq(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/bad");
    append(store, "due/bad", 0, &["1", "2", "3"]);
    let mut flipped = record(1, "2").encode();
    flipped[3] ^= 0x10;
    fixture.overwrite_event(&e, 2, &flipped);
    let err = store.read_events(&e, 0).unwrap_err();
    match &err {
        Error::Corrupt {
            entity: bad,
            seq,
            reason,
        } => {
            assert_eq!((bad, *seq), (&e, 2));
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(
        err.to_string().contains("event 2 of entity due/bad"),
        "{err}"
    );
    // Reading past the damage still works; so does reading another entity.
    assert_eq!(
        payloads(&store.read_events(&e, 2).unwrap()),
        [(3, "3".to_owned())]
    );
    fixture.overwrite_event(&e, 3, &[1, 2]);
    let err = store.read_events(&e, 2).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { seq: 3, reason, .. } if reason.contains("shorter than")),
        "{err}"
    );
}

pub fn concurrent_commits_to_one_entity_never_lose_events(fixture: &dyn Fixture) {
    const WRITERS: usize = 4;
    const APPENDS_EACH: usize = 25;
    let store = fixture.store();
    let e = entity("due/busy");
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let e = e.clone();
            scope.spawn(move || {
                for i in 0..APPENDS_EACH {
                    loop {
                        let expected_seq = store.last_seq(&e).unwrap();
                        let result = store.commit(CommitBatch {
                            entity: Some(e.clone()),
                            expected_seq,
                            events: records(&[&format!("{writer}-{i}")]),
                            ..CommitBatch::default()
                        });
                        match result {
                            Ok(_) => break,
                            Err(Error::VersionConflict { .. }) => continue,
                            Err(other) => panic!("{other}"),
                        }
                    }
                }
            });
        }
    });
    let events = store.read_events(&e, 0).unwrap();
    assert_eq!(events.len(), WRITERS * APPENDS_EACH);
    let mut texts: Vec<String> = payloads(&events).into_iter().map(|(_, t)| t).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(
        texts.len(),
        WRITERS * APPENDS_EACH,
        "no append lost or doubled"
    );
}
