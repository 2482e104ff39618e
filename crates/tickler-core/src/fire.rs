//! Fire time: what an occurrence does when its wake comes (send, or end unsent and why), and
//! what a delivery attempt's result leads to (sent, retried with backoff, or given up).
//!
//! An occurrence goes to the entity's recipient (one delivery), or to an audience decided now:
//! one delivery per address, each with its own key, the occurrence ending once every address
//! was delivered, refused for good, or given up on.

use std::collections::BTreeMap;

use crate::command::{DeliveryResult, RecipientResult};
use crate::conditions::{audience, first_failure};
use crate::context::Context;
use crate::entity::{ActiveReminder, Entity, Phase};
use crate::event::{Event, UnsentReason};
use crate::policy::Rule;
use crate::{AttrValue, Cause, Span, Timestamp};

/// The wake time of an active reminder has come.
pub(crate) fn decide_wake(entity: &Entity, reminder: &ActiveReminder, ctx: &Context) -> Vec<Event> {
    let unsent = |reason, detail: String| {
        vec![Event::OccurrenceUnsent {
            occurrence: reminder.occurrence.clone(),
            reason,
            detail,
        }]
    };
    // The same, with the cause as fields recorded first (explain reads them).
    let unsent_because = |reason, detail: String, cause: Cause| {
        vec![
            Event::CauseRecorded {
                occurrence: reminder.occurrence.clone(),
                cause,
            },
            Event::OccurrenceUnsent {
                occurrence: reminder.occurrence.clone(),
                reason,
                detail,
            },
        ]
    };
    if let Some(completion) = &entity.completed {
        // A wake while delivering means the attempt's lease ran out without a result (the
        // process stopped during it, or the channel hung): it may have reached the recipient.
        // No new attempt is made for a completed entity, and the record must not claim more
        // than is known.
        let detail = match &reminder.phase {
            Phase::Delivering { attempt, .. } => format!(
                "the entity was completed ({}) while attempt {attempt} was under way; that \
                 attempt's outcome is unknown (its lease ran out without a result), so it may \
                 have reached the recipient",
                completion.reason
            ),
            _ => format!("the entity was completed first ({})", completion.reason),
        };
        return unsent(UnsentReason::Completed, detail);
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
                return unsent_because(
                    UnsentReason::Missed,
                    format!(
                        "processed at {}, past its staleness cutoff {cutoff} ({text})",
                        ctx.now
                    ),
                    staleness_cause(rule, entity, cutoff, ctx.now),
                );
            }
            let late = ctx.now.since(reminder.planned_at);
            if let Some(grace) = rule.grace
                && late > grace
            {
                return unsent_because(
                    UnsentReason::Missed,
                    format!("processed {late} late, beyond its grace of {grace}"),
                    Cause::BeyondGrace {
                        processed_at: ctx.now,
                        late,
                        grace,
                    },
                );
            }
            if let Some(why) = switched_off(entity, rule, ctx) {
                return unsent(UnsentReason::DeliveryDisabled, why);
            }
            let conditions = rule
                .applies_when
                .iter()
                .chain(&rule.conditions)
                .cloned()
                .collect::<Vec<_>>();
            if let Some(failed) = first_failure(&conditions, rule, entity, Some(ctx.now)) {
                return unsent_because(failed.reason, failed.text, failed.cause);
            }
            let mut events = Vec::new();
            if let Some(list) = &rule.collects {
                // A digest: what was collected so far goes out now; what arrives meanwhile waits
                // for the next cycle.
                match entity.attributes.get(list) {
                    Some(items) if !items.is_empty() => {
                        events.push(Event::AttributeSet {
                            name: sending_attribute(list),
                            value: Some(items.clone()),
                        });
                        events.push(Event::AttributeSet {
                            name: list.clone(),
                            value: None,
                        });
                    }
                    _ => {
                        return unsent(
                            UnsentReason::ConditionFalse,
                            format!("nothing was collected in {list}"),
                        );
                    }
                }
            }
            match audience(&rule.audience, entity) {
                None => events.extend(start_attempt(reminder, 1, ctx)),
                Some(addresses) if addresses.is_empty() => {
                    let empty = [crate::policy::Condition::AudienceNotEmpty];
                    return match first_failure(&empty, rule, entity, None) {
                        Some(failed) => {
                            unsent_because(UnsentReason::ConditionFalse, failed.text, failed.cause)
                        }
                        None => unsent(UnsentReason::ConditionFalse, "no recipient".to_owned()),
                    };
                }
                Some(addresses) => events.push(fan_out(reminder, 1, addresses, ctx)),
            }
            events
        }
        Phase::Delivering { attempt, .. } => after_transient_failure(
            entity,
            reminder,
            rule,
            *attempt,
            "outcome unknown: no result before the attempt's lease ended (process restart?)",
            None,
            ctx,
        ),
        Phase::RetryWaiting {
            attempt,
            recipients,
            ..
        } => {
            if let Some(why) = switched_off(entity, rule, ctx) {
                return unsent(UnsentReason::DeliveryDisabled, why);
            }
            if let Some(failed) = first_failure(&rule.conditions, rule, entity, Some(ctx.now)) {
                return unsent_because(failed.reason, failed.text, failed.cause);
            }
            match audience(&rule.audience, entity) {
                None => start_attempt(reminder, attempt + 1, ctx),
                Some(now_wanted) => {
                    // Those left to reach, still in the audience (an address that answered
                    // meanwhile is not reminded).
                    let left: Vec<String> = recipients
                        .iter()
                        .filter(|r| now_wanted.contains(r))
                        .cloned()
                        .collect();
                    if left.is_empty() {
                        finish_fan_out(
                            reminder,
                            *attempt,
                            "",
                            ctx,
                            "everyone left was taken out of the audience meanwhile",
                        )
                    } else {
                        vec![fan_out(reminder, attempt + 1, left, ctx)]
                    }
                }
            }
        }
    }
}

