//! The entity actor: one per live entity, the single writer of its log.
//!
//! Its state is rebuilt in `pre_start` from the latest snapshot and the tail of the log. A
//! command is decided by the pure core, its events and their consequences (past events, timer
//! index changes, a snapshot) are committed atomically and made durable, and only then does the
//! actor adopt the new state, tell the timer, publish past events and start deliveries.
//! A rejected command is a reply, not an actor error. A failed commit rebuilds the state from the
//! store, and tells the timer what the store turned out to hold. A store that cannot be read (a
//! full disk, an I/O error) is not a corrupt log: the actor keeps its last durable state, refuses
//! with the storage error, and reads again on its next message. A crash (a panic: a bug) stops the actor; the supervisor logs it, and the registry
//! starts a fresh actor, which replays, on the entity's next message. A request queued behind
//! the crash, which the dead actor never took, is sent again to the fresh one (`shared::ask`).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tickler_core::{
    Command, Context, Entity, EntityId, Event, IndexFacts, OccurrenceId, PastEvent, Rejection,
    Timestamp, decide, fold,
};
use tickler_store::{CommitBatch, IndexEntry, Snapshot, TimerEntry};

use crate::Error;
use crate::activity::ActivityGuard;
use crate::codec;
use crate::delivery::{self, Report};
use crate::metrics::Origin;
use crate::shared::{Shared, Taken};
use crate::timer::{TimerMsg, WakeTicket};

/// What an accepted command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The entity's version (last sequence number) after the command.
    pub version: u64,
    /// The events appended, empty if the command changed nothing.
    pub events: Vec<Event>,
    /// The past events those events created.
    pub past_events: Vec<PastEvent>,
}

pub(crate) enum EntityMsg {
    Execute {
        command: Command,
        origin: Origin,
        taken: Taken,
        reply: RpcReplyPort<Result<Applied, Error>>,
    },
    Show {
        taken: Taken,
        reply: RpcReplyPort<Result<Option<Entity>, Error>>,
    },
    /// Write a snapshot now; reply with the sequence number it covers.
    Snapshot {
        taken: Taken,
        reply: RpcReplyPort<Result<u64, Error>>,
    },
    Wake {
        occurrence: OccurrenceId,
        ticket: WakeTicket,
    },
    DeliveryDone {
        occurrence: OccurrenceId,
        attempt: u32,
        report: Report,
        work: ActivityGuard,
    },
    IdleCheck,
}

pub(crate) struct EntityActor;

pub(crate) struct EntityState {
    shared: Arc<Shared>,
    id: EntityId,
    entity: Option<Entity>,
    /// Set when the log failed a check: every command is refused with the reason.
    quarantined: Option<String>,
    /// Set while the store cannot be read: `entity` is the last state known durable, and the
    /// next message reads the store again before using it.
    unavailable: Option<tickler_store::Error>,
    /// Set after a failed commit until the state is read back, to the wakes the timer knows:
    /// the batch may have been applied (the flush failed) or not, so the timer must be told
    /// whatever the store turns out to hold.
    timers_unsure: Option<Wakes>,
    /// An index entry the next commit removes besides those the state implies (see
    /// `note_stale_index_entry`).
    stale_index_entry: Option<TimerEntry>,
    /// Messages handled, compared with the registry's count when passivating.
    handled: u64,
    /// Deliveries this actor started whose result has not come back.
    in_flight: HashSet<OccurrenceId>,
    /// `Some` on the batched fire path: deliveries decided are collected here for the batch to
    /// run, instead of each in a task of its own.
    deferred: Option<Vec<PendingDelivery>>,
    events_since_snapshot: u64,
}

/// A delivery decided and recorded, not yet run.
pub(crate) struct PendingDelivery {
    pub occurrence: OccurrenceId,
    pub attempt: u32,
    job: delivery::Job,
    pub work: ActivityGuard,
}

