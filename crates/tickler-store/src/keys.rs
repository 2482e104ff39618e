//! Key layout (record format v2): one ordered keyspace, a one-byte prefix per kind of entry,
//! integers big-endian so that byte order is logical order. Specified in
//! `proto/record-format.md`; changing anything here changes the on-disk format.
//!
//! | prefix | key | value |
//! | --- | --- | --- |
//! | `L` | u16 len, entity, u64 last seq | log entry: the records of one commit (`log.rs`) |
//! | `P` | u16 len, entity, u16 len, rule, u32 index | record |
//! | `T` | u64 due ms, u16 len, entity, u16 len, rule, u32 index | empty |
//! | `S` | u16 len, entity | u64 seq, record |
//! | `M` | name | value |
//!
//! Format v1 (`proto/record-format-v1.md`) had `E` (one record per event) and `H` (the head)
//! instead of `L`; their codecs stay for `migrate.rs` and the v1 golden vectors.
//!
//! Ids are length-prefixed, so ids sort shorter-first and then bytewise: `TimerEntry`'s `Ord`
//! follows that order so the timer index sorts the same in memory and on disk.

use tickler_core::{EntityId, OccurrenceId, RuleName, Timestamp};

use crate::error::hex;
use crate::{Error, TimerEntry};

pub(crate) const LOG: u8 = b'L';
/// Format v1's event and head keyspaces, read only by the migration.
pub(crate) const EVENT: u8 = b'E';
pub(crate) const HEAD: u8 = b'H';
pub(crate) const PAST_EVENT: u8 = b'P';
pub(crate) const TIMER: u8 = b'T';
pub(crate) const SNAPSHOT: u8 = b'S';
pub(crate) const META: u8 = b'M';
pub(crate) const INDEX: u8 = b'I';

/// The meta entry that says which format a store holds, written when the store is created.
pub(crate) const FORMAT_META_NAME: &str = "format";
pub(crate) const FORMAT_MARKER: &[u8] = b"tickler-store-v2";
/// The marker of the format `migrate.rs` upgrades from.
pub(crate) const FORMAT_MARKER_V1: &[u8] = b"tickler-store-v1";
pub(crate) const META_NAME_LEN_MAX: usize = 128;
pub(crate) const META_VALUE_LEN_MAX: usize = 64 * 1024;
/// The longest index name and index member accepted, in bytes.
pub const INDEX_NAME_LEN_MAX: usize = 128;
pub const INDEX_MEMBER_LEN_MAX: usize = 512;

/// Bounds enforced by `tickler_core`'s id parsing (which does not export them); restated so a
/// stored length prefix can be rejected before slicing.
const ENTITY_ID_LEN_MAX: usize = 200;
const RULE_NAME_LEN_MAX: usize = 64;
const _: () = assert!(ENTITY_ID_LEN_MAX <= u16::MAX as usize);
const _: () = assert!(RULE_NAME_LEN_MAX <= u16::MAX as usize);
const _: () = assert!(INDEX_NAME_LEN_MAX <= u16::MAX as usize);
const _: () = assert!(INDEX_MEMBER_LEN_MAX <= u16::MAX as usize);

const SEQ_LEN: usize = 8;

fn put_id(key: &mut Vec<u8>, id: &str) {
    // Ids are bounded far below u16::MAX by core's parsing (asserted above).
    let len = u16::try_from(id.len()).expect("ids are at most 200 bytes");
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
}

fn put_occurrence(key: &mut Vec<u8>, occurrence: &OccurrenceId) {
    put_id(key, occurrence.rule.as_str());
    key.extend_from_slice(&occurrence.index.to_be_bytes());
}

fn with_entity(prefix: u8, entity: &EntityId, extra: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 2 + entity.as_str().len() + extra);
    key.push(prefix);
    put_id(&mut key, entity.as_str());
    key
}

/// The one-byte prefix of a keyspace: scanning from it visits every key of that kind.
pub(crate) fn keyspace(prefix: u8) -> [u8; 1] {
    [prefix]
}

/// `L | entity`: every log key of the entity starts with this.
pub(crate) fn log_prefix(entity: &EntityId) -> Vec<u8> {
    with_entity(LOG, entity, SEQ_LEN)
}

