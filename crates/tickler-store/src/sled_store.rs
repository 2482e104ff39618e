//! The durable store: sled 0.34, one tree (sled's default tree), the key layout of `keys`.
//!
//! Durability: sled's `flush` writes its log buffers and, on Linux, waits for them with
//! `sync_file_range` (other platforms: `fsync`). That survives a crash of the process. It does
//! not flush the drive's write cache or the file's metadata, so a power cut or kernel crash may
//! still lose the last flushed commits; this is sled 0.34's guarantee, and ours.

use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tickler_core::{EntityId, OccurrenceId};

use crate::commit::{self, EntityLocks};
use crate::kv::{self, Format, Kv, Visit, Write};
use crate::{
    CommitBatch, CommitReceipt, Error, Record, Snapshot, Store, StoreStats, StoredEvent,
    TimerEntry, keys, reads,
};

/// sled's page cache bound. Its default (1 GiB) is sized for a database server; a reminder
/// daemon's working set (heads, recent events, the near timer index) is far smaller. sled
/// counts on-disk bytes here, and its resident memory is several times this; 16 MiB kept a
/// 100,000-enrolment import at a 160 MiB peak (`benches/src/bin/learner_import.rs`) where 64
/// MiB grew about twice as fast, at the same import rate.
const CACHE_CAPACITY_BYTES: u64 = 16 * 1024 * 1024;

/// sled's background flusher period. Our durability promise rests on explicit flushes
/// (`GroupCommit`); the background flush only bounds how much an unacknowledged write can lose,
/// and keeping sled's default (500 ms) keeps that bound small at no cost to acknowledged writes.
const BACKGROUND_FLUSH_EVERY_MS: u64 = 500;

/// How often, and how far apart, opening retries a locked directory (see `open_db`): half a
/// second in all.
const OPEN_LOCKED_ATTEMPTS: u32 = 20;
const OPEN_LOCKED_RETRY_DELAY: Duration = Duration::from_millis(25);

/// The file sled keeps its log in, inside the data directory: its presence says a database
/// exists there.
const SLED_DB_FILE: &str = "db";

/// A [`Store`] in a sled database directory, owned exclusively by this process.
///
/// sled's mode stays `LowSpace` (its default): sled already uses several times the logical data
/// size on disk, and `HighThroughput` made no measurable difference to durable appends in
/// `benches/benches/store.rs`, where flushes dominate.
pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
    read_only: bool,
    locks: EntityLocks,
}

