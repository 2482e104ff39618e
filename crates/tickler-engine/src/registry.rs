//! The registry: the one place that maps an entity id to its actor, spawning it on demand.
//!
//! It is also the seam for sharding across machines later: entities are only ever addressed by
//! id through [`Registry::send`]. Shards are chosen by a stable hash of the id, and nothing here
//! assumes a lock across entities.
//!
//! Passivation without losing messages: every message to an entity goes through `send`, which
//! counts it under the shard lock. An idle actor compares that count with the number it has
//! handled, under the same lock, and removes itself only if they are equal, so no message can be
//! queued to an actor that is stopping.
//!
//! A passivated entity woken by the timer is not given an actor: the batched fire path
//! ([`crate::fire_batch`]) *claims* it, which makes the claim its single writer. A message sent
//! to a claimed entity is queued and the claim told; when the claim is released the queue goes,
//! in order, to an actor started with the claim's state (or replaying, if the claim was dropped
//! without one), so the single-writer rule and the order of messages hold across the hand-over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorId, ActorRef, ActorRuntime, MessagingErr};
use tickler_core::EntityId;
use tickler_core::seed::stable_hash;
use tokio::sync::Notify;

use crate::Error;
use crate::entity_actor::{EntityActor, EntityMsg, EntityState};
use crate::shared::Shared;

const REGISTRY_SHARDS: usize = 64;

pub(crate) struct Registry {
    shards: Vec<Mutex<HashMap<EntityId, Entry>>>,
    supervisor: std::sync::OnceLock<ActorCell>,
    /// Entries held by claims, so that `len` counts actors only.
    claimed: AtomicUsize,
}

struct Entry {
    slot: Slot,
    sent: u64,
    last_used: Instant,
}

enum Slot {
    Live(ActorRef<EntityMsg>),
    /// Held by a [`Claim`]: messages wait here until it is released.
    Claimed {
        queue: Vec<EntityMsg>,
        wanted: Arc<Notify>,
    },
}

/// The right to act as a passivated entity's single writer without an actor. Released
/// explicitly with the state it built, or on drop (a panic, a cancelled task) without one.
pub(crate) struct Claim {
    shared: Arc<Shared>,
    id: EntityId,
    wanted: Arc<Notify>,
    released: bool,
}

impl Claim {
    pub fn id(&self) -> &EntityId {
        &self.id
    }

    /// Completes once a message for the entity is waiting in the claim's queue.
    pub async fn wanted(&self) {
        self.wanted.notified().await;
    }