/// `L | entity | last_seq`: the log entry whose last event is `last_seq`.
pub(crate) fn log_key(entity: &EntityId, last_seq: u64) -> Vec<u8> {
    let mut key = log_prefix(entity);
    key.extend_from_slice(&last_seq.to_be_bytes());
    key
}

pub(crate) fn decode_log_key(key: &[u8]) -> Result<(EntityId, u64), Error> {
    let mut reader = KeyReader::new(key, LOG)?;
    let entity = reader.entity()?;
    let seq = reader.u64()?;
    reader.finish()?;
    Ok((entity, seq))
}

/// The last sequence number of a log key known to start with `prefix` (from [`log_prefix`]):
/// cheaper than [`decode_log_key`] when reading one entity's log.
pub(crate) fn log_seq(prefix: &[u8], key: &[u8]) -> Result<u64, Error> {
    match key.strip_prefix(prefix).map(<[u8; SEQ_LEN]>::try_from) {
        Some(Ok(seq)) if seq != [0; SEQ_LEN] => Ok(u64::from_be_bytes(seq)),
        _ => Err(corrupt_key(key, "not a log key of the expected entity")),
    }
}

/// Format v1's event key: `E | entity | seq`. Only tests write it now (to build v1 stores).
#[cfg(test)]
pub(crate) fn event_key(entity: &EntityId, seq: u64) -> Vec<u8> {
    let mut key = with_entity(EVENT, entity, SEQ_LEN);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn decode_event_key(key: &[u8]) -> Result<(EntityId, u64), Error> {
    let mut reader = KeyReader::new(key, EVENT)?;
    let entity = reader.entity()?;
    let seq = reader.u64()?;
    reader.finish()?;
    Ok((entity, seq))
}

#[cfg(test)]
pub(crate) fn head_key(entity: &EntityId) -> Vec<u8> {
    with_entity(HEAD, entity, 0)
}

pub(crate) fn decode_head_key(key: &[u8]) -> Result<EntityId, Error> {
    let mut reader = KeyReader::new(key, HEAD)?;
    let entity = reader.entity()?;
    reader.finish()?;
    Ok(entity)
}

/// `P | entity`: every past event key of the entity starts with this.
pub(crate) fn past_event_prefix(entity: &EntityId) -> Vec<u8> {
    with_entity(PAST_EVENT, entity, 2 + RULE_NAME_LEN_MAX + 4)
}

pub(crate) fn past_event_key(entity: &EntityId, occurrence: &OccurrenceId) -> Vec<u8> {
    let mut key = past_event_prefix(entity);
    put_occurrence(&mut key, occurrence);
    key
}

pub(crate) fn decode_past_event_key(key: &[u8]) -> Result<(EntityId, OccurrenceId), Error> {
    let mut reader = KeyReader::new(key, PAST_EVENT)?;
    let entity = reader.entity()?;
    let occurrence = reader.occurrence()?;
    reader.finish()?;
    Ok((entity, occurrence))
}

pub(crate) fn timer_key(entry: &TimerEntry) -> Vec<u8> {
    let entity = entry.entity.as_str();
    let mut key = Vec::with_capacity(1 + 8 + 2 + entity.len() + 2 + RULE_NAME_LEN_MAX + 4);
    key.extend_from_slice(&timer_key_prefix(entry.due));
    put_id(&mut key, entity);
    put_occurrence(&mut key, &entry.occurrence);
    key
}

/// The start of every timer key due at `due`: before all of them, after all earlier ones.
pub(crate) fn timer_key_prefix(due: Timestamp) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 8);
    key.push(TIMER);
    // Timestamps are never negative (1970..=9999), so the cast keeps their order.
    let due = u64::try_from(due.as_millis()).expect("timestamps are at least 0");
    key.extend_from_slice(&due.to_be_bytes());
    key
}

