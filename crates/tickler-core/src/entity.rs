//! Entity state and `evolve`: the fold of an entity's events.
//!
//! `evolve` never decides anything: it applies what `decide` already decided and the log
//! recorded. It only fails on a log that contradicts itself (an event about an occurrence that
//! is not active), which the engine treats as corruption and quarantines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    AttrValue, EntityId, Event, OccurrenceId, Outcome, PastEvent, RuleName, Timestamp,
    UnsentReason, Zone,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    pub id: EntityId,
    pub policy: String,
    pub policy_version: u32,
    pub workflow: Option<String>,
    pub created_at: Timestamp,
    pub recipient: String,
    pub zone: Zone,
    pub anchors: BTreeMap<String, Timestamp>,
    pub attributes: BTreeMap<String, AttrValue>,
    pub completed: Option<Completion>,
    /// The mutable active reminders: occurrences not yet processed.
    pub active: BTreeMap<OccurrenceId, ActiveReminder>,
    /// Per rule: the next occurrence index and the slots already processed.
    pub ledger: BTreeMap<RuleName, RuleLedger>,
    /// Occurrences that ended in a system error and have not been retried, with the slot each
    /// was for (a retry arms a new occurrence for it).
    pub errored: BTreeMap<OccurrenceId, ErroredOccurrence>,
    /// The sequence number of the last event folded in.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErroredOccurrence {
    pub slot: u32,
    pub kind: String,
    pub planned_at: Timestamp,
    /// The occurrence whose idempotency key it was delivered under, when not its own (it was
    /// itself a retry): a retry of it keeps that key.
    pub key: Option<OccurrenceId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveReminder {
    pub occurrence: OccurrenceId,
    pub slot: u32,
    pub kind: String,
    pub planned_at: Timestamp,
    /// Off: switched off by a user; at its time it becomes unsent "deactivated".
    pub enabled: bool,
    pub phase: Phase,
    /// Fan-out only: recipients already delivered to (with receipts) and refused for good (with
    /// the reason), across attempts.
    pub delivered: Vec<(String, String)>,
    pub refused: Vec<(String, String)>,
    /// An operator's retry: the occurrence whose idempotency key it is delivered under. `None`:
    /// its own.
    pub key: Option<OccurrenceId>,
}

/// Where an active reminder is in its life. Pending is Aperta's "active"; the two others are
/// its "processing".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    /// Attempt `attempt` is being delivered (to `recipients`, for a fan-out); unknown outcome
    /// once `lease_until` passes.
    Delivering {
        attempt: u32,
        lease_until: Timestamp,
        recipients: Vec<String>,
    },
    /// Attempt `attempt` failed with `error`; the next is due at `retry_at` (to `recipients`, the
    /// ones a fan-out has left).
    RetryWaiting {
        attempt: u32,
        retry_at: Timestamp,
        error: String,
        recipients: Vec<String>,
    },
}

impl ActiveReminder {
    /// A newly planned occurrence, switched on, not attempted yet.
    pub fn pending(
        occurrence: &OccurrenceId,
        slot: u32,
        kind: &str,
        planned_at: Timestamp,
        key: Option<OccurrenceId>,
    ) -> ActiveReminder {
        ActiveReminder {
            occurrence: occurrence.clone(),
            slot,
            kind: kind.to_owned(),
            planned_at,
            enabled: true,
            phase: Phase::Pending,
            delivered: Vec::new(),
            refused: Vec::new(),
            key,
        }
    }

    /// The key every channel and receiver knows this reminder's message by: its own, or for a
    /// retry the key of the occurrence it retries, so one occurrence never has two keys.
    pub fn idempotency_key(&self, entity: &EntityId) -> crate::IdempotencyKey {
        self.key
            .as_ref()
            .unwrap_or(&self.occurrence)
            .idempotency_key(entity)
    }

    /// When the timer must wake the entity for this reminder: for an attempt under way, when its
    /// lease ends (a wake held in memory only, see [`ActiveReminder::indexed_at`]).
    pub fn wake_at(&self) -> Timestamp {
        match &self.phase {
            Phase::Pending => self.planned_at,
            Phase::Delivering { lease_until, .. } => *lease_until,
            Phase::RetryWaiting { retry_at, .. } => *retry_at,
        }
    }

