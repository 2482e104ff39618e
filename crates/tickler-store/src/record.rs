//! The record envelope: the bytes of every event, past event and snapshot on disk.
//!
//! `envelope || crc32`, where the envelope is the postcard encoding of (format version, event
//! type, recorded-at in ms, payload) and the CRC covers the envelope. The store does not
//! interpret the version, the type or the payload: it stores what it is given and refuses bytes
//! that do not check out. The layout is specified in `proto/record-format.md`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tickler_core::Timestamp;

use crate::Error;

/// Length of the CRC-32 (ISO-HDLC, as computed by `crc32fast`) that ends every record,
/// little-endian.
pub const RECORD_CRC_LEN: usize = 4;

/// The largest payload the store accepts, in bytes. Reminder events are small; a payload this
/// large is a bug upstream, and a bound keeps one record from turning into a huge allocation.
pub const RECORD_PAYLOAD_LEN_MAX: usize = 1024 * 1024;

/// The most bytes the envelope's fields take before the payload: two u16 varints (3 bytes
/// each), an i64 varint (10) and the payload length varint (10 for a usize, 3 within the limit).
/// Only sizes the encoding buffer so that it is allocated once.
const ENVELOPE_HEADER_LEN_MAX: usize = 3 + 3 + 10 + 10;

/// One stored record: what the engine wrote, opaque to the store apart from the envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The version of the payload's schema (the engine's business).
    pub format_version: u16,
    /// What kind of event the payload holds (the engine's business; values are only appended).
    pub event_type: u16,
    pub recorded_at: Timestamp,
    pub payload: Vec<u8>,
}

/// The postcard-encoded part of a record. Field order is the wire order: never reorder.
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    format_version: u16,
    event_type: u16,
    recorded_at_ms: i64,
    #[serde(borrow)]
    payload: Bytes<'a>,
}

/// Bytes serialized as postcard's byte array (varint length, then the bytes) and borrowed on
/// decoding, so a payload is copied once.
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a [u8]>::deserialize(deserializer).map(Bytes)
    }
}

impl Record {
    /// The record's bytes on disk. Callers keep payloads within [`RECORD_PAYLOAD_LEN_MAX`];
    /// [`crate::Store::commit`] refuses larger ones before encoding.
    pub fn encode(&self) -> Vec<u8> {
        let envelope = Envelope {
            format_version: self.format_version,
            event_type: self.event_type,
            recorded_at_ms: self.recorded_at.as_millis(),
            payload: Bytes(&self.payload),
        };
        let capacity = ENVELOPE_HEADER_LEN_MAX + self.payload.len() + RECORD_CRC_LEN;
        let mut bytes = postcard::to_extend(&envelope, Vec::with_capacity(capacity))
            .expect("postcard encodes integers and bytes into a Vec without failing");
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Checks and decodes record bytes: the CRC, then the envelope, which must use every byte,
    /// then the field ranges. Never panics; every failure is [`Error::CorruptRecord`] saying
    /// what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Record, Error> {
        let corrupt = |reason: String| Error::CorruptRecord { reason };
        let Some(envelope_len) = bytes.len().checked_sub(RECORD_CRC_LEN) else {
            return Err(corrupt(format!(
                "{} bytes is shorter than the {RECORD_CRC_LEN}-byte checksum",
                bytes.len()
            )));
        };
        let (envelope, crc_bytes) = bytes.split_at(envelope_len);
        let mut crc = [0u8; RECORD_CRC_LEN];
        crc.copy_from_slice(crc_bytes);
        let stored = u32::from_le_bytes(crc);
        let computed = crc32fast::hash(envelope);
        if stored != computed {
            return Err(corrupt(format!(
                "checksum mismatch: stored {stored:08x}, computed {computed:08x} over {envelope_len} bytes"
            )));
        }
        let (decoded, rest) = postcard::take_from_bytes::<Envelope<'_>>(envelope)
            .map_err(|e| corrupt(format!("envelope does not decode: {e}")))?;
        if !rest.is_empty() {
            return Err(corrupt(format!(
                "{} unexpected bytes after the envelope",
                rest.len()
            )));
        }
        let payload = decoded.payload.0;
        // postcard reads an overlong varint (0x80 0x00 for 0) as the value it spells: such an
        // envelope means the same as the canonical one but is not what any writer made, and
        // would not re-encode to its bytes. Only canonical envelopes are records.
        let canonical = varint_len(u64::from(decoded.format_version))
            + varint_len(u64::from(decoded.event_type))
            + varint_len(zigzag(decoded.recorded_at_ms))
            + varint_len(payload.len() as u64)
            + payload.len();
        if canonical != envelope_len {
            return Err(corrupt(format!(
                "the envelope's {envelope_len} bytes are not in their canonical encoding \
                 ({canonical} bytes): an overlong number"
            )));
        }
        if payload.len() > RECORD_PAYLOAD_LEN_MAX {
            return Err(corrupt(format!(
                "payload of {} bytes exceeds the limit of {RECORD_PAYLOAD_LEN_MAX}",
                payload.len()
            )));
        }
        let ms = decoded.recorded_at_ms;
        let recorded_at = Timestamp::from_millis(ms).ok_or_else(|| {
            corrupt(format!(
                "recorded_at {ms} ms is outside the accepted range (years 1970 to 9999)"
            ))
        })?;
        Ok(Record {
            format_version: decoded.format_version,
            event_type: decoded.event_type,
            recorded_at,
            payload: payload.to_vec(),
        })
    }
}

