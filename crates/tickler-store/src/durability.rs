//! How far a flush of the sled store makes a commit durable.
//!
//! sled 0.34's flush writes its log buffers and, on Linux, waits for them with
//! `sync_file_range`: the data is in the kernel's hands (it survives `kill -9`), but neither the
//! drive's write cache nor the file's metadata is flushed, and values above sled's blob
//! threshold (a quarter of a 512 KiB segment) go to separate files it never syncs. `Device` adds
//! what a power cut needs: `fdatasync` of the log file, and `fsync` of any blob file written
//! since the last sync (and of their directory).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::Error;

/// What an acknowledged (flushed) commit survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the process (`kill -9`): sled's own flush.
    #[default]
    Process,
    /// A power cut or kernel crash too, on a drive that honours cache flushes: sled's flush,
    /// then `fdatasync`. Costs one more sync per group commit.
    Device,
}

impl Durability {
    pub fn name(self) -> &'static str {
        match self {
            Durability::Process => "process",
            Durability::Device => "device",
        }
    }
}

/// Blob files modified this long before the previous sync are synced again: file times are
/// coarse, and a second sync of an unchanged file costs little.
const BLOB_MTIME_SLACK: Duration = Duration::from_secs(2);

/// The files a `Device` flush syncs after sled's own flush.
pub(crate) struct DeviceSync {
    log: File,
    blobs: PathBuf,
    last_sync: Mutex<SystemTime>,
}

impl DeviceSync {
    /// For the sled database in `dir` (its log file is `dir/db`, blobs in `dir/blobs`).
    pub(crate) fn open(dir: &Path) -> Result<DeviceSync, Error> {
        let path = dir.join("db");
        let log = File::open(&path)
            .map_err(|e| Error::Io(format!("opening {} to sync it: {e}", path.display())))?;
        Ok(DeviceSync {
            log,
            blobs: dir.join("blobs"),
            last_sync: Mutex::new(SystemTime::UNIX_EPOCH),
        })
    }

    /// Makes what sled flushed survive a power cut.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        let started = SystemTime::now();
        self.log
            .sync_data()
            .map_err(|e| Error::Io(format!("fdatasync of the store's log: {e}")))?;
        let mut last_sync = self
            .last_sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = last_sync
            .checked_sub(BLOB_MTIME_SLACK)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.sync_blobs_modified_since(since)
            .map_err(|e| Error::Io(format!("syncing {}: {e}", self.blobs.display())))?;
        *last_sync = started;
        Ok(())
    }

    fn sync_blobs_modified_since(&self, since: SystemTime) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut synced = false;
        for entry in entries {
            let entry = entry?;
            if entry.metadata()?.modified()? >= since {
                File::open(entry.path())?.sync_all()?;
                synced = true;
            }
        }
        if synced {
            File::open(&self.blobs)?.sync_all()?;
        }
        Ok(())
    }
}
