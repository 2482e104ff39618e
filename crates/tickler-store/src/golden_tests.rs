//! The golden vectors of `proto/golden/records-v1.json` and `records-v2.json`, produced by an
//! implementation of the spec independent of this crate: every record, log entry and key decodes
//! to the listed fields and re-encodes to the same bytes; every invalid record or log entry fails
//! with the documented error. v1's event and head keys are still checked: the migration reads
//! them.

use serde_json::Value;
use tickler_core::{EntityId, OccurrenceId, Timestamp};

use crate::{Error, Record, TimerEntry, keys};

fn vectors() -> Value {
    vectors_of("records-v1.json")
}

fn vectors_of(file: &str) -> Value {
    let path = format!("{}/../../proto/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn field<'a>(vector: &'a Value, name: &str) -> &'a Value {
    vector
        .get(name)
        .unwrap_or_else(|| panic!("vector {vector} has no field {name:?}"))
}

fn text<'a>(vector: &'a Value, name: &str) -> &'a str {
    field(vector, name)
        .as_str()
        .unwrap_or_else(|| panic!("{name} of {vector} is not a string"))
}

fn int(vector: &Value, name: &str) -> u64 {
    field(vector, name)
        .as_u64()
        .unwrap_or_else(|| panic!("{name} of {vector} is not an unsigned integer"))
}

fn list<'a>(document: &'a Value, name: &str) -> &'a Vec<Value> {
    field(document, name).as_array().expect("a list of vectors")
}

fn entity(vector: &Value) -> EntityId {
    EntityId::parse(text(vector, "entity")).unwrap()
}

fn occurrence(vector: &Value) -> OccurrenceId {
    OccurrenceId::parse(text(vector, "occurrence")).unwrap()
}

#[test]
fn golden_records_decode_to_their_fields_and_re_encode_byte_for_byte() {
    let document = vectors();
    assert_eq!(text(&document, "format"), "tickler record format v1");
    let records = list(&document, "records");
    assert!(records.len() >= 5);
    for vector in records {
        let name = text(vector, "name");
        let bytes = unhex(text(vector, "hex"));
        let record = Record::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = Record {
            format_version: u16::try_from(int(vector, "format_version")).unwrap(),
            event_type: u16::try_from(int(vector, "event_type")).unwrap(),
            recorded_at: Timestamp::from_millis(int(vector, "recorded_at_ms") as i64).unwrap(),
            payload: unhex(text(vector, "payload_hex")),
        };
        assert_eq!(record, expected, "{name}");
        assert_eq!(record.encode(), bytes, "{name}");
    }
}

#[test]
fn golden_invalid_records_fail_with_the_documented_error() {
    let document = vectors();
    for vector in list(&document, "invalid_records") {
        let name = text(vector, "name");
        let err = Record::decode(&unhex(text(vector, "hex")))
            .map(|record| panic!("{name}: decoded to {record:?}"))
            .unwrap_err();
        let needle = text(vector, "error");
        assert!(
            matches!(&err, Error::CorruptRecord { reason } if reason.contains(needle)),
            "{name}: expected {needle:?} in {err}"
        );
    }
}

