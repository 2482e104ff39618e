//! The golden vectors of `proto/golden/log-records-v1.json`, written from `proto/log-record.md`
//! by an independent generator: each decodes to what the vector says and encodes back to the
//! same bytes; each damaged one is refused, naming why.

use serde_json::Value;
use tickler_cluster::log_record::{self, LogOp};
use tickler_core::Timestamp;
use tickler_store::{CommitBatch, IndexEntry, Record, Snapshot, TimerEntry};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto/golden/log-records-v1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn record(value: &Value) -> Record {
    Record::decode(&hex(value.as_str().unwrap())).unwrap()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap()
}

fn timers(value: &Value) -> Vec<TimerEntry> {
    let timer = |t: &Value| TimerEntry {
        due: Timestamp::from_millis(t[0].as_i64().unwrap()).unwrap(),
        entity: text(&t[1]).parse().unwrap(),
        occurrence: text(&t[2]).parse().unwrap(),
    };
    value.as_array().unwrap().iter().map(timer).collect()
}

fn index(value: &Value) -> Vec<IndexEntry> {
    let entry = |p: &Value| IndexEntry {
        index: text(&p[0]).into(),
        member: text(&p[1]).into(),
    };
    value.as_array().unwrap().iter().map(entry).collect()
}

fn batch(b: &Value) -> CommitBatch {
    CommitBatch {
        entity: b["entity"].as_str().map(|e| e.parse().unwrap()),
        expected_seq: b["expected_seq"].as_u64().unwrap(),
        events: b["events_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(record)
            .collect(),
        past_events: (b["past_events"].as_array().unwrap().iter())
            .map(|p| (text(&p[0]).parse().unwrap(), record(&p[1])))
            .collect(),
        timers_remove: timers(&b["timers_remove"]),
        timers_insert: timers(&b["timers_insert"]),
        snapshot: (!b["snapshot"].is_null()).then(|| Snapshot {
            seq: b["snapshot"][0].as_u64().unwrap(),
            record: record(&b["snapshot"][1]),
        }),
        index_remove: index(&b["index_remove"]),
        index_insert: index(&b["index_insert"]),
    }
}

fn op(o: &Value) -> LogOp {
    match o.get("commit") {
        Some(commit) => LogOp::Commit(batch(commit)),
        None => LogOp::SetMeta {
            name: text(&o["set_meta"]["name"]).into(),
            value: hex(text(&o["set_meta"]["value_hex"])),
        },
    }
}

#[test]
fn every_valid_vector_decodes_to_its_operations_and_encodes_back_to_its_bytes() {
    let vectors = vectors();
    for vector in vectors["valid"].as_array().unwrap() {
        let name = text(&vector["name"]);
        let bytes = hex(text(&vector["hex"]));
        let expected: Vec<LogOp> = vector["ops"].as_array().unwrap().iter().map(op).collect();
        assert_eq!(log_record::decode(&bytes).unwrap(), expected, "{name}");
        assert_eq!(log_record::encode(&expected), bytes, "{name}");
    }
}

#[test]
fn every_damaged_vector_is_refused_with_its_reason() {
    let vectors = vectors();
    for vector in vectors["invalid"].as_array().unwrap() {
        let name = text(&vector["name"]);
        let err = log_record::decode(&hex(text(&vector["hex"]))).unwrap_err();
        let wanted = text(&vector["error_contains"]);
        assert!(err.to_string().contains(wanted), "{name}: {err}");
    }
}

#[test]
fn trailing_bytes_and_a_short_record_are_refused() {
    let good = log_record::encode(&[]);
    assert!(log_record::decode(&good[..3]).is_err());
    let mut longer = good[..good.len() - 4].to_vec();
    longer.push(0);
    let crc = crc32(&longer);
    longer.extend_from_slice(&crc.to_le_bytes());
    let err = log_record::decode(&longer).unwrap_err();
    assert!(
        err.to_string().contains("1 bytes follow the record"),
        "{err}"
    );
}

fn crc32(bytes: &[u8]) -> u32 {
    // The IEEE polynomial, bit by bit: independent of the crate the code uses.
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
