//! Course evaluations (the `evaluation` policy, after Sakai's Evaluation System): a policy
//! family of the tickler engine.
//!
//! An evaluation is one entity created from its dates, participants and settings; its whole
//! notification chain is the policy's. Who answered is part of the entity's state (the policy's
//! list attributes: `students` may respond, `respondents` submitted, `in_progress` saved
//! without submitting), so reminders decided at fire time leave them out, and their digests
//! drop what they no longer need to do. Embedders use [`Evaluations`] on the engine; the daemon
//! serves [`commands::Commands`].

#[cfg(feature = "cli")]
pub mod cli;
pub mod commands;
mod operations;

use std::sync::Arc;

use async_trait::async_trait;
use tickler_core::EntityId;
use tickler_engine::{Applied, Error};

pub use operations::{
    DELETED, EVALUATION_POLICY, EvaluationDates, IN_PROGRESS, NewEvaluation, PARTICIPANTS,
    RESPONDENTS, Response,
};

/// What an embedder does with evaluations. Implemented for [`tickler_engine::Engine`]:
/// `use tickler_evaluation::Evaluations;` and call them on the engine.
#[async_trait]
pub trait Evaluations {
    /// Records that `participant` responded to `entity`. Each list change is its own command,
    /// decided by the entity actor, so concurrent responses never overwrite each other.
    async fn record_response(
        &self,
        entity: &EntityId,
        participant: &str,
        response: Response,
    ) -> Result<Vec<Applied>, Error>;

    /// Creates an evaluation: its whole notification chain is planned from its dates.
    async fn create_evaluation(&self, evaluation: &NewEvaluation) -> Result<Applied, Error>;

    /// Moves any of an evaluation's dates in one decision (checked together, the chain
    /// repaired once).
    async fn move_evaluation_dates(
        &self,
        entity: &EntityId,
        dates: &EvaluationDates,
    ) -> Result<Applied, Error>;

    /// Deletes an evaluation: what is pending ends unsent (completed), including a created
    /// notice still in its grace delay, and it leaves its students' digests.
    async fn delete_evaluation(&self, entity: &EntityId) -> Result<Applied, Error>;
}

/// The admin protocol commands of the family, for `Families::with`.
pub fn commands() -> Arc<dyn tickler_admin::CommandFamily> {
    Arc::new(commands::Commands)
}
