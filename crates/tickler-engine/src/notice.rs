//! Notices for an embedder who observes the engine as Quartz's listeners observe a scheduler:
//! an occurrence planned, moved, about to be handed to its channel. Past events (sent, unsent)
//! have their own stream (`Engine::subscribe`).
//!
//! Observe only: a notice is sent after the events it reports are durable, and nothing waits
//! for a receiver, so a listener can neither veto nor slow the engine. A slow listener misses
//! notices (`RecvError::Lagged`) and can read the entity back with `show`.

use tickler_core::{EntityId, Event, OccurrenceId, Timestamp};

/// How many notices a slow listener may fall behind before it misses some.
pub const NOTICE_STREAM_CAPACITY: usize = 4_096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// An occurrence was armed for `at` (a new entity's plan, a new slot of a series, a
    /// replan, a retry).
    Planned {
        entity: EntityId,
        occurrence: OccurrenceId,
        kind: String,
        at: Timestamp,
    },
    /// A pending occurrence moved because an anchor it follows moved.
    Moved {
        entity: EntityId,
        occurrence: OccurrenceId,
        from: Timestamp,
        to: Timestamp,
    },
    /// An attempt is about to be handed to its channel: the decision to deliver is durable.
    Firing {
        entity: EntityId,
        occurrence: OccurrenceId,
        attempt: u32,
    },
}

/// The notices a command's events give, in their order.
pub(crate) fn notices_of<'a>(
    entity: &'a EntityId,
    events: &'a [Event],
) -> impl Iterator<Item = Notice> + 'a {
    events.iter().filter_map(move |event| match event {
        Event::OccurrencePlanned {
            occurrence,
            kind,
            at,
            ..
        } => Some(Notice::Planned {
            entity: entity.clone(),
            occurrence: occurrence.clone(),
            kind: kind.clone(),
            at: *at,
        }),
        Event::OccurrenceRescheduled {
            occurrence,
            from,
            to,
        } => Some(Notice::Moved {
            entity: entity.clone(),
            occurrence: occurrence.clone(),
            from: *from,
            to: *to,
        }),
        Event::DeliveryStarted {
            occurrence,
            attempt,
            ..
        }
        | Event::FanOutStarted {
            occurrence,
            attempt,
            ..
        } => Some(Notice::Firing {
            entity: entity.clone(),
            occurrence: occurrence.clone(),
            attempt: *attempt,
        }),
        _ => None,
    })
}
