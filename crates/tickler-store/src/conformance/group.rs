//! Cases about group commits (`Store::commit_group`): each batch checked on its own, against the
//! store and the batches before it, and what passes written together.

use super::{Fixture, all_timers, append, entity, occurrence, payloads, record, records, timer};
use crate::{CommitBatch, CommitReceipt, Error};

fn batch(entity_id: &str, expected_seq: u64, payloads: &[&str]) -> CommitBatch {
    CommitBatch {
        entity: Some(entity(entity_id)),
        expected_seq,
        events: records(payloads),
        ..CommitBatch::default()
    }
}

pub fn a_group_writes_the_batches_that_pass_and_refuses_only_the_others(fixture: &dyn Fixture) {
    let store = fixture.store();
    append(store, "due/b", 0, &["b1"]);
    let results = store.commit_group(vec![
        CommitBatch {
            timers_insert: vec![timer(1_000, "due/a", "late#0")],
            ..batch("due/a", 0, &["a1", "a2"])
        },
        // Stale: due/b is at 1.
        batch("due/b", 0, &["b-stale"]),
        // Invalid on its face: events without an entity.
        CommitBatch {
            entity: None,
            events: records(&["orphan"]),
            ..CommitBatch::default()
        },
        batch("due/c", 0, &["c1"]),
    ]);
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], Ok(CommitReceipt { last_seq: 2 }));
    assert!(
        matches!(
            &results[1],
            Err(Error::VersionConflict {
                expected: 0,
                actual: 1,
                ..
            })
        ),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::InvalidBatch { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(results[3], Ok(CommitReceipt { last_seq: 1 }));
    assert_eq!(
        payloads(&store.read_events(&entity("due/a"), 0).unwrap()).len(),
        2
    );
    assert_eq!(
        payloads(&store.read_events(&entity("due/b"), 0).unwrap()),
        [(1, "b1".to_owned())]
    );
    assert_eq!(store.last_seq(&entity("due/c")).unwrap(), 1);
    assert_eq!(all_timers(store), vec![timer(1_000, "due/a", "late#0")]);
}

pub fn batches_of_one_entity_in_a_group_follow_each_other(fixture: &dyn Fixture) {
    let store = fixture.store();
    let results = store.commit_group(vec![
        batch("due/a", 0, &["one"]),
        batch("due/a", 1, &["two", "three"]),
        // Written as if the second were not there: refused.
        batch("due/a", 1, &["conflict"]),
    ]);
    assert_eq!(results[0], Ok(CommitReceipt { last_seq: 1 }));
    assert_eq!(results[1], Ok(CommitReceipt { last_seq: 3 }));
    assert!(
        matches!(
            &results[2],
            Err(Error::VersionConflict {
                expected: 1,
                actual: 3,
                ..
            })
        ),
        "{:?}",
        results[2]
    );
    assert_eq!(
        payloads(&store.read_events(&entity("due/a"), 0).unwrap()),
        [(1, "one"), (2, "two"), (3, "three")].map(|(s, p)| (s, p.to_owned()))
    );
}

pub fn a_past_event_written_earlier_in_a_group_is_write_once_too(fixture: &dyn Fixture) {
    let store = fixture.store();
    let first = CommitBatch {
        past_events: vec![(occurrence("late#0"), record(9, "sent"))],
        ..batch("due/a", 0, &["closed"])
    };
    let again = CommitBatch {
        past_events: vec![(occurrence("late#0"), record(9, "rewritten"))],
        ..batch("due/a", 1, &["closed again"])
    };
    let results = store.commit_group(vec![first, again]);
    assert_eq!(results[0], Ok(CommitReceipt { last_seq: 1 }));
    assert!(
        matches!(&results[1], Err(Error::PastEventExists { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(
        store
            .past_event(&entity("due/a"), &occurrence("late#0"))
            .unwrap(),
        Some(record(9, "sent"))
    );
    assert_eq!(store.last_seq(&entity("due/a")).unwrap(), 1);
}

pub fn an_empty_group_writes_nothing(fixture: &dyn Fixture) {
    let store = fixture.store();
    assert_eq!(store.commit_group(Vec::new()), Vec::new());
    assert_eq!(store.stats().unwrap().events, 0);
}

pub fn a_stamped_group_writes_the_stamp_for_the_batches_that_pass(fixture: &dyn Fixture) {
    let store = fixture.store();
    append(store, "due/b", 0, &["b1"]);
    let mut shown = Vec::new();
    let results = store
        .commit_group_stamped(
            vec![batch("due/a", 0, &["a1"]), batch("due/b", 0, &["b-stale"])],
            &mut |accepted| {
                shown = accepted.iter().map(|batch| batch.entity.clone()).collect();
                Ok(vec![("position".to_owned(), b"7".to_vec())])
            },
        )
        .expect("the group is written");
    assert_eq!(results[0], Ok(CommitReceipt { last_seq: 1 }));
    assert!(matches!(results[1], Err(Error::VersionConflict { .. })));
    assert_eq!(shown, [Some(entity("due/a"))], "only the passing batch");
    assert_eq!(store.meta("position").unwrap().as_deref(), Some(&b"7"[..]));
}

pub fn a_failing_stamp_writes_nothing_of_the_group(fixture: &dyn Fixture) {
    let store = fixture.store();
    let refused = store.commit_group_stamped(vec![batch("due/a", 0, &["a1"])], &mut |_| {
        Ok(vec![("format".to_owned(), b"mine".to_vec())])
    });
    assert!(
        matches!(refused, Err(Error::InvalidMeta { .. })),
        "{refused:?}"
    );
    assert!(store.read_events(&entity("due/a"), 0).unwrap().is_empty());
    let failed = store.commit_group_stamped(vec![batch("due/a", 0, &["a1"])], &mut |_| {
        Err(Error::Stopped {
            reason: "test".to_owned(),
        })
    });
    assert!(matches!(failed, Err(Error::Stopped { .. })), "{failed:?}");
    assert!(store.read_events(&entity("due/a"), 0).unwrap().is_empty());
    assert_eq!(store.meta("position").unwrap(), None);
}
