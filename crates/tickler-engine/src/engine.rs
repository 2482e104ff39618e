//! The `Engine` facade: what an embedder holds, and what the daemon drives.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tickler_core::{Command, CreateEntity, Entity, EntityId, PastEvent, Span, Timestamp};
use tickler_store::{GroupCommit, Store};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;

use crate::Error;
use crate::activity::Activity;
use crate::catalog::Catalog;
use crate::channel::Channel;
use crate::clock::{Clock, SystemClock};
use crate::codec;
use crate::digest::DigestChannel;
use crate::entity_actor::{Applied, EntityMsg};
use crate::extension::Extension;
use crate::metrics::{Metrics, Origin};
use crate::options::EngineOptions;
use crate::paging::IndexScan;
use crate::pause::{PAUSES_META, Pauses};
use crate::registry::Registry;
use crate::shared::{ChannelSlot, PAST_EVENT_STREAM_CAPACITY, Shared, Target};
use crate::timer::{TimerActor, TimerMsg, TimerStatus};

/// Where the manual clock's position is kept, so a manual-clock daemon resumes where it was.
const MANUAL_CLOCK_META: &str = "manual-clock";
/// How long `shutdown` waits for work under way before stopping anyway (all of it is durable
/// or retried after restart, so this is courtesy, not safety).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often the passivator compares the live actors with `actors_max`. Whatever is over the cap
/// stops at once, so this bounds the burst: wakes at 5k/s make about 250 actors every 50 ms,
/// while at 500 ms about 2,500 stopped together and the wakes beside them waited. p99 lateness
/// of `load -- 10000 2000 64`: median 14 ms over 10 runs checking every 500 ms, 10 ms over 12
/// runs every 50 ms (BENCHMARKS.md).
const ACTORS_CAP_CHECK: Duration = Duration::from_millis(50);

/// A running engine. Cheap to clone; every clone drives the same engine.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    supervisor: ActorRef<()>,
}

/// Builds an [`Engine`]: a store and a catalog are required; the clock defaults to the system
/// clock; channels are added by name.
pub struct EngineBuilder {
    options: EngineOptions,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    catalog: Option<Catalog>,
    channels: BTreeMap<String, Target>,
    extensions: Vec<Arc<dyn Extension>>,
}

impl Engine {
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            options: EngineOptions::default(),
            store: None,
            clock: None,
            catalog: None,
            channels: BTreeMap::new(),
            extensions: Vec::new(),
        }
    }
}

