//! The in-memory store: the same keys, records and commit logic as the sled store over a
//! `BTreeMap`, for fast tests. It also injects faults for reliability tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tickler_core::{EntityId, OccurrenceId, Timestamp};

use crate::commit::{self, EntityLocks};
use crate::kv::{self, Kv, Visit, Write};
use crate::log::Tamper;
use crate::{
    CommitBatch, CommitReceipt, Error, Record, Snapshot, Stamp, Store, StoreStats, StoredEvent,
    TimerEntry, log, reads,
};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A [`Store`] in memory. `flush` does nothing (there is nothing to make durable) unless a
/// failure was injected.
pub struct MemoryStore {
    map: Mutex<Map>,
    locks: EntityLocks,
    faults: Mutex<Faults>,
}

#[derive(Default)]
struct Faults {
    commits_to_fail: usize,
    flushes_to_fail: usize,
    /// Every operation fails, as on a full disk under sled (which then fails reads too).
    unavailable: bool,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        let store = MemoryStore {
            map: Mutex::new(Map::new()),
            locks: EntityLocks::new(),
            faults: Mutex::new(Faults::default()),
        };
        // A fresh map holds nothing that could refuse the marker.
        kv::write_format_marker(&store.map).expect("writing to an empty map cannot fail");
        store
    }

    /// Makes the next `n` commits fail with [`Error::Io`] without applying anything, as a disk
    /// failure would.
    pub fn fail_next_commits(&self, n: usize) {
        self.faults().commits_to_fail = n;
    }

    /// Makes the next `n` flushes fail with [`Error::Io`].
    pub fn fail_next_flushes(&self, n: usize) {
        self.faults().flushes_to_fail = n;
    }

    /// While `true`, every operation fails with [`Error::Io`] and changes nothing, as a store on
    /// a full disk does; `false` brings it back with what it held.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.faults().unavailable = unavailable;
    }

    fn available(&self) -> Result<(), Error> {
        if self.faults().unavailable {
            return Err(Error::Io(
                "injected: no space left on device (os error 28)".to_owned(),
            ));
        }
        Ok(())
    }

    /// Lets `mutate` change the stored bytes of one event, bypassing every check, for
    /// corruption tests. Returns `false` if there is no such event.
    pub fn corrupt_event(
        &self,
        entity: &EntityId,
        seq: u64,
        mutate: impl FnOnce(&mut Vec<u8>),
    ) -> bool {
        let mut mutate = Some(mutate);
        let mut overwrite = |stored: &mut Vec<u8>| {
            if let Some(mutate) = mutate.take() {
                mutate(stored);
            }
        };
        match log::tamper(&self.map, entity, seq, Tamper::Overwrite(&mut overwrite)) {
            Ok(Some(writes)) => self.map.apply(writes).is_ok(),
            _ => false,
        }
    }

    /// Removes one event from its log entry, bypassing every check: gap tests only. Returns
    /// `false` if there is no such event.
    pub fn delete_event(&self, entity: &EntityId, seq: u64) -> bool {
        match log::tamper(&self.map, entity, seq, Tamper::Delete) {
            Ok(Some(writes)) => self.map.apply(writes).is_ok(),
            _ => false,
        }
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    /// Consumes one injected failure from the counter `pick` selects, if any is left.
    fn injected(&self, what: &str, pick: fn(&mut Faults) -> &mut usize) -> Result<(), Error> {
        let mut faults = self.faults();
        let left = pick(&mut faults);
        if *left == 0 {
            return Ok(());
        }
        *left -= 1;
        Err(Error::Io(format!("injected {what} failure")))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

/// The map is only changed by whole batches inside one critical section, so a panic elsewhere
/// cannot leave it half-written: recovering from poisoning is sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Kv for Mutex<Map> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(lock(self).get(key).cloned())
    }

    fn scan(&self, prefix: &[u8], start: Bound<&[u8]>, visit: &mut Visit<'_>) -> Result<(), Error> {
        let map = lock(self);
        for (key, value) in map.range::<[u8], _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) || visit(key, value)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    fn last_key(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let end = kv::prefix_end(prefix);
        let map = lock(self);
        match map
            .range::<[u8], _>((Bound::Included(prefix), end.as_ref().map(Vec::as_slice)))
            .next_back()
        {
            Some((key, _)) => visit(key),
            None => Ok(()),
        }
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), Error> {
        let mut map = lock(self);
        for (key, value) in writes {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Ok(())
    }
}

impl Store for MemoryStore {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        self.available()?;
        self.injected("commit", |faults| &mut faults.commits_to_fail)?;
        commit::commit(&self.map, &self.locks, batch)
    }

    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        let count = batches.len();
        let applied = self
            .available()
            .and_then(|()| self.injected("commit", |faults| &mut faults.commits_to_fail))
            .and_then(|()| commit::commit_group(&self.map, &self.locks, batches));
        match applied {
            Ok(results) => results,
            Err(err) => vec![Err(err); count],
        }
    }

    fn commit_group_stamped(
        &self,
        batches: Vec<CommitBatch>,
        stamp: &mut Stamp<'_>,
    ) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
        self.available()?;
        self.injected("commit", |faults| &mut faults.commits_to_fail)?;
        commit::commit_group_stamped(&self.map, &self.locks, batches, stamp)
    }

    fn flush(&self) -> Result<(), Error> {
        self.available()?;
        self.injected("flush", |faults| &mut faults.flushes_to_fail)
    }

    fn last_seq(&self, entity: &EntityId) -> Result<u64, Error> {
        self.available()?;
        log::last_seq(&self.map, entity)
    }

    fn read_events(&self, entity: &EntityId, after_seq: u64) -> Result<Vec<StoredEvent>, Error> {
        self.available()?;
        log::read_events(&self.map, entity, after_seq)
    }

    fn snapshot(&self, entity: &EntityId) -> Result<Option<Snapshot>, Error> {
        self.available()?;
        reads::snapshot(&self.map, entity)
    }

    fn past_events(&self, entity: &EntityId) -> Result<Vec<(OccurrenceId, Record)>, Error> {
        self.available()?;
        reads::past_events(&self.map, entity)
    }

    fn past_event(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
    ) -> Result<Option<Record>, Error> {
        self.available()?;
        reads::past_event(&self.map, entity, occurrence)
    }

    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, Error> {
        self.available()?;
        reads::timers_after(&self.map, after, limit)
    }

    fn timers_from(&self, due: Timestamp, limit: usize) -> Result<Vec<TimerEntry>, Error> {
        self.available()?;
        reads::timers_from(&self.map, due, limit)
    }

    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        self.available()?;
        reads::index_members(&self.map, index, after, limit)
    }

    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error> {
        self.available()?;
        log::entities_after(&self.map, after, limit)
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.available()?;
        reads::meta(&self.map, name)
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.available()?;
        reads::set_meta(&self.map, name, value)
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        self.available()?;
        reads::stats(&self.map)
    }
}

