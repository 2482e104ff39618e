//! What every actor and task of one engine shares.
//!
//! `Shared` is reached from the facade, the entity and timer actors, delivery and digests. One
//! reach is structural: a digest channel delivers by sending a command to another entity of the
//! same engine (`execute` from `digest.rs`, called by delivery, itself started by an entity
//! actor), so an engine's entities command each other through it and it cannot belong to any one
//! of them. The rest (the store, the catalog, options, metrics) is read-only configuration and
//! counters that each user could be handed instead; they reach it here for brevity. Nothing but
//! the facade is public: embedders and policy families see `Engine`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ractor::{ActorRef, RpcReplyPort};
use tickler_core::{Command, Entity, EntityId, PastEvent};
use tickler_store::{GroupCommit, Store};
use tokio::sync::{Semaphore, broadcast};

use crate::Error;
use crate::activity::Activity;
use crate::catalog::Catalog;
use crate::channel::Channel;
use crate::clock::Clock;
use crate::digest::DigestChannel;
use crate::entity_actor::{Applied, EntityMsg};
use crate::metrics::{Metrics, Origin};
use crate::options::EngineOptions;
use crate::pause::Pauses;
use crate::registry::Registry;
use crate::timer::TimerMsg;

/// How many past events a slow subscriber may fall behind before it misses some (it can read
/// them back with `history`).
pub const PAST_EVENT_STREAM_CAPACITY: usize = 4_096;

pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    pub commits: GroupCommit,
    pub clock: Arc<dyn Clock>,
    pub catalog: Catalog,
    pub channels: BTreeMap<String, ChannelSlot>,
    pub options: EngineOptions,
    pub activity: Activity,
    pub past_events: broadcast::Sender<PastEvent>,
    /// Occurrences planned, moved, about to fire: `Engine::notices`.
    pub notices: broadcast::Sender<crate::Notice>,
    pub registry: Registry,
    pub timer: OnceLock<ActorRef<TimerMsg>>,
    /// Entities whose log failed a check, with the reason: reported by `status`.
    pub quarantined: Mutex<BTreeMap<EntityId, String>>,
    pub started: std::time::Instant,
    pub metrics: Arc<Metrics>,
    /// What delivery is paused for (kept in the store's meta too).
    pub pauses: std::sync::RwLock<Pauses>,
    /// The latest state of every entity whose policy is a directory (settings entities): read by
    /// commands of other entities (kill switches, references in templates). Updated after each
    /// commit of a directory entity, so a reader sees a state that is already durable.
    pub directory: std::sync::RwLock<tickler_core::Directory>,
    /// At most `fire_rate_max_per_s` messages handed to external channels per second.
    pub outgoing: crate::rate_limit::OutgoingRate,
}

pub(crate) struct ChannelSlot {
    pub target: Target,
    /// Bounds deliveries under way on this channel, so a slow channel queues its own work and
    /// does not hold up others.
    pub permits: Arc<Semaphore>,
}

/// Where a channel's messages go.
pub(crate) enum Target {
    /// Out of the engine: a file, a webhook, SMTP, an embedder's callback.
    External(Arc<dyn Channel>),
    /// Into a digest entity of this engine, collected for one message later.
    Digest(DigestChannel),
}

impl Shared {
    /// Whether delivery of occurrences of `policy` through `channel` is paused.
    pub fn paused(&self, policy: &str, channel: &str) -> bool {
        self.pauses
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .holds(policy, channel)
    }

    /// The channel a rule delivers through for this entity (a rule may choose by attribute).
    pub fn channel_of(&self, entity: &Entity, rule: &tickler_core::RuleName) -> String {
        self.catalog
            .policy(&entity.policy)
            .ok()
            .and_then(|policy| policy.rule(rule))
            .map(|rule| rule.channel_for(entity, &self.options.default_channel))
            .unwrap_or_else(|| self.options.default_channel.clone())
    }

    /// A read view of the directory; hold it only for synchronous work.
    pub fn directory(&self) -> std::sync::RwLockReadGuard<'_, tickler_core::Directory> {
        self.directory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One directory entity, cloned.
    pub fn directory_entity(&self, id: &EntityId) -> Option<Entity> {
        self.directory().get(id).cloned()
    }

    pub fn timer(&self) -> &ActorRef<TimerMsg> {
        self.timer
            .get()
            .expect("the timer starts before any entity")
    }

    pub fn quarantine(&self, entity: &EntityId, reason: &str) {
        tracing::error!(entity = %entity, reason, "entity quarantined");
        self.quarantined
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(entity.clone(), reason.to_owned());
    }
}

/// Runs a command against an entity and waits until its events are durable; `origin` says
/// whose command it is, for the metrics.
pub(crate) async fn execute(
    shared: &Arc<Shared>,
    entity: &EntityId,
    command: Command,
    origin: Origin,
) -> Result<Applied, Error> {
    ask(shared, entity, |taken, reply| EntityMsg::Execute {
        command: command.clone(),
        origin,
        taken,
        reply,
    })
    .await?
}

/// Set by an entity actor when it starts on a message that someone waits on.
pub(crate) struct Taken(Arc<AtomicBool>);

impl Taken {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Sends a message made by `make` to an entity's actor and waits for its reply.
///
/// An actor that panics (a bug) drops the messages queued behind the one it was handling. A
/// reply dropped before the actor took the message means nothing of it happened, so it is sent
/// again, once, to the fresh actor the registry starts; a reply dropped after is an internal
/// error, as whether the command took effect is then unknown to the caller.
pub(crate) async fn ask<T>(
    shared: &Arc<Shared>,
    entity: &EntityId,
    make: impl Fn(Taken, RpcReplyPort<T>) -> EntityMsg,
) -> Result<T, Error> {
    for _ in 0..2 {
        let taken = Arc::new(AtomicBool::new(false));
        let (reply, answer) = tokio::sync::oneshot::channel();
        shared
            .registry
            .send(shared, entity, make(Taken(taken.clone()), reply.into()))?;
        match answer.await {
            Ok(result) => return Ok(result),
            Err(_) if !taken.load(Ordering::Acquire) => continue,
            Err(_) => break,
        }
    }
    Err(Error::Internal(format!(
        "the actor of {entity} stopped before replying"
    )))
}
