//! `decide`: (state, command, now) → events, or a rejection with nothing to write.
//!
//! The function is pure: the policy, the retry policy and `now` are arguments. Every decision
//! that replay must reproduce (a planned instant, a retry time, an outcome) is written into the
//! events it returns, so `evolve` never needs the policy.

use std::collections::BTreeMap;

use crate::command::{CreateEntity, Rejection};
use crate::context::Context;
use crate::entity::{ActiveReminder, Entity, Phase, evolve};
use crate::event::{Event, PlanCause, UnsentReason};
use crate::fire::{
    decide_delivery_result, decide_fan_out_result, decide_wake, rows_by_key, sending_attribute,
};
use crate::policy::{AttributeKind, NOT_ENQUEUED, Rounding};
use crate::reconcile::{Rearm, reconcile};
use crate::{AttrValue, Command, EntityId, OccurrenceId, Policy, Timestamp};

/// The longest recipient accepted, in bytes (an e-mail address is at most 254).
pub const RECIPIENT_LEN_MAX: usize = 320;

pub fn decide(
    state: Option<&Entity>,
    id: &EntityId,
    command: &Command,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    let mut events = decide_command(state, id, command, ctx)?;
    if let Some(entity) = state
        && !events.is_empty()
    {
        let cycle = digest_cycles(entity, &events, ctx);
        events.extend(cycle);
    }
    Ok(events)
}

fn decide_command(
    state: Option<&Entity>,
    id: &EntityId,
    command: &Command,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    let entity = match (state, command) {
        (None, Command::Create(create)) => return decide_create(id, create, ctx),
        (Some(_), Command::Create(_)) => {
            return Err(Rejection::AlreadyExists { entity: id.clone() });
        }
        (Some(entity), _) => entity,
        (None, _) => return Err(Rejection::UnknownEntity { entity: id.clone() }),
    };
    match command {
        Command::Create(_) => unreachable!("handled above"),
        Command::MoveAnchor { anchor, to } => {
            decide_move_anchors(entity, &BTreeMap::from([(anchor.clone(), *to)]), ctx)
        }
        Command::MoveAnchors { to } => decide_move_anchors(entity, to, ctx),
        Command::Update {
            anchors,
            attributes,
        } => decide_update(entity, anchors, attributes, ctx),
        Command::SetAttribute { name, value } => decide_set_attribute(entity, name, value, ctx),
        Command::ChangeRecipient { recipient, zone } => {
            decide_change_recipient(entity, recipient, zone, ctx)
        }
        Command::Complete { reason } => decide_complete(entity, reason, ctx),
        Command::Replan => decide_replan(entity, ctx),
        Command::Toggle {
            occurrence,
            enabled,
        } => decide_toggle(entity, occurrence, *enabled),
        Command::Cancel { occurrence } => {
            let reminder = active_pending(entity, occurrence)?;
            Ok(vec![Event::OccurrenceUnsent {
                occurrence: reminder.occurrence.clone(),
                reason: UnsentReason::Deactivated,
                detail: "cancelled by an operator".to_owned(),
            }])
        }
        Command::Retry { occurrence, reason } => {
            decide_retry(entity, occurrence.as_ref(), reason, ctx)
        }
        Command::Wake { occurrence } => Ok(decide_timer_wake(entity, occurrence, ctx)),
        Command::RecordFanOut {
            occurrence,
            attempt,
            channel,
            results,
        } => Ok(match delivering(entity, occurrence, *attempt) {
            Some(reminder) => {
                decide_fan_out_result(entity, reminder, *attempt, channel, results, ctx)
            }
            None => Vec::new(),
        }),
        Command::Collect { list, item } => decide_collect(entity, list, item, ctx),
        Command::AddToList { name, value } | Command::RemoveFromList { name, value } => {
            decide_list_change(entity, command, name, value, ctx)
        }
        Command::Discard { list, key } => decide_discard(entity, list, key, ctx),
        Command::RecordDelivery {
            occurrence,
            attempt,
            result,
        } => Ok(match delivering(entity, occurrence, *attempt) {
            Some(reminder) => decide_delivery_result(entity, reminder, *attempt, result, ctx),
            // A result for an attempt that is no longer current (a late answer after the lease
            // expired and a retry started): the current attempt decides.
            None => Vec::new(),
        }),
    }
}