#[test]
fn golden_keys_decode_to_their_fields_and_re_encode_byte_for_byte() {
    let document = vectors();
    let record_bytes = |name: &str| {
        let vector = list(&document, "records")
            .iter()
            .find(|vector| text(vector, "name") == name)
            .unwrap_or_else(|| panic!("no record vector {name:?}"));
        unhex(text(vector, "hex"))
    };
    let keys = list(&document, "keys");
    for vector in keys {
        let name = text(vector, "name");
        let key = unhex(text(vector, "hex"));
        match text(vector, "kind") {
            "event" => {
                let fields = (entity(vector), int(vector, "seq"));
                assert_eq!(keys::decode_event_key(&key).as_ref(), Ok(&fields), "{name}");
                assert_eq!(keys::event_key(&fields.0, fields.1), key, "{name}");
            }
            "head" => {
                let e = entity(vector);
                assert_eq!(keys::decode_head_key(&key).as_ref(), Ok(&e), "{name}");
                assert_eq!(keys::head_key(&e), key, "{name}");
                let value = unhex(text(vector, "value_hex"));
                let last_seq = int(vector, "last_seq");
                assert_eq!(keys::decode_head(&e, &value), Ok(last_seq), "{name}");
                assert_eq!(keys::encode_head(last_seq), value, "{name}");
            }
            "past_event" => {
                let fields = (entity(vector), occurrence(vector));
                assert_eq!(
                    keys::decode_past_event_key(&key).as_ref(),
                    Ok(&fields),
                    "{name}"
                );
                assert_eq!(keys::past_event_key(&fields.0, &fields.1), key, "{name}");
            }
            "timer" => {
                let entry = TimerEntry {
                    due: Timestamp::from_millis(int(vector, "due_ms") as i64).unwrap(),
                    entity: entity(vector),
                    occurrence: occurrence(vector),
                };
                assert_eq!(keys::decode_timer_key(&key).as_ref(), Ok(&entry), "{name}");
                assert_eq!(keys::timer_key(&entry), key, "{name}");
            }
            "snapshot" => {
                let e = entity(vector);
                assert_eq!(keys::decode_snapshot_key(&key).as_ref(), Ok(&e), "{name}");
                assert_eq!(keys::snapshot_key(&e), key, "{name}");
                let value = unhex(text(vector, "value_hex"));
                let record = record_bytes(text(vector, "record"));
                let seq = int(vector, "seq");
                assert_eq!(
                    keys::decode_snapshot(&e, &value),
                    Ok((seq, record.as_slice())),
                    "{name}"
                );
                assert_eq!(keys::encode_snapshot(seq, &record), value, "{name}");
            }
            "meta" => {
                let meta_name = text(vector, "meta_name");
                assert_eq!(
                    keys::decode_meta_key(&key).as_deref(),
                    Ok(meta_name),
                    "{name}"
                );
                assert_eq!(keys::meta_key(meta_name), key, "{name}");
                if meta_name == keys::FORMAT_META_NAME {
                    assert_eq!(unhex(text(vector, "value_hex")), keys::FORMAT_MARKER_V1);
                }
            }
            other => panic!("{name}: unknown key kind {other:?}"),
        }
    }
    let kinds: Vec<&str> = keys.iter().map(|vector| text(vector, "kind")).collect();
    for kind in ["event", "head", "past_event", "timer", "snapshot", "meta"] {
        assert!(kinds.contains(&kind), "no golden key of kind {kind}");
    }
}

#[test]
fn golden_v2_log_entries_decode_to_their_records_and_re_encode_byte_for_byte() {
    let document = vectors_of("records-v2.json");
    assert_eq!(text(&document, "format"), "tickler record format v2");
    for vector in list(&document, "log_entries") {
        let name = text(vector, "name");
        let (entity, last_seq) = (entity(vector), int(vector, "last_seq"));
        let key = unhex(text(vector, "key_hex"));
        assert_eq!(keys::log_key(&entity, last_seq), key, "{name}");
        assert_eq!(keys::decode_log_key(&key), Ok((entity, last_seq)), "{name}");
        let records: Vec<Vec<u8>> = field(vector, "records_hex")
            .as_array()
            .expect("a list of records")
            .iter()
            .map(|hex| unhex(hex.as_str().expect("hex")))
            .collect();
        let value = unhex(text(vector, "value_hex"));
        assert_eq!(
            crate::log::encode_entry(records.iter().map(Vec::as_slice)),
            value,
            "{name}"
        );
        let split = crate::log::split_entry(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(split, records, "{name}");
        for record in split {
            Record::decode(record).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn golden_v2_invalid_log_entries_fail_with_the_documented_error() {
    let document = vectors_of("records-v2.json");
    for vector in list(&document, "invalid_log_entries") {
        let name = text(vector, "name");
        let err = crate::log::split_entry(&unhex(text(vector, "hex")))
            .map(|records| panic!("{name}: split into {records:?}"))
            .unwrap_err();
        let needle = text(vector, "error");
        assert!(err.contains(needle), "{name}: expected {needle:?} in {err}");
    }
}

#[test]
fn golden_v2_keys_re_encode_byte_for_byte() {
    let document = vectors_of("records-v2.json");
    for vector in list(&document, "keys") {
        let name = text(vector, "name");
        let key = unhex(text(vector, "hex"));
        let encoded = match text(vector, "kind") {
            "past_event" => keys::past_event_key(&entity(vector), &occurrence(vector)),
            "timer" => keys::timer_key(&TimerEntry {
                due: Timestamp::from_millis(int(vector, "due_ms") as i64).unwrap(),
                entity: entity(vector),
                occurrence: occurrence(vector),
            }),
            "meta" => {
                assert_eq!(unhex(text(vector, "value_hex")), keys::FORMAT_MARKER);
                keys::meta_key(text(vector, "meta_name"))
            }
            other => panic!("{name}: unknown key kind {other:?}"),
        };
        assert_eq!(encoded, key, "{name}");
    }
}
