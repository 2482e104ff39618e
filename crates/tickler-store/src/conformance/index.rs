//! Cases about everything beside the log: the timer index, snapshots, the entity listing,
//! meta and stats.

use tickler_core::{EntityId, Timestamp};

use super::{Fixture, all_timers, append, entity, occurrence, record, records, timer};
use crate::{CommitBatch, Error, IndexEntry, Snapshot, StoreStats, TimerEntry};

pub fn timers_sort_by_due_then_entity_then_occurrence(fixture: &dyn Fixture) {
    let store = fixture.store();
    let scrambled = [
        timer(2_000, "due/b", "late#0"),
        timer(1_000, "due/bb", "late#0"),
        timer(1_000, "due/b", "late#1"),
        timer(1_000, "due/b", "late#0"),
        timer(1_000, "due/b", "aa#0"),
        timer(1_000, "due/b", "late#10"),
        timer(1_000, "due/a", "zz#0"),
        timer(0, "due/z", "late#0"),
        timer(1_000, "due/b", "b#7"),
    ];
    for (i, entry) in scrambled.iter().enumerate() {
        // Alternate between per-entity and entity-less batches: both index the same way.
        let entity = (i % 2 == 0).then(|| entry.entity.clone());
        store
            .commit(CommitBatch {
                entity,
                timers_insert: vec![entry.clone()],
                ..CommitBatch::default()
            })
            .unwrap();
    }
    let listed = all_timers(store);
    let mut sorted = scrambled.to_vec();
    sorted.sort();
    assert_eq!(listed, sorted);
    // Spelled out: due first; then entity and rule names in key order (shorter first, then
    // bytewise); then the index numerically.
    assert_eq!(
        listed,
        vec![
            timer(0, "due/z", "late#0"),
            timer(1_000, "due/a", "zz#0"),
            timer(1_000, "due/b", "b#7"),
            timer(1_000, "due/b", "aa#0"),
            timer(1_000, "due/b", "late#0"),
            timer(1_000, "due/b", "late#1"),
            timer(1_000, "due/b", "late#10"),
            timer(1_000, "due/bb", "late#0"),
            timer(2_000, "due/b", "late#0"),
        ]
    );
}

pub fn timers_after_pages_with_a_cursor_and_a_limit(fixture: &dyn Fixture) {
    let store = fixture.store();
    let entries: Vec<TimerEntry> = (0..25)
        .map(|i| {
            timer(
                1_000 * (i % 5),
                &format!("due/e{}", i % 7),
                &format!("late#{i}"),
            )
        })
        .collect();
    store
        .commit(CommitBatch {
            timers_insert: entries.clone(),
            ..CommitBatch::default()
        })
        .unwrap();
    let mut sorted = entries;
    sorted.sort();
    let mut paged = Vec::new();
    let mut cursor: Option<TimerEntry> = None;
    let mut pages = 0;
    loop {
        let page = store.timers_after(cursor.as_ref(), 7).unwrap();
        assert!(page.len() <= 7);
        let Some(last) = page.last().cloned() else {
            break;
        };
        pages += 1;
        paged.extend(page);
        cursor = Some(last);
    }
    assert_eq!(pages, 4);
    assert_eq!(paged, sorted);
    assert_eq!(store.timers_after(None, 0).unwrap(), vec![]);
    // A cursor need not be stored: paging resumes after where it would sort.
    let gone = timer(1_000, "due/e0", "late#0");
    assert!(!sorted.contains(&gone));
    let resumed = store.timers_after(Some(&gone), usize::MAX).unwrap();
    let expected: Vec<TimerEntry> = sorted.iter().filter(|t| **t > gone).cloned().collect();
    assert_eq!(resumed, expected);
}

pub fn timers_from_starts_at_an_instant_whatever_sorts_before_it(fixture: &dyn Fixture) {
    let store = fixture.store();
    let entries = vec![
        timer(999, "due/z", "late#0"),
        timer(1_000, "due/a", "late#0"),
        timer(1_000, "due/z", "late#0"),
        timer(1_001, "due/a", "late#0"),
    ];
    store
        .commit(CommitBatch {
            timers_insert: entries.clone(),
            ..CommitBatch::default()
        })
        .unwrap();
    assert_eq!(
        store
            .timers_from(Timestamp::from_millis(1_000).unwrap(), usize::MAX)
            .unwrap(),
        entries[1..]
    );
    assert_eq!(
        store
            .timers_from(Timestamp::from_millis(1_000).unwrap(), 1)
            .unwrap(),
        entries[1..2]
    );
    assert_eq!(
        store.timers_from(Timestamp::EPOCH, usize::MAX).unwrap(),
        entries
    );
    assert_eq!(
        store
            .timers_from(Timestamp::from_millis(1_002).unwrap(), usize::MAX)
            .unwrap(),
        vec![]
    );
}