/// An occurrence switched off or back on; only while it waits.
fn decide_toggle(
    entity: &Entity,
    occurrence: &OccurrenceId,
    enabled: bool,
) -> Result<Vec<Event>, Rejection> {
    let reminder = active_pending(entity, occurrence)?;
    if reminder.phase != Phase::Pending {
        return Err(Rejection::BeingDelivered {
            entity: entity.id.clone(),
            occurrence: occurrence.clone(),
        });
    }
    if reminder.enabled == enabled {
        return Ok(Vec::new());
    }
    Ok(vec![Event::OccurrenceToggled {
        occurrence: occurrence.clone(),
        enabled,
    }])
}

/// The occurrence, when `attempt` is its delivery attempt under way.
fn delivering<'a>(
    entity: &'a Entity,
    occurrence: &OccurrenceId,
    attempt: u32,
) -> Option<&'a ActiveReminder> {
    entity.active.get(occurrence).filter(|reminder| {
        matches!(reminder.phase, Phase::Delivering { attempt: current, .. } if current == attempt)
    })
}

/// An attribute set (or cleared with `None`): checked against the policy, then re-planned.
fn decide_set_attribute(
    entity: &Entity,
    name: &str,
    value: &Option<AttrValue>,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    check_attribute_name(name)?;
    if let Some(value) = value {
        check_attribute_value(ctx.policy, name, value)?;
    }
    if entity.attributes.get(name) == value.as_ref() {
        return Ok(Vec::new());
    }
    // An attribute may change the plan (a preferred time of day).
    then_replan(
        entity,
        Event::AttributeSet {
            name: name.to_owned(),
            value: value.clone(),
        },
        ctx,
    )
}

/// A new recipient or zone; a new zone re-plans in the recipient's new local time.
fn decide_change_recipient(
    entity: &Entity,
    recipient: &Option<String>,
    zone: &Option<crate::Zone>,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    if let Some(recipient) = recipient {
        check_recipient(recipient)?;
    }
    let recipient = recipient.clone().filter(|r| *r != entity.recipient);
    let zone = zone.filter(|z| *z != entity.zone);
    if recipient.is_none() && zone.is_none() {
        return Ok(Vec::new());
    }
    // A new zone re-plans pending occurrences in the recipient's new local time.
    then_replan(entity, Event::RecipientChanged { recipient, zone }, ctx)
}

/// The pending occurrences re-planned under the policy as it is now.
fn decide_replan(entity: &Entity, ctx: &Context) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let replanned = Event::Replanned {
        policy_version: ctx.policy.version,
    };
    let after = apply(entity, std::slice::from_ref(&replanned), ctx);
    let changes = reconcile(
        Some(entity),
        &after,
        ctx,
        PlanCause::Replanned,
        Rearm::Never,
    );
    if changes.is_empty() && entity.policy_version == ctx.policy.version {
        return Ok(Vec::new());
    }
    Ok(std::iter::once(replanned).chain(changes).collect())
}

/// A value added to, or removed from, a list attribute (`command` says which).
fn decide_list_change(
    entity: &Entity,
    command: &Command,
    name: &str,
    value: &str,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    check_attribute_name(name)?;
    let mut items = entity
        .attributes
        .get(name)
        .map(|v| v.as_list().to_vec())
        .unwrap_or_default();
    let present = items.iter().any(|item| item == value);
    match command {
        Command::AddToList { .. } if !present => items.push(value.to_owned()),
        Command::RemoveFromList { .. } if present => items.retain(|item| item != value),
        _ => return Ok(Vec::new()),
    }
    let value = AttrValue::List(items);
    check_attribute_value(ctx.policy, name, &value)?;
    then_replan(
        entity,
        Event::AttributeSet {
            name: name.to_owned(),
            value: Some(value),
        },
        ctx,
    )
}

/// The items of a digest list that came from `key` taken out.
fn decide_discard(
    entity: &Entity,
    list: &str,
    key: &str,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let mut rows = rows_by_key(entity.attributes.get(list));
    let before = rows.len();
    // By its key, and every item that came from the entity `key` names (a digest keyed
    // per occurrence holds several items of one source).
    rows.retain(|row_key, row| {
        row_key != key && row.get("entity").is_none_or(|source| source != key)
    });
    if rows.len() == before {
        return Ok(Vec::new());
    }
    let value = (!rows.is_empty()).then(|| AttrValue::Table(rows.into_values().collect()));
    then_replan(
        entity,
        Event::AttributeSet {
            name: list.to_owned(),
            value,
        },
        ctx,
    )
}

