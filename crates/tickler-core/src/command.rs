//! Commands: what callers ask of an entity, in the imperative. `decide` turns one into events or
//! a [`Rejection`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{AttrValue, EntityId, OccurrenceId, Timestamp, Zone};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create the entity under a policy (and optionally one of its workflows).
    Create(CreateEntity),
    /// Give an anchor a new value (edit a due date); pending occurrences follow it.
    MoveAnchor { anchor: String, to: Timestamp },
    /// Set (`Some`) or clear (`None`) an attribute.
    SetAttribute {
        name: String,
        value: Option<AttrValue>,
    },
    /// A new recipient address and/or time zone. A new zone re-plans pending occurrences.
    ChangeRecipient {
        recipient: Option<String>,
        zone: Option<Zone>,
    },
    /// Re-plans the pending occurrences under the policy as it is now (after the policy file was
    /// edited): pending ones move, new slots are armed, processed ones never change.
    Replan,
    /// The entity is done: every pending occurrence becomes unsent "completed".
    Complete { reason: String },
    /// Switch a pending occurrence off or back on.
    Toggle {
        occurrence: OccurrenceId,
        enabled: bool,
    },
    /// An operator cancels one pending occurrence: it ends as unsent "deactivated".
    Cancel { occurrence: OccurrenceId },
    /// Retry occurrences that ended in a system error (one, or all of the entity's): each gets
    /// a new occurrence for its slot, due now, under the retried occurrence's idempotency key.
    /// `reason` is the operator's, recorded with the retry.
    Retry {
        occurrence: Option<OccurrenceId>,
        reason: String,
    },
    /// The timer says this occurrence's wake time has come. For an occurrence whose attempt is
    /// under way it says that attempt can no longer report (its lease ended, or the process that
    /// started it is gone): the shell sends no wake while an attempt of its own runs.
    Wake { occurrence: OccurrenceId },
    /// What a delivery attempt did.
    RecordDelivery {
        occurrence: OccurrenceId,
        attempt: u32,
        result: DeliveryResult,
    },
    /// What an attempt of a fan-out (an occurrence sent to an audience) did, recipient by
    /// recipient, through `channel`.
    RecordFanOut {
        occurrence: OccurrenceId,
        attempt: u32,
        channel: String,
        results: Vec<RecipientResult>,
    },
    /// Adds (or replaces, by its `key` field) an item in a digest's list attribute; starts a
    /// digest cycle when none is under way.
    Collect {
        list: String,
        item: BTreeMap<String, String>,
    },
    /// Removes an item (by key) from a digest's list, e.g. its source was answered.
    /// Every item from the entity named `key` goes too.
    Discard { list: String, key: String },
    /// Adds a value to a list attribute (an address that responded), unless it is there: decided
    /// inside the entity, so concurrent additions are never lost.
    AddToList { name: String, value: String },
    /// Removes a value from a list attribute, if it is there.
    RemoveFromList { name: String, value: String },
    /// Moves several anchors in one decision: their order is checked on the result and the plan
    /// repaired once (a due date extended past the view dates, moved with them).
    MoveAnchors { to: BTreeMap<String, Timestamp> },
    /// Moves anchors and sets (`Some`) or clears (`None`) attributes in one decision, with one
    /// repair of the plan: a directory entity's change reaching an entity that copies it (new start, new end,
    /// new highlights) must not be planned against half of it.
    Update {
        anchors: BTreeMap<String, Timestamp>,
        attributes: BTreeMap<String, Option<AttrValue>>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEntity {
    pub policy: String,
    pub workflow: Option<String>,
    pub recipient: String,
    pub zone: Zone,
    pub anchors: BTreeMap<String, Timestamp>,
    pub attributes: BTreeMap<String, AttrValue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientResult {
    pub recipient: String,
    pub result: DeliveryResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryResult {
    Delivered {
        channel: String,
        receipt: String,
    },
    /// `permanent`: retrying cannot help (a 4xx, a template that does not render).
    /// `retry_after`: the receiver asked to wait at least this long (HTTP `Retry-After`).
    Failed {
        error: String,
        permanent: bool,
        retry_after: Option<crate::Span>,
    },
}

/// A command refused, with nothing written. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("entity {entity} already exists")]
    AlreadyExists { entity: EntityId },
    /// A create for an existing entity whose content differs from the request that created it.
    #[error(
        "entity {entity} already exists with a different {field} (recorded: {recorded}, this \
         request: {given}); the identical request succeeds, a change takes its own command \
         (a move, set-attribute, change-recipient)"
    )]
    Conflict {
        entity: EntityId,
        field: String,
        recorded: String,
        given: String,
    },
    #[error("unknown entity {entity}")]
    UnknownEntity { entity: EntityId },
    #[error("entity {entity} has kind {kind:?}, but policy {policy:?} is for kind {expected:?}")]
    WrongKind {
        entity: EntityId,
        kind: String,
        policy: String,
        expected: String,
    },
    #[error("unknown workflow {value:?} in policy {policy:?} (known: {known})")]
    UnknownWorkflow {
        value: String,
        policy: String,
        known: String,
    },
    #[error("unknown anchor {value:?} in policy {policy:?} (known: {known})")]
    UnknownAnchor {
        value: String,
        policy: String,
        known: String,
    },
    #[error("anchor {anchor:?} is required by policy {policy:?} and has no value or default")]
    MissingAnchor { anchor: String, policy: String },
    #[error("anchor {anchor:?} keeps the original value and cannot be moved")]
    ReadOnlyAnchor { anchor: String },
    #[error("{anchor} {value} is before the entity was created ({created})")]
    AnchorBeforeCreation {
        anchor: String,
        value: Timestamp,
        created: Timestamp,
    },
    #[error("invalid recipient {value:?}: {reason}")]
    InvalidRecipient { value: String, reason: String },
    #[error("invalid attribute name {value:?}: expected 1-64 of a-z, 0-9, '-', '_'")]
    InvalidAttribute { value: String },
    #[error("invalid value {value} for attribute {name:?}: {reason}")]
    InvalidAttributeValue {
        name: String,
        value: String,
        reason: String,
    },
    #[error("{later} {later_at} is before {earlier} {earlier_at}")]
    AnchorOrder {
        earlier: String,
        earlier_at: Timestamp,
        later: String,
        later_at: Timestamp,
    },
    #[error("a digest item needs a non-empty \"key\" field; got {item:?}")]
    InvalidItem { item: String },
    #[error("{entity} was already completed ({reason}) at {at}")]
    Completed {
        entity: EntityId,
        reason: String,
        at: Timestamp,
    },
    #[error("unknown completion reason {value:?} (known: {known})")]
    UnknownCompletionReason { value: String, known: String },
    #[error("{entity} has no occurrence {occurrence}")]
    UnknownOccurrence {
        entity: EntityId,
        occurrence: OccurrenceId,
    },
    #[error("occurrence {occurrence} of {entity} was already processed; past events never change")]
    AlreadyProcessed {
        entity: EntityId,
        occurrence: OccurrenceId,
    },
    #[error("occurrence {occurrence} of {entity} is being delivered and cannot be changed now")]
    BeingDelivered {
        entity: EntityId,
        occurrence: OccurrenceId,
    },
    #[error(
        "{entity} has no occurrence {occurrence} that ended in a system error and waits for a retry"
    )]
    NotErrored {
        entity: EntityId,
        occurrence: OccurrenceId,
    },
}

