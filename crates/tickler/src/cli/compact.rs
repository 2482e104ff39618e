//! `tickler compact`: rewrite the store offline into a fresh sled database holding the same
//! entries, then swap it in. sled keeps old log segments around; a copy does not.

use std::path::Path;

use anyhow::{Context, bail};
use tickler::SledStore;

pub fn run(data_dir: &Path) -> anyhow::Result<()> {
    let store_dir = data_dir.join("store");
    let copy_dir = data_dir.join("store.compacting");
    let old_dir = data_dir.join("store.before-compaction");
    if copy_dir.exists() || old_dir.exists() {
        bail!(
            "{} or {} exists: a compaction was interrupted; check them and remove them first",
            copy_dir.display(),
            old_dir.display()
        );
    }
    let before = dir_size(&store_dir)?;
    let store = SledStore::open_read_only(&store_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let copied = store.copy_into(&copy_dir)?;
    drop(store);
    // Verify the copy opens and reads as a tickler store before swapping it in.
    drop(SledStore::open_read_only(&copy_dir).context("the compacted copy does not open")?);
    std::fs::rename(&store_dir, &old_dir)?;
    std::fs::rename(&copy_dir, &store_dir)?;
    std::fs::remove_dir_all(&old_dir)?;
    let after = dir_size(&store_dir)?;
    out!(
        "compacted {} entries: {:.1} MB -> {:.1} MB",
        copied,
        before as f64 / 1e6,
        after as f64 / 1e6
    );
    Ok(())
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
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