pub fn timer_insert_and_remove_in_one_commit(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/r");
    let old = timer(1_000, "due/r", "late#0");
    let new = timer(9_000, "due/r", "late#1");
    let kept = timer(5_000, "due/r", "pre-due#0");
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            events: records(&["armed"]),
            timers_insert: vec![old.clone(), kept.clone()],
            ..CommitBatch::default()
        })
        .unwrap();
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 1,
            events: records(&["rescheduled"]),
            timers_remove: vec![old.clone(), timer(7, "due/r", "absent#0"), kept.clone()],
            timers_insert: vec![new.clone(), kept.clone()],
            ..CommitBatch::default()
        })
        .unwrap();
    // Removed, inserted, and removed-and-reinserted (present: removals apply first).
    assert_eq!(all_timers(store), vec![kept, new]);
}

pub fn snapshots_replace_earlier_snapshots(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/s");
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            events: records(&["1"]),
            snapshot: Some(Snapshot {
                seq: 1,
                record: record(3, "state at 1"),
            }),
            ..CommitBatch::default()
        })
        .unwrap();
    append(store, "due/s", 1, &["2", "3"]);
    assert_eq!(store.snapshot(&e).unwrap().map(|s| s.seq), Some(1));
    // A snapshot may be written on its own, up to the current last seq.
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 3,
            snapshot: Some(Snapshot {
                seq: 3,
                record: record(3, "state at 3"),
            }),
            ..CommitBatch::default()
        })
        .unwrap();
    assert_eq!(
        store.snapshot(&e).unwrap(),
        Some(Snapshot {
            seq: 3,
            record: record(3, "state at 3")
        })
    );
    assert_eq!(store.snapshot(&entity("due/none")).unwrap(), None);
}

pub fn entities_are_listed_in_key_order_with_a_cursor(fixture: &dyn Fixture) {
    let store = fixture.store();
    for id in ["due/b", "due/aa", "due/a", "member/x", "due/c"] {
        append(store, id, 0, &["x"]);
    }
    // Timers and snapshots alone do not make an entity listed.
    store
        .commit(CommitBatch {
            entity: Some(entity("due/ghost")),
            timers_insert: vec![timer(1, "due/ghost", "late#0")],
            ..CommitBatch::default()
        })
        .unwrap();
    let all = store.entities_after(None, usize::MAX).unwrap();
    // Key order: shorter ids first, then bytewise.
    let expected: Vec<EntityId> = ["due/a", "due/b", "due/c", "due/aa", "member/x"]
        .map(entity)
        .to_vec();
    assert_eq!(all, expected);
    assert_eq!(store.entities_after(None, 2).unwrap(), expected[..2]);
    assert_eq!(
        store.entities_after(Some(&entity("due/b")), 2).unwrap(),
        expected[2..4]
    );
    assert_eq!(
        store.entities_after(Some(&entity("member/x")), 10).unwrap(),
        vec![]
    );
    assert_eq!(store.entities_after(None, 0).unwrap(), vec![]);
}

pub fn meta_round_trips_and_the_format_name_is_reserved(fixture: &dyn Fixture) {
    let store = fixture.store();
    assert_eq!(store.meta("clock").unwrap(), None);
    store.set_meta("clock", b"1000").unwrap();
    store.set_meta("other", b"").unwrap();
    assert_eq!(store.meta("clock").unwrap(), Some(b"1000".to_vec()));
    store.set_meta("clock", b"2000").unwrap();
    assert_eq!(store.meta("clock").unwrap(), Some(b"2000".to_vec()));
    assert_eq!(store.meta("other").unwrap(), Some(Vec::new()));
    assert_eq!(
        store.meta("format").unwrap(),
        Some(b"tickler-store-v2".to_vec())
    );
    let err = store.set_meta("format", b"evil").unwrap_err();
    assert!(matches!(err, Error::InvalidMeta { .. }), "{err}");
    assert!(store.set_meta("", b"x").is_err());
    assert_eq!(
        store.meta("format").unwrap(),
        Some(b"tickler-store-v2".to_vec())
    );
}

