//! The stamp a shard's local copy keeps with its data: which log record it reflects.

use crate::shard_log::{Epoch, Seq};

/// The meta name of the stamp. The store's own names never contain a dot.
pub const POSITION_META: &str = "cluster.log_position";

/// A log record, named by its position, the epoch that wrote it and the CRC-32 of its bytes.
///
/// Matching the epoch is what makes a match mean "the copy equals the log up to here": one
/// epoch is one store, which appends its records in order and stops at the first refusal, so
/// if the log holds this epoch's record at `seq`, it holds every earlier record that store
/// applied. A deposed owner's records that were never appended carry its old epoch, and the
/// log's records at those positions carry a newer one, even when their bytes happen to agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub seq: Seq,
    pub epoch: Epoch,
    pub crc: u32,
}

impl Position {
    pub fn of(seq: Seq, epoch: Epoch, record: &[u8]) -> Position {
        Position {
            seq,
            epoch,
            crc: crc32fast::hash(record),
        }
    }

    /// 20 bytes: the seq and the epoch (big-endian), then the CRC (little-endian, as the
    /// records carry theirs).
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.seq.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.epoch.to_be_bytes());
        bytes.extend_from_slice(&self.crc.to_le_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Position> {
        let bytes: &[u8; 20] = bytes.try_into().ok()?;
        Some(Position {
            seq: Seq::from_be_bytes(bytes[..8].try_into().ok()?),
            epoch: Epoch::from_be_bytes(bytes[8..16].try_into().ok()?),
            crc: u32::from_le_bytes(bytes[16..].try_into().ok()?),
        })
    }

    /// Whether the log's record `seq`, written by `epoch`, is the record this position names.
    pub fn names(&self, seq: Seq, epoch: Epoch, record: &[u8]) -> bool {
        self.seq == seq && self.epoch == epoch && crc32fast::hash(record) == self.crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_round_trips_and_rejects_other_lengths() {
        let position = Position::of(42, 7, b"record");
        assert_eq!(Position::decode(&position.encode()), Some(position));
        assert_eq!(Position::decode(&position.encode()[..19]), None);
        assert!(position.names(42, 7, b"record"));
        assert!(!position.names(42, 7, b"other"));
        assert!(!position.names(42, 8, b"record"), "another epoch's record");
        assert!(!position.names(41, 7, b"record"));
    }
}
