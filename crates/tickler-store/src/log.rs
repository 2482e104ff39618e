//! The entity logs (record format v2): one **log entry** per commit, holding the events that
//! commit appended, under the key `L | entity | last seq`. The entity's head is not stored: it is
//! the sequence number in the entity's last log key, found with one backward seek.
//!
//! A log entry's value is `varint count || count × (varint length || record)`, each record the
//! usual envelope with its own CRC (`record.rs`), so damage is still reported per event. Specified
//! in `proto/record-format.md`.

use std::ops::{Bound, ControlFlow};

use tickler_core::EntityId;

use crate::keys;
use crate::kv::Kv;
use crate::record::corrupt_reason;
use crate::{Error, Record, StoredEvent};

/// The most events one log entry may hold: a commit is bounded by `BATCH_ENTRIES_MAX`, and a
/// migration packs an entity's v1 events in chunks well below it.
pub(crate) const LOG_ENTRY_EVENTS_MAX: u64 = crate::commit::BATCH_ENTRIES_MAX as u64;

/// The value of a log entry holding `records` (already encoded, at least one).
pub fn encode_entry<R: AsRef<[u8]>>(records: impl ExactSizeIterator<Item = R>) -> Vec<u8> {
    let mut value = Vec::new();
    put_varint(&mut value, records.len() as u64);
    for record in records {
        let record = record.as_ref();
        put_varint(&mut value, record.len() as u64);
        value.extend_from_slice(record);
    }
    value
}

/// Splits a log entry's value into its records' bytes (unchecked: each is checked by
/// `Record::decode` where its sequence number is known). Fails on any framing damage: a count
/// of 0 or above the limit, a length running past the end, bytes left over, an overlong varint.
pub fn split_entry(value: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut rest = value;
    let count = take_varint(&mut rest, "the event count")?;
    if count == 0 || count > LOG_ENTRY_EVENTS_MAX {
        return Err(format!(
            "holds {count} events; a log entry holds 1 to {LOG_ENTRY_EVENTS_MAX}"
        ));
    }
    let mut records = Vec::with_capacity(count as usize);
    for n in 1..=count {
        let len = take_varint(&mut rest, "a record length")?;
        let Some(record) = usize::try_from(len).ok().and_then(|len| rest.get(..len)) else {
            return Err(format!(
                "record {n} of {count} claims {len} bytes, {} are left",
                rest.len()
            ));
        };
        rest = &rest[record.len()..];
        records.push(record);
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} unexpected bytes after its {count} records",
            rest.len()
        ));
    }
    Ok(records)
}

/// The number of events in a log entry, from its first varint alone.
pub(crate) fn entry_event_count(value: &[u8]) -> Result<u64, String> {
    take_varint(&mut &value[..], "the event count")
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a canonical (shortest) LEB128 varint of at most 64 bits.
fn take_varint(rest: &mut &[u8], what: &str) -> Result<u64, String> {
    let mut value = 0u64;
    for (i, &byte) in rest.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return Err(format!("{what} overflows 64 bits"));
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(format!("{what} is not in its shortest encoding"));
            }
            *rest = &rest[i + 1..];
            return Ok(value);
        }
    }
    Err(format!("{what} is truncated"))
}

/// The entity's last sequence number: the one in its last log key (0 without any).
pub(crate) fn last_seq(kv: &dyn Kv, entity: &EntityId) -> Result<u64, Error> {
    let prefix = keys::log_prefix(entity);
    let mut last = 0;
    kv.last_key(&prefix, &mut |key| {
        last = keys::log_seq(&prefix, key)?;
        Ok(())
    })?;
    Ok(last)
}