pub fn stats_count_every_kind_of_entry(fixture: &dyn Fixture) {
    let store = fixture.store();
    store
        .commit(CommitBatch {
            entity: Some(entity("due/s1")),
            events: records(&["1", "2", "3"]),
            past_events: vec![(occurrence("late#0"), record(1, "x"))],
            timers_insert: vec![timer(1, "due/s1", "late#1"), timer(2, "due/s1", "late#2")],
            snapshot: Some(Snapshot {
                seq: 3,
                record: record(1, "s"),
            }),
            ..CommitBatch::default()
        })
        .unwrap();
    append(store, "due/s2", 0, &["1"]);
    store.set_meta("clock", b"1").unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(
        StoreStats {
            size_on_disk: 0,
            ..stats
        },
        StoreStats {
            entities: 2,
            events: 4,
            past_events: 1,
            timers: 2,
            snapshots: 1,
            size_on_disk: 0,
        }
    );
}

fn member(index: &str, member: &str) -> IndexEntry {
    IndexEntry {
        index: index.to_owned(),
        member: member.to_owned(),
    }
}

pub fn index_members_change_with_commits_and_list_in_key_order(fixture: &dyn Fixture) {
    let store = fixture.store();
    let e = entity("due/indexed");
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            events: records(&["1"]),
            index_insert: vec![
                member("policy/due-date", "due/indexed"),
                member("policy/due-date", "due/b"),
                member("recipient/r@example.org", "due/indexed"),
            ],
            ..CommitBatch::default()
        })
        .unwrap();
    // Another index with a name that extends this one's is separate.
    store
        .commit(CommitBatch {
            index_insert: vec![member("policy/due-date-2", "due/other")],
            ..CommitBatch::default()
        })
        .unwrap();
    let listed = |index: &str| store.index_members(index, None, usize::MAX).unwrap();
    assert_eq!(listed("policy/due-date"), ["due/b", "due/indexed"]);
    assert_eq!(listed("recipient/r@example.org"), ["due/indexed"]);
    assert_eq!(listed("policy/due-date-2"), ["due/other"]);
    assert!(listed("policy/nothing").is_empty());
    // Removal and insertion of the same member in one commit leaves it present.
    store
        .commit(CommitBatch {
            entity: Some(e.clone()),
            expected_seq: 1,
            events: records(&["2"]),
            index_remove: vec![
                member("policy/due-date", "due/b"),
                member("policy/due-date", "due/indexed"),
            ],
            index_insert: vec![member("policy/due-date", "due/indexed")],
            ..CommitBatch::default()
        })
        .unwrap();
    assert_eq!(listed("policy/due-date"), ["due/indexed"]);
}

pub fn index_members_page_with_a_cursor_and_a_limit(fixture: &dyn Fixture) {
    let store = fixture.store();
    let members: Vec<IndexEntry> = (0..25)
        .map(|i| member("errored", &format!("due/{i:02}#late#0")))
        .collect();
    store
        .commit(CommitBatch {
            index_insert: members.clone(),
            ..CommitBatch::default()
        })
        .unwrap();
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .index_members("errored", cursor.as_deref(), 7)
            .unwrap();
        assert!(page.len() <= 7);
        if page.is_empty() {
            break;
        }
        cursor = page.last().cloned();
        paged.extend(page);
    }
    let expected: Vec<String> = members.into_iter().map(|m| m.member).collect();
    assert_eq!(paged, expected);
    assert!(store.index_members("errored", None, 0).unwrap().is_empty());
}

pub fn invalid_index_entries_are_refused(fixture: &dyn Fixture) {
    let store = fixture.store();
    for (entry, needle) in [
        (member("", "x"), "index name"),
        (member("errored", ""), "index member"),
        (member("errored", "a\nb"), "index member"),
        (member(&"n".repeat(129), "x"), "index name"),
        (member("errored", &"m".repeat(513)), "index member"),
    ] {
        let err = store
            .commit(CommitBatch {
                index_insert: vec![entry],
                ..CommitBatch::default()
            })
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidBatch { reason } if reason.contains(needle)),
            "{err}"
        );
    }
    assert!(
        store
            .index_members("errored", None, usize::MAX)
            .unwrap()
            .is_empty()
    );
}
