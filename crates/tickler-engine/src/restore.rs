//! Restoring entities from an export into an empty store: each entity's log written as it was
//! (same sequence numbers, same recording instants), with what a commit derives from it (past
//! events, timers, index entries) derived the same way, in one atomic commit per entity. What
//! was pending is pending again; what was sent or not sent is history, never sent again.

use std::collections::BTreeSet;

use tickler_core::{EntityId, Event, Timestamp, fold};
use tickler_store::{CommitBatch, IndexEntry, Store, TimerEntry};

use crate::{Error, codec};

/// What one entity's restore wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    pub events: u64,
    pub past_events: u64,
    pub timers: u64,
}

/// Writes `events` (the entity's whole log, in sequence order from 1) into `store`, which must
/// not hold the entity yet. Not flushed: the caller flushes once after every entity.
pub fn restore_entity(
    store: &dyn Store,
    id: &EntityId,
    events: &[(u64, Timestamp, Event)],
) -> Result<Restored, Error> {
    let refuse = |reason: String| Error::Arguments {
        what: format!("restore of {id}"),
        reason,
    };
    if let Some(gap) = events
        .iter()
        .enumerate()
        .find(|(index, (seq, _, _))| *seq != *index as u64 + 1)
    {
        return Err(refuse(format!(
            "its events must be numbered 1, 2, 3… in order; found {} at position {}",
            gap.1.0,
            gap.0 + 1
        )));
    }
    let (entity, past_events) = fold(id, None, events.iter().map(|(s, at, e)| (*s, *at, e)))
        .map_err(|err| refuse(err.to_string()))?;
    let entity = entity.ok_or_else(|| refuse("its log has no creation".into()))?;
    let timers: BTreeSet<_> = entity.timers().into_iter().collect();
    let batch = CommitBatch {
        entity: Some(id.clone()),
        expected_seq: 0,
        events: events
            .iter()
            .map(|(_, at, event)| codec::encode_event(event, *at))
            .collect(),
        past_events: past_events
            .iter()
            .map(|past| (past.occurrence.clone(), codec::encode_past_event(past)))
            .collect(),
        timers_remove: Vec::new(),
        timers_insert: timers
            .iter()
            .map(|(due, occurrence)| TimerEntry {
                due: *due,
                entity: id.clone(),
                occurrence: occurrence.clone(),
            })
            .collect(),
        snapshot: None,
        index_remove: Vec::new(),
        index_insert: entity
            .index_entries()
            .into_iter()
            .map(|(index, member)| IndexEntry { index, member })
            .collect(),
    };
    store.commit(batch)?;
    Ok(Restored {
        events: events.len() as u64,
        past_events: past_events.len() as u64,
        timers: timers.len() as u64,
    })
}
