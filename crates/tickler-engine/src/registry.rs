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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{ActorCell, ActorId, ActorRef, ActorRuntime, MessagingErr};
use tickler_core::EntityId;
use tickler_core::seed::stable_hash;

use crate::Error;
use crate::entity_actor::{EntityActor, EntityMsg};
use crate::shared::Shared;

const REGISTRY_SHARDS: usize = 64;

pub(crate) struct Registry {
    shards: Vec<Mutex<HashMap<EntityId, Entry>>>,
    supervisor: std::sync::OnceLock<ActorCell>,
}

struct Entry {
    actor: ActorRef<EntityMsg>,
    sent: u64,
    last_used: Instant,
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            shards: (0..REGISTRY_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            supervisor: std::sync::OnceLock::new(),
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
                let supervisor = self.supervisor.get().ok_or(Error::ShuttingDown)?.clone();
                let (actor, _) = ActorRuntime::spawn_linked_instant(
                    None,
                    EntityActor,
                    (shared.clone(), id.clone()),
                    supervisor,
                )
                .map_err(|err| Error::Internal(format!("cannot start an actor for {id}: {err}")))?;
                shard.insert(
                    id.clone(),
                    Entry {
                        actor,
                        sent: 0,
                        last_used: Instant::now(),
                    },
                );
            }
            let entry = shard.get_mut(id).expect("inserted above");
            match entry.actor.send_message(message) {
                Ok(()) => {
                    entry.sent += 1;
                    entry.last_used = Instant::now();
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

    /// Called by an idle actor: removes it if every message sent to it has been handled.
    pub fn passivate(&self, id: &EntityId, actor: ActorId, handled: u64) -> bool {
        let mut shard = self.shard(id);
        match shard.get(id) {
            Some(entry) if entry.actor.get_id() == actor && entry.sent == handled => {
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
                    .filter(|(_, entry)| now.duration_since(entry.last_used) >= idle)
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

    /// Actors running now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Forgets every actor (at shutdown, after the supervisor stopped them).
    pub fn clear(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}
