//! Events: what happened to an entity, in the past tense. State is the fold of its events.
//!
//! Events are persisted (postcard, inside the store's envelope). That makes this file a format:
//! variants and fields are only ever appended, never reordered, renamed in meaning or removed.
//! [`Event::type_code`] gives each variant the stable number the envelope carries.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AttrValue, EntityId, IdempotencyKey, OccurrenceId, RuleName, Timestamp, Zone};

/// The version of the event payload schema written by this build.
pub const EVENT_FORMAT_VERSION: u16 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The entity came into being under a policy, with its normalised anchors.
    Created {
        policy: String,
        policy_version: u32,
        workflow: Option<String>,
        recipient: String,
        zone: Zone,
        anchors: BTreeMap<String, Timestamp>,
        attributes: BTreeMap<String, AttrValue>,
    },
    /// An anchor took a new (normalised) value.
    AnchorMoved {
        anchor: String,
        from: Option<Timestamp>,
        to: Timestamp,
    },
    /// An attribute was set (`Some`) or cleared (`None`).
    AttributeSet {
        name: String,
        value: Option<AttrValue>,
    },
    /// An occurrence was armed for `at`. `slot` is its position in its rule's plan (0 for a
    /// one-shot rule, n for the n-th of a series); `at` is recorded so that replay never
    /// re-computes a plan (or re-draws a random time) from a policy that may have changed.
    OccurrencePlanned {
        occurrence: OccurrenceId,
        slot: u32,
        kind: String,
        at: Timestamp,
        cause: PlanCause,
    },
    /// A pending occurrence moved to a new instant because an anchor moved.
    OccurrenceRescheduled {
        occurrence: OccurrenceId,
        from: Timestamp,
        to: Timestamp,
    },
    /// A pending occurrence was switched off or back on by a user.
    OccurrenceToggled {
        occurrence: OccurrenceId,
        enabled: bool,
    },
    /// A delivery attempt was decided and is being made. If no result is recorded by
    /// `lease_until` (the process died), the attempt's outcome is unknown and it is retried under
    /// the same idempotency key.
    DeliveryStarted {
        occurrence: OccurrenceId,
        attempt: u32,
        lease_until: Timestamp,
    },
    /// An attempt failed transiently; the next one is due at `retry_at`.
    DeliveryFailed {
        occurrence: OccurrenceId,
        attempt: u32,
        error: String,
        retry_at: Timestamp,
    },
    /// The occurrence was delivered: it becomes a "sent" past event.
    OccurrenceSent {
        occurrence: OccurrenceId,
        attempt: u32,
        channel: String,
        receipt: String,
    },
    /// The occurrence ended without being sent: it becomes an "unsent" past event.
    OccurrenceUnsent {
        occurrence: OccurrenceId,
        reason: UnsentReason,
        detail: String,
    },
    /// The entity is done (review submitted, invitation rescinded…): nothing new is planned.
    Completed { reason: String },
    /// The recipient's address and/or zone changed (`None`: unchanged).
    RecipientChanged {
        recipient: Option<String>,
        zone: Option<Zone>,
    },
    /// The pending occurrences were re-planned under this version of the entity's policy.
    Replanned { policy_version: u32 },
    /// An operator asked to retry an occurrence that ended in a system error; the retry is a
    /// new occurrence (planned in the same command) for the same slot. Written by builds before
    /// `RetryPlanned`, whose retries had a key of their own; still read.
    RetryRequested { occurrence: OccurrenceId },
    /// A delivery attempt to several recipients (an audience) was decided and is being made:
    /// one message per recipient, each with its own idempotency key.
    FanOutStarted {
        occurrence: OccurrenceId,
        attempt: u32,
        lease_until: Timestamp,
        recipients: Vec<String>,
    },
    /// What an attempt of a fan-out did for its recipients: delivered (with receipts) and refused
    /// for good (with the reason). Recipients in neither are retried.
    RecipientsReported {
        occurrence: OccurrenceId,
        attempt: u32,
        delivered: Vec<(String, String)>,
        refused: Vec<(String, String)>,
    },
    /// An operator retried `retry_of`, which had ended in a system error: `occurrence` is a new
    /// occurrence for the same slot, due at `at`, delivered under the idempotency key of `key`
    /// (the occurrence whose first attempt the receiver may have seen: `retry_of`, or what that
    /// one was itself a retry of), so a receiver that did get an earlier attempt can tell. Past
    /// events are write-once, so the retry ends in a past event of its own.
    RetryPlanned {
        occurrence: OccurrenceId,
        retry_of: OccurrenceId,
        key: OccurrenceId,
        at: Timestamp,
        reason: String,
    },
    /// Why the `OccurrenceUnsent` that follows in the same command ends `occurrence`, as fields
    /// (the unsent event's `detail` says the same in words). Changes no state.
    CauseRecorded {
        occurrence: OccurrenceId,
        cause: crate::Cause,
    },
}

impl Event {
    /// The stable number of the variant, written in the record envelope so that tools can
    /// recognise (or refuse) an event without decoding it. Append only.
    pub fn type_code(&self) -> u16 {
        match self {
            Event::Created { .. } => 1,
            Event::AnchorMoved { .. } => 2,
            Event::AttributeSet { .. } => 3,
            Event::OccurrencePlanned { .. } => 4,
            Event::OccurrenceRescheduled { .. } => 5,
            Event::OccurrenceToggled { .. } => 6,
            Event::DeliveryStarted { .. } => 7,
            Event::DeliveryFailed { .. } => 8,
            Event::OccurrenceSent { .. } => 9,
            Event::OccurrenceUnsent { .. } => 10,
            Event::Completed { .. } => 11,
            Event::RecipientChanged { .. } => 12,
            Event::Replanned { .. } => 13,
            Event::RetryRequested { .. } => 14,
            Event::FanOutStarted { .. } => 15,
            Event::RecipientsReported { .. } => 16,
            Event::RetryPlanned { .. } => 17,
            Event::CauseRecorded { .. } => 18,
        }
    }