/// Why delivery of this rule's kind is switched off for the entity, if it is: its policy's
/// switches entity (a tenant) has `deliver = false` or `deliver_<kind> = false`.
fn switched_off(entity: &Entity, rule: &Rule, ctx: &Context) -> Option<String> {
    let switches = switches_of(entity, ctx)?;
    ["deliver".to_owned(), format!("deliver_{}", rule.kind)]
        .into_iter()
        .find(|name| matches!(switches.attributes.get(name), Some(AttrValue::Bool(false))))
        .map(|name| {
            format!(
                "delivery of {} is switched off at {} ({name} = false)",
                rule.kind, switches.id
            )
        })
}

/// The directory entity holding the switches of this entity's policy.
pub(crate) fn switches_of<'a>(entity: &Entity, ctx: &Context<'a>) -> Option<&'a Entity> {
    let template = ctx.policy.switches.as_ref()?;
    let id = crate::policy::resolve_ref(template, entity)?;
    ctx.directory.get(&id)
}

/// The attribute a digest's items move to while they are being sent.
pub(crate) fn sending_attribute(list: &str) -> String {
    format!("{list}_sending")
}

fn start_attempt(reminder: &ActiveReminder, attempt: u32, ctx: &Context) -> Vec<Event> {
    vec![Event::DeliveryStarted {
        occurrence: reminder.occurrence.clone(),
        attempt,
        lease_until: ctx.now.saturating_add(ctx.delivery.lease),
    }]
}

fn fan_out(
    reminder: &ActiveReminder,
    attempt: u32,
    recipients: Vec<String>,
    ctx: &Context,
) -> Event {
    Event::FanOutStarted {
        occurrence: reminder.occurrence.clone(),
        attempt,
        lease_until: ctx.now.saturating_add(ctx.delivery.lease),
        recipients,
    }
}

pub(crate) fn decide_delivery_result(
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
            Some(rule) => {
                after_transient_failure(entity, reminder, rule, attempt, error, *retry_after, ctx)
            }
            None => vec![Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::SystemError,
                detail: format!("attempt {attempt} failed ({error}) and its rule is gone"),
            }],
        },
    }
}

