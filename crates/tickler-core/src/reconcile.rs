//! Reconciliation: comparing what the plan wants with the active reminders.

use std::collections::BTreeMap;

use crate::conditions::first_failure;
use crate::context::Context;
use crate::entity::{Entity, Phase};
use crate::event::{Event, PlanCause, UnsentReason};
use crate::plan::{Exclusion, exclusion, plan};
use crate::policy::MovedIntoPast;
use crate::{Bound, Cause, OccurrenceId, Timestamp};

/// Whether a slot already processed may get a new occurrence when the plan moves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rearm {
    /// After an anchor moved: the business date changed, so a reminder already sent for the old
    /// date is sent again for the new one (Aperta's chasing; a digest's new cycle).
    AtANewInstant,
    /// After a time-of-day or zone change: a slot that was processed stays processed, or a
    /// contact who just set a preferred hour would get today's message twice.
    Never,
}

/// Moves pending reminders whose instant changed, retires those moved into the past or out of
/// the plan, and arms what the plan wants that is neither active nor (depending on `rearm`)
/// already processed.
/// `before` is the entity as the command found it (`None` for a creation): what changed since
/// is named as the cause of an occurrence the change retires.
pub(crate) fn reconcile(
    before: Option<&Entity>,
    entity: &Entity,
    ctx: &Context,
    cause: PlanCause,
    rearm: Rearm,
) -> Vec<Event> {
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
        let rule = ctx.policy.rule(&occurrence.rule);
        match wanted {
            Some(p) if p.at == reminder.planned_at => {}
            Some(p) if p.at == Timestamp::MAX => {
                let cause = beyond_range(entity, rule);
                events.extend(unsent_because(
                    occurrence,
                    UnsentReason::NotApplicable,
                    cause,
                ));
            }
            Some(p) if p.at >= now => events.push(Event::OccurrenceRescheduled {
                occurrence,
                from: reminder.planned_at,
                to: p.at,
            }),
            Some(p) => match rule.map(|r| r.if_moved_into_past) {
                Some(MovedIntoPast::FireNow) => events.push(Event::OccurrenceRescheduled {
                    occurrence,
                    from: reminder.planned_at,
                    to: now,
                }),
                _ => {
                    let cause = moved_into_past(before, entity, ctx, rule, p.at);
                    events.extend(unsent_because(
                        occurrence,
                        UnsentReason::NotApplicable,
                        cause,
                    ));
                }
            },
            None => {
                // Out of the plan because the rule no longer applies (everyone responded, the
                // notice was switched off) is a false condition; otherwise a date or attribute
                // it depends on changed (named), or its rule did.
                let condition =
                    rule.and_then(|rule| first_failure(&rule.applies_when, rule, entity, None));
                let excluded = rule.and_then(|rule| {
                    exclusion(rule, entity, reminder.slot, reminder.planned_at)
                        .map(|why| excluded_by(before, entity, ctx, why, reminder.planned_at))
                });
                match (condition, excluded) {
                    (Some(failed), _) => events.extend([
                        Event::CauseRecorded {
                            occurrence: occurrence.clone(),
                            cause: failed.cause,
                        },
                        Event::OccurrenceUnsent {
                            occurrence,
                            reason: failed.reason,
                            detail: failed.text,
                        },
                    ]),
                    (None, Some(cause)) => events.extend(unsent_because(
                        occurrence,
                        UnsentReason::NotApplicable,
                        cause,
                    )),
                    (None, None) => events.push(Event::OccurrenceUnsent {
                        occurrence,
                        reason: UnsentReason::NotApplicable,
                        detail: "no longer in the plan of its rule (its policy changed)".to_owned(),
                    }),
                }
            }
        }
    }
    let mut next_index: BTreeMap<_, u32> = BTreeMap::new();
    for p in desired {
        let processed_at = entity.processed_at(&p.rule, p.slot);
        let already_processed = match rearm {
            Rearm::AtANewInstant => processed_at == Some(p.at),
            Rearm::Never => processed_at.is_some(),
        };
        if entity.active_for_slot(&p.rule, p.slot).is_some() || already_processed {
            continue;
        }
        let rule = ctx.policy.rule(&p.rule);
        if p.at == Timestamp::MAX {
            // Beyond the range: planned and ended in one commit, so it has its record.
            let index = next_index
                .entry(p.rule.clone())
                .or_insert_with(|| entity.next_index(&p.rule));
            let occurrence = crate::OccurrenceId::new(p.rule.clone(), *index);
            *index += 1;
            events.push(Event::OccurrencePlanned {
                occurrence: occurrence.clone(),
                slot: p.slot,
                kind: p.kind,
                at: p.at,
                cause,
            });
            let beyond = beyond_range(entity, rule);
            events.extend(unsent_because(
                occurrence,
                UnsentReason::NotApplicable,
                beyond,
            ));
            continue;
        }
        let already_past = p.at < now;
        if already_past && processed_at.is_some() {
            continue; // the slot ended already; moving it within the past asks for nothing new
        }
        let lead = rule
            .and_then(|rule| rule.min_lead)
            .unwrap_or(crate::Span::ZERO);
        if !already_past && p.at < now.saturating_add(lead) {
            continue; // too close to plan (Sakai: at least 3 minutes ahead); not yet due either
        }
        // A slot whose instant passed before it could be planned (a timer created after its due
        // instant, an anchor set in the past) is treated like one moved into the past: it fires
        // now if its rule says so, and otherwise ends unsent "not applicable" with a past event,
        // so an acknowledged request never vanishes without a record.
        let fire_now =
            already_past && rule.map(|r| r.if_moved_into_past) == Some(MovedIntoPast::FireNow);
        let index = next_index
            .entry(p.rule.clone())
            .or_insert_with(|| entity.next_index(&p.rule));
        let occurrence = crate::OccurrenceId::new(p.rule, *index);
        *index += 1;
        events.push(Event::OccurrencePlanned {
            occurrence: occurrence.clone(),
            slot: p.slot,
            kind: p.kind,
            at: if fire_now { now } else { p.at },
            cause,
        });
        if already_past && !fire_now {
            let cause = Cause::PassedWhenPlanned { at: p.at };
            events.extend(unsent_because(
                occurrence,
                UnsentReason::NotApplicable,
                cause,
            ));
        }
    }
    events
}

