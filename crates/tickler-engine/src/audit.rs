//! The offline audit: verifies a whole store against itself, from the log outwards.
//!
//! For every entity: each record's checksum and envelope (read back by the store), gap-free
//! sequence numbers, every event decodes, replay is deterministic (folding twice gives the same
//! state), the snapshot (if any) equals the fold up to its sequence number, every stored past
//! event is byte-identical to the one its closing event produces (and none is missing or extra),
//! the entity's timer index entries equal its pending wakes, and its secondary index memberships
//! equal the ones its state implies. Then: no timer index entry belongs to an unknown entity.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use tickler_core::{EntityId, OccurrenceId, Timestamp, fold};
use tickler_store::Store;

use crate::Error;
use crate::codec;
use crate::paging::{entity_pages, index_pages, timer_pages};

#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    pub entities: u64,
    pub events: u64,
    pub past_events: u64,
    pub timers: u64,
    pub findings: Vec<Finding>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub entity: Option<EntityId>,
    pub what: String,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Audits the store; `progress` is called with the number of entities checked so far.
///
/// Damage the store reports while reading (a record it cannot read, a corrupt page) becomes a
/// finding, for the entity it belongs to when it belongs to one, and the audit goes on with
/// what it can still read: the tool meant to diagnose damage must not stop at the first.
pub fn audit(store: &dyn Store, mut progress: impl FnMut(u64)) -> Result<AuditReport, Error> {
    let mut report = AuditReport::default();
    let general = |report: &mut AuditReport, what: String| {
        report.findings.push(Finding { entity: None, what })
    };
    // `None`: the timer index could not be read whole, so it is not compared.
    let mut timers = match timers_by_entity(store) {
        Ok(timers) => Some(timers),
        Err(err) => {
            general(
                &mut report,
                format!("the timer index cannot be read: {err}"),
            );
            None
        }
    };
    report.timers = timers.iter().flatten().map(|(_, t)| t.len() as u64).sum();
    let mut indexes = IndexCache::default();
    // The engine-wide indexes are read up front, so stray members are found even when no
    // entity claims any member of them.
    for index in [tickler_core::index::RETRYING, tickler_core::index::ERRORED] {
        if let Err(err) = indexes.load(store, index) {
            general(&mut report, format!("index {index} cannot be read: {err}"));
        }
    }
    let mut after: Option<EntityId> = None;
    for page in entity_pages(store, None) {
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                let from = after
                    .as_ref()
                    .map_or("the start".to_owned(), |a| a.to_string());
                general(
                    &mut report,
                    format!(
                        "the list of entities cannot be read after {from}: {err}; the entities past it were not audited"
                    ),
                );
                break;
            }
        };
        for id in &page {
            let expected_timers = timers.as_mut().map(|t| t.remove(id).unwrap_or_default());
            let readable = audit_entity(store, id, expected_timers, &mut indexes, &mut report)
                .unwrap_or_else(|err| {
                    report.findings.push(Finding {
                        entity: Some(id.clone()),
                        what: format!("cannot be read: {err}"),
                    });
                    false
                });
            if !readable {
                // Its state is unknown, so its index memberships cannot be judged: one finding
                // (already made) is enough.
                indexes.forgive(id);
            }
            report.entities += 1;
            progress(report.entities);
        }
        after = page.last().cloned();
    }
    for (entity, entries) in timers.into_iter().flatten() {
        report.findings.push(Finding {
            entity: Some(entity),
            what: format!(
                "{} timer index entries belong to an entity with no log",
                entries.len()
            ),
        });
    }
    indexes.check_unclaimed(&mut report);
    Ok(report)
}

fn timers_by_entity(
    store: &dyn Store,
) -> Result<HashMap<EntityId, BTreeSet<(Timestamp, OccurrenceId)>>, Error> {
    let mut by_entity: HashMap<EntityId, BTreeSet<(Timestamp, OccurrenceId)>> = HashMap::new();
    for page in timer_pages(store, None) {
        for entry in page? {
            by_entity
                .entry(entry.entity)
                .or_default()
                .insert((entry.due, entry.occurrence));
        }
    }
    Ok(by_entity)
}

