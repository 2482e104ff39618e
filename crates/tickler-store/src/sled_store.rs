//! The durable store: sled 0.34, one tree (sled's default tree), the key layout of `keys`.
//!
//! Durability: sled's `flush` writes its log buffers and, on Linux, waits for them with
//! `sync_file_range` (other platforms: `fsync`). That survives a crash of the process. It does
//! not flush the drive's write cache or the file's metadata, so a power cut or kernel crash may
//! still lose the last flushed commits: sled 0.34's guarantee, and ours by default
//! ([`Durability::Process`]). [`Durability::Device`] adds an `fdatasync` after each flush (see
//! `durability.rs`), one per group commit.
//!
//! I/O errors: sled 0.34 latches the first I/O error (a full disk, say) and returns it from every
//! later call, for the life of the database handle, even once the disk has room again. So after
//! an I/O error this store closes the handle and opens the directory again (sled's recovery
//! restores everything that was flushed), at most once per `REOPEN_RETRY` and only once a probe
//! write in the directory succeeds. Writes applied to the old handle since its last successful
//! flush may be gone with it, so while there are any, only a flush reopens, and that flush fails:
//! its waiters are exactly those writes (group commit queues a waiter after its write), and no
//! commit is acknowledged that the new handle does not hold.

use std::io::Write as _;
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use tickler_core::{EntityId, OccurrenceId, Timestamp};

use crate::commit::{self, EntityLocks};
use crate::durability::{DeviceSync, Durability};
use crate::kv::{self, Format, Kv, Visit, Write};
use crate::log::Tamper;
use crate::migrate::{self, Migration};
use crate::{
    CommitBatch, CommitReceipt, Error, Record, Snapshot, Stamp, Store, StoreStats, StoredEvent,
    TimerEntry, keys, log, reads,
};

/// sled's page cache bound. Its default (1 GiB) is sized for a database server; a reminder
/// daemon's working set (heads, recent events, the near timer index) is far smaller. sled
/// counts on-disk bytes here, and its resident memory is several times this; 16 MiB kept a
/// 100,000-entity import at a 160 MiB peak (the import benchmark under `benches/`) where 64
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

/// After an I/O error, the least time between two attempts to reopen the database.
const REOPEN_RETRY: Duration = Duration::from_secs(1);

/// What a probe writes before a reopen: room for a few of sled's segments (512 KiB each).
const REOPEN_PROBE_LEN: usize = 4 * 1024 * 1024;
const REOPEN_PROBE_FILE: &str = "space-probe";

/// A [`Store`] in a sled database directory, owned exclusively by this process.
///
/// sled's mode stays `LowSpace` (its default): sled already uses several times the logical data
/// size on disk, and `HighThroughput` made no measurable difference to durable appends in
/// `benches/benches/store.rs`, where flushes dominate.
pub struct SledStore {
    /// `None` only while a reopen after an I/O error has not succeeded yet.
    db: RwLock<Option<sled::Db>>,
    dir: PathBuf,
    read_only: bool,
    locks: EntityLocks,
    /// An operation failed with an I/O error: sled has latched it (see the module docs).
    failed: AtomicBool,
    /// What that error said, for the refusals until the reopen.
    last_error: Mutex<Option<String>>,
    last_reopen: Mutex<Option<Instant>>,
    /// Writes that returned `Ok` (each caller then waits for a flush), and how many of them a
    /// flush has answered, successfully or not. More applied than answered means some callers
    /// still wait for a flush of the current handle, which a reopen could lose. Both only grow.
    writes_applied: AtomicU64,
    writes_answered: AtomicU64,
    /// `Some` for [`Durability::Device`]: what a flush syncs after sled's own flush.
    device: Option<DeviceSync>,
}

impl SledStore {
    /// Opens the store in `dir`, creating the directory and a new store if needed. Fails with
    /// [`Error::Locked`] while another process (or another `SledStore` in this process) has it
    /// open, after retrying for half a second.
    pub fn open(dir: &Path) -> Result<SledStore, Error> {
        SledStore::open_with(dir, Durability::Process)
    }