    /// The largest type code this build understands.
    pub const TYPE_CODE_MAX: u16 = 18;

    pub fn name(&self) -> &'static str {
        match self {
            Event::Created { .. } => "created",
            Event::AnchorMoved { .. } => "anchor-moved",
            Event::AttributeSet { .. } => "attribute-set",
            Event::OccurrencePlanned { .. } => "occurrence-planned",
            Event::OccurrenceRescheduled { .. } => "occurrence-rescheduled",
            Event::OccurrenceToggled { .. } => "occurrence-toggled",
            Event::DeliveryStarted { .. } => "delivery-started",
            Event::DeliveryFailed { .. } => "delivery-failed",
            Event::OccurrenceSent { .. } => "occurrence-sent",
            Event::OccurrenceUnsent { .. } => "occurrence-unsent",
            Event::Completed { .. } => "completed",
            Event::RecipientChanged { .. } => "recipient-changed",
            Event::Replanned { .. } => "replanned",
            Event::RetryRequested { .. } => "retry-requested",
            Event::FanOutStarted { .. } => "fan-out-started",
            Event::RecipientsReported { .. } => "recipients-reported",
            Event::RetryPlanned { .. } => "retry-planned",
            Event::CauseRecorded { .. } => "cause-recorded",
        }
    }
}

/// Why an occurrence was armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanCause {
    /// Planned when the entity was created.
    Created,
    /// Planned because an anchor moved (a new occurrence for a rule whose earlier one was
    /// already processed, or one that had not been in the plan before).
    AnchorMoved,
    /// Planned when an attribute or the recipient's zone changed the plan.
    Replanned,
    /// Planned by an operator's retry of an occurrence that ended in a system error (logs of
    /// builds before `Event::RetryPlanned`).
    Retried,
}

/// Why an occurrence ended without being sent. Append only (persisted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsentReason {
    /// The entity was completed first (review submitted, invitation rescinded, decision made).
    Completed,
    /// A user switched it off and it stayed off until its time.
    Deactivated,
    /// An anchor edit moved it into the past, or the plan no longer contains it.
    NotApplicable,
    /// A fire-time condition was false (already responded, already upgraded).
    ConditionFalse,
    /// The delivery kill switch for its policy or kind was off.
    DeliveryDisabled,
    /// The recipient opted out.
    OptedOut,
    /// It fired past its staleness cutoff or misfire grace, e.g. after downtime.
    Missed,
    /// Delivery failed permanently or ran out of attempts.
    SystemError,
}

impl UnsentReason {
    /// Every reason, in declaration order (for listing the valid filter values).
    pub const ALL: [UnsentReason; 8] = [
        UnsentReason::Completed,
        UnsentReason::Deactivated,
        UnsentReason::NotApplicable,
        UnsentReason::ConditionFalse,
        UnsentReason::DeliveryDisabled,
        UnsentReason::OptedOut,
        UnsentReason::Missed,
        UnsentReason::SystemError,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            UnsentReason::Completed => "completed",
            UnsentReason::Deactivated => "deactivated",
            UnsentReason::NotApplicable => "not-applicable",
            UnsentReason::ConditionFalse => "condition-false",
            UnsentReason::DeliveryDisabled => "delivery-disabled",
            UnsentReason::OptedOut => "opted-out",
            UnsentReason::Missed => "missed",
            UnsentReason::SystemError => "system-error",
        }
    }
}

impl fmt::Display for UnsentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The immutable record of how an occurrence ended, kept apart from the active reminders.
/// Built from the closing event by [`crate::past_event_of`]; `seq` names that event in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastEvent {
    pub entity: EntityId,
    pub occurrence: OccurrenceId,
    pub idempotency_key: IdempotencyKey,
    pub rule: RuleName,
    pub kind: String,
    pub slot: u32,
    /// The instant it was planned for when it ended.
    pub planned_at: Timestamp,
    pub closed_at: Timestamp,
    pub outcome: Outcome,
    /// The log sequence number of the event that closed it.
    pub seq: u64,
}

impl PastEvent {
    /// For an operator's retry, the occurrence whose key it was delivered under (the one first
    /// attempted); `None` for an occurrence delivered under its own key.
    pub fn retry_of(&self) -> Option<OccurrenceId> {
        if self.idempotency_key == self.occurrence.idempotency_key(&self.entity) {
            return None;
        }
        let own = format!("{}#", self.entity);
        self.idempotency_key
            .as_str()
            .strip_prefix(&own)
            .and_then(|rest| rest.parse().ok())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// Externally tagged on purpose: postcard cannot decode internally tagged enums.
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Sent {
        channel: String,
        receipt: String,
        attempts: u32,
    },
    Unsent {
        reason: UnsentReason,
        detail: String,
        attempts: u32,
    },
}

impl Outcome {
    pub fn label(&self) -> String {
        match self {
            Outcome::Sent { .. } => "sent".into(),
            Outcome::Unsent { reason, .. } => format!("unsent: {reason}"),
        }
    }
}
