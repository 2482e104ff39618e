//! The store's one error type. Every message names the offending value (entity, sequence number,
//! key, directory) so a log line alone says what to look at.

use std::path::PathBuf;

use thiserror::Error;
use tickler_core::{EntityId, OccurrenceId};

/// Everything the store can refuse or fail with.
///
/// `Clone` because [`crate::GroupCommit`] hands one flush failure to every commit that waited on
/// that flush; that is also why I/O errors are kept as text rather than as `std::io::Error`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Error {
    #[error(
        "version conflict on entity {entity}: the writer expected last seq {expected}, \
         the log is at {actual}"
    )]
    VersionConflict {
        entity: EntityId,
        expected: u64,
        actual: u64,
    },

    #[error(
        "past event {occurrence} of entity {entity} already exists: past events are write-once \
         (this is a bug in the writer)"
    )]
    PastEventExists {
        entity: EntityId,
        occurrence: OccurrenceId,
    },

    /// A stored event failed its checks; replaying this entity cannot go on past `seq`.
    #[error("event {seq} of entity {entity} is corrupt: {reason}")]
    Corrupt {
        entity: EntityId,
        seq: u64,
        reason: String,
    },

    /// Record bytes that fail their checks, before the caller knows which entry they belong to.
    #[error("corrupt record: {reason}")]
    CorruptRecord { reason: String },

    /// A stored key that does not follow the key layout.
    #[error("corrupt key {key_hex}: {reason}")]
    CorruptKey { key_hex: String, reason: String },

    /// A stored value other than an event (head, snapshot, past event) that fails its checks.
    #[error("stored {what} is corrupt: {reason}")]
    CorruptEntry { what: String, reason: String },

    /// The disk or the storage engine failed; the operation may or may not have been applied
    /// only where the method's documentation says so (a commit is all-or-nothing).
    #[error("storage I/O error: {0}")]
    Io(String),

    #[error(
        "data directory {} is in use by another process (a running daemon?)",
        dir.display()
    )]
    Locked { dir: PathBuf },

    #[error("no tickler store at {}: the directory or its database does not exist", dir.display())]
    NotFound { dir: PathBuf },

    #[error("the store was opened read-only; writes are refused")]
    ReadOnly,

    /// A file of the store is damaged below the record level (truncated, overwritten), so the
    /// storage engine cannot open it.
    #[error(
        "the store's file {} is damaged and cannot be opened ({reason}); restore the data \
         directory from a copy",
        file.display()
    )]
    Damaged { file: PathBuf, reason: String },

    #[error(
        "unknown store format {found:?}: this build reads {expected:?} (a newer tickler wrote \
         this directory, or it is not a tickler store)"
    )]
    UnknownFormat { found: String, expected: String },

    /// A store in the previous record format: `tickler migrate` upgrades it.
    #[error(
        "the store in {} is in record format v1, written by an earlier tickler; this build \
         reads it only to migrate it: stop the daemon and run `tickler migrate` with the same \
         --data-dir (the old store is kept until the migrated copy is in place)",
        dir.display()
    )]
    NeedsMigration { dir: PathBuf },

    /// The store stopped serving reads and writes: it belongs to a shard whose log refused or
    /// may have lost a write, so what it holds may not be what the log says. Like `Io`, a
    /// caller keeps what it had and retries elsewhere; nothing here is corrupt.
    #[error("this shard's store has stopped: {reason}; another node serves the shard now")]
    Stopped { reason: String },

    #[error("invalid commit batch: {reason}")]
    InvalidBatch { reason: String },

    #[error("invalid meta name {name:?}: {reason}")]
    InvalidMeta { name: String, reason: String },
}

impl Error {
    /// Whether the store could not be reached (I/O, or a stopped shard) rather than holding
    /// something wrong: the operation may succeed later, or on another node.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Io(_) | Error::Stopped { .. })
    }
}

impl From<sled::Error> for Error {
    fn from(error: sled::Error) -> Error {
        match error {
            sled::Error::Corruption { at, .. } => Error::CorruptEntry {
                what: "sled data file".to_owned(),
                reason: format!("sled reports corruption at {at:?}"),
            },
            other => Error::Io(format!("sled: {other}")),
        }
    }
}

/// Lower-case hex, for naming keys and bytes in messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}