pub(crate) fn decode_timer_key(key: &[u8]) -> Result<TimerEntry, Error> {
    let mut reader = KeyReader::new(key, TIMER)?;
    let due_ms = reader.u64()?;
    let due = i64::try_from(due_ms)
        .ok()
        .and_then(Timestamp::from_millis)
        .ok_or_else(|| corrupt_key(key, &format!("due {due_ms} ms is out of range")))?;
    let entity = reader.entity()?;
    let occurrence = reader.occurrence()?;
    reader.finish()?;
    Ok(TimerEntry {
        due,
        entity,
        occurrence,
    })
}

pub(crate) fn snapshot_key(entity: &EntityId) -> Vec<u8> {
    with_entity(SNAPSHOT, entity, 0)
}

pub(crate) fn decode_snapshot_key(key: &[u8]) -> Result<EntityId, Error> {
    let mut reader = KeyReader::new(key, SNAPSHOT)?;
    let entity = reader.entity()?;
    reader.finish()?;
    Ok(entity)
}

/// Meta names are checked by the store before they get here ([`check_meta_name`]).
/// `I | index`: every member key of the index starts with this.
pub(crate) fn index_prefix(index: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 2 + index.len());
    key.push(INDEX);
    put_text(&mut key, index);
    key
}

/// `I | index | member`.
pub(crate) fn index_key(index: &str, member: &str) -> Vec<u8> {
    let mut key = index_prefix(index);
    put_text(&mut key, member);
    key
}

pub(crate) fn decode_index_member(prefix: &[u8], key: &[u8]) -> Result<String, Error> {
    let rest = key
        .strip_prefix(prefix)
        .ok_or_else(|| corrupt_key(key, "an index key outside its index"))?;
    let (len, member) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt_key(key, "an index member without its length"))?;
    if usize::from(u16::from_be_bytes(*len)) != member.len() {
        return Err(corrupt_key(key, "an index member of the wrong length"));
    }
    String::from_utf8(member.to_vec())
        .map_err(|_| corrupt_key(key, "an index member that is not UTF-8"))
}

/// Checks an index name or member: non-empty, bounded, no control characters.
pub(crate) fn check_index_text(what: &str, text: &str, len_max: usize) -> Result<(), Error> {
    if text.is_empty() || text.len() > len_max || text.chars().any(char::is_control) {
        return Err(Error::InvalidBatch {
            reason: format!("{what} {text:?} must be 1-{len_max} bytes without control characters"),
        });
    }
    Ok(())
}

fn put_text(key: &mut Vec<u8>, text: &str) {
    let len =
        u16::try_from(text.len()).expect("index names and members are bounded below u16::MAX");
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(text.as_bytes());
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + name.len());
    key.push(META);
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn decode_meta_key(key: &[u8]) -> Result<String, Error> {
    let mut reader = KeyReader::new(key, META)?;
    let name = std::str::from_utf8(reader.rest())
        .map_err(|_| corrupt_key(key, "meta name is not UTF-8"))?;
    Ok(name.to_owned())
}

/// Refuses names a caller may not use for [`crate::Store::set_meta`]: empty, too long, or the
/// store's own format marker.
pub(crate) fn check_meta_name(name: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidMeta {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > META_NAME_LEN_MAX {
        return Err(invalid(format!("must be 1 to {META_NAME_LEN_MAX} bytes")));
    }
    if name == FORMAT_META_NAME {
        return Err(invalid("reserved for the store's format marker".to_owned()));
    }
    Ok(())
}

/// The value under a v1 head key: the entity's last sequence number.
#[cfg(test)]
pub(crate) fn encode_head(last_seq: u64) -> Vec<u8> {
    last_seq.to_be_bytes().to_vec()
}

pub(crate) fn decode_head(entity: &EntityId, value: &[u8]) -> Result<u64, Error> {
    <[u8; SEQ_LEN]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::CorruptEntry {
            what: format!("head of entity {entity}"),
            reason: format!("expected 8 bytes, found {}", value.len()),
        })
}

/// The value under a snapshot key: the snapshot's seq, then its record bytes.
pub(crate) fn encode_snapshot(seq: u64, record: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(SEQ_LEN + record.len());
    value.extend_from_slice(&seq.to_be_bytes());
    value.extend_from_slice(record);
    value
}

