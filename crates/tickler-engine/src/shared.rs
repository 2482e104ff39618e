//! What every actor and task of one engine shares.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use ractor::ActorRef;
use tickler_core::{EntityId, PastEvent};
use tickler_store::{GroupCommit, Store};
use tokio::sync::{Semaphore, broadcast};

use crate::activity::Activity;
use crate::catalog::Catalog;
use crate::channel::Channel;
use crate::clock::Clock;
use crate::metrics::Metrics;
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
    pub registry: Registry,
    pub timer: OnceLock<ActorRef<TimerMsg>>,
    /// Entities whose log failed a check, with the reason: reported by `status`.
    pub quarantined: Mutex<BTreeMap<EntityId, String>>,
    pub started: std::time::Instant,
    pub metrics: Metrics,
    /// What delivery is paused for (kept in the store's meta too).
    pub pauses: std::sync::RwLock<Pauses>,
}

pub(crate) struct ChannelSlot {
    pub channel: Arc<dyn Channel>,
    /// Bounds deliveries under way on this channel, so a slow channel queues its own work and
    /// does not hold up others.
    pub permits: Arc<Semaphore>,
}

impl Shared {
    /// Whether delivery of occurrences of `policy` through `channel` is paused.
    pub fn paused(&self, policy: &str, channel: &str) -> bool {
        self.pauses
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .holds(policy, channel)
    }

    /// The channel a rule of a policy delivers through.
    pub fn channel_of(&self, policy: &str, rule: &tickler_core::RuleName) -> String {
        self.catalog
            .policy(policy)
            .ok()
            .and_then(|policy| policy.rule(rule).and_then(|rule| rule.channel.clone()))
            .unwrap_or_else(|| self.options.default_channel.clone())
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