impl PendingDelivery {
    /// Runs the delivery; the report goes back to the entity's writer.
    pub async fn run(self, shared: &Arc<Shared>) -> (OccurrenceId, u32, Report, ActivityGuard) {
        let report = delivery::run(shared, self.job).await;
        (self.occurrence, self.attempt, report, self.work)
    }
}

impl Actor for EntityActor {
    type Msg = EntityMsg;
    type State = EntityState;
    /// The state is given when the actor takes over from a claim of the batched fire path.
    type Arguments = (Arc<Shared>, EntityId, Option<EntityState>);

    async fn pre_start(
        &self,
        _myself: ActorRef<EntityMsg>,
        (shared, id, given): Self::Arguments,
    ) -> Result<EntityState, ActorProcessingErr> {
        Ok(match given {
            Some(mut state) => {
                state.handled = 0;
                state.deferred = None;
                state
            }
            None => EntityState::load(shared, id),
        })
    }

    /// Every await of a command's future here is boxed: ractor keeps each actor's message loop,
    /// and so this method's future, in one allocation for the actor's whole life, sized for the
    /// largest future awaited inline. With `execute` (1,280 bytes) and its siblings inline that
    /// allocation was 3,968 bytes per live actor; boxed, it is 1,424 (valgrind's dhat), and a
    /// command's future lives only while the message is handled (`load --actors-max`,
    /// BENCHMARKS.md).
    async fn handle(
        &self,
        myself: ActorRef<EntityMsg>,
        message: EntityMsg,
        state: &mut EntityState,
    ) -> Result<(), ActorProcessingErr> {
        state.handled += 1;
        match message {
            EntityMsg::Execute {
                command,
                origin,
                taken,
                reply,
            } => {
                taken.mark();
                let result = Box::pin(state.execute(command, origin)).await;
                let _ = reply.send(result);
            }
            EntityMsg::Show { taken, reply } => {
                taken.mark();
                let _ = reply.send(state.usable().map(|()| state.entity.clone()));
            }
            EntityMsg::Snapshot { taken, reply } => {
                taken.mark();
                let _ = reply.send(Box::pin(state.write_snapshot()).await);
            }
            EntityMsg::Wake { occurrence, ticket } => {
                Box::pin(state.wake(occurrence, ticket)).await;
            }
            EntityMsg::DeliveryDone {
                occurrence,
                attempt,
                report,
                work,
            } => {
                Box::pin(state.delivery_done(occurrence, attempt, report)).await;
                drop(work);
            }
            EntityMsg::IdleCheck => {
                if state.in_flight.is_empty()
                    && state
                        .shared
                        .registry
                        .passivate(&state.id, myself.get_id(), state.handled)
                {
                    myself.stop(Some("passivated".into()));
                }
            }
        }
        Ok(())
    }
}

impl EntityState {
    /// The entity's state read from the store (see `reload`).
    pub(crate) fn load(shared: Arc<Shared>, id: EntityId) -> EntityState {
        let mut state = EntityState {
            shared,
            id,
            entity: None,
            quarantined: None,
            unavailable: None,
            timers_unsure: None,
            stale_index_entry: None,
            handled: 0,
            in_flight: HashSet::new(),
            deferred: None,
            events_since_snapshot: 0,
        };
        state.reload();
        state
    }

    /// From now on deliveries are collected for the caller (`take_deferred`), not spawned.
    pub(crate) fn defer_deliveries(&mut self) {
        self.deferred = Some(Vec::new());
    }

