//! What operators do with a running engine beyond commands: status and metrics, listing, the
//! dry-run of what falls due, pausing delivery, snapshots, export and explanations.

use std::collections::BTreeMap;

use serde::Serialize;
use tickler_core::{Command, Entity, EntityId, Event, OccurrenceId, Rejection, Timestamp, index};
use tickler_store::TimerEntry;

use crate::engine::Engine;
use crate::entity_actor::EntityMsg;
use crate::explain::{Explanation, explain};
use crate::metrics::FiringLag;
use crate::paging::{entity_pages, index_pages, timer_pages};
use crate::pause::{PAUSES_META, PauseScope, Pauses};
use crate::replay::LoggedEvent;
use crate::timer::{TimerMsg, TimerStatus};
use crate::{Error, codec};

/// The most entries one `due` dry run returns.
pub const DUE_LEN_MAX: usize = 10_000;

/// How long [`Engine::unready`] waits for the flush it tries after a failed one.
const READY_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A summary for `status`.
#[derive(Clone, Debug, Serialize)]
pub struct EngineStatus {
    pub version: &'static str,
    pub uptime_ms: u64,
    pub clock: &'static str,
    pub now: Timestamp,
    pub actors: usize,
    pub timers_in_memory: usize,
    pub wakes_in_flight: usize,
    pub next_due: Option<Timestamp>,
    pub fired: u64,
    pub firing_lag: FiringLag,
    /// Occurrences waiting for their next delivery attempt (`None`: the store could not be
    /// read for it; see `storage_errors`).
    pub retries_in_flight: Option<u64>,
    /// Occurrences that ended in a system error and were not retried (`None`: unreadable).
    pub errored: Option<u64>,
    pub errors_last_hour: usize,
    pub paused: Pauses,
    /// Wakes held by a pause.
    pub parked: usize,
    pub quarantined: BTreeMap<String, String>,
    /// What could not be read from the store for this status (a full disk, damage): the
    /// status is still given, with those counts left out, since it is where an operator looks.
    pub storage_errors: Vec<String>,
}

/// Filters for `list`; each given filter must match.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub kind: Option<String>,
    pub policy: Option<String>,
    pub recipient: Option<String>,
}

/// One timer of the `due` dry run.
#[derive(Clone, Debug, Serialize)]
pub struct DueEntry {
    pub due: Timestamp,
    pub entity: EntityId,
    pub occurrence: OccurrenceId,
    pub kind: Option<String>,
    /// pending-on, pending-off, processing or retry-waiting.
    pub state: Option<String>,
    pub channel: Option<String>,
    /// Whether a pause holds it now.
    pub paused: bool,
}

/// One event of the log, as `export` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedEvent {
    pub entity: EntityId,
    pub seq: u64,
    pub recorded_at: Timestamp,
    /// The event's name as replies spell it (`occurrence-planned`); `event` holds it as the
    /// record format's variant.
    pub name: &'static str,
    pub event: Event,
}

