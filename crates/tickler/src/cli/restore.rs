//! `tickler restore`: an export (`tickler export`) written into a new, empty data directory.
//! The file is read twice: once to check every entity's log folds (nothing is written if one
//! does not), then to write each entity in one commit; one flush at the end.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;
use tickler::{EntityId, Event, SledStore, Store, Timestamp};
use tickler_engine::restore::{Restored, restore_entity};

/// One line of an export (its `name` is for people and ignored).
#[derive(Deserialize)]
struct ExportLine {
    entity: EntityId,
    seq: u64,
    recorded_at: Timestamp,
    event: Event,
}

type Log = Vec<(u64, Timestamp, Event)>;

pub fn run(data_dir: &Path, file: &Path, json: bool) -> anyhow::Result<()> {
    // Checked before anything is created: a file that does not restore leaves no directory.
    let mut entities = 0u64;
    each_entity(file, |id, log| {
        tickler::fold(id, None, log.iter().map(|(s, at, e)| (*s, *at, e)))
            .with_context(|| format!("{}: the log of {id} does not replay", file.display()))?;
        entities += 1;
        Ok(())
    })?;
    let locked = tickler::data_dir::DataDir::create_and_lock(data_dir)?;
    let (store_dir, _) = locked.store_to_serve()?;
    let store = SledStore::open(&store_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    if !store.entities_after(None, 1)?.is_empty() {
        bail!(
            "{} already holds entities: restore into a new, empty data directory",
            data_dir.display()
        );
    }
    let mut total = Restored::default();
    each_entity(file, |id, log| {
        let restored = restore_entity(&store, id, &log)?;
        total.events += restored.events;
        total.past_events += restored.past_events;
        total.timers += restored.timers;
        Ok(())
    })?;
    store.flush()?;
    if json {
        let summary = serde_json::json!({
            "entities": entities,
            "events": total.events,
            "past_events": total.past_events,
            "pending_timers": total.timers,
        });
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        out!(
            "restored {entities} entities into {}: {} events, {} past events (history, not \
             sent again), {} pending timers",
            data_dir.display(),
            total.events,
            total.past_events,
            total.timers
        );
    }
    Ok(())
}

/// Calls `each` with every entity's log, in file order; an entity's lines must be together
/// (as `export` writes them).
fn each_entity(
    file: &Path,
    mut each: impl FnMut(&EntityId, Log) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut seen: HashSet<EntityId> = HashSet::new();
    let mut current: Option<(EntityId, Log)> = None;
    for (number, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: ExportLine = serde_json::from_str(&line).with_context(|| {
            format!(
                "{} line {}: not a line of `tickler export`",
                file.display(),
                number + 1
            )
        })?;
        if current.as_ref().is_none_or(|(id, _)| *id != parsed.entity) {
            if let Some((id, log)) = current.take() {
                each(&id, log)?;
            }
            if !seen.insert(parsed.entity.clone()) {
                bail!(
                    "{} line {}: {} appears again after other entities; an entity's lines go \
                     together",
                    file.display(),
                    number + 1,
                    parsed.entity
                );
            }
            current = Some((parsed.entity.clone(), Vec::new()));
        }
        if let Some((_, log)) = current.as_mut() {
            log.push((parsed.seq, parsed.recorded_at, parsed.event));
        }
    }
    if let Some((id, log)) = current {
        each(&id, log)?;
    }
    Ok(())
}
