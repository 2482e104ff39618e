//! `explain`: the chain of events behind each occurrence, as sentences a support person can read
//! out ("planned for 2026-03-05 10:00 Europe/Paris by rule first-late (2d after due_at …);
//! moved to … because due_at moved …; sent at … through smtp, attempt 2").
//!
//! It reads only the log (and the policy, to describe rules), folding it like replay does, so
//! it explains what the engine actually decided, including the seeded draws it recorded.

use std::collections::BTreeMap;

use serde::Serialize;
use tickler_core::policy::{Rule, Step, TimeOfDay};
use tickler_core::{
    Cause, Entity, EntityId, Event, OccurrenceId, PlanCause, Policy, Timestamp, Zone, evolve,
};

use crate::replay::LoggedEvent;

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub entity: EntityId,
    /// Entity-level events: creation, anchor moves, completion…
    pub entity_lines: Vec<ExplainLine>,
    pub occurrences: Vec<OccurrenceStory>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OccurrenceStory {
    pub occurrence: OccurrenceId,
    /// sent, unsent: <reason>, pending-on, pending-off, processing or retry-waiting.
    pub status: String,
    /// Why it ended unsent, as fields (the date or attribute and its change, the grace or
    /// staleness cutoff, the condition and the value that made it false), when the log
    /// recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub lines: Vec<ExplainLine>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExplainLine {
    /// The log sequence number of the event the sentence is about.
    pub seq: u64,
    pub at: Timestamp,
    pub text: String,
}

