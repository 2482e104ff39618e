//! Durable storage for tickler: per-entity event logs, write-once past events, the timer index
//! and snapshots, behind the [`Store`] trait.
//!
//! Two implementations pass one conformance suite ([`conformance`]): [`SledStore`] (the
//! product's durable default, sled 0.34) and [`MemoryStore`] (fast tests). The store knows
//! records only as envelopes (format version, event type, recorded-at, opaque payload) guarded by
//! a CRC32; what a payload means is the engine's business. The byte layout of records and keys
//! is a contract, specified in `proto/record-format.md`.
//!
//! Durability: [`Store::commit`] makes a command's writes visible atomically; they survive a
//! process crash only after [`Store::flush`]. [`GroupCommit`] shares one flush among every commit
//! waiting for it, so concurrent commands pay for one flush, not one each.

mod commit;
pub mod conformance;
mod durability;
mod error;
mod forward;
#[cfg(test)]
mod golden_tests;
mod group_commit;
mod keys;
mod kv;
mod log;
mod memory;
mod migrate;
mod reads;
mod record;
mod sled_store;

use std::cmp::Ordering;

use tickler_core::{EntityId, OccurrenceId, Timestamp};

pub use commit::BATCH_ENTRIES_MAX;
pub use durability::Durability;
pub use error::Error;
#[doc(hidden)]
pub use forward::__paths;

/// The log entry codec of record format v2, for the fuzz target only.
#[doc(hidden)]
pub mod __log_entry {
    pub use crate::log::{encode_entry as encode, split_entry as split};
}
pub use group_commit::{CommitTimings, GroupCommit, GroupCommitStats};
pub use keys::{INDEX_MEMBER_LEN_MAX, INDEX_NAME_LEN_MAX};
pub use memory::MemoryStore;
pub use migrate::Migration;
pub use record::{RECORD_CRC_LEN, RECORD_PAYLOAD_LEN_MAX, Record};
pub use sled_store::SledStore;

/// An event as read back from a log: its sequence number and its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub record: Record,
}

/// A snapshot of an entity's state as of `seq` (the last event folded into it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: u64,
    pub record: Record,
}

/// One entry of the timer index: an occurrence of an entity that wants waking at `due`.
/// Entries sort by (due, entity, occurrence), the same order in memory and on disk.
///
/// "The same order as on disk" means ids compare as the keys do: keys length-prefix ids, so a
/// shorter id sorts first and ids of one length sort bytewise (`a/c` before `a/bb`). That is
/// not `String` order, hence the hand-written `Ord`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerEntry {
    pub due: Timestamp,
    pub entity: EntityId,
    pub occurrence: OccurrenceId,
}

impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        fn key_order(a: &str, b: &str) -> Ordering {
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        self.due
            .cmp(&other.due)
            .then_with(|| key_order(self.entity.as_str(), other.entity.as_str()))
            .then_with(|| {
                key_order(
                    self.occurrence.rule.as_str(),
                    other.occurrence.rule.as_str(),
                )
            })
            .then_with(|| self.occurrence.index.cmp(&other.occurrence.index))
    }
}

impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Everything one command writes, applied all-or-nothing by [`Store::commit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitBatch {
    /// The entity whose log is appended to. Every past event, timer and snapshot in the batch
    /// belongs to this entity.
    pub entity: Option<EntityId>,
    /// The sequence number of the entity's last event as the writer saw it (0: no events yet).
    /// The commit is refused with [`Error::VersionConflict`] if the log has moved on.
    pub expected_seq: u64,
    /// Appended with sequence numbers `expected_seq + 1 ..`.
    pub events: Vec<Record>,
    /// Write-once: a key that already holds a past event fails the whole commit with
    /// [`Error::PastEventExists`].
    pub past_events: Vec<(OccurrenceId, Record)>,
    /// Timer entries to delete; deleting an absent entry is not an error. Removals apply before
    /// insertions, so an entry in both lists ends up present. With `entity: None` a batch may
    /// touch any entity's timers (and nothing else but them).
    pub timers_remove: Vec<TimerEntry>,
    pub timers_insert: Vec<TimerEntry>,
    /// Replaces the entity's snapshot; its `seq` must be at most the new last sequence number.
    pub snapshot: Option<Snapshot>,
    /// Secondary index members removed and added with this commit (removals first). Unlike
    /// timers, they may name any member, not only the batch's entity.
    pub index_remove: Vec<IndexEntry>,
    pub index_insert: Vec<IndexEntry>,
}

impl CommitBatch {
    /// The keys committing this batch writes or deletes in record format v2: one log entry for
    /// all its events, then one key per past event, timer change, snapshot and index change.
    /// sled's cost is per key, so this is what a benchmark of the store's ceiling counts.
    pub fn keys_written(&self) -> usize {
        usize::from(!self.events.is_empty())
            + self.past_events.len()
            + self.timers_remove.len()
            + self.timers_insert.len()
            + usize::from(self.snapshot.is_some())
            + self.index_remove.len()
            + self.index_insert.len()
    }
}

/// A member of a named secondary index (e.g. the entities of a policy, the occurrences that
/// ended in a system error), kept in the same atomic commit as the events that change it, so
/// an index is always exactly what the logs say. Members are listed in key order: shorter
/// first, then bytewise.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    pub index: String,
    pub member: String,
}

/// Computes, from the batches of a group that passed their checks, the meta values
/// [`Store::commit_group_stamped`] writes with them, as (name, value) pairs.
pub type Stamp<'a> = dyn FnMut(&[&CommitBatch]) -> Result<Vec<(String, Vec<u8>)>, Error> + 'a;

/// What a successful commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The sequence number of the last event now in the log (0 for a batch without an entity).
    pub last_seq: u64,
}

/// Counts for status and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub entities: u64,
    pub events: u64,
    pub past_events: u64,
    pub timers: u64,
    pub snapshots: u64,
    /// Bytes the store occupies on disk (0 for the memory store).
    pub size_on_disk: u64,
}

/// The storage boundary. Implementations are safe to share between threads; every method is
/// blocking and short (no network), so async callers may call them directly except `flush`, which
/// waits for the disk: use [`GroupCommit`] for that.
pub trait Store: Send + Sync + 'static {
    /// Applies the batch atomically: either everything becomes visible or nothing does. Not yet
    /// durable: see [`Store::flush`].
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error>;

    /// Commits several batches as one write: each is checked as [`Store::commit`] checks it,
    /// against the store and the batches before it in the group, and those that pass are applied
    /// together, atomically (all of them or, on a failed write, none). One result per batch, in
    /// order. Not yet durable either. The default commits them one by one.
    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        batches
            .into_iter()
            .map(|batch| self.commit(batch))
            .collect()
    }

    /// Commits a group as [`Store::commit_group`] does and, in the same atomic write, sets the
    /// meta values `stamp` returns when shown the batches that passed their checks (in order).
    /// What a logged store needs: its log position lands with the data it describes, so no
    /// crash can leave one without the other. An error from `stamp`, or from the write, fails
    /// the whole group (the outer `Err`); nothing is applied then. The default refuses: a store
    /// that cannot write both at once must not pretend to.
    fn commit_group_stamped(
        &self,
        batches: Vec<CommitBatch>,
        stamp: &mut Stamp<'_>,
    ) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
        let _ = (batches, stamp);
        Err(Error::InvalidBatch {
            reason: "this store cannot commit a group and meta values in one write".to_owned(),
        })
    }

    /// Makes every commit that returned before this call durable against a process crash.
    fn flush(&self) -> Result<(), Error>;

    /// The sequence number of the entity's last event, 0 if it has none.
    fn last_seq(&self, entity: &EntityId) -> Result<u64, Error>;

    /// The entity's events with `seq > after_seq`, in order. A record failing its checksum or
    /// envelope decoding is reported as [`Error::Corrupt`] naming the entity and sequence number.
    fn read_events(&self, entity: &EntityId, after_seq: u64) -> Result<Vec<StoredEvent>, Error>;

    fn snapshot(&self, entity: &EntityId) -> Result<Option<Snapshot>, Error>;

    /// The entity's past events in key order: by rule name (shorter names first, then
    /// bytewise, as keys length-prefix them), then by index.
    fn past_events(&self, entity: &EntityId) -> Result<Vec<(OccurrenceId, Record)>, Error>;

    fn past_event(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
    ) -> Result<Option<Record>, Error>;

    /// Up to `limit` timer entries strictly after `after` (from the start when `None`), in
    /// [`TimerEntry`]'s order, which is the order of the index on disk.
    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, Error>;

    /// Up to `limit` timer entries due at or after `due`, in [`TimerEntry`]'s order: where the
    /// index goes on past a point in time, whatever was inserted before it.
    fn timers_from(&self, due: Timestamp, limit: usize) -> Result<Vec<TimerEntry>, Error>;

    /// Up to `limit` entity ids strictly after `after`, in key order (shorter ids first, then
    /// bytewise): every entity with at least one event.
    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error>;

    /// Up to `limit` members of a secondary index strictly after `after`, in key order.
    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error>;

    /// A small named value outside any entity (e.g. the manual clock's position). Durable after
    /// the next flush, like a commit. The name `format` is the store's own marker: readable,
    /// but refused by `set_meta`.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error>;
    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error>;

    /// Counts every entry: a full scan of the store, fine for status and benchmarks, not for a
    /// hot path.
    fn stats(&self) -> Result<StoreStats, Error>;
}
