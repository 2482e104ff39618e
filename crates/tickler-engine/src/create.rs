//! Creating an entity, safely repeatable: a client that timed out and sends its create again
//! gets success, never `already_exists` for its own request (see `tickler_core::check_repeated_create`).

use tickler_core::{Command, Context, CreateEntity, EntityId, Rejection};

use crate::codec;
use crate::engine::Engine;
use crate::entity_actor::Applied;
use crate::error::Error;

impl Engine {
    /// Creates an entity. If it exists already, the identical request succeeds with nothing
    /// written (`Applied::events` empty, `version` the entity's) and a different one is
    /// `Rejection::Conflict` naming the first field that differs.
    ///
    /// `execute(Command::Create)` keeps the plain semantics (`AlreadyExists`) for callers that
    /// create-or-update.
    pub async fn create(&self, entity: &EntityId, create: CreateEntity) -> Result<Applied, Error> {
        // A look at the store first: a repeat refused by the entity would count as a caller's
        // rejected command in the metrics.
        if self.exists(entity)? {
            return self.repeated_create(entity, &create);
        }
        match self.execute(entity, Command::Create(create.clone())).await {
            // Created meanwhile, perhaps by this very request sent twice at once.
            Err(Error::Rejected(Rejection::AlreadyExists { .. })) => {
                self.repeated_create(entity, &create)
            }
            other => other,
        }
    }

    /// Compares `create` with the `Created` event the entity's log starts with.
    fn repeated_create(&self, entity: &EntityId, create: &CreateEntity) -> Result<Applied, Error> {
        let shared = self.shared();
        let stored = shared.store.read_events(entity, 0)?;
        let (Some(first), Some(last)) = (stored.first(), stored.last()) else {
            return Err(Rejection::AlreadyExists {
                entity: entity.clone(),
            }
            .into());
        };
        let created = codec::decode_event(&first.record).map_err(|reason| Error::Quarantined {
            entity: entity.clone(),
            reason: format!("event {}: {reason}", first.seq),
        })?;
        let policy = shared.catalog.policy(&create.policy)?.clone();
        let directory = shared.directory();
        let ctx = Context {
            now: self.now(),
            policy: &policy,
            delivery: &shared.options.delivery,
            directory: &directory,
        };
        let created_at = first.record.recorded_at;
        tickler_core::check_repeated_create(entity, &created, created_at, create, &ctx)?;
        Ok(Applied {
            version: last.seq,
            events: Vec::new(),
            past_events: Vec::new(),
        })
    }
}
