//! What a decision may read besides the entity and the command: the instant, the entity's
//! policy, the delivery policy and the directory. Its own module so that `decide`, `fire` and
//! `reconcile` all depend on it, and not on each other through it.

use std::collections::BTreeMap;

use crate::{DeliveryPolicy, Entity, EntityId, Policy, Timestamp};

/// What `decide` may read besides the entity and the command.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: Timestamp,
    pub policy: &'a Policy,
    pub delivery: &'a DeliveryPolicy,
    /// The latest state of the directory entities (settings entities) as the shell knows them: read
    /// for kill switches. What they lead to is recorded in events, so replay never reads them.
    pub directory: &'a Directory,
}

/// Directory entities by id (see `Policy::directory`).
pub type Directory = BTreeMap<EntityId, Entity>;

/// An empty directory, for callers with no directory policies.
pub static NO_DIRECTORY: Directory = BTreeMap::new();