    /// Like [`SledStore::open`], with the durability its flushes give.
    pub fn open_with(dir: &Path, durability: Durability) -> Result<SledStore, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Io(format!(
                "creating the data directory {}: {e}",
                dir.display()
            ))
        })?;
        let mut store = SledStore::open_db(dir, false)?;
        store.with_db(|db| match kv::check_format(&**db)? {
            Format::Empty => {
                kv::write_format_marker(&**db)?;
                db.flush()?;
                Ok(())
            }
            Format::Current => Ok(()),
            Format::V1 => Err(Error::NeedsMigration {
                dir: dir.to_path_buf(),
            }),
        })?;
        if durability == Durability::Device {
            let device = DeviceSync::open(dir)?;
            device.sync()?;
            store.device = Some(device);
        }
        Ok(store)
    }

    pub fn durability(&self) -> Durability {
        match self.device {
            Some(_) => Durability::Device,
            None => Durability::Process,
        }
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
        if store.with_db(|db| kv::check_format(&**db))? == Format::V1 {
            return Err(Error::NeedsMigration {
                dir: dir.to_path_buf(),
            });
        }
        Ok(store)
    }

    /// Copies the record format v1 store in `source` into a new v2 store in `target` (which
    /// must not exist yet) and flushes it; `source` is only read. Fails with
    /// [`Error::UnknownFormat`] naming what `source` holds if it is not a v1 store (a v2 store
    /// needs no migration: the caller checks [`SledStore::needs_migration`] first).
    pub fn migrate_v1(source: &Path, target: &Path) -> Result<Migration, Error> {
        if target.exists() {
            return Err(Error::Io(format!(
                "the migration target {} already exists",
                target.display()
            )));
        }
        let old = SledStore::open_db(source, true)?;
        old.with_db(|db| {
            if kv::check_format(&**db)? != Format::V1 {
                return Err(Error::UnknownFormat {
                    found: "(not record format v1)".to_owned(),
                    expected: String::from_utf8_lossy(keys::FORMAT_MARKER_V1).into_owned(),
                });
            }
            let new = open_sled(target)?;
            let report = migrate::v1_to_v2(&**db, &*new)?;
            new.flush()?;
            Ok(report)
        })
    }

    /// Whether the store in `dir` is in record format v1 (and so must be migrated before
    /// anything else opens it).
    pub fn needs_migration(dir: &Path) -> Result<bool, Error> {
        match SledStore::open_read_only(dir) {
            Ok(_) => Ok(false),
            Err(Error::NeedsMigration { .. }) => Ok(true),
            Err(other) => Err(other),
        }
    }

    fn open_db(dir: &Path, read_only: bool) -> Result<SledStore, Error> {
        Ok(SledStore {
            db: RwLock::new(Some(open_sled(dir)?)),
            dir: dir.to_path_buf(),
            read_only,
            locks: EntityLocks::new(),
            failed: AtomicBool::new(false),
            last_error: Mutex::new(None),
            last_reopen: Mutex::new(None),
            writes_applied: AtomicU64::new(0),
            writes_answered: AtomicU64::new(0),
            device: None,
        })
    }

    /// Runs `f` on the database handle, first reopening it if an earlier I/O error closed it (and
    /// it is time to try), and noting an I/O error `f` runs into.
    ///
    /// A handle that met an I/O error is not used again, not even to read: a sled batch that
    /// failed half-way can leave part of itself in the live tree (sled restores batches whole
    /// only on recovery), and a reader would take that for a damaged log.
    fn with_db<T>(&self, f: impl FnOnce(&sled::Db) -> Result<T, Error>) -> Result<T, Error> {
        if self.failed.load(Ordering::Acquire) {
            // Only a flush learns of lost writes; see `try_reopen`.
            let _ = self.try_reopen(Reopener::Other);
            if self.failed.load(Ordering::Acquire) {
                let cause = self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_default();
                return Err(Error::Io(format!(
                    "the store in {} is closed after an I/O error ({cause}); it reopens once \
                     the disk takes writes again",
                    self.dir.display()
                )));
            }
        }
        let guard = self.read_db();
        let Some(db) = guard.as_ref() else {
            return Err(Error::Io(format!(
                "the store in {} is closed after an I/O error and could not be reopened yet",
                self.dir.display()
            )));
        };
        let result = f(db);
        if let Err(Error::Io(cause)) = &result {
            *self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(cause.clone());
            self.failed.store(true, Ordering::Release);
        }
        result
    }

    /// Like `with_db`, for a write: counts it, for a reopen (see `try_reopen`).
    fn write_db<T>(&self, f: impl FnOnce(&sled::Db) -> Result<T, Error>) -> Result<T, Error> {
        self.writable()?;
        // A write that returned `Ok` is waited on: its caller queues for the next flush. One that
        // failed was answered already (its outcome unknown), so it does not hold a reopen back.
        // It is counted while the handle is still held: a reopen (which waits for every holder)
        // then always sees it, even when a flush runs on another thread.
        self.with_db(|db| {
            let result = f(db);
            if result.is_ok() {
                self.writes_applied.fetch_add(1, Ordering::AcqRel);
            }
            result
        })
    }

    fn read_db(&self) -> RwLockReadGuard<'_, Option<sled::Db>> {
        // Nothing is left half-done under the lock: a reopen only swaps the handle.
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the handle whose I/O error sled latched and opens the directory again, if the
    /// last attempt was long enough ago and the directory takes a probe write. Only a flush
    /// reopens while writes are unflushed; it then learns that they may be lost (`Err`).
    fn try_reopen(&self, by: Reopener) -> Result<(), Error> {
        {
            let mut last = self
                .last_reopen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < REOPEN_RETRY) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        if let Err(err) = probe_write(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "the store stays closed: the data directory takes no writes yet");
            return Ok(());
        }
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if !self.failed.load(Ordering::Acquire) {
            return Ok(()); // another caller reopened it while this one waited
        }
        let applied = self.writes_applied.load(Ordering::Acquire);
        let unflushed = applied > self.writes_answered.load(Ordering::Acquire);
        if unflushed && by == Reopener::Other {
            return Ok(()); // the flush those writes wait for will reopen, and fail them
        }
        // The old handle must be gone before the directory can be opened (sled's file lock).
        drop(db.take());
        match open_sled(&self.dir) {
            Ok(reopened) => {
                *db = Some(reopened);
                // The flush doing this answers every earlier write, with the error below.
                self.writes_answered.fetch_max(applied, Ordering::AcqRel);
                self.failed.store(false, Ordering::Release);
                tracing::warn!(dir = %self.dir.display(), "store reopened after an I/O error");
            }
            Err(err) => {
                tracing::error!(dir = %self.dir.display(), error = %err, "reopening the store failed; will retry");
            }
        }
        if unflushed {
            return Err(Error::Io(
                "the store was reopened after an I/O error; writes since its last flush may be \
                 lost"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// Removes the snapshot files sled did not finish writing.
///
/// sled 0.34 writes its page-table snapshot to `snap.<lsn>.generating`, syncs it, and only then
/// renames it to `snap.<lsn>`; a crash in between leaves the `.generating` file, which its
/// recovery then takes for the newest snapshot and refuses as corrupt ("Read corrupted data at
/// file offset None": spacejam/sled#1527, #1533), so the store would never open again. Such a
/// file is never a finished snapshot: the previous snapshot and the log still hold everything,
/// and sled recovers from them.
fn remove_unfinished_snapshots(dir: &Path) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Io(format!("reading {}: {e}", dir.display()))),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %entry.path().display(), "removing a snapshot sled did not finish writing (a crash during its write)");
            std::fs::remove_file(entry.path())
                .map_err(|e| Error::Io(format!("removing {}: {e}", entry.path().display())))?;
        }
    }
    Ok(())
}

