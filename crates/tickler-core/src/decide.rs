//! `decide`: (state, command, now) → events, or a rejection with nothing to write.
//!
//! The function is pure: the policy, the retry policy and `now` are arguments. Every decision
//! that replay must reproduce (a planned instant, a retry time, an outcome) is written into the
//! events it returns, so `evolve` never needs the policy.

use std::collections::BTreeMap;

use crate::command::{CreateEntity, DeliveryResult, Rejection};
use crate::entity::{ActiveReminder, Entity, Phase, evolve};
use crate::event::{Event, PlanCause, UnsentReason};
use crate::plan::plan;
use crate::policy::{Condition, MovedIntoPast, Rounding, Rule};
use crate::retry::DeliveryPolicy;
use crate::{Command, EntityId, OccurrenceId, Policy, Timestamp};

/// The longest recipient accepted, in bytes (an e-mail address is at most 254).
pub const RECIPIENT_LEN_MAX: usize = 320;

/// What `decide` may read besides the entity and the command.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: Timestamp,
    pub policy: &'a Policy,
    pub delivery: &'a DeliveryPolicy,
}

pub fn decide(
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
        Command::MoveAnchor { anchor, to } => decide_move_anchor(entity, anchor, *to, ctx),
        Command::SetAttribute { name, value } => {
            refuse_if_completed(entity)?;
            check_attribute_name(name)?;
            if entity.attributes.get(name) == value.as_ref() {
                return Ok(Vec::new());
            }
            // An attribute may change the plan (a preferred time of day).
            then_replan(
                entity,
                Event::AttributeSet {
                    name: name.clone(),
                    value: value.clone(),
                },
                ctx,
            )
        }
        Command::ChangeRecipient { recipient, zone } => {
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
        Command::Complete { reason } => decide_complete(entity, reason, ctx),
        Command::Replan => {
            refuse_if_completed(entity)?;
            let replanned = Event::Replanned {
                policy_version: ctx.policy.version,
            };
            let after = evolve(
                Some(entity.clone()),
                &entity.id,
                &replanned,
                ctx.now,
                entity.version + 1,
            )
            .expect("a re-plan applies to any live entity");
            let changes = reconcile(&after, ctx, PlanCause::Replanned, Rearm::Never);
            if changes.is_empty() && entity.policy_version == ctx.policy.version {
                return Ok(Vec::new());
            }
            Ok(std::iter::once(replanned).chain(changes).collect())
        }
        Command::Toggle {
            occurrence,
            enabled,
        } => {
            let reminder = active_pending(entity, occurrence)?;
            if reminder.phase != Phase::Pending {
                return Err(Rejection::BeingDelivered {
                    entity: entity.id.clone(),
                    occurrence: occurrence.clone(),
                });
            }
            if reminder.enabled == *enabled {
                return Ok(Vec::new());
            }
            Ok(vec![Event::OccurrenceToggled {
                occurrence: occurrence.clone(),
                enabled: *enabled,
            }])
        }
        Command::Cancel { occurrence } => {
            let reminder = active_pending(entity, occurrence)?;
            Ok(vec![Event::OccurrenceUnsent {
                occurrence: reminder.occurrence.clone(),
                reason: UnsentReason::Deactivated,
                detail: "cancelled by an operator".to_owned(),
            }])
        }
        Command::Retry { occurrence } => decide_retry(entity, occurrence.as_ref(), ctx),
        Command::Wake { occurrence } => Ok(match entity.active.get(occurrence) {
            // Already processed, or moved later since the timer was set: nothing fires early.
            None => Vec::new(),
            Some(reminder) if reminder.wake_at() > ctx.now => Vec::new(),
            Some(reminder) => decide_wake(entity, reminder, ctx),
        }),
        Command::RecordDelivery {
            occurrence,
            attempt,
            result,
        } => Ok(match entity.active.get(occurrence) {
            Some(reminder) if matches!(reminder.phase, Phase::Delivering { attempt: current, .. } if current == *attempt) => {
                decide_delivery_result(entity, reminder, *attempt, result, ctx)
            }
            // A result for an attempt that is no longer current (a late answer after the lease
            // expired and a retry started): the current attempt decides.
            _ => Vec::new(),
        }),
    }
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
/// due now. Past events never change; the new occurrence has its own index and key.
fn decide_retry(
    entity: &Entity,
    occurrence: Option<&OccurrenceId>,
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
        events.push(Event::RetryRequested {
            occurrence: occurrence.clone(),
        });
        events.push(Event::OccurrencePlanned {
            occurrence: crate::OccurrenceId::new(occurrence.rule.clone(), *index),
            slot: errored.slot,
            kind: errored.kind.clone(),
            at: ctx.now,
            cause: PlanCause::Retried,
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
    for name in create.attributes.keys() {
        check_attribute_name(name)?;
    }
    let mut anchors = BTreeMap::new();
    for (name, at) in &create.anchors {
        check_anchor_known(policy, name)?;
        anchors.insert(name.clone(), *at);
    }
    if let Some(workflow) = &create.workflow {
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
    }
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
    let created = Event::Created {
        policy: policy.name.clone(),
        policy_version: policy.version,
        workflow: create.workflow.clone(),
        recipient: create.recipient.clone(),
        zone: create.zone,
        anchors,
        attributes: create.attributes.clone(),
    };
    let entity = evolve(None, id, &created, ctx.now, 1).expect("a Created event starts a log");
    let mut events = vec![created];
    events.extend(reconcile(&entity, ctx, PlanCause::Created, Rearm::Never));
    Ok(events)
}

fn decide_move_anchor(
    entity: &Entity,
    anchor: &str,
    to: Timestamp,
    ctx: &Context,
) -> Result<Vec<Event>, Rejection> {
    refuse_if_completed(entity)?;
    let policy = ctx.policy;
    if policy
        .anchors
        .values()
        .any(|spec| spec.keep_original.as_deref() == Some(anchor))
    {
        return Err(Rejection::ReadOnlyAnchor {
            anchor: anchor.to_owned(),
        });
    }
    check_anchor_known(policy, anchor)?;
    let spec = &policy.anchors[anchor];
    let to = normalise(spec.round, to);
    if spec.not_before_creation && to < entity.created_at {
        return Err(Rejection::AnchorBeforeCreation {
            anchor: anchor.to_owned(),
            value: to,
            created: entity.created_at,
        });
    }
    let from = entity.anchors.get(anchor).copied();
    if from == Some(to) {
        return Ok(Vec::new());
    }
    let moved = Event::AnchorMoved {
        anchor: anchor.to_owned(),
        from,
        to,
    };
    let after = evolve(
        Some(entity.clone()),
        &entity.id,
        &moved,
        ctx.now,
        entity.version + 1,
    )
    .expect("an anchor move applies to any live entity");
    let mut events = vec![moved];
    events.extend(reconcile(
        &after,
        ctx,
        PlanCause::AnchorMoved,
        Rearm::AtANewInstant,
    ));
    Ok(events)
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
    let after = evolve(
        Some(entity.clone()),
        &entity.id,
        &event,
        ctx.now,
        entity.version + 1,
    )
    .expect("a profile or attribute change applies to any live entity");
    let mut events = vec![event];
    events.extend(reconcile(&after, ctx, PlanCause::Replanned, Rearm::Never));
    Ok(events)
}

/// Whether a slot already processed may get a new occurrence when the plan moves it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rearm {
    /// After an anchor moved: the business date changed, so a reminder already sent for the old
    /// date is sent again for the new one (Aperta's chasing).
    AtANewInstant,
    /// After a time-of-day or zone change: a slot that was processed stays processed, or a
    /// contact who just set a preferred hour would get today's message twice.
    Never,
}

/// Compares the plan with the active reminders: moves pending ones whose instant changed,
/// retires those moved into the past or out of the plan, and arms what the plan wants that is
/// neither active nor (depending on `rearm`) already processed.
fn reconcile(entity: &Entity, ctx: &Context, cause: PlanCause, rearm: Rearm) -> Vec<Event> {
    let now = ctx.now;
    let desired = if entity.is_completed() {
        Vec::new()
    } else {
        plan(ctx.policy, entity)
    };
    let mut events = Vec::new();
    for reminder in entity.active.values() {
        if reminder.phase != Phase::Pending {
            continue; // being delivered or retried: its slot is taken, whatever the plan says
        }
        let wanted = desired
            .iter()
            .find(|p| p.rule == reminder.occurrence.rule && p.slot == reminder.slot);
        let occurrence = reminder.occurrence.clone();
        match wanted {
            Some(p) if p.at == reminder.planned_at => {}
            Some(p) if p.at >= now => events.push(Event::OccurrenceRescheduled {
                occurrence,
                from: reminder.planned_at,
                to: p.at,
            }),
            Some(p) => match ctx
                .policy
                .rule(&occurrence.rule)
                .map(|r| r.if_moved_into_past)
            {
                Some(MovedIntoPast::FireNow) => events.push(Event::OccurrenceRescheduled {
                    occurrence,
                    from: reminder.planned_at,
                    to: now,
                }),
                _ => events.push(Event::OccurrenceUnsent {
                    occurrence,
                    reason: UnsentReason::NotApplicable,
                    detail: format!("moved to {}, which is in the past", p.at),
                }),
            },
            None => events.push(Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::NotApplicable,
                detail: "no longer in the plan of its rule".to_owned(),
            }),
        }
    }
    let mut next_index: BTreeMap<_, u32> = BTreeMap::new();
    for p in desired {
        let processed_at = entity.processed_at(&p.rule, p.slot);
        let already_processed = match rearm {
            Rearm::AtANewInstant => processed_at == Some(p.at),
            Rearm::Never => processed_at.is_some(),
        };
        if p.at < now || entity.active_for_slot(&p.rule, p.slot).is_some() || already_processed {
            continue;
        }
        let index = next_index
            .entry(p.rule.clone())
            .or_insert_with(|| entity.next_index(&p.rule));
        events.push(Event::OccurrencePlanned {
            occurrence: crate::OccurrenceId::new(p.rule, *index),
            slot: p.slot,
            kind: p.kind,
            at: p.at,
            cause,
        });
        *index += 1;
    }
    events
}

/// The wake time of an active reminder has come.
fn decide_wake(entity: &Entity, reminder: &ActiveReminder, ctx: &Context) -> Vec<Event> {
    let unsent = |reason, detail: String| {
        vec![Event::OccurrenceUnsent {
            occurrence: reminder.occurrence.clone(),
            reason,
            detail,
        }]
    };
    if let Some(completion) = &entity.completed {
        return unsent(
            UnsentReason::Completed,
            format!("the entity was completed first ({})", completion.reason),
        );
    }
    let Some(rule) = ctx.policy.rule(&reminder.occurrence.rule) else {
        return unsent(
            UnsentReason::NotApplicable,
            format!(
                "rule {} is no longer in policy {} v{}",
                reminder.occurrence.rule, ctx.policy.name, ctx.policy.version
            ),
        );
    };
    match &reminder.phase {
        Phase::Pending => {
            if !reminder.enabled {
                return unsent(
                    UnsentReason::Deactivated,
                    "switched off by a user".to_owned(),
                );
            }
            if let Some((cutoff, text)) = staleness_cutoff(rule, entity)
                && ctx.now >= cutoff
            {
                return unsent(
                    UnsentReason::Missed,
                    format!(
                        "processed at {}, past its staleness cutoff {cutoff} ({text})",
                        ctx.now
                    ),
                );
            }
            let late = ctx.now.since(reminder.planned_at);
            if let Some(grace) = rule.grace
                && late > grace
            {
                return unsent(
                    UnsentReason::Missed,
                    format!("processed {late} late, beyond its grace of {grace}"),
                );
            }
            if let Some(failed) = failed_condition(rule, entity, ctx.now) {
                return unsent(UnsentReason::ConditionFalse, failed);
            }
            start_attempt(reminder, 1, ctx)
        }
        Phase::Delivering { attempt, .. } => after_failure(
            entity,
            reminder,
            rule,
            *attempt,
            "outcome unknown: no result before the attempt's lease ended (process restart?)",
            None,
            ctx,
        ),
        Phase::RetryWaiting { attempt, .. } => {
            if let Some(failed) = failed_condition(rule, entity, ctx.now) {
                return unsent(UnsentReason::ConditionFalse, failed);
            }
            start_attempt(reminder, attempt + 1, ctx)
        }
    }
}

fn start_attempt(reminder: &ActiveReminder, attempt: u32, ctx: &Context) -> Vec<Event> {
    vec![Event::DeliveryStarted {
        occurrence: reminder.occurrence.clone(),
        attempt,
        lease_until: ctx.now.saturating_add(ctx.delivery.lease),
    }]
}

fn decide_delivery_result(
    entity: &Entity,
    reminder: &ActiveReminder,
    attempt: u32,
    result: &DeliveryResult,
    ctx: &Context,
) -> Vec<Event> {
    let occurrence = reminder.occurrence.clone();
    match result {
        DeliveryResult::Delivered { channel, receipt } => vec![Event::OccurrenceSent {
            occurrence,
            attempt,
            channel: channel.clone(),
            receipt: receipt.clone(),
        }],
        DeliveryResult::Failed {
            error,
            permanent: true,
            ..
        } => vec![Event::OccurrenceUnsent {
            occurrence,
            reason: UnsentReason::SystemError,
            detail: format!("attempt {attempt} failed permanently: {error}"),
        }],
        DeliveryResult::Failed {
            error,
            permanent: false,
            retry_after,
        } => match ctx.policy.rule(&occurrence.rule) {
            Some(rule) => after_failure(entity, reminder, rule, attempt, error, *retry_after, ctx),
            None => vec![Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::SystemError,
                detail: format!("attempt {attempt} failed ({error}) and its rule is gone"),
            }],
        },
    }
}