#[cfg(test)]
mod tests {
    use tickler_core::Timestamp;

    use super::*;
    use crate::keys;

    fn entity() -> EntityId {
        EntityId::parse("due/x").unwrap()
    }

    fn append(store: &MemoryStore, expected_seq: u64, count: usize) {
        let record = Record {
            format_version: 1,
            event_type: 1,
            recorded_at: Timestamp::EPOCH,
            payload: b"e".to_vec(),
        };
        store
            .commit(CommitBatch {
                entity: Some(entity()),
                expected_seq,
                events: vec![record; count],
                ..CommitBatch::default()
            })
            .unwrap();
    }

    #[test]
    fn a_missing_event_in_the_middle_is_reported_as_corrupt() {
        let store = MemoryStore::new();
        append(&store, 0, 3);
        assert!(store.delete_event(&entity(), 2));
        let err = store.read_events(&entity(), 0).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { seq: 2, reason, .. } if reason.contains("next stored event is 3")),
            "{err}"
        );
        assert_eq!(store.read_events(&entity(), 2).unwrap().len(), 1);
    }

    #[test]
    fn a_log_entry_holding_more_events_than_its_key_allows_is_reported_as_corrupt() {
        let store = MemoryStore::new();
        append(&store, 0, 1);
        append(&store, 1, 1);
        // Entry 2 claims two events: 1 and 2, overlapping entry 1.
        let two = keys::log_key(&entity(), 2);
        let record = Record::decode(&lock(&store.map)[&keys::log_key(&entity(), 1)][2..])
            .unwrap()
            .encode();
        let value = log::encode_entry([record.as_slice(), record.as_slice()].into_iter());
        lock(&store.map).insert(two, value);
        let err = store.read_events(&entity(), 0).unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { seq: 2, reason, .. } if reason.contains("stored twice")),
            "{err}"
        );
    }

    #[test]
    fn injected_commit_failures_apply_nothing_and_run_out() {
        let store = MemoryStore::new();
        store.fail_next_commits(1);
        let err = store
            .commit(CommitBatch {
                entity: Some(entity()),
                events: vec![Record {
                    format_version: 1,
                    event_type: 1,
                    recorded_at: Timestamp::EPOCH,
                    payload: Vec::new(),
                }],
                ..CommitBatch::default()
            })
            .unwrap_err();
        assert_eq!(err, Error::Io("injected commit failure".to_owned()));
        assert_eq!(store.last_seq(&entity()).unwrap(), 0);
        append(&store, 0, 1);
        assert_eq!(store.last_seq(&entity()).unwrap(), 1);
    }

    #[test]
    fn injected_flush_failures_run_out() {
        let store = MemoryStore::new();
        store.fail_next_flushes(2);
        assert!(store.flush().is_err());
        assert!(store.flush().is_err());
        assert!(store.flush().is_ok());
    }

    #[test]
    fn a_store_holding_data_without_a_marker_is_refused() {
        let map = Mutex::new(Map::new());
        assert_eq!(kv::check_format(&map), Ok(kv::Format::Empty));
        map.apply(vec![(b"Hxx".to_vec(), Some(Vec::new()))])
            .unwrap();
        let err = kv::check_format(&map).unwrap_err();
        assert!(err.to_string().contains("no format marker"), "{err}");
        map.apply(vec![(
            keys::meta_key("format"),
            Some(b"tickler-store-v9".to_vec()),
        )])
        .unwrap();
        let err = kv::check_format(&map).unwrap_err();
        assert!(err.to_string().contains("\"tickler-store-v9\""), "{err}");
    }
}
