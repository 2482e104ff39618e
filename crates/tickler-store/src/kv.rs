//! The ordered key-value interface both stores are written against, so the commit and read
//! logic (and the key and record codecs) are one piece of code tested through both.

use std::ops::{Bound, ControlFlow};

use crate::Error;
use crate::keys::{self, FORMAT_MARKER, FORMAT_MARKER_V1, FORMAT_META_NAME};

/// One write of a batch: a value to put, or `None` to delete the key.
pub(crate) type Write = (Vec<u8>, Option<Vec<u8>>);

/// Called with each (key, value) of a scan; `Break` stops the scan.
pub(crate) type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, Error> + 'a;

pub(crate) trait Kv: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Visits, in ascending key order, the entries from `start` on whose keys begin with
    /// `prefix`. `start` must itself begin with `prefix` (or be unbounded with an empty prefix).
    /// `visit` must not call back into the store: the memory store holds its lock meanwhile.
    fn scan(&self, prefix: &[u8], start: Bound<&[u8]>, visit: &mut Visit<'_>) -> Result<(), Error>;

    /// Calls `visit` with the greatest key beginning with `prefix`, if there is one (one
    /// backward seek).
    fn last_key(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error>;

    /// Applies every write or none, atomically with respect to readers and crashes.
    fn apply(&self, writes: Vec<Write>) -> Result<(), Error>;
}

/// The upper bound of the keys beginning with `prefix`: the least key greater than all of them,
/// excluded (unbounded if there is none, the prefix being all 0xff bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> std::ops::Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return std::ops::Bound::Excluded(end);
        }
    }
    std::ops::Bound::Unbounded
}

/// What [`check_format`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// The store carries this build's marker.
    Current,
    /// The store holds nothing at all: a new store, to be marked by a writer.
    Empty,
    /// The store is in record format v1: only the migration reads it.
    V1,
}

/// Refuses a store written in another format (or not by tickler at all).
pub(crate) fn check_format(kv: &dyn Kv) -> Result<Format, Error> {
    match kv.get(&keys::meta_key(FORMAT_META_NAME))? {
        Some(marker) if marker == FORMAT_MARKER => Ok(Format::Current),
        Some(marker) if marker == FORMAT_MARKER_V1 => Ok(Format::V1),
        Some(other) => Err(unknown_format(String::from_utf8_lossy(&other).into_owned())),
        None => {
            let mut empty = true;
            kv.scan(&[], Bound::Unbounded, &mut |_, _| {
                empty = false;
                Ok(ControlFlow::Break(()))
            })?;
            if empty {
                Ok(Format::Empty)
            } else {
                Err(unknown_format(
                    "(no format marker, but the store holds data)".to_owned(),
                ))
            }
        }
    }
}

/// Writes this build's format marker into an empty store.
pub(crate) fn write_format_marker(kv: &dyn Kv) -> Result<(), Error> {
    kv.apply(vec![(
        keys::meta_key(FORMAT_META_NAME),
        Some(FORMAT_MARKER.to_vec()),
    )])
}

fn unknown_format(found: String) -> Error {
    Error::UnknownFormat {
        found,
        expected: String::from_utf8_lossy(FORMAT_MARKER).into_owned(),
    }
}