    /// The instant the store's timer index holds for this reminder. An attempt under way keeps
    /// the entry of its planned instant instead of moving it to its lease's end: only the
    /// process that started the attempt can report its result, so the lease lives in that
    /// process's memory, and after a restart the entry (already due) wakes the entity at once to
    /// record the outcome as unknown. A fire then writes no timer entry when it starts.
    pub fn indexed_at(&self) -> Timestamp {
        match &self.phase {
            Phase::Pending | Phase::Delivering { .. } => self.planned_at,
            Phase::RetryWaiting { retry_at, .. } => *retry_at,
        }
    }

    /// Whether an attempt is under way.
    pub fn is_delivering(&self) -> bool {
        matches!(self.phase, Phase::Delivering { .. })
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        match &self.phase {
            Phase::Pending => 0,
            Phase::Delivering { attempt, .. } | Phase::RetryWaiting { attempt, .. } => *attempt,
        }
    }

    pub fn state_label(&self) -> &'static str {
        match (&self.phase, self.enabled) {
            (Phase::Pending, true) => "pending-on",
            (Phase::Pending, false) => "pending-off",
            (Phase::Delivering { .. }, _) => "processing",
            (Phase::RetryWaiting { .. }, _) => "retry-waiting",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleLedger {
    pub next_index: u32,
    /// Processed slots and the instant each was planned for when it ended: a slot is not
    /// re-armed for the instant it already ended at.
    pub processed: BTreeMap<u32, Timestamp>,
}

/// A log that contradicts itself. Reported as corruption, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FoldError {
    #[error("event {seq} ({event}) of {entity} comes before the entity was created")]
    NotCreated {
        entity: EntityId,
        seq: u64,
        event: &'static str,
    },
    #[error("event {seq} of {entity} creates an entity that already exists")]
    CreatedTwice { entity: EntityId, seq: u64 },
    #[error("event {seq} ({event}) of {entity} refers to {occurrence}, which is not active")]
    NotActive {
        entity: EntityId,
        seq: u64,
        event: &'static str,
        occurrence: OccurrenceId,
    },
    #[error("event {seq} of {entity} plans {occurrence}, which already exists")]
    PlannedTwice {
        entity: EntityId,
        seq: u64,
        occurrence: OccurrenceId,
    },
    #[error("event {seq} of {entity} retries {occurrence}, which did not end in a system error")]
    NotErrored {
        entity: EntityId,
        seq: u64,
        occurrence: OccurrenceId,
    },
    #[error("event {seq} of {entity} follows event {previous}: the log has a gap")]
    Gap {
        entity: EntityId,
        seq: u64,
        previous: u64,
    },
}

/// Applies one event recorded at `at` with sequence number `seq`.
pub fn evolve(
    state: Option<Entity>,
    id: &EntityId,
    event: &Event,
    at: Timestamp,
    seq: u64,
) -> Result<Entity, FoldError> {
    let Some(mut entity) = state else {
        return create(id, event, at, seq);
    };
    if seq != entity.version + 1 {
        return Err(FoldError::Gap {
            entity: id.clone(),
            seq,
            previous: entity.version,
        });
    }
    let not_active = |occurrence: &OccurrenceId| FoldError::NotActive {
        entity: id.clone(),
        seq,
        event: event.name(),
        occurrence: occurrence.clone(),
    };
    match event {
        Event::Created { .. } => {
            return Err(FoldError::CreatedTwice {
                entity: id.clone(),
                seq,
            });
        }
        Event::AnchorMoved { anchor, to, .. } => {
            entity.anchors.insert(anchor.clone(), *to);
        }
        Event::AttributeSet { name, value } => match value {
            Some(value) => {
                entity.attributes.insert(name.clone(), value.clone());
            }
            None => {
                entity.attributes.remove(name);
            }
        },
        Event::OccurrencePlanned {
            occurrence,
            slot,
            kind,
            at: planned_at,
            ..
        } => {
            let planned = ActiveReminder::pending(occurrence, *slot, kind, *planned_at, None);
            arm(&mut entity, seq, planned)?;
        }
        Event::OccurrenceRescheduled { occurrence, to, .. } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            reminder.planned_at = *to;
        }
        Event::OccurrenceToggled {
            occurrence,
            enabled,
        } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            reminder.enabled = *enabled;
        }
        Event::DeliveryStarted {
            occurrence,
            attempt,
            lease_until,
        } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            reminder.phase = Phase::Delivering {
                attempt: *attempt,
                lease_until: *lease_until,
                recipients: Vec::new(),
            };
        }
        Event::FanOutStarted {
            occurrence,
            attempt,
            lease_until,
            recipients,
        } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            reminder.phase = Phase::Delivering {
                attempt: *attempt,
                lease_until: *lease_until,
                recipients: recipients.clone(),
            };
        }
        Event::RecipientsReported {
            occurrence,
            delivered,
            refused,
            ..
        } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            reminder.delivered.extend(delivered.iter().cloned());
            reminder.refused.extend(refused.iter().cloned());
        }
        Event::DeliveryFailed {
            occurrence,
            attempt,
            error,
            retry_at,
        } => {
            let reminder = entity
                .active
                .get_mut(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            let remaining = match &reminder.phase {
                Phase::Delivering { recipients, .. } | Phase::RetryWaiting { recipients, .. } => {
                    recipients
                        .iter()
                        .filter(|r| !reminder.delivered.iter().any(|(d, _)| d == *r))
                        .filter(|r| !reminder.refused.iter().any(|(d, _)| d == *r))
                        .cloned()
                        .collect()
                }
                Phase::Pending => Vec::new(),
            };
            reminder.phase = Phase::RetryWaiting {
                attempt: *attempt,
                retry_at: *retry_at,
                error: error.clone(),
                recipients: remaining,
            };
        }
        Event::OccurrenceSent { occurrence, .. } | Event::OccurrenceUnsent { occurrence, .. } => {
            let reminder = entity
                .active
                .remove(occurrence)
                .ok_or_else(|| not_active(occurrence))?;
            if let Event::OccurrenceUnsent {
                reason: UnsentReason::SystemError,
                ..
            } = event
            {
                entity.errored.insert(
                    occurrence.clone(),
                    ErroredOccurrence {
                        slot: reminder.slot,
                        kind: reminder.kind.clone(),
                        planned_at: reminder.planned_at,
                        key: reminder.key.clone(),
                    },
                );
            }
            entity
                .ledger
                .entry(occurrence.rule.clone())
                .or_default()
                .processed
                .insert(reminder.slot, reminder.planned_at);
        }
        Event::RecipientChanged { recipient, zone } => {
            if let Some(recipient) = recipient {
                entity.recipient = recipient.clone();
            }
            if let Some(zone) = zone {
                entity.zone = *zone;
            }
        }
        Event::RetryRequested { occurrence } => {
            if entity.errored.remove(occurrence).is_none() {
                return Err(FoldError::NotErrored {
                    entity: id.clone(),
                    seq,
                    occurrence: occurrence.clone(),
                });
            }
        }
        Event::RetryPlanned {
            occurrence,
            retry_of,
            key,
            at: planned_at,
            ..
        } => arm_retry(&mut entity, seq, occurrence, retry_of, key, *planned_at)?,
        Event::CauseRecorded { occurrence, .. } => {
            if !entity.active.contains_key(occurrence) {
                return Err(not_active(occurrence));
            }
        }
        Event::Replanned { policy_version } => {
            entity.policy_version = *policy_version;
        }
        Event::Completed { reason } => {
            entity.completed = Some(Completion {
                reason: reason.clone(),
                at,
            });
        }
    }
    entity.version = seq;
    Ok(entity)
}