    pub(crate) fn take_deferred(&mut self) -> Vec<PendingDelivery> {
        self.deferred
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records what a delivery did.
    pub(crate) async fn delivery_done(
        &mut self,
        occurrence: OccurrenceId,
        attempt: u32,
        report: Report,
    ) {
        self.in_flight.remove(&occurrence);
        let command = match report {
            Report::Single(result) => {
                if let Some(entity) = &self.entity {
                    let channel = self.shared.channel_of(entity, &occurrence.rule);
                    self.shared.metrics.delivery(&channel, &result);
                }
                Command::RecordDelivery {
                    occurrence: occurrence.clone(),
                    attempt,
                    result,
                }
            }
            Report::FanOut { channel, results } => {
                for each in &results {
                    self.shared.metrics.delivery(&channel, &each.result);
                }
                Command::RecordFanOut {
                    occurrence: occurrence.clone(),
                    attempt,
                    channel,
                    results,
                }
            }
        };
        if let Err(err) = Box::pin(self.execute(command, Origin::Engine)).await {
            // The attempt stays "delivering" in the log; its lease will wake it and it is
            // retried under the same key.
            tracing::error!(entity = %self.id, %occurrence, error = %err, "cannot record a delivery result");
        }
    }

    /// Rebuilds the state from the store: the latest snapshot, then the events after it. If the
    /// store cannot be read, the state stays the last one known durable, marked unavailable.
    fn reload(&mut self) {
        match load(&self.shared, &self.id) {
            Ok((entity, since_snapshot)) => {
                if let Some(known) = self.timers_unsure.take() {
                    self.resync_timers(&known, entity.as_ref());
                }
                self.entity = entity;
                self.events_since_snapshot = since_snapshot;
                self.quarantined = None;
                self.unavailable = None;
            }
            Err(LoadError::Corrupt(reason)) => {
                self.entity = None;
                self.unavailable = None;
                self.shared.quarantine(&self.id, &reason);
                self.quarantined = Some(reason);
            }
            Err(LoadError::Unavailable(err)) => {
                tracing::warn!(entity = %self.id, error = %err, "cannot read the entity; will read again on its next message");
                self.unavailable = Some(err);
            }
        }
    }

    /// Tells the timer the difference between the wakes it knows (those of the last durable
    /// state) and those of the state read back after a failed commit.
    fn resync_timers(&self, known: &Wakes, reloaded: Option<&Entity>) {
        if let Some(update) = wheel_update(&self.id, known, reloaded) {
            let _ = self.shared.timer().cast(update);
        }
    }

    /// A wake from an index entry the state does not imply (an attempt's lease end, which
    /// writers before leases were kept in memory put in the index; a reminder moved or ended as
    /// it fell due) has that entry removed, by the commit handling the wake or on its own.
    fn note_stale_index_entry(&mut self, occurrence: &OccurrenceId, due: Timestamp) {
        let implied = self.entity.as_ref().is_none_or(|entity| {
            entity
                .active
                .get(occurrence)
                .is_some_and(|reminder| reminder.indexed_at() == due)
        });
        self.stale_index_entry = (!implied).then(|| TimerEntry {
            due,
            entity: self.id.clone(),
            occurrence: occurrence.clone(),
        });
    }

    /// Removes the stale entry a wake came from, if handling the wake wrote nothing.
    async fn remove_stale_index_entry(&mut self) {
        let (Some(stale), Some(entity)) = (self.stale_index_entry.take(), &self.entity) else {
            return;
        };
        let batch = CommitBatch {
            entity: Some(self.id.clone()),
            expected_seq: entity.version,
            timers_remove: vec![stale],
            ..CommitBatch::default()
        };
        if let Err(err) = self.shared.commits.commit(batch).await {
            tracing::warn!(entity = %self.id, error = %err, "cannot remove a stale timer entry; its next wake tries again");
        }
    }

    /// Whether the state can be used: not quarantined, and read from the store (again, if the
    /// last read failed).
    fn usable(&mut self) -> Result<(), Error> {
        if self.unavailable.is_some() {
            self.reload();
        }
        if let Some(reason) = &self.quarantined {
            return Err(self.quarantine_error(reason));
        }
        match &self.unavailable {
            Some(err) => Err(Error::Store(err.clone())),
            None => Ok(()),
        }
    }

    fn quarantine_error(&self, reason: &str) -> Error {
        Error::Quarantined {
            entity: self.id.clone(),
            reason: reason.to_owned(),
        }
    }

    /// The timer's wake for `occurrence`; the ticket tells the timer how it ended.
    pub(crate) async fn wake(&mut self, occurrence: OccurrenceId, ticket: WakeTicket) {
        if self.quarantined.is_some() || self.in_flight.contains(&occurrence) {
            // A quarantined entity is reported, not retried in a loop; a delivery under way
            // reports its own result.
            return ticket.done();
        }
        if self.delivery_paused(&occurrence) {
            return ticket.defer();
        }
        self.note_stale_index_entry(&occurrence, ticket.due());
        let wake = Command::Wake { occurrence };
        let result = Box::pin(self.execute(wake, Origin::Engine)).await;
        if result.is_ok() {
            Box::pin(self.remove_stale_index_entry()).await;
        }
        self.stale_index_entry = None;
        match result {
            Ok(_) | Err(Error::Rejected(_)) => ticket.done(),
            Err(err) => {
                tracing::warn!(entity = %self.id, error = %err, "wake failed; the timer will retry");
                drop(ticket);
            }
        }
    }

    /// Whether the occurrence's delivery (its policy or channel, or all delivery) is paused.
    fn delivery_paused(&self, occurrence: &OccurrenceId) -> bool {
        let Some(entity) = &self.entity else {
            return false;
        };
        let channel = self.shared.channel_of(entity, &occurrence.rule);
        self.shared.paused(&entity.policy, &channel)
    }

    /// Writes a snapshot of the current state (no events) and makes it durable.
    async fn write_snapshot(&mut self) -> Result<u64, Error> {
        self.usable()?;
        let Some(entity) = &self.entity else {
            return Err(Rejection::UnknownEntity {
                entity: self.id.clone(),
            }
            .into());
        };
        let batch = CommitBatch {
            entity: Some(self.id.clone()),
            expected_seq: entity.version,
            snapshot: Some(Snapshot {
                seq: entity.version,
                record: codec::encode_snapshot(entity, self.shared.clock.now()),
            }),
            ..CommitBatch::default()
        };
        let version = entity.version;
        if let Err(err) = self.shared.commits.commit(batch).await {
            self.timers_unsure = Some(wakes(self.entity.as_ref()));
            self.reload();
            return Err(err.into());
        }
        self.events_since_snapshot = 0;
        Ok(version)
    }

    async fn execute(&mut self, command: Command, origin: Origin) -> Result<Applied, Error> {
        let result = self.execute_inner(command).await;
        let rejection = result.as_ref().err().map(Error::code);
        self.shared.metrics.command(origin, rejection);
        result
    }

    async fn execute_inner(&mut self, command: Command) -> Result<Applied, Error> {
        self.usable()?;
        let now = self.shared.clock.now();
        let policy_name = match (&self.entity, &command) {
            (Some(entity), _) => entity.policy.clone(),
            (None, Command::Create(create)) => create.policy.clone(),
            (None, _) => {
                return Err(Rejection::UnknownEntity {
                    entity: self.id.clone(),
                }
                .into());
            }
        };
        let policy = self.shared.catalog.policy(&policy_name)?.clone();
        let events = {
            let directory = self.shared.directory();
            let ctx = Context {
                now,
                policy: &policy,
                delivery: &self.shared.options.delivery,
                directory: &directory,
            };
            decide(self.entity.as_ref(), &self.id, &command, &ctx)?
        };
        let version = self.entity.as_ref().map_or(0, |e| e.version);
        if events.is_empty() {
            return Ok(Applied {
                version,
                events,
                past_events: Vec::new(),
            });
        }
        self.commit(events, now).await
    }

    async fn commit(&mut self, events: Vec<Event>, now: Timestamp) -> Result<Applied, Error> {
        let base = self.entity.as_ref().map_or(0, |e| e.version);
        // What the diffs below need of the state before, so that the fold can take the state
        // itself rather than a clone of it.
        let before_timers: BTreeSet<_> = self
            .entity
            .as_ref()
            .map(Entity::timers)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let known_wakes = wakes(self.entity.as_ref());
        let index_before = self.entity.as_ref().map(Entity::index_facts);
        let numbered = events
            .iter()
            .enumerate()
            .map(|(i, event)| (base + 1 + i as u64, now, event));
        let after = match fold(&self.id, self.entity.take(), numbered) {
            Ok((after, past_events)) => (
                after.expect("a non-empty fold yields an entity"),
                past_events,
            ),
            Err(err) => {
                // Nothing was written: the state is the store's, read back.
                self.reload();
                return Err(Error::Internal(format!(
                    "decide produced events that do not fold: {err}"
                )));
            }
        };
        let (after, past_events) = after;
        debug_assert_eq!(after.version, base + events.len() as u64);

        let after_timers: BTreeSet<_> = after.timers().into_iter().collect();
        let entry = |(due, occurrence): &(Timestamp, OccurrenceId)| TimerEntry {
            due: *due,
            entity: self.id.clone(),
            occurrence: occurrence.clone(),
        };
        let mut timers_remove: Vec<_> =
            before_timers.difference(&after_timers).map(entry).collect();
        let timers_insert: Vec<_> = after_timers.difference(&before_timers).map(entry).collect();
        if let Some(stale) = self.stale_index_entry.take() {
            timers_remove.push(stale);
        }
        let wheel = wheel_update(&self.id, &known_wakes, Some(&after));

        let (index_remove, index_insert) = index_changes(index_before.as_ref(), &after);

        let since_snapshot = self.events_since_snapshot + events.len() as u64;
        let snapshot = (since_snapshot >= self.shared.options.snapshot_every).then(|| Snapshot {
            seq: after.version,
            record: codec::encode_snapshot(&after, now),
        });
        let batch = CommitBatch {
            entity: Some(self.id.clone()),
            expected_seq: base,
            events: events.iter().map(|e| codec::encode_event(e, now)).collect(),
            past_events: past_events
                .iter()
                .map(|p| (p.occurrence.clone(), codec::encode_past_event(p)))
                .collect(),
            timers_remove,
            timers_insert,
            snapshot,
            index_remove,
            index_insert,
        };
        if let Err(err) = self.shared.commits.commit(batch).await {
            // Whether the batch was applied depends on where it failed (before applying, or in
            // the flush after): only the store knows, so the state is rebuilt from it, as a
            // restarted actor would, without dropping the messages queued behind this one.
            self.timers_unsure = Some(known_wakes);
            self.reload();
            return Err(err.into());
        }
        tracing::debug!(entity = %self.id, version = base + events.len() as u64, events = events.len(), "committed");
        if self
            .shared
            .catalog
            .policy(&after.policy)
            .is_ok_and(|policy| policy.directory)
        {
            self.shared
                .directory
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(self.id.clone(), after.clone());
        }
        self.entity = Some(after);
        self.events_since_snapshot = if since_snapshot >= self.shared.options.snapshot_every {
            0
        } else {
            since_snapshot
        };

        if let Some(update) = wheel {
            let _ = self.shared.timer().cast(update);
        }
        self.announce(&events, &past_events, now);
        Ok(Applied {
            version: base + events.len() as u64,
            events,
            past_events,
        })
    }

    /// What follows a durable commit: past events and notices to their listeners, and the
    /// deliveries the commit decided started.
    fn announce(
        &mut self,
        events: &[Event],
        past_events: &[tickler_core::PastEvent],
        now: Timestamp,
    ) {
        for past in past_events {
            let system_error = matches!(
                past.outcome,
                tickler_core::Outcome::Unsent {
                    reason: tickler_core::UnsentReason::SystemError,
                    ..
                }
            );
            self.shared.metrics.past_event(&past.outcome);
            self.log_past_event(past, system_error);
            // No subscriber is fine: past events are also in the store.
            let _ = self.shared.past_events.send(past.clone());
        }
        // Building notices costs a clone per event: only when someone listens.
        if self.shared.notices.receiver_count() > 0 {
            for notice in crate::notice::notices_of(&self.id, events) {
                let _ = self.shared.notices.send(notice);
            }
        }
        for event in events {
            match event {
                Event::DeliveryStarted {
                    occurrence,
                    attempt,
                    ..
                } => self.start_delivery(occurrence.clone(), *attempt, None, now),
                Event::FanOutStarted {
                    occurrence,
                    attempt,
                    recipients,
                    ..
                } => self.start_delivery(occurrence.clone(), *attempt, Some(recipients), now),
                _ => {}
            }
        }
    }

    /// Ids only: recipients' addresses stay out of logs. A system error is what an operator
    /// must act on (WARN, with the channel); every other ending is routine (DEBUG).
    fn log_past_event(&self, past: &tickler_core::PastEvent, system_error: bool) {
        if !system_error {
            tracing::debug!(
                entity = %past.entity,
                occurrence = %past.occurrence,
                outcome = %past.outcome.label(),
                planned_at = %past.planned_at,
                "occurrence ended"
            );
            return;
        }
        let channel = self
            .entity
            .as_ref()
            .map(|entity| self.shared.channel_of(entity, &past.occurrence.rule))
            .unwrap_or_default();
        // Not the error itself: a relay's reply may quote the recipient's address.
        tracing::warn!(
            entity = %past.entity,
            occurrence = %past.occurrence,
            %channel,
            "delivery failed for good; `tickler failures` lists it, `tickler retry` sends it again"
        );
    }

    fn start_delivery(
        &mut self,
        occurrence: OccurrenceId,
        attempt: u32,
        recipients: Option<&[String]>,
        now: Timestamp,
    ) {
        let entity = self
            .entity
            .as_ref()
            .expect("a delivery starts on a live entity");
        let job = delivery::prepare(&self.shared, entity, &occurrence, attempt, recipients, now);
        self.in_flight.insert(occurrence.clone());
        let pending = PendingDelivery {
            occurrence,
            attempt,
            job,
            work: self.shared.activity.begin(),
        };
        match &mut self.deferred {
            Some(deferred) => deferred.push(pending),
            None => {
                let shared = self.shared.clone();
                let id = self.id.clone();
                tokio::spawn(async move {
                    let done = pending.run(&shared).await;
                    report_to_actor(&shared, &id, done);
                });
            }
        }
    }
}

/// Sends a delivery's result to the entity's actor (started if need be).
pub(crate) fn report_to_actor(
    shared: &Arc<Shared>,
    id: &EntityId,
    (occurrence, attempt, report, work): (OccurrenceId, u32, Report, ActivityGuard),
) {
    let done = EntityMsg::DeliveryDone {
        occurrence,
        attempt,
        report,
        work,
    };
    if let Err(err) = shared.registry.send(shared, id, done) {
        tracing::error!(entity = %id, error = %err, "cannot report a delivery result; its lease will retry it");
    }
}

/// The secondary index entries a commit from `before` to `after` removes and inserts.
fn index_changes(
    before: Option<&IndexFacts>,
    after: &Entity,
) -> (Vec<IndexEntry>, Vec<IndexEntry>) {
    if before.is_some_and(|before| before.hold_for(after)) {
        return (Vec::new(), Vec::new());
    }
    let before = before.map(IndexFacts::entries).unwrap_or_default();
    let after = after.index_entries();
    let entry = |(index, member): &(String, String)| IndexEntry {
        index: index.clone(),
        member: member.clone(),
    };
    (
        before.difference(&after).map(entry).collect(),
        after.difference(&before).map(entry).collect(),
    )
}

/// The wakes an entity asks of the timer.
type Wakes = BTreeSet<(Timestamp, OccurrenceId)>;

fn wakes(entity: Option<&Entity>) -> Wakes {
    entity
        .map(Entity::wakes)
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// What the timer must change in memory when an entity whose wakes the timer knows as `known`
/// becomes `after`: the wakes removed, those inserted (within its horizon: later ones it pages
/// in from the index), and attempts' leases, held in memory only and so inserted whatever the
/// horizon.
fn wheel_update(id: &EntityId, known: &Wakes, after: Option<&Entity>) -> Option<TimerMsg> {
    let wanted = wakes(after);
    if *known == wanted {
        return None;
    }
    let entry = |(due, occurrence): &(Timestamp, OccurrenceId)| TimerEntry {
        due: *due,
        entity: id.clone(),
        occurrence: occurrence.clone(),
    };
    let is_lease = |entry: &TimerEntry| {
        after
            .and_then(|entity| entity.active.get(&entry.occurrence))
            .is_some_and(tickler_core::ActiveReminder::is_delivering)
    };
    let (leases, insert) = wanted.difference(known).map(entry).partition(is_lease);
    Some(TimerMsg::Update {
        remove: known.difference(&wanted).map(entry).collect(),
        insert,
        leases,
    })
}

/// Reads every entity of the directory policies into `shared.directory` (at start, before any
/// actor runs). An unreadable directory entity is quarantined like any other.
pub(crate) fn load_directory(shared: &Shared) -> Result<(), Error> {
    let mut directory = tickler_core::Directory::new();
    for policy in shared.catalog.policies().filter(|policy| policy.directory) {
        let index = tickler_core::index::policy(&policy.name);
        for members in crate::paging::index_pages(shared.store.as_ref(), &index, None) {
            for member in &members? {
                let Ok(id) = member.parse::<EntityId>() else {
                    continue;
                };
                match load(shared, &id) {
                    Ok((Some(entity), _)) => {
                        directory.insert(id, entity);
                    }
                    Ok((None, _)) => {}
                    Err(LoadError::Corrupt(reason)) => shared.quarantine(&id, &reason),
                    Err(LoadError::Unavailable(err)) => return Err(err.into()),
                }
            }
        }
    }
    tracing::info!(entities = directory.len(), "directory loaded");
    *shared
        .directory
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = directory;
    Ok(())
}

/// Why an entity could not be loaded.
enum LoadError {
    /// Its log failed a check: quarantine it, with this reason.
    Corrupt(String),
    /// The store could not be read (I/O): try again later.
    Unavailable(tickler_store::Error),
}

/// Loads an entity from its snapshot and log tail. Returns the state and the number of events
/// since the snapshot.
fn load(shared: &Shared, id: &EntityId) -> Result<(Option<Entity>, u64), LoadError> {
    let snapshot = match shared.store.snapshot(id) {
        Ok(snapshot) => snapshot,
        Err(err) if err.is_unavailable() => return Err(LoadError::Unavailable(err)),
        Err(err) => {
            tracing::warn!(entity = %id, error = %err, "unreadable snapshot; replaying the whole log");
            None
        }
    };
    let start = snapshot.and_then(|snapshot| {
        let entity = codec::decode_snapshot(&snapshot.record);
        match entity {
            Some(entity) if entity.version == snapshot.seq && &entity.id == id => Some(entity),
            _ => {
                tracing::warn!(entity = %id, "snapshot of another format or inconsistent; replaying the whole log");
                None
            }
        }
    });
    let after = start.as_ref().map_or(0, |e| e.version);
    let stored = shared.store.read_events(id, after).map_err(|err| {
        if err.is_unavailable() {
            LoadError::Unavailable(err)
        } else {
            LoadError::Corrupt(err.to_string())
        }
    })?;
    let mut decoded = Vec::with_capacity(stored.len());
    for event in &stored {
        let payload = codec::decode_event(&event.record)
            .map_err(|reason| LoadError::Corrupt(format!("event {}: {reason}", event.seq)))?;
        decoded.push((event.seq, event.record.recorded_at, payload));
    }
    let (entity, _) = fold(id, start, decoded.iter().map(|(s, t, e)| (*s, *t, e)))
        .map_err(|err| LoadError::Corrupt(err.to_string()))?;
    Ok((entity, stored.len() as u64))
}