impl Rejection {
    /// The stable error code of the admin protocol (`proto/admin-protocol.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::AlreadyExists { .. } => "already_exists",
            Rejection::Conflict { .. } => "conflict",
            Rejection::UnknownEntity { .. } => "unknown_entity",
            Rejection::WrongKind { .. } => "wrong_kind",
            Rejection::UnknownWorkflow { .. } => "unknown_workflow",
            Rejection::UnknownAnchor { .. } => "unknown_anchor",
            Rejection::MissingAnchor { .. } => "missing_anchor",
            Rejection::ReadOnlyAnchor { .. } => "read_only_anchor",
            Rejection::AnchorBeforeCreation { .. } => "anchor_before_creation",
            Rejection::InvalidRecipient { .. } => "invalid_recipient",
            Rejection::InvalidAttribute { .. } => "invalid_attribute",
            Rejection::InvalidAttributeValue { .. } => "invalid_attribute_value",
            Rejection::AnchorOrder { .. } => "anchor_order",
            Rejection::InvalidItem { .. } => "invalid_item",
            Rejection::Completed { .. } => "entity_completed",
            Rejection::UnknownCompletionReason { .. } => "unknown_completion_reason",
            Rejection::UnknownOccurrence { .. } => "unknown_occurrence",
            Rejection::AlreadyProcessed { .. } => "already_processed",
            Rejection::BeingDelivered { .. } => "being_delivered",
            Rejection::NotErrored { .. } => "not_errored",
        }
    }
}