/// Who asks for a reopen: see `SledStore::try_reopen`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reopener {
    Flush,
    Other,
}

/// Writes and removes a file of `REOPEN_PROBE_LEN` bytes in `dir`: whether a reopened
/// database could write its next segments.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(REOPEN_PROBE_FILE);
    let written = std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&vec![0; REOPEN_PROBE_LEN]));
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// Opens sled, retrying for a moment while the directory is locked.
///
/// sled's I/O threads release the data file a moment after the last handle is dropped, so
/// reopening within one process (tests; an engine restarted in place; a reopen after an I/O
/// error) can briefly see its own lock; so can a daemon restarted while the old process is still
/// exiting. A bounded retry covers these; a store really held elsewhere is reported once the
/// retries run out.
fn open_sled(dir: &Path) -> Result<sled::Db, Error> {
    remove_unfinished_snapshots(dir)?;
    let mut attempt = 1;
    loop {
        // sled 0.34 panics on some damaged files (an index out of bounds reading a truncated
        // segment) instead of returning an error: caught, and reported as damage to its file.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_CAPACITY_BYTES)
                .flush_every_ms(Some(BACKGROUND_FLUSH_EVERY_MS))
                .open()
        }))
        .map_err(|panic| Error::Damaged {
            file: dir.join("db"),
            reason: panic_text(&panic),
        })
        .and_then(|opened| opened.map_err(|e| open_error(dir, e)));
        match opened {
            Err(Error::Locked { .. }) if attempt < OPEN_LOCKED_ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(OPEN_LOCKED_RETRY_DELAY);
            }
            other => return other,
        }
    }
}

impl SledStore {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Overwrites the stored bytes of one event (inside its log entry), bypassing every check:
    /// corruption tests only.
    #[doc(hidden)]
    pub fn overwrite_event_for_tests(
        &self,
        entity: &EntityId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let mut overwrite = |stored: &mut Vec<u8>| *stored = bytes.to_vec();
        self.tamper_for_tests(entity, seq, Tamper::Overwrite(&mut overwrite))
    }

    /// Deletes one event, bypassing every check: audit tests only (it makes a sequence gap).
    #[doc(hidden)]
    pub fn delete_event_for_tests(&self, entity: &EntityId, seq: u64) -> Result<(), Error> {
        self.tamper_for_tests(entity, seq, Tamper::Delete)
    }