/// Explains every occurrence of the entity whose log is `events`.
pub fn explain(
    entity_id: &EntityId,
    events: &[LoggedEvent],
    policy: Option<&Policy>,
) -> Explanation {
    let mut state: Option<Entity> = None;
    let mut entity_lines = Vec::new();
    let mut stories: BTreeMap<OccurrenceId, Vec<ExplainLine>> = BTreeMap::new();
    // What the last entity-level change was, to say why occurrences moved in the same command.
    let mut last_change: Option<(Timestamp, String)> = None;
    let mut retry_of: Option<OccurrenceId> = None;
    let mut causes: BTreeMap<OccurrenceId, Cause> = BTreeMap::new();
    for logged in events {
        let (seq, at) = (logged.seq, logged.recorded_at);
        let zone = state.as_ref().map_or(Zone::UTC, |e| e.zone);
        let line = |text: String| ExplainLine { seq, at, text };
        let cause = |last_change: &Option<(Timestamp, String)>| match last_change {
            Some((when, what)) if *when == at => format!(" because {what}"),
            _ => String::new(),
        };
        match &logged.event {
            Event::Created {
                policy: name,
                policy_version,
                workflow,
                recipient,
                zone,
                anchors,
                ..
            } => {
                let anchors = anchors
                    .iter()
                    .map(|(name, t)| format!("{name} {}", local(*t, *zone)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let workflow = workflow
                    .as_ref()
                    .map(|w| format!(" (workflow {w})"))
                    .unwrap_or_default();
                entity_lines.push(line(format!(
                    "created at {} under policy {name} v{policy_version}{workflow} for {recipient} in {zone}; {anchors}",
                    local(at, *zone)
                )));
            }
            Event::AnchorMoved { anchor, from, to } => {
                let text = match from {
                    Some(from) => format!(
                        "{anchor} moved from {} to {}",
                        local(*from, zone),
                        local(*to, zone)
                    ),
                    None => format!("{anchor} set to {}", local(*to, zone)),
                };
                entity_lines.push(line(format!("{text} at {}", local(at, zone))));
                last_change = Some((at, text));
            }
            Event::AttributeSet { name, value } => {
                let text = match value {
                    Some(value) => format!("attribute {name} set to {value}"),
                    None => format!("attribute {name} cleared"),
                };
                entity_lines.push(line(format!("{text} at {}", local(at, zone))));
                last_change = Some((at, text));
            }
            Event::RecipientChanged {
                recipient,
                zone: new_zone,
            } => {
                let mut parts = Vec::new();
                if let Some(recipient) = recipient {
                    parts.push(format!("recipient changed to {recipient}"));
                }
                if let Some(new_zone) = new_zone {
                    parts.push(format!("time zone changed to {new_zone}"));
                }
                let text = parts.join(" and ");
                entity_lines.push(line(format!("{text} at {}", local(at, zone))));
                last_change = Some((at, text));
            }
            Event::Replanned { policy_version } => {
                let text = format!("the plan was recomputed under policy version {policy_version}");
                entity_lines.push(line(format!("{text} at {}", local(at, zone))));
                last_change = Some((at, text));
            }
            Event::Completed { reason } => {
                entity_lines.push(line(format!("completed ({reason}) at {}", local(at, zone))));
            }
            Event::OccurrencePlanned {
                occurrence,
                at: planned,
                cause: plan_cause,
                ..
            } => {
                let rule = policy.and_then(|p| p.rule(&occurrence.rule));
                let how = describe_rule(occurrence, rule, state.as_ref());
                let why = match plan_cause {
                    PlanCause::Created => " when the entity was created".to_owned(),
                    PlanCause::AnchorMoved | PlanCause::Replanned => {
                        let because = cause(&last_change);
                        if because.is_empty() {
                            String::new()
                        } else {
                            format!(",{because}")
                        }
                    }
                    PlanCause::Retried => retry_of
                        .take()
                        .map(|old| format!(", retrying {old} which had ended in a system error"))
                        .unwrap_or_default(),
                };
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "planned for {} {how}{why}",
                        local(*planned, zone)
                    )));
            }
            Event::OccurrenceRescheduled {
                occurrence,
                from,
                to,
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "moved from {} to {}{}",
                        local(*from, zone),
                        local(*to, zone),
                        cause(&last_change)
                    )));
            }
            Event::OccurrenceToggled {
                occurrence,
                enabled,
            } => {
                let verb = if *enabled {
                    "switched back on"
                } else {
                    "switched off"
                };
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!("{verb} by a user at {}", local(at, zone))));
            }
            Event::FanOutStarted {
                occurrence,
                attempt,
                recipients,
                ..
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "attempt {attempt} started at {} to {} recipient(s)",
                        local(at, zone),
                        recipients.len()
                    )));
            }
            Event::RecipientsReported {
                occurrence,
                attempt,
                delivered,
                refused,
            } => {
                let mut text = format!("attempt {attempt}: delivered to {}", delivered.len());
                if let Some((_, why)) = refused.first() {
                    text.push_str(&format!(", refused by {} (e.g. {why})", refused.len()));
                }
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!("{text} at {}", local(at, zone))));
            }
            Event::DeliveryStarted {
                occurrence,
                attempt,
                ..
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "attempt {attempt} started at {}",
                        local(at, zone)
                    )));
            }
            Event::DeliveryFailed {
                occurrence,
                attempt,
                error,
                retry_at,
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "attempt {attempt} failed at {}: {error}; next attempt at {}",
                        local(at, zone),
                        local(*retry_at, zone)
                    )));
            }
            Event::OccurrenceSent {
                occurrence,
                attempt,
                channel,
                receipt,
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "sent at {} through {channel}, attempt {attempt} ({receipt})",
                        local(at, zone)
                    )));
            }
            Event::OccurrenceUnsent {
                occurrence,
                reason,
                detail,
            } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "not sent ({reason}) at {}: {detail}",
                        local(at, zone)
                    )));
            }
            Event::CauseRecorded { occurrence, cause } => {
                causes.insert(occurrence.clone(), cause.clone());
            }
            Event::RetryPlanned {
                occurrence,
                retry_of,
                key,
                at: planned,
                reason,
            } => {
                let key = key.idempotency_key(entity_id);
                stories
                    .entry(retry_of.clone())
                    .or_default()
                    .push(line(format!(
                        "retried by an operator at {} as {occurrence} ({reason})",
                        local(at, zone)
                    )));
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "planned for {} by an operator's retry of {retry_of}, which had ended in \
                         a system error ({reason}): a new attempt at the same message, under its \
                         idempotency key {key}",
                        local(*planned, zone)
                    )));
            }
            Event::RetryRequested { occurrence } => {
                stories
                    .entry(occurrence.clone())
                    .or_default()
                    .push(line(format!(
                        "retry requested by an operator at {}",
                        local(at, zone)
                    )));
                retry_of = Some(occurrence.clone());
            }
        }
        state = evolve(state, entity_id, &logged.event, at, seq).ok();
    }
    let occurrences = stories
        .into_iter()
        .map(|(occurrence, mut lines)| {
            let status = status_of(&occurrence, state.as_ref(), events);
            if let Some(reminder) = state.as_ref().and_then(|e| e.active.get(&occurrence)) {
                let zone = state.as_ref().map_or(Zone::UTC, |e| e.zone);
                let last = events
                    .last()
                    .map_or((0, Timestamp::EPOCH), |e| (e.seq, e.recorded_at));
                lines.push(ExplainLine {
                    seq: last.0,
                    at: last.1,
                    text: format!(
                        "{} (wakes at {})",
                        reminder.state_label(),
                        local(reminder.wake_at(), zone)
                    ),
                });
            }
            let cause = status
                .starts_with("unsent")
                .then(|| causes.remove(&occurrence))
                .flatten();
            OccurrenceStory {
                occurrence,
                status,
                cause,
                lines,
            }
        })
        .collect();
    Explanation {
        entity: entity_id.clone(),
        entity_lines,
        occurrences,
    }
}