/// The active reminder an operator command names, unless it is processed, unknown or being
/// delivered right now.
fn active_pending<'a>(
    entity: &'a Entity,
    occurrence: &OccurrenceId,
) -> Result<&'a ActiveReminder, Rejection> {
    let Some(reminder) = entity.active.get(occurrence) else {
        return Err(if occurrence.index < entity.next_index(&occurrence.rule) {
            Rejection::AlreadyProcessed {
                entity: entity.id.clone(),
                occurrence: occurrence.clone(),
            }
        } else {
            Rejection::UnknownOccurrence {
                entity: entity.id.clone(),
                occurrence: occurrence.clone(),
            }
        });
    };
    if matches!(reminder.phase, Phase::Delivering { .. }) {
        return Err(Rejection::BeingDelivered {
            entity: entity.id.clone(),
            occurrence: occurrence.clone(),
        });
    }
    Ok(reminder)
}

/// Retries occurrences that ended in a system error: each gets a new occurrence for its slot,
/// due now, delivered under the retried occurrence's idempotency key (a receiver that did get
/// the failed attempt, say one that answered too late, recognises the message). Past events
/// never change, so the retry has an index of its own and ends in a past event of its own.
fn decide_retry(
    entity: &Entity,
    occurrence: Option<&OccurrenceId>,
    reason: &str,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let errored: Vec<(&OccurrenceId, &crate::entity::ErroredOccurrence)> =
        match occurrence {
            Some(occurrence) => {
                let errored = entity.errored.get_key_value(occurrence).ok_or_else(|| {
                    Rejection::NotErrored {
                        entity: entity.id.clone(),
                        occurrence: occurrence.clone(),
                    }
                })?;
                vec![errored]
            }
            None => entity.errored.iter().collect(),
        };
    let mut next_index: BTreeMap<crate::RuleName, u32> = BTreeMap::new();
    let mut events = Vec::new();
    for (occurrence, errored) in errored {
        if entity
            .active_for_slot(&occurrence.rule, errored.slot)
            .is_some()
        {
            continue; // the slot was re-armed meanwhile (an anchor moved)
        }
        let index = next_index
            .entry(occurrence.rule.clone())
            .or_insert_with(|| entity.next_index(&occurrence.rule));
        events.push(Event::RetryPlanned {
            occurrence: crate::OccurrenceId::new(occurrence.rule.clone(), *index),
            retry_of: occurrence.clone(),
            key: errored.key.clone().unwrap_or_else(|| occurrence.clone()),
            at: ctx.now,
            reason: reason.to_owned(),
        });
        *index += 1;
    }
    Ok(events)
}

fn decide_create(
    id: &EntityId,
    create: &CreateEntity,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    let policy = ctx.policy;
    if id.kind() != policy.entity_kind {
        return Err(Rejection::WrongKind {
            entity: id.clone(),
            kind: id.kind().to_owned(),
            policy: policy.name.clone(),
            expected: policy.entity_kind.clone(),
        });
    }
    check_recipient(&create.recipient)?;
    let mut attributes = create.attributes.clone();
    for (name, value) in &attributes {
        check_attribute_name(name)?;
        check_attribute_value(policy, name, value)?;
    }
    for (name, spec) in &policy.attributes {
        if let Some(default) = &spec.default {
            attributes
                .entry(name.clone())
                .or_insert_with(|| default.clone());
        }
    }
    let mut anchors = BTreeMap::new();
    for (name, at) in &create.anchors {
        check_anchor_known(policy, name)?;
        anchors.insert(name.clone(), *at);
    }
    let workflow = workflow_defaults(create, ctx, &mut anchors)?;
    for (name, spec) in &policy.anchors {
        if let Some(offset) = spec.default_offset {
            anchors
                .entry(name.clone())
                .or_insert_with(|| ctx.now.saturating_add(offset));
        }
        let Some(at) = anchors.get_mut(name) else {
            if spec.required {
                return Err(Rejection::MissingAnchor {
                    anchor: name.clone(),
                    policy: policy.name.clone(),
                });
            }
            continue;
        };
        *at = normalise(spec.round, *at);
        if spec.not_before_creation && *at < ctx.now {
            return Err(Rejection::AnchorBeforeCreation {
                anchor: name.clone(),
                value: *at,
                created: ctx.now,
            });
        }
    }
    for (name, spec) in &policy.anchors {
        if let (Some(original), Some(at)) = (&spec.keep_original, anchors.get(name).copied()) {
            anchors.insert(original.clone(), at);
        }
    }
    check_anchor_order(policy, &anchors)?;
    let mut created = Event::Created {
        policy: policy.name.clone(),
        policy_version: policy.version,
        workflow,
        recipient: create.recipient.clone(),
        zone: create.zone,
        anchors,
        attributes,
    };
    let entity = evolve(None, id, &created, ctx.now, 1).expect("a Created event starts a log");
    // Kinds whose enqueue switch is off now are kept out of this entity's plan for good, and the
    // record says so (switching enqueue back on serves entities created from then on).
    let not_enqueued = not_enqueued(&entity, ctx);
    if !not_enqueued.is_empty()
        && let Event::Created { attributes, .. } = &mut created
    {
        attributes.insert(NOT_ENQUEUED.to_owned(), AttrValue::List(not_enqueued));
    }
    let entity = evolve(None, id, &created, ctx.now, 1).expect("a Created event starts a log");
    let mut events = vec![created];
    events.extend(reconcile(
        None,
        &entity,
        ctx,
        PlanCause::Created,
        Rearm::Never,
    ));
    Ok(events)
}