/// After a transient failure: retry with backoff, unless attempts, the business deadline or the
/// entity's completion say stop.
fn after_failure(
    entity: &Entity,
    reminder: &ActiveReminder,
    rule: &Rule,
    attempt: u32,
    error: &str,
    retry_after: Option<crate::Span>,
    ctx: &Context,
) -> Vec<Event> {
    let occurrence = reminder.occurrence.clone();
    let give_up = |reason, detail| {
        vec![Event::OccurrenceUnsent {
            occurrence: occurrence.clone(),
            reason,
            detail,
        }]
    };
    if let Some(completion) = &entity.completed {
        return give_up(
            UnsentReason::Completed,
            format!(
                "attempt {attempt} failed ({error}); the entity was completed meanwhile ({})",
                completion.reason
            ),
        );
    }
    if attempt >= ctx.delivery.max_attempts {
        return give_up(
            UnsentReason::SystemError,
            format!("gave up after {attempt} attempts: {error}"),
        );
    }
    let key = occurrence.idempotency_key(&entity.id);
    // The receiver's Retry-After, when longer, wins over the backoff schedule.
    let delay = ctx
        .delivery
        .backoff(&key, attempt)
        .max(retry_after.unwrap_or(crate::Span::ZERO));
    let retry_at = ctx.now.saturating_add(delay);
    if let Some((cutoff, text)) = staleness_cutoff(rule, entity)
        && retry_at >= cutoff
    {
        return give_up(
            UnsentReason::SystemError,
            format!(
                "gave up after {attempt} attempts: the next would be at {retry_at}, past the cutoff {cutoff} ({text}): {error}"
            ),
        );
    }
    vec![Event::DeliveryFailed {
        occurrence,
        attempt,
        error: error.to_owned(),
        retry_at,
    }]
}