/// The reason inside a record decoding error, for wrapping it in an error that names where the
/// record was stored.
pub(crate) fn corrupt_reason(error: Error) -> String {
    match error {
        Error::CorruptRecord { reason } => reason,
        other => other.to_string(),
    }
}

/// The bytes of `n` as a postcard (LEB128) varint.
fn varint_len(n: u64) -> usize {
    (64 - n.leading_zeros() as usize).max(1).div_ceil(7)
}

/// postcard's zigzag mapping of a signed integer.
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tickler_core::Timestamp;

    use super::*;

    /// 9999-12-31T23:59:59.999Z, the last instant `Timestamp` accepts (core does not export it).
    const TIMESTAMP_MAX_MS: i64 = 253_402_300_799_999;

    fn record(payload: &[u8]) -> Record {
        Record {
            format_version: 1,
            event_type: 7,
            recorded_at: Timestamp::from_millis(1_772_701_200_000).unwrap(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn a_record_round_trips() {
        let original = record(b"hello");
        let bytes = original.encode();
        assert_eq!(Record::decode(&bytes).unwrap(), original);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = record(&[0xab; 300]).encode();
        for len in 0..bytes.len() {
            let err = Record::decode(&bytes[..len]).unwrap_err();
            assert!(matches!(err, Error::CorruptRecord { .. }), "{len}: {err}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_an_error() {
        let bytes = record(b"payload").encode();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Record::decode(&flipped).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn an_overlong_number_inside_a_valid_checksum_is_refused() {
        // Found by the log_record fuzz target (46.9M runs): format version 0 written as the
        // two-byte varint 0x80 0x00 decoded, and re-encoded to other bytes.
        let bytes = [0x80, 0x00, 0x00, 0x00, 0x00, 0x8f, 0x47, 0xc4, 0x77];
        let err = Record::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("canonical"), "{err}");
        // Canonical ones, one-byte and multi-byte numbers alike, still decode.
        for (format_version, event_type, ms, len) in
            [(0, 0, 0, 0), (300, 20_000, 253_402_300_799_999, 200)]
        {
            let record = Record {
                format_version,
                event_type,
                recorded_at: Timestamp::from_millis(ms).unwrap(),
                payload: vec![7; len],
            };
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
    }

    #[test]
    fn trailing_bytes_inside_a_valid_checksum_are_refused() {
        let mut envelope = record(b"x").encode();
        envelope.truncate(envelope.len() - RECORD_CRC_LEN);
        envelope.push(0);
        let crc = crc32fast::hash(&envelope);
        envelope.extend_from_slice(&crc.to_le_bytes());
        let err = Record::decode(&envelope).unwrap_err();
        assert!(err.to_string().contains("1 unexpected bytes"), "{err}");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Record::decode(&bytes);
        }

        #[test]
        fn decoding_bytes_with_a_valid_checksum_never_panics(
            envelope in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = envelope.clone();
            bytes.extend_from_slice(&crc32fast::hash(&envelope).to_le_bytes());
            let _ = Record::decode(&bytes);
        }

        #[test]
        fn any_record_round_trips(
            format_version in any::<u16>(),
            event_type in any::<u16>(),
            ms in 0..=TIMESTAMP_MAX_MS,
            payload in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let original = Record {
                format_version,
                event_type,
                recorded_at: Timestamp::from_millis(ms).unwrap(),
                payload,
            };
            prop_assert_eq!(Record::decode(&original.encode()).unwrap(), original);
        }
    }
}