/// What one attempt of a fan-out did for each of its recipients.
pub(crate) fn decide_fan_out_result(
    entity: &Entity,
    reminder: &ActiveReminder,
    attempt: u32,
    channel: &str,
    results: &[RecipientResult],
    ctx: &Context,
) -> Vec<Event> {
    let mut delivered = Vec::new();
    let mut refused = Vec::new();
    let mut failed: Vec<(&str, &str)> = Vec::new();
    let mut retry_after: Option<Span> = None;
    for result in results {
        match &result.result {
            DeliveryResult::Delivered { receipt, .. } => {
                delivered.push((result.recipient.clone(), receipt.clone()))
            }
            DeliveryResult::Failed {
                error,
                permanent: true,
                ..
            } => refused.push((result.recipient.clone(), error.clone())),
            DeliveryResult::Failed {
                error,
                retry_after: after,
                ..
            } => {
                failed.push((&result.recipient, error));
                retry_after = retry_after.max(*after);
            }
        }
    }
    let mut events = Vec::new();
    if !delivered.is_empty() || !refused.is_empty() {
        events.push(Event::RecipientsReported {
            occurrence: reminder.occurrence.clone(),
            attempt,
            delivered: delivered.clone(),
            refused: refused.clone(),
        });
    }
    // The reminder as it is after this report.
    let mut after = reminder.clone();
    after.delivered.extend(delivered);
    after.refused.extend(refused);
    if failed.is_empty() {
        events.extend(finish_fan_out(&after, attempt, channel, ctx, ""));
        return events;
    }
    let error = format!(
        "{} of {} recipients failed, e.g. {}: {}",
        failed.len(),
        results.len(),
        failed[0].0,
        failed[0].1
    );
    let rule = ctx.policy.rule(&reminder.occurrence.rule);
    match rule.map(|rule| retry_at(entity, &after, rule, attempt, retry_after, ctx)) {
        Some(Ok(retry_at)) => events.push(Event::DeliveryFailed {
            occurrence: reminder.occurrence.clone(),
            attempt,
            error,
            retry_at,
        }),
        Some(Err(why)) => events.extend(finish_fan_out(
            &after,
            attempt,
            channel,
            ctx,
            &format!("{why}: {error}"),
        )),
        None => events.extend(finish_fan_out(
            &after,
            attempt,
            channel,
            ctx,
            "its rule is gone",
        )),
    }
    events
}

/// Ends a fan-out: sent when anyone was reached (the receipt says who was not), else unsent.
fn finish_fan_out(
    reminder: &ActiveReminder,
    attempt: u32,
    channel: &str,
    _ctx: &Context,
    gave_up: &str,
) -> Vec<Event> {
    let occurrence = reminder.occurrence.clone();
    let reached = reminder.delivered.len();
    let mut notes = Vec::new();
    if !reminder.refused.is_empty() {
        let (who, why) = &reminder.refused[0];
        notes.push(format!(
            "{} refused (e.g. {who}: {why})",
            reminder.refused.len()
        ));
    }
    if !gave_up.is_empty() {
        notes.push(format!("the rest not reached: {gave_up}"));
    }
    if reached == 0 {
        let (reason, detail) = if reminder.refused.is_empty() && gave_up.contains("audience") {
            (UnsentReason::ConditionFalse, gave_up.to_owned())
        } else {
            (
                UnsentReason::SystemError,
                format!("no recipient was reached: {}", notes.join("; ")),
            )
        };
        return vec![Event::OccurrenceUnsent {
            occurrence,
            reason,
            detail,
        }];
    }
    let mut receipt = format!("delivered to {reached} recipient(s)");
    if !notes.is_empty() {
        receipt.push_str("; ");
        receipt.push_str(&notes.join("; "));
    }
    vec![Event::OccurrenceSent {
        occurrence,
        attempt,
        channel: channel.to_owned(),
        receipt,
    }]
}

