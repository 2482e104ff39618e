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

#[derive(Clone, Debug)]
pub struct LoggedEvent {
    pub seq: u64,
    pub recorded_at: Timestamp,
    pub event: Event,
}

/// As `export` writes an event: with its name as replies spell it (`occurrence-planned`).
impl Serialize for LoggedEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("LoggedEvent", 4)?;
        out.serialize_field("seq", &self.seq)?;
        out.serialize_field("recorded_at", &self.recorded_at)?;
        out.serialize_field("name", self.event.name())?;
        out.serialize_field("event", &self.event)?;
        out.end()
    }
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
    let created_at = stored.first().map(|first| first.record.recorded_at);
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
    let entity = match (entity, as_of, created_at) {
        (Some(entity), _, _) => entity,
        // The entity exists, but not yet at that instant: say when it begins.
        (None, Some(as_of), Some(created_at)) if as_of < created_at => {
            return Err(Error::Arguments {
                what: "replay".into(),
                reason: format!(
                    "{id} did not exist yet at {as_of}: it was created at {created_at}; \
                     replay it as of that instant or later"
                ),
            });
        }
        (None, _, _) => return Err(Rejection::UnknownEntity { entity: id.clone() }.into()),
    };
    Ok(ReplayView {
        entity,
        as_of,
        events,
        past_events,
    })
}