impl SledStore {
    /// Opens the store in `dir`, creating the directory and a new store if needed. Fails with
    /// [`Error::Locked`] while another process (or another `SledStore` in this process) has it
    /// open, after retrying for half a second.
    pub fn open(dir: &Path) -> Result<SledStore, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Io(format!(
                "creating the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let store = SledStore::open_db(dir, false)?;
        if kv::check_format(&*store.db)? == Format::Empty {
            kv::write_format_marker(&*store.db)?;
            store.db.flush()?;
        }
        Ok(store)
    }

    /// Opens an existing store for reading only (offline tools). sled 0.34 has no read-only
    /// mode, so the database is opened as usual (sled may write its own recovery metadata, and
    /// takes the same exclusive lock) and every write method of this store returns
    /// [`Error::ReadOnly`]. Never creates a directory or a database.
    pub fn open_read_only(dir: &Path) -> Result<SledStore, Error> {
        if !dir.join(SLED_DB_FILE).is_file() {
            return Err(Error::NotFound {
                dir: dir.to_path_buf(),
            });
        }
        let store = SledStore::open_db(dir, true)?;
        kv::check_format(&*store.db)?;
        Ok(store)
    }

    /// Opens sled, retrying for a moment while the directory is locked.
    ///
    /// sled's I/O threads release the data file a moment after the last handle is dropped, so
    /// reopening within one process (tests; an engine restarted in place) can briefly see its
    /// own lock; so can a daemon restarted while the old process is still exiting. A bounded
    /// retry covers both; a store really held elsewhere is reported once the retries run out.
    fn open_db(dir: &Path, read_only: bool) -> Result<SledStore, Error> {
        let mut attempt = 1;
        let db = loop {
            let opened = sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_CAPACITY_BYTES)
                .flush_every_ms(Some(BACKGROUND_FLUSH_EVERY_MS))
                .open()
                .map_err(|e| open_error(dir, e));
            match opened {
                Err(Error::Locked { .. }) if attempt < OPEN_LOCKED_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(OPEN_LOCKED_RETRY_DELAY);
                }
                other => break other?,
            }
        };
        Ok(SledStore {
            db,
            dir: dir.to_path_buf(),
            read_only,
            locks: EntityLocks::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Overwrites the stored bytes of one event, bypassing every check: corruption tests only.
    #[doc(hidden)]
    pub fn overwrite_event_for_tests(
        &self,
        entity: &EntityId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.writable()?;
        self.db.insert(keys::event_key(entity, seq), bytes)?;
        Ok(())
    }

    /// Deletes one event, bypassing every check: audit tests only (it makes a sequence gap).
    #[doc(hidden)]
    pub fn delete_event_for_tests(&self, entity: &EntityId, seq: u64) -> Result<(), Error> {
        self.writable()?;
        self.db.remove(keys::event_key(entity, seq))?;
        Ok(())
    }

    /// Overwrites a past event's record, bypassing write-once: audit tests only.
    #[doc(hidden)]
    pub fn overwrite_past_event_for_tests(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
        record: &Record,
    ) -> Result<(), Error> {
        self.writable()?;
        self.db
            .insert(keys::past_event_key(entity, occurrence), record.encode())?;
        Ok(())
    }

    /// Copies every entry into a new store in `target` (which must not exist yet) and flushes
    /// it: the copy holds the same data without the space sled accumulates over time. Returns
    /// the number of entries copied.
    pub fn copy_into(&self, target: &Path) -> Result<u64, Error> {
        /// Entries per sled batch while copying.
        const COPY_BATCH_LEN: usize = 10_000;
        if target.exists() {
            return Err(Error::Io(format!(
                "the compaction target {} already exists",
                target.display()
            )));
        }
        let copy = sled::Config::new()
            .path(target)
            .cache_capacity(CACHE_CAPACITY_BYTES)
            .open()
            .map_err(|e| open_error(target, e))?;
        let mut copied = 0u64;
        let mut batch = sled::Batch::default();
        let mut pending = 0;
        for entry in self.db.iter() {
            let (key, value) = entry?;
            batch.insert(key, value);
            pending += 1;
            if pending == COPY_BATCH_LEN {
                copy.apply_batch(std::mem::take(&mut batch))?;
                copied += pending as u64;
                pending = 0;
            }
        }
        copy.apply_batch(batch)?;
        copied += pending as u64;
        copy.flush()?;
        Ok(copied)
    }

    fn writable(&self) -> Result<(), Error> {
        if self.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }
}

/// sled 0.34 reports a held lock as an `Io` error of kind `Other` whose text starts "could not
/// acquire lock on" (see its `Config::try_lock`; the OS error inside is `WouldBlock`). Matching
/// the text is brittle only across sled versions, and sled is pinned to `=0.34.7`.
fn open_error(dir: &Path, error: sled::Error) -> Error {
    match &error {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => Error::Locked {
            dir: dir.to_path_buf(),
        },
        _ => Error::Io(format!("opening {}: {error}", dir.display())),
    }
}

impl Kv for sled::Tree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(sled::Tree::get(self, key)?.map(|value| value.to_vec()))
    }

    fn scan(&self, prefix: &[u8], start: Bound<&[u8]>, visit: &mut Visit<'_>) -> Result<(), Error> {
        for item in self.range::<&[u8], _>((start, Bound::Unbounded)) {
            let (key, value) = item?;
            if !key.starts_with(prefix) {
                break;
            }
            if let ControlFlow::Break(()) = visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, writes: Vec<Write>) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (key, value) in writes {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        // Atomic in sled: readers see all of it or none, and recovery restores all or none.
        self.apply_batch(batch)?;
        Ok(())
    }
}

impl Store for SledStore {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        self.writable()?;
        commit::commit(&*self.db, &self.locks, batch)
    }

    /// Waits until every earlier commit is in sled's log on disk: survives a process crash, not
    /// necessarily a power cut (see the module documentation). A read-only store has nothing to
    /// flush.
    fn flush(&self) -> Result<(), Error> {
        if !self.read_only {
            self.db.flush()?;
        }
        Ok(())
    }

    fn last_seq(&self, entity: &EntityId) -> Result<u64, Error> {
        reads::last_seq(&*self.db, entity)
    }

    fn read_events(&self, entity: &EntityId, after_seq: u64) -> Result<Vec<StoredEvent>, Error> {
        reads::read_events(&*self.db, entity, after_seq)
    }

    fn snapshot(&self, entity: &EntityId) -> Result<Option<Snapshot>, Error> {
        reads::snapshot(&*self.db, entity)
    }

    fn past_events(&self, entity: &EntityId) -> Result<Vec<(OccurrenceId, Record)>, Error> {
        reads::past_events(&*self.db, entity)
    }

    fn past_event(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
    ) -> Result<Option<Record>, Error> {
        reads::past_event(&*self.db, entity, occurrence)
    }

    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, Error> {
        reads::timers_after(&*self.db, after, limit)
    }

    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        reads::index_members(&*self.db, index, after, limit)
    }

    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error> {
        reads::entities_after(&*self.db, after, limit)
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        reads::meta(&*self.db, name)
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.writable()?;
        reads::set_meta(&*self.db, name, value)
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        let mut stats = reads::stats(&*self.db)?;
        stats.size_on_disk = self.db.size_on_disk()?;
        Ok(stats)
    }
}