/// The workflow a create starts from (the one it names, or the policy's default one) with the
/// anchors it gives by default, for those the create left out.
fn workflow_defaults(
    create: &CreateEntity,
    ctx: &Context,
    anchors: &mut BTreeMap<String, Timestamp>,
) -> Result<Option<String>, Rejection> {
    let policy = ctx.policy;
    let Some(workflow) = create
        .workflow
        .as_ref()
        .or(policy.default_workflow.as_ref())
    else {
        return Ok(None);
    };
    let spec = policy
        .workflows
        .get(workflow)
        .ok_or_else(|| Rejection::UnknownWorkflow {
            value: workflow.clone(),
            policy: policy.name.clone(),
            known: join(policy.workflows.keys()),
        })?;
    for (name, span) in &spec.defaults {
        anchors
            .entry(name.clone())
            .or_insert_with(|| ctx.now.saturating_add(*span));
    }
    Ok(Some(workflow.clone()))
}

/// The kinds of the policy's rules whose enqueue switch is off for this new entity.
fn not_enqueued(entity: &Entity, ctx: &Context) -> Vec<String> {
    let Some(switches) = crate::fire::switches_of(entity, ctx) else {
        return Vec::new();
    };
    let off = |name: &str| matches!(switches.attributes.get(name), Some(AttrValue::Bool(false)));
    let mut kinds: Vec<String> = ctx
        .policy
        .rules
        .iter()
        .map(|rule| rule.kind.clone())
        .filter(|kind| off("enqueue") || off(&format!("enqueue_{kind}")))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Moves one or more anchors at once: the order of the anchors is checked on the result, so
/// dates that move together (a due date and the view dates after it) never pass through an
/// invalid state, and the plan is repaired once.
fn decide_move_anchors(
    entity: &Entity,
    moves: &BTreeMap<String, Timestamp>,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let policy = ctx.policy;
    let mut anchors = entity.anchors.clone();
    let mut moved = Vec::new();
    for (anchor, to) in moves {
        if policy
            .anchors
            .values()
            .any(|spec| spec.keep_original.as_deref() == Some(anchor.as_str()))
        {
            return Err(Rejection::ReadOnlyAnchor {
                anchor: anchor.to_owned(),
            });
        }
        check_anchor_known(policy, anchor)?;
        let spec = &policy.anchors[anchor];
        let to = normalise(spec.round, *to);
        if spec.not_before_creation && to < entity.created_at {
            return Err(Rejection::AnchorBeforeCreation {
                anchor: anchor.to_owned(),
                value: to,
                created: entity.created_at,
            });
        }
        let from = entity.anchors.get(anchor).copied();
        if from == Some(to) {
            continue;
        }
        anchors.insert(anchor.to_owned(), to);
        moved.push(Event::AnchorMoved {
            anchor: anchor.to_owned(),
            from,
            to,
        });
    }
    if moved.is_empty() {
        return Ok(Vec::new());
    }
    check_anchor_order(policy, &anchors)?;
    let after = apply(entity, &moved, ctx);
    let mut events = moved;
    events.extend(reconcile(
        Some(entity),
        &after,
        ctx,
        PlanCause::AnchorMoved,
        Rearm::AtANewInstant,
    ));
    Ok(events)
}

fn decide_update(
    entity: &Entity,
    anchors: &BTreeMap<String, Timestamp>,
    attributes: &BTreeMap<String, Option<AttrValue>>,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let mut set = Vec::new();
    for (name, value) in attributes {
        check_attribute_name(name)?;
        if let Some(value) = value {
            check_attribute_value(ctx.policy, name, value)?;
        }
        if entity.attributes.get(name) != value.as_ref() {
            set.push(Event::AttributeSet {
                name: name.clone(),
                value: value.clone(),
            });
        }
    }
    // The anchor moves are decided (and checked) on the entity with its new attributes, so
    // their repair of the plan already sees both; without moves the attributes replan alone.
    let after_set = apply(entity, &set, ctx);
    let moved = if anchors.is_empty() {
        Vec::new()
    } else {
        decide_move_anchors(&after_set, anchors, ctx)?
    };
    if moved.is_empty() {
        if set.is_empty() {
            return Ok(Vec::new());
        }
        let mut events = set;
        events.extend(reconcile(
            Some(entity),
            &after_set,
            ctx,
            PlanCause::Replanned,
            Rearm::Never,
        ));
        return Ok(events);
    }
    set.extend(moved);
    Ok(set)
}

fn decide_complete(entity: &Entity, reason: &str, ctx: &Context) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let known = &ctx.policy.completion_reasons;
    if !known.is_empty() && !known.iter().any(|k| k == reason) {
        return Err(Rejection::UnknownCompletionReason {
            value: reason.to_owned(),
            known: join(known.iter()),
        });
    }
    let mut events = vec![Event::Completed {
        reason: reason.to_owned(),
    }];
    // An attempt already under way is left to finish: whether it reached the recipient is a
    // fact only its result can tell, and the past event must say what really happened.
    events.extend(
        entity
            .active
            .values()
            .filter(|reminder| !matches!(reminder.phase, Phase::Delivering { .. }))
            .map(|reminder| Event::OccurrenceUnsent {
                occurrence: reminder.occurrence.clone(),
                reason: UnsentReason::Completed,
                detail: format!("the entity was completed first ({reason})"),
            }),
    );
    Ok(events)
}

