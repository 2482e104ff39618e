//! Reads shared by both stores, plus `set_meta` (a write without an entity, so without a lock).
//! Every record read back is checked (CRC, envelope) and reported with where it was stored.

use std::ops::{Bound, ControlFlow};

use tickler_core::{EntityId, OccurrenceId, Timestamp};

use crate::keys::{self, META_VALUE_LEN_MAX};
use crate::kv::{Kv, Write};
use crate::record::corrupt_reason;
use crate::{Error, Record, Snapshot, StoreStats, TimerEntry};

/// Listings preallocate at most this many entries, whatever `limit` a caller passes.
const LISTING_PREALLOCATE_MAX: usize = 1024;

pub(crate) fn snapshot(kv: &dyn Kv, entity: &EntityId) -> Result<Option<Snapshot>, Error> {
    let Some(value) = kv.get(&keys::snapshot_key(entity))? else {
        return Ok(None);
    };
    let (seq, bytes) = keys::decode_snapshot(entity, &value)?;
    let record = Record::decode(bytes).map_err(|e| Error::CorruptEntry {
        what: format!("snapshot of entity {entity}"),
        reason: corrupt_reason(e),
    })?;
    Ok(Some(Snapshot { seq, record }))
}

pub(crate) fn past_events(
    kv: &dyn Kv,
    entity: &EntityId,
) -> Result<Vec<(OccurrenceId, Record)>, Error> {
    let prefix = keys::past_event_prefix(entity);
    let mut found = Vec::new();
    kv.scan(&prefix, Bound::Included(&prefix), &mut |key, value| {
        let (key_entity, occurrence) = keys::decode_past_event_key(key)?;
        debug_assert_eq!(&key_entity, entity);
        let record = decode_past_event(entity, &occurrence, value)?;
        found.push((occurrence, record));
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(found)
}

pub(crate) fn past_event(
    kv: &dyn Kv,
    entity: &EntityId,
    occurrence: &OccurrenceId,
) -> Result<Option<Record>, Error> {
    kv.get(&keys::past_event_key(entity, occurrence))?
        .map(|value| decode_past_event(entity, occurrence, &value))
        .transpose()
}

fn decode_past_event(
    entity: &EntityId,
    occurrence: &OccurrenceId,
    value: &[u8],
) -> Result<Record, Error> {
    Record::decode(value).map_err(|e| Error::CorruptEntry {
        what: format!("past event {occurrence} of entity {entity}"),
        reason: corrupt_reason(e),
    })
}

pub(crate) fn timers_after(
    kv: &dyn Kv,
    after: Option<&TimerEntry>,
    limit: usize,
) -> Result<Vec<TimerEntry>, Error> {
    let prefix = keys::keyspace(keys::TIMER);
    let cursor = after.map(keys::timer_key);
    let start = match &cursor {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Included(&prefix[..]),
    };
    let mut entries = Vec::with_capacity(limit.min(LISTING_PREALLOCATE_MAX));
    if limit == 0 {
        return Ok(entries);
    }
    kv.scan(&prefix, start, &mut |key, _| {
        let entry = keys::decode_timer_key(key)?;
        debug_assert!(after.is_none_or(|after| &entry > after));
        entries.push(entry);
        Ok(stop_at(entries.len(), limit))
    })?;
    Ok(entries)
}

pub(crate) fn timers_from(
    kv: &dyn Kv,
    due: Timestamp,
    limit: usize,
) -> Result<Vec<TimerEntry>, Error> {
    let prefix = keys::keyspace(keys::TIMER);
    let start = keys::timer_key_prefix(due);
    let mut entries = Vec::with_capacity(limit.min(LISTING_PREALLOCATE_MAX));
    if limit == 0 {
        return Ok(entries);
    }
    kv.scan(&prefix, Bound::Included(&start), &mut |key, _| {
        let entry = keys::decode_timer_key(key)?;
        debug_assert!(entry.due >= due);
        entries.push(entry);
        Ok(stop_at(entries.len(), limit))
    })?;
    Ok(entries)
}

pub(crate) fn index_members(
    kv: &dyn Kv,
    index: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, Error> {
    let prefix = keys::index_prefix(index);
    let cursor = after.map(|member| keys::index_key(index, member));
    let start = match &cursor {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Included(&prefix[..]),
    };
    let mut members = Vec::with_capacity(limit.min(LISTING_PREALLOCATE_MAX));
    if limit == 0 {
        return Ok(members);
    }
    kv.scan(&prefix, start, &mut |key, _| {
        members.push(keys::decode_index_member(&prefix, key)?);
        Ok(stop_at(members.len(), limit))
    })?;
    Ok(members)
}

fn stop_at(count: usize, limit: usize) -> ControlFlow<()> {
    if count >= limit {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

pub(crate) fn meta(kv: &dyn Kv, name: &str) -> Result<Option<Vec<u8>>, Error> {
    kv.get(&keys::meta_key(name))
}

pub(crate) fn set_meta(kv: &dyn Kv, name: &str, value: &[u8]) -> Result<(), Error> {
    kv.apply(vec![meta_write(name, value)?])
}

/// The write that sets meta `name`, once the name and the value's size are checked.
pub(crate) fn meta_write(name: &str, value: &[u8]) -> Result<Write, Error> {
    keys::check_meta_name(name)?;
    if value.len() > META_VALUE_LEN_MAX {
        return Err(Error::InvalidMeta {
            name: name.to_owned(),
            reason: format!(
                "a value of {} bytes exceeds the limit of {META_VALUE_LEN_MAX}",
                value.len()
            ),
        });
    }
    let key = keys::meta_key(name);
    debug_assert_eq!(keys::decode_meta_key(&key).as_deref(), Ok(name));
    Ok((key, Some(value.to_vec())))
}

/// Counts the entries of each keyspace by scanning all of them: O(store size), acceptable for
/// status output and benchmarks. `size_on_disk` is left to the caller.
pub(crate) fn stats(kv: &dyn Kv) -> Result<StoreStats, Error> {
    let count = |prefix: u8| -> Result<u64, Error> {
        let prefix = keys::keyspace(prefix);
        let mut count = 0u64;
        kv.scan(&prefix, Bound::Included(&prefix[..]), &mut |_, _| {
            count += 1;
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(count)
    };
    let (entities, events) = crate::log::count(kv)?;
    Ok(StoreStats {
        entities,
        events,
        past_events: count(keys::PAST_EVENT)?,
        timers: count(keys::TIMER)?,
        snapshots: count(keys::SNAPSHOT)?,
        size_on_disk: 0,
    })
}
