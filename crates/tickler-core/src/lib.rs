//! The tickler domain: ids, instants, policies and rules, entity state, and the pure
//! `decide` / `evolve` functions that turn commands into events and events into state.
//!
//! Nothing here performs I/O, reads a clock or draws unseeded randomness: `now` is an argument,
//! and every random draw is seeded from stable names (see `seed`).

mod attribute;
mod cause;
mod command;
pub mod conditions;
mod context;
mod decide;
mod entity;
mod error;
mod event;
mod fire;
mod ids;
pub mod plan;
pub mod policy;
mod reconcile;
mod repeat;
mod retry;
mod rule;
pub mod seed;
mod time;
mod zone;

pub use attribute::{AttrValue, is_email_address};
pub use cause::{Bound, Cause};
pub use command::{Command, CreateEntity, DeliveryResult, RecipientResult, Rejection};
pub use context::{Context, Directory, NO_DIRECTORY};
pub use decide::{RECIPIENT_LEN_MAX, decide};
pub use entity::{
    ActiveReminder, Completion, Entity, ErroredOccurrence, FoldError, IndexFacts, Phase,
    RuleLedger, evolve, index, past_event_of,
};
pub use error::Error;
pub use event::{EVENT_FORMAT_VERSION, Event, Outcome, PastEvent, PlanCause, UnsentReason};
pub use ids::{EntityId, IdempotencyKey, OccurrenceId, RuleName};
pub use policy::Policy;
pub use repeat::check_repeated_create;
pub use retry::DeliveryPolicy;
pub use time::{Span, Timestamp};
pub use zone::Zone;

/// Folds recorded events `(seq, recorded_at, event)` into the state they describe, collecting
/// the past events they create along the way. `start` is a snapshot to continue from.
pub fn fold<'a>(
    id: &EntityId,
    start: Option<Entity>,
    events: impl IntoIterator<Item = (u64, Timestamp, &'a Event)>,
) -> Result<(Option<Entity>, Vec<PastEvent>), FoldError> {
    let mut state = start;
    let mut past = Vec::new();
    for (seq, at, event) in events {
        if let Some(before) = &state
            && let Some(past_event) = past_event_of(before, event, at, seq)
        {
            past.push(past_event);
        }
        state = Some(evolve(state, id, event, at, seq)?);
    }
    Ok((state, past))
}