fn status_of(occurrence: &OccurrenceId, state: Option<&Entity>, events: &[LoggedEvent]) -> String {
    if let Some(reminder) = state.and_then(|e| e.active.get(occurrence)) {
        return reminder.state_label().to_owned();
    }
    events
        .iter()
        .rev()
        .find_map(|logged| match &logged.event {
            Event::OccurrenceSent { occurrence: o, .. } if o == occurrence => {
                Some("sent".to_owned())
            }
            Event::OccurrenceUnsent {
                occurrence: o,
                reason,
                ..
            } if o == occurrence => Some(format!("unsent: {reason}")),
            _ => None,
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// "by rule first-late (2d after due_at 2026-03-11 11:00 Europe/Paris)".
fn describe_rule(
    occurrence: &OccurrenceId,
    rule: Option<&Rule>,
    entity: Option<&Entity>,
) -> String {
    let Some(rule) = rule else {
        return format!("by rule {} (no longer in the policy)", occurrence.rule);
    };
    let anchor_value = entity
        .and_then(|e| e.anchors.get(&rule.anchor).map(|t| local(*t, e.zone)))
        .map(|text| format!(" {text}"))
        .unwrap_or_default();
    let offset = rule.offset.as_millis();
    let relation = if offset == 0 {
        format!("at {}{anchor_value}", rule.anchor)
    } else if offset > 0 {
        format!("{} after {}{anchor_value}", rule.offset, rule.anchor)
    } else {
        format!(
            "{} before {}{anchor_value}",
            tickler_core::Span::from_millis(-offset),
            rule.anchor
        )
    };
    let series = match rule.repeat().map(|repeat| repeat.step) {
        Some(Step::Every(every)) => format!(", one every {every}"),
        Some(Step::PerPeriod(per)) => format!(", {} per {}", per.times, per.period),
        None => String::new(),
    };
    let time = match &rule.at {
        TimeOfDay::Exact => String::new(),
        TimeOfDay::Local {
            time, next, spread, ..
        } => {
            let next = if *next { "the next " } else { "" };
            let spread = spread
                .map(|spread| format!(", spread over {spread}"))
                .unwrap_or_default();
            format!(", at {next}{} local time{spread}", String::from(*time))
        }
        TimeOfDay::Window { start, end, .. } => format!(
            ", at a seeded draw in the {}-{} local window",
            String::from(*start),
            String::from(*end)
        ),
    };
    format!("by rule {} ({relation}{series}{time})", occurrence.rule)
}

/// `2026-03-05 10:00 Europe/Paris`.
fn local(at: Timestamp, zone: Zone) -> String {
    format!(
        "{} {}",
        at.to_chrono()
            .with_timezone(&zone.tz())
            .format("%Y-%m-%d %H:%M"),
        zone
    )
}
