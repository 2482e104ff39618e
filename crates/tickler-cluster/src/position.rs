//! The stamp a shard's local copy keeps with its data: which log record it reflects.

use crate::shard_log::Seq;

/// The meta name of the stamp. The store's own names never contain a dot.
pub const POSITION_META: &str = "cluster.log_position";

/// A log record, named by its position and the CRC-32 of its bytes: a copy stamped with a
/// position whose record in the log has other bytes holds writes the log does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: Seq,
    pub crc: u32,
}

impl Position {
    pub fn of(seq: Seq, record: &[u8]) -> Position {
        Position {
            seq,
            crc: crc32fast::hash(record),
        }
    }

    /// 12 bytes: the seq (big-endian), then the CRC (little-endian, as the records carry theirs).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.seq.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.crc.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Position> {
        let (seq, crc) = bytes.split_at_checked(8)?;
        Some(Position {
            seq: Seq::from_be_bytes(seq.try_into().ok()?),
            crc: u32::from_le_bytes(crc.try_into().ok()?),
        })
    }

    /// Whether `record` is the record this position names.
    pub fn names(&self, record: &[u8]) -> bool {
        crc32fast::hash(record) == self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_and_rejects_other_lengths() {
        let position = Position::of(42, b"record");
        assert_eq!(Position::decode(&position.encode()), Some(position));
        assert_eq!(Position::decode(&position.encode()[..11]), None);
        assert!(position.names(b"record"));
        assert!(!position.names(b"other"));
    }
}