/// Audits one entity; returns whether its log could be folded at all.
fn audit_entity(
    store: &dyn Store,
    id: &EntityId,
    stored_timers: Option<BTreeSet<(Timestamp, OccurrenceId)>>,
    indexes: &mut IndexCache,
    report: &mut AuditReport,
) -> Result<bool, Error> {
    let mut finding = |what: String| {
        report.findings.push(Finding {
            entity: Some(id.clone()),
            what,
        })
    };
    // Checksums, envelopes and gaps: the store reports them as corruption.
    let stored = match store.read_events(id, 0) {
        Ok(stored) => stored,
        Err(err) => {
            finding(format!("the log cannot be read: {err}"));
            return Ok(false);
        }
    };
    let mut decoded = Vec::with_capacity(stored.len());
    for event in &stored {
        match codec::decode_event(&event.record) {
            Ok(payload) => decoded.push((event.seq, event.record.recorded_at, payload)),
            Err(reason) => {
                finding(format!("event {} does not decode: {reason}", event.seq));
                return Ok(false);
            }
        }
    }
    let fold_all = || fold(id, None, decoded.iter().map(|(s, t, e)| (*s, *t, e)));
    let (first, second) = (fold_all(), fold_all());
    let (entity, past) = match (first, second) {
        (Ok(first), Ok(second)) => {
            if first != second {
                finding("replaying the log twice gave two different states".into());
            }
            first
        }
        (Err(err), _) | (_, Err(err)) => {
            finding(format!("the log does not replay: {err}"));
            return Ok(false);
        }
    };
    report.events += decoded.len() as u64;
    let Some(entity) = entity else {
        finding("the entity has a head but no events".into());
        return Ok(false);
    };

    // Past events: byte-identical to what the log produces, none missing, none extra.
    let expected: BTreeMap<OccurrenceId, tickler_store::Record> = past
        .iter()
        .map(|p| (p.occurrence.clone(), codec::encode_past_event(p)))
        .collect();
    let actual: BTreeMap<OccurrenceId, tickler_store::Record> =
        store.past_events(id)?.into_iter().collect();
    report.past_events += actual.len() as u64;
    for (occurrence, record) in &expected {
        match actual.get(occurrence) {
            None => finding(format!(
                "past event {occurrence} is in the log but not stored"
            )),
            Some(stored) if stored != record => finding(format!(
                "past event {occurrence} differs from the one its log event (seq {}) produces",
                past.iter()
                    .find(|p| &p.occurrence == occurrence)
                    .map_or(0, |p| p.seq)
            )),
            Some(_) => {}
        }
    }
    for occurrence in actual.keys().filter(|o| !expected.contains_key(*o)) {
        finding(format!(
            "past event {occurrence} is stored but no log event produced it"
        ));
    }

    // Snapshot: a cache, but it must match the log where it claims to.
    if let Some(snapshot) = store.snapshot(id)?
        && let Some(cached) = codec::decode_snapshot(&snapshot.record)
    {
        let upto = fold(
            id,
            None,
            decoded
                .iter()
                .filter(|(s, _, _)| *s <= snapshot.seq)
                .map(|(s, t, e)| (*s, *t, e)),
        );
        if upto.ok().and_then(|(state, _)| state).as_ref() != Some(&cached) {
            finding(format!(
                "the snapshot at seq {} differs from replaying the log to it",
                snapshot.seq
            ));
        }
    }

    // Timer index: exactly the pending wakes (when the index could be read).
    let wanted = wanted_timers(&entity, stored_timers.as_ref());
    if let Some(stored_timers) = stored_timers {
        for (due, occurrence) in wanted.difference(&stored_timers) {
            finding(format!(
                "{occurrence} is pending (wakes at {due}) but missing from the timer index"
            ));
        }
        for (due, occurrence) in stored_timers.difference(&wanted) {
            finding(format!(
                "the timer index holds {occurrence} at {due}, which is not pending then"
            ));
        }
    }

    // Secondary indexes: what the state implies.
    for (index, member) in entity.index_entries() {
        if !indexes.claim(store, &index, &member)? {
            finding(format!("index {index} is missing {member}"));
        }
    }
    Ok(true)
}

/// Secondary indexes read whole, once each, as entities claim their memberships; what is left
/// unclaimed at the end is an index entry no entity's state implies.
#[derive(Default)]
struct IndexCache {
    members: HashMap<String, BTreeSet<String>>,
    /// Entities whose memberships are not judged (their log is unreadable); indexes loaded
    /// later drop their members too.
    forgiven: Vec<EntityId>,
}

impl IndexCache {
    fn load(&mut self, store: &dyn Store, index: &str) -> Result<(), Error> {
        if self.members.contains_key(index) {
            return Ok(());
        }
        let mut all = BTreeSet::new();
        for page in index_pages(store, index, None) {
            all.extend(page?);
        }
        for entity in &self.forgiven {
            let occurrence_prefix = format!("{entity}#");
            all.retain(|m| m != entity.as_str() && !m.starts_with(&occurrence_prefix));
        }
        self.members.insert(index.to_owned(), all);
        Ok(())
    }

    fn claim(&mut self, store: &dyn Store, index: &str, member: &str) -> Result<bool, Error> {
        self.load(store, index)?;
        Ok(self
            .members
            .get_mut(index)
            .is_some_and(|set| set.remove(member)))
    }

    /// Drops every member naming `entity` (the entity itself, or one of its occurrences).
    fn forgive(&mut self, entity: &EntityId) {
        let id = entity.as_str();
        let occurrence_prefix = format!("{id}#");
        for members in self.members.values_mut() {
            members.retain(|m| m != id && !m.starts_with(&occurrence_prefix));
        }
        self.forgiven.push(entity.clone());
    }

    fn check_unclaimed(self, report: &mut AuditReport) {
        for (index, left) in self.members {
            for member in left {
                report.findings.push(Finding {
                    entity: None,
                    what: format!("index {index} holds {member}, which no entity's state implies"),
                });
            }
        }
    }
}

/// The timer index entries the entity's state implies. An attempt under way whose entry is at
/// its lease's end, not its planned instant, was started by a writer that kept leases in the
/// index: that entry is right for it (its wake removes it).
fn wanted_timers(
    entity: &tickler_core::Entity,
    stored: Option<&BTreeSet<(Timestamp, OccurrenceId)>>,
) -> BTreeSet<(Timestamp, OccurrenceId)> {
    let mut wanted: BTreeSet<_> = entity.timers().into_iter().collect();
    for reminder in entity.active.values().filter(|r| r.is_delivering()) {
        let lease = (reminder.wake_at(), reminder.occurrence.clone());
        if stored.is_some_and(|stored| stored.contains(&lease)) {
            wanted.remove(&(reminder.indexed_at(), reminder.occurrence.clone()));
            wanted.insert(lease);
        }
    }
    wanted
}
