//! What a policy family (a crate of its own) plugs into the
//! engine, and the generic capabilities it builds on.
//!
//! The engine knows entities, policies, anchors, attributes, directories and digests; a family
//! knows what its entities mean. It drives the engine through the public API and these
//! capabilities only: idempotent upsert, durable family bookkeeping in the store's meta, a dry
//! run of a creation, digest withdrawal, and index scans ([`crate::IndexScan`]). An
//! [`Extension`] registered on the builder is called once the engine is open, to finish work a
//! crash left part way (a family records such work in its meta before starting it).

use std::collections::BTreeMap;

use async_trait::async_trait;
use tickler_core::{
    AttrValue, Command, Context, CreateEntity, Entity, EntityId, Rejection, Timestamp, Zone,
    decide, fold,
};

use crate::engine::Engine;
use crate::shared::Target;
use crate::{Applied, Error, digest};

/// A policy family's hook into the engine's life.
#[async_trait]
pub trait Extension: Send + Sync {
    /// Named in logs.
    fn name(&self) -> &'static str;

    /// Runs once when the engine is open and serving, before `open` returns: finish what a
    /// crash left part way. An error fails the open.
    async fn on_open(&self, engine: &Engine) -> Result<(), Error>;
}

/// An entity to create, or to bring to these anchors and attributes if it exists.
#[derive(Clone, Debug, PartialEq)]
pub struct Upsert {
    pub policy: String,
    pub recipient: String,
    pub anchors: BTreeMap<String, Timestamp>,
    pub attributes: BTreeMap<String, AttrValue>,
}

impl Engine {
    /// Creates the entity, or moves its anchors and sets its attributes in one decision: the
    /// same request sent twice leaves one entity, as the second found it.
    pub async fn upsert(&self, id: &EntityId, upsert: Upsert) -> Result<Applied, Error> {
        let create = CreateEntity {
            policy: upsert.policy,
            workflow: None,
            recipient: upsert.recipient,
            zone: Zone::UTC,
            anchors: upsert.anchors.clone(),
            attributes: upsert.attributes.clone(),
        };
        let update = Command::Update {
            anchors: upsert.anchors,
            attributes: upsert
                .attributes
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
        };
        // A look at the store rather than a create that may be refused: a refused probe would
        // count as a caller's rejected command in the metrics.
        if self.exists(id)? {
            return self.execute(id, update).await;
        }
        // The plain create, not `Engine::create`: an entity created meanwhile with other fields
        // is updated as it is now, not refused as a conflicting repeat.
        match self.execute(id, Command::Create(create)).await {
            // Created meanwhile by another request: update it as it is now.
            Err(Error::Rejected(Rejection::AlreadyExists { .. })) => self.execute(id, update).await,
            other => other,
        }
    }

    /// The latest state of a directory entity (one whose policy says `directory = true`), if it
    /// exists: read from memory, no actor asked.
    pub fn directory_entity(&self, id: &EntityId) -> Option<Entity> {
        self.shared().directory_entity(id)
    }

    /// A family's bookkeeping value under `name` in the store's meta.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.shared().store.meta(name)?)
    }

    /// Sets a family's bookkeeping value and waits until it is durable.
    pub async fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.shared().store.set_meta(name, value)?;
        self.shared().commits.durable().await?;
        Ok(())
    }

    /// Whether anything was ever written for `id` (cheaper than `show`, which starts an actor).
    pub fn exists(&self, id: &EntityId) -> Result<bool, Error> {
        Ok(self.shared().store.last_seq(id)? > 0)
    }

    /// The state `create` would give the entity `id` if it were created at `at`: the pure
    /// decision and fold, with no actor, no store and nothing sent (a preview, a simulation).
    pub fn simulate_create(
        &self,
        id: &EntityId,
        create: CreateEntity,
        at: Timestamp,
    ) -> Result<Entity, Error> {
        let shared = self.shared();
        let policy = shared.catalog.policy(&create.policy)?;
        let directory = shared.directory();
        let ctx = Context {
            now: at,
            policy,
            delivery: &shared.options.delivery,
            directory: &directory,
        };
        let events = decide(None, id, &Command::Create(create), &ctx)?;
        let numbered = events
            .iter()
            .enumerate()
            .map(|(i, event)| (i as u64 + 1, at, event));
        let (entity, _) = fold(id, None, numbered)
            .map_err(|err| Error::Internal(format!("a simulated {id} does not fold: {err}")))?;
        entity.ok_or_else(|| Error::Internal(format!("a simulated {id} has no state")))
    }

    /// Takes what `source` sent into the digests of `recipients` back out (it was answered, or
    /// `source` ended), through every digest channel.
    pub async fn withdraw_from_digests(
        &self,
        source: &EntityId,
        recipients: &[String],
    ) -> Result<(), Error> {
        let shared = self.shared();
        for slot in shared.channels.values() {
            if let Target::Digest(target) = &slot.target {
                for recipient in recipients {
                    digest::discard(shared, target, source, recipient).await?;
                }
            }
        }
        Ok(())
    }
}

/// A text attribute's value, if the entity has one.
pub fn text_attribute(entity: &Entity, name: &str) -> Option<String> {
    match entity.attributes.get(name) {
        Some(AttrValue::Text(value)) => Some(value.clone()),
        _ => None,
    }
}