/// The cause recorded first, then the unsent event saying it in words.
fn unsent_because(occurrence: OccurrenceId, reason: UnsentReason, cause: Cause) -> [Event; 2] {
    let detail = cause.describe();
    [
        Event::CauseRecorded {
            occurrence: occurrence.clone(),
            cause,
        },
        Event::OccurrenceUnsent {
            occurrence,
            reason,
            detail,
        },
    ]
}

/// The cause of an occurrence the planner put past the last instant: its rule's anchor.
fn beyond_range(entity: &Entity, rule: Option<&crate::policy::Rule>) -> Cause {
    let anchor = rule.map_or_else(String::new, |rule| rule.anchor.clone());
    let value = entity
        .anchors
        .get(&anchor)
        .copied()
        .unwrap_or(Timestamp::MAX);
    Cause::BeyondRange { anchor, value }
}

/// When this command changed the anchor `name` (its instant), if it did.
fn anchor_changed_at(
    before: Option<&Entity>,
    after: &Entity,
    name: &str,
    now: Timestamp,
) -> Option<Timestamp> {
    let before = before?;
    (before.anchors.get(name) != after.anchors.get(name)).then_some(now)
}

/// A pending occurrence the plan now puts at `to`, already past: its rule's anchor moved.
fn moved_into_past(
    before: Option<&Entity>,
    entity: &Entity,
    ctx: &Context,
    rule: Option<&crate::policy::Rule>,
    to: Timestamp,
) -> Cause {
    match rule {
        Some(rule) => Cause::Anchor {
            anchor: rule.anchor.clone(),
            value: entity.anchors.get(&rule.anchor).copied(),
            changed_at: anchor_changed_at(before, entity, &rule.anchor, ctx.now),
            bound: Bound::MovedIntoPast,
            occurrence_at: to,
        },
        None => Cause::PassedWhenPlanned { at: to },
    }
}

/// The exclusion as a cause: the date or attribute, its value, and when this command changed it.
fn excluded_by(
    before: Option<&Entity>,
    entity: &Entity,
    ctx: &Context,
    exclusion: Exclusion,
    at: Timestamp,
) -> Cause {
    match exclusion {
        Exclusion::Anchor { anchor, bound } => Cause::Anchor {
            value: entity.anchors.get(&anchor).copied(),
            changed_at: anchor_changed_at(before, entity, &anchor, ctx.now),
            anchor,
            bound,
            occurrence_at: at,
        },
        Exclusion::Attribute { name } => Cause::Attribute {
            value: entity.attributes.get(&name).cloned(),
            changed_at: before
                .filter(|before| before.attributes.get(&name) != entity.attributes.get(&name))
                .map(|_| ctx.now),
            name,
        },
    }
}
