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
    let mut narrator = Narrator {
        entity_id,
        policy,
        state: None,
        entity_lines: Vec::new(),
        stories: BTreeMap::new(),
        last_change: None,
        retry_of: None,
        causes: BTreeMap::new(),
    };
    for logged in events {
        narrator.narrate(logged);
    }
    narrator.finish(events)
}

/// The story so far, told one event at a time.
struct Narrator<'a> {
    entity_id: &'a EntityId,
    policy: Option<&'a Policy>,
    /// The entity as of the event being told (its zone, its rules' anchors).
    state: Option<Entity>,
    /// Entity-level events: creation, anchor moves, completion…
    entity_lines: Vec<ExplainLine>,
    stories: BTreeMap<OccurrenceId, Vec<ExplainLine>>,
    /// What the last entity-level change was, to say why occurrences moved in the same command.
    last_change: Option<(Timestamp, String)>,
    /// The occurrence an operator asked to retry, until the retry's planning names it.
    retry_of: Option<OccurrenceId>,
    causes: BTreeMap<OccurrenceId, Cause>,
}

impl Narrator<'_> {
    fn narrate(&mut self, logged: &LoggedEvent) {
        let (seq, at) = (logged.seq, logged.recorded_at);
        let zone = self.state.as_ref().map_or(Zone::UTC, |e| e.zone);
        let line = |text: String| ExplainLine { seq, at, text };
        if let Some((text, change)) = entity_sentence(&logged.event, at, zone) {
            self.entity_lines.push(line(text));
            if let Some(change) = change {
                self.last_change = Some((at, change));
            }
        } else if let Some((occurrence, text)) = delivery_sentence(&logged.event, at, zone) {
            self.story(occurrence).push(line(text));
        } else {
            for (occurrence, text) in self.planning_sentences(&logged.event, at, zone) {
                self.story(occurrence).push(line(text));
            }
        }
        self.state = evolve(self.state.take(), self.entity_id, &logged.event, at, seq).ok();
    }

    fn story(&mut self, occurrence: OccurrenceId) -> &mut Vec<ExplainLine> {
        self.stories.entry(occurrence).or_default()
    }

    /// " because <the last change>" when that change was made in the same command.
    fn because(&self, at: Timestamp) -> String {
        match &self.last_change {
            Some((when, what)) if *when == at => format!(" because {what}"),
            _ => String::new(),
        }
    }

    /// What planning, moving, toggling and retrying an occurrence says, for each occurrence
    /// concerned (a retry speaks of the old and the new one); records a cause for later.
    fn planning_sentences(
        &mut self,
        event: &Event,
        at: Timestamp,
        zone: Zone,
    ) -> Vec<(OccurrenceId, String)> {
        match event {
            Event::OccurrencePlanned {
                occurrence,
                at: planned,
                cause,
                ..
            } => {
                let rule = self.policy.and_then(|p| p.rule(&occurrence.rule));
                let how = describe_rule(occurrence, rule, self.state.as_ref());
                let why = match cause {
                    PlanCause::Created => " when the entity was created".to_owned(),
                    PlanCause::AnchorMoved | PlanCause::Replanned => {
                        let because = self.because(at);
                        if because.is_empty() {
                            String::new()
                        } else {
                            format!(",{because}")
                        }
                    }
                    PlanCause::Retried => self
                        .retry_of
                        .take()
                        .map(|old| format!(", retrying {old} which had ended in a system error"))
                        .unwrap_or_default(),
                };
                let text = format!("planned for {} {how}{why}", local(*planned, zone));
                vec![(occurrence.clone(), text)]
            }
            Event::OccurrenceRescheduled {
                occurrence,
                from,
                to,
            } => {
                let text = format!(
                    "moved from {} to {}{}",
                    local(*from, zone),
                    local(*to, zone),
                    self.because(at)
                );
                vec![(occurrence.clone(), text)]
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
                let text = format!("{verb} by a user at {}", local(at, zone));
                vec![(occurrence.clone(), text)]
            }
            Event::CauseRecorded { occurrence, cause } => {
                self.causes.insert(occurrence.clone(), cause.clone());
                Vec::new()
            }
            Event::RetryPlanned {
                occurrence,
                retry_of,
                key,
                at: planned,
                reason,
            } => {
                let key = key.idempotency_key(self.entity_id);
                vec![
                    (
                        retry_of.clone(),
                        format!(
                            "retried by an operator at {} as {occurrence} ({reason})",
                            local(at, zone)
                        ),
                    ),
                    (
                        occurrence.clone(),
                        format!(
                            "planned for {} by an operator's retry of {retry_of}, which had ended \
                             in a system error ({reason}): a new attempt at the same message, \
                             under its idempotency key {key}",
                            local(*planned, zone)
                        ),
                    ),
                ]
            }
            Event::RetryRequested { occurrence } => {
                self.retry_of = Some(occurrence.clone());
                let text = format!("retry requested by an operator at {}", local(at, zone));
                vec![(occurrence.clone(), text)]
            }
            _ => Vec::new(),
        }
    }

    /// Each occurrence's story, with its status now and, for a pending one, when it wakes.
    fn finish(mut self, events: &[LoggedEvent]) -> Explanation {
        let state = self.state.take();
        let zone = state.as_ref().map_or(Zone::UTC, |e| e.zone);
        let last = events
            .last()
            .map_or((0, Timestamp::EPOCH), |e| (e.seq, e.recorded_at));
        let stories = std::mem::take(&mut self.stories);
        let occurrences = stories
            .into_iter()
            .map(|(occurrence, mut lines)| {
                let status = status_of(&occurrence, state.as_ref(), events);
                if let Some(reminder) = state.as_ref().and_then(|e| e.active.get(&occurrence)) {
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
                    .then(|| self.causes.remove(&occurrence))
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
            entity: self.entity_id.clone(),
            entity_lines: self.entity_lines,
            occurrences,
        }
    }
}

/// The line an entity-level event adds, and the change it made (what later moves were
/// "because of"), or `None` for an event about an occurrence.
fn entity_sentence(event: &Event, at: Timestamp, zone: Zone) -> Option<(String, Option<String>)> {
    let change = |text: String| Some((format!("{text} at {}", local(at, zone)), Some(text)));
    match event {
        Event::Created {
            policy,
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
            let text = format!(
                "created at {} under policy {policy} v{policy_version}{workflow} for {recipient} in {zone}; {anchors}",
                local(at, *zone)
            );
            Some((text, None))
        }
        Event::AnchorMoved { anchor, from, to } => change(match from {
            Some(from) => format!(
                "{anchor} moved from {} to {}",
                local(*from, zone),
                local(*to, zone)
            ),
            None => format!("{anchor} set to {}", local(*to, zone)),
        }),
        Event::AttributeSet { name, value } => change(match value {
            Some(value) => format!("attribute {name} set to {value}"),
            None => format!("attribute {name} cleared"),
        }),
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
            change(parts.join(" and "))
        }
        Event::Replanned { policy_version } => change(format!(
            "the plan was recomputed under policy version {policy_version}"
        )),
        Event::Completed { reason } => {
            Some((format!("completed ({reason}) at {}", local(at, zone)), None))
        }
        _ => None,
    }
}

