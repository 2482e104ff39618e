//! Atomic commits: validate the batch, check the expected version and the write-once rule under
//! the entity's lock, then apply every write as one backend batch. A group of commits (group
//! commit's) is checked batch by batch, each against the store and the ones before it, and what
//! passes is applied as one backend batch: sled pays its per-batch costs (a global lock, two log
//! buffer rolls) once per group instead of once per commit.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tickler_core::EntityId;

use crate::Stamp;
use crate::kv::{Kv, Write};
use crate::record::RECORD_PAYLOAD_LEN_MAX;
use crate::{CommitBatch, CommitReceipt, Error, Record};
use crate::{keys, log, reads};

/// The most entries (events, past events, timer changes) one batch may carry. A command writes a
/// handful; thousands mean a runaway writer, and one sled batch is held in memory whole.
pub const BATCH_ENTRIES_MAX: usize = 10_000;

/// Enough stripes that unrelated entities rarely wait for each other on 2 to 16 cores.
const LOCK_STRIPES: usize = 64;

/// Serializes the check-then-write of commits to the same entity.
///
/// A commit reads the entity's last log key and its past-event keys, then writes; two commits to one
/// entity interleaving between those steps would both pass the version check and one would
/// overwrite the other's events. Backend batches are atomic but not conditional, so the check
/// and the write must happen under a lock. An in-process lock is enough because one process owns
/// the database exclusively (sled takes an exclusive file lock on open; the memory store lives
/// in one process). Striping by a hash of the entity id bounds the lock table while letting
/// commits to different entities proceed in parallel; two entities sharing a stripe only wait.
pub(crate) struct EntityLocks {
    stripes: Vec<Mutex<()>>,
}

impl EntityLocks {
    pub(crate) fn new() -> EntityLocks {
        EntityLocks {
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe(entity: &EntityId) -> usize {
        let mut hasher = DefaultHasher::new();
        entity.hash(&mut hasher);
        // The modulo keeps the value below LOCK_STRIPES, so the cast cannot truncate.
        (hasher.finish() % LOCK_STRIPES as u64) as usize
    }

    fn lock(&self, entity: &EntityId) -> MutexGuard<'_, ()> {
        self.lock_stripe(EntityLocks::stripe(entity))
    }

    /// The locks of several entities, taken in stripe order: a single commit holds one stripe
    /// at a time, so no two lockers can wait for each other.
    fn lock_all<'a>(
        &self,
        entities: impl Iterator<Item = &'a EntityId>,
    ) -> Vec<MutexGuard<'_, ()>> {
        let stripes: std::collections::BTreeSet<usize> =
            entities.map(EntityLocks::stripe).collect();
        stripes
            .into_iter()
            .map(|stripe| self.lock_stripe(stripe))
            .collect()
    }

    fn lock_stripe(&self, stripe: usize) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic in another commit leaves nothing inconsistent.
        self.stripes[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// See [`crate::Store::commit`].
pub(crate) fn commit(
    kv: &dyn Kv,
    locks: &EntityLocks,
    batch: CommitBatch,
) -> Result<CommitReceipt, Error> {
    let _guard = batch.entity.as_ref().map(|entity| locks.lock(entity));
    let (receipt, writes) = check(kv, &batch, &Pending::default())?;
    kv.apply(writes)?;
    Ok(receipt)
}

/// See [`crate::Store::commit_group`]. The outer error is a failure to apply the group's writes
/// (none of them was applied); the inner ones are each batch's own refusal.
pub(crate) fn commit_group(
    kv: &dyn Kv,
    locks: &EntityLocks,
    batches: Vec<CommitBatch>,
) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
    commit_group_stamped(kv, locks, batches, &mut |_| Ok(Vec::new()))
}