impl EngineBuilder {
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.options = options;
        self
    }

    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    pub fn catalog(mut self, catalog: Catalog) -> Self {
        self.catalog = Some(catalog);
        self
    }

    pub fn channel(mut self, name: &str, channel: Arc<dyn Channel>) -> Self {
        self.channels
            .insert(name.to_owned(), Target::External(channel));
        self
    }

    /// A channel that collects messages into per-recipient digests instead of sending them.
    pub fn digest_channel(mut self, name: &str, digest: DigestChannel) -> Self {
        self.channels
            .insert(name.to_owned(), Target::Digest(digest));
        self
    }

    /// A policy family's hook, called once the engine is open (see [`Extension`]).
    pub fn extension(mut self, extension: Arc<dyn Extension>) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Starts the engine: loads the timer index (overdue timers fire first) and begins serving.
    pub async fn open(self) -> Result<Engine, Error> {
        let missing = |what: &str| Error::Config {
            what: "engine".into(),
            reason: format!("no {what} was given to the builder"),
        };
        let store = self.store.ok_or_else(|| missing("store"))?;
        let catalog = self.catalog.ok_or_else(|| missing("catalog"))?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        self.options.check()?;
        check_channels(&catalog, &self.options, &self.channels)?;

        if let Some(manual) = clock.as_manual() {
            resume_manual_clock(manual, store.as_ref())?;
        }
        let pauses: Pauses = match store.meta(PAUSES_META)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                Error::Internal(format!("the stored pauses are unreadable: {err}"))
            })?,
            None => Pauses::default(),
        };
        if !pauses.is_empty() {
            tracing::warn!(
                ?pauses,
                "delivery is paused (kept from the last run); `tickler resume` lifts it"
            );
        }
        tracing::info!(
            tzdb = chrono_tz::IANA_TZDB_VERSION,
            now = %clock.now(),
            manual_clock = clock.as_manual().is_some(),
            "engine starting"
        );

        let channels = self
            .channels
            .into_iter()
            .map(|(name, target)| {
                let permits = Arc::new(Semaphore::new(self.options.channel_in_flight_max));
                (name, ChannelSlot { target, permits })
            })
            .collect();
        let outgoing = crate::rate_limit::OutgoingRate::new(self.options.fire_rate_max_per_s);
        let metrics = Arc::new(Metrics::default());
        let shared = Arc::new(Shared {
            commits: GroupCommit::with_timings(store.clone(), metrics.clone()),
            store,
            clock,
            catalog,
            channels,
            options: self.options,
            activity: Activity::default(),
            past_events: broadcast::channel(PAST_EVENT_STREAM_CAPACITY).0,
            notices: broadcast::channel(crate::NOTICE_STREAM_CAPACITY).0,
            registry: Registry::new(),
            timer: OnceLock::new(),
            quarantined: Mutex::new(BTreeMap::new()),
            started: std::time::Instant::now(),
            metrics,
            pauses: std::sync::RwLock::new(pauses),
            directory: std::sync::RwLock::new(BTreeMap::new()),
            outgoing,
        });
        crate::entity_actor::load_directory(&shared)?;
        let (supervisor, _) = Actor::spawn(None, EntitySupervisor, ())
            .await
            .map_err(|err| Error::Internal(format!("cannot start the supervisor: {err}")))?;
        shared.registry.set_supervisor(supervisor.get_cell());
        let (timer, _) = Actor::spawn(None, TimerActor, shared.clone())
            .await
            .map_err(|err| Error::Internal(format!("cannot start the timer: {err}")))?;
        let _ = shared.timer.set(timer.clone());
        let _ = timer.cast(TimerMsg::Tick);

        let engine = Engine {
            shared: shared.clone(),
            tasks: Arc::new(Mutex::new(Vec::new())),
            supervisor,
        };
        engine.spawn_passivator();
        for extension in &self.extensions {
            tracing::debug!(extension = extension.name(), "opening");
            extension.on_open(&engine).await?;
        }
        Ok(engine)
    }
}