/// Applies `event` (which changes what the plan depends on, but no anchor) and re-plans.
fn then_replan(entity: &Entity, event: Event, ctx: &Context) -> Result<Vec<Event>, Rejection> {
    let after = apply(entity, std::slice::from_ref(&event), ctx);
    let mut events = vec![event];
    events.extend(reconcile(
        Some(entity),
        &after,
        ctx,
        PlanCause::Replanned,
        Rearm::Never,
    ));
    Ok(events)
}

/// The entity after `events` (decided for it at `ctx.now`).
pub(crate) fn apply(entity: &Entity, events: &[Event], ctx: &Context) -> Entity {
    let mut state = entity.clone();
    for event in events {
        let seq = state.version + 1;
        state = evolve(Some(state), &entity.id, event, ctx.now, seq)
            .expect("decided events apply to the state they were decided for");
    }
    state
}

fn normalise(round: Rounding, at: Timestamp) -> Timestamp {
    match round {
        Rounding::None => at,
        Rounding::UpHour => at.ceil_to_hour(),
    }
}

fn refuse_if_completed(entity: &Entity) -> Result<(), Rejection> {
    match &entity.completed {
        Some(completion) => Err(Rejection::Completed {
            entity: entity.id.clone(),
            reason: completion.reason.clone(),
            at: completion.at,
        }),
        None => Ok(()),
    }
}

fn check_anchor_known(policy: &Policy, anchor: &str) -> Result<(), Rejection> {
    if policy.anchors.contains_key(anchor) {
        Ok(())
    } else {
        Err(Rejection::UnknownAnchor {
            value: anchor.to_owned(),
            policy: policy.name.clone(),
            known: join(policy.anchors.keys()),
        })
    }
}

fn check_recipient(recipient: &str) -> Result<(), Rejection> {
    let reason = if recipient.is_empty() {
        "it is empty"
    } else if recipient.len() > RECIPIENT_LEN_MAX {
        "it is longer than 320 bytes"
    } else if recipient.chars().any(char::is_control) {
        "it contains a control character"
    } else {
        return Ok(());
    };
    Err(Rejection::InvalidRecipient {
        value: recipient.to_owned(),
        reason: reason.to_owned(),
    })
}

