//! The behaviour every [`Store`] must have, as functions that take a fresh store and panic on a
//! violation. [`conformance_tests!`](crate::conformance_tests) turns them into one `#[test]` per
//! case, so a failure names the case:
//!
//! ```no_run
//! mod memory {
//!     tickler_store::conformance_tests!(tickler_store::MemoryStore::new);
//! }
//! ```

mod group;
mod index;
mod log;

use tickler_core::{EntityId, OccurrenceId, Timestamp};

pub use group::*;
pub use index::*;
pub use log::*;

use crate::{
    CommitBatch, CommitReceipt, MemoryStore, Record, Snapshot, Store, StoreStats, StoredEvent,
    TimerEntry,
};

/// A fresh store under test, plus the one thing the trait cannot do: damage a record.
pub trait Fixture {
    fn store(&self) -> &dyn Store;
    /// Replaces the stored bytes of an existing event, bypassing every check.
    fn overwrite_event(&self, entity: &EntityId, seq: u64, bytes: &[u8]);
}

impl Fixture for MemoryStore {
    fn store(&self) -> &dyn Store {
        self
    }

    fn overwrite_event(&self, entity: &EntityId, seq: u64, bytes: &[u8]) {
        let found = self.corrupt_event(entity, seq, |stored| *stored = bytes.to_vec());
        assert!(found, "no event {seq} of {entity} to overwrite");
    }
}

/// Expands to one `#[test]` per conformance case. `$make` is a function or closure returning a
/// fresh [`Fixture`] each time it is called.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            an_empty_store_reads_as_empty,
            append_and_read_back_in_order,
            sequence_numbers_start_at_one_without_gaps,
            read_events_after_seq_skips_earlier_events,
            a_version_conflict_is_rejected_and_nothing_written,
            a_batch_without_events_still_checks_the_version,
            past_events_are_write_once,
            past_events_are_read_back_by_occurrence,
            a_failing_batch_changes_nothing,
            invalid_batches_are_refused,
            timers_sort_by_due_then_entity_then_occurrence,
            timers_after_pages_with_a_cursor_and_a_limit,
            timers_from_starts_at_an_instant_whatever_sorts_before_it,
            timer_insert_and_remove_in_one_commit,
            snapshots_replace_earlier_snapshots,
            entities_are_listed_in_key_order_with_a_cursor,
            meta_round_trips_and_the_format_name_is_reserved,
            a_corrupt_record_is_reported_with_entity_and_seq,
            stats_count_every_kind_of_entry,
            concurrent_commits_to_one_entity_never_lose_events,
            index_members_change_with_commits_and_list_in_key_order,
            index_members_page_with_a_cursor_and_a_limit,
            invalid_index_entries_are_refused,
            a_group_writes_the_batches_that_pass_and_refuses_only_the_others,
            batches_of_one_entity_in_a_group_follow_each_other,
            a_past_event_written_earlier_in_a_group_is_write_once_too,
            an_empty_group_writes_nothing,
            a_stamped_group_writes_the_stamp_for_the_batches_that_pass,
            a_failing_stamp_writes_nothing_of_the_group,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let make = $make;
                let fixture = make();
                $crate::conformance::$case(&fixture);
            }
        )*
    };
}

fn entity(text: &str) -> EntityId {
    EntityId::parse(text).expect("test entity ids are valid")
}

fn occurrence(text: &str) -> OccurrenceId {
    OccurrenceId::parse(text).expect("test occurrence ids are valid")
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms).expect("test instants are in range")
}

fn record(event_type: u16, payload: &str) -> Record {
    Record {
        format_version: 1,
        event_type,
        recorded_at: at(1_772_701_200_000),
        payload: payload.as_bytes().to_vec(),
    }
}

fn records(payloads: &[&str]) -> Vec<Record> {
    payloads.iter().map(|payload| record(1, payload)).collect()
}

fn timer(due_ms: i64, entity_id: &str, occ: &str) -> TimerEntry {
    TimerEntry {
        due: at(due_ms),
        entity: entity(entity_id),
        occurrence: occurrence(occ),
    }
}

fn append(
    store: &dyn Store,
    entity_id: &str,
    expected_seq: u64,
    payloads: &[&str],
) -> CommitReceipt {
    store
        .commit(CommitBatch {
            entity: Some(entity(entity_id)),
            expected_seq,
            events: records(payloads),
            ..CommitBatch::default()
        })
        .expect("append commits")
}

fn payloads(events: &[StoredEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .map(|event| {
            let text = String::from_utf8_lossy(&event.record.payload).into_owned();
            (event.seq, text)
        })
        .collect()
}

fn all_timers(store: &dyn Store) -> Vec<TimerEntry> {
    store.timers_after(None, usize::MAX).expect("timers read")
}

/// Everything observable about one entity plus the global listings, to compare before and
/// after a batch that must change nothing.
#[derive(Debug, PartialEq)]
struct View {
    last_seq: u64,
    events: Vec<StoredEvent>,
    snapshot: Option<Snapshot>,
    past_events: Vec<(OccurrenceId, Record)>,
    timers: Vec<TimerEntry>,
    entities: Vec<EntityId>,
    /// The members of the index the conformance cases use.
    index: Vec<String>,
    stats: StoreStats,
}

/// The index the conformance cases write to.
const TEST_INDEX: &str = "errored";

fn view(store: &dyn Store, entity_id: &str) -> View {
    let e = entity(entity_id);
    let mut stats = store.stats().expect("stats");
    // sled's file sizes move with background work, not with our writes.
    stats.size_on_disk = 0;
    View {
        last_seq: store.last_seq(&e).expect("last_seq"),
        events: store.read_events(&e, 0).expect("events"),
        snapshot: store.snapshot(&e).expect("snapshot"),
        past_events: store.past_events(&e).expect("past events"),
        timers: all_timers(store),
        entities: store.entities_after(None, usize::MAX).expect("entities"),
        index: store
            .index_members(TEST_INDEX, None, usize::MAX)
            .expect("index"),
        stats,
    }
}

/// Everything a store holds that the trait lists (each entity's events, past events and
/// snapshot, the timer index, the members of `indexes`, the values of `metas`, the counts but
/// the size on disk) as text: two stores that must be equal key for key (a copy rebuilt from a
/// log and the live one) compare equal on it, and a difference reads as a diff.
pub fn listing(store: &dyn Store, indexes: &[&str], metas: &[&str]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for id in store.entities_after(None, usize::MAX).expect("entities") {
        let _ = writeln!(
            out,
            "{id}: {:?}",
            store.read_events(&id, 0).expect("events")
        );
        let _ = writeln!(
            out,
            "  past {:?}",
            store.past_events(&id).expect("past events")
        );
        let _ = writeln!(
            out,
            "  snapshot {:?}",
            store.snapshot(&id).expect("snapshot")
        );
    }
    let _ = writeln!(out, "timers {:?}", all_timers(store));
    for index in indexes {
        let members = store.index_members(index, None, usize::MAX).expect("index");
        let _ = writeln!(out, "index {index} {members:?}");
    }
    for name in metas {
        let _ = writeln!(out, "meta {name} {:?}", store.meta(name).expect("meta"));
    }
    let mut stats = store.stats().expect("stats");
    stats.size_on_disk = 0;
    let _ = writeln!(out, "{stats:?}");
    out
}