/// The line a delivery event adds to its occurrence's story.
fn delivery_sentence(event: &Event, at: Timestamp, zone: Zone) -> Option<(OccurrenceId, String)> {
    let when = local(at, zone);
    let (occurrence, text) = match event {
        Event::FanOutStarted {
            occurrence,
            attempt,
            recipients,
            ..
        } => (
            occurrence,
            format!(
                "attempt {attempt} started at {when} to {} recipient(s)",
                recipients.len()
            ),
        ),
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
            (occurrence, format!("{text} at {when}"))
        }
        Event::DeliveryStarted {
            occurrence,
            attempt,
            ..
        } => (occurrence, format!("attempt {attempt} started at {when}")),
        Event::DeliveryFailed {
            occurrence,
            attempt,
            error,
            retry_at,
        } => (
            occurrence,
            format!(
                "attempt {attempt} failed at {when}: {error}; next attempt at {}",
                local(*retry_at, zone)
            ),
        ),
        Event::OccurrenceSent {
            occurrence,
            attempt,
            channel,
            receipt,
        } => (
            occurrence,
            format!("sent at {when} through {channel}, attempt {attempt} ({receipt})"),
        ),
        Event::OccurrenceUnsent {
            occurrence,
            reason,
            detail,
        } => (
            occurrence,
            format!("not sent ({reason}) at {when}: {detail}"),
        ),
        _ => return None,
    };
    Some((occurrence.clone(), text))
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
