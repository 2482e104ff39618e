//! The batched fire path: due occurrences of passivated entities fired without an actor.
//!
//! Most entities are passivated when their reminder falls due (they were written long before).
//! Waking each through an actor costs a spawn, a mailbox, a message per step and a task per
//! delivery. Instead the timer hands one tick's wakes to one task: it claims every passivated
//! entity in the batch (the claim makes it the entity's single writer, see `registry`), reads
//! each from the store, and drives one future per entity, all in that task, through the same
//! `EntityState` code an actor runs: decide with the pure core, commit (the batch's commits
//! meet in one group commit), deliver, record the result (again one group commit).
//!
//! A wake for an entity with an actor, or one already claimed, is sent to it as a message, so
//! the per-entity order of decisions is the order messages reach its writer, as before. A
//! command that arrives while the claim waits for a delivery does not wait behind it: the
//! entity gets its actor then, with the claim's state, and the delivery's result goes to it as
//! from any delivery task.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use tickler_core::{EntityId, OccurrenceId};

use crate::Error;
use crate::entity_actor::{EntityMsg, EntityState, report_to_actor};
use crate::registry::Claim;
use crate::shared::Shared;
use crate::timer::WakeTicket;

/// The wakes of one timer tick, grouped by claimed entity.
#[derive(Default)]
pub(crate) struct FireBatch {
    fires: Vec<Fire>,
    by_entity: HashMap<EntityId, usize>,
}

struct Fire {
    claim: Claim,
    wakes: Vec<(OccurrenceId, WakeTicket)>,
}

impl FireBatch {
    /// Adds a wake to the batch if its entity is passivated (claiming it); otherwise sends it
    /// to the entity's writer.
    pub fn wake(
        &mut self,
        shared: &Arc<Shared>,
        entity: EntityId,
        occurrence: OccurrenceId,
        ticket: WakeTicket,
    ) -> Result<(), Error> {
        if let Some(&index) = self.by_entity.get(&entity) {
            self.fires[index].wakes.push((occurrence, ticket));
            return Ok(());
        }
        match shared.registry.claim(shared, &entity) {
            Some(claim) => {
                self.by_entity.insert(entity, self.fires.len());
                self.fires.push(Fire {
                    claim,
                    wakes: vec![(occurrence, ticket)],
                });
                Ok(())
            }
            None => shared
                .registry
                .send(shared, &entity, EntityMsg::Wake { occurrence, ticket }),
        }
    }

    /// Fires the batch in a task of its own.
    pub fn start(self, shared: &Arc<Shared>) {
        if self.fires.is_empty() {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut running: FuturesUnordered<_> = self
                .fires
                .into_iter()
                .map(|fire| fire_entity(shared.clone(), fire))
                .collect();
            while running.next().await.is_some() {}
        });
    }
}

/// Fires one claimed entity's wakes and records its deliveries' results.
async fn fire_entity(shared: Arc<Shared>, Fire { claim, wakes }: Fire) {
    // Held until the claim is released, so that a settled engine has no claim left.
    let _work = shared.activity.begin();
    let mut state = EntityState::load(shared.clone(), claim.id().clone());
    state.defer_deliveries();
    for (occurrence, ticket) in wakes {
        state.wake(occurrence, ticket).await;
    }
    let pending = state.take_deferred();
    if pending.is_empty() {
        return claim.release(state);
    }
    let runner = shared.clone();
    let mut deliveries = Box::pin(async move {
        join_all(pending.into_iter().map(|delivery| delivery.run(&runner))).await
    });
    let reports = tokio::select! {
        reports = &mut deliveries => Some(reports),
        () = claim.wanted() => None,
    };
    match reports {
        Some(reports) => {
            for (occurrence, attempt, report, work) in reports {
                state.delivery_done(occurrence, attempt, report).await;
                drop(work);
            }
            claim.release(state);
        }
        None => {
            // A message waits: the entity gets its actor now, with the deliveries in flight in
            // its state, and their results go to it when they come.
            let id = claim.id().clone();
            claim.release(state);
            tokio::spawn(async move {
                for done in deliveries.await {
                    report_to_actor(&shared, &id, done);
                }
            });
        }
    }
}