/// The events after `after_seq`, checked to be gap-free from there to the last one.
///
/// The scan starts at the first entry whose last seq is past `after_seq`; that entry may also
/// hold earlier events, which are skipped. Every entry must start right after the previous one
/// ends (its first seq is its key's seq minus its count, plus one).
pub(crate) fn read_events(
    kv: &dyn Kv,
    entity: &EntityId,
    after_seq: u64,
) -> Result<Vec<StoredEvent>, Error> {
    let Some(first) = after_seq.checked_add(1) else {
        return Ok(Vec::new());
    };
    let prefix = keys::log_prefix(entity);
    let start = keys::log_key(entity, first);
    let mut events = Vec::new();
    let mut expected = first;
    kv.scan(&prefix, Bound::Included(&start), &mut |key, value| {
        let last = keys::log_seq(&prefix, key)?;
        let corrupt = |seq: u64, reason: String| Error::Corrupt {
            entity: entity.clone(),
            seq,
            reason,
        };
        let records = split_entry(value).map_err(|reason| {
            corrupt(
                expected,
                format!("its log entry (ending at {last}) {reason}"),
            )
        })?;
        let count = records.len() as u64;
        let entry_first = (last + 1).checked_sub(count).filter(|&s| s >= 1);
        let entry_first = match entry_first {
            // The first entry read may begin before `after_seq`; every later one right after
            // the one before it.
            Some(s) if s == expected || (s < expected && events.is_empty()) => s,
            Some(s) if s > expected => {
                let reason = format!("missing from the log (the next stored event is {s})");
                return Err(corrupt(expected, reason));
            }
            Some(s) => {
                let reason = format!("stored twice: the log entry ending at {last} starts at {s}");
                return Err(corrupt(expected, reason));
            }
            None => {
                let reason = format!("the log entry ending at {last} holds {count} events");
                return Err(corrupt(expected, reason));
            }
        };
        for (seq, bytes) in (entry_first..).zip(records) {
            if seq < expected {
                continue;
            }
            let record = Record::decode(bytes).map_err(|e| corrupt(seq, corrupt_reason(e)))?;
            events.push(StoredEvent { seq, record });
        }
        expected = last + 1;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(events)
}

/// Up to `limit` entities (those with a log) after `after`, in key order: one seek per entity,
/// past the rest of its log.
pub(crate) fn entities_after(
    kv: &dyn Kv,
    after: Option<&EntityId>,
    limit: usize,
) -> Result<Vec<EntityId>, Error> {
    let prefix = keys::keyspace(keys::LOG);
    let mut cursor = after.map(|entity| keys::log_key(entity, u64::MAX));
    let mut entities = Vec::new();
    while entities.len() < limit {
        let start = match &cursor {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Included(&prefix[..]),
        };
        let mut next = None;
        kv.scan(&prefix, start, &mut |key, _| {
            next = Some(keys::decode_log_key(key)?.0);
            Ok(ControlFlow::Break(()))
        })?;
        let Some(entity) = next else { break };
        cursor = Some(keys::log_key(&entity, u64::MAX));
        entities.push(entity);
    }
    Ok(entities)
}

/// (entities, events) over the whole store: O(store size), for status and benchmarks.
pub(crate) fn count(kv: &dyn Kv) -> Result<(u64, u64), Error> {
    let prefix = keys::keyspace(keys::LOG);
    let (mut entities, mut events) = (0u64, 0u64);
    let mut previous: Option<Vec<u8>> = None;
    kv.scan(&prefix, Bound::Included(&prefix[..]), &mut |key, value| {
        let seq_at = key.len().saturating_sub(8);
        let entity_part = &key[..seq_at];
        if previous.as_deref() != Some(entity_part) {
            entities += 1;
            previous = Some(entity_part.to_vec());
        }
        events += entry_event_count(value).map_err(|reason| Error::CorruptEntry {
            what: format!("log entry {}", crate::error::hex(key)),
            reason,
        })?;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok((entities, events))
}

/// What a test does to one stored event, bypassing every check.
pub(crate) enum Tamper<'a> {
    /// Replaces the event's record bytes.
    Overwrite(&'a mut dyn FnMut(&mut Vec<u8>)),
    /// Removes the event from its entry (splitting the entry around it), leaving a gap.
    Delete,
}

/// The writes that apply `tamper` to event `seq` of `entity`, or `None` without such an event.
pub(crate) fn tamper(
    kv: &dyn Kv,
    entity: &EntityId,
    seq: u64,
    tamper: Tamper<'_>,
) -> Result<Option<Vec<crate::kv::Write>>, Error> {
    let prefix = keys::log_prefix(entity);
    let mut found = None;
    kv.scan(
        &prefix,
        Bound::Included(&keys::log_key(entity, seq)),
        &mut |key, value| {
            found = Some((keys::log_seq(&prefix, key)?, value.to_vec()));
            Ok(ControlFlow::Break(()))
        },
    )?;
    let Some((last, value)) = found else {
        return Ok(None);
    };
    let mut records: Vec<Vec<u8>> = split_entry(&value)
        .map_err(|reason| Error::CorruptEntry {
            what: format!("log entry of {entity} ending at {last}"),
            reason,
        })?
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let first = last + 1 - records.len() as u64;
    let Some(position) = seq.checked_sub(first).map(|p| p as usize) else {
        return Ok(None);
    };
    let entry = |records: &[Vec<u8>]| encode_entry(records.iter().map(Vec::as_slice));
    Ok(Some(match tamper {
        Tamper::Overwrite(mutate) => {
            mutate(&mut records[position]);
            vec![(keys::log_key(entity, last), Some(entry(&records)))]
        }
        Tamper::Delete => {
            let after = records.split_off(position + 1);
            records.pop();
            let mut writes = vec![(keys::log_key(entity, last), None)];
            if !records.is_empty() {
                writes.push((keys::log_key(entity, seq - 1), Some(entry(&records))));
            }
            if !after.is_empty() {
                writes.push((keys::log_key(entity, last), Some(entry(&after))));
            }
            writes
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_splits_back_into_its_records() {
        let records: [&[u8]; 3] = [b"a", &[0u8; 200], b""];
        let value = encode_entry(records.iter().copied());
        assert_eq!(value[..3], [3, 1, b'a']);
        assert_eq!(split_entry(&value).unwrap(), records);
        assert_eq!(entry_event_count(&value), Ok(3));
    }

    #[test]
    fn damaged_framing_is_refused_naming_what_is_wrong() {
        let cases: [(&[u8], &str); 6] = [
            (&[], "truncated"),
            (&[0], "holds 0 events"),
            (&[1, 5, b'a'], "claims 5 bytes, 1 are left"),
            (&[1, 1, b'a', b'b'], "1 unexpected bytes"),
            (&[0x81, 0x00, 1, b'a'], "shortest encoding"),
            (&[0xff; 11], "overflows"),
        ];
        for (value, needle) in cases {
            let err = split_entry(value).unwrap_err();
            assert!(err.contains(needle), "{value:?}: {err}");
        }
    }
}