/// See [`crate::Store::commit_group_stamped`]: [`commit_group`], plus the meta values `stamp`
/// returns for the batches that passed, in the same backend batch.
pub(crate) fn commit_group_stamped(
    kv: &dyn Kv,
    locks: &EntityLocks,
    batches: Vec<CommitBatch>,
    stamp: &mut Stamp<'_>,
) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
    let _guards = locks.lock_all(batches.iter().filter_map(|b| b.entity.as_ref()));
    let mut pending = Pending::default();
    let mut writes = Vec::new();
    let mut results = Vec::with_capacity(batches.len());
    for batch in &batches {
        let result = check(kv, batch, &pending).map(|(receipt, batch_writes)| {
            pending.add(batch, receipt);
            writes.extend(batch_writes);
            receipt
        });
        results.push(result);
    }
    let accepted: Vec<&CommitBatch> = batches
        .iter()
        .zip(&results)
        .filter_map(|(batch, result)| result.is_ok().then_some(batch))
        .collect();
    for (name, value) in stamp(&accepted)? {
        writes.push(reads::meta_write(&name, &value)?);
    }
    if !writes.is_empty() {
        kv.apply(writes)?;
    }
    Ok(results)
}

/// What the batches checked so far in a group will write, which the store does not show yet:
/// a later batch of the group is checked against it too.
#[derive(Default)]
struct Pending {
    last_seqs: HashMap<EntityId, u64>,
    past_events: HashSet<Vec<u8>>,
}

impl Pending {
    fn add(&mut self, batch: &CommitBatch, receipt: CommitReceipt) {
        let Some(entity) = &batch.entity else {
            return;
        };
        if !batch.events.is_empty() {
            self.last_seqs.insert(entity.clone(), receipt.last_seq);
        }
        for (occurrence, _) in &batch.past_events {
            self.past_events
                .insert(keys::past_event_key(entity, occurrence));
        }
    }
}

/// Checks a batch against the store and the group's pending writes, under the entity's lock;
/// returns its receipt and its writes.
fn check(
    kv: &dyn Kv,
    batch: &CommitBatch,
    pending: &Pending,
) -> Result<(CommitReceipt, Vec<Write>), Error> {
    let new_last_seq = validate(batch)?;
    let Some(entity) = batch.entity.clone() else {
        return Ok((CommitReceipt { last_seq: 0 }, timer_writes(batch)));
    };
    let actual = match pending.last_seqs.get(&entity) {
        Some(seq) => *seq,
        None => log::last_seq(kv, &entity)?,
    };
    if actual != batch.expected_seq {
        return Err(Error::VersionConflict {
            entity,
            expected: batch.expected_seq,
            actual,
        });
    }
    for (occurrence, _) in &batch.past_events {
        let key = keys::past_event_key(&entity, occurrence);
        if pending.past_events.contains(&key) || kv.get(&key)?.is_some() {
            tracing::error!(
                %entity,
                %occurrence,
                "refusing to overwrite a past event: past events are write-once; the writer has a bug"
            );
            return Err(Error::PastEventExists {
                entity,
                occurrence: occurrence.clone(),
            });
        }
    }

    let mut writes = timer_writes(batch);
    if !batch.events.is_empty() {
        // One log entry per commit, keyed by its last event: the head is that key.
        let key = keys::log_key(&entity, new_last_seq);
        debug_assert_eq!(
            keys::decode_log_key(&key),
            Ok((entity.clone(), new_last_seq))
        );
        let value = log::encode_entry(batch.events.iter().map(encode_checked));
        writes.push((key, Some(value)));
    }
    for (occurrence, record) in &batch.past_events {
        writes.push((
            keys::past_event_key(&entity, occurrence),
            Some(encode_checked(record)),
        ));
    }
    if let Some(snapshot) = &batch.snapshot {
        let key = keys::snapshot_key(&entity);
        debug_assert_eq!(keys::decode_snapshot_key(&key).as_ref(), Ok(&entity));
        let value = keys::encode_snapshot(snapshot.seq, &encode_checked(&snapshot.record));
        writes.push((key, Some(value)));
    }
    Ok((
        CommitReceipt {
            last_seq: new_last_seq,
        },
        writes,
    ))
}