/// Every channel a rule may use (its channel or the default, and its `channel_if` choice)
/// must exist; a digest channel must name a policy that collects its list, and a digest's own
/// rules must not deliver into a digest (a digest of digests would never be sent).
fn check_channels(
    catalog: &Catalog,
    options: &EngineOptions,
    channels: &BTreeMap<String, Target>,
) -> Result<(), Error> {
    let known = || channels.keys().cloned().collect::<Vec<_>>().join(", ");
    for (name, target) in channels {
        if let Target::Digest(digest) = target {
            let policy = catalog.policy(&digest.policy).map_err(|_| Error::Config {
                what: format!("channel {name}"),
                reason: format!("digest policy {:?} is not in the catalog", digest.policy),
            })?;
            digest.check(name, policy)?;
        }
    }
    for policy in catalog.policies() {
        for rule in &policy.rules {
            let default = rule.channel.as_ref().unwrap_or(&options.default_channel);
            let chosen = rule.channel_if.as_ref().map(|choice| &choice.channel);
            for name in std::iter::once(default).chain(chosen) {
                match channels.get(name) {
                    None => {
                        return Err(Error::UnknownChannel {
                            value: name.clone(),
                            known: known(),
                        });
                    }
                    Some(Target::Digest(_)) if rule.collects.is_some() => {
                        return Err(Error::Config {
                            what: format!("policy {} rule {}", policy.name, rule.name),
                            reason: format!(
                                "a digest rule cannot deliver into digest channel {name}"
                            ),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(())
}

/// The parent of every entity actor. A failed entity actor is only logged here: the registry
/// notices the dead actor on its next message and starts a fresh one, which replays.
struct EntitySupervisor;

impl Actor for EntitySupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(actor, error) = event {
            tracing::error!(actor = %actor.get_id(), %error, "entity actor failed; it restarts on its next message");
        }
        Ok(())
    }
}

/// A contact joining a group: what each of the group's policies creates its entity with.
#[derive(Clone, Debug)]
pub struct JoinGroup {
    /// The contact's id on the messaging platform (e.g. a RapidPro contact UUID).
    pub contact: String,
    pub recipient: String,
    pub zone: tickler_core::Zone,
    /// E.g. `registered_at`; the policy's default applies when absent.
    pub anchors: BTreeMap<String, Timestamp>,
    pub attributes: BTreeMap<String, tickler_core::AttrValue>,
}

/// The reason a group policy's entity is completed with when its contact leaves the group.
pub const LEFT_GROUP: &str = "left-group";

impl Engine {
    /// Runs a command against an entity. Returns once its events are durable.
    pub async fn execute(&self, entity: &EntityId, command: Command) -> Result<Applied, Error> {
        crate::shared::execute(&self.shared, entity, command, Origin::Caller).await
    }

    /// The entity a group's policy keeps for a contact: `<kind>/<group>/<contact>`.
    pub fn group_entity(
        policy: &tickler_core::Policy,
        group: &str,
        contact: &str,
    ) -> Result<EntityId, Error> {
        EntityId::new(&policy.entity_kind, &format!("{group}/{contact}")).map_err(|err| {
            Error::Rejected(tickler_core::Rejection::InvalidRecipient {
                value: contact.to_owned(),
                reason: format!("not usable as a contact id: {err}"),
            })
        })
    }

    fn group_policies(&self, group: &str) -> Result<Vec<Arc<tickler_core::Policy>>, Error> {
        let policies: Vec<_> = self
            .shared
            .catalog
            .policies_for_group(group)
            .into_iter()
            .cloned()
            .collect();
        if policies.is_empty() {
            return Err(Error::UnknownGroup {
                value: group.to_owned(),
                known: self.shared.catalog.groups().join(", "),
            });
        }
        Ok(policies)
    }

    /// A contact joins a group: every policy running for the group starts its cadence for the
    /// contact (creates its entity, with the attributes `group` and `contact` added).
    pub async fn join_group(
        &self,
        group: &str,
        join: JoinGroup,
    ) -> Result<Vec<(EntityId, Applied)>, Error> {
        let policies = self.group_policies(group)?;
        let mut attributes = join.attributes.clone();
        attributes.insert(
            "group".into(),
            tickler_core::AttrValue::Text(group.to_owned()),
        );
        attributes.insert(
            "contact".into(),
            tickler_core::AttrValue::Text(join.contact.clone()),
        );
        let mut applied = Vec::new();
        for policy in policies {
            let id = Engine::group_entity(&policy, group, &join.contact)?;
            let create = CreateEntity {
                policy: policy.name.clone(),
                workflow: None,
                recipient: join.recipient.clone(),
                zone: join.zone,
                anchors: join.anchors.clone(),
                attributes: attributes.clone(),
            };
            applied.push((id.clone(), self.create(&id, create).await?));
        }
        Ok(applied)
    }

    /// A contact leaves a group: what is pending for it under the group's policies ends as
    /// unsent ("completed: left-group").
    pub async fn leave_group(
        &self,
        group: &str,
        contact: &str,
    ) -> Result<Vec<(EntityId, Applied)>, Error> {
        let mut applied = Vec::new();
        for policy in self.group_policies(group)? {
            let id = Engine::group_entity(&policy, group, contact)?;
            let complete = Command::Complete {
                reason: LEFT_GROUP.to_owned(),
            };
            applied.push((id.clone(), self.execute(&id, complete).await?));
        }
        Ok(applied)
    }

    /// Re-plans the pending occurrences of every member of a group under the group's policies as
    /// they are now (after a policy edit). Returns the entities whose plan changed.
    pub async fn replan_group(&self, group: &str) -> Result<Vec<(EntityId, Applied)>, Error> {
        let mut changed = Vec::new();
        for policy in self.group_policies(group)? {
            // Only the group's members are read: the kind index, from the group's prefix on.
            let prefix = format!("{}/{group}/", policy.entity_kind);
            let mut scan = IndexScan::kind_with_prefix(&policy.entity_kind, &prefix);
            while let Some(page) = self.next_page(&mut scan)? {
                for id in page {
                    let applied = self.execute(&id, Command::Replan).await?;
                    if !applied.events.is_empty() {
                        changed.push((id, applied));
                    }
                }
            }
        }
        Ok(changed)
    }

    /// The entity's current state, with its active reminders.
    pub async fn show(&self, entity: &EntityId) -> Result<Entity, Error> {
        crate::shared::ask(&self.shared, entity, |taken, reply| EntityMsg::Show {
            taken,
            reply,
        })
        .await??
        .ok_or_else(|| {
            tickler_core::Rejection::UnknownEntity {
                entity: entity.clone(),
            }
            .into()
        })
    }

    /// The entity's past events, as stored (write-once), ordered by occurrence.
    pub async fn history(&self, entity: &EntityId) -> Result<Vec<PastEvent>, Error> {
        if self.shared.store.last_seq(entity)? == 0 {
            return Err(tickler_core::Rejection::UnknownEntity {
                entity: entity.clone(),
            }
            .into());
        }
        let mut past = Vec::new();
        for (occurrence, record) in self.shared.store.past_events(entity)? {
            past.push(
                codec::decode_past_event(&record).map_err(|reason| Error::Quarantined {
                    entity: entity.clone(),
                    reason: format!("past event {occurrence}: {reason}"),
                })?,
            );
        }
        past.sort_by_key(|p| (p.closed_at, p.seq));
        Ok(past)
    }

    /// Every past event from now on, as it is recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<PastEvent> {
        self.shared.past_events.subscribe()
    }

    /// Every occurrence planned, moved or about to fire from now on (see [`crate::Notice`]):
    /// observe only, sent once the events are durable.
    pub fn notices(&self) -> broadcast::Receiver<crate::Notice> {
        self.shared.notices.subscribe()
    }

    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    pub fn is_manual_clock(&self) -> bool {
        self.shared.clock.as_manual().is_some()
    }

    /// The names of the channels messages can leave through, in order.
    pub fn channel_names(&self) -> Vec<String> {
        self.shared().channels.keys().cloned().collect()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.shared.catalog
    }

    /// Manual clock only: moves time forward by `by`, stopping at every due instant on the way so
    /// that each occurrence is processed at its own time, in due order, before time moves on.
    /// Returns the number of wakes processed.
    pub async fn advance(&self, by: Span) -> Result<u64, Error> {
        if by.is_negative() {
            return Err(Error::Arguments {
                what: "clock advance".into(),
                reason: format!("the duration {by} is negative; use `clock set` to go back"),
            });
        }
        let manual = self.shared.clock.as_manual().ok_or(Error::ClockNotManual)?;
        let target = manual.now().saturating_add(by);
        let fired_before = self.timer_status().await?.fired;
        loop {
            self.settle().await?;
            match self.timer_call(TimerMsg::NextDue).await? {
                Some(next) if next <= target => {
                    if next > manual.now() {
                        manual.set(next);
                        self.persist_manual_clock().await?;
                    }
                }
                _ => break,
            }
        }
        manual.set(target);
        self.persist_manual_clock().await?;
        self.settle().await?;
        Ok(self.timer_status().await?.fired - fired_before)
    }

    /// Manual clock only: jumps to `to` in one step, forwards or backwards, as a restarted system
    /// clock would after downtime: everything overdue is then processed at `to` (and the misfire
    /// policy applies).
    pub async fn set_time(&self, to: Timestamp) -> Result<(), Error> {
        let manual = self.shared.clock.as_manual().ok_or(Error::ClockNotManual)?;
        manual.set(to);
        self.persist_manual_clock().await?;
        self.settle().await
    }

    /// Waits until nothing due now is waiting and no wake or delivery is under way.
    pub async fn settle(&self) -> Result<(), Error> {
        loop {
            let waiting = self.timer_call(TimerMsg::TickNow).await?;
            self.shared.activity.idle().await;
            if !waiting {
                // Updates sent by the work that just finished are processed before this reply.
                let still = self.timer_call(TimerMsg::TickNow).await?;
                if !still && self.shared.activity.in_flight() == 0 {
                    return Ok(());
                }
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    async fn persist_manual_clock(&self) -> Result<(), Error> {
        let now = self.shared.clock.now();
        self.shared
            .store
            .set_meta(MANUAL_CLOCK_META, &now.as_millis().to_be_bytes())?;
        self.shared.commits.durable().await?;
        Ok(())
    }

    /// Store counts (a scan: slow on large stores).
    pub fn store_stats(&self) -> Result<tickler_store::StoreStats, Error> {
        Ok(self.shared.store.stats()?)
    }

    async fn timer_status(&self) -> Result<TimerStatus, Error> {
        self.timer_call(TimerMsg::Status).await
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) async fn timer_call<T: Send + 'static>(
        &self,
        build: impl FnOnce(ractor::RpcReplyPort<T>) -> TimerMsg,
    ) -> Result<T, Error> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.shared
            .timer()
            .send_message(build(reply.into()))
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)
    }

    /// Stops idle entity actors now and then (they replay when next needed).
    fn spawn_passivator(&self) {
        let shared = self.shared.clone();
        let idle = Duration::from_millis(shared.options.passivate_after.as_millis().max(1) as u64);
        // The cap is checked often, so that the actors over it stop a few at a time; the idle
        // sweep (a scan of every actor) runs every idle / 2.
        let cap_check = ACTORS_CAP_CHECK.min(idle / 2);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(cap_check);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                interval.tick().await;
                if last_sweep.elapsed() >= idle / 2 {
                    last_sweep = tokio::time::Instant::now();
                    for id in shared.registry.idle_since(idle) {
                        let _ = shared.registry.send(&shared, &id, EntityMsg::IdleCheck);
                    }
                }
                let live = shared.registry.len();
                let cap = shared.options.actors_max;
                if live > cap {
                    // Down to 90% of the cap, so the check does not run on every new actor.
                    let excess = live - cap * 9 / 10;
                    for id in shared.registry.least_recently_used(excess) {
                        let _ = shared.registry.send(&shared, &id, EntityMsg::IdleCheck);
                    }
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Asks every idle actor to stop now (used by tests and memory-bounded bulk work).
    pub fn passivate_idle(&self) {
        for id in self.shared.registry.idle_since(Duration::ZERO) {
            let _ = self
                .shared
                .registry
                .send(&self.shared, &id, EntityMsg::IdleCheck);
        }
    }

    /// Stops the engine: no more wakes; work under way gets a short grace; the store is flushed.
    pub async fn shutdown(&self) -> Result<(), Error> {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if let Some(timer) = self.shared.timer.get() {
            let _ = timer.stop_and_wait(None, Some(SHUTDOWN_GRACE)).await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.shared.activity.idle()).await;
        let _ = self
            .supervisor
            .stop_and_wait(None, Some(SHUTDOWN_GRACE))
            .await;
        self.shared.registry.clear();
        self.shared.commits.durable().await?;
        Ok(())
    }
}

/// A manual clock resumes where the store's last run left it, or later if it was given a later
/// instant (a restart after downtime), and that instant is kept from the start, not only once
/// moved: a restart resumes where this run began (`serve --start`) even if it never moved.
/// Where a manual clock stood when the store's last run stopped (none: never run on one).
pub fn stored_manual_clock(store: &dyn Store) -> Result<Option<Timestamp>, Error> {
    let Some(bytes) = store.meta(MANUAL_CLOCK_META)? else {
        return Ok(None);
    };
    bytes
        .try_into()
        .ok()
        .map(i64::from_be_bytes)
        .and_then(Timestamp::from_millis)
        .map(Some)
        .ok_or_else(|| Error::Internal("the stored manual clock is unreadable".into()))
}

fn resume_manual_clock(manual: &crate::ManualClock, store: &dyn Store) -> Result<(), Error> {
    if let Some(resumed) = stored_manual_clock(store)? {
        manual.set(resumed.max(manual.now()));
    }
    store.set_meta(MANUAL_CLOCK_META, &manual.now().as_millis().to_be_bytes())?;
    Ok(())
}
