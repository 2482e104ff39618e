//! `tickler compact`: rewrite the store offline into a fresh sled database holding the same
//! entries, then swap it in. sled keeps old log segments around; a copy does not.

use std::path::Path;

use anyhow::Context;
use tickler::SledStore;
use tickler::data_dir::{BEFORE_COMPACTION, COMPACTING, DataDir, STORE, sync_dir};

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    // The data directory stays locked until the swap is done: no daemon or other tool can open
    // the store while it is copied, checked and swapped.
    let (locked, store) = super::open_offline(data_dir)?;
    let store_dir = locked.join(STORE);
    let copy_dir = locked.join(COMPACTING);
    let old_dir = locked.join(BEFORE_COMPACTION);
    let before = dir_size(&store_dir)?;
    let copied = store.copy_into(&copy_dir)?;
    drop(store);
    // Verify the copy opens and reads as a tickler store before swapping it in: from here on,
    // an interrupted compaction is finished by whoever opens the data directory next.
    drop(SledStore::open_read_only(&copy_dir).context("the compacted copy does not open")?);
    failpoint("compact-before-swap");
    swap_in_copy(&locked)?;
    std::fs::remove_dir_all(&old_dir)?;
    let after = dir_size(&store_dir)?;
    if json {
        let summary = serde_json::json!({
            "entries": copied,
            "bytes_before": before,
            "bytes_after": after,
        });
        out!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    out!(
        "compacted {} entries: {:.1} MB -> {:.1} MB",
        copied,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    Ok(())
}

/// Puts the checked copy (`store.compacting`) in the store's place, moving the store to
/// `store.before-compaction`. Each rename is atomic and the data directory's recovery finishes
/// a swap interrupted between them (see `DataDir::store`).
pub(super) fn swap_in_copy(locked: &DataDir) -> anyhow::Result<()> {
    std::fs::rename(locked.join(STORE), locked.join(BEFORE_COMPACTION))?;
    failpoint("compact-between-renames");
    std::fs::rename(locked.join(COMPACTING), locked.join(STORE))?;
    sync_dir(locked.path());
    Ok(())
}

/// A test hook: `TICKLER_FAILPOINT=<name>` stops the process at that point (it sleeps until
/// killed), so the crash tests can SIGKILL a compaction exactly there.
pub(super) fn failpoint(name: &str) {
    if std::env::var("TICKLER_FAILPOINT").is_ok_and(|point| point == name) {
        eprintln!("failpoint {name}: waiting to be killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

pub(super) fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