impl Engine {
    pub async fn status(&self) -> Result<EngineStatus, Error> {
        let shared = self.shared();
        let timer: TimerStatus = self.timer_call(TimerMsg::Status).await?;
        let mut storage_errors = Vec::new();
        let mut counted = |read: Result<u64, Error>| {
            read.map_err(|err| storage_errors.push(err.to_string()))
                .ok()
        };
        Ok(EngineStatus {
            version: env!("CARGO_PKG_VERSION"),
            uptime_ms: shared.started.elapsed().as_millis() as u64,
            clock: if self.is_manual_clock() {
                "manual"
            } else {
                "system"
            },
            now: self.now(),
            actors: shared.registry.len(),
            timers_in_memory: timer.in_memory,
            wakes_in_flight: timer.in_flight,
            next_due: timer.next_due,
            fired: timer.fired,
            firing_lag: shared.metrics.firing_lag(),
            retries_in_flight: counted(self.index_len(index::RETRYING)),
            errored: counted(self.index_len(index::ERRORED)),
            errors_last_hour: shared.metrics.errors_last_hour(),
            paused: self.pauses(),
            parked: timer.parked,
            quarantined: shared
                .quarantined
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(id, reason)| (id.to_string(), reason.clone()))
                .collect(),
            storage_errors,
        })
    }

    /// Why the engine should not be given work now; `None` when it is *ready*. An `Engine` exists
    /// only once it is open (recovery finished: the timer index paged in, every family's
    /// start-up work done); an open engine is ready when
    ///
    /// - it is not shutting down, and its timer answers (`status` can be given);
    /// - its store answers reads: the reads `status` makes (the retry and error counts) succeed;
    /// - its store takes writes: group commit's latest flush succeeded or, if it failed, a flush
    ///   tried now succeeds within [`READY_FLUSH_WAIT`], so a disk that has room again reads as
    ///   ready without waiting for a command to find out. That flush writes nothing new.
    ///
    /// Not conditions: quarantined entities (a damaged log stops its own entity only, every
    /// other serves, and a restart would not mend it; `status` and `tickler_quarantined` report
    /// them), paused delivery (an operator's choice), failing channels (the receiver's trouble,
    /// in `tickler_deliveries_total`) and lateness (in `tickler_firing_lateness_seconds`).
    pub async fn unready(&self) -> Option<String> {
        let status = match self.status().await {
            Ok(status) => status,
            Err(err) => return Some(format!("the engine gives no status: {err}")),
        };
        if let Some(error) = status.storage_errors.first() {
            return Some(format!("the store cannot be read: {error}"));
        }
        if !self.group_commit_stats().latest_flush_failed {
            return None;
        }
        match tokio::time::timeout(READY_FLUSH_WAIT, self.shared().commits.durable()).await {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(format!("the store takes no writes: a flush failed: {err}")),
            Err(_) => Some(format!(
                "the store takes no writes: a flush did not end within {} s",
                READY_FLUSH_WAIT.as_secs()
            )),
        }
    }

    /// Every instrument in the Prometheus text format (version 0.0.4, served with
    /// [`METRICS_CONTENT_TYPE`](crate::METRICS_CONTENT_TYPE)): the counters and histograms since
    /// the engine started, and gauges read from `status` now.
    pub async fn metrics_text(&self) -> Result<String, Error> {
        let status = self.status().await?;
        Ok(self.shared().metrics.render(&status))
    }

    /// Group commit's counters: flushes (and failed ones), commits per group. How long writes
    /// and flushes took is in the metrics' histograms.
    pub fn group_commit_stats(&self) -> tickler_store::GroupCommitStats {
        self.shared().commits.stats()
    }

    /// The number of members of a secondary index (a scan of that index only).
    pub fn index_len(&self, name: &str) -> Result<u64, Error> {
        let mut count = 0u64;
        for page in index_pages(self.shared().store.as_ref(), name, None) {
            count += page?.len() as u64;
        }
        Ok(count)
    }

    /// Entities matching `filter`, in the store's key order, after `after`.
    pub async fn list(
        &self,
        filter: &ListFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error> {
        let store = &self.shared().store;
        // The most selective index given drives the scan; the other filters are checked.
        let primary = match (&filter.recipient, &filter.policy, &filter.kind) {
            (Some(recipient), _, _) => Some(index::recipient(recipient)),
            (None, Some(policy), _) => Some(index::policy(policy)),
            (None, None, Some(kind)) => Some(index::kind(kind)),
            (None, None, None) => None,
        };
        let pages: Box<dyn Iterator<Item = Result<Vec<EntityId>, Error>> + Send> = match &primary {
            Some(name) => Box::new(
                index_pages(store.as_ref(), name, after.map(str::to_owned))
                    .map(|page| page?.iter().map(|m| Ok(EntityId::parse(m)?)).collect()),
            ),
            None => {
                let after = after.map(EntityId::parse).transpose()?;
                Box::new(entity_pages(store.as_ref(), after))
            }
        };
        let mut found = Vec::new();
        for page in pages {
            for id in page? {
                if self.matches(&id, filter).await? {
                    found.push(id);
                    if found.len() == limit {
                        return Ok(found);
                    }
                }
            }
        }
        Ok(found)
    }

    async fn matches(&self, id: &EntityId, filter: &ListFilter) -> Result<bool, Error> {
        if filter.kind.as_deref().is_some_and(|kind| id.kind() != kind) {
            return Ok(false);
        }
        if filter.policy.is_none() && filter.recipient.is_none() {
            return Ok(true);
        }
        let entity = match self.show(id).await {
            Ok(entity) => entity,
            Err(Error::Quarantined { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        Ok(filter.policy.as_ref().is_none_or(|p| &entity.policy == p)
            && filter
                .recipient
                .as_ref()
                .is_none_or(|r| &entity.recipient == r))
    }

    /// What would fire in [from, to): the timers due then, with what each is for. Nothing runs.
    pub async fn due_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<DueEntry>, Error> {
        let store = &self.shared().store;
        let limit = limit.min(DUE_LEN_MAX);
        let mut entries = Vec::new();
        'scan: for page in timer_pages(store.as_ref(), Some(from)) {
            for timer in page? {
                if timer.due < from {
                    continue;
                }
                if timer.due >= to || entries.len() == limit {
                    break 'scan;
                }
                entries.push(self.due_entry(timer).await);
            }
        }
        Ok(entries)
    }

    /// What a timer is for: its occurrence's kind, state and channel, and whether it is paused.
    async fn due_entry(&self, timer: TimerEntry) -> DueEntry {
        let reminder = match self.show(&timer.entity).await {
            Ok(entity) => entity
                .active
                .get(&timer.occurrence)
                .cloned()
                .map(|r| (entity, r)),
            Err(_) => None,
        };
        let (kind, state, channel, paused) = match &reminder {
            Some((entity, reminder)) => {
                let channel = self.shared().channel_of(entity, &reminder.occurrence.rule);
                let paused = self.shared().paused(&entity.policy, &channel);
                (
                    Some(reminder.kind.clone()),
                    Some(reminder.state_label().to_owned()),
                    Some(channel),
                    paused,
                )
            }
            None => (None, None, None, false),
        };
        DueEntry {
            due: timer.due,
            entity: timer.entity,
            occurrence: timer.occurrence,
            kind,
            state,
            channel,
            paused,
        }
    }

    pub fn pauses(&self) -> Pauses {
        self.shared()
            .pauses
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Pauses (`paused`) or resumes delivery for a scope; kept across restarts. Returns the
    /// pauses now in force.
    pub async fn set_paused(&self, scope: &PauseScope, paused: bool) -> Result<Pauses, Error> {
        let shared = self.shared();
        if let PauseScope::Channel(name) = scope {
            self.check_channel(name)?;
        }
        if let PauseScope::Policy(name) = scope {
            shared.catalog.policy(name)?;
        }
        let now = {
            let mut pauses = shared.pauses.write().unwrap_or_else(|p| p.into_inner());
            pauses.set(scope, paused);
            pauses.clone()
        };
        let bytes = serde_json::to_vec(&now).expect("pauses always encode");
        shared.store.set_meta(PAUSES_META, &bytes)?;
        shared.commits.durable().await?;
        tracing::info!(%scope, paused, "delivery pause changed");
        if !paused {
            let _ = shared.timer().cast(TimerMsg::Unpark);
        }
        Ok(now)
    }

    /// Writes a snapshot of the entity now; returns the sequence number it covers.
    pub async fn snapshot(&self, entity: &EntityId) -> Result<u64, Error> {
        crate::shared::ask(self.shared(), entity, |taken, reply| EntityMsg::Snapshot {
            taken,
            reply,
        })
        .await?
    }

    /// Up to `entities_max` entities' logs after `after`, decoded; the cursor to continue from
    /// (`None` at the end).
    pub fn export_page(
        &self,
        after: Option<&EntityId>,
        entities_max: usize,
    ) -> Result<(Vec<ExportedEvent>, Option<EntityId>), Error> {
        let store = &self.shared().store;
        let entities = store.entities_after(after, entities_max)?;
        let mut events = Vec::new();
        for entity in &entities {
            for stored in store.read_events(entity, 0)? {
                let event =
                    codec::decode_event(&stored.record).map_err(|reason| Error::Quarantined {
                        entity: entity.clone(),
                        reason: format!("event {}: {reason}", stored.seq),
                    })?;
                events.push(ExportedEvent {
                    entity: entity.clone(),
                    seq: stored.seq,
                    recorded_at: stored.record.recorded_at,
                    name: event.name(),
                    event,
                });
            }
        }
        let next = (entities.len() == entities_max)
            .then(|| entities.last().cloned())
            .flatten();
        Ok((events, next))
    }

    /// Where the entity is now, by its dates, for policies that declare phases (a survey:
    /// in-queue, active, grace, closed, viewable).
    pub fn phase(&self, entity: &Entity) -> Option<String> {
        let policy = self.catalog().policy(&entity.policy).ok()?;
        tickler_core::policy::phase_at(policy, entity, self.now()).map(str::to_owned)
    }

    /// The story of each occurrence of the entity (or of one), in sentences.
    pub fn explain(
        &self,
        entity: &EntityId,
        occurrence: Option<&OccurrenceId>,
    ) -> Result<Explanation, Error> {
        let view = crate::replay::replay(self.shared().store.as_ref(), entity, None)?;
        let policy = self
            .shared()
            .catalog
            .policy(&view.entity.policy)
            .ok()
            .cloned();
        let events: Vec<LoggedEvent> = view.events;
        let mut explanation = explain(entity, &events, policy.as_deref());
        if let Some(occurrence) = occurrence {
            explanation
                .occurrences
                .retain(|story| &story.occurrence == occurrence);
            if explanation.occurrences.is_empty() {
                return Err(Rejection::UnknownOccurrence {
                    entity: entity.clone(),
                    occurrence: occurrence.clone(),
                }
                .into());
            }
        }
        Ok(explanation)
    }

    /// The entity as it was at `as_of` (or now), the events folded to get there and the story
    /// of each occurrence up to that instant: the offline replay, served from the same fold.
    pub fn story_as_of(
        &self,
        entity: &EntityId,
        as_of: Option<Timestamp>,
    ) -> Result<(crate::replay::ReplayView, Explanation), Error> {
        let view = crate::replay::replay(self.shared().store.as_ref(), entity, as_of)?;
        let policy = self.shared().catalog.policy(&view.entity.policy).ok();
        let explanation = explain(entity, &view.events, policy.map(|p| &**p));
        Ok((view, explanation))
    }

    /// Cancels one pending occurrence (unsent: deactivated) or, without one, the whole entity
    /// (completed with reason `cancelled`).
    pub async fn cancel(
        &self,
        entity: &EntityId,
        occurrence: Option<OccurrenceId>,
    ) -> Result<crate::Applied, Error> {
        let command = match occurrence {
            Some(occurrence) => Command::Cancel { occurrence },
            None => Command::Complete {
                reason: "cancelled".to_owned(),
            },
        };
        self.execute(entity, command).await
    }

    /// Retries every occurrence that ended in a system error, across all entities, each under
    /// its own idempotency key, with the operator's `reason`; returns each entity retried with
    /// the occurrences it retried.
    pub async fn retry_all_errored(
        &self,
        reason: &str,
    ) -> Result<Vec<(EntityId, Vec<OccurrenceId>)>, Error> {
        let mut retried: Vec<(EntityId, Vec<OccurrenceId>)> = Vec::new();
        for page in index_pages(self.shared().store.as_ref(), index::ERRORED, None) {
            for member in &page? {
                let (entity, occurrence) = crate::failures::split_member(member)?;
                // Members of one entity are adjacent, but an entity key holding '#' may
                // interleave; the search is the fallback.
                let known = match retried.last_mut() {
                    Some(last) if last.0 == entity => Some(last),
                    _ => retried.iter_mut().find(|(id, _)| id == &entity),
                };
                match known {
                    Some((_, occurrences)) => occurrences.push(occurrence),
                    None => retried.push((entity, vec![occurrence])),
                }
            }
        }
        for (entity, _) in &retried {
            let retry = Command::Retry {
                occurrence: None,
                reason: reason.to_owned(),
            };
            self.execute(entity, retry).await?;
        }
        Ok(retried)
    }
}