    fn tamper_for_tests(&self, entity: &EntityId, seq: u64, how: Tamper<'_>) -> Result<(), Error> {
        self.write_db(|db| {
            let writes = log::tamper(&**db, entity, seq, how)?.ok_or_else(|| {
                Error::Io(format!("no event {seq} of entity {entity} to tamper with"))
            })?;
            db.apply(writes)
        })
    }

    /// Overwrites a past event's record, bypassing write-once: audit tests only.
    #[doc(hidden)]
    pub fn overwrite_past_event_for_tests(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
        record: &Record,
    ) -> Result<(), Error> {
        self.write_db(|db| {
            db.insert(keys::past_event_key(entity, occurrence), record.encode())?;
            Ok(())
        })
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
        self.with_db(|db| {
            let mut copied = 0u64;
            let mut batch = sled::Batch::default();
            let mut pending = 0;
            for entry in db.iter() {
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
        })
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
fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "sled stopped reading it".to_owned())
}

fn open_error(dir: &Path, error: sled::Error) -> Error {
    match &error {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => Error::Locked {
            dir: dir.to_path_buf(),
        },
        sled::Error::Corruption { .. } => Error::Damaged {
            file: dir.join("db"),
            reason: error.to_string(),
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

    fn last_key(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let end = kv::prefix_end(prefix);
        match self
            .range::<&[u8], _>((Bound::Included(prefix), end.as_ref().map(Vec::as_slice)))
            .next_back()
        {
            Some(entry) => visit(&entry?.0),
            None => Ok(()),
        }
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
        self.write_db(|db| commit::commit(&**db, &self.locks, batch))
    }

    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        let count = batches.len();
        match self.write_db(|db| commit::commit_group(&**db, &self.locks, batches)) {
            Ok(results) => results,
            Err(err) => vec![Err(err); count],
        }
    }

    fn commit_group_stamped(
        &self,
        batches: Vec<CommitBatch>,
        stamp: &mut Stamp<'_>,
    ) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
        self.write_db(|db| commit::commit_group_stamped(&**db, &self.locks, batches, stamp))
    }

    /// Waits until every earlier commit is in sled's log on disk: survives a process crash, not
    /// necessarily a power cut (see the module documentation). A read-only store has nothing to
    /// flush.
    fn flush(&self) -> Result<(), Error> {
        if self.read_only {
            return Ok(());
        }
        // This flush answers the writes applied before it began, whatever its outcome.
        let covered = self.writes_applied.load(Ordering::Acquire);
        let result = if self.failed.load(Ordering::Acquire) {
            self.try_reopen(Reopener::Flush)
        } else {
            Ok(())
        }
        .and_then(|()| self.with_db(|db| Ok(db.flush()?)))
        .and_then(|_| match &self.device {
            Some(device) => device.sync(),
            None => Ok(()),
        });
        self.writes_answered.fetch_max(covered, Ordering::AcqRel);
        result.map(drop)
    }

    fn last_seq(&self, entity: &EntityId) -> Result<u64, Error> {
        self.with_db(|db| log::last_seq(&**db, entity))
    }

    fn read_events(&self, entity: &EntityId, after_seq: u64) -> Result<Vec<StoredEvent>, Error> {
        self.with_db(|db| log::read_events(&**db, entity, after_seq))
    }

    fn snapshot(&self, entity: &EntityId) -> Result<Option<Snapshot>, Error> {
        self.with_db(|db| reads::snapshot(&**db, entity))
    }

    fn past_events(&self, entity: &EntityId) -> Result<Vec<(OccurrenceId, Record)>, Error> {
        self.with_db(|db| reads::past_events(&**db, entity))
    }

    fn past_event(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
    ) -> Result<Option<Record>, Error> {
        self.with_db(|db| reads::past_event(&**db, entity, occurrence))
    }

    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, Error> {
        self.with_db(|db| reads::timers_after(&**db, after, limit))
    }

    fn timers_from(&self, due: Timestamp, limit: usize) -> Result<Vec<TimerEntry>, Error> {
        self.with_db(|db| reads::timers_from(&**db, due, limit))
    }

    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        self.with_db(|db| reads::index_members(&**db, index, after, limit))
    }

    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error> {
        self.with_db(|db| log::entities_after(&**db, after, limit))
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.with_db(|db| reads::meta(&**db, name))
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.write_db(|db| reads::set_meta(&**db, name, value))
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        self.with_db(|db| {
            let mut stats = reads::stats(&**db)?;
            stats.size_on_disk = db.size_on_disk()?;
            Ok(stats)
        })
    }
}
