//! Offline replay: an entity's state and history as of an instant, from the store alone.
//!
//! Used by `tickler replay` on a data directory with no daemon running. It reads the log, never
//! the snapshot (an audit should not trust a cache), and folds it with the same `evolve` as the
//! live actor, so what it prints is what the engine believed at that instant.

use serde::Serialize;
use tickler_core::{Entity, EntityId, Event, PastEvent, Rejection, Timestamp, fold};
use tickler_store::Store;

use crate::Error;
use crate::codec;

#[derive(Clone, Debug, Serialize)]
pub struct LoggedEvent {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub event: Event,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReplayView {
    pub entity: Entity,
    pub as_of: Option<Timestamp>,
    /// The events folded, in order.
    pub events: Vec<LoggedEvent>,
    /// The past events those events created.
    pub past_events: Vec<PastEvent>,
}

/// Folds the entity's log up to `as_of` (every event recorded at or before it; the prefix of the
/// log, in sequence order), or the whole log.
pub fn replay(
    store: &dyn Store,
    id: &EntityId,
    as_of: Option<Timestamp>,
) -> Result<ReplayView, Error> {
    let stored = store.read_events(id, 0)?;
    let mut events = Vec::with_capacity(stored.len());
    for record in stored {
        if as_of.is_some_and(|as_of| record.record.recorded_at > as_of) {
            break;
        }
        let event = codec::decode_event(&record.record).map_err(|reason| Error::Quarantined {
            entity: id.clone(),
            reason: format!("event {}: {reason}", record.seq),
        })?;
        events.push(LoggedEvent {
            seq: record.seq,
            recorded_at: record.record.recorded_at,
            event,
        });
    }
    let (entity, past_events) = fold(
        id,
        None,
        events.iter().map(|e| (e.seq, e.recorded_at, &e.event)),
    )
    .map_err(|err| Error::Quarantined {
        entity: id.clone(),
        reason: err.to_string(),
    })?;
    let entity = entity.ok_or_else(|| Rejection::UnknownEntity { entity: id.clone() })?;
    Ok(ReplayView {
        entity,
        as_of,
        events,
        past_events,
    })
}