/// Removals first, then insertions: backends apply writes in order (sled's batch keeps the last
/// write per key), so an entry both removed and inserted ends up present.
fn timer_writes(batch: &CommitBatch) -> Vec<Write> {
    let capacity = batch.timers_remove.len()
        + batch.timers_insert.len()
        + batch.events.len()
        + batch.past_events.len()
        + 2;
    let mut writes = Vec::with_capacity(capacity);
    for entry in &batch.timers_remove {
        writes.push((keys::timer_key(entry), None));
    }
    for entry in &batch.timers_insert {
        writes.push((keys::timer_key(entry), Some(Vec::new())));
    }
    for entry in &batch.index_remove {
        writes.push((keys::index_key(&entry.index, &entry.member), None));
    }
    for entry in &batch.index_insert {
        writes.push((
            keys::index_key(&entry.index, &entry.member),
            Some(Vec::new()),
        ));
    }
    writes
}

/// The record's bytes, checked to decode back to it before they are written (the other half of
/// the pair is the check on every read).
fn encode_checked(record: &Record) -> Vec<u8> {
    let bytes = record.encode();
    debug_assert_eq!(Record::decode(&bytes).as_ref(), Ok(record));
    bytes
}

/// Checks what can be checked without reading the store; returns the last seq after the batch.
fn validate(batch: &CommitBatch) -> Result<u64, Error> {
    let invalid = |reason: String| Err(Error::InvalidBatch { reason });
    let entries = batch.events.len()
        + batch.past_events.len()
        + batch.timers_remove.len()
        + batch.timers_insert.len()
        + batch.index_remove.len()
        + batch.index_insert.len();
    for entry in batch.index_remove.iter().chain(&batch.index_insert) {
        keys::check_index_text("index name", &entry.index, keys::INDEX_NAME_LEN_MAX)?;
        keys::check_index_text("index member", &entry.member, keys::INDEX_MEMBER_LEN_MAX)?;
    }
    if entries > BATCH_ENTRIES_MAX {
        return invalid(format!(
            "{entries} entries exceed the limit of {BATCH_ENTRIES_MAX}"
        ));
    }
    let Some(entity) = &batch.entity else {
        if !batch.events.is_empty() || !batch.past_events.is_empty() || batch.snapshot.is_some() {
            return invalid(
                "events, past events and snapshots need the batch's entity to be set".to_owned(),
            );
        }
        if batch.expected_seq != 0 {
            return invalid(format!(
                "expected_seq {} given without an entity",
                batch.expected_seq
            ));
        }
        return Ok(0);
    };
    let Some(new_last_seq) = u64::try_from(batch.events.len())
        .ok()
        .and_then(|count| batch.expected_seq.checked_add(count))
    else {
        return invalid(format!(
            "{} events after seq {} overflow the sequence number",
            batch.events.len(),
            batch.expected_seq
        ));
    };
    if let Some(snapshot) = &batch.snapshot
        && snapshot.seq > new_last_seq
    {
        return invalid(format!(
            "snapshot at seq {} is ahead of the log, which ends at {new_last_seq} after this batch",
            snapshot.seq
        ));
    }
    for entry in batch.timers_remove.iter().chain(&batch.timers_insert) {
        if &entry.entity != entity {
            return invalid(format!(
                "timer {} {} at {} belongs to entity {}, not to the batch's entity {entity}",
                entry.entity, entry.occurrence, entry.due, entry.entity
            ));
        }
    }
    let mut occurrences = HashSet::with_capacity(batch.past_events.len());
    for (occurrence, _) in &batch.past_events {
        if !occurrences.insert(occurrence) {
            return invalid(format!(
                "past event {occurrence} of entity {entity} appears twice"
            ));
        }
    }
    let records = batch
        .events
        .iter()
        .chain(batch.past_events.iter().map(|(_, record)| record))
        .chain(batch.snapshot.iter().map(|snapshot| &snapshot.record));
    for record in records {
        if record.payload.len() > RECORD_PAYLOAD_LEN_MAX {
            return invalid(format!(
                "a payload of {} bytes for entity {entity} exceeds the limit of {RECORD_PAYLOAD_LEN_MAX}",
                record.payload.len()
            ));
        }
    }
    Ok(new_last_seq)
}