fn check_attribute_name(name: &str) -> Result<(), Rejection> {
    if crate::RuleName::parse(name).is_ok() {
        Ok(())
    } else {
        Err(Rejection::InvalidAttribute {
            value: name.to_owned(),
        })
    }
}

fn join<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let joined = items.map(String::as_str).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "none".to_owned()
    } else {
        joined
    }
}

/// Adds an item to a digest list; starts a cycle (moves the collecting rule's anchor to now and
/// plans its next send) unless one is already under way.
fn decide_collect(
    entity: &Entity,
    list: &str,
    item: &BTreeMap<String, String>,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    check_attribute_name(list)?;
    let key = item
        .get("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Rejection::InvalidItem {
            item: format!("{item:?}"),
        })?;
    let mut rows = rows_by_key(entity.attributes.get(list));
    if rows.get(key) == Some(item) {
        return Ok(Vec::new());
    }
    rows.insert(key.clone(), item.clone());
    let set = Event::AttributeSet {
        name: list.to_owned(),
        value: Some(AttrValue::Table(rows.into_values().collect())),
    };
    let mut events = vec![set];
    let after = apply(entity, &events, ctx);
    events.extend(start_cycles(&after, list, ctx));
    Ok(events)
}

/// For each rule collecting `list` with nothing active: a new cycle from now.
fn start_cycles(entity: &Entity, list: &str, ctx: &Context) -> Vec<Event> {
    let mut events = Vec::new();
    for rule in ctx
        .policy
        .rules
        .iter()
        .filter(|r| r.collects.as_deref() == Some(list))
    {
        let busy = entity
            .active
            .values()
            .any(|r| r.occurrence.rule == rule.name);
        if busy
            || entity
                .attributes
                .get(list)
                .is_none_or(|items| items.is_empty())
        {
            continue;
        }
        let moved = Event::AnchorMoved {
            anchor: rule.anchor.clone(),
            from: entity.anchors.get(&rule.anchor).copied(),
            to: ctx.now,
        };
        let after = apply(entity, std::slice::from_ref(&moved), ctx);
        events.push(moved);
        events.extend(reconcile(
            Some(entity),
            &after,
            ctx,
            PlanCause::AnchorMoved,
            Rearm::AtANewInstant,
        ));
    }
    events
}

/// After `events`, for each digest occurrence they closed: clear what was sent (or return it to
/// the list when it was not sent), and start the next cycle if items are waiting.
fn digest_cycles(entity: &Entity, events: &[Event], ctx: &Context) -> Vec<Event> {
    let closed: Vec<(String, bool)> = events
        .iter()
        .filter_map(|event| match event {
            Event::OccurrenceSent { occurrence, .. } => Some((occurrence, true)),
            Event::OccurrenceUnsent { occurrence, .. } => Some((occurrence, false)),
            _ => None,
        })
        .filter_map(|(occurrence, sent)| {
            let rule = ctx.policy.rule(&occurrence.rule)?;
            rule.collects.clone().map(|list| (list, sent))
        })
        .collect();
    if closed.is_empty() {
        return Vec::new();
    }
    let mut after = apply(entity, events, ctx);
    let mut extra = Vec::new();
    for (list, sent) in closed {
        let sending = sending_attribute(&list);
        let mut step = Vec::new();
        if let Some(items) = after.attributes.get(&sending).cloned() {
            if !sent {
                let mut rows = rows_by_key(Some(&items));
                rows.extend(rows_by_key(after.attributes.get(&list)));
                step.push(Event::AttributeSet {
                    name: list.clone(),
                    value: Some(AttrValue::Table(rows.into_values().collect())),
                });
            }
            step.push(Event::AttributeSet {
                name: sending,
                value: None,
            });
        }
        after = apply(&after, &step, ctx);
        extra.extend(step);
        if !after.is_completed() {
            let cycle = start_cycles(&after, &list, ctx);
            after = apply(&after, &cycle, ctx);
            extra.extend(cycle);
        }
    }
    extra
}

