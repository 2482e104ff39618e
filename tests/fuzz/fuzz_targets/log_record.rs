//! The log record decoder: bytes read back from a data directory (a flipped bit, a truncated
//! write, an unknown event type) must decode or be refused, never panic; a record that decodes
//! re-encodes to the same bytes. The same bytes read as a log entry (record format v2: the
//! records of one commit) must split or be refused, and a split entry re-encodes to its bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickler_store::Record;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(record) = Record::decode(bytes) {
        assert_eq!(record.encode(), bytes, "a decoded record re-encodes to its bytes");
        let _ = tickler_engine::codec::decode_event(&record);
        let _ = tickler_engine::codec::decode_snapshot(&record);
        let _ = tickler_engine::codec::decode_past_event(&record);
    }
    if let Ok(records) = tickler_store::__log_entry::split(bytes) {
        let encoded = tickler_store::__log_entry::encode(records.iter().copied());
        assert_eq!(encoded, bytes, "a split log entry re-encodes to its bytes");
        for record in records {
            let _ = Record::decode(record);
        }
    }
});
