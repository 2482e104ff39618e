//! Planning: the occurrences a policy wants for an entity, as a pure function of the policy and
//! the entity's anchors, zone and id. `decide` compares this plan with the active reminders to
//! arm, move or retire occurrences.

use chrono::{NaiveTime, Timelike};

use crate::policy::{Rule, SERIES_LEN_MAX, TimeOfDay, Truncate};
use crate::seed::Draw;
use crate::{Entity, Policy, RuleName, Span, Timestamp};

/// One occurrence the plan wants: rule, position in the rule's series, and instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub rule: RuleName,
    pub slot: u32,
    pub kind: String,
    pub at: Timestamp,
}

const MINUTES_PER_DAY: u32 = 24 * 60;

/// Every occurrence the policy's rules give for `entity`, rule by rule, slot by slot.
pub fn plan(policy: &Policy, entity: &Entity) -> Vec<Planned> {
    policy
        .rules
        .iter()
        .flat_map(|rule| plan_rule(policy, rule, entity))
        .collect()
}

/// The occurrences of one rule. A rule whose anchor is not set plans nothing.
pub fn plan_rule(policy: &Policy, rule: &Rule, entity: &Entity) -> Vec<Planned> {
    let Some(&anchor) = entity.anchors.get(&rule.anchor) else {
        return Vec::new();
    };
    let Some(first) = anchor.checked_add(rule.offset) else {
        return Vec::new();
    };
    let until = rule.until.as_ref().and_then(|until| {
        entity
            .anchors
            .get(&until.anchor)
            .and_then(|at| at.checked_add(until.offset))
    });
    if rule.until.is_some() && until.is_none() {
        // A series bounded by an anchor that is not set has no end yet: plan nothing rather than
        // the whole SERIES_LEN_MAX.
        return Vec::new();
    }
    let slots = match rule.every {
        None => 1,
        Some(_) => rule.count.unwrap_or(SERIES_LEN_MAX).min(SERIES_LEN_MAX),
    };
    let mut planned = Vec::new();
    for slot in 0..slots {
        let step = rule.every.unwrap_or(Span::ZERO);
        let Some(base) = step
            .checked_mul(i64::from(slot))
            .and_then(|offset| first.checked_add(offset))
        else {
            break;
        };
        let at = apply_truncate(rule.truncate, time_of_day(policy, rule, entity, slot, base));
        if until.is_some_and(|until| at > until) {
            break;
        }
        planned.push(Planned {
            rule: rule.name.clone(),
            slot,
            kind: rule.kind.clone(),
            at,
        });
    }
    planned
}

fn time_of_day(
    policy: &Policy,
    rule: &Rule,
    entity: &Entity,
    slot: u32,
    base: Timestamp,
) -> Timestamp {
    let date = entity.zone.local(base).date();
    match &rule.at {
        TimeOfDay::Exact => base,
        TimeOfDay::Local { time } => entity.zone.at_local(date, time.time()),
        TimeOfDay::Window { start, end } => {
            let start_minute = minute_of_day(start.time());
            let end_minute = minute_of_day(end.time()).max(start_minute + 1);
            let slot_text = slot.to_string();
            let mut draw = Draw::new(
                policy.seed,
                &[
                    entity.id.as_str().as_bytes(),
                    rule.name.as_str().as_bytes(),
                    slot_text.as_bytes(),
                ],
            );
            let minute = start_minute + draw.below(u64::from(end_minute - start_minute)) as u32;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(
                minute.min(MINUTES_PER_DAY - 1) * 60,
                0,
            )
            .expect("a minute of the day is a valid time");
            entity.zone.at_local(date, time)
        }
    }
}

fn minute_of_day(time: NaiveTime) -> u32 {
    time.hour() * 60 + time.minute()
}

fn apply_truncate(truncate: Truncate, at: Timestamp) -> Timestamp {
    match truncate {
        Truncate::None => at,
        Truncate::Hour => at.truncate_to_hour(),
    }
}