/// Splits a snapshot value into its seq and its (still unchecked) record bytes.
pub(crate) fn decode_snapshot<'a>(
    entity: &EntityId,
    value: &'a [u8],
) -> Result<(u64, &'a [u8]), Error> {
    if value.len() < SEQ_LEN {
        return Err(Error::CorruptEntry {
            what: format!("snapshot of entity {entity}"),
            reason: format!("{} bytes is shorter than its 8-byte seq", value.len()),
        });
    }
    let (seq, record) = value.split_at(SEQ_LEN);
    let mut seq_bytes = [0u8; SEQ_LEN];
    seq_bytes.copy_from_slice(seq);
    Ok((u64::from_be_bytes(seq_bytes), record))
}

fn corrupt_key(key: &[u8], reason: &str) -> Error {
    Error::CorruptKey {
        key_hex: hex(key),
        reason: reason.to_owned(),
    }
}

/// Reads a key front to back; every read checks the remaining length, so no input panics.
struct KeyReader<'a> {
    key: &'a [u8],
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    fn new(key: &'a [u8], prefix: u8) -> Result<KeyReader<'a>, Error> {
        match key.split_first() {
            Some((&first, rest)) if first == prefix => Ok(KeyReader { key, rest }),
            _ => Err(corrupt_key(
                key,
                &format!("expected keyspace prefix {:?}", char::from(prefix)),
            )),
        }
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], Error> {
        if self.rest.len() < len {
            return Err(corrupt_key(
                self.key,
                &format!(
                    "truncated: {what} needs {len} bytes, {} left",
                    self.rest.len()
                ),
            ));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Error> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, what)?);
        Ok(array)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        self.array("a u64").map(u64::from_be_bytes)
    }

    fn id(&mut self, what: &str, len_max: usize) -> Result<&'a str, Error> {
        let len = usize::from(u16::from_be_bytes(self.array(what)?));
        if len > len_max {
            return Err(corrupt_key(
                self.key,
                &format!("{what} length {len} exceeds {len_max}"),
            ));
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| corrupt_key(self.key, &format!("{what} is not UTF-8")))
    }

    fn entity(&mut self) -> Result<EntityId, Error> {
        let text = self.id("entity id", ENTITY_ID_LEN_MAX)?;
        EntityId::parse(text).map_err(|e| corrupt_key(self.key, &e.to_string()))
    }

    fn occurrence(&mut self) -> Result<OccurrenceId, Error> {
        let text = self.id("rule name", RULE_NAME_LEN_MAX)?;
        let rule = RuleName::parse(text).map_err(|e| corrupt_key(self.key, &e.to_string()))?;
        let index = u32::from_be_bytes(self.array("an occurrence index")?);
        Ok(OccurrenceId::new(rule, index))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt_key(
                self.key,
                &format!("{} unexpected bytes at the end", self.rest.len()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entity(text: &str) -> EntityId {
        EntityId::parse(text).unwrap()
    }

    fn occurrence(text: &str) -> OccurrenceId {
        OccurrenceId::parse(text).unwrap()
    }

    fn timer(due_ms: i64, entity_id: &str, occ: &str) -> TimerEntry {
        TimerEntry {
            due: Timestamp::from_millis(due_ms).unwrap(),
            entity: entity(entity_id),
            occurrence: occurrence(occ),
        }
    }

    #[test]
    fn log_key_layout_is_prefix_length_id_last_seq() {
        let key = log_key(&entity("a/b"), 258);
        assert_eq!(key, b"L\x00\x03a/b\x00\x00\x00\x00\x00\x00\x01\x02");
        assert_eq!(decode_log_key(&key).unwrap(), (entity("a/b"), 258));
        assert_eq!(log_seq(&log_prefix(&entity("a/b")), &key).unwrap(), 258);
        assert!(log_seq(&log_prefix(&entity("a/c")), &key).is_err());
        assert!(log_seq(&log_prefix(&entity("a/b")), &log_key(&entity("a/b"), 0)).is_err());
    }

    #[test]
    fn event_key_layout_is_prefix_length_id_seq() {
        let key = event_key(&entity("a/b"), 258);
        assert_eq!(key, b"E\x00\x03a/b\x00\x00\x00\x00\x00\x00\x01\x02");
        assert_eq!(decode_event_key(&key).unwrap(), (entity("a/b"), 258));
    }

    #[test]
    fn every_key_kind_round_trips() {
        let e = entity("due/review-42");
        assert_eq!(decode_head_key(&head_key(&e)).unwrap(), e);
        assert_eq!(decode_snapshot_key(&snapshot_key(&e)).unwrap(), e);
        let occ = occurrence("pre-due#3");
        assert_eq!(
            decode_past_event_key(&past_event_key(&e, &occ)).unwrap(),
            (e.clone(), occ)
        );
        let t = timer(1_772_701_200_000, "due/review-42", "pre-due#0");
        assert_eq!(decode_timer_key(&timer_key(&t)).unwrap(), t);
        assert_eq!(decode_meta_key(&meta_key("clock")).unwrap(), "clock");
    }

    #[test]
    fn keys_of_one_kind_are_refused_as_another() {
        let e = entity("due/x");
        let head = head_key(&e);
        let err = decode_event_key(&head).unwrap_err();
        assert!(
            err.to_string().contains("expected keyspace prefix 'E'"),
            "{err}"
        );
        assert!(decode_snapshot_key(&head).is_err());
    }

    #[test]
    fn every_truncation_of_a_key_is_an_error() {
        let t = timer(5, "due/x", "late#1");
        let key = timer_key(&t);
        for len in 0..key.len() {
            assert!(decode_timer_key(&key[..len]).is_err(), "{len}");
        }
        let mut longer = key.clone();
        longer.push(0);
        let err = decode_timer_key(&longer).unwrap_err();
        assert!(err.to_string().contains("1 unexpected bytes"), "{err}");
    }

    #[test]
    fn invalid_ids_inside_keys_are_errors_naming_the_key() {
        let mut key = vec![HEAD, 0, 3];
        key.extend_from_slice(b"A b");
        let err = decode_head_key(&key).unwrap_err();
        assert!(err.to_string().contains(&hex(&key)), "{err}");
        let oversized = [HEAD, 0xff, 0xff];
        let err = decode_head_key(&oversized).unwrap_err();
        assert!(err.to_string().contains("exceeds 200"), "{err}");
    }

    #[test]
    fn meta_names_are_checked() {
        assert!(check_meta_name("clock").is_ok());
        assert!(check_meta_name("").is_err());
        assert!(check_meta_name(&"x".repeat(129)).is_err());
        let err = check_meta_name("format").unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
    }

    #[test]
    fn head_and_snapshot_values_round_trip_and_refuse_short_values() {
        let e = entity("due/x");
        assert_eq!(decode_head(&e, &encode_head(7)).unwrap(), 7);
        assert!(decode_head(&e, &[0; 7]).is_err());
        let value = encode_snapshot(9, b"record");
        assert_eq!(decode_snapshot(&e, &value).unwrap(), (9, &b"record"[..]));
        assert!(decode_snapshot(&e, &[0; 7]).is_err());
    }

    fn timer_entries() -> impl Strategy<Value = TimerEntry> {
        (0i64..5, "[a-c]{1,2}/[a-c]{1,3}", "[a-c]{1,3}", 0u32..300).prop_map(
            |(due, e, rule, index)| TimerEntry {
                due: Timestamp::from_millis(due).unwrap(),
                entity: entity(&e),
                occurrence: OccurrenceId::new(RuleName::parse(&rule).unwrap(), index),
            },
        )
    }

    proptest! {
        #[test]
        fn timer_entries_sort_like_their_keys(a in timer_entries(), b in timer_entries()) {
            prop_assert_eq!(a.cmp(&b), timer_key(&a).cmp(&timer_key(&b)));
        }

        #[test]
        fn decoding_arbitrary_keys_never_panics(
            prefix in prop::sample::select(vec![EVENT, HEAD, PAST_EVENT, TIMER, SNAPSHOT, META]),
            rest in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut key = vec![prefix];
            key.extend_from_slice(&rest);
            let _ = decode_event_key(&key);
            let _ = decode_head_key(&key);
            let _ = decode_past_event_key(&key);
            let _ = decode_timer_key(&key);
            let _ = decode_snapshot_key(&key);
            let _ = decode_meta_key(&key);
        }
    }
}