/// After a transient failure of a single delivery: retry with backoff, unless attempts, the
/// business deadline or the entity's completion say stop.
fn after_transient_failure(
    entity: &Entity,
    reminder: &ActiveReminder,
    rule: &Rule,
    attempt: u32,
    error: &str,
    retry_after: Option<Span>,
    ctx: &Context,
) -> Vec<Event> {
    let occurrence = reminder.occurrence.clone();
    match retry_at(entity, reminder, rule, attempt, retry_after, ctx) {
        Ok(retry_at) => vec![Event::DeliveryFailed {
            occurrence,
            attempt,
            error: error.to_owned(),
            retry_at,
        }],
        Err(why) if entity.is_completed() => vec![Event::OccurrenceUnsent {
            occurrence,
            reason: UnsentReason::Completed,
            detail: format!("attempt {attempt} failed ({error}); {why}"),
        }],
        Err(why) => {
            if !reminder.delivered.is_empty() {
                // A fan-out whose lease ran out: those reached stay reached.
                return finish_fan_out(reminder, attempt, "", ctx, &format!("{why}: {error}"));
            }
            vec![Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::SystemError,
                detail: format!("{why}: {error}"),
            }]
        }
    }
}

/// When the next attempt is due, or why there is none.
fn retry_at(
    entity: &Entity,
    reminder: &ActiveReminder,
    rule: &Rule,
    attempt: u32,
    retry_after: Option<Span>,
    ctx: &Context,
) -> Result<Timestamp, String> {
    if let Some(completion) = &entity.completed {
        return Err(format!(
            "the entity was completed meanwhile ({})",
            completion.reason
        ));
    }
    if attempt >= ctx.delivery.max_attempts {
        return Err(format!("gave up after {attempt} attempts"));
    }
    let key = reminder.idempotency_key(&entity.id);
    // The receiver's Retry-After, when longer, wins over the backoff schedule.
    let delay = ctx
        .delivery
        .backoff(&key, attempt)
        .max(retry_after.unwrap_or(Span::ZERO));
    let retry_at = ctx.now.saturating_add(delay);
    if let Some((cutoff, text)) = staleness_cutoff(rule, entity)
        && retry_at >= cutoff
    {
        return Err(format!(
            "gave up after {attempt} attempts: the next would be at {retry_at}, past the cutoff {cutoff} ({text})"
        ));
    }
    Ok(retry_at)
}

/// The staleness cutoff `cutoff` (that `staleness_cutoff` found) as fields.
fn staleness_cause(rule: &Rule, entity: &Entity, cutoff: Timestamp, now: Timestamp) -> Cause {
    let stale = rule
        .stale_after
        .as_ref()
        .expect("a rule with a cutoff has stale_after");
    Cause::PastStaleness {
        processed_at: now,
        anchor: stale.anchor.clone(),
        value: entity.anchors.get(&stale.anchor).copied().unwrap_or(cutoff),
        offset: stale.offset,
        cutoff,
    }
}

pub(crate) fn staleness_cutoff(rule: &Rule, entity: &Entity) -> Option<(Timestamp, String)> {
    let stale = rule.stale_after.as_ref()?;
    let anchor = entity.anchors.get(&stale.anchor)?;
    let cutoff = anchor.checked_add(stale.offset)?;
    let text = if stale.offset == Span::ZERO {
        format!("{} {anchor}", stale.anchor)
    } else if stale.offset.is_negative() {
        format!("{} {anchor} {}", stale.anchor, stale.offset)
    } else {
        format!("{} {anchor} +{}", stale.anchor, stale.offset)
    };
    Some((cutoff, text))
}

/// The rows of a table attribute, by their `key` field (digest items).
pub(crate) fn rows_by_key(value: Option<&AttrValue>) -> BTreeMap<String, BTreeMap<String, String>> {
    match value {
        Some(AttrValue::Table(rows)) => rows
            .iter()
            .map(|row| (row.get("key").cloned().unwrap_or_default(), row.clone()))
            .collect(),
        _ => BTreeMap::new(),
    }
}
