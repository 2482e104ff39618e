//! Reconciliation: comparing what the plan wants with the active reminders.

use std::collections::BTreeMap;

use crate::conditions::first_failure;
use crate::decide::Context;
use crate::entity::{Entity, Phase};
use crate::event::{Event, PlanCause, UnsentReason};
use crate::plan::plan;
use crate::policy::MovedIntoPast;

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
pub(crate) fn reconcile(
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
                _ => events.push(Event::OccurrenceUnsent {
                    occurrence,
                    reason: UnsentReason::NotApplicable,
                    detail: format!("moved to {}, which is in the past", p.at),
                }),
            },
            None => {
                // Out of the plan because the rule no longer applies (everyone responded, the
                // notice was switched off) is a false condition; otherwise it does not apply.
                let condition =
                    rule.and_then(|rule| first_failure(&rule.applies_when, rule, entity, None));
                events.push(match condition {
                    Some((reason, why)) => Event::OccurrenceUnsent {
                        occurrence,
                        reason,
                        detail: why,
                    },
                    None => Event::OccurrenceUnsent {
                        occurrence,
                        reason: UnsentReason::NotApplicable,
                        detail: "no longer in the plan of its rule".to_owned(),
                    },
                });
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
            events.push(Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::NotApplicable,
                detail: format!("planned for {}, which had passed when it was planned", p.at),
            });
        }
    }
    events
}