fn create(id: &EntityId, event: &Event, at: Timestamp, seq: u64) -> Result<Entity, FoldError> {
    let Event::Created {
        policy,
        policy_version,
        workflow,
        recipient,
        zone,
        anchors,
        attributes,
    } = event
    else {
        return Err(FoldError::NotCreated {
            entity: id.clone(),
            seq,
            event: event.name(),
        });
    };
    if seq != 1 {
        return Err(FoldError::Gap {
            entity: id.clone(),
            seq,
            previous: 0,
        });
    }
    Ok(Entity {
        id: id.clone(),
        policy: policy.clone(),
        policy_version: *policy_version,
        workflow: workflow.clone(),
        created_at: at,
        recipient: recipient.clone(),
        zone: *zone,
        anchors: anchors.clone(),
        attributes: attributes.clone(),
        completed: None,
        active: BTreeMap::new(),
        ledger: BTreeMap::new(),
        errored: BTreeMap::new(),
        version: seq,
    })
}

/// An operator's retry of an errored occurrence: a new active reminder for its slot, under the
/// retried occurrence's key.
fn arm_retry(
    entity: &mut Entity,
    seq: u64,
    occurrence: &OccurrenceId,
    retry_of: &OccurrenceId,
    key: &OccurrenceId,
    planned_at: Timestamp,
) -> Result<(), FoldError> {
    let Some(errored) = entity.errored.remove(retry_of) else {
        return Err(FoldError::NotErrored {
            entity: entity.id.clone(),
            seq,
            occurrence: retry_of.clone(),
        });
    };
    let key = Some(key.clone());
    let retry = ActiveReminder::pending(occurrence, errored.slot, &errored.kind, planned_at, key);
    arm(entity, seq, retry)
}