    /// Ends the claim; messages queued meanwhile go to an actor started with `state`.
    pub fn release(mut self, state: EntityState) {
        self.released = true;
        self.shared
            .registry
            .release(&self.shared, &self.id, Some(state));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released {
            self.shared.registry.release(&self.shared, &self.id, None);
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            shards: (0..REGISTRY_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            supervisor: std::sync::OnceLock::new(),
            claimed: AtomicUsize::new(0),
        }
    }

    pub fn set_supervisor(&self, supervisor: ActorCell) {
        let _ = self.supervisor.set(supervisor);
    }

    fn shard(&self, id: &EntityId) -> std::sync::MutexGuard<'_, HashMap<EntityId, Entry>> {
        let index = stable_hash(&[id.as_str().as_bytes()]) as usize % REGISTRY_SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends `message` to the entity's actor, starting it (and so replaying its log) if needed.
    pub fn send(
        &self,
        shared: &Arc<Shared>,
        id: &EntityId,
        message: EntityMsg,
    ) -> Result<(), Error> {
        let mut shard = self.shard(id);
        let mut message = message;
        // Twice at most: a stale entry (its actor died) is replaced once.
        for _ in 0..2 {
            if !shard.contains_key(id) {
                let actor = self.spawn(shared, id, None)?;
                shard.insert(id.clone(), Entry::live(actor, 0));
            }
            let entry = shard.get_mut(id).expect("inserted above");
            entry.last_used = Instant::now();
            let actor = match &mut entry.slot {
                Slot::Claimed { queue, wanted } => {
                    queue.push(message);
                    wanted.notify_one();
                    return Ok(());
                }
                Slot::Live(actor) => actor,
            };
            match actor.send_message(message) {
                Ok(()) => {
                    entry.sent += 1;
                    return Ok(());
                }
                Err(MessagingErr::SendErr(returned)) => {
                    shard.remove(id);
                    message = returned;
                }
                Err(err) => {
                    shard.remove(id);
                    return Err(Error::Internal(format!(
                        "cannot reach the actor of {id}: {err}"
                    )));
                }
            }
        }
        Err(Error::Internal(format!(
            "the actor of {id} stopped twice in a row"
        )))
    }

    fn spawn(
        &self,
        shared: &Arc<Shared>,
        id: &EntityId,
        state: Option<EntityState>,
    ) -> Result<ActorRef<EntityMsg>, Error> {
        let supervisor = self.supervisor.get().ok_or(Error::ShuttingDown)?.clone();
        let (actor, _) = ActorRuntime::spawn_linked_instant(
            None,
            EntityActor,
            (shared.clone(), id.clone(), state),
            supervisor,
        )
        .map_err(|err| Error::Internal(format!("cannot start an actor for {id}: {err}")))?;
        Ok(actor)
    }

    /// Claims a passivated entity for the batched fire path; `None` if it has an actor or a
    /// claim already (a wake for it is then sent as a message).
    pub fn claim(&self, shared: &Arc<Shared>, id: &EntityId) -> Option<Claim> {
        let mut shard = self.shard(id);
        if shard.contains_key(id) {
            return None;
        }
        let wanted = Arc::new(Notify::new());
        self.claimed.fetch_add(1, Ordering::Relaxed);
        shard.insert(
            id.clone(),
            Entry {
                slot: Slot::Claimed {
                    queue: Vec::new(),
                    wanted: wanted.clone(),
                },
                sent: 0,
                last_used: Instant::now(),
            },
        );
        Some(Claim {
            shared: shared.clone(),
            id: id.clone(),
            wanted,
            released: false,
        })
    }

    /// Ends a claim: the messages queued under it go, in order, to an actor started with
    /// `state` (replaying the log if `None`); with none queued the entity stays passivated.
    fn release(&self, shared: &Arc<Shared>, id: &EntityId, state: Option<EntityState>) {
        let mut shard = self.shard(id);
        if !matches!(
            shard.get(id),
            Some(Entry {
                slot: Slot::Claimed { .. },
                ..
            })
        ) {
            return;
        }
        let Some(Entry {
            slot: Slot::Claimed { queue, .. },
            ..
        }) = shard.remove(id)
        else {
            unreachable!("checked above");
        };
        self.claimed.fetch_sub(1, Ordering::Relaxed);
        if queue.is_empty() {
            return;
        }
        let actor = match self.spawn(shared, id, state) {
            Ok(actor) => actor,
            Err(err) => {
                // Shutting down: the requests' reply ports are dropped, which their callers see.
                tracing::warn!(entity = %id, error = %err, "cannot hand queued messages to an actor");
                return;
            }
        };
        let mut sent = 0;
        for message in queue {
            if actor.send_message(message).is_ok() {
                sent += 1;
            }
        }
        shard.insert(id.clone(), Entry::live(actor, sent));
    }

    /// Called by an idle actor: removes it if every message sent to it has been handled.
    pub fn passivate(&self, id: &EntityId, actor: ActorId, handled: u64) -> bool {
        let mut shard = self.shard(id);
        match shard.get(id) {
            Some(Entry {
                slot: Slot::Live(live),
                sent,
                ..
            }) if live.get_id() == actor && *sent == handled => {
                shard.remove(id);
                true
            }
            _ => false,
        }
    }

    /// Entities whose actor has received nothing for `idle`.
    pub fn idle_since(&self, idle: Duration) -> Vec<EntityId> {
        let now = Instant::now();
        self.shards
            .iter()
            .flat_map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .iter()
                    .filter(|(_, entry)| {
                        entry.is_live() && now.duration_since(entry.last_used) >= idle
                    })
                    .map(|(id, _)| id.clone())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The `count` least recently used entities with a live actor.
    pub fn least_recently_used(&self, count: usize) -> Vec<EntityId> {
        let mut all: Vec<(Instant, EntityId)> = self
            .shards
            .iter()
            .flat_map(|shard| {
                shard
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .iter()
                    .filter(|(_, entry)| entry.is_live())
                    .map(|(id, entry)| (entry.last_used, id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if count < all.len() {
            all.select_nth_unstable_by_key(count, |(used, _)| *used);
            all.truncate(count);
        }
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// Actors running now (entities claimed by the batched fire path have none).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum::<usize>()
            .saturating_sub(self.claimed.load(Ordering::Relaxed))
    }

    /// Forgets every actor (at shutdown, after the supervisor stopped them).
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        self.claimed.store(0, Ordering::Relaxed);
    }
}

impl Entry {
    fn live(actor: ActorRef<EntityMsg>, sent: u64) -> Entry {
        Entry {
            slot: Slot::Live(actor),
            sent,
            last_used: Instant::now(),
        }
    }

    fn is_live(&self) -> bool {
        matches!(self.slot, Slot::Live(_))
    }
}
