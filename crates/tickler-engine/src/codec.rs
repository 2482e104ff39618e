//! Domain values to store records and back. The envelope's `event_type` says what a record is:
//! event type codes 1..=[`Event::TYPE_CODE_MAX`] for log events (see `Event::type_code`),
//! [`SNAPSHOT_TYPE`] for snapshots and [`PAST_EVENT_TYPE`] for past events. Payloads are
//! postcard; `proto/record-format.md` is the specification.

use tickler_core::{EVENT_FORMAT_VERSION, Entity, Event, PastEvent, Timestamp};
use tickler_store::Record;

pub const SNAPSHOT_TYPE: u16 = 0x0100;
pub const PAST_EVENT_TYPE: u16 = 0x0200;
/// Snapshots are a cache: a snapshot of another version is ignored and the log replayed.
/// Version 2 added the entity's errored occurrences; version 3 the recipients of fan-outs
/// (active reminders' delivered and refused addresses, the recipients of an attempt); version 4
/// the key an operator's retry is delivered under (active and errored occurrences).
pub const SNAPSHOT_FORMAT_VERSION: u16 = 4;
pub const PAST_EVENT_FORMAT_VERSION: u16 = 1;

pub fn encode_event(event: &Event, recorded_at: Timestamp) -> Record {
    Record {
        format_version: EVENT_FORMAT_VERSION,
        event_type: event.type_code(),
        recorded_at,
        payload: postcard::to_stdvec(event).expect("events always encode"),
    }
}

/// Decodes a log record, checking that it is an event this build understands and that the
/// payload is the event the envelope says it is.
pub fn decode_event(record: &Record) -> Result<Event, String> {
    if record.format_version != EVENT_FORMAT_VERSION {
        return Err(format!(
            "event format version {} is not supported (this build reads {EVENT_FORMAT_VERSION})",
            record.format_version
        ));
    }
    if record.event_type == 0 || record.event_type > Event::TYPE_CODE_MAX {
        return Err(format!("unknown event type {}", record.event_type));
    }
    let (event, rest) = postcard::take_from_bytes::<Event>(&record.payload)
        .map_err(|err| format!("event type {} does not decode: {err}", record.event_type))?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes after the event", rest.len()));
    }
    if event.type_code() != record.event_type {
        return Err(format!(
            "the envelope says event type {} but the payload is a {} ({})",
            record.event_type,
            event.name(),
            event.type_code()
        ));
    }
    Ok(event)
}

pub fn encode_snapshot(entity: &Entity, recorded_at: Timestamp) -> Record {
    Record {
        format_version: SNAPSHOT_FORMAT_VERSION,
        event_type: SNAPSHOT_TYPE,
        recorded_at,
        payload: postcard::to_stdvec(entity).expect("entities always encode"),
    }
}

/// `None` when the snapshot is of another format (then the log is replayed from the start).
pub fn decode_snapshot(record: &Record) -> Option<Entity> {
    if record.format_version != SNAPSHOT_FORMAT_VERSION || record.event_type != SNAPSHOT_TYPE {
        return None;
    }
    match postcard::take_from_bytes::<Entity>(&record.payload) {
        Ok((entity, [])) => Some(entity),
        _ => None,
    }
}

pub fn encode_past_event(past: &PastEvent) -> Record {
    Record {
        format_version: PAST_EVENT_FORMAT_VERSION,
        event_type: PAST_EVENT_TYPE,
        recorded_at: past.closed_at,
        payload: postcard::to_stdvec(past).expect("past events always encode"),
    }
}

pub fn decode_past_event(record: &Record) -> Result<PastEvent, String> {
    if record.format_version != PAST_EVENT_FORMAT_VERSION || record.event_type != PAST_EVENT_TYPE {
        return Err(format!(
            "not a past event record (version {}, type {})",
            record.format_version, record.event_type
        ));
    }
    match postcard::take_from_bytes::<PastEvent>(&record.payload) {
        Ok((past, [])) => Ok(past),
        Ok((_, rest)) => Err(format!(
            "{} trailing bytes after the past event",
            rest.len()
        )),
        Err(err) => Err(format!("past event does not decode: {err}")),
    }
}
