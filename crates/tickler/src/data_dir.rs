//! The data directory has one owner at a time. `serve`, `compact`, `audit` and `replay` take an
//! exclusive lock on `<data dir>/tickler.lock` (outside `store/`) for their whole run, so no
//! two of them ever work on one store, and `compact` keeps it until its swap is done. Before
//! the store is opened, what an interrupted compaction left is finished or discarded, and
//! `serve` creates a store only where there is no sign of an earlier one.
//!
//! A compaction copies `store` into `store.compacting`, checks the copy, renames `store` to
//! `store.before-compaction`, the copy to `store`, and deletes the old one. Killed at any point,
//! the directory is in one of these states, each with one safe way on:
//!
//! | left behind | meaning | what opening does |
//! | --- | --- | --- |
//! | `store`, `store.compacting` | the copy was not swapped in | delete the copy |
//! | `store.before-compaction`, `store.compacting` | killed between the renames; the copy was checked | rename the copy to `store`, delete the old |
//! | `store`, `store.before-compaction` | killed before deleting the old | delete the old |
//! | `store.before-compaction` only | the old was never replaced | rename it back to `store` |

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::private_fs::{self, TrustError};

const LOCK_FILE: &str = "tickler.lock";
pub const STORE: &str = "store";
pub const COMPACTING: &str = "store.compacting";
pub const BEFORE_COMPACTION: &str = "store.before-compaction";

#[derive(Debug, Error)]
pub enum DataDirError {
    #[error(
        "the data directory {path} is in use by another tickler process (a daemon, or compact, \
         audit or replay); stop it or wait for it to finish"
    )]
    InUse { path: PathBuf },
    #[error("refusing the data directory: {0}")]
    Untrusted(#[from] TrustError),
    #[error("{path} holds no tickler store ({STORE}/ is missing)")]
    NoStore { path: PathBuf },
    #[error(
        "{path} holds no store but {found} does: a store was here; refusing to start on a new \
         empty one. Restore {STORE}/ (or move the data directory away to start afresh)"
    )]
    StoreMissing { path: PathBuf, found: String },
    #[error(
        "{path} holds {STORE}/, {COMPACTING}/ and {BEFORE_COMPACTION}/ at once, which no \
         compaction leaves: check them by hand and keep one as {STORE}/"
    )]
    Inconsistent { path: PathBuf },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A locked data directory; the lock is released when this is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Locks an existing data directory (the offline tools).
    pub fn lock(path: &Path) -> Result<DataDir, DataDirError> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| DataDirError::Io {
            what: "open the data directory",
            path: path.to_owned(),
            source,
        })?;
        private_fs::check_owned(path, &meta, "directory")?;
        Self::take_lock(path)
    }

    /// Creates the data directory if it is absent (private), then locks it (`serve`).
    pub fn create_and_lock(path: &Path) -> Result<DataDir, DataDirError> {
        private_fs::private_dir(path, 0o700, None)?;
        Self::take_lock(path)
    }

    fn take_lock(path: &Path) -> Result<DataDir, DataDirError> {
        let lock_path = path.join(LOCK_FILE);
        let io = |what, source| DataDirError::Io {
            what,
            path: lock_path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(|e| io("open the lock file", e))?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EWOULDBLOCK) => DataDirError::InUse {
                    path: path.to_owned(),
                },
                _ => io("lock", err),
            });
        }
        Ok(DataDir {
            path: path.to_owned(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The store directory, after finishing or discarding an interrupted compaction. Returns
    /// what was done about one, for the log.
    pub fn store(&self) -> Result<(PathBuf, Option<String>), DataDirError> {
        let recovered = self.recover_compaction()?;
        Ok((self.join(STORE), recovered))
    }

    /// The store directory for `serve`: as `store`, and when there is none, only in a data
    /// directory with no sign of an earlier store (its outboxes and lock file aside).
    pub fn store_to_serve(&self) -> Result<(PathBuf, Option<String>), DataDirError> {
        let (store, recovered) = self.store()?;
        if !store.exists() {
            for sign in [COMPACTING, BEFORE_COMPACTION] {
                if self.join(sign).exists() {
                    return Err(DataDirError::StoreMissing {
                        path: self.path.clone(),
                        found: self.join(sign).display().to_string(),
                    });
                }
            }
        }
        Ok((store, recovered))
    }

    /// The store directory for an offline tool: it must exist.
    pub fn existing_store(&self) -> Result<(PathBuf, Option<String>), DataDirError> {
        let (store, recovered) = self.store()?;
        if !store.exists() {
            return Err(DataDirError::NoStore {
                path: self.path.clone(),
            });
        }
        Ok((store, recovered))
    }

    fn recover_compaction(&self) -> Result<Option<String>, DataDirError> {
        let (store, copy, old) = (
            self.join(STORE),
            self.join(COMPACTING),
            self.join(BEFORE_COMPACTION),
        );
        let io = |what, path: &Path| {
            let path = path.to_owned();
            move |source| DataDirError::Io { what, path, source }
        };
        let said = |text: &str| Ok(Some(text.to_owned()));
        match (store.exists(), copy.exists(), old.exists()) {
            (true, true, false) => {
                std::fs::remove_dir_all(&copy).map_err(io("remove", &copy))?;
                said("an interrupted compaction had not swapped its copy in; the copy was removed")
            }
            (false, true, true) => {
                std::fs::rename(&copy, &store).map_err(io("rename into place", &copy))?;
                sync_dir(&self.path);
                std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
                said("an interrupted compaction was finished: its checked copy is the store now")
            }
            (true, false, true) => {
                std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
                said("an interrupted compaction had swapped; the old store was removed")
            }
            (false, false, true) => {
                std::fs::rename(&old, &store).map_err(io("rename back", &old))?;
                sync_dir(&self.path);
                said("an interrupted compaction had moved the store aside; it was put back")
            }
            (true, true, true) => Err(DataDirError::Inconsistent {
                path: self.path.clone(),
            }),
            _ => Ok(None),
        }
    }
}

/// Makes the renames in `dir` durable (best effort: the next open repeats what is missing).
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}
