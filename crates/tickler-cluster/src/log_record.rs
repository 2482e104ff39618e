//! The record a logged store appends to its shard's log for each flushed group: the accepted
//! commit batches and meta writes, in order (`proto/log-record.md`). Replaying the records of a
//! shard through the store's commit path rebuilds its local copy.
//!
//! The wire types are this module's own, not the store's: a store type can change shape, the
//! log's bytes cannot. Variants and fields are only ever appended.

use serde::{Deserialize, Serialize};
use tickler_core::{EntityId, OccurrenceId, Timestamp};
use tickler_store::{CommitBatch, IndexEntry, Record, Snapshot, TimerEntry};

/// The format this code writes and the only one it reads.
pub const LOG_RECORD_FORMAT: u16 = 1;
const CRC_LEN: usize = 4;

/// One write a logged store accepted.
#[derive(Clone, Debug, PartialEq)]
pub enum LogOp {
    Commit(CommitBatch),
    SetMeta { name: String, value: Vec<u8> },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("a shard log record does not decode: {reason}; the log or this build is damaged")]
pub struct LogRecordError {
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    format: u16,
    ops: Vec<WireOp>,
}

#[derive(Serialize, Deserialize)]
enum WireOp {
    Commit(WireBatch),
    SetMeta { name: String, value: Vec<u8> },
}

#[derive(Serialize, Deserialize)]
struct WireBatch {
    entity: Option<String>,
    expected_seq: u64,
    /// Each a record as `proto/record-format.md` encodes it (envelope and checksum).
    events: Vec<Vec<u8>>,
    past_events: Vec<(String, Vec<u8>)>,
    timers_remove: Vec<WireTimer>,
    timers_insert: Vec<WireTimer>,
    snapshot: Option<(u64, Vec<u8>)>,
    index_remove: Vec<(String, String)>,
    index_insert: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct WireTimer {
    due_ms: i64,
    entity: String,
    occurrence: String,
}

/// The record of `ops`: postcard, then a CRC-32 of it (little-endian).
pub fn encode(ops: &[LogOp]) -> Vec<u8> {
    let wire = Wire {
        format: LOG_RECORD_FORMAT,
        ops: ops.iter().map(wire_op).collect(),
    };
    let mut bytes = postcard::to_stdvec(&wire).expect("log records always encode");
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

pub fn decode(bytes: &[u8]) -> Result<Vec<LogOp>, LogRecordError> {
    let corrupt = |reason: String| LogRecordError { reason };
    let Some(body_len) = bytes.len().checked_sub(CRC_LEN) else {
        return Err(corrupt(format!(
            "{} bytes is shorter than its checksum",
            bytes.len()
        )));
    };
    let (body, crc) = bytes.split_at(body_len);
    let stored = u32::from_le_bytes(crc.try_into().expect("four bytes"));
    if crc32fast::hash(body) != stored {
        return Err(corrupt("the checksum does not match".into()));
    }
    let (wire, rest): (Wire, _) =
        postcard::take_from_bytes(body).map_err(|err| corrupt(err.to_string()))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} bytes follow the record", rest.len())));
    }
    if wire.format != LOG_RECORD_FORMAT {
        return Err(corrupt(format!(
            "format {} (this build reads format {LOG_RECORD_FORMAT})",
            wire.format
        )));
    }
    wire.ops.into_iter().map(op_of).collect()
}

fn wire_op(op: &LogOp) -> WireOp {
    match op {
        LogOp::Commit(batch) => WireOp::Commit(wire_batch(batch)),
        LogOp::SetMeta { name, value } => WireOp::SetMeta {
            name: name.clone(),
            value: value.clone(),
        },
    }
}

fn wire_batch(batch: &CommitBatch) -> WireBatch {
    let timers = |entries: &[TimerEntry]| entries.iter().map(wire_timer).collect();
    let index = |entries: &[IndexEntry]| {
        let pair = |e: &IndexEntry| (e.index.clone(), e.member.clone());
        entries.iter().map(pair).collect()
    };
    WireBatch {
        entity: batch.entity.as_ref().map(ToString::to_string),
        expected_seq: batch.expected_seq,
        events: batch.events.iter().map(Record::encode).collect(),
        past_events: batch
            .past_events
            .iter()
            .map(|(occurrence, record)| (occurrence.to_string(), record.encode()))
            .collect(),
        timers_remove: timers(&batch.timers_remove),
        timers_insert: timers(&batch.timers_insert),
        snapshot: batch.snapshot.as_ref().map(|s| (s.seq, s.record.encode())),
        index_remove: index(&batch.index_remove),
        index_insert: index(&batch.index_insert),
    }
}

fn wire_timer(entry: &TimerEntry) -> WireTimer {
    WireTimer {
        due_ms: entry.due.as_millis(),
        entity: entry.entity.to_string(),
        occurrence: entry.occurrence.to_string(),
    }
}

fn op_of(op: WireOp) -> Result<LogOp, LogRecordError> {
    Ok(match op {
        WireOp::Commit(batch) => LogOp::Commit(batch_of(batch)?),
        WireOp::SetMeta { name, value } => LogOp::SetMeta { name, value },
    })
}

fn batch_of(wire: WireBatch) -> Result<CommitBatch, LogRecordError> {
    let records = |all: Vec<Vec<u8>>| -> Result<Vec<Record>, LogRecordError> {
        all.iter().map(|bytes| record(bytes)).collect()
    };
    let timers = |all: Vec<WireTimer>| -> Result<Vec<TimerEntry>, LogRecordError> {
        all.into_iter().map(timer_of).collect()
    };
    let index = |all: Vec<(String, String)>| {
        let entry = |(index, member)| IndexEntry { index, member };
        all.into_iter().map(entry).collect()
    };
    Ok(CommitBatch {
        entity: wire.entity.as_deref().map(entity).transpose()?,
        expected_seq: wire.expected_seq,
        events: records(wire.events)?,
        past_events: wire
            .past_events
            .iter()
            .map(|(occ, bytes)| Ok((occurrence(occ)?, record(bytes)?)))
            .collect::<Result<_, LogRecordError>>()?,
        timers_remove: timers(wire.timers_remove)?,
        timers_insert: timers(wire.timers_insert)?,
        snapshot: wire
            .snapshot
            .map(|(seq, bytes)| {
                Ok::<_, LogRecordError>(Snapshot {
                    seq,
                    record: record(&bytes)?,
                })
            })
            .transpose()?,
        index_remove: index(wire.index_remove),
        index_insert: index(wire.index_insert),
    })
}

fn timer_of(wire: WireTimer) -> Result<TimerEntry, LogRecordError> {
    Ok(TimerEntry {
        due: Timestamp::from_millis(wire.due_ms).ok_or_else(|| LogRecordError {
            reason: format!("timer instant {} ms is out of range", wire.due_ms),
        })?,
        entity: entity(&wire.entity)?,
        occurrence: occurrence(&wire.occurrence)?,
    })
}

fn entity(text: &str) -> Result<EntityId, LogRecordError> {
    text.parse().map_err(|err| LogRecordError {
        reason: format!("entity id {text:?}: {err}"),
    })
}

fn occurrence(text: &str) -> Result<OccurrenceId, LogRecordError> {
    text.parse().map_err(|err| LogRecordError {
        reason: format!("occurrence id {text:?}: {err}"),
    })
}

fn record(bytes: &[u8]) -> Result<Record, LogRecordError> {
    Record::decode(bytes).map_err(|err| LogRecordError {
        reason: err.to_string(),
    })
}