/// Makes `reminder` active (a new occurrence: its id must not be active yet).
fn arm(entity: &mut Entity, seq: u64, reminder: ActiveReminder) -> Result<(), FoldError> {
    let occurrence = &reminder.occurrence;
    if entity.active.contains_key(occurrence) {
        return Err(FoldError::PlannedTwice {
            entity: entity.id.clone(),
            seq,
            occurrence: occurrence.clone(),
        });
    }
    let ledger = entity.ledger.entry(occurrence.rule.clone()).or_default();
    ledger.next_index = ledger.next_index.max(occurrence.index + 1);
    entity.active.insert(occurrence.clone(), reminder);
    Ok(())
}

/// The past event an event creates, if it closes an occurrence. `before` is the state the event
/// applies to.
pub fn past_event_of(before: &Entity, event: &Event, at: Timestamp, seq: u64) -> Option<PastEvent> {
    let (occurrence, outcome) = match event {
        Event::OccurrenceSent {
            occurrence,
            attempt,
            channel,
            receipt,
        } => (
            occurrence,
            Outcome::Sent {
                channel: channel.clone(),
                receipt: receipt.clone(),
                attempts: *attempt,
            },
        ),
        Event::OccurrenceUnsent {
            occurrence,
            reason,
            detail,
        } => {
            let attempts = before.active.get(occurrence).map_or(0, |r| r.attempts());
            (
                occurrence,
                Outcome::Unsent {
                    reason: *reason,
                    detail: detail.clone(),
                    attempts,
                },
            )
        }
        _ => return None,
    };
    let reminder = before.active.get(occurrence)?;
    Some(PastEvent {
        entity: before.id.clone(),
        occurrence: occurrence.clone(),
        idempotency_key: reminder.idempotency_key(&before.id),
        rule: occurrence.rule.clone(),
        kind: reminder.kind.clone(),
        slot: reminder.slot,
        planned_at: reminder.planned_at,
        closed_at: at,
        outcome,
        seq,
    })
}

/// Secondary index names (see `proto/record-format.md`, keyspace `I`).
pub mod index {
    /// Occurrences waiting for their next delivery attempt: `entity#rule#index`.
    pub const RETRYING: &str = "retrying";
    /// Occurrences that ended in a system error and were not retried: `entity#rule#index`.
    pub const ERRORED: &str = "errored";

    pub fn policy(name: &str) -> String {
        format!("policy/{name}")
    }
    pub fn kind(kind: &str) -> String {
        format!("kind/{kind}")
    }
    pub fn recipient(recipient: &str) -> String {
        format!("recipient/{recipient}")
    }
}

/// What an entity's index entries are made of: kept across a command (a few strings, not a
/// clone of the state) so that the entries it changed can be found after the fold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFacts {
    id: EntityId,
    policy: String,
    recipient: String,
    retrying: Vec<OccurrenceId>,
    errored: Vec<OccurrenceId>,
}

