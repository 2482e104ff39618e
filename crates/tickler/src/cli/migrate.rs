//! `tickler migrate`: upgrade a store written in record format v1 to the current format,
//! offline. The migrated copy is written beside the store and swapped in as `compact` swaps its
//! copy (an interrupted migration is finished or discarded by whoever opens the data directory
//! next); the v1 store is then kept as `store.v1`, for going back to the previous release.

use std::path::Path;

use anyhow::{Context, bail};
use tickler::SledStore;
use tickler::data_dir::{BEFORE_COMPACTION, COMPACTING, DataDir};

use super::compact::{dir_size, failpoint, swap_in_copy};

/// Where the v1 store is kept after a migration.
pub const V1_KEPT: &str = "store.v1";

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let locked = DataDir::lock(data_dir)?;
    let (store_dir, recovered) = locked.existing_store()?;
    if let Some(recovered) = recovered {
        eprintln!("note: {recovered} ({})", data_dir.display());
    }
    if !SledStore::needs_migration(&store_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?
    {
        return say(
            json,
            "the store is in the current record format (v2): nothing to migrate",
        );
    }
    let kept = locked.join(V1_KEPT);
    if kept.exists() {
        bail!(
            "{} exists (a v1 store kept by an earlier migration?); move it out of the data \
             directory, then run `tickler migrate` again",
            kept.display()
        );
    }
    let copy_dir = locked.join(COMPACTING);
    let report = match SledStore::migrate_v1(&store_dir, &copy_dir) {
        Ok(report) => report,
        Err(err) => {
            // The v1 store was only read: removing the partial copy leaves everything as it was.
            let _ = std::fs::remove_dir_all(&copy_dir);
            return Err(err).context("the migration failed; the v1 store is unchanged");
        }
    };
    drop(SledStore::open_read_only(&copy_dir).context("the migrated copy does not open")?);
    failpoint("migrate-before-swap");
    swap_in_copy(&locked)?;
    std::fs::rename(locked.join(BEFORE_COMPACTION), &kept)?;
    let after = dir_size(&locked.join(tickler::data_dir::STORE))?;
    if json {
        let summary = serde_json::json!({
            "entities": report.entities,
            "events": report.events,
            "entries_before": report.entries_before,
            "entries_after": report.entries_after,
            "bytes_after": after,
            "v1_kept_in": kept,
        });
        out!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    out!(
        "migrated {} entities ({} events) to record format v2: {} entries -> {}, {:.1} MB",
        report.entities,
        report.events,
        report.entries_before,
        report.entries_after,
        after as f64 / 1e6
    );
    out!(
        "the v1 store is kept in {}: delete it once the daemon runs well on the migrated store",
        kept.display()
    );
    Ok(())
}

fn say(json: bool, text: &str) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::json!({ "migrated": false, "note": text }));
    } else {
        out!("{text}");
    }
    Ok(())
}
