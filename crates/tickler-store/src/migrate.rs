//! Record format v1 → v2, into a new store: v1's one record per event (`E`) and heads (`H`)
//! become v2 log entries (`L`), every other entry is copied as it is, and the marker says v2.
//!
//! The source is only read, so an interrupted migration leaves it whole. Event records are
//! carried as bytes, not decoded, so what was damaged stays damaged and is reported as before;
//! what the formats express differently is checked instead: a head that disagrees with the last
//! event stored fails the migration (v2 has no head to keep the disagreement in).

use std::ops::{Bound, ControlFlow};

use tickler_core::EntityId;

use crate::kv::{Format, Kv, Write};
use crate::{Error, keys, log};

/// Events packed into one log entry: v1 does not record which events one command appended, so
/// an entity's log is cut into entries of at most this many (fewer entries, less overhead).
const EVENTS_PER_ENTRY: usize = 256;

/// Writes per batch applied to the target.
const WRITES_PER_BATCH: usize = 10_000;

/// What a migration did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    pub entities: u64,
    pub events: u64,
    /// Entries in the source, and in the migrated store.
    pub entries_before: u64,
    pub entries_after: u64,
}

/// Copies the v1 store `source` into the empty `target`, converting it to v2.
pub(crate) fn v1_to_v2(source: &dyn Kv, target: &dyn Kv) -> Result<Migration, Error> {
    if crate::kv::check_format(target)? != Format::Empty {
        return Err(Error::Io("the migration target is not empty".to_owned()));
    }
    let mut out = Output::new(target);
    let mut run = Run::default();
    source.scan(&[], Bound::Unbounded, &mut |key, value| {
        out.report.entries_before += 1;
        match key.first() {
            Some(&keys::EVENT) => {
                let (entity, seq) = keys::decode_event_key(key)?;
                if let Some(entry) = run.push(entity, seq, value) {
                    out.write(entry)?;
                }
            }
            Some(&keys::HEAD) => {}
            Some(&keys::META) if keys::decode_meta_key(key)? == keys::FORMAT_META_NAME => {
                out.write((key.to_vec(), Some(keys::FORMAT_MARKER.to_vec())))?;
            }
            _ => out.write((key.to_vec(), Some(value.to_vec())))?,
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(entry) = run.finish() {
        out.write(entry)?;
    }
    out.report.entities = run.entities;
    out.report.events = run.events;
    out.flush()?;
    check_heads(source, target)?;
    Ok(out.report)
}

/// Every v1 head equals the last sequence number of the migrated log.
fn check_heads(source: &dyn Kv, target: &dyn Kv) -> Result<(), Error> {
    let prefix = keys::keyspace(keys::HEAD);
    let mut heads = Vec::new();
    source.scan(&prefix, Bound::Included(&prefix[..]), &mut |key, value| {
        let entity = keys::decode_head_key(key)?;
        let head = keys::decode_head(&entity, value)?;
        heads.push((entity, head));
        Ok(ControlFlow::Continue(()))
    })?;
    for (entity, head) in heads {
        let last = log::last_seq(target, &entity)?;
        if last != head {
            return Err(Error::Corrupt {
                seq: last.max(head),
                reason: format!(
                    "the v1 head says the log ends at {head}, its last stored event is {last}; \
                     the v1 store is left as it was (the previous release's `tickler audit` \
                     says more)"
                ),
                entity,
            });
        }
    }
    Ok(())
}

/// The migrated entries, applied to the target in batches.
struct Output<'a> {
    target: &'a dyn Kv,
    pending: Vec<Write>,
    report: Migration,
}

impl<'a> Output<'a> {
    fn new(target: &'a dyn Kv) -> Output<'a> {
        Output {
            target,
            pending: Vec::with_capacity(WRITES_PER_BATCH),
            report: Migration::default(),
        }
    }

    fn write(&mut self, write: Write) -> Result<(), Error> {
        self.report.entries_after += 1;
        self.pending.push(write);
        if self.pending.len() >= WRITES_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.target.apply(std::mem::take(&mut self.pending))
    }
}

/// The contiguous events of one entity read so far, not yet written as an entry.
#[derive(Default)]
struct Run {
    entity: Option<EntityId>,
    last_seq: u64,
    records: Vec<Vec<u8>>,
    entities: u64,
    events: u64,
}

impl Run {
    /// Adds one v1 event; returns the entry to write when the run it ends is complete (another
    /// entity, a gap in the sequence, or a full entry).
    fn push(&mut self, entity: EntityId, seq: u64, record: &[u8]) -> Option<Write> {
        let same_entity = self.entity.as_ref() == Some(&entity);
        let continues = same_entity && seq == self.last_seq + 1;
        let done = if continues && self.records.len() < EVENTS_PER_ENTRY {
            None
        } else {
            self.finish()
        };
        if !same_entity {
            self.entities += 1;
            self.entity = Some(entity);
        }
        self.events += 1;
        self.last_seq = seq;
        self.records.push(record.to_vec());
        done
    }

    fn finish(&mut self) -> Option<Write> {
        let entity = self.entity.as_ref()?;
        if self.records.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.records);
        let value = log::encode_entry(records.iter().map(Vec::as_slice));
        Some((keys::log_key(entity, self.last_seq), Some(value)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tickler_core::Timestamp;

    use super::*;
    use crate::Record;

    type Map = Mutex<BTreeMap<Vec<u8>, Vec<u8>>>;

    fn entity(id: &str) -> EntityId {
        EntityId::parse(id).unwrap()
    }

    fn record(n: u64) -> Vec<u8> {
        Record {
            format_version: 1,
            event_type: 1,
            recorded_at: Timestamp::EPOCH,
            payload: n.to_be_bytes().to_vec(),
        }
        .encode()
    }

    /// A v1 store as v1 wrote it: `events` events and a head per entity, a timer, a meta entry.
    fn v1_store(entities: &[(&str, u64)]) -> Map {
        let map = Map::default();
        let mut writes = vec![(
            keys::meta_key(keys::FORMAT_META_NAME),
            Some(keys::FORMAT_MARKER_V1.to_vec()),
        )];
        for &(id, events) in entities {
            for seq in 1..=events {
                writes.push((keys::event_key(&entity(id), seq), Some(record(seq))));
            }
            writes.push((keys::head_key(&entity(id)), Some(keys::encode_head(events))));
        }
        writes.push((keys::meta_key("clock"), Some(b"now".to_vec())));
        map.apply(writes).unwrap();
        map
    }

    #[test]
    fn every_event_is_kept_in_order_under_v2_entries_and_heads_are_gone() {
        let source = v1_store(&[("due/a", 3), ("due/bb", 600)]);
        let target = Map::default();
        let report = v1_to_v2(&source, &target).unwrap();
        assert_eq!((report.entities, report.events), (2, 603));
        assert_eq!(report.entries_before, 2 + 603 + 2);
        // due/a: 1 entry; due/bb: 256 + 256 + 88; the marker and the clock.
        assert_eq!(report.entries_after, 1 + 3 + 2);
        assert_eq!(crate::kv::check_format(&target), Ok(Format::Current));
        for (id, count) in [("due/a", 3u64), ("due/bb", 600)] {
            let events = log::read_events(&target, &entity(id), 0).unwrap();
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=count).collect::<Vec<_>>(), "{id}");
            assert!(events.iter().all(|e| e.record.encode() == record(e.seq)));
            assert_eq!(log::last_seq(&target, &entity(id)), Ok(count));
        }
        assert_eq!(
            target.get(&keys::meta_key("clock")),
            Ok(Some(b"now".to_vec()))
        );
        assert_eq!(target.get(&keys::head_key(&entity("due/a"))), Ok(None));
    }

    #[test]
    fn a_gap_in_a_v1_log_stays_a_gap() {
        let source = v1_store(&[("due/a", 4)]);
        source
            .apply(vec![(keys::event_key(&entity("due/a"), 2), None)])
            .unwrap();
        let target = Map::default();
        v1_to_v2(&source, &target).unwrap();
        let err = log::read_events(&target, &entity("due/a"), 0).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { seq: 2, reason, .. } if reason.contains("next stored event is 3")),
            "{err}"
        );
    }

    #[test]
    fn a_head_past_the_last_event_fails_the_migration() {
        let source = v1_store(&[("due/a", 4)]);
        source
            .apply(vec![(keys::event_key(&entity("due/a"), 4), None)])
            .unwrap();
        let err = v1_to_v2(&source, &Map::default()).unwrap_err();
        assert!(
            err.to_string().contains("head says the log ends at 4"),
            "{err}"
        );
    }
}