/// Checks a value against the policy's attribute spec (when the policy declares attributes).
fn check_attribute_value(policy: &Policy, name: &str, value: &AttrValue) -> Result<(), Rejection> {
    let invalid = |reason: String| Rejection::InvalidAttributeValue {
        name: name.to_owned(),
        value: format!("{value:?}"),
        reason,
    };
    // Text values reach operators' terminals and email headers: no control characters (a tab
    // aside). Tables are the engine's own (a digest's rendered items) and may hold line breaks.
    let texts: &[String] = match value {
        AttrValue::Text(text) => std::slice::from_ref(text),
        AttrValue::List(items) => items,
        _ => &[],
    };
    if let Some(c) = texts
        .iter()
        .flat_map(|text| text.chars())
        .find(|c| c.is_control() && *c != '\t')
    {
        return Err(invalid(format!(
            "it holds the control character U+{:04X}; text values may not (they would reach \
             terminals and email headers)",
            c as u32
        )));
    }
    if policy.attributes.is_empty() {
        return Ok(());
    }
    let Some(spec) = policy.attributes.get(name) else {
        return Err(invalid(format!(
            "policy {} has no attribute {name:?} (known: {})",
            policy.name,
            join(policy.attributes.keys())
        )));
    };
    let address_ok = |text: &str| {
        !text.is_empty()
            && text.len() <= RECIPIENT_LEN_MAX
            && !text.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    match (spec.kind, value) {
        (AttributeKind::Int, AttrValue::Int(n))
            if spec.min.is_some_and(|min| *n < min) || spec.max.is_some_and(|max| *n > max) =>
        {
            return Err(invalid(format!(
                "out of range: allowed from {} to {}",
                spec.min.map_or("any".to_owned(), |m| m.to_string()),
                spec.max.map_or("any".to_owned(), |m| m.to_string())
            )));
        }
        (AttributeKind::Any, _)
        | (AttributeKind::Bool, AttrValue::Bool(_))
        | (AttributeKind::Text, AttrValue::Text(_))
        | (AttributeKind::Int, AttrValue::Int(_))
        | (AttributeKind::List, AttrValue::List(_))
        | (AttributeKind::Table, AttrValue::Table(_)) => {}
        (AttributeKind::Address, AttrValue::Text(text)) if address_ok(text) => {}
        (AttributeKind::Address, AttrValue::Text(_)) => {
            return Err(invalid(
                "not an address: empty, too long, or with spaces".into(),
            ));
        }
        (AttributeKind::Addresses, AttrValue::List(items)) => {
            if let Some(bad) = items.iter().find(|item| !address_ok(item)) {
                return Err(invalid(format!(
                    "{bad:?} is not an address: empty, too long, or with spaces"
                )));
            }
        }
        (kind, _) => return Err(invalid(format!("expected {kind:?}").to_lowercase())),
    }
    if let AttrValue::Table(rows) = value
        && !spec.columns.is_empty()
        && let Some(field) = rows
            .iter()
            .flat_map(|row| row.keys())
            .find(|field| !spec.columns.contains(field))
    {
        return Err(invalid(format!(
            "a record has the field {field:?}; expected only {}",
            spec.columns.join(", ")
        )));
    }
    if !spec.one_of.is_empty() && !spec.one_of.contains(value) {
        let allowed: Vec<String> = spec.one_of.iter().map(|v| format!("{v:?}")).collect();
        return Err(invalid(format!("expected one of {}", allowed.join(", "))));
    }
    Ok(())
}

/// Refuses anchors out of the policy's order (due before start, view before due).
fn check_anchor_order(
    policy: &Policy,
    anchors: &BTreeMap<String, Timestamp>,
) -> Result<(), Rejection> {
    for [earlier, later] in &policy.anchor_order {
        if let (Some(earlier_at), Some(later_at)) = (anchors.get(earlier), anchors.get(later))
            && later_at < earlier_at
        {
            return Err(Rejection::AnchorOrder {
                earlier: earlier.clone(),
                earlier_at: *earlier_at,
                later: later.clone(),
                later_at: *later_at,
            });
        }
    }
    Ok(())
}

/// The timer's wake for `occurrence`. Already processed, or moved later since the timer was
/// set: nothing fires early. An attempt under way is the exception: its wake means it can no
/// longer report.
fn decide_timer_wake(entity: &Entity, occurrence: &OccurrenceId, ctx: &Context) -> Vec<Event> {
    match entity.active.get(occurrence) {
        None => Vec::new(),
        Some(reminder) if !reminder.is_delivering() && reminder.wake_at() > ctx.now => Vec::new(),
        Some(reminder) => decide_wake(entity, reminder, ctx),
    }
}
