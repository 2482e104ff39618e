//! The JSON shapes the protocol returns for entities, reminders and past events. Flat on
//! purpose: they print as table rows and are easy to filter with `jq`.

use std::collections::BTreeMap;

use serde::Serialize;
use tickler_core::{ActiveReminder, AttrValue, Entity, Outcome, PastEvent, Timestamp, Zone};
use tickler_engine::Applied;

#[derive(Clone, Debug, Serialize)]
pub struct EntityView {
    pub entity: String,
    pub policy: String,
    pub policy_version: u32,
    pub workflow: Option<String>,
    pub recipient: String,
    pub zone: String,
    pub created_at: Timestamp,
    pub version: u64,
    pub anchors: BTreeMap<String, Timestamp>,
    pub attributes: BTreeMap<String, AttrValue>,
    pub completed: Option<CompletedView>,
    /// Where the entity is by its dates, when its policy declares phases (a survey's
    /// in-queue, active, grace, closed, viewable).
    pub phase: Option<String>,
    /// The active reminders, by planned instant.
    pub active: Vec<ReminderView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompletedView {
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReminderView {
    pub occurrence: String,
    pub idempotency_key: String,
    pub rule: String,
    pub kind: String,
    pub planned_at: Timestamp,
    /// The planned instant in the recipient's zone.
    pub planned_local: String,
    /// pending-on, pending-off, processing or retry-waiting.
    pub state: String,
    pub attempts: u32,
    pub wake_at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct PastEventView {
    pub occurrence: String,
    pub idempotency_key: String,
    /// An operator's retry: the occurrence it retried, whose key it was delivered under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
    pub rule: String,
    pub kind: String,
    pub planned_at: Timestamp,
    pub closed_at: Timestamp,
    /// sent or unsent.
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: String,
    pub channel: Option<String>,
    pub receipt: Option<String>,
    pub attempts: u32,
    /// The log sequence number of the event that closed it.
    pub seq: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppliedView {
    pub entity: String,
    pub version: u64,
    /// The names of the events appended (empty: the command changed nothing).
    pub events: Vec<String>,
    pub past_events: Vec<PastEventView>,
    /// The entity after the command.
    pub state: Option<EntityView>,
}

pub fn local_text(at: Timestamp, zone: Zone) -> String {
    at.to_chrono()
        .with_timezone(&zone.tz())
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

impl EntityView {
    pub fn new(entity: &Entity) -> EntityView {
        let mut active: Vec<&ActiveReminder> = entity.active.values().collect();
        active.sort_by_key(|r| (r.planned_at, r.occurrence.clone()));
        EntityView {
            entity: entity.id.to_string(),
            policy: entity.policy.clone(),
            policy_version: entity.policy_version,
            workflow: entity.workflow.clone(),
            recipient: entity.recipient.clone(),
            zone: entity.zone.to_string(),
            created_at: entity.created_at,
            version: entity.version,
            anchors: entity.anchors.clone(),
            attributes: entity.attributes.clone(),
            completed: entity.completed.as_ref().map(|c| CompletedView {
                reason: c.reason.clone(),
                at: c.at,
            }),
            phase: None,
            active: active
                .into_iter()
                .map(|r| ReminderView {
                    occurrence: r.occurrence.to_string(),
                    idempotency_key: r.idempotency_key(&entity.id).to_string(),
                    rule: r.occurrence.rule.to_string(),
                    kind: r.kind.clone(),
                    planned_at: r.planned_at,
                    planned_local: local_text(r.planned_at, entity.zone),
                    state: r.state_label().to_owned(),
                    attempts: r.attempts(),
                    wake_at: r.wake_at(),
                })
                .collect(),
        }
    }
}

impl EntityView {
    pub fn with_phase(mut self, phase: Option<String>) -> EntityView {
        self.phase = phase;
        self
    }
}

impl PastEventView {
    pub fn new(past: &PastEvent) -> PastEventView {
        let (outcome, reason, detail, channel, receipt, attempts) = match &past.outcome {
            Outcome::Sent {
                channel,
                receipt,
                attempts,
            } => (
                "sent",
                None,
                String::new(),
                Some(channel.clone()),
                Some(receipt.clone()),
                *attempts,
            ),
            Outcome::Unsent {
                reason,
                detail,
                attempts,
            } => (
                "unsent",
                Some(reason.to_string()),
                detail.clone(),
                None,
                None,
                *attempts,
            ),
        };
        PastEventView {
            occurrence: past.occurrence.to_string(),
            idempotency_key: past.idempotency_key.to_string(),
            retry_of: past.retry_of().map(|o| o.to_string()),
            rule: past.rule.to_string(),
            kind: past.kind.clone(),
            planned_at: past.planned_at,
            closed_at: past.closed_at,
            outcome: outcome.to_owned(),
            reason,
            detail,
            channel,
            receipt,
            attempts,
            seq: past.seq,
        }
    }
}

impl AppliedView {
    pub fn new(
        entity: &tickler_core::EntityId,
        applied: &Applied,
        state: Option<&Entity>,
    ) -> AppliedView {
        AppliedView {
            entity: entity.to_string(),
            version: applied.version,
            events: applied.events.iter().map(|e| e.name().to_owned()).collect(),
            past_events: applied.past_events.iter().map(PastEventView::new).collect(),
            state: state.map(EntityView::new),
        }
    }
}