impl IndexFacts {
    /// Whether `entity` has these facts, decided without building its entries.
    pub fn hold_for(&self, entity: &Entity) -> bool {
        self.id == entity.id
            && self.policy == entity.policy
            && self.recipient == entity.recipient
            && self.errored.iter().eq(entity.errored.keys())
            && self.retrying.iter().eq(entity.retrying())
    }

    /// The (index, member) pairs, as [`Entity::index_entries`].
    pub fn entries(&self) -> std::collections::BTreeSet<(String, String)> {
        let id = self.id.to_string();
        let mut entries = std::collections::BTreeSet::new();
        entries.insert((index::policy(&self.policy), id.clone()));
        entries.insert((index::kind(self.id.kind()), id.clone()));
        entries.insert((index::recipient(&self.recipient), id));
        for occurrence in &self.retrying {
            entries.insert((
                index::RETRYING.to_owned(),
                occurrence.idempotency_key(&self.id).to_string(),
            ));
        }
        for occurrence in &self.errored {
            entries.insert((
                index::ERRORED.to_owned(),
                occurrence.idempotency_key(&self.id).to_string(),
            ));
        }
        entries
    }
}

impl Entity {
    /// The (index, member) pairs this state puts in the store's secondary indexes: derived from
    /// the state, so the engine keeps them exact by diffing before and after each command.
    pub fn index_entries(&self) -> std::collections::BTreeSet<(String, String)> {
        self.index_facts().entries()
    }

    pub fn index_facts(&self) -> IndexFacts {
        IndexFacts {
            id: self.id.clone(),
            policy: self.policy.clone(),
            recipient: self.recipient.clone(),
            retrying: self.retrying().cloned().collect(),
            errored: self.errored.keys().cloned().collect(),
        }
    }

    /// Whether `other` has the same [`Entity::index_entries`] as `self`, decided without
    /// building them (a dozen strings): most commits change nothing they are made of.
    pub fn same_index_entries(&self, other: &Entity) -> bool {
        self.id == other.id
            && self.policy == other.policy
            && self.recipient == other.recipient
            && self.errored.keys().eq(other.errored.keys())
            && self.retrying().eq(other.retrying())
    }

    /// The occurrences waiting for a retry, in order.
    fn retrying(&self) -> impl Iterator<Item = &OccurrenceId> {
        self.active
            .values()
            .filter(|reminder| matches!(reminder.phase, Phase::RetryWaiting { .. }))
            .map(|reminder| &reminder.occurrence)
    }

    pub fn is_completed(&self) -> bool {
        self.completed.is_some()
    }

    /// Every entry the store's timer index must hold for this entity, in order (see
    /// [`ActiveReminder::indexed_at`]).
    pub fn timers(&self) -> Vec<(Timestamp, OccurrenceId)> {
        self.reminders_at(ActiveReminder::indexed_at)
    }

    /// Every wake the timer must hold in memory for this entity, in order: the index's entries,
    /// but an attempt under way wakes when its lease ends.
    pub fn wakes(&self) -> Vec<(Timestamp, OccurrenceId)> {
        self.reminders_at(ActiveReminder::wake_at)
    }

    /// Every active reminder at the instant `at` gives it, in order.
    fn reminders_at(&self, at: fn(&ActiveReminder) -> Timestamp) -> Vec<(Timestamp, OccurrenceId)> {
        let mut timers: Vec<_> = self
            .active
            .values()
            .map(|reminder| (at(reminder), reminder.occurrence.clone()))
            .collect();
        timers.sort();
        timers
    }

    /// The earliest wake, if any.
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.active.values().map(ActiveReminder::wake_at).min()
    }

    /// Active reminders for one rule slot.
    pub fn active_for_slot(&self, rule: &RuleName, slot: u32) -> Option<&ActiveReminder> {
        self.active
            .values()
            .find(|reminder| &reminder.occurrence.rule == rule && reminder.slot == slot)
    }

    pub fn next_index(&self, rule: &RuleName) -> u32 {
        self.ledger.get(rule).map_or(0, |ledger| ledger.next_index)
    }

    pub fn processed_at(&self, rule: &RuleName, slot: u32) -> Option<Timestamp> {
        self.ledger
            .get(rule)
            .and_then(|ledger| ledger.processed.get(&slot).copied())
    }
}