fn staleness_cutoff(rule: &Rule, entity: &Entity) -> Option<(Timestamp, String)> {
    let stale = rule.stale_after.as_ref()?;
    let anchor = entity.anchors.get(&stale.anchor)?;
    let cutoff = anchor.checked_add(stale.offset)?;
    let text = if stale.offset == crate::Span::ZERO {
        format!("{} {anchor}", stale.anchor)
    } else {
        format!("{} {anchor} {}", stale.anchor, DisplaySigned(stale.offset))
    };
    Some((cutoff, text))
}

struct DisplaySigned(crate::Span);
impl std::fmt::Display for DisplaySigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_negative() {
            write!(f, "{}", self.0)
        } else {
            write!(f, "+{}", self.0)
        }
    }
}

/// The first condition of the rule that is false now, described.
fn failed_condition(rule: &Rule, entity: &Entity, now: Timestamp) -> Option<String> {
    rule.conditions
        .iter()
        .find_map(|condition| match condition {
            Condition::AttributeNotTrue { name } => entity
                .attributes
                .get(name)
                .is_some_and(|value| value.is_true())
                .then(|| format!("attribute {name} is true")),
            Condition::AttributeTrue { name } => (!entity
                .attributes
                .get(name)
                .is_some_and(|value| value.is_true()))
            .then(|| format!("attribute {name} is not true")),
            Condition::AnchorInFuture { anchor } => match entity.anchors.get(anchor) {
                Some(at) if *at > now => None,
                Some(at) => Some(format!("{anchor} {at} is not in the future")),
                None => Some(format!("{anchor} is not set")),
            },
        })
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
